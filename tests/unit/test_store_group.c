/*
 * test_store_group: group commit of the HSS store's writes on SQLite (hss/hss_store_group.c).
 *
 * Concurrent writers share commits, and still each one returns only once its write is durable:
 * - THREADS threads register their own subscription again and again (each write changes the
 *   assigned S-CSCF name), all released together; every write succeeds, the commit count is
 *   below the write count (writes were grouped: the point of the change) and every write was
 *   committed (hss_store_committed_writes_total), and after a reopen each subscription holds the
 *   last name its thread wrote;
 * - a write that fails inside a group (unknown subscription) fails alone: the others committed
 *   with it are all there after a reopen;
 * - SQN reservations made inside groups stay distinct and increasing across threads and a
 *   reopen (with test_store's test_sqn_threads and test_sqn_durable).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss_store.h"
#include "hss_subscriber.h"
#include "ims_aka.h"
#include "ims_log.h"
#include "hss_test_data.h"
#include "metrics_test_util.h"

#define THREADS 8
#define WRITES 150

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_store_group.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    ims_log_set_level(IMS_LOG_ERROR);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static hss_store *open_db(const char *name)
{
    char path[128], err[256] = "";

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    hss_store *st = hss_store_open(path, err, sizeof(err));
    if (!st)
        fail_msg("open %s: %s", path, err);
    return st;
}

static void add_subscription(hss_store *st, int i)
{
    char doc[512], err[256] = "";
    hss_subscriber s;

    snprintf(doc, sizeof(doc),
             "{\"id\":\"g%d\",\"impis\":[{\"impi\":\"g%d@ims.lab\",\"k\":\"" K_HEX "\",\"op\":\"" OPC_HEX
             "\"}],\"impus\":[{\"impu\":\"sip:g%d@ims.lab\"}]}", i, i, i);
    parse_ok(doc, &s);
    if (hss_store_put(st, &s, 1, err, sizeof(err)) != HSS_STORE_OK)
        fail_msg("put g%d: %s", i, err);
    hss_subscriber_free(&s);
}

/* A fresh database with subscriptions g0 .. g<THREADS-1>, one per writer. */
static hss_store *open_with_subscriptions(const char *name)
{
    hss_store *st = open_db(name);

    for (int i = 0; i < THREADS; i++)
        add_subscription(st, i);
    return st;
}

typedef struct {
    hss_store *st;
    pthread_barrier_t *start;
    int index;
    int ok, failed, unknown_refused;
    bool with_unknown;       /* every third write goes to a subscription that does not exist */
} writer;

static void *write_loop(void *arg)
{
    writer *w = arg;
    char id[16], impu[32], name[64];

    snprintf(id, sizeof(id), "g%d", w->index);
    snprintf(impu, sizeof(impu), "sip:g%d@ims.lab", w->index);
    const char *impus[] = {impu};
    pthread_barrier_wait(w->start);
    for (int j = 0; j < WRITES; j++) {
        if (w->with_unknown && j % 3 == 2) {
            const char *ghost[] = {"sip:nobody@ims.lab"};
            int rc = hss_store_register(w->st, "nobody", "sip:x@ims.lab", "x", "ims.lab", ghost, 1,
                                        HSS_REGISTERED);
            if (rc == HSS_STORE_NOT_FOUND)
                w->unknown_refused++;
            else
                w->failed++;
            continue;
        }
        snprintf(name, sizeof(name), "sip:scscf-%d-%d.ims.lab", w->index, j);
        if (hss_store_register(w->st, id, name, "scscf.ims.lab", "ims.lab", impus, 1, HSS_REGISTERED) ==
            HSS_STORE_OK)
            w->ok++;
        else
            w->failed++;
    }
    return NULL;
}

/* Runs THREADS writers on st; returns the successful writes. */
static int run_writers(hss_store *st, writer *w, bool with_unknown)
{
    pthread_t t[THREADS];
    pthread_barrier_t start;
    int ok = 0;

    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (writer){.st = st, .start = &start, .index = i, .with_unknown = with_unknown};
        assert_int_equal(pthread_create(&t[i], NULL, write_loop, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failed, 0);
        ok += w[i].ok;
    }
    pthread_barrier_destroy(&start);
    return ok;
}

/* After a reopen: subscription gi holds the last S-CSCF name its writer wrote. */
static void assert_last_names(const char *db, int last_j)
{
    hss_store *st = open_db(db);
    char want[64], id[16];
    hss_subscriber s;

    for (int i = 0; i < THREADS; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        snprintf(want, sizeof(want), "sip:scscf-%d-%d.ims.lab", i, last_j);
        assert_int_equal(hss_store_get(st, id, &s), HSS_STORE_OK);
        assert_non_null(s.scscf_name);
        assert_string_equal(s.scscf_name, want);
        assert_int_equal(s.impus[0].reg_state, HSS_REGISTERED);
        hss_subscriber_free(&s);
    }
    hss_store_close(st);
}

static void test_concurrent_writes_share_commits(void **state)
{
    (void)state;
    hss_store *st = open_with_subscriptions("group.db");
    writer w[THREADS];
    long long commits0 = metric_value("hss_store_commits_total");
    long long writes0 = metric_value("hss_store_committed_writes_total");
    long long timed0 = metric_value("hss_store_commit_seconds_count");
    int ok = run_writers(st, w, false);
    long long commits = metric_value("hss_store_commits_total") - (commits0 < 0 ? 0 : commits0);
    long long writes = metric_value("hss_store_committed_writes_total") - (writes0 < 0 ? 0 : writes0);
    long long timed = metric_value("hss_store_commit_seconds_count") - (timed0 < 0 ? 0 : timed0);
    hss_store_close(st);

    assert_int_equal(ok, THREADS * WRITES);
    assert_int_equal(writes, ok);           /* every write was committed, once */
    print_message("%d writes from %d threads in %lld commits\n", ok, THREADS, commits);
    assert_true(commits > 0);
    assert_true(commits < writes);          /* grouped: fewer fsyncs than writes */
    assert_int_equal(timed, commits);       /* each COMMIT's time is in the histogram */
    assert_last_names("group.db", WRITES - 1);
}

static void test_failed_write_fails_alone(void **state)
{
    (void)state;
    hss_store *st = open_with_subscriptions("fail.db");
    writer w[THREADS];
    int ok = run_writers(st, w, true);
    int refused = 0;
    for (int i = 0; i < THREADS; i++)
        refused += w[i].unknown_refused;
    hss_store_close(st);

    assert_int_equal(refused, THREADS * (WRITES / 3));
    assert_int_equal(ok, THREADS * (WRITES - WRITES / 3));
    /* each writer's last real write: j = WRITES - 1 unless that one went to the ghost */
    assert_last_names("fail.db", WRITES % 3 == 0 ? WRITES - 2 : WRITES - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writes_share_commits),
        cmocka_unit_test(test_failed_write_fails_alone),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
