/* s3-storage: the XML S3 answers with, read with libxml2.
 *
 * Elements are matched by local name, whatever their namespace (AWS puts
 * its documents in http://s3.amazonaws.com/doc/2006-03-01/, others do not).
 * The parser never fetches anything (XML_PARSE_NONET) and never expands
 * entities into the tree, so a hostile server cannot make it read files.
 */
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3.h"

void s3_xml_init(void)
{
    /* Idempotent; libxml2 wants it once before parsing on several threads. */
    xmlInitParser();
}

static xmlDocPtr s3_xml_parse(const char *body, size_t len)
{
    if (body == NULL || len == 0 || len > (size_t)INT32_MAX)
        return NULL;
    return xmlReadMemory(body, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static int s3_named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr s3_find(xmlNodePtr n, const char *name)
{
    for (; n; n = n->next) {
        if (s3_named(n, name))
            return n;
        xmlNodePtr c = s3_find(n->children, name);
        if (c)
            return c;
    }
    return NULL;
}

static xmlNodePtr s3_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (s3_named(c, name))
            return c;
    return NULL;
}

/* The element's text, malloc'd ("" for an empty element). */
static char *s3_text_of(xmlNodePtr n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

static void s3_copy_child(xmlNodePtr parent, const char *name, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    xmlNodePtr c = s3_child(parent, name);
    if (c == NULL)
        return;
    char *t = s3_text_of(c);
    if (t)
        snprintf(buf, cap, "%s", t);
    free(t);
}

int s3_xml_error(const char *body, size_t len, char *code, size_t code_cap, char *message,
                 size_t message_cap, char *request_id, size_t request_id_cap)
{
    if (code_cap)
        code[0] = '\0';
    if (message_cap)
        message[0] = '\0';
    if (request_id_cap)
        request_id[0] = '\0';
    /* Cheap test first: most 200 bodies are not errors, and some are big. */
    if (body == NULL || memmem(body, len, "<Error", 6) == NULL)
        return 0;
    xmlDocPtr doc = s3_xml_parse(body, len);
    if (doc == NULL)
        return 0;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    int is_error = root && s3_named(root, "Error");
    if (is_error) {
        s3_copy_child(root, "Code", code, code_cap);
        s3_copy_child(root, "Message", message, message_cap);
        s3_copy_child(root, "RequestId", request_id, request_id_cap);
    }
    xmlFreeDoc(doc);
    return is_error;
}

char *s3_xml_text(const char *body, size_t len, const char *name)
{
    xmlDocPtr doc = s3_xml_parse(body, len);
    if (doc == NULL)
        return NULL;
    xmlNodePtr n = s3_find(xmlDocGetRootElement(doc), name);
    char *t = n ? s3_text_of(n) : NULL;
    xmlFreeDoc(doc);
    return t;
}

/* %XX decoding of a key listed with encoding-type=url. */
static void s3_url_decode(char *s)
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
        if (!s3_named(c, "Contents"))
            continue;
        xmlNodePtr k = s3_child(c, "Key"), sz = s3_child(c, "Size");
        if (k == NULL)
            return FERRY_EPROTO;
        char *key = s3_text_of(k);
        char *size_text = sz ? s3_text_of(sz) : NULL;
        if (key == NULL)
            return FERRY_ENOMEM;
        if (url_encoded)
            s3_url_decode(key);
        int64_t size = size_text ? strtoll(size_text, NULL, 10) : 0;
        free(size_text);
        int rc = s3_page_add(page, key, size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int s3_xml_list(const char *body, size_t len, s3_list_page *page)
{
    memset(page, 0, sizeof(*page));
    xmlDocPtr doc = s3_xml_parse(body, len);
    if (doc == NULL)
        return FERRY_EPROTO;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    int rc = root && s3_named(root, "ListBucketResult") ? 0 : FERRY_EPROTO;
    if (rc == 0) {
        char enc[16], truncated[16];
        s3_copy_child(root, "EncodingType", enc, sizeof(enc));
        s3_copy_child(root, "IsTruncated", truncated, sizeof(truncated));
        page->truncated = strcmp(truncated, "true") == 0;
        xmlNodePtr tok = s3_child(root, "NextContinuationToken");
        if (tok && (page->next_token = s3_text_of(tok)) == NULL)
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
