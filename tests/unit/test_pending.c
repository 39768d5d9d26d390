/*
 * test_pending: the pending-transaction table (common/ims_pending.c) with hand-driven timers:
 * keys, O(1) lookup and release, release of an unknown key reported, deadlines answering through
 * the cleanup, the cleanup at shutdown (also when it releases other records), many records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_timer.h"
#include "ims_pending.h"

typedef struct {
    int answered;                    /* status sent by the cleanup, 0: none */
    int cleanups;
    ims_pending_reason reason;
    uint64_t key;
} txn;

typedef struct {
    ims_pending *p;
    int calls;
    uint64_t release_other;          /* the cleanup releases this key too (0: none) */
    int release_other_rc;
} table_ctx;

static void cleanup(void *arg, uint64_t key, void *rec, ims_pending_reason reason)
{
    table_ctx *c = arg;
    txn *t = rec;
    c->calls++;
    t->cleanups++;
    t->reason = reason;
    t->key = key;
    t->answered = reason == IMS_PENDING_SHUTDOWN ? 503 : 408;
    /* the record is out of the table already */
    assert_null(ims_pending_get(c->p, key));
    if (c->release_other) {
        c->release_other_rc = ims_pending_release(c->p, c->release_other, NULL);
        c->release_other = 0;
    }
}

static int setup(void **state)
{
    (void)state;
    fake_timer_reset();
    return 0;
}

static void test_add_get_release(void **state)
{
    (void)state;
    table_ctx c = { 0 };
    c.p = ims_pending_new("test", &fake_timer_ops, cleanup, &c);
    assert_non_null(c.p);
    txn a = { 0 }, b = { 0 };
    uint64_t ka = ims_pending_add(c.p, &a, 0);
    uint64_t kb = ims_pending_add(c.p, &b, 0);
    assert_true(ka != 0 && kb != 0 && ka != kb);
    assert_int_equal(ims_pending_count(c.p), 2);
    assert_ptr_equal(ims_pending_get(c.p, ka), &a);
    assert_ptr_equal(ims_pending_get(c.p, ims_pending_key(ims_pending_arg(kb))), &b);
    assert_null(ims_pending_get(c.p, 0));
    assert_null(ims_pending_get(c.p, kb + 100));
    assert_int_equal(ims_pending_add(c.p, NULL, 0), 0);   /* no record, no key */

    void *rec = NULL;
    assert_int_equal(ims_pending_release(c.p, ka, &rec), 0);
    assert_ptr_equal(rec, &a);
    assert_int_equal(ims_pending_count(c.p), 1);
    assert_null(ims_pending_get(c.p, ka));
    /* releasing it again (a late response), or a key never given, is an error the caller sees */
    rec = &c;
    assert_int_equal(ims_pending_release(c.p, ka, &rec), -1);
    assert_null(rec);
    assert_int_equal(ims_pending_release(c.p, 0, NULL), -1);
    assert_int_equal(ims_pending_release(NULL, kb, NULL), -1);
    assert_int_equal(c.calls, 0);   /* release never runs the cleanup */

    /* a new key is never an old one */
    txn d = { 0 };
    uint64_t kd = ims_pending_add(c.p, &d, 0);
    assert_true(kd != ka && kd != kb);

    ims_pending_free(c.p);   /* b and d still pending: answered by the cleanup */
    assert_int_equal(c.calls, 2);
    assert_int_equal(b.cleanups, 1);
    assert_int_equal(b.reason, IMS_PENDING_SHUTDOWN);
    assert_int_equal(b.answered, 503);
    assert_int_equal(b.key, kb);
    assert_int_equal(d.cleanups, 1);
    assert_int_equal(a.cleanups, 0);
    ims_pending_free(NULL);
}

static void test_deadline(void **state)
{
    (void)state;
    table_ctx c = { 0 };
    c.p = ims_pending_new("test", &fake_timer_ops, cleanup, &c);
    txn a = { 0 }, b = { 0 }, n = { 0 };
    uint64_t ka = ims_pending_add(c.p, &a, 1000);
    uint64_t kb = ims_pending_add(c.p, &b, 2000);
    ims_pending_add(c.p, &n, 0);   /* no deadline */
    assert_int_equal(fake_timer_active(), 2);
    fake_timer_advance(999);
    assert_int_equal(c.calls, 0);
    fake_timer_advance(1);
    assert_int_equal(a.cleanups, 1);
    assert_int_equal(a.reason, IMS_PENDING_DEADLINE);
    assert_int_equal(a.answered, 408);
    assert_null(ims_pending_get(c.p, ka));
    assert_int_equal(ims_pending_release(c.p, ka, NULL), -1);   /* the late completion */

    /* released before its deadline: the deadline is cancelled, no cleanup */
    assert_int_equal(ims_pending_release(c.p, kb, NULL), 0);
    assert_int_equal(fake_timer_active(), 0);
    fake_timer_advance(5000);
    assert_int_equal(b.cleanups, 0);
    assert_int_equal(ims_pending_count(c.p), 1);
    ims_pending_free(c.p);
    assert_int_equal(n.cleanups, 1);
    assert_int_equal(c.calls, 2);
}

static void test_deadline_timer_failure(void **state)
{
    (void)state;
    table_ctx c = { 0 };
    c.p = ims_pending_new("test", &fake_timer_ops, cleanup, &c);
    txn a = { 0 };
    fake_timer_fail = true;   /* a record that could never time out is refused */
    assert_int_equal(ims_pending_add(c.p, &a, 1000), 0);
    assert_int_equal(ims_pending_count(c.p), 0);
    ims_pending_free(c.p);
    assert_int_equal(c.calls, 0);
}

static void test_shutdown_cleanup_releases_others(void **state)
{
    (void)state;
    table_ctx c = { 0 };
    c.p = ims_pending_new("test", &fake_timer_ops, cleanup, &c);
    txn t[3] = { { 0 } };
    uint64_t k[3];
    for (int i = 0; i < 3; i++)
        k[i] = ims_pending_add(c.p, &t[i], 60000);
    /* the first cleanup (newest first) releases the oldest: it must not be cleaned up too */
    c.release_other = k[0];
    ims_pending_free(c.p);
    assert_int_equal(c.release_other_rc, 0);
    assert_int_equal(c.calls, 2);
    assert_int_equal(t[0].cleanups, 0);
    assert_int_equal(t[1].cleanups, 1);
    assert_int_equal(t[2].cleanups, 1);
    assert_int_equal(fake_timer_active(), 0);
}

static void test_many(void **state)
{
    (void)state;
    table_ctx c = { 0 };
    c.p = ims_pending_new("test", &fake_timer_ops, cleanup, &c);
    enum { N = 20000 };
    txn *t = calloc(N, sizeof(*t));
    uint64_t *k = calloc(N, sizeof(*k));
    assert_non_null(t);
    assert_non_null(k);
    for (int i = 0; i < N; i++)
        assert_int_not_equal(k[i] = ims_pending_add(c.p, &t[i], 0), 0);
    for (int i = 0; i < N; i += 2)
        assert_int_equal(ims_pending_release(c.p, k[i], NULL), 0);
    assert_int_equal(ims_pending_count(c.p), N / 2);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(ims_pending_get(c.p, k[i]), i % 2 ? &t[i] : NULL);
    ims_pending_free(c.p);
    assert_int_equal(c.calls, N / 2);
    free(t);
    free(k);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ims_timer_ops none = { 0 };
    assert_null(ims_pending_new("x", &none, cleanup, NULL));
    assert_null(ims_pending_new("x", &fake_timer_ops, NULL, NULL));   /* nobody would answer */
    assert_int_equal(ims_pending_add(NULL, &none, 0), 0);
    assert_int_equal(ims_pending_count(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_add_get_release, setup),
        cmocka_unit_test_setup(test_deadline, setup),
        cmocka_unit_test_setup(test_deadline_timer_failure, setup),
        cmocka_unit_test_setup(test_shutdown_cleanup_releases_others, setup),
        cmocka_unit_test_setup(test_many, setup),
        cmocka_unit_test_setup(test_bad_arguments, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
