/*
 * hss_store_counts.c: how many subscriptions and identities the store holds, by registration
 * state, and the subscription list (optionally filtered by registration state).
 *
 * The figures feed the HSS's /metrics gauges, so they must stay cheap with millions of rows:
 * SQLite has no O(1) count(*), so triggers keep them in the one-row table identity_counts,
 * updated in the same transaction as the rows they count. A rolled-back write (a failed import
 * line, a failed SAR) therefore rolls its counts back too, and writes from other processes on the
 * same file (an older HSS, an operator's sqlite3 shell) are counted as well. Reading them is one
 * row; a write pays one extra single-row UPDATE per inserted or deleted identity row. A bulk
 * import (hss_store_bulk_begin) turns the triggers off for its connection instead, as they would
 * make it about 40 % slower: its intermediate commits mark the counts stale, its end recounts
 * (index scans, in its last transaction), and an open finding them stale (the import was killed)
 * recounts.
 *
 * Registration states are those of TS 29.228 Annex B (hss_reg_state): NOT_REGISTERED,
 * REGISTERED, UNREGISTERED, stored per IMPU in impu.reg_state.
 *
 * The objects below are additive (a table, triggers, an index), so they are created at open
 * without a new schema version: an older HSS opening the file ignores them and its writes still
 * keep the counts right through the triggers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"

/* Created in one transaction when identity_counts does not exist yet (a new file, or one written
 * by an HSS before the counts existed): the initial figures are counted once, here. */
static const char counts_schema[] =
    /* The subscription list filtered by state walks this index in id order (covering). */
    "CREATE INDEX IF NOT EXISTS impu_reg_state ON impu(reg_state, imsu_id);"
    "CREATE TABLE identity_counts ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " imsu INTEGER NOT NULL, impi INTEGER NOT NULL,"
    " impu_not_registered INTEGER NOT NULL, impu_registered INTEGER NOT NULL,"
    " impu_unregistered INTEGER NOT NULL,"
    /* 1 while a bulk import with triggers off has committed rows: recount at its end, or at the
     * next open when it never ended (crash). */
    " stale INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO identity_counts VALUES (1, (SELECT count(*) FROM imsu), (SELECT count(*) FROM impi),"
    " (SELECT count(*) FROM impu WHERE reg_state = 0), (SELECT count(*) FROM impu WHERE reg_state = 1),"
    " (SELECT count(*) FROM impu WHERE reg_state = 2), 0);"
    /* Rows removed by ON DELETE CASCADE fire their DELETE triggers too. */
    "CREATE TRIGGER imsu_count_ins AFTER INSERT ON imsu BEGIN"
    " UPDATE identity_counts SET imsu = imsu + 1 WHERE id = 1; END;"
    "CREATE TRIGGER imsu_count_del AFTER DELETE ON imsu BEGIN"
    " UPDATE identity_counts SET imsu = imsu - 1 WHERE id = 1; END;"
    "CREATE TRIGGER impi_count_ins AFTER INSERT ON impi BEGIN"
    " UPDATE identity_counts SET impi = impi + 1 WHERE id = 1; END;"
    "CREATE TRIGGER impi_count_del AFTER DELETE ON impi BEGIN"
    " UPDATE identity_counts SET impi = impi - 1 WHERE id = 1; END;"
    "CREATE TRIGGER impu_count_ins AFTER INSERT ON impu BEGIN UPDATE identity_counts SET"
    " impu_not_registered = impu_not_registered + (new.reg_state = 0),"
    " impu_registered = impu_registered + (new.reg_state = 1),"
    " impu_unregistered = impu_unregistered + (new.reg_state = 2) WHERE id = 1; END;"
    "CREATE TRIGGER impu_count_del AFTER DELETE ON impu BEGIN UPDATE identity_counts SET"
    " impu_not_registered = impu_not_registered - (old.reg_state = 0),"
    " impu_registered = impu_registered - (old.reg_state = 1),"
    " impu_unregistered = impu_unregistered - (old.reg_state = 2) WHERE id = 1; END;"
    "CREATE TRIGGER impu_count_upd AFTER UPDATE OF reg_state ON impu"
    " WHEN old.reg_state IS NOT new.reg_state BEGIN UPDATE identity_counts SET"
    " impu_not_registered = impu_not_registered + (new.reg_state = 0) - (old.reg_state = 0),"
    " impu_registered = impu_registered + (new.reg_state = 1) - (old.reg_state = 1),"
    " impu_unregistered = impu_unregistered + (new.reg_state = 2) - (old.reg_state = 2)"
    " WHERE id = 1; END;";

static const char counts_exist[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'identity_counts'";

int st_counts_check_stale(hss_store *st, const char *name, char *err, size_t errlen)
{
    int64_t stale = 0;

    if (st_query_int(st, &stale, "SELECT stale FROM identity_counts WHERE id = 1", "", NULL) < 0)
        goto fail;
    if (!stale)
        return 0;
    IMS_WARN(LOG_SUB, "%s: an import did not finish (crash or kill): recounting the identities",
             name);
    if (st_counts_recount(st) == 0)
        return 0;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s: cannot read the identity counts: %s", name, st_errmsg(st));
    return -1;
}

int st_counts_setup(hss_store *st, const char *path, char *err, size_t errlen)
{
    int64_t have = 0;

    if (st_query_int(st, &have, counts_exist, "", NULL) != 1)
        goto fail;
    if (have)
        return st_counts_check_stale(st, path, err, errlen);
    /* Re-checked inside the write transaction: two processes opening the file at once. */
    if (st_exec(st, "BEGIN IMMEDIATE") != 0 || st_query_int(st, &have, counts_exist, "", NULL) != 1)
        goto fail;
    if (!have) {
        IMS_INFO(LOG_SUB, "%s: adding the identity counts (one pass over the identities)", path);
        if (st_exec(st, counts_schema) != 0)
            goto fail;
    }
    if (st_exec(st, "COMMIT") == 0)
        return 0;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s: cannot set up the identity counts: %s", path, st_errmsg(st));
    st_rollback(st, "ROLLBACK");
    return -1;
}

int st_counts_recount(hss_store *st)
{
    return st_exec(st, "UPDATE identity_counts SET imsu = (SELECT count(*) FROM imsu),"
                       " impi = (SELECT count(*) FROM impi),"
                       " impu_not_registered = (SELECT count(*) FROM impu WHERE reg_state = 0),"
                       " impu_registered = (SELECT count(*) FROM impu WHERE reg_state = 1),"
                       " impu_unregistered = (SELECT count(*) FROM impu WHERE reg_state = 2),"
                       " stale = 0 WHERE id = 1");
}

int st_counts_stale(hss_store *st)
{
    return st_exec(st, "UPDATE identity_counts SET stale = 1 WHERE id = 1");
}

void st_counts_triggers(hss_store *st, bool on)
{
    st->drv->counts_triggers(st, on);
}

/* Reads identity_counts into *c (zeroed on error). Lock held. */
static int counts_read(hss_store *st, hss_store_counts *c)
{
    st_stmt *stmt = st_query(st, "SELECT imsu, impi, impu_not_registered, impu_registered,"
                                 " impu_unregistered FROM identity_counts WHERE id = 1", "");
    int rc = st_step(st, stmt);

    memset(c, 0, sizeof(*c));
    if (rc == 1) {
        c->subscriptions = st_col_int(st, stmt, 0);
        c->impis = st_col_int(st, stmt, 1);
        c->impus[HSS_NOT_REGISTERED] = st_col_int(st, stmt, 2);
        c->impus[HSS_REGISTERED] = st_col_int(st, stmt, 3);
        c->impus[HSS_UNREGISTERED] = st_col_int(st, stmt, 4);
    } else {
        IMS_ERROR(LOG_SUB, "cannot read the identity counts: %s", st_errmsg(st));
    }
    st_done(st, stmt);
    return rc == 1 ? HSS_STORE_OK : HSS_STORE_ERROR;
}

void st_counts_changed(hss_store *st)
{
    hss_store_counts c;

    if (st->on_counts && counts_read(st, &c) == HSS_STORE_OK)
        st->on_counts(st->on_counts_arg, &c);
}

int hss_store_get_counts(hss_store *st, hss_store_counts *out)
{
    int rc;

    st_lock(st);
    rc = counts_read(st, out);
    st_unlock(st);
    return rc;
}

void hss_store_on_counts(hss_store *st, void (*fn)(void *arg, const hss_store_counts *c), void *arg)
{
    st_lock(st);
    st->on_counts = fn;
    st->on_counts_arg = arg;
    st_counts_changed(st);
    st_unlock(st);
}

size_t hss_store_count(hss_store *st)
{
    hss_store_counts c;

    return hss_store_get_counts(st, &c) == HSS_STORE_OK && c.subscriptions > 0
               ? (size_t)c.subscriptions : 0;
}

/* ---------- listing ---------- */

int hss_store_list_by_state(hss_store *st, int state, const char *after, size_t limit, char ***ids,
                            size_t *n)
{
    st_stmt *stmt;
    int rc = HSS_STORE_OK, step = 0;
    /* "" sorts before every id (ids are never empty), so `id > ?` always has its index range;
     * INT64_MAX is no limit (PostgreSQL refuses SQLite's LIMIT -1). */
    const char *from = after ? after : "";
    int64_t lim = limit ? (int64_t)limit : INT64_MAX;

    *ids = NULL;
    *n = 0;
    st_lock(st);
    if (state < 0)
        stmt = st_query(st, "SELECT id FROM imsu WHERE id > ? ORDER BY id LIMIT ?", "tI", from, lim);
    else
        stmt = st_query(st, "SELECT DISTINCT imsu_id FROM impu WHERE reg_state = ? AND imsu_id > ?"
                            " ORDER BY imsu_id LIMIT ?", "itI", state, from, lim);
    while ((step = st_step(st, stmt)) == 1) {
        char **v = realloc(*ids, (*n + 1) * sizeof(char *));
        const char *id = st_col_text(st, stmt, 0);

        if (v)
            *ids = v;
        if (!v || !id || !(v[*n] = strdup(id))) {
            rc = HSS_STORE_ERROR;
            break;
        }
        (*n)++;
    }
    if (step < 0) {
        IMS_ERROR(LOG_SUB, "list: %s", st_errmsg(st));
        rc = HSS_STORE_ERROR;
    }
    st_done(st, stmt);
    st_unlock(st);
    if (rc != HSS_STORE_OK) {
        hss_store_free_ids(*ids, *n);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int hss_store_list(hss_store *st, const char *after, size_t limit, char ***ids, size_t *n)
{
    return hss_store_list_by_state(st, -1, after, limit, ids, n);
}

void hss_store_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}
