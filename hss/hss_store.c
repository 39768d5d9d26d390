/*
 * hss_store.c: the HSS subscriber database on SQLite.
 *
 * Tables follow the IMS data model (TS 23.228 §4.3.3, TS 29.228 Annex E, hss_subscriber.h):
 *
 *   imsu ─┬─< impi              private identities + AKA / digest credentials, SQN
 *         ├─< service_profile    name -> iFC list (JSON text, hss_json.c format)
 *         └─< impu ──> service_profile(imsu_id, name)
 *
 * Every child row goes with its subscription (ON DELETE CASCADE). Identities are stored in the
 * canonical form of hss_impu_normalise / hss_impi_normalise (common/ims_identity: scheme and host
 * lower-case, no URI parameters; older files are rewritten at open, hss_store_rekey.c), so a
 * lookup normalises its argument and uses the primary-key index with the default BINARY
 * collation. NOCASE would be wrong: the user part is case-sensitive (RFC 3261 §19.1.4).
 *
 * Durability: WAL + synchronous=FULL, so a COMMIT is on disk when it returns. The SQN
 * (TS 33.102 Annex C: SEQ||IND, 48 bits): impi.sqn is a durable reservation mark, committed
 * before any vector with an SQN up to it can leave the HSS, so a crash never re-issues an SQN;
 * SQNs below the mark are handed out from memory (hss_store_auth.c).
 *
 * Concurrency: one connection serialised by a mutex. freeDiameter dispatch threads and
 * libmicrohttpd threads are pools we neither create nor see end, so a connection per thread would
 * need thread-exit hooks and would still serialise on SQLite's single writer — and the hot path
 * (MAR -> advance_sqn) is a write. Each call is a few indexed statements (tens of µs) plus the
 * fsync of a commit, which the writer lock would serialise anyway; concurrent writes therefore
 * share one commit (group commit, hss_store_group.c), each caller still returning once its write
 * is on disk. busy_timeout (5 s) covers other processes on the same file (imsctl, an operator's
 * sqlite3 shell).
 *
 * Schema versions: PRAGMA user_version. 0 = empty file (we create version 1); a newer version than
 * HSS_SCHEMA_VERSION is refused rather than misread.
 * Additive objects an older HSS can live with (the identity counts and their index,
 * hss_store_counts.c) are added at open without a version change.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "ims_array.h"
#include "ims_aka.h"
#include "ims_log.h"
#include "ims_strbuf.h"

#define HSS_SCHEMA_VERSION 1
#define LOG_SUB "hss.store"


static const char schema_v1[] =
    "CREATE TABLE imsu ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " visited_networks TEXT NOT NULL DEFAULT '[]',"   /* JSON array of network names */
    " ccf_primary TEXT, ccf_secondary TEXT, ecf_primary TEXT, ecf_secondary TEXT,"
    " scscf_name TEXT, scscf_host TEXT, scscf_realm TEXT);"
    "CREATE TABLE service_profile ("
    " imsu_id TEXT NOT NULL REFERENCES imsu(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " pos INTEGER NOT NULL,"                           /* order in the provisioned document */
    " media_profile_id INTEGER NOT NULL DEFAULT -1,"
    " ifc_json TEXT NOT NULL DEFAULT '[]',"
    " PRIMARY KEY (imsu_id, name));"
    "CREATE TABLE impi ("
    " identity TEXT PRIMARY KEY NOT NULL,"
    " imsu_id TEXT NOT NULL REFERENCES imsu(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " auth_schemes INTEGER NOT NULL,"
    " default_scheme INTEGER NOT NULL,"
    " k BLOB, op BLOB, op_is_opc INTEGER NOT NULL DEFAULT 0,"   /* NULL k: no AKA credentials */
    " amf BLOB NOT NULL DEFAULT x'8000',"
    " sqn INTEGER NOT NULL DEFAULT 0 CHECK (sqn BETWEEN 0 AND 281474976710655),"
    " digest_realm TEXT, ha1 TEXT);"
    "CREATE INDEX impi_imsu ON impi(imsu_id);"
    "CREATE TABLE impu ("
    " identity TEXT PRIMARY KEY NOT NULL,"
    " imsu_id TEXT NOT NULL REFERENCES imsu(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " barred INTEGER NOT NULL DEFAULT 0,"
    " irs INTEGER NOT NULL DEFAULT 1,"
    " service_profile TEXT NOT NULL,"
    " display_name TEXT,"
    " identity_type INTEGER NOT NULL DEFAULT 0,"
    " can_register INTEGER NOT NULL DEFAULT 1,"
    " reg_state INTEGER NOT NULL DEFAULT 0,"
    /* Deferred: a replace deletes and re-inserts profiles and IMPUs in one transaction. */
    " FOREIGN KEY (imsu_id, service_profile) REFERENCES service_profile(imsu_id, name)"
    "  ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED);"
    "CREATE INDEX impu_imsu_profile ON impu(imsu_id, service_profile);";


/* ---------- small helpers (all called with st->lock held) ---------- */

/* Why `path` cannot be written, when the file system says so: "" otherwise. */
static void write_hint(const char *path, char *buf, size_t len)
{
    char dir[512];
    const char *slash = strrchr(path, '/');

    buf[0] = '\0';
    if (access(path, W_OK) != 0 && errno != ENOENT) {
        snprintf(buf, len, " (the file is not writable: %s)", strerror(errno));
        return;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (!dir[0])
        snprintf(dir, sizeof(dir), "/");
    if (access(dir, W_OK) != 0)
        snprintf(buf, len, " (its directory %s is not writable: %s; SQLite needs to create the "
                 "-wal and -shm files there)", dir, strerror(errno));
}

static char *col_str(hss_store *st, st_stmt *stmt, int col)
{
    const char *s = st_col_text(st, stmt, col);

    return s ? strdup(s) : NULL;
}

/* ---------- open / close ---------- */

/* Creates the schema in a fresh file. Version and table count are re-read inside the write
 * transaction so that two processes opening a new file at once do not both create it. */
static int create_schema(hss_store *st, const char *path, char *err, size_t errlen)
{
    int64_t version = -1, tables = -1;
    char sql[64];

    if (st_exec(st, "BEGIN IMMEDIATE") != 0) {
        ims_set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
        return -1;
    }
    if (st_query_int(st, &version, "PRAGMA user_version", "", NULL) != 1 ||
        st_query_int(st, &tables, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", "",
                  NULL) != 1)
        goto fail;
    if (version == 0 && tables != 0) {
        ims_set_err(err, errlen, "%s: not an HSS database (tables without a schema version)", path);
        st_rollback(st, "ROLLBACK");
        return -1;
    }
    if (version == 0) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", HSS_SCHEMA_VERSION);
        if (st_exec(st, schema_v1) != 0 || st_exec(st, sql) != 0)
            goto fail;
        IMS_INFO(LOG_SUB, "%s: created schema version %d", path, HSS_SCHEMA_VERSION);
    }
    if (st_exec(st, "COMMIT") == 0)
        return 0;
fail:
    ims_set_err(err, errlen, "%s: cannot create the schema: %s", path, sqlite3_errmsg(st->db));
    st_rollback(st, "ROLLBACK");
    return -1;
}

hss_store *hss_store_open(const char *path, char *err, size_t errlen)
{
    hss_store *st = st_new(&st_sqlite_driver);
    sqlite3_stmt *stmt;
    int64_t version = 0;
    char sql[64], hint[640];

    if (!st) {
        ims_set_err(err, errlen, "out of memory");
        return NULL;
    }
    /* NOMUTEX: our own mutex serialises every use of the connection. */
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                           SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        write_hint(path, hint, sizeof(hint));
        ims_set_err(err, errlen, "%s: %s%s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open", hint);
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    /* The first statement reads the file header: a file that is not a database fails here,
     * with SQLite's "file is not a database". */
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
        write_hint(path, hint, sizeof(hint));
        ims_set_err(err, errlen, "%s: %s%s", path, sqlite3_errmsg(st->db), hint);
        sqlite3_finalize(stmt);
        goto fail;
    }
    if (strcmp((const char *)sqlite3_column_text(stmt, 0), "wal") != 0)
        IMS_WARN(LOG_SUB, "%s: journal mode is %s, not wal", path, sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    if (st_exec(st, "PRAGMA synchronous = FULL") != 0 || st_exec(st, "PRAGMA foreign_keys = ON") != 0 ||
        st_query_int(st, &version, "PRAGMA user_version", "", NULL) != 1) {
        ims_set_err(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (version > HSS_SCHEMA_VERSION) {
        ims_set_err(err, errlen, "%s: schema version %d is newer than this HSS supports (%d)", path,
                (int)version, HSS_SCHEMA_VERSION);
        goto fail;
    }
    if (version == 0 && create_schema(st, path, err, errlen) != 0)
        goto fail;
    if (st_counts_setup(st, path, err, errlen) != 0)
        goto fail;
    /* Prove now that the file can be written (a read-only file, directory or file system
     * otherwise shows only at the first MAR): rewrite the schema version, a real commit. */
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
             (int)(version ? version : HSS_SCHEMA_VERSION));
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        write_hint(path, hint, sizeof(hint));
        ims_set_err(err, errlen, "%s: cannot write the database: %s%s", path, sqlite3_errmsg(st->db),
                hint[0] ? hint : " (is the file, its directory or the file system read-only?)");
        goto fail;
    }
    /* after the write proof above, so that a read-only file gets its hint there */
    if (version != 0 && st_rekey_identities(st, path, err, errlen) != 0)
        goto fail;
    return st;
fail:
    hss_store_close(st);
    return NULL;
}

void hss_store_close(hss_store *st)
{
    if (!st)
        return;
    st_lock(st);
    hss_sqn_release_all(st);
    st_unlock(st);
    st->drv->close(st);
    st_group_destroy(st);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int hss_store_ping(hss_store *st, char *why, size_t whylen)
{
    int rc;

    st_lock(st);
    rc = st->drv->ping(st, why, whylen);
    st_unlock(st);
    return rc;
}

const char *hss_store_backend(const hss_store *st)
{
    return st->drv->name;
}

/* ---------- reads ---------- */

/* One row of each child table into the model; -1 on ENOMEM or a corrupt row. */
static int row_profile(hss_store *st, st_stmt *stmt, hss_subscriber *out)
{
    hss_service_profile *p = ims_array_append((void **)&out->profiles, &out->n_profiles, sizeof(*p));
    json_object *ifc;
    char err[256];
    int rc;

    if (!p || !(p->name = col_str(st, stmt, 0)))
        return -1;
    p->subscribed_media_profile_id = (int)st_col_int(st, stmt, 1);
    ifc = json_tokener_parse(st_col_text(st, stmt, 2));
    rc = ifc ? hss_ifcs_from_json(ifc, "ifc", &p->ifcs, &p->n_ifcs, err, sizeof(err)) : -1;
    json_object_put(ifc);
    if (rc != 0)
        IMS_ERROR(LOG_SUB, "subscription %s: profile %s: bad stored iFC", out->id, p->name);
    return rc;
}

static int row_impi(hss_store *st, st_stmt *stmt, hss_subscriber *out)
{
    hss_impi *m = ims_array_append((void **)&out->impis, &out->n_impis, sizeof(*m));

    return m ? st_row_impi(st, stmt, m) : -1;
}

int st_row_impi(hss_store *st, st_stmt *stmt, hss_impi *m)
{
    const char *ha1;

    if (!(m->identity = col_str(st, stmt, 0)))
        return -1;
    m->auth_schemes = (unsigned)st_col_int(st, stmt, 1);
    m->default_scheme = (unsigned)st_col_int(st, stmt, 2);
    m->has_aka = st_col_blob(st, stmt, 3, m->k, 16) && st_col_blob(st, stmt, 4, m->op, 16);
    m->op_is_opc = st_col_int(st, stmt, 5) != 0;
    st_col_blob(st, stmt, 6, m->amf, 2);
    m->sqn = (uint64_t)st_col_int(st, stmt, 7);
    m->digest_realm = col_str(st, stmt, 8);
    ha1 = st_col_text(st, stmt, 9);
    if (ha1 && strlen(ha1) == 32)
        memcpy(m->ha1, ha1, 33);
    return 0;
}

static int row_impu(hss_store *st, st_stmt *stmt, hss_subscriber *out)
{
    hss_impu *u = ims_array_append((void **)&out->impus, &out->n_impus, sizeof(*u));

    if (!u || !(u->identity = col_str(st, stmt, 0)))
        return -1;
    u->barred = st_col_int(st, stmt, 1) != 0;
    u->irs = (int)st_col_int(st, stmt, 2);
    u->service_profile = col_str(st, stmt, 3);
    u->display_name = col_str(st, stmt, 4);
    u->identity_type = (int)st_col_int(st, stmt, 5);
    u->can_register = st_col_int(st, stmt, 6) != 0;
    u->reg_state = (hss_reg_state)st_col_int(st, stmt, 7);
    return u->service_profile ? 0 : -1;
}

static int row_imsu(hss_store *st, st_stmt *stmt, hss_subscriber *out)
{
    json_object *arr = json_tokener_parse(st_col_text(st, stmt, 1));
    int rc = 0;

    out->id = col_str(st, stmt, 0);
    out->ccf_primary = col_str(st, stmt, 2);
    out->ccf_secondary = col_str(st, stmt, 3);
    out->ecf_primary = col_str(st, stmt, 4);
    out->ecf_secondary = col_str(st, stmt, 5);
    out->scscf_name = col_str(st, stmt, 6);
    out->scscf_host = col_str(st, stmt, 7);
    out->scscf_realm = col_str(st, stmt, 8);
    for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) &&
                       i < json_object_array_length(arr); i++) {
        char **v = ims_array_append((void **)&out->visited_networks, &out->n_visited_networks, sizeof(char *));

        if (!v || !(*v = strdup(json_object_get_string(json_object_array_get_idx(arr, i)))))
            rc = -1;
    }
    json_object_put(arr);
    return out->id ? rc : -1;
}

/* Runs a SELECT on `id` and hands each row to fn: 1 rows seen, 0 none, -1 error. */
static int load_rows(hss_store *st, const char *sql, const char *id, hss_subscriber *out,
                     int (*fn)(hss_store *, st_stmt *, hss_subscriber *))
{
    st_stmt *stmt = st_query(st, sql, "t", id);
    int step, rows = 0, rc = 0;

    if (!stmt)
        return -1;
    while (rc == 0 && (step = st_step(st, stmt)) == 1) {
        rows = 1;
        rc = fn(st, stmt, out);
    }
    if (rc == 0 && step != 0) {
        IMS_ERROR(LOG_SUB, "reading %s: %s", id, st_errmsg(st));
        rc = -1;
    }
    st_done(st, stmt);
    return rc != 0 ? -1 : rows;
}

/* Loads subscription `id` into out (zeroed). Caller holds the lock and a read transaction. */
static int load(hss_store *st, const char *id, hss_subscriber *out)
{
    int rc = load_rows(st, "SELECT id, visited_networks, ccf_primary, ccf_secondary, ecf_primary,"
                           " ecf_secondary, scscf_name, scscf_host, scscf_realm FROM imsu"
                           " WHERE id = ?", id, out, row_imsu);

    if (rc == 0)
        return HSS_STORE_NOT_FOUND;
    if (rc < 0 ||
        load_rows(st, "SELECT name, media_profile_id, ifc_json FROM service_profile"
                      " WHERE imsu_id = ? ORDER BY pos", id, out, row_profile) < 0 ||
        load_rows(st, "SELECT identity, auth_schemes, default_scheme, k, op, op_is_opc, amf, sqn,"
                      " digest_realm, ha1 FROM impi WHERE imsu_id = ? ORDER BY pos",
                  id, out, row_impi) < 0 ||
        load_rows(st, "SELECT identity, barred, irs, service_profile, display_name, identity_type,"
                      " can_register, reg_state FROM impu WHERE imsu_id = ? ORDER BY pos",
                  id, out, row_impu) < 0) {
        hss_subscriber_free(out);
        return HSS_STORE_ERROR;
    }
    return HSS_STORE_OK;
}

/* Subscription id owning a (normalised) identity of `table` ("impi"/"impu"), NULL when none. */
static char *owner_of(hss_store *st, const char *table, const char *norm)
{
    st_stmt *stmt = st_query(st, strcmp(table, "impi") == 0
                                  ? "SELECT imsu_id FROM impi WHERE identity = ?"
                                  : "SELECT imsu_id FROM impu WHERE identity = ?", "t", norm);
    char *id = NULL;

    if (st_step(st, stmt) == 1)
        id = col_str(st, stmt, 0);
    st_done(st, stmt);
    return id;
}

/* get / find: one read transaction, so the several SELECTs see one snapshot even when another
 * process writes the file. by: NULL (key is the id), "impi" or "impu". */
static int get_by(hss_store *st, const char *by, const char *key, hss_subscriber *out)
{
    char *norm = NULL, *id = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!key)
        return HSS_STORE_NOT_FOUND;
    if (by)
        norm = strcmp(by, "impi") == 0 ? hss_impi_normalise(key) : hss_impu_normalise(key);
    st_lock(st);
    if (st_txn(st, "BEGIN") != 0) {
        rc = HSS_STORE_ERROR;
    } else {
        id = by ? (norm ? owner_of(st, by, norm) : NULL) : strdup(key);
        rc = id ? load(st, id, out) : HSS_STORE_NOT_FOUND;
        /* The row holds the reservation mark; show the last SQN actually handed out. */
        for (size_t i = 0; rc == HSS_STORE_OK && i < out->n_impis; i++)
            hss_sqn_cached_last(st, out->impis[i].identity, &out->impis[i].sqn);
        st_txn(st, "COMMIT");
    }
    st_unlock(st);
    free(id);
    free(norm);
    return rc;
}

int hss_store_get(hss_store *st, const char *id, hss_subscriber *out)
{
    return get_by(st, NULL, id, out);
}

int hss_store_find_by_impi(hss_store *st, const char *impi, hss_subscriber *out)
{
    return get_by(st, "impi", impi, out);
}

int hss_store_find_by_impu(hss_store *st, const char *impu, hss_subscriber *out)
{
    return get_by(st, "impu", impu, out);
}

/* ---------- writes ---------- */

typedef struct {
    const hss_subscriber *s;
    int create_only;
    char **impis, **impus;          /* normalised identities */
    uint64_t *sqn;                  /* SQN to store per IMPI */
    int *state;                     /* reg_state to store per IMPU */
    char *err;
    size_t errlen;
} put_args;

/* The row of an identity a put may rewrite. A shared database (PostgreSQL) locks it until the
 * commit: otherwise an SQN another HSS advances between this read and the rewrite would be
 * written back with the older value. SQLite's BEGIN IMMEDIATE already excludes every writer. */
static const char *put_check_sql(hss_store *st, int table)
{
    if (table == 0)
        return st->drv->shared ? "SELECT imsu_id, sqn FROM impi WHERE identity = ? FOR UPDATE"
                               : "SELECT imsu_id, sqn FROM impi WHERE identity = ?";
    return st->drv->shared ? "SELECT imsu_id, reg_state FROM impu WHERE identity = ? FOR UPDATE"
                           : "SELECT imsu_id, reg_state FROM impu WHERE identity = ?";
}

/* Conflict checks, and the volatile state of identities that stay in this subscription. */
static int put_check(hss_store *st, put_args *a, bool *exists)
{
    const hss_subscriber *s = a->s;
    int found = st_query_int(st, NULL, "SELECT 1 FROM imsu WHERE id = ?", "t", s->id);

    if (found < 0)
        return HSS_STORE_ERROR;
    *exists = found == 1;
    if (*exists && a->create_only) {
        ims_set_err(a->err, a->errlen, "id: subscription %s already exists", s->id);
        return HSS_STORE_CONFLICT;
    }
    for (int table = 0; table < 2; table++) {
        size_t n = table == 0 ? s->n_impis : s->n_impus;

        for (size_t i = 0; i < n; i++) {
            const char *id = table == 0 ? a->impis[i] : a->impus[i];
            st_stmt *stmt = st_query(st, put_check_sql(st, table), "t", id);
            int rc = HSS_STORE_OK, step = st_step(st, stmt);

            if (step < 0) {
                rc = HSS_STORE_ERROR;
            } else if (step == 0) {
                /* a new identity */
            } else if (strcmp(st_col_text(st, stmt, 0), s->id) != 0) {
                ims_set_err(a->err, a->errlen, "%s[%zu]: %s belongs to subscription %s",
                        table == 0 ? "impis" : "impus", i, id, st_col_text(st, stmt, 0));
                rc = HSS_STORE_CONFLICT;
            } else if (table == 0) {
                /* Same subscription: the SQN never goes back. The last SQN handed out is
                 * enough (the rest of a reservation is released by the replace). */
                uint64_t old = (uint64_t)st_col_int(st, stmt, 1);
                hss_sqn_cached_last(st, id, &old);
                a->sqn[i] = old > a->sqn[i] ? old : a->sqn[i];
            } else {
                a->state[i] = (int)st_col_int(st, stmt, 1);
            }
            st_done(st, stmt);
            if (rc != HSS_STORE_OK)
                return rc;
        }
    }
    return HSS_STORE_OK;
}

/* Maps a failed child INSERT: a key clash inside the document itself is a conflict. */
static int insert_failed(put_args *a, int rc, const char *what, size_t i, const char *id)
{
    if (rc == -2) {
        ims_set_err(a->err, a->errlen, "%s[%zu]: %s appears twice in this subscription", what, i, id);
        return HSS_STORE_CONFLICT;
    }
    return HSS_STORE_ERROR;
}

static int put_txn(hss_store *st, void *arg)
{
    put_args *a = arg;
    const hss_subscriber *s = a->s;
    json_object *visited = json_object_new_array();
    const char *vtext;
    bool exists;
    int rc = put_check(st, a, &exists);

    for (size_t i = 0; i < s->n_visited_networks; i++)
        json_object_array_add(visited, json_object_new_string(s->visited_networks[i]));
    /* A replace rewrites the rows of the subscription but keeps the imsu row, and with it the
     * assigned S-CSCF. */
    vtext = json_object_to_json_string_ext(visited, JSON_C_TO_STRING_PLAIN);
    /* The rows are rewritten: their SQN reservations end here. */
    for (size_t i = 0; rc == HSS_STORE_OK && i < s->n_impis; i++)
        hss_sqn_forget(st, a->impis[i]);
    if (rc == HSS_STORE_OK && exists && hss_sqn_forget_subscription(st, s->id) != 0)
        rc = HSS_STORE_ERROR;
    if (rc == HSS_STORE_OK && exists) {
        if (st_change(st, "UPDATE imsu SET visited_networks = ?, ccf_primary = ?, ccf_secondary = ?,"
                       " ecf_primary = ?, ecf_secondary = ? WHERE id = ?", "tttttt", vtext,
                   s->ccf_primary, s->ccf_secondary, s->ecf_primary, s->ecf_secondary, s->id) < 0 ||
            st_change(st, "DELETE FROM impu WHERE imsu_id = ?", "t", s->id) < 0 ||
            st_change(st, "DELETE FROM impi WHERE imsu_id = ?", "t", s->id) < 0 ||
            st_change(st, "DELETE FROM service_profile WHERE imsu_id = ?", "t", s->id) < 0)
            rc = HSS_STORE_ERROR;
    } else if (rc == HSS_STORE_OK) {
        if (st_change(st, "INSERT INTO imsu (id, visited_networks, ccf_primary, ccf_secondary,"
                       " ecf_primary, ecf_secondary, scscf_name, scscf_host, scscf_realm)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", "ttttttttt", s->id, vtext,
                   s->ccf_primary, s->ccf_secondary, s->ecf_primary, s->ecf_secondary,
                   s->scscf_name, s->scscf_host, s->scscf_realm) < 0)
            rc = HSS_STORE_ERROR;
    }
    json_object_put(visited);
    if (rc != HSS_STORE_OK)
        return rc;

    for (size_t i = 0; i < s->n_profiles; i++) {
        const hss_service_profile *p = &s->profiles[i];
        json_object *ifc = hss_ifcs_to_json(p->ifcs, p->n_ifcs);

        rc = st_change(st, "INSERT INTO service_profile (imsu_id, name, pos, media_profile_id, ifc_json)"
                        " VALUES (?, ?, ?, ?, ?)", "ttIit", s->id, p->name, (int64_t)i,
                    p->subscribed_media_profile_id,
                    json_object_to_json_string_ext(ifc, JSON_C_TO_STRING_PLAIN));
        json_object_put(ifc);
        if (rc < 0)
            return insert_failed(a, rc, "service_profiles", i, p->name);
    }
    for (size_t i = 0; i < s->n_impis; i++) {
        const hss_impi *m = &s->impis[i];

        rc = st_change(st, "INSERT INTO impi (identity, imsu_id, pos, auth_schemes, default_scheme, k,"
                        " op, op_is_opc, amf, sqn, digest_realm, ha1)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "ttIiibbibItt",
                    a->impis[i], s->id, (int64_t)i, (int)m->auth_schemes, (int)m->default_scheme,
                    m->has_aka ? m->k : NULL, 16, m->has_aka ? m->op : NULL, 16, (int)m->op_is_opc,
                    m->amf, 2, (int64_t)a->sqn[i], m->digest_realm, m->ha1[0] ? m->ha1 : NULL);
        if (rc < 0)
            return insert_failed(a, rc, "impis", i, a->impis[i]);
    }
    for (size_t i = 0; i < s->n_impus; i++) {
        const hss_impu *u = &s->impus[i];

        rc = st_change(st, "INSERT INTO impu (identity, imsu_id, pos, barred, irs, service_profile,"
                        " display_name, identity_type, can_register, reg_state)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "ttIiittiii",
                    a->impus[i], s->id, (int64_t)i, (int)u->barred, u->irs, u->service_profile,
                    u->display_name, u->identity_type, (int)u->can_register, a->state[i]);
        if (rc < 0)
            return insert_failed(a, rc, "impus", i, a->impus[i]);
    }
    return HSS_STORE_OK;
}

int hss_store_put(hss_store *st, const hss_subscriber *s, int create_only, char *err, size_t errlen)
{
    put_args a = {s, create_only, NULL, NULL, NULL, NULL, err, errlen};
    int rc = HSS_STORE_ERROR;

    ims_set_err(err, errlen, "%s", "");
    /* The model normally comes from hss_subscriber_from_json; these are the invariants the
     * schema relies on, checked again for other callers (imports, tests). */
    if (!s->id || !s->id[0] || s->n_impis == 0 || s->n_impus == 0) {
        ims_set_err(err, errlen, "a subscription needs an id, an IMPI and an IMPU");
        return HSS_STORE_ERROR;
    }
    for (size_t i = 0; i < s->n_impus; i++) {
        if (!s->impus[i].identity || !hss_subscriber_profile(s, s->impus[i].service_profile)) {
            ims_set_err(err, errlen, "impus[%zu]: no such service profile", i);
            return HSS_STORE_ERROR;
        }
    }
    a.impis = calloc(s->n_impis, sizeof(char *));
    a.impus = calloc(s->n_impus, sizeof(char *));
    a.sqn = calloc(s->n_impis, sizeof(uint64_t));
    a.state = calloc(s->n_impus, sizeof(int));
    if (!a.impis || !a.impus || !a.sqn || !a.state)
        goto out;
    for (size_t i = 0; i < s->n_impis; i++) {
        if (!(a.impis[i] = hss_impi_normalise(s->impis[i].identity)))
            goto out;
        a.sqn[i] = s->impis[i].sqn;
    }
    for (size_t i = 0; i < s->n_impus; i++) {
        if (!(a.impus[i] = hss_impu_normalise(s->impus[i].identity)))
            goto out;
        a.state[i] = s->impus[i].reg_state;
    }
    rc = st_write_txn(st, put_txn, &a);
out:
    if (rc == HSS_STORE_ERROR && err && errlen && !err[0]) {
        /* SQLite's reason (e.g. "database or disk is full") for the API's error body. */
        st_lock(st);
        ims_set_err(err, errlen, "%s", st->last_err[0] ? st->last_err : "database error");
        st_unlock(st);
    }
    for (size_t i = 0; a.impis && i < s->n_impis; i++)
        free(a.impis[i]);
    for (size_t i = 0; a.impus && i < s->n_impus; i++)
        free(a.impus[i]);
    free(a.impis);
    free(a.impus);
    free(a.sqn);
    free(a.state);
    return rc;
}

/* st_change() result of a single-row UPDATE/DELETE -> store code. */
int st_changed(int n)
{
    return n < 0 ? HSS_STORE_ERROR : n == 0 ? HSS_STORE_NOT_FOUND : HSS_STORE_OK;
}

int hss_store_delete(hss_store *st, const char *id)
{
    int rc;

    st_lock(st);
    /* Children go by ON DELETE CASCADE (foreign_keys is on for this connection). A single
     * statement is its own transaction, durable when it returns. */
    rc = hss_sqn_forget_subscription(st, id) == 0
             ? st_changed(st_change(st, "DELETE FROM imsu WHERE id = ?", "t", id))
             : HSS_STORE_ERROR;
    if (rc == HSS_STORE_OK)
        st_counts_changed(st);
    st_unlock(st);
    return rc;
}
