/* Fuzz: the JSON body of POST /v1/executions (core/http/api.c).
 *
 * api__create_fields and api__create_checked read the body and answer
 * through h2o as they go, so the largest pure piece is fuzzed here: the
 * body as JSON, its snapshot's form, and its "step", "parameters" and
 * "inputs" resolved against a step file the way api__create_checked
 * resolves them (over a step of every parameter kind), then the command
 * built from them; "environment_variables" goes through
 * ferry_step_resolve_env too, the resolver of the same step's variables. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stepfile.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz__yaml[] =
    "- step:\n"
    "    name: train\n"
    "    image: python:3.12\n"
    "    command:\n"
    "      - python train.py {parameters}\n"
    "      - echo {parameter:epochs} {parameter-value:lr} {parameter:tags} {nope}\n"
    "    parameters:\n"
    "      - {name: epochs, type: integer, default: 3, min: 1, max: 1000}\n"
    "      - {name: lr, type: float, pass-as: '--lr={v}', default: 0.1, min: 0}\n"
    "      - {name: verbose, type: flag, pass-true-as: -v, pass-false-as: -q}\n"
    "      - {name: mode, type: string, choices: [fast, slow], default: fast}\n"
    "      - {name: tags, type: string, multiple: repeat, optional: true}\n"
    "      - {name: layers, type: integer, multiple: separate, multiple-separator: '-',\n"
    "         default: [3, 2]}\n"
    "      - {name: note, type: string, optional: true}\n"
    "    inputs:\n"
    "      - {name: data, default: 'https://example.com/d.csv'}\n"
    "      - {name: extra, optional: true, filename: x.bin}\n"
    "    environment-variables:\n"
    "      - {name: GREETING, default: hello}\n"
    "      - {name: SECRET, optional: false}\n"
    "    time-limit: 1h\n"
    "- step:\n"
    "    name: plain\n"
    "    image: busybox\n"
    "    command: \"#!/bin/sh\\necho {parameters}\"\n";

static ferry_stepfile *fuzz__sf;

static void fuzz__resolve(const ferry_step *step, const json_t *body)
{
    char err[1024];
    json_t *params = NULL, *inputs = NULL, *env = NULL;
    if (ferry_step_resolve_parameters(step, json_object_get(body, "parameters"), &params, err,
                                      sizeof(err)) == 0) {
        char *cmd = ferry_step_build_command(step, params);
        if (cmd == NULL)
            abort();
        free(cmd);
    }
    (void)ferry_step_resolve_inputs(step, json_object_get(body, "inputs"), &inputs, err,
                                    sizeof(err));
    (void)ferry_step_resolve_env(step, json_object_get(body, "environment_variables"), &env, err,
                                 sizeof(err));
    json_decref(params);
    json_decref(inputs);
    json_decref(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz__sf == NULL) {
        char err[512];
        if (ferry_stepfile_parse_buffer("ferry.yaml", fuzz__yaml, sizeof(fuzz__yaml) - 1, &fuzz__sf,
                                        err, sizeof(err)) != 0)
            abort(); /* the fixture itself must parse: it is freed at exit */
    }
    json_t *body = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    const char *sha = json_string_value(json_object_get(body, "snapshot"));
    if (sha)
        (void)ferry_is_sha256_hex(sha);
    const char *name = json_string_value(json_object_get(body, "step"));
    const ferry_step *step = name ? ferry_stepfile_find(fuzz__sf, name) : NULL;
    /* An unknown step is refused before anything is resolved; a known one,
     * or with no step both, so that every input reaches the resolvers. */
    if (step != NULL)
        fuzz__resolve(step, body);
    else if (name == NULL)
        for (size_t i = 0; i < fuzz__sf->n_steps; i++)
            fuzz__resolve(&fuzz__sf->steps[i], body);
    json_decref(body);
    return 0;
}
