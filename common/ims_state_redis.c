/*
 * ims_state_redis: the Redis backend of the state store (see ims_state.h), over hiredis's
 * asynchronous API driven by the SIP loop.
 *
 * The event-loop adapter (hiredis async.h "ev" hooks): the connection's socket is registered
 * with su_root (su_root_register / su_root_eventmask) for the events hiredis asks for, and the
 * loop's wake-ups call redisAsyncHandleRead / redisAsyncHandleWrite. Nothing here waits: a
 * request is written when the socket is writable and answered when the reply arrives.
 *
 * Commands (Redis 7 protocol, RESP2): SET key value [PX ttl] (put), GET, DEL, PEXPIRE (expire),
 * SCAN cursor MATCH <escaped prefix>* COUNT 500 then one GET per key (scan).
 *
 * Failure handling: hiredis has no request timeout, so a watchdog (every timeout_ms / 4) drops
 * the connection when the oldest request (or the connection attempt) is older than
 * store.timeout_ms; every request outstanding then completes with IMS_STATE_ERROR. A dropped or
 * refused connection is retried every second; the owner hears of both through on_conn.
 * Host names are resolved by hiredis at connect (getaddrinfo): give an address or a name the
 * resolver answers at once (/etc/hosts, the cluster DNS).
 */
#include "ims_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "ims_clock.h"
#include "ims_log.h"

#define SUBSYS "store.redis"
#define RETRY_MS 1000
#define SCAN_COUNT "500"

enum { RQ_CMD, RQ_SCAN_PAGE, RQ_SCAN_GET };

typedef struct rreq {
    struct rreq *next, *prev;     /* outstanding, oldest first */
    struct redis_be *r;
    ims_state_op *op;
    int kind;
    int64_t t0_ms;
    char *key;                    /* RQ_SCAN_GET: the key fetched */
} rreq;

typedef struct {
    char *match;                  /* SCAN MATCH pattern */
    char *prefix;                 /* full key prefix of the index */
    unsigned pending;             /* pages and GETs outstanding */
    bool listing;                 /* a SCAN page is outstanding or to come */
    bool failed;
} walk;

typedef struct redis_be {
    ims_state *st;
    su_root_t *root;
    char host[256];
    int port;
    long timeout_ms;
    redisAsyncContext *ac;        /* NULL while down */
    bool connected;               /* the connect callback said OK */
    int64_t connect_ms;           /* when the current attempt began */
    char why[200];                /* the last failure */
    int wait_index;               /* su_root registration of ac's socket, or -1 */
    int events;                   /* SU_WAIT_IN / SU_WAIT_OUT hiredis asked for */
    bool closing;
    su_timer_t *retry, *watchdog;
    rreq *head, *tail;
} redis_be;

static void connect_now(redis_be *r);

/* ---------- su_root adapter for hiredis ---------- */

static int on_socket(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    (void)magic;
    redis_be *r = (redis_be *)arg;
    redisAsyncContext *ac = r->ac;
    if (!ac)
        return 0;
    int ev = su_wait_events(w, ac->c.fd);
    if (ev & (SU_WAIT_IN | SU_WAIT_ERR | SU_WAIT_HUP))
        redisAsyncHandleRead(ac);
    /* the read may have ended the connection (cleanup unregistered us, r->ac changed) */
    if ((ev & SU_WAIT_OUT) && r->ac == ac && r->wait_index >= 0)
        redisAsyncHandleWrite(ac);
    return 0;
}

static void ev_update(redis_be *r, int events)
{
    if (!r->ac)
        return;
    int fd = r->ac->c.fd;
    r->events = events;
    if (r->wait_index < 0) {
        su_wait_t w[1];
        if (su_wait_create(w, fd, events) < 0)
            return;
        r->wait_index = su_root_register(r->root, w, on_socket, (su_wakeup_arg_t *)r, 0);
        if (r->wait_index < 0)
            su_wait_destroy(w);
        return;
    }
    su_root_eventmask(r->root, r->wait_index, fd, events);
}

static void ev_add_read(void *p) { redis_be *r = p; ev_update(r, r->events | SU_WAIT_IN); }
static void ev_del_read(void *p) { redis_be *r = p; ev_update(r, r->events & ~SU_WAIT_IN); }
static void ev_add_write(void *p) { redis_be *r = p; ev_update(r, r->events | SU_WAIT_OUT); }
static void ev_del_write(void *p) { redis_be *r = p; ev_update(r, r->events & ~SU_WAIT_OUT); }

static void ev_cleanup(void *p)
{
    redis_be *r = p;
    if (r->wait_index >= 0)
        su_root_deregister(r->root, r->wait_index);
    r->wait_index = -1;
    r->events = 0;
}

static int attach(redis_be *r, redisAsyncContext *ac)
{
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---------- connection ---------- */

static void on_retry(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    (void)magic;
    (void)t;
    connect_now((redis_be *)arg);
}

static void schedule_retry(redis_be *r)
{
    if (!r->closing && r->retry)
        su_timer_set_interval(r->retry, on_retry, (su_timer_arg_t *)r, RETRY_MS);
}

/* The connection is gone (error, server closed, timeout): tell the owner once, retry later. */
static void went_down(redis_be *r, const char *why)
{
    bool was = r->connected;
    r->connected = false;
    r->ac = NULL;
    if (why && strcmp(why, r->why) != 0) {
        snprintf(r->why, sizeof(r->why), "%s", why);
        if (!r->closing)
            IMS_WARN(SUBSYS, "redis %s:%d: %s", r->host, r->port, why);
    }
    if (was)
        ims_state_conn_changed(r->st, false);
    schedule_retry(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_be *r = ac->ev.data;
    if (!r || r->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees ac after this callback */
        went_down(r, ac->errstr[0] ? ac->errstr : "connection failed");
        return;
    }
    r->connected = true;
    IMS_INFO(SUBSYS, "connected to redis %s:%d (prefix %s)", r->host, r->port, ims_state_full_prefix(r->st));
    r->why[0] = '\0';
    ims_state_conn_changed(r->st, true);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_be *r = ac->ev.data;
    if (!r || r->ac != ac)
        return;   /* we freed it ourselves: already handled */
    went_down(r, status == REDIS_OK ? "connection closed" : ac->errstr[0] ? ac->errstr : "connection lost");
}

static void connect_now(redis_be *r)
{
    if (r->ac || r->closing)
        return;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac) {
        went_down(r, "out of memory");
        return;
    }
    if (ac->err) {
        char why[200];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        went_down(r, why);
        return;
    }
    r->ac = ac;
    r->connect_ms = ims_monotonic_ms();
    attach(r, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* a non-blocking connect completes when the socket turns writable */
    ev_add_write(r);
}

/* Drops the connection now: every outstanding reply callback runs with no reply. */
static void drop(redis_be *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    went_down(r, why);   /* r->ac = NULL first: nothing new is queued on ac */
    if (ac)
        redisAsyncFree(ac);
}

static void watchdog(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
    (void)magic;
    (void)t;
    redis_be *r = (redis_be *)arg;
    int64_t now = ims_monotonic_ms();
    if (r->ac && !r->connected && now - r->connect_ms > r->timeout_ms)
        drop(r, "connect timed out");
    else if (r->ac && r->head && now - r->head->t0_ms > r->timeout_ms)
        drop(r, "request timed out");
}

/* ---------- requests ---------- */

static void unlink_rq(rreq *q)
{
    redis_be *r = q->r;
    if (q->prev)
        q->prev->next = q->next;
    else
        r->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        r->tail = q->prev;
}

static void walk_finish_maybe(ims_state_op *op)
{
    walk *w = op->be;
    if (w->pending || w->listing)
        return;
    int status = w->failed ? IMS_STATE_ERROR : IMS_STATE_OK;
    free(w->match);
    free(w->prefix);
    free(w);
    op->be = NULL;
    ims_state_op_finish(op, status, NULL, 0);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

static rreq *send_rq(redis_be *r, ims_state_op *op, int kind, const char *key, const char *fmt, ...)
{
    if (!r->ac || !r->connected)
        return NULL;
    rreq *q = calloc(1, sizeof(*q));
    if (!q || (key && !(q->key = strdup(key)))) {
        free(q);
        return NULL;
    }
    q->r = r;
    q->op = op;
    q->kind = kind;
    q->t0_ms = ims_monotonic_ms();
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(r->ac, on_reply, q, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(q->key);
        free(q);
        return NULL;
    }
    q->prev = r->tail;
    if (r->tail)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
    return q;
}

static void scan_page(redis_be *r, ims_state_op *op, const char *cursor)
{
    walk *w = op->be;
    if (send_rq(r, op, RQ_SCAN_PAGE, NULL, "SCAN %s MATCH %s COUNT " SCAN_COUNT, cursor, w->match)) {
        w->pending++;
        return;
    }
    w->listing = false;
    w->failed = true;
}

static void on_scan_page(rreq *q, redisReply *rep)
{
    ims_state_op *op = q->op;
    walk *w = op->be;
    w->pending--;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        w->failed = true;
        w->listing = false;
        walk_finish_maybe(op);
        return;
    }
    redisReply *keys = rep->element[1];
    for (size_t i = 0; i < keys->elements && !w->failed; i++) {
        redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || strncmp(k->str, w->prefix, strlen(w->prefix)) != 0)
            continue;
        if (send_rq(q->r, op, RQ_SCAN_GET, k->str, "GET %b", k->str, (size_t)k->len))
            w->pending++;
        else
            w->failed = true;
    }
    if (w->failed || strcmp(rep->element[0]->str, "0") == 0)
        w->listing = false;
    else
        scan_page(q->r, op, rep->element[0]->str);
    walk_finish_maybe(op);
}

static void on_scan_get(rreq *q, redisReply *rep)
{
    ims_state_op *op = q->op;
    walk *w = op->be;
    w->pending--;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        w->failed = true;
    else if (rep->type == REDIS_REPLY_STRING)
        ims_state_scan_item(op, q->key, rep->str, (size_t)rep->len);
    /* nil: expired since the SCAN listed it */
    walk_finish_maybe(op);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    rreq *q = privdata;
    redisReply *rep = reply;
    unlink_rq(q);
    if (rep && rep->type == REDIS_REPLY_ERROR)
        IMS_WARN(SUBSYS, "redis %s:%d refused a request: %s", q->r->host, q->r->port, rep->str);
    switch (q->kind) {
    case RQ_SCAN_PAGE:
        on_scan_page(q, rep);
        break;
    case RQ_SCAN_GET:
        on_scan_get(q, rep);
        break;
    default: {
        int status = IMS_STATE_ERROR;
        const char *v = NULL;
        size_t len = 0;
        if (rep && rep->type != REDIS_REPLY_ERROR) {
            status = IMS_STATE_OK;
            if (q->op->op == IMS_STATE_OP_GET) {
                if (rep->type == REDIS_REPLY_STRING) {
                    v = rep->str;
                    len = (size_t)rep->len;
                } else {
                    status = IMS_STATE_NOTFOUND;
                }
            } else if (q->op->op == IMS_STATE_OP_EXPIRE && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
                status = IMS_STATE_NOTFOUND;
            }
        }
        ims_state_op_finish(q->op, status, v, len);
    }
    }
    free(q->key);
    free(q);
}

/* SCAN MATCH is a glob: the prefix's own *?[]\ are escaped. */
static char *glob_escape(const char *s)
{
    char *out = malloc(strlen(s) * 2 + 2);
    if (!out)
        return NULL;
    char *o = out;
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '*';
    *o = '\0';
    return out;
}

static int redis_request(void *be, ims_state_op *op, const char *key, const char *value, size_t len, int64_t ttl_s)
{
    redis_be *r = be;
    if (!r->ac || !r->connected)
        return -1;
    rreq *q = NULL;
    switch (op->op) {
    case IMS_STATE_OP_PUT:
        if (ttl_s)
            q = send_rq(r, op, RQ_CMD, NULL, "SET %s %b PX %lld", key, value, len, (long long)ttl_s * 1000);
        else
            q = send_rq(r, op, RQ_CMD, NULL, "SET %s %b", key, value, len);
        break;
    case IMS_STATE_OP_GET:
        q = send_rq(r, op, RQ_CMD, NULL, "GET %s", key);
        break;
    case IMS_STATE_OP_DEL:
        q = send_rq(r, op, RQ_CMD, NULL, "DEL %s", key);
        break;
    case IMS_STATE_OP_EXPIRE:
        q = ttl_s ? send_rq(r, op, RQ_CMD, NULL, "PEXPIRE %s %lld", key, (long long)ttl_s * 1000)
                  : send_rq(r, op, RQ_CMD, NULL, "PERSIST %s", key);
        break;
    case IMS_STATE_OP_SCAN: {
        walk *w = calloc(1, sizeof(*w));
        if (!w || !(w->match = glob_escape(key)) || !(w->prefix = strdup(key))) {
            if (w)
                free(w->match);
            free(w);
            return -1;
        }
        w->listing = true;
        op->be = w;
        scan_page(r, op, "0");
        if (w->failed) {
            free(w->match);
            free(w->prefix);
            free(w);
            op->be = NULL;
            return -1;
        }
        return 0;
    }
    default:
        return -1;
    }
    return q ? 0 : -1;
}

/* ---------- open / close ---------- */

static void *redis_open(ims_state *st, const ims_state_cfg *cfg, su_root_t *root, char *err, size_t errlen)
{
    redis_be *r = calloc(1, sizeof(*r));
    if (!r || !root) {
        free(r);
        snprintf(err, errlen, "%s", root ? "out of memory" : "no loop");
        return NULL;
    }
    const char *hp = cfg->redis ? cfg->redis : "127.0.0.1:6379";
    const char *colon = strrchr(hp, ':');
    size_t hl = colon ? (size_t)(colon - hp) : 0;
    r->port = colon ? atoi(colon + 1) : 0;
    /* [::1]:6379 */
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
        hp++;
        hl -= 2;
    }
    if (!hl || hl >= sizeof(r->host) || r->port < 1 || r->port > 65535) {
        snprintf(err, errlen, "store.redis: '%s' is not host:port", cfg->redis ? cfg->redis : "");
        free(r);
        return NULL;
    }
    memcpy(r->host, hp, hl);
    r->host[hl] = '\0';
    r->st = st;
    r->root = root;
    r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
    r->wait_index = -1;
    long period = r->timeout_ms / 4 > 10 ? r->timeout_ms / 4 : 10;
    r->retry = su_timer_create(su_root_task(root), RETRY_MS);
    r->watchdog = su_timer_create(su_root_task(root), (su_duration_t)period);
    if (!r->retry || !r->watchdog || su_timer_run(r->watchdog, watchdog, (su_timer_arg_t *)r) < 0) {
        su_timer_destroy(r->retry);
        su_timer_destroy(r->watchdog);
        free(r);
        snprintf(err, errlen, "cannot create timers");
        return NULL;
    }
    snprintf(r->why, sizeof(r->why), "not connected yet");
    connect_now(r);
    return r;
}

static void redis_close(void *be)
{
    redis_be *r = be;
    r->closing = true;
    su_timer_destroy(r->watchdog);
    su_timer_destroy(r->retry);
    r->watchdog = r->retry = NULL;
    drop(r, NULL);   /* outstanding requests complete with IMS_STATE_ERROR */
    free(r);
}

static bool redis_up(void *be, char *why, size_t whylen)
{
    redis_be *r = be;
    if (r->ac && r->connected)
        return true;
    if (why && whylen)
        snprintf(why, whylen, "redis %s:%d: %s", r->host, r->port, r->why[0] ? r->why : "connecting");
    return false;
}

const ims_state_backend_ops ims_state_redis_ops = {
    .name = "redis", .open = redis_open, .close = redis_close, .up = redis_up, .request = redis_request,
};
