/*
 * pcscf_regevent: the P-CSCF's subscription to the reg event package of its registered users.
 *
 * References:
 *  - TS 24.229 §5.2.3: after the first successful registration the P-CSCF subscribes:
 *    Request-URI and To = the public identity, From = the P-CSCF's SIP URI (with tag),
 *    Event: reg, Expires higher than the registration's, P-Asserted-Identity = the P-CSCF's SIP
 *    URI, P-Charging-Vector; refreshes 600 s before expiry when the subscription lasts more than
 *    1200 s, else at half its duration. §5.2.4: on a NOTIFY that terminates a registration or a
 *    contact, the P-CSCF removes what it stored for it.
 *  - RFC 3680 (reginfo+xml: registration state init|active|terminated, contact state
 *    active|terminated with events registered|created|refreshed|shortened|expired|deactivated|
 *    probation|unregistered|rejected), RFC 6665 (SUBSCRIBE/NOTIFY, Subscription-State, dialog),
 *    RFC 3608 (Service-Route: where the S-CSCF is).
 *
 * One subscription per registered IMPU (several UEs registering the same IMPU share it), found
 * by IMPU and by Call-ID through two hash indexes (a P-CSCF holds one per registered user), and
 * by a key (ctx->subs, ims_pending) that the UAC callback of its SUBSCRIBE carries: one forgotten
 * while a SUBSCRIBE is in flight is freed at once and the late response finds nothing. The
 * SUBSCRIBE goes along the binding's Service-Route (the I-CSCF when there is none); NOTIFYs are
 * recognised by Call-ID.
 *
 * States (ims_fsm, table sub_states below; the dialog itself -- tags, target, route set -- is
 * data, set by the 2xx or by a NOTIFY that comes first):
 *
 *   NEW --SUBSCRIBE sent--> SUBSCRIBING --2xx--> ACTIVE --refresh timer--> SUBSCRIBING ...
 *                             | failure            | FORGET (user gone)
 *                             v                    v
 *          (60 s) RETRY_WAIT --timer--> SUBSCRIBING    UNSUBSCRIBING (Expires: 0) --final--> ended
 *
 * A registration of the IMPU while its subscription is UNSUBSCRIBING ends that one at once and
 * starts a new one (pcscf_regevent_ensure): each registration gets its subscription.
 * A NOTIFY with Subscription-State: terminated, a FORGET while a SUBSCRIBE is in flight, no
 * registration left when a timer fires, or the P-CSCF stopping end it from any state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#include "ims_clock.h"
#include "ims_fsm.h"
#include "ims_log.h"
#include "ims_map.h"
#include "ims_pending.h"
#include "pcscf_bindrecord.h"
#include "pcscf_bindsync.h"
#include "pcscf_context.h"
#include "pcscf_util.h"

#define SUBSYS "pcscf.regevent"
#define MAX_ROUTES 8
#define EXPIRES_MARGIN 600          /* subscription outlives the registration by this much */
#define RETRY_SECONDS 60            /* after a failed SUBSCRIBE, while the user stays registered */
#define REGINFO_NS "urn:ietf:params:xml:ns:reginfo"

typedef struct pcscf_subscription {
    pcscf_context *ctx;
    uint64_t key;                    /* in ctx->subs; 0 once out of it */
    ims_fsm_inst *fi;                /* the state (sub_states) */
    char impu[512];
    char call_id[96];
    char from_tag[24];
    char to_tag[128];
    char remote_target[512];         /* Contact of the notifier, once the dialog exists */
    char *route[MAX_ROUTES];         /* Service-Route (initial) or the dialog's route set */
    size_t n_route;
    uint32_t cseq;
    unsigned requested;              /* Expires of the SUBSCRIBE in flight */
    bool established;                /* dialog known (to tag) */
    int64_t expires_at;              /* monotonic: end of the subscription the notifier granted */
    ims_statesync_ent sync;          /* write-through (pcscf_bindsync.c): the dialog survives a restart */
} pcscf_subscription;

/* ---------- states ---------- */

enum {
    ST_NEW,                 /* created, nothing sent yet */
    ST_SUBSCRIBING,         /* SUBSCRIBE (initial or refresh) in flight */
    ST_ACTIVE,              /* subscribed; timeout = refresh time */
    ST_RETRY_WAIT,          /* a SUBSCRIBE failed; timeout = RETRY_SECONDS */
    ST_UNSUBSCRIBING,       /* SUBSCRIBE with Expires: 0 in flight */
    N_STATES
};

enum {
    EV_RESPONSE,            /* final response to our SUBSCRIBE; data: sub_response * */
    EV_TIMER,               /* refresh or retry time */
    EV_FORGET,              /* no binding left for the IMPU */
    N_EVENTS
};

typedef struct {
    int status;
    const sip_t *sip;
} sub_response;

static void on_response_event(ims_fsm_inst *fi, int event, void *data);
static void on_timer_event(ims_fsm_inst *fi, int event, void *data);
static void sub_cleanup(ims_fsm_inst *fi, ims_fsm_term_cause cause);
static void subs_cleanup(void *arg, uint64_t key, void *rec, ims_pending_reason reason);

#define ST_SENDING (IMS_FSM_ST(ST_SUBSCRIBING) | IMS_FSM_ST(ST_RETRY_WAIT) | IMS_FSM_ST(ST_UNSUBSCRIBING))

static const ims_fsm_state sub_states[N_STATES] = {
    [ST_NEW] = { .name = "NEW", .out_states = ST_SENDING | IMS_FSM_ST(ST_ACTIVE) },   /* ACTIVE: restored */
    [ST_SUBSCRIBING] = { .name = "SUBSCRIBING", .in_events = IMS_FSM_EV(EV_RESPONSE) | IMS_FSM_EV(EV_FORGET),
                         .out_states = IMS_FSM_ST(ST_ACTIVE) | IMS_FSM_ST(ST_RETRY_WAIT),
                         .action = on_response_event },
    [ST_ACTIVE] = { .name = "ACTIVE", .in_events = IMS_FSM_EV(EV_FORGET), .out_states = ST_SENDING,
                    .action = on_timer_event },
    [ST_RETRY_WAIT] = { .name = "RETRY_WAIT", .in_events = IMS_FSM_EV(EV_FORGET), .out_states = ST_SENDING,
                        .timeout_ms = RETRY_SECONDS * 1000u, .action = on_timer_event },
    [ST_UNSUBSCRIBING] = { .name = "UNSUBSCRIBING", .in_events = IMS_FSM_EV(EV_RESPONSE) | IMS_FSM_EV(EV_FORGET),
                           .action = on_response_event },
};

static const char *const sub_events[N_EVENTS] = { "RESPONSE", "TIMER", "FORGET" };

static const ims_fsm_def sub_fsm = {
    .name = "pcscf_regsub", .subsys = SUBSYS, .states = sub_states, .n_states = N_STATES,
    .event_names = sub_events, .n_events = N_EVENTS, .timeout_event = EV_TIMER, .cleanup = sub_cleanup,
};

/* ---------- records ---------- */

static void sub_free(pcscf_subscription *s)
{
    for (size_t i = 0; i < s->n_route; i++)
        free(s->route[i]);
    free(s->sync.key);
    free(s);
}

static void set_routes(pcscf_subscription *s, char *const *routes, size_t n, bool reverse)
{
    for (size_t i = 0; i < s->n_route; i++)
        free(s->route[i]);
    s->n_route = 0;
    for (size_t i = 0; i < n && s->n_route < MAX_ROUTES; i++) {
        const char *r = routes[reverse ? n - 1 - i : i];
        if (r && (s->route[s->n_route] = strdup(r)))
            s->n_route++;
    }
}

/* Index key room: the canonical key is never longer than the identity it comes from (decoding,
 * dropping and case only), the margin is for safety. Keys are canonical (ims_identity), so
 * sip:Alice@IMS.LAB and sip:Alice@ims.lab share a subscription and sip:alice@ims.lab does not. */
#define SUB_KEY_MAX (sizeof(((pcscf_subscription *)0)->impu) + 64)

static pcscf_subscription *find_by_impu(pcscf_context *ctx, const char *impu)
{
    char k[SUB_KEY_MAX];
    return pcscf_identity_key(impu, k, sizeof(k)) ? ims_map_get(ctx->subs_by_impu, k) : NULL;
}

/* Links a new subscription into ctx->subs and both indexes and gives it its state machine (in
 * NEW). 0 / -1 (ENOMEM: s is freed). */
static int sub_link(pcscf_context *ctx, pcscf_subscription *s)
{
    char k[SUB_KEY_MAX];
    ims_timer_ops timers = ims_timer_ops_sip(ctx->sip);
    if (!pcscf_identity_key(s->impu, k, sizeof(k)) ||
        (!ctx->subs_by_impu && !(ctx->subs_by_impu = ims_map_new())) ||
        (!ctx->subs_by_call_id && !(ctx->subs_by_call_id = ims_map_new())) ||
        (!ctx->subs && !(ctx->subs = ims_pending_new("pcscf reg subscription", &timers, subs_cleanup, ctx))) ||
        !(s->fi = ims_fsm_new(&sub_fsm, &timers, s, s->impu, ST_NEW))) {
        sub_free(s);
        return -1;
    }
    if (!(s->key = ims_pending_add(ctx->subs, s, 0)))
        goto fail;
    if (ims_map_put(ctx->subs_by_impu, k, s) < 0)
        goto fail;
    if (ims_map_put(ctx->subs_by_call_id, s->call_id, s) < 0) {
        ims_map_del(ctx->subs_by_impu, k);
        goto fail;
    }
    return 0;
fail:
    ims_fsm_term(s->fi, IMS_FSM_TERM_ERROR);   /* sub_cleanup unlinks what was linked, frees s */
    return -1;
}

/* The end, whatever the state: out of the indexes and ctx->subs, freed (a SUBSCRIBE still in
 * flight finds no key: its response is dropped). Nothing to answer: NOTIFYs are answered on
 * arrival, our SUBSCRIBE is nta's. */
static void sub_cleanup(ims_fsm_inst *fi, ims_fsm_term_cause cause)
{
    pcscf_subscription *s = ims_fsm_priv(fi);
    pcscf_context *ctx = s->ctx;
    char k[SUB_KEY_MAX];
    /* sub_link made the same key, so it fits */
    if (pcscf_identity_key(s->impu, k, sizeof(k)) && ims_map_get(ctx->subs_by_impu, k) == s)
        ims_map_del(ctx->subs_by_impu, k);
    if (ims_map_get(ctx->subs_by_call_id, s->call_id) == s)
        ims_map_del(ctx->subs_by_call_id, s->call_id);
    if (s->key && ims_pending_release(ctx->subs, s->key, NULL))
        IMS_ERROR(SUBSYS, "reg subscription of %s: #%llu was not in the table", s->impu, (unsigned long long)s->key);
    if (cause != IMS_FSM_TERM_SHUTDOWN)   /* a stopping P-CSCF keeps its records for the next start */
        pcscf_bindsync_removed(ctx, &s->sync);
    sub_free(s);
}

static void sub_release(pcscf_subscription *s)
{
    ims_fsm_term(s->fi, IMS_FSM_TERM_REGULAR);
}

/* ctx->subs ends (the P-CSCF stops): the record is out of it already. */
static void subs_cleanup(void *arg, uint64_t key, void *rec, ims_pending_reason reason)
{
    pcscf_subscription *s = rec;
    (void)arg;
    (void)key;
    (void)reason;
    s->key = 0;
    ims_fsm_term(s->fi, IMS_FSM_TERM_SHUTDOWN);
}

typedef struct {
    const char *impu;
    int64_t latest;                  /* latest contact expiry of the bindings of impu */
    const pcscf_binding *first;      /* first binding registering impu */
} impu_scan;

static void scan_binding(void *arg, const pcscf_binding *b)
{
    impu_scan *sc = arg;
    if (!pcscf_identity_same(b->impu, sc->impu))
        return;   /* holds impu only in its implicit set */
    if (!sc->first)
        sc->first = b;
    if (pcscf_binding_expires(b) > sc->latest)
        sc->latest = pcscf_binding_expires(b);
}

/* Longest remaining registration of the IMPU, in seconds (0: none left). */
static int64_t registration_left(pcscf_context *ctx, const char *impu, int64_t now)
{
    impu_scan sc = { .impu = impu };
    pcscf_bindings_foreach_identity(ctx->bindings, impu, scan_binding, &sc);
    return sc.latest > now ? sc.latest - now : 0;
}

static int send_subscribe(pcscf_subscription *s, unsigned expires);

/* TS 24.229 §5.2.3: 600 s before the end of a subscription longer than 1200 s, else at half. */
static unsigned refresh_ms(int64_t left)
{
    int64_t r = left > 1200 ? left - 600 : left / 2 ? left / 2 : 1;
    return (unsigned)(r > 86400 * 7 ? 86400 * 7 : r) * 1000u;
}

/* The final response to our SUBSCRIBE, in SUBSCRIBING or UNSUBSCRIBING; or FORGET meanwhile. */
static void on_response_event(ims_fsm_inst *fi, int event, void *data)
{
    pcscf_subscription *s = ims_fsm_priv(fi);
    pcscf_context *ctx = s->ctx;
    if (event == EV_FORGET) {
        sub_release(s);   /* its response will find no key */
        return;
    }
    const sub_response *r = data;
    int status = r->status;
    const sip_t *sip = r->sip;
    if (ims_fsm_state_of(fi) == ST_UNSUBSCRIBING) {
        /* un-SUBSCRIBE answered (or refused: nothing more to do either) */
        IMS_DEBUG(SUBSYS, "reg subscription of %s ended (%d)", s->impu, status);
        sub_release(s);
        return;
    }
    if (status >= 200 && status < 300 && sip) {
        if (!s->established) {
            if (sip->sip_to && sip->sip_to->a_tag)
                snprintf(s->to_tag, sizeof(s->to_tag), "%s", sip->sip_to->a_tag);
            if (sip->sip_contact) {
                su_home_t *home = su_home_new(sizeof(su_home_t));
                char *t = home ? url_as_string(home, sip->sip_contact->m_url) : NULL;
                if (t)
                    snprintf(s->remote_target, sizeof(s->remote_target), "%s", t);
                /* UAC route set: the Record-Route of the 2xx in reverse (RFC 3261 §12.1.2) */
                char *rr[MAX_ROUTES] = { NULL };
                size_t n = 0;
                for (const sip_record_route_t *r = sip->sip_record_route; home && r && n < MAX_ROUTES; r = r->r_next)
                    if ((rr[n] = url_as_string(home, r->r_url)))
                        n++;
                set_routes(s, rr, n, true);
                if (home)
                    su_home_unref(home);
            }
            s->established = s->to_tag[0] != '\0';
        }
        unsigned granted = sip->sip_expires ? (unsigned)sip->sip_expires->ex_delta : s->requested;
        if (granted == 0) {
            IMS_DEBUG(SUBSYS, "reg subscription of %s ended", s->impu);
            sub_release(s);
            return;
        }
        IMS_INFO(SUBSYS, "subscribed to reg of %s for %u s", s->impu, granted);
        s->expires_at = ims_monotonic_s() + granted;
        pcscf_bindsync_changed(ctx, &s->sync);
        ims_fsm_state_chg_ms(fi, ST_ACTIVE, refresh_ms(granted));
        return;
    }
    IMS_WARN(SUBSYS, "SUBSCRIBE to reg of %s: %d%s; retrying in %d s while registered", s->impu, status,
             status == 481 ? " (dialog gone)" : "", RETRY_SECONDS);
    if (s->established) {
        /* start again with a new dialog (RFC 6665 §4.1.2.2 for 481; other failures alike) */
        s->established = false;
        s->to_tag[0] = s->remote_target[0] = '\0';
        impu_scan sc = { .impu = s->impu };
        pcscf_bindings_foreach_identity(ctx->bindings, s->impu, scan_binding, &sc);
        const pcscf_binding *b = sc.first;
        set_routes(s, b ? b->service_route : NULL, b ? b->n_service_route : 0, false);
        ims_sip_random_token(s->from_tag, 16);
    }
    ims_fsm_state_chg(fi, ST_RETRY_WAIT);
}

/* UAC callback: finds the subscription by key (gone: nothing to do). */
static void on_subscribe_response(void *arg, int status, const sip_t *sip)
{
    pcscf_subscription *s = ims_pending_get(pcscf_ctx.subs, ims_pending_key(arg));
    if (!s) {
        IMS_DEBUG(SUBSYS, "%d to the SUBSCRIBE of a reg subscription that is gone", status);
        return;
    }
    sub_response r = { .status = status, .sip = sip };
    ims_fsm_dispatch(s->fi, EV_RESPONSE, &r);
}

/* Refresh or retry time (ACTIVE, RETRY_WAIT), or FORGET there. */
static void on_timer_event(ims_fsm_inst *fi, int event, void *data)
{
    pcscf_subscription *s = ims_fsm_priv(fi);
    pcscf_context *ctx = s->ctx;
    (void)data;
    if (event == EV_FORGET) {
        /* un-SUBSCRIBE (RFC 6665 §4.1.2.3) a dialog that exists; the response ends it */
        if (!s->established || ctx->stopping || send_subscribe(s, 0) < 0)
            sub_release(s);
        return;
    }
    int64_t left = registration_left(ctx, s->impu, ims_monotonic_s());
    if (left <= 0) {
        sub_release(s);
        return;
    }
    send_subscribe(s, (unsigned)(left + EXPIRES_MARGIN));
}

static int send_subscribe(pcscf_subscription *s, unsigned expires)
{
    int rv = -1;
    pcscf_context *ctx = s->ctx;
    su_home_t *home = su_home_new(sizeof(su_home_t));
    msg_t *msg = nta_msg_create(ims_sip_agent(ctx->sip), 0);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    if (!home || !sip)
        goto out;

    const char *ruri = s->established && s->remote_target[0] ? s->remote_target : s->impu;
    char rl[600], from[400], to[700], cseq[40], exp[16], pcv[200], icid[128], pai[300], contact[300];
    snprintf(rl, sizeof(rl), "SUBSCRIBE %s SIP/2.0", ruri);
    snprintf(from, sizeof(from), "<%s>;tag=%s", ctx->self_uri, s->from_tag);
    if (s->established)
        snprintf(to, sizeof(to), "<%s>;tag=%s", s->impu, s->to_tag);
    else
        snprintf(to, sizeof(to), "<%s>", s->impu);
    snprintf(cseq, sizeof(cseq), "%u SUBSCRIBE", ++s->cseq);
    snprintf(exp, sizeof(exp), "%u", expires);
    snprintf(contact, sizeof(contact), "<%s%s>", ctx->self_uri, ims_sip_core_param(ctx->sip));   /* NOTIFYs */
    snprintf(pai, sizeof(pai), "<%s>", ctx->self_uri);
    ims_sip_new_icid(icid, sizeof(icid));
    snprintf(pcv, sizeof(pcv), "icid-value=\"%s\"", icid);

    if (sip_add_tl(msg, sip, SIPTAG_REQUEST_STR(rl), SIPTAG_MAX_FORWARDS_STR("70"), SIPTAG_FROM_STR(from),
                   SIPTAG_TO_STR(to), SIPTAG_CALL_ID_STR(s->call_id), SIPTAG_CSEQ_STR(cseq),
                   SIPTAG_CONTACT_STR(contact), SIPTAG_EVENT_STR("reg"),
                   SIPTAG_ACCEPT_STR("application/reginfo+xml"), SIPTAG_EXPIRES_STR(exp), TAG_END()) < 0)
        goto out;
    for (size_t i = 0; i < s->n_route; i++) {
        char r[600];
        snprintf(r, sizeof(r), "<%s>", s->route[i]);
        if (msg_header_add_make(msg, (msg_pub_t *)sip, sip_route_class, r) < 0)
            goto out;
    }
    if (ims_sip_add_header(msg, sip, "P-Asserted-Identity", pai) ||
        ims_sip_add_header(msg, sip, "P-Charging-Vector", pcv) ||
        sip_add_tl(msg, sip, SIPTAG_CONTENT_LENGTH_STR("0"), TAG_END()) < 0)
        goto out;

    url_t *target = NULL;
    if (s->n_route)
        target = url_make(home, s->route[0]);
    else if (s->established && s->remote_target[0])
        target = url_make(home, s->remote_target);
    else
        target = ctx->icscf_url;   /* no Service-Route: the I-CSCF finds the S-CSCF */
    url_t *next_hop = target ? ims_sip_next_hop(ctx->sip, home, target) : NULL;
    if (!next_hop)
        goto out;

    s->requested = expires;
    msg_t *m = msg;
    msg = NULL;   /* ims_sip_send_request owns it */
    if (ims_sip_send_request(ctx->sip, m, next_hop, on_subscribe_response, ims_pending_arg(s->key)) < 0)
        goto out;
    IMS_DEBUG(SUBSYS, "SUBSCRIBE reg %s (Expires %u, CSeq %u)", s->impu, expires, s->cseq);
    if (s->established)
        pcscf_bindsync_changed(ctx, &s->sync);   /* its CSeq moved on */
    rv = 0;
out:
    if (msg)
        msg_destroy(msg);
    if (home)
        su_home_unref(home);
    if (rv == 0) {
        ims_fsm_state_chg(s->fi, expires ? ST_SUBSCRIBING : ST_UNSUBSCRIBING);
    } else if (expires) {
        IMS_WARN(SUBSYS, "cannot send SUBSCRIBE reg for %s; retrying in %d s", s->impu, RETRY_SECONDS);
        ims_fsm_state_chg(s->fi, ST_RETRY_WAIT);
    }
    return rv;
}

void pcscf_regevent_ensure(pcscf_context *ctx, const pcscf_binding *b)
{
    pcscf_subscription *old = find_by_impu(ctx, b->impu);
    if (old && ims_fsm_state_of(old->fi) != ST_UNSUBSCRIBING)
        return;   /* it follows the registration: its timers read the bindings */
    if (old) {
        /* registered again while the un-SUBSCRIBE of the last registration is in flight: that
         * dialog is ending, and its answer would end the subscription with nothing after it,
         * leaving the user registered unsubscribed (TS 24.229 §5.2.3: subscribe after each
         * registration). End it here (its answer finds no key) and subscribe anew. */
        IMS_INFO(SUBSYS, "%s registered again while its reg subscription ends: a new subscription", b->impu);
        sub_release(old);
    }
    pcscf_subscription *s = calloc(1, sizeof(*s));
    if (!s)
        return;
    s->ctx = ctx;
    s->sync.kind = PCSCF_SYNC_SUB;
    snprintf(s->impu, sizeof(s->impu), "%s", b->impu);
    char tok[33];
    ims_sip_random_token(tok, 32);
    const char *host = ctx->cfg.sip.hostname ? ctx->cfg.sip.hostname : ctx->cfg.sip.listen;
    snprintf(s->call_id, sizeof(s->call_id), "reg-%s@%s", tok, host ? host : "pcscf");
    ims_sip_random_token(s->from_tag, 16);
    set_routes(s, b->service_route, b->n_service_route, false);
    if (sub_link(ctx, s) < 0) {
        IMS_WARN(SUBSYS, "out of memory: no reg event subscription for %s", b->impu);
        return;
    }
    int64_t left = pcscf_binding_expires(b) - ims_monotonic_s();
    send_subscribe(s, (unsigned)((left > 0 ? left : 0) + EXPIRES_MARGIN));
}

void pcscf_regevent_forget(pcscf_context *ctx, const char *impu)
{
    pcscf_subscription *s = find_by_impu(ctx, impu);
    if (s)
        ims_fsm_dispatch(s->fi, EV_FORGET, NULL);
}

static pcscf_subscription *find_by_call_id(pcscf_context *ctx, const sip_t *sip)
{
    if (!sip->sip_call_id || !sip->sip_call_id->i_id)
        return NULL;
    pcscf_subscription *s = ims_map_get(ctx->subs_by_call_id, sip->sip_call_id->i_id);
    /* the NOTIFY's To tag is our From tag (RFC 6665 §4.1.2.4) */
    if (s && sip->sip_to && sip->sip_to->a_tag && strcmp(sip->sip_to->a_tag, s->from_tag))
        return NULL;
    return s;
}

bool pcscf_regevent_is_ours(pcscf_context *ctx, const sip_t *sip)
{
    return sip->sip_request && sip->sip_request->rq_method == sip_method_notify && find_by_call_id(ctx, sip);
}

/* ---------- reginfo (RFC 3680) ---------- */

static void xml_quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static bool is_element(const xmlNode *n, const char *name)
{
    if (!n || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name))
        return false;
    return !n->ns || !n->ns->href || strcmp((const char *)n->ns->href, REGINFO_NS) == 0;
}

static char *prop(const xmlNode *n, const char *name)
{
    return (char *)xmlGetProp(n, (const xmlChar *)name);
}

static int apply_contact(pcscf_context *ctx, const char *aor, const xmlNode *c, int64_t now)
{
    int changed = 0;
    char *state = prop(c, "state"), *event = prop(c, "event"), *expires = prop(c, "expires");
    xmlChar *uri = NULL;
    for (const xmlNode *k = c->children; k; k = k->next)
        if (is_element(k, "uri")) {
            uri = xmlNodeGetContent(k);
            break;
        }
    if (!uri || !state)
        goto out;
    char *u = (char *)uri;
    while (*u == ' ' || *u == '\n' || *u == '\t' || *u == '\r')
        u++;
    for (char *e = u + strlen(u); e > u && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r');)
        *--e = '\0';
    if (strcmp(state, "terminated") == 0) {
        changed = pcscf_bindings_set_contact(ctx->bindings, aor, u, 0, now);
        if (changed)
            IMS_INFO(SUBSYS, "reg event: contact %s of %s terminated (%s)", u, aor, event ? event : "-");
    } else if (expires) {
        long e = strtol(expires, NULL, 10);
        if (e > INT32_MAX)
            e = INT32_MAX;   /* now + e must not overflow (expires="99999999999999999999": tests/fuzz) */
        if (e > 0)
            changed = pcscf_bindings_set_contact(ctx->bindings, aor, u, now + e, now);
    }
out:
    xmlFree(state);
    xmlFree(event);
    xmlFree(expires);
    xmlFree(uri);
    return changed;
}

int pcscf_regevent_apply(pcscf_context *ctx, const char *xml, size_t len)
{
    int changed = -1;
    xmlDoc *doc = NULL;
    if (!xml || !len || len > (size_t)1 << 20)
        goto out;
    /* No network, no entity substitution (XML_PARSE_NOENT is not given), no DTD loading. */
    /* Encoding errors bypass XML_PARSE_NOERROR and go to libxml2's generic error function (per
     * thread): silenced around this parse, or each such NOTIFY printed to stderr (tests/fuzz). */
    xmlGenericErrorFunc saved_fn = xmlGenericError;
    void *saved_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, xml_quiet);
    doc = xmlReadMemory(xml, (int)len, "reginfo.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
                        XML_PARSE_NOWARNING);
    xmlSetGenericErrorFunc(saved_ctx, saved_fn);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!is_element(root, "reginfo"))
        goto out;
    changed = 0;
    int64_t now = ims_monotonic_s();
    for (const xmlNode *r = root->children; r; r = r->next) {
        if (!is_element(r, "registration"))
            continue;
        char *aor_raw = prop(r, "aor"), *state = prop(r, "state");
        char aor[512];
        if (aor_raw && state && pcscf_identity(aor_raw, aor, sizeof(aor)) == 0) {
            if (strcmp(state, "terminated") == 0) {
                int n = pcscf_bindings_terminate_aor(ctx->bindings, aor);
                if (n)
                    IMS_INFO(SUBSYS, "reg event: registration of %s terminated", aor);
                changed += n;
            } else {
                for (const xmlNode *c = r->children; c; c = c->next)
                    if (is_element(c, "contact"))
                        changed += apply_contact(ctx, aor, c, now);
            }
        }
        xmlFree(aor_raw);
        xmlFree(state);
    }
    ims_metric_set(ctx->m_bindings, (int64_t)pcscf_bindings_count(ctx->bindings));
out:
    if (doc)
        xmlFreeDoc(doc);
    return changed;
}

int pcscf_regevent_notify(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    pcscf_subscription *s = find_by_call_id(ctx, sip);
    if (!s) {
        return 481;
    }
    nta_incoming_treply(irq, SIP_200_OK, TAG_END());
    nta_incoming_destroy(irq);

    if (!s->established && sip->sip_from && sip->sip_from->a_tag) {
        /* NOTIFY before the 2xx of the SUBSCRIBE: it establishes the dialog (RFC 6665 §4.1.2.4);
         * route set = its Record-Route in order */
        snprintf(s->to_tag, sizeof(s->to_tag), "%s", sip->sip_from->a_tag);
        su_home_t *home = su_home_new(sizeof(su_home_t));
        if (home && sip->sip_contact) {
            char *t = url_as_string(home, sip->sip_contact->m_url);
            if (t)
                snprintf(s->remote_target, sizeof(s->remote_target), "%s", t);
            char *rr[MAX_ROUTES] = { NULL };
            size_t n = 0;
            for (const sip_record_route_t *r = sip->sip_record_route; r && n < MAX_ROUTES; r = r->r_next)
                if ((rr[n] = url_as_string(home, r->r_url)))
                    n++;
            set_routes(s, rr, n, false);
        }
        if (home)
            su_home_unref(home);
        s->established = true;
        pcscf_bindsync_changed(ctx, &s->sync);
    }

    const sip_subscription_state_t *ss = sip->sip_subscription_state;
    if (ss && ss->ss_substate && strcasecmp(ss->ss_substate, "terminated") == 0) {
        IMS_INFO(SUBSYS, "reg subscription of %s terminated by the notifier (%s)", s->impu,
                 ss->ss_reason ? ss->ss_reason : "no reason");
        sub_release(s);   /* before the body: removing bindings must not un-SUBSCRIBE it */
    }

    const sip_payload_t *pl = sip->sip_payload;
    const char *ct = sip->sip_content_type ? sip->sip_content_type->c_type : NULL;
    if (pl && pl->pl_len) {
        if (ct && strcasecmp(ct, "application/reginfo+xml")) {
            IMS_WARN(SUBSYS, "NOTIFY reg with Content-Type %s ignored", ct);
        } else if (pcscf_regevent_apply(ctx, pl->pl_data, pl->pl_len) < 0) {
            IMS_WARN(SUBSYS, "NOTIFY reg: body is not a reginfo document");
        }
    }
    return 0;
}

void pcscf_regevent_fini(pcscf_context *ctx)
{
    ims_pending *subs = ctx->subs;
    ctx->subs = NULL;
    ims_pending_free(subs);   /* each subscription ends (subs_cleanup), its timer cancelled */
    ims_map_free(ctx->subs_by_impu);
    ims_map_free(ctx->subs_by_call_id);
    ctx->subs_by_impu = ctx->subs_by_call_id = NULL;
}

/* ---------- the state store (pcscf_bindsync.c) ---------- */

bool pcscf_regevent_export(const ims_statesync_ent *e, pcscf_subrecord *out, int64_t mono_now, int64_t wall_now)
{
    const pcscf_subscription *s = IMS_STATESYNC_OBJ(e, pcscf_subscription, sync);
    memset(out, 0, sizeof(*out));
    if (!s->established || !s->remote_target[0] || s->expires_at <= mono_now)
        return false;   /* no dialog yet (or over): a restarted P-CSCF subscribes anew */
    out->impu = (char *)s->impu;
    out->call_id = (char *)s->call_id;
    out->from_tag = (char *)s->from_tag;
    out->to_tag = (char *)s->to_tag;
    out->target = (char *)s->remote_target;
    for (size_t i = 0; i < s->n_route && i < PCSCF_REC_MAX_ROUTES; i++)
        out->routes[out->n_routes++] = s->route[i];
    out->cseq = s->cseq;
    out->expires = wall_now + (s->expires_at - mono_now);
    return true;
}

int pcscf_regevent_restore(pcscf_context *ctx, const pcscf_subrecord *r, int64_t mono_now, int64_t wall_now,
                           ims_statesync_ent **ent)
{
    *ent = NULL;
    int64_t left = r->expires - wall_now;
    if (left <= 0 || find_by_impu(ctx, r->impu))
        return -1;
    if (strlen(r->impu) >= sizeof(((pcscf_subscription *)0)->impu) ||
        strlen(r->call_id) >= sizeof(((pcscf_subscription *)0)->call_id) ||
        strlen(r->from_tag) >= sizeof(((pcscf_subscription *)0)->from_tag) ||
        strlen(r->to_tag) >= sizeof(((pcscf_subscription *)0)->to_tag) ||
        strlen(r->target) >= sizeof(((pcscf_subscription *)0)->remote_target) ||
        ims_map_get(ctx->subs_by_call_id, r->call_id))
        return -1;
    pcscf_subscription *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->ctx = ctx;
    s->sync.kind = PCSCF_SYNC_SUB;
    snprintf(s->impu, sizeof(s->impu), "%s", r->impu);
    snprintf(s->call_id, sizeof(s->call_id), "%s", r->call_id);
    snprintf(s->from_tag, sizeof(s->from_tag), "%s", r->from_tag);
    snprintf(s->to_tag, sizeof(s->to_tag), "%s", r->to_tag);
    snprintf(s->remote_target, sizeof(s->remote_target), "%s", r->target);
    set_routes(s, r->routes, r->n_routes, false);
    s->cseq = r->cseq;
    s->established = true;
    s->expires_at = mono_now + left;
    if (sub_link(ctx, s) < 0)
        return -1;
    ims_fsm_state_chg_ms(s->fi, ST_ACTIVE, refresh_ms(left));
    *ent = &s->sync;
    return 0;
}
