/*
 * scscf_register_fsm: the REGISTER transaction of the S-CSCF as a named state machine (ims_fsm)
 * whose records are pending by key (ims_pending). See scscf_register.h for the whole registrar.
 *
 *   CHECKING ──MAR──> WAIT_MAA ──MAA / timeout──> 401 or error           (end)
 *            ──SAR REGISTRATION / RE_REGISTRATION──> WAIT_SAA ──> 200 or error   (end)
 *            ──SAR USER_DEREGISTRATION──> WAIT_SAA_DEREG ──> 200          (end)
 *            ──answered at once (checks, verification, query, removal without SAR)  (end)
 *
 * Every way out is ims_fsm_term, whose cleanup answers the REGISTER if nobody did (500; 503 when
 * the S-CSCF stops) and frees the record: no path leaves a REGISTER unanswered.
 *
 * Why CHALLENGED and REGISTERED are not states here: a REGISTER transaction ends with its 401
 * (TS 24.229 §5.4.1.2.1), and the answer to the challenge is another REGISTER. What lives between
 * the two is the challenge (scscf_auth: nonce, expiry = the reg-await-auth timer of TS 24.229
 * §5.4.1.2.1, which sends SAR AUTHENTICATION_TIMEOUT when it runs out) and, after the 200, the
 * registration (scscf_regstore, with its expiry). The machine below is what the S-CSCF waits on.
 *
 * Timeouts: a state waiting on the HSS ends after the Diameter request timeout plus a margin. The
 * Cx client answers a timeout itself first (the callback with no answer); the state timeout is
 * the bound if that answer never comes, and then the REGISTER is answered as for no answer. Cx
 * callbacks carry the record's key: an answer for a record already gone is dropped.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ims_diameter.h"
#include "ims_fsm.h"
#include "ims_log.h"
#include "ims_pending.h"
#include "scscf_register.h"

#define SUBSYS SCSCF_REG_SUBSYS
#define CX_MARGIN_MS 2000

enum { EV_MAA, EV_SAA, EV_TIMEOUT, N_EVENTS };   /* data: struct msg * (NULL: no answer) */

static void on_cx_event(ims_fsm_inst *fi, int event, void *data);
static void txn_cleanup(ims_fsm_inst *fi, ims_fsm_term_cause cause);

/* timeout_ms: given on entry (the Diameter request timeout is configuration) */
static const ims_fsm_state txn_states[SCSCF_REG_N_STATES] = {
    [SCSCF_REG_CHECKING] = { .name = "CHECKING",
                             .out_states = IMS_FSM_ST(SCSCF_REG_WAIT_MAA) | IMS_FSM_ST(SCSCF_REG_WAIT_SAA) |
                                           IMS_FSM_ST(SCSCF_REG_WAIT_SAA_DEREG) },
    [SCSCF_REG_WAIT_MAA] = { .name = "WAIT_MAA", .in_events = IMS_FSM_EV(EV_MAA), .action = on_cx_event },
    [SCSCF_REG_WAIT_SAA] = { .name = "WAIT_SAA", .in_events = IMS_FSM_EV(EV_SAA), .action = on_cx_event },
    [SCSCF_REG_WAIT_SAA_DEREG] = { .name = "WAIT_SAA_DEREG", .in_events = IMS_FSM_EV(EV_SAA),
                                   .action = on_cx_event },
};

static const char *const txn_events[N_EVENTS] = { "MAA", "SAA", "TIMEOUT" };

static const ims_fsm_def txn_fsm = {
    .name = "scscf_reg", .subsys = SUBSYS, .states = txn_states, .n_states = SCSCF_REG_N_STATES,
    .event_names = txn_events, .n_events = N_EVENTS, .timeout_event = EV_TIMEOUT, .cleanup = txn_cleanup,
};

static void txn_cleanup(ims_fsm_inst *fi, ims_fsm_term_cause cause)
{
    scscf_reg_txn *t = ims_fsm_priv(fi);
    if (t->irq) {
        bool stopping = cause == IMS_FSM_TERM_SHUTDOWN;
        int status = stopping ? 503 : 500;
        const char *phrase = stopping ? "Service Unavailable - Shutting Down" : "Server Internal Error";
        IMS_INFO(SUBSYS, "REGISTER %s (%s): %d %s (%s in %s)", t->impu[0] ? t->impu : "-", t->impi[0] ? t->impi : "-",
                 status, phrase, ims_fsm_term_name(cause), ims_fsm_state_name(fi));
        scscf_reply(t->ctx, t->irq, status, phrase, NULL, true);
        t->irq = NULL;
    }
    if (t->key && t->ctx->reg_txns && ims_pending_release(t->ctx->reg_txns, t->key, NULL))
        IMS_ERROR(SUBSYS, "REGISTER %s: record #%llu was not pending", t->impu, (unsigned long long)t->key);
    scscf_reg_txn_free(t);
}

/* The table ends a record only when the S-CSCF stops (no deadline: the states bound the wait). */
static void pending_cleanup(void *arg, uint64_t key, void *rec, ims_pending_reason reason)
{
    scscf_reg_txn *t = rec;
    (void)arg;
    (void)key;
    (void)reason;
    t->key = 0;
    ims_fsm_term(t->fi, IMS_FSM_TERM_SHUTDOWN);
}

int scscf_reg_txns_start(scscf_context *ctx)
{
    ims_timer_ops ops = ims_timer_ops_sip(ctx->sip);
    ctx->reg_txns = ims_pending_new("scscf REGISTER", &ops, pending_cleanup, ctx);
    return ctx->reg_txns ? 0 : -1;
}

void scscf_reg_txns_stop(scscf_context *ctx)
{
    ims_pending *p = ctx->reg_txns;
    ims_pending_free(p);   /* every REGISTER still waiting is answered 503 */
    ctx->reg_txns = NULL;
}

scscf_reg_txn *scscf_reg_txn_new(scscf_context *ctx, nta_incoming_t *irq)
{
    scscf_reg_txn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ctx = ctx;
    t->req = nta_incoming_getrequest(irq);
    t->sip = t->req ? sip_object(t->req) : NULL;
    const char *id = t->sip && t->sip->sip_call_id ? t->sip->sip_call_id->i_id : "-";
    ims_timer_ops ops = ims_timer_ops_sip(ctx->sip);
    if (!t->sip || !ctx->reg_txns || !(t->key = ims_pending_add(ctx->reg_txns, t, 0)) ||
        !(t->fi = ims_fsm_new(&txn_fsm, &ops, t, id, SCSCF_REG_CHECKING))) {
        if (t->key)
            ims_pending_release(ctx->reg_txns, t->key, NULL);
        scscf_reg_txn_free(t);   /* irq untouched: nta answers 500 */
        return NULL;
    }
    t->irq = irq;
    return t;
}

void scscf_reg_done(scscf_reg_txn *t)
{
    ims_fsm_term(t->fi, IMS_FSM_TERM_REGULAR);
}

int scscf_reg_wait(scscf_reg_txn *t, int state)
{
    return ims_fsm_state_chg_ms(t->fi, state, (unsigned)ims_diameter_request_timeout_ms() + CX_MARGIN_MS);
}

void *scscf_reg_cx_arg(const scscf_reg_txn *t)
{
    return ims_pending_arg(t->key);
}

static void dispatch(void *arg, struct msg *ans, int event)
{
    scscf_reg_txn *t = ims_pending_get(scscf_ctx.reg_txns, ims_pending_key(arg));
    if (!t) {
        IMS_DEBUG(SUBSYS, "%s for REGISTER #%llu: that REGISTER is answered already", txn_events[event],
                  (unsigned long long)ims_pending_key(arg));
        return;
    }
    ims_fsm_dispatch(t->fi, event, ans);
}

void scscf_reg_on_maa(void *arg, struct msg *ans)
{
    dispatch(arg, ans, EV_MAA);
}

void scscf_reg_on_saa(void *arg, struct msg *ans)
{
    dispatch(arg, ans, EV_SAA);
}

/* An answer, or the state's timeout (handled as no answer). */
static void on_cx_event(ims_fsm_inst *fi, int event, void *data)
{
    scscf_reg_txn *t = ims_fsm_priv(fi);
    struct msg *ans = event == EV_TIMEOUT ? NULL : data;
    if (event == EV_TIMEOUT)
        IMS_WARN(SUBSYS, "REGISTER %s (%s): no Cx answer in %s", t->impu, t->impi, ims_fsm_state_name(fi));
    switch (ims_fsm_state_of(fi)) {
    case SCSCF_REG_WAIT_MAA:
        scscf_reg_maa(t, ans);
        break;
    case SCSCF_REG_WAIT_SAA:
        scscf_reg_saa(t, ans);
        break;
    case SCSCF_REG_WAIT_SAA_DEREG:
        scscf_reg_dereg_saa(t, ans);
        break;
    default:
        ims_fsm_term(fi, IMS_FSM_TERM_ERROR);
        break;
    }
}
