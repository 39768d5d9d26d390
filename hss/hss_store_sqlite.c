/*
 * hss_store_sqlite.c: the SQLite driver of the HSS store (st_driver, hss_store_priv.h): cached
 * prepared statements, argument binding, rows. The schema and open are in hss_store.c.
 *
 * An st_stmt of this driver is the sqlite3_stmt itself. All functions run with st->lock held.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"

#define S(stmt) ((sqlite3_stmt *)(stmt))

static void set_err(hss_store *st, const char *sql, const char *msg)
{
    IMS_ERROR(LOG_SUB, "\"%.60s\": %s", sql, msg);
    snprintf(st->last_err, sizeof(st->last_err), "%s", msg);
    st_failed(st);
}

static int lite_exec(hss_store *st, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(st, sql, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
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
 * running the small indexed statements of a MAR (perf, issue 16: sqlite3_prepare_v2 was 13 % of
 * a UAR), so each SQL text (a string literal: the cache is keyed by its address, checked against
 * the text) is compiled once and reset after use. */
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
        st_failed(st);
        return NULL;
    }
    if (st->n_stmts < HSS_STORE_STMT_CACHE)
        st->stmts[st->n_stmts++] = (typeof(st->stmts[0])){ sql, stmt, true };
    return stmt;
}

static void lite_done(hss_store *st, st_stmt *s)
{
    sqlite3_stmt *stmt = S(s);

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

static st_stmt *lite_query(hss_store *st, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *stmt = prepare(st, sql);

    if (stmt)
        bindv(stmt, fmt, ap);
    return (st_stmt *)stmt;
}

static int lite_step(hss_store *st, st_stmt *stmt)
{
    int rc = sqlite3_step(S(stmt));

    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    set_err(st, sqlite3_sql(S(stmt)), sqlite3_errmsg(st->db));
    return -1;
}

static int lite_change(hss_store *st, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *stmt = prepare(st, sql);
    int rc, n;

    if (!stmt)
        return -1;
    bindv(stmt, fmt, ap);
    rc = sqlite3_step(stmt);
    /* A constraint violation is not logged: callers turn it into a conflict message. */
    if (rc != SQLITE_DONE && rc != SQLITE_CONSTRAINT)
        set_err(st, sql, sqlite3_errmsg(st->db));
    n = rc == SQLITE_DONE ? sqlite3_changes(st->db) : rc == SQLITE_CONSTRAINT ? -2 : -1;
    lite_done(st, (st_stmt *)stmt);
    return n;
}

static const char *lite_col_text(st_stmt *stmt, int col)
{
    return (const char *)sqlite3_column_text(S(stmt), col);
}

static int64_t lite_col_int(st_stmt *stmt, int col)
{
    return sqlite3_column_int64(S(stmt), col);
}

static bool lite_col_blob(st_stmt *stmt, int col, uint8_t *out, int len)
{
    if (sqlite3_column_type(S(stmt), col) != SQLITE_BLOB || sqlite3_column_bytes(S(stmt), col) != len)
        return false;
    memcpy(out, sqlite3_column_blob(S(stmt), col), (size_t)len);
    return true;
}

static bool lite_col_null(st_stmt *stmt, int col)
{
    return sqlite3_column_type(S(stmt), col) == SQLITE_NULL;
}

static bool lite_in_txn(hss_store *st)
{
    return !sqlite3_get_autocommit(st->db);
}

static const char *lite_errmsg(hss_store *st)
{
    return sqlite3_errmsg(st->db);
}

static void lite_counts_triggers(hss_store *st, bool on)
{
    /* Statements prepared under the other setting are expired by SQLite and re-prepared at
     * their next use, so the cached ones follow. */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, on ? 1 : 0, NULL);
}

/* A local file: reachable while it is open (a full disk or a read-only file shows as the
 * failure of the write itself). */
static int lite_ping(hss_store *st, char *why, size_t whylen)
{
    (void)why;
    (void)whylen;
    return st->db ? 0 : -1;
}

static void lite_close(hss_store *st)
{
    for (size_t i = 0; i < st->n_stmts; i++)
        sqlite3_finalize(st->stmts[i].stmt);
    sqlite3_close_v2(st->db);
}

const st_driver st_sqlite_driver = {
    .name = "sqlite",
    .exec = lite_exec,
    .query = lite_query,
    .step = lite_step,
    .col_text = lite_col_text,
    .col_int = lite_col_int,
    .col_blob = lite_col_blob,
    .col_null = lite_col_null,
    .done = lite_done,
    .change = lite_change,
    .in_txn = lite_in_txn,
    .errmsg = lite_errmsg,
    .counts_triggers = lite_counts_triggers,
    .ping = lite_ping,
    .close = lite_close,
    .shared = false,
};
