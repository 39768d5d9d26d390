/*
 * ims_aka: 3GPP AKA crypto and HTTP digest helpers (see ims_aka.h).
 *
 * References:
 *  - FIPS-197: AES. Only the forward cipher with a 128-bit key is implemented; Milenage never
 *    decrypts.
 *  - 3GPP TS 35.206: Milenage f1, f1*, f2, f3, f4, f5, f5* and OPc (conformance data TS 35.208).
 *  - 3GPP TS 33.102 §6.3.2 (AUTN = SQN^AK || AMF || MAC-A), §6.3.3 and §6.3.5 (resynchronisation:
 *    AUTS = SQN_MS^AK* || MAC-S, MAC-S computed with a dummy AMF of 0x0000), Annex C (SQN =
 *    SEQ || IND, C.1.1 and C.3.2).
 *  - RFC 1321: MD5.
 *  - RFC 2617 §3.2.2: digest request-digest (qop auth, auth-int, and the RFC 2069 form).
 *  - RFC 3310 §3.3: Digest-AKAv1-MD5 uses RES as the (binary) password.
 *  - RFC 4648 §4: base64.
 *
 * Everything is self-contained on purpose: the HSS and the CSCFs need these few primitives and no
 * external crypto library. The code is written for clarity, not speed: a vector costs a handful of
 * AES blocks, which is nothing next to a Diameter round trip.
 */
#include "ims_aka.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>

/* ====================================================================================== */
/* AES-128 (FIPS-197), encryption only                                                    */
/* ====================================================================================== */

/* S-box (FIPS-197 §5.1.1): multiplicative inverse in GF(2^8) followed by the affine map.
 * Generated once from that definition and checked against the Appendix C.1 vector. */
static const uint8_t aes_sbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
};

/* 11 round keys of 16 bytes for AES-128 (Nr = 10). */
typedef struct {
    uint8_t rk[11][16];
} aes128_ctx;

/* Multiply by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (FIPS-197 §4.2.1). */
static uint8_t aes_xtime(uint8_t a)
{
    return (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1b : 0x00));
}

/* Key expansion (FIPS-197 §5.2) for Nk = 4. Works on bytes: word i is rk bytes 4i..4i+3. */
static void aes128_init(aes128_ctx *ctx, const uint8_t key[16])
{
    uint8_t *w = &ctx->rk[0][0]; /* 176 contiguous bytes */
    uint8_t rcon = 0x01;

    memcpy(w, key, 16);
    for (int i = 4; i < 44; i++) {
        uint8_t t[4];
        memcpy(t, &w[4 * (i - 1)], 4);
        if (i % 4 == 0) {
            /* RotWord, SubWord, then xor Rcon into the first byte. */
            uint8_t t0 = t[0];
            t[0] = (uint8_t)(aes_sbox[t[1]] ^ rcon);
            t[1] = aes_sbox[t[2]];
            t[2] = aes_sbox[t[3]];
            t[3] = aes_sbox[t0];
            rcon = aes_xtime(rcon);
        }
        for (int j = 0; j < 4; j++)
            w[4 * i + j] = (uint8_t)(w[4 * (i - 4) + j] ^ t[j]);
    }
}

static void aes_add_round_key(uint8_t s[16], const uint8_t rk[16])
{
    for (int i = 0; i < 16; i++)
        s[i] ^= rk[i];
}

/* The state is kept column-major as in FIPS-197: byte index = row + 4 * column. */
static void aes_sub_shift(uint8_t s[16])
{
    uint8_t t[16];
    /* ShiftRows: row r moves left by r columns; SubBytes applied at the same time. */
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++)
            t[r + 4 * c] = aes_sbox[s[r + 4 * ((c + r) % 4)]];
    memcpy(s, t, 16);
}

static void aes_mix_columns(uint8_t s[16])
{
    for (int c = 0; c < 4; c++) {
        uint8_t *col = &s[4 * c];
        uint8_t a0 = col[0], a1 = col[1], a2 = col[2], a3 = col[3];
        uint8_t all = (uint8_t)(a0 ^ a1 ^ a2 ^ a3);
        /* {02}a_i ^ {03}a_{i+1} ^ a_{i+2} ^ a_{i+3} == a_i ^ all ^ {02}(a_i ^ a_{i+1}) */
        col[0] = (uint8_t)(a0 ^ all ^ aes_xtime((uint8_t)(a0 ^ a1)));
        col[1] = (uint8_t)(a1 ^ all ^ aes_xtime((uint8_t)(a1 ^ a2)));
        col[2] = (uint8_t)(a2 ^ all ^ aes_xtime((uint8_t)(a2 ^ a3)));
        col[3] = (uint8_t)(a3 ^ all ^ aes_xtime((uint8_t)(a3 ^ a0)));
    }
}

static void aes128_encrypt_block(const aes128_ctx *ctx, const uint8_t in[16], uint8_t out[16])
{
    uint8_t s[16];
    memcpy(s, in, 16);
    aes_add_round_key(s, ctx->rk[0]);
    for (int round = 1; round < 10; round++) {
        aes_sub_shift(s);
        aes_mix_columns(s);
        aes_add_round_key(s, ctx->rk[round]);
    }
    aes_sub_shift(s); /* the last round has no MixColumns */
    aes_add_round_key(s, ctx->rk[10]);
    memcpy(out, s, 16);
}

/* Exposed so the unit test can check the kernel against FIPS-197 directly: a Milenage mismatch
 * alone would not say whether AES or Milenage is wrong. */
void ims_aes128_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    aes128_ctx ctx;
    aes128_init(&ctx, key);
    aes128_encrypt_block(&ctx, in, out);
    memset(&ctx, 0, sizeof(ctx));
}

/* ====================================================================================== */
/* Milenage (TS 35.206)                                                                   */
/* ====================================================================================== */

static void xor16(uint8_t out[16], const uint8_t a[16], const uint8_t b[16])
{
    for (int i = 0; i < 16; i++)
        out[i] = (uint8_t)(a[i] ^ b[i]);
}

/* rot(x, r): cyclic left rotation by r bits. All Milenage r values are multiples of 8, so a byte
 * rotation is exact. */
static void rot_left_bytes(uint8_t out[16], const uint8_t in[16], int r_bits)
{
    int shift = r_bits / 8;
    for (int i = 0; i < 16; i++)
        out[i] = in[(i + shift) % 16];
}

/* Milenage output block i (TS 35.206 §4.1) for i = 2..5:
 *   OUTi = E_K(rot(TEMP ^ OPc, ri) ^ ci) ^ OPc
 * where ci is all zero except the last byte (c2 = 1, c3 = 2, c4 = 4, c5 = 8). */
static void milenage_out(const aes128_ctx *ctx, const uint8_t opc[16], const uint8_t temp[16],
                         int r_bits, uint8_t c_last, uint8_t out[16])
{
    uint8_t x[16], y[16];
    xor16(x, temp, opc);
    rot_left_bytes(y, x, r_bits);
    y[15] ^= c_last;
    aes128_encrypt_block(ctx, y, out);
    xor16(out, out, opc);
}

void ims_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16])
{
    aes128_ctx ctx;
    uint8_t e[16];
    aes128_init(&ctx, k);
    aes128_encrypt_block(&ctx, op, e);
    xor16(opc, e, op);
    memset(&ctx, 0, sizeof(ctx));
}

void ims_milenage_f1(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                     const uint8_t sqn[6], const uint8_t amf[2], uint8_t mac_a[8], uint8_t mac_s[8])
{
    aes128_ctx ctx;
    uint8_t temp[16], in1[16], x[16], y[16], out1[16];

    aes128_init(&ctx, k);
    /* TEMP = E_K(RAND ^ OPc) */
    xor16(x, rand, opc);
    aes128_encrypt_block(&ctx, x, temp);

    /* IN1 = SQN || AMF || SQN || AMF */
    memcpy(&in1[0], sqn, 6);
    memcpy(&in1[6], amf, 2);
    memcpy(&in1[8], sqn, 6);
    memcpy(&in1[14], amf, 2);

    /* OUT1 = E_K(TEMP ^ rot(IN1 ^ OPc, r1)) ^ OPc, with r1 = 64 and c1 = 0. */
    xor16(x, in1, opc);
    rot_left_bytes(y, x, 64);
    xor16(y, y, temp);
    aes128_encrypt_block(&ctx, y, out1);
    xor16(out1, out1, opc);

    if (mac_a)
        memcpy(mac_a, &out1[0], 8); /* f1 = OUT1[0..63] */
    if (mac_s)
        memcpy(mac_s, &out1[8], 8); /* f1* = OUT1[64..127] */
    memset(&ctx, 0, sizeof(ctx));
    memset(temp, 0, sizeof(temp));
}

void ims_milenage_f2345(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                        uint8_t res[8], uint8_t ck[16], uint8_t ik[16], uint8_t ak[6], uint8_t akstar[6])
{
    aes128_ctx ctx;
    uint8_t temp[16], x[16], out[16];

    aes128_init(&ctx, k);
    xor16(x, rand, opc);
    aes128_encrypt_block(&ctx, x, temp);

    if (res || ak) {
        milenage_out(&ctx, opc, temp, 0, 0x01, out); /* r2 = 0, c2 */
        if (ak)
            memcpy(ak, &out[0], 6); /* f5 = OUT2[0..47] */
        if (res)
            memcpy(res, &out[8], 8); /* f2 = OUT2[64..127] */
    }
    if (ck) {
        milenage_out(&ctx, opc, temp, 32, 0x02, out); /* r3 = 32, c3 */
        memcpy(ck, out, 16);
    }
    if (ik) {
        milenage_out(&ctx, opc, temp, 64, 0x04, out); /* r4 = 64, c4 */
        memcpy(ik, out, 16);
    }
    if (akstar) {
        milenage_out(&ctx, opc, temp, 96, 0x08, out); /* r5 = 96, c5 */
        memcpy(akstar, &out[0], 6); /* f5* = OUT5[0..47] */
    }
    memset(&ctx, 0, sizeof(ctx));
    memset(temp, 0, sizeof(temp));
    memset(out, 0, sizeof(out));
}

/* ====================================================================================== */
/* Vectors, AUTN and AUTS (TS 33.102 §6.3)                                                */
/* ====================================================================================== */

/* MAC comparison whose time does not depend on where the first difference is, so a network peer
 * cannot learn a MAC byte by byte. */
static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

void ims_sqn_to_bytes(uint64_t sqn, uint8_t out[6])
{
    /* Big-endian, as SQN is carried on the air interface (most significant byte first). */
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)(sqn >> (8 * (5 - i)));
}

uint64_t ims_sqn_from_bytes(const uint8_t in[6])
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v = (v << 8) | in[i];
    return v;
}

uint64_t ims_sqn_next(uint64_t sqn)
{
    /* TS 33.102 C.1.1: SQN = SEQ (43 bits) || IND (5 bits). C.3.2: the HSS moves SEQ on by one
     * and cycles IND through the array of the USIM. Each part wraps in its own width, so the
     * whole value stays within 48 bits. */
    const uint64_t ind_mask = (UINT64_C(1) << IMS_SQN_IND_BITS) - 1;
    const uint64_t seq_mask = (UINT64_C(1) << (48 - IMS_SQN_IND_BITS)) - 1;
    uint64_t seq = (sqn >> IMS_SQN_IND_BITS) & seq_mask;
    uint64_t ind = sqn & ind_mask;
    seq = (seq + 1) & seq_mask;
    ind = (ind + 1) & ind_mask;
    return (seq << IMS_SQN_IND_BITS) | ind;
}

void ims_aka_vector(const uint8_t opc[16], const uint8_t k[16], const uint8_t amf[2], uint64_t sqn,
                    const uint8_t rand[16], ims_auth_vector *out)
{
    uint8_t sqn_b[6], ak[6], mac_a[8];

    ims_sqn_to_bytes(sqn & IMS_SQN_MAX, sqn_b);
    ims_milenage_f1(opc, k, rand, sqn_b, amf, mac_a, NULL);
    ims_milenage_f2345(opc, k, rand, out->xres, out->ck, out->ik, ak, NULL);

    memcpy(out->rand, rand, 16);
    /* AUTN = SQN ^ AK || AMF || MAC-A: AK conceals SQN so that it cannot be used to track the
     * user (TS 33.102 §6.3.2). */
    for (int i = 0; i < 6; i++)
        out->autn[i] = (uint8_t)(sqn_b[i] ^ ak[i]);
    memcpy(&out->autn[6], amf, 2);
    memcpy(&out->autn[8], mac_a, 8);
}

bool ims_aka_check_autn(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                        const uint8_t autn[16], uint64_t *sqn, uint8_t res[8], uint8_t ck[16],
                        uint8_t ik[16])
{
    uint8_t ak[6], sqn_b[6], xmac[8], r[8], c[16], i_k[16];

    /* AK depends only on RAND, so the UE can unmask SQN before it checks the MAC. */
    ims_milenage_f2345(opc, k, rand, r, c, i_k, ak, NULL);
    for (int i = 0; i < 6; i++)
        sqn_b[i] = (uint8_t)(autn[i] ^ ak[i]);
    ims_milenage_f1(opc, k, rand, sqn_b, &autn[6], xmac, NULL);
    if (!ct_equal(xmac, &autn[8], 8))
        return false;

    /* Outputs are written only for an authentic AUTN, so a caller cannot use values from a
     * forged one by mistake. The SQN freshness check is left to the caller (it owns the state). */
    if (sqn)
        *sqn = ims_sqn_from_bytes(sqn_b);
    if (res)
        memcpy(res, r, 8);
    if (ck)
        memcpy(ck, c, 16);
    if (ik)
        memcpy(ik, i_k, 16);
    return true;
}

/* Resync uses a dummy AMF of all zeroes (TS 33.102 §6.3.3), so that the HSS needs nothing from the
 * failed AUTN besides RAND. */
static const uint8_t resync_amf[2] = { 0x00, 0x00 };

void ims_aka_make_auts(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                       uint64_t sqn_ms, uint8_t auts[14])
{
    uint8_t sqn_b[6], akstar[6], mac_s[8];

    ims_sqn_to_bytes(sqn_ms & IMS_SQN_MAX, sqn_b);
    ims_milenage_f2345(opc, k, rand, NULL, NULL, NULL, NULL, akstar);
    ims_milenage_f1(opc, k, rand, sqn_b, resync_amf, NULL, mac_s);
    for (int i = 0; i < 6; i++)
        auts[i] = (uint8_t)(sqn_b[i] ^ akstar[i]);
    memcpy(&auts[6], mac_s, 8);
}

bool ims_aka_verify_auts(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                         const uint8_t auts[14], uint64_t *sqn_ms)
{
    uint8_t sqn_b[6], akstar[6], xmac_s[8];

    ims_milenage_f2345(opc, k, rand, NULL, NULL, NULL, NULL, akstar);
    for (int i = 0; i < 6; i++)
        sqn_b[i] = (uint8_t)(auts[i] ^ akstar[i]);
    ims_milenage_f1(opc, k, rand, sqn_b, resync_amf, NULL, xmac_s);
    /* Annex C / §6.3.5: SQN_MS is only trusted once MAC-S is verified; otherwise anyone could
     * push the HSS's counter around. */
    if (!ct_equal(xmac_s, &auts[6], 8))
        return false;
    if (sqn_ms)
        *sqn_ms = ims_sqn_from_bytes(sqn_b);
    return true;
}

int ims_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        /* getrandom may return fewer bytes than asked (large requests, signals): loop. */
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ====================================================================================== */
/* hex and base64                                                                         */
/* ====================================================================================== */

void ims_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ims_hex_decode(const char *hex, uint8_t *out, size_t len)
{
    if (!hex)
        return -1;
    /* "Exactly 2*len digits": a key that is too short or too long is a configuration error, never
     * something to truncate or zero-pad silently. Check the length before writing anything. */
    if (strnlen(hex, 2 * len + 1) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ims_base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 0x3f];
        out[o++] = b64_alphabet[(v >> 12) & 0x3f];
        out[o++] = b64_alphabet[(v >> 6) & 0x3f];
        out[o++] = b64_alphabet[v & 0x3f];
    }
    size_t rest = len - i;
    if (rest > 0) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (rest == 2)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[(v >> 18) & 0x3f];
        out[o++] = b64_alphabet[(v >> 12) & 0x3f];
        out[o++] = rest == 2 ? b64_alphabet[(v >> 6) & 0x3f] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long ims_base64_decode(const char *in, uint8_t *out, size_t outcap)
{
    if (!in)
        return -1;
    size_t n = strlen(in);

    /* Padding is optional (some UEs drop it), but where present it must be at the very end and
     * make the length a multiple of 4. */
    size_t pad = 0;
    while (pad < n && pad < 2 && in[n - 1 - pad] == '=')
        pad++;
    size_t data = n - pad;
    if (pad > 0 && n % 4 != 0)
        return -1;
    /* One leftover character cannot encode a byte. */
    if (data % 4 == 1)
        return -1;
    if (pad > 0 && (data % 4) + pad != 4)
        return -1;

    size_t outlen = (data / 4) * 3 + (data % 4 == 0 ? 0 : (data % 4) - 1);
    if (outlen > outcap || outlen > (unsigned long)LONG_MAX)
        return -1;

    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return -1; /* includes '=' in the middle and any whitespace */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (UINT32_C(1) << bits) - 1;
        }
    }
    /* Leftover low bits of the last character are ignored (RFC 4648 §3.5 allows either). */
    return (long)o;
}

/* ====================================================================================== */
/* MD5 (RFC 1321)                                                                         */
/* ====================================================================================== */

typedef struct {
    uint32_t state[4];
    uint64_t total;     /* bytes hashed so far */
    uint8_t buf[64];
    size_t buf_len;
} md5_ctx;

/* T[i] = floor(2^32 * |sin(i + 1)|) (RFC 1321 §3.4) */
static const uint32_t md5_t[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
    0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
    0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
    0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* Per-step left rotations, four per round (RFC 1321 §3.4). */
static const uint8_t md5_s[4][4] = {
    { 7, 12, 17, 22 }, { 5, 9, 14, 20 }, { 4, 11, 16, 23 }, { 6, 10, 15, 21 },
};

static uint32_t rotl32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static void md5_block(uint32_t st[4], const uint8_t blk[64])
{
    uint32_t x[16];
    /* MD5 reads its message words little-endian, whatever the host order. */
    for (int i = 0; i < 16; i++)
        x[i] = (uint32_t)blk[4 * i] | ((uint32_t)blk[4 * i + 1] << 8) |
               ((uint32_t)blk[4 * i + 2] << 16) | ((uint32_t)blk[4 * i + 3] << 24);

    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        int round = i / 16;
        switch (round) {
        case 0:
            f = (b & c) | (~b & d); /* F */
            g = i;
            break;
        case 1:
            f = (b & d) | (c & ~d); /* G */
            g = (5 * i + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d; /* H */
            g = (3 * i + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d); /* I */
            g = (7 * i) % 16;
            break;
        }
        uint32_t tmp = d;
        d = c;
        c = b;
        b = b + rotl32(a + f + md5_t[i] + x[g], md5_s[round][i % 4]);
        a = tmp;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
}

static void md5_init(md5_ctx *ctx)
{
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->total = 0;
    ctx->buf_len = 0;
}

static void md5_update(md5_ctx *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    ctx->total += len;
    while (len > 0) {
        size_t take = 64 - ctx->buf_len;
        if (take > len)
            take = len;
        memcpy(&ctx->buf[ctx->buf_len], p, take);
        ctx->buf_len += take;
        p += take;
        len -= take;
        if (ctx->buf_len == 64) {
            md5_block(ctx->state, ctx->buf);
            ctx->buf_len = 0;
        }
    }
}

static void md5_final(md5_ctx *ctx, uint8_t out[16])
{
    /* Padding (RFC 1321 §3.1-3.2): a 1 bit, zeroes up to 56 mod 64, then the bit length as a
     * 64-bit little-endian number. */
    uint64_t bit_len = ctx->total * 8;
    uint8_t pad[72];
    size_t pad_len = (ctx->buf_len < 56) ? 56 - ctx->buf_len : 120 - ctx->buf_len;
    memset(pad, 0, sizeof(pad));
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++)
        pad[pad_len + i] = (uint8_t)(bit_len >> (8 * i));
    md5_update(ctx, pad, pad_len + 8);

    for (int i = 0; i < 4; i++) {
        out[4 * i] = (uint8_t)ctx->state[i];
        out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 8);
        out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 16);
        out[4 * i + 3] = (uint8_t)(ctx->state[i] >> 24);
    }
    memset(ctx, 0, sizeof(*ctx));
}

void ims_md5(const void *data, size_t len, uint8_t out[16])
{
    md5_ctx ctx;
    md5_init(&ctx);
    md5_update(&ctx, data, len);
    md5_final(&ctx, out);
}

/* RFC 2104: MD5(K ^ opad || MD5(K ^ ipad || data)); keys over 64 bytes are hashed first. */
void ims_hmac_md5(const uint8_t *key, size_t keylen, const void *data, size_t len, uint8_t out[16])
{
    uint8_t k[64] = { 0 }, pad[64], inner[16];
    if (keylen > sizeof(k))
        ims_md5(key, keylen, k);
    else if (keylen)
        memcpy(k, key, keylen);
    md5_ctx ctx;
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x36;
    md5_init(&ctx);
    md5_update(&ctx, pad, sizeof(pad));
    md5_update(&ctx, data, len);
    md5_final(&ctx, inner);
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = k[i] ^ 0x5c;
    md5_init(&ctx);
    md5_update(&ctx, pad, sizeof(pad));
    md5_update(&ctx, inner, sizeof(inner));
    md5_final(&ctx, out);
}

/* ====================================================================================== */
/* HTTP digest (RFC 2617) and Digest-AKAv1-MD5 (RFC 3310)                                 */
/* ====================================================================================== */

static void md5_update_str(md5_ctx *ctx, const char *s)
{
    if (s)
        md5_update(ctx, s, strlen(s));
}

static void md5_final_hex(md5_ctx *ctx, char out[33])
{
    uint8_t d[16];
    md5_final(ctx, d);
    ims_hex_encode(d, 16, out);
}

void ims_digest_ha1(const char *user, const char *realm, const char *password, size_t pwlen,
                    char ha1[33])
{
    /* A1 = unq(username) ":" unq(realm) ":" passwd (RFC 2617 §3.2.2.2, algorithm MD5). The
     * password is taken with an explicit length because for AKA it is binary RES. */
    md5_ctx ctx;
    md5_init(&ctx);
    md5_update_str(&ctx, user);
    md5_update(&ctx, ":", 1);
    md5_update_str(&ctx, realm);
    md5_update(&ctx, ":", 1);
    if (password && pwlen > 0)
        md5_update(&ctx, password, pwlen);
    md5_final_hex(&ctx, ha1);
}

void ims_digest_response(const char ha1[33], const char *nonce, const char *nc, const char *cnonce,
                         const char *qop, const char *method, const char *uri,
                         const void *body, size_t body_len, char out[33])
{
    md5_ctx ctx;
    char ha2[33];
    bool have_qop = qop && qop[0] != '\0';
    bool auth_int = have_qop && strcmp(qop, "auth-int") == 0;

    /* A2 = Method ":" digest-uri [":" H(entity-body)] (RFC 2617 §3.2.2.3) */
    md5_init(&ctx);
    md5_update_str(&ctx, method);
    md5_update(&ctx, ":", 1);
    md5_update_str(&ctx, uri);
    if (auth_int) {
        char hbody[33];
        uint8_t d[16];
        /* An empty body is legal (REGISTER usually has none): H("") then. */
        ims_md5(body_len > 0 ? body : "", body_len, d);
        ims_hex_encode(d, 16, hbody);
        md5_update(&ctx, ":", 1);
        md5_update(&ctx, hbody, 32);
    }
    md5_final_hex(&ctx, ha2);

    /* request-digest (RFC 2617 §3.2.2.1): with qop, KD(H(A1), nonce:nc:cnonce:qop:H(A2));
     * without it the RFC 2069 form KD(H(A1), nonce:H(A2)). */
    md5_init(&ctx);
    md5_update(&ctx, ha1, 32);
    md5_update(&ctx, ":", 1);
    md5_update_str(&ctx, nonce);
    md5_update(&ctx, ":", 1);
    if (have_qop) {
        md5_update_str(&ctx, nc);
        md5_update(&ctx, ":", 1);
        md5_update_str(&ctx, cnonce);
        md5_update(&ctx, ":", 1);
        md5_update_str(&ctx, qop);
        md5_update(&ctx, ":", 1);
    }
    md5_update(&ctx, ha2, 32);
    md5_final_hex(&ctx, out);
}

void ims_aka_digest_ha1(const char *user, const char *realm, const uint8_t *res, size_t res_len,
                        char ha1[33])
{
    /* RFC 3310 §3.3: the password is RES itself as an octet string, not its hex form. */
    ims_digest_ha1(user, realm, (const char *)res, res_len, ha1);
}
