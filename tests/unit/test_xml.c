/* The SDK's XML reading (sdk/src/xml.c), which the aws and s3-storage
 * plugins share: names matched whatever the namespace, paths of direct
 * children only, error documents of both shapes, and answers that must not
 * make the parser read a file or fetch anything. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#include "ferry/xml.h"

static const char *doc_text = "<DescribeResponse xmlns=\"http://ec2.amazonaws.com/doc/\">"
                              "<requestId>r-1</requestId>"
                              "<item><id>outer</id><groupSet><item><id>inner</id></item>"
                              "</groupSet><state><name>running</name></state></item>"
                              "<empty/>"
                              "</DescribeResponse>";

static void test_paths(void)
{
    xmlDocPtr doc = ferry_xml_parse(doc_text, strlen(doc_text));
    CHECK(doc != NULL);
    xmlNodePtr root = xmlDocGetRootElement(doc);
    CHECK(ferry_xml_named(root, "DescribeResponse")); /* the namespace does not count */
    xmlNodePtr item = ferry_xml_child(root, "item");
    CHECK(item != NULL);
    CHECK(ferry_xml_child(root, "id") == NULL); /* only direct children */
    CHECK(ferry_xml_child(NULL, "id") == NULL);

    char buf[32];
    ferry_xml_copy(item, "id", buf, sizeof(buf));
    CHECK_STR(buf, "outer"); /* not the group's item */
    ferry_xml_copy(item, "state/name", buf, sizeof(buf));
    CHECK_STR(buf, "running");
    ferry_xml_copy(item, "state/nothing", buf, sizeof(buf));
    CHECK_STR(buf, "");
    ferry_xml_copy(item, "groupSet/item/id", buf, 4);
    CHECK_STR(buf, "inn"); /* cut to fit */
    ferry_xml_copy(item, "id", buf, 0);
    CHECK(ferry_xml_path(item, "") == item);

    /* find: depth first, descendants included. */
    xmlNodePtr inner = ferry_xml_find(ferry_xml_child(item, "groupSet"), "id");
    char *t = inner ? ferry_xml_text(inner) : NULL;
    CHECK_STR(t, "inner");
    free(t);
    t = ferry_xml_text(ferry_xml_find(root, "empty"));
    CHECK_STR(t, "");
    free(t);
    CHECK(ferry_xml_find(root, "absent") == NULL);
    xmlFreeDoc(doc);

    CHECK(ferry_xml_parse(NULL, 0) == NULL);
    CHECK(ferry_xml_parse("", 0) == NULL);
    CHECK(ferry_xml_parse("not <xml", 8) == NULL);
}

static void test_errors(void)
{
    char code[32], msg[16], rid[32];
    const char *s3 = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
                     "<Message>The specified key does not exist.</Message>"
                     "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
    CHECK_INT(ferry_xml_error(s3, strlen(s3), "Error", "Error/RequestId", code, sizeof(code), msg,
                              sizeof(msg), rid, sizeof(rid)),
              1);
    CHECK_STR(code, "NoSuchKey");
    CHECK_STR(msg, "The specified k"); /* cut to fit */
    CHECK_STR(rid, "4442587FB7D0A2F9");

    const char *ec2 = "<Response><Errors><Error><Code>AuthFailure</Code></Error></Errors>"
                      "<RequestID>ea96</RequestID></Response>";
    CHECK_INT(ferry_xml_error(ec2, strlen(ec2), "Response/Errors/Error", "Response/RequestID", code,
                              sizeof(code), msg, sizeof(msg), rid, sizeof(rid)),
              1);
    CHECK_STR(code, "AuthFailure");
    CHECK_STR(msg, ""); /* absent */
    CHECK_STR(rid, "ea96");
    /* The other shape is not an error document of this one. */
    CHECK_INT(ferry_xml_error(s3, strlen(s3), "Response/Errors/Error", "Response/RequestID", code,
                              sizeof(code), msg, sizeof(msg), rid, sizeof(rid)),
              0);
    CHECK_STR(code, "");
    CHECK_STR(rid, "");
    CHECK_INT(ferry_xml_error("<Errors/>", 9, "Error", "Error/RequestId", code, sizeof(code), msg,
                              sizeof(msg), rid, sizeof(rid)),
              0);
    CHECK_INT(ferry_xml_error("<html>busy</html>", 17, "Error", "Error/RequestId", code,
                              sizeof(code), msg, sizeof(msg), rid, sizeof(rid)),
              0);
    CHECK_INT(ferry_xml_error(NULL, 0, "Error", "Error/RequestId", code, sizeof(code), msg,
                              sizeof(msg), rid, sizeof(rid)),
              0);
}

/* An answer that names a local file as an external entity, or a URL as
 * its DTD: the text never holds the file, and nothing is fetched. */
static void test_hostile(void)
{
    char path[] = "/tmp/ferry-test-xml-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "SECRET", 6) == 6);
    close(fd);
    char body[512];
    snprintf(body, sizeof(body),
             "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM \"file://%s\">]>"
             "<Error><Code>&x;</Code><Message>m</Message></Error>",
             path);
    char code[64], msg[16], rid[16];
    ferry_xml_error(body, strlen(body), "Error", "Error/RequestId", code, sizeof(code), msg,
                    sizeof(msg), rid, sizeof(rid));
    CHECK(strstr(code, "SECRET") == NULL);
    unlink(path);

    const char *dtd = "<?xml version=\"1.0\"?><!DOCTYPE Error SYSTEM \"http://192.0.2.1/x.dtd\">"
                      "<Error><Code>C</Code></Error>";
    CHECK_INT(ferry_xml_error(dtd, strlen(dtd), "Error", "Error/RequestId", code, sizeof(code), msg,
                              sizeof(msg), rid, sizeof(rid)),
              1);
    CHECK_STR(code, "C");
}

int main(void)
{
    ferry_xml_init();
    test_paths();
    test_errors();
    test_hostile();
    TEST_MAIN_END();
}
