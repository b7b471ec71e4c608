/* ferry plugin SDK: a plugin's settings, as the host hands them over (text),
 * and the small lists of names a plugin keeps.
 *
 * Every cloud plugin reads the same kinds of values: numbers in a range,
 * yes/no flags, names that go into URLs, form fields and tags, and lists
 * written "a, b, c" (a list in the config file reaches the plugin that way).
 * These read them all alike, so that one setting is accepted or refused the
 * same way by every plugin; the plugin names the setting in its error.
 */
#ifndef FERRY_SETTINGS_H
#define FERRY_SETTINGS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Strings owned by the list. */
typedef struct ferry_strlist {
    char **v;
    size_t n;
} ferry_strlist;

/* "a, b,c" into a list of its items, trimmed of spaces. An empty item
 * ("a,,b") is kept, so that the plugin's check of each item refuses it by
 * name; an empty text is an empty list. 0 or FERRY_ENOMEM (`l` is empty). */
int ferry_strlist_parse(ferry_strlist *l, const char *text);
/* The index of `s` in the list, or -1. */
int ferry_strlist_index(const ferry_strlist *l, const char *s);
/* Adds a copy of `s` unless the list has it (or `s` is NULL or empty).
 * 0 or FERRY_ENOMEM. */
int ferry_strlist_add_unique(ferry_strlist *l, const char *s);
/* Removes `s` when the list has it; the order of the rest may change. */
void ferry_strlist_remove(ferry_strlist *l, const char *s);
void ferry_strlist_free(ferry_strlist *l);

/* A whole decimal number within [lo, hi]: 0, or -1 (nothing else, no
 * spaces, no overflow). */
int ferry_setting_long(const char *s, long lo, long hi, long *out);
/* true/yes/1 or false/no/0, any case: 0, or -1. */
int ferry_setting_bool(const char *s, int *out);
/* A name that goes into URLs, form fields, tags or JSON: 1 to 255 bytes,
 * none of them a space, a control character, ',' or one of `also_refused`
 * (may be NULL). 1 when it is one. */
int ferry_setting_word_ok(const char *s, const char *also_refused);

#ifdef __cplusplus
}
#endif

#endif
