/*
 * Unit tests for common/ims_secagree.c: Security-Client / -Server / -Verify parsing (RFC 3329,
 * TS 33.203 Annex H), good and hostile values, the mechanism choice, formatting, the
 * Security-Verify check, and the TS 33.203 Annex I keys.
 *
 * The keys are checked against tests/unit/vectors/secagree-esp.tsv, written by
 * gen_secagree_esp.py with Python's hmac and the cryptography package: for each alg/ealg pair the
 * expected keys and one ESP packet (RFC 4303). The test verifies that packet's ICV and decrypts
 * it with OpenSSL using the keys ims_secagree_keys() derived and the algorithm names it gives
 * for XFRM, so a wrong expansion (e.g. IK without the 32 zero bits) fails here, not in the kernel.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>

#include "ims_secagree.h"

#ifndef IMS_VECTORS_DIR
#error "IMS_VECTORS_DIR must name tests/unit/vectors (set by tests/unit/CMakeLists.txt)"
#endif

/* What a VoLTE phone sends in its initial REGISTER (the shape of a Samsung/Qualcomm trace: the
 * same SPIs and ports offered with four alg/ealg combinations, no q, no spaces). */
static const char PHONE_CLIENT[] =
    "ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=3929102;spi-s=3929103;port-c=65524;port-s=65525,"
    "ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=3929102;spi-s=3929103;port-c=65524;port-s=65525,"
    "ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=3929102;spi-s=3929103;port-c=65524;port-s=65525,"
    "ipsec-3gpp;alg=hmac-md5-96;ealg=aes-cbc;spi-c=3929102;spi-s=3929103;port-c=65524;port-s=65525";

static ims_sa_list parse_ok(const char *value)
{
    ims_sa_list l;
    char err[256];
    memset(&l, 0, sizeof l);
    if (ims_secagree_parse(value, &l, err, sizeof err) != 0)
        fail_msg("refused \"%s\": %s", value, err);
    return l;
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(ims_sa_alg_name(IMS_SA_ALG_HMAC_MD5_96), "hmac-md5-96");
    assert_string_equal(ims_sa_alg_name(IMS_SA_ALG_HMAC_SHA1_96), "hmac-sha-1-96");
    assert_null(ims_sa_alg_name(IMS_SA_ALG_UNKNOWN));
    assert_null(ims_sa_alg_name((ims_sa_alg)99));
    assert_string_equal(ims_sa_ealg_name(IMS_SA_EALG_NULL), "null");
    assert_string_equal(ims_sa_ealg_name(IMS_SA_EALG_AES_CBC), "aes-cbc");
    assert_string_equal(ims_sa_ealg_name(IMS_SA_EALG_DES_EDE3_CBC), "des-ede3-cbc");
    assert_null(ims_sa_ealg_name(IMS_SA_EALG_UNKNOWN));
    assert_int_equal(ims_sa_alg_by_name("HMAC-SHA-1-96"), IMS_SA_ALG_HMAC_SHA1_96);
    assert_int_equal(ims_sa_alg_by_name("hmac-md5-96"), IMS_SA_ALG_HMAC_MD5_96);
    assert_int_equal(ims_sa_alg_by_name("hmac-sha-256-128"), IMS_SA_ALG_UNKNOWN);
    assert_int_equal(ims_sa_alg_by_name(NULL), IMS_SA_ALG_UNKNOWN);
    assert_int_equal(ims_sa_ealg_by_name("AES-CBC"), IMS_SA_EALG_AES_CBC);
    assert_int_equal(ims_sa_ealg_by_name("Null"), IMS_SA_EALG_NULL);
    assert_int_equal(ims_sa_ealg_by_name("aes-gcm"), IMS_SA_EALG_UNKNOWN);
}

static void test_parse_phone(void **state)
{
    (void)state;
    ims_sa_list l = parse_ok(PHONE_CLIENT);
    assert_int_equal(l.n, 4);
    const ims_sa_alg algs[4] = { IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_ALG_HMAC_MD5_96,
                                 IMS_SA_ALG_HMAC_MD5_96 };
    const ims_sa_ealg ealgs[4] = { IMS_SA_EALG_NULL, IMS_SA_EALG_AES_CBC, IMS_SA_EALG_NULL, IMS_SA_EALG_AES_CBC };
    for (size_t i = 0; i < 4; i++) {
        const ims_sa_mech *m = &l.mech[i];
        assert_string_equal(m->name, "ipsec-3gpp");
        assert_true(m->supported);
        assert_null(m->why);
        assert_int_equal(m->q, -1);
        assert_int_equal(m->alg, algs[i]);
        assert_int_equal(m->ealg, ealgs[i]);
        assert_int_equal(m->spi_c, 3929102);
        assert_int_equal(m->spi_s, 3929103);
        assert_int_equal(m->port_c, 65524);
        assert_int_equal(m->port_s, 65525);
    }
    assert_string_equal(l.mech[1].params,
                        "alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=3929102;spi-s=3929103;port-c=65524;port-s=65525");

    /* An iPhone-like form: spaces around separators, q, prot/mod written out, ealg absent
     * (= null), extreme but legal numbers, upper-case names (tokens are case-insensitive). */
    l = parse_ok(" IPSEC-3GPP ; Q = 0.5 ;ALG=HMAC-MD5-96; Spi-C=4294967295 ; spi-s=1;port-c=1;port-s=65535;"
                 "prot=ESP;mod=Trans , ipsec-3gpp;q=1.000;alg=hmac-sha-1-96;ealg=des-ede3-cbc;spi-c=0007;spi-s=8;"
                 "port-c=5062;port-s=5062");
    assert_int_equal(l.n, 2);
    assert_true(l.mech[0].supported);
    assert_string_equal(l.mech[0].name, "ipsec-3gpp");
    assert_int_equal(l.mech[0].q, 500);
    assert_int_equal(l.mech[0].alg, IMS_SA_ALG_HMAC_MD5_96);
    assert_int_equal(l.mech[0].ealg, IMS_SA_EALG_NULL);
    assert_int_equal(l.mech[0].spi_c, 4294967295u);
    assert_int_equal(l.mech[0].spi_s, 1);
    assert_int_equal(l.mech[0].port_c, 1);
    assert_int_equal(l.mech[0].port_s, 65535);
    assert_string_equal(l.mech[0].params,
                        "q=0.5;alg=HMAC-MD5-96;spi-c=4294967295;spi-s=1;port-c=1;port-s=65535;prot=ESP;mod=Trans");
    assert_int_equal(l.mech[1].q, 1000);
    assert_int_equal(l.mech[1].ealg, IMS_SA_EALG_DES_EDE3_CBC);
    assert_int_equal(l.mech[1].spi_c, 7);
    assert_int_equal(l.mech[1].port_c, 5062); /* equal UE ports are legal: the SAs still differ by our port */
}

/* Well-formed mechanisms we cannot set up are kept, flagged, with the reason. */
static void test_parse_unsupported(void **state)
{
    (void)state;
    ims_sa_list l = parse_ok(
        "digest;d-alg=md5;d-qop=auth-int;d-ver=\"0123456789abcdef0123456789abcdef\";q=0.2,"
        "tls;q=0.3,"
        "ipsec-3gpp;alg=hmac-sha-256-128;spi-c=1;spi-s=2;port-c=3;port-s=4,"
        "ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-gcm;spi-c=1;spi-s=2;port-c=3;port-s=4,"
        "ipsec-3gpp;alg=hmac-sha-1-96;prot=ah;spi-c=1;spi-s=2;port-c=3;port-s=4,"
        "ipsec-3gpp;alg=hmac-sha-1-96;mod=UDP-enc-tun;spi-c=1;spi-s=2;port-c=3;port-s=4,"
        "ipsec-ike,"
        "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4;x-vendor=\"a;b,c\";flag;h=[2001:db8::1]");
    assert_int_equal(l.n, 8);
    assert_string_equal(l.mech[0].name, "digest");
    assert_int_equal(l.mech[0].q, 200);
    assert_string_equal(l.mech[1].name, "tls");
    assert_string_equal(l.mech[6].name, "ipsec-ike");
    for (size_t i = 0; i < 7; i++) {
        assert_false(l.mech[i].supported);
        assert_non_null(l.mech[i].why);
    }
    assert_non_null(strstr(l.mech[2].why, "alg"));
    assert_non_null(strstr(l.mech[3].why, "ealg"));
    assert_non_null(strstr(l.mech[4].why, "prot"));
    assert_non_null(strstr(l.mech[5].why, "mod"));
    /* Extension parameters are allowed and ignored; a quoted ";" or "," does not split. */
    assert_true(l.mech[7].supported);
    assert_string_equal(l.mech[7].params,
                        "alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4;x-vendor=\"a;b,c\";flag;h=[2001:db8::1]");

    /* Several header lines make one list: parse appends. */
    ims_sa_list two;
    memset(&two, 0, sizeof two);
    char err[128];
    assert_int_equal(ims_secagree_parse("tls", &two, err, sizeof err), 0);
    assert_int_equal(ims_secagree_parse(PHONE_CLIENT, &two, err, sizeof err), 0);
    assert_int_equal(two.n, 5);
    assert_string_equal(two.mech[0].name, "tls");
    assert_int_equal(two.mech[4].alg, IMS_SA_ALG_HMAC_MD5_96);
}

#define GOOD_TAIL ";spi-c=1;spi-s=2;port-c=3;port-s=4"

/* Each value must be refused with a message containing `says`. */
static void expect_refused(const char *value, const char *says)
{
    ims_sa_list l;
    char err[256] = "untouched";
    memset(&l, 0, sizeof l);
    if (ims_secagree_parse(value, &l, err, sizeof err) != -1)
        fail_msg("accepted \"%.80s\"", value);
    if (!strstr(err, says))
        fail_msg("\"%.80s\": message \"%s\" does not say \"%s\"", value, err, says);
    assert_true(l.n <= IMS_SA_MAX_MECHS);
}

static void test_parse_hostile(void **state)
{
    (void)state;
    expect_refused("", "mechanism name expected");
    expect_refused("   ", "mechanism name expected");
    expect_refused(",ipsec-3gpp", "mechanism name expected");
    expect_refused("tls,", "mechanism name expected");       /* empty element */
    expect_refused("tls,,digest", "mechanism name expected");
    expect_refused(";alg=x", "mechanism name expected");
    expect_refused("\x01tls", "0x01");
    expect_refused("tls\x7f", "0x7f");
    expect_refused("tls\r\nVia: x", "0x0d");
    expect_refused("ipsec-3gpp alg=hmac-md5-96", "unexpected character");
    expect_refused("ipsec-3gpp;;alg=hmac-md5-96" GOOD_TAIL, "parameter name expected");
    expect_refused("ipsec-3gpp;=5", "parameter name expected");
    expect_refused("ipsec-3gpp;alg=" GOOD_TAIL, "bad or too long value of alg");
    expect_refused("ipsec-3gpp;alg=\"hmac-md5-96" GOOD_TAIL, "bad or too long value of alg");
    expect_refused("ipsec-3gpp;h=[::1" GOOD_TAIL, "bad or too long value of h");
    expect_refused("tls;x=\"a\x1b[31mb\"", "bad or too long value of x"); /* no control characters, */
    expect_refused("tls;x=\"a\\\x01\"", "bad or too long value of x");   /* quoted or escaped */
    expect_refused("ipsec-3gpp;alg=\"hmac-md5-96\"" GOOD_TAIL, "alg needs a token value");
    expect_refused("ipsec-3gpp;alg" GOOD_TAIL, "alg needs a token value");

    /* Numbers. */
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=0;spi-s=2;port-c=3;port-s=4", "spi-c must be 1..4294967295");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=4294967296;port-c=3;port-s=4", "spi-s must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=99999999999999999999999999;spi-s=2;port-c=3;port-s=4", "spi-c must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=-1;spi-s=2;port-c=3;port-s=4", "spi-c must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=+1;spi-s=2;port-c=3;port-s=4", "spi-c must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=0x10;spi-s=2;port-c=3;port-s=4", "spi-c must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=0;port-s=4", "port-c must be 1..65535");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=65536", "port-s must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=005060", "port-s must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=4.5", "port-s must be");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=7;spi-s=7;port-c=3;port-s=4", "spi-c and spi-s are both 7");
    expect_refused("tls;q=1.5", "q must be a qvalue");
    expect_refused("tls;q=2", "q must be a qvalue");
    expect_refused("tls;q=0.1234", "q must be a qvalue");
    expect_refused("tls;q=-0.1", "q must be a qvalue");
    expect_refused("tls;q=.5", "q must be a qvalue");
    expect_refused("tls;q", "q must be a qvalue");
    expect_refused("tls;q=1.001", "q must be a qvalue");
    expect_refused("digest;d-ver=\"0123456789ABCDEF0123456789abcdef\"", "d-ver");
    expect_refused("digest;d-ver=0123456789abcdef0123456789abcdef", "d-ver");
    expect_refused("digest;d-alg=\"md5\"", "d-alg must be a token");

    /* Missing mandatory ipsec-3gpp parameters (TS 33.203 Annex H). */
    expect_refused("ipsec-3gpp", "alg missing");
    expect_refused("ipsec-3gpp;q=0.1;spi-c=1;spi-s=2;port-c=3;port-s=4", "alg missing");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-s=2;port-c=3;port-s=4", "spi-c missing");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;port-c=3;port-s=4", "spi-s missing");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-s=4", "port-c missing");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3", "port-s missing");

    /* Duplicates, whatever the case or the value. */
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;alg=hmac-md5-96" GOOD_TAIL, "alg appears twice");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;ALG=hmac-sha-1-96" GOOD_TAIL, "alg appears twice");
    expect_refused("ipsec-3gpp;alg=hmac-md5-96;spi-c=9" GOOD_TAIL, "spi-c appears twice");
    expect_refused("tls;q=0.1;q=0.2", "q appears twice");
    expect_refused("tls;x;X", "x appears twice");

    /* Lengths and counts. */
    char buf[IMS_SA_VALUE_MAX + 64];
    memset(buf, 'a', 40);
    buf[40] = '\0';
    expect_refused(buf, "mechanism name longer than 31");
    snprintf(buf, sizeof buf, "tls;%0200d", 0);
    buf[4] = 'p';
    expect_refused(buf, "parameter name too long");
    snprintf(buf, sizeof buf, "tls;p=%0200d", 0);
    expect_refused(buf, "bad or too long value of p");
    memset(buf, 0, sizeof buf);
    strcpy(buf, "tls");
    for (int i = 0; i < 17; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ";p%d", i);
    expect_refused(buf, "more than 16 parameters");
    strcpy(buf, "tls");
    for (int i = 0; i < 16; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ";p%d=%020d", i, i);
    expect_refused(buf, "parameters longer than 255");
    buf[0] = '\0';
    for (int i = 0; i < IMS_SA_MAX_MECHS + 1; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%stls", i ? "," : "");
    expect_refused(buf, "more than 16 mechanisms");
    memset(buf, ' ', IMS_SA_VALUE_MAX + 1);
    memcpy(buf + IMS_SA_VALUE_MAX - 2, "tls", 3);
    buf[IMS_SA_VALUE_MAX + 1] = '\0';
    expect_refused(buf, "value longer than 2048");

    /* API misuse and tiny / absent error buffers do not crash. */
    ims_sa_list l;
    memset(&l, 0, sizeof l);
    char err[4];
    assert_int_equal(ims_secagree_parse(NULL, &l, err, sizeof err), -1);
    assert_int_equal(ims_secagree_parse("tls", NULL, NULL, 0), -1);
    assert_int_equal(ims_secagree_parse("tls;q=9", &l, err, sizeof err), -1);
    assert_int_equal(strlen(err), 3);
    assert_int_equal(ims_secagree_parse("tls;q=9", &l, NULL, 0), -1);
}

static msg_t *parse_msg(const char *headers)
{
    char text[4096];
    snprintf(text, sizeof text,
             "REGISTER sip:ims.lab SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
             "From: <sip:alice@ims.lab>;tag=1\r\n"
             "To: <sip:alice@ims.lab>\r\n"
             "Call-ID: sa1\r\n"
             "CSeq: 1 REGISTER\r\n"
             "%s"
             "Content-Length: 0\r\n\r\n",
             headers);
    msg_t *m = msg_make(sip_default_mclass(), 0, text, (isize_t)strlen(text));
    assert_non_null(m);
    assert_non_null(sip_object(m));
    return m;
}

static void test_parse_sip(void **state)
{
    (void)state;
    ims_sa_list l;
    char err[256];
    /* Two lines, either case of the header name, spaces sofia-sip normalises. */
    msg_t *m = parse_msg("security-client: digest;d-alg=md5, ipsec-3gpp ; alg = hmac-md5-96;spi-c=11;spi-s=22;port-c=7;port-s=8\r\n"
                         "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1;spi-s=2;port-c=5;port-s=6;q=0.5\r\n"
                         "Security-Verify: ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=3;spi-s=4;port-c=5100;port-s=5101;prot=esp;mod=trans\r\n");
    sip_t *sip = sip_object(m);
    assert_int_equal(ims_secagree_parse_sip(sip, "Security-Client", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.mech[0].name, "digest");
    assert_false(l.mech[0].supported);
    assert_int_equal(l.mech[1].alg, IMS_SA_ALG_HMAC_MD5_96);
    assert_int_equal(l.mech[1].spi_s, 22);
    assert_int_equal(l.mech[2].q, 500);
    assert_int_equal(l.mech[2].ealg, IMS_SA_EALG_AES_CBC);
    assert_int_equal(ims_secagree_parse_sip(sip, "security-verify", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.mech[0].port_s, 5101);
    assert_int_equal(ims_secagree_parse_sip(sip, "Security-Server", &l, err, sizeof err), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(ims_secagree_parse_sip(sip, "Via", &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a sec-agree header"));
    assert_int_equal(ims_secagree_parse_sip(NULL, "Security-Client", &l, err, sizeof err), -1);
    msg_destroy(m);

    /* sofia-sip accepts the line, our checks refuse it. */
    m = parse_msg("Security-Client: ipsec-3gpp;alg=hmac-md5-96;spi-c=0;spi-s=2;port-c=3;port-s=4\r\n");
    assert_int_equal(ims_secagree_parse_sip(sip_object(m), "Security-Client", &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "spi-c must be"));
    msg_destroy(m);

    /* sofia-sip refuses the line (it goes to sip_error): an error, not an absent header. */
    const char *broken[] = { "Security-Client: \r\n", "Security-Client: ipsec-3gpp;;alg=hmac-md5-96\r\n" };
    for (size_t i = 0; i < 2; i++) {
        m = parse_msg(broken[i]);
        assert_null(sip_object(m)->sip_security_client);
        assert_int_equal(ims_secagree_parse_sip(sip_object(m), "Security-Client", &l, err, sizeof err), -1);
        assert_non_null(strstr(err, "malformed"));
        assert_int_equal(l.n, 0);
        /* Another sec-agree header of the same message is unaffected. */
        assert_int_equal(ims_secagree_parse_sip(sip_object(m), "Security-Verify", &l, err, sizeof err), 0);
        msg_destroy(m);
    }
}

static const ims_sa_alg ALG_SHA1_MD5[] = { IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_ALG_HMAC_MD5_96 };
static const ims_sa_ealg EALG_AES_NULL[] = { IMS_SA_EALG_AES_CBC, IMS_SA_EALG_NULL };
static const ims_sa_ealg EALG_NULL_AES_DES[] = { IMS_SA_EALG_NULL, IMS_SA_EALG_AES_CBC, IMS_SA_EALG_DES_EDE3_CBC };

static void test_choose(void **state)
{
    (void)state;
    ims_sa_mech chosen;
    ims_sa_list l = parse_ok(PHONE_CLIENT);

    /* Encryption preference first, then integrity. */
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, EALG_AES_NULL, 2, &chosen), 1);
    assert_int_equal(chosen.alg, IMS_SA_ALG_HMAC_SHA1_96);
    assert_int_equal(chosen.ealg, IMS_SA_EALG_AES_CBC);
    assert_int_equal(chosen.spi_c, 3929102);
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, EALG_NULL_AES_DES, 3, &chosen), 0);
    const ims_sa_alg md5_sha1[] = { IMS_SA_ALG_HMAC_MD5_96, IMS_SA_ALG_HMAC_SHA1_96 };
    assert_int_equal(ims_secagree_choose(&l, md5_sha1, 2, EALG_AES_NULL, 2, NULL), 3);
    /* A value missing from our lists is not acceptable. */
    const ims_sa_alg md5_only[] = { IMS_SA_ALG_HMAC_MD5_96 };
    assert_int_equal(ims_secagree_choose(&l, md5_only, 1, EALG_NULL_AES_DES, 3, &chosen), 2);
    const ims_sa_ealg des_only[] = { IMS_SA_EALG_DES_EDE3_CBC };
    memset(&chosen, 0x5a, sizeof chosen);
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, des_only, 1, &chosen), -1);
    assert_int_equal(chosen.spi_c, 0x5a5a5a5a); /* untouched */
    assert_int_equal(ims_secagree_choose(&l, NULL, 0, EALG_AES_NULL, 2, &chosen), -1);
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, NULL, 0, &chosen), -1);
    assert_int_equal(ims_secagree_choose(NULL, ALG_SHA1_MD5, 2, EALG_AES_NULL, 2, &chosen), -1);

    /* Ties (same alg/ealg) go to the UE: higher q, absent q below q=0, then the earlier one.
     * Unsupported mechanisms never win, whatever their q. */
    l = parse_ok("tls;q=1,"
                 "ipsec-3gpp;alg=hmac-sha-256-128;q=1" GOOD_TAIL ","
                 "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=10;spi-s=11;port-c=3;port-s=4,"
                 "ipsec-3gpp;q=0;alg=hmac-sha-1-96;spi-c=20;spi-s=21;port-c=3;port-s=4,"
                 "ipsec-3gpp;q=0.7;alg=hmac-sha-1-96;spi-c=30;spi-s=31;port-c=3;port-s=4,"
                 "ipsec-3gpp;q=0.700;alg=hmac-sha-1-96;spi-c=40;spi-s=41;port-c=3;port-s=4,"
                 "ipsec-3gpp;q=1;alg=hmac-md5-96;spi-c=50;spi-s=51;port-c=3;port-s=4");
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, EALG_AES_NULL, 2, &chosen), 4);
    assert_int_equal(chosen.spi_c, 30);
    assert_int_equal(ims_secagree_choose(&l, md5_sha1, 2, EALG_AES_NULL, 2, &chosen), 6);
    l = parse_ok("ipsec-3gpp;alg=hmac-sha-1-96;spi-c=10;spi-s=11;port-c=3;port-s=4,"
                 "ipsec-3gpp;q=0;alg=hmac-sha-1-96;spi-c=20;spi-s=21;port-c=3;port-s=4");
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, EALG_AES_NULL, 2, &chosen), 1);
    l = parse_ok("ipsec-3gpp;alg=hmac-sha-1-96;spi-c=10;spi-s=11;port-c=3;port-s=4,"
                 "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=20;spi-s=21;port-c=3;port-s=4");
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, EALG_AES_NULL, 2, &chosen), 0);
    /* Only unsupported / nothing offered. */
    l = parse_ok("digest;q=1,tls");
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, EALG_NULL_AES_DES, 3, &chosen), -1);
    memset(&l, 0, sizeof l);
    assert_int_equal(ims_secagree_choose(&l, ALG_SHA1_MD5, 2, EALG_NULL_AES_DES, 3, &chosen), -1);
}

static void test_format(void **state)
{
    (void)state;
    ims_sa_mech m = {
        .name = "ipsec-3gpp", .supported = true, .q = 100, .alg = IMS_SA_ALG_HMAC_SHA1_96,
        .ealg = IMS_SA_EALG_AES_CBC, .spi_c = 1111, .spi_s = 2222, .port_c = 5100, .port_s = 5101,
    };
    char buf[256];
    const char *want = "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;"
                       "port-s=5101;prot=esp;mod=trans";
    assert_int_equal(ims_secagree_format(&m, buf, sizeof buf), (int)strlen(want));
    assert_string_equal(buf, want);

    /* Round trip: what we write parses back to the same mechanism, and matches as Verify. */
    ims_sa_list sent = parse_ok(buf);
    assert_int_equal(sent.n, 1);
    assert_true(sent.mech[0].supported);
    assert_int_equal(sent.mech[0].q, 100);
    assert_int_equal(sent.mech[0].alg, m.alg);
    assert_int_equal(sent.mech[0].ealg, m.ealg);
    assert_int_equal(sent.mech[0].spi_c, m.spi_c);
    assert_int_equal(sent.mech[0].spi_s, m.spi_s);
    assert_int_equal(sent.mech[0].port_c, m.port_c);
    assert_int_equal(sent.mech[0].port_s, m.port_s);
    ims_sa_list mine = { .n = 1, .mech = { m } };
    assert_true(ims_secagree_verify_matches(&sent, &mine));

    /* q written in its shortest form, or not at all. */
    const struct { int q; const char *text; } qs[] = {
        { 1000, ";q=1;" }, { 0, ";q=0;" }, { 500, ";q=0.5;" }, { 50, ";q=0.05;" }, { 5, ";q=0.005;" },
        { 123, ";q=0.123;" }, { 120, ";q=0.12;" }, { 999, ";q=0.999;" },
    };
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        m.q = qs[i].q;
        assert_true(ims_secagree_format(&m, buf, sizeof buf) > 0);
        if (!strstr(buf, qs[i].text))
            fail_msg("q %d gave %s", qs[i].q, buf);
        ims_sa_list back = parse_ok(buf);
        assert_int_equal(back.mech[0].q, qs[i].q);
    }
    m.q = -1;
    m.ealg = IMS_SA_EALG_NULL;
    m.alg = IMS_SA_ALG_HMAC_MD5_96;
    assert_true(ims_secagree_format(&m, buf, sizeof buf) > 0);
    assert_string_equal(buf, "ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101;"
                             "prot=esp;mod=trans");

    /* Refused: too small a buffer, not a supported ipsec-3gpp, incomplete values. */
    assert_int_equal(ims_secagree_format(&m, buf, 20), -1);
    assert_int_equal(ims_secagree_format(&m, buf, 0), -1);
    ims_sa_mech bad = m;
    bad.supported = false;
    assert_int_equal(ims_secagree_format(&bad, buf, sizeof buf), -1);
    bad = m;
    strcpy(bad.name, "tls");
    assert_int_equal(ims_secagree_format(&bad, buf, sizeof buf), -1);
    bad = m;
    bad.spi_s = 0;
    assert_int_equal(ims_secagree_format(&bad, buf, sizeof buf), -1);
    bad = m;
    bad.alg = IMS_SA_ALG_UNKNOWN;
    assert_int_equal(ims_secagree_format(&bad, buf, sizeof buf), -1);
    bad = m;
    bad.q = 1001;
    assert_int_equal(ims_secagree_format(&bad, buf, sizeof buf), -1);
}

static void test_verify(void **state)
{
    (void)state;
    const char *sent_text = "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;"
                            "port-s=5101;prot=esp;mod=trans";
    ims_sa_list sent = parse_ok(sent_text);

    /* Same values, written differently: equal. */
    const char *same[] = {
        sent_text,
        "IPSEC-3GPP ; Q=0.100 ; ALG=HMAC-SHA-1-96;EALG=AES-CBC;SPI-C=1111;SPI-S=2222;PORT-C=5100;PORT-S=5101",
        "ipsec-3gpp;port-s=5101;port-c=5100;spi-s=2222;spi-c=01111;ealg=aes-cbc;alg=hmac-sha-1-96;q=0.1",
    };
    for (size_t i = 0; i < 3; i++) {
        ims_sa_list v = parse_ok(same[i]);
        if (!ims_secagree_verify_matches(&v, &sent))
            fail_msg("\"%s\" should match", same[i]);
    }
    /* Anything else: not equal (RFC 3329 §2.3.1: 494 / refused). */
    const char *other[] = {
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1112;spi-s=2222;port-c=5100;port-s=5101",
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2223;port-c=5100;port-s=5101",
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5101;port-s=5101",
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;port-s=5100",
        "ipsec-3gpp;q=0.1;alg=hmac-md5-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101",
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=null;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101",
        "ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101",
        "ipsec-3gpp;q=0.2;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101",
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101;prot=ah",
        "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101,tls",
        "tls",
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        ims_sa_list v = parse_ok(other[i]);
        if (ims_secagree_verify_matches(&v, &sent))
            fail_msg("\"%s\" should not match", other[i]);
    }
    ims_sa_list empty;
    memset(&empty, 0, sizeof empty);
    assert_false(ims_secagree_verify_matches(&empty, &sent));
    assert_false(ims_secagree_verify_matches(&empty, &empty));
    assert_false(ims_secagree_verify_matches(NULL, &sent));
    assert_false(ims_secagree_verify_matches(&sent, NULL));

    /* Lists: same order required; other mechanisms compared on their parameter text. */
    ims_sa_list two = parse_ok("digest;d-alg=md5;q=0.2,tls;q=0.1");
    assert_true(ims_secagree_verify_matches(&two, &two));
    ims_sa_list v = parse_ok("digest ; d-alg=MD5 ; q=0.2 , TLS;Q=0.1");
    assert_true(ims_secagree_verify_matches(&v, &two));
    v = parse_ok("tls;q=0.1,digest;d-alg=md5;q=0.2");
    assert_false(ims_secagree_verify_matches(&v, &two));
    v = parse_ok("digest;d-alg=sha;q=0.2,tls;q=0.1");
    assert_false(ims_secagree_verify_matches(&v, &two));
}

/* ---------- keys against the vectors file ---------- */

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
    if (strcmp(hex, "-") == 0)
        return 0;
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > max)
        fail_msg("bad hex field (%zu characters)", n);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            fail_msg("bad hex at %zu", i);
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

static const EVP_MD *md_of(const char *xfrm)
{
    if (strcmp(xfrm, "hmac(md5)") == 0)
        return EVP_md5();
    if (strcmp(xfrm, "hmac(sha1)") == 0)
        return EVP_sha1();
    fail_msg("unexpected auth algorithm %s", xfrm);
    return NULL;
}

static const EVP_CIPHER *cipher_of(const char *xfrm, size_t *block)
{
    if (strcmp(xfrm, "cbc(aes)") == 0) {
        *block = 16;
        return EVP_aes_128_cbc();
    }
    if (strcmp(xfrm, "cbc(des3_ede)") == 0) {
        *block = 8;
        return EVP_des_ede3_cbc();
    }
    if (strcmp(xfrm, "ecb(cipher_null)") == 0) {
        *block = 0;
        return NULL;
    }
    fail_msg("unexpected encryption algorithm %s", xfrm);
    return NULL;
}

/* Opens an ESP packet (RFC 4303) with the keys: ICV, decryption, trailer, payload. True when
 * all of them check out; false for a wrong ICV or a decryption that does not give the payload
 * (tampered packet, wrong key). */
static bool esp_open(const ims_sa_keys *k, const uint8_t *pkt, size_t len, const uint8_t *payload, size_t plen)
{
    assert_true(len > 8 + 12);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    assert_non_null(HMAC(md_of(k->auth_xfrm), k->auth_key, (int)k->auth_key_len, pkt, len - 12, md, &mdlen));
    assert_true(k->auth_trunc_bits == 96 && mdlen >= 12);
    if (memcmp(md, pkt + len - 12, 12) != 0)
        return false;

    size_t block = 0;
    const EVP_CIPHER *c = cipher_of(k->enc_xfrm, &block);
    const uint8_t *iv = pkt + 8, *body = pkt + 8 + block;
    size_t blen = len - 8 - block - 12;
    uint8_t plain[1024];
    assert_true(blen >= 2 && blen <= sizeof plain);
    if (c) {
        assert_int_equal((size_t)EVP_CIPHER_key_length(c), k->enc_key_len);
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int n1 = 0, n2 = 0;
        assert_int_equal(EVP_DecryptInit_ex(ctx, c, NULL, k->enc_key, iv), 1);
        EVP_CIPHER_CTX_set_padding(ctx, 0);
        assert_int_equal(EVP_DecryptUpdate(ctx, plain, &n1, body, (int)blen), 1);
        assert_int_equal(EVP_DecryptFinal_ex(ctx, plain + n1, &n2), 1);
        EVP_CIPHER_CTX_free(ctx);
        assert_int_equal((size_t)(n1 + n2), blen);
    } else {
        assert_int_equal(k->enc_key_len, 0);
        memcpy(plain, body, blen);
    }
    /* Trailer: padding 1, 2, 3 ..., pad length, next header 17 (UDP). */
    size_t pad = plain[blen - 2];
    if (plain[blen - 1] != 17 || pad + 2 > blen || blen - 2 - pad != plen)
        return false;
    for (size_t i = 0; i < pad; i++)
        if (plain[blen - 2 - pad + i] != i + 1)
            return false;
    return memcmp(plain, payload, plen) == 0;
}

static void test_keys_vectors(void **state)
{
    (void)state;
    const char *path = IMS_VECTORS_DIR "/secagree-esp.tsv";
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char line[2048];
    uint8_t payload[512];
    size_t plen = 0;
    int rows = 0;
    bool header = false;
    bool seen[3][4] = { { false } };
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        const char *pfx = "# payload (the decrypted ESP payload of every packet): ";
        if (strncmp(line, pfx, strlen(pfx)) == 0) {
            plen = unhex(line + strlen(pfx), payload, sizeof payload);
            continue;
        }
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (!header) {
            assert_string_equal(line, "alg\tealg\tck\tik\tauth_key\tenc_key\tesp_packet");
            header = true;
            continue;
        }
        char *fld[7];
        char *save = NULL;
        int n = 0;
        for (char *t = strtok_r(line, "\t", &save); t && n < 7; t = strtok_r(NULL, "\t", &save))
            fld[n++] = t;
        assert_int_equal(n, 7);
        ims_sa_alg alg = ims_sa_alg_by_name(fld[0]);
        ims_sa_ealg ealg = ims_sa_ealg_by_name(fld[1]);
        assert_int_not_equal(alg, IMS_SA_ALG_UNKNOWN);
        assert_int_not_equal(ealg, IMS_SA_EALG_UNKNOWN);
        uint8_t ck[16], ik[16], akey[32], ekey[32], pkt[512];
        assert_int_equal(unhex(fld[2], ck, sizeof ck), 16);
        assert_int_equal(unhex(fld[3], ik, sizeof ik), 16);
        size_t alen = unhex(fld[4], akey, sizeof akey), elen = unhex(fld[5], ekey, sizeof ekey);
        size_t pktlen = unhex(fld[6], pkt, sizeof pkt);

        ims_sa_keys k;
        assert_int_equal(ims_secagree_keys(alg, ealg, ck, ik, &k), 0);
        assert_int_equal(k.auth_key_len, alen);
        assert_memory_equal(k.auth_key, akey, alen);
        assert_int_equal(k.enc_key_len, elen);
        if (elen)
            assert_memory_equal(k.enc_key, ekey, elen);
        assert_true(plen > 0);
        if (!esp_open(&k, pkt, pktlen, payload, plen))
            fail_msg("%s/%s: ICV does not verify with the derived key", fld[0], fld[1]);
        /* The check can fail: one flipped bit of ciphertext, or IK without its zero bits. */
        pkt[20] ^= 0x01;
        assert_false(esp_open(&k, pkt, pktlen, payload, plen));
        pkt[20] ^= 0x01;
        /* CK and IK swapped: refused. (IK alone instead of IK || 0^32 would pass: HMAC pads its
         * key with zeros, RFC 2104 §2; the expansion gives the 160-bit key RFC 2404 asks for.) */
        ims_sa_keys swapped;
        assert_int_equal(ims_secagree_keys(alg, ealg, ik, ck, &swapped), 0);
        assert_false(esp_open(&swapped, pkt, pktlen, payload, plen));
        if (ealg != IMS_SA_EALG_NULL) {
            ims_sa_keys wrong_enc = k;
            memcpy(wrong_enc.enc_key, ik, 16); /* right ICV key, wrong cipher key */
            assert_false(esp_open(&wrong_enc, pkt, pktlen, payload, plen));
        }
        seen[alg][ealg] = true;
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 6);
    for (int a = IMS_SA_ALG_HMAC_MD5_96; a <= IMS_SA_ALG_HMAC_SHA1_96; a++)
        for (int e = IMS_SA_EALG_NULL; e <= IMS_SA_EALG_DES_EDE3_CBC; e++)
            if (!seen[a][e])
                fail_msg("no vector for %s/%s", ims_sa_alg_name(a), ims_sa_ealg_name(e));
}

static void test_keys_api(void **state)
{
    (void)state;
    uint8_t ck[16], ik[16];
    for (int i = 0; i < 16; i++) {
        ck[i] = (uint8_t)(0x10 + i);
        ik[i] = (uint8_t)(0x80 + i);
    }
    ims_sa_keys k;
    assert_int_equal(ims_secagree_keys(IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_EALG_DES_EDE3_CBC, ck, ik, &k), 0);
    assert_string_equal(k.auth_xfrm, "hmac(sha1)");
    assert_string_equal(k.enc_xfrm, "cbc(des3_ede)");
    assert_int_equal(k.auth_trunc_bits, 96);
    assert_memory_equal(k.enc_key + 16, ck, 8); /* K3 = K1 */
    assert_int_equal(ims_secagree_keys(IMS_SA_ALG_HMAC_MD5_96, IMS_SA_EALG_NULL, ck, ik, &k), 0);
    assert_string_equal(k.auth_xfrm, "hmac(md5)");
    assert_string_equal(k.enc_xfrm, "ecb(cipher_null)");
    assert_int_equal(k.enc_key_len, 0);
    assert_int_equal(ims_secagree_keys(IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_EALG_AES_CBC, ck, ik, &k), 0);
    assert_string_equal(k.enc_xfrm, "cbc(aes)");

    ims_secagree_keys_wipe(&k);
    static const uint8_t zero[sizeof(ims_sa_keys)];
    assert_memory_equal(&k, zero, sizeof k);
    ims_secagree_keys_wipe(NULL);

    /* Unknown values: refused, nothing left in out. */
    assert_int_equal(ims_secagree_keys(IMS_SA_ALG_UNKNOWN, IMS_SA_EALG_NULL, ck, ik, &k), -1);
    assert_int_equal(ims_secagree_keys(IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_EALG_UNKNOWN, ck, ik, &k), -1);
    assert_memory_equal(&k, zero, sizeof k);
    assert_int_equal(ims_secagree_keys((ims_sa_alg)7, IMS_SA_EALG_NULL, ck, ik, &k), -1);
    assert_int_equal(ims_secagree_keys(IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_EALG_NULL, NULL, ik, &k), -1);
    assert_int_equal(ims_secagree_keys(IMS_SA_ALG_HMAC_SHA1_96, IMS_SA_EALG_NULL, ck, ik, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_phone),
        cmocka_unit_test(test_parse_unsupported),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_parse_sip),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_keys_vectors),
        cmocka_unit_test(test_keys_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
