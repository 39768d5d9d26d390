/*
 * test_userdata: Cx User-Data XML (TS 29.228 Annex E, IMSSubscription) writer and strict reader.
 *
 * Covers: round trip of a rich subscription field by field, byte-stable re-serialisation,
 * a hand-written HSS sample (Open IMS / Kamailio style), writer refusals, the enum tables and
 * the deep copy. The reader's refusals of hand-written documents are in test_userdata_errors.c.
 * Run under the ASan build (-DIMS_SANITIZE=ON) to check error paths for leaks.
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

/* ---------------------------------------------------------------------------------------------- */
/* fixtures                                                                                       */

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static ims_spt mk_spt(int group, bool negated, ims_spt_kind kind, const char *value, const char *content)
{
    ims_spt s;
    memset(&s, 0, sizeof s);
    s.group = group;
    s.negated = negated;
    s.kind = kind;
    s.value = xstrdup(value);
    s.content = xstrdup(content);
    return s;
}

/* Two service profiles; every optional element and every SPT kind appears at least once. */
static void build_rich(ims_subscription *sub)
{
    memset(sub, 0, sizeof *sub);
    sub->private_id = strdup("alice@ims.lab");
    sub->n_profiles = 2;
    sub->profiles = calloc(2, sizeof *sub->profiles);

    /* Profile 0: three identities (one barred, one tel: with a display name that needs escaping),
     * media profile, two iFCs. */
    ims_service_profile *sp = &sub->profiles[0];
    sp->n_ids = 3;
    sp->ids = calloc(3, sizeof *sp->ids);
    sp->ids[0].identity = strdup("sip:alice@ims.lab");
    sp->ids[0].display_name = strdup("Alice & Bob <Lab> \"quoted\" caf\xc3\xa9");
    sp->ids[1].identity = strdup("tel:+15551234");
    sp->ids[2].identity = strdup("sip:alice-barred@ims.lab");
    sp->ids[2].barred = true;
    sp->ids[2].identity_type = IMS_IDENTITY_TYPE_DISTINCT_PSI;
    sp->subscribed_media_profile_id = 7;

    sp->n_ifcs = 2;
    sp->ifcs = calloc(2, sizeof *sp->ifcs);
    /* iFC 0: CNF, every SPT kind, negation, registration types, full AS. */
    ims_ifc *f = &sp->ifcs[0];
    f->priority = 10;
    f->has_trigger_point = true;
    f->tp.cnf = true;
    f->tp.n_spts = 6;
    f->tp.spts = calloc(6, sizeof *f->tp.spts);
    f->tp.spts[0] = mk_spt(0, false, IMS_SPT_METHOD, "REGISTER", NULL);
    f->tp.spts[0].registration_type = IMS_REGTYPE_INITIAL | IMS_REGTYPE_DE_REGISTRATION;
    f->tp.spts[1] = mk_spt(1, true, IMS_SPT_REQUEST_URI, "^sip:.*@ims\\.lab$ && <x>", NULL);
    f->tp.spts[2] = mk_spt(1, false, IMS_SPT_SIP_HEADER, "Accept-Contact", "\\+g\\.3gpp\\.icsi-ref");
    f->tp.spts[3] = mk_spt(2, false, IMS_SPT_SIP_HEADER, "P-Asserted-Identity", NULL);
    f->tp.spts[4] = mk_spt(2, false, IMS_SPT_SESSION_CASE, NULL, NULL);
    f->tp.spts[4].session_case = IMS_SESSION_CASE_TERMINATING_UNREGISTERED;
    f->tp.spts[5] = mk_spt(3, true, IMS_SPT_SESSION_DESC, "m", "audio .* RTP/AVP");
    f->as.server_name = strdup("sip:as1.ims.lab:5070");
    f->as.default_handling = IMS_DEFAULT_HANDLING_SESSION_TERMINATED;
    f->as.service_info = strdup("  <svc a=\"1\">&amp; raw</svc>  ");
    f->as.include_register_request = true;
    f->as.include_register_response = true;
    f->profile_part_indicator = 0;

    /* iFC 1: DNF, session description without content, no PPI, plain AS. */
    f = &sp->ifcs[1];
    f->priority = 20;
    f->has_trigger_point = true;
    f->tp.cnf = false;
    f->tp.n_spts = 3;
    f->tp.spts = calloc(3, sizeof *f->tp.spts);
    f->tp.spts[0] = mk_spt(0, false, IMS_SPT_METHOD, "INVITE", NULL);
    f->tp.spts[1] = mk_spt(0, false, IMS_SPT_SESSION_CASE, NULL, NULL);
    f->tp.spts[1].session_case = IMS_SESSION_CASE_ORIGINATING;
    f->tp.spts[2] = mk_spt(1, false, IMS_SPT_SESSION_DESC, "m", NULL);
    f->as.server_name = strdup("sip:mmtel.ims.lab");
    f->profile_part_indicator = -1;

    /* Profile 1: one identity, no media profile, one iFC without trigger point. */
    sp = &sub->profiles[1];
    sp->n_ids = 1;
    sp->ids = calloc(1, sizeof *sp->ids);
    sp->ids[0].identity = strdup("sip:*.lab!.*!@ims.lab");
    sp->ids[0].identity_type = IMS_IDENTITY_TYPE_WILDCARDED_PSI;
    sp->subscribed_media_profile_id = -1;
    sp->n_ifcs = 1;
    sp->ifcs = calloc(1, sizeof *sp->ifcs);
    f = &sp->ifcs[0];
    f->priority = 0;
    f->has_trigger_point = false;
    f->as.server_name = strdup("sip:catchall.ims.lab");
    f->as.include_register_response = true;
    f->profile_part_indicator = 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* field-by-field comparison                                                                      */

static void assert_str_eq(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_string_equal(a, b);
}

static void assert_spt_equal(const ims_spt *a, const ims_spt *b)
{
    assert_int_equal(a->group, b->group);
    assert_int_equal(a->negated, b->negated);
    assert_int_equal(a->kind, b->kind);
    assert_str_eq(a->value, b->value);
    assert_str_eq(a->content, b->content);
    if (a->kind == IMS_SPT_SESSION_CASE)
        assert_int_equal(a->session_case, b->session_case);
    assert_int_equal(a->registration_type, b->registration_type);
}

static void assert_ifc_equal(const ims_ifc *a, const ims_ifc *b)
{
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->has_trigger_point, b->has_trigger_point);
    if (a->has_trigger_point) {
        assert_int_equal(a->tp.cnf, b->tp.cnf);
        assert_int_equal(a->tp.n_spts, b->tp.n_spts);
        for (size_t i = 0; i < a->tp.n_spts; i++)
            assert_spt_equal(&a->tp.spts[i], &b->tp.spts[i]);
    }
    assert_str_eq(a->as.server_name, b->as.server_name);
    assert_int_equal(a->as.default_handling, b->as.default_handling);
    assert_str_eq(a->as.service_info, b->as.service_info);
    assert_int_equal(a->as.include_register_request, b->as.include_register_request);
    assert_int_equal(a->as.include_register_response, b->as.include_register_response);
    assert_int_equal(a->profile_part_indicator, b->profile_part_indicator);
}

static void assert_sp_equal(const ims_service_profile *a, const ims_service_profile *b)
{
    assert_int_equal(a->n_ids, b->n_ids);
    for (size_t i = 0; i < a->n_ids; i++) {
        assert_str_eq(a->ids[i].identity, b->ids[i].identity);
        assert_int_equal(a->ids[i].barred, b->ids[i].barred);
        assert_int_equal(a->ids[i].identity_type, b->ids[i].identity_type);
        assert_str_eq(a->ids[i].display_name, b->ids[i].display_name);
    }
    assert_int_equal(a->subscribed_media_profile_id, b->subscribed_media_profile_id);
    assert_int_equal(a->n_ifcs, b->n_ifcs);
    for (size_t i = 0; i < a->n_ifcs; i++)
        assert_ifc_equal(&a->ifcs[i], &b->ifcs[i]);
}

static void assert_sub_equal(const ims_subscription *a, const ims_subscription *b)
{
    assert_str_eq(a->private_id, b->private_id);
    assert_int_equal(a->n_profiles, b->n_profiles);
    for (size_t i = 0; i < a->n_profiles; i++)
        assert_sp_equal(&a->profiles[i], &b->profiles[i]);
}


/* ---------------------------------------------------------------------------------------------- */
/* writer + round trip                                                                            */

/* build_rich(in), written: the document the writer tests start from. */
static char *write_rich(ims_subscription *in)
{
    char err[256] = "";
    build_rich(in);
    char *xml = ims_userdata_write(in, err, sizeof err);
    if (!xml)
        fail_msg("writing the rich subscription failed: %s", err);
    return xml;
}

static void test_roundtrip_rich(void **state)
{
    (void)state;
    ims_subscription in, out;
    char err[256] = "";
    char *xml = write_rich(&in);
    assert_int_equal(ims_userdata_parse(xml, strlen(xml), &out, err, sizeof err), 0);
    assert_sub_equal(&in, &out);
    free(xml);
    ims_subscription_free(&in);
    ims_subscription_free(&out);
}

static void test_rewrite_is_byte_stable(void **state)
{
    (void)state;
    ims_subscription in, out;
    char err[256] = "";
    char *x1 = write_rich(&in);
    assert_int_equal(ims_userdata_parse(x1, strlen(x1), &out, err, sizeof err), 0);
    char *x2 = ims_userdata_write(&out, err, sizeof err);
    assert_non_null(x2);
    assert_string_equal(x1, x2);
    free(x1);
    free(x2);
    ims_subscription_free(&in);
    ims_subscription_free(&out);
}

static void test_writer_shape_and_escaping(void **state)
{
    (void)state;
    ims_subscription in;
    char *xml = write_rich(&in);
    assert_true(strncmp(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0);
    assert_non_null(strstr(xml, "<IMSSubscription xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""));
    /* & and < escaped; raw "<Lab>" must never reach the document. */
    assert_non_null(strstr(xml, "<DisplayName>Alice &amp; Bob &lt;Lab&gt;"));
    assert_null(strstr(xml, "<Lab>"));
    /* Schema order inside PublicIdentity, DisplayName in Extension/Extension (tPublicIdentityExtension2). */
    const char *bar = strstr(xml, "<BarringIndication>1</BarringIndication>");
    const char *id = strstr(xml, "<Identity>sip:alice-barred@ims.lab</Identity>");
    assert_non_null(bar);
    assert_non_null(id);
    assert_true(bar < id);
    assert_non_null(strstr(xml, "<Extension>\n          <DisplayName>"));
    assert_non_null(strstr(xml, "<IncludeRegisterRequest/>"));
    assert_non_null(strstr(xml, "<RegistrationType>0</RegistrationType>"));
    assert_non_null(strstr(xml, "<RegistrationType>2</RegistrationType>"));
    assert_null(strstr(xml, "<RegistrationType>1</RegistrationType>"));
    assert_non_null(strstr(xml, "<SubscribedMediaProfileId>7</SubscribedMediaProfileId>"));
    /* Only one BarringIndication (only barred identities get one). */
    assert_null(strstr(bar + 1, "<BarringIndication>"));
    free(xml);
    ims_subscription_free(&in);
}

static void expect_write_refused(ims_subscription *sub, const char *needle)
{
    char err[256] = "";
    char *xml = ims_userdata_write(sub, err, sizeof err);
    assert_null(xml);
    assert_true(err[0] != '\0');
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void test_writer_refusals(void **state)
{
    (void)state;
    ims_subscription s;

    build_rich(&s);
    free(s.private_id);
    s.private_id = NULL;
    expect_write_refused(&s, "PrivateID");
    ims_subscription_free(&s);

    build_rich(&s);
    ims_service_profile *saved = s.profiles;
    size_t n = s.n_profiles;
    s.profiles = NULL;
    s.n_profiles = 0;
    expect_write_refused(&s, "ServiceProfile");
    s.profiles = saved;
    s.n_profiles = n;
    ims_subscription_free(&s);

    build_rich(&s);
    s.profiles[1].n_ids = 0;   /* the array is still owned and freed below (n only drives loops) */
    expect_write_refused(&s, "PublicIdentity");
    s.profiles[1].n_ids = 1;
    ims_subscription_free(&s);

    build_rich(&s);
    free(s.profiles[0].ifcs[1].as.server_name);
    s.profiles[0].ifcs[1].as.server_name = NULL;
    expect_write_refused(&s, "ServerName");
    ims_subscription_free(&s);

    build_rich(&s);
    s.profiles[0].ifcs[1].tp.n_spts = 0;
    expect_write_refused(&s, "SPT");
    s.profiles[0].ifcs[1].tp.n_spts = 3;
    ims_subscription_free(&s);

    build_rich(&s);
    s.profiles[0].ifcs[0].tp.spts[4].session_case = 9;
    expect_write_refused(&s, "SessionCase");
    ims_subscription_free(&s);

    build_rich(&s);
    free(s.profiles[0].ids[1].display_name);
    s.profiles[0].ids[1].display_name = strdup("bad \x01 control");
    expect_write_refused(&s, "DisplayName");
    ims_subscription_free(&s);
}

/* ---------------------------------------------------------------------------------------------- */
/* reader: an operator's HSS document                                                             */

/* Shaped like Open IMS FHoSS / Kamailio HSS output: pretty-printed, xsi attributes, comments,
 * textual booleans, a CDATA ServiceInfo, Extensions with content we do not know (skipped),
 * and an SPT in two groups. */
static const char hss_sample[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<IMSSubscription xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
    "xsi:noNamespaceSchemaLocation=\"CxDataType.xsd\">\n"
    "  <!-- generated by the lab HSS -->\n"
    "  <PrivateID>bob@ims.lab</PrivateID>\n"
    "  <ServiceProfile>\n"
    "    <PublicIdentity>\n"
    "      <BarringIndication>false</BarringIndication>\n"
    "      <Identity>\n        sip:bob@ims.lab\n      </Identity>\n"
    "      <Extension>\n"
    "        <IdentityType>0</IdentityType>\n"
    "        <Extension><DisplayName>Bob &amp; Co</DisplayName><AliasIdentityGroupID>g1</AliasIdentityGroupID></Extension>\n"
    "      </Extension>\n"
    "    </PublicIdentity>\n"
    "    <PublicIdentity>\n"
    "      <BarringIndication>1</BarringIndication>\n"
    "      <Identity>tel:+4930123456</Identity>\n"
    "    </PublicIdentity>\n"
    "    <CoreNetworkServicesAuthorization>\n"
    "      <SubscribedMediaProfileId>0</SubscribedMediaProfileId>\n"
    "    </CoreNetworkServicesAuthorization>\n"
    "    <InitialFilterCriteria>\n"
    "      <Priority>0</Priority>\n"
    "      <TriggerPoint>\n"
    "        <ConditionTypeCNF>false</ConditionTypeCNF>\n"
    "        <SPT>\n"
    "          <ConditionNegated>0</ConditionNegated>\n"
    "          <Group>0</Group>\n"
    "          <Group>1</Group>\n"
    "          <Method>MESSAGE</Method>\n"
    "          <Extension/>\n"
    "        </SPT>\n"
    "        <SPT>\n"
    "          <Group>0</Group>\n"
    "          <SessionCase>0</SessionCase>\n"
    "        </SPT>\n"
    "        <SPT>\n"
    "          <ConditionNegated>true</ConditionNegated>\n"
    "          <Group>1</Group>\n"
    "          <SIPHeader><Header>Content-Type</Header><Content>application/im-iscomposing+xml</Content></SIPHeader>\n"
    "        </SPT>\n"
    "        <SPT>\n"
    "          <Group>2</Group>\n"
    "          <Method>REGISTER</Method>\n"
    "          <Extension><RegistrationType>1</RegistrationType><FutureThing>x</FutureThing></Extension>\n"
    "        </SPT>\n"
    "      </TriggerPoint>\n"
    "      <ApplicationServer>\n"
    "        <ServerName>sip:sms.ims.lab:5060</ServerName>\n"
    "        <DefaultHandling>0</DefaultHandling>\n"
    "        <ServiceInfo><![CDATA[<x>a&b</x>]]></ServiceInfo>\n"
    "        <Extension><IncludeRegisterRequest/></Extension>\n"
    "      </ApplicationServer>\n"
    "      <ProfilePartIndicator>1</ProfilePartIndicator>\n"
    "    </InitialFilterCriteria>\n"
    "    <Extension><SharedIFCSetID>5</SharedIFCSetID></Extension>\n"
    "  </ServiceProfile>\n"
    "</IMSSubscription>\n";

static void test_parse_hss_sample(void **state)
{
    (void)state;
    ims_subscription s;
    char err[256] = "";
    int rc = ims_userdata_parse(hss_sample, strlen(hss_sample), &s, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed: %s", err);
    assert_string_equal(s.private_id, "bob@ims.lab");
    assert_int_equal(s.n_profiles, 1);
    ims_service_profile *sp = &s.profiles[0];
    assert_int_equal(sp->n_ids, 2);
    assert_string_equal(sp->ids[0].identity, "sip:bob@ims.lab");   /* token trimmed */
    assert_false(sp->ids[0].barred);
    assert_string_equal(sp->ids[0].display_name, "Bob & Co");
    assert_string_equal(sp->ids[1].identity, "tel:+4930123456");
    assert_true(sp->ids[1].barred);
    assert_null(sp->ids[1].display_name);
    assert_int_equal(sp->subscribed_media_profile_id, 0);
    assert_int_equal(sp->n_ifcs, 1);
    ims_ifc *f = &sp->ifcs[0];
    assert_int_equal(f->priority, 0);
    assert_true(f->has_trigger_point);
    assert_false(f->tp.cnf);
    /* The two-group SPT is expanded into one SPT per group: 5 in total. */
    assert_int_equal(f->tp.n_spts, 5);
    assert_int_equal(f->tp.spts[0].group, 0);
    assert_int_equal(f->tp.spts[1].group, 1);
    assert_string_equal(f->tp.spts[0].value, "MESSAGE");
    assert_string_equal(f->tp.spts[1].value, "MESSAGE");
    assert_int_equal(f->tp.spts[2].kind, IMS_SPT_SESSION_CASE);
    assert_int_equal(f->tp.spts[2].session_case, IMS_SESSION_CASE_ORIGINATING);
    assert_int_equal(f->tp.spts[3].kind, IMS_SPT_SIP_HEADER);
    assert_true(f->tp.spts[3].negated);
    assert_string_equal(f->tp.spts[3].value, "Content-Type");
    assert_string_equal(f->tp.spts[3].content, "application/im-iscomposing+xml");
    assert_int_equal(f->tp.spts[4].registration_type, IMS_REGTYPE_RE_REGISTRATION);
    assert_string_equal(f->as.server_name, "sip:sms.ims.lab:5060");
    assert_int_equal(f->as.default_handling, IMS_DEFAULT_HANDLING_SESSION_CONTINUED);
    assert_string_equal(f->as.service_info, "<x>a&b</x>");
    assert_true(f->as.include_register_request);
    assert_false(f->as.include_register_response);
    assert_int_equal(f->profile_part_indicator, 1);
    ims_subscription_free(&s);
}

static void test_parse_minimal_defaults(void **state)
{
    (void)state;
    static const char xml[] =
        "<IMSSubscription><PrivateID>c@ims.lab</PrivateID><ServiceProfile><PublicIdentity>"
        "<Identity>sip:c@ims.lab</Identity></PublicIdentity><InitialFilterCriteria><Priority>3</Priority>"
        "<ApplicationServer><ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>"
        "</ServiceProfile></IMSSubscription>";
    ims_subscription s;
    char err[256] = "";
    assert_int_equal(ims_userdata_parse(xml, strlen(xml), &s, err, sizeof err), 0);
    ims_service_profile *sp = &s.profiles[0];
    assert_false(sp->ids[0].barred);
    assert_int_equal(sp->ids[0].identity_type, IMS_IDENTITY_TYPE_PUBLIC_USER);
    assert_int_equal(sp->subscribed_media_profile_id, -1);
    assert_false(sp->ifcs[0].has_trigger_point);
    assert_int_equal(sp->ifcs[0].profile_part_indicator, -1);
    assert_int_equal(sp->ifcs[0].as.default_handling, IMS_DEFAULT_HANDLING_SESSION_CONTINUED);
    assert_null(sp->ifcs[0].as.service_info);
    ims_subscription_free(&s);
}

/* ---------------------------------------------------------------------------------------------- */
/* reader: refusals are in test_userdata_errors.c; here the ones that need the rich fixture          */

/* Bytes that do not match the declared encoding: refused with our message, and libxml2 must not
 * print its own "encoding error" lines to stderr (it did, bypassing XML_PARSE_NOERROR; found by
 * tests/fuzz/fuzz_cx). stderr is captured into a temporary file around the call. */
/* Strict UTF-8 for text going into User-Data: xmlCheckUTF8 let an overlong form (C0 91) through
 * the writer and the HSS provisioning check, and the reader then refused the document
 * (tests/fuzz/fuzz_json). */
static void test_text_ok_strict_utf8(void **state)
{
    (void)state;
    assert_true(ims_userdata_text_ok("sip:alice@ims.lab"));
    assert_true(ims_userdata_text_ok("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\t\n"));
    assert_false(ims_userdata_text_ok("sip:alice\xc0\x91ims.lab"));     /* overlong '@' */
    assert_false(ims_userdata_text_ok("\xe0\x80\xaf"));                 /* overlong '/' */
    assert_false(ims_userdata_text_ok("\xed\xa0\x80"));                 /* surrogate D800 */
    assert_false(ims_userdata_text_ok("\xf4\x90\x80\x80"));             /* above U+10FFFF */
    assert_false(ims_userdata_text_ok("\xef\xbf\xbf"));                 /* U+FFFF */
    assert_false(ims_userdata_text_ok("abc\xc3"));                      /* truncated */
    assert_false(ims_userdata_text_ok("a\x01" "b"));                    /* control character */

    ims_subscription s;
    build_rich(&s);
    free(s.profiles[1].ids[0].identity);
    s.profiles[1].ids[0].identity = strdup("sip:alice\xc0\x91ims.lab");
    expect_write_refused(&s, "Identity");
    ims_subscription_free(&s);
}

static void test_err_after_partial_state(void **state)
{
    (void)state;
    ims_subscription in;
    char *xml = write_rich(&in);
    /* Profile 2's iFC is the only one with priority 0: make it non-numeric. */
    char *p = strstr(xml, "<Priority>0</Priority>");
    assert_non_null(p);
    p[strlen("<Priority>")] = 'x';
    expect_parse_error(xml, "<Priority> is not an integer");
    free(xml);
    ims_subscription_free(&in);
}

/* ---------------------------------------------------------------------------------------------- */
/* enum <-> text tables                                                                           */

/* Every row is found by its value, name and XML name; values unique, and without gaps where the
 * reader takes the range from the table (contiguous). */
static void check_table(const ims_enum_name *t, bool contiguous)
{
    int min = INT_MAX, max = INT_MIN, n = 0;
    for (const ims_enum_name *r = t; r->name; r++, n++) {
        assert_ptr_equal(ims_enum_by_value(t, r->value), r);
        assert_ptr_equal(ims_enum_by_name(t, r->name), r);
        if (r->xml)
            assert_ptr_equal(ims_enum_by_xml(t, r->xml), r);
        min = r->value < min ? r->value : min;
        max = r->value > max ? r->value : max;
    }
    assert_true(n > 0);
    if (contiguous)
        assert_int_equal(max - min + 1, n);
    assert_null(ims_enum_by_value(t, max + 1));
    assert_null(ims_enum_by_value(t, min - 1));
    assert_null(ims_enum_by_name(t, "nope"));
    assert_null(ims_enum_by_name(t, NULL));
    assert_null(ims_enum_by_xml(t, "nope"));
    assert_null(ims_enum_by_xml(t, NULL));
}

static void test_enum_tables(void **state)
{
    (void)state;
    check_table(ims_spt_kind_names, true);
    check_table(ims_regtype_names, true);
    check_table(ims_default_handling_names, true);
    check_table(ims_profile_part_names, true);
    /* The values the header's enums define. */
    assert_string_equal(ims_enum_by_value(ims_spt_kind_names, IMS_SPT_SESSION_DESC)->xml, "SessionDescription");
    assert_string_equal(ims_enum_by_value(ims_spt_kind_names, IMS_SPT_SIP_HEADER)->name, "header");
    assert_string_equal(ims_enum_by_value(ims_default_handling_names,
                                          IMS_DEFAULT_HANDLING_SESSION_TERMINATED)->name, "session_terminated");
    assert_string_equal(ims_enum_by_value(ims_profile_part_names, 1)->name, "unregistered");
    assert_string_equal(ims_enum_by_value(ims_regtype_names, 2)->name, "de-registration");
}

/* One iFC with one SPT of the given kind, written and read back: the writer's element name and
 * the reader's xs:choice both come from ims_spt_kind_names, for every row of it. */
static void test_spt_kind_per_table_row(void **state)
{
    (void)state;
    for (const ims_enum_name *k = ims_spt_kind_names; k->name; k++) {
        ims_subscription in, out;
        char err[256] = "", tag[64];
        build_rich(&in);
        ims_ifc *f = &in.profiles[1].ifcs[0];
        ims_ifc_free(f);
        f->priority = 5;
        f->as.server_name = strdup("sip:as.ims.lab");
        f->has_trigger_point = true;
        f->tp.spts = calloc(1, sizeof *f->tp.spts);
        f->tp.n_spts = 1;
        f->tp.spts[0] = mk_spt(0, false, (ims_spt_kind)k->value,
                               k->value == IMS_SPT_SESSION_CASE ? NULL : "X-Kind",
                               k->value == IMS_SPT_SIP_HEADER || k->value == IMS_SPT_SESSION_DESC ? "^c" : NULL);
        f->tp.spts[0].session_case = IMS_SESSION_CASE_TERMINATING_UNREGISTERED;
        f->tp.spts[0].registration_type = IMS_REGTYPE_INITIAL | IMS_REGTYPE_RE_REGISTRATION |
                                          IMS_REGTYPE_DE_REGISTRATION;
        f->as.default_handling = IMS_DEFAULT_HANDLING_SESSION_TERMINATED;
        f->profile_part_indicator = 1;
        char *xml = ims_userdata_write(&in, err, sizeof err);
        if (!xml)
            fail_msg("%s: %s", k->name, err);
        snprintf(tag, sizeof tag, "<%s>", k->xml);
        assert_non_null(strstr(xml, tag));
        assert_int_equal(ims_userdata_parse(xml, strlen(xml), &out, err, sizeof err), 0);
        assert_sub_equal(&in, &out);
        assert_int_equal(out.profiles[1].ifcs[0].tp.spts[0].kind, k->value);
        free(xml);
        ims_subscription_free(&in);
        ims_subscription_free(&out);
    }
}

/* The reader takes the range of an enum from its table. */
static void test_err_enum_out_of_table(void **state)
{
    (void)state;
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName><DefaultHandling>2</DefaultHandling>"
                                  "</ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "<DefaultHandling> value 2 out of range 0..1");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer>"
                                  "<ProfilePartIndicator>-1</ProfilePartIndicator></InitialFilterCriteria>\n" TAIL,
                       "<ProfilePartIndicator> value -1 out of range 0..1");
    expect_parse_error(HEAD PI_OK "<InitialFilterCriteria><Priority>1</Priority><TriggerPoint>"
                                  "<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group>"
                                  "<Method>REGISTER</Method><Extension><RegistrationType>3</RegistrationType>"
                                  "</Extension></SPT></TriggerPoint><ApplicationServer>"
                                  "<ServerName>sip:as</ServerName></ApplicationServer></InitialFilterCriteria>\n" TAIL,
                       "<RegistrationType> value 3 out of range 0..2");

    ims_subscription s;
    build_rich(&s);
    s.profiles[0].ifcs[0].as.default_handling = 2;
    expect_write_refused(&s, "DefaultHandling 2 out of range 0..1");
    s.profiles[0].ifcs[0].as.default_handling = 0;
    s.profiles[0].ifcs[0].profile_part_indicator = 2;
    expect_write_refused(&s, "ProfilePartIndicator 2 out of range");
    s.profiles[0].ifcs[0].profile_part_indicator = -1;
    s.profiles[0].ifcs[0].tp.spts[0].registration_type = 1u << 3;
    expect_write_refused(&s, "unknown RegistrationType bits 0x8");
    ims_subscription_free(&s);
}

/* ---------------------------------------------------------------------------------------------- */
/* copy                                                                                           */

static void test_service_profile_copy(void **state)
{
    (void)state;
    ims_subscription in;
    build_rich(&in);
    ims_service_profile cp;
    assert_int_equal(ims_service_profile_copy(&cp, &in.profiles[0]), 0);
    assert_sp_equal(&cp, &in.profiles[0]);
    /* deep: no shared strings */
    assert_ptr_not_equal(cp.ids[0].identity, in.profiles[0].ids[0].identity);
    assert_ptr_not_equal(cp.ifcs[0].tp.spts[1].value, in.profiles[0].ifcs[0].tp.spts[1].value);
    ims_subscription_free(&in);
    assert_string_equal(cp.ifcs[0].as.server_name, "sip:as1.ims.lab:5070");
    ims_service_profile_free(&cp);
    assert_int_equal(cp.n_ids, 0);
    assert_null(cp.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_rich),
        cmocka_unit_test(test_rewrite_is_byte_stable),
        cmocka_unit_test(test_writer_shape_and_escaping),
        cmocka_unit_test(test_writer_refusals),
        cmocka_unit_test(test_parse_hss_sample),
        cmocka_unit_test(test_parse_minimal_defaults),
        cmocka_unit_test(test_text_ok_strict_utf8),
        cmocka_unit_test(test_err_after_partial_state),
        cmocka_unit_test(test_service_profile_copy),
        cmocka_unit_test(test_enum_tables),
        cmocka_unit_test(test_spt_kind_per_table_row),
        cmocka_unit_test(test_err_enum_out_of_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
