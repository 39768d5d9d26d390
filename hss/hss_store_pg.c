/*
 * hss_store_pg.c: the PostgreSQL driver of the HSS store (st_driver, hss_store_priv.h), on libpq.
 * Open and schema: hss_store_pg_open.c.
 *
 * The store's SQL is written once ('?' and '?N' parameters); this driver rewrites it to $N on
 * first use and prepares it on the connection (server-side prepared statements, one per SQL
 * literal, keyed like the SQLite cache by the literal's address), then runs it with text
 * parameters (binary for blobs) and reads text results (bytea as hex).
 *
 * Threads: libpq is blocking, and the HSS calls the store from freeDiameter's dispatch threads
 * and libmicrohttpd's threads. The store keeps one connection, used under st->lock like the
 * SQLite one: the pools' threads are not ours to give connections to, and the hot path (MAR) is
 * one single-row UPDATE whose commit the database orders per IMPI anyway. A MAR holds the lock
 * for one round trip plus the commit; an operator who needs more runs more HSS processes on the
 * same database (the SQN rule holds across them, hss_store_auth.c).
 *
 * Reconnection: a statement that fails because the connection is gone (the server restarted,
 * the network broke) is retried once on a new connection when no transaction was open, so the
 * first MAR after a database restart is answered. While the database is down each operation
 * fails at once (a Cx error, /readyz 503), with one connection attempt per second at most, so a
 * dead server never holds every Diameter thread for the connect timeout.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "hss_store_pg.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"
#define PG_MAX_PARAMS 16
#define RECONNECT_INTERVAL_US 1000000u

struct st_stmt {
    PGresult *res;
    int row, rows;
};

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* libpq's messages span lines ("...failed: Connection refused\n\tIs the server running...");
 * ours are one line for the log and /readyz. */
static void keep_err(hss_store *st, const char *msg)
{
    size_t n = 0;

    for (const char *p = msg && msg[0] ? msg : "database error"; *p && n + 1 < sizeof(st->last_err); p++) {
        if (!isspace((unsigned char)*p))
            st->last_err[n++] = *p;
        else if (n && st->last_err[n - 1] != ' ')
            st->last_err[n++] = ' ';
    }
    while (n && st->last_err[n - 1] == ' ')
        n--;
    st->last_err[n] = '\0';
}

/* A new connection after the old one failed; at most one attempt per second. 0 connected. */
static int reconnect(hss_store *st)
{
    hss_pg *pg = st->pg;
    uint64_t now = mono_us();

    if (now < pg->next_attempt_us) {
        snprintf(st->last_err, sizeof(st->last_err), "%s", pg->down_reason);
        return -1;
    }
    pg->next_attempt_us = now + RECONNECT_INTERVAL_US;
    PQreset(pg->conn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        keep_err(st, PQerrorMessage(pg->conn));
        snprintf(pg->down_reason, sizeof(pg->down_reason), "%s", st->last_err);
        if (!pg->down)
            IMS_ERROR(LOG_SUB, "database %s unreachable: %s", pg->name, pg->down_reason);
        pg->down = true;
        return -1;
    }
    /* Prepared statements belong to the old session. */
    for (size_t i = 0; i < pg->n_stmts; i++)
        pg->stmts[i].prepared = false;
    IMS_INFO(LOG_SUB, "database %s: reconnected", pg->name);
    pg->down = false;
    return 0;
}

/* $N form of a '?' statement, its parameter count; cached per literal. NULL on ENOMEM. */
static pg_cached *cached(hss_pg *pg, const char *sql, pg_cached *tmp)
{
    for (size_t i = 0; i < pg->n_stmts; i++)
        if (pg->stmts[i].sql == sql)
            return &pg->stmts[i];

    size_t len = strlen(sql);
    char *out = malloc(len * 3 + 1), *o = out;   /* after the lookup: a cache hit allocates nothing */
    int seq = 0, max = 0;
    if (!out)
        return NULL;
    for (const char *p = sql; *p;) {
        int n;

        if (*p != '?') {
            *o++ = *p++;
            continue;
        }
        if (isdigit((unsigned char)*++p)) {
            char *end;
            n = (int)strtol(p, &end, 10);
            p = end;
        } else {
            n = ++seq;
        }
        o += sprintf(o, "$%d", n);
        if (n > max)
            max = n;
    }
    *o = '\0';
    pg_cached c = { sql, out, max, false, "" };
    if (pg->n_stmts < HSS_PG_STMT_CACHE) {
        snprintf(c.name, sizeof(c.name), "hss%zu", pg->n_stmts);
        pg->stmts[pg->n_stmts] = c;
        return &pg->stmts[pg->n_stmts++];
    }
    *tmp = c;    /* cache full: run unprepared */
    return tmp;
}

/* Runs one statement (prepared when cached) with the arguments of fmt; reconnects and retries
 * once when the connection was lost outside a transaction. The result (NULL when not even sent)
 * is the caller's; *failed says whether it is an error. */
static PGresult *run(hss_store *st, const char *sql, const char *fmt, va_list ap, bool *failed)
{
    hss_pg *pg = st->pg;
    pg_cached tmp = {0}, *c = cached(pg, sql, &tmp);
    const char *values[PG_MAX_PARAMS] = {0};
    int lengths[PG_MAX_PARAMS] = {0}, formats[PG_MAX_PARAMS] = {0}, n = 0;
    char nums[PG_MAX_PARAMS][24];
    PGresult *res = NULL;

    *failed = true;
    if (!c)
        return NULL;
    for (const char *f = fmt; *f && n < PG_MAX_PARAMS; f++, n++) {
        if (*f == 't') {
            values[n] = va_arg(ap, const char *);
        } else if (*f == 'i') {
            snprintf(nums[n], sizeof(nums[n]), "%d", va_arg(ap, int));
            values[n] = nums[n];
        } else if (*f == 'I') {
            snprintf(nums[n], sizeof(nums[n]), "%lld", (long long)va_arg(ap, int64_t));
            values[n] = nums[n];
        } else if (*f == 'b') {
            values[n] = va_arg(ap, const char *);
            lengths[n] = va_arg(ap, int);
            formats[n] = 1;
        }
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool idle;

        if (PQstatus(pg->conn) != CONNECTION_OK && reconnect(st) != 0)
            break;
        idle = PQtransactionStatus(pg->conn) == PQTRANS_IDLE;
        if (c != &tmp && !c->prepared) {
            PGresult *p = PQprepare(pg->conn, c->name, c->pgsql, c->nparams, NULL);

            c->prepared = PQresultStatus(p) == PGRES_COMMAND_OK;
            if (!c->prepared) {
                res = p;
            } else {
                PQclear(p);
            }
        }
        if (!res)
            res = c != &tmp ? PQexecPrepared(pg->conn, c->name, n, values, lengths, formats, 0)
                            : PQexecParams(pg->conn, c->pgsql, n, NULL, values, lengths, formats, 0);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK) {
            *failed = false;
            break;
        }
        if (attempt == 0 && idle && PQstatus(pg->conn) == CONNECTION_BAD) {
            IMS_WARN(LOG_SUB, "database %s: connection lost (%s): reconnecting", pg->name,
                     PQerrorMessage(pg->conn));
            PQclear(res);
            res = NULL;
            pg->next_attempt_us = 0;
            continue;
        }
        break;
    }
    if (c == &tmp)
        free(tmp.pgsql);
    return res;
}

/* A failed statement: -2 for a constraint violation (SQLSTATE class 23, not logged: the callers
 * turn it into a conflict message), -1 otherwise (logged, counted). */
static int failure(hss_store *st, const char *sql, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (res)
        keep_err(st, PQresultErrorMessage(res));
    if (state && strncmp(state, "23", 2) == 0)
        return -2;
    IMS_ERROR(LOG_SUB, "\"%.60s\": %s", sql, st->last_err);
    st_failed(st);
    return -1;
}

static st_stmt *pg_query(hss_store *st, const char *sql, const char *fmt, va_list ap)
{
    bool failed;
    PGresult *res = run(st, sql, fmt, ap, &failed);
    st_stmt *stmt;

    if (failed) {
        failure(st, sql, res);
        PQclear(res);
        return NULL;
    }
    if (!(stmt = calloc(1, sizeof(*stmt)))) {
        PQclear(res);
        return NULL;
    }
    stmt->res = res;
    stmt->row = -1;
    stmt->rows = PQntuples(res);
    return stmt;
}

static int pg_step(hss_store *st, st_stmt *stmt)
{
    (void)st;
    return ++stmt->row < stmt->rows ? 1 : 0;
}

static const char *pg_col_text(st_stmt *stmt, int col)
{
    return PQgetisnull(stmt->res, stmt->row, col) ? NULL : PQgetvalue(stmt->res, stmt->row, col);
}

static int64_t pg_col_int(st_stmt *stmt, int col)
{
    const char *v = pg_col_text(stmt, col);

    return v ? strtoll(v, NULL, 10) : 0;
}

/* bytea in text form: "\x" and two hex digits per byte (bytea_output = hex, set at connect). */
static bool pg_col_blob(st_stmt *stmt, int col, uint8_t *out, int len)
{
    const char *v = pg_col_text(stmt, col);

    if (!v || strncmp(v, "\\x", 2) != 0 || strlen(v) != 2 + 2 * (size_t)len)
        return false;
    for (int i = 0; i < len; i++) {
        unsigned b;
        if (sscanf(v + 2 + 2 * i, "%2x", &b) != 1)
            return false;
        out[i] = (uint8_t)b;
    }
    return true;
}

static bool pg_col_null(st_stmt *stmt, int col)
{
    return PQgetisnull(stmt->res, stmt->row, col);
}

static void pg_done(hss_store *st, st_stmt *stmt)
{
    (void)st;
    PQclear(stmt->res);
    free(stmt);
}

static int pg_change(hss_store *st, const char *sql, const char *fmt, va_list ap)
{
    bool failed;
    PGresult *res = run(st, sql, fmt, ap, &failed);
    int n = failed ? failure(st, sql, res) : atoi(PQcmdTuples(res));

    PQclear(res);
    return n;
}

/* The SQLite spellings of the store's transaction statements, in PostgreSQL's. A read
 * transaction (BEGIN) sees one snapshot, as SQLite's does; a write one (BEGIN IMMEDIATE) is
 * READ COMMITTED with its rows locked by FOR UPDATE where it reads before writing. */
static const char *dialect(const char *sql)
{
    if (strcmp(sql, "BEGIN") == 0)
        return "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    if (strcmp(sql, "BEGIN IMMEDIATE") == 0)
        return "BEGIN";
    return sql;
}

static int pg_exec(hss_store *st, const char *sql)
{
    hss_pg *pg = st->pg;
    PGresult *res;
    int rc = -1;

    if (PQstatus(pg->conn) != CONNECTION_OK && reconnect(st) != 0) {
        IMS_ERROR(LOG_SUB, "%.40s: %s", sql, st->last_err);
        st_failed(st);
        return -1;
    }
    res = PQexec(pg->conn, dialect(sql));
    if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK) {
        rc = 0;
        /* COMMIT of a transaction an error aborted "succeeds" as ROLLBACK. */
        if (strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
            snprintf(st->last_err, sizeof(st->last_err), "transaction rolled back");
            rc = -1;
        }
    } else {
        keep_err(st, PQresultErrorMessage(res));
    }
    if (rc != 0) {
        IMS_ERROR(LOG_SUB, "%.40s: %s", sql, st->last_err);
        st_failed(st);
    }
    PQclear(res);
    return rc;
}

static bool pg_in_txn(hss_store *st)
{
    PGTransactionStatusType t = PQtransactionStatus(st->pg->conn);

    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

static const char *pg_errmsg(hss_store *st)
{
    return st->last_err[0] ? st->last_err : "database error";
}

/* The counting triggers stay on during a bulk import: turning them off needs a superuser
 * (session_replication_role) or would turn them off for the other HSS processes too. */
static void pg_counts_triggers(hss_store *st, bool on)
{
    (void)st;
    (void)on;
}

static int pg_ping(hss_store *st, char *why, size_t whylen)
{
    PGresult *res = NULL;
    int rc = -1;

    if (PQstatus(st->pg->conn) == CONNECTION_OK || reconnect(st) == 0) {
        res = PQexec(st->pg->conn, "SELECT 1");
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            rc = 0;
        } else if (PQstatus(st->pg->conn) == CONNECTION_BAD) {
            /* Lost since the last statement: try a new connection now, not at the next MAR. */
            st->pg->next_attempt_us = 0;
            rc = reconnect(st);
        } else {
            keep_err(st, PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    if (rc != 0)
        snprintf(why, whylen, "database %s unreachable: %s", st->pg->name, st->last_err);
    return rc;
}

static void pg_close(hss_store *st)
{
    hss_pg *pg = st->pg;

    if (!pg)
        return;
    for (size_t i = 0; i < pg->n_stmts; i++)
        free(pg->stmts[i].pgsql);
    PQfinish(pg->conn);
    free(pg);
    st->pg = NULL;
}

const st_driver st_pg_driver = {
    .name = "postgresql",
    .exec = pg_exec,
    .query = pg_query,
    .step = pg_step,
    .col_text = pg_col_text,
    .col_int = pg_col_int,
    .col_blob = pg_col_blob,
    .col_null = pg_col_null,
    .done = pg_done,
    .change = pg_change,
    .in_txn = pg_in_txn,
    .errmsg = pg_errmsg,
    .counts_triggers = pg_counts_triggers,
    .ping = pg_ping,
    .close = pg_close,
    .shared = true,
};
