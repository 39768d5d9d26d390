/*
 * test_userdata_errors: what the strict Cx User-Data reader (TS 29.228 Annex E, IMSSubscription)
 * refuses, each with a message naming the element: element order and cardinality, unknown and
 * missing elements, bad values, malformed XML, DOCTYPE/entities, size limits. A refused document
 * leaves the output zeroed. Run under the ASan build to check error paths for leaks.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ims_userdata.h"
#include "userdata_test_util.h"

static void test_err_out_of_order(void **state)
{
    (void)state;
    /* Identity before BarringIndication: line 6 holds the offending element. */
    expect_parse_error(HEAD "<PublicIdentity>\n<Identity>sip:a@ims.lab</Identity>\n"
                            "<BarringIndication>1</BarringIndication>\n</PublicIdentity>\n" TAIL,
                       "line 7: ServiceProfile/PublicIdentity: <BarringIndication> out of order");
    /* TriggerPoint after ApplicationServer. */
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority>"
                                  "<ApplicationServer><ServerName>sip:as</ServerName></ApplicationServer>"
                                  "<TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF></TriggerPoint>"
                                  "</InitialFilterCriteria>\n" TAIL,
                       "<TriggerPoint> out of order");
    /* iFC before PublicIdentity inside ServiceProfile. */
    expect_parse_error(HEAD "<InitialFilterCriteria><Priority>1</Priority><ApplicationServer><ServerName>sip:as"
                            "</ServerName></ApplicationServer></InitialFilterCriteria>\n" PI_OK TAIL,
                       "missing <PublicIdentity>");
}

static void test_err_unknown_element(void **state)
{
    (void)state;
    expect_parse_error(HEAD PI_OK "<Bogus/>\n" TAIL, "unknown element <Bogus>");
    /* Two choice members in one SPT. */
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><TriggerPoint>"
                                  "<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group>"
                                  "<Method>INVITE</Method><RequestURI>x</RequestURI></SPT></TriggerPoint>"
                                  "<ApplicationServer><ServerName>sip:as</ServerName></ApplicationServer>"
                                  "</InitialFilterCriteria>\n" TAIL,
                       "too many");
    /* Stray text between elements. */
    expect_parse_error(HEAD PI_OK "junk\n" TAIL, "unexpected text");
}

static void test_err_missing_identity(void **state)
{
    (void)state;
    expect_parse_error(HEAD "<PublicIdentity><BarringIndication>0</BarringIndication></PublicIdentity>\n" TAIL,
                       "missing <Identity>");
    expect_parse_error(HEAD "<PublicIdentity><Identity>  </Identity></PublicIdentity>\n" TAIL,
                       "empty <Identity>");
}

static void test_err_missing_private_id(void **state)
{
    (void)state;
    expect_parse_error("<IMSSubscription><ServiceProfile>" PI_OK "</ServiceProfile></IMSSubscription>",
                       "missing <PrivateID>");
    expect_parse_error("<IMSSubscription><PrivateID>a</PrivateID></IMSSubscription>",
                       "missing <ServiceProfile>");
}

static void test_err_mandatory_ifc_parts(void **state)
{
    (void)state;
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><ApplicationServer><ServerName>sip:as</ServerName>"
                                  "</ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "missing <Priority>");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><ApplicationServer>"
                                  "<DefaultHandling>0</DefaultHandling></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "missing <ServerName>");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><TriggerPoint><SPT>"
                                  "<Group>0</Group><Method>INVITE</Method></SPT></TriggerPoint><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "missing <ConditionTypeCNF>");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><TriggerPoint>"
                                  "<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Method>INVITE</Method></SPT>"
                                  "</TriggerPoint><ApplicationServer><ServerName>sip:as</ServerName>"
                                  "</ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "missing <Group>");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><TriggerPoint>"
                                  "<ConditionTypeCNF>1</ConditionTypeCNF></TriggerPoint><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "missing <SPT>");
}

static void test_err_bad_values(void **state)
{
    (void)state;
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>high</Priority><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "<Priority> is not an integer");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1x</Priority><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "not an integer");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>99999999999</Priority><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "Priority");
    expect_parse_error(HEAD "<PublicIdentity><BarringIndication>yes</BarringIndication>"
                            "<Identity>sip:a</Identity></PublicIdentity>\n" TAIL,
                       "not a boolean");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><TriggerPoint>"
                                  "<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group>"
                                  "<SessionCase>5</SessionCase></SPT></TriggerPoint><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "out of range 0..4");
    expect_parse_error(HEAD "<PublicIdentity><Identity>sip:a<b/></Identity></PublicIdentity>\n" TAIL,
                       "must hold text only");
}

static void test_err_not_well_formed(void **state)
{
    (void)state;
    expect_parse_error(HEAD PI_OK "</ServiceProfile>", "not well-formed");
    expect_parse_error("<IMSSubscription><PrivateID>a & b</PrivateID></IMSSubscription>", "not well-formed");
    /* Undeclared entity: without a DTD there is nothing to expand. */
    expect_parse_error("<IMSSubscription><PrivateID>&foo;</PrivateID></IMSSubscription>", "line 1");
}

static void test_err_encoding_is_quiet(void **state)
{
    (void)state;
    static const char xml[] = "<?xml version=\"1.0\" encoding=\"EUC-JP\"?>\n"
                              "<IMSSubscription><PrivateID>a\xff\xfe\x01" "b</PrivateID></IMSSubscription>";
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) == 2);
    ims_subscription s;
    char err[256] = "";
    int rc = ims_userdata_parse(xml, sizeof xml - 1, &s, err, sizeof err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long printed = ftell(tmp);
    fclose(tmp);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "not well-formed"));
    assert_int_equal(printed, 0);
}

static void test_err_wrong_root(void **state)
{
    (void)state;
    expect_parse_error("<?xml version=\"1.0\"?>\n<Sh-Data><PrivateID>a</PrivateID></Sh-Data>",
                       "root element is <Sh-Data>");
}

static void test_err_doctype(void **state)
{
    (void)state;
    /* Billion laughs: must be refused at the DOCTYPE, before any expansion. */
    expect_parse_error("<?xml version=\"1.0\"?>\n"
                       "<!DOCTYPE IMSSubscription [\n"
                       " <!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n"
                       " <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
                       " <!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
                       " <!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">\n"
                       "]>\n"
                       "<IMSSubscription><PrivateID>&d;</PrivateID><ServiceProfile>" PI_OK
                       "</ServiceProfile></IMSSubscription>",
                       "DOCTYPE");
    /* Refused at the DOCTYPE itself, before the parser reaches the (broken) rest: this shows the
     * SAX hook stops parsing there, so no entity declaration is ever processed. */
    expect_parse_error("<!DOCTYPE x [<!ENTITY a \"b\">]>\n<IMSSubscription><unclosed>", "DOCTYPE");
    /* External entity (XXE). */
    expect_parse_error("<!DOCTYPE IMSSubscription SYSTEM \"file:///etc/passwd\">\n"
                       "<IMSSubscription><PrivateID>a</PrivateID></IMSSubscription>",
                       "DOCTYPE");
}

static void test_err_size_and_empty(void **state)
{
    (void)state;
    ims_subscription s;
    char err[256] = "";
    size_t big = 1024 * 1024 + 1;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, ' ', big);
    assert_int_equal(ims_userdata_parse(buf, big, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "too large"));
    assert_zeroed(&s);
    free(buf);

    err[0] = '\0';
    assert_int_equal(ims_userdata_parse("", 0, &s, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_zeroed(&s);
}

/* Errors deep in the second profile must free the first one (ASan checks the leak). */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_out_of_order),
        cmocka_unit_test(test_err_unknown_element),
        cmocka_unit_test(test_err_missing_identity),
        cmocka_unit_test(test_err_missing_private_id),
        cmocka_unit_test(test_err_mandatory_ifc_parts),
        cmocka_unit_test(test_err_bad_values),
        cmocka_unit_test(test_err_not_well_formed),
        cmocka_unit_test(test_err_encoding_is_quiet),
        cmocka_unit_test(test_err_wrong_root),
        cmocka_unit_test(test_err_doctype),
        cmocka_unit_test(test_err_size_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
