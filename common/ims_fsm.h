/*
 * ims_fsm: named finite state machines described by a declarative table, in the style of
 * osmocom's osmo_fsm (libosmocore fsm.c): each state has a name, the events it accepts, the
 * states it may change to, an optional timeout and on-enter hook; each event has a name.
 *
 * Why: the state of a transaction (I-CSCF registration, P-CSCF reg-event subscription, S-CSCF
 * registration) is written down once in a table, instead of being implied by flags; an event
 * the current state does not accept is refused and logged with the instance id, the state and
 * the event, instead of being acted upon by accident.
 *
 * Rules:
 *  - Everything runs on one thread (the NF's SIP loop). Timers go through ims_timer_ops, so unit
 *    tests drive time by hand and the NFs use the su_root loop (ims_timer_ops_sip).
 *  - A state with a timeout (the table's, or the one given to ims_fsm_state_chg_ms) starts a
 *    one-shot timer on entry; any state change cancels it. When it fires, the definition's
 *    timeout_event goes to the state's action (accepted whatever the state's in_events say);
 *    without timeout_event (-1) or action the instance terminates with IMS_FSM_TERM_TIMEOUT.
 *  - ims_fsm_term runs the definition's cleanup exactly once, from any state, whatever the
 *    cause; the cleanup must answer the request the instance stands for (if it is not answered
 *    yet) and release the owner's record. So no path can leave a request unanswered.
 *  - An instance may be terminated from inside its own action, on-enter or timeout: it is freed
 *    when the outermost call into it returns. After ims_fsm_dispatch / ims_fsm_term /
 *    ims_fsm_state_chg returns, the caller must not use the instance unless it knows it is
 *    alive (e.g. through the record that owns it, which the cleanup removes).
 */
#ifndef IMS_FSM_H
#define IMS_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ims_sip;

/* One-shot timers: start(arg, ms, fn, fnarg) returns a handle (NULL on failure); cancel(arg,
 * handle) is never called after fn ran. */
typedef struct {
    void *(*start)(void *arg, unsigned ms, void (*fn)(void *fnarg), void *fnarg);
    void (*cancel)(void *arg, void *timer);
    void *arg;
} ims_timer_ops;

/* Timers on the ims_sip loop (ims_sip_timer_start / ims_sip_timer_cancel). */
ims_timer_ops ims_timer_ops_sip(struct ims_sip *s);

/* Bit of an event in ims_fsm_state.in_events, of a state in ims_fsm_state.out_states. */
#define IMS_FSM_EV(e) (1u << (e))
#define IMS_FSM_ST(s) (1u << (s))
#define IMS_FSM_MAX 32   /* states and events per definition (bitmasks) */

typedef enum {
    IMS_FSM_TERM_REGULAR,   /* the transaction completed (normally answered already) */
    IMS_FSM_TERM_ERROR,     /* something failed: the cleanup answers with an error if needed */
    IMS_FSM_TERM_TIMEOUT,   /* a state timed out with nobody to handle it */
    IMS_FSM_TERM_SHUTDOWN,  /* the NF stops */
} ims_fsm_term_cause;

typedef struct ims_fsm_inst ims_fsm_inst;

typedef struct {
    const char *name;
    uint32_t in_events;     /* IMS_FSM_EV() of the events this state accepts */
    uint32_t out_states;    /* IMS_FSM_ST() of the states it may change to */
    unsigned timeout_ms;    /* 0: none (ims_fsm_state_chg_ms may give one per instance) */
    void (*onenter)(ims_fsm_inst *fi, int prev_state);   /* may be NULL */
    void (*action)(ims_fsm_inst *fi, int event, void *data);   /* NULL: accepts nothing */
} ims_fsm_state;

typedef struct {
    const char *name;                 /* "icscf_reg": names instances in logs */
    const char *subsys;               /* log subsystem of the instances */
    const ims_fsm_state *states;      /* indexed by the NF's state enum */
    size_t n_states;
    const char *const *event_names;   /* indexed by the NF's event enum */
    size_t n_events;
    int timeout_event;                /* sent to the action on a state timeout; -1: terminate */
    /* Runs exactly once per instance (ims_fsm_term): answers the pending request if still
     * unanswered, releases what the instance holds. Must not call ims_fsm_* on fi but the
     * accessors. */
    void (*cleanup)(ims_fsm_inst *fi, ims_fsm_term_cause cause);
} ims_fsm_def;

/* A new instance in `initial_state` (no on-enter, no timer: use ims_fsm_state_chg to enter the
 * first real state). ops is copied; id names the instance in logs (e.g. the user, truncated to
 * 63 characters). NULL on ENOMEM or a bad table (logged). */
ims_fsm_inst *ims_fsm_new(const ims_fsm_def *def, const ims_timer_ops *ops, void *priv, const char *id,
                          int initial_state);

/* Sends event to the current state's action. 0, or -1 when the state does not accept it (or the
 * instance is terminating): logged with id, state and event, nothing else happens. */
int ims_fsm_dispatch(ims_fsm_inst *fi, int event, void *data);

/* Changes state (the current state's out_states must list it; the same state restarts its
 * timer only if listed too), cancels the running timer, starts the new state's timer (the
 * table's timeout_ms, or timeout_ms here; 0 = none) and runs its on-enter. 0 / -1 (refused and
 * logged, or the timer could not be started: then the instance terminates with
 * IMS_FSM_TERM_ERROR, since nothing would ever end the state). */
int ims_fsm_state_chg(ims_fsm_inst *fi, int state);
int ims_fsm_state_chg_ms(ims_fsm_inst *fi, int state, unsigned timeout_ms);

/* Terminates: cancels the timer and runs the cleanup (once; later calls do nothing); the
 * instance is freed now, or when the outermost action/on-enter/timeout running on it returns. */
void ims_fsm_term(ims_fsm_inst *fi, ims_fsm_term_cause cause);

void *ims_fsm_priv(const ims_fsm_inst *fi);
int ims_fsm_state_of(const ims_fsm_inst *fi);
const char *ims_fsm_state_name(const ims_fsm_inst *fi);
const char *ims_fsm_event_name(const ims_fsm_def *def, int event);
const char *ims_fsm_id(const ims_fsm_inst *fi);
/* True once ims_fsm_term ran (inside an action that terminated it, for instance). */
bool ims_fsm_terminated(const ims_fsm_inst *fi);
const char *ims_fsm_term_name(ims_fsm_term_cause cause);

#endif
