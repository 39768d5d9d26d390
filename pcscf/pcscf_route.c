/*
 * pcscf_route: every request that is not a REGISTER from the UE nor a NOTIFY of our own reg
 * subscriptions.
 *
 * References:
 *  - TS 24.229 §5.2.6.3 (initial requests from the UE): the UE must be registered (else 403);
 *    the P-CSCF checks the preloaded route against the Service-Route and, when they differ,
 *    replaces it with the Service-Route (the option this code always takes: the route after us
 *    is always exactly the stored Service-Route); inserts P-Asserted-Identity (the
 *    P-Preferred-Identity when it is one of the registered identities, else the default public
 *    identity) and removes P-Preferred-Identity; adds P-Charging-Vector; Record-Routes itself.
 *  - TS 24.229 §5.2.6.4 / §5.2.7 (requests towards the UE and in-dialog requests): the P-CSCF
 *    forwards to the UE's contact, using the address the UE registered from (NAT, TCP connection
 *    reuse: RFC 3261 §18.2.2, RFC 3581).
 *  - RFC 3261 §22 (credentials): a UE's Authorization / Proxy-Authorization for the home realm on
 *    a non-REGISTER request (softphones attach their cached REGISTER credentials to INVITE and
 *    MESSAGE) is removed before the request leaves us: it would carry the caller's private
 *    identity and digest response to the callee. The home realms are pcscf.home_domains and the
 *    domain of the registered identity. Other realms' credentials stay (§22.3).
 *  - RFC 3261 §16.4-§16.6 (Route processing, loose routing), RFC 3327 (our Path URI carries the
 *    user part "term": a request routed to it comes from the core for a UE), RFC 3325 / 7315
 *    (P-Asserted-Identity, P-Preferred-Identity).
 *
 *  - TS 24.229 §5.2.2.1 / §5.2.3 (identity binding without IPsec or TLS): a UE is its exact flow,
 *    the UDP source address and port it registered from or the TCP connection it registered over
 *    (pcscf_bindings_by_flow). A request from any other flow is not that UE's, whatever its From
 *    or P-Preferred-Identity say: an initial request from an unregistered flow gets 403.
 *  - No bypass of the S-CSCF (issue 10, TS 24.229 §5.2.6.3, §5.2.7; RFC 3261 §16.12): a request
 *    "from a UE" (its flow holds a registration, or its source is outside the trust domain,
 *    ims_trust_is_trusted) may not carry a Route to our Path URI (`term`: only the core routes
 *    requests towards UEs) -> 403; an in-dialog request (To-tag) from a UE is relayed only when its
 *    top Route is our own Record-Route URI with the token we gave that dialog for that UE's
 *    address (pcscf_dialog.c), i.e. along a route set we inserted for it -> else 403
 *    (dialog_route), and only when the hop after us is the core: its S-CSCF or the trust domain
 *    -> else 403 (dialog_relay). Never towards whatever its Request-URI names: that was an open
 *    relay. Requests from the
 *    trust domain (terminating via Path, in-dialog from the core) are routed as before. Each
 *    refusal is counted in pcscf_refused_total{reason} and logged as a WARN (one a second at
 *    most) naming the source flow and the identity it used.
 *
 * Stateless BYE (issue 16): a UE's BYE in a dialog over UDP goes through pcscf_route_stateless
 * instead, with the same checks, and leaves without a server transaction (ims_sip_stateless.c;
 * RFC 3261 §16.11): nta would keep it with its 200 for Timer J, 32 s. Anything unusual (over
 * TCP, from the core, no Route after ours, while bindings load) takes the stateful way.
 *
 * Media: every request leaves through pcscf_media_forward (pcscf_media.c: rtpengine offer/answer
 * of its SDP and of its responses' when pcscf.media.anchor is on), after the checks above.
 *
 * Not yet here (next issue): Rx, P-Called-Party-ID, Privacy,
 * separate Record-Route per direction, terminating routing by Path for UEs that use GRUU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/url.h>

#include "ims_clock.h"
#include "ims_log.h"
#include "pcscf_bindsync.h"
#include "pcscf_context.h"
#include "pcscf_ipsec.h"
#include "pcscf_secagree.h"
#include "pcscf_util.h"

#define SUBSYS "pcscf.route"

static const char *const untrusted_from_ue[] = {
    "P-Asserted-Identity", "P-Charging-Vector", "P-Charging-Function-Addresses", "P-Served-User",
    "P-Profile-Key", "P-Visited-Network-ID", NULL,
};

/* RFC 3261 §22: the home realm's credentials of a UE request go (file header). b: the UE's
 * binding. Every header removed is logged with the realm, nothing of the credentials. */
static void strip_home_credentials(pcscf_context *ctx, msg_t *msg, sip_t *sip, const pcscf_binding *b)
{
    int n = 0;
    const char *realm = "";
    const ims_cfg_strlist *hd = &ctx->cfg.pcscf.home_domains;
    for (size_t i = 0; i < hd->count; i++) {
        int k = ims_sip_remove_credentials(msg, sip, hd->items[i]);
        if (k > 0)
            realm = hd->items[i];
        n += k;
    }
    /* the domain of the registered identity (sip:user@domain; a tel: IMPU has none) */
    const char *at = b && b->impu ? strrchr(b->impu, '@') : NULL;
    if (at && at[1]) {
        int k = ims_sip_remove_credentials(msg, sip, at + 1);
        if (k > 0)
            realm = at + 1;
        n += k;
    }
    if (n > 0)
        IMS_DEBUG(SUBSYS, "%s from %s: %d credential header(s) for home realm %s removed",
                  sip->sip_request->rq_method_name, b && b->impu ? b->impu : "?", n, realm);
}

/* ---------- refusals ---------- */

/* pcscf_refused_total{reason}: reasons (bounded set) */
#define REFUSED_NOT_REGISTERED "not_registered"   /* initial request, flow holds no registration */
#define REFUSED_OTHER_FLOW "other_flow"           /* ... and its identity is registered over another flow */
#define REFUSED_TERM_ROUTE "term_route"           /* UE request routed to our Path (term) URI */
#define REFUSED_DIALOG_ROUTE "dialog_route"       /* UE in-dialog request not along our Record-Route */
#define REFUSED_FOREIGN_CONTACT "foreign_contact"  /* UE SUBSCRIBE whose Contact is not the UE */
#define REFUSED_DIALOG_RELAY "dialog_relay"     /* ... along it, but on to a hop outside the core */
#define REFUSED_UNPROTECTED "unprotected"       /* in clear from a UE that has IPsec SAs (sec-agree) */

/* The identity a request claims: its P-Preferred-Identity, else its From URI (normalised; raw
 * when it does not normalise), "-" when none. */
static void claimed_identity(const sip_t *sip, char *out, size_t len);

/* Counts a refusal; logs it as a WARN at most once a second per reason (a flood must not fill the
 * log: the number left out is given with the next one), or as INFO when `warn` is false.
 * registered_as: the identity the request's flow is registered with (NULL: none). */
static void count_refusal(const sip_t *sip, const pcscf_addr *src, const char *reason, const char *registered_as,
                          bool warn)
{
    char name[96], ident[512];
    snprintf(name, sizeof(name), "pcscf_refused_total{reason=\"%s\"}", reason);
    ims_metric *m = ims_metric_counter(name, "requests refused by the P-CSCF's identity and routing checks "
                                             "(issue 10), by reason");
    if (m)
        ims_metric_inc(m);
    claimed_identity(sip, ident, sizeof(ident));
    const char *method = sip->sip_request->rq_method_name;
    if (!warn) {
        IMS_INFO(SUBSYS, "%s from %s:%u/%s as %s refused (%s)", method, src->host, src->port, src->transport,
                 ident, reason);
        return;
    }
    /* rate limit per reason (the set is fixed: the last slot takes any other) */
    static const char *const reasons[] = { REFUSED_OTHER_FLOW, REFUSED_TERM_ROUTE, REFUSED_DIALOG_ROUTE,
                                           REFUSED_FOREIGN_CONTACT, REFUSED_DIALOG_RELAY, REFUSED_UNPROTECTED,
                                           NULL };
    static ims_log_limit limit[7];
    size_t r = 0;
    while (reasons[r] && strcmp(reasons[r], reason))
        r++;
    unsigned long unlogged;
    if (!ims_log_allow(&limit[r], &unlogged))
        return;
    IMS_WARN(SUBSYS, "%s from %s:%u/%s as %s%s%s refused: %s%s (%lu similar refusal(s) not logged)", method,
             src->host, src->port, src->transport, ident, registered_as ? ", flow registered as " : "",
             registered_as ? registered_as : "", reason,
             strcmp(reason, REFUSED_OTHER_FLOW) == 0 ? " (identity registered over another flow: address "
                                                       "and port / TCP connection must be the registered one)"
             : strcmp(reason, REFUSED_TERM_ROUTE) == 0 ? " (Route to our Path URI: only the core may use it)"
             : strcmp(reason, REFUSED_FOREIGN_CONTACT) == 0
                 ? " (SUBSCRIBE Contact is neither a registered contact nor the flow: NOTIFYs would go elsewhere)"
             : strcmp(reason, REFUSED_DIALOG_RELAY) == 0
                 ? " (in-dialog request routed on to a host that is neither its S-CSCF nor in the trust domain)"
             : strcmp(reason, REFUSED_UNPROTECTED) == 0
                 ? " (the UE has IPsec SAs: its requests must come over them, TS 33.203 7)"
                 : " (in-dialog request not along a Record-Route we inserted for this UE: URI or token wrong)",
             unlogged);
}

static void claimed_identity(const sip_t *sip, char *out, size_t len)
{
    char v[1024], uri[512];
    snprintf(out, len, "-");
    if (ims_sip_header(sip, "P-Preferred-Identity", v, sizeof(v)) && pcscf_addr_uri(v, uri, sizeof(uri)) == 0) {
        if (pcscf_identity(uri, out, len))
            snprintf(out, len, "%s", uri);
        return;
    }
    if (!sip->sip_from)
        return;
    su_home_t home[1] = { SU_HOME_INIT(home) };
    char *f = url_as_string(home, sip->sip_from->a_url);
    if (f && pcscf_identity(f, out, len))
        snprintf(out, len, "%s", f);
    su_home_deinit(home);
}

/* Answers a refused request (an ACK is dropped: non-zero return). */
static int refuse(nta_incoming_t *irq, const sip_t *sip, int status, const char *phrase)
{
    if (sip->sip_request->rq_method == sip_method_ack)
        return status;
    pcscf_reply(irq, status, phrase);
    return 0;
}

static void count_holder(void *arg, const pcscf_binding *b)
{
    (void)b;
    (*(int *)arg)++;
}

static bool dialog_forming(sip_method_t m)
{
    return m != sip_method_register && m != sip_method_cancel && m != sip_method_ack;
}

/* sip:host:port;transport=x of where the UE sends from. */
static url_t *ue_next_hop(su_home_t *home, const pcscf_binding *b)
{
    char s[160];
    bool v6 = strchr(b->source.host, ':') != NULL;
    snprintf(s, sizeof(s), "sip:%s%s%s:%u;transport=%s", v6 ? "[" : "", b->source.host, v6 ? "]" : "",
             b->source.port, b->source.transport);
    return url_make(home, s);
}

/* Whether the flow the UE registered from may carry a request for `ruri` (a registered contact of
 * b, matched on scheme, user, host and port). TS 24.229 §5.2.6.4 / RFC 5626 §5.3 (NAT, TCP
 * connection reuse) send to the registered flow, but RFC 3263 §4.1 / RFC 3261 §18.1.1 make a
 * transport parameter in the Request-URI binding: a dialog target sip:ue@host:port;transport=tcp
 * of a UE registered over UDP must be reached over TCP, not over its UDP flow (issue 10). So the
 * flow serves a Request-URI without transport parameter or with the flow's own transport; any
 * other goes to the Request-URI itself (RFC 3263 through nta). */
static bool flow_serves(const url_t *ruri, const pcscf_binding *b)
{
    if (strcmp(b->source.transport, PCSCF_FLOW_SA) == 0)
        return true;   /* a sec-agree UE is reached over its SAs only, whatever the URI says */
    char t[16];
    isize_t n = url_param(ruri->url_params, "transport", t, sizeof(t));
    if (n <= 1)             /* absent (0) or without a value (1) */
        return true;
    return (size_t)n <= sizeof(t) && strcasecmp(t, b->source.transport) == 0;
}

/* Our Record-Route for a dialog of the UE at ue_host: the UE-side URI with its token
 * (pcscf_dialog.c) and, when sip.core_transport differs from what a UE uses, a core-side URI with
 * ;transport=tcp next to it (RFC 5658 double Record-Route: each side routes to us by its own
 * transport, and both are popped as ours). Towards the core (to_core, originating) the core-side
 * entry is on top, towards the UE the UE-side one: each side sees its own first. 0 / -1. */
static int record_route(pcscf_context *ctx, msg_t *msg, sip_t *fw, const char *ue_host, bool to_core)
{
    char rr[400];
    if (pcscf_dialog_record_route(ctx, fw, ue_host, rr, sizeof(rr)))
        return -1;
    if (!ctx->rr_core_uri[0])
        return ims_sip_prepend_header(msg, fw, "Record-Route", rr);
    const char *first = to_core ? rr : ctx->rr_core_uri, *second = to_core ? ctx->rr_core_uri : rr;
    return ims_sip_prepend_header(msg, fw, "Record-Route", first) || ims_sip_prepend_header(msg, fw, "Record-Route", second)
               ? -1 : 0;
}

/* Terminating and in-dialog requests: when no Route is left after us and the Request-URI is a
 * registered contact, to the address the UE registered from (unless the Request-URI names another
 * transport: flow_serves); otherwise on by RFC 3261 / RFC 3263 rules. */
static int onward(pcscf_context *ctx, nta_incoming_t *irq, msg_t *msg, sip_t *fw, bool initial, const pcscf_addr *ue_src)
{
    /* media anchoring (pcscf_media.c) of a request from a UE: its flow; towards a UE: b's */
    pcscf_media_side from_ue = { .to_ue = false, .ue = ue_src };
    const pcscf_media_send loose = { .onward = true };
    while (fw->sip_route && ims_sip_is_self(ctx->sip, fw->sip_route->r_url))
        pcscf_pop_route(msg, fw);   /* ours: one, or both of a double Record-Route */
    if (fw->sip_route)   /* more hops: loose routing */
        return pcscf_media_forward(ctx, irq, msg, ue_src ? &from_ue : NULL, &loose);

    su_home_t *home = msg_home(msg);
    char *ruri = url_as_string(home, fw->sip_request->rq_url);
    const pcscf_binding *b = ruri ? pcscf_bindings_by_contact(ctx->bindings, ruri, ims_monotonic_s()) : NULL;
    if (!b) {
        if (!initial)
            return pcscf_media_forward(ctx, irq, msg, ue_src ? &from_ue : NULL, &loose);
        IMS_INFO(SUBSYS, "%s for %s: no such registered contact", fw->sip_request->rq_method_name,
                 ruri ? ruri : "?");
        msg_destroy(msg);
        pcscf_reply(irq, 480, "Temporarily Unavailable - Not Registered");
        return 0;
    }
    if (initial && dialog_forming(fw->sip_request->rq_method) && record_route(ctx, msg, fw, b->source.host, false)) {
        msg_destroy(msg);
        return 500;
    }
    pcscf_media_side to_ue = { .to_ue = true, .ue = &b->source };
    const pcscf_media_side *side = ue_src ? &from_ue : &to_ue;
    if (!flow_serves(fw->sip_request->rq_url, b)) {
        /* NULL next hop: the Request-URI, its transport parameter honoured (RFC 3263 §4.1) */
        IMS_DEBUG(SUBSYS, "%s %s -> UE by its Request-URI (registered over %s:%u/%s)",
                  fw->sip_request->rq_method_name, ruri, b->source.host, b->source.port, b->source.transport);
        return pcscf_media_forward(ctx, irq, msg, side, &(pcscf_media_send){ .next_hop = NULL });
    }
    url_t *next_hop = NULL;
    const char *ident = NULL;
    if (strcmp(b->source.transport, PCSCF_FLOW_SA) == 0) {
        /* from our port-c to its port-s, over its SA set (TS 33.203 §7.1) */
        if (pcscf_ipsec_next_hop(ctx, &b->source, home, &next_hop, &ident)) {
            msg_destroy(msg);
            pcscf_reply(irq, 480, "Temporarily Unavailable - No Security Association");
            return 0;
        }
    } else {
        next_hop = ue_next_hop(home, b);
    }
    if (!next_hop) {
        msg_destroy(msg);
        return 500;
    }
    IMS_DEBUG(SUBSYS, "%s %s -> UE %s:%u/%s", fw->sip_request->rq_method_name, ruri, b->source.host,
              b->source.port, b->source.transport);
    return pcscf_media_forward(ctx, irq, msg, side, &(pcscf_media_send){ .next_hop = next_hop, .ident = ident });
}

/* First URI of P-Preferred-Identity, normalised. */
static bool preferred_identity(const sip_t *sip, char *out, size_t len)
{
    char v[1024], uri[512];
    return ims_sip_header(sip, "P-Preferred-Identity", v, sizeof(v)) && pcscf_addr_uri(v, uri, sizeof(uri)) == 0 &&
           pcscf_identity(uri, out, len) == 0;
}

/* Initial request from a UE (TS 24.229 §5.2.6.3). */
static bool same_hostport(const url_t *u, const char *host, unsigned port)
{
    if (!u || !u->url_host || !host)
        return false;
    unsigned up = u->url_port && *u->url_port ? (unsigned)strtoul(u->url_port, NULL, 10) : 5060;
    size_t hl = strlen(u->url_host);
    const char *h = u->url_host;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')       /* [v6] */
        return up == port && strlen(host) == hl - 2 && strncasecmp(h + 1, host, hl - 2) == 0;
    return up == port && strcasecmp(h, host) == 0;
}

/* A SUBSCRIBE from a UE sets the target of every NOTIFY of its dialog: it must be the UE itself,
 * the host:port of one of its registered contacts or of its flow. Otherwise a UE could subscribe
 * (to its own reg event) with a victim's Contact and have the core send NOTIFYs there:
 * reflection with amplification (issue 10). */
static bool contact_is_the_ue(const sip_t *sip, const pcscf_binding *b)
{
    if (!sip->sip_contact)
        return false;
    const url_t *c = sip->sip_contact->m_url;
    if (same_hostport(c, b->source.host, b->source.port))
        return true;
    su_home_t home[1] = { SU_HOME_INIT(home) };
    bool ok = false;
    for (size_t i = 0; i < b->n_contacts && !ok; i++) {
        url_t *r = url_make(home, b->contacts[i].uri);
        ok = r && r->url_host && same_hostport(c, r->url_host,
                                               r->url_port && *r->url_port ? (unsigned)strtoul(r->url_port, NULL, 10) : 5060);
    }
    su_home_deinit(home);
    return ok;
}

static int originating(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    int status = 0;
    const char *phrase = NULL;
    msg_t *msg = NULL;
    pcscf_addr src;
    char ppi[512] = "", from[512] = "";

    if (pcscf_ue_source(ctx, irq, &src, NULL)) {
        status = 500;
        goto out;
    }
    bool has_ppi = preferred_identity(sip, ppi, sizeof(ppi));
    if (sip->sip_from) {
        su_home_t *home = su_home_new(sizeof(su_home_t));
        char *f = home ? url_as_string(home, sip->sip_from->a_url) : NULL;
        if (!f || pcscf_identity(f, from, sizeof(from)))
            from[0] = '\0';
        if (home)
            su_home_unref(home);
    }
    /* the exact flow (TS 24.229 §5.2.3): identity = where it comes from, not what it says */
    const pcscf_binding *b = pcscf_bindings_by_flow(ctx->bindings, &src, has_ppi ? ppi : from[0] ? from : NULL);
    if (!b && has_ppi && from[0])
        b = pcscf_bindings_by_flow(ctx->bindings, &src, from);
    if (!b) {
        /* someone else's identity (registered over another flow: same NAT address, another TCP
         * connection ...) is worth a warning; a UE that is simply not registered is not */
        int holders = 0;
        if (from[0])
            pcscf_bindings_foreach_identity(ctx->bindings, from, count_holder, &holders);
        if (has_ppi)
            pcscf_bindings_foreach_identity(ctx->bindings, ppi, count_holder, &holders);
        count_refusal(sip, &src, holders ? REFUSED_OTHER_FLOW : REFUSED_NOT_REGISTERED, NULL, holders > 0);
        status = 403;
        phrase = "Forbidden - Not Registered";
        goto out;
    }
    if (!b->n_service_route) {
        status = 403;
        phrase = "Forbidden - No Service-Route";
        goto out;
    }
    if (sip->sip_request->rq_method == sip_method_subscribe && !contact_is_the_ue(sip, b)) {
        count_refusal(sip, &src, REFUSED_FOREIGN_CONTACT, b->impu, true);
        status = 403;
        phrase = "Forbidden - Contact Is Not The UE";
        goto out;
    }
    const char *asserted = has_ppi && pcscf_binding_has_identity(b, ppi) ? ppi : pcscf_binding_default_identity(b);

    msg = ims_sip_request_copy(irq);
    sip_t *fw = msg ? sip_object(msg) : NULL;
    if (!fw) {
        status = 500;
        goto out;
    }
    for (size_t i = 0; untrusted_from_ue[i]; i++)
        ims_sip_remove_headers(msg, fw, untrusted_from_ue[i]);
    ims_sip_remove_headers(msg, fw, "P-Preferred-Identity");
    pcscf_secagree_strip(msg, fw);
    strip_home_credentials(ctx, msg, fw, b);

    /* Route = the Service-Route, whatever the UE preloaded after us. */
    if (fw->sip_route)
        msg_header_remove_all(msg, (msg_pub_t *)fw, (msg_header_t *)fw->sip_route);
    for (size_t i = 0; i < b->n_service_route; i++) {
        char r[600];
        snprintf(r, sizeof(r), "<%s>", b->service_route[i]);
        if (msg_header_add_make(msg, (msg_pub_t *)fw, sip_route_class, r) < 0) {
            status = 500;
            goto out;
        }
    }
    char v[600], icid[128];
    if (dialog_forming(fw->sip_request->rq_method) && record_route(ctx, msg, fw, src.host, true)) {
        status = 500;
        goto out;
    }
    snprintf(v, sizeof(v), "<%s>", asserted);
    ims_sip_new_icid(icid, sizeof(icid));
    if (ims_sip_add_header(msg, fw, "P-Asserted-Identity", v)) {
        status = 500;
        goto out;
    }
    snprintf(v, sizeof(v), "icid-value=\"%s\"", icid);
    if (ims_sip_add_header(msg, fw, "P-Charging-Vector", v)) {
        status = 500;
        goto out;
    }
    url_t *first = url_make(msg_home(msg), b->service_route[0]);
    url_t *next_hop = first ? ims_sip_next_hop(ctx->sip, msg_home(msg), first) : NULL;
    if (!next_hop) {
        status = 500;
        phrase = "Service-Route Unresolvable";
        goto out;
    }
    IMS_DEBUG(SUBSYS, "%s from %s as %s -> %s", fw->sip_request->rq_method_name, b->impu, asserted,
              b->service_route[0]);
    msg_t *m = msg;
    msg = NULL;
    pcscf_media_forward(ctx, irq, m, &(pcscf_media_side){ .to_ue = false, .ue = &src },
                        &(pcscf_media_send){ .next_hop = next_hop });
out:
    if (msg)
        msg_destroy(msg);
    if (status && phrase) {
        pcscf_reply(irq, status, phrase);
        status = 0;
    }
    return status;
}

/* The host and port of u equal those of the URI text `other` (ports: 5060 when absent). */
static bool same_host_as(const url_t *u, const char *other)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    url_t *o = url_make(home, other);
    char host[80] = "";
    if (o && o->url_host) {   /* same_hostport takes a bare address: "[v6]" loses its brackets */
        size_t n = strlen(o->url_host);
        bool v6 = n > 2 && o->url_host[0] == '[' && o->url_host[n - 1] == ']';
        snprintf(host, sizeof(host), "%.*s", (int)(v6 ? n - 2 : n), o->url_host + (v6 ? 1 : 0));
    }
    bool same = host[0] &&
                same_hostport(u, host, o->url_port && *o->url_port ? (unsigned)strtoul(o->url_port, NULL, 10) : 5060);
    su_home_deinit(home);
    return same;
}

/* The hop after our Record-Route in a UE's in-dialog request (the next Route, else the
 * Request-URI) is the core: the S-CSCF of the UE's Service-Route (same host and port: the S-CSCF
 * record-routes with the address of its Service-Route) or a host inside the trust domain
 * (ims_trust_host_is_trusted: trust.peers names, trusted addresses, sip.hosts). A UE that drops
 * the rest of the route set and names another target would otherwise have us relay its request
 * there (issue 10: no CSCF is a relay). */
static bool next_hop_is_core(pcscf_context *ctx, const sip_t *sip, const pcscf_binding *ue)
{
    const sip_route_t *r = sip->sip_route ? sip->sip_route->r_next : NULL;
    while (r && ims_sip_is_self(ctx->sip, r->r_url))   /* the other half of our double Record-Route */
        r = r->r_next;
    const url_t *next = r ? r->r_url : sip->sip_request->rq_url;
    if (!next || !next->url_host)
        return false;
    for (size_t i = 0; ue && i < ue->n_service_route; i++)
        if (same_host_as(next, ue->service_route[i]))
            return true;
    return ims_trust_host_is_trusted(ctx->trust, ctx->sip, next->url_host);
}

/* Requests for the P-CSCF itself (Request-URI = us without a user part, no Route). */
static int local(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    (void)ctx;
    switch (sip->sip_request->rq_method) {
    case sip_method_options:
        nta_incoming_treply(irq, SIP_200_OK, SIPTAG_ALLOW_STR("REGISTER, INVITE, ACK, BYE, CANCEL, OPTIONS, "
                            "SUBSCRIBE, NOTIFY, MESSAGE, PRACK, UPDATE, INFO, REFER"),
                            SIPTAG_SUPPORTED_STR("path"), TAG_END());
        nta_incoming_destroy(irq);
        return 0;
    case sip_method_notify:
    case sip_method_bye:
        return 481;
    case sip_method_ack:
        return 400;   /* non-zero: dropped, nothing is sent for an ACK */
    default:
        return 404;
    }
}

/* What the checks of a request that is not for us found (pcscf_route_handle, and
 * pcscf_route_stateless for a UE's BYE over UDP). */
typedef struct {
    bool in_dialog;             /* To-tag */
    bool top_self;              /* top Route is us */
    bool terminating;           /* ... our Path URI (`term`) */
    pcscf_addr src;             /* its flow (pcscf_ue_source) */
    su_sockaddr_t sa;           /* its source address */
    bool protected_req;         /* over the UE's SA set */
    const pcscf_binding *ue;    /* the registration of src, NULL: none */
    bool from_ue;               /* ue, or a source outside the trust domain */
} route_view;

static void view_of(pcscf_context *ctx, const sip_t *sip, route_view *v)
{
    const sip_route_t *top = sip->sip_route;
    memset(v, 0, sizeof(*v));
    v->in_dialog = sip->sip_to && sip->sip_to->a_tag;
    v->top_self = top && ims_sip_is_self(ctx->sip, top->r_url);
    v->terminating = v->top_self && top->r_url->url_user && strcmp(top->r_url->url_user, PCSCF_TERM_USER) == 0;
}

/* The file header's checks of who sent it (v->src, v->sa set): 0, or the status of the refusal
 * with *phrase (counted and logged). Sets v->ue and v->from_ue. */
static int check_source(pcscf_context *ctx, const sip_t *sip, route_view *v, const char **phrase)
{
    const sip_route_t *top = sip->sip_route;
    /* TS 33.203 §7: a UE with SAs sends over them; in clear it is not that UE (or a downgrade) */
    if (!v->protected_req && !ims_trust_is_trusted(ctx->trust, &v->sa) && pcscf_ipsec_host_protected(ctx, v->src.host)) {
        v->from_ue = true;
        count_refusal(sip, &v->src, REFUSED_UNPROTECTED, NULL, true);
        *phrase = "Forbidden - Unprotected Request";
        return 403;
    }
    /* From a UE: its flow holds a registration (in a one-host lab the UEs share the core's
     * address, so a registered flow wins over the trust domain), or it comes from outside the
     * trust domain. Everything else is a network element of ours. */
    v->ue = pcscf_bindings_by_flow(ctx->bindings, &v->src, NULL);
    v->from_ue = v->ue || !ims_trust_is_trusted(ctx->trust, &v->sa);
    const char *impu = v->ue ? v->ue->impu : NULL;
    if (v->from_ue && v->terminating) {
        count_refusal(sip, &v->src, REFUSED_TERM_ROUTE, impu, true);
        *phrase = "Forbidden - Route Not Allowed";
        return 403;
    }
    if (v->from_ue && v->in_dialog) {
        /* along a route set we inserted for this UE (its token), and on into the core only */
        if (!(v->top_self && (!top->r_url->url_user || !*top->r_url->url_user) &&
              pcscf_dialog_token_ok(ctx, top->r_url, sip, v->src.host))) {
            count_refusal(sip, &v->src, REFUSED_DIALOG_ROUTE, impu, true);
            *phrase = "Forbidden - Not Along Our Record-Route";
            return 403;
        }
        if (!next_hop_is_core(ctx, sip, v->ue)) {
            count_refusal(sip, &v->src, REFUSED_DIALOG_RELAY, impu, true);
            *phrase = "Forbidden - Next Hop Outside The Network";
            return 403;
        }
    }
    return 0;
}

/* In-dialog along our Record-Route (checked): what a UE may not assert and the sec-agree headers
 * go. */
static void strip_from_ue(pcscf_context *ctx, msg_t *msg, sip_t *fw, const pcscf_binding *ue)
{
    for (size_t i = 0; untrusted_from_ue[i]; i++)
        ims_sip_remove_headers(msg, fw, untrusted_from_ue[i]);
    pcscf_secagree_strip(msg, fw);
    strip_home_credentials(ctx, msg, fw, ue);
}

int pcscf_route_handle(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    const url_t *ruri = sip->sip_request->rq_url;
    route_view v;
    view_of(ctx, sip, &v);

    if (sip->sip_request->rq_method == sip_method_ack && !v.in_dialog)
        return 400;   /* non-zero: dropped (the ACK of a non-2xx never gets here) */
    if (!sip->sip_route && (!ruri->url_user || !*ruri->url_user) && ims_sip_is_self(ctx->sip, ruri))
        return local(ctx, irq, sip);

    if (pcscf_ue_source(ctx, irq, &v.src, &v.protected_req) || ims_trust_source(irq, &v.sa, NULL, 0))
        return 500;
    const char *phrase = NULL;
    int refused = check_source(ctx, sip, &v, &phrase);
    if (refused)
        return refuse(irq, sip, refused, phrase);

    if (v.terminating || v.in_dialog) {
        msg_t *msg = ims_sip_request_copy(irq);
        sip_t *fw = msg ? sip_object(msg) : NULL;
        if (!fw) {
            if (msg)
                msg_destroy(msg);
            return 500;
        }
        if (v.from_ue)
            strip_from_ue(ctx, msg, fw, v.ue);
        return onward(ctx, irq, msg, fw, !v.in_dialog, v.from_ue ? &v.src : NULL);
    }
    return originating(ctx, irq, sip);
}

bool pcscf_route_stateless(pcscf_context *ctx, msg_t *msg, sip_t *sip)
{
    if (sip->sip_request->rq_method != sip_method_bye || !sip->sip_to || !sip->sip_to->a_tag || ctx->stopping ||
        pcscf_bindsync_loading(ctx))
        return false;
    su_addrinfo_t *ai = msg_addrinfo(msg);
    if (!ai || ai->ai_protocol == IPPROTO_TCP || ai->ai_socktype == SOCK_STREAM)
        return false;   /* over TCP nta keeps no transaction after the answer (Timer J is 0) */
    route_view v;
    view_of(ctx, sip, &v);
    if (!v.top_self || v.terminating || pcscf_ue_source_msg(ctx, msg, &v.src, &v.protected_req) ||
        !ai->ai_addr || ai->ai_addrlen > sizeof(v.sa))
        return false;
    memcpy(&v.sa, ai->ai_addr, ai->ai_addrlen);
    /* after our own Route(s) the route set must go on (to the S-CSCF): else the stateful way */
    const sip_route_t *r = sip->sip_route;
    while (r && ims_sip_is_self(ctx->sip, r->r_url))
        r = r->r_next;
    if (!r)
        return false;
    const char *phrase = NULL;
    int refused = check_source(ctx, sip, &v, &phrase);
    if (!refused && !v.from_ue)
        return false;   /* from the core: as before */

    pcscf_count_arrival(ctx, sip, v.protected_req);
    if (refused) {
        ims_sip_reply_stateless(ctx->sip, msg, refused, phrase);
        return true;
    }
    char ident[16];
    if (ims_sip_msg_ident(ctx->sip, msg, ident, sizeof(ident)))
        snprintf(ident, sizeof(ident), "%s", IMS_SIP_IDENT_MAIN);
    strip_from_ue(ctx, msg, sip, v.ue);
    while (sip->sip_route && ims_sip_is_self(ctx->sip, sip->sip_route->r_url))
        pcscf_pop_route(msg, sip);   /* ours: one, or both of a double Record-Route */
    pcscf_media_bye(ctx, sip, &(pcscf_media_side){ .to_ue = false, .ue = &v.src });
    IMS_DEBUG(SUBSYS, "BYE %s from %s:%u/%s: on statelessly", sip->sip_call_id ? sip->sip_call_id->i_id : "?",
              v.src.host, v.src.port, v.src.transport);
    ims_sip_forward_stateless(ctx->sip, msg, ident);
    return true;
}
