/*
 * icscf_register: REGISTER at the I-CSCF — user registration status query (UAR), S-CSCF
 * assignment, stateful forwarding and S-CSCF re-selection.
 *
 * References:
 *  - TS 24.229 §5.3.1.1: during registration the I-CSCF is a stateful proxy.
 *  - TS 24.229 §5.3.1.2: UAR to the HSS; without Authorization the IMPI is derived from the To
 *    URI (ims_sip_impi_of); on the answer, forward to the S-CSCF named by the HSS or to one
 *    selected from the capabilities; the Request-URI is not changed; no Path and no
 *    Record-Route (the I-CSCF is not on the path of later requests).
 *  - TS 24.229 §5.3.1.3 (abnormal cases): a negative answer of the HSS is 403 (Forbidden); when
 *    no S-CSCF fulfilling the capabilities can be selected, 600 (Busy Everywhere); when the
 *    S-CSCF does not answer (or answers 3xx / 480) to the first REGISTER sent to it, the I-CSCF
 *    queries the HSS again with User-Authorization-Type REGISTRATION_AND_CAPABILITIES and
 *    selects another S-CSCF.
 *  - TS 29.228 §6.1.1 (user registration status query; §6.1.1.1 the HSS, §6.1.1.2 the
 *    I-CSCF), TS 29.229 §6.3.24 User-Authorization-Type (1 when the REGISTER de-registers:
 *    expiry 0; 2 for re-selection), RFC 7315 §4.3 (P-Visited-Network-ID).
 *  - RFC 3261 §10.2.2 (Expires / Contact expires / Contact: *), §16.6-§16.7 (forwarding and
 *    response relay; §16.7 step 6: a 503 is not relayed as such).
 *
 * Mapping of the UAA (TS 29.229 §6.2 codes; the table is common/ims_register.c):
 *   Experimental 2001-2004, or base 2001        forward (Server-Name, else selection)
 *   Experimental 5001 USER_UNKNOWN              icscf.user_unknown_code (403)
 *   Experimental 5002-5006, base 5003           403 Forbidden (§5.3.1.3)
 *   no answer (timeout, HSS not connected),
 *   base 3002/3003/3004 (HSS not reachable),
 *   base 5012 UNABLE_TO_COMPLY                  480 Temporarily Unavailable + Retry-After (§5.3.1.3)
 *   anything else                               500 Server Internal Error
 *   no S-CSCF can be selected                   600 Busy Everywhere (§5.3.1.3)
 *   both S-CSCF attempts answered 503 with
 *   Retry-After (overloaded)                    500 with that Retry-After (RFC 3261 §16.7)
 *
 * Why the forwarding here is our own nta client transaction and not ims_sip_forward: on a
 * failed first attempt the I-CSCF must keep the upstream transaction and try another S-CSCF,
 * and it must give up on a silent S-CSCF long before nta's 32 s (by then the P-CSCF has timed
 * out too): icscf.scscf_timeout_ms bounds each attempt, so the P-CSCF gets an answer (the second
 * S-CSCF's, or 600) within about 2 x scscf_timeout_ms + 2 UARs. ims_sip_forward always answers upstream after the final response and cannot be
 * stopped early. So the REGISTER relay below does the RFC 3261 §16 steps itself: Max-Forwards,
 * our Via (nta), top-Via removal and relay of responses, CANCEL.
 *
 * States (ims_fsm, table reg_states below; TS 24.229 §5.3.1.2-§5.3.1.3):
 *
 *   WAIT_UAA ----UAA ok----> WAIT_SCSCF ---final (not retryable)---> relayed, done
 *      |                        | 3xx/408/480/503 or no final within icscf.scscf_timeout_ms
 *      | UAA refused            v
 *      +--> answered      WAIT_UAA_RESELECT (UAR type 2) --UAA ok--> WAIT_SCSCF_RETRY
 *                               | refused: 600                          | final: relayed, done;
 *                                                                       | failed again: 600 (500
 *                                                                       | + Retry-After if 503 with one)
 *
 * The cleanup (reg_cleanup) runs once whatever the end: it answers an unanswered REGISTER (503
 * when the NF stops, else 500), so no path leaves the P-CSCF waiting.
 *
 * Records are found by key (ims_pending) from Cx callbacks (the HSS may answer after the
 * REGISTER is gone); the client transaction and the state timer carry the record (its FSM
 * instance) because they are torn down with it.
 *
 * CANCEL: nta answers a CANCEL for a non-INVITE transaction 200 and tells nobody (RFC 3261 §9.2:
 * it has no effect on a non-INVITE request), so the REGISTER simply runs to its final response;
 * nothing upstream can destroy our irq either, so no nta_incoming_bind is needed here.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/url.h>

#include "icscf_context.h"
#include "ims_fsm.h"
#include "ims_identity.h"
#include "ims_log.h"
#include "ims_pending.h"
#include "ims_register.h"

#define SUBSYS "icscf.reg"
#define ID_MAX 512

typedef struct icscf_reg {
    icscf_context *ctx;
    uint64_t key;                    /* in ctx->regs; 0 once out of it */
    ims_fsm_inst *fi;                /* the state (reg_states) */
    nta_incoming_t *irq;             /* upstream REGISTER (ours until answered + destroyed) */
    nta_outgoing_t *orq;             /* REGISTER to the S-CSCF, or NULL */
    char impi[ID_MAX], impu[ID_MAX], visited[ID_MAX];
    int32_t uat;                     /* User-Authorization-Type of the first UAR */
    bool trusted;                    /* source in the trust domain (else trust headers are removed) */
    char scscf[ICSCF_URI_MAX];       /* S-CSCF of the current / last attempt */
} icscf_reg;

/* ---------- states ---------- */

enum {
    ST_WAIT_UAA,            /* UAR sent (type 0 or 1) */
    ST_WAIT_SCSCF,          /* REGISTER forwarded to the first S-CSCF */
    ST_WAIT_UAA_RESELECT,   /* the first S-CSCF failed: UAR type 2 sent */
    ST_WAIT_SCSCF_RETRY,    /* REGISTER forwarded to the second S-CSCF */
    N_STATES
};

enum {
    EV_UAA,                 /* data: struct msg * (NULL: no answer) */
    EV_SCSCF_RESPONSE,      /* data: scscf_response * */
    EV_SCSCF_TIMEOUT,       /* no final response within icscf.scscf_timeout_ms */
    N_EVENTS
};

typedef struct {
    int status;                      /* nta's status (500 when it gave none) */
    msg_t *msg;                      /* the response (ours), or NULL */
    sip_t *sip;
} scscf_response;

static void on_uaa_event(ims_fsm_inst *fi, int event, void *data);
static void on_scscf_event(ims_fsm_inst *fi, int event, void *data);
static void reg_cleanup(ims_fsm_inst *fi, ims_fsm_term_cause cause);

static const ims_fsm_state reg_states[N_STATES] = {
    [ST_WAIT_UAA] = { .name = "WAIT_UAA", .in_events = IMS_FSM_EV(EV_UAA),
                      .out_states = IMS_FSM_ST(ST_WAIT_SCSCF), .action = on_uaa_event },
    /* timeouts: icscf.scscf_timeout_ms, given on entry (ims_fsm_state_chg_ms) */
    [ST_WAIT_SCSCF] = { .name = "WAIT_SCSCF", .in_events = IMS_FSM_EV(EV_SCSCF_RESPONSE),
                        .out_states = IMS_FSM_ST(ST_WAIT_UAA_RESELECT), .action = on_scscf_event },
    [ST_WAIT_UAA_RESELECT] = { .name = "WAIT_UAA_RESELECT", .in_events = IMS_FSM_EV(EV_UAA),
                               .out_states = IMS_FSM_ST(ST_WAIT_SCSCF_RETRY), .action = on_uaa_event },
    [ST_WAIT_SCSCF_RETRY] = { .name = "WAIT_SCSCF_RETRY", .in_events = IMS_FSM_EV(EV_SCSCF_RESPONSE),
                              .action = on_scscf_event },
};

static const char *const reg_events[N_EVENTS] = { "UAA", "SCSCF_RESPONSE", "SCSCF_TIMEOUT" };

static const ims_fsm_def reg_fsm = {
    .name = "icscf_reg", .subsys = SUBSYS, .states = reg_states, .n_states = N_STATES,
    .event_names = reg_events, .n_events = N_EVENTS, .timeout_event = EV_SCSCF_TIMEOUT, .cleanup = reg_cleanup,
};

/* ---------- records ---------- */

/* Drops the downstream side (client transaction; the state timer goes with the state). */
static void reg_drop_attempt(icscf_reg *r)
{
    if (r->orq) {
        nta_outgoing_destroy(r->orq);   /* no more callbacks; nta completes it on its own */
        ims_sip_work_add(-1);
    }
    r->orq = NULL;
}

/* The end, whatever the state: answers the REGISTER if nobody did (so the P-CSCF never waits
 * for nothing), releases everything. */
static void reg_cleanup(ims_fsm_inst *fi, ims_fsm_term_cause cause)
{
    icscf_reg *r = ims_fsm_priv(fi);
    icscf_context *ctx = r->ctx;
    reg_drop_attempt(r);
    if (r->irq && nta_incoming_status(r->irq) < 200) {
        bool stopping = cause == IMS_FSM_TERM_SHUTDOWN;
        const char *phrase = stopping ? "Service Unavailable - Shutting Down" : "Server Internal Error";
        int status = stopping ? 503 : 500;
        nta_incoming_treply(r->irq, status, phrase, TAG_END());
        IMS_INFO(SUBSYS, "REGISTER %s (%s): %d %s (%s in %s)", r->impu, r->impi, status, phrase,
                 ims_fsm_term_name(cause), ims_fsm_state_name(fi));
        icscf_count_register("error");
    }
    if (r->irq) {
        nta_incoming_destroy(r->irq);
        r->irq = NULL;
    }
    if (r->key && ims_pending_release(ctx->regs, r->key, NULL))
        IMS_ERROR(SUBSYS, "REGISTER %s: record #%llu was not pending", r->impu, (unsigned long long)r->key);
    icscf_pending_changed(ctx, -1);
    free(r);
}

/* Answers upstream with a local response (if still possible) and finishes. */
static void reg_reply(icscf_reg *r, int status, const char *phrase, const char *result)
{
    if (r->irq && nta_incoming_status(r->irq) < 200)
        nta_incoming_treply(r->irq, status, phrase, TAG_END());
    IMS_INFO(SUBSYS, "REGISTER %s (%s): %d %s", r->impu, r->impi, status, phrase ? phrase : "");
    icscf_count_register(result);
    ims_fsm_term(r->fi, IMS_FSM_TERM_REGULAR);
}

/* ctx->regs ends here (the record is out of it already): the NF stops. */
static void reg_pending_cleanup(void *arg, uint64_t key, void *rec, ims_pending_reason reason)
{
    icscf_reg *r = rec;
    (void)arg;
    (void)key;
    (void)reason;   /* no deadline is set: the states' timeouts and Cx's own bound the wait */
    r->key = 0;
    reg_reply(r, 503, "Service Unavailable - Shutting Down", "error");
}

/* ---------- the request ---------- */

/* RFC 7315 §4.3: P-Visited-Network-ID = vnetwork-spec *(COMMA vnetwork-spec),
 * vnetwork-spec = (token / quoted-string) *(SEMI vnetwork-param). The first value, unquoted. */
static bool visited_network(const sip_t *sip, char *out, size_t len)
{
    char raw[ID_MAX];
    if (!ims_sip_header(sip, "P-Visited-Network-ID", raw, sizeof(raw)))
        return false;
    const char *p = raw;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < len; p++) {
            if (*p == '\\' && p[1])
                p++;
            out[n++] = *p;
        }
    } else {
        for (; *p && !strchr(",; \t", *p) && n + 1 < len; p++)
            out[n++] = *p;
    }
    out[n] = '\0';
    return n > 0;
}

static int32_t uat_of(const sip_t *sip)
{
    return ims_register_is_deregistration(sip) ? IMS_UAT_DE_REGISTRATION : IMS_UAT_REGISTRATION;
}

static void on_uaa(void *arg, struct msg *ans);

static int send_uar(icscf_reg *r, int32_t type)
{
    icscf_uar uar = { .impi = r->impi, .impu = r->impu, .visited = r->visited, .type = type };
    return icscf_cx_send_uar(r->ctx, &uar, on_uaa, ims_pending_arg(r->key));
}

int icscf_register_handle(icscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, bool trusted)
{
    int status = 0;
    const char *phrase = NULL;
    const char *result = NULL;
    icscf_reg *r = NULL;

    if (ctx->stopping) {
        status = 503;
        phrase = "Service Unavailable - Shutting Down";
        result = "error";
        goto out;
    }
    const url_t *ruri = sip->sip_request->rq_url;
    if (ruri->url_type != url_sip && ruri->url_type != url_sips) {
        status = 416;
        phrase = "Unsupported URI Scheme";
        result = "bad_request";
        goto out;
    }
    if (!icscf_is_home_domain(ctx, ruri->url_host)) {
        /* Only the home network's HSS knows the user: not ours to query (TS 24.229 §5.3.1.2). */
        status = 403;
        phrase = "Forbidden - Domain Not Served";
        result = "domain_not_served";
        goto out;
    }

    r = calloc(1, sizeof(*r));
    if (!r) {
        status = 500;
        result = "error";
        goto out;
    }
    r->ctx = ctx;
    /* the UAR names the IMPU in its canonical form (ims_identity), as the HSS stores it */
    char to_uri[sizeof(r->impu)];
    if (ims_sip_impu_of(sip, to_uri, sizeof(to_uri)) || ims_identity_normalise(to_uri, r->impu, sizeof(r->impu))) {
        status = 400;
        phrase = "Bad Request - No Usable Public Identity in To";
        result = "bad_request";
        goto out;
    }
    if (ims_sip_impi_of(sip, r->impi, sizeof(r->impi)) || !r->impi[0]) {
        /* A tel: IMPU gives no IMPI to derive (TS 24.229 §5.3.1.2 derives it from a SIP URI). */
        status = 400;
        phrase = "Bad Request - Private Identity Missing";
        result = "bad_request";
        goto out;
    }
    for (const msg_error_t *e = sip->sip_error; e; e = e->er_next) {
        if (e->er_name && (strcasecmp(e->er_name, "Expires") == 0 || strcasecmp(e->er_name, "Contact") == 0 ||
                           strcasecmp(e->er_name, "m") == 0)) {
            status = 400;
            phrase = "Bad Request - Malformed Contact or Expires";
            result = "bad_request";
            goto out;
        }
    }
    if (!visited_network(sip, r->visited, sizeof(r->visited)))
        snprintf(r->visited, sizeof(r->visited), "%s", ruri->url_host);   /* the home network itself */
    r->uat = uat_of(sip);
    r->trusted = trusted;
    if (!ctx->regs) {
        ims_timer_ops timers = ims_timer_ops_sip(ctx->sip);
        ctx->regs = ims_pending_new("icscf REGISTER", &timers, reg_pending_cleanup, ctx);
    }
    r->key = ims_pending_add(ctx->regs, r, 0);
    if (r->key) {
        ims_timer_ops timers = ims_timer_ops_sip(ctx->sip);
        r->fi = ims_fsm_new(&reg_fsm, &timers, r, r->impu, ST_WAIT_UAA);
        if (!r->fi)
            ims_pending_release(ctx->regs, r->key, NULL);
    }
    if (!r->fi) {
        status = 500;
        result = "error";
        goto out;
    }
    r->irq = irq;   /* from here on the record (its cleanup) answers it */
    icscf_pending_changed(ctx, +1);

    if (send_uar(r, r->uat)) {
        /* Not even sent: no HSS connection (ims_cx_send logged why). The one answer for an HSS
         * out of reach (common/ims_register.c): 480 with Retry-After. */
        ims_cx_sip cs;
        ims_cx_to_sip(false, 0, 0, IMS_CX_FOR_REGISTER, &cs);
        icscf_cx_reply(r->irq, &cs);
        reg_reply(r, cs.status, cs.phrase, cs.result);
        return 0;
    }
    IMS_DEBUG(SUBSYS, "REGISTER %s (%s) visited %s: UAR type %d", r->impu, r->impi, r->visited, r->uat);
    return 0;

out:
    free(r);
    if (result)
        icscf_count_register(result);
    if (status && phrase) {
        char to[ID_MAX] = "-";
        if (sip->sip_to)
            url_e(to, sizeof(to), sip->sip_to->a_url);
        to[sizeof(to) - 1] = '\0';
        IMS_INFO(SUBSYS, "REGISTER %s (Call-ID %s): %d %s", to,
                 sip->sip_call_id && sip->sip_call_id->i_id ? sip->sip_call_id->i_id : "-", status, phrase);
        nta_incoming_treply(irq, status, phrase, TAG_END());
        nta_incoming_destroy(irq);
        return 0;
    }
    return status ? status : 500;
}

/* ---------- forwarding to the S-CSCF ---------- */

static void start_reselection(icscf_reg *r, int status, const char *why);

/* RFC 3261 §16.7 step 3: remove our Via, relay. The response belongs to us (msg). */
static void relay(icscf_reg *r, msg_t *msg, sip_t *sip)
{
    if (sip->sip_via)
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_via);
    if (!sip->sip_via || !r->irq) {
        msg_destroy(msg);
        return;
    }
    nta_incoming_mreply(r->irq, msg);   /* frees msg when irq is already complete */
}

/* Responses worth another S-CSCF (TS 24.229 §5.3.1.3: no answer, 3xx, 480; 408 and 503 are what
 * nta reports for "no answer" and "transport error"; §16.7 step 6: never relay a 503). */
static bool retryable(int status)
{
    return (status >= 300 && status < 400) || status == 408 || status == 480 || status == 503;
}

static const char *result_of(int status)
{
    if (status >= 200 && status < 300)
        return "ok";
    if (status == 401)
        return "challenged";
    return "rejected";
}

/* The S-CSCF's response or timeout, in WAIT_SCSCF (first S-CSCF) or WAIT_SCSCF_RETRY. */
static void on_scscf_event(ims_fsm_inst *fi, int event, void *data)
{
    icscf_reg *r = ims_fsm_priv(fi);
    bool first = ims_fsm_state_of(fi) == ST_WAIT_SCSCF;

    if (event == EV_SCSCF_TIMEOUT) {
        if (first) {
            start_reselection(r, 408, "no final response");
            return;
        }
        IMS_WARN(SUBSYS, "REGISTER %s: no final response from %s either", r->impu, r->scscf);
        reg_reply(r, 600, "Busy Everywhere - No S-CSCF Available", "no_scscf");
        return;
    }

    scscf_response *resp = data;
    msg_t *msg = resp->msg;
    sip_t *sip = resp->sip;
    int status = resp->status;
    if (!msg || !sip || !sip->sip_status) {
        if (msg)
            msg_destroy(msg);
        if (status >= 200)
            reg_reply(r, 500, "Server Internal Error", "error");
        return;
    }
    status = sip->sip_status->st_status;
    if (status < 200) {
        relay(r, msg, sip);
        return;
    }

    if (retryable(status) && first) {
        msg_destroy(msg);
        start_reselection(r, status, sip->sip_status->st_phrase);
        return;
    }
    if (status == 503 && sip->sip_retry_after) {
        /* The second S-CSCF is overloaded too (it says when to come back): that is not "no S-CSCF
         * anywhere" (600 would tell the UE to give up). RFC 3261 §16.7 step 6: a proxy does not
         * relay a 503 as such; 500 may carry the Retry-After (§21.5.1), so the UE retries later. */
        IMS_WARN(SUBSYS, "REGISTER %s: %s overloaded as well (503, Retry-After %lu)", r->impu, r->scscf,
                 (unsigned long)sip->sip_retry_after->af_delta);
        sip_retry_after_t ra[1];
        sip_retry_after_init(ra)->af_delta = sip->sip_retry_after->af_delta;
        msg_destroy(msg);
        if (r->irq && nta_incoming_status(r->irq) < 200)
            nta_incoming_treply(r->irq, 500, "Server Internal Error - S-CSCF Overloaded",
                                SIPTAG_RETRY_AFTER(ra), TAG_END());
        icscf_count_register("overloaded");
        ims_fsm_term(fi, IMS_FSM_TERM_REGULAR);
        return;
    }
    if (retryable(status)) {
        /* The second S-CSCF failed as well: there is no S-CSCF to take the registration. */
        IMS_WARN(SUBSYS, "REGISTER %s: %s answered %d as well", r->impu, r->scscf, status);
        msg_destroy(msg);
        reg_reply(r, 600, "Busy Everywhere - No S-CSCF Available", "no_scscf");
        return;
    }
    IMS_INFO(SUBSYS, "REGISTER %s (%s) via %s: %d", r->impu, r->impi, r->scscf, status);
    icscf_count_register(result_of(status));
    relay(r, msg, sip);
    ims_fsm_term(fi, IMS_FSM_TERM_REGULAR);
}

/* nta's callback: the client transaction lives no longer than the record, so magic is valid. */
static int reg_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *csip)
{
    icscf_reg *r = (icscf_reg *)magic;
    scscf_response resp = { .status = csip && csip->sip_status ? csip->sip_status->st_status : 500 };
    resp.msg = nta_outgoing_getresponse(orq);
    resp.sip = resp.msg ? sip_object(resp.msg) : NULL;
    if (ims_fsm_dispatch(r->fi, EV_SCSCF_RESPONSE, &resp) < 0 && resp.msg)
        msg_destroy(resp.msg);
    return 0;
}

/* Sends the REGISTER to `scscf` (TS 24.229 §5.3.1.2: Request-URI unchanged, no Path, no
 * Record-Route). 0, or a status to answer upstream with. */
static int forward(icscf_reg *r, const char *scscf, const char **phrase)
{
    icscf_context *ctx = r->ctx;
    msg_t *msg = ims_sip_request_copy(r->irq);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    if (!sip) {
        if (msg)
            msg_destroy(msg);
        return 500;
    }
    /* The previous hop may have routed the REGISTER to us with a Route (loose routing). */
    if (sip->sip_route && ims_sip_is_self(ctx->sip, sip->sip_route->r_url))
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_route);
    /* RFC 3325 §5: from outside the trust domain (icscf.register_from_untrusted) nothing the
     * trust domain asserts is passed on; P-Visited-Network-ID stays (the visited P-CSCF's). */
    if (!r->trusted && icscf_strip_untrusted(msg, sip) > 0)
        IMS_DEBUG(SUBSYS, "REGISTER %s from outside the trust domain: trust-domain headers removed", r->impu);

    /* RFC 3261 §16.6 step 3. */
    char mf[24];
    if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0) {
        msg_destroy(msg);
        *phrase = "Too Many Hops";
        return 483;
    }
    snprintf(mf, sizeof(mf), "%lu", sip->sip_max_forwards ? sip->sip_max_forwards->mf_count - 1 : 70UL);
    msg_header_t *h = msg_header_make(msg_home(msg), sip_max_forwards_class, mf);
    if (!h || (sip->sip_max_forwards
                   ? msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_max_forwards, h)
                   : msg_header_insert(msg, (msg_pub_t *)sip, h)) < 0) {
        msg_destroy(msg);
        return 500;
    }

    url_t *target = url_make(msg_home(msg), scscf);
    /* the S-CSCF over the core transport (sip.core_transport) unless its name says otherwise */
    url_t *core = target && (target->url_type == url_sip || target->url_type == url_sips) && target->url_host
                      ? ims_sip_core_hop(ctx->sip, msg_home(msg), target)
                      : NULL;
    url_t *hop = core ? ims_sip_next_hop(ctx->sip, msg_home(msg), core) : NULL;
    if (!hop) {
        IMS_WARN(SUBSYS, "REGISTER %s: S-CSCF name '%s' is not a usable SIP URI", r->impu, scscf);
        msg_destroy(msg);
        *phrase = "Busy Everywhere - Bad S-CSCF Name";
        return 600;
    }
    snprintf(r->scscf, sizeof(r->scscf), "%s", scscf);
    r->orq = nta_outgoing_mcreate(ims_sip_agent(ctx->sip), reg_response, (nta_outgoing_magic_t *)r,
                                  (url_string_t *)hop, msg, TAG_END());
    if (!r->orq) {
        msg_destroy(msg);   /* nta leaves it with us when it refuses */
        return 500;
    }
    ims_sip_work_add(1);   /* work in progress for overload control, like a forward (ims_sip.h) */
    IMS_DEBUG(SUBSYS, "REGISTER %s -> %s (%s)", r->impu, scscf, ims_fsm_state_name(r->fi));
    return 0;
}

/* TS 24.229 §5.3.1.3 / TS 29.228 §6.1.1: the first S-CSCF failed; ask the HSS for the
 * capabilities (type 2) and select another one. */
static void start_reselection(icscf_reg *r, int status, const char *why)
{
    IMS_WARN(SUBSYS, "REGISTER %s: S-CSCF %s failed (%d %s): selecting another one", r->impu, r->scscf,
             status, why ? why : "");
    reg_drop_attempt(r);
    icscf_count_register("reselection");
    if (!r->irq || nta_incoming_status(r->irq) >= 200) {
        ims_fsm_term(r->fi, IMS_FSM_TERM_REGULAR);
        return;
    }
    if (send_uar(r, IMS_UAT_REGISTRATION_AND_CAPABILITIES)) {
        reg_reply(r, 600, "Busy Everywhere - No S-CSCF Available", "no_scscf");
        return;
    }
    ims_fsm_state_chg(r->fi, ST_WAIT_UAA_RESELECT);
}

/* ---------- the UAA ---------- */

/* Status for a UAA that ends the registration attempt here, 0 when it lets it go on. */
static int uaa_failure(const icscf_context *ctx, const icscf_cx_answer *a, ims_cx_sip *s)
{
    icscf_cx_to_sip(ctx, a, IMS_CX_FOR_REGISTER, s);
    return s->status;
}

/* The UAA (ans NULL: none), in WAIT_UAA or WAIT_UAA_RESELECT. */
static void on_uaa_event(ims_fsm_inst *fi, int event, void *data)
{
    icscf_reg *r = ims_fsm_priv(fi);
    icscf_context *ctx = r->ctx;
    struct msg *ans = data;
    (void)event;
    if (!r->irq || nta_incoming_status(r->irq) >= 200) {
        ims_fsm_term(fi, IMS_FSM_TERM_REGULAR);
        return;
    }

    icscf_cx_answer a;
    icscf_cx_read_answer(ans, &a);
    bool reselect = ims_fsm_state_of(fi) == ST_WAIT_UAA_RESELECT;
    IMS_DEBUG(SUBSYS, "UAA for %s: %s, Server-Name '%s', capabilities %s", r->impu, icscf_cx_answer_name(&a),
              a.server_name, a.caps.present ? "yes" : "no");

    const char *phrase = NULL;
    ims_cx_sip s;
    int status = uaa_failure(ctx, &a, &s);
    if (status) {
        IMS_INFO(SUBSYS, "REGISTER %s (%s): UAA %s", r->impu, r->impi, icscf_cx_answer_name(&a));
        if (reselect && !icscf_cx_unreachable(&a)) {
            /* The HSS refused the re-selection query: no other S-CSCF. */
            reg_reply(r, 600, "Busy Everywhere - No S-CSCF Available", "no_scscf");
            return;
        }
        icscf_cx_reply(r->irq, &s);
        reg_reply(r, s.status, s.phrase, s.result);
        return;
    }

    /* TS 24.229 §5.3.1.2: the S-CSCF the HSS names; else one selected from the capabilities
     * (on re-selection: never the one that failed, even if the HSS still names it). */
    char chosen[ICSCF_URI_MAX] = "";
    char failed[ICSCF_URI_MAX] = "", a_norm[ICSCF_URI_MAX] = "";
    if (reselect) {
        if (ims_sip_normalise_uri(r->scscf, failed, sizeof(failed)))
            snprintf(failed, sizeof(failed), "%s", r->scscf);
    }
    if (a.server_name[0]) {
        if (ims_sip_normalise_uri(a.server_name, a_norm, sizeof(a_norm)))
            snprintf(a_norm, sizeof(a_norm), "%s", a.server_name);
        if (!reselect || strcmp(a_norm, failed) != 0)
            snprintf(chosen, sizeof(chosen), "%s", a.server_name);
    }
    if (!chosen[0] &&
        icscf_scscf_select(ctx->pool, ctx->n_pool, &a.caps, reselect ? r->scscf : NULL,
                           ctx->cfg.icscf.selection == ICSCF_SELECT_HASH ? r->impu : NULL, chosen, sizeof(chosen))) {
        IMS_WARN(SUBSYS, "REGISTER %s: no S-CSCF fulfils the capabilities (%zu mandatory, %zu optional, "
                 "%zu named)%s", r->impu, a.caps.n_mandatory, a.caps.n_optional, a.caps.n_names,
                 reselect ? " other than the one that failed" : "");
        reg_reply(r, 600, "Busy Everywhere - No S-CSCF Available", "no_scscf");
        return;
    }
    phrase = NULL;
    status = forward(r, chosen, &phrase);
    if (status) {
        reg_reply(r, status, phrase, status == 600 ? "no_scscf" : status == 483 ? "bad_request" : "error");
        return;
    }
    /* bounded by icscf.scscf_timeout_ms (0: only by nta's Timer F) */
    long ms = ctx->cfg.icscf.scscf_timeout_ms;
    ims_fsm_state_chg_ms(fi, reselect ? ST_WAIT_SCSCF_RETRY : ST_WAIT_SCSCF, ms > 0 ? (unsigned)ms : 0);
}

/* Cx callback: finds the REGISTER by key (it may be gone: then nothing to do). */
static void on_uaa(void *arg, struct msg *ans)
{
    icscf_reg *r = ims_pending_get(icscf_ctx.regs, ims_pending_key(arg));
    if (!r)
        return;   /* the REGISTER is gone (shutdown) */
    ims_fsm_dispatch(r->fi, EV_UAA, ans);
}

/* ---------- shutdown ---------- */

void icscf_register_fini(icscf_context *ctx)
{
    ims_pending *regs = ctx->regs;
    ctx->regs = NULL;   /* cleanups find nothing more to release */
    ims_pending_free(regs);   /* each one answered 503 (reg_pending_cleanup) */
}
