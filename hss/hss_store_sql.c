/*
 * hss_store_sql.c: the statement helpers of the HSS store (hss_store_priv.h): cached prepared
 * statements, argument binding, transactions, and the bulk mode of the import.
 *
 * All st_* functions except st_write_txn run with st->lock held.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"

static sqlite3_stmt *prepare(hss_store *st, const char *sql);

int st_exec(hss_store *st, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        IMS_ERROR(LOG_SUB, "%.40s: %s", sql, msg ? msg : sqlite3_errmsg(st->db));
        snprintf(st->last_err, sizeof(st->last_err), "%s", msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* A transaction statement (BEGIN, BEGIN IMMEDIATE, COMMIT; a string literal) from the statement
 * cache: sqlite3_exec compiles its text on every call, and every Cx request runs two of them
 * (perf, issue 16: sqlite3_prepare_v2 was 13 % of a UAR). Same result and logging as st_exec. */
int st_txn(hss_store *st, const char *sql)
{
    sqlite3_stmt *stmt = prepare(st, sql);
    int rc;

    if (!stmt)
        return st_exec(st, sql);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        IMS_ERROR(LOG_SUB, "%.40s: %s", sql, sqlite3_errmsg(st->db));
        snprintf(st->last_err, sizeof(st->last_err), "%s", sqlite3_errmsg(st->db));
    }
    st_done(st, stmt);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ROLLBACK (or ROLLBACK TO) when a transaction is still open: SQLite has already rolled back
 * after some errors (SQLITE_FULL, SQLITE_IOERR), and a second rollback would only replace the
 * real cause in last_err with "no transaction is active". */
void st_rollback(hss_store *st, const char *sql)
{
    if (!sqlite3_get_autocommit(st->db))
        st_exec(st, sql);
}

/* Binds the arguments described by fmt, one letter per '?': 't' const char * (NULL binds NULL),
 * 'i' int, 'I' int64_t, 'b' const void * + int length (NULL binds NULL). */
static void bindv(sqlite3_stmt *stmt, const char *fmt, va_list ap)
{
    for (int i = 1; *fmt; fmt++, i++) {
        if (*fmt == 't') {
            const char *s = va_arg(ap, const char *);
            if (s)
                sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
        } else if (*fmt == 'i') {
            sqlite3_bind_int(stmt, i, va_arg(ap, int));
        } else if (*fmt == 'I') {
            sqlite3_bind_int64(stmt, i, (sqlite3_int64)va_arg(ap, int64_t));
        } else if (*fmt == 'b') {
            const void *p = va_arg(ap, const void *);
            int len = va_arg(ap, int);
            if (p)
                sqlite3_bind_blob(stmt, i, p, len, SQLITE_TRANSIENT);
        }
    }
}

/* A prepared statement for sql, from the cache when one is idle. Compiling costs more than
 * running the small indexed statements of a MAR, so each SQL text (a string literal: the cache
 * is keyed by its address, checked against the text) is compiled once and reset after use. */
static sqlite3_stmt *prepare(hss_store *st, const char *sql)
{
    sqlite3_stmt *stmt = NULL;

    for (size_t i = 0; i < st->n_stmts; i++) {
        if (st->stmts[i].sql == sql && !st->stmts[i].busy &&
            strcmp(sqlite3_sql(st->stmts[i].stmt), sql) == 0) {
            st->stmts[i].busy = true;
            return st->stmts[i].stmt;
        }
    }
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK) {
        IMS_ERROR(LOG_SUB, "prepare \"%.60s\": %s", sql, sqlite3_errmsg(st->db));
        return NULL;
    }
    if (st->n_stmts < HSS_STORE_STMT_CACHE)
        st->stmts[st->n_stmts++] = (typeof(st->stmts[0])){ sql, stmt, true };
    return stmt;
}

void st_done(hss_store *st, sqlite3_stmt *stmt)
{
    if (!stmt)
        return;
    for (size_t i = 0; i < st->n_stmts; i++) {
        if (st->stmts[i].stmt == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            st->stmts[i].busy = false;
            return;
        }
    }
    sqlite3_finalize(stmt);
}

/* Prepares sql (cached, see prepare) and binds args (see bindv). Release with st_done. */
sqlite3_stmt *st_query(hss_store *st, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *stmt = prepare(st, sql);
    va_list ap;

    if (!stmt)
        return NULL;
    va_start(ap, fmt);
    bindv(stmt, fmt, ap);
    va_end(ap);
    return stmt;
}

/* Runs an INSERT/UPDATE/DELETE: rows changed, -1 on error, -2 on a constraint violation (not
 * logged: callers turn it into a conflict message). */
int st_change(hss_store *st, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *stmt = prepare(st, sql);
    va_list ap;
    int rc, n;

    if (!stmt)
        return -1;
    va_start(ap, fmt);
    bindv(stmt, fmt, ap);
    va_end(ap);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_CONSTRAINT) {
        IMS_ERROR(LOG_SUB, "\"%.60s\": %s", sql, sqlite3_errmsg(st->db));
        snprintf(st->last_err, sizeof(st->last_err), "%s", sqlite3_errmsg(st->db));
    }
    n = rc == SQLITE_DONE ? sqlite3_changes(st->db) : rc == SQLITE_CONSTRAINT ? -2 : -1;
    st_done(st, stmt);
    return n;
}

/* First column of the first row as an integer: 1 found, 0 no row, -1 error. */
int st_query_int(hss_store *st, int64_t *out, const char *sql, const char *fmt, const char *arg)
{
    sqlite3_stmt *stmt = st_query(st, sql, fmt, arg);
    int rc;

    if (!stmt)
        return -1;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && out)
        *out = sqlite3_column_int64(stmt, 0);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        IMS_ERROR(LOG_SUB, "\"%.60s\": %s", sql, sqlite3_errmsg(st->db));
    st_done(st, stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Runs fn inside BEGIN IMMEDIATE .. COMMIT under the lock, and rolls back unless fn returns OK.
 * IMMEDIATE takes the write lock up front, so a read-then-write never fails half-way with
 * SQLITE_BUSY on the lock upgrade. */
int st_write_txn(hss_store *st, int (*fn)(hss_store *, void *), void *arg)
{
    int rc;

    pthread_mutex_lock(&st->lock);
    if (st->bulk) {
        /* Inside the bulk transaction: a savepoint keeps a failed write all-or-nothing. */
        if (st_exec(st, "SAVEPOINT w") != 0) {
            pthread_mutex_unlock(&st->lock);
            return HSS_STORE_ERROR;
        }
        rc = fn(st, arg);
        if (rc != HSS_STORE_OK)
            st_rollback(st, "ROLLBACK TO w");
        st_exec(st, "RELEASE w");
        pthread_mutex_unlock(&st->lock);
        return rc;
    }
    if (st_txn(st, "BEGIN IMMEDIATE") != 0) {
        pthread_mutex_unlock(&st->lock);
        return HSS_STORE_ERROR;
    }
    rc = fn(st, arg);
    if (rc == HSS_STORE_OK && st_txn(st, "COMMIT") != 0)
        rc = HSS_STORE_ERROR;
    if (rc != HSS_STORE_OK)
        st_rollback(st, "ROLLBACK");
    else
        st_counts_changed(st);
    pthread_mutex_unlock(&st->lock);
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
                  "next start): %s", sqlite3_errmsg(st->db));
    st_counts_changed(st);
}

int hss_store_bulk_begin(hss_store *st)
{
    int rc = HSS_STORE_ERROR;

    pthread_mutex_lock(&st->lock);
    if (!st->bulk) {
        st_counts_triggers(st, false);
        rc = bulk_txn_begin(st);
        st->bulk = rc == HSS_STORE_OK;
        if (!st->bulk)
            st_counts_triggers(st, true);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int hss_store_bulk_end(hss_store *st, bool commit)
{
    int rc = HSS_STORE_OK;

    pthread_mutex_lock(&st->lock);
    if (st->bulk) {
        /* The recount goes into the same commit as the last rows. */
        if (commit && (st_counts_recount(st) != 0 || st_exec(st, "COMMIT") != 0))
            rc = HSS_STORE_ERROR;
        if (!commit || rc != HSS_STORE_OK)
            st_rollback(st, "ROLLBACK");
        bulk_leave(st, commit && rc == HSS_STORE_OK);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int hss_store_bulk_commit(hss_store *st)
{
    int rc = HSS_STORE_ERROR;

    pthread_mutex_lock(&st->lock);
    if (st->bulk) {
        if (st_exec(st, "COMMIT") == 0)
            rc = bulk_txn_begin(st);
        else
            st_rollback(st, "ROLLBACK");
        if (rc != HSS_STORE_OK)
            bulk_leave(st, false);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}
