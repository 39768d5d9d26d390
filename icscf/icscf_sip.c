/*
 * icscf_sip: the I-CSCF on its SIP loop — start/stop, request dispatch, metrics, readiness.
 *
 * Dispatch (TS 24.229 §5.3): REGISTER -> icscf_register.c (§5.3.1), everything else ->
 * icscf_route.c (§5.3.2 for initial requests to home users, plain proxying otherwise).
 *
 * Metrics:
 *   icscf_register_total{result}      REGISTER outcomes: ok / challenged / rejected (final response
 *                                     of the S-CSCF relayed: 2xx, 401, other), forbidden,
 *                                     user_unknown, hss_timeout, hss_unreachable, no_scscf (600),
 *                                     bad_request, domain_not_served, error; and S-CSCF
 *                                     re-selections (reselection, not an outcome)
 *   icscf_requests_total{method,result}  other requests: proxied, routed (LIR -> S-CSCF), local,
 *                                     user_unknown, not_registered, no_scscf, hss_timeout,
 *                                     hss_unreachable, cancelled, error
 *   icscf_pending                     REGISTERs and requests waiting for the HSS or the S-CSCF
 *   icscf_cx_requests_total, icscf_cx_latency_seconds   (ims_cx_client)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "icscf_context.h"
#include "ims_diameter.h"
#include "ims_log.h"

#define SUBSYS "icscf"

icscf_context icscf_ctx;

/* ---------- metrics ---------- */

static const char *const methods[] = {
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "SUBSCRIBE", "NOTIFY", "UPDATE", "PRACK",
    "INFO", "REFER", "PUBLISH", NULL,
};

void icscf_count_register(const char *result)
{
    char name[160];
    snprintf(name, sizeof(name), "icscf_register_total{result=\"%s\"}", result);
    ims_metric_inc(ims_metric_counter(name, "REGISTER transactions at the I-CSCF, by outcome"));
}

void icscf_count_request(const char *method, const char *result)
{
    /* Bounded label values: a method name comes from the network. */
    const char *m = "other";
    for (size_t i = 0; method && methods[i]; i++)
        if (strcasecmp(method, methods[i]) == 0)
            m = methods[i];
    char name[200];
    snprintf(name, sizeof(name), "icscf_requests_total{method=\"%s\",result=\"%s\"}", m, result);
    ims_metric_inc(ims_metric_counter(name, "requests other than REGISTER at the I-CSCF, by method and outcome"));
}

void icscf_pending_changed(icscf_context *ctx, int delta)
{
    if (delta < 0 && ctx->n_pending < (size_t)-delta)
        ctx->n_pending = 0;
    else
        ctx->n_pending = (size_t)((long)ctx->n_pending + delta);
    if (ctx->m_pending)
        ims_metric_set(ctx->m_pending, (int64_t)ctx->n_pending);
}

uint64_t icscf_new_key(icscf_context *ctx)
{
    if (++ctx->next_key == 0)
        ++ctx->next_key;
    return ctx->next_key;
}

/* ---------- helpers ---------- */

bool icscf_is_home_domain(const icscf_context *ctx, const char *host)
{
    const ims_cfg_strlist *d = &ctx->cfg.icscf.home_domains;
    if (!host || !*host)
        return false;
    if (!d->count)
        return true;
    for (size_t i = 0; i < d->count; i++)
        if (strcasecmp(host, d->items[i]) == 0)
            return true;
    return false;
}

bool icscf_ready(void *arg, char *why, size_t whylen)
{
    icscf_context *ctx = arg;
    if (!atomic_load(&ctx->running)) {
        snprintf(why, whylen, "SIP agent not running");
        return false;
    }
    if (ctx->cfg.icscf.hss_host) {
        if (!ims_diameter_peer_is_open(ctx->cfg.icscf.hss_host)) {
            snprintf(why, whylen, "HSS %s not connected", ctx->cfg.icscf.hss_host);
            return false;
        }
        return true;
    }
    if (ims_diameter_open_peers(why, whylen) == 0) {
        if (!why[0])
            snprintf(why, whylen, "no Diameter peer (HSS) connected");
        return false;
    }
    return true;
}

/* ---------- start / stop / dispatch ---------- */

int icscf_start(icscf_context *ctx, char *err, size_t errlen)
{
    ctx->hss_realm = ctx->cfg.icscf.hss_realm ? ctx->cfg.icscf.hss_realm : ctx->cfg.diameter.realm;
    if (icscf_scscf_pool_init(&ctx->cfg.icscf, &ctx->pool, &ctx->n_pool, err, errlen))
        return -1;
    ctx->m_pending = ims_metric_gauge("icscf_pending", "REGISTERs and requests waiting for the HSS or the S-CSCF");
    ims_metric_set(ctx->m_pending, 0);
    /* The family shows up (at 0) before the first REGISTER. */
    ims_metric_counter("icscf_register_total{result=\"ok\"}", "REGISTER transactions at the I-CSCF, by outcome");
    ims_cx_client_set_metrics_prefix("icscf");
    atomic_store(&ctx->running, true);
    return 0;
}

void icscf_stop(icscf_context *ctx)
{
    ctx->stopping = true;
    atomic_store(&ctx->running, false);
    icscf_register_fini(ctx);
    icscf_route_fini(ctx);
}

void icscf_free(icscf_context *ctx)
{
    free(ctx->pool);
    ctx->pool = NULL;
    ctx->n_pool = 0;
}

int icscf_on_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    icscf_context *ctx = arg;
    if (!sip || !sip->sip_request)
        return 400;
    if (sip->sip_request->rq_method == sip_method_register)
        return icscf_register_handle(ctx, irq, sip);
    return icscf_route_handle(ctx, irq, sip);
}
