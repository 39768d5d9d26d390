/*
 * icscf_sip: the I-CSCF on its SIP loop — start/stop, request dispatch, metrics, readiness.
 *
 * Dispatch (TS 24.229 §5.3): REGISTER -> icscf_register.c (§5.3.1), everything else ->
 * icscf_route.c (§5.3.2: initial requests to home users; everything else is refused).
 *
 * Entry checks (RFC 3325 §5, TS 24.229 §4.4 and §5.3; README "Security model"): the source
 * address is looked up in the trust domain (ims_trust). A REGISTER from outside it is refused
 * (403) unless icscf.register_from_untrusted; from outside, trust-domain headers
 * (icscf_strip_untrusted) are removed from whatever is forwarded. The I-CSCF forwards only to
 * a home S-CSCF (the HSS's Server-Name, or icscf.scscfs): requests for other domains, To-tagged
 * requests and foreign Route sets are refused (icscf_route.c), counted in
 * icscf_refused_total{reason} and warned about (one line a second at most).
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
 *   icscf_refused_total{reason}       requests refused by role: in_dialog (To-tagged or ACK),
 *                                     foreign_domain, foreign_route, untrusted_register
 *   icscf_untrusted_headers_removed_total  trust-domain headers removed from outside requests
 *   icscf_cx_requests_total, icscf_cx_latency_seconds   (ims_cx_client)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <sofia-sip/url.h>

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

/* ---------- trust (RFC 3325, TS 24.229 §4.4, §5.3) ---------- */

bool icscf_from_trusted(const icscf_context *ctx, nta_incoming_t *irq)
{
    su_sockaddr_t src;
    return ims_trust_source(irq, &src, NULL, 0) == 0 && ims_trust_is_trusted(ctx->trust, &src);
}

/* Headers only the trust domain may set (RFC 3325 §5; RFC 5502 P-Served-User; RFC 7315 §4.5-§4.6
 * charging; RFC 5002 P-Profile-Key; RFC 6050 P-Asserted-Service). */
static const char *const trust_headers[] = {
    "P-Asserted-Identity", "P-Asserted-Service", "P-Charging-Vector", "P-Charging-Function-Addresses",
    "P-Served-User", "P-Profile-Key", NULL,
};

int icscf_strip_untrusted(msg_t *msg, sip_t *sip)
{
    int n = 0;
    for (size_t i = 0; trust_headers[i]; i++)
        n += ims_sip_remove_headers(msg, sip, trust_headers[i]);
    /* RFC 7315 §4.3: meaningful on REGISTER only, where the visited P-CSCF sets it (roaming). */
    if (sip->sip_request && sip->sip_request->rq_method != sip_method_register)
        n += ims_sip_remove_headers(msg, sip, "P-Visited-Network-ID");
    /* TS 24.229 §5.2.2.1: integrity-protected is the mark of our P-CSCF (the S-CSCF may then skip
     * the challenge, scscf.reauth_protected): from outside it means nothing */
    for (sip_authorization_t *au = sip->sip_authorization; au; au = au->au_next)
        if (msg_header_find_param((msg_common_t *)au, "integrity-protected") &&
            msg_header_remove_param((msg_common_t *)au, "integrity-protected") >= 0)
            n++;
    if (n > 0) {
        ims_metric *m = ims_metric_counter("icscf_untrusted_headers_removed_total",
                                           "trust-domain headers (P-Asserted-Identity, P-Charging-* ...) removed "
                                           "from requests received from outside the trust domain");
        for (int i = 0; i < n; i++)
            ims_metric_inc(m);
    }
    return n;
}

bool icscf_is_home_scscf(const icscf_context *ctx, const url_t *u)
{
    if (!u || (u->url_type != url_sip && u->url_type != url_sips) || !u->url_host)
        return false;
    bool found = false;
    su_home_t home[1] = { SU_HOME_INIT(home) };
    for (size_t i = 0; i < ctx->n_pool && !found; i++) {
        url_t *p = url_make(home, ctx->pool[i].name);
        found = p && p->url_host && strcasecmp(p->url_host, u->url_host) == 0 &&
                strcmp(url_port(p), url_port(u)) == 0;
    }
    su_home_deinit(home);
    return found;
}

int icscf_refuse(icscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, const char *reason, int status,
                 const char *phrase)
{
    char name[128];
    snprintf(name, sizeof(name), "icscf_refused_total{reason=\"%s\"}", reason);
    ims_metric_inc(ims_metric_counter(name, "requests the I-CSCF refused because its role does not allow them "
                                            "(TS 24.229 5.3), by reason"));
    bool ack = sip->sip_request->rq_method == sip_method_ack;

    /* One warning a second at most: a stranger may send floods. */
    unsigned long skipped;
    if (ims_log_allow(&ctx->refused_log, &skipped)) {
        su_sockaddr_t src;
        char from[INET6_ADDRSTRLEN + 16] = "?";
        if (ims_trust_source(irq, &src, from, sizeof(from)) == 0 && ims_trust_is_trusted(ctx->trust, &src))
            snprintf(from + strlen(from), sizeof(from) - strlen(from), " (trusted)");
        char target[300] = "";
        url_e(target, sizeof(target), sip->sip_request->rq_url);
        target[sizeof(target) - 1] = '\0';
        IMS_WARN(SUBSYS, "refused %s %s from %s: %s (%s, %s); %lu more refused since the last warning",
                 sip->sip_request->rq_method_name, target, from, ack ? "dropped" : phrase, reason,
                 strcmp(reason, "untrusted_register") == 0
                     ? "add the P-CSCF to trust.peers/trust.cidrs, or set icscf.register_from_untrusted"
                     : "the I-CSCF forwards only initial requests for icscf.home_domains, to a home S-CSCF",
                 skipped);
    }
    if (ack)
        return 403;   /* nta drops it: an ACK is never answered */
    nta_incoming_treply(irq, status, phrase, TAG_END());
    nta_incoming_destroy(irq);
    return 0;
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
    ims_metric_counter("icscf_untrusted_headers_removed_total",
                       "trust-domain headers (P-Asserted-Identity, P-Charging-* ...) removed from requests received "
                       "from outside the trust domain");
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
    bool trusted = icscf_from_trusted(ctx, irq);
    if (sip->sip_request->rq_method == sip_method_register) {
        /* TS 24.229 §5.3.1: REGISTERs come from P-CSCFs; ours are in the trust domain, a visited
         * network's must be listed there too unless icscf.register_from_untrusted (README). */
        if (!trusted && !ctx->cfg.icscf.register_from_untrusted)
            return icscf_refuse(ctx, irq, sip, "untrusted_register", 403, "Forbidden - Not From A Trusted P-CSCF");
        return icscf_register_handle(ctx, irq, sip, trusted);
    }
    return icscf_route_handle(ctx, irq, sip, trusted);
}
