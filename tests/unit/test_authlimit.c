/*
 * Unit tests of common/ims_authlimit (failed-authentication counters with a lockout): the
 * window, the lockout and its end, keys kept apart, the "off" setting and the entry bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ims_authlimit.h"

static void test_locks_after_max_failures(void **state)
{
    (void)state;
    ims_authlimit *l = ims_authlimit_new(3, 60, 30, 0);
    assert_non_null(l);
    assert_false(ims_authlimit_fail(l, "alice@ims.lab", 100));
    assert_false(ims_authlimit_fail(l, "alice@ims.lab", 101));
    assert_int_equal(ims_authlimit_failures(l, "alice@ims.lab", 101), 2);
    assert_int_equal(ims_authlimit_locked(l, "alice@ims.lab", 101), 0);
    assert_true(ims_authlimit_fail(l, "alice@ims.lab", 102));          /* third: locked */
    assert_int_equal(ims_authlimit_locked(l, "alice@ims.lab", 102), 30);
    assert_int_equal(ims_authlimit_locked(l, "alice@ims.lab", 131), 1);
    assert_false(ims_authlimit_fail(l, "alice@ims.lab", 110));         /* no extension while locked */
    assert_int_equal(ims_authlimit_locked(l, "alice@ims.lab", 110), 22);
    assert_int_equal(ims_authlimit_locked(l, "bob@ims.lab", 110), 0);  /* other keys are free */
    assert_int_equal(ims_authlimit_locked(l, "alice@ims.lab", 132), 0); /* lock over */
    assert_int_equal(ims_authlimit_failures(l, "alice@ims.lab", 132), 0);
    assert_false(ims_authlimit_fail(l, "alice@ims.lab", 133));         /* counting starts again */
    ims_authlimit_free(l);
}

static void test_window_restarts(void **state)
{
    (void)state;
    ims_authlimit *l = ims_authlimit_new(3, 10, 30, 0);
    assert_false(ims_authlimit_fail(l, "k", 0));
    assert_false(ims_authlimit_fail(l, "k", 9));
    assert_false(ims_authlimit_fail(l, "k", 10));   /* window over: this is the first of a new one */
    assert_int_equal(ims_authlimit_failures(l, "k", 10), 1);
    assert_false(ims_authlimit_fail(l, "k", 11));
    assert_true(ims_authlimit_fail(l, "k", 12));
    ims_authlimit_free(l);
}

static void test_off_and_sweep(void **state)
{
    (void)state;
    ims_authlimit *off = ims_authlimit_new(0, 10, 30, 0);
    for (int i = 0; i < 100; i++)
        assert_false(ims_authlimit_fail(off, "k", i));
    assert_int_equal(ims_authlimit_locked(off, "k", 100), 0);
    assert_int_equal(ims_authlimit_count(off), 0);
    ims_authlimit_free(off);

    ims_authlimit *l = ims_authlimit_new(2, 10, 5, 0);
    ims_authlimit_fail(l, "a", 0);
    ims_authlimit_fail(l, "b", 0);
    ims_authlimit_fail(l, "b", 1);                  /* b locked until 6, window until 16 */
    assert_int_equal(ims_authlimit_count(l), 2);
    ims_authlimit_sweep(l, 10);                     /* a idle; b's next window still runs */
    assert_int_equal(ims_authlimit_count(l), 1);
    ims_authlimit_sweep(l, 16);
    assert_int_equal(ims_authlimit_count(l), 0);
    ims_authlimit_free(l);
    ims_authlimit_free(NULL);
}

static void test_bounded(void **state)
{
    (void)state;
    ims_authlimit *l = ims_authlimit_new(1, 100, 100, 50);
    char key[32];
    for (int i = 0; i < 80; i++) {
        snprintf(key, sizeof(key), "10.0.0.%d", i);
        bool locked = ims_authlimit_fail(l, key, 0);
        assert_true(locked == (i < 50));            /* full of live entries: new keys untracked */
    }
    assert_int_equal(ims_authlimit_count(l), 50);
    assert_true(ims_authlimit_fail(l, "10.0.0.99", 300));   /* everything idle by then: swept */
    assert_int_equal(ims_authlimit_count(l), 1);
    ims_authlimit_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locks_after_max_failures),
        cmocka_unit_test(test_window_restarts),
        cmocka_unit_test(test_off_and_sweep),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
