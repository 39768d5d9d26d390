/*
 * icscf_route: every request but REGISTER.
 *
 * References:
 *  - TS 24.229 §5.3.2.1: an initial request for a user of the home network (Request-URI in a
 *    home domain) gets a location query (LIR); on success the I-CSCF puts the S-CSCF URI in the
 *    topmost Route and forwards the request; with capabilities instead of a name it selects an
 *    S-CSCF like at registration (TS 29.228 §6.1.4, §6.7).
 *  - TS 29.228 §6.1.4.1 / TS 29.229 §6.2: LIA codes. Mapped here:
 *      base 2001, Experimental 2003 UNREGISTERED_SERVICE      forward to the S-CSCF
 *      Experimental 5001 USER_UNKNOWN                         404 Not Found
 *      Experimental 5003 IDENTITY_NOT_REGISTERED              480 Temporarily Unavailable
 *      no answer, base 3002/3003/3004 (HSS not reachable),
 *      base 5012 UNABLE_TO_COMPLY, or an LIR that cannot be
 *      sent at all                                            480 Temporarily Unavailable + Retry-After
 *      no S-CSCF fulfils the capabilities                     600 Busy Everywhere
 *      anything else                                          500
 *  - The S-CSCF the LIA names cannot be reached (nta's own 503: connection refused, no route;
 *    it carries no Retry-After, unlike the 503 of an overloaded S-CSCF): 480 Temporarily
 *    Unavailable with Retry-After. The callee's registration lives at that S-CSCF only, so no
 *    other S-CSCF can reach the callee (no re-selection for terminating requests, unlike
 *    REGISTER); an S-CSCF restarted under the same name with its registrations in the state
 *    store (README "State store") serves the callee again. Counted in
 *    icscf_requests_total{result="scscf_unreachable"}. A 503 with Retry-After (overload) becomes
 *    500 with that Retry-After (RFC 3261 §16.7 step 6: a 503 is not relayed as such). An S-CSCF
 *    that accepts nothing and refuses nothing (a host gone without a reset) ends in nta's 408
 *    after Timer B (32 s), relayed as it is.
 *  - Role limits (TS 24.229 §5.3.2.1, RFC 3325 §5; README "Security model"): the I-CSCF forwards
 *    only to a home S-CSCF (the HSS's Server-Name, or icscf.scscfs). Refused, counted in
 *    icscf_refused_total{reason} and warned about (icscf_refuse):
 *      To-tagged request (in-dialog)       403: the I-CSCF never Record-Routes (§5.3.2.1), so no
 *                                          dialog's route set contains it; 481 would tell a UA its
 *                                          dialog is gone, which the I-CSCF cannot know (in_dialog)
 *      ACK (its 2xx ACK never passes here; the ACK of our non-2xx is absorbed by nta) dropped
 *      Request-URI in no home domain      404 "Domain Not Served" (RFC 3261 §21.4.5: the domain
 *                                          is not handled here): without THIG/IBCF the I-CSCF
 *                                          is no exit; breakout is the S-CSCF's (foreign_domain)
 *      Route beyond us, not a home S-CSCF  403, and from outside the trust domain always (the
 *      or from outside the trust domain    S-CSCF trusts what the I-CSCF sends it) (foreign_route)
 *    From outside the trust domain, trust-domain headers (P-Asserted-Identity, P-Charging-* ...)
 *    are removed before the request is forwarded (icscf_strip_untrusted).
 *
 * Not done: tel: URI / user=phone translation (ENUM), THIG, the Dx (SLF) interface.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/url.h>

#include "icscf_context.h"
#include "ims_identity.h"
#include "ims_log.h"
#include "ims_register.h"

#define SUBSYS "icscf.route"

typedef struct icscf_sess {
    struct icscf_sess *next;
    uint64_t key;
    nta_incoming_t *irq;
    bool trusted;                    /* source in the trust domain */
    char method[32];
    char impu[512];
} icscf_sess;

static void sess_finish(icscf_context *ctx, icscf_sess *s)
{
    for (icscf_sess **pp = &ctx->sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            icscf_pending_changed(ctx, -1);
            break;
        }
    }
    if (s->irq)
        nta_incoming_destroy(s->irq);
    free(s);
}

static void sess_reply(icscf_context *ctx, icscf_sess *s, int status, const char *phrase, const char *result)
{
    if (s->irq && nta_incoming_status(s->irq) < 200 && nta_incoming_method(s->irq) != sip_method_ack)
        nta_incoming_treply(s->irq, status, phrase, TAG_END());
    IMS_INFO(SUBSYS, "%s to %s: %d %s", s->method, s->impu, status, phrase ? phrase : "");
    icscf_count_request(s->method, result);
    sess_finish(ctx, s);
}

/* Forwarding without NF logic: the response callback only counts. */
static int count_response(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    (void)arg; (void)irq; (void)msg; (void)sip;
    return 0;
}

/* Rewrites the status line of response msg and sets its Retry-After. 0 / -1. */
static int restatus(msg_t *msg, sip_t *sip, int status, const char *phrase, unsigned long retry_after)
{
    char ra[24];
    snprintf(ra, sizeof(ra), "%lu", retry_after);
    sip_status_t *st = sip_status_create(msg_home(msg), status, phrase, NULL);
    if (!st || msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_status, (msg_header_t *)st) < 0)
        return -1;
    if (sip->sip_retry_after)
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_retry_after);
    return sip_add_tl(msg, sip, SIPTAG_RETRY_AFTER_STR(ra), TAG_END()) < 0 ? -1 : 0;
}

/* The final response to an initial request sent to the S-CSCF of the LIA (see the header). */
static int scscf_response(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    static ims_log_limit limit;
    (void)arg;
    (void)irq;
    if (sip->sip_status->st_status != 503)
        return 0;
    const char *method = sip->sip_cseq ? sip->sip_cseq->cs_method_name : "-";
    char callee[256] = "-";
    if (sip->sip_to)
        url_e(callee, sizeof(callee), sip->sip_to->a_url);
    callee[sizeof(callee) - 1] = '\0';
    if (sip->sip_retry_after) {
        unsigned long ra = sip->sip_retry_after->af_delta;
        IMS_INFO(SUBSYS, "%s to %s: the S-CSCF is overloaded (503): 500 with Retry-After %lu", method, callee, ra);
        return restatus(msg, sip, 500, "Server Internal Error - S-CSCF Overloaded", ra) ? 500 : 0;
    }
    unsigned long held = 0;
    if (ims_log_allow(&limit, &held))
        IMS_WARN(SUBSYS, "%s to %s: S-CSCF not reachable (503 %s): 480 (%lu more since the last warning)", method,
                 callee, sip->sip_status->st_phrase ? sip->sip_status->st_phrase : "", held);
    icscf_count_request(method, "scscf_unreachable");
    return restatus(msg, sip, 480, "Temporarily Unavailable - S-CSCF Not Reachable", IMS_CX_RETRY_AFTER) ? 480 : 0;
}

/* A request with a Route set towards a home S-CSCF, from inside the trust domain. */
static int proxy(icscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    msg_t *msg = ims_sip_request_copy(irq);
    if (!msg)
        return 500;
    icscf_count_request(sip->sip_request->rq_method_name, "proxied");
    ims_sip_proxy_onward(ctx->sip, irq, msg, count_response, NULL);   /* -1: it answered already */
    return 0;
}

/* The Route set left after our own entry (RFC 3261 §16.4). */
static const sip_route_t *routes_beyond_us(icscf_context *ctx, const sip_t *sip)
{
    const sip_route_t *r = sip->sip_route;
    if (r && ims_sip_is_self(ctx->sip, r->r_url))
        r = r->r_next;
    return r;
}

/* Public-Identity of a LIR: the Request-URI without parameters (TS 29.228 §6.1.4.1), in the
 * canonical form every NF and the HSS key identities by (ims_identity). */
static int target_identity(const sip_t *sip, char *buf, size_t len)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    int rc = -1;
    char *s = url_as_string(home, sip->sip_request->rq_url);
    if (s)
        rc = ims_identity_normalise(s, buf, len);
    su_home_deinit(home);
    return rc;
}

static void on_lia(void *arg, struct msg *ans);

static int forward_to_scscf(icscf_context *ctx, icscf_sess *s, const char *scscf);

int icscf_route_handle(icscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, bool trusted)
{
    const url_t *ruri = sip->sip_request->rq_url;
    sip_method_t method = sip->sip_request->rq_method;
    bool initial = sip->sip_to && !sip->sip_to->a_tag;

    if (method == sip_method_ack || !initial)
        return icscf_refuse(ctx, irq, sip, "in_dialog", 403, "Forbidden - Not On The Route Of Any Dialog");
    const sip_route_t *beyond = routes_beyond_us(ctx, sip);
    if (beyond) {
        if (!trusted || !icscf_is_home_scscf(ctx, beyond->r_url))
            return icscf_refuse(ctx, irq, sip, "foreign_route", 403, "Forbidden - Route Not Allowed");
        return proxy(ctx, irq, sip);
    }

    /* Addressed to us (no Route left): nobody to proxy to. */
    if (ims_sip_is_self(ctx->sip, ruri)) {
        icscf_count_request(sip->sip_request->rq_method_name, "local");
        if (method == sip_method_options) {
            nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR("REGISTER, INVITE, ACK, BYE, CANCEL, OPTIONS, "
                                                                  "MESSAGE, SUBSCRIBE, NOTIFY, UPDATE, PRACK, INFO, REFER"),
                                TAG_END());
            nta_incoming_destroy(irq);
            return 0;
        }
        return 404;
    }

    /* A tel: URI has no domain: the HSS is the one to know it. */
    bool home = ruri->url_type == url_tel ||
                ((ruri->url_type == url_sip || ruri->url_type == url_sips) && icscf_is_home_domain(ctx, ruri->url_host));
    if (!home)
        return icscf_refuse(ctx, irq, sip, "foreign_domain", 404, "Not Found - Domain Not Served");

    if (ctx->stopping)
        return 503;
    icscf_sess *s = calloc(1, sizeof(*s));
    if (!s)
        return 500;
    if (target_identity(sip, s->impu, sizeof(s->impu))) {
        free(s);
        nta_incoming_treply(irq, 400, "Bad Request - Request-URI", TAG_END());
        nta_incoming_destroy(irq);
        return 0;
    }
    snprintf(s->method, sizeof(s->method), "%s", sip->sip_request->rq_method_name);
    s->irq = irq;
    s->trusted = trusted;
    s->key = icscf_new_key(ctx);
    s->next = ctx->sessions;
    ctx->sessions = s;
    icscf_pending_changed(ctx, +1);
    if (!ctx->cfg.icscf.lir) {
        /* Without LIR: the first usable S-CSCF of icscf.scscfs, never the Request-URI's host. */
        char chosen[ICSCF_URI_MAX] = "";
        if (icscf_scscf_select(ctx->pool, ctx->n_pool, NULL, NULL, NULL, chosen, sizeof(chosen)))
            sess_reply(ctx, s, 600, "Busy Everywhere - No S-CSCF Available", "no_scscf");
        else if (forward_to_scscf(ctx, s, chosen))
            sess_reply(ctx, s, 500, "Server Internal Error - Bad S-CSCF Name", "error");
        else {
            icscf_count_request(s->method, "routed");
            sess_finish(ctx, s);
        }
        return 0;
    }
    /* §16.2: an INVITE gets 100 Trying while the HSS is asked. */
    if (method == sip_method_invite)
        nta_incoming_treply(irq, SIP_100_TRYING, TAG_END());
    if (icscf_cx_send_lir(ctx, s->impu, on_lia, (void *)(uintptr_t)s->key)) {
        ims_cx_sip cs;   /* not even sent: the one answer for an HSS out of reach (ims_register.c) */
        ims_cx_to_sip(false, 0, 0, IMS_CX_FOR_REQUEST, &cs);
        icscf_cx_reply(s->irq, &cs);
        sess_reply(ctx, s, cs.status, cs.phrase, cs.result);
    }
    return 0;
}

/* Adds <scscf;lr> as the topmost Route (TS 24.229 §5.3.2.1) and forwards to it. */
static int forward_to_scscf(icscf_context *ctx, icscf_sess *s, const char *scscf)
{
    msg_t *msg = ims_sip_request_copy(s->irq);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    if (!sip) {
        if (msg)
            msg_destroy(msg);
        return -1;
    }
    if (sip->sip_route && ims_sip_is_self(ctx->sip, sip->sip_route->r_url))
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_route);
    /* RFC 3325 §5: the S-CSCF believes what comes from us; nothing a stranger asserted passes. */
    if (!s->trusted && icscf_strip_untrusted(msg, sip) > 0)
        IMS_DEBUG(SUBSYS, "%s to %s from outside the trust domain: trust-domain headers removed", s->method, s->impu);
    url_t *u = url_make(msg_home(msg), scscf);
    if (u && (u->url_type == url_sip || u->url_type == url_sips) && u->url_host)
        u = ims_sip_core_hop(ctx->sip, msg_home(msg), u);   /* over sip.core_transport */
    if (!u || (u->url_type != url_sip && u->url_type != url_sips) || !u->url_host) {
        msg_destroy(msg);
        return -1;
    }
    if (!url_has_param(u, "lr"))
        url_param_add(msg_home(msg), u, "lr");
    char value[600];
    char *us = url_as_string(msg_home(msg), u);
    snprintf(value, sizeof(value), "<%s>", us ? us : scscf);
    if (!us || ims_sip_prepend_header(msg, sip, "Route", value)) {
        msg_destroy(msg);
        return -1;
    }
    nta_incoming_t *irq = s->irq;
    s->irq = NULL;   /* ims_sip_forward owns it now, in every case */
    IMS_DEBUG(SUBSYS, "%s to %s -> %s", s->method, s->impu, scscf);
    ims_sip_forward(ctx->sip, irq, msg, NULL, scscf_response, NULL);
    return 0;
}

static void on_lia(void *arg, struct msg *ans)
{
    icscf_context *ctx = &icscf_ctx;
    icscf_sess *s = NULL;
    for (s = ctx->sessions; s && s->key != (uint64_t)(uintptr_t)arg; s = s->next)
        ;
    if (!s)
        return;
    if (!s->irq || nta_incoming_status(s->irq) >= 200) {   /* CANCELled meanwhile (nta sent 487) */
        icscf_count_request(s->method, "cancelled");
        sess_finish(ctx, s);
        return;
    }

    icscf_cx_answer a;
    icscf_cx_read_answer(ans, &a);
    ims_cx_sip answer;
    icscf_cx_to_sip(ctx, &a, IMS_CX_FOR_REQUEST, &answer);
    if (answer.status) {
        if (nta_incoming_method(s->irq) != sip_method_ack)
            icscf_cx_reply(s->irq, &answer);
        sess_reply(ctx, s, answer.status, answer.phrase, answer.result);
        return;
    }
    char chosen[ICSCF_URI_MAX] = "";
    if (a.server_name[0])
        snprintf(chosen, sizeof(chosen), "%s", a.server_name);
    else if (icscf_scscf_select(ctx->pool, ctx->n_pool, &a.caps, NULL,
                                ctx->cfg.icscf.selection == ICSCF_SELECT_HASH ? s->impu : NULL, chosen,
                                sizeof(chosen))) {
        sess_reply(ctx, s, 600, "Busy Everywhere - No S-CSCF Available", "no_scscf");
        return;
    }
    if (forward_to_scscf(ctx, s, chosen)) {
        sess_reply(ctx, s, 500, "Server Internal Error - Bad S-CSCF Name", "error");
        return;
    }
    icscf_count_request(s->method, "routed");
    sess_finish(ctx, s);
}

void icscf_route_fini(icscf_context *ctx)
{
    while (ctx->sessions)
        sess_reply(ctx, ctx->sessions, 503, "Service Unavailable - Shutting Down", "error");
}
