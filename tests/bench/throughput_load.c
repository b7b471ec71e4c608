/* throughput_load: the load generator of tests/bench/throughput.py.
 *
 * Submits N executions through POST /v1/executions, keeping C requests in
 * flight over kept-alive connections (the SDK's libcurl-on-libuv client), then
 * optionally waits for every one of them through GET .../wait. A Python
 * client spends more CPU per request than ferryd does and shares the same
 * two cores, so it would measure itself.
 *
 *   throughput_load --server URL --snapshot SHA [--step noop] [--project bench]
 *                   [--environment NAME] [--count N] [--concurrency C] [--wait]
 *
 * Prints one JSON object: submitted, submit_seconds, and with --wait,
 * complete, not_complete, first_status_not_complete, last_ended_at (ferryd's
 * clock, Unix seconds) and wait_seconds; start_time is when the first
 * request went out (Unix seconds, same clock).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "ferry/error.h"
#include "ferry/http.h"

typedef struct tl_state {
    uv_loop_t loop;
    ferry_http_client *http;
    const char *server, *snapshot, *step, *project, *environment;
    char *body;
    size_t body_len;
    long count;
    int concurrency;
    int wait;  /* 1: --wait given; 2: in the wait phase */
    long next; /* next index to submit or wait for */
    long done; /* answered requests of the current phase */
    int in_flight;
    char (*ids)[40];
    long complete;
    long not_complete;
    char first_bad[200];
    double last_ended;
    int failed;
} tl_state;

static double tl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "2026-11-26T06:01:58.123Z" as Unix seconds. */
static double tl_parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + ms / 1000.0;
}

static void tl_next(tl_state *s);

static void tl_fail(tl_state *s, const char *what, const ferry_http_response *res)
{
    if (!s->failed)
        fprintf(stderr, "throughput_load: %s: %s HTTP %ld %.300s\n", what,
                res->code ? res->error : "", res->status, res->body ? res->body : "");
    s->failed = 1;
}

static void tl_submitted(void *arg, const ferry_http_response *res)
{
    tl_state *s = arg;
    s->in_flight--;
    json_t *j = NULL;
    if (res->code == 0 && res->status == 201)
        j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (id == NULL || strlen(id) >= sizeof(s->ids[0])) {
        tl_fail(s, "POST /v1/executions", res);
    } else {
        /* Answers come in any order; the order of ids does not matter. */
        strcpy(s->ids[s->done], id);
        s->done++;
    }
    json_decref(j);
    tl_next(s);
}

static void tl_waited(void *arg, const ferry_http_response *res)
{
    tl_state *s = arg;
    s->in_flight--;
    json_t *j = NULL;
    if (res->code == 0 && res->status == 200)
        j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *status = json_string_value(json_object_get(j, "status"));
    if (status == NULL) {
        tl_fail(s, "GET /v1/executions/ID/wait", res);
    } else {
        s->done++;
        if (strcmp(status, "complete") == 0) {
            s->complete++;
            double ended = tl_parse_time(json_string_value(json_object_get(j, "ended_at")));
            if (ended > s->last_ended)
                s->last_ended = ended;
        } else {
            if (s->not_complete++ == 0)
                snprintf(s->first_bad, sizeof(s->first_bad), "%s: %s", status,
                         json_string_value(json_object_get(j, "status_reason"))
                             ? json_string_value(json_object_get(j, "status_reason"))
                             : "");
        }
    }
    json_decref(j);
    tl_next(s);
}

static int tl_start(tl_state *s, int submit)
{
    char url[512];
    const char *headers[] = {"Content-Type: application/json", NULL};
    ferry_http_options o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.headers = headers;
    o.timeout_ms = 700000;
    o.arg = s;
    if (submit) {
        snprintf(url, sizeof(url), "%s/v1/executions", s->server);
        o.method = "POST";
        o.body = s->body;
        o.body_len = s->body_len;
        o.done = tl_submitted;
    } else {
        snprintf(url, sizeof(url), "%s/v1/executions/%s/wait?timeout=600", s->server,
                 s->ids[s->next]);
        o.done = tl_waited;
    }
    o.url = url;
    int rc = ferry_http_request_start(s->http, &o, NULL);
    if (rc < 0) {
        fprintf(stderr, "throughput_load: could not start a request: %s\n", ferry_strerror(rc));
        s->failed = 1;
        return rc;
    }
    s->in_flight++;
    s->next++;
    return 0;
}

/* Keep `concurrency` requests of the current phase in flight. */
static void tl_next(tl_state *s)
{
    int submitting = s->wait != 2;
    while (!s->failed && s->in_flight < s->concurrency && s->next < s->count)
        if (tl_start(s, submitting) < 0)
            break;
    if (s->in_flight == 0 && (s->failed || s->next >= s->count))
        uv_stop(&s->loop);
}

static void tl_usage(void)
{
    fprintf(stderr, "usage: throughput_load --server URL --snapshot SHA [--step noop] "
                    "[--project bench]\n"
                    "                       [--environment NAME] [--count N] [--concurrency C] "
                    "[--wait]\n");
}

static int tl_args(tl_state *s, int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"snapshot", required_argument, NULL, 'S'},
        {"step", required_argument, NULL, 't'},
        {"project", required_argument, NULL, 'p'},
        {"environment", required_argument, NULL, 'e'},
        {"count", required_argument, NULL, 'n'},
        {"concurrency", required_argument, NULL, 'c'},
        {"wait", no_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            s->server = optarg;
            break;
        case 'S':
            s->snapshot = optarg;
            break;
        case 't':
            s->step = optarg;
            break;
        case 'p':
            s->project = optarg;
            break;
        case 'e':
            s->environment = optarg;
            break;
        case 'n':
            s->count = strtol(optarg, NULL, 10);
            break;
        case 'c':
            s->concurrency = (int)strtol(optarg, NULL, 10);
            break;
        case 'w':
            s->wait = 1;
            break;
        default:
            return -1;
        }
    }
    if (s->server == NULL || s->snapshot == NULL || s->count < 1 || s->concurrency < 1 ||
        optind != argc)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static tl_state s = {.step = "noop", .project = "bench", .count = 10000, .concurrency = 8};
    if (tl_args(&s, argc, argv) < 0) {
        tl_usage();
        return 2;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s?}", "project", s.project, "step", s.step,
                             "snapshot", s.snapshot, "environment", s.environment);
    s.body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    s.body_len = strlen(s.body);
    s.ids = calloc((size_t)s.count, sizeof(*s.ids));
    if (s.ids == NULL || uv_loop_init(&s.loop) != 0 || ferry_http_client_new(&s.loop, &s.http) < 0)
        return 1;

    double t0 = tl_now();
    tl_next(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    double t1 = tl_now();
    json_t *out = json_pack("{s:I, s:f, s:f}", "submitted", (json_int_t)s.done, "start_time", t0,
                            "submit_seconds", t1 - t0);
    if (s.wait && !s.failed) {
        s.wait = 2; /* the wait phase */
        s.next = s.done = 0;
        tl_next(&s);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        double t2 = tl_now();
        json_object_set_new(out, "complete", json_integer(s.complete));
        json_object_set_new(out, "not_complete", json_integer(s.not_complete));
        json_object_set_new(out, "first_status_not_complete",
                            s.not_complete ? json_string(s.first_bad) : json_null());
        json_object_set_new(out, "last_ended_at", json_real(s.last_ended));
        json_object_set_new(out, "wait_seconds", json_real(t2 - t1));
    }
    ferry_http_client_close(s.http, NULL, NULL);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(out);
    free(s.body);
    free(s.ids);
    return s.failed ? 1 : 0;
}
