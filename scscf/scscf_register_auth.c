/*
 * scscf_register_auth: challenge and verification of a REGISTER at the S-CSCF. See
 * scscf_register.h for the whole registrar.
 *
 * References: TS 24.229 §5.4.1.2.1 (AKA challenge), §5.4.1.2.1B (SIP digest), §5.4.1.2.3
 * (resynchronisation), §5.4.1.2.3A (authentication failure); TS 29.228 §6.3 (MAR/MAA); TS 33.102
 * §6.3.5 (AUTS); RFC 7616 §3.4 (nonce-count).
 *
 * Decisions:
 *  - Every REGISTER is challenged (re-registrations and de-registrations too) unless
 *    scscf.reauth_protected is when_needed: then a REGISTER that the P-CSCF marks
 *    integrity-protected="yes" (it came over the UE's IPsec SAs, TS 24.229 §5.2.2.1; the P-CSCF
 *    removes the parameter from anything else) for a user registered with AKA by the same IMPI,
 *    and not answering a challenge still open (that answer is verified), is accepted without a
 *    challenge (TS 24.229 §5.4.1.2.1: "may") and goes on as an authenticated one (SAR
 *    RE_REGISTRATION, 200). Only the trust domain reaches the S-CSCF
 *    (scscf_sip.c), so the mark is the P-CSCF's. A nonce is consumed by the REGISTER it
 *    authenticates.
 *  - The MAR scheme follows the UE: algorithm=AKAv1-MD5 -> Digest-AKAv1-MD5, algorithm=MD5 ->
 *    SIP Digest, anything else (or no Authorization) -> Unknown, and the HSS picks the IMPI's default.
 *  - A wrong response -> 403 and SAR AUTHENTICATION_FAILURE; a nonce-count that did not increase is
 *    a replay -> 401 with a fresh challenge; an expired nonce -> 401 stale=true;
 *    Authorization without response/uri/username or with a malformed nc -> 400.
 *  - The digest "uri" parameter is used as sent for the response computation (SIPp sends
 *    sip:<remote_ip>:<port>); it is not required to equal the Request-URI.
 *  - A failed MAA is answered from the Cx table (common/ims_register.c), except a resync the HSS
 *    refuses with DIAMETER_UNABLE_TO_COMPLY: that is its answer to an AUTS whose MAC-S is wrong
 *    (hss_cx_auth.c), an authentication failure: 403.
 *  - Brute force: wrong responses are counted per IMPI; past the limit the IMPI is locked
 *    (scscf_register_check.c answers). 403 because RFC 3261 §21.4.3 says exactly this
 *    ("authorization will not help, the request SHOULD NOT be repeated") and TS 24.229
 *    §5.4.1.2.3A answers failed authentication with 403; not 503, which means overload and sends
 *    UEs and proxies to another server (RFC 3261 §21.5.4); SIP has no "too many requests" (429
 *    is Provide Referrer Identity, RFC 3892). The lock is per IMPI, so whoever guesses can lock the
 *    real user out for auth_lockout seconds: the P-CSCF's per-address limit stops one source.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_aka.h"
#include "ims_log.h"
#include "scscf_cx.h"
#include "scscf_register.h"

#define SUBSYS SCSCF_REG_SUBSYS

ims_authlimit *scscf_reg_limiter(scscf_context *ctx)
{
    const scscf_cfg *c = &ctx->cfg.scscf;
    return scscf_auth_limiter(ctx->auth, c->auth_max_failures, c->auth_failure_window, c->auth_lockout);
}

static void send_challenge(scscf_reg_txn *t, const char *www, const char *kind)
{
    char hdr[700];
    snprintf(hdr, sizeof(hdr), "WWW-Authenticate: %s\r\n", www);
    IMS_INFO(SUBSYS, "401 %s challenge for %s (%s)%s", kind, t->impi, t->impu, t->stale ? " stale" : "");
    scscf_reg_finish(t, 401, "Unauthorized - Challenging the UE", hdr);
}

static void challenge_aka(scscf_reg_txn *t, const scscf_aka_vector *v)
{
    char www[600];
    if (scscf_auth_challenge_aka(t->ctx->auth, t->impi, t->impu, t->ctx->realm, v, t->stale, scscf_now(), www,
                                 sizeof(www))) {
        scscf_reg_finish(t, 500, "Server Internal Error", NULL);
        return;
    }
    send_challenge(t, www, "AKA");
}

void scscf_reg_maa(scscf_reg_txn *t, struct msg *ans)
{
    scscf_maa maa;
    if (scscf_cx_parse_maa(ans, &maa)) {
        IMS_WARN(SUBSYS, "MAR for %s (%s) failed: %s", t->impi, t->impu,
                 !ans ? "timeout" : maa.experimental ? ims_cx_result_name(maa.experimental, true)
                                                      : ims_cx_result_name(maa.result, false));
        if (t->resync && !maa.experimental && maa.result == IMS_DIAMETER_UNABLE_TO_COMPLY) {
            ims_metric_inc(t->ctx->m_auth_failures);
            scscf_reg_finish(t, 403, "Forbidden - Resynchronisation Refused", NULL);
            return;
        }
        scscf_context *ctx = t->ctx;
        if (scscf_reg_finish_cx(t, ans) == 403)
            ims_metric_inc(ctx->m_auth_failures);
        return;
    }
    if (maa.n_aka) {
        for (size_t i = 1; i < maa.n_aka; i++)
            scscf_auth_keep_spare(t->ctx->auth, t->impi, &maa.aka[i]);
        challenge_aka(t, &maa.aka[0]);
        return;
    }
    char www[400];
    if (scscf_auth_challenge_digest(t->ctx->auth, t->impi, t->impu, maa.digest_realm, maa.digest_qop,
                                    maa.digest_ha1, t->stale, scscf_now(), www, sizeof(www))) {
        scscf_reg_finish(t, 500, "Server Internal Error", NULL);
        return;
    }
    send_challenge(t, www, "digest");
}

static void challenge(scscf_reg_txn *t, const uint8_t *resync)
{
    const char *scheme = IMS_SCHEME_UNKNOWN;
    bool digest = false;
    if (t->has_cred && strcasecmp(t->cred.algorithm, "AKAv1-MD5") == 0)
        scheme = IMS_SCHEME_AKA;
    else if (t->has_cred && strcasecmp(t->cred.algorithm, "MD5") == 0)
        scheme = IMS_SCHEME_DIGEST, digest = true;

    if (!t->has_cred || !t->cred.algorithm[0]) {
        /* No hint from the UE: a registered user keeps the scheme it registered with (a digest
         * client re-registering without credentials would otherwise get the IMPI's default). */
        const scscf_reg *reg = scscf_regstore_find(t->ctx->store, t->impu);
        if (reg && reg->auth_scheme == SCSCF_AUTH_DIGEST)
            scheme = IMS_SCHEME_DIGEST, digest = true;
        else if (reg && reg->auth_scheme == SCSCF_AUTH_AKA)
            scheme = IMS_SCHEME_AKA;
    }
    if (resync) {
        scheme = IMS_SCHEME_AKA;
        digest = false;
        scscf_auth_drop_spares(t->ctx->auth, t->impi);
    } else if (!digest) {
        scscf_aka_vector v;
        if (scscf_auth_take_spare(t->ctx->auth, t->impi, &v)) {
            challenge_aka(t, &v);
            return;
        }
    }
    unsigned items = digest ? 1 : (unsigned)t->ctx->cfg.scscf.auth_vectors;
    t->resync = resync != NULL;
    if (scscf_reg_wait(t, SCSCF_REG_WAIT_MAA))
        return;
    if (scscf_cx_mar(t->ctx, t->impi, t->impu, scheme, items, resync, scscf_reg_on_maa, scscf_reg_cx_arg(t))) {
        IMS_WARN(SUBSYS, "cannot send MAR for %s (%s)", t->impi, t->impu);
        scscf_reg_finish_cx(t, NULL);
    }
}

/* ---------- authentication failure (TS 24.229 §5.4.1.2.3A) ---------- */

static void auth_failed(scscf_reg_txn *t, const char *why)
{
    scscf_context *ctx = t->ctx;
    char source[400];
    scscf_auth_source(t->sip, source, sizeof(source));
    ims_metric_inc(ctx->m_auth_failures);
    IMS_WARN(SUBSYS, "authentication of %s (%s) from %s failed: %s", t->impi, t->impu, source, why);
    if (ims_authlimit_fail(scscf_reg_limiter(ctx), t->impi, scscf_now())) {
        ims_metric_inc(ims_metric_counter("scscf_auth_lockouts_total",
                                          "private identities locked after too many failed authentications"));
        IMS_WARN(SUBSYS, "%s locked for %ld s after %ld failed authentications within %ld s (last from %s): "
                 "its REGISTERs get 403 until then", t->impi, ctx->cfg.scscf.auth_lockout,
                 ctx->cfg.scscf.auth_max_failures, ctx->cfg.scscf.auth_failure_window, source);
    }
    if (scscf_cx_sar(t->ctx, t->impi, t->impu, IMS_SAT_AUTHENTICATION_FAILURE, false, NULL, NULL))
        IMS_WARN(SUBSYS, "cannot send SAR AUTHENTICATION_FAILURE for %s", t->impu);
    scscf_reg_finish(t, 403, "Forbidden - Authentication Failed", NULL);
}

/* Resync (TS 24.229 §5.4.1.2.3, TS 33.102 §6.3.5): MAR with RAND || AUTS. */
static void resync(scscf_reg_txn *t, scscf_challenge *c)
{
    uint8_t data[30], raw[64];
    long n = ims_base64_decode(t->cred.auts, raw, sizeof(raw));
    if (n != 14) {
        if (c)
            scscf_auth_forget(t->ctx->auth, c);
        scscf_reg_finish(t, 400, "Bad Request - Malformed auts", NULL);
        return;
    }
    memcpy(data + 16, raw, 14);
    if (c) {
        memcpy(data, c->rand, 16);
        scscf_auth_forget(t->ctx->auth, c);
    } else {
        /* our nonce is RAND || AUTN: usable even after it was forgotten */
        uint8_t nonce[64];
        if (ims_base64_decode(t->cred.nonce, nonce, sizeof(nonce)) < 16) {
            scscf_reg_finish(t, 400, "Bad Request - Unknown nonce", NULL);
            return;
        }
        memcpy(data, nonce, 16);
    }
    IMS_INFO(SUBSYS, "resynchronisation requested by %s", t->impi);
    challenge(t, data);
}

/* TS 24.229 §5.4.1.2.1: the S-CSCF may accept an integrity-protected REGISTER of a registered
 * user without authenticating it again (scscf.reauth_protected: when_needed). */
static bool protected_reregistration(const scscf_reg_txn *t)
{
    if (t->ctx->cfg.scscf.reauth_protected != SCSCF_REAUTH_WHEN_NEEDED || !t->has_cred ||
        !t->cred.integrity_protected || t->cred.has_auts)
        return false;
    /* an answer to a challenge of ours is verified (and consumes it) as always */
    if (t->cred.nonce[0] && scscf_auth_find(t->ctx->auth, t->cred.nonce))
        return false;
    const scscf_reg *reg = scscf_regstore_find(t->ctx->store, t->impu);
    return reg && reg->auth_scheme == SCSCF_AUTH_AKA && strcmp(reg->impi, t->impi) == 0 &&
           scscf_reg_active_contacts(reg) > 0;
}

void scscf_reg_authenticate(scscf_reg_txn *t)
{
    scscf_context *ctx = t->ctx;
    if (protected_reregistration(t)) {
        IMS_INFO(SUBSYS, "integrity-protected REGISTER of %s (%s): accepted without a new challenge", t->impi,
                 t->impu);
        ims_metric_inc(ims_metric_counter("scscf_register_protected_unchallenged_total",
                                          "integrity-protected REGISTERs accepted without a new challenge"));
        t->scheme = SCSCF_AUTH_AKA;
        scscf_reg_authenticated(t);
        return;
    }
    if (!t->has_cred || !t->cred.nonce[0]) {
        challenge(t, NULL);
        return;
    }
    scscf_challenge *c = scscf_auth_find(ctx->auth, t->cred.nonce);
    if (t->cred.has_auts) {
        resync(t, c);
        return;
    }
    if (!c) {
        IMS_DEBUG(SUBSYS, "unknown nonce from %s: new challenge", t->impi);
        challenge(t, NULL);
        return;
    }
    if (c->expires_at <= scscf_now()) {
        t->stale = true;
        scscf_auth_forget(ctx->auth, c);
        challenge(t, NULL);
        return;
    }
    if (strcmp(c->impu, t->impu) != 0 && strcmp(c->impi, t->impi) == 0) {
        /* the same user may answer a challenge with another IMPU of its set: accept, the SAR names
         * the one of this REGISTER */
        IMS_DEBUG(SUBSYS, "%s answers a challenge issued for %s", t->impu, c->impu);
    }
    const sip_t *sip = t->sip;
    const void *body = sip->sip_payload ? sip->sip_payload->pl_data : NULL;
    size_t body_len = sip->sip_payload ? sip->sip_payload->pl_len : 0;
    switch (scscf_auth_verify(c, &t->cred, "REGISTER", body ? body : "", body_len)) {
    case SCSCF_VERIFY_OK:
        t->scheme = c->scheme;
        scscf_auth_forget(ctx->auth, c);
        scscf_reg_authenticated(t);
        break;
    case SCSCF_VERIFY_MALFORMED:
        scscf_reg_finish(t, 400, "Bad Request - Malformed Authorization", NULL);
        break;
    case SCSCF_VERIFY_REPLAY:
        IMS_WARN(SUBSYS, "nonce-count replay from %s: new challenge", t->impi);
        scscf_auth_forget(ctx->auth, c);
        challenge(t, NULL);
        break;
    case SCSCF_VERIFY_MISMATCH:
        scscf_auth_forget(ctx->auth, c);
        auth_failed(t, "username or realm differ from the challenge");
        break;
    case SCSCF_VERIFY_BAD_RESPONSE:
    default:
        scscf_auth_forget(ctx->auth, c);
        auth_failed(t, "wrong response");
        break;
    }
}
