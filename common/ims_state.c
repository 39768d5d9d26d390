/*
 * ims_state: the state store front (requests, completions, metrics, the "store:" schema) and the
 * memory backend. See ims_state.h; the Redis backend is ims_state_redis.c.
 */
#include "ims_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/su_wait.h>

#include "ims_clock.h"
#include "ims_http.h"
#include "ims_log.h"
#include "ims_map.h"

#define SUBSYS "store"

const char *const ims_state_backend_names[] = { "memory", "redis", NULL };

static int check_hostport(const char *v, char *why, size_t whylen)
{
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == v || !end || *end || port < 1 || port > 65535) {
        snprintf(why, whylen, "not host:port");
        return -1;
    }
    return 0;
}

const ims_cfg_field ims_state_cfg_fields[] = {
    { .key = "backend", .type = IMS_CFG_ENUM, .offset = offsetof(ims_state_cfg, backend), .def = "memory",
      .enum_names = ims_state_backend_names,
      .help = "memory: state lives in this process and is lost on restart; redis: written through to Redis "
              "and reloaded at start (registrations survive a restart)" },
    { .key = "redis", .type = IMS_CFG_STR, .offset = offsetof(ims_state_cfg, redis), .def = "127.0.0.1:6379",
      .check = check_hostport, .help = "Redis server host:port (backend: redis)" },
    { .key = "prefix", .type = IMS_CFG_STR, .offset = offsetof(ims_state_cfg, prefix),
      .help = "namespace of this instance's records; default the NF's name (S-CSCF: scscf.name), so a "
              "replacement with the same name resumes them" },
    { .key = "timeout_ms", .type = IMS_CFG_INT, .offset = offsetof(ims_state_cfg, timeout_ms), .def = "1000",
      .min = 10, .max = 60000,
      .help = "a store request unanswered this long counts as a failure and the connection is re-made" },
    { .key = NULL },
};

static const char *const op_names[IMS_STATE_OP_N] = { "put", "get", "del", "expire", "scan" };

struct ims_state {
    const ims_state_backend_ops *ops;
    void *be;
    su_root_t *root;
    char *name;                   /* the namespace */
    char *prefix;                 /* "<name>:" */
    ims_state_conn_f on_conn;
    void *arg;
    ims_metric *m_latency[IMS_STATE_OP_N], *m_errors[IMS_STATE_OP_N], *m_up;
};

/* ---------- front ---------- */

ims_state *ims_state_open(const ims_state_cfg *cfg, const char *def_prefix, su_root_t *root,
                          ims_state_conn_f on_conn, void *arg, char *err, size_t errlen)
{
    const char *prefix = cfg->prefix && *cfg->prefix ? cfg->prefix : def_prefix;
    if (!prefix || !*prefix || strlen(prefix) > 256) {
        snprintf(err, errlen, "store.prefix: empty or longer than 256 characters");
        return NULL;
    }
    ims_state *st = calloc(1, sizeof(*st));
    size_t n = strlen(prefix) + 2;
    if (!st || !(st->prefix = malloc(n)) || !(st->name = strdup(prefix))) {
        if (st)
            free(st->prefix);
        free(st);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(st->prefix, n, "%s:", prefix);
    st->ops = cfg->backend == IMS_STATE_REDIS ? &ims_state_redis_ops : &ims_state_memory_ops;
    st->root = root;
    st->on_conn = on_conn;
    st->arg = arg;
    for (int i = 0; i < IMS_STATE_OP_N; i++) {
        char name[128];
        snprintf(name, sizeof(name), "store_request_seconds{backend=\"%s\",op=\"%s\"}", st->ops->name, op_names[i]);
        st->m_latency[i] = ims_metric_histogram(name, "state store request to completion");
        snprintf(name, sizeof(name), "store_errors_total{backend=\"%s\",op=\"%s\"}", st->ops->name, op_names[i]);
        st->m_errors[i] = ims_metric_counter(name, "state store requests that failed (unreachable, timeout, refused)");
    }
    char name[96];
    snprintf(name, sizeof(name), "store_up{backend=\"%s\"}", st->ops->name);
    st->m_up = ims_metric_gauge(name, "1 while the state store is reachable");
    ims_metric_set(st->m_up, cfg->backend == IMS_STATE_REDIS ? 0 : 1);
    st->be = st->ops->open(st, cfg, root, err, errlen);
    if (!st->be) {
        free(st->name);
        free(st->prefix);
        free(st);
        return NULL;
    }
    return st;
}

void ims_state_close(ims_state *st)
{
    if (!st)
        return;
    st->on_conn = NULL;   /* no news while closing */
    st->ops->close(st->be);
    free(st->name);
    free(st->prefix);
    free(st);
}

bool ims_state_durable(const ims_state *st) { return st && st->ops == &ims_state_redis_ops; }
const char *ims_state_full_prefix(const ims_state *st) { return st->prefix; }
su_root_t *ims_state_root(const ims_state *st) { return st->root; }
const char *ims_state_backend(const ims_state *st) { return st->ops->name; }

const char *ims_state_prefix(const ims_state *st) { return st->name; }

bool ims_state_up(const ims_state *st, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    return st && st->ops->up(st->be, why, whylen);
}

void ims_state_conn_changed(ims_state *st, bool up)
{
    ims_metric_set(st->m_up, up);
    if (st->on_conn)
        st->on_conn(st->arg, up);
}

static int request(ims_state *st, int opc, const char *key, const char *value, size_t len, int64_t ttl_s,
                   ims_state_item_f item, ims_state_done_f done, void *arg)
{
    if (!st || !key || strlen(key) > 4096 || ttl_s < 0)
        return -1;
    size_t n = strlen(st->prefix) + strlen(key) + 1;
    char *full = malloc(n);
    ims_state_op *op = calloc(1, sizeof(*op));
    if (!full || !op) {
        free(full);
        free(op);
        ims_metric_inc(st->m_errors[opc]);
        return -1;
    }
    snprintf(full, n, "%s%s", st->prefix, key);
    op->st = st;
    op->op = opc;
    op->done = done;
    op->item = item;
    op->arg = arg;
    op->t0_us = (uint64_t)ims_monotonic_us();
    int rc = st->ops->request(st->be, op, full, value, len, ttl_s);
    free(full);
    if (rc) {
        free(op);
        ims_metric_inc(st->m_errors[opc]);
    }
    return rc;
}

int ims_state_put(ims_state *st, const char *key, const char *value, size_t len, int64_t ttl_s,
                  ims_state_done_f done, void *arg)
{
    if (!value)
        return -1;
    return request(st, IMS_STATE_OP_PUT, key, value, len, ttl_s, NULL, done, arg);
}

int ims_state_get(ims_state *st, const char *key, ims_state_done_f done, void *arg)
{
    return request(st, IMS_STATE_OP_GET, key, NULL, 0, 0, NULL, done, arg);
}

int ims_state_del(ims_state *st, const char *key, ims_state_done_f done, void *arg)
{
    return request(st, IMS_STATE_OP_DEL, key, NULL, 0, 0, NULL, done, arg);
}

int ims_state_expire(ims_state *st, const char *key, int64_t ttl_s, ims_state_done_f done, void *arg)
{
    return request(st, IMS_STATE_OP_EXPIRE, key, NULL, 0, ttl_s, NULL, done, arg);
}

int ims_state_scan(ims_state *st, const char *index, ims_state_item_f item, ims_state_done_f done, void *arg)
{
    if (!index || !*index || strchr(index, ':') || !item)
        return -1;
    char key[128];
    snprintf(key, sizeof(key), "%s:", index);
    return request(st, IMS_STATE_OP_SCAN, key, NULL, 0, 0, item, done, arg);
}

void ims_state_op_finish(ims_state_op *op, int status, const char *value, size_t len)
{
    ims_state *st = op->st;
    ims_metric_observe_us(st->m_latency[op->op], (uint64_t)ims_monotonic_us() - op->t0_us);
    if (status == IMS_STATE_ERROR)
        ims_metric_inc(st->m_errors[op->op]);
    if (op->done)
        op->done(op->arg, status, value, len);
    free(op);
}

void ims_state_scan_item(ims_state_op *op, const char *full_key, const char *value, size_t len)
{
    const char *prefix = op->st->prefix;
    size_t n = strlen(prefix);
    /* only our own namespace, whatever the backend returned */
    if (strncmp(full_key, prefix, n) != 0)
        return;
    op->item(op->arg, full_key + n, value, len);
}

/* ---------- memory backend ---------- */

typedef struct {
    char *value;
    size_t len;
    int64_t expires_ms;       /* monotonic; 0: none */
} mem_rec;

typedef struct mem_done {
    struct mem_done *next;
    ims_state_op *op;
    int status;
    char *value;
    size_t len;
} mem_done;

typedef struct {
    ims_state *st;
    ims_map *recs;            /* full key -> mem_rec */
    mem_done *head, **tail;   /* completions waiting for the next loop turn */
    su_timer_t *timer;
} mem_be;

static void mem_rec_free(mem_rec *r)
{
    if (r) {
        free(r->value);
        free(r);
    }
}

static mem_rec *mem_lookup(mem_be *m, const char *key)
{
    mem_rec *r = ims_map_get(m->recs, key);
    if (r && r->expires_ms && r->expires_ms <= ims_monotonic_ms()) {
        ims_map_del(m->recs, key);
        mem_rec_free(r);
        r = NULL;
    }
    return r;
}

typedef struct {
    mem_be *m;
    ims_state_op *op;
    const char *prefix;
    size_t n;
    int rc;
} mem_scan_ctx;

static int mem_scan_one(void *arg, const char *key, void *val)
{
    mem_scan_ctx *c = arg;
    mem_rec *r = val;
    if (strncmp(key, c->prefix, c->n) != 0)
        return 0;
    if (r->expires_ms && r->expires_ms <= ims_monotonic_ms()) {
        ims_map_del(c->m->recs, key);
        mem_rec_free(r);
        return 0;
    }
    ims_state_scan_item(c->op, key, r->value, r->len);
    return 0;
}

static void mem_run(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    (void)magic;
    (void)t;
    mem_be *m = (mem_be *)arg;
    /* completions queued by the callbacks below wait for the next turn */
    mem_done *d = m->head;
    m->head = NULL;
    m->tail = &m->head;
    while (d) {
        mem_done *next = d->next;
        if (d->op->op == IMS_STATE_OP_SCAN) {
            if (d->status == IMS_STATE_OK && d->value) {
                mem_scan_ctx c = { .m = m, .op = d->op, .prefix = d->value, .n = d->len };
                ims_map_foreach(m->recs, mem_scan_one, &c);
            }
            free(d->value);
            d->value = NULL;
            d->len = 0;
        }
        ims_state_op_finish(d->op, d->status, d->value, d->len);
        free(d->value);
        free(d);
        d = next;
    }
}

/* Completion on the next loop turn (never inside the request). -1: ENOMEM / no loop. */
static int mem_complete(mem_be *m, ims_state_op *op, int status, const char *value, size_t len)
{
    mem_done *d = calloc(1, sizeof(*d));
    if (!d || (value && !(d->value = malloc(len + 1)))) {
        free(d);
        return -1;
    }
    if (value) {
        memcpy(d->value, value, len);
        d->value[len] = '\0';
        d->len = len;
    }
    d->op = op;
    d->status = status;
    if (!m->head && m->timer && su_timer_set_interval(m->timer, mem_run, (su_timer_arg_t *)m, 0) < 0) {
        free(d->value);
        free(d);
        return -1;
    }
    *m->tail = d;
    m->tail = &d->next;
    return 0;
}

static void *mem_open(ims_state *st, const ims_state_cfg *cfg, su_root_t *root, char *err, size_t errlen)
{
    (void)cfg;
    mem_be *m = calloc(1, sizeof(*m));
    if (!m || !(m->recs = ims_map_new()) || !root || !(m->timer = su_timer_create(su_root_task(root), 0))) {
        if (m)
            ims_map_free(m->recs);
        free(m);
        snprintf(err, errlen, "%s", root ? "out of memory" : "no loop");
        return NULL;
    }
    m->st = st;
    m->tail = &m->head;
    return m;
}

static int mem_free_one(void *arg, const char *key, void *val)
{
    ims_map_del(arg, key);
    mem_rec_free(val);
    return 0;
}

static void mem_close(void *be)
{
    mem_be *m = be;
    su_timer_destroy(m->timer);
    m->timer = NULL;
    for (mem_done *d = m->head; d; d = d->next) {   /* outstanding: they end now, as errors */
        d->status = IMS_STATE_ERROR;
        free(d->value);
        d->value = NULL;
        d->len = 0;
    }
    mem_run(NULL, NULL, (su_timer_arg_t *)m);
    ims_map_foreach(m->recs, mem_free_one, m->recs);
    ims_map_free(m->recs);
    free(m);
}

static bool mem_up(void *be, char *why, size_t whylen)
{
    (void)be;
    (void)why;
    (void)whylen;
    return true;
}

static int mem_request(void *be, ims_state_op *op, const char *key, const char *value, size_t len, int64_t ttl_s)
{
    mem_be *m = be;
    int64_t exp = ttl_s ? ims_monotonic_ms() + ttl_s * 1000 : 0;
    mem_rec *r;
    switch (op->op) {
    case IMS_STATE_OP_PUT: {
        mem_rec *n = calloc(1, sizeof(*n));
        if (!n || !(n->value = malloc(len + 1))) {
            free(n);
            return -1;
        }
        memcpy(n->value, value, len);
        n->value[len] = '\0';
        n->len = len;
        n->expires_ms = exp;
        r = ims_map_get(m->recs, key);
        if (ims_map_put(m->recs, key, n)) {
            mem_rec_free(n);
            return -1;
        }
        mem_rec_free(r);
        return mem_complete(m, op, IMS_STATE_OK, NULL, 0);
    }
    case IMS_STATE_OP_GET:
        r = mem_lookup(m, key);
        return mem_complete(m, op, r ? IMS_STATE_OK : IMS_STATE_NOTFOUND, r ? r->value : NULL, r ? r->len : 0);
    case IMS_STATE_OP_DEL:
        mem_rec_free(ims_map_del(m->recs, key));
        return mem_complete(m, op, IMS_STATE_OK, NULL, 0);
    case IMS_STATE_OP_EXPIRE:
        r = mem_lookup(m, key);
        if (r)
            r->expires_ms = exp;
        return mem_complete(m, op, r ? IMS_STATE_OK : IMS_STATE_NOTFOUND, NULL, 0);
    case IMS_STATE_OP_SCAN:
        /* the walk happens on the next turn too (mem_run), with the key prefix as its value */
        return mem_complete(m, op, IMS_STATE_OK, key, strlen(key));
    default:
        return -1;
    }
}

const ims_state_backend_ops ims_state_memory_ops = {
    .name = "memory", .open = mem_open, .close = mem_close, .up = mem_up, .request = mem_request,
};
