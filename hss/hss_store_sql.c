/*
 * hss_store_sql.c: the statement helpers of the HSS store (hss_store_priv.h), handed to the
 * backend driver (hss_store_sqlite.c, hss_store_pg.c); transactions, and the bulk mode of the
 * import.
 *
 * All st_* functions except st_write_txn run with st->lock held.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "ims_http.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"

hss_store *st_new(const st_driver *drv)
{
    hss_store *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->drv = drv;
    pthread_mutex_init(&st->lock, NULL);
    st_group_init(st);
    return st;
}

/* ---------- metrics ---------- */

static ims_metric *m_op_seconds, *m_errors;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void)
{
    m_op_seconds = ims_metric_histogram("hss_store_operation_seconds",
                                        "Time one subscriber-database operation holds the store "
                                        "(statements and commit, waiting for the lock excluded; a "
                                        "write of a group commit includes the commit it shares)");
    m_errors = ims_metric_counter("hss_store_errors_total",
                                  "Failed subscriber-database statements (connection lost, disk "
                                  "full, constraint other than a provisioning conflict)");
}

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void st_lock_nowait(hss_store *st)
{
    pthread_mutex_lock(&st->lock);
    st->locked_at = now_us();
}

void st_lock(hss_store *st)
{
    st_lock_nowait(st);
    st_group_wait_closed(st);   /* nothing of ours runs inside another caller's group commit */
}

void st_unlock(hss_store *st)
{
    uint64_t held = now_us() - st->locked_at;

    pthread_once(&metrics_once, metrics_init);
    pthread_mutex_unlock(&st->lock);
    ims_metric_observe_us(m_op_seconds, held);
}

void st_failed(hss_store *st)
{
    (void)st;
    pthread_once(&metrics_once, metrics_init);
    ims_metric_inc(m_errors);
}

/* ---------- statements: dispatched to the backend ---------- */

int st_exec(hss_store *st, const char *sql)
{
    return st->drv->exec(st, sql);
}

/* A transaction statement (BEGIN, BEGIN IMMEDIATE, COMMIT; a string literal). The SQLite driver
 * runs it from its statement cache (perf, issue 16), PostgreSQL as it is. */
int st_txn(hss_store *st, const char *sql)
{
    if (st->drv == &st_pg_driver)
        return st_exec(st, sql);
    return st_change(st, sql, "") < 0 ? -1 : 0;
}

/* ROLLBACK (or ROLLBACK TO) when a transaction is still open: SQLite has already rolled back
 * after some errors (SQLITE_FULL, SQLITE_IOERR), and a second rollback would only replace the
 * real cause in last_err with "no transaction is active". */
void st_rollback(hss_store *st, const char *sql)
{
    if (st->drv->in_txn(st))
        st_exec(st, sql);
}

st_stmt *st_query(hss_store *st, const char *sql, const char *fmt, ...)
{
    va_list ap;
    st_stmt *stmt;

    va_start(ap, fmt);
    stmt = st->drv->query(st, sql, fmt, ap);
    va_end(ap);
    return stmt;
}

int st_step(hss_store *st, st_stmt *stmt)
{
    return stmt ? st->drv->step(st, stmt) : -1;
}

const char *st_col_text(hss_store *st, st_stmt *stmt, int col)
{
    return st->drv->col_text(stmt, col);
}

int64_t st_col_int(hss_store *st, st_stmt *stmt, int col)
{
    return st->drv->col_int(stmt, col);
}

bool st_col_blob(hss_store *st, st_stmt *stmt, int col, uint8_t *out, int len)
{
    return st->drv->col_blob(stmt, col, out, len);
}

bool st_col_null(hss_store *st, st_stmt *stmt, int col)
{
    return st->drv->col_null(stmt, col);
}

void st_done(hss_store *st, st_stmt *stmt)
{
    if (stmt)
        st->drv->done(st, stmt);
}

int st_change(hss_store *st, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = st->drv->change(st, sql, fmt, ap);
    va_end(ap);
    return n;
}

const char *st_errmsg(hss_store *st)
{
    return st->drv->errmsg(st);
}

/* First column of the first row as an integer: 1 found, 0 no row, -1 error. */
int st_query_int(hss_store *st, int64_t *out, const char *sql, const char *fmt, const char *arg)
{
    st_stmt *stmt = st_query(st, sql, fmt, arg);
    int rc = st_step(st, stmt);

    if (rc == 1 && out)
        *out = st_col_int(st, stmt, 0);
    st_done(st, stmt);
    return rc;
}

/* Bulk transactions run with the counting triggers off; the counts are marked stale in each one
 * and rebuilt at the end (hss_store_counts.c). */
static int bulk_txn_begin(hss_store *st)
{
    if (st_exec(st, "BEGIN IMMEDIATE") != 0)
        return HSS_STORE_ERROR;
    if (st_counts_stale(st) != 0) {
        st_rollback(st, "ROLLBACK");
        return HSS_STORE_ERROR;
    }
    return HSS_STORE_OK;
}

/* Leaves bulk mode after the bulk transaction ended; recounts when it was rolled back (an earlier
 * bulk commit may have left the mark). Lock held. */
static void bulk_leave(hss_store *st, bool committed)
{
    st->bulk = false;
    st_counts_triggers(st, true);
    if (!committed && st_counts_recount(st) != 0)
        IMS_ERROR(LOG_SUB, "cannot recount the identities after a failed import (done at the "
                  "next start): %s", st_errmsg(st));
    st_counts_changed(st);
}

int hss_store_bulk_begin(hss_store *st)
{
    int rc = HSS_STORE_ERROR;

    st_lock(st);
    if (!st->bulk) {
        st_counts_triggers(st, false);
        rc = bulk_txn_begin(st);
        st->bulk = rc == HSS_STORE_OK;
        if (!st->bulk)
            st_counts_triggers(st, true);
    }
    st_unlock(st);
    return rc;
}

int hss_store_bulk_end(hss_store *st, bool commit)
{
    int rc = HSS_STORE_OK;

    st_lock(st);
    if (st->bulk) {
        /* The recount goes into the same commit as the last rows. */
        if (commit && (st_counts_recount(st) != 0 || st_exec(st, "COMMIT") != 0))
            rc = HSS_STORE_ERROR;
        if (!commit || rc != HSS_STORE_OK)
            st_rollback(st, "ROLLBACK");
        bulk_leave(st, commit && rc == HSS_STORE_OK);
    }
    st_unlock(st);
    return rc;
}

int hss_store_bulk_commit(hss_store *st)
{
    int rc = HSS_STORE_ERROR;

    st_lock(st);
    if (st->bulk) {
        if (st_exec(st, "COMMIT") == 0)
            rc = bulk_txn_begin(st);
        else
            st_rollback(st, "ROLLBACK");
        if (rc != HSS_STORE_OK)
            bulk_leave(st, false);
    }
    st_unlock(st);
    return rc;
}
