/*
 * test_scscf_ifc: initial filter criteria evaluation of the S-CSCF (scscf_ifc.c).
 *
 * Covers every SPT kind (RequestURI regex, Method with RegistrationType, SIPHeader presence and
 * content regex with compact forms and folded lines, SessionCase, SessionDescription line/content),
 * ConditionNegated, CNF and DNF with several groups, a trigger point absent / empty,
 * ProfilePartIndicator, selection in priority order, and splitting a message text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scscf_ifc.h"

static const char INVITE[] =
    "INVITE sip:bob@ims.lab SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    "f: <sip:alice@ims.lab>;tag=1\r\n"
    "To: <sip:bob@ims.lab>\r\n"
    "Call-ID: abc@10.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "P-Asserted-Identity: <sip:alice@ims.lab>\r\n"
    "Accept-Contact: *;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\r\n"
    "Subject: folded\r\n"
    " continuation-marker\r\n"
    "Content-Type: application/sdp\r\n"
    "\r\n"
    "v=0\r\n"
    "o=- 1 1 IN IP4 10.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 10.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8\r\n"
    "a=rtpmap:0 PCMU/8000\r\n";

static const char REGISTER[] =
    "REGISTER sip:ims.lab SIP/2.0\r\n"
    "To: <sip:alice@ims.lab>\r\n"
    "From: <sip:alice@ims.lab>;tag=9\r\n"
    "Contact: <sip:alice@10.0.0.1:5060>;expires=600\r\n"
    "\r\n";

static char g_method[32], g_ruri[256];

/* Each request keeps its own method / Request-URI buffers (a ring, several live per test). */
static scscf_ifc_request req_of(const char *text, int session_case, unsigned regtype)
{
    static char methods[8][32], ruris[8][256];
    static unsigned next;
    unsigned i = next++ % 8;
    scscf_ifc_request r;
    assert_int_equal(scscf_ifc_request_from_text(text, strlen(text), methods[i], sizeof methods[i], ruris[i],
                                                 sizeof ruris[i], &r), 0);
    r.session_case = session_case;
    r.registration_type = regtype;
    return r;
}

static ims_spt spt(int group, bool negated, ims_spt_kind kind, const char *value, const char *content)
{
    ims_spt s;
    memset(&s, 0, sizeof s);
    s.group = group;
    s.negated = negated;
    s.kind = kind;
    s.value = (char *)value;
    s.content = (char *)content;
    return s;
}

static ims_spt spt_case(int group, bool negated, int session_case)
{
    ims_spt s = spt(group, negated, IMS_SPT_SESSION_CASE, NULL, NULL);
    s.session_case = session_case;
    return s;
}

/* ---------------------------------------------------------------------------------------------- */

static void test_split(void **state)
{
    (void)state;
    scscf_ifc_request r = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    assert_string_equal(r.method, "INVITE");
    assert_string_equal(r.request_uri, "sip:bob@ims.lab");
    assert_non_null(r.body);
    assert_true(r.body_len > 0 && strncmp(r.body, "v=0", 3) == 0);
    assert_true(r.headers_len > 0 && strncmp(r.headers, "Via:", 4) == 0);

    /* no body, no final empty line */
    const char *bare = "OPTIONS sip:x SIP/2.0\r\nTo: <sip:x>\r\n";
    assert_int_equal(scscf_ifc_request_from_text(bare, strlen(bare), g_method, sizeof g_method, g_ruri,
                                                 sizeof g_ruri, &r), 0);
    assert_null(r.body);
    assert_string_equal(r.method, "OPTIONS");

    /* not a request line */
    const char *junk = "garbage";
    assert_int_equal(scscf_ifc_request_from_text(junk, strlen(junk), g_method, sizeof g_method, g_ruri,
                                                 sizeof g_ruri, &r), -1);
    /* method longer than the buffer */
    char small[4];
    assert_int_equal(scscf_ifc_request_from_text(INVITE, strlen(INVITE), small, sizeof small, g_ruri,
                                                 sizeof g_ruri, &r), -1);
}

static void test_request_uri(void **state)
{
    (void)state;
    scscf_ifc_request r = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    ims_spt s = spt(0, false, IMS_SPT_REQUEST_URI, "^sip:bob@", NULL);
    assert_true(scscf_ifc_spt_match(&s, &r));
    s.value = "voicemail";
    assert_false(scscf_ifc_spt_match(&s, &r));
    s.negated = true;
    assert_true(scscf_ifc_spt_match(&s, &r));
    /* a bad regular expression never matches (and does not crash) */
    s = spt(0, false, IMS_SPT_REQUEST_URI, "([", NULL);
    assert_false(scscf_ifc_spt_match(&s, &r));
}

static void test_method_and_registration_type(void **state)
{
    (void)state;
    scscf_ifc_request inv = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    ims_spt s = spt(0, false, IMS_SPT_METHOD, "INVITE", NULL);
    assert_true(scscf_ifc_spt_match(&s, &inv));
    s.value = "invite";   /* compared case-insensitively */
    assert_true(scscf_ifc_spt_match(&s, &inv));
    s.value = "MESSAGE";
    assert_false(scscf_ifc_spt_match(&s, &inv));

    scscf_ifc_request initial = req_of(REGISTER, IMS_SESSION_CASE_ORIGINATING, IMS_REGTYPE_INITIAL);
    scscf_ifc_request rereg = req_of(REGISTER, IMS_SESSION_CASE_ORIGINATING, IMS_REGTYPE_RE_REGISTRATION);
    scscf_ifc_request dereg = req_of(REGISTER, IMS_SESSION_CASE_ORIGINATING, IMS_REGTYPE_DE_REGISTRATION);
    s = spt(0, false, IMS_SPT_METHOD, "REGISTER", NULL);
    /* no RegistrationType: every REGISTER */
    assert_true(scscf_ifc_spt_match(&s, &initial));
    assert_true(scscf_ifc_spt_match(&s, &rereg));
    assert_true(scscf_ifc_spt_match(&s, &dereg));
    s.registration_type = IMS_REGTYPE_INITIAL | IMS_REGTYPE_DE_REGISTRATION;
    assert_true(scscf_ifc_spt_match(&s, &initial));
    assert_false(scscf_ifc_spt_match(&s, &rereg));
    assert_true(scscf_ifc_spt_match(&s, &dereg));
    /* RegistrationType has no meaning for other methods */
    s.value = "INVITE";
    assert_true(scscf_ifc_spt_match(&s, &inv));
}

static void test_sip_header(void **state)
{
    (void)state;
    scscf_ifc_request r = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    ims_spt s = spt(0, false, IMS_SPT_SIP_HEADER, "P-Asserted-Identity", NULL);
    assert_true(scscf_ifc_spt_match(&s, &r));                  /* presence */
    s.value = "p-asserted-identity";
    assert_true(scscf_ifc_spt_match(&s, &r));                  /* name case-insensitive */
    s.value = "P-Preferred-Identity";
    assert_false(scscf_ifc_spt_match(&s, &r));
    s = spt(0, false, IMS_SPT_SIP_HEADER, "Accept-Contact", "mmtel");
    assert_true(scscf_ifc_spt_match(&s, &r));                  /* content regex */
    s.content = "^foo";
    assert_false(scscf_ifc_spt_match(&s, &r));
    s = spt(0, false, IMS_SPT_SIP_HEADER, "From", "alice@ims\\.lab");
    assert_true(scscf_ifc_spt_match(&s, &r));                  /* compact form "f" in the message */
    s = spt(0, false, IMS_SPT_SIP_HEADER, "t", "bob");
    assert_true(scscf_ifc_spt_match(&s, &r));                  /* compact form in the iFC */
    s = spt(0, false, IMS_SPT_SIP_HEADER, "Subject", "continuation-marker");
    assert_true(scscf_ifc_spt_match(&s, &r));                  /* folded line */
    /* headers after the empty line (the body) are not headers */
    s = spt(0, false, IMS_SPT_SIP_HEADER, "m", NULL);
    assert_false(scscf_ifc_spt_match(&s, &r));
    /* no header text at all */
    scscf_ifc_request empty;
    memset(&empty, 0, sizeof empty);
    s = spt(0, false, IMS_SPT_SIP_HEADER, "To", NULL);
    assert_false(scscf_ifc_spt_match(&s, &empty));
    s.negated = true;
    assert_true(scscf_ifc_spt_match(&s, &empty));
}

static void test_session_case_and_sdp(void **state)
{
    (void)state;
    scscf_ifc_request orig = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    scscf_ifc_request term = req_of(INVITE, IMS_SESSION_CASE_TERMINATING_REGISTERED, 0);
    ims_spt s = spt_case(0, false, IMS_SESSION_CASE_ORIGINATING);
    assert_true(scscf_ifc_spt_match(&s, &orig));
    assert_false(scscf_ifc_spt_match(&s, &term));
    s = spt_case(0, true, IMS_SESSION_CASE_ORIGINATING);
    assert_true(scscf_ifc_spt_match(&s, &term));

    s = spt(0, false, IMS_SPT_SESSION_DESC, "m", "^audio");
    assert_true(scscf_ifc_spt_match(&s, &orig));
    s.content = "^video";
    assert_false(scscf_ifc_spt_match(&s, &orig));
    s = spt(0, false, IMS_SPT_SESSION_DESC, "a", NULL);         /* line presence */
    assert_true(scscf_ifc_spt_match(&s, &orig));
    s = spt(0, false, IMS_SPT_SESSION_DESC, "b", NULL);
    assert_false(scscf_ifc_spt_match(&s, &orig));
    scscf_ifc_request reg = req_of(REGISTER, IMS_SESSION_CASE_ORIGINATING, IMS_REGTYPE_INITIAL);
    s = spt(0, false, IMS_SPT_SESSION_DESC, "m", NULL);         /* no body */
    assert_false(scscf_ifc_spt_match(&s, &reg));
}

/* TS 29.228 Annex F-like example: (INVITE or MESSAGE) and originating and not to voicemail. */
static void test_cnf(void **state)
{
    (void)state;
    ims_spt spts[] = {
        spt(0, false, IMS_SPT_METHOD, "INVITE", NULL),
        spt(0, false, IMS_SPT_METHOD, "MESSAGE", NULL),
        spt_case(1, false, IMS_SESSION_CASE_ORIGINATING),
        spt(2, true, IMS_SPT_REQUEST_URI, "voicemail", NULL),
    };
    ims_trigger_point tp = { .cnf = true, .spts = spts, .n_spts = 4 };
    scscf_ifc_request orig = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    scscf_ifc_request term = req_of(INVITE, IMS_SESSION_CASE_TERMINATING_REGISTERED, 0);
    scscf_ifc_request reg = req_of(REGISTER, IMS_SESSION_CASE_ORIGINATING, IMS_REGTYPE_INITIAL);
    assert_true(scscf_ifc_tp_match(&tp, &orig));
    assert_false(scscf_ifc_tp_match(&tp, &term));   /* group 1 false */
    assert_false(scscf_ifc_tp_match(&tp, &reg));    /* group 0 false */
    spts[3].value = "bob";                          /* negated and matching: group 2 false */
    assert_false(scscf_ifc_tp_match(&tp, &orig));
}

/* DNF: (INVITE and originating) or (MESSAGE). */
static void test_dnf(void **state)
{
    (void)state;
    ims_spt spts[] = {
        spt(0, false, IMS_SPT_METHOD, "INVITE", NULL),
        spt_case(0, false, IMS_SESSION_CASE_ORIGINATING),
        spt(1, false, IMS_SPT_METHOD, "MESSAGE", NULL),
    };
    ims_trigger_point tp = { .cnf = false, .spts = spts, .n_spts = 3 };
    scscf_ifc_request orig = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    scscf_ifc_request term = req_of(INVITE, IMS_SESSION_CASE_TERMINATING_UNREGISTERED, 0);
    assert_true(scscf_ifc_tp_match(&tp, &orig));
    assert_false(scscf_ifc_tp_match(&tp, &term));
    spts[2].value = "INVITE";                       /* now group 1 holds for any INVITE */
    assert_true(scscf_ifc_tp_match(&tp, &term));

    /* groups given out of order and interleaved are still grouped by number */
    ims_spt mixed[] = {
        spt(5, false, IMS_SPT_METHOD, "INVITE", NULL),
        spt(3, false, IMS_SPT_METHOD, "BYE", NULL),
        spt_case(5, false, IMS_SESSION_CASE_TERMINATING_UNREGISTERED),
    };
    ims_trigger_point tp2 = { .cnf = false, .spts = mixed, .n_spts = 3 };
    assert_true(scscf_ifc_tp_match(&tp2, &term));
    assert_false(scscf_ifc_tp_match(&tp2, &orig));
}

static void test_empty_trigger_point_and_ppi(void **state)
{
    (void)state;
    scscf_ifc_request r = req_of(INVITE, IMS_SESSION_CASE_ORIGINATING, 0);
    ims_trigger_point empty = { .cnf = true, .spts = NULL, .n_spts = 0 };
    assert_true(scscf_ifc_tp_match(&empty, &r));
    assert_true(scscf_ifc_tp_match(NULL, &r));

    ims_ifc ifc;
    memset(&ifc, 0, sizeof ifc);
    ifc.profile_part_indicator = -1;
    ifc.has_trigger_point = false;      /* no trigger point: every request */
    assert_true(scscf_ifc_match(&ifc, &r, true));
    assert_true(scscf_ifc_match(&ifc, &r, false));
    ifc.profile_part_indicator = 0;     /* REGISTERED */
    assert_true(scscf_ifc_match(&ifc, &r, true));
    assert_false(scscf_ifc_match(&ifc, &r, false));
    ifc.profile_part_indicator = 1;     /* UNREGISTERED */
    assert_false(scscf_ifc_match(&ifc, &r, true));
    assert_true(scscf_ifc_match(&ifc, &r, false));

    ims_spt s = spt(0, false, IMS_SPT_METHOD, "MESSAGE", NULL);
    ifc.profile_part_indicator = -1;
    ifc.has_trigger_point = true;
    ifc.tp.cnf = true;
    ifc.tp.spts = &s;
    ifc.tp.n_spts = 1;
    assert_false(scscf_ifc_match(&ifc, &r, true));
}

static void test_select_priority(void **state)
{
    (void)state;
    ims_spt reg_spt = spt(0, false, IMS_SPT_METHOD, "REGISTER", NULL);
    ims_spt inv_spt = spt(0, false, IMS_SPT_METHOD, "INVITE", NULL);
    ims_ifc ifcs[4];
    memset(ifcs, 0, sizeof ifcs);
    int prio[4] = { 30, 10, 20, 10 };
    for (int i = 0; i < 4; i++) {
        ifcs[i].priority = prio[i];
        ifcs[i].profile_part_indicator = -1;
        ifcs[i].has_trigger_point = true;
        ifcs[i].tp.cnf = true;
        ifcs[i].tp.spts = i == 2 ? &inv_spt : &reg_spt;
        ifcs[i].tp.n_spts = 1;
    }
    ims_service_profile sp;
    memset(&sp, 0, sizeof sp);
    sp.ifcs = ifcs;
    sp.n_ifcs = 4;
    scscf_ifc_request reg = req_of(REGISTER, IMS_SESSION_CASE_ORIGINATING, IMS_REGTYPE_INITIAL);
    const ims_ifc *out[8];
    size_t n = scscf_ifc_select(&sp, &reg, true, out, 8);
    assert_int_equal(n, 3);
    assert_ptr_equal(out[0], &ifcs[1]);   /* 10, first in the document */
    assert_ptr_equal(out[1], &ifcs[3]);   /* 10, second */
    assert_ptr_equal(out[2], &ifcs[0]);   /* 30 */
    assert_int_equal(scscf_ifc_select(&sp, &reg, true, out, 2), 2);
    assert_int_equal(scscf_ifc_select(NULL, &reg, true, out, 8), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_request_uri),
        cmocka_unit_test(test_method_and_registration_type),
        cmocka_unit_test(test_sip_header),
        cmocka_unit_test(test_session_case_and_sdp),
        cmocka_unit_test(test_cnf),
        cmocka_unit_test(test_dnf),
        cmocka_unit_test(test_empty_trigger_point_and_ppi),
        cmocka_unit_test(test_select_priority),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
