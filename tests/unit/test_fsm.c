/*
 * test_fsm: the declarative state machine helper (common/ims_fsm.c) with hand-driven timers:
 * allowed and refused events, refused state changes, per-state timeouts (the table's and one
 * given per instance), the timeout event, termination from any state and from inside an action,
 * the cleanup running exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_timer.h"
#include "ims_fsm.h"

/* A request that must be answered: IDLE -> WAIT_A (timeout 1 s) -> WAIT_B -> answered. */
enum { ST_IDLE, ST_WAIT_A, ST_WAIT_B, ST_QUIET, N_STATES };
enum { EV_GO, EV_A, EV_B, EV_TIMEOUT, EV_FINISH, N_EVENTS };

typedef struct {
    int answered;                    /* status the request was answered with, 0: none */
    int cleanups;
    ims_fsm_term_cause cause;
    int cleanup_state;
    int actions;
    int last_event;
    int entered;                     /* on-enter calls of WAIT_B */
    int prev_state;
    int timeouts;
    bool term_in_action;             /* EV_FINISH terminates, then tries more */
    int after_term_dispatch;         /* what a dispatch after the termination returned */
} req;

static void action(ims_fsm_inst *fi, int event, void *data)
{
    req *r = ims_fsm_priv(fi);
    (void)data;
    r->actions++;
    r->last_event = event;
    switch (event) {
    case EV_GO:
        ims_fsm_state_chg(fi, ST_WAIT_A);
        break;
    case EV_A:
        ims_fsm_state_chg(fi, ST_WAIT_B);
        break;
    case EV_TIMEOUT:
        r->timeouts++;
        ims_fsm_state_chg(fi, ST_WAIT_B);
        break;
    case EV_B:
        r->answered = 200;
        ims_fsm_term(fi, IMS_FSM_TERM_REGULAR);
        break;
    case EV_FINISH:
        r->answered = 486;
        ims_fsm_term(fi, IMS_FSM_TERM_REGULAR);
        /* still valid here (freed when this action returns), but refusing everything */
        assert_true(ims_fsm_terminated(fi));
        r->after_term_dispatch = ims_fsm_dispatch(fi, EV_B, NULL);
        assert_int_equal(ims_fsm_state_chg(fi, ST_IDLE), -1);
        ims_fsm_term(fi, IMS_FSM_TERM_ERROR);   /* no second cleanup */
        break;
    default:
        break;
    }
}

static void onenter_b(ims_fsm_inst *fi, int prev)
{
    req *r = ims_fsm_priv(fi);
    r->entered++;
    r->prev_state = prev;
}

/* The cleanup answers whatever is still unanswered: 500, or 503 when the NF stops. */
static void cleanup(ims_fsm_inst *fi, ims_fsm_term_cause cause)
{
    req *r = ims_fsm_priv(fi);
    r->cleanups++;
    r->cause = cause;
    r->cleanup_state = ims_fsm_state_of(fi);
    if (!r->answered)
        r->answered = cause == IMS_FSM_TERM_SHUTDOWN ? 503 : 500;
}

static const ims_fsm_state states[N_STATES] = {
    [ST_IDLE] = { .name = "IDLE", .in_events = IMS_FSM_EV(EV_GO) | IMS_FSM_EV(EV_FINISH),
                  .out_states = IMS_FSM_ST(ST_WAIT_A) | IMS_FSM_ST(ST_QUIET), .action = action },
    [ST_WAIT_A] = { .name = "WAIT_A", .in_events = IMS_FSM_EV(EV_A) | IMS_FSM_EV(EV_FINISH),
                    .out_states = IMS_FSM_ST(ST_WAIT_B) | IMS_FSM_ST(ST_WAIT_A), .timeout_ms = 1000,
                    .action = action },
    [ST_WAIT_B] = { .name = "WAIT_B", .in_events = IMS_FSM_EV(EV_B) | IMS_FSM_EV(EV_FINISH),
                    .out_states = IMS_FSM_ST(ST_WAIT_A), .onenter = onenter_b, .action = action },
    /* a state with a timeout and no action: its timeout terminates the instance */
    [ST_QUIET] = { .name = "QUIET", .timeout_ms = 300 },
};

static const char *const event_names[N_EVENTS] = { "GO", "A", "B", "TIMEOUT", "FINISH" };

static const ims_fsm_def def = {
    .name = "test", .subsys = "test.fsm", .states = states, .n_states = N_STATES,
    .event_names = event_names, .n_events = N_EVENTS, .timeout_event = EV_TIMEOUT, .cleanup = cleanup,
};

static int setup(void **state)
{
    (void)state;
    fake_timer_reset();
    return 0;
}

static ims_fsm_inst *new_inst(req *r)
{
    memset(r, 0, sizeof(*r));
    ims_fsm_inst *fi = ims_fsm_new(&def, &fake_timer_ops, r, "sip:alice@ims.lab", ST_IDLE);
    assert_non_null(fi);
    return fi;
}

static void test_allowed_events(void **state)
{
    (void)state;
    req r;
    ims_fsm_inst *fi = new_inst(&r);
    assert_string_equal(ims_fsm_id(fi), "sip:alice@ims.lab");
    assert_string_equal(ims_fsm_state_name(fi), "IDLE");
    assert_int_equal(fake_timer_active(), 0);   /* the initial state starts no timer */

    assert_int_equal(ims_fsm_dispatch(fi, EV_GO, NULL), 0);
    assert_int_equal(ims_fsm_state_of(fi), ST_WAIT_A);
    assert_int_equal(fake_timer_active(), 1);   /* WAIT_A's 1 s */
    assert_int_equal(ims_fsm_dispatch(fi, EV_A, NULL), 0);
    assert_int_equal(ims_fsm_state_of(fi), ST_WAIT_B);
    assert_int_equal(fake_timer_active(), 0);   /* cancelled by the change */
    assert_int_equal(r.entered, 1);
    assert_int_equal(r.prev_state, ST_WAIT_A);
    assert_int_equal(r.cleanups, 0);

    assert_int_equal(ims_fsm_dispatch(fi, EV_B, NULL), 0);   /* answers and terminates: fi freed */
    assert_int_equal(r.answered, 200);
    assert_int_equal(r.cleanups, 1);
    assert_int_equal(r.cause, IMS_FSM_TERM_REGULAR);
    assert_int_equal(r.cleanup_state, ST_WAIT_B);
    fake_timer_advance(10000);
    assert_int_equal(r.timeouts, 0);
}

static void test_refused(void **state)
{
    (void)state;
    req r;
    ims_fsm_inst *fi = new_inst(&r);
    /* not accepted in IDLE: refused, no action, no change */
    assert_int_equal(ims_fsm_dispatch(fi, EV_B, NULL), -1);
    assert_int_equal(ims_fsm_dispatch(fi, EV_TIMEOUT, NULL), -1);
    assert_int_equal(ims_fsm_dispatch(fi, N_EVENTS, NULL), -1);   /* not an event at all */
    assert_int_equal(ims_fsm_dispatch(fi, -1, NULL), -1);
    assert_int_equal(r.actions, 0);
    assert_int_equal(ims_fsm_state_of(fi), ST_IDLE);
    /* a change the table does not list */
    assert_int_equal(ims_fsm_state_chg(fi, ST_WAIT_B), -1);
    assert_int_equal(ims_fsm_state_chg(fi, N_STATES), -1);
    assert_int_equal(ims_fsm_state_of(fi), ST_IDLE);
    assert_int_equal(r.entered, 0);
    /* the names in the log */
    assert_string_equal(ims_fsm_event_name(&def, EV_A), "A");
    assert_string_equal(ims_fsm_event_name(&def, 99), "?");
    assert_int_equal(ims_fsm_dispatch(NULL, EV_GO, NULL), -1);
    ims_fsm_term(fi, IMS_FSM_TERM_ERROR);
    assert_int_equal(r.cleanups, 1);
    assert_int_equal(r.answered, 500);
}

static void test_timeout(void **state)
{
    (void)state;
    req r;
    ims_fsm_inst *fi = new_inst(&r);
    ims_fsm_dispatch(fi, EV_GO, NULL);
    fake_timer_advance(999);
    assert_int_equal(r.timeouts, 0);
    assert_int_equal(ims_fsm_state_of(fi), ST_WAIT_A);
    fake_timer_advance(1);   /* the timeout event goes to the action although in_events lacks it */
    assert_int_equal(r.timeouts, 1);
    assert_int_equal(r.last_event, EV_TIMEOUT);
    assert_int_equal(ims_fsm_state_of(fi), ST_WAIT_B);
    assert_int_equal(fake_timer_active(), 0);

    /* per-instance timeout instead of the table's; re-entering the same state restarts it */
    assert_int_equal(ims_fsm_state_chg_ms(fi, ST_WAIT_A, 50), 0);
    fake_timer_advance(40);
    assert_int_equal(ims_fsm_state_chg_ms(fi, ST_WAIT_A, 50), 0);
    assert_int_equal(fake_timer_active(), 1);
    fake_timer_advance(40);
    assert_int_equal(r.timeouts, 1);
    fake_timer_advance(10);
    assert_int_equal(r.timeouts, 2);
    ims_fsm_term(fi, IMS_FSM_TERM_SHUTDOWN);
    assert_int_equal(r.answered, 503);
    assert_int_equal(fake_timer_active(), 0);
}

static void test_timeout_without_handler(void **state)
{
    (void)state;
    req r;
    ims_fsm_inst *fi = new_inst(&r);
    assert_int_equal(ims_fsm_state_chg(fi, ST_QUIET), 0);
    fake_timer_advance(299);
    assert_int_equal(r.cleanups, 0);
    fake_timer_advance(1);   /* nobody handles it: terminated, and the request answered */
    assert_int_equal(r.cleanups, 1);
    assert_int_equal(r.cause, IMS_FSM_TERM_TIMEOUT);
    assert_int_equal(r.cleanup_state, ST_QUIET);
    assert_int_equal(r.answered, 500);
}

static void test_cleanup_once(void **state)
{
    (void)state;
    req r;
    /* terminated inside its own action: one cleanup, then everything refused until it returns */
    ims_fsm_inst *fi = new_inst(&r);
    ims_fsm_dispatch(fi, EV_GO, NULL);
    assert_int_equal(ims_fsm_dispatch(fi, EV_FINISH, NULL), 0);
    assert_int_equal(r.cleanups, 1);
    assert_int_equal(r.cause, IMS_FSM_TERM_REGULAR);
    assert_int_equal(r.after_term_dispatch, -1);
    assert_int_equal(r.answered, 486);   /* the action's answer, not replaced by the cleanup */
    assert_int_equal(fake_timer_active(), 0);
    fake_timer_advance(5000);
    assert_int_equal(r.cleanups, 1);
}

static void test_cleanup_from_any_state(void **state)
{
    (void)state;
    static const ims_fsm_term_cause causes[] = { IMS_FSM_TERM_REGULAR, IMS_FSM_TERM_ERROR, IMS_FSM_TERM_TIMEOUT,
                                                 IMS_FSM_TERM_SHUTDOWN };
    for (int st = 0; st < N_STATES; st++) {
        for (size_t c = 0; c < sizeof(causes) / sizeof(causes[0]); c++) {
            req r;
            ims_fsm_inst *fi = new_inst(&r);
            if (st == ST_WAIT_A || st == ST_WAIT_B || st == ST_QUIET) {
                assert_int_equal(ims_fsm_state_chg(fi, st == ST_QUIET ? ST_QUIET : ST_WAIT_A), 0);
                if (st == ST_WAIT_B)
                    assert_int_equal(ims_fsm_dispatch(fi, EV_A, NULL), 0);
            }
            assert_int_equal(ims_fsm_state_of(fi), st);
            ims_fsm_term(fi, causes[c]);
            assert_int_equal(r.cleanups, 1);
            assert_int_equal(r.cleanup_state, st);
            assert_int_equal(r.cause, causes[c]);
            assert_int_equal(r.answered, causes[c] == IMS_FSM_TERM_SHUTDOWN ? 503 : 500);
            assert_int_equal(fake_timer_active(), 0);   /* no timer left to fire into freed memory */
        }
    }
    ims_fsm_term(NULL, IMS_FSM_TERM_ERROR);   /* harmless */
}

static void test_timer_failure_terminates(void **state)
{
    (void)state;
    req r;
    ims_fsm_inst *fi = new_inst(&r);
    fake_timer_fail = true;
    /* a state that nothing would ever end: the instance ends at once, the request answered */
    assert_int_equal(ims_fsm_state_chg(fi, ST_WAIT_A), -1);
    assert_int_equal(r.cleanups, 1);
    assert_int_equal(r.cause, IMS_FSM_TERM_ERROR);
    assert_int_equal(r.answered, 500);
}

static void test_bad_definition(void **state)
{
    (void)state;
    req r = { 0 };
    ims_fsm_def bad = def;
    bad.cleanup = NULL;   /* an FSM without cleanup could leave a request unanswered */
    assert_null(ims_fsm_new(&bad, &fake_timer_ops, &r, "x", ST_IDLE));
    bad = def;
    bad.timeout_event = N_EVENTS;
    assert_null(ims_fsm_new(&bad, &fake_timer_ops, &r, "x", ST_IDLE));
    assert_null(ims_fsm_new(&def, &fake_timer_ops, &r, "x", N_STATES));
    assert_null(ims_fsm_new(&def, NULL, &r, "x", ST_IDLE));
    assert_string_equal(ims_fsm_term_name(IMS_FSM_TERM_SHUTDOWN), "shutdown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_allowed_events, setup),
        cmocka_unit_test_setup(test_refused, setup),
        cmocka_unit_test_setup(test_timeout, setup),
        cmocka_unit_test_setup(test_timeout_without_handler, setup),
        cmocka_unit_test_setup(test_cleanup_once, setup),
        cmocka_unit_test_setup(test_cleanup_from_any_state, setup),
        cmocka_unit_test_setup(test_timer_failure_terminates, setup),
        cmocka_unit_test_setup(test_bad_definition, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
