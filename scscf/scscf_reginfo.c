/*
 * scscf_reginfo: reg event notifier of the S-CSCF. See scscf_reginfo.h.
 *
 * References: RFC 3680 (reg event package: §3.1 Event "reg", §3.2 application/reginfo+xml,
 * §3.4 default expiry, §5 document: <reginfo version state="full"> <registration aor id state>
 * <contact id state event expires callid cseq><uri>), RFC 6665 (SUBSCRIBE/NOTIFY: §4.2.1
 * notifier behaviour, Subscription-State reasons, §4.2.2 NOTIFY failures end the subscription,
 * §4.1.2.4 dialog), RFC 3261 §12.1.1 (UAS dialog: route set = Record-Route in order, remote
 * target = Contact), TS 24.229 §5.4.2.1.1/§5.4.2.1.2 (subscription to and notification of the
 * registration state at the S-CSCF: 480 when the identity has no binding, every identity of the
 * implicit set in the document, barred identities left out, subscriptions terminated when the
 * registration ends).
 *
 * Decisions:
 *  - Who may subscribe (TS 24.229 §5.4.2.1.1, RFC 3680 §5.1.2): every request reaching here comes
 *    from the trust domain (scscf_sip.c), so its P-Asserted-Identity is believed. Allowed: the
 *    user itself (the asserted identity is in the subscribed implicit registration set, as its
 *    P-CSCF asserts it), the P-CSCF that registered the user (asserted identity without a user
 *    part whose host and port are those of a Path entry of the registration: the P-CSCF asserts
 *    its own URI), and an application server of the user's iFC (host and port of a ServerName;
 *    the asserted identity, or From when there is none). Anyone else: 403. So a registered user
 *    cannot read another user's contacts, and a NOTIFY only ever follows a subscription one of
 *    those made (its route set and target come from their SUBSCRIBE).
 *  - Every NOTIFY carries the full state (state="full"); no partial documents.
 *  - Subscription-State reason when the registration ends: "deactivated" or "rejected" (the
 *    contact events of a network-initiated de-registration), otherwise "noresource" (user
 *    de-registration, expiry); "timeout" when the subscription itself expires or is ended by the
 *    subscriber (Expires: 0).
 */
#include "scscf_reginfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_identity.h"
#include "ims_log.h"
#include "ims_strbuf.h"
#include "scscf_regsync.h"
#include "scscf_util.h"

#define SUBSYS "scscf.regevent"
#define REGINFO_TYPE "application/reginfo+xml"

typedef struct regsub regsub;   /* scscf_reginfo.h */

struct scscf_reginfo {
    scscf_context *ctx;
    ims_map *by_key;          /* key -> regsub */
};

scscf_reginfo *scscf_reginfo_new(scscf_context *ctx)
{
    scscf_reginfo *ri = calloc(1, sizeof(*ri));
    if (!ri)
        return NULL;
    ri->ctx = ctx;
    ri->by_key = ims_map_new();
    if (!ri->by_key) {
        free(ri);
        return NULL;
    }
    return ri;
}

void scscf_regsub_strings_free(scscf_regsub *s)
{
    free(s->key);
    free(s->aor);
    free(s->call_id);
    free(s->local_tag);
    free(s->remote_tag);
    free(s->local_uri);
    free(s->remote_uri);
    free(s->target);
    free(s->routes);
}

static void sub_free(regsub *s)
{
    ims_sip_timer_cancel(s->timer);
    scscf_regsub_strings_free(s);
    free(s);
}

/* Unlinks from the registration and the map, then frees. */
static void sub_release(scscf_reginfo *ri, regsub *s)
{
    if (s->reg) {
        for (regsub **pp = (regsub **)&s->reg->subs; *pp; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        }
    }
    if (ims_map_get(ri->by_key, s->key) == s)
        ims_map_del(ri->by_key, s->key);
    sub_free(s);
}

static int free_one(void *arg, const char *key, void *val)
{
    (void)key;
    scscf_reginfo *ri = arg;
    regsub *s = val;
    if (s->reg)
        s->reg->subs = NULL;    /* every subscription goes: the list is simply dropped */
    ims_map_del(ri->by_key, s->key);
    sub_free(s);
    return 0;
}

void scscf_reginfo_free(scscf_reginfo *ri)
{
    if (!ri)
        return;
    ims_map_foreach(ri->by_key, free_one, ri);
    ims_map_free(ri->by_key);
    free(ri);
}

size_t scscf_reginfo_count(const scscf_reginfo *ri)
{
    return ri ? ims_map_count(ri->by_key) : 0;
}

/* ---------- the document (RFC 3680 §5) ---------- */

char *scscf_reginfo_xml(const scscf_reg *reg, unsigned version, bool reg_terminated, int64_t now)
{
    ims_strbuf b = { 0 };
    bool any_active = false;
    for (const scscf_contact *c = reg->contacts; c; c = c->next)
        any_active = any_active || !c->terminated;
    const char *reg_state = reg_terminated || !any_active ? "terminated" : "active";

    ims_strbuf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                         "<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"%u\" state=\"full\">\n",
                     version);
    for (size_t i = 0; i < reg->n_impus; i++) {
        if (reg->impus[i].barred)
            continue;   /* TS 24.229 §5.4.2.1.2: barred identities are not shown */
        ims_strbuf_printf(&b, "  <registration aor=\"");
        ims_strbuf_xml(&b, reg->impus[i].uri);
        ims_strbuf_printf(&b, "\" id=\"r%u.%zu\" state=\"%s\">\n", reg->id, i, reg_state);
        for (const scscf_contact *c = reg->contacts; c; c = c->next) {
            bool term = reg_terminated || c->terminated;
            /* ids are unique within the document (RFC 3680 §5.1): one per registration element */
            ims_strbuf_printf(&b, "    <contact id=\"c%u.%zu.%u\" state=\"%s\" event=\"%s\"", reg->id, i, c->id,
                             term ? "terminated" : "active", scscf_contact_event_name(c->event));
            /* RFC 3680 §5.1: expires is optional, but a terminated contact carries an explicit
             * expires="0": several P-CSCFs and UEs keep a binding whose contact has no expires. */
            long left = term ? 0 : (long)(c->expires_at - now);
            ims_strbuf_printf(&b, " expires=\"%ld\"", left > 0 ? left : 0);
            if (c->call_id) {
                ims_strbuf_printf(&b, " callid=\"");
                ims_strbuf_xml(&b, c->call_id);
                ims_strbuf_printf(&b, "\" cseq=\"%u\"", c->cseq);
            }
            ims_strbuf_printf(&b, ">\n      <uri>");
            ims_strbuf_xml(&b, c->uri);
            ims_strbuf_printf(&b, "</uri>\n    </contact>\n");
        }
        ims_strbuf_printf(&b, "  </registration>\n");
    }
    ims_strbuf_printf(&b, "</reginfo>\n");
    return ims_strbuf_take(&b);
}

/* ---------- NOTIFY (RFC 6665 §4.2.2) ---------- */

static void on_notify_response(void *arg, int status, const sip_t *sip)
{
    (void)sip;
    char *key = arg;
    scscf_context *ctx = &scscf_ctx;
    if (status >= 300)
        IMS_WARN(SUBSYS, "NOTIFY answered %d", status);
    /* 481 (no such dialog) and timeouts end the subscription; so do the other failures except
     * those that ask for a retry later (RFC 6665 §4.2.2). */
    if (status >= 300 && status != 401 && status != 407 && status != 491 && status != 500 && status != 503 &&
        status != 504 && ctx->reginfo) {
        regsub *s = ims_map_get(ctx->reginfo->by_key, key);
        if (s) {
            IMS_INFO(SUBSYS, "subscription of %s to %s removed after NOTIFY failure %d", s->remote_uri, s->aor,
                     status);
            if (s->reg)
                scscf_regsync_changed(ctx, s->reg);
            sub_release(ctx->reginfo, s);
            scscf_update_gauges(ctx);
        }
    }
    free(key);
}

/* Sends one NOTIFY in the dialog of s. sub_state: "active;expires=N" or "terminated;reason=X". */
static int send_notify(scscf_context *ctx, regsub *s, const char *sub_state, bool reg_terminated)
{
    int rv = -1;
    char *body = scscf_reginfo_xml(s->reg, s->version, reg_terminated, scscf_now());
    msg_t *msg = nta_msg_create(ims_sip_agent(ctx->sip), 0);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    char *key = strdup(s->key);
    ims_strbuf rl = { 0 }, from = { 0 }, to = { 0 };
    char cseq[40], contact[300];
    if (!body || !sip || !key)
        goto out;
    ims_strbuf_printf(&rl, "NOTIFY %s SIP/2.0", s->target);
    ims_strbuf_printf(&from, "<%s>;tag=%s", s->local_uri, s->local_tag);
    ims_strbuf_printf(&to, "<%s>;tag=%s", s->remote_uri, s->remote_tag);
    snprintf(cseq, sizeof(cseq), "%u NOTIFY", ++s->local_cseq);
    snprintf(contact, sizeof(contact), "<%s>", ctx->name);
    if (rl.failed || from.failed || to.failed)
        goto out;
    if (sip_add_tl(msg, sip, SIPTAG_REQUEST_STR(rl.s), SIPTAG_MAX_FORWARDS_STR("70"), SIPTAG_FROM_STR(from.s),
                   SIPTAG_TO_STR(to.s), SIPTAG_CALL_ID_STR(s->call_id), SIPTAG_CSEQ_STR(cseq),
                   SIPTAG_CONTACT_STR(contact), SIPTAG_EVENT_STR("reg"),
                   SIPTAG_SUBSCRIPTION_STATE_STR(sub_state), TAG_IF(s->routes, SIPTAG_ROUTE_STR(s->routes)),
                   SIPTAG_CONTENT_TYPE_STR(REGINFO_TYPE), SIPTAG_PAYLOAD_STR(body), TAG_END()) < 0)
        goto out;
    s->version++;
    msg_t *m = msg;
    msg = NULL;   /* consumed by ims_sip_send_request in every case */
    char *k = key;
    key = NULL;
    if (ims_sip_send_request(ctx->sip, m, NULL, on_notify_response, k) < 0) {
        free(k);
        goto out;
    }
    IMS_DEBUG(SUBSYS, "NOTIFY %s to %s (version %u, %s)", s->aor, s->target, s->version - 1, sub_state);
    rv = 0;
out:
    if (rv)
        IMS_WARN(SUBSYS, "cannot send NOTIFY for %s to %s", s->aor, s->target ? s->target : "-");
    if (msg)
        msg_destroy(msg);
    free(key);
    free(body);
    ims_strbuf_free(&rl);
    ims_strbuf_free(&from);
    ims_strbuf_free(&to);
    return rv;
}

static const char *end_reason(const scscf_reg *reg)
{
    for (const scscf_contact *c = reg->contacts; c; c = c->next) {
        if (c->event == SCSCF_CEV_DEACTIVATED)
            return "deactivated";
        if (c->event == SCSCF_CEV_REJECTED)
            return "rejected";
    }
    return "noresource";
}

void scscf_reginfo_notify(scscf_context *ctx, scscf_reg *reg, bool reg_terminated)
{
    if (!ctx->reginfo)
        return;
    int64_t now = scscf_now();
    char state[64];
    if (reg_terminated)
        snprintf(state, sizeof(state), "terminated;reason=%s", end_reason(reg));
    regsub *s = reg->subs;
    while (s) {
        regsub *next = s->next;
        if (!reg_terminated) {
            long left = (long)(s->expires_at - now);
            snprintf(state, sizeof(state), "active;expires=%ld", left > 0 ? left : 0);
        }
        send_notify(ctx, s, state, reg_terminated);
        if (reg_terminated) {
            s->reg = NULL;   /* the list goes with the registration */
            if (ims_map_get(ctx->reginfo->by_key, s->key) == s)
                ims_map_del(ctx->reginfo->by_key, s->key);
            sub_free(s);
        }
        s = next;
    }
    if (reg_terminated)
        reg->subs = NULL;
    else if (reg->subs)
        scscf_regsync_changed(ctx, reg);   /* the versions and CSeqs moved on */
    scscf_update_gauges(ctx);
}

/* ---------- SUBSCRIBE (RFC 6665 §4.2.1) ---------- */

static void notify_after_answer(scscf_context *ctx, regsub *s, long expires, bool ended);

static void on_sub_expired(void *arg)
{
    regsub *s = arg;
    scscf_context *ctx = &scscf_ctx;
    s->timer = NULL;   /* fired: freed by ims_sip */
    IMS_INFO(SUBSYS, "subscription of %s to %s expired", s->remote_uri, s->aor);
    notify_after_answer(ctx, s, 0, true);
}

static void arm(scscf_context *ctx, regsub *s, long expires)
{
    ims_sip_timer_cancel(s->timer);
    s->expires_at = scscf_now() + expires;
    s->timer = ims_sip_timer_start(ctx->sip, (unsigned)expires * 1000u, on_sub_expired, s);
}

static bool accepts_reginfo(const sip_t *sip)
{
    if (!sip->sip_accept)
        return true;   /* RFC 3680 §3.2: the default */
    for (const sip_accept_t *a = sip->sip_accept; a; a = a->ac_next) {
        if (!a->ac_type)
            continue;
        if (strcasecmp(a->ac_type, REGINFO_TYPE) == 0 || strcmp(a->ac_type, "*/*") == 0 ||
            strcasecmp(a->ac_type, "application/*") == 0)
            return true;
    }
    return false;
}

static char *header_list(const sip_route_t *r)
{
    ims_strbuf b = { 0 };
    su_home_t *home = su_home_new(sizeof(su_home_t));
    for (; home && r; r = r->r_next) {
        char *v = sip_header_as_string(home, (const sip_header_t *)r);
        if (v)
            ims_strbuf_printf(&b, "%s%s", b.len ? ", " : "", v);
    }
    if (home)
        su_home_unref(home);
    if (!b.len) {
        ims_strbuf_free(&b);
        return NULL;
    }
    return ims_strbuf_take(&b);
}

static char *url_str(const url_t *u)
{
    su_home_t *home = su_home_new(sizeof(su_home_t));
    char *s = home ? url_as_string(home, u) : NULL;
    char *r = s ? strdup(s) : NULL;
    if (home)
        su_home_unref(home);
    return r;
}

static long requested_expires(scscf_context *ctx, const sip_t *sip)
{
    long max = ctx->cfg.scscf.reg_event_expires;
    if (!sip->sip_expires)
        return max;
    unsigned long v = sip->sip_expires->ex_delta;
    return v > (unsigned long)max ? max : (long)v;
}

/* After the 2xx to a SUBSCRIBE (RFC 6665 §4.2.1.4: a NOTIFY follows every accepted one), and at
 * expiry: an ended subscription (expiry 0, its registration gone, or its time up) gets a final
 * NOTIFY while the registration exists and is released; a live one is re-armed for `expires`
 * seconds and gets the full state. */
static void notify_after_answer(scscf_context *ctx, regsub *s, long expires, bool ended)
{
    if (s->reg)
        scscf_regsync_changed(ctx, s->reg);
    if (ended) {
        if (s->reg)
            send_notify(ctx, s, "terminated;reason=timeout", false);
        sub_release(ctx->reginfo, s);
    } else {
        arm(ctx, s, expires);
        char state[64];
        snprintf(state, sizeof(state), "active;expires=%ld", expires);
        send_notify(ctx, s, state, false);
    }
    scscf_update_gauges(ctx);
}

static int refresh(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, regsub *s)
{
    if (sip->sip_cseq->cs_seq <= s->remote_cseq && s->remote_cseq) {
        scscf_reply(ctx, irq, 500, "Server Internal Error - CSeq Out of Order", NULL, false);
        return 0;
    }
    s->remote_cseq = sip->sip_cseq->cs_seq;
    if (sip->sip_contact) {
        char *t = url_str(sip->sip_contact->m_url);
        if (t) {
            free(s->target);
            s->target = t;
        }
    }
    long expires = requested_expires(ctx, sip);
    char hdr[400];
    snprintf(hdr, sizeof(hdr), "Expires: %ld\r\nContact: <%s>\r\n", expires, ctx->name);
    scscf_reply(ctx, irq, 200, "OK", hdr, false);
    if (expires == 0 || !s->reg)
        IMS_INFO(SUBSYS, "subscription of %s to %s ended by the subscriber", s->remote_uri, s->aor);
    notify_after_answer(ctx, s, expires, expires == 0 || !s->reg);
    return 0;
}

/* ---------- who may subscribe (TS 24.229 §5.4.2.1.1) ---------- */

/* The URI of the first name-addr or bare URI of a header value, parsed into home; NULL when none. */
static url_t *first_url(su_home_t *home, const char *value)
{
    if (!value)
        return NULL;
    const char *lt = strchr(value, '<');
    const char *start = lt ? lt + 1 : value;
    size_t n = lt ? strcspn(start, ">") : strcspn(start, " ,;");
    char *s = su_strndup(home, start, n);
    url_t *u = s ? url_make(home, s) : NULL;
    return u && (u->url_type == url_sip || u->url_type == url_sips || u->url_type == url_tel) ? u : NULL;
}

static bool same_hostport(const url_t *a, const url_t *b)
{
    if (!a || !b || !a->url_host || !b->url_host || strcasecmp(a->url_host, b->url_host) != 0)
        return false;
    const char *pa = a->url_port && *a->url_port ? a->url_port : "5060";
    const char *pb = b->url_port && *b->url_port ? b->url_port : "5060";
    return strcmp(pa, pb) == 0;
}

/* True when `who` is the host:port of a Path entry of one of the registration's contacts. */
static bool is_registering_pcscf(su_home_t *home, const scscf_reg *reg, const url_t *who)
{
    for (const scscf_contact *c = reg->contacts; c; c = c->next) {
        for (const char *p = c->path; p && *p;) {
            const char *lt = strchr(p, '<');
            if (!lt)
                break;
            if (same_hostport(first_url(home, lt), who))
                return true;
            p = strchr(lt, '>');
        }
    }
    return false;
}

static bool is_users_as(const scscf_reg *reg, su_home_t *home, const url_t *who)
{
    for (size_t i = 0; i < reg->profile.n_profiles; i++) {
        const ims_service_profile *sp = &reg->profile.profiles[i];
        for (size_t j = 0; j < sp->n_ifcs; j++)
            if (same_hostport(first_url(home, sp->ifcs[j].as.server_name), who))
                return true;
    }
    return false;
}

/* NULL when the subscriber may watch reg, else why not (for the log). */
static const char *subscriber_refused(const scscf_reg *reg, const sip_t *sip, char *who, size_t wholen)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    char pai[512];
    const char *why = "not the user, its P-CSCF or one of its application servers";
    url_t *asserted = first_url(home, ims_sip_header(sip, "P-Asserted-Identity", pai, sizeof(pai)));
    const url_t *claimed = asserted ? asserted : sip->sip_from ? sip->sip_from->a_url : NULL;
    snprintf(who, wholen, "%s", "-");
    if (claimed)
        url_e(who, (isize_t)wholen, claimed);
    if (asserted) {
        /* identity keys as everywhere (scscf_identity_key, common/ims_identity) */
        if (asserted->url_user && scscf_reg_has_impu(reg, who))
            why = NULL;             /* the user itself, asserted by its P-CSCF */
        if (why && !asserted->url_user && is_registering_pcscf(home, reg, asserted))
            why = NULL;             /* the P-CSCF the user registered through */
    }
    if (why && claimed && is_users_as(reg, home, claimed))
        why = NULL;                 /* an application server of the user's iFC */
    su_home_deinit(home);
    return why;
}

int scscf_reginfo_subscribe(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    scscf_reginfo *ri = ctx->reginfo;
    regsub *s = NULL;
    char key[600];

    if (!sip->sip_from || !sip->sip_from->a_tag || !sip->sip_to || !sip->sip_call_id || !sip->sip_cseq) {
        scscf_reply(ctx, irq, 400, "Bad Request - Missing Header or From tag", NULL, false);
        return 0;
    }
    if (sip->sip_to->a_tag) {
        /* in-dialog: a refresh or an unsubscription */
        snprintf(key, sizeof(key), "%s\n%s", sip->sip_call_id->i_id, sip->sip_to->a_tag);
        s = ims_map_get(ri->by_key, key);
        if (!s) {
            scscf_reply(ctx, irq, 481, "Subscription Does Not Exist", NULL, false);
            return 0;
        }
        return refresh(ctx, irq, sip, s);
    }
    if (!accepts_reginfo(sip)) {
        scscf_reply(ctx, irq, 406, "Not Acceptable", "Accept: " REGINFO_TYPE "\r\n", false);
        return 0;
    }
    if (!sip->sip_contact || sip->sip_contact->m_url->url_type == url_any) {
        scscf_reply(ctx, irq, 400, "Bad Request - Missing Contact", NULL, false);
        return 0;
    }
    /* The subscribed identity: the Request-URI (TS 24.229 §5.4.2.1.1), or the To URI when the
     * request was sent to our own address. */
    const url_t *target = sip->sip_request->rq_url;
    if (ims_sip_is_self(ctx->sip, target))
        target = sip->sip_to->a_url;
    char *aor_full = url_str(target);
    char aor[512];
    if (!aor_full || ims_identity_normalise(aor_full, aor, sizeof(aor))) {
        free(aor_full);
        scscf_reply(ctx, irq, 400, "Bad Request - Bad Request-URI", NULL, false);
        return 0;
    }
    free(aor_full);
    scscf_reg *reg = scscf_regstore_find(ctx->store, aor);
    if (!reg) {
        scscf_reply(ctx, irq, 480, "Temporarily Unavailable - Not Registered", NULL, false);
        return 0;
    }
    char who[512];
    const char *why = subscriber_refused(reg, sip, who, sizeof(who));
    if (why) {
        IMS_WARN(SUBSYS, "reg SUBSCRIBE to %s by %s refused (403): %s", aor, who, why);
        ims_metric_inc(ims_metric_counter("scscf_reg_subscribe_refused_total",
                                          "reg event SUBSCRIBEs refused: not the user, its P-CSCF or its AS"));
        scscf_reply(ctx, irq, 403, "Forbidden - Not Authorized", NULL, false);
        return 0;
    }

    long expires = requested_expires(ctx, sip);
    s = calloc(1, sizeof(*s));
    char tag[17];
    ims_sip_random_token(tag, 16);
    if (!s)
        goto fail;
    s->reg = reg;
    s->aor = strdup(aor);
    s->call_id = strdup(sip->sip_call_id->i_id);
    s->local_tag = strdup(tag);
    s->remote_tag = strdup(sip->sip_from->a_tag);
    s->local_uri = url_str(sip->sip_to->a_url);
    s->remote_uri = url_str(sip->sip_from->a_url);
    s->target = url_str(sip->sip_contact->m_url);
    s->routes = header_list(sip->sip_record_route);
    s->remote_cseq = sip->sip_cseq->cs_seq;
    snprintf(key, sizeof(key), "%s\n%s", sip->sip_call_id->i_id, tag);
    s->key = strdup(key);
    if (!s->aor || !s->call_id || !s->local_tag || !s->remote_tag || !s->local_uri || !s->remote_uri ||
        !s->target || !s->key || ims_map_put(ri->by_key, s->key, s))
        goto fail;
    s->next = reg->subs;
    reg->subs = s;

    char hdr[400];
    snprintf(hdr, sizeof(hdr), "Expires: %ld\r\nContact: <%s>\r\n", expires, ctx->name);
    nta_incoming_tag(irq, tag);
    scscf_reply(ctx, irq, 200, "OK", hdr, false);
    IMS_INFO(SUBSYS, "%s subscribed to %s for %ld s", s->remote_uri, s->aor, expires);

    /* expiry 0 is a fetch: one NOTIFY with the state, and the subscription is over (RFC 6665 §4.4.3) */
    notify_after_answer(ctx, s, expires, expires == 0);
    return 0;

fail:
    if (s) {
        if (s->key && ims_map_get(ri->by_key, s->key) == s)
            ims_map_del(ri->by_key, s->key);
        sub_free(s);
    }
    scscf_reply(ctx, irq, 500, "Server Internal Error", NULL, false);
    return 0;
}

/* ---------- restart (scscf_regsync.c) ---------- */

int scscf_reginfo_restore(scscf_context *ctx, scscf_reg *reg, const scscf_regsub *rec)
{
    scscf_reginfo *ri = ctx->reginfo;
    char key[600];
    regsub *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->reg = reg;
    s->aor = scscf_strdup(rec->aor);
    s->call_id = scscf_strdup(rec->call_id);
    s->local_tag = scscf_strdup(rec->local_tag);
    s->remote_tag = scscf_strdup(rec->remote_tag);
    s->local_uri = scscf_strdup(rec->local_uri);
    s->remote_uri = scscf_strdup(rec->remote_uri);
    s->target = scscf_strdup(rec->target);
    s->routes = scscf_strdup(rec->routes);
    s->local_cseq = rec->local_cseq;
    s->remote_cseq = rec->remote_cseq;
    s->version = rec->version;
    snprintf(key, sizeof(key), "%s\n%s", rec->call_id ? rec->call_id : "", rec->local_tag ? rec->local_tag : "");
    s->key = strdup(key);
    if (!s->aor || !s->call_id || !s->local_tag || !s->remote_tag || !s->local_uri || !s->remote_uri ||
        !s->target || (rec->routes && !s->routes) || !s->key || ims_map_get(ri->by_key, key) ||
        ims_map_put(ri->by_key, s->key, s)) {
        sub_free(s);
        return -1;
    }
    s->next = reg->subs;
    reg->subs = s;
    long left = (long)(rec->expires_at - scscf_now());
    arm(ctx, s, left > 0 ? left : 0);   /* a subscription whose time is up ends on the next turn */
    return 0;
}
