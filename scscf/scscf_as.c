/*
 * scscf_as: application server chaining of an initial request (TS 24.229 §5.4.3.2 originating,
 * §5.4.3.3 terminating; TS 23.218 §6.4-§6.5; TS 29.228 Annex B/F for the iFC themselves).
 *
 * For each matching iFC in priority order the request goes to the AS with
 *     Route: <AS-URI;lr>, <sip:scscf-host:port;lr;odi=<token>>
 * (TS 24.229 §5.4.3.2 step 4 / §5.4.3.3 step 4: the original dialog identifier lets us recognise
 * the request when the AS, acting as a proxy or B2BUA, sends it back, and continue with the next
 * iFC). Only the first pass adds our Record-Route.
 *
 * DefaultHandling (TS 24.229 §5.4.3.2 / §5.4.3.3, TS 29.228 Annex B "DefaultHandling"): when the
 * AS does not answer within scscf.as_timeout_ms, or answers 408 or 5xx before any provisional
 * response, SESSION_CONTINUED goes on with the next iFC (or the routing), SESSION_TERMINATED
 * answers the served user 408 (no answer) or 500 (error) instead. A request the AS has sent back
 * is no longer "unanswered": the timer is ignored from then on.
 *
 * Decisions: the iFCs are evaluated once when the case starts (against the request as the
 * S-CSCF received it); a request coming back from an AS continues with the next iFC of that
 * list. A token that is unknown (AS too late, after DefaultHandling already moved on) gets 403.
 *
 * Metrics: scscf_as_requests_total{result="returned"|"answered"|"continued"|"terminated"}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/su_alloc.h>

#include "ims_log.h"
#include "scscf_calllog.h"
#include "scscf_ifc.h"
#include "scscf_session.h"
#include "scscf_util.h"

#define SUBSYS "scscf.as"

/* The fork towards one AS (its arg). */
typedef struct {
    scscf_context *ctx;
    char odi[33];
    char as[256];
    int default_handling;
    bool heard;                 /* a provisional response came from the AS side */
} as_wait;

static void count_as(const char *result)
{
    char name[96];
    snprintf(name, sizeof(name), "scscf_as_requests_total{result=\"%s\"}", result);
    ims_metric_inc(ims_metric_counter(name, "initial requests sent to application servers, by outcome"));
}

static scscf_sess *waiting(scscf_context *ctx, const char *odi)
{
    return ctx->odi ? ims_map_get(ctx->odi, odi) : NULL;
}

static scscf_sess *take(scscf_context *ctx, const char *odi)
{
    return ctx->odi ? ims_map_del(ctx->odi, odi) : NULL;
}

void scscf_as_select(scscf_sess *st, const ims_service_profile *sp, bool registered)
{
    su_home_t *home = NULL;
    msg_t *req = NULL;
    st->n_as = st->next = 0;
    if (!sp || !sp->n_ifcs || !st->irq)
        goto out;
    home = su_home_new(sizeof(su_home_t));
    req = nta_incoming_getrequest(st->irq);
    size_t len = 0;
    char *text = home && req ? msg_as_string(home, req, NULL, 0, &len) : NULL;
    char method[32], ruri[512];
    scscf_ifc_request r;
    if (!text || scscf_ifc_request_from_text(text, len, method, sizeof(method), ruri, sizeof(ruri), &r))
        goto out;
    r.session_case = st->scase;
    r.registration_type = 0;
    const ims_ifc *match[SCSCF_MAX_AS];
    size_t n = scscf_ifc_select(sp, &r, registered, match, SCSCF_MAX_AS);
    for (size_t i = 0; i < n; i++) {
        if (!match[i]->as.server_name || !*match[i]->as.server_name)
            continue;
        st->as[st->n_as].uri = strdup(match[i]->as.server_name);
        st->as[st->n_as].default_handling = match[i]->as.default_handling;
        if (st->as[st->n_as].uri)
            st->n_as++;
    }
    IMS_DEBUG(SUBSYS, "%s (case %d): %zu iFC matched", st->user, st->scase, st->n_as);
out:
    if (req)
        msg_destroy(req);
    if (home)
        su_home_unref(home);
}

/* DefaultHandling asked to go on: the next iFC, on the loop (the fork gives irq back after the
 * callback returns). */
static void as_continue(void *arg)
{
    scscf_as_next(arg);
}

static int as_response(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    as_wait *w = arg;
    scscf_context *ctx = w->ctx;
    (void)msg;
    int status = sip && sip->sip_status ? sip->sip_status->st_status : 408;   /* NULL: nobody answered */
    if (status < 200) {
        w->heard = true;
        return 0;
    }
    scscf_sess *st = waiting(ctx, w->odi);
    if (!st)
        return 0;       /* it came back to us: the onward leg tells the outcome */
    const char *phrase = sip && sip->sip_status ? sip->sip_status->st_phrase : "Request Timeout";
    if (status < 300 || w->heard || !(status == 408 || status >= 500)) {
        scscf_calllog_final_irq(ctx->calls, irq, status, phrase);
        return 0;       /* the AS's own answer (as_end releases the session) */
    }
    take(ctx, w->odi);
    if (w->default_handling == IMS_DEFAULT_HANDLING_SESSION_CONTINUED && !ctx->stopping) {
        IMS_WARN(SUBSYS, "AS %s failed (%d) for %s: default handling SESSION_CONTINUED", w->as, status, st->user);
        count_as("continued");
        st->irq = irq;
        if (ims_sip_timer_start(ctx->sip, 0, as_continue, st))
            return IMS_SIP_FORK_RETAKE;
        st->irq = NULL;
        scscf_sess_free(st);
        return 500;
    }
    /* TS 24.229 §5.4.3.2 / §5.4.3.3: SESSION_TERMINATED -> 408 when the AS did not answer, else
     * 500 towards the served user. */
    IMS_WARN(SUBSYS, "AS %s failed (%d) for %s: default handling SESSION_TERMINATED", w->as, status, st->user);
    count_as("terminated");
    int code = status == 408 ? 408 : 500;
    scscf_calllog_final_irq(ctx->calls, irq, code, code == 408 ? "Request Timeout" : "Server Internal Error");
    scscf_sess_count(st->scase == IMS_SESSION_CASE_ORIGINATING ? "orig" : "term", code);
    scscf_sess_free(st);
    return code;
}

/* as_timeout_ms passed: give up only when the AS has not sent the request back to us. */
static bool as_give_up(void *arg)
{
    as_wait *w = arg;
    return waiting(w->ctx, w->odi) != NULL;
}

static void as_end(void *arg)
{
    as_wait *w = arg;
    scscf_sess *st = take(w->ctx, w->odi);
    if (st) {
        /* the AS answered the request itself (or it ended otherwise) */
        count_as("answered");
        scscf_sess_free(st);
    }
    free(w);
}

/* Our Record-Route, unless a pass through us already added it. */
static int add_rr(scscf_context *ctx, msg_t *msg, sip_t *sip)
{
    char want[320];
    for (sip_record_route_t *rr = sip->sip_record_route; rr; rr = rr->r_next)
        if (ims_sip_is_self(ctx->sip, rr->r_url))
            return 0;
    snprintf(want, sizeof(want), "%s", ctx->rr);
    return ims_sip_prepend_header(msg, sip, "Record-Route", want);
}

int scscf_sess_prepare(scscf_context *ctx, msg_t *msg, sip_t *sip)
{
    while (sip->sip_route && ims_sip_is_self(ctx->sip, sip->sip_route->r_url))
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_route);
    scscf_sess_strip_credentials(ctx, msg, sip);
    return add_rr(ctx, msg, sip);
}

void scscf_as_next(scscf_sess *st)
{
    scscf_context *ctx = st->ctx;
    if (st->next >= st->n_as) {
        scscf_sess_route(st);
        return;
    }
    scscf_as_hop *hop = &st->as[st->next++];
    msg_t *msg = ims_sip_request_copy(st->irq);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    as_wait *w = calloc(1, sizeof(*w));
    char ruri[1024], route[1024];
    const char *self = ims_sip_self_uri(ctx->sip);
    if (!sip || !w || !ctx->odi || scscf_sess_prepare(ctx, msg, sip) ||
        url_e(ruri, sizeof(ruri), sip->sip_request->rq_url) >= (issize_t)sizeof(ruri))
        goto fail;
    w->ctx = ctx;
    w->default_handling = hop->default_handling;
    snprintf(w->as, sizeof(w->as), "%s", hop->uri);
    ims_sip_random_token(st->odi, 32);
    snprintf(w->odi, sizeof(w->odi), "%s", st->odi);
    int n = snprintf(route, sizeof(route), "<%s%s>, <%s;lr;odi=%s>", hop->uri, strstr(hop->uri, ";lr") ? "" : ";lr",
                     self, st->odi);
    if (n < 0 || (size_t)n >= sizeof(route) || ims_map_put(ctx->odi, st->odi, st))
        goto fail;

    ims_sip_branch b = { .ruri = ruri, .route = route };
    ims_sip_fork_opts o = { .on_response = as_response, .give_up = as_give_up, .on_end = as_end, .arg = w,
                            .no_answer_ms = (unsigned)ctx->cfg.scscf.as_timeout_ms };
    nta_incoming_t *irq = st->irq;
    st->irq = NULL;         /* the fork's now */
    IMS_INFO(SUBSYS, "%s: to AS %s (iFC %zu of %zu, odi %s)", st->user, hop->uri, st->next, st->n_as, st->odi);
    count_as("sent");
    if (ims_sip_fork(ctx->sip, irq, msg, &b, 1, &o) < 0) {
        /* answered upstream already (e.g. CANCELled meanwhile); on_end is not called */
        take(ctx, w->odi);
        free(w);
        scscf_sess_free(st);
    }
    return;
fail:
    if (msg)
        msg_destroy(msg);
    free(w);
    scscf_sess_reject(st, 500, "Server Internal Error");
}

int scscf_as_returned(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, const char *odi)
{
    (void)sip;
    scscf_sess *st = take(ctx, odi);
    if (!st) {
        IMS_WARN(SUBSYS, "request with unknown original dialog identifier %s", odi);
        return 403;
    }
    count_as("returned");
    st->irq = irq;
    scscf_as_next(st);
    return 0;
}

static int drop_one(void *arg, const char *key, void *val)
{
    (void)arg;
    (void)key;
    scscf_sess_free(val);
    return 0;
}

void scscf_as_shutdown(scscf_context *ctx)
{
    if (!ctx->odi)
        return;
    ims_map_foreach(ctx->odi, drop_one, NULL);
    ims_map_free(ctx->odi);
    ctx->odi = NULL;
}
