/*
 * Unit tests for ims_trust (the trust domain, RFC 3325 §2.3 / TS 24.229 §4.4): CIDR matching at
 * the v4/v6 edges (/0, /32, /128, one bit outside), IPv4-mapped IPv6 sources, peer names through
 * a hosts table and IP literals, unresolvable names, malformed ranges (also through the config
 * loader: file:line:key), and the default when nothing is configured.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "ims_trust.h"

static su_sockaddr_t addr_of(const char *text)
{
    su_sockaddr_t sa;
    memset(&sa, 0, sizeof(sa));
    if (inet_pton(AF_INET, text, &sa.su_sin.sin_addr) == 1) {
        sa.su_sin.sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &sa.su_sin6.sin6_addr), 1);
        sa.su_sin6.sin6_family = AF_INET6;
    }
    return sa;
}

static bool trusted(const ims_trust *t, const char *text)
{
    su_sockaddr_t sa = addr_of(text);
    return ims_trust_is_trusted(t, &sa);
}

/* cfg with the given items (NULL-terminated arrays; the strings are not copied). */
static ims_trust_cfg make_cfg(char **peers, char **cidrs)
{
    ims_trust_cfg c = { { 0 }, { 0 } };
    for (c.peers.items = peers; peers && peers[c.peers.count]; c.peers.count++)
        ;
    for (c.cidrs.items = cidrs; cidrs && cidrs[c.cidrs.count]; c.cidrs.count++)
        ;
    return c;
}

static const char *hosts(void *arg, const char *name)
{
    (void)arg;
    if (strcmp(name, "scscf.ims.test") == 0)
        return "172.22.0.12";
    if (strcmp(name, "as.ims.test") == 0)
        return "fd00::7";
    if (strcmp(name, "alias.ims.test") == 0)
        return "localhost";   /* a table entry that is itself a name: resolved by DNS / hosts file */
    if (strcmp(name, "broken.ims.test") == 0)
        return "nowhere.invalid";
    return NULL;
}

static ims_trust *create(char **peers, char **cidrs, const char *self, char *err, size_t errlen)
{
    ims_trust_cfg c = make_cfg(peers, cidrs);
    return ims_trust_create(&c, hosts, NULL, self, err, errlen);
}

static void test_v4_edges(void **state)
{
    (void)state;
    char err[256] = "";
    char *cidrs[] = { "172.22.0.0/24", "10.1.2.3/32", "192.168.0.0/23", NULL };
    ims_trust *t = create(NULL, cidrs, "127.0.0.1", err, sizeof(err));
    assert_non_null(t);
    assert_false(ims_trust_is_implicit(t));
    assert_true(trusted(t, "172.22.0.0"));
    assert_true(trusted(t, "172.22.0.255"));
    assert_false(trusted(t, "172.22.1.0"));
    assert_false(trusted(t, "172.21.255.255"));
    assert_true(trusted(t, "10.1.2.3"));
    assert_false(trusted(t, "10.1.2.2"));
    assert_false(trusted(t, "10.1.2.4"));
    assert_true(trusted(t, "192.168.1.200"));   /* prefix not on a byte boundary */
    assert_false(trusted(t, "192.168.2.0"));
    assert_false(trusted(t, "127.0.0.1"));       /* configured: the listen address is not implied */
    assert_false(trusted(t, "::1"));
    assert_false(trusted(t, "::ffff:172.22.1.1"));
    assert_true(trusted(t, "::ffff:172.22.0.13"));   /* IPv4-mapped source from a dual-stack socket */
    char text[256];
    ims_trust_describe(t, text, sizeof(text));
    assert_string_equal(text, "172.22.0.0/24, 10.1.2.3/32, 192.168.0.0/23");
    ims_trust_free(t);

    char *all[] = { "0.0.0.0/0", NULL };
    t = create(NULL, all, NULL, err, sizeof(err));
    assert_non_null(t);
    assert_true(trusted(t, "0.0.0.0"));
    assert_true(trusted(t, "255.255.255.255"));
    assert_false(trusted(t, "::1"));             /* /0 of one family only */
    ims_trust_free(t);
}

static void test_v6_edges(void **state)
{
    (void)state;
    char err[256] = "";
    char *cidrs[] = { "fd00:1::/64", "2001:db8::5/128", "fe80::/10", NULL };
    ims_trust *t = create(NULL, cidrs, NULL, err, sizeof(err));
    assert_non_null(t);
    assert_true(trusted(t, "fd00:1::1"));
    assert_true(trusted(t, "fd00:1::ffff:ffff:ffff:ffff"));
    assert_false(trusted(t, "fd00:1:0:1::1"));
    assert_true(trusted(t, "2001:db8::5"));
    assert_false(trusted(t, "2001:db8::4"));
    assert_false(trusted(t, "2001:db8::6"));
    assert_true(trusted(t, "febf::1"));
    assert_false(trusted(t, "fec0::1"));
    assert_false(trusted(t, "127.0.0.1"));
    ims_trust_free(t);

    char *all[] = { "::/0", NULL };
    t = create(NULL, all, NULL, err, sizeof(err));
    assert_non_null(t);
    assert_true(trusted(t, "::"));
    assert_true(trusted(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_false(trusted(t, "10.0.0.1"));
    ims_trust_free(t);
}

static void test_peers(void **state)
{
    (void)state;
    char err[256] = "";
    char *peers[] = { "scscf.ims.test", "as.ims.test", "10.9.9.9", "::2", "alias.ims.test", NULL };
    ims_trust *t = create(peers, NULL, "127.0.0.1", err, sizeof(err));
    assert_non_null(t);
    assert_true(trusted(t, "172.22.0.12"));
    assert_false(trusted(t, "172.22.0.11"));
    assert_true(trusted(t, "fd00::7"));
    assert_false(trusted(t, "fd00::8"));
    assert_true(trusted(t, "10.9.9.9"));
    assert_true(trusted(t, "::2"));
    assert_true(trusted(t, "127.0.0.1"));       /* alias.ims.test -> localhost -> 127.0.0.1 */
    assert_false(trusted(t, "127.0.0.2"));
    ims_trust_free(t);
}

/* URI hosts (pcscf_route.c: the next hop of a UE's in-dialog request): peer names, literals
 * in a range, [v6]; a name known neither as a peer nor to sip.hosts is not trusted (no DNS). */
static void test_hosts(void **state)
{
    (void)state;
    char err[256] = "";
    char *peers[] = { "scscf.ims.test", NULL };
    char *cidrs[] = { "10.1.0.0/16", "fd00::/64", NULL };
    ims_trust *t = create(peers, cidrs, "127.0.0.1", err, sizeof(err));
    assert_non_null(t);
    assert_true(ims_trust_host_is_trusted(t, NULL, "scscf.ims.test"));
    assert_true(ims_trust_host_is_trusted(t, NULL, "SCSCF.ims.TEST"));
    assert_true(ims_trust_host_is_trusted(t, NULL, "172.22.0.12"));    /* what the peer resolved to */
    assert_true(ims_trust_host_is_trusted(t, NULL, "10.1.200.3"));
    assert_false(ims_trust_host_is_trusted(t, NULL, "10.2.0.1"));
    assert_true(ims_trust_host_is_trusted(t, NULL, "[fd00::9]"));
    assert_false(ims_trust_host_is_trusted(t, NULL, "[fd01::9]"));
    assert_false(ims_trust_host_is_trusted(t, NULL, "as.ims.test"));   /* not a peer here */
    assert_false(ims_trust_host_is_trusted(t, NULL, "victim.example.com"));
    assert_false(ims_trust_host_is_trusted(t, NULL, ""));
    assert_false(ims_trust_host_is_trusted(t, NULL, "[]"));
    assert_false(ims_trust_host_is_trusted(NULL, NULL, "10.1.0.1"));
    ims_trust_free(t);
}

static void test_unresolvable_peer(void **state)
{
    (void)state;
    char err[256] = "";
    char *peers[] = { "10.0.0.1", "no-such-host.invalid", NULL };
    assert_null(create(peers, NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "trust.peers"));
    assert_non_null(strstr(err, "'no-such-host.invalid'"));
    assert_non_null(strstr(err, "does not resolve"));

    char *mapped[] = { "broken.ims.test", NULL };
    assert_null(create(mapped, NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "'broken.ims.test' (sip.hosts: nowhere.invalid) does not resolve"));
}

static void test_bad_cidrs(void **state)
{
    (void)state;
    static const char *const bad[] = { "172.22.0.0", "172.22.0.0/33", "fd00::/129", "172.22.0.10/24",
                                       "fd00::1/64", "/24", "172.22.0.0/", "172.22.0.0/2x", "172.22.0.0/-1",
                                       "172.22.0/24", "host.example/32", "172.22.0.0/0024", "", NULL };
    for (size_t i = 0; bad[i]; i++) {
        char why[256] = "";
        assert_int_equal(ims_trust_cidr_check(bad[i], why, sizeof(why)), -1);
        assert_true(why[0] != '\0');
        char err[256] = "";
        char *cidrs[] = { (char *)bad[i], NULL };
        assert_null(create(NULL, cidrs, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "trust.cidrs"));
    }
    char why[256];
    assert_int_equal(ims_trust_cidr_check("0.0.0.0/0", why, sizeof(why)), 0);
    assert_int_equal(ims_trust_cidr_check("::/0", why, sizeof(why)), 0);
    assert_int_equal(ims_trust_cidr_check("10.0.0.7/32", why, sizeof(why)), 0);
    assert_int_equal(ims_trust_cidr_check("fd00::7/128", why, sizeof(why)), 0);
}

static void test_empty_config(void **state)
{
    (void)state;
    char err[256] = "";
    /* nothing configured: the listen address only */
    ims_trust *t = create(NULL, NULL, "172.22.0.12", err, sizeof(err));
    assert_non_null(t);
    assert_true(ims_trust_is_implicit(t));
    assert_true(trusted(t, "172.22.0.12"));
    assert_false(trusted(t, "172.22.0.11"));
    assert_false(trusted(t, "127.0.0.1"));
    ims_trust_free(t);

    /* a wildcard listen address: loopback only */
    t = create(NULL, NULL, "0.0.0.0", err, sizeof(err));
    assert_non_null(t);
    assert_true(trusted(t, "127.0.0.1"));
    assert_true(trusted(t, "::1"));
    assert_false(trusted(t, "127.0.0.2"));
    assert_false(trusted(t, "10.0.0.1"));
    ims_trust_free(t);

    t = create(NULL, NULL, "::", err, sizeof(err));
    assert_non_null(t);
    assert_true(trusted(t, "::1"));
    assert_false(trusted(t, "0.0.0.0"));
    ims_trust_free(t);

    assert_false(ims_trust_is_trusted(NULL, NULL));
}

/* The loader reports a bad range with file, line and key, from the file and from the env. */
typedef struct {
    ims_trust_cfg trust;
} trust_only_cfg;

static const ims_cfg_field trust_schema[] = {
    { .key = "trust", .type = IMS_CFG_SECTION, .offset = offsetof(trust_only_cfg, trust), .sub = ims_trust_cfg_fields },
    { .key = NULL },
};

static void test_config_errors(void **state)
{
    (void)state;
    char path[] = "/tmp/test_trust_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "trust:\n  peers: [scscf.ims.lab]\n  cidrs:\n    - 127.0.0.1/32\n    - 10.0.0.0/33\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);

    trust_only_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    char err[512] = "";
    assert_int_equal(ims_cfg_load(path, "tnf", trust_schema, &cfg, err, sizeof(err)), -1);
    char want[600];
    snprintf(want, sizeof(want), "%s:5: trust.cidrs: '10.0.0.0/33'", path);
    assert_non_null(strstr(err, want));

    /* a good file loads; an environment override is checked too */
    const char *good = "trust:\n  cidrs: [127.0.0.1/32, 'fd00::/64']\n";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(good, f);
    fclose(f);
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(ims_cfg_load(path, "tnf", trust_schema, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.trust.cidrs.count, 2);
    ims_cfg_free(trust_schema, &cfg);

    setenv("IMS_TNF_TRUST_CIDRS", "127.0.0.1/32, 172.22.0.1/24", 1);
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(ims_cfg_load(path, "tnf", trust_schema, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "IMS_TNF_TRUST_CIDRS"));
    assert_non_null(strstr(err, "'172.22.0.1/24'"));
    unsetenv("IMS_TNF_TRUST_CIDRS");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_edges),
        cmocka_unit_test(test_v6_edges),
        cmocka_unit_test(test_peers),
        cmocka_unit_test(test_unresolvable_peer),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_bad_cidrs),
        cmocka_unit_test(test_empty_config),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
