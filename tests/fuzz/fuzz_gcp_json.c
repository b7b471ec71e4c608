/* Fuzz: Compute Engine's JSON answers (plugins/gcp gcp_json.c): operations,
 * instances, instance lists, error envelopes and OAuth2 token answers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    gcp_operation op;
    if (gcp_operation_parse(body, size, &op) == 0)
        (void)gcp_operation_error_code(op.error_code);
    gcp_instance in;
    if (gcp_instance_parse(body, size, &in) == 0)
        (void)gcp_state_ending(in.state);
    gcp_instances l = {0};
    (void)gcp_instances_parse(body, size, &l);
    for (size_t i = 0; i < l.n; i++)
        (void)gcp_state_of(l.v[i].status);
    gcp_instances_free(&l);
    char reason[64], message[320];
    if (gcp_error_parse(body, size, reason, sizeof(reason), message, sizeof(message)) == 1) {
        int retry = 0;
        (void)gcp_error_code(reason, 400, &retry);
    }
    /* The token answer is read as a C string. */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *token = NULL;
    long expires = 0;
    ferry_error_detail err = {.struct_size = sizeof(err)};
    if (gcp_token_parse(text, &token, &expires, &err) == 0 && token == NULL)
        abort();
    free(token);
    free(text);
    return 0;
}
