/*
 * ims_statesync: write-through of a CSCF's records to the state store and their load at start.
 * See ims_statesync.h for the behaviour (docs/design.md "Storage", README "State store").
 *
 * The dirty set holds objects by pointer (a removed object leaves it in ims_statesync_removed);
 * `owned` maps each store key we wrote or loaded to its object (what a failed write is retried
 * for); deletions wait in `dels` by key until the store confirms them. Completions carry the key.
 */
#include "ims_statesync.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_http.h"
#include "ims_log.h"
#include "ims_map.h"

#define RETRY_MS 1000

enum { SYNC_LOADING, SYNC_UP, SYNC_DOWN };

struct ims_statesync {
    const ims_statesync_ops *ops;
    void *arg;
    ims_sip *sip;
    ims_state *store;
    char redis[128];              /* for /readyz */
    atomic_int state;             /* SYNC_*: read by /readyz on the HTTP threads */
    bool closing;
    bool scanning;
    size_t index;                 /* the index being walked (ops->indexes) */
    ims_map *dirty;               /* "%p" of the entry -> entry */
    ims_map *owned;               /* store key -> entry */
    ims_map *dels;                /* store key -> (void *)1 */
    ims_sip_timer *flush_timer;
    ims_sip_timer *retry_timer;   /* a load that broke off with the store up */
    size_t skipped;
    ims_log_limit warn_limit;
    ims_metric *m_dirty, *m_loaded, *m_skipped;
};

/* A completion's argument: the sync and the key the request was for. */
typedef struct {
    ims_statesync *s;
    char key[];
} op_arg;

static op_arg *op_arg_new(ims_statesync *s, const char *key)
{
    size_t n = strlen(key) + 1;
    op_arg *a = malloc(sizeof(*a) + n);
    if (a) {
        a->s = s;
        memcpy(a->key, key, n);
    }
    return a;
}

bool ims_statesync_durable(const ims_statesync *s)
{
    return s && s->store && ims_state_durable(s->store);
}

ims_state *ims_statesync_store(const ims_statesync *s)
{
    return s ? s->store : NULL;
}

static void update_dirty_gauge(ims_statesync *s)
{
    ims_metric_set(s->m_dirty, (int64_t)(ims_map_count(s->dirty) + ims_map_count(s->dels)));
}

/* ---------- write-through ---------- */

static void flush(void *arg);

static void schedule_flush(ims_statesync *s, unsigned ms)
{
    if (s->flush_timer || s->closing || atomic_load(&s->state) == SYNC_DOWN)
        return;
    s->flush_timer = ims_sip_timer_start(s->sip, ms, flush, s);
}

static void ptr_key(const void *obj, char *buf, size_t len)
{
    snprintf(buf, len, "%p", obj);
}

static void mark(ims_statesync *s, ims_statesync_ent *e, bool now)
{
    if (!e->dirty) {
        char k[32];
        ptr_key(e, k, sizeof(k));
        if (ims_map_put(s->dirty, k, e))
            return;   /* ENOMEM: the next change or reconnect writes it */
        e->dirty = true;
    }
    update_dirty_gauge(s);
    schedule_flush(s, now ? 0 : RETRY_MS);
}

void ims_statesync_changed(ims_statesync *s, ims_statesync_ent *e)
{
    if (ims_statesync_durable(s) && e)
        mark(s, e, true);
}

/* The record under key is no longer obj's: deleted from the store (confirmed later). */
static void queue_del(ims_statesync *s, const char *key)
{
    if (ims_map_get(s->owned, key))
        ims_map_del(s->owned, key);
    ims_map_put(s->dels, key, (void *)1);
}

void ims_statesync_removed(ims_statesync *s, ims_statesync_ent *e)
{
    if (!ims_statesync_durable(s) || !e)
        return;
    if (e->dirty) {
        char k[32];
        ptr_key(e, k, sizeof(k));
        ims_map_del(s->dirty, k);
        e->dirty = false;
    }
    if (e->key) {
        queue_del(s, e->key);
        free(e->key);
        e->key = NULL;
        schedule_flush(s, 0);
    }
    update_dirty_gauge(s);
}

void ims_statesync_loaded(ims_statesync *s, ims_statesync_ent *e, const char *key)
{
    char *k = strdup(key);
    if (!k || ims_map_put(s->owned, key, e)) {
        free(k);
        mark(s, e, false);   /* written again: then it is owned */
        return;
    }
    free(e->key);
    e->key = k;
}

static void on_put_done(void *arg, int status, const char *value, size_t len)
{
    (void)value;
    (void)len;
    op_arg *a = arg;
    ims_statesync *s = a->s;
    if (status != IMS_STATE_OK && !s->closing) {
        ims_statesync_ent *e = ims_map_get(s->owned, a->key);   /* still ours under this key: written again later */
        if (e)
            mark(s, e, false);
    }
    free(a);
}

static void on_del_done(void *arg, int status, const char *value, size_t len)
{
    (void)value;
    (void)len;
    op_arg *a = arg;
    ims_statesync *s = a->s;
    if (!s->closing) {
        if (status == IMS_STATE_OK || ims_map_get(s->owned, a->key))
            ims_map_del(s->dels, a->key);   /* gone, or ours again (its write replaces it) */
        else
            schedule_flush(s, RETRY_MS);
        update_dirty_gauge(s);
    }
    free(a);
}

/* Writes one dirty object; false when the store refused the request (it stays dirty). */
static bool write_obj(ims_statesync *s, ims_statesync_ent *e)
{
    int64_t ttl = 0;
    char *key = NULL, *json = NULL;
    op_arg *a = NULL;
    bool ok = true;   /* an object that cannot be encoded is not retried: the next change tries anew */
    if (s->ops->encode(s->arg, e, &key, &json, &ttl) || !key || !json) {
        if (!key && !json && e->key) {   /* not to be stored (any more): its old record goes */
            queue_del(s, e->key);
            free(e->key);
            e->key = NULL;
        }
        goto out;
    }
    if (!(a = op_arg_new(s, key)) || ims_state_put(s->store, key, json, strlen(json), ttl, on_put_done, a)) {
        ok = false;
        goto out;
    }
    a = NULL;
    ims_map_put(s->owned, key, e);   /* ENOMEM: only a failed write is then not retried */
    ims_map_del(s->dels, key);   /* ours again (removed and created anew) */
    if (e->key && strcmp(e->key, key) != 0)
        queue_del(s, e->key);    /* its key changed (e.g. the registered identity) */
    free(e->key);
    e->key = key;
    key = NULL;
out:
    free(key);
    free(json);
    free(a);
    return ok;
}

static int flush_one(void *arg, const char *k, void *val)
{
    ims_statesync *s = arg;
    ims_statesync_ent *e = val;
    if (!write_obj(s, e))
        return 1;   /* store refused: stop, retried later */
    e->dirty = false;
    ims_map_del(s->dirty, k);
    return 0;
}

static int del_one(void *arg, const char *key, void *val)
{
    (void)val;
    ims_statesync *s = arg;
    op_arg *a = op_arg_new(s, key);
    if (!a || ims_state_del(s->store, key, on_del_done, a)) {
        free(a);
        return 1;
    }
    return 0;   /* stays in dels until the store confirms */
}

static void flush(void *arg)
{
    ims_statesync *s = arg;
    s->flush_timer = NULL;   /* fired: freed by ims_sip */
    if (atomic_load(&s->state) == SYNC_DOWN || s->closing)
        return;
    ims_map_foreach(s->dirty, flush_one, s);
    ims_map_foreach(s->dels, del_one, s);
    update_dirty_gauge(s);
    if (ims_map_count(s->dirty))
        schedule_flush(s, RETRY_MS);
}

static int mark_owned(void *arg, const char *key, void *e)
{
    (void)key;
    mark(arg, e, true);
    return 0;
}

/* ---------- load at start ---------- */

static void on_scan_item(void *arg, const char *key, const char *value, size_t len)
{
    ims_statesync *s = arg;
    char err[256];
    if (!s->ops->load_item(s->arg, s->ops->indexes[s->index], key, value, len, err, sizeof(err)))
        return;
    /* every one of the first few, then at most one a second (a store full of junk) */
    unsigned long held = 0;
    if (s->skipped < 20 || ims_log_allow(&s->warn_limit, &held))
        IMS_WARN(s->ops->subsys, "record %s%s skipped: %s (%lu more since the last warning)",
                 ims_state_full_prefix(s->store), key, err, held);
    s->skipped++;
    ims_metric_inc(s->m_skipped);
}

static void start_load(ims_statesync *s);

static void retry_load(void *arg)
{
    ims_statesync *s = arg;
    s->retry_timer = NULL;   /* fired: freed by ims_sip */
    start_load(s);
}

static void scan_next(ims_statesync *s);

static void on_scan_done(void *arg, int status, const char *value, size_t len)
{
    (void)value;
    (void)len;
    ims_statesync *s = arg;
    s->scanning = false;
    if (status != IMS_STATE_OK || s->closing) {
        size_t dropped = 0;
        s->ops->load_end(s->arg, false, &dropped);
        if (!s->closing) {
            /* connection lost: on_conn starts again; a refused request: again in a second */
            IMS_WARN(s->ops->subsys, "loading the %s broke off: retried", s->ops->what);
            if (ims_state_up(s->store, NULL, 0) && !s->retry_timer)
                s->retry_timer = ims_sip_timer_start(s->sip, RETRY_MS, retry_load, s);
        }
        return;
    }
    s->index++;
    if (s->ops->indexes[s->index]) {
        scan_next(s);
        return;
    }
    size_t dropped = 0;
    size_t n = s->ops->load_end(s->arg, true, &dropped);
    ims_metric_add(s->m_loaded, (int64_t)n);
    ims_metric_add(s->m_skipped, (int64_t)dropped);
    IMS_INFO(s->ops->subsys, "loaded %zu %s from %s store %s (%zu record(s) skipped)", n, s->ops->what,
             ims_state_backend(s->store), ims_state_prefix(s->store), s->skipped + dropped);
    atomic_store(&s->state, SYNC_UP);
    schedule_flush(s, 0);
}

static void scan_next(ims_statesync *s)
{
    if (ims_state_scan(s->store, s->ops->indexes[s->index], on_scan_item, on_scan_done, s) == 0) {
        s->scanning = true;
        return;
    }
    size_t dropped = 0;
    s->ops->load_end(s->arg, false, &dropped);   /* not queued: the store is down, on_conn restarts */
}

static void start_load(ims_statesync *s)
{
    if (s->scanning)
        return;
    s->skipped = 0;
    s->index = 0;
    scan_next(s);
}

/* ---------- connection ---------- */

static void on_conn(void *arg, bool up)
{
    ims_statesync *s = arg;
    int st = atomic_load(&s->state);
    if (st == SYNC_LOADING) {
        if (up)
            start_load(s);
        return;
    }
    if (!up) {
        IMS_WARN(s->ops->subsys, "store unreachable: serving from memory, %zu change(s) pending",
                 ims_map_count(s->dirty));
        atomic_store(&s->state, SYNC_DOWN);
        return;
    }
    /* back: everything is written again (the server may have restarted empty) */
    atomic_store(&s->state, SYNC_UP);
    ims_map_foreach(s->owned, mark_owned, s);
    IMS_INFO(s->ops->subsys, "store reachable again: re-writing %zu record(s), %zu deletion(s)",
             ims_map_count(s->dirty), ims_map_count(s->dels));
    schedule_flush(s, 0);
}

/* ---------- open / close ---------- */

ims_statesync *ims_statesync_open(const ims_state_cfg *cfg, const char *def_prefix, ims_sip *sip,
                                  const ims_statesync_ops *ops, void *arg, char *err, size_t errlen)
{
    ims_statesync *s = calloc(1, sizeof(*s));
    if (!s || !(s->dirty = ims_map_new()) || !(s->dels = ims_map_new()) || !(s->owned = ims_map_new())) {
        if (s) {
            ims_map_free(s->dirty);
            ims_map_free(s->dels);
        }
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ops = ops;
    s->arg = arg;
    s->sip = sip;
    snprintf(s->redis, sizeof(s->redis), "%s", cfg->redis ? cfg->redis : "");
    char name[128];
    snprintf(name, sizeof(name), "%s_pending", ops->metric_prefix);
    s->m_dirty = ims_metric_gauge(name, "record writes and deletions not yet in the state store");
    snprintf(name, sizeof(name), "%s_loaded_total", ops->metric_prefix);
    s->m_loaded = ims_metric_counter(name, "records loaded from the state store at start");
    snprintf(name, sizeof(name), "%s_skipped_total", ops->metric_prefix);
    s->m_skipped = ims_metric_counter(name, "state store records refused at load (malformed, foreign key, conflicting)");
    bool redis = cfg->backend == IMS_STATE_REDIS;
    atomic_store(&s->state, redis ? SYNC_LOADING : SYNC_UP);
    s->store = ims_state_open(cfg, def_prefix, ims_sip_root(sip), on_conn, s, err, errlen);
    if (!s->store) {
        ims_statesync_close(s);
        return NULL;
    }
    return s;
}

void ims_statesync_close(ims_statesync *s)
{
    if (!s)
        return;
    s->closing = true;
    ims_sip_timer_cancel(s->flush_timer);
    ims_sip_timer_cancel(s->retry_timer);
    s->flush_timer = s->retry_timer = NULL;
    ims_state_close(s->store);   /* outstanding completions run now (closing: ignored) */
    if (s->scanning) {
        size_t dropped = 0;
        s->ops->load_end(s->arg, false, &dropped);
    }
    ims_map_free(s->dirty);
    ims_map_free(s->owned);
    ims_map_free(s->dels);
    free(s);
}

bool ims_statesync_loading(const ims_statesync *s)
{
    return s && atomic_load(&s->state) == SYNC_LOADING;
}

bool ims_statesync_ready(const ims_statesync *s, char *why, size_t whylen)
{
    if (!s)
        return true;
    switch (atomic_load(&s->state)) {
    case SYNC_LOADING:
        snprintf(why, whylen, "loading records from the state store (redis %s)", s->redis);
        return false;
    case SYNC_DOWN:
        snprintf(why, whylen, "state store unreachable (redis %s): serving from memory", s->redis);
        return false;
    default:
        return true;
    }
}
