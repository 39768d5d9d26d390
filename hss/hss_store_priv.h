/*
 * hss_store_priv: what the files of the HSS store (hss_store.c, hss_store_sql.c, hss_store_auth.c,
 * hss_store_reg.c) share. Not for other callers: they use hss_store.h.
 *
 * Every function here is called with st->lock held, except st_write_txn (which takes it).
 */
#ifndef HSS_STORE_PRIV_H
#define HSS_STORE_PRIV_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "hss_store.h"

typedef struct hss_sqn_cache hss_sqn_cache;   /* hss_store_auth.c */
typedef struct st_stmt st_stmt;               /* a running statement of either backend */
typedef struct hss_pg hss_pg;                 /* hss_store_pg.c */

#define HSS_STORE_STMT_CACHE 48

/* The backend seam: every file of the store runs its SQL through the st_* helpers below, which
 * hand it to one of these (hss_store_sql.c: SQLite, hss_store_pg.c: PostgreSQL). The SQL is
 * written once in the dialect both accept ('?' / '?N' parameters; the PostgreSQL driver turns
 * them into $N, BEGIN IMMEDIATE into BEGIN); what differs (schema, open, the SQN path) is chosen
 * by the flags here. */
#define HSS_STORE_GROUP_MAX 64      /* writes one group commit takes at most */

typedef struct {
    const char *name;                           /* "sqlite" / "postgresql" (logs, metrics) */
    int (*exec)(hss_store *st, const char *sql);     /* no parameters, several statements */
    st_stmt *(*query)(hss_store *st, const char *sql, const char *fmt, va_list ap);
    /* 1 a row is current, 0 no more rows, -1 error (logged) */
    int (*step)(hss_store *st, st_stmt *stmt);
    const char *(*col_text)(st_stmt *stmt, int col);           /* NULL for SQL NULL */
    int64_t (*col_int)(st_stmt *stmt, int col);
    bool (*col_blob)(st_stmt *stmt, int col, uint8_t *out, int len);  /* exactly len bytes */
    bool (*col_null)(st_stmt *stmt, int col);
    void (*done)(hss_store *st, st_stmt *stmt);
    /* Runs an INSERT/UPDATE/DELETE: rows changed, -1 error, -2 constraint violation. */
    int (*change)(hss_store *st, const char *sql, const char *fmt, va_list ap);
    bool (*in_txn)(hss_store *st);
    const char *(*errmsg)(hss_store *st);
    void (*counts_triggers)(hss_store *st, bool on);
    /* Reachable now (reconnects when the connection was lost): 0, or -1 + why. */
    int (*ping)(hss_store *st, char *why, size_t whylen);
    void (*close)(hss_store *st);
    /* Several processes share the database: no SQN block is held in memory, each MAR moves
     * impi.sqn in one committed statement (hss_store_auth.c), and rows read before a rewrite
     * are locked (FOR UPDATE). */
    bool shared;
} st_driver;

extern const st_driver st_sqlite_driver;       /* hss_store_sql.c */
extern const st_driver st_pg_driver;           /* hss_store_pg.c */

struct hss_store {
    const st_driver *drv;
    sqlite3 *db;                    /* SQLite backend */
    hss_pg *pg;                     /* PostgreSQL backend */
    pthread_mutex_t lock;
    struct {
        const char *sql;            /* the literal it was compiled from */
        sqlite3_stmt *stmt;
        bool busy;                  /* handed out by st_query, not yet back through st_done */
    } stmts[HSS_STORE_STMT_CACHE];
    size_t n_stmts;
    bool bulk;                      /* inside hss_store_bulk_begin .. _end */
    char last_err[160];             /* the database's message for the last failed statement */
    uint64_t locked_at;             /* st_lock: when the current operation started (µs) */
    hss_sqn_cache *sqn;             /* per-IMPI SQN reservations (NULL until the first MAR) */
    /* Group commit of st_write_txn on SQLite (hss_store_group.c); under lock but `arriving`. */
    struct {
        pthread_cond_t cv;          /* group closed, a member done, a writer's turn */
        bool open;                  /* BEGIN done, the leader has not committed yet */
        uint64_t gen;               /* which group is (or was last) open */
        size_t n;                   /* members besides the leader */
        int *results[HSS_STORE_GROUP_MAX];  /* where each member learns the commit's result */
        _Atomic unsigned arriving;  /* st_write_txn callers that have not written yet */
    } grp;
    /* hss_store_on_counts: told the identity counts after each committed write. */
    void (*on_counts)(void *arg, const hss_store_counts *c);
    void *on_counts_arg;
};

/* Statement helpers (hss_store_sql.c), dispatched to st->drv. fmt: one letter per '?': 't' text,
 * 'i' int, 'I' int64, 'b' blob + int length. */
int st_exec(hss_store *st, const char *sql);
int st_txn(hss_store *st, const char *sql);
/* Runs sql (ROLLBACK / ROLLBACK TO) only when a transaction is open. */
void st_rollback(hss_store *st, const char *sql);
st_stmt *st_query(hss_store *st, const char *sql, const char *fmt, ...);
int st_step(hss_store *st, st_stmt *stmt);
const char *st_col_text(hss_store *st, st_stmt *stmt, int col);
int64_t st_col_int(hss_store *st, st_stmt *stmt, int col);
bool st_col_blob(hss_store *st, st_stmt *stmt, int col, uint8_t *out, int len);
bool st_col_null(hss_store *st, st_stmt *stmt, int col);
/* Gives a statement of st_query back (reset for the next use). */
void st_done(hss_store *st, st_stmt *stmt);
/* Rows changed, -1 on error, -2 on a constraint violation. */
int st_change(hss_store *st, const char *sql, const char *fmt, ...);
/* 1 found (first column in *out), 0 no row, -1 error. */
int st_query_int(hss_store *st, int64_t *out, const char *sql, const char *fmt, const char *arg);
const char *st_errmsg(hss_store *st);

/* st->lock around one store operation; the time it is held goes to /metrics
 * (hss_store_operation_seconds: the latency of the database as the HSS sees it). st_lock also
 * waits until no group commit is open; st_lock_nowait (hss_store_group.c) does not. */
void st_lock(hss_store *st);
void st_lock_nowait(hss_store *st);
void st_unlock(hss_store *st);
/* A driver reports a failed statement (hss_store_errors_total). */
void st_failed(hss_store *st);

/* Runs fn inside a write transaction (takes st->lock itself), rolled back unless fn returns
 * HSS_STORE_OK; returns once the write is committed. On SQLite concurrent callers share one
 * commit (hss_store_group.c). */
int st_write_txn(hss_store *st, int (*fn)(hss_store *, void *), void *arg);
void st_group_init(hss_store *st);
void st_group_destroy(hss_store *st);
/* Lock held: waits (releasing it meanwhile) until no group transaction is open. */
void st_group_wait_closed(hss_store *st);
/* st_change result of a single-row UPDATE/DELETE -> HSS_STORE_* code. */
int st_changed(int n);

/* An impi row (identity, auth_schemes, default_scheme, k, op, op_is_opc, amf, sqn, digest_realm,
 * ha1 in columns 0..9) into *m (zeroed by the caller). -1 on ENOMEM. */
int st_row_impi(hss_store *st, st_stmt *stmt, hss_impi *m);

/* A new store on an open connection (drv, db/pg set by the backend's open): the parts both
 * backends share (lock). */
hss_store *st_new(const st_driver *drv);

/* Identity counts (hss_store_counts.c). */
/* At open: creates the counts table, its triggers and index when the file has none yet (counting
 * the rows once). -1 + err on failure. Takes no lock (open is single-threaded). SQLite. */
int st_counts_setup(hss_store *st, const char *path, char *err, size_t errlen);
/* At open, either backend: recounts when an import was killed half-way (the stale mark). */
int st_counts_check_stale(hss_store *st, const char *name, char *err, size_t errlen);
/* After a committed write that may have changed the counts: passes them to on_counts. */
void st_counts_changed(hss_store *st);
/* Bulk imports: the counting triggers off (st_counts_triggers(st, false)) between
 * hss_store_bulk_begin and its end; each bulk transaction marks the counts stale
 * (st_counts_stale), the end rebuilds them and clears the mark (st_counts_recount). 0 / -1. */
int st_counts_recount(hss_store *st);
int st_counts_stale(hss_store *st);
void st_counts_triggers(hss_store *st, bool on);

/* At open (hss_store_rekey.c): rewrites IMPU keys an older HSS stored in a non-canonical form
 * (parameters, escapes, tel: separators) to hss_impu_normalise's. -1 + err on failure. */
int st_rekey_identities(hss_store *st, const char *path, char *err, size_t errlen);

/* SQN reservations (hss_store_auth.c). */
/* The last SQN handed out for a (normalised) IMPI when this process holds a reservation for it. */
bool hss_sqn_cached_last(hss_store *st, const char *impi, uint64_t *last);
/* Drops the reservation state of one IMPI / of every IMPI of subscription `id` (before a replace
 * or delete rewrites their rows; the next MAR starts again from the stored value). */
void hss_sqn_forget(hss_store *st, const char *impi);
int hss_sqn_forget_subscription(hss_store *st, const char *id);
/* Frees the cache without writing: after a failed commit, whose reservations are not durable
 * (the next MAR of each IMPI reloads the stored mark, so no SQN is reused). */
void hss_sqn_drop_all(hss_store *st);
/* Writes the unused part of every reservation back (clean shutdown) and frees the cache. */
void hss_sqn_release_all(hss_store *st);

#endif
