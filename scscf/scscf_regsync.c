/*
 * scscf_regsync: registrations written through to the state store and loaded at start. See
 * scscf_regsync.h for the behaviour; the record format and its checks are scscf_regrecord.c.
 *
 * All on the SIP loop. The dirty set holds registrations by pointer (a removed registration
 * leaves it in the remove hook); deletions wait in `dels` by key until the store confirms them.
 * Completions carry a key, never a pointer: the registration may be gone when they arrive.
 */
#include "scscf_regsync.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ims_log.h"
#include "ims_map.h"
#include "scscf_reginfo.h"
#include "scscf_regrecord.h"

#define SUBSYS "scscf.store"
#define RETRY_MS 1000
/* A registration that expired while we were down expires this long after the load, so that the
 * Diameter connection for its SAR TIMEOUT_DEREGISTRATION is up by then. */
#define LOAD_EXPIRY_DELAY_S 3

enum { SYNC_LOADING, SYNC_UP, SYNC_DOWN };

typedef struct scscf_regsync {
    scscf_context *ctx;
    ims_state *store;
    atomic_int state;             /* SYNC_*: read by /readyz on the HTTP threads */
    bool scanning;
    ims_map *dirty;               /* "%p" of reg -> reg */
    ims_map *dels;                /* store key -> (void *)1 */
    ims_sip_timer *flush_timer;
    ims_sip_timer *retry_timer;   /* a load that broke off with the store up */
    scscf_regrecord **loaded;     /* records of the load in progress */
    size_t n_loaded, cap_loaded;
    size_t skipped;
    ims_log_limit warn_limit;
    ims_metric *m_dirty, *m_loaded, *m_skipped;
} scscf_regsync;

static bool durable(const scscf_context *ctx)
{
    return ctx->sync && ctx->sync->store && ims_state_durable(ctx->sync->store);
}

static void update_dirty_gauge(scscf_regsync *s)
{
    ims_metric_set(s->m_dirty, (int64_t)(ims_map_count(s->dirty) + ims_map_count(s->dels)));
}

/* ---------- write-through ---------- */

static void flush(void *arg);

static void schedule_flush(scscf_regsync *s, unsigned ms)
{
    if (s->flush_timer || s->ctx->stopping || atomic_load(&s->state) == SYNC_DOWN)
        return;
    s->flush_timer = ims_sip_timer_start(s->ctx->sip, ms, flush, s);
}

static void ptr_key(const scscf_reg *reg, char *buf, size_t len)
{
    snprintf(buf, len, "%p", (const void *)reg);
}

static void mark(scscf_regsync *s, scscf_reg *reg, bool now)
{
    if (!reg->sync_dirty) {
        char k[32];
        ptr_key(reg, k, sizeof(k));
        if (ims_map_put(s->dirty, k, reg))
            return;   /* ENOMEM: the next change or reconnect writes it */
        reg->sync_dirty = true;
    }
    update_dirty_gauge(s);
    schedule_flush(s, now ? 0 : RETRY_MS);
}

void scscf_regsync_changed(scscf_context *ctx, scscf_reg *reg)
{
    if (durable(ctx) && reg)
        mark(ctx->sync, reg, true);
}

static void on_put_done(void *arg, int status, const char *value, size_t len)
{
    (void)value;
    (void)len;
    char *key = arg;
    scscf_context *ctx = &scscf_ctx;
    if (status != IMS_STATE_OK && ctx->sync && !ctx->stopping) {
        /* written again later if it is still ours under this key */
        scscf_reg *reg = ctx->store ? scscf_regstore_find(ctx->store, key + 4) : NULL;
        if (reg && reg->sync_key && strcmp(reg->sync_key, key) == 0)
            mark(ctx->sync, reg, false);
    }
    free(key);
}

static void on_del_done(void *arg, int status, const char *value, size_t len)
{
    (void)value;
    (void)len;
    char *key = arg;
    scscf_context *ctx = &scscf_ctx;
    scscf_regsync *s = ctx->sync;
    if (s && !ctx->stopping) {
        scscf_reg *reg = ctx->store ? scscf_regstore_find(ctx->store, key + 4) : NULL;
        bool owned = reg && reg->sync_key && strcmp(reg->sync_key, key) == 0;
        if (status == IMS_STATE_OK || owned)
            ims_map_del(s->dels, key);
        else
            schedule_flush(s, RETRY_MS);
        update_dirty_gauge(s);
    }
    free(key);
}

/* Writes one dirty registration; false when the store refused the request (stays dirty). */
static bool write_reg(scscf_regsync *s, scscf_reg *reg)
{
    int64_t ttl = 0;
    char *key = scscf_regrecord_key(reg);
    char *json = key ? scscf_regrecord_encode(reg, scscf_now(), (int64_t)time(NULL), &ttl) : NULL;
    char *arg = key ? strdup(key) : NULL;
    bool ok = false;
    if (!json || !arg) {
        IMS_ERROR(SUBSYS, "cannot make the record of %s", reg->n_impus ? reg->impus[0].uri : reg->impi);
        ok = true;   /* not retried: it would fail again; the next change tries anew */
        goto out;
    }
    if (ims_state_put(s->store, key, json, strlen(json), ttl, on_put_done, arg))
        goto out;
    arg = NULL;
    ims_map_del(s->dels, key);   /* ours again (removed and registered anew) */
    if (reg->sync_key && strcmp(reg->sync_key, key) != 0)
        ims_map_put(s->dels, reg->sync_key, (void *)1);   /* the registered identity changed */
    free(reg->sync_key);
    reg->sync_key = key;
    key = NULL;
    ok = true;
out:
    free(key);
    free(json);
    free(arg);
    return ok;
}

static int flush_one(void *arg, const char *k, void *val)
{
    scscf_regsync *s = arg;
    scscf_reg *reg = val;
    if (!write_reg(s, reg))
        return 1;   /* store refused: stop, retried later */
    reg->sync_dirty = false;
    ims_map_del(s->dirty, k);
    return 0;
}

static int del_one(void *arg, const char *key, void *val)
{
    (void)val;
    scscf_regsync *s = arg;
    char *k = strdup(key);
    if (!k || ims_state_del(s->store, key, on_del_done, k)) {
        free(k);
        return 1;
    }
    return 0;   /* stays in dels until the store confirms */
}

static void flush(void *arg)
{
    scscf_regsync *s = arg;
    s->flush_timer = NULL;   /* fired: freed by ims_sip */
    if (atomic_load(&s->state) == SYNC_DOWN || s->ctx->stopping)
        return;
    ims_map_foreach(s->dirty, flush_one, s);
    ims_map_foreach(s->dels, del_one, s);
    update_dirty_gauge(s);
    if (ims_map_count(s->dirty))
        schedule_flush(s, RETRY_MS);
}

static void on_remove(void *arg, scscf_reg *reg)
{
    scscf_regsync *s = arg;
    if (reg->sync_dirty) {
        char k[32];
        ptr_key(reg, k, sizeof(k));
        ims_map_del(s->dirty, k);
        reg->sync_dirty = false;
    }
    if (reg->sync_key) {
        ims_map_put(s->dels, reg->sync_key, (void *)1);
        schedule_flush(s, 0);
    }
    update_dirty_gauge(s);
}

static int mark_all(void *arg, scscf_reg *reg)
{
    mark(arg, reg, true);
    return 0;
}

/* ---------- load at start ---------- */

static void on_scan_item(void *arg, const char *key, const char *value, size_t len)
{
    scscf_regsync *s = arg;
    scscf_context *ctx = s->ctx;
    scscf_regrecord_limits lim = { .max_expires = ctx->cfg.scscf.max_expires,
                                   .max_sub_expires = ctx->cfg.scscf.reg_event_expires };
    char err[256];
    if (s->n_loaded == s->cap_loaded) {
        size_t cap = s->cap_loaded ? s->cap_loaded * 2 : 64;
        scscf_regrecord **n = realloc(s->loaded, cap * sizeof(*n));
        if (!n)
            return;
        s->loaded = n;
        s->cap_loaded = cap;
    }
    scscf_regrecord *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    if (scscf_regrecord_decode(key, value, len, &lim, (int64_t)time(NULL), r, err, sizeof(err))) {
        /* every one of the first few, then at most one a second (a store full of junk) */
        unsigned long held = 0;
        if (s->skipped < 20 || ims_log_allow(&s->warn_limit, &held))
            IMS_WARN(SUBSYS, "record %s%s skipped: %s (%lu more since the last warning)", ims_state_full_prefix(s->store),
                     key, err, held);
        s->skipped++;
        ims_metric_inc(s->m_skipped);
        free(r);
        return;
    }
    s->loaded[s->n_loaded++] = r;
}

/* Every identity belongs to one record (a record cannot take over a user's calls by naming it in
 * its profile): first a record listing an identity that is another record's registered one goes;
 * then, among the rest, records sharing an implicit identity all go (no way to tell which is right). */
static void drop_conflicts(scscf_regsync *s, bool *drop)
{
    ims_map *primary = ims_map_new(), *implicit = ims_map_new();
    char k[512];
    if (!primary || !implicit)
        goto out;
    for (size_t i = 0; i < s->n_loaded; i++) {
        scscf_identity_key(s->loaded[i]->impu, k, sizeof(k));
        ims_map_put(primary, k, s->loaded[i]);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->n_loaded; i++) {
            const scscf_regrecord *r = s->loaded[i];
            for (size_t p = 0; p < r->profile.n_profiles && !drop[i]; p++) {
                for (size_t j = 0; j < r->profile.profiles[p].n_ids && !drop[i]; j++) {
                    scscf_identity_key(r->profile.profiles[p].ids[j].identity, k, sizeof(k));
                    void *owner = ims_map_get(primary, k);
                    if (owner == r)
                        continue;
                    size_t other = (size_t)(uintptr_t)ims_map_get(implicit, k);
                    if (pass == 0 && owner) {
                        drop[i] = true;
                    } else if (pass == 1 && other && other - 1 != i) {
                        drop[i] = drop[other - 1] = true;
                    } else if (pass == 1) {
                        ims_map_put(implicit, k, (void *)(uintptr_t)(i + 1));
                        continue;
                    } else {
                        continue;
                    }
                    IMS_WARN(SUBSYS, "record of %s skipped: %s belongs to another record", r->impu, k);
                }
            }
        }
    }
out:
    ims_map_free(primary);
    ims_map_free(implicit);
}

static bool apply(scscf_regsync *s, scscf_regrecord *r)
{
    scscf_context *ctx = s->ctx;
    int64_t now = scscf_now(), wall = (int64_t)time(NULL);
    if (scscf_regstore_find(ctx->store, r->impu))
        return false;   /* loaded by an earlier walk */
    scscf_reg *reg = scscf_regstore_create(ctx->store, r->impi, &r->profile, r->impu);
    if (!reg)
        return false;
    scscf_regstore_set_id(ctx->store, reg, r->id);
    reg->next_contact_id = r->next_contact_id;
    reg->auth_scheme = r->auth_scheme;
    for (size_t i = 0; i < r->n_contacts; i++) {
        const scscf_rec_contact *rc = &r->contacts[i];
        scscf_contact *c = scscf_reg_contact_add(ctx->store, reg, rc->uri);
        if (!c || scscf_contact_set(&c->params, rc->params) || scscf_contact_set(&c->path, rc->path) ||
            scscf_contact_set(&c->call_id, rc->call_id) || scscf_contact_set(&c->received, rc->received))
            break;
        int64_t at = now + (rc->expires - wall);
        c->expires_at = at > now ? at : now + LOAD_EXPIRY_DELAY_S;
        c->cseq = rc->cseq;
        c->id = rc->id;
        c->event = rc->event;
        if (c->id >= reg->next_contact_id)
            reg->next_contact_id = c->id;
    }
    reg->sync_key = scscf_regrecord_key(reg);
    for (size_t i = 0; i < r->n_subs; i++) {
        r->subs[i].expires_at = now + (r->subs[i].expires_at - wall);
        if (scscf_reginfo_restore(ctx, reg, &r->subs[i]))
            IMS_WARN(SUBSYS, "subscription of %s to %s not restored", r->subs[i].remote_uri, r->subs[i].aor);
    }
    scscf_regstore_touch(ctx->store, reg);
    return true;
}

static void free_loaded(scscf_regsync *s)
{
    for (size_t i = 0; i < s->n_loaded; i++) {
        scscf_regrecord_free(s->loaded[i]);
        free(s->loaded[i]);
    }
    free(s->loaded);
    s->loaded = NULL;
    s->n_loaded = s->cap_loaded = 0;
}

static void start_load(scscf_regsync *s);

static void retry_load(void *arg)
{
    scscf_regsync *s = arg;
    s->retry_timer = NULL;   /* fired: freed by ims_sip */
    start_load(s);
}

static void on_scan_done(void *arg, int status, const char *value, size_t len)
{
    (void)value;
    (void)len;
    scscf_regsync *s = arg;
    scscf_context *ctx = s->ctx;
    s->scanning = false;
    if (status != IMS_STATE_OK || ctx->stopping) {
        free_loaded(s);
        if (!ctx->stopping) {
            /* connection lost: on_conn starts again; a refused request: again in a second */
            IMS_WARN(SUBSYS, "loading the registrations broke off: retried");
            if (ims_state_up(s->store, NULL, 0) && !s->retry_timer)
                s->retry_timer = ims_sip_timer_start(ctx->sip, RETRY_MS, retry_load, s);
        }
        return;
    }
    bool *drop = calloc(s->n_loaded + 1, sizeof(bool));
    size_t n = 0;
    if (drop) {
        drop_conflicts(s, drop);
        for (size_t i = 0; i < s->n_loaded; i++)
            n += !drop[i] && apply(s, s->loaded[i]);
    }
    ims_metric_add(s->m_loaded, (int64_t)n);
    ims_metric_add(s->m_skipped, (int64_t)(s->n_loaded - n));
    IMS_INFO(SUBSYS, "loaded %zu registration(s) from %s store %s (%zu record(s) skipped)", n,
             ims_state_backend(s->store), ims_state_prefix(s->store), s->skipped + (s->n_loaded - n));
    free(drop);
    free_loaded(s);
    atomic_store(&s->state, SYNC_UP);
    scscf_update_gauges(ctx);
    schedule_flush(s, 0);
}

static void start_load(scscf_regsync *s)
{
    if (s->scanning)
        return;
    s->skipped = 0;
    if (ims_state_scan(s->store, "reg", on_scan_item, on_scan_done, s) == 0)
        s->scanning = true;
}

/* ---------- connection ---------- */

static void on_conn(void *arg, bool up)
{
    scscf_regsync *s = arg;
    int st = atomic_load(&s->state);
    if (st == SYNC_LOADING) {
        if (up)
            start_load(s);
        return;
    }
    if (!up) {
        IMS_WARN(SUBSYS, "store unreachable: serving from memory, %zu change(s) pending", ims_map_count(s->dirty));
        atomic_store(&s->state, SYNC_DOWN);
        return;
    }
    /* back: everything is written again (the server may have restarted empty) */
    atomic_store(&s->state, SYNC_UP);
    scscf_regstore_foreach(s->ctx->store, mark_all, s);
    IMS_INFO(SUBSYS, "store reachable again: re-writing %zu registration(s), %zu deletion(s)",
             ims_map_count(s->dirty), ims_map_count(s->dels));
    schedule_flush(s, 0);
}

/* ---------- start / stop ---------- */

int scscf_regsync_start(scscf_context *ctx, char *err, size_t errlen)
{
    scscf_regsync *s = calloc(1, sizeof(*s));
    if (!s || !(s->dirty = ims_map_new()) || !(s->dels = ims_map_new())) {
        if (s)
            ims_map_free(s->dirty);
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->ctx = ctx;
    s->m_dirty = ims_metric_gauge("scscf_store_pending", "registration writes and deletions not yet in the store");
    s->m_loaded = ims_metric_counter("scscf_store_loaded_total", "registrations loaded from the store at start");
    s->m_skipped = ims_metric_counter("scscf_store_skipped_total",
                                      "store records refused at load (malformed, foreign key, conflicting)");
    bool redis = ctx->cfg.store.backend == IMS_STATE_REDIS;
    atomic_store(&s->state, redis ? SYNC_LOADING : SYNC_UP);
    ctx->sync = s;
    s->store = ims_state_open(&ctx->cfg.store, ctx->name, ims_sip_root(ctx->sip), on_conn, s, err, errlen);
    if (!s->store)
        return -1;
    if (redis)
        scscf_regstore_on_remove(ctx->store, on_remove, s);
    IMS_INFO(SUBSYS, "registrations: %s store%s%s (prefix %s)", ims_state_backend(s->store), redis ? " at " : "",
             redis ? ctx->cfg.store.redis : "", ims_state_prefix(s->store));
    return 0;
}

void scscf_regsync_stop(scscf_context *ctx)
{
    scscf_regsync *s = ctx->sync;
    if (!s)
        return;
    if (ctx->store)
        scscf_regstore_on_remove(ctx->store, NULL, NULL);
    ims_sip_timer_cancel(s->flush_timer);
    ims_sip_timer_cancel(s->retry_timer);
    s->flush_timer = s->retry_timer = NULL;
    ims_state_close(s->store);   /* outstanding completions run now (ctx->stopping: ignored) */
    free_loaded(s);
    ims_map_free(s->dirty);
    ims_map_free(s->dels);
    ctx->sync = NULL;
    free(s);
}

bool scscf_regsync_loading(const scscf_context *ctx)
{
    return ctx->sync && atomic_load(&ctx->sync->state) == SYNC_LOADING;
}

bool scscf_regsync_ready(const scscf_context *ctx, char *why, size_t whylen)
{
    if (!ctx->sync)
        return true;
    switch (atomic_load(&ctx->sync->state)) {
    case SYNC_LOADING:
        snprintf(why, whylen, "loading registrations from the store (redis %s)", ctx->cfg.store.redis);
        return false;
    case SYNC_DOWN:
        snprintf(why, whylen, "state store unreachable (redis %s): serving from memory", ctx->cfg.store.redis);
        return false;
    default:
        return true;
    }
}
