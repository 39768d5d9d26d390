/*
 * scscf_register_update: what an authenticated REGISTER, an expiry or a network-initiated
 * de-registration does to the bindings. See scscf_register.h for the whole registrar.
 *
 * References: TS 24.229 §5.4.1.2.2 (successful registration: SAR, profile, 200, then reg event
 * and third-party REGISTER), §5.4.1.4 (user-initiated de-registration), §5.4.1.5
 * (network-initiated de-registration), §5.4.1.7 (third-party REGISTER); TS 29.228 §6.1.2 (SAR
 * types); RFC 3261 §10.3 steps 7-8 (bindings: add, refresh, remove, "*"; a REGISTER without
 * Contact is a query), §10.2.1.1 (bindings time out); RFC 3680 (reg event).
 *
 * Every change of a registration ends in registration_changed(): the one place that tells the
 * reg-event subscribers and the ASes and then drops what ended, whoever made the change (the
 * UE's REGISTER, an expiry, an RTR, an AS failure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>

#include "ims_log.h"
#include "ims_strbuf.h"
#include "scscf_cx.h"
#include "scscf_reginfo.h"
#include "scscf_register.h"
#include "scscf_regsync.h"
#include "scscf_util.h"

#define SUBSYS SCSCF_REG_SUBSYS

size_t scscf_reg_active_contacts(const scscf_reg *reg)
{
    size_t n = 0;
    for (const scscf_contact *c = reg->contacts; c; c = c->next)
        n += !c->terminated;
    return n;
}

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

/* The registration changed (bindings marked terminated / refreshed, their events set). Call it
 * after the 200 (if any) went out: TS 24.229 §5.4.1.2.2 answers the UE first.
 *  - No binding left, the user is gone: third-party de-REGISTER to the ASes, NOTIFY with the
 *    registration terminated, registration removed.
 *  - Otherwise: NOTIFY when `notify` (a binding was added, refreshed or ended), ended bindings
 *    removed, expiry timer re-armed.
 * impu: the identity the ASes hear of; req: the UE's REGISTER (NULL when the network acts).
 * True when reg is gone (freed). */
static bool registration_changed(scscf_context *ctx, scscf_reg *reg, const char *impu, msg_t *req, bool notify)
{
    bool gone = scscf_reg_active_contacts(reg) == 0;
    if (gone) {
        scscf_thirdparty_register(ctx, reg, impu, IMS_REGTYPE_DE_REGISTRATION, 0, req, NULL);
        scscf_reginfo_notify(ctx, reg, true);
        scscf_regstore_remove(ctx->store, reg);
    } else {
        if (notify)
            scscf_reginfo_notify(ctx, reg, false);
        remove_terminated(ctx, reg);
        scscf_regstore_touch(ctx->store, reg);
        scscf_regsync_changed(ctx, reg);   /* written through on the next loop turn */
    }
    scscf_update_gauges(ctx);
    return gone;
}

/* ---------- network-initiated de-registration and expiry (TS 24.229 §5.4.1.5) ---------- */

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
    registration_changed(ctx, reg, reg->impus[0].uri, NULL, true);
}

/* RFC 3261 §10.2.1.1 bindings time out; the last one: SAR TIMEOUT_DEREGISTRATION. */
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
    if (scscf_reg_active_contacts(reg) == 0) {
        IMS_INFO(SUBSYS, "registration of %s (%s) expired", reg->impus[0].uri, reg->impi);
        scscf_registrar_terminate(ctx, reg, SCSCF_CEV_EXPIRED, IMS_SAT_TIMEOUT_DEREGISTRATION);
        return;
    }
    if (expired)
        IMS_INFO(SUBSYS, "%zu contact(s) of %s expired", expired, reg->impus[0].uri);
    registration_changed(ctx, reg, reg->impus[0].uri, NULL, expired > 0);
}

/* ---------- de-registration by the UE (TS 24.229 §5.4.1.4) ---------- */

/* The bindings the request removes: "*" all of them, else those it lists with expires 0. */
static bool removes(const scscf_reg_txn *t, const scscf_reg *reg, const scscf_contact *c)
{
    if (t->star)
        return true;
    for (size_t i = 0; i < t->n_contacts; i++)
        if (t->contacts[i].expires == 0 && scscf_reg_contact_find(reg, t->contacts[i].uri) == c)
            return true;
    return false;
}

static bool would_remove_all(const scscf_reg_txn *t, const scscf_reg *reg)
{
    for (const scscf_contact *c = reg->contacts; c; c = c->next)
        if (!c->terminated && !removes(t, reg, c))
            return false;
    return true;
}

void scscf_reg_dereg_saa(scscf_reg_txn *t, struct msg *ans)
{
    (void)ans;   /* the user is gone here whatever the HSS says (logged by scscf_cx) */
    scscf_context *ctx = t->ctx;
    scscf_reg *reg = scscf_regstore_find(ctx->store, t->impu);
    bool changed = false;
    for (scscf_contact *c = reg ? reg->contacts : NULL; c; c = c->next) {
        if (!c->terminated && removes(t, reg, c)) {
            c->terminated = true;
            c->event = SCSCF_CEV_UNREGISTERED;
            changed = true;
        }
    }
    bool gone = reg && scscf_reg_active_contacts(reg) == 0;

    char *hdrs = scscf_reg_ok_headers(t, gone ? NULL : reg, false);
    scscf_reply(ctx, t->irq, 200, "OK", hdrs, true);
    t->irq = NULL;
    free(hdrs);
    if (gone)
        IMS_INFO(SUBSYS, "%s (%s) de-registered by the UE", t->impu, t->impi);
    if (reg)
        registration_changed(ctx, reg, t->impu, t->req, changed);
    scscf_reg_done(t);
}

static void deregister(scscf_reg_txn *t)
{
    scscf_reg *reg = scscf_regstore_find(t->ctx->store, t->impu);
    if (!reg) {
        scscf_reg_finish(t, 200, "OK", NULL);   /* nothing bound: nothing to remove (RFC 3261 §10.3) */
        return;
    }
    if (!would_remove_all(t, reg)) {
        scscf_reg_dereg_saa(t, NULL);
        return;
    }
    if (scscf_reg_wait(t, SCSCF_REG_WAIT_SAA_DEREG))
        return;
    if (scscf_cx_sar(t->ctx, t->impi, t->impu, IMS_SAT_USER_DEREGISTRATION, false, scscf_reg_on_saa,
                     scscf_reg_cx_arg(t))) {
        IMS_WARN(SUBSYS, "cannot send SAR USER_DEREGISTRATION for %s: removed locally", t->impu);
        scscf_reg_dereg_saa(t, NULL);
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

static char *path_of(const sip_t *sip)
{
    ims_strbuf path = { 0 };
    su_home_t *home = su_home_new(sizeof(su_home_t));
    for (const sip_path_t *p = sip->sip_path; home && p; p = p->r_next) {
        char *v = sip_header_as_string(home, (const sip_header_t *)p);
        if (v)
            ims_strbuf_printf(&path, "%s%s", path.len ? ", " : "", v);
    }
    if (home)
        su_home_unref(home);
    char *s = path.len ? ims_strbuf_take(&path) : NULL;
    ims_strbuf_free(&path);
    return s;
}

/* Applies the request's contacts to reg (events set for the NOTIFY). -1 on ENOMEM. */
static int apply_contacts(scscf_reg_txn *t, scscf_reg *reg)
{
    int64_t now = scscf_now();
    char received[300];
    received_of(t->sip, received, sizeof(received));
    char *path_s = path_of(t->sip);
    int rc = 0;

    for (size_t i = 0; i < t->n_contacts; i++) {
        const scscf_req_contact *rq = &t->contacts[i];
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
            c = scscf_reg_contact_add(t->ctx->store, reg, rq->uri);
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

/* The registration of the SAA's profile: found or created. NULL when t was answered. */
static scscf_reg *take_profile(scscf_reg_txn *t, struct msg *ans, bool *initial)
{
    scscf_context *ctx = t->ctx;
    char err[256];
    scscf_saa saa;
    int prc = scscf_cx_parse_saa(ans, &saa, err, sizeof(err));
    if (prc == -1) {
        scscf_reg_finish_cx(t, ans);
        return NULL;
    }
    if (prc == -2) {
        IMS_ERROR(SUBSYS, "SAA for %s: bad User-Data: %s", t->impu, err);
        scscf_reg_finish(t, 500, "Server Internal Error - Bad User Profile", NULL);
        return NULL;
    }
    scscf_reg *reg = scscf_regstore_find(ctx->store, t->impu);
    *initial = !reg;
    if (!reg && !saa.has_profile) {
        IMS_ERROR(SUBSYS, "SAA for %s carries no User-Data", t->impu);
        scscf_reg_finish(t, 500, "Server Internal Error - No User Profile", NULL);
        return NULL;
    }
    if (reg && strcmp(reg->impi, t->impi) != 0)
        IMS_INFO(SUBSYS, "%s now also registered by %s (was %s)", t->impu, t->impi, reg->impi);
    int r = 0;
    if (!reg) {
        reg = scscf_regstore_create(ctx->store, t->impi, &saa.sub, t->impu);
        r = reg ? 0 : -1;
    } else if (saa.has_profile) {
        r = scscf_regstore_set_profile(ctx->store, reg, &saa.sub, t->impu);
    }
    scscf_saa_free(&saa);
    if (r || !reg) {
        if (reg && *initial)
            scscf_regstore_remove(ctx->store, reg);
        scscf_reg_finish(t, 500, "Server Internal Error", NULL);
        return NULL;
    }
    return reg;
}

void scscf_reg_saa(scscf_reg_txn *t, struct msg *ans)
{
    scscf_context *ctx = t->ctx;
    bool initial = false;
    scscf_reg *reg = take_profile(t, ans, &initial);
    if (!reg)
        return;
    if (reg->impus[0].barred && initial) {
        /* TS 24.229 §5.4.1.2.1: a barred identity cannot be registered */
        scscf_regstore_remove(ctx->store, reg);
        scscf_cx_sar(ctx, t->impi, t->impu, IMS_SAT_USER_DEREGISTRATION, false, NULL, NULL);
        scscf_reg_finish(t, 403, "Forbidden - Barred Public Identity", NULL);
        return;
    }
    reg->auth_scheme = t->scheme;
    if (apply_contacts(t, reg)) {
        if (initial)
            scscf_regstore_remove(ctx->store, reg);
        scscf_reg_finish(t, 500, "Server Internal Error", NULL);
        return;
    }
    long longest = 0;
    for (size_t i = 0; i < t->n_contacts; i++)
        if (t->contacts[i].expires > longest)
            longest = t->contacts[i].expires;

    if (scscf_reg_active_contacts(reg) == 0) {
        /* Only removals after all (mixed request): the user is gone. */
        scscf_reply(ctx, t->irq, 200, "OK", NULL, true);
        t->irq = NULL;
        scscf_cx_sar(ctx, t->impi, t->impu, IMS_SAT_USER_DEREGISTRATION, false, NULL, NULL);
        registration_changed(ctx, reg, t->impu, t->req, true);
        scscf_reg_done(t);
        return;
    }

    /* the 200 OK first (TS 24.229 §5.4.1.2.2), then the reg event and the ASes hear of it */
    char *hdrs = scscf_reg_ok_headers(t, reg, true);
    IMS_INFO(SUBSYS, "%s (%s) %s: %zu contact(s), %zu identities, expires %ld", t->impu, t->impi,
             initial ? "registered" : "re-registered", scscf_reg_active_contacts(reg), reg->n_impus, longest);
    msg_t *resp = scscf_reply_msg(ctx, t->irq, 200, "OK", hdrs, true);
    t->irq = NULL;
    free(hdrs);
    registration_changed(ctx, reg, t->impu, t->req, true);
    scscf_thirdparty_register(ctx, reg, t->impu, initial ? IMS_REGTYPE_INITIAL : IMS_REGTYPE_RE_REGISTRATION,
                              longest, t->req, resp);
    if (resp)
        msg_destroy(resp);
    scscf_reg_done(t);
}

void scscf_reg_authenticated(scscf_reg_txn *t)
{
    scscf_context *ctx = t->ctx;
    size_t adds = 0;
    for (size_t i = 0; i < t->n_contacts; i++)
        adds += t->contacts[i].expires > 0;
    if (t->star || (t->n_contacts && !adds)) {
        deregister(t);
        return;
    }
    scscf_reg *reg = scscf_regstore_find(ctx->store, t->impu);
    if (!t->n_contacts) {
        /* A query (RFC 3261 §10.3): the current bindings, nothing changes. */
        char *hdrs = scscf_reg_ok_headers(t, reg, reg != NULL);
        scscf_reg_finish(t, 200, "OK", hdrs);
        free(hdrs);
        return;
    }
    int sat = reg ? IMS_SAT_RE_REGISTRATION : IMS_SAT_REGISTRATION;
    if (scscf_reg_wait(t, SCSCF_REG_WAIT_SAA))
        return;
    if (scscf_cx_sar(ctx, t->impi, t->impu, sat, reg != NULL, scscf_reg_on_saa, scscf_reg_cx_arg(t))) {
        IMS_WARN(SUBSYS, "cannot send SAR for %s", t->impu);
        scscf_reg_finish_cx(t, NULL);
    }
}
