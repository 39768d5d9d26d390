/*
 * scscf_auth: challenges issued by the S-CSCF and their verification.
 *
 *  - IMS-AKA (TS 33.203 §6.1, TS 24.229 §5.4.1.2.1, RFC 3310 Digest-AKAv1-MD5): nonce =
 *    base64(RAND || AUTN), password = XRES; CK and IK travel to the P-CSCF in the ck/ik parameters
 *    of WWW-Authenticate (the P-CSCF removes them).
 *  - SIP Digest (TS 24.229 §5.4.1.2.1B, RFC 2617 / RFC 7616 with MD5): our own random nonce, HA1
 *    from the HSS (Digest-HA1 of SIP-Digest-Authenticate).
 *
 * Nonces are kept by value (IMPI, IMPU, XRES or HA1, RAND for resync, expiry, last nonce-count)
 * for nonce_lifetime seconds; an expired one is still recognised for another lifetime so that the
 * UE gets stale=true. Nonce-counts must increase (RFC 7616 §3.4: a repeated nc is a replay).
 * A successful registration consumes its nonce: every REGISTER is challenged, except, with
 * scscf.reauth_protected: when_needed, an integrity-protected re-registration (scscf_register_auth.c).
 */
#ifndef SCSCF_AUTH_H
#define SCSCF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/sip.h>

#include "ims_authlimit.h"

enum { SCSCF_AUTH_AKA = 1, SCSCF_AUTH_DIGEST = 2 };

typedef struct {
    uint8_t rand[16], autn[16], xres[16], ck[16], ik[16];
    uint8_t xres_len;
} scscf_aka_vector;

typedef struct scscf_challenge {
    char nonce[64];
    char *impi, *impu;
    char *realm;
    char *qop;              /* qop offered ("auth", "auth,auth-int") */
    int64_t expires_at;
    uint32_t last_nc;
    uint8_t scheme;         /* SCSCF_AUTH_* */
    uint8_t xres_len;
    bool timeout_reported;
    uint8_t xres[16];
    uint8_t rand[16];
    char ha1[33];
} scscf_challenge;

/* The parameters of one Digest Authorization header, unquoted. */
typedef struct {
    char username[256];
    char realm[128];
    char nonce[128];
    char uri[512];
    char response[64];
    char algorithm[32];
    char cnonce[128];
    char qop[32];
    char nc[16];
    char auts[64];
    bool has_auts;
    bool integrity_protected;   /* integrity-protected="yes", added by the P-CSCF (TS 24.229 §5.2.2.1) */
} scscf_credentials;

typedef struct scscf_auth scscf_auth;

scscf_auth *scscf_auth_new(long nonce_lifetime);
void scscf_auth_free(scscf_auth *a);
size_t scscf_auth_count(const scscf_auth *a);

/* The Digest Authorization for `realm`, else the first Digest one; NULL when none. */
const sip_authorization_t *scscf_auth_pick(const sip_t *sip, const char *realm);
/* Parses it. 0, or -1 when a parameter is too long or the scheme is not Digest. */
int scscf_auth_parse(const sip_authorization_t *au, scscf_credentials *out);

/* New challenges; the WWW-Authenticate value goes to hdr. 0 / -1. */
int scscf_auth_challenge_aka(scscf_auth *a, const char *impi, const char *impu, const char *realm,
                             const scscf_aka_vector *v, bool stale, int64_t now, char *hdr, size_t hdrlen);
int scscf_auth_challenge_digest(scscf_auth *a, const char *impi, const char *impu, const char *realm,
                                const char *qop, const char *ha1, bool stale, int64_t now, char *hdr,
                                size_t hdrlen);

/* Spare AKA vectors of an IMPI (SIP-Number-Auth-Items > 1), used before asking the HSS again. */
void scscf_auth_keep_spare(scscf_auth *a, const char *impi, const scscf_aka_vector *v);
bool scscf_auth_take_spare(scscf_auth *a, const char *impi, scscf_aka_vector *out);
void scscf_auth_drop_spares(scscf_auth *a, const char *impi);

scscf_challenge *scscf_auth_find(scscf_auth *a, const char *nonce);
void scscf_auth_forget(scscf_auth *a, scscf_challenge *c);
/* True when another live challenge exists for the same IMPU. */
bool scscf_auth_other_pending(scscf_auth *a, const scscf_challenge *c, int64_t now);

typedef enum {
    SCSCF_VERIFY_OK = 0,
    SCSCF_VERIFY_BAD_RESPONSE,   /* wrong password / RES: 403 */
    SCSCF_VERIFY_MISMATCH,       /* username or realm differ from the challenge: 403 */
    SCSCF_VERIFY_REPLAY,         /* nonce-count did not increase: new challenge */
    SCSCF_VERIFY_MALFORMED,      /* response/uri missing, bad nc: 400 */
} scscf_verify_result;

scscf_verify_result scscf_auth_verify(scscf_challenge *c, const scscf_credentials *cr, const char *method,
                                      const void *body, size_t body_len);

/* Calls fn once for every challenge that expired unused (SAR AUTHENTICATION_TIMEOUT, TS 29.228
 * §6.1.2) and forgets challenges expired for more than a lifetime. */
void scscf_auth_sweep(scscf_auth *a, int64_t now, void (*fn)(void *arg, const scscf_challenge *c), void *arg);

/* The per-IMPI failure limiter kept with the challenges: created on the first call with these
 * limits (later calls return it as it is), swept by scscf_auth_sweep, freed by scscf_auth_free.
 * NULL when out of memory (then nothing is limited). */
ims_authlimit *scscf_auth_limiter(scscf_auth *a, long max_failures, long window, long lockout);

/* Who sent a REGISTER, for the logs of failed authentications: the UE's address as the P-CSCF
 * saw it (the bottom Via: received/rport when present, else sent-by) and the P-CSCF (first Path).
 * E.g. "UDP 192.0.2.7:5060 via <sip:term@pcscf.ims.lab:5060;lr>". */
void scscf_auth_source(const sip_t *sip, char *buf, size_t len);

#endif
