/* s3-storage's ListObjectsV2 reading (s3_xml.c), on answers a hostile or
 * broken server could send (found by tests/fuzz/fuzz_s3_xml): a key that
 * decodes to hold a NUL, a negative or unreadable Size. */
#include "test.h"

#include <string.h>

#include "s3.h"

static int list(const char *contents, s3_list_page *page)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
             "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><EncodingType>url</EncodingType>"
             "<IsTruncated>false</IsTruncated>%s</ListBucketResult>",
             contents);
    return s3_xml_list(body, strlen(body), page);
}

int main(void)
{
    s3_xml_init();
    s3_list_page page;
    CHECK_INT(list("<Contents><Key>p/a%20b+c</Key><Size>12</Size></Contents>"
                   "<Contents><Key>p/d</Key></Contents>",
                   &page),
              0);
    CHECK_INT((int)page.n, 2);
    if (page.n == 2) {
        CHECK_STR(page.keys[0], "p/a b c");
        CHECK_INT((int)page.sizes[0], 12);
        CHECK_INT((int)page.sizes[1], 0);
    }
    s3_list_page_free(&page);
    /* "p/x%00../y" is not the key "p/x": the answer is refused. */
    CHECK_INT(list("<Contents><Key>p/x%00../y</Key><Size>1</Size></Contents>", &page),
              FERRY_EPROTO);
    CHECK_INT((int)page.n, 0);
    CHECK_INT(list("<Contents><Key>p/a</Key><Size>-12</Size></Contents>", &page), FERRY_EPROTO);
    CHECK_INT(list("<Contents><Key>p/a</Key><Size>12kB</Size></Contents>", &page), FERRY_EPROTO);
    CHECK_INT(list("<Contents><Key>p/a</Key><Size></Size></Contents>", &page), FERRY_EPROTO);
    CHECK_INT(list("<Contents><Key>p/a</Key><Size>99999999999999999999</Size></Contents>", &page),
              FERRY_EPROTO);
    s3_list_page_free(&page);
    TEST_MAIN_END();
}
