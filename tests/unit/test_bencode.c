/*
 * Unit tests for common/ims_bencode.c (the codec of rtpengine's ng protocol).
 *
 * Reference: BitTorrent BEP 3 "bencoding" (i<n>e, <len>:<bytes>, l...e, d...e); the examples of
 * BEP 3 itself ("4:spam", "i3e", "i-3e", "l4:spam4:eggse", "d3:cow3:moo4:spam4:eggse") and an
 * ng exchange of rtpengine 10.5 as seen on the wire (tests/component/test_rtpengine.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ims_bencode.h"

static ims_benc_doc *dec(const char *s)
{
    char err[128] = "";
    ims_benc_doc *d = ims_benc_decode(s, strlen(s), NULL, err, sizeof(err));
    if (!d)
        fail_msg("'%s' refused: %s", s, err);
    return d;
}

/* Decoding must fail, with an error naming `pos`. */
static void refused_at(const char *s, size_t len, const ims_benc_limits *lim, size_t pos, const char *what)
{
    char err[128] = "";
    ims_benc_doc *d = ims_benc_decode(s, len, lim, err, sizeof(err));
    if (d) {
        ims_benc_free(d);
        fail_msg("'%.*s' accepted", (int)(len > 60 ? 60 : len), s);
    }
    char want[48];
    snprintf(want, sizeof(want), "at byte %zu: ", pos);
    if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, what))
        fail_msg("'%.*s': error '%s', want '%s%s'", (int)(len > 60 ? 60 : len), s, err, want, what);
}

static void test_bep3_examples(void **state)
{
    (void)state;
    ims_benc_doc *d = dec("4:spam");
    const ims_benc *v = ims_benc_root(d);
    assert_int_equal(v->type, IMS_BENC_STR);
    assert_int_equal(v->len, 4);
    assert_string_equal(v->str, "spam");
    ims_benc_free(d);

    d = dec("i3e");
    assert_int_equal(ims_benc_root(d)->num, 3);
    ims_benc_free(d);
    d = dec("i-3e");
    assert_int_equal(ims_benc_root(d)->num, -3);
    ims_benc_free(d);
    d = dec("i0e");
    assert_int_equal(ims_benc_root(d)->num, 0);
    ims_benc_free(d);

    d = dec("l4:spam4:eggse");
    v = ims_benc_root(d);
    assert_int_equal(v->type, IMS_BENC_LIST);
    assert_int_equal(v->len, 2);
    assert_string_equal(v->first->str, "spam");
    assert_string_equal(v->first->next->str, "eggs");
    assert_null(v->first->next->next);
    assert_null(v->first->key);
    ims_benc_free(d);

    d = dec("d3:cow3:moo4:spam4:eggse");
    v = ims_benc_root(d);
    assert_int_equal(v->type, IMS_BENC_DICT);
    assert_int_equal(v->len, 2);
    assert_string_equal(ims_benc_get_str(v, "cow", NULL), "moo");
    assert_string_equal(ims_benc_get_str(v, "spam", NULL), "eggs");
    assert_null(ims_benc_get_str(v, "moo", NULL));
    ims_benc_free(d);

    d = dec("0:");
    assert_int_equal(ims_benc_root(d)->len, 0);
    assert_string_equal(ims_benc_root(d)->str, "");
    ims_benc_free(d);
    d = dec("le");
    assert_int_equal(ims_benc_root(d)->len, 0);
    assert_null(ims_benc_root(d)->first);
    ims_benc_free(d);
}

/* An rtpengine answer: nested dicts and lists, a string with NUL and CRLF, lookups by type. */
static void test_ng_answer(void **state)
{
    (void)state;
    static const char ng[] = "d6:result2:ok3:sdp12:v=0\r\nc=IN\0x55:flagsl3:RTP4:RTCPe"
                             "5:statsd7:packetsi42e5:bytesi-1eee";
    char err[128];
    ims_benc_doc *d = ims_benc_decode(ng, sizeof(ng) - 1, NULL, err, sizeof(err));
    assert_non_null(d);
    const ims_benc *r = ims_benc_root(d);
    size_t len = 0;
    const char *sdp = ims_benc_get_str(r, "sdp", &len);
    assert_int_equal(len, 12);
    assert_memory_equal(sdp, "v=0\r\nc=IN\0x5", 12);
    assert_int_equal(sdp[12], '\0');
    assert_string_equal(ims_benc_get_str(r, "result", NULL), "ok");
    const ims_benc *flags = ims_benc_get(r, "flags");
    assert_int_equal(flags->type, IMS_BENC_LIST);
    assert_int_equal(flags->len, 2);
    assert_string_equal(flags->first->next->str, "RTCP");
    const ims_benc *stats = ims_benc_get(r, "stats");
    assert_int_equal(ims_benc_get_int(stats, "packets", -7), 42);
    assert_int_equal(ims_benc_get_int(stats, "bytes", -7), -1);
    assert_int_equal(ims_benc_get_int(stats, "missing", -7), -7);
    assert_int_equal(ims_benc_get_int(r, "result", -7), -7);   /* a string, not an int */
    assert_null(ims_benc_get_str(r, "stats", NULL));            /* a dict, not a string */
    assert_null(ims_benc_get(flags, "RTP"));                    /* not a dict */
    assert_null(ims_benc_get(NULL, "x"));
    ims_benc_free(d);
}

/* Duplicate keys are kept in order; lookups return the first. */
static void test_duplicate_keys(void **state)
{
    (void)state;
    ims_benc_doc *d = dec("d1:a1:x1:a1:ye");
    assert_int_equal(ims_benc_root(d)->len, 2);
    assert_string_equal(ims_benc_get_str(ims_benc_root(d), "a", NULL), "x");
    ims_benc_free(d);
}

static void test_hostile_input(void **state)
{
    (void)state;
    refused_at("", 0, NULL, 0, "value expected");
    refused_at("x", 1, NULL, 0, "unexpected byte");
    refused_at("i", 1, NULL, 1, "digit expected");
    refused_at("ie", 2, NULL, 1, "digit expected");
    refused_at("i12", 3, NULL, 3, "input ends inside a number");
    refused_at("i1x", 3, NULL, 2, "'e' expected");
    refused_at("i-0e", 4, NULL, 4, "negative zero");
    refused_at("i03e", 4, NULL, 1, "leading zero");
    refused_at("i--1e", 5, NULL, 2, "digit expected");
    refused_at("i1234567890123456789e", 21, NULL, 19, "number too long");
    refused_at("5:abc", 5, NULL, 2, "beyond the end");
    refused_at("05:abcde", 8, NULL, 0, "leading zero");
    refused_at("3abc", 4, NULL, 1, "':' expected");
    refused_at("99999999999999999999:", 21, NULL, 18, "number too long");
    refused_at("4:spamx", 7, NULL, 6, "trailing bytes");
    refused_at("i1ei2e", 6, NULL, 3, "trailing bytes");
    refused_at("l", 1, NULL, 1, "inside a list");
    refused_at("l4:spam", 7, NULL, 7, "inside a list");
    refused_at("d", 1, NULL, 1, "inside a dictionary");
    refused_at("di1ei2ee", 8, NULL, 1, "key must be a string");
    refused_at("d3:cowe", 7, NULL, 6, "unexpected byte");
    refused_at("d3:cow", 6, NULL, 6, "key without a value");
    refused_at("l-e", 3, NULL, 1, "unexpected byte");
    /* Embedded NUL before the value ends: a length, not a terminator, decides. */
    refused_at("3:a\0", 4, NULL, 2, "beyond the end");
}

static void test_limits(void **state)
{
    (void)state;
    /* Depth: 16 nested lists pass with the default, 17 do not. */
    char deep[80];
    memset(deep, 'l', 16);
    memset(deep + 16, 'e', 16);
    ims_benc_doc *d = ims_benc_decode(deep, 32, NULL, NULL, 0);
    assert_non_null(d);
    ims_benc_free(d);
    memset(deep, 'l', 17);
    memset(deep + 17, 'e', 17);
    refused_at(deep, 34, NULL, 17, "nested too deep");
    ims_benc_limits lim = { .max_depth = 2 };
    refused_at("lllee", 5, &lim, 3, "nested too deep");

    /* Items: the root counts as one. */
    lim = (ims_benc_limits){ .max_items = 3 };
    d = ims_benc_decode("li1ei2ee", 8, &lim, NULL, 0);
    assert_non_null(d);
    ims_benc_free(d);
    refused_at("li1ei2ei3ee", 11, &lim, 7, "too many items");

    /* Input length, before anything is read. */
    lim = (ims_benc_limits){ .max_input = 4 };
    char err[96];
    assert_null(ims_benc_decode("5:abcde", 7, &lim, err, sizeof(err)));
    assert_string_equal(err, "input of 7 bytes exceeds the limit of 4");

    /* A deep nesting far beyond the limit is refused without using the stack for it. */
    size_t n = 1 << 20;
    char *big = malloc(2 * n);
    assert_non_null(big);
    memset(big, 'l', n);
    memset(big + n, 'e', n);
    lim = (ims_benc_limits){ .max_input = 2 * n };
    refused_at(big, 2 * n, &lim, 17, "nested too deep");
    free(big);

    /* NULL input with a length is an error, not a crash; err may be NULL. */
    assert_null(ims_benc_decode(NULL, 3, NULL, NULL, 0));
}

static void test_encoder_and_round_trip(void **state)
{
    (void)state;
    ims_strbuf b = IMS_STRBUF_INIT;
    ims_benc_open_dict(&b);
    ims_benc_put_cstr(&b, "call-id");
    ims_benc_put_cstr(&b, "abc@h");
    ims_benc_put_cstr(&b, "delete-delay");
    ims_benc_put_int(&b, 0);
    ims_benc_put_cstr(&b, "flags");
    ims_benc_open_list(&b);
    ims_benc_put_cstr(&b, "trust-address");
    ims_benc_put_int(&b, INT64_MIN);
    ims_benc_put_str(&b, "a\0b", 3);
    ims_benc_close(&b);
    ims_benc_put_cstr(&b, "empty");
    ims_benc_put_cstr(&b, NULL);
    ims_benc_close(&b);
    assert_false(b.failed);
    static const char want[] = "d7:call-id5:abc@h12:delete-delayi0e5:flagsl13:trust-address"
                               "i-9223372036854775808e3:a\0be5:empty0:e";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.s, want, b.len);

    /* INT64_MIN has 19 digits: beyond what the decoder reads (18), by design. */
    assert_null(ims_benc_decode(b.s, b.len, NULL, NULL, 0));
    ims_strbuf_free(&b);

    static const char *const docs[] = {
        "d6:result2:ok3:sdp5:v=0\r\n4:tagsd2:ftd5:mediald1:ai1e1:bi-5eeeeee",
        "l0:lelleede4:spami999999999999999999ee",
        "i-123456789012345678e",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        ims_benc_doc *a = dec(docs[i]);
        ims_strbuf e = IMS_STRBUF_INIT;
        ims_benc_encode(&e, ims_benc_root(a));
        assert_int_equal(e.len, strlen(docs[i]));
        assert_memory_equal(e.s, docs[i], e.len);
        char err[96];
        ims_benc_doc *c = ims_benc_decode(e.s, e.len, NULL, err, sizeof(err));
        assert_non_null(c);
        assert_true(ims_benc_equal(ims_benc_root(a), ims_benc_root(c)));
        ims_benc_free(c);
        ims_strbuf_free(&e);
        ims_benc_free(a);
    }

    /* Equality notices every difference. */
    static const char *const pairs[][2] = {
        { "i1e", "i2e" }, { "1:a", "1:b" }, { "1:a", "2:ab" }, { "li1ee", "li1ei2ee" },
        { "d1:ai1ee", "d1:bi1ee" }, { "d1:ai1ee", "d1:ai2ee" }, { "le", "de" }, { "i1e", "1:1" },
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        ims_benc_doc *x = dec(pairs[i][0]), *y = dec(pairs[i][1]);
        assert_false(ims_benc_equal(ims_benc_root(x), ims_benc_root(y)));
        assert_true(ims_benc_equal(ims_benc_root(x), ims_benc_root(x)));
        ims_benc_free(x);
        ims_benc_free(y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bep3_examples),
        cmocka_unit_test(test_ng_answer),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_encoder_and_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
