/*
 * ims_sip_proxy: transaction-stateful forwarding over nta (RFC 3261 §16), requests of our own
 * (UAC side), and stateless relay of stray responses.
 *
 * One forward = one server transaction (irq, from upstream) + one client transaction (orq, to
 * the next hop), tied by a struct ims_sip_fwd:
 *
 *   upstream --req--> irq  [NF: on_request, edits a copy]  ims_sip_forward --> orq --req--> next hop
 *   upstream <--rsp-- mreply(irq) <-- drop our Via <-- NF on_response <-- orq callback <--rsp--
 *
 *  - §16.3/§16.6 step 3: Max-Forwards is checked (483 at 0) and decremented (70 when absent).
 *  - §16.6 step 8: nta puts our Via on top; §16.7 step 3: we remove it from responses.
 *  - §16.7 step 10: the best final response is the only one (no forking here), relayed once;
 *    provisional responses are relayed as they come (100 Trying is hop-by-hop: nta absorbs the
 *    downstream one and we send our own for INVITE, §16.2).
 *  - §16.10: a CANCEL for irq is answered 200 by nta, which calls our irq callback: we send
 *    CANCEL downstream (ims_sip_cancel: built here, so that nta keeps the INVITE transaction on
 *    TCP too) and the downstream 487 is relayed upstream.
 *  - 2xx to INVITE: the client transaction ends with the first 2xx (RFC 3261 §17.1.1.2); more
 *    2xx (retransmissions, other forks) reach the agent's message callback and are forwarded
 *    statelessly (§16.7 step 1, RFC 6026 §7.1). Without that callback nta would ACK and BYE them
 *    as orphans, killing the call. Other stray responses are dropped.
 *  - ACK for a 2xx is a new transaction (§13.2.2.4): it is sent straight to the transport
 *    (send_ack: nta would keep an ACK transaction for 32 s); the ACK of a non-2xx final is
 *    hop-by-hop and handled by nta.
 *  - Errors nta raises itself (transport failure 503, timeout 408) come back as responses and
 *    are relayed like any other. nta does not send 408 to a non-INVITE request upstream
 *    (RFC 4320: the client has timed out too), it only completes the transaction.
 *
 * The hosts table (ims_sip_next_hop) is applied to every next hop here.
 */
#include "ims_sip_priv.h"
#include "ims_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/tport.h>

#include "ims_aka.h"
#include "ims_log.h"

/* RFC 3261 §16.6 step 3: the value a proxy puts when the request carries none. */
#define IMS_SIP_MAX_FORWARDS 70

struct ims_sip_fwd {
    struct ims_sip_fwd *next, **prev;
    ims_sip *s;
    nta_incoming_t *irq;
    nta_outgoing_t *orq;
    bool cancel_wanted;         /* CANCELled upstream before any provisional came (ims_sip_cancel) */
    uint64_t id;                /* ims_sip_fwd_current / ims_sip_fwd_resume */
    ims_sip_response_f on_response;
    void *arg;
};

struct ims_sip_uac {
    struct ims_sip_uac *next, **prev;
    ims_sip *s;
    nta_outgoing_t *orq;
    ims_sip_uac_f on_response;
    void *arg;
};

/* ---------- helpers ---------- */

/* sip_transactions_active: forwards and our own client transactions in progress. Tests use it
 * to show nothing is left behind once traffic stops. */
static void count_active(int64_t delta)
{
    static ims_metric *m;
    if (!m)
        m = ims_metric_gauge("sip_transactions_active",
                             "SIP transactions in progress (proxied requests and our own requests)");
    ims_metric_add(m, delta);
    ims_sip_work_add(delta);
}

static void fwd_link(ims_sip *s, struct ims_sip_fwd *f)
{
    count_active(1);
    f->prev = &s->fwds;
    if ((f->next = s->fwds))
        f->next->prev = &f->next;
    s->fwds = f;
}

static void fwd_unlink(struct ims_sip_fwd *f)
{
    count_active(-1);
    if ((*f->prev = f->next))
        f->next->prev = f->prev;
}

/* The transaction pair is over: nta frees its objects after its own timers. */
static void fwd_finish(struct ims_sip_fwd *f)
{
    fwd_unlink(f);
    if (f->orq)
        nta_outgoing_destroy(f->orq);
    if (f->irq) {
        nta_incoming_bind(f->irq, NULL, NULL);
        nta_incoming_destroy(f->irq);
    }
    free(f);
}

/* Answers irq with a local error (when it can still be answered) and gives it back to nta. */
static int reject(nta_incoming_t *irq, int status, const char *phrase)
{
    if (irq) {
        if (status >= 300 && nta_incoming_status(irq) < 200 && nta_incoming_method(irq) != sip_method_ack)
            nta_incoming_treply(irq, status, phrase, TAG_END());
        nta_incoming_destroy(irq);
    }
    return -1;
}

/*
 * Where a request goes when the caller gave no next hop (RFC 3261 §16.6 step 6-7 / §16.12):
 * the top Route when it is a loose router (;lr), else the Request-URI. A Route without ;lr
 * (strict router, RFC 2543) is not supported: 0 / -1 with *status set.
 */
static int default_target(const sip_t *sip, const url_t **target, int *status, const char **phrase)
{
    if (sip->sip_route) {
        if (!url_has_param(sip->sip_route->r_url, "lr")) {
            *status = 400;
            *phrase = "Strict routing not supported";
            return -1;
        }
        *target = sip->sip_route->r_url;
    } else {
        *target = sip->sip_request->rq_url;
    }
    return 0;
}

/* Maps the next hop through the hosts table into msg's home (it lives as long as the request)
 * and checks that nta can send to it (sip: or sips:). */
static url_string_t *route_for(ims_sip *s, msg_t *msg, const url_t *hop, int *status, const char **phrase)
{
    if (!hop || (hop->url_type != url_sip && hop->url_type != url_sips) || !hop->url_host) {
        *status = 416;
        *phrase = "Unsupported URI Scheme";
        return NULL;
    }
    url_t *u = ims_sip_next_hop(s, msg_home(msg), hop);
    if (!u) {
        *status = 500;
        *phrase = "Internal Server Error";
    }
    return (url_string_t *)u;
}

/* §16.3 step 3 and §16.6 step 3 (decrement = forwarding; a request of our own only gets the
 * default when it has none). Returns 0, or the status to answer with. */
static int max_forwards(msg_t *msg, sip_t *sip, bool decrement)
{
    sip_max_forwards_t *mf = sip->sip_max_forwards;
    char value[24];
    if (!mf) {
        snprintf(value, sizeof(value), "%d", IMS_SIP_MAX_FORWARDS);
        return msg_header_add_make(msg, (msg_pub_t *)sip, sip_max_forwards_class, value) < 0 ? 500 : 0;
    }
    if (!decrement)
        return 0;
    if (mf->mf_count == 0)
        return 483;
    snprintf(value, sizeof(value), "%lu", mf->mf_count - 1);
    msg_header_t *h = msg_header_make(msg_home(msg), sip_max_forwards_class, value);
    if (!h || msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)mf, h) < 0)
        return 500;
    return 0;
}

/* ---------- ACK without a transaction ---------- */

/* An ACK for a 2xx goes straight to the transport. nta would create a client transaction for it
 * and keep it, with the whole message, in its "trying" queue until Timer F (64*T1 = 32 s, nta.c
 * outgoing_trying) even when asked to send statelessly: two ACKs per call then held ~30 % of a
 * P-CSCF's memory under call load (issue 16). Nothing answers an ACK (RFC 3261 §17.1.1.3), so
 * there is nothing for a transaction to wait on. We add our Via (§16.6 step 8: the sent-by nta
 * uses for this transport, with a branch of our own, §8.1.1.7) and send to the next hop `route`
 * (already mapped through the hosts table): its ;transport, else UDP; its port, else 5060.
 * tport_tsend resolves a host name itself. Takes msg. 0 / -1. */
static int send_ack(ims_sip *s, msg_t *msg, sip_t *sip, const url_t *route, const char *ident)
{
    char proto[8] = "udp", via[300], branch[2 * 8 + 1];
    uint8_t rnd[8];
    if (url_param(route->url_params, "transport", proto, sizeof(proto)) == 0)
        snprintf(proto, sizeof(proto), "udp");
    if (strcasecmp(proto, "udp") && strcasecmp(proto, "tcp")) {
        msg_destroy(msg);
        return -1;
    }
    /* our Via for that transport (and, with an ident, for the port of those transports) */
    char local_port[8] = "";
    if (ident && ims_sip_ident_port(s, ident, local_port, sizeof(local_port))) {
        msg_destroy(msg);
        return -1;
    }
    const sip_via_t *v = nta_agent_via(s->agent);
    while (v && !(v->v_protocol && strlen(v->v_protocol) > 8 && strcasecmp(v->v_protocol + 8, proto) == 0 &&
                  (!ident || (v->v_port && strcmp(v->v_port, local_port) == 0))))
        v = v->v_next;
    if (!v || ims_random(rnd, sizeof(rnd))) {
        msg_destroy(msg);
        return -1;
    }
    ims_hex_encode(rnd, sizeof(rnd), branch);
    snprintf(via, sizeof(via), "%s %s%s%s;branch=z9hG4bK-ack-%s", v->v_protocol, v->v_host, v->v_port ? ":" : "",
             v->v_port ? v->v_port : "", branch);
    tp_name_t tpn = { .tpn_proto = proto, .tpn_host = route->url_host, .tpn_canon = route->url_host,
                      .tpn_port = route->url_port && *route->url_port ? route->url_port : "5060",
                      .tpn_ident = ident };
    tport_t *tp = NULL;
    /* Content-Length and separator where missing, then the header chain tport sends from */
    if (ims_sip_prepend_header(msg, sip, "Via", via) == 0 && sip_complete_message(msg) == 0 &&
        msg_serialize(msg, (msg_pub_t *)sip) == 0)
        tp = tport_tsend(nta_agent_tports(s->agent), msg, &tpn, TAG_END());
    if (!tp)
        IMS_DEBUG("sip", "ACK %s: not sent to %s:%s/%s", sip->sip_call_id ? sip->sip_call_id->i_id : "?",
                  tpn.tpn_host, tpn.tpn_port, proto);
    msg_destroy(msg);
    return tp ? 0 : -1;
}

/* ---------- CANCEL ---------- */

int ims_sip_cancel(ims_sip *s, nta_outgoing_t *orq)
{
    int st = nta_outgoing_status(orq);
    if (st >= 200)
        return 1;
    if (st < 100)
        return 0;
    int rc = -1;
    msg_t *req = nta_outgoing_getrequest(orq);
    sip_t *rs = req ? sip_object(req) : NULL;
    msg_t *m = NULL;
    if (!rs || !rs->sip_request || !rs->sip_via || !rs->sip_call_id || !rs->sip_from || !rs->sip_to || !rs->sip_cseq)
        goto out;
    m = nta_msg_create(s->agent, 0);
    sip_t *cs = m ? sip_object(m) : NULL;
    su_home_t *home = m ? msg_home(m) : NULL;
    if (!cs)
        goto out;
    /* §9.1: Request-URI, Call-ID, To, From, the CSeq number and the Route set of the request;
     * its top Via alone (ours, with the INVITE's branch); method CANCEL */
    char *via = sip_header_as_string(home, (sip_header_t const *)rs->sip_via);
    char cseq[40];
    snprintf(cseq, sizeof(cseq), "%u CANCEL", rs->sip_cseq->cs_seq);
    sip_request_t *rq = sip_request_create(home, sip_method_cancel, "CANCEL", (url_string_t *)rs->sip_request->rq_url,
                                           NULL);
    if (!via || !rq ||
        sip_add_tl(m, cs, SIPTAG_REQUEST(rq), SIPTAG_VIA_STR(via), SIPTAG_CALL_ID(rs->sip_call_id),
                   SIPTAG_FROM(rs->sip_from), SIPTAG_TO(rs->sip_to), SIPTAG_CSEQ_STR(cseq),
                   SIPTAG_ROUTE(rs->sip_route), SIPTAG_MAX_FORWARDS_STR("70"), TAG_END()) < 0)
        goto out;
    /* default callback: nta ends it with its final response (the 200 to the CANCEL) */
    nta_outgoing_t *cancel = nta_outgoing_mcreate(s->agent, NULL, NULL, (url_string_t const *)nta_outgoing_route_uri(orq),
                                                  m, NTATAG_USER_VIA(1), TAG_END());
    if (cancel) {
        m = NULL;   /* nta's */
        rc = 1;
    }
out:
    if (m)
        msg_destroy(m);
    if (req)
        msg_destroy(req);
    return rc;
}

/* ---------- forwarding ---------- */

/* CANCEL (or ACK of our non-2xx final, or Timer H) on the upstream transaction. */
static int fwd_irq_event(nta_incoming_magic_t *magic, nta_incoming_t *irq, sip_t const *sip)
{
    struct ims_sip_fwd *f = (struct ims_sip_fwd *)magic;
    (void)irq;
    if (f && sip && sip->sip_request && sip->sip_request->rq_method == sip_method_cancel && f->orq) {
        /* §16.10: the callee's 487 is relayed upstream */
        int rc = ims_sip_cancel(f->s, f->orq);
        if (rc == 0)
            f->cancel_wanted = true;          /* sent with the first provisional response */
        else if (rc < 0)
            nta_outgoing_cancel(f->orq);
    }
    return 0;
}

static void relay(struct ims_sip_fwd *f, msg_t *msg, sip_t *sip)
{
    /* §16.7 step 3: the top Via is ours (nta matched the response by its branch). A response
     * with no Via left was for us only: nothing to relay. */
    if (sip->sip_via)
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_via);
    if (!sip->sip_via) {
        msg_destroy(msg);
        return;
    }
    /* Fails (and frees msg) when irq is already complete, e.g. 487 after a CANCEL. */
    nta_incoming_mreply(f->irq, msg);
}

static void fwd_deliver(struct ims_sip_fwd *f, nta_outgoing_t *orq, msg_t *msg, sip_t *sip, int status, int rc);

static int fwd_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *csip)
{
    struct ims_sip_fwd *f = (struct ims_sip_fwd *)magic;
    msg_t *msg = nta_outgoing_getresponse(orq);     /* ours now */
    sip_t *sip = sip_object(msg);
    int status = csip && csip->sip_status ? csip->sip_status->st_status : 500;

    if (!msg || !sip || !sip->sip_status) {
        /* Out of memory in nta: answer locally rather than leave upstream waiting. */
        if (msg)
            msg_destroy(msg);
        if (status >= 200) {
            nta_incoming_treply(f->irq, SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
            fwd_finish(f);
        }
        return 0;
    }
    status = sip->sip_status->st_status;
    if (f->cancel_wanted && status < 200) {
        int rc = ims_sip_cancel(f->s, orq);
        if (rc != 0)
            f->cancel_wanted = false;
        if (rc < 0)
            nta_outgoing_cancel(orq);
    }

    f->s->fwd_current = f->id;
    int rc = f->on_response ? f->on_response(f->arg, f->irq, msg, sip) : 0;
    f->s->fwd_current = 0;
    if (rc == IMS_SIP_RESPONSE_HOLD)
        return 0;   /* the NF's now: ims_sip_fwd_resume */
    fwd_deliver(f, orq, msg, sip, status, rc);
    return 0;
}

/* ---------- a 2xx to an INVITE that cannot go upstream ---------- */

/* A request of ours in the callee's dialog of the 2xx rsp (we act as its UAC): Request-URI its
 * Contact, From/To/Call-ID of the 2xx, CSeq cseq, Route the route set downstream of us (the
 * Record-Route entries above our own, RFC 3261 §12.1.2 order: the one next to us first). */
static msg_t *dialog_request(ims_sip *s, const sip_t *rsp, sip_method_t method, const char *name, uint32_t cseq,
                             bool *routed)
{
    msg_t *m = nta_msg_create(s->agent, 0);
    sip_t *rq = m ? sip_object(m) : NULL;
    su_home_t *home = m ? msg_home(m) : NULL;
    if (!rq)
        return NULL;
    const sip_record_route_t *above[16], *rr = rsp->sip_record_route;
    size_t n = 0;
    for (; rr && !ims_sip_is_self(s, rr->r_url); rr = rr->r_next)
        if (n < 16)
            above[n++] = rr;
    if (!rr || n == 16)
        n = 0;   /* no entry of ours in it (we did not Record-Route): not a route set we can cut */
    char *route = NULL;
    for (size_t i = n; i-- > 0;) {
        char *u = url_as_string(home, above[i]->r_url);
        route = u ? su_sprintf(home, "%s%s<%s>", route ? route : "", route ? ", " : "", u) : NULL;
        if (!route)
            break;
    }
    char cs[40];
    snprintf(cs, sizeof(cs), "%u %s", cseq, name);
    sip_request_t *rl = sip_request_create(home, method, name, (url_string_t *)rsp->sip_contact->m_url, NULL);
    if (!rl || (n && !route) ||
        sip_add_tl(m, rq, SIPTAG_REQUEST(rl), SIPTAG_FROM(rsp->sip_from), SIPTAG_TO(rsp->sip_to),
                   SIPTAG_CALL_ID(rsp->sip_call_id), SIPTAG_CSEQ_STR(cs), SIPTAG_MAX_FORWARDS_STR("70"),
                   TAG_IF(route, SIPTAG_ROUTE_STR(route)), TAG_END()) < 0) {
        msg_destroy(m);
        return NULL;
    }
    *routed = route != NULL;
    return m;
}

/* RFC 3261 does not say what a proxy does with a 2xx to an INVITE it cannot forward (§16.7 sends
 * every 2xx upstream). It happens when the NF replaced the 2xx (the P-CSCF's 503 when rtpengine
 * failed its answer) or, as a safety net, when the upstream transaction is already answered (a
 * CANCEL does not do that here: NTATAG_CANCEL_487(0) leaves the final to the callee). The callee would hold a
 * confirmed dialog nobody ACKs, retransmit the 2xx for 32 s and then BYE on its own (§13.3.1.4);
 * we end it at once as its UAC would (§13.2.2.4, §15.1.1): ACK, then BYE, along the route set
 * downstream of us, else to the hop the INVITE went to (a UE's flow at a P-CSCF: its Contact
 * may be a private address behind NAT). */
static void end_unrelayed_2xx(struct ims_sip_fwd *f, nta_outgoing_t *orq, const sip_t *rsp, const char *why)
{
    ims_sip *s = f->s;
    if (!rsp->sip_contact || !rsp->sip_from || !rsp->sip_to || !rsp->sip_to->a_tag || !rsp->sip_call_id ||
        !rsp->sip_cseq) {
        IMS_WARN("sip", "2xx to INVITE %s not forwarded (%s) and too incomplete to end its dialog",
                 rsp->sip_call_id ? rsp->sip_call_id->i_id : "?", why);
        return;
    }
    su_home_t home[1] = { SU_HOME_INIT(home) };
    const url_t *hop = (const url_t *)nta_outgoing_route_uri(orq);
    uint32_t cseq = rsp->sip_cseq->cs_seq;
    int sent = 0;
    for (int i = 0; i < 2; i++) {
        bool routed = false;
        msg_t *m = i == 0 ? dialog_request(s, rsp, sip_method_ack, "ACK", cseq, &routed)
                          : dialog_request(s, rsp, sip_method_bye, "BYE", cseq + 1, &routed);
        url_t *next = m && !routed && hop ? url_hdup(home, hop) : NULL;
        if (m && ims_sip_send_request(s, m, next, NULL, NULL) == 0)
            sent++;
    }
    su_home_deinit(home);
    IMS_INFO("sip", "2xx to INVITE %s (callee %s) not forwarded (%s): ACK and BYE to end the callee's dialog%s",
             rsp->sip_call_id->i_id, rsp->sip_to->a_url->url_user ? rsp->sip_to->a_url->url_user : "?", why,
             sent == 2 ? "" : " (not all sent)");
}

/* The response of f after on_response (rc: its return value). */
static void fwd_deliver(struct ims_sip_fwd *f, nta_outgoing_t *orq, msg_t *msg, sip_t *sip, int status, int rc)
{
    if (sip && sip->sip_status && status >= 200 && status < 300 && nta_outgoing_method(orq) == sip_method_invite &&
        ((rc >= 300 && rc <= 699) || nta_incoming_status(f->irq) >= 200))
        end_unrelayed_2xx(f, orq, sip, rc >= 300 ? "replaced by an error" : "the caller's transaction is over");
    if (rc >= 300 && rc <= 699) {
        /* The NF replaces the answer. A provisional answer means the downstream transaction
         * is still running: stop it, its final response will be absorbed by nta. */
        if (msg)
            msg_destroy(msg);
        if (nta_incoming_status(f->irq) < 200) {
            /* a local 503 says when to come back (RFC 3261 §21.5.4), as the overload 503 does */
            char ra[24];
            snprintf(ra, sizeof(ra), "%u", f->s->retry_after ? f->s->retry_after : 5);
            nta_incoming_treply(f->irq, rc, NULL, TAG_IF(rc == 503, SIPTAG_RETRY_AFTER_STR(ra)), TAG_END());
        }
        if (status < 200 && nta_outgoing_method(orq) == sip_method_invite && ims_sip_cancel(f->s, orq) < 0)
            nta_outgoing_cancel(orq);
        fwd_finish(f);
        return;
    }

    relay(f, msg, sip);
    if (status >= 200)
        fwd_finish(f);
}

uint64_t ims_sip_fwd_current(const ims_sip *s)
{
    return s ? s->fwd_current : 0;
}

int ims_sip_fwd_resume(ims_sip *s, uint64_t id, msg_t *msg, int rc)
{
    struct ims_sip_fwd *f = s && id ? s->fwds : NULL;
    while (f && f->id != id)
        f = f->next;
    sip_t *sip = msg ? sip_object(msg) : NULL;
    if (!f || (!(sip && sip->sip_status) && (rc < 300 || rc > 699))) {
        if (msg)
            msg_destroy(msg);
        return -1;
    }
    int status = sip && sip->sip_status ? sip->sip_status->st_status : 200;
    fwd_deliver(f, f->orq, msg, sip, status, rc);
    return 0;
}

msg_t *ims_sip_request_copy(nta_incoming_t *irq)
{
    msg_t *ref = nta_incoming_getrequest(irq);
    if (!ref)
        return NULL;
    msg_t *copy = msg_copy(ref);    /* keeps ref's buffers alive as its parent */
    msg_destroy(ref);
    return copy;
}

/* ---------- the request a client transaction keeps ---------- */

/* sip: without ;transport is UDP here (no NAPTR), sips: is TLS */
static bool hop_is_reliable(const url_t *hop)
{
    char proto[8] = "";
    if (url_param(hop->url_params, "transport", proto, sizeof(proto)) > 0)
        return strcasecmp(proto, "udp") != 0;
    return hop->url_type == url_sips;
}

/* nta keeps a client transaction's request for its own timers: on UDP an INVITE one for 32 s
 * once it has a final response (Timer D, after a 2xx too: RFC 6026's Timer M), a non-INVITE one
 * for T4 (Timer K); on TCP it ends at once. The request we forward is usually a shallow copy
 * (ims_sip_request_copy) that keeps the received message alive as its parent for all that time,
 * whereas nta frees the server transaction on TCP at once and an INVITE's after T4 (Timer I).
 * When the client transaction will outlive it (next hop on UDP, upstream on TCP or an INVITE)
 * we forward a copy that owns its memory instead: printed and parsed anew, header fields in
 * their order (msg_dup would regroup them by kind), ~5 us for an INVITE. Issue 16: at the
 * P-CSCF under 300 calls/s the received INVITEs from the core kept ~90 MB of heap for their
 * copies to the UEs. Takes msg and the next hop `route` (in msg's home); returns the message to
 * send, with *route moved into it (msg itself when not needed or on failure: the shallow copy
 * stays correct). */
static msg_t *request_to_keep(ims_sip *s, nta_incoming_t *irq, msg_t *msg, url_string_t **route)
{
    if (hop_is_reliable((const url_t *)*route))
        return msg;
    tport_t *tp = nta_incoming_transport(s->agent, irq, NULL);
    bool upstream_short = (tp && tport_is_reliable(tp)) || nta_incoming_method(irq) == sip_method_invite;
    if (tp)
        tport_unref(tp);
    if (!upstream_short)
        return msg;     /* a non-INVITE on UDP keeps its request for Timer J, longer than Timer K */
    /* Content-Length and separator as nta would complete them at send (an NF may have edited
     * the body), then the text the copy is parsed from */
    if (sip_complete_message(msg) < 0 || msg_serialize(msg, (msg_pub_t *)sip_object(msg)) < 0)
        return msg;
    su_home_t home[1] = { SU_HOME_INIT(home) };
    size_t len = 0;
    char *text = msg_as_string(home, msg, NULL, 0, &len);
    msg_t *own = text ? msg_make(msg_mclass(msg), (int)msg_get_flags(msg, MSG_FLG_USERMASK), text, (ssize_t)len)
                      : NULL;
    su_home_deinit(home);
    sip_t *sip = own ? sip_object(own) : NULL;
    /* the next hop lives in msg's home (route_for): it moves with the request */
    url_t *hop = sip && sip->sip_request && !msg_get_flags(own, MSG_FLG_ERROR)
                     ? url_hdup(msg_home(own), (const url_t *)*route) : NULL;
    if (!hop) {
        if (own)
            msg_destroy(own);
        return msg;
    }
    *route = (url_string_t *)hop;
    msg_destroy(msg);
    return own;
}

int ims_sip_forward(ims_sip *s, nta_incoming_t *irq, msg_t *msg, const url_t *next_hop,
                    ims_sip_response_f on_response, void *arg)
{
    return ims_sip_forward_from(s, irq, msg, next_hop, NULL, on_response, arg);
}

int ims_sip_forward_from(ims_sip *s, nta_incoming_t *irq, msg_t *msg, const url_t *next_hop, const char *ident,
                         ims_sip_response_f on_response, void *arg)
{
    sip_t *sip = sip_object(msg);
    int status = 500;
    const char *phrase = NULL;

    if (!s || !irq || !sip || !sip->sip_request) {
        if (msg)
            msg_destroy(msg);
        return reject(irq, SIP_500_INTERNAL_SERVER_ERROR);
    }

    /* Answered meanwhile, e.g. CANCELled (nta sent 487) while the NF waited for the HSS: the
     * request must not go anywhere now. */
    if (nta_incoming_method(irq) != sip_method_ack && nta_incoming_status(irq) >= 200) {
        msg_destroy(msg);
        return reject(irq, 0, NULL);
    }

    int mf = max_forwards(msg, sip, true);
    if (mf) {
        msg_destroy(msg);
        return reject(irq, mf, mf == 483 ? "Too Many Hops" : NULL);
    }

    const url_t *hop = next_hop;
    if (!hop && default_target(sip, &hop, &status, &phrase) < 0) {
        msg_destroy(msg);
        return reject(irq, status, phrase);
    }
    url_string_t *route = route_for(s, msg, hop, &status, &phrase);
    if (!route) {
        msg_destroy(msg);
        return reject(irq, status, phrase);
    }

    if (sip->sip_request->rq_method == sip_method_ack) {
        /* Nothing answers an ACK: send it (send_ack: no client transaction) and let irq go. */
        int rc = send_ack(s, msg, sip, (const url_t *)route, ident);
        nta_incoming_destroy(irq);
        return rc;
    }

    struct ims_sip_fwd *f = calloc(1, sizeof(*f));
    if (!f) {
        msg_destroy(msg);
        return reject(irq, SIP_500_INTERNAL_SERVER_ERROR);
    }
    f->s = s;
    f->id = ++s->fwd_next_id;
    f->irq = irq;
    f->on_response = on_response;
    f->arg = arg;

    msg = request_to_keep(s, irq, msg, &route);
    /* Responses are never delivered inside mcreate (nta queues its own errors to the loop). */
    f->orq = nta_outgoing_mcreate(s->agent, fwd_response, (nta_outgoing_magic_t *)f, route, msg,
                                  TAG_IF(ident, TPTAG_IDENT(ident)), TAG_END());
    if (!f->orq) {
        free(f);
        msg_destroy(msg);       /* nta leaves it with us when it refuses */
        return reject(irq, 500, "Cannot forward request");
    }
    fwd_link(s, f);
    nta_incoming_bind(irq, fwd_irq_event, (nta_incoming_magic_t *)f);

    /* §16.2: a stateful proxy answers an INVITE with 100 Trying itself. */
    if (nta_incoming_method(irq) == sip_method_invite && nta_incoming_status(irq) < 100)
        nta_incoming_treply(irq, SIP_100_TRYING, TAG_END());
    return 0;
}

int ims_sip_proxy_onward(ims_sip *s, nta_incoming_t *irq, msg_t *msg, ims_sip_response_f on_response,
                         void *arg)
{
    sip_t *sip = sip_object(msg);
    if (!s || !sip || !sip->sip_request) {
        if (msg)
            msg_destroy(msg);
        return reject(irq, SIP_500_INTERNAL_SERVER_ERROR);
    }

    /* §16.4: the previous hop was a strict router when the Request-URI names us: the real
     * target is the last Route. */
    if (ims_sip_is_self(s, sip->sip_request->rq_url) && sip->sip_route) {
        sip_route_t *last = sip->sip_route;
        while (last->r_next)
            last = last->r_next;
        sip_request_t *rq = sip_request_create(msg_home(msg), sip->sip_request->rq_method,
                                               sip->sip_request->rq_method_name,
                                               (url_string_t *)last->r_url, NULL);
        if (!rq || msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_request,
                                      (msg_header_t *)rq) < 0) {
            msg_destroy(msg);
            return reject(irq, SIP_500_INTERNAL_SERVER_ERROR);
        }
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)last);
    }

    /* §16.4: pop the Route that names us (the previous hop put it there, or our own
     * Record-Route came back as a Route in the dialog). */
    if (sip->sip_route && ims_sip_is_self(s, sip->sip_route->r_url))
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_route);

    return ims_sip_forward(s, irq, msg, NULL, on_response, arg);
}

/* ---------- requests of our own ---------- */

static void uac_unlink(struct ims_sip_uac *u)
{
    count_active(-1);
    if ((*u->prev = u->next))
        u->next->prev = u->prev;
}

static int uac_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
    struct ims_sip_uac *u = (struct ims_sip_uac *)magic;
    int status = sip && sip->sip_status ? sip->sip_status->st_status : 500;
    if (status < 200)
        return 0;
    uac_unlink(u);
    if (u->on_response)
        u->on_response(u->arg, status, sip);
    /* After the callback: sip belongs to the response held by orq. */
    nta_outgoing_destroy(orq);
    free(u);
    return 0;
}

int ims_sip_send_request(ims_sip *s, msg_t *msg, const url_t *next_hop, ims_sip_uac_f on_response,
                         void *arg)
{
    sip_t *sip = sip_object(msg);
    int status = 0;
    const char *phrase = NULL;

    if (!s || !sip || !sip->sip_request || !sip->sip_call_id || !sip->sip_cseq || !sip->sip_from ||
        !sip->sip_to || max_forwards(msg, sip, false) != 0)
        goto fail;
    const url_t *hop = next_hop;
    if (!hop && default_target(sip, &hop, &status, &phrase) < 0)
        goto fail;
    url_string_t *route = route_for(s, msg, hop, &status, &phrase);
    if (!route)
        goto fail;

    if (sip->sip_request->rq_method == sip_method_ack)
        return send_ack(s, msg, sip, (const url_t *)route, NULL);   /* takes msg */

    struct ims_sip_uac *u = calloc(1, sizeof(*u));
    if (!u)
        goto fail;
    u->s = s;
    u->on_response = on_response;
    u->arg = arg;
    u->orq = nta_outgoing_mcreate(s->agent, uac_response, (nta_outgoing_magic_t *)u, route, msg, TAG_END());
    if (!u->orq) {
        free(u);
        goto fail;
    }
    u->prev = &s->uacs;
    if ((u->next = s->uacs))
        u->next->prev = &u->next;
    s->uacs = u;
    count_active(1);
    return 0;

fail:
    if (msg)
        msg_destroy(msg);
    return -1;
}

/* ---------- helpers for ims_sip_fork.c ---------- */

void ims_sip_count_active(int64_t delta)
{
    count_active(delta);
}

int ims_sip_reject(nta_incoming_t *irq, int status, const char *phrase)
{
    return reject(irq, status, phrase);
}

int ims_sip_max_forwards(msg_t *msg, sip_t *sip, bool decrement)
{
    return max_forwards(msg, sip, decrement);
}

url_string_t *ims_sip_route_of(ims_sip *s, msg_t *msg, const url_t *hop, int *status, const char **phrase)
{
    sip_t *sip = sip_object(msg);
    if (!hop && (!sip || !sip->sip_request || default_target(sip, &hop, status, phrase) < 0))
        return NULL;
    return route_for(s, msg, hop, status, phrase);
}

/* ---------- stray responses, shutdown ---------- */

int ims_sip_stray_response(ims_sip *s, msg_t *msg, sip_t *sip)
{
    /* Only 2xx to INVITE: they are end-to-end and must reach the UAC (it ACKs them). Any other
     * late response belongs to a transaction that is over: relaying it could answer a newer
     * request upstream (e.g. an abandoned attempt to one S-CSCF while another is tried).
     * Forward only what carries our Via on top and someone else's below it; nta_msg_tsend
     * removes the top Via and sends to the next one (RFC 3261 §18.2.2). */
    int status = sip->sip_status->st_status;
    if (!sip->sip_cseq || sip->sip_cseq->cs_method != sip_method_invite || status < 200 || status >= 300) {
        msg_destroy(msg);
        return 0;
    }
    sip_via_t *v = sip->sip_via;
    bool ours = false;
    for (sip_via_t const *lv = nta_agent_via(s->agent); v && lv && !ours; lv = lv->v_next)
        ours = lv->v_host && v->v_host && strcasecmp(lv->v_host, v->v_host) == 0 &&
               strcmp(lv->v_port ? lv->v_port : "5060", v->v_port ? v->v_port : "5060") == 0;
    if (!ours || !v->v_next || (s->stray_2xx_drop && s->stray_2xx_drop(s->stray_2xx_arg, sip))) {
        msg_destroy(msg);
        return 0;
    }
    nta_msg_tsend(s->agent, msg, NULL, TAG_END());
    return 0;
}

void ims_sip_set_stray_2xx_filter(ims_sip *s, bool (*drop)(void *arg, const sip_t *sip), void *arg)
{
    if (!s)
        return;
    s->stray_2xx_drop = drop;
    s->stray_2xx_arg = arg;
}

void ims_sip_proxy_shutdown(ims_sip *s)
{
    while (s->fwds)
        fwd_finish(s->fwds);
    while (s->uacs) {
        struct ims_sip_uac *u = s->uacs;
        uac_unlink(u);
        nta_outgoing_destroy(u->orq);
        free(u);
    }
}
