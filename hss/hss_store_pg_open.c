/*
 * hss_store_pg_open.c: the HSS subscriber database on PostgreSQL: connection and schema.
 *
 * The schema is that of the SQLite store (hss_store.c: imsu, service_profile, impi, impu, the
 * identity counts of hss_store_counts.c) in PostgreSQL types: BYTEA for K/OP/AMF, BIGINT for the
 * SQN, identities and ids with the "C" collation (byte order, as SQLite's BINARY: the list pages
 * and the user part's case behave the same on both), the counting triggers in PL/pgSQL. The
 * version lives in the table hss_schema (PostgreSQL has no user_version).
 *
 * It is created at the first start, in one transaction under an advisory lock, so that two HSS
 * processes starting at once on an empty database do not both create it. A database that has
 * tables but no hss_schema is somebody else's and is refused, as is a newer schema version.
 *
 * Durability: each commit is on disk when it returns (synchronous_commit is left at its default,
 * on; an operator who turns it off loses the SQN guarantee). TS 29.228 Annex E (data model),
 * TS 33.102 Annex C (SQN).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "hss_store.h"
#include "hss_store_pg.h"
#include "hss_store_priv.h"
#include "ims_log.h"
#include "ims_strbuf.h"

#define HSS_PG_SCHEMA_VERSION 1
#define LOG_SUB "hss.store"
/* pg_advisory_xact_lock key of the schema creation ("hss" in ASCII). */
#define SCHEMA_LOCK "6845299"

static const char schema_v1[] =
    "CREATE TABLE hss_schema (version INTEGER NOT NULL);"
    "INSERT INTO hss_schema VALUES (1);"
    "CREATE TABLE imsu ("
    " id TEXT COLLATE \"C\" PRIMARY KEY,"
    " visited_networks TEXT NOT NULL DEFAULT '[]',"
    " ccf_primary TEXT, ccf_secondary TEXT, ecf_primary TEXT, ecf_secondary TEXT,"
    " scscf_name TEXT, scscf_host TEXT, scscf_realm TEXT);"
    "CREATE TABLE service_profile ("
    " imsu_id TEXT COLLATE \"C\" NOT NULL REFERENCES imsu(id) ON DELETE CASCADE,"
    " name TEXT COLLATE \"C\" NOT NULL,"
    " pos INTEGER NOT NULL,"
    " media_profile_id INTEGER NOT NULL DEFAULT -1,"
    " ifc_json TEXT NOT NULL DEFAULT '[]',"
    " PRIMARY KEY (imsu_id, name));"
    "CREATE TABLE impi ("
    " identity TEXT COLLATE \"C\" PRIMARY KEY,"
    " imsu_id TEXT COLLATE \"C\" NOT NULL REFERENCES imsu(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " auth_schemes INTEGER NOT NULL,"
    " default_scheme INTEGER NOT NULL,"
    " k BYTEA, op BYTEA, op_is_opc INTEGER NOT NULL DEFAULT 0,"
    " amf BYTEA NOT NULL DEFAULT '\\x8000',"
    " sqn BIGINT NOT NULL DEFAULT 0 CHECK (sqn BETWEEN 0 AND 281474976710655),"
    " digest_realm TEXT, ha1 TEXT);"
    "CREATE INDEX impi_imsu ON impi(imsu_id);"
    "CREATE TABLE impu ("
    " identity TEXT COLLATE \"C\" PRIMARY KEY,"
    " imsu_id TEXT COLLATE \"C\" NOT NULL REFERENCES imsu(id) ON DELETE CASCADE,"
    " pos INTEGER NOT NULL,"
    " barred INTEGER NOT NULL DEFAULT 0,"
    " irs INTEGER NOT NULL DEFAULT 1,"
    " service_profile TEXT COLLATE \"C\" NOT NULL,"
    " display_name TEXT,"
    " identity_type INTEGER NOT NULL DEFAULT 0,"
    " can_register INTEGER NOT NULL DEFAULT 1,"
    " reg_state INTEGER NOT NULL DEFAULT 0,"
    " FOREIGN KEY (imsu_id, service_profile) REFERENCES service_profile(imsu_id, name)"
    "  ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED);"
    "CREATE INDEX impu_imsu_profile ON impu(imsu_id, service_profile);"
    "CREATE INDEX impu_reg_state ON impu(reg_state, imsu_id);"
    "CREATE TABLE identity_counts ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " imsu BIGINT NOT NULL, impi BIGINT NOT NULL,"
    " impu_not_registered BIGINT NOT NULL, impu_registered BIGINT NOT NULL,"
    " impu_unregistered BIGINT NOT NULL, stale INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO identity_counts VALUES (1, 0, 0, 0, 0, 0, 0);"
    /* One function for every counting trigger; rows removed by ON DELETE CASCADE fire them too. */
    "CREATE FUNCTION hss_count() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "DECLARE d INTEGER := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;\n"
    "BEGIN\n"
    " IF TG_TABLE_NAME = 'imsu' THEN\n"
    "  UPDATE identity_counts SET imsu = imsu + d WHERE id = 1;\n"
    " ELSIF TG_TABLE_NAME = 'impi' THEN\n"
    "  UPDATE identity_counts SET impi = impi + d WHERE id = 1;\n"
    " ELSE\n"
    "  IF TG_OP IN ('DELETE', 'UPDATE') THEN UPDATE identity_counts SET\n"
    "   impu_not_registered = impu_not_registered - (OLD.reg_state = 0)::int,\n"
    "   impu_registered = impu_registered - (OLD.reg_state = 1)::int,\n"
    "   impu_unregistered = impu_unregistered - (OLD.reg_state = 2)::int WHERE id = 1;\n"
    "  END IF;\n"
    "  IF TG_OP IN ('INSERT', 'UPDATE') THEN UPDATE identity_counts SET\n"
    "   impu_not_registered = impu_not_registered + (NEW.reg_state = 0)::int,\n"
    "   impu_registered = impu_registered + (NEW.reg_state = 1)::int,\n"
    "   impu_unregistered = impu_unregistered + (NEW.reg_state = 2)::int WHERE id = 1;\n"
    "  END IF;\n"
    " END IF;\n"
    " RETURN NULL;\n"
    "END $$;"
    "CREATE TRIGGER imsu_count AFTER INSERT OR DELETE ON imsu FOR EACH ROW EXECUTE FUNCTION hss_count();"
    "CREATE TRIGGER impi_count AFTER INSERT OR DELETE ON impi FOR EACH ROW EXECUTE FUNCTION hss_count();"
    "CREATE TRIGGER impu_count AFTER INSERT OR DELETE ON impu FOR EACH ROW EXECUTE FUNCTION hss_count();"
    "CREATE TRIGGER impu_count_upd AFTER UPDATE OF reg_state ON impu FOR EACH ROW"
    " WHEN (OLD.reg_state IS DISTINCT FROM NEW.reg_state) EXECUTE FUNCTION hss_count();";

/* "host=... port=... dbname=... user=..." of a conninfo, for logs: never its password. */
static void describe(PGconn *conn, const char *conninfo, char *out, size_t len)
{
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        snprintf(out, len, "host=%s port=%s dbname=%s user=%s", PQhost(conn), PQport(conn),
                 PQdb(conn), PQuser(conn));
        return;
    }
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    size_t used = 0;

    out[0] = '\0';
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (o->val && o->val[0] && (!strcmp(o->keyword, "host") || !strcmp(o->keyword, "hostaddr") ||
                                    !strcmp(o->keyword, "port") || !strcmp(o->keyword, "dbname") ||
                                    !strcmp(o->keyword, "user")) && used < len)
            used += (size_t)snprintf(out + used, len - used, "%s%s=%s", used ? " " : "",
                                     o->keyword, o->val);
    }
    PQconninfoFree(opts);
    if (!out[0])
        snprintf(out, len, "(libpq defaults)");
}

/* Server notices (e.g. "relation already exists, skipping") go to the debug log, not stderr. */
static void notice(void *arg, const char *msg)
{
    (void)arg;
    IMS_DEBUG(LOG_SUB, "database notice: %s", msg);
}

/* Creates the schema in an empty database, or checks the one that is there. */
static int schema(hss_store *st, char *err, size_t errlen)
{
    int64_t have = 0, tables = 0, version = 0;

    if (st_exec(st, "BEGIN IMMEDIATE") != 0 ||
        st_query_int(st, NULL, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")", "", NULL) != 1 ||
        st_query_int(st, &have, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                                " AND tablename = 'hss_schema'", "", NULL) != 1 ||
        st_query_int(st, &tables, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                     "", NULL) != 1)
        goto fail;
    if (have && st_query_int(st, &version, "SELECT max(version) FROM hss_schema", "", NULL) != 1)
        goto fail;
    if (!have && tables) {
        ims_set_err(err, errlen, "database %s: not an HSS database (tables without hss_schema)",
                    st->pg->name);
        st_rollback(st, "ROLLBACK");
        return -1;
    }
    if (version > HSS_PG_SCHEMA_VERSION) {
        ims_set_err(err, errlen, "database %s: schema version %d is newer than this HSS supports (%d)",
                    st->pg->name, (int)version, HSS_PG_SCHEMA_VERSION);
        st_rollback(st, "ROLLBACK");
        return -1;
    }
    if (!have) {
        if (st_exec(st, schema_v1) != 0)
            goto fail;
        IMS_INFO(LOG_SUB, "database %s: created schema version %d", st->pg->name,
                 HSS_PG_SCHEMA_VERSION);
    }
    if (st_exec(st, "COMMIT") == 0)
        return 0;
fail:
    ims_set_err(err, errlen, "database %s: cannot create or read the schema: %s", st->pg->name,
                st_errmsg(st));
    st_rollback(st, "ROLLBACK");
    return -1;
}

hss_store *hss_store_open_pg(const char *conninfo, char *err, size_t errlen)
{
    /* Ours first: a conninfo that sets them wins (expand_dbname: later values override). A hung
     * server must not hold a Diameter thread forever; bytea in hex is what pg_col_blob reads. */
    const char *const keys[] = {"connect_timeout", "application_name", "options", "dbname", NULL};
    const char *const vals[] = {"5", "imscore-hss", "-c statement_timeout=10000 -c bytea_output=hex",
                                conninfo ? conninfo : "", NULL};
    hss_store *st = st_new(&st_pg_driver);
    char *perr = NULL;
    PQconninfoOption *check;

    if (!st || !(st->pg = calloc(1, sizeof(*st->pg)))) {
        ims_set_err(err, errlen, "out of memory");
        goto fail;
    }
    /* A malformed conninfo is a configuration error: say which part. */
    if (!(check = PQconninfoParse(conninfo ? conninfo : "", &perr))) {
        ims_set_err(err, errlen, "postgresql conninfo \"%s\": %s", conninfo ? conninfo : "",
                    perr ? perr : "cannot parse");
        PQfreemem(perr);
        goto fail;
    }
    PQconninfoFree(check);
    st->pg->conn = PQconnectdbParams(keys, vals, 1);
    describe(st->pg->conn, conninfo, st->pg->name, sizeof(st->pg->name));
    if (!st->pg->conn || PQstatus(st->pg->conn) != CONNECTION_OK) {
        ims_set_err(err, errlen, "database %s: cannot connect: %s", st->pg->name,
                    st->pg->conn ? PQerrorMessage(st->pg->conn) : "out of memory");
        /* libpq's message ends in a newline */
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        goto fail;
    }
    PQsetNoticeProcessor(st->pg->conn, notice, NULL);
    if (schema(st, err, errlen) != 0 || st_counts_check_stale(st, st->pg->name, err, errlen) != 0)
        goto fail;
    IMS_INFO(LOG_SUB, "subscriber database on PostgreSQL %s (server %d)", st->pg->name,
             PQserverVersion(st->pg->conn));
    return st;
fail:
    hss_store_close(st);
    return NULL;
}
