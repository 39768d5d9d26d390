/*
 * test_store: the HSS data model (hss_subscriber.c) in the store (hss_store.c); the JSON
 * format's own checks are in test_hss_json.c.
 *
 * Backends: SQLite by default. With IMS_TEST_PG set to a libpq conninfo without dbname
 * ("host=127.0.0.1 port=N user=postgres"; tests/component/test_store_pg.py starts a real server
 * and sets it) the same tests run on PostgreSQL, each on a fresh database named after its file;
 * test_open_errors then checks PostgreSQL's own failures.
 *
 * Covers: JSON -> model -> store -> model -> JSON round trip; store lookups by identity in its
 * canonical form; conflicts between subscriptions; replace keeping SQN / reg state / S-CSCF;
 * cascading delete; durable, strictly increasing SQNs (TS 33.102 Annex C) under concurrency;
 * User-Data of an implicit registration set (TS 29.228 §6.1.2, Annex E); bad database files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "hss_store.h"
#include "hss_subscriber.h"
#include "ims_aka.h"
#include "ims_log.h"
#include "hss_test_data.h"

static char tmpdir[64];

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/test_store.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    ims_log_set_level(IMS_LOG_ERROR);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void db_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* ---------- PostgreSQL (IMS_TEST_PG) ---------- */

static const char *pg_base(void)
{
    const char *v = getenv("IMS_TEST_PG");

    return v && v[0] ? v : NULL;
}

/* "sqn.db" -> database "t_sqn" */
static void pg_dbname(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "t_%.*s", (int)strcspn(name, "."), name);
}

static void pg_conninfo(char *buf, size_t len, const char *name)
{
    char db[64];

    pg_dbname(db, sizeof(db), name);
    snprintf(buf, len, "%s dbname=%s", pg_base(), db);
}

/* Runs sql on database `db` ("postgres" to create others); the first column of the first row
 * as an int (-1 when none). */
static int pg_sql(const char *db, const char *sql)
{
    char ci[256];
    PGconn *c;
    PGresult *r;
    int v = -1;

    snprintf(ci, sizeof(ci), "%s dbname=%s", pg_base(), db);
    c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", ci, PQerrorMessage(c));
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* A fresh database per name, once per run (a test reopening its store keeps the data). */
static void pg_fresh(const char *name)
{
    static char done[32][64];
    static size_t n_done;
    char db[64], sql[160];

    pg_dbname(db, sizeof(db), name);
    for (size_t i = 0; i < n_done; i++)
        if (strcmp(done[i], db) == 0)
            return;
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db);
    pg_sql("postgres", sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    pg_sql("postgres", sql);
    if (n_done < 32)
        snprintf(done[n_done++], sizeof(done[0]), "%s", db);
}

static hss_store *open_store(const char *name)
{
    char path[256], err[256] = "";
    hss_store *st;

    if (pg_base()) {
        pg_fresh(name);
        pg_conninfo(path, sizeof(path), name);
        st = hss_store_open_pg(path, err, sizeof(err));
        if (!st)
            fail_msg("open %s: %s", path, err);
        assert_string_equal(hss_store_backend(st), "postgresql");
        return st;
    }
    db_path(path, sizeof(path), name);
    st = hss_store_open(path, err, sizeof(err));
    if (!st)
        fail_msg("open %s: %s", path, err);
    return st;
}

static void put_ok(hss_store *st, const char *text, int create_only)
{
    hss_subscriber s;
    char err[256] = "";

    parse_ok(text, &s);
    if (hss_store_put(st, &s, create_only, err, sizeof(err)) != HSS_STORE_OK)
        fail_msg("put: %s", err);
    hss_subscriber_free(&s);
}

/* Minimal valid subscription with one IMPI (digest) and one IMPU. */
static void simple_doc(char *buf, size_t len, const char *id, const char *impi, const char *impu)
{
    snprintf(buf, len,
             "{\"id\":\"%s\",\"impis\":[{\"impi\":\"%s\",\"k\":\"" K_HEX "\",\"op\":\"" OPC_HEX
             "\"}],\"impus\":[{\"impu\":\"%s\"}]}", id, impi, impu);
}

/* ---------- JSON ---------- */

static void test_json_roundtrip(void **state)
{
    hss_subscriber s, back;
    json_object *j1, *j2, *impi0, *v;
    hss_store *st = open_store("rt.db");
    char ha1[33], err[256];

    parse_ok(full_doc, &s);
    assert_string_equal(s.id, "alice");
    assert_int_equal(s.n_impis, 2);
    assert_int_equal(s.n_impus, 4);
    assert_int_equal(s.n_profiles, 2);
    assert_true(s.impis[0].op_is_opc);
    assert_int_equal(s.impis[0].sqn, 32);
    /* HA1 = MD5(impi:realm:password), realm defaulted to the IMPI's domain. */
    ims_digest_ha1("alice@ims.lab", "ims.lab", "secret", 6, ha1);
    assert_string_equal(s.impis[0].ha1, ha1);
    assert_string_equal(s.impis[0].digest_realm, "ims.lab");
    assert_string_equal(s.impis[1].ha1, "0123456789abcdef0123456789abcdef");
    assert_int_equal(s.impis[1].auth_schemes, HSS_AUTH_DIGEST);
    assert_int_equal(s.profiles[0].n_ifcs, 2);
    assert_int_equal(s.profiles[0].ifcs[1].tp.spts[0].registration_type,
                     IMS_REGTYPE_INITIAL | IMS_REGTYPE_DE_REGISTRATION);
    assert_int_equal(s.profiles[0].ifcs[0].tp.spts[2].kind, IMS_SPT_SIP_HEADER);
    assert_string_equal(s.profiles[0].ifcs[0].tp.spts[2].content, ".*video.*");
    assert_false(s.profiles[1].ifcs[0].has_trigger_point);
    assert_string_equal(s.impus[2].service_profile, "default");    /* first profile */

    j1 = hss_subscriber_to_json(&s);
    assert_int_equal(hss_store_put(st, &s, 1, err, sizeof(err)), HSS_STORE_OK);
    assert_int_equal(hss_store_get(st, "alice", &back), HSS_STORE_OK);
    j2 = hss_subscriber_to_json(&back);
    if (!json_object_equal(j1, j2))
        fail_msg("round trip differs:\n%s\n%s", json_object_to_json_string(j1),
                 json_object_to_json_string(j2));
    assert_memory_equal(back.impis[0].k, s.impis[0].k, 16);
    assert_memory_equal(back.impis[0].op, s.impis[0].op, 16);
    assert_string_equal(back.impis[0].ha1, ha1);

    /* Never a secret in the output; the flags say what is held. */
    impi0 = json_object_array_get_idx(json_object_object_get(j2, "impis"), 0);
    assert_false(json_object_object_get_ex(impi0, "k", NULL));
    assert_false(json_object_object_get_ex(impi0, "opc", NULL));
    assert_false(json_object_object_get_ex(impi0, "op", NULL));
    assert_false(json_object_object_get_ex(impi0, "password", NULL));
    assert_false(json_object_object_get_ex(impi0, "ha1", NULL));
    assert_true(json_object_get_boolean(json_object_object_get(impi0, "aka")));
    assert_true(json_object_get_boolean(json_object_object_get(impi0, "digest")));
    assert_int_equal(json_object_get_int64(json_object_object_get(impi0, "sqn")), 32);
    assert_null(strstr(json_object_to_json_string(j2), K_HEX));
    v = json_object_array_get_idx(json_object_object_get(j2, "impus"), 0);
    assert_string_equal(json_object_get_string(json_object_object_get(v, "reg_state")),
                        "not_registered");
    assert_true(json_object_object_get_ex(j2, "registration", NULL));

    json_object_put(j1);
    json_object_put(j2);
    hss_subscriber_free(&s);
    hss_subscriber_free(&back);
    hss_store_close(st);
}

/* ---------- store ---------- */

static void test_lookup_case(void **state)
{
    hss_store *st = open_store("lookup.db");
    hss_subscriber s;
    char doc[512];

    simple_doc(doc, sizeof(doc), "bob", "bob@IMS.Lab", "SIP:bob@IMS.LAB");
    put_ok(st, doc, 1);
    /* Stored normalised. */
    assert_int_equal(hss_store_get(st, "bob", &s), HSS_STORE_OK);
    assert_string_equal(s.impus[0].identity, "sip:bob@ims.lab");
    assert_string_equal(s.impis[0].identity, "bob@ims.lab");
    hss_subscriber_free(&s);

    assert_int_equal(hss_store_find_by_impu(st, "sip:bob@ims.lab", &s), HSS_STORE_OK);
    assert_string_equal(s.id, "bob");
    hss_subscriber_free(&s);
    assert_int_equal(hss_store_find_by_impu(st, "sip:bob@Ims.Lab", &s), HSS_STORE_OK);
    hss_subscriber_free(&s);
    assert_int_equal(hss_store_find_by_impu(st, "sip:Bob@ims.lab", &s), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_find_by_impi(st, "bob@IMS.LAB", &s), HSS_STORE_OK);
    assert_string_equal(s.id, "bob");
    hss_subscriber_free(&s);
    assert_int_equal(hss_store_find_by_impi(st, "BOB@ims.lab", &s), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_find_by_impi(st, "sip:bob@ims.lab", &s), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_get(st, "nobody", &s), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_get(st, "BOB", &s), HSS_STORE_NOT_FOUND);   /* ids are exact */
    hss_store_close(st);
}

static void test_conflicts(void **state)
{
    hss_store *st = open_store("conflict.db");
    hss_subscriber s;
    char doc[512], err[256];

    simple_doc(doc, sizeof(doc), "bob", "bob@ims.lab", "sip:bob@ims.lab");
    put_ok(st, doc, 1);

    /* Same IMPU (host in other case) under another subscription. */
    simple_doc(doc, sizeof(doc), "carol", "carol@ims.lab", "sip:bob@IMS.lab");
    parse_ok(doc, &s);
    assert_int_equal(hss_store_put(st, &s, 1, err, sizeof(err)), HSS_STORE_CONFLICT);
    assert_string_equal(err, "impus[0]: sip:bob@ims.lab belongs to subscription bob");
    hss_subscriber_free(&s);

    simple_doc(doc, sizeof(doc), "carol", "bob@ims.LAB", "sip:carol@ims.lab");
    parse_ok(doc, &s);
    assert_int_equal(hss_store_put(st, &s, 0, err, sizeof(err)), HSS_STORE_CONFLICT);
    assert_string_equal(err, "impis[0]: bob@ims.lab belongs to subscription bob");
    hss_subscriber_free(&s);
    /* Nothing of the failed puts was written. */
    assert_int_equal(hss_store_get(st, "carol", &s), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_find_by_impu(st, "sip:carol@ims.lab", &s), HSS_STORE_NOT_FOUND);

    /* create_only on an existing id. */
    simple_doc(doc, sizeof(doc), "bob", "bob@ims.lab", "sip:bob@ims.lab");
    parse_ok(doc, &s);
    assert_int_equal(hss_store_put(st, &s, 1, err, sizeof(err)), HSS_STORE_CONFLICT);
    assert_string_equal(err, "id: subscription bob already exists");
    assert_int_equal(hss_store_put(st, &s, 0, err, sizeof(err)), HSS_STORE_OK);   /* replace */
    hss_subscriber_free(&s);

    /* Two identities equal after normalisation in a model not built by from_json. */
    simple_doc(doc, sizeof(doc), "dup", "dup@ims.lab", "sip:dup@ims.lab");
    parse_ok(doc, &s);
    s.impus = realloc(s.impus, 2 * sizeof(hss_impu));
    s.impus[1] = s.impus[0];
    s.impus[1].identity = strdup("sip:dup@IMS.LAB");
    s.impus[1].service_profile = strdup("default");
    s.impus[1].display_name = NULL;
    s.n_impus = 2;
    assert_int_equal(hss_store_put(st, &s, 1, err, sizeof(err)), HSS_STORE_CONFLICT);
    assert_string_equal(err, "impus[1]: sip:dup@ims.lab appears twice in this subscription");
    hss_subscriber_free(&s);
    assert_int_equal(hss_store_count(st), 1);
    hss_store_close(st);
}

static void test_replace_keeps_state(void **state)
{
    hss_store *st = open_store("replace.db");
    hss_subscriber s;
    uint64_t sqns[3];
    const char *reg[] = {"sip:alice@IMS.lab"};
    char doc[1024], err[256];

    put_ok(st, full_doc, 1);
    assert_int_equal(hss_store_advance_sqn(st, "alice@ims.lab", 3, sqns), HSS_STORE_OK);
    assert_int_equal(hss_store_set_reg_state(st, "alice", reg, 1, HSS_REGISTERED), HSS_STORE_OK);
    assert_int_equal(hss_store_set_scscf(st, "alice", "sip:scscf.ims.lab:6060", "scscf.ims.lab",
                                         "ims.lab"), HSS_STORE_OK);

    /* New document: sqn 0 again, one IMPU dropped, one added, display name changed. */
    snprintf(doc, sizeof(doc),
             "{\"id\":\"alice\",\"impis\":[{\"impi\":\"alice@ims.lab\",\"k\":\"" K_HEX "\","
             "\"opc\":\"" OPC_HEX "\",\"sqn\":0},{\"impi\":\"alice2@ims.lab\",\"password\":\"x\","
             "\"sqn\":5}],\"impus\":[{\"impu\":\"sip:alice@ims.lab\",\"display_name\":\"A.\"},"
             "{\"impu\":\"sip:new@ims.lab\"}]}");
    put_ok(st, doc, 0);
    assert_int_equal(hss_store_get(st, "alice", &s), HSS_STORE_OK);
    assert_int_equal(s.n_impis, 2);
    assert_int_equal(s.impis[0].sqn, sqns[2]);          /* kept: never goes back */
    assert_int_equal(s.impis[1].sqn, 5);
    assert_int_equal(s.impis[0].auth_schemes, HSS_AUTH_AKA);
    assert_int_equal(s.n_impus, 2);
    assert_int_equal(s.impus[0].reg_state, HSS_REGISTERED);
    assert_string_equal(s.impus[0].display_name, "A.");
    assert_int_equal(s.impus[1].reg_state, HSS_NOT_REGISTERED);
    assert_string_equal(s.scscf_name, "sip:scscf.ims.lab:6060");
    assert_string_equal(s.scscf_host, "scscf.ims.lab");
    assert_string_equal(s.scscf_realm, "ims.lab");
    assert_int_equal(s.n_profiles, 1);
    assert_null(s.ccf_primary);
    assert_int_equal(s.n_visited_networks, 0);
    hss_subscriber_free(&s);

    /* A larger given SQN wins. */
    snprintf(doc, sizeof(doc),
             "{\"id\":\"alice\",\"impis\":[{\"impi\":\"alice@ims.lab\",\"k\":\"" K_HEX "\","
             "\"opc\":\"" OPC_HEX "\",\"sqn\":100000}],\"impus\":[{\"impu\":\"sip:alice@ims.lab\"}]}");
    put_ok(st, doc, 0);
    assert_int_equal(hss_store_find_by_impi(st, "alice@ims.lab", &s), HSS_STORE_OK);
    assert_int_equal(s.impis[0].sqn, 100000);
    hss_subscriber_free(&s);

    /* Identities dropped by the replace are free for others. */
    simple_doc(doc, sizeof(doc), "other", "alice2@ims.lab", "tel:+15551234");
    put_ok(st, doc, 1);

    /* Volatile-state writers report unknown targets. */
    reg[0] = "sip:nobody@ims.lab";
    assert_int_equal(hss_store_set_reg_state(st, "alice", reg, 1, HSS_REGISTERED), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_set_scscf(st, "nobody", "sip:x", "x", "y"), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_set_scscf(st, "alice", NULL, "ignored", "ignored"), HSS_STORE_OK);
    assert_int_equal(hss_store_get(st, "alice", &s), HSS_STORE_OK);
    assert_null(s.scscf_name);
    assert_null(s.scscf_host);
    assert_null(s.scscf_realm);
    hss_subscriber_free(&s);
    (void)err;
    hss_store_close(st);
}

static int count_rows(const char *path, const char *table)
{
    sqlite3 *db;
    sqlite3_stmt *stmt;
    char sql[64];
    int n = -1;

    if (pg_base()) {
        char db[64];

        pg_dbname(db, sizeof(db), strrchr(path, '/') + 1);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
        return pg_sql(db, sql);
    }
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

static void test_delete_cascade(void **state)
{
    hss_store *st = open_store("delete.db");
    hss_subscriber s;
    char path[128], doc[512];
    static const char *const tables[] = {"imsu", "impi", "impu", "service_profile"};
    static const int before[] = {2, 3, 5, 3};

    db_path(path, sizeof(path), "delete.db");
    put_ok(st, full_doc, 1);
    simple_doc(doc, sizeof(doc), "bob", "bob@ims.lab", "sip:bob@ims.lab");
    put_ok(st, doc, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(count_rows(path, tables[i]), before[i]);

    assert_int_equal(hss_store_delete(st, "alice"), HSS_STORE_OK);
    assert_int_equal(hss_store_delete(st, "alice"), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_get(st, "alice", &s), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_find_by_impi(st, "alice@ims.lab", &s), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_find_by_impu(st, "tel:+15551234", &s), HSS_STORE_NOT_FOUND);
    /* Only bob's rows are left. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(count_rows(path, tables[i]), 1);
    /* The identities can be provisioned again. */
    simple_doc(doc, sizeof(doc), "alice3", "alice@ims.lab", "sip:alice@ims.lab");
    put_ok(st, doc, 1);
    hss_store_close(st);
}

static void test_list_count(void **state)
{
    hss_store *st = open_store("list.db");
    char doc[512], impi[32], impu[32], id[8];
    char **ids;
    size_t n;

    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "u%d", 4 - i);
        snprintf(impi, sizeof(impi), "u%d@ims.lab", i);
        snprintf(impu, sizeof(impu), "sip:u%d@ims.lab", i);
        simple_doc(doc, sizeof(doc), id, impi, impu);
        put_ok(st, doc, 1);
    }
    assert_int_equal(hss_store_count(st), 5);
    assert_int_equal(hss_store_list(st, NULL, 0, &ids, &n), HSS_STORE_OK);
    assert_int_equal(n, 5);
    assert_string_equal(ids[0], "u0");
    assert_string_equal(ids[4], "u4");
    hss_store_free_ids(ids, n);
    assert_int_equal(hss_store_list(st, "u1", 2, &ids, &n), HSS_STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "u2");
    assert_string_equal(ids[1], "u3");
    hss_store_free_ids(ids, n);
    assert_int_equal(hss_store_list(st, "u4", 10, &ids, &n), HSS_STORE_OK);
    assert_int_equal(n, 0);
    hss_store_free_ids(ids, n);
    hss_store_close(st);
}

static void test_sqn_durable(void **state)
{
    hss_store *st = open_store("sqn.db");
    hss_subscriber s;
    uint64_t sqns[5], one, prev;
    char doc[512];

    simple_doc(doc, sizeof(doc), "sq", "sq@ims.lab", "sip:sq@ims.lab");
    put_ok(st, doc, 1);
    assert_int_equal(hss_store_advance_sqn(st, "sq@IMS.lab", 5, sqns), HSS_STORE_OK);
    prev = 0;
    for (int i = 0; i < 5; i++) {
        assert_true(sqns[i] > prev);
        assert_int_equal(sqns[i], ims_sqn_next(prev));
        prev = sqns[i];
    }
    assert_int_equal(hss_store_advance_sqn(st, "nobody@ims.lab", 1, &one), HSS_STORE_NOT_FOUND);
    hss_store_close(st);

    /* Reopen: the next SQN continues after the last one handed out. */
    st = open_store("sqn.db");
    assert_int_equal(hss_store_advance_sqn(st, "sq@ims.lab", 1, &one), HSS_STORE_OK);
    assert_int_equal(one, ims_sqn_next(sqns[4]));

    /* Resync only moves upward. */
    assert_int_equal(hss_store_set_sqn(st, "sq@ims.lab", 3), HSS_STORE_OK);
    assert_int_equal(hss_store_get(st, "sq", &s), HSS_STORE_OK);
    assert_int_equal(s.impis[0].sqn, one);
    hss_subscriber_free(&s);
    assert_int_equal(hss_store_set_sqn(st, "sq@ims.lab", 0x10000), HSS_STORE_OK);
    assert_int_equal(hss_store_advance_sqn(st, "sq@ims.lab", 1, &one), HSS_STORE_OK);
    assert_int_equal(one, ims_sqn_next(0x10000));
    assert_int_equal(hss_store_set_sqn(st, "nobody@ims.lab", 5), HSS_STORE_NOT_FOUND);
    assert_int_equal(hss_store_set_sqn(st, "sq@ims.lab", IMS_SQN_MAX + 1), HSS_STORE_ERROR);
    hss_store_close(st);
}

#define THREADS 4
#define PER_THREAD 500

typedef struct {
    hss_store *st;
    uint64_t sqns[PER_THREAD];
    int failures;
} worker;

static void *sqn_worker(void *arg)
{
    worker *w = arg;

    for (int i = 0; i < PER_THREAD; i++)
        if (hss_store_advance_sqn(w->st, "mt@ims.lab", 1, &w->sqns[i]) != HSS_STORE_OK)
            w->failures++;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void test_sqn_threads(void **state)
{
    hss_store *st = open_store("mt.db");
    static worker w[THREADS];
    pthread_t t[THREADS];
    uint64_t *all = calloc(THREADS * PER_THREAD, sizeof(uint64_t));
    hss_subscriber s;
    char doc[512];

    assert_non_null(all);
    simple_doc(doc, sizeof(doc), "mt", "mt@ims.lab", "sip:mt@ims.lab");
    put_ok(st, doc, 1);
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].st = st;
        assert_int_equal(pthread_create(&t[i], NULL, sqn_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
        /* Each thread sees its own SQNs strictly increasing. */
        for (int j = 1; j < PER_THREAD; j++)
            assert_true(w[i].sqns[j] > w[i].sqns[j - 1]);
        memcpy(all + i * PER_THREAD, w[i].sqns, sizeof(w[i].sqns));
    }
    qsort(all, THREADS * PER_THREAD, sizeof(uint64_t), cmp_u64);
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        assert_true(all[i] > all[i - 1]);               /* 2000 distinct */
    assert_int_equal(hss_store_get(st, "mt", &s), HSS_STORE_OK);
    assert_int_equal(s.impis[0].sqn, all[THREADS * PER_THREAD - 1]);
    hss_subscriber_free(&s);
    free(all);
    hss_store_close(st);
}

static void test_userdata_irs(void **state)
{
    hss_subscriber s;
    ims_subscription ud;
    const ims_service_profile *p;

    /* full_doc: IRS 1 = sip:alice (default), tel:+15551234 (gold); IRS 2 = sip:alice-work
     * (barred, default); IRS 3 = the PSI. */
    parse_ok(full_doc, &s);
    assert_int_equal(hss_subscriber_userdata(&s, "alice@ims.lab", "tel:+15551234", &ud), 0);
    assert_string_equal(ud.private_id, "alice@ims.lab");
    assert_int_equal(ud.n_profiles, 2);
    /* The requested IMPU's profile comes first. */
    p = &ud.profiles[0];
    assert_int_equal(p->n_ids, 1);
    assert_string_equal(p->ids[0].identity, "tel:+15551234");
    assert_int_equal(p->subscribed_media_profile_id, 7);
    assert_int_equal(p->n_ifcs, 1);
    assert_int_equal(p->ifcs[0].profile_part_indicator, 1);
    p = &ud.profiles[1];
    assert_int_equal(p->n_ids, 1);
    assert_string_equal(p->ids[0].identity, "sip:alice@ims.lab");
    assert_string_equal(p->ids[0].display_name, "Alice");
    assert_int_equal(p->subscribed_media_profile_id, -1);
    assert_int_equal(p->n_ifcs, 2);
    /* Deep copies, not aliases of the subscriber's iFC. */
    assert_ptr_not_equal(p->ifcs[0].as.server_name, s.profiles[0].ifcs[0].as.server_name);
    assert_string_equal(p->ifcs[0].as.server_name, "sip:as.ims.lab:5070");
    assert_string_equal(p->ifcs[0].tp.spts[2].content, ".*video.*");
    assert_int_equal(p->ifcs[0].as.default_handling, IMS_DEFAULT_HANDLING_SESSION_TERMINATED);
    ims_subscription_free(&ud);

    assert_int_equal(hss_subscriber_userdata(&s, "alice@ims.lab", "SIP:alice-work@ims.lab", &ud), 0);
    assert_int_equal(ud.n_profiles, 1);
    assert_int_equal(ud.profiles[0].n_ids, 1);
    assert_true(ud.profiles[0].ids[0].barred);
    ims_subscription_free(&ud);

    assert_int_equal(hss_subscriber_userdata(&s, "alice@ims.lab", "sip:conf@ims.lab", &ud), 0);
    assert_int_equal(ud.profiles[0].ids[0].identity_type, IMS_IDENTITY_TYPE_DISTINCT_PSI);
    ims_subscription_free(&ud);

    assert_int_equal(hss_subscriber_userdata(&s, "alice@ims.lab", "sip:nobody@ims.lab", &ud), -1);
    hss_subscriber_free(&s);

    /* Two IRS, two profiles, several IMPUs per profile; the order follows the document. */
    parse_ok("{\"id\":\"g\",\"impis\":[{\"impi\":\"g@x\",\"password\":\"p\"}],"
             "\"impus\":[{\"impu\":\"sip:a@x\",\"service_profile\":\"p1\"},"
             "{\"impu\":\"sip:b@x\",\"service_profile\":\"p2\"},"
             "{\"impu\":\"sip:c@x\",\"service_profile\":\"p1\",\"irs\":2},"
             "{\"impu\":\"sip:d@x\",\"service_profile\":\"p2\",\"barred\":true},"
             "{\"impu\":\"sip:e@x\",\"service_profile\":\"p1\"}],"
             "\"service_profiles\":[{\"name\":\"p1\"},{\"name\":\"p2\",\"ifc\":[{\"priority\":3,"
             "\"application_server\":{\"server_name\":\"sip:as\"}}]}]}", &s);
    assert_int_equal(hss_subscriber_userdata(&s, NULL, "sip:b@x", &ud), 0);
    assert_string_equal(ud.private_id, "g@x");           /* first IMPI stands in */
    assert_int_equal(ud.n_profiles, 2);
    assert_int_equal(ud.profiles[0].n_ids, 2);
    assert_string_equal(ud.profiles[0].ids[0].identity, "sip:b@x");
    assert_string_equal(ud.profiles[0].ids[1].identity, "sip:d@x");
    assert_true(ud.profiles[0].ids[1].barred);
    assert_int_equal(ud.profiles[0].n_ifcs, 1);
    assert_int_equal(ud.profiles[1].n_ids, 2);
    assert_string_equal(ud.profiles[1].ids[0].identity, "sip:a@x");
    assert_string_equal(ud.profiles[1].ids[1].identity, "sip:e@x");
    assert_int_equal(ud.profiles[1].n_ifcs, 0);
    ims_subscription_free(&ud);
    assert_int_equal(hss_subscriber_userdata(&s, "g@x", "sip:c@x", &ud), 0);
    assert_int_equal(ud.n_profiles, 1);
    assert_int_equal(ud.profiles[0].n_ids, 1);
    ims_subscription_free(&ud);
    hss_subscriber_free(&s);
}

/* PostgreSQL: a bad conninfo and an unreachable server say so at open; somebody else's tables
 * and a newer schema are refused; a fresh database gets the schema once (two opens). */
static void test_open_errors_pg(void)
{
    char ci[256], err[256];
    hss_store *st, *st2;

    err[0] = '\0';
    assert_null(hss_store_open_pg("host=127.0.0.1 bogus=1", err, sizeof(err)));
    assert_non_null(strstr(err, "bogus"));
    err[0] = '\0';
    /* port 1: nothing listens (root-only port, never a test server) */
    assert_null(hss_store_open_pg("host=127.0.0.1 port=1 dbname=x user=postgres", err, sizeof(err)));
    assert_non_null(strstr(err, "cannot connect"));
    assert_non_null(strstr(err, "port=1"));
    err[0] = '\0';
    snprintf(ci, sizeof(ci), "%s dbname=no_such_db", pg_base());
    assert_null(hss_store_open_pg(ci, err, sizeof(err)));
    assert_non_null(strstr(err, "no_such_db"));
    assert_null(strstr(err, "password"));

    pg_fresh("foreign.db");
    pg_sql("t_foreign", "CREATE TABLE t (x int)");
    pg_conninfo(ci, sizeof(ci), "foreign.db");
    err[0] = '\0';
    assert_null(hss_store_open_pg(ci, err, sizeof(err)));
    assert_non_null(strstr(err, "not an HSS database"));

    st = open_store("newer.db");
    hss_store_close(st);
    pg_sql("t_newer", "UPDATE hss_schema SET version = 99");
    pg_conninfo(ci, sizeof(ci), "newer.db");
    err[0] = '\0';
    assert_null(hss_store_open_pg(ci, err, sizeof(err)));
    assert_non_null(strstr(err, "schema version 99 is newer"));

    /* Two stores on one fresh database: one schema, both usable; ping answers. */
    st = open_store("fresh.db");
    st2 = open_store("fresh.db");
    assert_int_equal(pg_sql("t_fresh", "SELECT count(*) FROM hss_schema"), 1);
    assert_int_equal(hss_store_ping(st2, err, sizeof(err)), 0);
    hss_store_close(st);
    hss_store_close(st2);
}

static void test_open_errors(void **state)
{
    char path[128], err[256];
    FILE *f;
    sqlite3 *db;
    hss_store *st;

    if (pg_base()) {
        test_open_errors_pg();
        return;
    }
    db_path(path, sizeof(path), "notadb.db");
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100; i++)
        fputs("this is a text file, not an SQLite database\n", f);
    fclose(f);
    err[0] = '\0';
    assert_null(hss_store_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "not a database"));

    err[0] = '\0';
    assert_null(hss_store_open("/nonexistent-dir/x/hss.db", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent-dir/x/hss.db"));

    /* A database written by a newer HSS. */
    db_path(path, sizeof(path), "newer.db");
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    err[0] = '\0';
    assert_null(hss_store_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "schema version 99 is newer"));

    /* Somebody else's database. */
    db_path(path, sizeof(path), "foreign.db");
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    err[0] = '\0';
    assert_null(hss_store_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "not an HSS database"));

    /* A fresh file gets the current schema, in WAL mode; reopening it is fine. */
    db_path(path, sizeof(path), "fresh.db");
    st = hss_store_open(path, err, sizeof(err));
    assert_non_null(st);
    hss_store_close(st);
    st = hss_store_open(path, err, sizeof(err));
    assert_non_null(st);
    hss_store_close(st);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    {
        sqlite3_stmt *stmt;

        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
        sqlite3_finalize(stmt);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(stmt, 0), 1);
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_lookup_case),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_replace_keeps_state),
        cmocka_unit_test(test_delete_cascade),
        cmocka_unit_test(test_list_count),
        cmocka_unit_test(test_sqn_durable),
        cmocka_unit_test(test_sqn_threads),
        cmocka_unit_test(test_userdata_irs),
        cmocka_unit_test(test_open_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
