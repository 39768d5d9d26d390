/*
 * test_scscf_session: the S-CSCF's destination analysis of initial requests (scscf_session.c):
 * the callee identity of a Request-URI (tel: and sip:+digits;user=phone become tel:+digits,
 * TS 24.229 §5.4.3.2 / RFC 3966; other URIs are normalised) and the home-network test
 * (scscf.home_domains, default the realm; tel: is always home).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "scscf_session.h"

static const char *callee(su_home_t *home, const char *uri, char *out, size_t len)
{
    url_t *u = url_make(home, uri);
    if (!u || scscf_sess_callee(u, out, len))
        return NULL;
    return out;
}

static void test_callee(void **state)
{
    (void)state;
    su_home_t *home = su_home_new(sizeof(su_home_t));
    char buf[256];
    assert_string_equal(callee(home, "sip:bob@IMS.lab;transport=udp", buf, sizeof(buf)), "sip:bob@ims.lab");
    assert_string_equal(callee(home, "tel:+15550002", buf, sizeof(buf)), "tel:+15550002");
    assert_string_equal(callee(home, "tel:+15550002;phone-context=ims.lab", buf, sizeof(buf)), "tel:+15550002");
    assert_string_equal(callee(home, "sip:+15550002@ims.lab;user=phone", buf, sizeof(buf)), "tel:+15550002");
    /* digits without user=phone stay a SIP URI */
    assert_string_equal(callee(home, "sip:+15550002@ims.lab", buf, sizeof(buf)), "sip:+15550002@ims.lab");
    assert_null(callee(home, "sip:bob@ims.lab", buf, 8));
    su_home_unref(home);
}

static void test_home(void **state)
{
    (void)state;
    su_home_t *home = su_home_new(sizeof(su_home_t));
    scscf_context ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.realm = "ims.lab";
    assert_true(scscf_sess_is_home(&ctx, url_make(home, "sip:bob@IMS.LAB")));
    assert_true(scscf_sess_is_home(&ctx, url_make(home, "tel:+1555")));
    assert_false(scscf_sess_is_home(&ctx, url_make(home, "sip:bob@other.net")));
    char *domains[] = { "a.net", "b.net" };
    ctx.cfg.scscf.home_domains.items = domains;
    ctx.cfg.scscf.home_domains.count = 2;
    assert_true(scscf_sess_is_home(&ctx, url_make(home, "sip:x@b.net")));
    assert_false(scscf_sess_is_home(&ctx, url_make(home, "sip:bob@ims.lab")));
    su_home_unref(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callee),
        cmocka_unit_test(test_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
