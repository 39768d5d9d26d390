/*
 * test_pcscf_bindrecord: the P-CSCF's binding and subscription records for the state store
 * (pcscf/pcscf_bindrecord.c): a round trip keeps what a restarted P-CSCF needs (IMPU, flow,
 * contacts with expiry, P-Associated-URI set, Service-Route; a subscription's dialog and CSeq);
 * records are sealed (a changed byte, another key, another MAC key: refused), and records that a
 * leaked secret could seal are still checked: a key naming another flow or identity, a TCP or
 * IPsec flow, a host name instead of an address, CR/LF or NUL in a field, non-SIP contacts or
 * routes, too many contacts, unknown versions, garbage; expiries beyond the limit are shortened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ims_aka.h"
#include "pcscf_bindrecord.h"

#define NOW_MONO 1000
#define NOW_WALL 1700000000

static const uint8_t KEY[PCSCF_REC_MAC_KEY] = "0123456789abcdef";

static pcscf_bindings *store_with_alice(const pcscf_addr *src)
{
    pcscf_bindings *st = pcscf_bindings_new(NULL, NULL);
    const char *impus[] = { "sip:alice@ims.lab", "tel:+15550001" };
    const char *routes[] = { "sip:orig@scscf.ims.lab:6060;lr" };
    pcscf_contact c[] = { { .uri = "sip:alice@10.0.0.1:5070", .expires = NOW_MONO + 600 },
                          { .uri = "sip:alice@10.0.0.1:5071;ob", .expires = NOW_MONO + 300 } };
    pcscf_binding_update u = { .impu = "sip:alice@ims.lab", .source = src, .impus = impus, .n_impus = 2,
                               .service_route = routes, .n_service_route = 1, .replace_route = true,
                               .contacts = c, .n_contacts = 2 };
    assert_int_equal(pcscf_bindings_update(st, &u, NOW_MONO), PCSCF_BINDING_CREATED);
    return st;
}

static const pcscf_addr UDP = { .host = "10.0.0.1", .port = 5070, .transport = "udp" };

/* A sealed value for key (the MAC the P-CSCF computes), from JSON text. */
static char *seal_text(const char *key, const char *json)
{
    size_t kl = strlen(key), jl = strlen(json);
    char *buf = malloc(kl + 1 + jl);
    memcpy(buf, key, kl);
    buf[kl] = '\n';
    memcpy(buf + kl + 1, json, jl);
    uint8_t mac[16];
    ims_hmac_md5(KEY, sizeof(KEY), buf, kl + 1 + jl, mac);
    free(buf);
    char *out = malloc(33 + jl + 1);
    ims_hex_encode(mac, 16, out);
    out[32] = ' ';
    memcpy(out + 33, json, jl + 1);
    return out;
}

static void test_round_trip(void **state)
{
    (void)state;
    pcscf_bindings *st = store_with_alice(&UDP);
    const pcscf_binding *b = pcscf_bindings_first(st);
    int64_t ttl = 0;
    char *key = pcscf_bindrecord_key(b->impu, &b->source);
    assert_string_equal(key, "bind:udp:10.0.0.1:5070:sip:alice@ims.lab");
    char *v = pcscf_bindrecord_encode(b, KEY, NOW_MONO, NOW_WALL, &ttl);
    assert_non_null(v);
    assert_int_equal(ttl, 600 + PCSCF_BINDRECORD_GRACE_S);
    assert_null(strstr(v, "0123456789abcdef"));   /* the key itself is never in a record */

    pcscf_bindrecord r;
    char err[200];
    assert_int_equal(pcscf_bindrecord_decode(key, v, strlen(v), KEY, NOW_WALL + 10, &r, err, sizeof(err)), 0);
    assert_string_equal(r.impu, "sip:alice@ims.lab");
    assert_string_equal(r.source.host, "10.0.0.1");
    assert_int_equal(r.source.port, 5070);
    assert_string_equal(r.source.transport, "udp");
    assert_int_equal(r.n_impus, 2);
    assert_string_equal(r.impus[1], "tel:+15550001");
    assert_int_equal(r.n_routes, 1);
    assert_string_equal(r.routes[0], "sip:orig@scscf.ims.lab:6060;lr");
    assert_int_equal(r.n_contacts, 2);
    assert_string_equal(r.contacts[1].uri, "sip:alice@10.0.0.1:5071;ob");
    assert_int_equal(r.contacts[0].expires, NOW_WALL + 600);
    assert_int_equal(r.contacts[1].expires, NOW_WALL + 300);
    pcscf_bindrecord_free(&r);

    /* sealed: one byte changed, another key, another MAC key */
    char *bad = strdup(v);
    char *p = strstr(bad, "5070");
    p[3] = '1';
    assert_int_equal(pcscf_bindrecord_decode(key, bad, strlen(bad), KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "MAC"));
    const char *other = "bind:udp:10.0.0.9:5070:sip:alice@ims.lab";
    assert_int_equal(pcscf_bindrecord_decode(other, v, strlen(v), KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "MAC"));
    uint8_t key2[PCSCF_REC_MAC_KEY];
    memcpy(key2, KEY, sizeof(key2));
    key2[0] ^= 1;
    assert_int_equal(pcscf_bindrecord_decode(key, v, strlen(v), key2, NOW_WALL, &r, err, sizeof(err)), -1);
    free(bad);
    free(v);
    free(key);
    pcscf_bindings_free(st);
}

static void test_unstorable_flows(void **state)
{
    (void)state;
    pcscf_addr tcp = { .host = "10.0.0.1", .port = 5070, .transport = "tcp" };
    pcscf_addr sa = { .host = "10.0.0.1", .port = 5070, .transport = "sa" };
    assert_false(pcscf_bindrecord_storable(&tcp));
    assert_false(pcscf_bindrecord_storable(&sa));
    assert_true(pcscf_bindrecord_storable(&UDP));
    pcscf_bindings *st = store_with_alice(&tcp);
    int64_t ttl;
    assert_null(pcscf_bindrecord_encode(pcscf_bindings_first(st), KEY, NOW_MONO, NOW_WALL, &ttl));
    pcscf_bindings_free(st);
    pcscf_addr v6 = { .host = "2001:db8::1", .port = 5060, .transport = "udp" };
    char *k = pcscf_bindrecord_key("sip:Alice@IMS.lab", &v6);
    assert_string_equal(k, "bind:udp:[2001:db8::1]:5060:sip:Alice@ims.lab");
    free(k);
}

#define GOOD_BODY(impu, host, tp, uri, extra)                                                            \
    "{\"v\":1,\"impu\":\"" impu "\",\"host\":\"" host "\",\"port\":5070,\"tp\":\"" tp "\",\"impus\":[],"  \
    "\"routes\":[\"sip:scscf.ims.lab;lr\"],\"contacts\":[{\"uri\":\"" uri "\",\"exp\":1700000600}]" extra "}"

static void expect_refused(const char *key, const char *json, const char *why)
{
    char *v = seal_text(key, json);
    pcscf_bindrecord r;
    char err[200] = "";
    assert_int_equal(pcscf_bindrecord_decode(key, v, strlen(v), KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    if (!strstr(err, why))
        fail_msg("%s: error '%s', expected '%s'", json, err, why);
    assert_null(r.impu);
    free(v);
}

static void test_hostile(void **state)
{
    (void)state;
    const char *k = "bind:udp:10.0.0.1:5070:sip:alice@ims.lab";
    /* sanity: the good one passes */
    char *v = seal_text(k, GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "udp", "sip:a@10.0.0.1", ""));
    pcscf_bindrecord r;
    char err[200];
    assert_int_equal(pcscf_bindrecord_decode(k, v, strlen(v), KEY, NOW_WALL, &r, err, sizeof(err)), 0);
    pcscf_bindrecord_free(&r);
    free(v);

    /* another user's identity or another flow under this key */
    expect_refused(k, GOOD_BODY("sip:bob@ims.lab", "10.0.0.1", "udp", "sip:a@10.0.0.1", ""), "key does not name");
    expect_refused(k, GOOD_BODY("sip:alice@ims.lab", "10.0.0.2", "udp", "sip:a@10.0.0.1", ""), "key does not name");
    /* flows that cannot be restored, a host name */
    expect_refused("bind:tcp:10.0.0.1:5070:sip:alice@ims.lab",
                   GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "tcp", "sip:a@10.0.0.1", ""), "only UDP");
    expect_refused("bind:sa:10.0.0.1:5070:sip:alice@ims.lab",
                   GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "sa", "sip:a@10.0.0.1", ""), "only UDP");
    expect_refused(k, GOOD_BODY("sip:alice@ims.lab", "evil.example", "udp", "sip:a@10.0.0.1", ""), "numeric");
    /* header injection, NUL, non-SIP */
    expect_refused(k, GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "udp", "sip:a@10.0.0.1\\r\\nX: 1", ""),
                   "control character");
    expect_refused(k, GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "udp", "sip:a@10.0.0.1\\u0000x", ""), "NUL");
    expect_refused(k, GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "udp", "http://x/", ""), "not a SIP URI");
    expect_refused(k, "{\"v\":1,\"impu\":\"sip:alice@ims.lab\",\"host\":\"10.0.0.1\",\"port\":5070,\"tp\":\"udp\","
                      "\"impus\":[\"sip:x@y\\r\\nVia: z\"],\"routes\":[],\"contacts\":[{\"uri\":\"sip:a@b\",\"exp\":1}]}",
                   "control character");
    expect_refused(k, "{\"v\":1,\"impu\":\"sip:alice@ims.lab\",\"host\":\"10.0.0.1\",\"port\":5070,\"tp\":\"udp\","
                      "\"impus\":[],\"routes\":[\"mailto:x\"],\"contacts\":[{\"uri\":\"sip:a@b\",\"exp\":1}]}",
                   "not a URI of its kind");
    /* counts, types, versions, garbage */
    expect_refused(k, "{\"v\":1,\"impu\":\"sip:alice@ims.lab\",\"host\":\"10.0.0.1\",\"port\":5070,\"tp\":\"udp\","
                      "\"impus\":[],\"routes\":[],\"contacts\":[]}", "contacts");
    expect_refused(k, "{\"v\":2}", "version");
    expect_refused(k, "{\"v\":1,\"impu\":7}", "not a string");
    expect_refused(k, "[1,2]", "not a JSON object");
    expect_refused(k, "{\"v\":1", "not JSON");
    expect_refused(k, GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "udp", "sip:a@10.0.0.1", ",\"port\":0"), "port");

    /* unsealed and truncated input */
    const char *plain = GOOD_BODY("sip:alice@ims.lab", "10.0.0.1", "udp", "sip:a@10.0.0.1", "");
    assert_int_equal(pcscf_bindrecord_decode(k, plain, strlen(plain), KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a sealed record"));
    assert_int_equal(pcscf_bindrecord_decode(k, "", 0, KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    assert_int_equal(pcscf_bindrecord_decode(k, NULL, 0, KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    assert_int_equal(pcscf_bindrecord_decode("reg:x", plain, strlen(plain), KEY, NOW_WALL, &r, err, sizeof(err)), -1);
}

static void test_clamped(void **state)
{
    (void)state;
    const char *k = "bind:udp:10.0.0.1:5070:sip:alice@ims.lab";
    char *v = seal_text(k, "{\"v\":1,\"impu\":\"sip:alice@ims.lab\",\"host\":\"10.0.0.1\",\"port\":5070,\"tp\":\"udp\","
                           "\"impus\":[],\"routes\":[],\"contacts\":[{\"uri\":\"sip:a@b\",\"exp\":99999999999}]}");
    pcscf_bindrecord r;
    char err[200];
    assert_int_equal(pcscf_bindrecord_decode(k, v, strlen(v), KEY, NOW_WALL, &r, err, sizeof(err)), 0);
    assert_int_equal(r.contacts[0].expires, NOW_WALL + PCSCF_BINDRECORD_MAX_EXPIRES);
    pcscf_bindrecord_free(&r);
    free(v);
}

static void test_subscription(void **state)
{
    (void)state;
    pcscf_subrecord s = { .impu = "sip:alice@ims.lab", .call_id = "reg-1@pcscf", .from_tag = "ft",
                          .to_tag = "tt", .target = "sip:scscf.ims.lab:6060", .cseq = 7, .expires = NOW_WALL + 900 };
    s.routes[0] = "sip:scscf.ims.lab:6060;lr";
    s.n_routes = 1;
    int64_t ttl = 0;
    char *k = pcscf_subrecord_key(s.impu);
    assert_string_equal(k, "sub:sip:alice@ims.lab");
    char *v = pcscf_subrecord_encode(&s, KEY, NOW_WALL, &ttl);
    assert_int_equal(ttl, 900 + PCSCF_BINDRECORD_GRACE_S);
    pcscf_subrecord r;
    char err[200];
    assert_int_equal(pcscf_subrecord_decode(k, v, strlen(v), KEY, NOW_WALL, &r, err, sizeof(err)), 0);
    assert_string_equal(r.call_id, "reg-1@pcscf");
    assert_string_equal(r.to_tag, "tt");
    assert_string_equal(r.routes[0], "sip:scscf.ims.lab:6060;lr");
    assert_int_equal(r.cseq, 7);
    assert_int_equal(r.expires, NOW_WALL + 900);
    pcscf_subrecord_free(&r);
    /* a subscription record under another user's key, a target that is not SIP */
    assert_int_equal(pcscf_subrecord_decode("sub:sip:bob@ims.lab", v, strlen(v), KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    free(v);
    char *bad = seal_text("sub:sip:bob@ims.lab", "{\"v\":1,\"impu\":\"sip:alice@ims.lab\",\"callid\":\"c\",\"ftag\":\"f\","
                          "\"ttag\":\"t\",\"target\":\"sip:x\",\"routes\":[],\"cseq\":1,\"exp\":1}");
    assert_int_equal(pcscf_subrecord_decode("sub:sip:bob@ims.lab", bad, strlen(bad), KEY, NOW_WALL, &r, err,
                                            sizeof(err)), -1);
    assert_non_null(strstr(err, "key does not name"));
    free(bad);
    bad = seal_text(k, "{\"v\":1,\"impu\":\"sip:alice@ims.lab\",\"callid\":\"c\",\"ftag\":\"f\","
                       "\"ttag\":\"t\\n\",\"target\":\"sip:x\",\"routes\":[],\"cseq\":1,\"exp\":1}");
    assert_int_equal(pcscf_subrecord_decode(k, bad, strlen(bad), KEY, NOW_WALL, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "control character"));
    free(bad);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_unstorable_flows),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_clamped),
        cmocka_unit_test(test_subscription),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
