/* s3-storage: the XML S3 answers with, read with libxml2.
 *
 * The SDK's ferry/xml.h reads them: elements by local name, whatever their
 * namespace (AWS puts its documents in http://s3.amazonaws.com/doc/
 * 2006-03-01/, others do not), fetching nothing and expanding no entity, so
 * a hostile server cannot make it read files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/xml.h"

#include "s3.h"

void s3_xml_init(void)
{
    ferry_xml_init();
}

int s3_xml_error(const char *body, size_t len, char *code, size_t code_cap, char *message,
                 size_t message_cap, char *request_id, size_t request_id_cap)
{
    /* Cheap test first: most 200 bodies are not errors, and some are big. */
    int maybe = body != NULL && memmem(body, len, "<Error", 6) != NULL;
    return ferry_xml_error(maybe ? body : NULL, maybe ? len : 0, "Error", "Error/RequestId", code,
                           code_cap, message, message_cap, request_id, request_id_cap);
}

char *s3_xml_text(const char *body, size_t len, const char *name)
{
    xmlDocPtr doc = ferry_xml_parse(body, len);
    if (doc == NULL)
        return NULL;
    xmlNodePtr n = ferry_xml_find(xmlDocGetRootElement(doc), name);
    char *t = n ? ferry_xml_text(n) : NULL;
    xmlFreeDoc(doc);
    return t;
}

/* %XX decoding of a key listed with encoding-type=url; the length decoded
 * (a %00 makes it longer than the C string). */
static size_t s3_url_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        unsigned v;
        if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            p += 2;
        } else if (*p == '+') {
            *o++ = ' '; /* S3 writes spaces as '+' in this encoding */
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return (size_t)(o - s);
}

static int s3_page_add(s3_list_page *page, char *key, int64_t size)
{
    char **keys = realloc(page->keys, (page->n + 1) * sizeof(*keys));
    if (keys)
        page->keys = keys;
    int64_t *sizes = realloc(page->sizes, (page->n + 1) * sizeof(*sizes));
    if (sizes)
        page->sizes = sizes;
    if (keys == NULL || sizes == NULL) {
        free(key);
        return FERRY_ENOMEM;
    }
    page->keys[page->n] = key;
    page->sizes[page->n++] = size;
    return 0;
}

static int s3_page_contents(s3_list_page *page, xmlNodePtr root, int url_encoded)
{
    for (xmlNodePtr c = root->children; c; c = c->next) {
        if (!ferry_xml_named(c, "Contents"))
            continue;
        xmlNodePtr k = ferry_xml_child(c, "Key"), sz = ferry_xml_child(c, "Size");
        if (k == NULL)
            return FERRY_EPROTO;
        char *key = ferry_xml_text(k);
        char *size_text = sz ? ferry_xml_text(sz) : NULL;
        if (key == NULL)
            return FERRY_ENOMEM;
        /* A key cut short by a %00, or a size that is not one, would list
         * another object than the one there, or a negative size. */
        size_t key_len = url_encoded ? s3_url_decode(key) : strlen(key);
        char *end = NULL;
        errno = 0;
        int64_t size = size_text ? strtoll(size_text, &end, 10) : 0;
        int bad = key_len != strlen(key) ||
                  (size_text && (errno != 0 || end == size_text || *end != '\0' || size < 0));
        free(size_text);
        if (bad) {
            free(key);
            return FERRY_EPROTO;
        }
        int rc = s3_page_add(page, key, size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int s3_xml_list(const char *body, size_t len, s3_list_page *page)
{
    memset(page, 0, sizeof(*page));
    xmlDocPtr doc = ferry_xml_parse(body, len);
    if (doc == NULL)
        return FERRY_EPROTO;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    int rc = root && ferry_xml_named(root, "ListBucketResult") ? 0 : FERRY_EPROTO;
    if (rc == 0) {
        char enc[16], truncated[16];
        ferry_xml_copy(root, "EncodingType", enc, sizeof(enc));
        ferry_xml_copy(root, "IsTruncated", truncated, sizeof(truncated));
        page->truncated = strcmp(truncated, "true") == 0;
        xmlNodePtr tok = ferry_xml_child(root, "NextContinuationToken");
        if (tok && (page->next_token = ferry_xml_text(tok)) == NULL)
            rc = FERRY_ENOMEM;
        if (rc == 0)
            rc = s3_page_contents(page, root, strcmp(enc, "url") == 0);
    }
    xmlFreeDoc(doc);
    if (rc != 0)
        s3_list_page_free(page);
    return rc;
}

void s3_list_page_free(s3_list_page *page)
{
    for (size_t i = 0; i < page->n; i++)
        free(page->keys[i]);
    free(page->keys);
    free(page->sizes);
    free(page->next_token);
    memset(page, 0, sizeof(*page));
}
