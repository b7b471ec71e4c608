/* ferry plugin SDK: AWS credentials, found the way aws-cli finds them.
 *
 * Every plugin that signs AWS requests (s3-storage, aws) reads its keys
 * through this one chain, so an operator configures them once and in the
 * same way for both. The first source that has them wins:
 *
 *   1. the plugin's settings `access_key_id` and `secret_access_key` (and
 *      `session_token`), or the host's secrets of the same names; setting
 *      only one of the two is an error;
 *   2. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);
 *   3. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials), profile AWS_PROFILE, else AWS_DEFAULT_PROFILE,
 *      else "default".
 *
 * Instance roles (IMDS), SSO and credential_process are not read. `source`
 * says where the keys came from, for a log line; the keys themselves must
 * never reach a log, an error message or a worker.
 */
#ifndef FERRY_AWSCREDS_H
#define FERRY_AWSCREDS_H

#include <stddef.h>

#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_aws_credentials {
    size_t struct_size;
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL when none */
    char source[160];    /* where they came from, never what they are */
} ferry_aws_credentials;

/* Fills `c` from the first source that has keys. `who` names the plugin in
 * messages ("s3-storage: no credentials: ..."), `block` the configuration
 * block for `source` ("the store's settings"). 0, FERRY_ECONFIG (no keys, or
 * half a pair) or FERRY_ENOMEM, with `err` filled. */
int ferry_aws_credentials_load(ferry_aws_credentials *c, ferry_plugin_ctx *ctx,
                               const ferry_host_api *host, const char *who, const char *block,
                               ferry_error_detail *err);
/* Wipes the keys before freeing them; `c` may be zeroed or half filled. */
void ferry_aws_credentials_free(ferry_aws_credentials *c);

#ifdef __cplusplus
}
#endif
#endif
