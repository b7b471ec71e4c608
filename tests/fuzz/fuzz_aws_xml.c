/* Fuzz: EC2's XML answers (plugins/aws aws_xml.c over the SDK's
 * ferry/xml.h): error documents and the instances of RunInstances,
 * DescribeInstances and TerminateInstances. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        aws_xml_init();
        ready = 1;
    }
    const char *body = (const char *)data;
    char code[64], message[256], request_id[64];
    if (aws_xml_error(body, size, code, sizeof(code), message, sizeof(message), request_id,
                      sizeof(request_id)) == 1) {
        int retry = 0;
        (void)aws_error_code(code, 400, &retry);
    }
    aws_instances l = {0};
    if (aws_xml_instances(body, size, &l) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            char reason[512];
            aws_reason_text(&l.v[i], reason, sizeof(reason));
            (void)aws_state_ending(l.v[i].state);
            if (memchr(l.v[i].id, '\0', sizeof(l.v[i].id)) == NULL)
                abort(); /* every field is a C string within its buffer */
        }
    }
    aws_instances_free(&l);
    return 0;
}
