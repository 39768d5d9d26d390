/*
 * hss_store_pg: what the PostgreSQL files of the HSS store (hss_store_pg.c, the driver;
 * hss_store_pg_open.c, open and schema) share.
 */
#ifndef HSS_STORE_PG_H
#define HSS_STORE_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#define HSS_PG_STMT_CACHE 64

typedef struct {
    const char *sql;                /* the store's literal ('?' parameters) */
    char *pgsql;                    /* the same with $N */
    int nparams;
    bool prepared;                  /* on the current connection */
    char name[16];
} pg_cached;

struct hss_pg {
    PGconn *conn;
    char name[200];                 /* host, port, database, user: for logs (never the password) */
    pg_cached stmts[HSS_PG_STMT_CACHE];
    size_t n_stmts;
    uint64_t next_attempt_us;       /* no reconnection attempt before this (monotonic µs) */
    bool down;                      /* the last attempt failed (logged once per outage) */
    char down_reason[160];
};

#endif
