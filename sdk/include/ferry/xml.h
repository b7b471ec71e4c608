/* ferry plugin SDK: reading the XML that cloud APIs answer with (libxml2).
 *
 * AWS's APIs answer in XML: EC2's Query API, S3 and every S3-compatible
 * server. Their documents are read alike: elements are matched by local
 * name, whatever their namespace (AWS puts its documents in one, others do
 * not), and an answer is never trusted: the parser fetches nothing
 * (XML_PARSE_NONET), expands no entity into the tree and prints nothing, so
 * a hostile server cannot make a plugin read files or fill its log.
 *
 * A plugin that includes this header links libxml2 (ferry-sdk.pc requires
 * libxml-2.0).
 */
#ifndef FERRY_XML_H
#define FERRY_XML_H

#include <stddef.h>

#include <libxml/tree.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Once before parsing on several threads (idempotent); at a plugin's init. */
void ferry_xml_init(void);
/* A body as a document, or NULL (empty, over 2 GiB, or not XML). Free it
 * with xmlFreeDoc(). */
xmlDocPtr ferry_xml_parse(const char *body, size_t len);

/* Whether `n` is an element of local name `name`. */
int ferry_xml_named(xmlNodePtr n, const char *name);
/* The first child element of `parent` (may be NULL) named `name`, or NULL. */
xmlNodePtr ferry_xml_child(xmlNodePtr parent, const char *name);
/* The element at `path` below `parent`: child names joined with '/'
 * ("instanceState/name"), each a direct child, so that a nested list's
 * items never answer for their parent. NULL when one is missing. */
xmlNodePtr ferry_xml_path(xmlNodePtr parent, const char *path);
/* The first element named `name` among `n`, its next siblings and all
 * their descendants (depth first), or NULL. */
xmlNodePtr ferry_xml_find(xmlNodePtr n, const char *name);

/* The text of `n`, malloc'd ("" for an empty element); NULL when out of
 * memory. */
char *ferry_xml_text(xmlNodePtr n);
/* The text at `path` below `parent` into `buf`, cut to fit; "" when absent. */
void ferry_xml_copy(xmlNodePtr parent, const char *path, char *buf, size_t cap);

/* An error document: `error_path` names its error element from the root
 * ("Error" for S3, "Response/Errors/Error" for EC2), whose Code and Message
 * children are copied; `request_id_path` names the request id the same
 * way ("Error/RequestId"). Each buffer gets "" for what is absent. 1 when
 * the body is such a document, 0 otherwise. */
int ferry_xml_error(const char *body, size_t len, const char *error_path,
                    const char *request_id_path, char *code, size_t code_cap, char *message,
                    size_t message_cap, char *request_id, size_t request_id_cap);

#ifdef __cplusplus
}
#endif

#endif
