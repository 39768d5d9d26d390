/*
 * pcscf_media: the dialog/media records of media anchoring (pcscf_media.h), the one delete every
 * teardown ends in, the rtpengine client's configuration, metrics and readiness.
 *
 * Teardown paths (issue 13), all through media_delete():
 *   BYE (pcscf_media_sip.c, when the BYE passed pcscf_route.c's checks), any final failure of
 *   the initial INVITE (CANCEL included: its 487), losing fork branches (their to-tag only),
 *   de-registration or expiry of the UE's last binding (pcscf_media_flow_gone), NF shutdown
 *   (pcscf_media_stop), an offer/answer rtpengine failed, and dialog expiry (pcscf_media_tick):
 *   a leg with no request of its call for media.max_session_s is deleted ("expired"), and one
 *   idle for media.check_s is asked for at rtpengine (ng query): "Unknown call-id" means
 *   rtpengine dropped it by its own --timeout (no media), and the record goes
 *   ("rtpengine_timeout"). Why both: rtpengine's timeout frees its ports when media stops, but
 *   a UE that keeps sending RTP after its SIP side died would hold them forever, and the
 *   P-CSCF's record would stay in both cases; in-dialog requests (session-timer refreshes,
 *   RFC 4028) keep a long call alive.
 *
 * Metrics: pcscf_media_sessions_active (gauge: legs), pcscf_media_sessions_created_total,
 * pcscf_media_sessions_deleted_total{reason}, pcscf_media_sessions_failed_total (an offer or
 * answer rtpengine did not answer or refused), pcscf_media_unanchored_total (on_failure pass: a
 * message let through with its own SDP), pcscf_media_refused_total (503 for want of rtpengine,
 * and 403 for a Call-ID of another UE's leg); the client exports pcscf_rtpengine_* (RTT, up).
 */
#define _GNU_SOURCE   /* strcasestr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_clock.h"
#include "ims_log.h"
#include "pcscf_media_int.h"

#define SUBSYS PCSCF_MEDIA_SUBSYS

/* rtpengine instances not marked dead, for /readyz (HTTP threads read it; the loop writes it).
 * Not in pcscf_media: the HTTP server outlives that record at shutdown. */
static atomic_size_t live_instances;

static const char *const anchor_names[] = { "off", "rtpengine", NULL };
static const char *const on_failure_names[] = { "reject", "pass", NULL };

static int check_hostport(const char *v, char *why, size_t whylen)
{
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == v || !end || *end || port < 1 || port > 65535 || strpbrk(v, " \t\r\n;,<>\"")) {
        snprintf(why, whylen, "not host:port (the rtpengine --listen-ng address)");
        return -1;
    }
    return 0;
}

static int check_ifname(const char *v, char *why, size_t whylen)
{
    for (const char *p = v; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-' || *p == '.')) {
            snprintf(why, whylen, "not an rtpengine interface name (letters, digits, _ - .)");
            return -1;
        }
    }
    return *v ? 0 : (snprintf(why, whylen, "empty interface name"), -1);
}

const ims_cfg_field pcscf_media_cfg_fields[] = {
    { .key = "anchor", .type = IMS_CFG_ENUM, .offset = offsetof(pcscf_media_cfg, anchor), .def = "off",
      .enum_names = anchor_names,
      .help = "off: SDP passes untouched, media goes UE to UE; rtpengine: every SDP to and from UEs passes "
              "rtpengine (ng offer/answer), UEs see rtpengine's address" },
    { .key = "rtpengine", .type = IMS_CFG_STRLIST, .offset = offsetof(pcscf_media_cfg, rtpengine),
      .check = check_hostport,
      .help = "rtpengine ng control addresses (host:port); a call's instance is chosen by a stable hash of "
              "its Call-ID, the next one takes over when it does not answer" },
    { .key = "timeout_ms", .type = IMS_CFG_INT, .offset = offsetof(pcscf_media_cfg, timeout_ms), .def = "1000",
      .min = 10, .max = 30000, .help = "milliseconds to wait for one ng answer before retransmitting" },
    { .key = "retries", .type = IMS_CFG_INT, .offset = offsetof(pcscf_media_cfg, retries), .def = "2",
      .min = 0, .max = 10, .help = "ng retransmissions per instance before it is marked dead" },
    { .key = "dead_s", .type = IMS_CFG_INT, .offset = offsetof(pcscf_media_cfg, dead_s), .def = "30",
      .min = 1, .max = 3600, .help = "seconds an rtpengine that did not answer is skipped" },
    { .key = "ping_s", .type = IMS_CFG_INT, .offset = offsetof(pcscf_media_cfg, ping_s), .def = "5",
      .min = 0, .max = 3600, .help = "seconds between health pings of every rtpengine (0: none)" },
    { .key = "on_failure", .type = IMS_CFG_ENUM, .offset = offsetof(pcscf_media_cfg, on_failure), .def = "reject",
      .enum_names = on_failure_names,
      .help = "no rtpengine answers an offer/answer: reject (503 with Retry-After) or pass (the SDP goes on "
              "unanchored); both are logged and counted" },
    { .key = "max_session_s", .type = IMS_CFG_INT, .offset = offsetof(pcscf_media_cfg, max_session_s),
      .def = "43200", .min = 0, .max = 604800,
      .help = "a call's media is deleted at rtpengine when no request of the call (re-INVITE, UPDATE, "
              "session-timer refresh...) passed for this long: a dialog whose BYE never came (0: never; "
              "default 12 h, Kamailio's dialog default_timeout)" },
    { .key = "check_s", .type = IMS_CFG_INT, .offset = offsetof(pcscf_media_cfg, check_s), .def = "60",
      .min = 0, .max = 86400,
      .help = "a call with no request for this long is looked up at rtpengine (ng query); when "
              "rtpengine no longer has it (its own --timeout: no media), the record goes (0: never)" },
    { .key = "access_interface", .type = IMS_CFG_STR, .offset = offsetof(pcscf_media_cfg, access_interface),
      .check = check_ifname, .help = "rtpengine interface name (--interface=NAME/addr) facing the UEs; with "
                                     "core_interface it gives the ng direction" },
    { .key = "core_interface", .type = IMS_CFG_STR, .offset = offsetof(pcscf_media_cfg, core_interface),
      .check = check_ifname, .help = "rtpengine interface name facing the core" },
    { .key = NULL },
};

int pcscf_media_config_check(const pcscf_media_cfg *cfg, char *err, size_t errlen)
{
    if (!cfg->access_interface != !cfg->core_interface) {
        snprintf(err, errlen, "pcscf.media: access_interface and core_interface go together (both or none)");
        return -1;
    }
    if (cfg->anchor == PCSCF_MEDIA_ANCHOR_OFF)
        return 0;
    if (cfg->rtpengine.count == 0) {
        snprintf(err, errlen, "pcscf.media.anchor is rtpengine but pcscf.media.rtpengine lists no address");
        return -1;
    }
    if (cfg->rtpengine.count > IMS_RTPE_MAX_INSTANCES) {
        snprintf(err, errlen, "pcscf.media.rtpengine: at most %d addresses", IMS_RTPE_MAX_INSTANCES);
        return -1;
    }
    return 0;
}

/* ---------- legs ---------- */

static void leg_key(char *out, size_t len, const char *call_id, leg_role role, unsigned branch)
{
    if (branch == 0)
        snprintf(out, len, "%s;%s", call_id, role == LEG_ORIG ? "orig" : "term");
    else
        snprintf(out, len, "%s;%s~%u", call_id, role == LEG_ORIG ? "orig" : "term", branch + 1);
}

media_leg *media_leg_branch(pcscf_media *m, const char *call_id, leg_role role, unsigned branch)
{
    char key[1100];
    if (!m || !call_id || strlen(call_id) > 1024)
        return NULL;
    leg_key(key, sizeof(key), call_id, role, branch);
    return ims_map_get(m->legs, key);
}

media_leg *media_leg_find(pcscf_media *m, const char *call_id, leg_role role)
{
    return media_leg_branch(m, call_id, role, 0);
}

media_leg *media_leg_get(pcscf_media *m, const char *key)
{
    return m && key ? ims_map_get(m->legs, key) : NULL;
}

bool media_leg_has_to_tag(const media_leg *leg, const char *to_tag)
{
    for (size_t i = 0; leg && to_tag && i < leg->n_to_tags; i++)
        if (strcmp(leg->to_tags[i], to_tag) == 0)
            return true;
    return false;
}

static void leg_free(media_leg *leg)
{
    ims_rtpe_cancel(leg->query);
    for (size_t i = 0; i < leg->n_to_tags; i++)
        free(leg->to_tags[i]);
    free(leg->to_tags);
    free(leg->key);
    free(leg->call_id);
    free(leg->caller_tag);
    free(leg);
}

media_leg *media_leg_new(pcscf_media *m, const char *call_id, leg_role role, const char *caller_tag,
                         const pcscf_addr *owner)
{
    char key[1100];
    if (!call_id || strlen(call_id) > 1024)
        return NULL;
    unsigned branch = 0;
    while (branch < MEDIA_MAX_BRANCHES && media_leg_branch(m, call_id, role, branch))
        branch++;
    if (branch == MEDIA_MAX_BRANCHES)
        return NULL;
    leg_key(key, sizeof(key), call_id, role, branch);
    media_leg *leg = calloc(1, sizeof(*leg));
    if (!leg)
        return NULL;
    leg->key = strdup(key);
    leg->call_id = strdup(call_id);
    leg->caller_tag = strdup(caller_tag ? caller_tag : "");
    leg->role = role;
    leg->owner = *owner;
    leg->m = m;
    leg->touched = leg->checked = ims_monotonic_s();
    if (!leg->key || !leg->call_id || !leg->caller_tag || ims_map_put(m->legs, key, leg)) {
        leg_free(leg);
        return NULL;
    }
    ims_metric_set(m->m_active, (int64_t)ims_map_count(m->legs));
    return leg;
}

void media_leg_add_to_tag(media_leg *leg, const char *to_tag)
{
    if (!to_tag)
        return;
    for (size_t i = 0; i < leg->n_to_tags; i++)
        if (strcmp(leg->to_tags[i], to_tag) == 0)
            return;
    if (leg->n_to_tags >= 32)   /* a fork this wide is not a call: keep what we have */
        return;
    char **t = realloc(leg->to_tags, (leg->n_to_tags + 1) * sizeof(*t));
    if (!t)
        return;
    leg->to_tags = t;
    if ((t[leg->n_to_tags] = strdup(to_tag)))
        leg->n_to_tags++;
}

static void on_deleted(void *arg, const ims_rtpe_result *res)
{
    pcscf_media *m = arg;
    media_note_live(m);
    if (res->status != IMS_RTPE_OK)   /* "Unknown call-ID" after rtpengine's own timeout is normal */
        IMS_DEBUG(SUBSYS, "delete at %s: %s", res->instance ? res->instance : "-",
                  res->error_reason ? res->error_reason : "no answer");
}

void media_delete(pcscf_media *m, media_leg *leg, const char *to_tag, const char *reason)
{
    if (!m || !leg)
        return;
    if (leg->at_rtpe) {
        ims_rtpe_request rq;
        ims_rtpe_request_init(&rq, IMS_RTPE_DELETE);
        rq.call_id = leg->key;
        rq.from_tag = to_tag ? leg->caller_tag : NULL;
        rq.to_tag = to_tag;
        rq.delete_delay = 0;   /* the call is over: its ports go back at once */
        char err[200];
        if (!ims_rtpe_send(m->rtpe, &rq, on_deleted, m, err, sizeof(err)))
            IMS_WARN(SUBSYS, "delete of %s not sent: %s", leg->key, err);
    }
    if (to_tag) {
        IMS_INFO(SUBSYS, "%s: early dialog %s deleted (%s)", leg->key, to_tag, reason);
        return;
    }
    IMS_INFO(SUBSYS, "%s of %s:%u/%s deleted (%s)", leg->key, leg->owner.host, leg->owner.port,
             leg->owner.transport, reason);
    ims_map_del(m->legs, leg->key);
    if (leg->counted) {
        char name[96];
        snprintf(name, sizeof(name), "pcscf_media_sessions_deleted_total{reason=\"%s\"}", reason);
        ims_metric *c = ims_metric_counter(name, "media sessions (legs) deleted at rtpengine, by reason");
        if (c)
            ims_metric_inc(c);
    }
    leg_free(leg);
    ims_metric_set(m->m_active, (int64_t)ims_map_count(m->legs));
}

void media_delete_unknown(pcscf_media *m, const char *call_id)
{
    static ims_log_limit limit;
    unsigned long unlogged;
    if (!m || !call_id || strlen(call_id) > 1024 || media_leg_find(m, call_id, LEG_ORIG) ||
        media_leg_find(m, call_id, LEG_TERM))
        return;
    if (ims_log_allow(&limit, &unlogged))
        IMS_INFO(SUBSYS, "BYE for Call-ID %s without a media leg here (set up before a restart?): deleted at "
                 "rtpengine (%lu similar not logged)", call_id, unlogged);
    for (leg_role role = LEG_ORIG; role <= LEG_TERM; role++) {
        char key[1100];
        leg_key(key, sizeof(key), call_id, role, 0);   /* the first branch: others time out at rtpengine */
        ims_rtpe_request rq;
        ims_rtpe_request_init(&rq, IMS_RTPE_DELETE);
        rq.call_id = key;
        rq.delete_delay = 0;
        char err[200];
        if (!ims_rtpe_send(m->rtpe, &rq, on_deleted, m, err, sizeof(err)))
            IMS_DEBUG(SUBSYS, "delete of %s not sent: %s", key, err);
    }
}

void media_count_created(pcscf_media *m, media_leg *leg)
{
    if (leg->counted)
        return;
    leg->counted = true;
    ims_metric_inc(m->m_created);
}

void media_count_failed(pcscf_media *m, const char *what, const media_leg *leg, const ims_rtpe_result *res)
{
    static ims_log_limit limit;
    unsigned long unlogged;
    ims_metric_inc(m->m_failed);
    if (!ims_log_allow(&limit, &unlogged))
        return;
    IMS_WARN(SUBSYS, "%s for %s (UE %s:%u/%s) failed at %s: %s (%lu similar not logged)", what, leg->key,
             leg->owner.host, leg->owner.port, leg->owner.transport,
             res && res->instance ? res->instance : "no live rtpengine",
             res && res->status == IMS_RTPE_ERROR ? (res->error_reason ? res->error_reason : "error") : "no answer",
             unlogged);
}

void media_note_live(pcscf_media *m)
{
    if (m && m->rtpe)
        atomic_store(&live_instances, ims_rtpe_live(m->rtpe));
}

/* ---------- start / stop ---------- */

int pcscf_media_start(pcscf_context *ctx, char *err, size_t errlen)
{
    const pcscf_media_cfg *c = &ctx->cfg.pcscf.media;
    if (c->anchor == PCSCF_MEDIA_ANCHOR_OFF)
        return 0;
    pcscf_media *m = calloc(1, sizeof(*m));
    if (!m || !(m->legs = ims_map_new())) {
        free(m);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->ctx = ctx;
    ims_rtpe_config rc;
    ims_rtpe_config_init(&rc);
    rc.addresses = (const char *const *)c->rtpengine.items;
    rc.n_addresses = c->rtpengine.count;
    rc.timeout_ms = (unsigned)c->timeout_ms;
    rc.retries = (unsigned)c->retries;
    rc.dead_s = (unsigned)c->dead_s;
    rc.ping_s = (unsigned)c->ping_s;
    rc.metrics_prefix = "pcscf";
    char why[256] = "";
    m->rtpe = ims_rtpe_create(ims_sip_root(ctx->sip), &rc, why, sizeof(why));
    if (!m->rtpe) {
        snprintf(err, errlen, "pcscf.media.rtpengine: %s", why);
        ims_map_free(m->legs);
        free(m);
        return -1;
    }
    m->m_active = ims_metric_gauge("pcscf_media_sessions_active", "media sessions (call legs) anchored at rtpengine");
    m->m_created = ims_metric_counter("pcscf_media_sessions_created_total",
                                      "media sessions (legs) rtpengine accepted an offer for");
    m->m_failed = ims_metric_counter("pcscf_media_sessions_failed_total",
                                     "offers/answers rtpengine did not answer or refused");
    m->m_unanchored = ims_metric_counter("pcscf_media_unanchored_total",
                                         "SDP passed unanchored after an rtpengine failure (on_failure pass)");
    m->m_refused = ims_metric_counter("pcscf_media_refused_total",
                                      "requests refused by media anchoring (503 no rtpengine, 403 foreign Call-ID)");
    ims_metric_set(m->m_active, 0);
    atomic_store(&live_instances, ims_rtpe_live(m->rtpe));
    if (media_sip_start(m)) {
        ims_rtpe_destroy(m->rtpe);
        ims_map_free(m->legs);
        free(m);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ctx->media = m;
    IMS_INFO(SUBSYS, "media anchoring through %zu rtpengine instance(s), on failure %s%s%s%s", c->rtpengine.count,
             on_failure_names[c->on_failure], c->access_interface ? ", direction " : "",
             c->access_interface ? c->access_interface : "", c->core_interface ? "/core" : "");
    return 0;
}

static int delete_each(void *arg, const char *key, void *val)
{
    (void)key;
    media_delete(arg, val, NULL, MEDIA_DEL_SHUTDOWN);
    return 0;
}

void pcscf_media_stop(pcscf_context *ctx)
{
    pcscf_media *m = ctx->media;
    if (!m)
        return;
    media_sip_stop(m);                       /* held messages dropped, pending ng requests cancelled */
    ims_map_foreach(m->legs, delete_each, m);   /* the deletes leave now; nobody waits for them */
    ims_rtpe_destroy(m->rtpe);
    ims_map_free(m->legs);
    atomic_store(&live_instances, 0);
    ctx->media = NULL;
    free(m);
}

/* ---------- expiry: calls whose BYE never came ---------- */

/* rtpengine's answer to an expiry query: a call it no longer knows was dropped by its own
 * timeout (no media for --timeout s, RTP and RTCP both): the record follows, nothing to delete. */
static void on_checked(void *arg, const ims_rtpe_result *res)
{
    media_leg *leg = arg;
    pcscf_media *m = leg->m;
    leg->query = NULL;
    leg->checked = ims_monotonic_s();
    media_note_live(m);
    if (res->status == IMS_RTPE_ERROR && res->error_reason && strcasestr(res->error_reason, "unknown call")) {
        leg->at_rtpe = false;
        media_delete(m, leg, NULL, MEDIA_DEL_RTPE_TIMEOUT);
    }
}

static int sweep_each(void *arg, const char *key, void *val)
{
    (void)key;
    media_leg *leg = val;
    pcscf_media *m = arg;
    const pcscf_media_cfg *c = &m->ctx->cfg.pcscf.media;
    int64_t now = ims_monotonic_s(), idle = now - leg->touched;
    if (c->max_session_s > 0 && idle >= c->max_session_s) {
        IMS_INFO(SUBSYS, "%s of %s:%u/%s: no request for %lld s (media.max_session_s %ld): BYE lost?",
                 leg->key, leg->owner.host, leg->owner.port, leg->owner.transport, (long long)idle, c->max_session_s);
        media_delete(m, leg, NULL, MEDIA_DEL_EXPIRED);   /* deletes the current entry only: safe here */
        return 0;
    }
    if (c->check_s > 0 && leg->at_rtpe && !leg->query && idle >= c->check_s && now - leg->checked >= c->check_s) {
        ims_rtpe_request rq;
        ims_rtpe_request_init(&rq, IMS_RTPE_QUERY);
        rq.call_id = leg->key;
        char err[200];
        leg->checked = now;
        if (!(leg->query = ims_rtpe_send(m->rtpe, &rq, on_checked, leg, err, sizeof(err))))
            IMS_DEBUG(SUBSYS, "query of %s not sent: %s", leg->key, err);
    }
    return 0;
}

void pcscf_media_tick(pcscf_context *ctx)
{
    pcscf_media *m = ctx->media;
    media_note_live(m);
    if (m)
        ims_map_foreach(m->legs, sweep_each, m);
}

bool pcscf_media_ready(const pcscf_context *ctx, char *why, size_t whylen)
{
    const pcscf_media_cfg *c = &ctx->cfg.pcscf.media;
    if (c->anchor == PCSCF_MEDIA_ANCHOR_OFF || c->on_failure != PCSCF_MEDIA_FAIL_REJECT)
        return true;
    if (atomic_load(&live_instances) > 0)
        return true;
    snprintf(why, whylen, "no rtpengine reachable (media anchoring required)");
    return false;
}

typedef struct {
    pcscf_media *m;
    const pcscf_addr *flow;
} flow_gone_arg;

static int delete_of_flow(void *arg, const char *key, void *val)
{
    (void)key;
    flow_gone_arg *a = arg;
    media_leg *leg = val;
    if (pcscf_flow_same(&leg->owner, a->flow))
        media_delete(a->m, leg, NULL, MEDIA_DEL_DEREGISTERED);
    return 0;
}

void pcscf_media_flow_gone(pcscf_context *ctx, const pcscf_addr *flow)
{
    if (!ctx->media || !flow)
        return;
    flow_gone_arg a = { ctx->media, flow };
    ims_map_foreach(ctx->media->legs, delete_of_flow, &a);
}
