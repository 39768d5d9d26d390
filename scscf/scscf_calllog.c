/*
 * scscf_calllog: one info line per session set-up and one per tear-down, for the operator.
 *
 * The S-CSCF Record-Routes every INVITE dialog it routes (TS 24.229 §5.4.3.2 step 8 / §5.4.3.3
 * step 7), so it sees the initial INVITE, its final response and the BYE. This module keeps just
 * enough per Call-ID to say, at the final response, who called whom with what result and after
 * how long, and at the BYE, how long the call lasted and who hung up:
 *
 *   session sip:alice@ims.lab -> sip:bob@ims.lab: 200 OK after 312 ms (call-id 8f1c...)
 *   session sip:alice@ims.lab -> sip:bob@ims.lab: ended by BYE from sip:bob@ims.lab after 12.4 s
 *   session sip:alice@ims.lab -> sip:carol@ims.lab: failed 486 Busy Here after 2.1 s
 *
 * When a call passes the same S-CSCF twice (originating, I-CSCF, terminating) its Call-ID is
 * the same: the first record wins and the call is logged once. Records of calls whose BYE never
 * came through us are forgotten after CALLLOG_MAX_AGE_S; at most CALLLOG_MAX records are kept
 * (beyond that calls are routed as usual, only not logged). Nothing here changes routing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

#include "ims_clock.h"
#include "ims_log.h"
#include "ims_map.h"
#include "scscf_calllog.h"

#define SUBSYS "scscf.call"
#define CALLLOG_MAX 200000
#define CALLLOG_TRYING_MAX_S 600            /* no final response by then: Timer C is 3 min */
#define CALLLOG_MAX_AGE_S (24 * 3600)       /* an established call with no BYE seen */

typedef struct {
    char caller[256];
    char callee[256];
    const char *scase;      /* "orig" / "term": which procedure saw it first */
    int64_t started_ms;     /* initial INVITE received */
    int64_t answered_ms;    /* 0 while no 2xx */
} call_rec;

struct scscf_calllog {
    ims_map *calls;         /* Call-ID -> call_rec */
    bool full_logged;
};


scscf_calllog *scscf_calllog_new(void)
{
    scscf_calllog *l = calloc(1, sizeof(*l));
    if (l && !(l->calls = ims_map_new())) {
        free(l);
        l = NULL;
    }
    return l;
}

static int free_one(void *arg, const char *key, void *val)
{
    (void)arg;
    (void)key;
    free(val);
    return 0;
}

void scscf_calllog_free(scscf_calllog *l)
{
    if (!l)
        return;
    ims_map_foreach(l->calls, free_one, NULL);
    ims_map_free(l->calls);
    free(l);
}

size_t scscf_calllog_count(const scscf_calllog *l)
{
    return l ? ims_map_count(l->calls) : 0;
}

/* The URI of a From/To header, printed without parameters. */
static void addr_uri(const sip_addr_t *a, char *out, size_t len)
{
    out[0] = '\0';
    if (a && a->a_url->url_type != url_unknown) {
        url_t u = *a->a_url;
        u.url_params = u.url_headers = NULL;
        if (url_e(out, (isize_t)len, &u) < 0 || strlen(out) >= len - 1)
            out[0] = '\0';
    }
    if (!out[0])
        snprintf(out, len, "-");
}

void scscf_calllog_begin(scscf_calllog *l, const sip_t *sip, const char *served, const char *scase)
{
    if (!l || !sip || !sip->sip_call_id || !sip->sip_call_id->i_id ||
        sip->sip_request->rq_method != sip_method_invite)
        return;
    const char *cid = sip->sip_call_id->i_id;
    if (ims_map_get(l->calls, cid))
        return;         /* seen before: the other case of the same call */
    if (ims_map_count(l->calls) >= CALLLOG_MAX) {
        if (!l->full_logged)
            IMS_WARN(SUBSYS, "%d calls in progress: further calls are routed but not logged", CALLLOG_MAX);
        l->full_logged = true;
        return;
    }
    call_rec *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    if (served && *served)
        snprintf(c->caller, sizeof(c->caller), "%s", served);
    else
        addr_uri(sip->sip_from, c->caller, sizeof(c->caller));
    addr_uri(sip->sip_to, c->callee, sizeof(c->callee));
    c->scase = scase;
    c->started_ms = ims_monotonic_ms();
    if (ims_map_put(l->calls, cid, c) < 0)
        free(c);
}

void scscf_calllog_final(scscf_calllog *l, const char *call_id, int status, const char *phrase)
{
    call_rec *c = l && call_id ? ims_map_get(l->calls, call_id) : NULL;
    if (!c || c->answered_ms)
        return;         /* not an INVITE we track, or the other case already told */
    int64_t now = ims_monotonic_ms();
    if (status >= 200 && status < 300) {
        c->answered_ms = now;
        IMS_INFO(SUBSYS, "session %s -> %s: %d %s after %lld ms (%s, call-id %s)", c->caller, c->callee,
                 status, phrase ? phrase : "", (long long)(now - c->started_ms), c->scase, call_id);
        return;
    }
    IMS_INFO(SUBSYS, "session %s -> %s: failed %d %s after %.1f s (%s, call-id %s)", c->caller, c->callee,
             status, phrase ? phrase : "", (double)(now - c->started_ms) / 1000.0, c->scase, call_id);
    free(ims_map_del(l->calls, call_id));
}

void scscf_calllog_final_irq(scscf_calllog *l, nta_incoming_t *irq, int status, const char *phrase)
{
    msg_t *req = l && irq ? nta_incoming_getrequest(irq) : NULL;
    sip_t *sip = req ? sip_object(req) : NULL;
    if (sip && sip->sip_call_id && sip->sip_request && sip->sip_request->rq_method == sip_method_invite)
        scscf_calllog_final(l, sip->sip_call_id->i_id, status, phrase);
    if (req)
        msg_destroy(req);
}

void scscf_calllog_bye(scscf_calllog *l, const sip_t *sip)
{
    if (!l || !sip || !sip->sip_call_id || !sip->sip_call_id->i_id)
        return;
    const char *cid = sip->sip_call_id->i_id;
    call_rec *c = ims_map_get(l->calls, cid);
    if (!c)
        return;
    char by[256];
    addr_uri(sip->sip_from, by, sizeof(by));
    int64_t now = ims_monotonic_ms();
    if (c->answered_ms)
        IMS_INFO(SUBSYS, "session %s -> %s: ended by BYE from %s after %.1f s (call-id %s)", c->caller,
                 c->callee, by, (double)(now - c->answered_ms) / 1000.0, cid);
    else
        IMS_INFO(SUBSYS, "session %s -> %s: BYE from %s before the answer (call-id %s)", c->caller, c->callee,
                 by, cid);
    free(ims_map_del(l->calls, cid));
}

static int sweep_one(void *arg, const char *key, void *val)
{
    scscf_calllog *l = arg;
    call_rec *c = val;
    int64_t age = ims_monotonic_ms() - c->started_ms;
    if ((!c->answered_ms && age > CALLLOG_TRYING_MAX_S * 1000LL) || age > CALLLOG_MAX_AGE_S * 1000LL) {
        IMS_INFO(SUBSYS, "session %s -> %s: no %s seen through us after %lld s: forgotten (call-id %s)",
                 c->caller, c->callee, c->answered_ms ? "BYE" : "final response", (long long)(age / 1000), key);
        free(ims_map_del(l->calls, key));
    }
    return 0;
}

void scscf_calllog_sweep(scscf_calllog *l)
{
    if (!l)
        return;
    ims_map_foreach(l->calls, sweep_one, l);
    if (ims_map_count(l->calls) < CALLLOG_MAX)
        l->full_logged = false;
}
