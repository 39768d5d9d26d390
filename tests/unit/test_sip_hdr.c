/*
 * Unit tests for the ims_sip header and identity helpers (common/ims_sip_hdr.c) and the "sip:"
 * configuration schema, on messages parsed from text: no network, no loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/su_alloc.h>

#include "ims_sip.h"

static const char REGISTER_TEXT[] =
    "REGISTER sip:ims.lab SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    "v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK2\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@ims.lab>;tag=1\r\n"
    "To: \"Alice\" <sip:alice@IMS.lab;user=phone>\r\n"
    "Call-ID: reg1\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Path: <sip:p1.ims.lab;lr>\r\n"
    "P-Asserted-Identity: <sip:alice@ims.lab>\r\n"
    "P-Visited-Network-ID: \"visited.lab\"\r\n"
    "X-One: 1\r\n"
    "X-Two: 2\r\n"
    "x-one: 3\r\n"
    "Authorization: Digest username=\"alice.priv@ims.lab\", realm=\"ims.lab\", nonce=\"\", uri=\"sip:ims.lab\", response=\"\"\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

static msg_t *parse(const char *text)
{
    msg_t *m = msg_make(sip_default_mclass(), 0, text, (isize_t)strlen(text));
    assert_non_null(m);
    assert_non_null(sip_object(m));
    return m;
}

static void test_headers(void **state)
{
    (void)state;
    char buf[256];
    msg_t *m = parse(REGISTER_TEXT);
    sip_t *sip = sip_object(m);

    /* Unknown to sofia (P-headers are: see ims_sip.h), case-insensitive, first of several. */
    assert_string_equal(ims_sip_header(sip, "p-asserted-identity", buf, sizeof(buf)), "<sip:alice@ims.lab>");
    assert_string_equal(ims_sip_header(sip, "X-ONE", buf, sizeof(buf)), "1");
    assert_null(ims_sip_header(sip, "X-Three", buf, sizeof(buf)));
    assert_null(ims_sip_header(sip, "X-One", buf, 1));                  /* does not fit */
    /* Known, typed ones; compact form. */
    assert_string_equal(ims_sip_header(sip, "Path", buf, sizeof(buf)), "<sip:p1.ims.lab;lr>");
    assert_string_equal(ims_sip_header(sip, "Max-Forwards", buf, sizeof(buf)), "70");
    assert_non_null(strstr(ims_sip_header(sip, "v", buf, sizeof(buf)), "10.0.0.1"));
    assert_null(ims_sip_header(sip, "Service-Route", buf, sizeof(buf)));
    assert_null(ims_sip_header(sip, "Bad Name", buf, sizeof(buf)));

    /* Add: unknown goes last among its name, typed goes into its slot. */
    assert_int_equal(ims_sip_add_header(m, sip, "P-Charging-Vector", "icid-value=abc"), 0);
    assert_string_equal(ims_sip_header(sip, "P-Charging-Vector", buf, sizeof(buf)), "icid-value=abc");
    assert_int_equal(ims_sip_add_header(m, sip, "Service-Route", "<sip:scscf.ims.lab;lr>"), 0);
    assert_non_null(sip->sip_service_route);
    assert_int_equal(ims_sip_add_header(m, sip, "X-Bad", "a\r\nInjected: 1"), -1);
    assert_int_equal(ims_sip_add_header(m, sip, "Bad:Name", "1"), -1);
    assert_int_equal(ims_sip_add_header(m, sip, "Max-Forwards", "not-a-number"), -1);

    /* Prepend: before the existing ones (RFC 3327 Path stacking). */
    assert_int_equal(ims_sip_prepend_header(m, sip, "Path", "<sip:p0.ims.lab;lr>"), 0);
    assert_string_equal(ims_sip_header(sip, "Path", buf, sizeof(buf)), "<sip:p0.ims.lab;lr>");
    assert_non_null(sip->sip_path->r_next);
    assert_string_equal(sip->sip_path->r_next->r_url->url_host, "p1.ims.lab");
    assert_int_equal(ims_sip_prepend_header(m, sip, "X-One", "0"), 0);
    assert_string_equal(ims_sip_header(sip, "X-One", buf, sizeof(buf)), "0");

    /* Remove: every instance, known and unknown; the others stay. */
    assert_int_equal(ims_sip_remove_headers(m, sip, "x-one"), 3);
    assert_null(ims_sip_header(sip, "X-One", buf, sizeof(buf)));
    assert_string_equal(ims_sip_header(sip, "X-Two", buf, sizeof(buf)), "2");
    assert_int_equal(ims_sip_remove_headers(m, sip, "Path"), 2);
    assert_null(sip->sip_path);
    assert_int_equal(ims_sip_remove_headers(m, sip, "Path"), 0);

    /* The edited message prints and parses back the same. */
    char *text = msg_as_string(NULL, m, NULL, 0, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "X-One"));
    assert_non_null(strstr(text, "P-Charging-Vector: icid-value=abc"));
    msg_t *m2 = parse(text);
    assert_string_equal(ims_sip_header(sip_object(m2), "X-Two", buf, sizeof(buf)), "2");
    su_free(NULL, text);
    msg_destroy(m2);
    msg_destroy(m);
}

static void test_identities(void **state)
{
    (void)state;
    char buf[128];
    msg_t *m = parse(REGISTER_TEXT);
    sip_t *sip = sip_object(m);
    assert_int_equal(ims_sip_impu_of(sip, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sip:alice@IMS.lab");
    assert_int_equal(ims_sip_impi_of(sip, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "alice.priv@ims.lab");
    assert_int_equal(ims_sip_impi_of(sip, buf, 5), -1);

    /* No Authorization: IMPI derived from the IMPU. */
    ims_sip_remove_headers(m, sip, "Authorization");
    assert_int_equal(ims_sip_impi_of(sip, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "alice@IMS.lab");
    msg_destroy(m);

    /* tel: IMPU: no IMPI without Authorization. */
    m = parse("REGISTER sip:ims.lab SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
              "From: <tel:+155500>;tag=1\r\nTo: <tel:+155500;phone-context=ims.lab>\r\n"
              "Call-ID: reg2\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n");
    sip = sip_object(m);
    assert_int_equal(ims_sip_impu_of(sip, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "tel:+155500");
    assert_int_equal(ims_sip_impi_of(sip, buf, sizeof(buf)), -1);
    msg_destroy(m);

    assert_int_equal(ims_sip_normalise_uri("SIP:Alice@IMS.Lab:5060;transport=udp?x=y", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sip:Alice@ims.lab:5060");
    assert_int_equal(ims_sip_normalise_uri("tel:+155500;phone-context=x", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "tel:+155500");
    assert_int_equal(ims_sip_normalise_uri("sip:a@b", buf, 4), -1);

    char id1[64], id2[64];
    ims_sip_new_icid(id1, sizeof(id1));
    ims_sip_new_icid(id2, sizeof(id2));
    assert_int_equal(strlen(id1), 28);
    assert_string_not_equal(id1, id2);
}

static void test_cfg_fields(void **state)
{
    (void)state;
    ims_sip_cfg cfg = { 0 };
    char err[256];
    setenv("IMS_TESTSIP_HOSTS", "a.lab=10.0.0.1, b.lab=10.0.0.2", 1);
    setenv("IMS_TESTSIP_PORT", "5070", 1);
    int rc = ims_cfg_load(NULL, "testsip", ims_sip_cfg_fields, &cfg, err, sizeof(err));
    unsetenv("IMS_TESTSIP_HOSTS");
    unsetenv("IMS_TESTSIP_PORT");
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.listen, "127.0.0.1");
    assert_int_equal(cfg.port, 5070);
    assert_null(cfg.hostname);
    assert_int_equal(cfg.hosts.count, 2);
    assert_string_equal(cfg.hosts.items[1], "b.lab=10.0.0.2");
    ims_cfg_free(ims_sip_cfg_fields, &cfg);

    setenv("IMS_TESTSIP_PORT", "0", 1);
    assert_int_equal(ims_cfg_load(NULL, "testsip", ims_sip_cfg_fields, &cfg, err, sizeof(err)), -1);
    unsetenv("IMS_TESTSIP_PORT");
}

/* RFC 3261 §22: our realm's credentials go (quoted or token realm, any case), others stay. */
static void test_remove_credentials(void **state)
{
    (void)state;
    static const char text[] =
        "INVITE sip:bob@ims.lab SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@ims.lab>;tag=1\r\n"
        "To: <sip:bob@ims.lab>\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Authorization: Digest username=\"alice@ims.lab\", realm=\"IMS.lab\", nonce=\"n\", uri=\"sip:ims.lab\", response=\"r\"\r\n"
        "Proxy-Authorization: Digest username=\"alice@ims.lab\", realm=ims.lab, nonce=\"n\", uri=\"sip:ims.lab\", response=\"r\"\r\n"
        "Proxy-Authorization: Digest username=\"alice\", realm=\"other.example\", nonce=\"n\", uri=\"sip:x\", response=\"r\"\r\n"
        "Content-Length: 0\r\n"
        "\r\n";
    msg_t *m = parse(text);
    sip_t *sip = sip_object(m);
    assert_int_equal(ims_sip_remove_credentials(m, sip, "other.lab"), 0);
    assert_int_equal(ims_sip_remove_credentials(m, sip, "ims.lab"), 2);
    assert_null(sip->sip_authorization);
    assert_non_null(sip->sip_proxy_authorization);
    assert_null(sip->sip_proxy_authorization->au_next);
    assert_string_equal(msg_params_find(sip->sip_proxy_authorization->au_params, "realm"), "\"other.example\"");
    assert_int_equal(ims_sip_remove_credentials(m, sip, "ims.lab"), 0);
    assert_int_equal(ims_sip_remove_credentials(NULL, sip, "ims.lab"), 0);
    assert_int_equal(ims_sip_remove_credentials(m, sip, ""), 0);
    msg_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_cfg_fields),
        cmocka_unit_test(test_remove_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
