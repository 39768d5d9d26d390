/*
 * ims_fsm: declarative state machines (see ims_fsm.h).
 *
 * References: osmocom libosmocore src/core/fsm.c (osmo_fsm_inst_dispatch, osmo_fsm_inst_state_chg,
 * osmo_fsm_inst_term): the same split of a table per FSM and a small instance, without the
 * parent/child tree (no NF needs it yet).
 *
 * Lifetime: `depth` counts the calls into the instance's own callbacks that are running; a
 * termination inside one of them only marks the instance, and the outermost return frees it, so
 * the code that called into the FSM never returns into freed memory.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ims_fsm.h"
#include "ims_log.h"
#include "ims_sip.h"

struct ims_fsm_inst {
    const ims_fsm_def *def;
    ims_timer_ops timers;
    void *timer;                     /* state timeout, or NULL */
    void *priv;
    int state;
    unsigned depth;                  /* own callbacks running (see above) */
    bool terminated;
    char id[64];
};

/* ---------- timers over ims_sip ---------- */

static void *sip_timer_start(void *arg, unsigned ms, void (*fn)(void *fnarg), void *fnarg)
{
    return ims_sip_timer_start(arg, ms, fn, fnarg);
}

static void sip_timer_cancel(void *arg, void *timer)
{
    (void)arg;
    ims_sip_timer_cancel(timer);
}

ims_timer_ops ims_timer_ops_sip(struct ims_sip *s)
{
    ims_timer_ops ops = { .start = sip_timer_start, .cancel = sip_timer_cancel, .arg = s };
    return ops;
}

/* ---------- names ---------- */

static const char *state_name(const ims_fsm_def *def, int state)
{
    if (state >= 0 && (size_t)state < def->n_states && def->states[state].name)
        return def->states[state].name;
    return "?";
}

const char *ims_fsm_event_name(const ims_fsm_def *def, int event)
{
    if (def && event >= 0 && (size_t)event < def->n_events && def->event_names && def->event_names[event])
        return def->event_names[event];
    return "?";
}

const char *ims_fsm_term_name(ims_fsm_term_cause cause)
{
    switch (cause) {
    case IMS_FSM_TERM_REGULAR:
        return "regular";
    case IMS_FSM_TERM_ERROR:
        return "error";
    case IMS_FSM_TERM_TIMEOUT:
        return "timeout";
    case IMS_FSM_TERM_SHUTDOWN:
        return "shutdown";
    }
    return "?";
}

void *ims_fsm_priv(const ims_fsm_inst *fi)
{
    return fi ? fi->priv : NULL;
}

int ims_fsm_state_of(const ims_fsm_inst *fi)
{
    return fi ? fi->state : -1;
}

const char *ims_fsm_state_name(const ims_fsm_inst *fi)
{
    return fi ? state_name(fi->def, fi->state) : "?";
}

const char *ims_fsm_id(const ims_fsm_inst *fi)
{
    return fi ? fi->id : "?";
}

bool ims_fsm_terminated(const ims_fsm_inst *fi)
{
    return !fi || fi->terminated;
}

/* ---------- life cycle ---------- */

static const char *subsys(const ims_fsm_def *def)
{
    return def->subsys ? def->subsys : "fsm";
}

static void cancel_timer(ims_fsm_inst *fi)
{
    if (fi->timer)
        fi->timers.cancel(fi->timers.arg, fi->timer);
    fi->timer = NULL;
}

/* Enter / leave one of the instance's own callbacks. */
static void enter(ims_fsm_inst *fi)
{
    fi->depth++;
}

static void leave(ims_fsm_inst *fi)
{
    if (--fi->depth == 0 && fi->terminated)
        free(fi);
}

ims_fsm_inst *ims_fsm_new(const ims_fsm_def *def, const ims_timer_ops *ops, void *priv, const char *id,
                          int initial_state)
{
    if (!def || !ops || !ops->start || !ops->cancel || !def->cleanup || !def->states || def->n_states == 0 ||
        def->n_states > IMS_FSM_MAX || def->n_events > IMS_FSM_MAX || initial_state < 0 ||
        (size_t)initial_state >= def->n_states ||
        (def->timeout_event >= 0 && (size_t)def->timeout_event >= def->n_events)) {
        IMS_ERROR("fsm", "bad state machine definition %s", def && def->name ? def->name : "?");
        return NULL;
    }
    ims_fsm_inst *fi = calloc(1, sizeof(*fi));
    if (!fi)
        return NULL;
    fi->def = def;
    fi->timers = *ops;
    fi->priv = priv;
    fi->state = initial_state;
    snprintf(fi->id, sizeof(fi->id), "%s", id ? id : "-");
    return fi;
}

void ims_fsm_term(ims_fsm_inst *fi, ims_fsm_term_cause cause)
{
    if (!fi || fi->terminated)
        return;
    fi->terminated = true;
    cancel_timer(fi);
    IMS_DEBUG(subsys(fi->def), "%s(%s): terminated in %s (%s)", fi->def->name, fi->id,
              state_name(fi->def, fi->state), ims_fsm_term_name(cause));
    enter(fi);
    fi->def->cleanup(fi, cause);
    leave(fi);
}

static void on_timeout(void *arg)
{
    ims_fsm_inst *fi = arg;
    const ims_fsm_def *def = fi->def;
    const ims_fsm_state *st = &def->states[fi->state];
    fi->timer = NULL;   /* fired: the timer ops freed it */
    IMS_DEBUG(subsys(def), "%s(%s): timeout in %s", def->name, fi->id, st->name);
    if (def->timeout_event < 0 || !st->action) {
        ims_fsm_term(fi, IMS_FSM_TERM_TIMEOUT);
        return;
    }
    enter(fi);
    st->action(fi, def->timeout_event, NULL);
    leave(fi);
}

int ims_fsm_dispatch(ims_fsm_inst *fi, int event, void *data)
{
    if (!fi)
        return -1;
    const ims_fsm_def *def = fi->def;
    const ims_fsm_state *st = &def->states[fi->state];
    if (fi->terminated || event < 0 || (size_t)event >= def->n_events || !st->action ||
        !(st->in_events & IMS_FSM_EV(event))) {
        IMS_WARN(subsys(def), "%s(%s): event %s refused in state %s%s", def->name, fi->id,
                 ims_fsm_event_name(def, event), st->name, fi->terminated ? " (terminating)" : "");
        return -1;
    }
    enter(fi);
    st->action(fi, event, data);
    leave(fi);
    return 0;
}

int ims_fsm_state_chg_ms(ims_fsm_inst *fi, int state, unsigned timeout_ms)
{
    if (!fi)
        return -1;
    const ims_fsm_def *def = fi->def;
    if (fi->terminated || state < 0 || (size_t)state >= def->n_states ||
        !(def->states[fi->state].out_states & IMS_FSM_ST(state))) {
        IMS_ERROR(subsys(def), "%s(%s): change from %s to %s refused%s", def->name, fi->id,
                  state_name(def, fi->state), state_name(def, state), fi->terminated ? " (terminating)" : "");
        return -1;
    }
    int prev = fi->state;
    cancel_timer(fi);
    fi->state = state;
    IMS_DEBUG(subsys(def), "%s(%s): %s -> %s", def->name, fi->id, state_name(def, prev), state_name(def, state));
    enter(fi);
    if (timeout_ms > 0 && !(fi->timer = fi->timers.start(fi->timers.arg, timeout_ms, on_timeout, fi))) {
        IMS_ERROR(subsys(def), "%s(%s): cannot start the %u ms timer of %s", def->name, fi->id, timeout_ms,
                  state_name(def, state));
        ims_fsm_term(fi, IMS_FSM_TERM_ERROR);
        leave(fi);
        return -1;
    }
    if (def->states[state].onenter)
        def->states[state].onenter(fi, prev);
    leave(fi);
    return 0;
}

int ims_fsm_state_chg(ims_fsm_inst *fi, int state)
{
    if (!fi || state < 0 || (size_t)state >= fi->def->n_states)
        return ims_fsm_state_chg_ms(fi, state, 0);   /* refused and logged there */
    return ims_fsm_state_chg_ms(fi, state, fi->def->states[state].timeout_ms);
}
