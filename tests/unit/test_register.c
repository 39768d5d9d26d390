/*
 * Unit tests for the REGISTER toolkit (common/ims_register.c): Contact/Expires validation with
 * the P-CSCF's and the registrar's policies, and the Cx result -> SIP status table shared by the
 * I-CSCF and the S-CSCF. Messages are parsed from text: no network, no loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>

#include "ims_cx.h"
#include "ims_register.h"

/* REGISTER with the given extra header lines (Contact, Expires ...). */
static msg_t *reg(const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "REGISTER sip:ims.lab SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
             "Max-Forwards: 70\r\n"
             "From: <sip:alice@ims.lab>;tag=1\r\n"
             "To: <sip:alice@ims.lab>\r\n"
             "Call-ID: reg1\r\n"
             "CSeq: 1 REGISTER\r\n"
             "%s"
             "Content-Length: 0\r\n"
             "\r\n",
             extra);
    msg_t *m = msg_make(sip_default_mclass(), 0, text, (isize_t)strlen(text));
    assert_non_null(m);
    assert_non_null(sip_object(m));
    return m;
}

static const ims_reg_policy PROXY = { .registrar = false, .default_expires = IMS_REG_DEFAULT_EXPIRES,
                                      .max_contacts = IMS_REG_MAX_CONTACTS };
static const ims_reg_policy REGISTRAR = { .registrar = true, .min_expires = 60, .max_expires = 3600,
                                          .default_expires = 1800, .max_contacts = IMS_REG_MAX_CONTACTS };

/* Status of `extra` under both policies; they must agree unless `registrar_only`. */
static int check(const char *extra, const ims_reg_policy *pol, ims_reg_contacts *out, ims_reg_verdict *v)
{
    msg_t *m = reg(extra);
    int st = ims_register_check(sip_object(m), pol, out, v);
    assert_int_equal(st, v->status);
    if (st)
        assert_non_null(v->phrase);
    msg_destroy(m);   /* out->c[].m is not used after this */
    return st;
}

static int both(const char *extra)
{
    ims_reg_contacts c;
    ims_reg_verdict v;
    int p = check(extra, &PROXY, &c, &v);
    int r = check(extra, &REGISTRAR, &c, &v);
    assert_int_equal(p, r);
    return p;
}

static void test_malformed(void **state)
{
    (void)state;
    assert_int_equal(both("Contact: <sip:a@10.0.0.1>\r\nExpires: soon\r\n"), 400);
    assert_int_equal(both("Contact: <sip:a@10.0.0.1>\r\nExpires: -5\r\n"), 400);
    /* a second Expires is a surplus single header field: sofia lists it under its own class
     * (the S-CSCF looked at er_name only and took the first) */
    assert_int_equal(both("Contact: <sip:a@10.0.0.1>\r\nExpires: 600\r\nExpires: 700\r\n"), 400);
    assert_int_equal(both("Contact: <sip:a@10.0.0.1>;expires=abc\r\n"), 400);
    assert_int_equal(both("Contact: <sip:a@10.0.0.1>;expires=\r\n"), 400);
    assert_int_equal(both("Contact: <sip:a@10.0.0.1\r\n"), 400);
    assert_int_equal(both("m: <sip:a@10.0.0.1\r\n"), 400);
    /* RFC 3261 §20.19: no HTTP date */
    assert_int_equal(both("Contact: <sip:a@10.0.0.1>\r\nExpires: Thu, 01 Dec 1994 16:00:00 GMT\r\n"), 400);
}

static void test_missing_headers(void **state)
{
    (void)state;
    const char *text = "REGISTER sip:ims.lab SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
                       "To: <sip:alice@ims.lab>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    msg_t *m = msg_make(sip_default_mclass(), 0, text, (isize_t)strlen(text));
    assert_non_null(m);
    ims_reg_contacts c;
    ims_reg_verdict v;
    assert_int_equal(ims_register_check(sip_object(m), &PROXY, &c, &v), 400);
    assert_int_equal(ims_register_check(sip_object(m), &REGISTRAR, &c, &v), 400);
    msg_destroy(m);
}

static void test_star(void **state)
{
    (void)state;
    ims_reg_contacts c;
    ims_reg_verdict v;
    assert_int_equal(check("Contact: *\r\nExpires: 0\r\n", &REGISTRAR, &c, &v), 0);
    assert_true(c.star);
    assert_int_equal(c.n, 0);
    assert_int_equal(check("Contact: *\r\nExpires: 0\r\n", &PROXY, &c, &v), 0);
    assert_true(c.star);
    /* RFC 3261 §10.3 step 6 */
    assert_int_equal(both("Contact: *\r\nExpires: 600\r\n"), 400);
    assert_int_equal(both("Contact: *\r\n"), 400);
    assert_int_equal(both("Contact: *, <sip:a@10.0.0.1>\r\nExpires: 0\r\n"), 400);
    assert_int_equal(both("Contact: <sip:a@10.0.0.1>\r\nContact: *\r\nExpires: 0\r\n"), 400);
}

static void test_too_many_contacts(void **state)
{
    (void)state;
    char extra[2048] = "";
    for (int i = 0; i < IMS_REG_MAX_CONTACTS; i++) {
        char line[64];
        snprintf(line, sizeof(line), "Contact: <sip:a@10.0.0.%d>\r\n", i + 1);
        strcat(extra, line);
    }
    assert_int_equal(both(extra), 0);
    strcat(extra, "Contact: <sip:a@10.0.0.99>\r\n");
    /* the P-CSCF answered 400 here, the S-CSCF 403: one answer now (TS 24.229 §5.4.1.2.1) */
    ims_reg_contacts c;
    ims_reg_verdict v;
    assert_int_equal(check(extra, &PROXY, &c, &v), 403);
    assert_int_equal(check(extra, &REGISTRAR, &c, &v), 403);
    ims_reg_policy two = REGISTRAR;
    two.max_contacts = 2;
    assert_int_equal(check("Contact: <sip:a@1.1.1.1>, <sip:b@1.1.1.1>, <sip:c@1.1.1.1>\r\n", &two, &c, &v), 403);
}

static void test_expiry(void **state)
{
    (void)state;
    ims_reg_contacts c;
    ims_reg_verdict v;
    /* contact parameter over header over default */
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>;expires=120, <sip:b@10.0.0.1>\r\nExpires: 600\r\n",
                           &REGISTRAR, &c, &v), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.c[0].expires, 120);
    assert_int_equal(c.c[1].expires, 600);
    assert_non_null(c.c[0].m);
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>\r\n", &REGISTRAR, &c, &v), 0);
    assert_int_equal(c.c[0].expires, 1800);
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>\r\n", &PROXY, &c, &v), 0);
    assert_int_equal(c.c[0].expires, IMS_REG_DEFAULT_EXPIRES);
    /* the registrar shortens (RFC 3261 §10.3 step 7 "MAY"), the proxy keeps what was asked */
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>;expires=99999999999\r\n", &REGISTRAR, &c, &v), 0);
    assert_int_equal(c.c[0].expires, 3600);
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>;expires=7200\r\n", &PROXY, &c, &v), 0);
    assert_int_equal(c.c[0].expires, 7200);
    /* 423 only at the registrar (the P-CSCF does not know scscf.min_expires) */
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>\r\nExpires: 30\r\n", &REGISTRAR, &c, &v), 423);
    assert_int_equal(v.min_expires, 60);
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>\r\nExpires: 30\r\n", &PROXY, &c, &v), 0);
    assert_int_equal(c.c[0].expires, 30);
    /* 0 is a removal, never too brief */
    assert_int_equal(check("Contact: <sip:a@10.0.0.1>;expires=0\r\n", &REGISTRAR, &c, &v), 0);
    assert_int_equal(c.c[0].expires, 0);
    /* no Contact: a query */
    assert_int_equal(check("", &REGISTRAR, &c, &v), 0);
    assert_int_equal(c.n, 0);
    assert_false(c.star);
}

/* The I-CSCF's question (UAR type): does this REGISTER remove every binding it names? */
static void test_is_deregistration(void **state)
{
    (void)state;
    const struct { const char *extra; bool dereg; } cases[] = {
        { "Contact: <sip:a@10.0.0.1>\r\nExpires: 0\r\n", true },
        { "Contact: <sip:a@10.0.0.1>;expires=0\r\n", true },
        { "Contact: <sip:a@10.0.0.1>;expires=0, <sip:b@10.0.0.1>;expires=0\r\nExpires: 600\r\n", true },
        { "Contact: *\r\nExpires: 0\r\n", true },
        { "Contact: <sip:a@10.0.0.1>;expires=0, <sip:b@10.0.0.1>\r\nExpires: 600\r\n", false },
        { "Contact: <sip:a@10.0.0.1>;expires=600\r\nExpires: 0\r\n", false },
        { "Contact: <sip:a@10.0.0.1>\r\n", false },             /* default expiry */
        { "Expires: 0\r\n", false },                             /* a query, no Contact */
        { "Contact: <sip:a@10.0.0.1>;expires=zero\r\nExpires: 0\r\n", false },   /* malformed */
        { "Contact: *\r\nExpires: 600\r\n", false },           /* malformed (§10.3 step 6) */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg_t *m = reg(cases[i].extra);
        bool got = ims_register_is_deregistration(sip_object(m));
        msg_destroy(m);
        if (got != cases[i].dereg)
            fail_msg("'%s': de-registration %d, wanted %d", cases[i].extra, got, cases[i].dereg);
    }
    assert_false(ims_register_is_deregistration(NULL));
}

static void test_cx_table(void **state)
{
    (void)state;
    ims_cx_sip s;
    /* one answer for an HSS that cannot be reached, at every CSCF: it was 504 (I-CSCF) and 503 (S-CSCF) */
    ims_cx_to_sip(false, 0, 0, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 480);
    assert_int_equal(s.retry_after, IMS_CX_RETRY_AFTER);
    assert_string_equal(s.result, "hss_timeout");
    const uint32_t unreachable[] = { IMS_DIAMETER_UNABLE_TO_DELIVER, 3003, IMS_DIAMETER_TOO_BUSY };
    for (size_t i = 0; i < 3; i++) {
        for (int p = IMS_CX_FOR_REGISTER; p <= IMS_CX_FOR_REQUEST; p++) {
            ims_cx_to_sip(true, unreachable[i], 0, (ims_cx_purpose)p, &s);
            assert_int_equal(s.status, 480);
            assert_int_equal(s.retry_after, IMS_CX_RETRY_AFTER);
            assert_string_equal(s.result, "hss_unreachable");
        }
        assert_true(ims_cx_unreachable(true, unreachable[i], 0));
    }
    assert_true(ims_cx_unreachable(false, 0, 0));
    assert_false(ims_cx_unreachable(true, IMS_DIAMETER_UNABLE_TO_COMPLY, 0));
    /* the same numbers as Experimental-Result codes are not base codes */
    assert_false(ims_cx_unreachable(true, 0, 3002));
    /* unable to comply: the S-CSCF answered 403, now the same transient answer */
    ims_cx_to_sip(true, IMS_DIAMETER_UNABLE_TO_COMPLY, 0, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 480);
    assert_int_equal(s.retry_after, IMS_CX_RETRY_AFTER);

    ims_cx_to_sip(true, 0, IMS_CX_ERROR_USER_UNKNOWN, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 403);
    assert_string_equal(s.result, "user_unknown");
    assert_int_equal(s.retry_after, 0);
    ims_cx_to_sip(true, 0, IMS_CX_ERROR_USER_UNKNOWN, IMS_CX_FOR_REQUEST, &s);
    assert_int_equal(s.status, 404);
    ims_cx_to_sip(true, 0, IMS_CX_ERROR_IDENTITIES_DONT_MATCH, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 403);
    ims_cx_to_sip(true, 0, IMS_CX_ERROR_IDENTITY_NOT_REGISTERED, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 403);
    ims_cx_to_sip(true, 0, IMS_CX_ERROR_IDENTITY_NOT_REGISTERED, IMS_CX_FOR_REQUEST, &s);
    assert_int_equal(s.status, 480);
    assert_int_equal(s.retry_after, 0);
    ims_cx_to_sip(true, 0, IMS_CX_ERROR_ROAMING_NOT_ALLOWED, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 403);
    ims_cx_to_sip(true, 0, IMS_CX_ERROR_AUTH_SCHEME_NOT_SUPPORTED, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 403);
    ims_cx_to_sip(true, IMS_DIAMETER_AUTHORIZATION_REJECTED, 0, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 403);
    /* 5003 as an Experimental code is IDENTITY_NOT_REGISTERED, as a base code AUTHORIZATION_REJECTED */
    ims_cx_to_sip(true, 0, 5003, IMS_CX_FOR_REQUEST, &s);
    assert_int_equal(s.status, 480);
    ims_cx_to_sip(true, 5003, 0, IMS_CX_FOR_REQUEST, &s);
    assert_int_equal(s.status, 403);
    /* successes are the caller's to read */
    ims_cx_to_sip(true, IMS_DIAMETER_SUCCESS, 0, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 0);
    ims_cx_to_sip(true, 0, IMS_CX_FIRST_REGISTRATION, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 0);
    ims_cx_to_sip(true, 0, IMS_CX_UNREGISTERED_SERVICE, IMS_CX_FOR_REQUEST, &s);
    assert_int_equal(s.status, 0);
    /* anything else */
    ims_cx_to_sip(true, IMS_DIAMETER_MISSING_AVP, 0, IMS_CX_FOR_REGISTER, &s);
    assert_int_equal(s.status, 500);
    assert_string_equal(s.result, "error");
    ims_cx_to_sip(true, 0, IMS_CX_ERROR_NOT_SUPPORTED_USER_DATA, IMS_CX_FOR_REQUEST, &s);
    assert_int_equal(s.status, 500);
    ims_cx_to_sip(true, 0, 0, IMS_CX_FOR_REQUEST, &s);   /* no result at all */
    assert_int_equal(s.status, 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_missing_headers),
        cmocka_unit_test(test_star),
        cmocka_unit_test(test_too_many_contacts),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_is_deregistration),
        cmocka_unit_test(test_cx_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
