/*
 * ims_aka: 3GPP AKA crypto and HTTP digest helpers (see ims_aka.h).
 *
 * References:
 *  - FIPS-197: AES. Milenage only ever encrypts single blocks with a 128-bit key (AES-128-ECB).
 *  - 3GPP TS 35.206: Milenage f1, f1*, f2, f3, f4, f5, f5* and OPc (conformance data TS 35.208).
 *  - 3GPP TS 33.102 §6.3.2 (AUTN = SQN^AK || AMF || MAC-A), §6.3.3 and §6.3.5 (resynchronisation:
 *    AUTS = SQN_MS^AK* || MAC-S, MAC-S computed with a dummy AMF of 0x0000), Annex C (SQN =
 *    SEQ || IND, C.1.1 and C.3.2).
 *  - RFC 1321: MD5. RFC 2104: HMAC.
 *  - RFC 2617 §3.2.2: digest request-digest (qop auth, auth-int, and the RFC 2069 form).
 *  - RFC 3310 §3.3: Digest-AKAv1-MD5 uses RES as the (binary) password.
 *  - RFC 4648 §4: base64.
 *
 * AES, MD5 and HMAC come from OpenSSL's libcrypto (EVP, 3.0): constant-time, AES-NI where the CPU
 * has it, and maintained by people who do nothing else; the HSS runs them on every subscriber's
 * K. The algorithms are fetched once per process (EVP_*_fetch is a locked lookup in the provider
 * store, too slow to do per block at ~30k MAR/s). Each thread keeps one AES-128-ECB context and
 * only re-keys it per call (EVP_EncryptInit_ex2 with a NULL cipher); a vector then costs one key
 * schedule and five blocks.
 *
 * libcrypto can fail (out of memory, a broken provider configuration). Every function then
 * returns -1 (or false) and leaves outputs that match nothing: random bytes for binary outputs,
 * "" for hex ones. A caller that ignores the result can therefore never accept a forged response.
 */
#include "ims_aka.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* ====================================================================================== */
/* libcrypto objects                                                                      */
/* ====================================================================================== */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *g_aes128;        /* AES-128-ECB */
static EVP_MD *g_md5;
static EVP_MAC_CTX *g_hmac_md5;     /* HMAC with MD5 and no key: duplicated per call */
static pthread_key_t g_aes_key;     /* this thread's EVP_CIPHER_CTX */
static bool g_aes_key_ok;

static void free_thread_ctx(void *p)
{
    EVP_CIPHER_CTX_free(p);
}

static void crypto_init(void)
{
    g_aes128 = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    g_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (hmac) {
        /* The template carries the digest, so a call only duplicates it (no fetch) and keys it. */
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"MD5", 0),
            OSSL_PARAM_construct_end(),
        };
        g_hmac_md5 = EVP_MAC_CTX_new(hmac);
        if (g_hmac_md5 && !EVP_MAC_CTX_set_params(g_hmac_md5, params)) {
            EVP_MAC_CTX_free(g_hmac_md5);
            g_hmac_md5 = NULL;
        }
        EVP_MAC_free(hmac); /* the context keeps its own reference */
    }
    g_aes_key_ok = pthread_key_create(&g_aes_key, free_thread_ctx) == 0;
}

/* This thread's AES-128 context, keyed with `key`; NULL on failure. The key schedule of the last
 * key stays in the context until the next call: K itself stays in the HSS's memory anyway. */
static EVP_CIPHER_CTX *aes_keyed(const uint8_t key[16])
{
    pthread_once(&g_once, crypto_init);
    if (!g_aes128 || !g_aes_key_ok)
        return NULL;
    EVP_CIPHER_CTX *c = pthread_getspecific(g_aes_key);
    if (!c) {
        c = EVP_CIPHER_CTX_new();
        if (!c)
            return NULL;
        /* Padding off: we only ever pass whole blocks and never call EVP_EncryptFinal. */
        if (!EVP_EncryptInit_ex2(c, g_aes128, NULL, NULL, NULL) || !EVP_CIPHER_CTX_set_padding(c, 0) ||
            pthread_setspecific(g_aes_key, c) != 0) {
            EVP_CIPHER_CTX_free(c);
            return NULL;
        }
    }
    /* A NULL cipher keeps the fetched one and its provider context: only the key changes. */
    if (!EVP_EncryptInit_ex2(c, NULL, key, NULL, NULL))
        return NULL;
    return c;
}

/* One AES-128 block: out = E_K(in). 0 / -1. */
static int aes_block(EVP_CIPHER_CTX *c, const uint8_t in[16], uint8_t out[16])
{
    int n = 0;
    if (!EVP_EncryptUpdate(c, out, &n, in, 16) || n != 16)
        return -1;
    return 0;
}

/* Outputs of a failed computation: unpredictable, so nothing can be matched against them. */
static void fail_bytes(void *out, size_t len)
{
    if (out && ims_random(out, len) != 0)
        memset(out, 0xa5, len); /* no randomness either: the caller got -1, this is the last line */
}

/* Exposed so the unit test can check the kernel against FIPS-197 directly: a Milenage mismatch
 * alone would not say whether AES or Milenage is wrong. */
int ims_aes128_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    EVP_CIPHER_CTX *c = aes_keyed(key);
    if (!c || aes_block(c, in, out) != 0) {
        fail_bytes(out, 16);
        return -1;
    }
    return 0;
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

/* TEMP = E_K(RAND ^ OPc), shared by f1 and f2-f5. */
static int milenage_temp(EVP_CIPHER_CTX *c, const uint8_t opc[16], const uint8_t rand[16],
                         uint8_t temp[16])
{
    uint8_t x[16];
    xor16(x, rand, opc);
    return aes_block(c, x, temp);
}

/* Milenage output block i (TS 35.206 §4.1) for i = 2..5:
 *   OUTi = E_K(rot(TEMP ^ OPc, ri) ^ ci) ^ OPc
 * where ci is all zero except the last byte (c2 = 1, c3 = 2, c4 = 4, c5 = 8). */
static int milenage_out(EVP_CIPHER_CTX *c, const uint8_t opc[16], const uint8_t temp[16],
                        int r_bits, uint8_t c_last, uint8_t out[16])
{
    uint8_t x[16], y[16];
    xor16(x, temp, opc);
    rot_left_bytes(y, x, r_bits);
    y[15] ^= c_last;
    if (aes_block(c, y, out) != 0)
        return -1;
    xor16(out, out, opc);
    return 0;
}

/* f1 and f1* from TEMP (TS 35.206 §4.1). */
static int milenage_f1_temp(EVP_CIPHER_CTX *c, const uint8_t opc[16], const uint8_t temp[16],
                            const uint8_t sqn[6], const uint8_t amf[2], uint8_t mac_a[8],
                            uint8_t mac_s[8])
{
    uint8_t in1[16], x[16], y[16], out1[16];

    /* IN1 = SQN || AMF || SQN || AMF */
    memcpy(&in1[0], sqn, 6);
    memcpy(&in1[6], amf, 2);
    memcpy(&in1[8], sqn, 6);
    memcpy(&in1[14], amf, 2);

    /* OUT1 = E_K(TEMP ^ rot(IN1 ^ OPc, r1)) ^ OPc, with r1 = 64 and c1 = 0. */
    xor16(x, in1, opc);
    rot_left_bytes(y, x, 64);
    xor16(y, y, temp);
    if (aes_block(c, y, out1) != 0)
        return -1;
    xor16(out1, out1, opc);

    if (mac_a)
        memcpy(mac_a, &out1[0], 8); /* f1 = OUT1[0..63] */
    if (mac_s)
        memcpy(mac_s, &out1[8], 8); /* f1* = OUT1[64..127] */
    return 0;
}

/* f2, f3, f4, f5, f5* from TEMP; only the outputs asked for cost a block. */
static int milenage_f2345_temp(EVP_CIPHER_CTX *c, const uint8_t opc[16], const uint8_t temp[16],
                               uint8_t res[8], uint8_t ck[16], uint8_t ik[16], uint8_t ak[6],
                               uint8_t akstar[6])
{
    uint8_t out[16];
    int rc = -1;

    if (res || ak) {
        if (milenage_out(c, opc, temp, 0, 0x01, out) != 0) /* r2 = 0, c2 */
            goto out;
        if (ak)
            memcpy(ak, &out[0], 6); /* f5 = OUT2[0..47] */
        if (res)
            memcpy(res, &out[8], 8); /* f2 = OUT2[64..127] */
    }
    if (ck && milenage_out(c, opc, temp, 32, 0x02, ck) != 0) /* r3 = 32, c3 */
        goto out;
    if (ik && milenage_out(c, opc, temp, 64, 0x04, ik) != 0) /* r4 = 64, c4 */
        goto out;
    if (akstar) {
        if (milenage_out(c, opc, temp, 96, 0x08, out) != 0) /* r5 = 96, c5 */
            goto out;
        memcpy(akstar, &out[0], 6); /* f5* = OUT5[0..47] */
    }
    rc = 0;
out:
    OPENSSL_cleanse(out, sizeof(out));
    return rc;
}

int ims_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16])
{
    uint8_t e[16];
    EVP_CIPHER_CTX *c = aes_keyed(k);
    if (!c || aes_block(c, op, e) != 0) {
        fail_bytes(opc, 16);
        return -1;
    }
    xor16(opc, e, op);
    OPENSSL_cleanse(e, sizeof(e));
    return 0;
}

int ims_milenage_f1(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                    const uint8_t sqn[6], const uint8_t amf[2], uint8_t mac_a[8], uint8_t mac_s[8])
{
    uint8_t temp[16];
    EVP_CIPHER_CTX *c = aes_keyed(k);
    int rc = c && milenage_temp(c, opc, rand, temp) == 0 &&
                     milenage_f1_temp(c, opc, temp, sqn, amf, mac_a, mac_s) == 0 ? 0 : -1;
    if (rc != 0) {
        fail_bytes(mac_a, 8);
        fail_bytes(mac_s, 8);
    }
    OPENSSL_cleanse(temp, sizeof(temp));
    return rc;
}

int ims_milenage_f2345(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                       uint8_t res[8], uint8_t ck[16], uint8_t ik[16], uint8_t ak[6], uint8_t akstar[6])
{
    uint8_t temp[16];
    EVP_CIPHER_CTX *c = aes_keyed(k);
    int rc = c && milenage_temp(c, opc, rand, temp) == 0 &&
                     milenage_f2345_temp(c, opc, temp, res, ck, ik, ak, akstar) == 0 ? 0 : -1;
    if (rc != 0) {
        fail_bytes(res, 8);
        fail_bytes(ck, 16);
        fail_bytes(ik, 16);
        fail_bytes(ak, 6);
        fail_bytes(akstar, 6);
    }
    OPENSSL_cleanse(temp, sizeof(temp));
    return rc;
}

/* ====================================================================================== */
/* Vectors, AUTN and AUTS (TS 33.102 §6.3)                                                */
/* ====================================================================================== */

/* MAC comparison whose time does not depend on where the first difference is, so a network peer
 * cannot learn a MAC byte by byte. */
static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
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

int ims_aka_vector(const uint8_t opc[16], const uint8_t k[16], const uint8_t amf[2], uint64_t sqn,
                   const uint8_t rand[16], ims_auth_vector *out)
{
    uint8_t sqn_b[6], ak[6], mac_a[8], temp[16];
    int rc = -1;

    /* One key schedule and TEMP for the whole vector: f1 and f2-f5 share both. */
    ims_sqn_to_bytes(sqn & IMS_SQN_MAX, sqn_b);
    EVP_CIPHER_CTX *c = aes_keyed(k);
    if (!c || milenage_temp(c, opc, rand, temp) != 0 ||
        milenage_f1_temp(c, opc, temp, sqn_b, amf, mac_a, NULL) != 0 ||
        milenage_f2345_temp(c, opc, temp, out->xres, out->ck, out->ik, ak, NULL) != 0) {
        fail_bytes(out, sizeof(*out));
        goto out;
    }

    memcpy(out->rand, rand, 16);
    /* AUTN = SQN ^ AK || AMF || MAC-A: AK conceals SQN so that it cannot be used to track the
     * user (TS 33.102 §6.3.2). */
    for (int i = 0; i < 6; i++)
        out->autn[i] = (uint8_t)(sqn_b[i] ^ ak[i]);
    memcpy(&out->autn[6], amf, 2);
    memcpy(&out->autn[8], mac_a, 8);
    rc = 0;
out:
    OPENSSL_cleanse(temp, sizeof(temp));
    return rc;
}

bool ims_aka_check_autn(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                        const uint8_t autn[16], uint64_t *sqn, uint8_t res[8], uint8_t ck[16],
                        uint8_t ik[16])
{
    uint8_t ak[6], sqn_b[6], xmac[8], r[8], c[16], i_k[16];

    /* AK depends only on RAND, so the UE can unmask SQN before it checks the MAC. */
    if (ims_milenage_f2345(opc, k, rand, r, c, i_k, ak, NULL) != 0)
        return false;
    for (int i = 0; i < 6; i++)
        sqn_b[i] = (uint8_t)(autn[i] ^ ak[i]);
    if (ims_milenage_f1(opc, k, rand, sqn_b, &autn[6], xmac, NULL) != 0 || !ct_equal(xmac, &autn[8], 8))
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

int ims_aka_make_auts(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                      uint64_t sqn_ms, uint8_t auts[14])
{
    uint8_t sqn_b[6], akstar[6], mac_s[8];

    ims_sqn_to_bytes(sqn_ms & IMS_SQN_MAX, sqn_b);
    if (ims_milenage_f2345(opc, k, rand, NULL, NULL, NULL, NULL, akstar) != 0 ||
        ims_milenage_f1(opc, k, rand, sqn_b, resync_amf, NULL, mac_s) != 0) {
        fail_bytes(auts, 14);
        return -1;
    }
    for (int i = 0; i < 6; i++)
        auts[i] = (uint8_t)(sqn_b[i] ^ akstar[i]);
    memcpy(&auts[6], mac_s, 8);
    return 0;
}

bool ims_aka_verify_auts(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                         const uint8_t auts[14], uint64_t *sqn_ms)
{
    uint8_t sqn_b[6], akstar[6], xmac_s[8];

    if (ims_milenage_f2345(opc, k, rand, NULL, NULL, NULL, NULL, akstar) != 0)
        return false;
    for (int i = 0; i < 6; i++)
        sqn_b[i] = (uint8_t)(auts[i] ^ akstar[i]);
    /* Annex C / §6.3.5: SQN_MS is only trusted once MAC-S is verified; otherwise anyone could
     * push the HSS's counter around. */
    if (ims_milenage_f1(opc, k, rand, sqn_b, resync_amf, NULL, xmac_s) != 0 ||
        !ct_equal(xmac_s, &auts[6], 8))
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
/* MD5 (RFC 1321) and HMAC-MD5 (RFC 2104)                                                 */
/* ====================================================================================== */

/* An MD5 computation in progress; `failed` sticks, so callers check once at the end. */
typedef struct {
    EVP_MD_CTX *c;
    bool failed;
} md5_ctx;

static void md5_init(md5_ctx *m)
{
    pthread_once(&g_once, crypto_init);
    m->c = g_md5 ? EVP_MD_CTX_new() : NULL;
    m->failed = !m->c || !EVP_DigestInit_ex2(m->c, g_md5, NULL);
}

static void md5_update(md5_ctx *m, const void *data, size_t len)
{
    if (!m->failed && len > 0 && !EVP_DigestUpdate(m->c, data, len))
        m->failed = true;
}

static void md5_update_str(md5_ctx *m, const char *s)
{
    if (s)
        md5_update(m, s, strlen(s));
}

/* Ends the computation and frees it. 0 / -1. */
static int md5_final(md5_ctx *m, uint8_t out[16])
{
    unsigned int n = 0;
    if (!m->failed && (!EVP_DigestFinal_ex(m->c, out, &n) || n != 16))
        m->failed = true;
    EVP_MD_CTX_free(m->c);
    m->c = NULL;
    return m->failed ? -1 : 0;
}

/* Hex form of the digest; "" when it failed (never equal to a 32-digit response). */
static int md5_final_hex(md5_ctx *m, char out[33])
{
    uint8_t d[16];
    if (md5_final(m, d) != 0) {
        out[0] = '\0';
        return -1;
    }
    ims_hex_encode(d, 16, out);
    return 0;
}

int ims_md5(const void *data, size_t len, uint8_t out[16])
{
    md5_ctx m;
    md5_init(&m);
    md5_update(&m, data, len);
    if (md5_final(&m, out) != 0) {
        fail_bytes(out, 16);
        return -1;
    }
    return 0;
}

int ims_hmac_md5(const uint8_t *key, size_t keylen, const void *data, size_t len, uint8_t out[16])
{
    static const uint8_t no_key[1];
    size_t n = 0;
    pthread_once(&g_once, crypto_init);
    EVP_MAC_CTX *m = g_hmac_md5 ? EVP_MAC_CTX_dup(g_hmac_md5) : NULL;
    /* A NULL key would mean "keep the previous key" to EVP_MAC_init: pass an empty one. */
    int ok = m && EVP_MAC_init(m, keylen ? key : no_key, keylen, NULL) &&
             (len == 0 || EVP_MAC_update(m, data, len)) && EVP_MAC_final(m, out, &n, 16) && n == 16;
    EVP_MAC_CTX_free(m);
    if (!ok) {
        fail_bytes(out, 16);
        return -1;
    }
    return 0;
}

/* ====================================================================================== */
/* HTTP digest (RFC 2617) and Digest-AKAv1-MD5 (RFC 3310)                                 */
/* ====================================================================================== */

int ims_digest_ha1(const char *user, const char *realm, const char *password, size_t pwlen,
                   char ha1[33])
{
    /* A1 = unq(username) ":" unq(realm) ":" passwd (RFC 2617 §3.2.2.2, algorithm MD5). The
     * password is taken with an explicit length because for AKA it is binary RES. */
    md5_ctx m;
    md5_init(&m);
    md5_update_str(&m, user);
    md5_update(&m, ":", 1);
    md5_update_str(&m, realm);
    md5_update(&m, ":", 1);
    if (password && pwlen > 0)
        md5_update(&m, password, pwlen);
    return md5_final_hex(&m, ha1);
}

int ims_digest_response(const char ha1[33], const char *nonce, const char *nc, const char *cnonce,
                        const char *qop, const char *method, const char *uri,
                        const void *body, size_t body_len, char out[33])
{
    md5_ctx m;
    char ha2[33];
    bool have_qop = qop && qop[0] != '\0';
    bool auth_int = have_qop && strcmp(qop, "auth-int") == 0;

    /* A2 = Method ":" digest-uri [":" H(entity-body)] (RFC 2617 §3.2.2.3) */
    md5_init(&m);
    md5_update_str(&m, method);
    md5_update(&m, ":", 1);
    md5_update_str(&m, uri);
    if (auth_int) {
        char hbody[33];
        uint8_t d[16];
        /* An empty body is legal (REGISTER usually has none): H("") then. */
        if (ims_md5(body_len > 0 ? body : "", body_len, d) != 0)
            m.failed = true;
        ims_hex_encode(d, 16, hbody);
        md5_update(&m, ":", 1);
        md5_update(&m, hbody, 32);
    }
    if (md5_final_hex(&m, ha2) != 0) {
        out[0] = '\0';
        return -1;
    }

    /* request-digest (RFC 2617 §3.2.2.1): with qop, KD(H(A1), nonce:nc:cnonce:qop:H(A2));
     * without it the RFC 2069 form KD(H(A1), nonce:H(A2)). */
    md5_init(&m);
    md5_update(&m, ha1, 32);
    md5_update(&m, ":", 1);
    md5_update_str(&m, nonce);
    md5_update(&m, ":", 1);
    if (have_qop) {
        md5_update_str(&m, nc);
        md5_update(&m, ":", 1);
        md5_update_str(&m, cnonce);
        md5_update(&m, ":", 1);
        md5_update_str(&m, qop);
        md5_update(&m, ":", 1);
    }
    md5_update(&m, ha2, 32);
    return md5_final_hex(&m, out);
}

int ims_aka_digest_ha1(const char *user, const char *realm, const uint8_t *res, size_t res_len,
                       char ha1[33])
{
    /* RFC 3310 §3.3: the password is RES itself as an octet string, not its hex form. */
    return ims_digest_ha1(user, realm, (const char *)res, res_len, ha1);
}
