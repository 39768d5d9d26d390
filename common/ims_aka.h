/*
 * ims_aka: 3GPP authentication crypto for IMS.
 *
 *  - Milenage f1, f1*, f2, f3, f4, f5, f5* (TS 35.206; conformance data TS 35.208) on OpenSSL's
 *    AES-128 (libcrypto EVP).
 *  - Authentication vectors: AUTN = SQN^AK || AMF || MAC-A (TS 33.102 §6.3.2)
 *  - Resynchronisation: AUTS = SQN_MS^AK* || MAC-S, MAC-S = f1*(K, SQN_MS, RAND, AMF=0000)
 *    (TS 33.102 §6.3.3, §6.3.5); the HSS verifies MAC-S before it accepts SQN_MS.
 *  - SQN = SEQ (43 bits) || IND (5 bits) (TS 33.102 Annex C.1.1, C.3.2).
 *  - RFC 3310 Digest-AKAv1-MD5: password = RES (binary), nonce = base64(RAND || AUTN [|| server data]).
 *  - RFC 2617 MD5 digest: HA1, HA2, response (qop auth / auth-int / none); MD5 and HMAC-MD5 from
 *    libcrypto.
 *
 * Thread-safe. Functions returning int give 0, or -1 when libcrypto failed (out of memory, broken
 * provider configuration); their outputs are then unpredictable bytes (hex outputs ""), so a
 * caller that ignores the result never accepts a forged answer. bool checks return false then.
 */
#ifndef IMS_AKA_H
#define IMS_AKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMS_SQN_MAX ((UINT64_C(1) << 48) - 1)
#define IMS_SQN_IND_BITS 5

/* AES-128 single-block encryption (FIPS-197), the Milenage kernel; exposed for its own test. */
int ims_aes128_encrypt(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);

/* OPc = AES_K(OP) ^ OP */
int ims_milenage_opc(const uint8_t k[16], const uint8_t op[16], uint8_t opc[16]);

/* f1 (MAC-A) and f1* (MAC-S). Either output may be NULL. */
int ims_milenage_f1(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                    const uint8_t sqn[6], const uint8_t amf[2], uint8_t mac_a[8], uint8_t mac_s[8]);
/* f2 (RES, 8 bytes), f3 (CK), f4 (IK), f5 (AK), f5* (AK*). Any output may be NULL. */
int ims_milenage_f2345(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                       uint8_t res[8], uint8_t ck[16], uint8_t ik[16], uint8_t ak[6], uint8_t akstar[6]);

typedef struct {
    uint8_t rand[16];
    uint8_t autn[16];
    uint8_t xres[8];
    uint8_t ck[16];
    uint8_t ik[16];
} ims_auth_vector;

/* Builds a vector for `sqn` with the given RAND (caller draws it with ims_random). */
int ims_aka_vector(const uint8_t opc[16], const uint8_t k[16], const uint8_t amf[2], uint64_t sqn,
                   const uint8_t rand[16], ims_auth_vector *out);

/* HSS side of resync: checks AUTS (14 bytes) against RAND. On a valid MAC-S returns true and
 * SQN_MS in *sqn_ms; a bad MAC-S returns false. */
bool ims_aka_verify_auts(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                         const uint8_t auts[14], uint64_t *sqn_ms);
/* UE side (for tests and the Cx client): builds AUTS for SQN_MS. */
int ims_aka_make_auts(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                      uint64_t sqn_ms, uint8_t auts[14]);
/* UE side: checks AUTN, returns its SQN and RES/CK/IK. false if MAC-A is wrong. */
bool ims_aka_check_autn(const uint8_t opc[16], const uint8_t k[16], const uint8_t rand[16],
                        const uint8_t autn[16], uint64_t *sqn, uint8_t res[8], uint8_t ck[16],
                        uint8_t ik[16]);

/* Next SQN after `sqn` (TS 33.102 C.3.2): SEQ + 1, IND + 1 mod 32; wraps within 48 bits. */
uint64_t ims_sqn_next(uint64_t sqn);
/* After a resync to SQN_MS the HSS continues from SQN_MS: next = ims_sqn_next(sqn_ms). */

void ims_sqn_to_bytes(uint64_t sqn, uint8_t out[6]);
uint64_t ims_sqn_from_bytes(const uint8_t in[6]);

/* Cryptographically random bytes (getrandom(2)). 0 / -1. */
int ims_random(void *buf, size_t len);

/* ---------- hex / base64 ---------- */
/* Lower-case hex of len bytes into out (2*len+1). */
void ims_hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly 2*len hex digits (either case) -> bytes. 0 / -1. */
int ims_hex_decode(const char *hex, uint8_t *out, size_t len);
/* RFC 4648 base64 with padding; out needs 4*((len+2)/3)+1. Returns output length. */
size_t ims_base64_encode(const uint8_t *in, size_t len, char *out);
/* Decodes (padding optional, no whitespace); returns decoded length or -1. */
long ims_base64_decode(const char *in, uint8_t *out, size_t outcap);

/* ---------- MD5 and HTTP digest ---------- */
int ims_md5(const void *data, size_t len, uint8_t out[16]);
/* HMAC-MD5 (RFC 2104), e.g. for tokens only this process can make (pcscf_dialog.c). */
int ims_hmac_md5(const uint8_t *key, size_t keylen, const void *data, size_t len, uint8_t out[16]);
/* HA1 = MD5(user:realm:password) as 32 lower-case hex + NUL */
int ims_digest_ha1(const char *user, const char *realm, const char *password, size_t pwlen,
                   char ha1[33]);
/* RFC 2617 response from HA1. qop NULL or "" = RFC 2069 style; "auth-int" needs body (may be
 * empty). Output 32 hex + NUL. */
int ims_digest_response(const char ha1[33], const char *nonce, const char *nc, const char *cnonce,
                        const char *qop, const char *method, const char *uri,
                        const void *body, size_t body_len, char out[33]);
/* RFC 3310: Digest-AKAv1-MD5 HA1 uses password = RES as raw bytes. */
int ims_aka_digest_ha1(const char *user, const char *realm, const uint8_t *res, size_t res_len,
                       char ha1[33]);

#endif
