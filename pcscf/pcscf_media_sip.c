/*
 * pcscf_media_sip: the SIP side of media anchoring (pcscf_media.h): which SDP is an offer and
 * which an answer, the rtpengine request for it, and holding the message until rtpengine answered.
 *
 * References: RFC 3264 (offer/answer), RFC 3261 §13.2.1 (offer in the INVITE, or in the 2xx with
 * the answer in the ACK: "late offer"), RFC 3262 §5 (offer/answer in reliable provisional
 * responses and PRACK), RFC 3311 (UPDATE), RFC 3261 §16.7 (forking: one early dialog per to-tag),
 * rtpengine ng protocol (offer/answer/delete; "from-tag" is always the offerer's tag, "to-tag"
 * the answerer's, so the SIP tags are swapped for an offer in a response and an answer in a
 * request, as Kamailio's rtpengine module does).
 *
 * Which message is what (per leg):
 *   INVITE / UPDATE with SDP            offer
 *   INVITE without SDP                  its 18x/2xx SDP is an offer (late offer), ACK/PRACK answers
 *   PRACK with SDP                      answer to a late offer, else an offer
 *   18x / 2xx with SDP                  answer to the request's SDP, else an offer (above)
 *   ACK with SDP                        answer to a late offer (anything else passes)
 *   BYE                                 delete (pcscf_media.c media_delete)
 *   final failure of the initial INVITE delete; a 2xx deletes the other early dialogs' media
 *
 * Towards a UE the SDP gets rtpengine's access-side address and no ICE candidates (ICE remove);
 * from a UE rtpengine takes the address the SIP message came from (SIP-source-address,
 * received-from: UEs behind NAT). a=sendonly/recvonly/inactive pass through (hold/resume).
 *
 * Holding: a request waits in a media_hold (its irq stays ours; a CANCEL meanwhile makes nta
 * answer 487, and the offer is then deleted). A response is held through ims_sip_forward's
 * IMS_SIP_RESPONSE_HOLD; the responses of one transaction leave in the order they came (a queue
 * per transaction), so a 200 never overtakes the 183 before it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include "ims_clock.h"
#include "ims_log.h"
#include "pcscf_media_int.h"
#include "pcscf_util.h"

#define SUBSYS PCSCF_MEDIA_SUBSYS

/* on_response gets a key only (ims_pending.h): the module's state is this one (one P-CSCF per
 * process, on its SIP loop). */
static pcscf_media *the_media;

/* A request held while rtpengine answers. */
typedef struct media_hold {
    struct media_hold *next, **prev;
    pcscf_media *m;
    nta_incoming_t *irq;
    msg_t *msg;
    pcscf_media_send send;      /* next_hop lives in msg's home; ident points at ident[] */
    char ident[32];
    char *key;                  /* the leg's (media_leg_get) */
    ims_rtpe_cmd cmd;
    bool initial;
    uint64_t txn;               /* the record for its responses (0: none) */
    ims_rtpe_req *q;
} media_hold;

struct media_resp;

/* One forwarded INVITE / UPDATE / PRACK of a leg, for its responses. */
typedef struct {
    pcscf_media *m;
    uint64_t key;
    char *leg;                  /* the leg's key (media_leg_get) */
    nta_incoming_t *irq;        /* upstream (valid until the final response is handed back) */
    bool initial;               /* the initial INVITE of the leg */
    bool req_sdp;               /* the request carried SDP: an SDP in a response answers it */
    bool to_ue;                 /* the request went to the UE: responses come from it */
    pcscf_addr ue;
    uint64_t fwd;               /* ims_sip_fwd_current of the forward */
    struct media_resp *head, **tail;
} media_txn;

typedef struct media_resp {
    struct media_resp *next;
    media_txn *t;
    msg_t *msg;
    int status;
    bool ready;                 /* rtpengine done (or not needed) */
    int rc;                     /* 0: relay msg; >= 300: answer with that instead */
    bool held_2xx;              /* counted in the leg's held_2xx */
    ims_rtpe_req *q;
    ims_rtpe_cmd cmd;
} media_resp;

/* ---------- helpers ---------- */

static bool has_sdp(const sip_t *sip)
{
    return sip->sip_payload && sip->sip_payload->pl_len > 0 && sip->sip_content_type &&
           sip->sip_content_type->c_type && strcasecmp(sip->sip_content_type->c_type, "application/sdp") == 0;
}

/* The body becomes sdp; Content-Length follows. 0 / -1. */
static int set_body(msg_t *msg, sip_t *sip, const char *sdp, size_t len)
{
    su_home_t *home = msg_home(msg);
    sip_payload_t *pl = sip_payload_create(home, sdp, (isize_t)len);
    sip_content_length_t *cl = sip_content_length_create(home, (uint32_t)len);
    if (!pl || !cl)
        return -1;
    if (sip->sip_payload ? msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_payload, (msg_header_t *)pl)
                         : msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)pl))
        return -1;
    if (sip->sip_content_length ? msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_content_length,
                                                     (msg_header_t *)cl)
                                : msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)cl))
        return -1;
    return 0;
}

/* The ng request for the SDP of msg, which goes to the UE (to_ue) or comes from it. Offers carry
 * the direction; tags: from = the offerer's, to = the answerer's. */
static void ng_request(const pcscf_media *m, ims_rtpe_request *rq, ims_rtpe_cmd cmd, const media_leg *leg,
                       const sip_t *sip, const char *from_tag, const char *to_tag, bool to_ue, const pcscf_addr *ue)
{
    static const char *const replace[] = { "origin", "session-connection" };
    static const char *const from_ue_flags[] = { "SIP-source-address" };
    const pcscf_media_cfg *c = &m->ctx->cfg.pcscf.media;
    ims_rtpe_request_init(rq, cmd);
    rq->call_id = leg->key;
    rq->from_tag = from_tag;
    rq->to_tag = to_tag;
    rq->sdp = (const char *)sip->sip_payload->pl_data;
    rq->sdp_len = sip->sip_payload->pl_len;
    rq->replace = replace;
    rq->n_replace = 2;
    if (cmd == IMS_RTPE_OFFER && c->access_interface && c->core_interface) {
        rq->direction[0] = to_ue ? c->core_interface : c->access_interface;
        rq->direction[1] = to_ue ? c->access_interface : c->core_interface;
    }
    if (to_ue) {
        rq->ice = "remove";
    } else {
        rq->flags = from_ue_flags;   /* NAT: the media comes from where the signalling did */
        rq->n_flags = 1;
        rq->received_from = ue->host;
    }
}

static int send_on(pcscf_media *m, pcscf_context *ctx, nta_incoming_t *irq, msg_t *msg, const pcscf_media_send *send,
                   uint64_t txn);

/* ---------- responses ---------- */

static void txn_free(media_txn *t)
{
    while (t->head) {
        media_resp *r = t->head;
        t->head = r->next;
        ims_rtpe_cancel(r->q);
        if (r->msg)
            msg_destroy(r->msg);
        free(r);
    }
    free(t->leg);
    free(t);
}

static void txn_cleanup(void *arg, uint64_t key, void *rec, ims_pending_reason reason)
{
    (void)arg;
    (void)key;
    (void)reason;
    txn_free(rec);
}

static void txn_release(media_txn *t)
{
    void *rec = NULL;
    ims_pending_release(t->m->txns, t->key, &rec);
    txn_free(t);
}

/* Another branch of this forked terminating call was confirmed (a 2xx went up). */
static bool sibling_confirmed(pcscf_media *m, const media_leg *leg)
{
    for (unsigned b = 0; leg->role == LEG_TERM && b < MEDIA_MAX_BRANCHES; b++) {
        media_leg *o = media_leg_branch(m, leg->call_id, LEG_TERM, b);
        if (o && o != leg && o->confirmed)
            return true;
    }
    return false;
}

/* A response is through rtpengine (or needed nothing): the leg learns what it says. relayed
 * false: a 2xx that does not reach the caller (the proxy ends the callee's dialog). */
static void resp_settle(media_txn *t, media_resp *r, bool relayed)
{
    sip_t *sip = r->msg ? sip_object(r->msg) : NULL;
    pcscf_media *m = t->m;
    media_leg *leg = media_leg_get(m, t->leg);
    if (!leg || !sip || !t->initial || r->status < 200)
        return;
    if (r->status >= 300 || !relayed) {
        media_delete(m, leg, NULL, r->status >= 300 && sibling_confirmed(m, leg) ? MEDIA_DEL_FORK_LOST : MEDIA_DEL_FAILED);
        return;
    }
    if (sip->sip_to && sip->sip_to->a_tag && !leg->confirmed) {
        /* the winning early dialog: the others' media goes (RFC 3261 §16.7 forking): other
         * to-tags of this leg (forked downstream of us), other branches (forked to our UEs) */
        leg->confirmed = true;
        for (size_t i = 0; i < leg->n_to_tags; i++)
            if (strcmp(leg->to_tags[i], sip->sip_to->a_tag) != 0)
                media_delete(m, leg, leg->to_tags[i], MEDIA_DEL_FORK_LOST);
        for (unsigned b = 0; leg->role == LEG_TERM && b < MEDIA_MAX_BRANCHES; b++) {
            media_leg *o = media_leg_branch(m, leg->call_id, LEG_TERM, b);
            if (o && o != leg && !o->confirmed)
                media_delete(m, o, NULL, MEDIA_DEL_FORK_LOST);
        }
    }
}

/* A final 2xx of the initial INVITE that will not reach the caller: replaced by an error (503:
 * rtpengine failed), or the caller's transaction is over (a CANCEL crossed it: nta sent 487).
 * ims_sip_fwd_resume then ACKs and BYEs the callee (ims_sip.h). */
static bool resp_lost(const media_txn *t, const media_resp *r)
{
    return t->initial && r->status >= 200 && r->status < 300 &&
           (r->rc >= 300 || (t->irq && nta_incoming_status(t->irq) >= 200));
}

static void resp_unhold(media_txn *t, media_resp *r)
{
    media_leg *leg = media_leg_get(t->m, t->leg);
    if (leg && r->held_2xx && leg->held_2xx > 0)
        leg->held_2xx--;
}

/* Hands back the responses at the head that are ready, in order. */
static void txn_drain(media_txn *t)
{
    ims_sip *s = t->m->ctx->sip;
    while (t->head && t->head->ready) {
        media_resp *r = t->head;
        if (!(t->head = r->next))
            t->tail = &t->head;
        resp_unhold(t, r);
        resp_settle(t, r, !resp_lost(t, r));
        bool final = r->status >= 200;
        ims_sip_fwd_resume(s, t->fwd, r->msg, r->rc);
        free(r);
        if (final) {
            txn_release(t);
            return;
        }
    }
}

/* rtpengine failed a response's offer/answer: reject (503 instead; the leg of a call being set
 * up goes) or pass it unanchored. */
static void resp_failed(media_txn *t, media_resp *r, const ims_rtpe_result *res)
{
    pcscf_media *m = t->m;
    media_leg *leg = media_leg_get(m, t->leg);
    if (leg)
        media_count_failed(m, r->status < 200 ? "SDP of a provisional response" : "SDP of a 2xx", leg, res);
    if (m->ctx->cfg.pcscf.media.on_failure == PCSCF_MEDIA_FAIL_PASS) {
        ims_metric_inc(m->m_unanchored);
        return;
    }
    ims_metric_inc(m->m_refused);
    r->rc = 503;
    if (leg && t->initial)
        media_delete(m, leg, NULL, MEDIA_DEL_ERROR);
}

static void resp_done(void *arg, const ims_rtpe_result *res)
{
    media_resp *r = arg;
    media_txn *t = r->t;
    r->q = NULL;
    r->ready = true;
    media_note_live(t->m);
    media_leg *leg = media_leg_get(t->m, t->leg);
    if (res->status == IMS_RTPE_OK && res->sdp && leg) {
        sip_t *sip = sip_object(r->msg);
        if (set_body(r->msg, sip, res->sdp, res->sdp_len) == 0) {
            if (r->cmd == IMS_RTPE_OFFER)
                media_count_created(t->m, leg);
        } else {
            r->rc = 500;
        }
    } else {
        resp_failed(t, r, res);
    }
    txn_drain(t);
}

static int on_response(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    pcscf_media *m = the_media;
    media_txn *t = m ? ims_pending_get(m->txns, ims_pending_key(arg)) : NULL;
    if (!t)
        return 0;   /* the record is gone (shutdown): relayed as it is */
    if (!t->fwd)
        t->fwd = ims_sip_fwd_current(m->ctx->sip);
    media_resp *r = calloc(1, sizeof(*r));
    if (!r)
        return 500;
    r->t = t;
    r->msg = msg;
    r->status = sip->sip_status->st_status;
    r->ready = true;
    t->irq = irq;
    media_leg *leg = media_leg_get(m, t->leg);
    if (leg) {
        leg->touched = ims_monotonic_s();
        if (t->initial && r->status > 100 && r->status < 300 && sip->sip_to && sip->sip_to->a_tag)
            media_leg_add_to_tag(leg, sip->sip_to->a_tag);   /* its early dialog (in-dialog requests find it) */
    }
    if (leg && r->status > 100 && r->status < 300 && has_sdp(sip) && sip->sip_from && sip->sip_to) {
        const char *ftag = sip->sip_from->a_tag, *ttag = sip->sip_to->a_tag;
        ims_rtpe_request rq;
        r->cmd = t->req_sdp ? IMS_RTPE_ANSWER : IMS_RTPE_OFFER;
        if (r->cmd == IMS_RTPE_OFFER)
            leg->late_offer = true;   /* the ACK (or PRACK) answers */
        ng_request(m, &rq, r->cmd, leg, sip, r->cmd == IMS_RTPE_ANSWER ? ftag : ttag,
                   r->cmd == IMS_RTPE_ANSWER ? ttag : ftag, !t->to_ue, &t->ue);
        char err[200];
        leg->at_rtpe = true;
        r->q = ims_rtpe_send(m->rtpe, &rq, resp_done, r, err, sizeof(err));
        if (r->q) {
            r->ready = false;
        } else {
            IMS_WARN(SUBSYS, "%s: %s not sent: %s", leg->key, ims_rtpe_cmd_name(r->cmd), err);
            ims_rtpe_result none = { .status = IMS_RTPE_ERROR, .error_reason = err };
            resp_failed(t, r, &none);
        }
    }
    if (!t->head && r->ready) {   /* nothing to wait for: the proxy relays it now */
        int rc = r->rc;
        resp_settle(t, r, !resp_lost(t, r));
        bool final = r->status >= 200;
        free(r);
        if (final)
            txn_release(t);
        return rc;
    }
    if (leg && t->initial && r->status >= 200 && r->status < 300) {
        r->held_2xx = true;   /* its retransmissions wait for it (stray_2xx_held) */
        leg->held_2xx++;
    }
    *t->tail = r;
    t->tail = &r->next;
    return IMS_SIP_RESPONSE_HOLD;
}

/* ---------- requests ---------- */

static void hold_free(media_hold *h)
{
    if ((*h->prev = h->next))
        h->next->prev = h->prev;
    ims_rtpe_cancel(h->q);
    free(h->key);
    free(h);
}

static void reply_503(pcscf_context *ctx, nta_incoming_t *irq)
{
    char ra[24];
    snprintf(ra, sizeof(ra), "%ld", ctx->cfg.sip.retry_after > 0 ? ctx->cfg.sip.retry_after : 5);
    nta_incoming_treply(irq, 503, "Service Unavailable - No Media Relay", SIPTAG_RETRY_AFTER_STR(ra), TAG_END());
    nta_incoming_destroy(irq);
}

static void hold_done(void *arg, const ims_rtpe_result *res)
{
    media_hold *h = arg;
    pcscf_media *m = h->m;
    pcscf_context *ctx = m->ctx;
    h->q = NULL;
    media_note_live(m);
    nta_incoming_t *irq = h->irq;
    msg_t *msg = h->msg;
    pcscf_media_send send = h->send;
    char ident[sizeof(h->ident)];
    memcpy(ident, h->ident, sizeof(ident));
    if (send.ident)
        send.ident = ident;
    uint64_t txn = h->txn;
    ims_rtpe_cmd cmd = h->cmd;
    bool initial = h->initial;
    media_leg *leg = media_leg_get(m, h->key);
    bool ack = sip_object(msg)->sip_request->rq_method == sip_method_ack;
    hold_free(h);

    if (!ack && nta_incoming_status(irq) >= 200) {
        /* answered meanwhile (CANCEL: nta sent 487): nothing goes on, the offer is undone */
        if (leg && initial)
            media_delete(m, leg, NULL, MEDIA_DEL_FAILED);
        msg_destroy(msg);
        nta_incoming_destroy(irq);
        if (txn) {
            media_txn *t = ims_pending_get(m->txns, txn);
            if (t)
                txn_release(t);
        }
        return;
    }
    if (res->status == IMS_RTPE_OK && res->sdp && leg) {
        if (set_body(msg, sip_object(msg), res->sdp, res->sdp_len) == 0) {
            if (cmd == IMS_RTPE_OFFER)
                media_count_created(m, leg);
            send_on(m, ctx, irq, msg, &send, txn);
            return;
        }
    }
    if (leg)
        media_count_failed(m, ack ? "SDP of an ACK" : "SDP of a request", leg, res);
    else
        IMS_INFO(SUBSYS, "media of Call-ID %s gone while rtpengine answered", sip_object(msg)->sip_call_id->i_id);
    if (ack || ctx->cfg.pcscf.media.on_failure == PCSCF_MEDIA_FAIL_PASS) {
        /* an ACK cannot be refused; with on_failure pass nothing is */
        ims_metric_inc(m->m_unanchored);
        send_on(m, ctx, irq, msg, &send, txn);
        return;
    }
    ims_metric_inc(m->m_refused);
    if (leg && initial)
        media_delete(m, leg, NULL, MEDIA_DEL_ERROR);
    msg_destroy(msg);
    reply_503(ctx, irq);
    if (txn) {
        media_txn *t = ims_pending_get(m->txns, txn);
        if (t)
            txn_release(t);
    }
}

static int send_on(pcscf_media *m, pcscf_context *ctx, nta_incoming_t *irq, msg_t *msg, const pcscf_media_send *send,
                   uint64_t txn)
{
    ims_sip_response_f cb = txn ? on_response : NULL;
    void *arg = ims_pending_arg(txn);
    int rc = send->onward ? ims_sip_proxy_onward(ctx->sip, irq, msg, cb, arg)
                          : ims_sip_forward_from(ctx->sip, irq, msg, send->next_hop, send->ident, cb, arg);
    if (rc && txn) {   /* answered already (error): no response will come */
        media_txn *t = ims_pending_get(m->txns, txn);
        media_leg *leg = t && t->initial ? media_leg_get(m, t->leg) : NULL;
        if (leg)
            media_delete(m, leg, NULL, MEDIA_DEL_FAILED);
        if (t)
            txn_release(t);
    }
    return 0;
}

/* The leg of an in-dialog request: the UE's tag (From when it sends, To when it receives) is the
 * caller's tag on its orig leg; otherwise it is the callee's to-tag on the branch of a term leg
 * that answered with it (a forked call has one term leg per contact reached here). */
static media_leg *dialog_leg(pcscf_media *m, const sip_t *sip, const pcscf_media_side *side)
{
    const char *ue_tag = side->to_ue ? sip->sip_to->a_tag : sip->sip_from ? sip->sip_from->a_tag : NULL;
    if (!ue_tag)
        return NULL;
    media_leg *leg = media_leg_find(m, sip->sip_call_id->i_id, LEG_ORIG);
    if (leg && strcmp(leg->caller_tag, ue_tag) == 0)
        return leg;
    for (unsigned b = 0; b < MEDIA_MAX_BRANCHES; b++) {
        leg = media_leg_branch(m, sip->sip_call_id->i_id, LEG_TERM, b);
        if (leg && strcmp(leg->caller_tag, ue_tag) != 0 && media_leg_has_to_tag(leg, ue_tag))
            return leg;
    }
    return NULL;
}

static void refuse_foreign(pcscf_media *m, const sip_t *sip, const media_leg *leg, const pcscf_media_side *side)
{
    static ims_log_limit limit;
    unsigned long unlogged;
    ims_metric_inc(m->m_refused);
    if (ims_log_allow(&limit, &unlogged))
        IMS_WARN(SUBSYS, "INVITE from %s:%u/%s with Call-ID %s refused: that call's media belongs to %s:%u/%s "
                 "(%lu similar not logged)", side->ue->host, side->ue->port, side->ue->transport,
                 sip->sip_call_id->i_id, leg->owner.host, leg->owner.port, leg->owner.transport, unlogged);
}

/* The media leg of the dialog of in-dialog request sip from or to side->ue; NULL: none, or
 * another UE's media (the Record-Route token already bound the address). */
static media_leg *own_dialog_leg(pcscf_media *m, const sip_t *sip, const pcscf_media_side *side)
{
    media_leg *leg = dialog_leg(m, sip, side);
    return leg && !side->to_ue && strcmp(leg->owner.host, side->ue->host) != 0 ? NULL : leg;
}

void pcscf_media_bye(pcscf_context *ctx, const sip_t *sip, const pcscf_media_side *side)
{
    pcscf_media *m = ctx->media;
    if (!m || !sip->sip_call_id || !sip->sip_call_id->i_id || !sip->sip_to || !sip->sip_to->a_tag || !side ||
        !side->ue)
        return;
    media_leg *leg = own_dialog_leg(m, sip, side);
    if (leg)
        media_delete(m, leg, NULL, MEDIA_DEL_BYE);
    else
        media_delete_unknown(m, sip->sip_call_id->i_id);
}

int pcscf_media_forward(pcscf_context *ctx, nta_incoming_t *irq, msg_t *msg, const pcscf_media_side *side,
                        const pcscf_media_send *send)
{
    pcscf_media *m = ctx->media;
    sip_t *sip = sip_object(msg);
    if (!m || !sip || !sip->sip_request || !sip->sip_call_id || !sip->sip_call_id->i_id || !sip->sip_to ||
        !side || !side->ue)
        return send_on(m, ctx, irq, msg, send, 0);
    sip_method_t method = sip->sip_request->rq_method;
    if (method != sip_method_invite && method != sip_method_update && method != sip_method_prack &&
        method != sip_method_ack && method != sip_method_bye)
        return send_on(m, ctx, irq, msg, send, 0);
    bool initial = !sip->sip_to->a_tag;
    const char *from_tag = sip->sip_from ? sip->sip_from->a_tag : NULL;
    const char *to_tag = sip->sip_to->a_tag;
    media_leg *leg;
    if (initial) {
        if (method != sip_method_invite || !from_tag)
            return send_on(m, ctx, irq, msg, send, 0);   /* no dialog, no media */
        leg_role role = side->to_ue ? LEG_TERM : LEG_ORIG;
        leg = media_leg_find(m, sip->sip_call_id->i_id, role);
        if (leg && role == LEG_ORIG && !pcscf_flow_same(&leg->owner, side->ue)) {
            refuse_foreign(m, sip, leg, side);
            msg_destroy(msg);
            pcscf_reply(irq, 403, "Forbidden - Call-ID In Use");
            return 0;
        }
        /* towards a UE, another initial INVITE of a call that has a term leg is one more branch
         * of a fork (the S-CSCF reaches each registered contact, RFC 3261 §16.7): a leg of its own
         * (own rtpengine call, own owner), so that its 487 or its loss touches nothing else */
        if ((!leg || role == LEG_TERM) &&
            !(leg = media_leg_new(m, sip->sip_call_id->i_id, role, from_tag, side->ue))) {
            msg_destroy(msg);
            pcscf_reply(irq, 500, "Server Internal Error");
            return 0;
        }
    } else if (method == sip_method_bye) {
        pcscf_media_bye(ctx, sip, side);
        return send_on(m, ctx, irq, msg, send, 0);
    } else {
        leg = own_dialog_leg(m, sip, side);
    }
    if (!leg)
        return send_on(m, ctx, irq, msg, send, 0);
    leg->touched = ims_monotonic_s();   /* the dialog lives (media.max_session_s) */

    bool sdp = has_sdp(sip);
    ims_rtpe_cmd cmd = IMS_RTPE_OFFER;
    bool swap = false;   /* an answer in a request: the offerer is the To side */
    if (method == sip_method_ack) {
        if (!sdp || !leg->late_offer)
            return send_on(m, ctx, irq, msg, send, 0);
        cmd = IMS_RTPE_ANSWER;
        swap = true;
    } else if (method == sip_method_prack && sdp && leg->late_offer) {
        cmd = IMS_RTPE_ANSWER;
        swap = true;
    }
    if (cmd == IMS_RTPE_ANSWER)
        leg->late_offer = false;

    uint64_t txn = 0;
    if (method != sip_method_ack) {
        media_txn *t = calloc(1, sizeof(*t));
        if (t && (t->leg = strdup(leg->key)) && (t->key = ims_pending_add(m->txns, t, 0))) {
            t->m = m;
            t->initial = initial;
            t->req_sdp = sdp && cmd == IMS_RTPE_OFFER;
            t->to_ue = side->to_ue;
            t->ue = *side->ue;
            t->tail = &t->head;
            txn = t->key;
        } else if (t) {
            free(t->leg);
            free(t);
        }
    }
    if (!sdp)
        return send_on(m, ctx, irq, msg, send, txn);

    media_hold *h = calloc(1, sizeof(*h));
    if (!h || !(h->key = strdup(leg->key))) {
        free(h);
        return send_on(m, ctx, irq, msg, send, txn);
    }
    h->m = m;
    h->irq = irq;
    h->msg = msg;
    h->send = *send;
    if (send->ident) {
        snprintf(h->ident, sizeof(h->ident), "%s", send->ident);
        h->send.ident = h->ident;
    }
    h->cmd = cmd;
    h->initial = initial;
    h->txn = txn;
    ims_rtpe_request rq;
    ng_request(m, &rq, cmd, leg, sip, swap ? to_tag : from_tag, swap ? from_tag : to_tag, side->to_ue, side->ue);
    char err[200];
    leg->at_rtpe = true;
    h->q = ims_rtpe_send(m->rtpe, &rq, hold_done, h, err, sizeof(err));
    h->prev = &m->holds;
    if ((h->next = m->holds))
        h->next->prev = &h->next;
    m->holds = h;
    if (!h->q) {
        IMS_WARN(SUBSYS, "%s: %s not sent: %s", leg->key, ims_rtpe_cmd_name(cmd), err);
        ims_rtpe_result none = { .status = IMS_RTPE_ERROR, .error_reason = err };
        hold_done(h, &none);
    }
    return 0;
}

/* ---------- start / stop ---------- */

/* ims_sip_set_stray_2xx_filter: a retransmitted 2xx of a call whose first 2xx waits for rtpengine
 * stays here (it carries the callee's SDP, not rtpengine's; the held one goes up once rewritten). */
static bool stray_2xx_held(void *arg, const sip_t *sip)
{
    pcscf_media *m = arg;
    if (!sip->sip_call_id || !sip->sip_call_id->i_id)
        return false;
    media_leg *o = media_leg_find(m, sip->sip_call_id->i_id, LEG_ORIG);
    if (o && o->held_2xx)
        return true;
    for (unsigned b = 0; b < MEDIA_MAX_BRANCHES; b++) {
        media_leg *t = media_leg_branch(m, sip->sip_call_id->i_id, LEG_TERM, b);
        if (t && t->held_2xx)
            return true;
    }
    return false;
}

int media_sip_start(pcscf_media *m)
{
    ims_timer_ops ops = ims_timer_ops_sip(m->ctx->sip);
    m->txns = ims_pending_new("pcscf media", &ops, txn_cleanup, m);
    if (!m->txns)
        return -1;
    the_media = m;
    ims_sip_set_stray_2xx_filter(m->ctx->sip, stray_2xx_held, m);
    return 0;
}

void media_sip_stop(pcscf_media *m)
{
    while (m->holds) {
        media_hold *h = m->holds;
        nta_incoming_t *irq = h->irq;
        bool ack = nta_incoming_method(irq) == sip_method_ack;
        msg_destroy(h->msg);
        hold_free(h);
        if (ack)
            nta_incoming_destroy(irq);
        else
            reply_503(m->ctx, irq);
    }
    the_media = NULL;
    ims_sip_set_stray_2xx_filter(m->ctx->sip, NULL, NULL);
    ims_pending_free(m->txns);   /* held responses dropped; ims_sip_destroy ends their forwards */
    m->txns = NULL;
}
