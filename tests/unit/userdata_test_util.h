/*
 * userdata_test_util.h: helpers of the User-Data reader tests (test_userdata.c,
 * test_userdata_errors.c): a refused document must leave the output zeroed.
 */
#ifndef USERDATA_TEST_UTIL_H
#define USERDATA_TEST_UTIL_H

#include <string.h>

#include "ims_userdata.h"

static inline void assert_zeroed(const ims_subscription *s)
{
    ims_subscription zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(s, &zero, sizeof zero);
}

static inline void expect_parse_error(const char *xml, const char *needle)
{
    ims_subscription s;
    char err[256] = "";
    memset(&s, 0xa5, sizeof s);   /* the reader must zero it, whatever it held */
    int rc = ims_userdata_parse(xml, strlen(xml), &s, err, sizeof err);
    if (rc != -1)
        fail_msg("expected failure mentioning \"%s\", got rc=%d", needle, rc);
    assert_true(err[0] != '\0');
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    assert_zeroed(&s);
}

#define HEAD "<?xml version=\"1.0\"?>\n<IMSSubscription>\n<PrivateID>a@ims.lab</PrivateID>\n<ServiceProfile>\n"
#define TAIL "</ServiceProfile>\n</IMSSubscription>\n"
#define PI_OK "<PublicIdentity><Identity>sip:a@ims.lab</Identity></PublicIdentity>\n"

#endif
