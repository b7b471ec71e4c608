/* ferry plugin SDK: reading cloud APIs' XML with libxml2 (ferry/xml.h). */
#include "ferry/xml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

void ferry_xml_init(void)
{
    xmlInitParser(); /* libxml2 wants it once before parsing on several threads */
}

xmlDocPtr ferry_xml_parse(const char *body, size_t len)
{
    if (body == NULL || len == 0 || len > (size_t)INT32_MAX)
        return NULL;
    /* Without XML_PARSE_NOENT entities stay references: nothing is read
     * from outside the body, and NONET forbids fetching anything. */
    return xmlReadMemory(body, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

int ferry_xml_named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

xmlNodePtr ferry_xml_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (ferry_xml_named(c, name))
            return c;
    return NULL;
}

xmlNodePtr ferry_xml_path(xmlNodePtr parent, const char *path)
{
    char part[64];
    for (const char *p = path; parent && *p;) {
        size_t n = strcspn(p, "/");
        snprintf(part, sizeof(part), "%.*s", (int)n, p);
        parent = ferry_xml_child(parent, part);
        p += n + (p[n] == '/');
    }
    return parent;
}

xmlNodePtr ferry_xml_find(xmlNodePtr n, const char *name)
{
    for (; n; n = n->next) {
        if (ferry_xml_named(n, name))
            return n;
        xmlNodePtr c = ferry_xml_find(n->children, name);
        if (c)
            return c;
    }
    return NULL;
}

char *ferry_xml_text(xmlNodePtr n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

void ferry_xml_copy(xmlNodePtr parent, const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    xmlNodePtr n = ferry_xml_path(parent, path);
    if (n == NULL)
        return;
    xmlChar *t = xmlNodeGetContent(n);
    snprintf(buf, cap, "%s", t ? (const char *)t : "");
    xmlFree(t);
}

/* The element at `path` from the document: its first name is the root's. */
static xmlNodePtr xml__doc_path(xmlDocPtr doc, const char *path)
{
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    size_t n = strcspn(path, "/");
    if (root == NULL || root->type != XML_ELEMENT_NODE || strlen((const char *)root->name) != n ||
        strncmp((const char *)root->name, path, n) != 0)
        return NULL;
    return ferry_xml_path(root, path + n + (path[n] == '/'));
}

int ferry_xml_error(const char *body, size_t len, const char *error_path,
                    const char *request_id_path, char *code, size_t code_cap, char *message,
                    size_t message_cap, char *request_id, size_t request_id_cap)
{
    if (code_cap)
        code[0] = '\0';
    if (message_cap)
        message[0] = '\0';
    if (request_id_cap)
        request_id[0] = '\0';
    xmlDocPtr doc = ferry_xml_parse(body, len);
    xmlNodePtr e = xml__doc_path(doc, error_path);
    if (e) {
        ferry_xml_copy(e, "Code", code, code_cap);
        ferry_xml_copy(e, "Message", message, message_cap);
        xmlNodePtr rid = xml__doc_path(doc, request_id_path);
        if (rid)
            ferry_xml_copy(rid, "", request_id, request_id_cap);
    }
    xmlFreeDoc(doc);
    return e != NULL;
}
