/* Resolving what a user gives (parameters, inputs, environment variables)
 * and building the command. */
#include "stepfile_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/error.h>

#include "util.h"

/* "unknown parameter 'x' (known parameters: a, b)"; `names` as listed. */
static int ferry__unknown_name(char *err, size_t err_cap, const char *what, const char *name,
                               const char *names)
{
    if (!*names)
        return ferry__fail(err, err_cap, FERRY_EINVAL, "unknown %s '%s' (this step has no %ss)",
                           what, name, what);
    return ferry__fail(err, err_cap, FERRY_EINVAL, "unknown %s '%s' (known %ss: %s)", what, name,
                       what, names);
}

static char *ferry__param_names(const ferry_step *s)
{
    ferry__buf b = {0};
    for (size_t i = 0; i < s->n_params; i++)
        ferry__buf_printf(&b, "%s%s", i ? ", " : "", s->params[i].name);
    return ferry__buf_take(&b);
}

static char *ferry__input_names(const ferry_step *s)
{
    ferry__buf b = {0};
    for (size_t i = 0; i < s->n_inputs; i++)
        ferry__buf_printf(&b, "%s%s", i ? ", " : "", s->inputs[i].name);
    return ferry__buf_take(&b);
}

/* The first name in `given` that the step doesn't declare, or NULL. */
static const char *ferry__first_unknown(const json_t *given, const ferry_step *s, int inputs)
{
    const char *key;
    json_t *value;
    if (!json_is_object(given))
        return NULL;
    json_object_foreach((json_t *)given, key, value)
    {
        if (inputs ? !ferry__find_input(s, key) : !ferry__find_param(s, key))
            return key;
    }
    return NULL;
}

/* What both resolvers check first: `given` is an object (or absent) and
 * names only what the step declares (its inputs, or its parameters). */
static int ferry__check_given(const ferry_step *step, const json_t *given, int inputs, char *err,
                              size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (given && !json_is_object(given) && !json_is_null(given))
        return ferry__fail(err, err_cap, FERRY_EINVAL,
                           inputs ? "inputs: expected an object of name -> URLs"
                                  : "parameters: expected an object of name -> value");
    const char *unknown = ferry__first_unknown(given, step, inputs);
    if (unknown == NULL)
        return 0;
    char *names = inputs ? ferry__input_names(step) : ferry__param_names(step);
    int rc = ferry__unknown_name(err, err_cap, inputs ? "input" : "parameter", unknown, names);
    free(names);
    return rc;
}

int ferry_step_resolve_parameters(const ferry_step *step, const json_t *given, json_t **resolved,
                                  char *err, size_t err_cap)
{
    *resolved = NULL;
    int rc = ferry__check_given(step, given, 0, err, err_cap);
    if (rc < 0)
        return rc;
    json_t *res = json_object();
    for (size_t i = 0; i < step->n_params; i++) {
        const ferry_param_def *p = &step->params[i];
        json_t *v = json_is_object(given) ? json_object_get(given, p->name) : NULL, *typed = NULL;
        char why[512];
        if (v && !json_is_null(v)) {
            if (ferry__coerce_value(p, v, &typed, why, sizeof(why)) != 0) {
                json_decref(res);
                return ferry__fail(err, err_cap, FERRY_EINVAL, "parameter '%s': %s", p->name, why);
            }
        } else if (!v && p->default_error) { /* only a run that uses it fails */
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "parameter '%s' needs a value: its default is not usable (%s)",
                               p->name, p->default_error);
        } else if (!v && p->default_value) {
            typed = json_deep_copy(p->default_value);
        } else if (!v && p->type == FERRY_PARAM_FLAG) {
            typed = json_false(); /* an unset flag is off, as in valohai's UI */
        } else if (p->optional) {
            continue; /* unset (or set to null): left out of the command */
        } else {
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL, "parameter '%s': No value supplied",
                               p->name);
        }
        json_object_set_new(res, p->name, typed);
    }
    *resolved = res;
    return 0;
}

/* The URLs given for one input: a string or a list of strings. */
static int ferry__given_urls(const json_t *v, json_t *urls)
{
    if (json_is_string(v)) {
        if (*json_string_value(v))
            json_array_append(urls, (json_t *)v);
        return 0;
    }
    if (!json_is_array(v))
        return json_is_null(v) ? 0 : FERRY_EINVAL;
    size_t i;
    json_t *u;
    json_array_foreach(v, i, u)
    {
        if (!json_is_string(u))
            return FERRY_EINVAL;
        if (*json_string_value(u))
            json_array_append(urls, u);
    }
    return 0;
}

int ferry_step_resolve_inputs(const ferry_step *step, const json_t *given, json_t **resolved,
                              char *err, size_t err_cap)
{
    *resolved = NULL;
    int rc = ferry__check_given(step, given, 1, err, err_cap);
    if (rc < 0)
        return rc;
    json_t *res = json_object();
    for (size_t i = 0; i < step->n_inputs; i++) {
        const ferry_input_def *in = &step->inputs[i];
        json_t *v = json_is_object(given) ? json_object_get(given, in->name) : NULL;
        json_t *urls = json_array();
        if (v && ferry__given_urls(v, urls) != 0) {
            json_decref(urls);
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "input '%s': expected a URL or a list of URLs", in->name);
        }
        for (size_t j = 0; !v && j < in->n_default_urls; j++)
            json_array_append_new(urls, json_string(in->default_urls[j]));
        if (json_array_size(urls) == 0) {
            json_decref(urls);
            if (in->optional)
                continue;
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "input '%s': No URL supplied (the input is required and has no "
                               "default)",
                               in->name);
        }
        json_object_set_new(res, in->name, urls);
    }
    *resolved = res;
    return 0;
}

int ferry_step_resolve_env(const ferry_step *step, const json_t *given, json_t **resolved,
                           char *err, size_t err_cap)
{
    *resolved = NULL;
    if (err && err_cap)
        err[0] = '\0';
    if (given && !json_is_object(given) && !json_is_null(given))
        return ferry__fail(err, err_cap, FERRY_EINVAL,
                           "environment variables: expected an object of name -> value");
    const char *key;
    json_t *value;
    json_t *res = json_object();
    for (size_t i = 0; i < step->n_env; i++) {
        const ferry_env_def *e = &step->env[i];
        if (e->default_value)
            json_object_set_new(res, e->name, json_string(e->default_value));
    }
    if (json_is_object(given)) {
        json_object_foreach((json_t *)given, key, value)
        {
            if (!*key || strchr(key, '=')) {
                json_decref(res);
                return ferry__fail(err, err_cap, FERRY_EINVAL,
                                   "environment variable name '%s' is not valid", key);
            }
            if (json_is_null(value)) {
                json_object_del(res, key); /* explicitly unset: no default either */
            } else if (json_is_array(value) || json_is_object(value)) {
                json_decref(res);
                /* no value in the message: environment values may be secrets */
                return ferry__fail(err, err_cap, FERRY_EINVAL,
                                   "environment variable '%s': expected a string", key);
            } else {
                char *text = ferry__atom_text(value, 0);
                json_object_set_new(res, key, json_string(text));
                free(text);
            }
        }
    }
    for (size_t i = 0; i < step->n_env; i++) {
        const ferry_env_def *e = &step->env[i];
        if (!e->optional && !json_object_get(res, e->name)) {
            json_decref(res);
            return ferry__fail(err, err_cap, FERRY_EINVAL,
                               "environment variable '%s': No value supplied (it is required and "
                               "has no default)",
                               e->name);
        }
    }
    *resolved = res;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

/* Python's str.format on one word of a pass-as template: {name}, {value},
 * {v}; {{ and }} are literal braces; anything else is left as written. */
static char *ferry__format_word(const char *word, const char *name, const char *value)
{
    ferry__buf b = {0};
    for (const char *p = word; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            ferry__buf_add(&b, p, 1);
            p += 2;
            continue;
        }
        const char *close = p[0] == '{' ? strchr(p, '}') : NULL;
        if (close) {
            size_t n = (size_t)(close - p - 1);
            const char *sub = NULL;
            if (n == 4 && !strncmp(p + 1, "name", 4))
                sub = name;
            else if ((n == 5 && !strncmp(p + 1, "value", 5)) || (n == 1 && p[1] == 'v'))
                sub = value;
            if (sub) {
                ferry__buf_puts(&b, sub);
                p = close + 1;
                continue;
            }
        }
        ferry__buf_add(&b, p, 1);
        p++;
    }
    return ferry__buf_take(&b);
}

/* Which template a value is passed with; NULL: the parameter is left out.
 * Flags follow valohai: with pass-true-as or pass-false-as set, those two
 * decide (an unset one passes nothing); otherwise true passes pass-as or
 * --{name}, false passes nothing. */
static const char *ferry__pass_template(const ferry_param_def *p, const json_t *value)
{
    if (!value || json_is_null(value))
        return NULL;
    if (p->type == FERRY_PARAM_FLAG) {
        int on = json_is_true(value);
        if (p->pass_true_as || p->pass_false_as) {
            const char *t = on ? p->pass_true_as : p->pass_false_as;
            return t && *t ? t : NULL;
        }
        if (!on)
            return NULL;
        return p->pass_as ? p->pass_as : "--{name}";
    }
    return p->pass_as ? p->pass_as : "--{name}={value}";
}

/* Append one shell word, quoted, space-separated from the previous one. */
static void ferry__emit_word(ferry__buf *out, const char *word)
{
    char *q = ferry_shell_quote(word);
    if (out->len)
        ferry__buf_puts(out, " ");
    ferry__buf_puts(out, q);
    free(q);
}

/* Each word of the template, formatted with one value. */
static void ferry__emit_template(ferry__buf *out, const char *tmpl, const char *name,
                                 const char *value)
{
    const char *p = tmpl;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return;
        const char *end = p;
        while (*end && !isspace((unsigned char)*end))
            end++;
        char *word = ferry_asprintf("%.*s", (int)(end - p), p);
        char *formatted = ferry__format_word(word, name, value);
        ferry__emit_word(out, formatted);
        free(formatted);
        free(word);
        p = end;
    }
}

/* A list joined by the parameter's separator ("1000-500-250"). */
static char *ferry__joined_values(const ferry_param_def *p, const json_t *list)
{
    ferry__buf b = {0};
    size_t i;
    json_t *atom;
    json_array_foreach(list, i, atom)
    {
        char *t = ferry__atom_text(atom, 1);
        if (i)
            ferry__buf_puts(&b, p->multiple_separator ? p->multiple_separator : ",");
        ferry__buf_puts(&b, t);
        free(t);
    }
    return ferry__buf_take(&b);
}

/* One value as the command shows it: the default as the file writes it
 * where valohai-yaml passes that text on (default_text), else as Python
 * prints it. */
static char *ferry__value_text(const ferry_param_def *p, const json_t *value)
{
    if (json_is_array(value))
        return ferry__joined_values(p, value);
    if (p->default_text && json_is_real(value) && json_is_real(p->default_value) &&
        json_real_value(value) == json_real_value(p->default_value))
        return ferry_strdup(p->default_text);
    return ferry__atom_text(value, 1);
}

/* The shell words that pass one parameter (none when it is unset). */
static void ferry__emit_param(ferry__buf *out, const ferry_param_def *p, const json_t *value)
{
    const char *tmpl = ferry__pass_template(p, value);
    if (!tmpl)
        return;
    if (json_is_array(value) && p->multiple == FERRY_MULTIPLE_REPEAT) {
        size_t i;
        json_t *atom;
        json_array_foreach(value, i, atom)
        {
            char *t = ferry__atom_text(atom, 1);
            ferry__emit_template(out, tmpl, p->name, t);
            free(t);
        }
        return;
    }
    if (json_is_array(value) && json_array_size(value) == 0)
        return; /* no `--x=` for an empty list */
    char *t = ferry__value_text(p, value);
    ferry__emit_template(out, tmpl, p->name, t);
    free(t);
}

static const json_t *ferry__value_of(const json_t *resolved, const char *name)
{
    const json_t *v = json_is_object(resolved) ? json_object_get(resolved, name) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

/* The replacement for "{key}", or NULL to leave it as written. */
static char *ferry__placeholder(const ferry_step *s, const json_t *resolved, const char *key)
{
    ferry__buf out = {0};
    if (!strcmp(key, "parameters") || !strcmp(key, "params")) {
        for (size_t i = 0; i < s->n_params; i++)
            if (s->params[i].name)
                ferry__emit_param(&out, &s->params[i],
                                  ferry__value_of(resolved, s->params[i].name));
        return ferry__buf_take(&out);
    }
    if (!strncmp(key, "parameter:", 10)) {
        const ferry_param_def *p = ferry__find_param(s, key + 10);
        if (!p)
            return NULL;
        ferry__emit_param(&out, p, ferry__value_of(resolved, p->name));
        return ferry__buf_take(&out);
    }
    if (!strncmp(key, "parameter-value:", 16)) {
        const ferry_param_def *p = ferry__find_param(s, key + 16);
        const json_t *v = p ? ferry__value_of(resolved, p->name) : NULL;
        if (!v)
            return NULL;
        /* valohai-yaml: quote(str(value)), a list as Python prints it */
        char *t = json_is_array(v) ? ferry__python_list(v) : ferry__value_text(p, v);
        char *q = ferry_shell_quote(t);
        free(t);
        return q;
    }
    return NULL;
}

/* Expand {...} as valohai's /{(.+?)}/ does: the shortest non-empty text up to
 * a '}' on the same line; what isn't a known placeholder stays, so shell
 * syntax such as ${HOME} passes through. */
static char *ferry__expand(const ferry_step *s, const json_t *resolved, const char *cmd)
{
    ferry__buf out = {0};
    const char *p = cmd;
    while (*p) {
        const char *close = NULL;
        if (p[0] == '{' && p[1] && p[1] != '\n')
            for (const char *q = p + 2; *q && *q != '\n' && !close; q++)
                if (*q == '}')
                    close = q;
        if (!close) {
            ferry__buf_add(&out, p, 1);
            p++;
            continue;
        }
        char *key = ferry_asprintf("%.*s", (int)(close - p - 1), p + 1);
        char *sub = ferry__placeholder(s, resolved, key);
        if (sub)
            ferry__buf_puts(&out, sub);
        else
            ferry__buf_add(&out, p, (size_t)(close - p + 1));
        free(sub);
        free(key);
        p = close + 1;
    }
    return ferry__buf_take(&out);
}

/* One command per line of one script: every command runs, in order, in
 * one shell session (a `cd` or `export` carries over to the next), and the
 * script's status is the last command's, as on Valohai; a failing command
 * in the middle does not stop the rest. A first command "#!..." is simply
 * the script's first line. */
char *ferry_step_build_command(const ferry_step *step, const json_t *resolved)
{
    ferry__buf out = {0};
    int first = 1;
    for (size_t i = 0; i < step->n_commands; i++) {
        char *cmd = ferry__strip(ferry__expand(step, resolved, step->commands[i]));
        if (*cmd) { /* an empty command is an empty line: nothing to keep */
            if (!first)
                ferry__buf_puts(&out, "\n");
            ferry__buf_puts(&out, cmd);
            first = 0;
        }
        free(cmd);
    }
    return ferry__buf_take(&out);
}
