/*
 * ims_state: the state store of the CSCFs — records by key under one namespace, asynchronous,
 * completions on the SIP loop (docs/design.md "Storage").
 *
 * Backends:
 *   memory  records in this process (the default: nothing survives a restart, as before the
 *           store existed). A CSCF with this backend does not write its registrations through
 *           at all (its own tables are the state); the backend serves tests and in-process use.
 *   redis   a Redis server (hiredis's async API on the SIP loop: ims_state_redis.c registers the
 *           connection's socket with su_root, so nothing here ever blocks the loop). Records
 *           carry a TTL; a lost connection is retried every second.
 *
 * Keys are relative: "reg:sip:alice@ims.lab" is stored as "<prefix>:reg:sip:alice@ims.lab". The
 * prefix (store.prefix, by default the NF's name, e.g. the S-CSCF's URI) is the namespace of one
 * NF instance: a replacement with the same name finds its records, other instances never read
 * them. The first segment of a relative key ("reg") is its index: ims_state_scan walks one.
 *
 * Contract (like ims_cx_send): a request returns 0 and its completion runs exactly once, later,
 * on the loop thread (never inside the call); or it returns -1 (store down, bad argument, ENOMEM)
 * and there is no completion. ims_state_close completes what is outstanding with an error.
 * Not thread-safe: the loop thread only.
 *
 * Metrics: store_request_seconds{backend,op} (latency), store_errors_total{backend,op},
 * store_up{backend} (1 while connected; memory: always 1).
 */
#ifndef IMS_STATE_H
#define IMS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/su_wait.h>

#include "ims_config.h"

enum { IMS_STATE_MEMORY, IMS_STATE_REDIS };
extern const char *const ims_state_backend_names[];

/* The "store:" section. */
typedef struct {
    int backend;            /* IMS_STATE_MEMORY (default) | IMS_STATE_REDIS */
    char *redis;            /* host:port (default 127.0.0.1:6379) */
    char *prefix;           /* namespace; default the NF's name */
    long timeout_ms;        /* a request unanswered this long drops the connection (default 1000) */
} ims_state_cfg;

extern const ims_cfg_field ims_state_cfg_fields[];

/* Completion statuses. */
#define IMS_STATE_OK 0
#define IMS_STATE_NOTFOUND 1   /* get: no such record (or it expired) */
#define IMS_STATE_ERROR (-1)   /* store unreachable, timeout, refused */

/* value/len: the record of a get (NUL-terminated; valid during the call only), else NULL/0. */
typedef void (*ims_state_done_f)(void *arg, int status, const char *value, size_t len);
/* One record of a scan: key relative to the prefix ("reg:..."). */
typedef void (*ims_state_item_f)(void *arg, const char *key, const char *value, size_t len);
/* The connection came up (true) or went down (false). Memory: never called. */
typedef void (*ims_state_conn_f)(void *arg, bool up);

typedef struct ims_state ims_state;

/* A store for cfg on root. def_prefix: the namespace when store.prefix is unset. The Redis
 * backend connects in the background (on_conn tells when it is up). NULL + err on bad config. */
ims_state *ims_state_open(const ims_state_cfg *cfg, const char *def_prefix, su_root_t *root,
                          ims_state_conn_f on_conn, void *arg, char *err, size_t errlen);
/* Completes what is outstanding with IMS_STATE_ERROR and frees the store. NULL is fine. */
void ims_state_close(ims_state *st);

/* Records survive this process (redis). */
bool ims_state_durable(const ims_state *st);
/* Reachable now; otherwise why not ("redis 127.0.0.1:6379: Connection refused"). */
bool ims_state_up(const ims_state *st, char *why, size_t whylen);
const char *ims_state_prefix(const ims_state *st);
const char *ims_state_backend(const ims_state *st);

/* Stores value under key for ttl_s seconds (0: no expiry). done may be NULL. 0 / -1. */
int ims_state_put(ims_state *st, const char *key, const char *value, size_t len, int64_t ttl_s,
                  ims_state_done_f done, void *arg);
int ims_state_get(ims_state *st, const char *key, ims_state_done_f done, void *arg);
/* Deleting a missing record is IMS_STATE_OK. */
int ims_state_del(ims_state *st, const char *key, ims_state_done_f done, void *arg);
/* New TTL of an existing record (IMS_STATE_NOTFOUND when there is none). */
int ims_state_expire(ims_state *st, const char *key, int64_t ttl_s, ims_state_done_f done, void *arg);
/* Every record whose relative key starts with index ":" goes to item, then done runs once
 * (IMS_STATE_OK, or IMS_STATE_ERROR when the walk broke off: items may have been delivered). */
int ims_state_scan(ims_state *st, const char *index, ims_state_item_f item, ims_state_done_f done,
                   void *arg);

/* ---------- backend interface (ims_state.c, ims_state_redis.c) ---------- */

/* One request in flight, common to the backends. */
typedef struct ims_state_op {
    struct ims_state_op *next, *prev;   /* outstanding list of the store (oldest first) */
    ims_state *st;
    int op;                             /* IMS_STATE_OP_* */
    ims_state_done_f done;
    ims_state_item_f item;
    void *arg;
    uint64_t t0_us;
    void *be;                           /* the backend's own (a scan's walk) */
} ims_state_op;

enum { IMS_STATE_OP_PUT, IMS_STATE_OP_GET, IMS_STATE_OP_DEL, IMS_STATE_OP_EXPIRE, IMS_STATE_OP_SCAN,
       IMS_STATE_OP_N };

typedef struct {
    const char *name;
    void *(*open)(ims_state *st, const ims_state_cfg *cfg, su_root_t *root, char *err, size_t errlen);
    void (*close)(void *be);
    bool (*up)(void *be, char *why, size_t whylen);
    /* full key (prefix included); value/ttl for put and expire; 0 / -1 */
    int (*request)(void *be, ims_state_op *op, const char *key, const char *value, size_t len, int64_t ttl_s);
} ims_state_backend_ops;

extern const ims_state_backend_ops ims_state_memory_ops;
extern const ims_state_backend_ops ims_state_redis_ops;

/* For the backends: the request ended. status as the completion; value for get/scan items. */
void ims_state_op_finish(ims_state_op *op, int status, const char *value, size_t len);
/* A record of a scan (full key: the prefix is checked and removed here). */
void ims_state_scan_item(ims_state_op *op, const char *full_key, const char *value, size_t len);
/* The connection came up / went down (redis). */
void ims_state_conn_changed(ims_state *st, bool up);
/* The full prefix with its ':' ("sip:scscf.ims.lab:6060:"). */
const char *ims_state_full_prefix(const ims_state *st);
su_root_t *ims_state_root(const ims_state *st);

#endif
