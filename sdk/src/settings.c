/* ferry plugin SDK: settings and lists of names (see ferry/settings.h). */
#include "ferry/settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ferry/error.h"

void ferry_strlist_free(ferry_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int ferry__strlist_push(ferry_strlist *l, const char *s, size_t len)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL)
        return FERRY_ENOMEM;
    l->v = v;
    char *item = strndup(s, len);
    if (item == NULL)
        return FERRY_ENOMEM;
    l->v[l->n++] = item;
    return 0;
}

int ferry_strlist_parse(ferry_strlist *l, const char *text)
{
    memset(l, 0, sizeof(*l));
    for (const char *p = text ? text : ""; *p;) {
        size_t n = strcspn(p, ",");
        const char *a = p, *b = p + n;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (ferry__strlist_push(l, a, (size_t)(b - a)) != 0) {
            ferry_strlist_free(l);
            return FERRY_ENOMEM;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

int ferry_strlist_index(const ferry_strlist *l, const char *s)
{
    for (size_t i = 0; s && i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return (int)i;
    return -1;
}

int ferry_strlist_add_unique(ferry_strlist *l, const char *s)
{
    if (s == NULL || s[0] == '\0' || ferry_strlist_index(l, s) >= 0)
        return 0;
    return ferry__strlist_push(l, s, strlen(s));
}

void ferry_strlist_remove(ferry_strlist *l, const char *s)
{
    int i = ferry_strlist_index(l, s);
    if (i < 0)
        return;
    free(l->v[i]);
    l->v[i] = l->v[--l->n];
}

int ferry_setting_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || isspace((unsigned char)s[0]) || errno != 0 || *end != '\0' || v < lo ||
        v > hi)
        return -1;
    *out = v;
    return 0;
}

int ferry_setting_bool(const char *s, int *out)
{
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "yes") == 0)
        *out = 1;
    else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

int ferry_setting_word_ok(const char *s, const char *also_refused)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 255)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == ',' ||
            (also_refused && strchr(also_refused, *p)))
            return 0;
    return 1;
}
