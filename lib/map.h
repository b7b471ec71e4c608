/* A string-keyed hash map of pointers (open addressing, linear probing).
 * Keys are copied; values are borrowed. */
#ifndef FERRY_MAP_H
#define FERRY_MAP_H

#include <stddef.h>

typedef struct ferry_map {
    char **keys;
    void **values;
    size_t cap; /* power of two, or 0 */
    size_t len;
    size_t tombs;
} ferry_map;

void ferry_map_init(ferry_map *m);
void ferry_map_free(ferry_map *m);
void *ferry_map_get(const ferry_map *m, const char *key);
/* Insert or replace; returns the previous value or NULL. */
void *ferry_map_put(ferry_map *m, const char *key, void *value);
/* Remove; returns the removed value or NULL. */
void *ferry_map_del(ferry_map *m, const char *key);
/* Iterate: for (size_t i = 0; ferry_map_next(m, &i, &k, &v);) */
int ferry_map_next(const ferry_map *m, size_t *iter, const char **key, void **value);

#endif
