/* Parsing output metadata (outputmeta.h). */
#include "outputmeta.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

/* The warnings of one metadata file, bounded. */
typedef struct om_warner {
    const outputmeta_hooks *h;
    const char *label; /* the file's name, as the log shows it */
    int given, dropped;
} om_warner;

static void om_warn(om_warner *w, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void om_warn(om_warner *w, long line, const char *fmt, ...)
{
    if (w->given >= OUTPUTMETA_MAX_WARNINGS) {
        w->dropped++;
        return;
    }
    w->given++;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    char *text = line > 0 ? ferry_asprintf("%s:%ld: %s", w->label, line, why)
                          : ferry_asprintf("%s: %s", w->label, why);
    if (w->h->warn)
        w->h->warn(w->h->arg, text);
    free(text);
}

static void om_warn_done(om_warner *w)
{
    if (w->dropped == 0 || w->h->warn == NULL)
        return;
    char *text = ferry_asprintf("%s: %d more problems not shown", w->label, w->dropped);
    w->h->warn(w->h->arg, text);
    free(text);
}

/* A name as the log may show it: valid UTF-8, one line, not too long. */
static char *om_shown(const char *name)
{
    size_t n = strlen(name), len = 0;
    char *clean = ferry_utf8_clean(name, n > 200 ? 200 : n, &len);
    for (char *p = clean; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (n > 200) {
        char *longer = ferry_asprintf("%s...", clean);
        free(clean);
        return longer;
    }
    return clean;
}

int outputmeta_is_meta(const char *name)
{
    size_t n = strlen(name), s = strlen(OUTPUTMETA_SIDECAR);
    if (strcmp(name, OUTPUTMETA_JSONL) == 0)
        return 1;
    return n > s && strcmp(name + n - s, OUTPUTMETA_SIDECAR) == 0;
}

/* "./model.pkl" and "/valohai/outputs/model.pkl" name model.pkl too. */
static const char *om_relative(const char *file)
{
    static const char prefix[] = "/valohai/outputs/";
    if (strncmp(file, prefix, sizeof(prefix) - 1) == 0)
        file += sizeof(prefix) - 1;
    while (strncmp(file, "./", 2) == 0)
        file += 2;
    return file;
}

/* Keys of `meta` into by_file[name], replacing those given before. */
static void om_merge(json_t *by_file, const char *name, json_t *meta)
{
    json_t *have = json_object_get(by_file, name);
    if (have == NULL)
        json_object_set_new(by_file, name, json_deep_copy(meta));
    else
        json_object_update(have, meta);
}

static int om_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* One line of the jsonl, numbered from 1. */
static void om_line(json_t *by_file, om_warner *w, long line, const char *p, size_t n)
{
    json_error_t err;
    json_t *doc = json_loadb(p, n, 0, &err);
    if (doc == NULL) {
        om_warn(w, line, "not JSON: %s", err.text);
        return;
    }
    const char *file = json_string_value(json_object_get(doc, "file"));
    json_t *meta = json_object_get(doc, "metadata");
    if (!json_is_object(doc)) {
        om_warn(w, line, "not a JSON object");
    } else if (file == NULL) {
        om_warn(w, line, "no \"file\" (the output it is about)");
    } else if (!json_is_object(meta)) {
        char *shown = om_shown(file);
        om_warn(w, line, "\"metadata\" of %s is %s, not an object", shown,
                meta ? "something else" : "missing");
        free(shown);
    } else if (!w->h->known(w->h->arg, om_relative(file))) {
        char *shown = om_shown(file);
        om_warn(w, line, "\"file\" names no output: %s", shown);
        free(shown);
    } else {
        om_merge(by_file, om_relative(file), meta);
    }
    json_decref(doc);
}

void outputmeta_jsonl(json_t *by_file, const char *text, size_t len, const outputmeta_hooks *h)
{
    om_warner w = {.h = h, .label = OUTPUTMETA_JSONL};
    long line = 0;
    for (size_t at = 0; at < len;) {
        const char *p = text + at;
        const char *nl = memchr(p, '\n', len - at);
        size_t n = nl ? (size_t)(nl - p) : len - at;
        line++;
        if (!om_blank(p, n))
            om_line(by_file, &w, line, p, n);
        at += n + 1;
    }
    om_warn_done(&w);
}

void outputmeta_sidecar(json_t *by_file, const char *name, const char *text, size_t len,
                        const outputmeta_hooks *h)
{
    char *label = om_shown(name);
    om_warner w = {.h = h, .label = label};
    size_t n = strlen(name) - strlen(OUTPUTMETA_SIDECAR);
    char *file = ferry_xmalloc(n + 1);
    memcpy(file, name, n);
    file[n] = '\0';
    json_error_t err;
    json_t *doc = json_loadb(text, len, 0, &err);
    if (doc == NULL) {
        om_warn(&w, err.line, "not JSON: %s", err.text);
    } else if (!json_is_object(doc)) {
        om_warn(&w, 0, "not a JSON object");
    } else if (!h->known(h->arg, file)) {
        char *shown = om_shown(file);
        om_warn(&w, 0, "names no output: %s", shown);
        free(shown);
    } else {
        om_merge(by_file, file, doc);
    }
    json_decref(doc);
    free(file);
    free(label);
}
