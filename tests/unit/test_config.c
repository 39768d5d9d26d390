/*
 * Unit tests for ims_config: defaults, YAML values, environment overrides and every class of
 * error, each naming file, line and key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ims_config.h"

typedef struct {
    char *database;
    long workers;
    bool strict;
    int mode;
    ims_cfg_strlist names;
} test_nf_cfg;

typedef struct {
    ims_log_cfg log;
    ims_http_cfg http;
    ims_diameter_cfg diameter;
    test_nf_cfg hss;
} test_cfg;

static const char *const modes[] = { "fast", "safe", NULL };

static const ims_cfg_field nf_fields[] = {
    { .key = "database", .type = IMS_CFG_STR, .offset = offsetof(test_nf_cfg, database), .def = "/tmp/x.db" },
    { .key = "workers", .type = IMS_CFG_INT, .offset = offsetof(test_nf_cfg, workers), .def = "2", .min = 1, .max = 64 },
    { .key = "strict", .type = IMS_CFG_BOOL, .offset = offsetof(test_nf_cfg, strict), .def = "false" },
    { .key = "mode", .type = IMS_CFG_ENUM, .offset = offsetof(test_nf_cfg, mode), .def = "safe", .enum_names = modes },
    { .key = "names", .type = IMS_CFG_STRLIST, .offset = offsetof(test_nf_cfg, names) },
    { .key = NULL },
};

static const ims_cfg_field schema[] = {
    { .key = "log", .type = IMS_CFG_SECTION, .offset = offsetof(test_cfg, log), .sub = ims_log_cfg_fields },
    { .key = "http", .type = IMS_CFG_SECTION, .offset = offsetof(test_cfg, http), .sub = ims_http_cfg_fields },
    { .key = "diameter", .type = IMS_CFG_SECTION, .offset = offsetof(test_cfg, diameter), .sub = ims_diameter_cfg_fields },
    { .key = "hss", .type = IMS_CFG_SECTION, .offset = offsetof(test_cfg, hss), .sub = nf_fields },
    { .key = NULL },
};

static char g_path[64];

static const char *write_yaml(const char *text)
{
    strcpy(g_path, "/tmp/ims-test-config-XXXXXX");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return g_path;
}

/* Loads text; returns rc and leaves the message in err. */
static int load(const char *text, test_cfg *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *p = write_yaml(text);
    int rc = ims_cfg_load(p, "hss", schema, cfg, err, errlen);
    unlink(p);
    return rc;
}

#define BASE "diameter:\n  identity: hss.ims.lab\n  realm: ims.lab\n"

static void test_full_config_and_defaults(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    int rc = load("log:\n  level: debug\n" BASE
                  "  port: 3999\n  peers:\n    - identity: scscf.ims.lab\n      address: 10.0.0.2\n"
                  "    - {identity: icscf.ims.lab, address: 10.0.0.3, port: 4000}\n"
                  "hss:\n  database: /var/lib/hss.db\n  strict: yes\n  mode: FAST\n  names: [a, b]\n",
                  &cfg, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.log.level, "debug");
    assert_string_equal(cfg.diameter.identity, "hss.ims.lab");
    assert_int_equal(cfg.diameter.port, 3999);
    assert_int_equal(cfg.diameter.tc_timer, 3);               /* default */
    assert_string_equal(cfg.diameter.listen, "127.0.0.1");    /* default */
    assert_true(cfg.http.enabled);
    assert_int_equal(cfg.http.port, 9090);
    assert_int_equal(cfg.diameter.peers.count, 2);
    ims_diameter_peer_cfg *peers = cfg.diameter.peers.items;
    assert_string_equal(peers[0].address, "10.0.0.2");
    assert_int_equal(peers[0].port, 3868);                     /* default inside a record */
    assert_int_equal(peers[1].port, 4000);
    assert_string_equal(cfg.hss.database, "/var/lib/hss.db");
    assert_int_equal(cfg.hss.workers, 2);
    assert_true(cfg.hss.strict);
    assert_int_equal(cfg.hss.mode, 0);
    assert_int_equal(cfg.hss.names.count, 2);
    assert_string_equal(cfg.hss.names.items[1], "b");
    ims_cfg_free(schema, &cfg);
    assert_null(cfg.hss.database);
    assert_null(cfg.diameter.peers.items);
}

static void test_env_overrides(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    setenv("IMS_HSS_DIAMETER_PORT", "4444", 1);
    setenv("IMS_HSS_DATABASE", "/env.db", 1);
    setenv("IMS_HSS_NAMES", "x,y,z", 1);
    int rc = load(BASE "  port: 3999\nhss:\n  database: /file.db\n", &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_DIAMETER_PORT");
    unsetenv("IMS_HSS_DATABASE");
    unsetenv("IMS_HSS_NAMES");
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.diameter.port, 4444);
    assert_string_equal(cfg.hss.database, "/env.db");
    assert_int_equal(cfg.hss.names.count, 3);
    ims_cfg_free(schema, &cfg);

    setenv("IMS_HSS_HTTP_PORT", "notaport", 1);
    rc = load(BASE, &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_HTTP_PORT");
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "IMS_HSS_HTTP_PORT"));
    assert_non_null(strstr(err, "notaport"));
    ims_cfg_free(schema, &cfg);

    /* Required keys can come from the environment alone, without a file. */
    setenv("IMS_HSS_DIAMETER_IDENTITY", "a.b", 1);
    setenv("IMS_HSS_DIAMETER_REALM", "b", 1);
    memset(&cfg, 0, sizeof(cfg));
    rc = ims_cfg_load(NULL, "hss", schema, &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_DIAMETER_IDENTITY");
    unsetenv("IMS_HSS_DIAMETER_REALM");
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.diameter.identity, "a.b");
    ims_cfg_free(schema, &cfg);
}

/* Each bad document must fail with a message holding every expected fragment. */
static void expect_error(const char *yaml, const char *frag1, const char *frag2, const char *frag3)
{
    test_cfg cfg;
    char err[512];
    int rc = load(yaml, &cfg, err, sizeof(err));
    if (rc != -1 || (frag1 && !strstr(err, frag1)) || (frag2 && !strstr(err, frag2)) ||
        (frag3 && !strstr(err, frag3)))
        fail_msg("yaml:\n%s\nrc %d, message: '%s' (wanted '%s' '%s' '%s')", yaml, rc, err,
                 frag1 ? frag1 : "", frag2 ? frag2 : "", frag3 ? frag3 : "");
    ims_cfg_free(schema, &cfg);
}

static void test_errors_name_file_line_and_key(void **state)
{
    (void)state;
    /* The file name is in every file error. */
    expect_error(BASE "hss:\n  databse: /x\n", "ims-test-config-", ":5:", "hss.databse: unknown key");
    expect_error(BASE "  port: abc\n", ":4:", "diameter.port", "not an integer");
    expect_error(BASE "  port: 70000\n", ":4:", "diameter.port", "out of range 1..65535");
    expect_error(BASE "hss:\n  strict: maybe\n", ":5:", "hss.strict", "not a boolean");
    expect_error(BASE "hss:\n  mode: turbo\n", ":5:", "hss.mode", "fast, safe");
    expect_error("log:\n  level: loud\n" BASE, ":2:", "log.level", "loud");
    expect_error("diameter:\n  realm: ims.lab\n", "diameter.identity", "required", "IMS_HSS_DIAMETER_IDENTITY");
    expect_error(BASE "  peers:\n    - {identity: a, address: b}\n    - {identity: c, address: d, port: 0}\n",
                 ":6:", "diameter.peers[1].port", "out of range");
    expect_error(BASE "  peers:\n    - {identity: a}\n", "diameter.peers[0].address", "required", NULL);
    expect_error(BASE "  realm: again\n", ":4:", "diameter.realm", "duplicate key");
    expect_error("- a\n- b\n", ":1:", "mapping", NULL);
    expect_error(BASE "hss: [1, 2]\n", ":4:", "hss", "expected a mapping");
    expect_error(BASE "hss:\n  names: one\n", ":5:", "hss.names", "expected a list");
    expect_error("diameter:\n  identity: [x\n", "YAML syntax error", NULL, NULL);
}

static void test_missing_file(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    memset(&cfg, 0, sizeof(cfg));
    int rc = ims_cfg_load("/nonexistent/hss.yaml", "hss", schema, &cfg, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "cannot read /nonexistent/hss.yaml"));
    ims_cfg_free(schema, &cfg);
}

static void test_load_or_exit_exits_2(void **state)
{
    (void)state;
    const char *p = write_yaml("diameter:\n  port: 1\n");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        test_cfg cfg;
        memset(&cfg, 0, sizeof(cfg));
        freopen("/dev/null", "w", stderr);
        ims_cfg_load_or_exit(p, "hss", schema, &cfg);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    unlink(p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
}

static void test_reference_lists_every_key(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ims_cfg_print_reference("hss", schema, f);
    fclose(f);
    assert_non_null(strstr(buf, "`diameter.port`"));
    assert_non_null(strstr(buf, "`IMS_HSS_DIAMETER_PORT`"));
    assert_non_null(strstr(buf, "`IMS_HSS_DATABASE`"));
    assert_non_null(strstr(buf, "`diameter.peers[].address`"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config_and_defaults),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_errors_name_file_line_and_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_load_or_exit_exits_2),
        cmocka_unit_test(test_reference_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
