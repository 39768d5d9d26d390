/*
 * pcscf_register: REGISTER from the UE, forwarded to the I-CSCF, and its responses.
 *
 * References:
 *  - TS 24.229 §5.2.2.1: the P-CSCF adds itself in Path, Require: path, P-Visited-Network-ID and
 *    P-Charging-Vector (icid-value), removes what the UE may not assert, forwards to the I-CSCF of
 *    the home network; on the 401 it removes CK and IK from WWW-Authenticate (it would keep them
 *    for the IPsec SAs: we have none, so they are just dropped); on the 200 (OK) it stores the
 *    Service-Route and the P-Associated-URI list of the registered identity; the Path of the 200
 *    reaches the UE only when its REGISTER listed path in Supported (RFC 3327 §5.3).
 *  - RFC 3327 §5.2 (Path, Require / Supported: path), RFC 3608 (Service-Route),
 *    RFC 7315 §4.1-4.3 (P-Associated-URI, P-Visited-Network-ID), §4.6 (P-Charging-Vector),
 *    RFC 3261 §10.2-10.3 (Contact, Expires, Contact: *), §16 (proxy behaviour).
 *  - TS 24.228 §6.2 (R1 flow: which headers the P-CSCF adds and removes).
 *
 * What the UE asked for is kept in a pending record (ims_pending, found by the key the forward
 * callback carries) until the final response: the contacts of the REGISTER, where it came from,
 * its public identity. A record whose response never arrived is forgotten after
 * PENDING_MAX_AGE seconds (its deadline; a transaction lasts 32 s at most). The REGISTER itself
 * is always answered by ims_sip_forward (the response, or nta's 408/503), so the record's
 * cleanup only forgets it; a response for a forgotten record is relayed without being stored.
 *
 * Failed registrations per UE address (pcscf.auth_max_failures / auth_failure_window /
 * auth_lockout): a 403 from the core (wrong password or RES, unknown identity, someone else's
 * public identity) counts one failure for the UE's IP address (not the port: a client picks ports
 * freely). Past the limit we answer that address's REGISTERs with 403 ourselves for the lockout
 * time, so a guesser neither reaches the S-CSCF/HSS nor locks further identities there (the
 * S-CSCF's own limit is per private identity). 401s are not counted: the first 401 is every
 * registration's normal first step, and a 401 to an answered challenge (unknown, stale or
 * replayed nonce) is sent without checking the password, so it tells a guesser nothing -- while
 * softphones that re-send their previous credentials get one on each refresh here (every REGISTER
 * is challenged), and many share a NAT address. 403 for the same reason as at the S-CSCF
 * (RFC 3261 §21.4.3; see scscf_register_auth.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/url.h>

#include "ims_authlimit.h"
#include "ims_clock.h"
#include "ims_log.h"
#include "ims_pending.h"
#include "ims_register.h"
#include "pcscf_context.h"
#include "pcscf_ipsec.h"
#include "pcscf_secagree.h"
#include "pcscf_util.h"

#define SUBSYS "pcscf.reg"
#define MAX_CONTACTS 16
#define MAX_IMPUS 32
#define MAX_ROUTES 8
#define PENDING_MAX_AGE 120
#define AUTHLIMIT_MAX_ADDRESSES 100000

typedef struct pcscf_reg_pending {
    int64_t started;
    char impu[512];                  /* normalised public identity (To) */
    pcscf_addr source;
    char *contacts[MAX_CONTACTS];    /* contact URIs of the REGISTER */
    long requested[MAX_CONTACTS];    /* expiry the UE asked for, per contact */
    size_t n_contacts;
    bool star;                       /* Contact: * (remove all) */
    bool ue_path;                    /* the UE listed path in Supported (RFC 3327 §5.3) */
    pcscf_ipsec_reg ipsec;           /* sec-agree: the mechanism chosen, the SA set it came over */
} pcscf_reg_pending;

static void pending_free(pcscf_reg_pending *p)
{
    for (size_t i = 0; i < p->n_contacts; i++)
        free(p->contacts[i]);
    free(p);
}

/* ctx->pending's cleanup: deadline passed (no final response) or the P-CSCF stops. The REGISTER
 * is ims_sip_forward's to answer; only the record goes. */
static void pending_cleanup(void *arg, uint64_t key, void *rec, ims_pending_reason reason)
{
    pcscf_reg_pending *p = rec;
    (void)arg;
    if (reason == IMS_PENDING_DEADLINE)
        IMS_WARN(SUBSYS, "REGISTER of %s (#%llu): no final response after %lld s, forgotten", p->impu,
                 (unsigned long long)key, (long long)(ims_monotonic_s() - p->started));
    pending_free(p);
}

void pcscf_register_sweep(pcscf_context *ctx, int64_t now, int64_t max_age)
{
    if (max_age < 0) {
        ims_authlimit_free(ctx->authlimit);
        ctx->authlimit = NULL;
        ims_pending *pending = ctx->pending;
        ctx->pending = NULL;
        ims_pending_free(pending);   /* late responses find nothing */
    } else {
        ims_authlimit_sweep(ctx->authlimit, now);
    }
}

/* RFC 3261 §10.3 checks a proxy can make without being the registrar (common/ims_register.c with
 * the proxy's policy: malformed Expires/Contact, Contact "*" misuse, more Contacts than a binding
 * holds). The expiry policy (423 Interval Too Brief, shortening, the default) is the registrar's:
 * TS 24.229 §5.2.2.1 takes the granted expiry from its 200. 0 or a status + phrase. */
static int check_register(const sip_t *sip, const char **phrase)
{
    const ims_reg_policy pol = { .registrar = false, .default_expires = IMS_REG_DEFAULT_EXPIRES,
                                 .max_contacts = MAX_CONTACTS };
    ims_reg_contacts contacts;
    ims_reg_verdict v;
    ims_register_check(sip, &pol, &contacts, &v);
    *phrase = v.phrase;
    return v.status;
}

static bool domain_served(const pcscf_context *ctx, const sip_t *sip)
{
    const ims_cfg_strlist *d = &ctx->cfg.pcscf.home_domains;
    if (!d->count)
        return true;
    const char *host = sip->sip_request->rq_url->url_host;
    for (size_t i = 0; host && i < d->count; i++)
        if (strcasecmp(host, d->items[i]) == 0)
            return true;
    return false;
}

static long requested_expiry(const sip_t *sip, const sip_contact_t *m)
{
    if (m->m_expires)
        return strtol(m->m_expires, NULL, 10);
    if (sip->sip_expires)
        return (long)sip->sip_expires->ex_delta;
    return IMS_REG_DEFAULT_EXPIRES;   /* the registrar's to choose: only a fallback if its 200 says nothing */
}

/* Quotes a value unless it is a token (RFC 3261 §25.1). */
static void token_or_quoted(const char *in, char *out, size_t len)
{
    bool token = *in != '\0';
    for (const char *c = in; *c && token; c++)
        token = isalnum((unsigned char)*c) || strchr("-.!%*_+`'~", *c);
    if (token)
        snprintf(out, len, "%s", in);
    else
        snprintf(out, len, "\"%s\"", in);
}

/* Headers the UE may not set: the P-CSCF asserts identity and charging itself (RFC 7315, TS 24.229
 * §5.2.2.1 and §4.4 trust domain). */
static const char *const untrusted_headers[] = {
    "P-Asserted-Identity", "P-Preferred-Identity", "P-Charging-Vector", "P-Charging-Function-Addresses",
    "P-Visited-Network-ID", "P-Served-User", "P-Profile-Key", NULL,
};

static int add_ims_headers(pcscf_context *ctx, msg_t *msg, sip_t *sip)
{
    char buf[512];
    for (size_t i = 0; untrusted_headers[i]; i++)
        ims_sip_remove_headers(msg, sip, untrusted_headers[i]);
    /* RFC 3327 §5.2: we are on the path of terminating requests. Our URI carries the user part
     * "term" so that requests the S-CSCF sends back along the Path are recognised as terminating. */
    if (ims_sip_prepend_header(msg, sip, "Path", ctx->path_uri))
        return -1;
    if (!pcscf_list_has(sip->sip_require, "path") && ims_sip_add_header(msg, sip, "Require", "path"))
        return -1;
    if (!pcscf_list_has(sip->sip_supported, "path") && ims_sip_add_header(msg, sip, "Supported", "path"))
        return -1;
    token_or_quoted(ctx->cfg.pcscf.visited_network_id, buf, sizeof(buf));
    if (ims_sip_add_header(msg, sip, "P-Visited-Network-ID", buf))
        return -1;
    char icid[128], tok[160];
    ims_sip_new_icid(icid, sizeof(icid));
    token_or_quoted(icid, tok, sizeof(tok));
    snprintf(buf, sizeof(buf), "icid-value=%s", tok);
    if (ims_sip_add_header(msg, sip, "P-Charging-Vector", buf))
        return -1;
    return 0;
}

/* ---------- failed registrations per UE address ---------- */

static ims_authlimit *limiter(pcscf_context *ctx)
{
    if (!ctx->authlimit && !ctx->stopping)
        ctx->authlimit = ims_authlimit_new(ctx->cfg.pcscf.auth_max_failures, ctx->cfg.pcscf.auth_failure_window,
                                           ctx->cfg.pcscf.auth_lockout, AUTHLIMIT_MAX_ADDRESSES);
    return ctx->authlimit;
}

static void count_failure(pcscf_context *ctx, const pcscf_reg_pending *p, int status)
{
    if (ims_authlimit_fail(limiter(ctx), p->source.host, ims_monotonic_s())) {
        ims_metric_inc(ims_metric_counter("pcscf_auth_lockouts_total",
                                          "UE addresses blocked after too many failed REGISTERs"));
        IMS_WARN(SUBSYS, "UE address %s blocked for %ld s: %ld failed REGISTERs within %ld s (last: %s from "
                 "%s:%u/%s answered %d); its REGISTERs get 403 until then", p->source.host,
                 ctx->cfg.pcscf.auth_lockout, ctx->cfg.pcscf.auth_max_failures, ctx->cfg.pcscf.auth_failure_window,
                 p->impu, p->source.host, p->source.port, p->source.transport, status);
    }
}

/* 403 when the source address is blocked; 0 otherwise. */
static int check_blocked(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    if (!ctx->cfg.pcscf.auth_max_failures)
        return 0;
    pcscf_addr src;
    if (pcscf_source_of(irq, &src))
        return 0;
    long left = ims_authlimit_locked(limiter(ctx), src.host, ims_monotonic_s());
    if (!left)
        return 0;
    ims_metric_inc(ims_metric_counter("pcscf_register_blocked_total",
                                      "REGISTERs refused because their source address is blocked"));
    pcscf_count_register("forbidden");
    char to[512] = "?";
    if (sip->sip_to)
        ims_sip_impu_of(sip, to, sizeof(to));
    IMS_INFO(SUBSYS, "REGISTER of %s from %s:%u/%s refused: address blocked for another %ld s after failed "
             "REGISTERs", to, src.host, src.port, src.transport, left);
    char ra[32];
    snprintf(ra, sizeof(ra), "%ld", left);
    nta_incoming_treply(irq, 403, "Forbidden - Too Many Failed Registrations", SIPTAG_RETRY_AFTER_STR(ra),
                        TAG_END());
    nta_incoming_destroy(irq);
    return 403;
}

/* ---------- responses ---------- */

/* TS 24.229 §5.2.2.1: remove the "ck" and "ik" parameters of WWW-Authenticate before the 401
 * goes to the UE. Every WWW-Authenticate is rebuilt without them. */
static void strip_ck_ik(msg_t *msg, sip_t *sip)
{
    char *rebuilt[8];
    size_t n = 0;
    bool any = false;
    su_home_t *home = msg_home(msg);
    for (const sip_www_authenticate_t *w = sip->sip_www_authenticate; w && n < 8; w = w->au_next) {
        char buf[2048];
        size_t used = (size_t)snprintf(buf, sizeof(buf), "%s", w->au_scheme ? w->au_scheme : "Digest");
        bool first = true;
        for (msg_param_t const *p = w->au_params; p && *p; p++) {
            if (strncasecmp(*p, "ck=", 3) == 0 || strncasecmp(*p, "ik=", 3) == 0) {
                any = true;
                continue;
            }
            int k = snprintf(buf + used, sizeof(buf) - used, "%s%s", first ? " " : ", ", *p);
            if (k < 0 || (size_t)k >= sizeof(buf) - used)
                return;   /* leave the header alone rather than truncate it */
            used += (size_t)k;
            first = false;
        }
        rebuilt[n++] = su_strdup(home, buf);
    }
    if (!any)
        return;
    msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_www_authenticate);
    for (size_t i = 0; i < n; i++)
        if (rebuilt[i])
            msg_header_add_make(msg, (msg_pub_t *)sip, sip_www_authenticate_class, rebuilt[i]);
}

typedef struct {
    char *v[MAX_IMPUS];
    size_t n;
    su_home_t *home;
} strv_collect;

static int collect_identity(void *arg, const char *uri)
{
    strv_collect *c = arg;
    char norm[512];
    if (c->n >= MAX_IMPUS)
        return 1;
    if (pcscf_identity(uri, norm, sizeof(norm)) == 0)
        c->v[c->n++] = su_strdup(c->home, norm);
    return 0;
}

static int collect_associated(void *arg, const char *value)
{
    pcscf_split_uris(value, collect_identity, arg);
    return 0;
}

static void on_registered(pcscf_context *ctx, pcscf_reg_pending *p, const sip_t *sip)
{
    int64_t now = ims_monotonic_s();
    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home)
        goto out;

    if (!p->star && p->n_contacts == 0) {
        pcscf_count_register("query");
        goto out;
    }

    /* Contacts: the registrar lists every contact of the identity with its expiry; we keep
     * ours. Without any Contact in the 200 (a registrar that does not echo them), trust what the
     * UE asked for. */
    long dflt = sip->sip_expires ? (long)sip->sip_expires->ex_delta : -1;
    bool echoed = sip->sip_contact != NULL;
    pcscf_contact contacts[MAX_CONTACTS];
    for (size_t i = 0; i < p->n_contacts; i++) {
        url_t *mine = url_make(home, p->contacts[i]);
        long e = echoed ? 0 : p->requested[i];
        for (const sip_contact_t *m = sip->sip_contact; mine && m; m = m->m_next) {
            if (!pcscf_url_same(m->m_url, mine))
                continue;
            e = m->m_expires ? strtol(m->m_expires, NULL, 10) : dflt >= 0 ? dflt : p->requested[i];
            break;
        }
        contacts[i].uri = p->contacts[i];
        contacts[i].expires = e > 0 ? now + e : 0;
    }
    /* A de-registration's 200 lists no Contact: none is left (RFC 3261 §10.3 step 8). A
     * registration's 200 without one is a registrar that does not follow it. */
    bool removing = true;
    for (size_t i = 0; i < p->n_contacts; i++)
        removing = removing && p->requested[i] == 0;
    if (!echoed && !removing)
        IMS_WARN(SUBSYS, "200 to REGISTER of %s lists no Contact: using the expiry the UE asked for", p->impu);

    strv_collect impus = { .home = home };
    pcscf_header_values(sip, "P-Associated-URI", collect_associated, &impus);

    const char *routes[MAX_ROUTES];
    size_t n_routes = 0;
    for (const sip_service_route_t *r = sip->sip_service_route; r && n_routes < MAX_ROUTES; r = r->r_next) {
        char *s = url_as_string(home, r->r_url);
        if (s)
            routes[n_routes++] = s;
    }

    pcscf_binding_update u = {
        .impu = p->impu, .source = &p->source,
        .impus = (const char *const *)impus.v, .n_impus = impus.n,
        .service_route = routes, .n_service_route = n_routes, .replace_route = true,
        .contacts = contacts, .n_contacts = p->n_contacts,
        .remove_all = p->star,
    };
    long longest = 0;
    for (size_t i = 0; i < p->n_contacts; i++)
        if (contacts[i].expires - now > longest)
            longest = (long)(contacts[i].expires - now);
    pcscf_addr replaced[4];
    size_t n_replaced = pcscf_ipsec_on_200(ctx, &p->ipsec, p->impu, p->star ? 0 : longest, replaced, 4);
    for (size_t i = 0; i < n_replaced; i++)   /* re-authentication: the registration moves to the new SAs */
        pcscf_bindings_move_flow(ctx->bindings, &replaced[i], &p->source);
    int rc = pcscf_bindings_update(ctx->bindings, &u, now);
    ims_metric_set(ctx->m_bindings, (int64_t)pcscf_bindings_count(ctx->bindings));
    switch (rc) {
    case PCSCF_BINDING_CREATED:
    case PCSCF_BINDING_UPDATED: {
        const pcscf_binding *b = pcscf_bindings_get(ctx->bindings, p->impu, &p->source);
        IMS_INFO(SUBSYS, "%s %s from %s:%u/%s: %zu contact(s), %zu identities, %zu service route(s), "
                 "expires in %lld s", rc == PCSCF_BINDING_CREATED ? "registered" : "re-registered",
                 p->impu, p->source.host, p->source.port, p->source.transport, b ? b->n_contacts : 0,
                 b ? b->n_impus : 0, b ? b->n_service_route : 0,
                 b ? (long long)(pcscf_binding_expires(b) - now) : 0LL);
        if (!n_routes)
            IMS_WARN(SUBSYS, "200 to REGISTER of %s has no Service-Route: originating requests will fail",
                     p->impu);
        pcscf_count_register("registered");
        if (b && ctx->cfg.pcscf.subscribe_reg_event)
            pcscf_regevent_ensure(ctx, b);
        break;
    }
    case PCSCF_BINDING_REMOVED:
    case PCSCF_BINDING_NONE:
        IMS_INFO(SUBSYS, "de-registered %s from %s:%u/%s", p->impu, p->source.host, p->source.port,
                 p->source.transport);
        pcscf_count_register("deregistered");
        break;
    default:
        IMS_ERROR(SUBSYS, "cannot store the binding of %s (out of memory)", p->impu);
        pcscf_count_register("error");
        break;
    }
out:
    if (home)
        su_home_unref(home);
}

static int on_register_response(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    (void)irq;
    pcscf_context *ctx = &pcscf_ctx;
    uint64_t key = ims_pending_key(arg);
    int status = sip && sip->sip_status ? sip->sip_status->st_status : 0;
    if (status > 0 && status < 200)
        return 0;

    void *rec = NULL;
    if (ims_pending_release(ctx->pending, key, &rec)) {
        /* forgotten (deadline) or stopping: relayed, but nothing to store; CK/IK never reach the UE */
        IMS_WARN(SUBSYS, "%d to a REGISTER no longer pending (#%llu): relayed without processing", status,
                 (unsigned long long)key);
        if (status == 401)
            strip_ck_ik(msg, sip);
        return 0;
    }
    pcscf_reg_pending *p = rec;

    int replace = 0;
    if (status == 401) {
        /* CK/IK for the SAs first (pcscf_ipsec.c), then out of the UE's sight */
        replace = pcscf_ipsec_on_401(ctx, &p->ipsec, p->impu, &p->source, msg, sip);
        strip_ck_ik(msg, sip);
        pcscf_count_register(replace ? "error" : "challenged");
        if (replace)
            pcscf_ipsec_on_failure(ctx, &p->ipsec, p->impu, &p->source);
    } else if (status >= 200 && status < 300) {
        on_registered(ctx, p, sip);
        /* RFC 3327 §5.3: Path goes back only to a UE that listed path in Supported (we asked the
         * registrar for it on our own behalf); Require: path has no place in a response. */
        if (!p->ue_path && ims_sip_remove_headers(msg, sip, "Path") > 0)
            IMS_DEBUG(SUBSYS, "200 to REGISTER of %s: Path removed (the UE does not support path)", p->impu);
        pcscf_remove_option_tag(msg, sip, "Require", "path");
    } else {
        IMS_INFO(SUBSYS, "REGISTER of %s: %d from the core", p->impu, status);
        pcscf_count_register(status == 408 ? "timeout" : "rejected");
    }
    if (status == 403)
        count_failure(ctx, p, status);
    if (status >= 300 && status != 401)
        pcscf_ipsec_on_failure(ctx, &p->ipsec, p->impu, &p->source);
    pending_free(p);
    return replace;
}

/* ---------- the request ---------- */

int pcscf_register_handle(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    int status = 0;
    const char *phrase = NULL;
    msg_t *msg = NULL;
    pcscf_reg_pending *p = NULL;
    char impu[512];

    if (check_blocked(ctx, irq, sip))
        return 0;   /* answered */
    status = check_register(sip, &phrase);
    if (status) {
        pcscf_count_register(status == 403 ? "forbidden" : "bad_request");
        goto out;
    }
    if (!domain_served(ctx, sip)) {
        status = 403;
        phrase = "Forbidden - Domain Not Served";
        pcscf_count_register("forbidden");
        goto out;
    }
    pcscf_addr src;
    bool protected_req = false;
    if (pcscf_ue_source(ctx, irq, &src, &protected_req)) {
        status = 500;
        phrase = "Source Address Unknown";
        goto out;
    }
    pcscf_ipsec_reg ipsec;
    status = pcscf_ipsec_on_register(ctx, sip, &src, &ipsec, &phrase);
    if (status) {
        pcscf_count_register("sec_agree");
        goto out;
    }
    char to[512];
    if (ims_sip_impu_of(sip, to, sizeof(to)) || pcscf_identity(to, impu, sizeof(impu))) {
        status = 400;
        phrase = "Bad To";
        pcscf_count_register("bad_request");
        goto out;
    }

    p = calloc(1, sizeof(*p));
    if (!p) {
        status = 500;
        goto out;
    }
    p->started = ims_monotonic_s();
    p->ue_path = pcscf_list_has(sip->sip_supported, "path");
    snprintf(p->impu, sizeof(p->impu), "%s", impu);
    p->source = src;
    p->ipsec = ipsec;
    su_home_t *tmp = su_home_new(sizeof(su_home_t));
    for (const sip_contact_t *m = sip->sip_contact; tmp && m && p->n_contacts < MAX_CONTACTS; m = m->m_next) {
        if (m->m_url->url_type == url_any) {
            p->star = true;
            continue;
        }
        char *s = url_as_string(tmp, m->m_url);
        if (!s || !(p->contacts[p->n_contacts] = strdup(s)))
            continue;
        p->requested[p->n_contacts++] = requested_expiry(sip, m);
    }
    if (tmp)
        su_home_unref(tmp);

    msg = ims_sip_request_copy(irq);
    sip_t *fw = msg ? sip_object(msg) : NULL;
    if (!fw) {
        status = 500;
        goto out;
    }
    /* The UE's route set ends here: REGISTER goes to the I-CSCF of the home network. */
    if (fw->sip_route)
        msg_header_remove_all(msg, (msg_pub_t *)fw, (msg_header_t *)fw->sip_route);
    pcscf_secagree_strip(msg, fw);
    if (add_ims_headers(ctx, msg, fw) || pcscf_ipsec_mark_register(msg, fw, &p->ipsec)) {
        status = 500;
        goto out;
    }
    url_t *next_hop = ims_sip_next_hop(ctx->sip, msg_home(msg), ctx->icscf_url);
    if (!next_hop) {
        status = 500;
        phrase = "I-CSCF Unresolvable";
        goto out;
    }

    IMS_DEBUG(SUBSYS, "REGISTER %s from %s:%u/%s (%zu contact(s)%s) -> %s", impu, p->source.host,
              p->source.port, p->source.transport, p->n_contacts, p->star ? ", *" : "", ctx->cfg.pcscf.icscf);
    if (!ctx->pending) {
        ims_timer_ops timers = ims_timer_ops_sip(ctx->sip);
        ctx->pending = ims_pending_new("pcscf REGISTER", &timers, pending_cleanup, ctx);
    }
    uint64_t key = ims_pending_add(ctx->pending, p, PENDING_MAX_AGE * 1000u);
    if (!key) {
        status = 500;
        goto out;
    }
    p = NULL;   /* ctx->pending's now */
    msg_t *m = msg;
    msg = NULL;   /* ims_sip_forward owns it and irq in every case */
    if (ims_sip_forward(ctx->sip, irq, m, next_hop, on_register_response, ims_pending_arg(key)) < 0) {
        pcscf_count_register("error");
        /* an error response went to the UE already */
        void *rec = NULL;
        if (ims_pending_release(ctx->pending, key, &rec) == 0)
            pending_free(rec);
    }
out:
    if (msg)
        msg_destroy(msg);
    if (p)
        pending_free(p);
    if (status && phrase) {
        pcscf_reply(irq, status, phrase);
        status = 0;
    }
    return status;
}
