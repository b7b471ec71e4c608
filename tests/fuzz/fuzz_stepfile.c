/* Fuzz: step files (ferry.yaml / valohai.yaml, lib/stepfile/).
 *
 * Each input is parsed under both names (the name says which schema
 * applies), then every step it holds is resolved with its defaults and its
 * command built: what ferryd does with a snapshot's step file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "stepfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz__use(const ferry_stepfile *sf)
{
    free(ferry_stepfile_step_names(sf));
    for (size_t i = 0; i < sf->n_steps; i++) {
        const ferry_step *step = &sf->steps[i];
        char err[512];
        json_t *params = NULL, *inputs = NULL, *env = NULL;
        if (ferry_step_resolve_parameters(step, NULL, &params, err, sizeof(err)) == 0) {
            free(ferry_step_build_command(step, params));
            json_decref(params);
        }
        if (ferry_step_resolve_inputs(step, NULL, &inputs, err, sizeof(err)) == 0)
            json_decref(inputs);
        if (ferry_step_resolve_env(step, NULL, &env, err, sizeof(err)) == 0)
            json_decref(env);
        if (ferry_stepfile_find(sf, step->name) == NULL)
            abort(); /* every step parsed is found by its name */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"ferry.yaml", "valohai.yaml"};
    for (size_t n = 0; n < 2; n++) {
        ferry_stepfile *sf = NULL;
        char err[512];
        if (ferry_stepfile_parse_buffer(names[n], (const char *)data, size, &sf, err,
                                        sizeof(err)) == 0) {
            fuzz__use(sf);
            ferry_stepfile_free(sf);
        }
    }
    return 0;
}
