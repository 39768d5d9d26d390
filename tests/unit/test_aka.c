/*
 * Unit tests for common/ims_aka.c.
 *
 * Reference data:
 *  - FIPS-197 Appendix C.1 (AES-128).
 *  - 3GPP TS 35.208 test sets 1-6 (Milenage), read at run time from
 *    tests/unit/vectors/milenage-ts35208.tsv (IMS_VECTORS_DIR, set by tests/unit/CMakeLists.txt),
 *    which cites the specification in its header comment.
 *  - RFC 1321 Appendix A.5 (MD5 test suite).
 *  - RFC 2617 §3.5 (digest example); auth-int / no-qop / RFC 3310 values were computed with an
 *    independent implementation (Python hashlib) from the same formulas.
 *  - RFC 4648 §10 (base64 test vectors).
 *  - TS 33.102 §6.3 and Annex C for AUTN, AUTS and SQN behaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ims_aka.h"

#ifndef IMS_VECTORS_DIR
#error "IMS_VECTORS_DIR must name tests/unit/vectors (set by tests/unit/CMakeLists.txt)"
#endif

/* Decodes a fixed-size hex field of the reference data; a malformed field fails the test. */
static void hex_to(const char *hex, uint8_t *out, size_t len)
{
    if (ims_hex_decode(hex, out, len) != 0)
        fail_msg("bad hex field '%s' (want %zu bytes)", hex, len);
}

static void assert_hex_eq(const uint8_t *got, size_t len, const char *want_hex)
{
    char buf[2 * 64 + 1];
    assert_true(len <= 64);
    ims_hex_encode(got, len, buf);
    assert_string_equal(buf, want_hex);
}

/* ---------------------------------------------------------------- AES ---- */

static void test_aes128_fips197(void **state)
{
    (void)state;
    uint8_t key[16], pt[16], ct[16];
    hex_to("000102030405060708090a0b0c0d0e0f", key, 16);
    hex_to("00112233445566778899aabbccddeeff", pt, 16);
    assert_int_equal(ims_aes128_encrypt(key, pt, ct), 0);
    assert_hex_eq(ct, 16, "69c4e0d86a7b0430d8cdb78070b4c55a");
}

/* ---------------------------------------------------------- Milenage ---- */

#define MAX_COLS 16

/* Splits a tab-separated line in place; returns the number of fields. */
static int split_tabs(char *line, char *fields[], int max)
{
    int n = 0;
    char *p = line;
    size_t l = strlen(p);
    while (l > 0 && (p[l - 1] == '\n' || p[l - 1] == '\r'))
        p[--l] = '\0';
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static int column(char *header[], int ncols, const char *name)
{
    for (int i = 0; i < ncols; i++)
        if (strcmp(header[i], name) == 0)
            return i;
    fail_msg("column '%s' missing from TSV header", name);
    return -1;
}

static void test_milenage_ts35208(void **state)
{
    (void)state;
    const char *path = IMS_VECTORS_DIR "/milenage-ts35208.tsv";
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);

    char header_line[1024];
    char *header[MAX_COLS];
    int ncols = 0;
    char line[1024];
    int sets = 0;

    /* Column indices, found by name so that column order in the file does not matter. */
    int c_k = -1, c_rand = -1, c_sqn = -1, c_amf = -1, c_op = -1, c_opc = -1, c_f1 = -1,
        c_f1s = -1, c_f2 = -1, c_f3 = -1, c_f4 = -1, c_f5 = -1, c_f5s = -1, c_set = -1;

    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        /* A line longer than the buffer would be read in pieces and misparsed. */
        if (strchr(line, '\n') == NULL && !feof(f))
            fail_msg("%s:%d: line longer than %zu bytes", path, lineno, sizeof(line) - 2);
        /* Comments (the source citation) and blank lines. */
        if (line[0] == '#' || line[0] == '\n' || line[0] == '\r' || line[0] == '\0')
            continue;
        if (ncols == 0) {
            memcpy(header_line, line, sizeof(header_line));
            ncols = split_tabs(header_line, header, MAX_COLS);
            c_set = column(header, ncols, "set");
            c_k = column(header, ncols, "K");
            c_rand = column(header, ncols, "RAND");
            c_sqn = column(header, ncols, "SQN");
            c_amf = column(header, ncols, "AMF");
            c_op = column(header, ncols, "OP");
            c_opc = column(header, ncols, "OPc");
            c_f1 = column(header, ncols, "f1");
            c_f1s = column(header, ncols, "f1star");
            c_f2 = column(header, ncols, "f2");
            c_f3 = column(header, ncols, "f3");
            c_f4 = column(header, ncols, "f4");
            c_f5 = column(header, ncols, "f5");
            c_f5s = column(header, ncols, "f5star");
            continue;
        }
        char *fld[MAX_COLS];
        int n = split_tabs(line, fld, MAX_COLS);
        if (n != ncols)
            fail_msg("%s:%d: row has %d fields, header has %d", path, lineno, n, ncols);

        uint8_t k[16], rand[16], sqn[6], amf[2], op[16], opc_want[16], opc[16];
        hex_to(fld[c_k], k, 16);
        hex_to(fld[c_rand], rand, 16);
        hex_to(fld[c_sqn], sqn, 6);
        hex_to(fld[c_amf], amf, 2);
        hex_to(fld[c_op], op, 16);
        hex_to(fld[c_opc], opc_want, 16);
        print_message("Milenage test set %s\n", fld[c_set]);

        assert_int_equal(ims_milenage_opc(k, op, opc), 0);
        assert_memory_equal(opc, opc_want, 16);

        /* Outputs are computed from the file's OPc, so that an OPc bug and an f-function bug
         * show up as separate failures. */
        uint8_t mac_a[8], mac_s[8], res[8], ck[16], ik[16], ak[6], akstar[6];
        assert_int_equal(ims_milenage_f1(opc_want, k, rand, sqn, amf, mac_a, mac_s), 0);
        assert_hex_eq(mac_a, 8, fld[c_f1]);
        assert_hex_eq(mac_s, 8, fld[c_f1s]);
        assert_int_equal(ims_milenage_f2345(opc_want, k, rand, res, ck, ik, ak, akstar), 0);
        assert_hex_eq(res, 8, fld[c_f2]);
        assert_hex_eq(ck, 16, fld[c_f3]);
        assert_hex_eq(ik, 16, fld[c_f4]);
        assert_hex_eq(ak, 6, fld[c_f5]);
        assert_hex_eq(akstar, 6, fld[c_f5s]);

        /* NULL outputs are allowed and must not change the others. */
        uint8_t only_ak[6], only_akstar[6], only_mac_s[8];
        assert_int_equal(ims_milenage_f2345(opc_want, k, rand, NULL, NULL, NULL, only_ak, NULL), 0);
        assert_int_equal(ims_milenage_f2345(opc_want, k, rand, NULL, NULL, NULL, NULL, only_akstar), 0);
        assert_int_equal(ims_milenage_f1(opc_want, k, rand, sqn, amf, NULL, only_mac_s), 0);
        assert_memory_equal(only_ak, ak, 6);
        assert_memory_equal(only_akstar, akstar, 6);
        assert_memory_equal(only_mac_s, mac_s, 8);

        /* The vector built from the same inputs: AUTN = SQN^AK || AMF || MAC-A. */
        ims_auth_vector v;
        uint64_t sqn_v = ims_sqn_from_bytes(sqn);
        assert_int_equal(ims_aka_vector(opc_want, k, amf, sqn_v, rand, &v), 0);
        for (int i = 0; i < 6; i++)
            assert_int_equal(v.autn[i], sqn[i] ^ ak[i]);
        assert_memory_equal(&v.autn[6], amf, 2);
        assert_memory_equal(&v.autn[8], mac_a, 8);
        assert_memory_equal(v.rand, rand, 16);
        assert_memory_equal(v.xres, res, 8);
        assert_memory_equal(v.ck, ck, 16);
        assert_memory_equal(v.ik, ik, 16);

        /* AUTS conceals SQN_MS with AK* (f5*), as in the table. */
        uint8_t auts[14];
        assert_int_equal(ims_aka_make_auts(opc_want, k, rand, sqn_v, auts), 0);
        for (int i = 0; i < 6; i++)
            assert_int_equal(auts[i], sqn[i] ^ akstar[i]);
        sets++;
    }
    fclose(f);
    if (sets < 6)
        fail_msg("only %d Milenage test sets read from %s, want 6", sets, path);
}

/* The AES context is per thread and re-keyed per call: threads that interleave subscribers' keys
 * must each get the values one thread alone computes (TS 35.208 sets 1 and 2, the HSS's dispatch
 * threads at ~30k MAR/s). */
typedef struct {
    uint8_t k[2][16], opc[2][16], rand[2][16], amf[2];
    ims_auth_vector want[2];
    int bad;
} mt_case;

static void *mt_worker(void *arg)
{
    mt_case *c = arg;
    for (int i = 0; i < 2000; i++) {
        int s = i % 2;
        ims_auth_vector v;
        if (ims_aka_vector(c->opc[s], c->k[s], c->amf, 0x20, c->rand[s], &v) != 0 ||
            memcmp(&v, &c->want[s], sizeof(v)) != 0)
            __atomic_add_fetch(&c->bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_milenage_threads(void **state)
{
    (void)state;
    mt_case c = { .amf = { 0xb9, 0xb9 } };
    hex_to("465b5ce8b199b49faa5f0a2ee238a6bc", c.k[0], 16);
    hex_to("cd63cb71954a9f4e48a5994e37a02baf", c.opc[0], 16);
    hex_to("23553cbe9637a89d218ae64dae47bf35", c.rand[0], 16);
    hex_to("0396eb317b6d1c36f19c1c84cd6ffd16", c.k[1], 16);
    hex_to("53c15671c60a4b731c55b4a441c0bde2", c.opc[1], 16);
    hex_to("c00d603103dcee52c4478119494202e8", c.rand[1], 16);
    for (int s = 0; s < 2; s++)
        assert_int_equal(ims_aka_vector(c.opc[s], c.k[s], c.amf, 0x20, c.rand[s], &c.want[s]), 0);
    /* TS 35.208 set 1: f2 (XRES) 0xa54211d5e3ba50bf; set 2: 0xd3a628ed988620f0 (neither depends on AMF or SQN). */
    assert_hex_eq(c.want[0].xres, 8, "a54211d5e3ba50bf");
    assert_hex_eq(c.want[1].xres, 8, "d3a628ed988620f0");

    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, mt_worker, &c), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(c.bad, 0);
}

/* --------------------------------------------------------- AKA flows ---- */

/* Test subscriber, not from any spec. */
static const char *const T_K = "465b5ce8b199b49faa5f0a2ee238a6bc";
static const char *const T_OP = "cdc202d5123e20f62b6d676ac72cb318";

static void test_vector_roundtrip(void **state)
{
    (void)state;
    uint8_t k[16], op[16], opc[16], rand[16];
    const uint8_t amf[2] = { 0x80, 0x00 };
    hex_to(T_K, k, 16);
    hex_to(T_OP, op, 16);
    assert_int_equal(ims_milenage_opc(k, op, opc), 0);
    assert_int_equal(ims_random(rand, sizeof(rand)), 0);

    const uint64_t sqn = UINT64_C(0x0000000012a3); /* SEQ 0x951, IND 3 */
    ims_auth_vector v;
    assert_int_equal(ims_aka_vector(opc, k, amf, sqn, rand, &v), 0);

    uint64_t got_sqn = 0;
    uint8_t res[8], ck[16], ik[16];
    assert_true(ims_aka_check_autn(opc, k, v.rand, v.autn, &got_sqn, res, ck, ik));
    assert_true(got_sqn == sqn);
    assert_memory_equal(res, v.xres, 8);
    assert_memory_equal(ck, v.ck, 16);
    assert_memory_equal(ik, v.ik, 16);

    /* Every single-bit change of AUTN (masked SQN, AMF or MAC-A) must be caught by MAC-A. */
    for (int bit = 0; bit < 128; bit++) {
        uint8_t bad[16];
        memcpy(bad, v.autn, 16);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint64_t s = 0xdeadbeef;
        assert_false(ims_aka_check_autn(opc, k, v.rand, bad, &s, res, ck, ik));
        assert_true(s == 0xdeadbeef); /* nothing written on failure */
    }

    /* Same AUTN with another RAND (or another K) is refused. */
    uint8_t rand2[16];
    memcpy(rand2, rand, 16);
    rand2[0] ^= 0x01;
    assert_false(ims_aka_check_autn(opc, k, rand2, v.autn, NULL, NULL, NULL, NULL));
    uint8_t k2[16];
    memcpy(k2, k, 16);
    k2[15] ^= 0x80;
    assert_false(ims_aka_check_autn(opc, k2, rand, v.autn, NULL, NULL, NULL, NULL));

    /* Largest SQN survives the round trip (all 48 bits carried). */
    assert_int_equal(ims_aka_vector(opc, k, amf, IMS_SQN_MAX, rand, &v), 0);
    assert_true(ims_aka_check_autn(opc, k, rand, v.autn, &got_sqn, NULL, NULL, NULL));
    assert_true(got_sqn == IMS_SQN_MAX);
}

static void test_auts_resync(void **state)
{
    (void)state;
    uint8_t k[16], op[16], opc[16], rand[16];
    hex_to(T_K, k, 16);
    hex_to(T_OP, op, 16);
    assert_int_equal(ims_milenage_opc(k, op, opc), 0);
    assert_int_equal(ims_random(rand, sizeof(rand)), 0);

    const uint64_t sqn_ms = UINT64_C(0x00abcdef1234);
    uint8_t auts[14];
    assert_int_equal(ims_aka_make_auts(opc, k, rand, sqn_ms, auts), 0);

    uint64_t got = 0;
    assert_true(ims_aka_verify_auts(opc, k, rand, auts, &got));
    assert_true(got == sqn_ms);

    /* MAC-S is f1* over SQN_MS, RAND and the dummy AMF 0000 (TS 33.102 §6.3.3). */
    uint8_t sqn_b[6], mac_s[8];
    const uint8_t amf0[2] = { 0, 0 };
    ims_sqn_to_bytes(sqn_ms, sqn_b);
    assert_int_equal(ims_milenage_f1(opc, k, rand, sqn_b, amf0, NULL, mac_s), 0);
    assert_memory_equal(&auts[6], mac_s, 8);

    /* Any flipped bit (concealed SQN_MS or MAC-S) is refused and SQN_MS is not reported. */
    for (int bit = 0; bit < 14 * 8; bit++) {
        uint8_t bad[14];
        memcpy(bad, auts, 14);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint64_t s = 7;
        assert_false(ims_aka_verify_auts(opc, k, rand, bad, &s));
        assert_true(s == 7);
    }

    /* AUTS answers one challenge: checking it against another RAND fails. */
    uint8_t rand2[16];
    assert_int_equal(ims_random(rand2, sizeof(rand2)), 0);
    rand2[5] ^= 0x40; /* make sure it differs even in the unlikely case of equal draws */
    if (memcmp(rand2, rand, 16) == 0)
        rand2[6] ^= 0x01;
    assert_false(ims_aka_verify_auts(opc, k, rand2, auts, &got));

    /* Typical resync: the HSS continues from SQN_MS. */
    uint64_t next = ims_sqn_next(got);
    assert_true(next > sqn_ms);
}

/* -------------------------------------------------------------- SQN ---- */

static void test_sqn_next(void **state)
{
    (void)state;
    /* SEQ 0, IND 0 -> SEQ 1, IND 1 */
    assert_true(ims_sqn_next(0) == ((UINT64_C(1) << 5) | 1));
    /* SEQ 10, IND 4 -> SEQ 11, IND 5 */
    assert_true(ims_sqn_next((UINT64_C(10) << 5) | 4) == ((UINT64_C(11) << 5) | 5));
    /* IND wraps 31 -> 0 while SEQ still moves on. */
    assert_true(ims_sqn_next((UINT64_C(7) << 5) | 31) == (UINT64_C(8) << 5));
    /* Whole SQN wraps at 2^48: SEQ all ones, IND 31 -> 0. */
    assert_true(ims_sqn_next(IMS_SQN_MAX) == 0);
    /* SEQ all ones with a small IND: SEQ wraps to 0, IND still advances. */
    uint64_t seq_max = (UINT64_C(1) << 43) - 1;
    assert_true(ims_sqn_next((seq_max << 5) | 2) == 3);
    /* Never leaves 48 bits, whatever comes in. */
    for (uint64_t s = IMS_SQN_MAX - 70; s <= IMS_SQN_MAX; s++)
        assert_true(ims_sqn_next(s) <= IMS_SQN_MAX);
    /* IND cycles through all 32 values in 32 steps. */
    uint64_t s = 0;
    uint32_t seen = 0;
    for (int i = 0; i < 32; i++) {
        s = ims_sqn_next(s);
        seen |= UINT32_C(1) << (s & 31);
    }
    assert_true(seen == UINT32_MAX);
    assert_true((s >> 5) == 32);
}

static void test_sqn_bytes(void **state)
{
    (void)state;
    uint8_t b[6];
    ims_sqn_to_bytes(UINT64_C(0xff9bb4d0b607), b);
    assert_hex_eq(b, 6, "ff9bb4d0b607"); /* big-endian, as in TS 35.208 */
    assert_true(ims_sqn_from_bytes(b) == UINT64_C(0xff9bb4d0b607));
    ims_sqn_to_bytes(1, b);
    assert_hex_eq(b, 6, "000000000001");
}

/* ------------------------------------------------------- hex / base64 ---- */

static void test_hex(void **state)
{
    (void)state;
    const uint8_t data[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
    char hex[2 * sizeof(data) + 1];
    ims_hex_encode(data, sizeof(data), hex);
    assert_string_equal(hex, "00017f80abff");

    uint8_t back[sizeof(data)];
    assert_int_equal(ims_hex_decode(hex, back, sizeof(back)), 0);
    assert_memory_equal(back, data, sizeof(data));
    assert_int_equal(ims_hex_decode("00017F80ABFF", back, sizeof(back)), 0); /* upper case */
                     assert_memory_equal(back, data, sizeof(data));

    assert_int_equal(ims_hex_decode("00017f80abf", back, 6), -1);   /* odd length */
                     assert_int_equal(ims_hex_decode("00017f80ab", back, 6), -1);    /* too short */
                     assert_int_equal(ims_hex_decode("00017f80abff00", back, 6), -1); /* too long */
                     assert_int_equal(ims_hex_decode("00017g80abff", back, 6), -1);  /* bad char */
                     assert_int_equal(ims_hex_decode("00017f80ab f", back, 6), -1);  /* space */
                     assert_int_equal(ims_hex_decode("0x017f80abff", back, 6), -1);
    assert_int_equal(ims_hex_decode(NULL, back, 6), -1);
    assert_int_equal(ims_hex_decode("", back, 0), 0);
}

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 §10 */
    static const struct {
        const char *plain;
        const char *b64;
    } v[] = {
        { "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },         { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char enc[16];
        uint8_t dec[16];
        size_t len = strlen(v[i].plain);
        assert_int_equal(ims_base64_encode((const uint8_t *)v[i].plain, len, enc),
                                          strlen(v[i].b64));
        assert_string_equal(enc, v[i].b64);
        assert_int_equal(ims_base64_decode(enc, dec, sizeof(dec)), (long)len);
        assert_memory_equal(dec, v[i].plain, len);
    }

    /* Padding is optional. */
    uint8_t dec[64];
    assert_int_equal(ims_base64_decode("Zg", dec, sizeof(dec)), 1);
    assert_int_equal(dec[0], 'f');
    assert_int_equal(ims_base64_decode("Zm9vYmE", dec, sizeof(dec)), 5);
    assert_memory_equal(dec, "fooba", 5);

    /* Binary round trip of a typical RFC 3310 nonce (RAND || AUTN, 32 bytes). */
    uint8_t bin[32], back[32];
    char enc[4 * ((sizeof(bin) + 2) / 3) + 1];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)(i * 37 + 250);
    size_t n = ims_base64_encode(bin, sizeof(bin), enc);
    assert_int_equal(n, 44);
    assert_int_equal(ims_base64_decode(enc, back, sizeof(back)), 32);
    assert_memory_equal(back, bin, 32);
    assert_int_equal(ims_base64_decode(enc, back, 31), -1); /* output too small */
                 
                     /* Invalid input. */
                     assert_int_equal(ims_base64_decode("Zm9v!mFy", dec, sizeof(dec)), -1); /* bad char */
                     assert_int_equal(ims_base64_decode("Zm9v YmFy", dec, sizeof(dec)), -1); /* whitespace */
                     assert_int_equal(ims_base64_decode("Z", dec, sizeof(dec)), -1);        /* 1 char left */
                     assert_int_equal(ims_base64_decode("Zm9vY", dec, sizeof(dec)), -1);
    assert_int_equal(ims_base64_decode("Zg=", dec, sizeof(dec)), -1);      /* short padding */
                     assert_int_equal(ims_base64_decode("Zm9v=", dec, sizeof(dec)), -1);
    assert_int_equal(ims_base64_decode("Zm8==", dec, sizeof(dec)), -1);
    assert_int_equal(ims_base64_decode("Zg==Zg==", dec, sizeof(dec)), -1); /* '=' inside */
                     assert_int_equal(ims_base64_decode("Z===", dec, sizeof(dec)), -1);
    assert_int_equal(ims_base64_decode(NULL, dec, sizeof(dec)), -1);
}

static void test_random(void **state)
{
    (void)state;
    uint8_t a[32], b[32], zero[32] = { 0 };
    assert_int_equal(ims_random(a, sizeof(a)), 0);
    assert_int_equal(ims_random(b, sizeof(b)), 0);
    /* 2^-256 chance of a false failure. */
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_int_equal(ims_random(a, 0), 0);
}

/* ------------------------------------------------------ MD5 / digest ---- */

static void test_md5_rfc1321(void **state)
{
    (void)state;
    /* RFC 1321 Appendix A.5 */
    static const struct {
        const char *msg;
        const char *md5;
    } v[] = {
        { "", "d41d8cd98f00b204e9800998ecf8427e" },
        { "a", "0cc175b9c0f1b6a831c399e269772661" },
        { "abc", "900150983cd24fb0d6963f7d28e17f72" },
        { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
        { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
        { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
          "d174ab98d277d9f5a5611c2c9f419d9f" },
        { "1234567890123456789012345678901234567890"
          "1234567890123456789012345678901234567890",
          "57edf4a22be3c955ac49da2e2107b67a" },
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t d[16];
        assert_int_equal(ims_md5(v[i].msg, strlen(v[i].msg), d), 0);
        assert_hex_eq(d, 16, v[i].md5);
    }

    /* Lengths around the 56/64-byte padding boundaries: compare against a known value for a
     * 1000-byte message of 'a' (computed with md5sum) and just check the others don't crash. */
    char buf[1000];
    memset(buf, 'a', sizeof(buf));
    uint8_t d[16];
    for (size_t len = 50; len <= 130; len++)
        assert_int_equal(ims_md5(buf, len, d), 0);
    assert_int_equal(ims_md5(buf, sizeof(buf), d), 0);
    assert_hex_eq(d, 16, "cabe45dcc9ae5b66ba86600cca6b8ba8");
}

/* RFC 2202 §2 test cases 1, 2 and 6 (key longer than the block: hashed first). */
static void test_hmac_md5_rfc2202(void **state)
{
    (void)state;
    uint8_t key[80], d[16];
    memset(key, 0x0b, 16);
    assert_int_equal(ims_hmac_md5(key, 16, "Hi There", 8, d), 0);
    assert_hex_eq(d, 16, "9294727a3638bb1c13f48ef8158bfc9d");
    const char *data = "what do ya want for nothing?";
    assert_int_equal(ims_hmac_md5((const uint8_t *)"Jefe", 4, data, strlen(data), d), 0);
    assert_hex_eq(d, 16, "750c783e6ab0b503eaa86e310a5db738");
    memset(key, 0xaa, 80);
    data = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_int_equal(ims_hmac_md5(key, 80, data, strlen(data), d), 0);
    assert_hex_eq(d, 16, "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd");
    /* An empty key and message (Python hmac): EVP_MAC_init must not take a NULL key as "keep the
     * previous one". */
    assert_int_equal(ims_hmac_md5(NULL, 0, "", 0, d), 0);
    assert_hex_eq(d, 16, "74e6f7298a9c2d168935f58c001bad88");
}

static void test_digest_rfc2617(void **state)
{
    (void)state;
    char ha1[33], resp[33];
    const char *pw = "Circle Of Life";
    assert_int_equal(ims_digest_ha1("Mufasa", "testrealm@host.com", pw, strlen(pw), ha1), 0);
    assert_string_equal(ha1, "939e7578ed9e3c518a452acee763bce9");
    assert_int_equal(ims_digest_response(ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b",
                                         "auth", "GET", "/dir/index.html", NULL, 0, resp), 0);
    assert_string_equal(resp, "6629fae49393a05397450978507c4ef1");
}

static void test_digest_auth_int_and_no_qop(void **state)
{
    (void)state;
    char ha1[33], resp[33];
    const char *pw = "Circle Of Life";
    const char *nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
    assert_int_equal(ims_digest_ha1("Mufasa", "testrealm@host.com", pw, strlen(pw), ha1), 0);

    /* RFC 2069 form: no qop, nc and cnonce are not part of the hash. */
    assert_int_equal(ims_digest_response(ha1, nonce, NULL, NULL, NULL, "GET", "/dir/index.html", NULL,
                                         0, resp), 0);
    assert_string_equal(resp, "670fd8c2df070c60b045671b8b24ff02");
    assert_int_equal(ims_digest_response(ha1, nonce, "00000001", "x", "", "GET", "/dir/index.html", NULL,
                                         0, resp), 0);
    assert_string_equal(resp, "670fd8c2df070c60b045671b8b24ff02");

    /* auth-int: A2 carries H(entity-body). */
    const char *body = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n";
    assert_int_equal(ims_digest_response(ha1, nonce, "00000002", "deadbeef", "auth-int", "INVITE",
                                         "sip:bob@ims.test", body, strlen(body), resp), 0);
    assert_string_equal(resp, "2801bcad8352b31a5d81aa6643994bb5");
    /* auth-int with an empty body (a REGISTER): H("") */
    assert_int_equal(ims_digest_response(ha1, nonce, "00000001", "0a4f113b", "auth-int", "REGISTER",
                                         "sip:ims.test", NULL, 0, resp), 0);
    assert_string_equal(resp, "3367666f5deee398c20652453ed3706f");
}

static void test_aka_digest_ha1(void **state)
{
    (void)state;
    char ha1[33];
    uint8_t res[8];
    hex_to("a54211d5e3ba50bf", res, 8); /* RES of TS 35.208 set 1 */
    assert_int_equal(ims_aka_digest_ha1("alice@ims.test", "ims.test", res, sizeof(res), ha1), 0);
    assert_string_equal(ha1, "80e9306a2281597187e7bc38946a5417");

    /* RES is binary: a NUL byte must not end the password. */
    const uint8_t res0[5] = { 0x00, 0xff, 0x00, 0x00, 0xa5 };
    assert_int_equal(ims_aka_digest_ha1("alice@ims.test", "ims.test", res0, sizeof(res0), ha1), 0);
    assert_string_equal(ha1, "4452e39c216c3ecea827cc794e9d609a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes128_fips197),
        cmocka_unit_test(test_milenage_ts35208),
        cmocka_unit_test(test_milenage_threads),
        cmocka_unit_test(test_vector_roundtrip),
        cmocka_unit_test(test_auts_resync),
        cmocka_unit_test(test_sqn_next),
        cmocka_unit_test(test_sqn_bytes),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_md5_rfc1321),
        cmocka_unit_test(test_hmac_md5_rfc2202),
        cmocka_unit_test(test_digest_rfc2617),
        cmocka_unit_test(test_digest_auth_int_and_no_qop),
        cmocka_unit_test(test_aka_digest_ha1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
