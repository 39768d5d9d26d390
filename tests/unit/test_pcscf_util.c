/*
 * Unit tests for pcscf_util's list splitting: P-Associated-URI values (RFC 7315 §4.1), name-addr
 * and addr-spec forms, quoted display names holding commas, '<' and escaped quotes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pcscf_util.h"

typedef struct {
    char got[8][128];
    int n;
} collected;

static int collect(void *arg, const char *value)
{
    collected *c = arg;
    if (c->n < 8)
        snprintf(c->got[c->n++], sizeof(c->got[0]), "%s", value);
    return 0;
}

static void expect_split(const char *list, int n, const char *a, const char *b, const char *c3)
{
    collected c = { .n = 0 };
    int rv = pcscf_split_uris(list, collect, &c);
    const char *want[3] = { a, b, c3 };
    if (c.n != n)
        fail_msg("'%s': %d URIs, wanted %d (rv %d)", list, c.n, n, rv);
    for (int i = 0; i < n && i < 3; i++)
        if (strcmp(c.got[i], want[i]))
            fail_msg("'%s': URI %d is '%s', wanted '%s'", list, i, c.got[i], want[i]);
}

static void test_split_uris(void **state)
{
    (void)state;
    expect_split("<sip:alice@ims.lab>, <tel:+15551234>", 2, "sip:alice@ims.lab", "tel:+15551234", NULL);
    expect_split("sip:alice@ims.lab;x=1, sip:a2@ims.lab", 2, "sip:alice@ims.lab", "sip:a2@ims.lab", NULL);
    /* a comma, a '<' and an escaped quote inside a display name are not separators */
    expect_split("\"Smith, A <x>\" <sip:a@ims.lab>;p=1, \"q\\\"uo,te\" <sip:b@ims.lab>", 2, "sip:a@ims.lab",
                 "sip:b@ims.lab", NULL);
    /* header parameters with a quoted value holding a comma */
    expect_split("<sip:a@ims.lab>;note=\"x, y\", <sip:c@ims.lab>", 2, "sip:a@ims.lab", "sip:c@ims.lab", NULL);
    /* an unclosed quote or '<': what is left is taken as one element (identity checks refuse it later) */
    expect_split("\"open <sip:a@ims.lab>", 1, "\"open", NULL, NULL);
    expect_split("<sip:a@ims.lab, <sip:b@ims.lab>", 1, "sip:a@ims.lab, <sip:b@ims.lab", NULL, NULL);
    expect_split("", 0, NULL, NULL, NULL);
    expect_split(" , ,", 0, NULL, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_uris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
