/* Fuzz: stop-condition expressions (lib/stepfile/conditions.c), which come
 * from users' step files and are evaluated against the metadata their
 * commands print. Each input is an expression, evaluated against metadata
 * of each type; the result is 0, 1 or FERRY_EINVAL, nothing else. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ferry/error.h"
#include "stepfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *metadata, *params;
    if (metadata == NULL) {
        metadata = json_pack("{s:f, s:i, s:s, s:b, s:n, s:[i]}", "loss", 0.25, "epoch", 3, "phase",
                             "train", "done", 0, "none", "list", 1);
        params = json_pack("{s:f, s:s}", "target", 0.3, "mode", "fast");
    }
    char *expr = malloc(size + 1);
    if (expr == NULL)
        return 0;
    memcpy(expr, data, size);
    expr[size] = '\0';
    char why[160];
    int rc = ferry_condition_eval(expr, metadata, params, why, sizeof(why));
    if (rc != 0 && rc != 1 && rc != FERRY_EINVAL)
        abort();
    if (rc == FERRY_EINVAL && why[0] == '\0')
        abort(); /* an expression refused says why */
    /* with no metadata at all, no name has a value */
    rc = ferry_condition_eval(expr, NULL, NULL, NULL, 0);
    if (rc != 0 && rc != 1 && rc != FERRY_EINVAL)
        abort();
    free(expr);
    return 0;
}
