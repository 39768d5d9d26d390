/*
 * test_log: the per-kind rate limit of warnings a peer can trigger at will (ims_log_allow): one
 * line per second, and the next line learns how many were held back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "ims_log.h"

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void test_one_line_per_second(void **state)
{
    (void)state;
    ims_log_limit l = { 0 };
    unsigned long held = 99;
    assert_true(ims_log_allow(&l, &held));
    assert_int_equal(held, 0);
    /* a burst within one second: the first line of that second passes, the others are held */
    int passed = 0, tries = 0;
    while (passed == 0 && tries++ < 3) {
        sleep_ms(1100);                        /* a new second */
        assert_true(ims_log_allow(&l, NULL));
        passed = 1;
        for (int i = 0; i < 50; i++)
            if (ims_log_allow(&l, NULL))
                passed = 0;                    /* the second changed during the burst: again */
    }
    assert_int_equal(passed, 1);
    sleep_ms(1100);
    held = 0;
    assert_true(ims_log_allow(&l, &held));
    assert_int_equal(held, 50);
    /* independent kinds do not share a limit */
    ims_log_limit other = { 0 };
    assert_true(ims_log_allow(&other, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_line_per_second),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
