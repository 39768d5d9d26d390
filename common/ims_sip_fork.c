/*
 * ims_sip_fork: parallel forking of one request to several targets (the contacts of a
 * registered user, or one application server with a "no answer" timer).
 *
 *   upstream --req--> irq --+--> branch 1 (orq, R-URI = contact 1, Route = its Path) --> UE 1
 *                           +--> branch 2 ...
 *   upstream <-- 1xx of any branch, every 2xx, or the best final once no branch is pending
 *
 * References: RFC 3261 §16.5 (targets), §16.6 (per-branch copy: Request-URI, Route, Max-Forwards
 * once for all), §16.7 (response context: step 5 provisional relay, step 6 best response: 6xx
 * first, else the lowest class (401/407/415/420/484 first among 4xx; challenges of several
 * branches are not merged), 503 -> 500; step 10 every 2xx relayed, 6xx and 2xx CANCEL the
 * pending branches), §16.8 (Timer C: 408 and CANCEL for an INVITE branch silent too long),
 * §16.10 (CANCEL from upstream CANCELs every pending branch), RFC 6026 §7.1 (2xx of other
 * branches after the first are relayed statelessly).
 */
#include "ims_sip_priv.h"
#include "ims_log.h"

#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_status.h>

#define SUBSYS "sip"

struct ims_sip_fork;

typedef struct {
    struct ims_sip_fork *fk;
    nta_outgoing_t *orq;
    ims_sip_timer *timer_c;
    bool done;                  /* final response received (or 408 by Timer C / no answer) */
    bool cancel_wanted;         /* CANCEL to send with its first provisional response */
} fork_branch;

struct ims_sip_fork {
    struct ims_sip_fork *next, **prev;
    ims_sip *s;
    nta_incoming_t *irq;
    ims_sip_response_f on_response;
    bool (*give_up)(void *arg);
    void (*on_end)(void *arg);
    void *arg;
    bool invite;
    bool answered;              /* a 2xx went upstream: only more 2xx follow */
    bool heard;                 /* a branch sent something other than 100 */
    ims_sip_timer *no_answer;
    msg_t *best;                /* best final so far (non-2xx), NULL with best_status local */
    int best_status;            /* 0: none yet */
    size_t n, pending;
    fork_branch b[];
};

/* §16.7 step 6: 6xx wins, then the lowest class, and within 4xx the responses the UAC can act
 * on (401, 407, 415, 420, 484); first come otherwise. Lower is better. */
static int rank(int status)
{
    if (status >= 600)
        return 0;
    bool actionable = status == 401 || status == 407 || status == 415 || status == 420 || status == 484;
    return (status / 100) * 2 + (actionable ? 0 : 1);
}

static void fork_free(struct ims_sip_fork *fk, bool keep_irq)
{
    ims_sip_count_active(-1);
    if ((*fk->prev = fk->next))
        fk->next->prev = fk->prev;
    ims_sip_timer_cancel(fk->no_answer);
    for (size_t i = 0; i < fk->n; i++) {
        ims_sip_timer_cancel(fk->b[i].timer_c);
        if (fk->b[i].orq)
            nta_outgoing_destroy(fk->b[i].orq);
    }
    if (fk->best)
        msg_destroy(fk->best);
    if (fk->irq) {
        if (keep_irq) {
            /* back to the NF as ims_sip gave it (ACK of a non-2xx absorbed by nta) */
            nta_incoming_bind(fk->irq, fk->invite ? ims_sip_held_irq_event : NULL, NULL);
        } else {
            nta_incoming_bind(fk->irq, NULL, NULL);
            nta_incoming_destroy(fk->irq);
        }
    }
    if (fk->on_end)
        fk->on_end(fk->arg);
    free(fk);
}

/* CANCEL of one INVITE branch (ims_sip_cancel: its 487 must still reach us on TCP). Before its
 * first provisional response: marked, and sent by branch_response when one comes, unless the
 * branch is over by then (then nta's own delayed CANCEL does). */
static void cancel_branch(fork_branch *b, bool will_wait)
{
    if (!b->orq)
        return;
    int rc = ims_sip_cancel(b->fk->s, b->orq);
    if (rc == 0 && will_wait)
        b->cancel_wanted = true;
    else if (rc <= 0)
        nta_outgoing_cancel(b->orq);
}

static void cancel_pending(struct ims_sip_fork *fk)
{
    if (!fk->invite)
        return;
    for (size_t i = 0; i < fk->n; i++)
        if (!fk->b[i].done && fk->b[i].orq)
            cancel_branch(&fk->b[i], true);
}

/* Sends upstream: our Via off, through irq. Frees msg. */
static void relay(struct ims_sip_fork *fk, msg_t *msg, sip_t *sip)
{
    if (sip->sip_via)
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_via);
    if (!sip->sip_via) {
        msg_destroy(msg);
        return;
    }
    nta_incoming_mreply(fk->irq, msg);
}

/* Every branch is over: the best final upstream (unless a 2xx went already), then the end. */
static void fork_check(struct ims_sip_fork *fk)
{
    if (fk->pending)
        return;
    if (fk->answered || nta_incoming_status(fk->irq) >= 200) {
        fork_free(fk, false);
        return;
    }
    msg_t *msg = fk->best;
    sip_t *sip = msg ? sip_object(msg) : NULL;
    int status = fk->best_status ? fk->best_status : 500;
    fk->best = NULL;
    int rc = fk->on_response ? fk->on_response(fk->arg, fk->irq, msg, sip) : 0;
    if (rc == IMS_SIP_FORK_RETAKE) {
        if (msg)
            msg_destroy(msg);
        fork_free(fk, true);
        return;
    }
    if (rc >= 300 && rc <= 699) {
        if (msg)
            msg_destroy(msg);
        nta_incoming_treply(fk->irq, rc, NULL, TAG_END());
    } else if (msg && status != 503) {
        relay(fk, msg, sip);
    } else {
        /* local 408 (Timer C, no answer), or 503 -> 500 (§16.7 step 6) */
        if (msg)
            msg_destroy(msg);
        nta_incoming_treply(fk->irq, status == 503 ? 500 : status, NULL, TAG_END());
    }
    fork_free(fk, false);
}

/* A branch's final: kept when it is the best so far. msg may be NULL (local status). */
static void branch_final(fork_branch *b, int status, msg_t *msg)
{
    struct ims_sip_fork *fk = b->fk;
    b->done = true;
    fk->pending--;
    ims_sip_timer_cancel(b->timer_c);
    b->timer_c = NULL;
    if (!fk->best_status || rank(status) < rank(fk->best_status)) {
        if (fk->best)
            msg_destroy(fk->best);
        fk->best = msg;
        fk->best_status = status;
    } else if (msg) {
        msg_destroy(msg);
    }
    if (status >= 600)
        cancel_pending(fk);
}

static void timer_c_fired(void *arg)
{
    fork_branch *b = arg;
    b->timer_c = NULL;
    IMS_INFO(SUBSYS, "Timer C: cancelling a branch with no final response");
    cancel_branch(b, false);   /* the branch ends here: its 487 is not waited for */
    branch_final(b, 408, NULL);
    fork_check(b->fk);
}

static void no_answer_fired(void *arg)
{
    struct ims_sip_fork *fk = arg;
    fk->no_answer = NULL;
    if (fk->give_up && !fk->give_up(fk->arg))
        return;
    for (size_t i = 0; i < fk->n; i++) {
        if (fk->b[i].done)
            continue;
        if (fk->invite)
            cancel_branch(&fk->b[i], false);
        branch_final(&fk->b[i], 408, NULL);
    }
    fork_check(fk);
}

static unsigned timer_c_ms(const ims_sip *s)
{
    return s->timer_c_ms ? s->timer_c_ms : IMS_SIP_TIMER_C_MS;
}

static int branch_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *csip)
{
    fork_branch *b = (fork_branch *)magic;
    struct ims_sip_fork *fk = b->fk;
    msg_t *msg = nta_outgoing_getresponse(orq);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    int status = sip && sip->sip_status ? sip->sip_status->st_status
                 : csip && csip->sip_status ? csip->sip_status->st_status : 500;
    if (!sip || !sip->sip_status) {
        if (msg)
            msg_destroy(msg);
        msg = NULL;
        sip = NULL;
    }
    if (b->cancel_wanted && status < 200) {
        b->cancel_wanted = false;
        if (ims_sip_cancel(fk->s, orq) < 0)
            nta_outgoing_cancel(orq);
    }
    if (status > 100 && !fk->heard) {
        fk->heard = true;
        ims_sip_timer_cancel(fk->no_answer);
        fk->no_answer = NULL;
    }

    if (status >= 200 && status < 300) {
        /* §16.7 step 10: every 2xx goes upstream, even from a branch given up on */
        if (fk->on_response && msg)
            fk->on_response(fk->arg, fk->irq, msg, sip);
        if (msg && (fk->answered || nta_incoming_status(fk->irq) >= 200))
            ims_sip_stray_response(fk->s, msg, sip);
        else if (msg)
            relay(fk, msg, sip);
        fk->answered = true;
        if (!b->done) {
            b->done = true;
            fk->pending--;
            ims_sip_timer_cancel(b->timer_c);
            b->timer_c = NULL;
        }
        cancel_pending(fk);
        fork_check(fk);
        return 0;
    }
    if (b->done || status == 100) {
        if (msg)
            msg_destroy(msg);
        return 0;
    }
    if (status < 200) {
        if (fk->invite && !fk->answered) {
            ims_sip_timer_cancel(b->timer_c);
            b->timer_c = ims_sip_timer_start(fk->s, timer_c_ms(fk->s), timer_c_fired, b);
        }
        if (!msg || fk->answered) {
            if (msg)
                msg_destroy(msg);
            return 0;
        }
        int rc = fk->on_response ? fk->on_response(fk->arg, fk->irq, msg, sip) : 0;
        if (rc >= 300 && rc <= 699) {
            msg_destroy(msg);
            return 0;       /* provisional not relayed */
        }
        relay(fk, msg, sip);
        return 0;
    }
    branch_final(b, status, msg);
    fork_check(fk);
    return 0;
}

/* CANCEL from upstream (§16.10): every pending branch is CANCELled; their 487s come back
 * and the best final (487) is relayed. */
static int fork_irq_event(nta_incoming_magic_t *magic, nta_incoming_t *irq, sip_t const *sip)
{
    struct ims_sip_fork *fk = (struct ims_sip_fork *)magic;
    (void)irq;
    if (fk && sip && sip->sip_request && sip->sip_request->rq_method == sip_method_cancel)
        cancel_pending(fk);
    return 0;
}

/* The copy of msg for one branch. NULL on error. */
static msg_t *branch_msg(msg_t *msg, const ims_sip_branch *br)
{
    msg_t *bm = msg_copy(msg);
    sip_t *bs = bm ? sip_object(bm) : NULL;
    if (!bs || !bs->sip_request || !br->ruri)
        goto fail;
    sip_request_t *rq = sip_request_create(msg_home(bm), bs->sip_request->rq_method, bs->sip_request->rq_method_name,
                                           (url_string_t *)br->ruri, NULL);
    if (!rq || msg_header_replace(bm, (msg_pub_t *)bs, (msg_header_t *)bs->sip_request, (msg_header_t *)rq) < 0)
        goto fail;
    while (bs->sip_route)
        msg_header_remove(bm, (msg_pub_t *)bs, (msg_header_t *)bs->sip_route);
    if (br->route && *br->route && ims_sip_add_header(bm, bs, "Route", br->route) < 0)
        goto fail;
    return bm;
fail:
    if (bm)
        msg_destroy(bm);
    return NULL;
}

int ims_sip_fork(ims_sip *s, nta_incoming_t *irq, msg_t *msg, const ims_sip_branch *branches, size_t n,
                 const ims_sip_fork_opts *opts)
{
    sip_t *sip = sip_object(msg);
    struct ims_sip_fork *fk = NULL;
    int rv = -1;

    if (!s || !irq || !sip || !sip->sip_request || !branches || n == 0 ||
        sip->sip_request->rq_method == sip_method_ack) {
        ims_sip_reject(irq, SIP_500_INTERNAL_SERVER_ERROR);
        goto out;
    }
    if (nta_incoming_status(irq) >= 200) {
        ims_sip_reject(irq, 0, NULL);
        goto out;
    }
    int mf = ims_sip_max_forwards(msg, sip, true);
    if (mf) {
        ims_sip_reject(irq, mf, mf == 483 ? "Too Many Hops" : NULL);
        goto out;
    }
    fk = calloc(1, sizeof(*fk) + n * sizeof(fork_branch));
    if (!fk) {
        ims_sip_reject(irq, SIP_500_INTERNAL_SERVER_ERROR);
        goto out;
    }
    fk->s = s;
    fk->irq = irq;
    fk->invite = sip->sip_request->rq_method == sip_method_invite;
    if (opts) {
        fk->on_response = opts->on_response;
        fk->give_up = opts->give_up;
        fk->on_end = opts->on_end;
        fk->arg = opts->arg;
    }
    fk->n = fk->pending = n;
    fk->prev = &s->forks;
    if ((fk->next = s->forks))
        fk->next->prev = &fk->next;
    s->forks = fk;
    ims_sip_count_active(1);

    /* Responses are never delivered inside mcreate: the branches are all set up first. */
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        fork_branch *b = &fk->b[i];
        int status = 500;
        const char *phrase = NULL;
        b->fk = fk;
        msg_t *bm = branch_msg(msg, &branches[i]);
        url_string_t *route = bm ? ims_sip_route_of(s, bm, NULL, &status, &phrase) : NULL;
        if (route)
            b->orq = nta_outgoing_mcreate(s->agent, branch_response, (nta_outgoing_magic_t *)b, route, bm, TAG_END());
        if (!b->orq) {
            IMS_WARN(SUBSYS, "fork: cannot send to %s (%d)", branches[i].ruri ? branches[i].ruri : "-", status);
            if (bm)
                msg_destroy(bm);
            branch_final(b, status, NULL);
            continue;
        }
        started++;
        if (fk->invite)
            b->timer_c = ims_sip_timer_start(s, timer_c_ms(s), timer_c_fired, b);
    }
    nta_incoming_bind(irq, fork_irq_event, (nta_incoming_magic_t *)fk);
    if (started && opts && opts->no_answer_ms)
        fk->no_answer = ims_sip_timer_start(s, opts->no_answer_ms, no_answer_fired, fk);
    if (fk->invite && started && nta_incoming_status(irq) < 100)
        nta_incoming_treply(irq, SIP_100_TRYING, TAG_END());
    rv = 0;
    if (!started)
        fork_check(fk);     /* nothing went out: the best local status now, through on_response */
out:
    if (msg)
        msg_destroy(msg);
    return rv;
}

void ims_sip_set_timer_c(ims_sip *s, unsigned ms)
{
    if (s)
        s->timer_c_ms = ms;
}

void ims_sip_fork_shutdown(ims_sip *s)
{
    while (s->forks)
        fork_free(s->forks, false);
}
