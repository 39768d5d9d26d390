/*
 * scscf_session: routing of every request that is not a registration (INVITE, MESSAGE, and any
 * other initial request; in-dialog requests), TS 24.229 §5.4.3.
 *
 *  - In-dialog (To tag present): RFC 3261 §16.4-§16.6 along the route set that our
 *    Record-Route put us in (ims_sip_proxy_onward); no iFC (TS 24.229 §5.4.5). ACK too.
 *  - Back from an AS (top Route ours with ;odi=): scscf_as.c continues that session.
 *  - Originating (top Route = our Service-Route, user part "orig", TS 24.229 §5.4.3.2): the
 *    served user is the P-Asserted-Identity the P-CSCF put; not registered here -> 403
 *    (TS 24.229 §5.4.3.2: the S-CSCF serves no unregistered originating user without the
 *    unregistered profile; this one never has it). Originating iFC (session case 0) and ASes,
 *    then the destination: the Request-URI normalised (tel:, and sip:+digits@...;user=phone, both
 *    as tel:+digits, TS 24.229 §5.4.3.2 step 10 / RFC 3966); a callee registered here goes
 *    straight to the terminating procedure; other home users (host in scscf.home_domains, or a
 *    tel: URI) go to scscf.icscf (LIR there, TS 24.229 §5.4.3.2 step 10, §5.3.2.1), or to our own
 *    terminating procedure when no I-CSCF is configured; other domains to scscf.breakout
 *    (BGCF/IBCF), else 404.
 *  - Terminating (from the I-CSCF, top Route ours without "orig", TS 24.229 §5.4.3.3): callee =
 *    the normalised Request-URI. Registered here: terminating-registered iFC (session case 1),
 *    then the request is forked to every registered contact (Request-URI = contact, Route = its
 *    Path, RFC 3261 §16.5 / RFC 3327 §5.3) with P-Called-Party-ID (RFC 7315 §4.2). Not
 *    registered: SAR UNREGISTERED_USER (TS 29.228 §6.1.2) for the profile, terminating-
 *    unregistered iFC (session case 2); an AS gets it, else 480 Temporarily Unavailable.
 *    USER_UNKNOWN (5001) -> 404.
 *  - Record-Route: ours on every initial request we route, so that the dialog comes back
 *    through us (TS 24.229 §5.4.3.2 step 8 / §5.4.3.3 step 7).
 *  - Credentials (RFC 3261 §22): Authorization / Proxy-Authorization for our own realm never
 *    leave the home network: removed from every initial and in-dialog request we forward (the
 *    P-CSCF removes them already; this is defence in depth against a P-CSCF of another vendor).
 *    Credentials for other realms stay (§22.3).
 *
 * Metrics: scscf_sessions_total{case="orig"|"term",result="<final status>"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_cx.h"
#include "ims_identity.h"
#include "ims_log.h"
#include "scscf_calllog.h"
#include "scscf_cx.h"
#include "scscf_ifc.h"
#include "scscf_session.h"
#include "scscf_util.h"

#define SUBSYS "scscf.sess"
#define MAX_CONTACTS 16

void scscf_sess_count(const char *scase, int status)
{
    char name[128];
    snprintf(name, sizeof(name), "scscf_sessions_total{case=\"%s\",result=\"%d\"}", scase, status);
    ims_metric_inc(ims_metric_counter(name, "initial requests routed by the S-CSCF, by case and final status"));
}

static const char *case_name(const scscf_sess *st)
{
    return st->scase == IMS_SESSION_CASE_ORIGINATING ? "orig" : "term";
}

void scscf_sess_free(scscf_sess *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_as; i++)
        free(st->as[i].uri);
    if (st->irq)
        nta_incoming_destroy(st->irq);
    free(st);
}

/* retry_after: seconds for a Retry-After header, 0 none. */
static void reject(scscf_sess *st, int status, const char *phrase, unsigned retry_after)
{
    IMS_INFO(SUBSYS, "%s %s: %d %s", case_name(st), st->user, status, phrase ? phrase : "");
    scscf_calllog_final_irq(st->ctx->calls, st->irq, status, phrase);
    scscf_sess_count(case_name(st), status);
    if (st->orig_local)
        scscf_sess_count("orig", status);
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", retry_after);
    if (st->irq && nta_incoming_status(st->irq) < 200)
        nta_incoming_treply(st->irq, status, phrase, TAG_IF(retry_after, SIPTAG_RETRY_AFTER_STR(ra)), TAG_END());
    scscf_sess_free(st);
}

void scscf_sess_reject(scscf_sess *st, int status, const char *phrase)
{
    reject(st, status, phrase, 0);
}

/* ---------- the final hop: counting responses ---------- */

typedef struct {
    scscf_context *ctx;
    bool counted;
    bool orig_too;
    const char *scase;
} final_count;

/* The final response of an initial request we routed: counted and, for an INVITE, logged. */
static void final_seen(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, int status)
{
    const char *phrase = sip && sip->sip_status ? sip->sip_status->st_phrase : "Request Timeout";
    if (sip && sip->sip_call_id && sip->sip_cseq && sip->sip_cseq->cs_method == sip_method_invite)
        scscf_calllog_final(ctx->calls, sip->sip_call_id->i_id, status, phrase);
    else if (!sip)
        scscf_calllog_final_irq(ctx->calls, irq, status, phrase);
}

static int count_final(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    final_count *fc = arg;
    (void)msg;
    int status = sip && sip->sip_status ? sip->sip_status->st_status : 408;
    if (status >= 200 && !fc->counted) {
        fc->counted = true;
        scscf_sess_count(fc->scase, status);
        if (fc->orig_too)
            scscf_sess_count("orig", status);
        final_seen(fc->ctx, irq, sip, status);
    }
    return 0;
}

static void count_end(void *arg)
{
    free(arg);
}

/* ims_sip_forward's callback of the originating case (arg: the context): called once with the
 * final response. */
static int count_forwarded(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    (void)msg;
    if (sip && sip->sip_status && sip->sip_status->st_status >= 200) {
        scscf_sess_count("orig", sip->sip_status->st_status);
        final_seen(arg, irq, sip, sip->sip_status->st_status);
    }
    return 0;
}

/* ---------- identities ---------- */

/* First URI of a name-addr list value ("Alice" <sip:a@b>, <tel:+1>) or a bare URI. */
static int first_uri(const char *v, char *out, size_t len)
{
    const char *lt = strchr(v, '<');
    const char *start = lt ? lt + 1 : v;
    size_t n = lt ? strcspn(start, ">") : strcspn(start, ";, \t");
    if (!n || n >= len)
        return -1;
    memcpy(out, start, n);
    out[n] = '\0';
    return 0;
}

/* The callee identity of a Request-URI: tel:+digits for tel: and sip:+digits@host;user=phone,
 * else the URI normalised (no parameters). 0 / -1. */
int scscf_sess_callee(const url_t *u, char *out, size_t len)
{
    char buf[1024], param[32];
    if (!u || url_e(buf, sizeof(buf), u) >= (issize_t)sizeof(buf))
        return -1;
    /* canonical identity keys (common/ims_identity), as the registrations and the HSS keep them:
     * tel: global numbers without visual separators */
    if ((u->url_type == url_sip || u->url_type == url_sips) && u->url_user && u->url_user[0] == '+' &&
        url_param(u->url_params, "user", param, sizeof(param)) > 0 && strcasecmp(param, "phone") == 0) {
        size_t n = strcspn(u->url_user, ";");
        char tel[sizeof(buf)];
        snprintf(tel, sizeof(tel), "tel:%.*s", (int)n, u->url_user);
        return ims_identity_normalise(tel, out, len);
    }
    return ims_identity_normalise(buf, out, len);
}

void scscf_sess_strip_credentials(const scscf_context *ctx, msg_t *msg, sip_t *sip)
{
    if (!sip->sip_authorization && !sip->sip_proxy_authorization)
        return;
    int n = ctx->realm ? ims_sip_remove_credentials(msg, sip, ctx->realm) : 0;
    const ims_cfg_strlist *hd = &ctx->cfg.scscf.home_domains;
    for (size_t i = 0; i < hd->count; i++)
        n += ims_sip_remove_credentials(msg, sip, hd->items[i]);
    if (n > 0)
        IMS_INFO(SUBSYS, "%s (Call-ID %s): %d credential header(s) for our realm removed before "
                 "forwarding (the UE's P-CSCF let them through)",
                 sip->sip_request->rq_method_name, sip->sip_call_id ? sip->sip_call_id->i_id : "-", n);
}

bool scscf_sess_is_home(const scscf_context *ctx, const url_t *u)
{
    if (u->url_type == url_tel)
        return true;
    if (!u->url_host)
        return false;
    const ims_cfg_strlist *hd = &ctx->cfg.scscf.home_domains;
    if (!hd->count)
        return ctx->realm && strcasecmp(u->url_host, ctx->realm) == 0;
    for (size_t i = 0; i < hd->count; i++)
        if (strcasecmp(u->url_host, hd->items[i]) == 0)
            return true;
    return false;
}

/* ---------- terminating ---------- */

static bool has_header(const sip_t *sip, const char *name)
{
    for (const sip_unknown_t *u = sip->sip_unknown; u; u = u->un_next)
        if (u->un_name && strcasecmp(u->un_name, name) == 0)
            return true;
    return false;
}

static void term_deliver(scscf_sess *st)
{
    scscf_context *ctx = st->ctx;
    scscf_reg *reg = scscf_regstore_find(ctx->store, st->user);
    ims_sip_branch b[MAX_CONTACTS];
    size_t n = 0;
    int64_t now = scscf_now();
    for (scscf_contact *c = reg ? reg->contacts : NULL; c && n < MAX_CONTACTS; c = c->next)
        if (!c->terminated && c->expires_at > now)
            b[n++] = (ims_sip_branch){ .ruri = c->uri, .route = c->path };
    if (!n) {
        scscf_sess_reject(st, 480, "Temporarily Unavailable");
        return;
    }
    msg_t *msg = ims_sip_request_copy(st->irq);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    final_count *fc = calloc(1, sizeof(*fc));
    char called[1100], ruri[1024];
    if (!sip || !fc || scscf_sess_prepare(ctx, msg, sip) ||
        url_e(ruri, sizeof(ruri), sip->sip_request->rq_url) >= (issize_t)sizeof(ruri))
        goto fail;
    /* RFC 7315 §4.2: the Request-URI the request had before we retarget it to the contacts */
    snprintf(called, sizeof(called), "<%s>", ruri);
    if (!has_header(sip, "P-Called-Party-ID") &&
        ims_sip_add_header(msg, sip, "P-Called-Party-ID", called))
        goto fail;
    fc->ctx = ctx;
    fc->scase = "term";
    fc->orig_too = st->orig_local;
    ims_sip_fork_opts o = { .on_response = count_final, .on_end = count_end, .arg = fc };
    nta_incoming_t *irq = st->irq;
    st->irq = NULL;
    IMS_INFO(SUBSYS, "term %s: forking to %zu contact(s)", st->user, n);
    if (ims_sip_fork(ctx->sip, irq, msg, b, n, &o) < 0)
        free(fc);       /* answered already; on_end is not called */
    scscf_sess_free(st);
    return;
fail:
    free(fc);
    if (msg)
        msg_destroy(msg);
    scscf_sess_reject(st, 500, "Server Internal Error");
}

/* The profile of the callee in a SAA: the service profile holding st->user. */
static const ims_service_profile *profile_of(const ims_subscription *sub, const char *user)
{
    char want[512], have[512];
    scscf_identity_key(user, want, sizeof(want));
    for (size_t p = 0; p < sub->n_profiles; p++)
        for (size_t i = 0; i < sub->profiles[p].n_ids; i++) {
            scscf_identity_key(sub->profiles[p].ids[i].identity, have, sizeof(have));
            if (strcmp(want, have) == 0)
                return &sub->profiles[p];
        }
    return sub->n_profiles ? &sub->profiles[0] : NULL;
}

static void on_unreg_saa(void *arg, struct msg *ans)
{
    scscf_sess *st = arg;
    scscf_saa saa;
    char err[256];
    if (st->ctx->stopping) {
        scscf_sess_reject(st, 503, "Service Unavailable");
        return;
    }
    int rc = scscf_cx_parse_saa(ans, &saa, err, sizeof(err));
    if (rc == -1) {
        ims_cx_sip s;
        scscf_cx_sip_answer(ans, IMS_CX_FOR_REQUEST, &s);
        reject(st, s.status, s.phrase, s.retry_after);
        return;
    }
    if (rc || !saa.has_profile) {
        IMS_WARN(SUBSYS, "SAA for unregistered %s: no usable User-Data%s%s", st->user, rc ? ": " : "", rc ? err : "");
        scscf_sess_reject(st, 480, "Temporarily Unavailable");
        return;
    }
    scscf_as_select(st, profile_of(&saa.sub, st->user), false);
    scscf_saa_free(&saa);
    if (!st->n_as) {
        scscf_sess_reject(st, 480, "Temporarily Unavailable");
        return;
    }
    scscf_as_next(st);
}

/* TS 24.229 §5.4.3.3: the callee's case, from its Request-URI. Consumes st (st->irq set). */
static void term_start(scscf_sess *st)
{
    scscf_context *ctx = st->ctx;
    msg_t *req = nta_incoming_getrequest(st->irq);
    sip_t *sip = req ? sip_object(req) : NULL;
    int rc = sip && sip->sip_request ? scscf_sess_callee(sip->sip_request->rq_url, st->user, sizeof(st->user)) : -1;
    if (req)
        msg_destroy(req);
    if (rc) {
        scscf_sess_reject(st, 416, "Unsupported URI Scheme");
        return;
    }
    for (size_t i = 0; i < st->n_as; i++)
        free(st->as[i].uri);
    st->n_as = st->next = 0;
    st->scase = IMS_SESSION_CASE_TERMINATING_REGISTERED;
    scscf_reg *reg = scscf_regstore_find(ctx->store, st->user);
    if (reg) {
        for (size_t i = 0; i < reg->n_impus; i++) {
            char a[512], b[512];
            scscf_identity_key(reg->impus[i].uri, a, sizeof(a));
            scscf_identity_key(st->user, b, sizeof(b));
            if (strcmp(a, b) == 0 && reg->impus[i].barred) {
                scscf_sess_reject(st, 404, "Not Found");
                return;
            }
        }
        scscf_as_select(st, scscf_reg_service_profile(reg, st->user), true);
        scscf_as_next(st);
        return;
    }
    st->scase = IMS_SESSION_CASE_TERMINATING_UNREGISTERED;
    if (scscf_cx_sar(ctx, NULL, st->user, IMS_SAT_UNREGISTERED_USER, false, on_unreg_saa, st))
        scscf_sess_reject(st, 500, "Server Internal Error");
}

/* ---------- originating ---------- */

/* Forwards to `target` (I-CSCF or breakout) with it as the top Route. Consumes st. */
static void orig_forward(scscf_sess *st, const char *target)
{
    scscf_context *ctx = st->ctx;
    msg_t *msg = ims_sip_request_copy(st->irq);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    char route[600];
    snprintf(route, sizeof(route), "<%s%s>", target, strstr(target, ";lr") ? "" : ";lr");
    if (!sip || scscf_sess_prepare(ctx, msg, sip) || ims_sip_prepend_header(msg, sip, "Route", route)) {
        if (msg)
            msg_destroy(msg);
        scscf_sess_reject(st, 500, "Server Internal Error");
        return;
    }
    nta_incoming_t *irq = st->irq;
    st->irq = NULL;
    IMS_INFO(SUBSYS, "orig %s: to %s", st->user, target);
    ims_sip_forward(ctx->sip, irq, msg, NULL, count_forwarded, ctx);
    scscf_sess_free(st);
}

static void orig_route(scscf_sess *st)
{
    scscf_context *ctx = st->ctx;
    msg_t *req = nta_incoming_getrequest(st->irq);
    sip_t *sip = req ? sip_object(req) : NULL;
    char callee[512];
    bool home = false;
    int rc = -1;
    if (sip && sip->sip_request) {
        rc = scscf_sess_callee(sip->sip_request->rq_url, callee, sizeof(callee));
        home = rc == 0 && scscf_sess_is_home(ctx, sip->sip_request->rq_url);
    }
    if (req)
        msg_destroy(req);
    if (rc) {
        scscf_sess_reject(st, 416, "Unsupported URI Scheme");
        return;
    }
    if (scscf_regstore_find(ctx->store, callee) || (home && !ctx->cfg.scscf.icscf)) {
        /* we serve the callee (or are the only S-CSCF we know of): terminating case here */
        st->orig_local = true;
        term_start(st);
        return;
    }
    if (home) {
        orig_forward(st, ctx->cfg.scscf.icscf);
        return;
    }
    if (ctx->cfg.scscf.breakout) {
        orig_forward(st, ctx->cfg.scscf.breakout);
        return;
    }
    scscf_sess_reject(st, 404, "Not Found");
}

void scscf_sess_route(scscf_sess *st)
{
    if (st->scase == IMS_SESSION_CASE_ORIGINATING)
        orig_route(st);
    else
        term_deliver(st);
}

static int orig_start(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    char pai[512], user[256] = "";
    scscf_reg *reg = NULL;
    if (ims_sip_header(sip, "P-Asserted-Identity", pai, sizeof(pai)) && first_uri(pai, user, sizeof(user)) == 0)
        reg = scscf_regstore_find(ctx->store, user);
    if (!reg) {
        IMS_INFO(SUBSYS, "orig: served user %s is not registered here", user[0] ? user : "(no P-Asserted-Identity)");
        scscf_sess_count("orig", 403);
        scscf_reply(ctx, irq, 403, "Forbidden - not registered", NULL, false);
        return 0;
    }
    scscf_sess *st = calloc(1, sizeof(*st));
    if (!st)
        return 500;
    st->ctx = ctx;
    st->irq = irq;
    st->scase = IMS_SESSION_CASE_ORIGINATING;
    snprintf(st->user, sizeof(st->user), "%s", user);
    scscf_calllog_begin(ctx->calls, sip, user, "orig");
    scscf_as_select(st, scscf_reg_service_profile(reg, user), true);
    scscf_as_next(st);
    return 0;
}

/* ---------- dispatch ---------- */

int scscf_session_request(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    if (sip->sip_to && sip->sip_to->a_tag) {
        /* in-dialog: along the route set (TS 24.229 §5.4.5) */
        if (sip->sip_request->rq_method == sip_method_bye)
            scscf_calllog_bye(ctx->calls, sip);
        msg_t *msg = ims_sip_request_copy(irq);
        if (!msg)
            return sip->sip_request->rq_method == sip_method_ack ? 1 : 500;
        scscf_sess_strip_credentials(ctx, msg, sip_object(msg));
        ims_sip_proxy_onward(ctx->sip, irq, msg, NULL, NULL);
        return 0;
    }
    if (sip->sip_request->rq_method == sip_method_ack)
        return 1;       /* no dialog, no transaction: nothing to do with it */

    const sip_route_t *r = sip->sip_route;
    if (!r || !ims_sip_is_self(ctx->sip, r->r_url)) {
        if (!r)
            return 404;     /* addressed to us, not to a user */
        msg_t *msg = ims_sip_request_copy(irq);
        if (!msg)
            return 500;
        ims_sip_proxy_onward(ctx->sip, irq, msg, NULL, NULL);
        return 0;
    }
    char odi[40];
    if (url_param(r->r_url->url_params, "odi", odi, sizeof(odi)) > 0)
        return scscf_as_returned(ctx, irq, sip, odi);
    if (r->r_url->url_user && strcmp(r->r_url->url_user, SCSCF_ORIG_USER) == 0)
        return orig_start(ctx, irq, sip);

    scscf_sess *st = calloc(1, sizeof(*st));
    if (!st)
        return 500;
    st->ctx = ctx;
    st->irq = irq;
    char pai[512], caller[256] = "";
    if (ims_sip_header(sip, "P-Asserted-Identity", pai, sizeof(pai)))
        first_uri(pai, caller, sizeof(caller));
    scscf_calllog_begin(ctx->calls, sip, caller, "term");
    term_start(st);
    return 0;
}

void scscf_session_shutdown(scscf_context *ctx)
{
    scscf_as_shutdown(ctx);
}
