/*
 * test_icscf_scscf: S-CSCF selection of the I-CSCF (icscf/icscf_scscf.c, TS 29.228 §6.7).
 *
 * Covers: configuration order (icscf.selection: order), the rendezvous spread by public identity
 * (icscf.selection: hash) — both S-CSCFs get users, the same user always gets the same one, an
 * added S-CSCF takes users only for itself, the failed S-CSCF is excluded on re-selection — and
 * that capabilities still rank before the spread. ims_hash64 is pinned to fixed values, which
 * tests/system/test_scscf_pair_redis.py recomputes in Python to predict where users land.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "icscf_context.h"
#include "ims_map.h"

#define A "sip:scscf-a.ims.lab:6060"
#define B "sip:scscf-b.ims.lab:6060"
#define C "sip:scscf-c.ims.lab:6060"

static void pool_entry(icscf_scscf *p, const char *name, uint32_t cap)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->norm, sizeof(p->norm), "%s", name);
    if (cap)
        p->caps[p->n_caps++] = cap;
}

static icscf_caps named(const char *a, const char *b)
{
    icscf_caps c;
    memset(&c, 0, sizeof(c));
    c.present = true;
    snprintf(c.names[c.n_names++], ICSCF_URI_MAX, "%s", a);
    if (b)
        snprintf(c.names[c.n_names++], ICSCF_URI_MAX, "%s", b);
    return c;
}

static void test_hash_pinned(void **state)
{
    (void)state;
    assert_true(ims_hash64("sip:alice@ims.lab", IMS_HASH64_SEED) == 0xa513e7a82f47085eULL);
    assert_true(ims_hash64(A, ims_hash64("sip:alice@ims.lab", IMS_HASH64_SEED)) == 0x9076d6fc5fb051d2ULL);
}

static void test_order_takes_first(void **state)
{
    (void)state;
    icscf_scscf pool[2];
    pool_entry(&pool[0], A, 0);
    pool_entry(&pool[1], B, 0);
    icscf_caps caps = named(A, B);
    char out[ICSCF_URI_MAX], user[64];
    for (int i = 0; i < 50; i++) {
        snprintf(user, sizeof(user), "sip:u%d@ims.lab", i);
        assert_int_equal(icscf_scscf_select(pool, 2, &caps, NULL, NULL, out, sizeof(out)), 0);
        assert_string_equal(out, A);
    }
    assert_int_equal(icscf_scscf_select(pool, 2, &caps, A, NULL, out, sizeof(out)), 0);
    assert_string_equal(out, B);
}

static void test_hash_spreads_and_is_stable(void **state)
{
    (void)state;
    icscf_scscf pool[3];
    pool_entry(&pool[0], A, 0);
    pool_entry(&pool[1], B, 0);
    pool_entry(&pool[2], C, 0);
    icscf_caps caps = named(A, B);
    char out[ICSCF_URI_MAX], again[ICSCF_URI_MAX], three[ICSCF_URI_MAX], user[64];
    int on_a = 0, on_b = 0, moved_to_c = 0;
    for (int i = 0; i < 400; i++) {
        snprintf(user, sizeof(user), "sip:u%d@ims.lab", i);
        assert_int_equal(icscf_scscf_select(pool, 2, &caps, NULL, user, out, sizeof(out)), 0);
        assert_int_equal(icscf_scscf_select(pool, 2, &caps, NULL, user, again, sizeof(again)), 0);
        assert_string_equal(out, again);                  /* the same user, the same S-CSCF */
        on_a += strcmp(out, A) == 0;
        on_b += strcmp(out, B) == 0;
        /* re-selection never gives back the failed one */
        assert_int_equal(icscf_scscf_select(pool, 2, &caps, out, user, again, sizeof(again)), 0);
        assert_string_not_equal(out, again);
        /* a third S-CSCF (named by the HSS too): a user moves only to it, never between A and B */
        icscf_caps caps3 = named(A, B);
        snprintf(caps3.names[caps3.n_names++], ICSCF_URI_MAX, "%s", C);
        assert_int_equal(icscf_scscf_select(pool, 3, &caps3, NULL, user, three, sizeof(three)), 0);
        if (strcmp(three, out) != 0) {
            assert_string_equal(three, C);
            moved_to_c++;
        }
    }
    assert_int_equal(on_a + on_b, 400);
    assert_true(on_a > 140 && on_b > 140);                /* about half each */
    assert_true(moved_to_c > 90 && moved_to_c < 180);     /* about a third */
}

static void test_capabilities_before_spread(void **state)
{
    (void)state;
    icscf_scscf pool[2];
    pool_entry(&pool[0], A, 0);
    pool_entry(&pool[1], B, 7);
    icscf_caps caps = named(A, B);
    caps.optional[caps.n_optional++] = 7;                 /* B has the optional capability */
    char out[ICSCF_URI_MAX], user[64];
    for (int i = 0; i < 50; i++) {
        snprintf(user, sizeof(user), "sip:u%d@ims.lab", i);
        assert_int_equal(icscf_scscf_select(pool, 2, &caps, NULL, user, out, sizeof(out)), 0);
        assert_string_equal(out, B);
    }
    caps.n_optional = 0;
    caps.mandatory[caps.n_mandatory++] = 7;               /* only B qualifies from the pool */
    caps.n_names = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(user, sizeof(user), "sip:u%d@ims.lab", i);
        assert_int_equal(icscf_scscf_select(pool, 2, &caps, NULL, user, out, sizeof(out)), 0);
        assert_string_equal(out, B);
    }
    assert_int_equal(icscf_scscf_select(pool, 2, &caps, B, "sip:u1@ims.lab", out, sizeof(out)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_pinned),
        cmocka_unit_test(test_order_takes_first),
        cmocka_unit_test(test_hash_spreads_and_is_stable),
        cmocka_unit_test(test_capabilities_before_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
