/*
 * scscf_registrar: the S-CSCF registrar — the REGISTER state machine.
 *
 *   REGISTER ──(no/unknown/expired nonce, or AUTS)──> MAR ──> 401 (AKA or SIP Digest challenge)
 *   REGISTER with our nonce ──verify──> bad: 403 + SAR AUTHENTICATION_FAILURE
 *                                       ok:  bindings ─> SAR REGISTRATION / RE_REGISTRATION ─> 200
 *                                            Expires 0 / "*": SAR USER_DEREGISTRATION when none left
 *                                            no Contact: query, 200 with the current bindings
 *   contact expiry (scscf_regstore timer) ─> NOTIFY expired; last one: SAR TIMEOUT_DEREGISTRATION
 *
 * References: TS 24.229 §5.4.1.2 (initial registration and authentication: AKA §5.4.1.2.1,
 * SIP digest §5.4.1.2.1B, resync §5.4.1.2.3, auth failure §5.4.1.2.3A), §5.4.1.2.2 (success:
 * Service-Route, P-Associated-URI, Path), §5.4.1.4 (user-initiated de-registration), §5.4.1.5
 * (network-initiated de-registration), §5.4.1.7 (third-party REGISTER); TS 29.228 §6.1.2 / §6.3
 * (SAR / MAR); RFC 3261 §10.3 (registrar: Contact "*", Expires, Call-ID/CSeq ordering, 423,
 * a REGISTER without Contact is a query); RFC 3327 §5.3 (Path); RFC 3608 (Service-Route).
 *
 * Decisions:
 *  - Every REGISTER is challenged (re-registrations and de-registrations too): TS 24.229 lets an
 *    S-CSCF skip authentication of a REGISTER that the P-CSCF marks integrity-protected, but
 *    there is no IPsec (or TLS) between UE and P-CSCF here, so nothing is. A nonce is consumed by
 *    the REGISTER it authenticates.
 *  - Syntax (400) and Expires (423 Interval Too Brief) are checked before authentication, so a
 *    doomed REGISTER burns no AKA vector (RFC 3261 §10.3 checks them after step 3; the outcome for
 *    the UE is the same).
 *  - The MAR scheme follows the UE: algorithm=AKAv1-MD5 -> Digest-AKAv1-MD5, algorithm=MD5 ->
 *    SIP Digest, anything else (or no Authorization) -> Unknown, and the HSS picks the IMPI's default.
 *  - A wrong response -> 403 and SAR AUTHENTICATION_FAILURE; a nonce-count that did not increase is
 *    a replay -> 401 with a fresh challenge (RFC 7616 §3.4); an expired nonce -> 401 stale=true;
 *    Authorization without response/uri/username or with a malformed nc -> 400.
 *  - The digest "uri" parameter is used as sent for the response computation (SIPp sends
 *    sip:<remote_ip>:<port>); it is not required to equal the Request-URI.
 *  - Brute force (scscf.auth_max_failures / auth_failure_window / auth_lockout): wrong responses
 *    are counted per IMPI; past the limit the IMPI is locked and every REGISTER naming it gets
 *    403 with Retry-After, without a MAR. 403 because RFC 3261 §21.4.3 says exactly this
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

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_aka.h"
#include "ims_identity.h"
#include "ims_log.h"
#include "ims_strbuf.h"
#include "ims_userdata.h"
#include "scscf_auth.h"
#include "scscf_context.h"
#include "scscf_cx.h"
#include "scscf_reginfo.h"
#include "scscf_util.h"

#define SUBSYS "scscf.reg"
#define MAX_CONTACTS 16

typedef struct {
    char *uri;
    char *params;          /* ";a=b;c" without expires, or NULL */
    long expires;          /* granted (clamped to max), 0 = remove */
} req_contact;

typedef struct reg_txn {
    scscf_context *ctx;
    nta_incoming_t *irq;
    msg_t *req;            /* reference to the REGISTER */
    sip_t *sip;
    char impi[256];
    char impu[256];
    bool star;             /* Contact: * */
    req_contact contacts[MAX_CONTACTS];
    size_t n_contacts;
    scscf_credentials cred;
    bool has_cred;
    bool stale;
    bool was_registered;
    uint8_t scheme;        /* of the challenge this REGISTER answered */
} reg_txn;

static void txn_free(reg_txn *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_contacts; i++) {
        free(t->contacts[i].uri);
        free(t->contacts[i].params);
    }
    if (t->req)
        msg_destroy(t->req);
    if (t->irq)
        nta_incoming_destroy(t->irq);   /* only when never answered through scscf_reply */
    free(t);
}

/* Final response; the transaction is released. */
static void finish(reg_txn *t, int status, const char *phrase, const char *headers)
{
    scscf_reply(t->ctx, t->irq, status, phrase, headers, true);
    t->irq = NULL;
    txn_free(t);
}

static bool has_error_header(const sip_t *sip, const char *name)
{
    for (const sip_error_t *e = sip->sip_error; e; e = e->er_next)
        if (e->er_name && strcasecmp(e->er_name, name) == 0)
            return true;
    return false;
}

/* ---------- request parsing (RFC 3261 §10.3 steps 1, 5-7) ---------- */

/* 0, or a status (400, 423, 403) with *phrase. */
static int parse_contacts(reg_txn *t, const char **phrase, long *min_expires)
{
    scscf_context *ctx = t->ctx;
    const sip_t *sip = t->sip;
    long header_expires = -1;
    if (sip->sip_expires) {
        header_expires = sip->sip_expires->ex_delta > 0x7fffffffUL ? 0x7fffffff : (long)sip->sip_expires->ex_delta;
        if (sip->sip_expires->ex_date) {
            *phrase = "Bad Request - Expires must be delta-seconds";
            return 400;
        }
    } else if (has_error_header(sip, "Expires")) {
        *phrase = "Bad Request - Malformed Expires";
        return 400;
    }
    if (has_error_header(sip, "Contact")) {
        *phrase = "Bad Request - Malformed Contact";
        return 400;
    }

    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home) {
        *phrase = "Server Internal Error";
        return 500;
    }
    int status = 0;
    for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
        if (m->m_url->url_type == url_any) {
            /* "*" only alone and with Expires: 0 (RFC 3261 §10.3 step 6) */
            if (sip->sip_contact->m_next || header_expires != 0) {
                *phrase = "Bad Request - Contact * needs Expires: 0 and no other Contact";
                status = 400;
                goto out;
            }
            t->star = true;
            continue;
        }
        if (t->n_contacts >= MAX_CONTACTS) {
            *phrase = "Forbidden - Too Many Contacts";
            status = 403;
            goto out;
        }
        long exp = header_expires >= 0 ? header_expires : ctx->cfg.scscf.default_expires;
        if (m->m_expires) {
            char *end = NULL;
            unsigned long v = strtoul(m->m_expires, &end, 10);
            if (!*m->m_expires || *end || m->m_expires[0] == '-') {
                *phrase = "Bad Request - Malformed Contact expires";
                status = 400;
                goto out;
            }
            exp = v > 0x7fffffffUL ? 0x7fffffff : (long)v;
        }
        if (exp > 0 && exp < ctx->cfg.scscf.min_expires) {
            *phrase = "Interval Too Brief";
            *min_expires = ctx->cfg.scscf.min_expires;
            status = 423;
            goto out;
        }
        if (exp > ctx->cfg.scscf.max_expires)
            exp = ctx->cfg.scscf.max_expires;

        char *uri = url_as_string(home, m->m_url);
        if (!uri || (m->m_url->url_type != url_sip && m->m_url->url_type != url_sips &&
                     m->m_url->url_type != url_tel)) {
            *phrase = "Bad Request - Unsupported Contact URI";
            status = 400;
            goto out;
        }
        ims_strbuf params = { 0 };
        for (size_t i = 0; m->m_params && m->m_params[i]; i++) {
            if (strncasecmp(m->m_params[i], "expires", 7) == 0 &&
                (m->m_params[i][7] == '=' || m->m_params[i][7] == '\0'))
                continue;
            ims_strbuf_printf(&params, ";%s", m->m_params[i]);
        }
        req_contact *rc = &t->contacts[t->n_contacts++];
        rc->uri = strdup(uri);
        rc->params = params.len ? ims_strbuf_take(&params) : NULL;
        ims_strbuf_free(&params);
        rc->expires = exp;
        if (!rc->uri) {
            *phrase = "Server Internal Error";
            status = 500;
            goto out;
        }
    }
out:
    su_home_unref(home);
    return status;
}

/* RFC 3261 §10.3 step 7: same Call-ID with a CSeq not higher than the binding's: out of order. */
static bool out_of_order(const reg_txn *t)
{
    const scscf_reg *reg = scscf_regstore_find(t->ctx->store, t->impu);
    if (!reg || !t->sip->sip_call_id || !t->sip->sip_cseq)
        return false;
    for (size_t i = 0; i < t->n_contacts; i++) {
        const scscf_contact *c = scscf_reg_contact_find(reg, t->contacts[i].uri);
        if (c && c->call_id && strcmp(c->call_id, t->sip->sip_call_id->i_id) == 0 &&
            t->sip->sip_cseq->cs_seq <= c->cseq)
            return true;
    }
    return false;
}

/* ---------- challenge (TS 24.229 §5.4.1.2.1, §5.4.1.2.1B) ---------- */

static void send_challenge_aka(reg_txn *t, const scscf_aka_vector *v)
{
    char www[600], hdr[700];
    if (scscf_auth_challenge_aka(t->ctx->auth, t->impi, t->impu, t->ctx->realm, v, t->stale, scscf_now(), www,
                                 sizeof(www))) {
        finish(t, 500, "Server Internal Error", NULL);
        return;
    }
    snprintf(hdr, sizeof(hdr), "WWW-Authenticate: %s\r\n", www);
    IMS_INFO(SUBSYS, "401 AKA challenge for %s (%s)%s", t->impi, t->impu, t->stale ? " stale" : "");
    finish(t, 401, "Unauthorized - Challenging the UE", hdr);
}

/* Cx answers delivered while the S-CSCF shuts down (ims_sip_destroy runs what was queued): the
 * stores are gone, the transaction is only answered. */
static bool shutting_down(reg_txn *t)
{
    if (!t->ctx->stopping)
        return false;
    finish(t, 503, "Service Unavailable - Shutting Down", NULL);
    return true;
}

static void on_maa(void *arg, struct msg *ans)
{
    reg_txn *t = arg;
    scscf_maa maa;
    if (shutting_down(t))
        return;
    if (scscf_cx_parse_maa(ans, &maa)) {
        const char *phrase = NULL;
        int status = scscf_cx_sip_status(ans, &phrase);
        IMS_WARN(SUBSYS, "MAR for %s (%s) failed: %s", t->impi, t->impu,
                 !ans ? "timeout" : maa.experimental ? ims_cx_result_name(maa.experimental, true)
                                                      : ims_cx_result_name(maa.result, false));
        if (status == 403)
            ims_metric_inc(t->ctx->m_auth_failures);
        finish(t, status, phrase, NULL);
        return;
    }
    if (maa.n_aka) {
        for (size_t i = 1; i < maa.n_aka; i++)
            scscf_auth_keep_spare(t->ctx->auth, t->impi, &maa.aka[i]);
        send_challenge_aka(t, &maa.aka[0]);
        return;
    }
    char www[400], hdr[500];
    if (scscf_auth_challenge_digest(t->ctx->auth, t->impi, t->impu, maa.digest_realm, maa.digest_qop,
                                    maa.digest_ha1, t->stale, scscf_now(), www, sizeof(www))) {
        finish(t, 500, "Server Internal Error", NULL);
        return;
    }
    snprintf(hdr, sizeof(hdr), "WWW-Authenticate: %s\r\n", www);
    IMS_INFO(SUBSYS, "401 digest challenge for %s (%s)%s", t->impi, t->impu, t->stale ? " stale" : "");
    finish(t, 401, "Unauthorized - Challenging the UE", hdr);
}

static void challenge(reg_txn *t, const uint8_t *resync)
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
            send_challenge_aka(t, &v);
            return;
        }
    }
    unsigned items = digest ? 1 : (unsigned)t->ctx->cfg.scscf.auth_vectors;
    if (scscf_cx_mar(t->ctx, t->impi, t->impu, scheme, items, resync, on_maa, t)) {
        IMS_WARN(SUBSYS, "cannot send MAR for %s (%s)", t->impi, t->impu);
        finish(t, 503, "Service Unavailable - HSS Unreachable", NULL);
    }
}

/* ---------- 200 OK (TS 24.229 §5.4.1.2.2, RFC 3261 §10.3 step 8) ---------- */

static void add_path_headers(ims_strbuf *b, const sip_t *sip)
{
    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home)
        return;
    for (const sip_path_t *p = sip->sip_path; p; p = p->r_next) {
        char *v = sip_header_as_string(home, (const sip_header_t *)p);
        if (v)
            ims_strbuf_printf(b, "Path: %s\r\n", v);
    }
    su_home_unref(home);
}

static bool supports_path(const sip_t *sip)
{
    for (const sip_supported_t *s = sip->sip_supported; s; s = s->k_next)
        for (size_t i = 0; s->k_items && s->k_items[i]; i++)
            if (strcasecmp(s->k_items[i], "path") == 0)
                return true;
    return false;
}

/* Header lines of a 200 OK to a REGISTER: every current binding with its remaining time; for a
 * registration also Service-Route, P-Associated-URI and Path. */
static char *ok_headers(const reg_txn *t, const scscf_reg *reg, bool full)
{
    ims_strbuf b = { 0 };
    int64_t now = scscf_now();
    for (const scscf_contact *c = reg ? reg->contacts : NULL; c; c = c->next) {
        if (c->terminated)
            continue;
        long left = (long)(c->expires_at - now);
        ims_strbuf_printf(&b, "Contact: <%s>%s;expires=%ld\r\n", c->uri, c->params ? c->params : "",
                         left > 0 ? left : 0);
    }
    if (full && reg) {
        ims_strbuf_printf(&b, "Service-Route: %s\r\n", t->ctx->service_route);
        bool first = true;
        for (size_t i = 0; i < reg->n_impus; i++) {
            if (reg->impus[i].barred)
                continue;
            if (first)
                ims_strbuf_printf(&b, "P-Associated-URI: ");
            ims_strbuf_printf(&b, "%s<%s>", first ? "" : ", ", reg->impus[i].uri);
            first = false;
        }
        if (!first)
            ims_strbuf_printf(&b, "\r\n");
    }
    if (t->sip->sip_path && supports_path(t->sip)) {
        /* RFC 3327 §5.3: the stored Path goes back in the 200 OK only when the REGISTER said
         * Supported: path; never Require: path in a response (§6.2: it is no extension to use) */
        add_path_headers(&b, t->sip);
        ims_strbuf_printf(&b, "Supported: path\r\n");
    }
    return ims_strbuf_take(&b);
}

static void count_gauges(reg_txn *t)
{
    scscf_update_gauges(t->ctx);
}

/* ---------- de-registration (TS 24.229 §5.4.1.4) ---------- */

static void remove_terminated(scscf_context *ctx, scscf_reg *reg)
{
    scscf_contact *c = reg->contacts;
    while (c) {
        scscf_contact *next = c->next;
        if (c->terminated)
            scscf_reg_contact_remove(ctx->store, reg, c);
        c = next;
    }
}

static size_t active_contacts(const scscf_reg *reg)
{
    size_t n = 0;
    for (const scscf_contact *c = reg->contacts; c; c = c->next)
        n += !c->terminated;
    return n;
}

void scscf_registrar_terminate(scscf_context *ctx, scscf_reg *reg, int event, int sat)
{
    for (scscf_contact *c = reg->contacts; c; c = c->next) {
        if (!c->terminated)
            c->event = (uint8_t)event;
        c->terminated = true;
    }
    IMS_INFO(SUBSYS, "%s (%s) de-registered: %s", reg->impus[0].uri, reg->impi, scscf_contact_event_name(event));
    if (sat >= 0 && scscf_cx_sar(ctx, reg->impi, reg->impus[0].uri, sat, false, NULL, NULL))
        IMS_WARN(SUBSYS, "cannot send SAR type %d for %s", sat, reg->impus[0].uri);
    scscf_thirdparty_register(ctx, reg, reg->impus[0].uri, IMS_REGTYPE_DE_REGISTRATION, 0, NULL, NULL);
    scscf_reginfo_notify(ctx, reg, true);
    scscf_regstore_remove(ctx->store, reg);
    scscf_update_gauges(ctx);
}

/* Marks the bindings the request removes; true when none would be left. */
static bool mark_removals(reg_txn *t, scscf_reg *reg)
{
    for (scscf_contact *c = reg->contacts; c; c = c->next) {
        bool rm = t->star;
        for (size_t i = 0; !rm && i < t->n_contacts; i++)
            rm = t->contacts[i].expires == 0 && scscf_reg_contact_find(reg, t->contacts[i].uri) == c;
        if (rm && !c->terminated) {
            c->terminated = true;
            c->event = SCSCF_CEV_UNREGISTERED;
        }
    }
    return active_contacts(reg) == 0;
}

/* Dry run of mark_removals. */
static bool would_remove_all(const reg_txn *t, const scscf_reg *reg)
{
    if (t->star)
        return true;
    for (const scscf_contact *c = reg->contacts; c; c = c->next) {
        bool rm = false;
        for (size_t i = 0; !rm && i < t->n_contacts; i++)
            rm = t->contacts[i].expires == 0 && scscf_reg_contact_find(reg, t->contacts[i].uri) == c;
        if (!rm && !c->terminated)
            return false;
    }
    return true;
}

static void on_dereg_saa(void *arg, struct msg *ans)
{
    (void)ans;   /* the user is gone here whatever the HSS says (logged by scscf_cx) */
    reg_txn *t = arg;
    if (shutting_down(t))
        return;
    scscf_context *ctx = t->ctx;
    scscf_reg *reg = scscf_regstore_find(ctx->store, t->impu);
    bool gone = reg && mark_removals(t, reg);

    /* the 200 OK first, then the reg event and the ASes hear of it */
    char *hdrs = ok_headers(t, gone ? NULL : reg, false);
    scscf_reply(ctx, t->irq, 200, "OK", hdrs, true);
    t->irq = NULL;
    free(hdrs);
    if (gone) {
        IMS_INFO(SUBSYS, "%s (%s) de-registered by the UE", t->impu, t->impi);
        scscf_thirdparty_register(ctx, reg, t->impu, IMS_REGTYPE_DE_REGISTRATION, 0, t->req, NULL);
        scscf_reginfo_notify(ctx, reg, true);
        scscf_regstore_remove(ctx->store, reg);
    } else if (reg && active_contacts(reg) != scscf_reg_contact_count(reg)) {
        scscf_reginfo_notify(ctx, reg, false);   /* only when a binding went */
        remove_terminated(ctx, reg);
        scscf_regstore_touch(ctx->store, reg);
    }
    count_gauges(t);
    txn_free(t);
}

static void deregister(reg_txn *t)
{
    scscf_reg *reg = scscf_regstore_find(t->ctx->store, t->impu);
    if (!reg) {
        finish(t, 200, "OK", NULL);   /* nothing bound: nothing to remove (RFC 3261 §10.3) */
        return;
    }
    if (!would_remove_all(t, reg)) {
        on_dereg_saa(t, NULL);
        return;
    }
    if (scscf_cx_sar(t->ctx, t->impi, t->impu, IMS_SAT_USER_DEREGISTRATION, false, on_dereg_saa, t)) {
        IMS_WARN(SUBSYS, "cannot send SAR USER_DEREGISTRATION for %s: removed locally", t->impu);
        on_dereg_saa(t, NULL);
    }
}

/* ---------- registration (TS 24.229 §5.4.1.2.2) ---------- */

static void received_of(const sip_t *sip, char *buf, size_t len)
{
    const sip_via_t *v = sip->sip_via;
    buf[0] = '\0';
    if (!v)
        return;
    const char *proto = v->v_protocol ? strrchr(v->v_protocol, '/') : NULL;
    snprintf(buf, len, "%s:%s:%s", proto ? proto + 1 : "UDP", v->v_received ? v->v_received : v->v_host,
             v->v_rport && *v->v_rport ? v->v_rport : v->v_port ? v->v_port : "5060");
}

/* Applies the request's contacts to reg. -1 on ENOMEM. */
static int apply_contacts(reg_txn *t, scscf_reg *reg)
{
    scscf_context *ctx = t->ctx;
    int64_t now = scscf_now();
    char received[300];
    received_of(t->sip, received, sizeof(received));
    ims_strbuf path = { 0 };
    {
        su_home_t *home = su_home_new(sizeof(su_home_t));
        for (const sip_path_t *p = t->sip->sip_path; home && p; p = p->r_next) {
            char *v = sip_header_as_string(home, (const sip_header_t *)p);
            if (v)
                ims_strbuf_printf(&path, "%s%s", path.len ? ", " : "", v);
        }
        if (home)
            su_home_unref(home);
    }
    char *path_s = path.len ? ims_strbuf_take(&path) : NULL;
    ims_strbuf_free(&path);
    int rc = 0;

    for (size_t i = 0; i < t->n_contacts; i++) {
        const req_contact *rq = &t->contacts[i];
        scscf_contact *c = scscf_reg_contact_find(reg, rq->uri);
        if (rq->expires == 0) {
            if (c && !c->terminated) {
                c->terminated = true;
                c->event = SCSCF_CEV_UNREGISTERED;
            }
            continue;
        }
        int64_t at = now + rq->expires;
        if (c) {
            c->event = at < c->expires_at ? SCSCF_CEV_SHORTENED : SCSCF_CEV_REFRESHED;
            c->terminated = false;
        } else {
            c = scscf_reg_contact_add(ctx->store, reg, rq->uri);
            if (!c) {
                rc = -1;
                break;
            }
            c->event = SCSCF_CEV_REGISTERED;
        }
        c->expires_at = at;
        c->cseq = t->sip->sip_cseq ? t->sip->sip_cseq->cs_seq : 0;
        if (scscf_contact_set(&c->params, rq->params) || scscf_contact_set(&c->path, path_s) ||
            scscf_contact_set(&c->call_id, t->sip->sip_call_id ? t->sip->sip_call_id->i_id : NULL) ||
            scscf_contact_set(&c->received, received[0] ? received : NULL)) {
            rc = -1;
            break;
        }
    }
    free(path_s);
    return rc;
}

static void on_register_saa(void *arg, struct msg *ans)
{
    reg_txn *t = arg;
    scscf_context *ctx = t->ctx;
    uint32_t rc = 0, exp = 0;
    char err[256];
    ims_subscription sub;
    memset(&sub, 0, sizeof(sub));
    bool have_profile = false;

    if (shutting_down(t))
        return;
    if (ans)
        ims_cx_get_result(ans, &rc, &exp);
    if (!ans || exp || rc != IMS_DIAMETER_SUCCESS) {
        const char *phrase = NULL;
        int status = scscf_cx_sip_status(ans, &phrase);
        finish(t, status, phrase, NULL);
        return;
    }
    size_t len = 0;
    const uint8_t *xml = ims_cx_get_os(ans, ims_cx_dict.user_data, &len);
    if (xml) {
        if (ims_userdata_parse((const char *)xml, len, &sub, err, sizeof(err))) {
            IMS_ERROR(SUBSYS, "SAA for %s: bad User-Data: %s", t->impu, err);
            finish(t, 500, "Server Internal Error - Bad User Profile", NULL);
            return;
        }
        have_profile = true;
    }

    scscf_reg *reg = scscf_regstore_find(ctx->store, t->impu);
    bool initial = !reg;
    if (!reg && !have_profile) {
        IMS_ERROR(SUBSYS, "SAA for %s carries no User-Data", t->impu);
        finish(t, 500, "Server Internal Error - No User Profile", NULL);
        return;
    }
    if (reg && strcmp(reg->impi, t->impi) != 0)
        IMS_INFO(SUBSYS, "%s now also registered by %s (was %s)", t->impu, t->impi, reg->impi);
    int r = 0;
    if (!reg) {
        reg = scscf_regstore_create(ctx->store, t->impi, &sub, t->impu);
        r = reg ? 0 : -1;
    } else if (have_profile) {
        r = scscf_regstore_set_profile(ctx->store, reg, &sub, t->impu);
    }
    ims_subscription_free(&sub);
    if (r || !reg) {
        if (reg && initial)
            scscf_regstore_remove(ctx->store, reg);
        finish(t, 500, "Server Internal Error", NULL);
        return;
    }
    if (reg->impus[0].barred && initial) {
        /* TS 24.229 §5.4.1.2.1: a barred identity cannot be registered */
        scscf_regstore_remove(ctx->store, reg);
        scscf_cx_sar(ctx, t->impi, t->impu, IMS_SAT_USER_DEREGISTRATION, false, NULL, NULL);
        finish(t, 403, "Forbidden - Barred Public Identity", NULL);
        return;
    }
    reg->auth_scheme = t->scheme;
    if (apply_contacts(t, reg)) {
        if (initial)
            scscf_regstore_remove(ctx->store, reg);
        finish(t, 500, "Server Internal Error", NULL);
        return;
    }

    long longest = 0;
    for (size_t i = 0; i < t->n_contacts; i++)
        if (t->contacts[i].expires > longest)
            longest = t->contacts[i].expires;

    if (active_contacts(reg) == 0) {
        /* Only removals after all (mixed request): the user is gone. */
        scscf_reply(ctx, t->irq, 200, "OK", NULL, true);
        t->irq = NULL;
        scscf_cx_sar(ctx, t->impi, t->impu, IMS_SAT_USER_DEREGISTRATION, false, NULL, NULL);
        scscf_thirdparty_register(ctx, reg, t->impu, IMS_REGTYPE_DE_REGISTRATION, 0, t->req, NULL);
        scscf_reginfo_notify(ctx, reg, true);
        scscf_regstore_remove(ctx->store, reg);
        count_gauges(t);
        txn_free(t);
        return;
    }

    /* the 200 OK first (TS 24.229 §5.4.1.2.2), then the reg event and the ASes hear of it */
    char *hdrs = ok_headers(t, reg, true);
    IMS_INFO(SUBSYS, "%s (%s) %s: %zu contact(s), %zu identities, expires %ld", t->impu, t->impi,
             initial ? "registered" : "re-registered", active_contacts(reg), reg->n_impus, longest);
    msg_t *resp = scscf_reply_msg(ctx, t->irq, 200, "OK", hdrs, true);
    t->irq = NULL;
    free(hdrs);
    scscf_reginfo_notify(ctx, reg, false);
    remove_terminated(ctx, reg);
    scscf_regstore_touch(ctx->store, reg);
    count_gauges(t);
    scscf_thirdparty_register(ctx, reg, t->impu, initial ? IMS_REGTYPE_INITIAL : IMS_REGTYPE_RE_REGISTRATION,
                              longest, t->req, resp);
    if (resp)
        msg_destroy(resp);
    txn_free(t);
}

static void registered(reg_txn *t)
{
    scscf_context *ctx = t->ctx;
    bool removal = t->star;
    size_t adds = 0;
    for (size_t i = 0; i < t->n_contacts; i++)
        adds += t->contacts[i].expires > 0;
    if (!t->star && t->n_contacts && !adds)
        removal = true;
    if (removal) {
        deregister(t);
        return;
    }
    if (!t->n_contacts) {
        /* A query (RFC 3261 §10.3): the current bindings, nothing changes. */
        scscf_reg *reg = scscf_regstore_find(ctx->store, t->impu);
        char *hdrs = ok_headers(t, reg, reg != NULL);
        finish(t, 200, "OK", hdrs);
        free(hdrs);
        return;
    }
    scscf_reg *reg = scscf_regstore_find(ctx->store, t->impu);
    t->was_registered = reg != NULL;
    int sat = reg ? IMS_SAT_RE_REGISTRATION : IMS_SAT_REGISTRATION;
    if (scscf_cx_sar(ctx, t->impi, t->impu, sat, reg != NULL, on_register_saa, t)) {
        IMS_WARN(SUBSYS, "cannot send SAR for %s", t->impu);
        finish(t, 503, "Service Unavailable - HSS Unreachable", NULL);
    }
}

/* ---------- authentication failure (TS 24.229 §5.4.1.2.3A) ---------- */

static ims_authlimit *limiter(scscf_context *ctx)
{
    const scscf_cfg *c = &ctx->cfg.scscf;
    return scscf_auth_limiter(ctx->auth, c->auth_max_failures, c->auth_failure_window, c->auth_lockout);
}

static void auth_failed(reg_txn *t, const char *why)
{
    scscf_context *ctx = t->ctx;
    char source[400];
    scscf_auth_source(t->sip, source, sizeof(source));
    ims_metric_inc(ctx->m_auth_failures);
    IMS_WARN(SUBSYS, "authentication of %s (%s) from %s failed: %s", t->impi, t->impu, source, why);
    if (ims_authlimit_fail(limiter(ctx), t->impi, scscf_now())) {
        ims_metric_inc(ims_metric_counter("scscf_auth_lockouts_total",
                                          "private identities locked after too many failed authentications"));
        IMS_WARN(SUBSYS, "%s locked for %ld s after %ld failed authentications within %ld s (last from %s): "
                 "its REGISTERs get 403 until then", t->impi, ctx->cfg.scscf.auth_lockout,
                 ctx->cfg.scscf.auth_max_failures, ctx->cfg.scscf.auth_failure_window, source);
    }
    if (scscf_cx_sar(t->ctx, t->impi, t->impu, IMS_SAT_AUTHENTICATION_FAILURE, false, NULL, NULL))
        IMS_WARN(SUBSYS, "cannot send SAR AUTHENTICATION_FAILURE for %s", t->impu);
    finish(t, 403, "Forbidden - Authentication Failed", NULL);
}

/* Resync (TS 24.229 §5.4.1.2.3, TS 33.102 §6.3.5): MAR with RAND || AUTS. */
static void resync(reg_txn *t, scscf_challenge *c)
{
    uint8_t data[30], raw[64];
    long n = ims_base64_decode(t->cred.auts, raw, sizeof(raw));
    if (n != 14) {
        if (c)
            scscf_auth_forget(t->ctx->auth, c);
        finish(t, 400, "Bad Request - Malformed auts", NULL);
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
            finish(t, 400, "Bad Request - Unknown nonce", NULL);
            return;
        }
        memcpy(data, nonce, 16);
    }
    IMS_INFO(SUBSYS, "resynchronisation requested by %s", t->impi);
    challenge(t, data);
}

int scscf_registrar_register(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    reg_txn *t = calloc(1, sizeof(*t));
    if (!t)
        return 500;
    t->ctx = ctx;
    t->irq = irq;
    t->req = nta_incoming_getrequest(irq);
    t->sip = t->req ? sip_object(t->req) : NULL;
    if (!t->sip) {
        t->irq = NULL;   /* nta answers the 500 and destroys irq */
        txn_free(t);
        return 500;
    }
    sip = t->sip;

    const char *phrase = NULL;
    long min_exp = 0;
    int status = 0;
    if (!sip->sip_to || !sip->sip_from || !sip->sip_call_id || !sip->sip_cseq) {
        finish(t, 400, "Bad Request - Missing Header", NULL);
        return 0;
    }
    /* the IMPU in its canonical form (ims_identity), the key of the store, the challenges and
     * the HSS: sip:Alice@IMS.LAB is sip:Alice@ims.lab, sip:alice@ims.lab is another identity */
    char to_uri[sizeof(t->impu)];
    if (ims_sip_impu_of(sip, to_uri, sizeof(to_uri)) || ims_identity_normalise(to_uri, t->impu, sizeof(t->impu))) {
        finish(t, 400, "Bad Request - Bad To URI", NULL);
        return 0;
    }
    const url_t *ruri = sip->sip_request->rq_url;
    if (ruri->url_host && strcasecmp(ruri->url_host, ctx->realm) != 0 && !ims_sip_is_self(ctx->sip, ruri)) {
        finish(t, 403, "Forbidden - Domain Not Served", NULL);
        return 0;
    }
    const sip_authorization_t *au = scscf_auth_pick(sip, ctx->realm);
    if (au) {
        if (scscf_auth_parse(au, &t->cred)) {
            finish(t, 400, "Bad Request - Malformed Authorization", NULL);
            return 0;
        }
        t->has_cred = true;
    }
    if (t->has_cred && t->cred.username[0])
        snprintf(t->impi, sizeof(t->impi), "%s", t->cred.username);
    else if (ims_sip_impi_of(sip, t->impi, sizeof(t->impi))) {
        finish(t, 403, "Forbidden - No Private Identity", NULL);
        return 0;
    }
    long locked = ims_authlimit_locked(limiter(ctx), t->impi, scscf_now());
    if (locked) {
        char source[400], hdr[64];
        scscf_auth_source(sip, source, sizeof(source));
        ims_metric_inc(ims_metric_counter("scscf_register_locked_total",
                                          "REGISTERs refused because their private identity is locked"));
        IMS_INFO(SUBSYS, "REGISTER of %s (%s) from %s refused: locked for another %ld s after failed "
                 "authentications", t->impi, t->impu, source, locked);
        snprintf(hdr, sizeof(hdr), "Retry-After: %ld\r\n", locked);
        finish(t, 403, "Forbidden - Too Many Failed Authentications", hdr);
        return 0;
    }
    status = parse_contacts(t, &phrase, &min_exp);
    if (status) {
        char hdr[64] = "";
        if (status == 423)
            snprintf(hdr, sizeof(hdr), "Min-Expires: %ld\r\n", min_exp);
        finish(t, status, phrase, hdr[0] ? hdr : NULL);
        return 0;
    }
    if (out_of_order(t)) {
        finish(t, 500, "Server Internal Error - Out of Order CSeq", "Retry-After: 1\r\n");
        return 0;
    }

    if (!t->has_cred || !t->cred.nonce[0]) {
        challenge(t, NULL);
        return 0;
    }
    scscf_challenge *c = scscf_auth_find(ctx->auth, t->cred.nonce);
    if (t->cred.has_auts) {
        resync(t, c);
        return 0;
    }
    if (!c) {
        IMS_DEBUG(SUBSYS, "unknown nonce from %s: new challenge", t->impi);
        challenge(t, NULL);
        return 0;
    }
    if (c->expires_at <= scscf_now()) {
        t->stale = true;
        scscf_auth_forget(ctx->auth, c);
        challenge(t, NULL);
        return 0;
    }
    if (strcmp(c->impu, t->impu) != 0 && strcmp(c->impi, t->impi) == 0) {
        /* the same user may answer a challenge with another IMPU of its set: accept, the SAR names
         * the one of this REGISTER */
        IMS_DEBUG(SUBSYS, "%s answers a challenge issued for %s", t->impu, c->impu);
    }
    const void *body = sip->sip_payload ? sip->sip_payload->pl_data : NULL;
    size_t body_len = sip->sip_payload ? sip->sip_payload->pl_len : 0;
    switch (scscf_auth_verify(c, &t->cred, "REGISTER", body ? body : "", body_len)) {
    case SCSCF_VERIFY_OK:
        t->scheme = c->scheme;
        scscf_auth_forget(ctx->auth, c);
        registered(t);
        break;
    case SCSCF_VERIFY_MALFORMED:
        finish(t, 400, "Bad Request - Malformed Authorization", NULL);
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
    return 0;
}

/* ---------- expiry (RFC 3261 §10.2.1.1 bindings time out; TS 24.229 §5.4.1.6 n/a; SAR type 4) ---------- */

void scscf_registrar_expired(void *arg, scscf_reg *reg)
{
    scscf_context *ctx = arg;
    int64_t now = scscf_now();
    size_t expired = 0;
    for (scscf_contact *c = reg->contacts; c; c = c->next) {
        if (!c->terminated && c->expires_at <= now) {
            c->terminated = true;
            c->event = SCSCF_CEV_EXPIRED;
            expired++;
        }
    }
    if (active_contacts(reg) == 0) {
        IMS_INFO(SUBSYS, "registration of %s (%s) expired", reg->impus[0].uri, reg->impi);
        scscf_registrar_terminate(ctx, reg, SCSCF_CEV_EXPIRED, IMS_SAT_TIMEOUT_DEREGISTRATION);
        return;
    }
    if (expired) {
        IMS_INFO(SUBSYS, "%zu contact(s) of %s expired", expired, reg->impus[0].uri);
        scscf_reginfo_notify(ctx, reg, false);
        remove_terminated(ctx, reg);
    }
    scscf_regstore_touch(ctx->store, reg);
    scscf_update_gauges(ctx);
}
