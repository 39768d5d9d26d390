/*
 * scscf_sip: the S-CSCF's SIP entry point — module start/stop, request dispatch, final replies,
 * metrics and readiness.
 *
 * Dispatch (TS 24.229 §5.4): REGISTER -> scscf_registrar_register (scscf_register_check.c); SUBSCRIBE with Event: reg ->
 * scscf_reginfo (RFC 3680); OPTIONS -> 200 (keep-alive probes) unless it is routed through us;
 * everything else (INVITE, MESSAGE, in-dialog requests, ACK ...) -> scscf_session (originating /
 * terminating, iFC to ASes, TS 24.229 §5.4.3).
 *
 * Entry check: every request from outside the trust domain (trust.peers, trust.cidrs;
 * ims_trust.h) is answered 403 before dispatch (an ACK is dropped).
 *
 * References: RFC 3325 §2.3 and TS 33.210 §4 (trust domain), RFC 3261 §8.2 (UAS behaviour),
 * §21.5.2 (501), RFC 6665 §4.2.1 (489 Bad Event).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#include "ims_diameter.h"
#include "ims_clock.h"
#include "ims_log.h"
#include "scscf_auth.h"
#include "scscf_calllog.h"
#include "scscf_context.h"
#include "scscf_reginfo.h"
#include "scscf_regsync.h"
#include "scscf_util.h"

#define SUBSYS "scscf"
#define HOUSEKEEPING_MS 5000

scscf_context scscf_ctx;

int64_t scscf_now(void)
{
    return ims_monotonic_ms() / 1000;
}

static void count_result(int status)
{
    char name[96];
    snprintf(name, sizeof(name), "scscf_register_total{result=\"%d\"}", status);
    ims_metric_inc(ims_metric_counter(name, "REGISTER requests answered, by final status"));
}

msg_t *scscf_reply_msg(scscf_context *ctx, nta_incoming_t *irq, int status, const char *phrase,
                       const char *headers, bool count_register)
{
    (void)ctx;
    if (!irq)
        return NULL;
    if (count_register)
        count_result(status);
    nta_incoming_treply(irq, status, phrase, TAG_IF(headers && *headers, SIPTAG_HEADER_STR(headers)),
                        TAG_END());
    msg_t *resp = nta_incoming_getresponse(irq);
    nta_incoming_destroy(irq);
    return resp;
}

void scscf_reply(scscf_context *ctx, nta_incoming_t *irq, int status, const char *phrase,
                 const char *headers, bool count_register)
{
    msg_t *m = scscf_reply_msg(ctx, irq, status, phrase, headers, count_register);
    if (m)
        msg_destroy(m);
}

void scscf_update_gauges(scscf_context *ctx)
{
    ims_metric_set(ctx->m_registrations, (int64_t)scscf_regstore_impus(ctx->store));
    ims_metric_set(ctx->m_contacts, (int64_t)scscf_regstore_contacts(ctx->store));
    ims_metric_set(ctx->m_subscriptions, (int64_t)scscf_reginfo_count(ctx->reginfo));
}

bool scscf_ready(void *arg, char *why, size_t whylen)
{
    scscf_context *ctx = arg;
    if (!ctx->sip || ctx->stopping) {
        snprintf(why, whylen, "SIP agent not running");
        return false;
    }
    if (!scscf_regsync_ready(ctx, why, whylen))
        return false;
    if (ctx->hss_host) {
        if (!ims_diameter_peer_is_open(ctx->hss_host)) {
            snprintf(why, whylen, "HSS %s not connected", ctx->hss_host);
            return false;
        }
        return true;
    }
    if (ims_diameter_open_peers(why, whylen) == 0) {
        if (!why[0])
            snprintf(why, whylen, "no Diameter peer connected");
        return false;
    }
    return true;
}

/* ---------- housekeeping: challenges that were never answered ---------- */

static void on_auth_timeout(void *arg, const scscf_challenge *c)
{
    scscf_context *ctx = arg;
    /* TS 29.228 §6.1.2: AUTHENTICATION_TIMEOUT when the UE never answered a challenge of a
     * registration that had not succeeded (a registered user stays registered). */
    if (scscf_regstore_find(ctx->store, c->impu) || scscf_auth_other_pending(ctx->auth, c, scscf_now()))
        return;
    IMS_INFO(SUBSYS, "challenge for %s (%s) was not answered", c->impi, c->impu);
    scscf_cx_sar(ctx, c->impi, c->impu, IMS_SAT_AUTHENTICATION_TIMEOUT, false, NULL, NULL);
}

static void housekeeping(void *arg)
{
    scscf_context *ctx = arg;
    ctx->housekeeping = NULL;   /* fired: freed by ims_sip */
    scscf_auth_sweep(ctx->auth, scscf_now(), on_auth_timeout, ctx);
    scscf_update_gauges(ctx);
    scscf_calllog_sweep(ctx->calls);
    if (!ctx->stopping)
        ctx->housekeeping = ims_sip_timer_start(ctx->sip, HOUSEKEEPING_MS, housekeeping, ctx);
}

/* ---------- store timers on the SIP loop ---------- */

static void *timer_start(void *arg, unsigned ms, void (*fn)(void *), void *fnarg)
{
    scscf_context *ctx = arg;
    return ims_sip_timer_start(ctx->sip, ms, fn, fnarg);
}

static void timer_cancel(void *arg, void *timer)
{
    (void)arg;
    ims_sip_timer_cancel(timer);
}

static int64_t timer_now(void *arg)
{
    (void)arg;
    return scscf_now();
}

/* ---------- dispatch ---------- */

static bool event_is_reg(const sip_t *sip)
{
    return sip->sip_event && sip->sip_event->o_type && strcasecmp(sip->sip_event->o_type, "reg") == 0;
}

int scscf_on_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    scscf_context *ctx = arg;
    if (ctx->stopping)
        return 503;
    /* The S-CSCF serves network elements only (P-/I-/S-CSCFs, ASes: TS 24.229 §5.4), never a UE
     * directly: a request from outside the trust domain is refused before anything believes its
     * P-Asserted-Identity, subscribes, registers or relays (RFC 3325 §2.3, TS 33.210 §4).
     * Any non-zero value drops an ACK; nta answers everything else 403 Forbidden. */
    if (!ims_trust_admit(ctx->trust, irq, sip, SUBSYS))
        return 403;
    /* registrations not loaded yet (scscf_regsync.h): a request now would find nobody */
    if (scscf_regsync_loading(ctx)) {
        if (sip->sip_request->rq_method == sip_method_ack)
            return 1;
        scscf_reply(ctx, irq, 503, "Service Unavailable - Loading Registrations", "Retry-After: 2\r\n", false);
        return 0;
    }
    switch (sip->sip_request->rq_method) {
    case sip_method_register:
        return scscf_registrar_register(ctx, irq, sip);
    case sip_method_subscribe:
        if (!event_is_reg(sip)) {
            scscf_reply(ctx, irq, 489, "Bad Event", "Allow-Events: reg\r\n", false);
            return 0;
        }
        return scscf_reginfo_subscribe(ctx, irq, sip);
    case sip_method_options:
        if (!sip->sip_route || (sip->sip_to && sip->sip_to->a_tag)) {
            scscf_reply(ctx, irq, 200, "OK",
                        "Allow: REGISTER, SUBSCRIBE, NOTIFY, OPTIONS, INVITE, ACK, BYE, CANCEL, MESSAGE, PRACK, "
                        "UPDATE, INFO\r\nAllow-Events: reg\r\n", false);
            return 0;
        }
        return scscf_session_request(ctx, irq, sip);
    default:
        return scscf_session_request(ctx, irq, sip);
    }
}

/* ---------- start / stop ---------- */

int scscf_start(scscf_context *ctx, char *err, size_t errlen)
{
    const scscf_cfg *c = &ctx->cfg.scscf;
    snprintf(ctx->name, sizeof(ctx->name), "%s", c->name ? c->name : ims_sip_self_uri(ctx->sip));
    ctx->realm = c->realm ? c->realm : ctx->cfg.diameter.realm;
    ctx->hss_realm = c->hss_realm ? c->hss_realm : ctx->cfg.diameter.realm;
    ctx->hss_host = c->hss_host && *c->hss_host ? c->hss_host : NULL;

    /* Service-Route (RFC 3608, TS 24.229 §5.4.1.2.2): our URI with the "orig" user part, so that
     * requests of the UE reach us marked as the originating case. */
    const char *self = ims_sip_self_uri(ctx->sip);
    const char *host = strncmp(self, "sip:", 4) == 0 ? self + 4 : self;
    /* Both name sip.core_transport (ims_sip_core_param): the P-CSCFs and the other side of a
     * dialog reach us over TCP by default; a UE only routes to its P-CSCF. */
    const char *core = ims_sip_core_param(ctx->sip);
    snprintf(ctx->service_route, sizeof(ctx->service_route), "<sip:%s@%s;lr%s>", SCSCF_ORIG_USER, host, core);
    /* Record-Route of the sessions we route (TS 24.229 §5.4.3.2 / §5.4.3.3) */
    snprintf(ctx->rr, sizeof(ctx->rr), "<%s;lr%s>", self, core);
    ctx->odi = ims_map_new();
    ctx->calls = scscf_calllog_new();
    ims_sip_set_timer_c(ctx->sip, (unsigned)c->timer_c_ms);

    scscf_timer_ops ops = { .start = timer_start, .cancel = timer_cancel, .now = timer_now, .arg = ctx };
    ctx->store = scscf_regstore_new(&ops, scscf_registrar_expired, ctx);
    ctx->auth = scscf_auth_new(c->nonce_lifetime);
    ctx->reginfo = scscf_reginfo_new(ctx);
    if (!ctx->store || !ctx->auth || !ctx->reginfo || !ctx->odi || !ctx->calls || scscf_reg_txns_start(ctx)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ctx->m_registrations = ims_metric_gauge("scscf_registrations", "public identities registered here");
    ctx->m_contacts = ims_metric_gauge("scscf_contacts", "contacts bound to registered identities");
    ctx->m_auth_failures = ims_metric_counter("scscf_auth_failures_total",
                                              "REGISTERs refused for bad credentials (403)");
    ctx->m_subscriptions = ims_metric_gauge("scscf_reg_subscriptions", "reg event subscriptions (RFC 3680)");
    /* the family shows up in /metrics before the first REGISTER */
    ims_metric_counter("scscf_register_total{result=\"200\"}", "REGISTER requests answered, by final status");
    ims_metric_counter("scscf_sessions_total{case=\"orig\",result=\"200\"}",
                       "initial requests routed by the S-CSCF, by case and final status");
    ims_metric_counter("scscf_as_requests_total{result=\"sent\"}",
                       "initial requests sent to application servers, by outcome");
    ims_cx_client_set_metrics_prefix("scscf");

    if (scscf_regsync_start(ctx, err, errlen))
        return -1;
    if (scscf_cx_serve(ctx)) {
        snprintf(err, errlen, "cannot serve RTR/PPR");
        return -1;
    }
    ctx->housekeeping = ims_sip_timer_start(ctx->sip, HOUSEKEEPING_MS, housekeeping, ctx);
    return 0;
}

void scscf_stop(scscf_context *ctx)
{
    ctx->stopping = true;
    ims_sip_timer_cancel(ctx->housekeeping);
    ctx->housekeeping = NULL;
    scscf_reg_txns_stop(ctx);   /* before the stores: the REGISTERs waiting are answered 503 */
    scscf_session_shutdown(ctx);
    scscf_regsync_stop(ctx);            /* the records stay for the next start */
    scscf_reginfo_free(ctx->reginfo);   /* releases reg->subs of every registration */
    ctx->reginfo = NULL;
    scscf_regstore_free(ctx->store);
    ctx->store = NULL;
    scscf_auth_free(ctx->auth);
    ctx->auth = NULL;
    scscf_calllog_free(ctx->calls);
    ctx->calls = NULL;
}
