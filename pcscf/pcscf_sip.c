/*
 * pcscf_sip: the P-CSCF on its SIP loop: start/stop, dispatch of new requests to the modules,
 * housekeeping (binding expiry), metrics.
 *
 * Dispatch: REGISTER -> pcscf_register.c (TS 24.229 §5.2.2); NOTIFY of one of our reg
 * subscriptions -> pcscf_regevent.c (§5.2.4); everything else -> pcscf_route.c (§5.2.6, §5.2.7).
 *
 * Metrics: pcscf_bindings (gauge), pcscf_requests_total{method}, pcscf_register_total{result}
 * (result: registered, deregistered, query, challenged, rejected, timeout, bad_request,
 * forbidden, sec_agree, error).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sip_tag.h>

#include "ims_clock.h"
#include "ims_log.h"
#include "pcscf_bindsync.h"
#include "pcscf_context.h"
#include "pcscf_ipsec.h"
#include "pcscf_util.h"

#define SUBSYS "pcscf"
#define HOUSEKEEPING_MS 1000

pcscf_context pcscf_ctx;

/* ---------- metrics ---------- */

static const char *const methods[] = {
    "REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "SUBSCRIBE", "NOTIFY", "MESSAGE", "PRACK",
    "UPDATE", "INFO", "REFER", "PUBLISH", "other", NULL,
};
static ims_metric *m_requests[sizeof(methods) / sizeof(methods[0])];

static const char *const results[] = {
    "registered", "deregistered", "query", "challenged", "rejected", "timeout", "bad_request", "forbidden",
    "sec_agree", "error", NULL,
};
static ims_metric *m_register[sizeof(results) / sizeof(results[0])];

static void metrics_init(pcscf_context *ctx)
{
    char name[128];
    for (size_t i = 0; methods[i]; i++) {
        snprintf(name, sizeof(name), "pcscf_requests_total{method=\"%s\"}", methods[i]);
        m_requests[i] = ims_metric_counter(name, "SIP requests received that started a transaction, by method");
    }
    for (size_t i = 0; results[i]; i++) {
        snprintf(name, sizeof(name), "pcscf_register_total{result=\"%s\"}", results[i]);
        m_register[i] = ims_metric_counter(name, "REGISTER transactions from UEs, by outcome");
    }
    ctx->m_bindings = ims_metric_gauge("pcscf_bindings", "registration bindings (UE, public identity) stored");
}

void pcscf_count_request(const char *method)
{
    size_t i;
    for (i = 0; methods[i + 1]; i++)
        if (method && strcmp(method, methods[i]) == 0)
            break;
    if (m_requests[i])
        ims_metric_inc(m_requests[i]);
}

void pcscf_count_register(const char *result)
{
    for (size_t i = 0; results[i]; i++) {
        if (strcmp(result, results[i]) == 0) {
            if (m_register[i])
                ims_metric_inc(m_register[i]);
            return;
        }
    }
}

/* ---------- dispatch ---------- */

/* sec-agree on: requests that came over an SA set and the others */
static void count_protection(bool prot)
{
    static ims_metric *m_prot, *m_plain;
    if (!m_prot) {
        m_prot = ims_metric_counter("pcscf_requests_protected_total", "requests that arrived over an IPsec SA set");
        m_plain = ims_metric_counter("pcscf_requests_unprotected_total", "requests that arrived in clear (sec_agree on)");
    }
    ims_metric_inc(prot ? m_prot : m_plain);
}

void pcscf_count_arrival(pcscf_context *ctx, const sip_t *sip, bool protected_req)
{
    pcscf_count_request(sip->sip_request->rq_method_name);
    if (ctx->ipsec)
        count_protection(protected_req);
}

static bool take_stateless(void *arg, msg_t *msg, sip_t *sip)
{
    return pcscf_route_stateless(arg, msg, sip);
}

int pcscf_on_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    pcscf_context *ctx = arg;
    if (!sip || !sip->sip_request)
        return 400;
    pcscf_count_request(sip->sip_request->rq_method_name);
    if (ctx->stopping)
        return 503;
    /* bindings not loaded yet (pcscf_bindsync.h): a request now would find no registration */
    if (pcscf_bindsync_loading(ctx)) {
        if (sip->sip_request->rq_method == sip_method_ack)
            return 1;
        nta_incoming_treply(irq, 503, "Service Unavailable - Loading Registrations", SIPTAG_RETRY_AFTER_STR("2"),
                            TAG_END());
        nta_incoming_destroy(irq);
        return 0;
    }
    if (ctx->ipsec) {
        pcscf_addr src;
        bool prot = false;
        if (pcscf_ue_source(ctx, irq, &src, &prot) == 0)
            count_protection(prot);
    }
    if (sip->sip_request->rq_method == sip_method_register)
        return pcscf_register_handle(ctx, irq, sip);
    if (pcscf_regevent_is_ours(ctx, sip))
        return pcscf_regevent_notify(ctx, irq, sip);
    return pcscf_route_handle(ctx, irq, sip);   /* NOTIFYs for UEs too */
}

/* ---------- housekeeping ---------- */

static void on_binding_removed(void *arg, const char *impu, const pcscf_addr *source)
{
    pcscf_context *ctx = arg;
    IMS_INFO(SUBSYS, "binding of %s from %s:%u/%s removed", impu, source->host, source->port, source->transport);
    if (!ctx->stopping && !pcscf_bindings_has_impu(ctx->bindings, impu))
        pcscf_regevent_forget(ctx, impu);
    if (!ctx->stopping)
        pcscf_ipsec_flow_gone(ctx, source);
    if (!ctx->stopping && !pcscf_bindings_by_flow(ctx->bindings, source, NULL))
        pcscf_media_flow_gone(ctx, source);   /* its calls' media goes with its last binding */
}

static void housekeeping(void *arg)
{
    pcscf_context *ctx = arg;
    ctx->housekeeping = NULL;   /* fired: freed by ims_sip */
    int64_t now = ims_monotonic_s();
    size_t n = pcscf_bindings_expire(ctx->bindings, now);
    if (n)
        IMS_DEBUG(SUBSYS, "%zu binding(s) expired", n);
    pcscf_register_sweep(ctx, now, 120);
    pcscf_ipsec_sweep(ctx, now);
    pcscf_media_tick(ctx);
    ims_metric_set(ctx->m_bindings, (int64_t)pcscf_bindings_count(ctx->bindings));
    if (!ctx->stopping)
        ctx->housekeeping = ims_sip_timer_start(ctx->sip, HOUSEKEEPING_MS, housekeeping, ctx);
}

static void mark_running(void *arg)
{
    pcscf_context *ctx = arg;
    atomic_store(&ctx->running, true);
}

/* "sip:host:port" -> "<sip:USER@host:port;lr PARAMS>" (USER NULL: none; PARAMS e.g.
 * ";transport=tcp", may be ""). */
static int our_uri(char *out, size_t len, const char *self, const char *user, const char *params)
{
    const char *rest = strncasecmp(self, "sip:", 4) == 0 ? self + 4 : self;
    int n = snprintf(out, len, "<sip:%s%s%s;lr%s>", user ? user : "", user ? "@" : "", rest, params);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int pcscf_start(pcscf_context *ctx, char *err, size_t errlen)
{
    int rv = -1;
    ctx->home = su_home_new(sizeof(su_home_t));
    if (!ctx->home) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    url_t *icscf = url_make(ctx->home, ctx->cfg.pcscf.icscf);
    ctx->icscf_url = icscf ? ims_sip_core_hop(ctx->sip, ctx->home, icscf) : NULL;
    if (!ctx->icscf_url) {
        snprintf(err, errlen, "pcscf.icscf: '%s' is not a SIP URI", ctx->cfg.pcscf.icscf);
        goto out;
    }
    const char *self = ims_sip_self_uri(ctx->sip);
    snprintf(ctx->self_uri, sizeof(ctx->self_uri), "%s", self ? self : "");
    /* Path and the core-facing Record-Route name the core transport; the Record-Route a UE
     * routes by does not (pcscf_route.c: two Record-Routes when they differ, RFC 5658) */
    const char *core = ims_sip_core_param(ctx->sip);
    ctx->rr_core_uri[0] = '\0';
    if (!self || our_uri(ctx->path_uri, sizeof(ctx->path_uri), self, PCSCF_TERM_USER, core) ||
        our_uri(ctx->rr_uri, sizeof(ctx->rr_uri), self, NULL, "") ||
        (*core && our_uri(ctx->rr_core_uri, sizeof(ctx->rr_core_uri), self, NULL, core))) {
        snprintf(err, errlen, "cannot build our SIP URIs");
        goto out;
    }
    if (pcscf_dialog_start(ctx, err, errlen))
        goto out;
    ctx->bindings = pcscf_bindings_new(on_binding_removed, ctx);
    if (!ctx->bindings) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    metrics_init(ctx);
    ims_metric_set(ctx->m_bindings, 0);
    ctx->housekeeping = ims_sip_timer_start(ctx->sip, HOUSEKEEPING_MS, housekeeping, ctx);
    if (!ctx->housekeeping || ims_sip_defer(ctx->sip, mark_running, ctx)) {
        snprintf(err, errlen, "cannot start timers on the SIP loop");
        goto out;
    }
    /* a UE's BYE over UDP leaves no transaction behind (pcscf_route_stateless, issue 16) */
    if (ims_sip_set_stateless_intake(ctx->sip, take_stateless, ctx)) {
        snprintf(err, errlen, "no random bytes for the stateless branch key (getrandom)");
        goto out;
    }
    if (pcscf_ipsec_start(ctx, err, errlen))
        goto out;
    if (pcscf_media_start(ctx, err, errlen))
        goto out;
    if (pcscf_bindsync_start(ctx, err, errlen))
        goto out;
    if (ctx->cfg.store.backend == IMS_STATE_REDIS && ctx->ipsec)
        IMS_WARN(SUBSYS, "bindings over IPsec SA sets are not kept in the store: those UEs register again after a "
                 "restart");
    rv = 0;
out:
    return rv;
}

void pcscf_stop(pcscf_context *ctx)
{
    ctx->stopping = true;
    atomic_store(&ctx->running, false);
    ims_sip_timer_cancel(ctx->housekeeping);
    ctx->housekeeping = NULL;
    pcscf_bindsync_stop(ctx);             /* the records stay for the next start */
    pcscf_regevent_fini(ctx);
    pcscf_register_sweep(ctx, 0, -1);
    pcscf_media_stop(ctx);                /* every leg deleted at rtpengine */
    pcscf_ipsec_stop(ctx);                /* every SA set deleted */
    pcscf_bindings_free(ctx->bindings);   /* no callbacks */
    ctx->bindings = NULL;
    if (ctx->home)
        su_home_unref(ctx->home);
    ctx->home = NULL;
    ctx->icscf_url = NULL;
}
