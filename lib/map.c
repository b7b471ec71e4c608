/* A string-keyed hash map of pointers: open addressing with linear probing,
 * tombstones on delete, grown at 70% load. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static char tombstone[1];

static uint64_t map__hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

void ferry_map_init(ferry_map *m)
{
    memset(m, 0, sizeof(*m));
}

void ferry_map_free(ferry_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != tombstone)
            free(m->keys[i]);
    free(m->keys);
    free(m->values);
    ferry_map_init(m);
}

static size_t map__find(const ferry_map *m, const char *key, int *found)
{
    size_t mask = m->cap - 1, i = (size_t)map__hash(key) & mask, first_tomb = SIZE_MAX;
    for (;;) {
        char *k = m->keys[i];
        if (k == NULL) {
            *found = 0;
            return first_tomb != SIZE_MAX ? first_tomb : i;
        }
        if (k == tombstone) {
            if (first_tomb == SIZE_MAX)
                first_tomb = i;
        } else if (strcmp(k, key) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void map__grow(ferry_map *m)
{
    ferry_map old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->keys = ferry_xcalloc(m->cap, sizeof(char *));
    m->values = ferry_xcalloc(m->cap, sizeof(void *));
    m->len = 0;
    m->tombs = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i] == NULL || old.keys[i] == tombstone)
            continue;
        int found;
        size_t slot = map__find(m, old.keys[i], &found);
        m->keys[slot] = old.keys[i];
        m->values[slot] = old.values[i];
        m->len++;
    }
    free(old.keys);
    free(old.values);
}

void *ferry_map_get(const ferry_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    int found;
    size_t i = map__find(m, key, &found);
    return found ? m->values[i] : NULL;
}

void *ferry_map_put(ferry_map *m, const char *key, void *value)
{
    if ((m->len + m->tombs + 1) * 10 >= m->cap * 7)
        map__grow(m);
    int found;
    size_t i = map__find(m, key, &found);
    if (found) {
        void *prev = m->values[i];
        m->values[i] = value;
        return prev;
    }
    if (m->keys[i] == tombstone)
        m->tombs--;
    m->keys[i] = ferry_strdup(key);
    m->values[i] = value;
    m->len++;
    return NULL;
}

void *ferry_map_del(ferry_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    int found;
    size_t i = map__find(m, key, &found);
    if (!found)
        return NULL;
    void *prev = m->values[i];
    free(m->keys[i]);
    m->keys[i] = tombstone;
    m->values[i] = NULL;
    m->len--;
    m->tombs++;
    return prev;
}

int ferry_map_next(const ferry_map *m, size_t *iter, const char **key, void **value)
{
    for (; *iter < m->cap; (*iter)++) {
        char *k = m->keys[*iter];
        if (k && k != tombstone) {
            *key = k;
            *value = m->values[*iter];
            (*iter)++;
            return 1;
        }
    }
    return 0;
}
