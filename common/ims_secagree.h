/*
 * ims_secagree: the sec-agree header codec (Security-Client / Security-Server / Security-Verify),
 * the choice of an ipsec-3gpp mechanism and the ESP keys derived from the AKA CK/IK. Pure C: no
 * kernel, no sockets (pcscf_xfrm installs the SAs; the P-CSCF decides when).
 *
 * References:
 *  - RFC 3329 §2.2 (grammar: sec-mechanism = mechanism-name *(SEMI mech-parameters); q, d-alg,
 *    d-qop, d-ver, extension = generic-param), §2.3.1 (the server compares Security-Verify with
 *    the Security-Server it sent; 494 Security Agreement Required).
 *  - TS 33.203 Annex H (mechanism "ipsec-3gpp": alg, ealg, prot, mod, spi-c, spi-s, port-c,
 *    port-s), §7.1-7.2 (what the UE and the P-CSCF put in them), §6.1 (IK/CK of the AKA run).
 *  - TS 33.203 Annex I (key expansion for ESP), see ims_secagree_keys().
 *  - RFC 4303 §2.1 (SPI 0 is reserved), RFC 2403/2404 (HMAC-*-96), RFC 3602 (AES-CBC), RFC 2451
 *    (3DES-CBC), RFC 2410 (NULL encryption).
 *
 * Strictness: a header value that breaks the grammar, repeats a parameter, or carries a number out
 * of range (SPI 0 or above 2^32-1, port 0 or above 65535, q outside 0..1) is an error: the caller
 * answers 4xx with the message. A well-formed mechanism we cannot use (digest, tls, ipsec-3gpp with
 * an algorithm, protocol or mode we do not implement) is kept in the list with supported = false:
 * RFC 3329 lets the UE offer several, and we pick among the ones we can use.
 *
 * Thread-safe, no allocation.
 */
#ifndef IMS_SECAGREE_H
#define IMS_SECAGREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/sip.h>

/* Integrity algorithms (TS 33.203 Annex H "alg"). 0 = none / not one we implement. */
typedef enum {
    IMS_SA_ALG_UNKNOWN = 0,
    IMS_SA_ALG_HMAC_MD5_96 = 1,  /* "hmac-md5-96"   */
    IMS_SA_ALG_HMAC_SHA1_96 = 2, /* "hmac-sha-1-96" */
} ims_sa_alg;

/* Encryption algorithms ("ealg"; absent means null, TS 33.203 Annex H). */
typedef enum {
    IMS_SA_EALG_UNKNOWN = 0,
    IMS_SA_EALG_NULL = 1,         /* "null"         */
    IMS_SA_EALG_AES_CBC = 2,      /* "aes-cbc"      */
    IMS_SA_EALG_DES_EDE3_CBC = 3, /* "des-ede3-cbc" */
} ims_sa_ealg;

/* Header text of a value ("hmac-sha-1-96"), NULL for UNKNOWN / out of range. */
const char *ims_sa_alg_name(ims_sa_alg alg);
const char *ims_sa_ealg_name(ims_sa_ealg ealg);
/* Value of a header / config text (case-insensitive); IMS_SA_*_UNKNOWN when none. */
ims_sa_alg ims_sa_alg_by_name(const char *name);
ims_sa_ealg ims_sa_ealg_by_name(const char *name);

#define IMS_SA_MECH_NAME_MAX 32 /* mechanism name, NUL included ("ipsec-3gpp", "digest", ...) */
#define IMS_SA_MAX_MECHS 16     /* mechanisms per list (a phone offers 2 algs x 3 ealgs at most) */
#define IMS_SA_VALUE_MAX 2048   /* longest header value we read */

/* One sec-mechanism. For ipsec-3gpp the fields below are filled; for any mechanism `supported`
 * tells whether we can set it up (today: ipsec-3gpp, alg and ealg we implement, prot=esp,
 * mod=trans), and `why` names the reason when not (a static string, for logs). */
typedef struct {
    char name[IMS_SA_MECH_NAME_MAX]; /* lower case */
    bool supported;
    const char *why;                 /* NULL when supported */
    int q;                           /* preference 0..1000 (q=0.5 -> 500), -1 when absent */
    ims_sa_alg alg;
    ims_sa_ealg ealg;                /* IMS_SA_EALG_NULL when the parameter is absent */
    uint32_t spi_c, spi_s;           /* 1..2^32-1 (ipsec-3gpp), else 0 */
    uint16_t port_c, port_s;         /* 1..65535 (ipsec-3gpp), else 0 */
    /* Every parameter as written, whitespace removed, names lower-cased, ";" between them
     * (e.g. "q=0.1;alg=hmac-sha-1-96;..."): what Security-Verify is compared on for mechanisms
     * other than ipsec-3gpp, and what logs show. */
    char params[256];
} ims_sa_mech;

typedef struct {
    size_t n;
    ims_sa_mech mech[IMS_SA_MAX_MECHS];
} ims_sa_list;

/* Parses one header value (comma-separated mechanisms) and appends them to *out (so several
 * header lines of the same name make one list; zero *out before the first call). 0, or -1 with a
 * message naming the mechanism and parameter in err (out then holds the mechanisms before it). */
int ims_secagree_parse(const char *value, ims_sa_list *out, char *err, size_t errlen);

/* Every value of the header `name` in sip ("Security-Client", "Security-Verify" or
 * "Security-Server", case-insensitive), in order, into *out (zeroed first). Absent header: 0 and
 * out->n == 0. A line sofia-sip could not parse counts as an error too. 0 / -1 (err). */
int ims_secagree_parse_sip(const sip_t *sip, const char *name, ims_sa_list *out, char *err,
                           size_t errlen);

/* Chooses the mechanism we set up among the supported ipsec-3gpp mechanisms offered:
 *  1. only alg / ealg values listed in our preference lists are acceptable;
 *  2. among those, the best ealg by our order wins (encryption or not is the choice that changes
 *     what an observer sees), then the best alg by our order;
 *  3. remaining ties go to the UE's preference: higher q first (absent q ranks below any q),
 *     then the earlier mechanism in its header (RFC 3329 §2.2: q orders the offers).
 * Returns the index in offered->mech and copies it to *chosen, or -1 when none is acceptable
 * (RFC 3329 §2.3.1 / TS 24.229 §5.2.2.1: 494 when sec-agree is required). */
int ims_secagree_choose(const ims_sa_list *offered, const ims_sa_alg *alg_pref, size_t n_alg,
                        const ims_sa_ealg *ealg_pref, size_t n_ealg, ims_sa_mech *chosen);

/* Writes m as a header value, e.g.
 * "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101;prot=esp;mod=trans"
 * (q only when m->q >= 0). m must be a supported ipsec-3gpp mechanism. Returns the length, or
 * -1 when m is not one or buf is too small. */
int ims_secagree_format(const ims_sa_mech *m, char *buf, size_t len);

/* RFC 3329 §2.3.1 / TS 33.203 §7.2: true when Security-Verify lists exactly the mechanisms of the
 * Security-Server we sent, in the same order, with the same parameters (ipsec-3gpp compared on
 * its values, so "q=0.10" equals "q=0.1"; other mechanisms on their parameter text). An empty
 * Security-Verify never matches. */
bool ims_secagree_verify_matches(const ims_sa_list *verify, const ims_sa_list *server_sent);

/* ESP keys and Linux XFRM algorithm names for an SA set (TS 33.203 Annex I). Keys are secret:
 * never log them; ims_secagree_keys_wipe() clears a copy that is done with. */
typedef struct {
    const char *auth_xfrm;   /* "hmac(md5)" / "hmac(sha1)" (XFRMA_ALG_AUTH_TRUNC alg_name) */
    unsigned auth_trunc_bits;/* 96 */
    uint8_t auth_key[20];
    size_t auth_key_len;     /* 16 (MD5) / 20 (SHA-1) */
    const char *enc_xfrm;    /* "ecb(cipher_null)" / "cbc(aes)" / "cbc(des3_ede)" (XFRMA_ALG_CRYPT) */
    uint8_t enc_key[24];
    size_t enc_key_len;      /* 0 / 16 / 24 */
} ims_sa_keys;

/* IK (integrity) and CK (cipher) of the AKA run -> *out. 0, or -1 for an unknown alg / ealg. */
int ims_secagree_keys(ims_sa_alg alg, ims_sa_ealg ealg, const uint8_t ck[16], const uint8_t ik[16],
                      ims_sa_keys *out);
void ims_secagree_keys_wipe(ims_sa_keys *keys);

#endif
