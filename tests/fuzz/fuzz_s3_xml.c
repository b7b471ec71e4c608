/* Fuzz: S3's XML answers (plugins/s3-storage s3_xml.c, compiled into the
 * harness, over the SDK's ferry/xml.h): error documents, one element's text
 * (UploadId of a multipart start) and ListObjectsV2 pages. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        s3_xml_init();
        ready = 1;
    }
    const char *body = (const char *)data;
    char code[64], message[256], request_id[64];
    (void)s3_xml_error(body, size, code, sizeof(code), message, sizeof(message), request_id,
                       sizeof(request_id));
    free(s3_xml_text(body, size, "UploadId"));
    s3_list_page page = {0};
    if (s3_xml_list(body, size, &page) == 0)
        for (size_t i = 0; i < page.n; i++)
            if (page.keys[i] == NULL || page.sizes[i] < 0)
                abort(); /* a listed key has a name and a size */
    s3_list_page_free(&page);
    return 0;
}
