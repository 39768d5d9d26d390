/*
 * Unit tests for ims_config: defaults, YAML values, environment overrides and every class of
 * error, each naming file, line and key. The schema mirrors an NF's: a top-level "hss" section
 * of its own plus the shared log/http/diameter sections.
 *
 * Leaks: this runs under the ASan build, whose LeakSanitizer fails the process at exit if
 * anything a load allocated (including a failed load) was not released.
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

#include "ims_cfg_check.h"
#include "ims_config.h"

/* glibc's name of this program: the prefix of ims_cfg_load_or_exit's message. */
extern char *program_invocation_short_name;

typedef struct {
    char *database;
    long workers;
    bool strict;
    int mode;
    ims_cfg_strlist names;
    char *comment;
} test_nf_cfg;

typedef struct {
    ims_log_cfg log;
    ims_http_cfg http;
    ims_diameter_cfg diameter;
    test_nf_cfg hss;
} test_cfg;

static const char *const modes[] = { "fast", "safe", NULL };

static const ims_cfg_field nf_fields[] = {
    { .key = "database", .type = IMS_CFG_STR, .offset = offsetof(test_nf_cfg, database), .def = "/tmp/x.db",
      .help = "database file" },
    { .key = "workers", .type = IMS_CFG_INT, .offset = offsetof(test_nf_cfg, workers), .def = "2",
      .min = 1, .max = 64, .help = "worker count" },
    { .key = "strict", .type = IMS_CFG_BOOL, .offset = offsetof(test_nf_cfg, strict), .def = "false",
      .help = "strict mode" },
    { .key = "mode", .type = IMS_CFG_ENUM, .offset = offsetof(test_nf_cfg, mode), .def = "safe",
      .enum_names = modes, .help = "fast or safe" },
    { .key = "names", .type = IMS_CFG_STRLIST, .offset = offsetof(test_nf_cfg, names), .def = "d1,d2",
      .help = "some names" },
    { .key = "comment", .type = IMS_CFG_STR, .offset = offsetof(test_nf_cfg, comment),
      .help = "a | in help must not break the table" },
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

/* Loads text; returns rc and leaves the message in err. g_path keeps the (deleted) file's name. */
static int load(const char *text, test_cfg *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *p = write_yaml(text);
    int rc = ims_cfg_load(p, "hss", schema, cfg, err, errlen);
    unlink(p);
    return rc;
}

/* The two keys every document needs (diameter identity and realm are required). */
#define BASE "diameter:\n  identity: hss.ims.lab\n  realm: ims.lab\n"

static void test_full_config_and_defaults(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    int rc = load("log:\n  level: debug\n"
                  "http:\n  enabled: off\n  listen: ::1\n  port: 0\n"
                  BASE
                  "  port: 3999\n  tls_cert: /c.pem\n  accept_unknown_peers: no\n"
                  "  peers:\n    - identity: scscf.ims.lab\n      address: 10.0.0.2\n"
                  "    - {identity: icscf.ims.lab, address: 10.0.0.3, port: 4000}\n"
                  "hss:\n  database: /var/lib/hss.db\n  workers: 010\n  strict: yes\n  mode: FAST\n"
                  "  names: [a, b]\n",
                  &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("load failed: %s", err);
    assert_string_equal(cfg.log.level, "debug");
    assert_false(cfg.http.enabled);
    assert_string_equal(cfg.http.listen, "::1");
    assert_int_equal(cfg.http.port, 0);
    assert_string_equal(cfg.diameter.identity, "hss.ims.lab");
    assert_string_equal(cfg.diameter.realm, "ims.lab");
    assert_int_equal(cfg.diameter.port, 3999);
    assert_string_equal(cfg.diameter.tls_cert, "/c.pem");
    assert_false(cfg.diameter.accept_unknown_peers);
    assert_int_equal(cfg.diameter.peers.count, 2);
    ims_diameter_peer_cfg *peers = cfg.diameter.peers.items;
    assert_string_equal(peers[0].identity, "scscf.ims.lab");
    assert_string_equal(peers[0].address, "10.0.0.2");
    assert_int_equal(peers[0].port, 3868);                     /* default inside a record */
    assert_string_equal(peers[1].identity, "icscf.ims.lab");
    assert_int_equal(peers[1].port, 4000);
    assert_string_equal(cfg.hss.database, "/var/lib/hss.db");
    assert_int_equal(cfg.hss.workers, 10);                     /* decimal, not octal */
    assert_true(cfg.hss.strict);
    assert_int_equal(cfg.hss.mode, 0);                         /* enum names match any case */
    assert_int_equal(cfg.hss.names.count, 2);                  /* the file replaces the default list */
    assert_string_equal(cfg.hss.names.items[0], "a");
    assert_string_equal(cfg.hss.names.items[1], "b");

    /* Defaults of every key the file left out. */
    assert_int_equal(cfg.diameter.tc_timer, 3);
    assert_int_equal(cfg.diameter.request_timeout_ms, 3000);
    assert_string_equal(cfg.diameter.listen, "127.0.0.1");
    assert_string_equal(cfg.diameter.conf_dir, "/tmp");
    assert_null(cfg.diameter.tls_key);
    assert_null(cfg.diameter.tls_ca);
    assert_null(cfg.hss.comment);

    ims_cfg_free(schema, &cfg);
    assert_null(cfg.hss.database);
    assert_null(cfg.hss.names.items);
    assert_int_equal(cfg.hss.names.count, 0);
    assert_null(cfg.diameter.peers.items);
    assert_int_equal(cfg.diameter.peers.count, 0);
    assert_null(cfg.log.level);
    ims_cfg_free(schema, &cfg);   /* a second free is harmless: pointers were NULLed */
}

static void test_defaults_only(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    /* An empty file means "all defaults" (+ env): identity and realm must then come from the env. */
    assert_int_equal(load("", &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "diameter.identity: required"));
    setenv("IMS_HSS_DIAMETER_IDENTITY", "a.b", 1);
    setenv("IMS_HSS_DIAMETER_REALM", "b", 1);
    int rc = load("# nothing but a comment\n", &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_DIAMETER_IDENTITY");
    unsetenv("IMS_HSS_DIAMETER_REALM");
    if (rc != 0)
        fail_msg("load failed: %s", err);
    assert_int_equal(cfg.diameter.port, 3868);
    ims_cfg_free(schema, &cfg);

    rc = load(BASE, &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("load failed: %s", err);
    assert_string_equal(cfg.log.level, "info");
    assert_true(cfg.http.enabled);
    assert_string_equal(cfg.http.listen, "127.0.0.1");
    assert_int_equal(cfg.http.port, 9090);
    assert_int_equal(cfg.diameter.port, 3868);
    assert_true(cfg.diameter.accept_unknown_peers);
    assert_int_equal(cfg.diameter.peers.count, 0);
    assert_string_equal(cfg.hss.database, "/tmp/x.db");
    assert_int_equal(cfg.hss.workers, 2);
    assert_false(cfg.hss.strict);
    assert_int_equal(cfg.hss.mode, 1);
    assert_int_equal(cfg.hss.names.count, 2);
    assert_string_equal(cfg.hss.names.items[1], "d2");
    ims_cfg_free(schema, &cfg);
}

/* "key:", "~" and "null" leave the default; a quoted "" is a real (empty) string. */
static void test_null_values_keep_defaults(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    int rc = load("log:\nhttp:\n  port:\n  listen: ~\n" BASE "  tls_cert: null\n"
                  "hss:\n  database: \"\"\n  names:\n",
                  &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("load failed: %s", err);
    assert_string_equal(cfg.log.level, "info");
    assert_int_equal(cfg.http.port, 9090);
    assert_string_equal(cfg.http.listen, "127.0.0.1");
    assert_null(cfg.diameter.tls_cert);
    assert_string_equal(cfg.hss.database, "");
    assert_int_equal(cfg.hss.names.count, 2);
    ims_cfg_free(schema, &cfg);
}

/* log.level is validated like an enum and stored in the table's spelling. */
static void test_log_level_canonical(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    assert_int_equal(load("log:\n  level: DEBUG\n" BASE, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.log.level, "debug");
    ims_cfg_free(schema, &cfg);
}

static void test_env_overrides(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    setenv("IMS_HSS_DIAMETER_PORT", "4444", 1);    /* nested key of a shared section */
    setenv("IMS_HSS_DATABASE", "/env.db", 1);      /* the NF's own section name is dropped */
    setenv("IMS_HSS_NAMES", " x, y ,,z ", 1);      /* comma-separated, blanks and empties dropped */
    setenv("IMS_HSS_STRICT", "on", 1);
    setenv("IMS_HSS_MODE", "fast", 1);
    setenv("IMS_HSS_HTTP_LISTEN", "", 1);          /* empty counts as unset */
    int rc = load(BASE "  port: 3999\nhss:\n  database: /file.db\n  names: [f]\n", &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_DIAMETER_PORT");
    unsetenv("IMS_HSS_DATABASE");
    unsetenv("IMS_HSS_NAMES");
    unsetenv("IMS_HSS_STRICT");
    unsetenv("IMS_HSS_MODE");
    unsetenv("IMS_HSS_HTTP_LISTEN");
    if (rc != 0)
        fail_msg("load failed: %s", err);
    assert_int_equal(cfg.diameter.port, 4444);    /* env wins over the file */
    assert_string_equal(cfg.hss.database, "/env.db");
    assert_int_equal(cfg.hss.names.count, 3);
    assert_string_equal(cfg.hss.names.items[0], "x");
    assert_string_equal(cfg.hss.names.items[1], "y");
    assert_string_equal(cfg.hss.names.items[2], "z");
    assert_true(cfg.hss.strict);
    assert_int_equal(cfg.hss.mode, 0);
    assert_string_equal(cfg.http.listen, "127.0.0.1");
    ims_cfg_free(schema, &cfg);

    /* Required keys can come from the environment alone, without a file. */
    setenv("IMS_HSS_DIAMETER_IDENTITY", "a.b", 1);
    setenv("IMS_HSS_DIAMETER_REALM", "b", 1);
    memset(&cfg, 0, sizeof(cfg));
    rc = ims_cfg_load(NULL, "hss", schema, &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_DIAMETER_IDENTITY");
    unsetenv("IMS_HSS_DIAMETER_REALM");
    if (rc != 0)
        fail_msg("load failed: %s", err);
    assert_string_equal(cfg.diameter.identity, "a.b");
    assert_string_equal(cfg.diameter.realm, "b");
    assert_int_equal(cfg.diameter.port, 3868);
    ims_cfg_free(schema, &cfg);

    /* Without an NF name there are no overrides at all. */
    setenv("IMS_HSS_DIAMETER_PORT", "4444", 1);
    memset(&cfg, 0, sizeof(cfg));
    const char *p = write_yaml(BASE);
    rc = ims_cfg_load(p, NULL, schema, &cfg, err, sizeof(err));
    unlink(p);
    unsetenv("IMS_HSS_DIAMETER_PORT");
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.diameter.port, 3868);
    ims_cfg_free(schema, &cfg);
}

/* An env error names the variable (and the key), not a line of the file. */
static void test_env_errors_name_the_variable(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    setenv("IMS_HSS_HTTP_PORT", "notaport", 1);
    int rc = load(BASE, &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_HTTP_PORT");
    assert_int_equal(rc, -1);
    assert_string_equal(err, "IMS_HSS_HTTP_PORT (http.port): 'notaport' is not an integer");
    assert_null(cfg.diameter.identity);   /* a failed load has freed what it had read */

    setenv("IMS_HSS_DIAMETER_PORT", "70000", 1);
    rc = load(BASE, &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_DIAMETER_PORT");
    assert_int_equal(rc, -1);
    assert_string_equal(err, "IMS_HSS_DIAMETER_PORT (diameter.port): 70000 is out of range 1..65535");

    setenv("IMS_HSS_LOG_LEVEL", "loud", 1);
    rc = load(BASE, &cfg, err, sizeof(err));
    unsetenv("IMS_HSS_LOG_LEVEL");
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "IMS_HSS_LOG_LEVEL"));
    assert_non_null(strstr(err, "error, warn, info, debug"));
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
    /* A failed load frees everything itself; the extra free must stay harmless. */
    assert_null(cfg.diameter.identity);
    assert_null(cfg.hss.names.items);
    assert_null(cfg.diameter.peers.items);
    ims_cfg_free(schema, &cfg);
}

/* The exact "file:line: key.path: problem" form of the header. */
static void test_error_format(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512], want[600];
    assert_int_equal(load(BASE "  port: 70000\n", &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: diameter.port: 70000 is out of range 1..65535", g_path);
    assert_string_equal(err, want);

    assert_int_equal(load("log:\n  level: info\n" BASE "hss:\n  workers: 4\n  databse: /x\n", &cfg, err,
                          sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "%s:8: hss.databse: unknown key (known keys: database, workers, strict, mode, names, comment)",
             g_path);
    assert_string_equal(err, want);

    assert_int_equal(load("diameter:\n  realm: ims.lab\n", &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "%s: diameter.identity: required (set it in the configuration file or with IMS_HSS_DIAMETER_IDENTITY)",
             g_path);
    assert_string_equal(err, want);
}

static void test_errors_name_file_line_and_key(void **state)
{
    (void)state;
    /* The file name is in every file error. */
    expect_error(BASE "hss:\n  databse: /x\n", "ims-test-config-", ":5:", "hss.databse: unknown key");
    expect_error("bogus: 1\n" BASE, ":1:", "bogus: unknown key", "log, http, diameter, hss");
    expect_error(BASE "  port: abc\n", ":4:", "diameter.port", "'abc' is not an integer");
    expect_error(BASE "  port: 12abc\n", ":4:", "diameter.port", "not an integer");
    expect_error(BASE "  port: 70000\n", ":4:", "diameter.port", "70000 is out of range 1..65535");
    expect_error(BASE "  port: 0\n", ":4:", "diameter.port", "out of range");
    expect_error(BASE "hss:\n  workers: 99999999999999999999999\n", ":5:", "hss.workers", "out of range 1..64");
    expect_error(BASE "hss:\n  strict: maybe\n", ":5:", "hss.strict", "'maybe' is not a boolean");
    expect_error(BASE "hss:\n  mode: turbo\n", ":5:", "hss.mode", "'turbo' is not one of: fast, safe");
    expect_error("log:\n  level: loud\n" BASE, ":2:", "log.level", "error, warn, info, debug");
    expect_error(BASE "hss:\n  database: [a, b]\n", ":5:", "hss.database", "expected a single value");
    expect_error(BASE "hss: [1, 2]\n", ":4:", "hss", "expected a mapping");
    expect_error(BASE "hss:\n  names: one\n", ":5:", "hss.names", "expected a list");
    expect_error(BASE "hss:\n  names: [a, [b]]\n", ":5:", "hss.names", "single values");
    expect_error(BASE "  peers: x\n", ":4:", "diameter.peers", "list of mappings");
}

/* The shared value checks the NFs' schemas use (ims_cfg_check): one rule per kind of value. */
static void test_value_checks(void **state)
{
    (void)state;
    char why[128];
    const char *uris_ok[] = { "sip:icscf.ims.lab:5062", "sips:a.b", "sip:10.0.0.1;transport=tcp", "sip:[::1]:5060" };
    const char *uris_bad[] = { "", "icscf.ims.lab", "tel:+123", "sip:", "sip:bad host", "sip:a<b", "http://x",
                               "sip:a\r\nX: y" };
    for (size_t i = 0; i < sizeof(uris_ok) / sizeof(*uris_ok); i++)
        assert_int_equal(ims_cfg_check_sip_uri(uris_ok[i], why, sizeof(why)), 0);
    for (size_t i = 0; i < sizeof(uris_bad) / sizeof(*uris_bad); i++) {
        why[0] = 0;
        if (ims_cfg_check_sip_uri(uris_bad[i], why, sizeof(why)) != -1)
            fail_msg("'%s' accepted as a sip: URI", uris_bad[i]);
        assert_non_null(strstr(why, "not a sip: URI"));
    }
    assert_int_equal(ims_cfg_check_domain("ims.lab", why, sizeof(why)), 0);
    assert_int_equal(ims_cfg_check_domain("hss.ims.lab", why, sizeof(why)), 0);
    const char *doms_bad[] = { "", "ims.lab:5060", "a b", "a;b", "a,b", "u@ims.lab", "<ims.lab>", "a/b", "a\"b",
                               "ims.lab\r\n" };
    for (size_t i = 0; i < sizeof(doms_bad) / sizeof(*doms_bad); i++)
        if (ims_cfg_check_domain(doms_bad[i], why, sizeof(why)) != -1)
            fail_msg("'%s' accepted as a domain", doms_bad[i]);
    assert_int_equal(ims_cfg_check_line("ims.lab visited", why, sizeof(why)), 0);
    assert_int_equal(ims_cfg_check_line("", why, sizeof(why)), -1);
    assert_int_equal(ims_cfg_check_line("a\nb", why, sizeof(why)), -1);
}

static void test_missing_required(void **state)
{
    (void)state;
    expect_error("diameter:\n  realm: ims.lab\n", "ims-test-config-", "diameter.identity: required",
                 "IMS_HSS_DIAMETER_IDENTITY");
    expect_error("diameter:\n  identity: a\n", "diameter.realm: required", NULL, NULL);
    /* A required key of a record points at the record's line. */
    expect_error(BASE "  peers:\n    - {identity: a, address: b}\n    - identity: c\n      port: 5\n",
                 ":6:", "diameter.peers[1].address: required", NULL);
}

/* Records: defaults per record, errors name the record by index. */
static void test_list_of_records(void **state)
{
    (void)state;
    expect_error(BASE "  peers:\n    - {identity: a, address: b}\n    - {identity: c, address: d, port: 0}\n",
                 ":6:", "diameter.peers[1].port", "out of range 1..65535");
    expect_error(BASE "  peers:\n    - identity: a\n      address: b\n    - identity: c\n      adress: d\n",
                 ":8:", "diameter.peers[1].adress: unknown key", "identity, address, port");
    expect_error(BASE "  peers:\n    - {identity: a, address: b}\n    - just-a-name\n",
                 ":6:", "diameter.peers[1]", "expected a mapping");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    expect_error(BASE "  realm: again\n", ":4:", "diameter.realm", "duplicate key (first at line 3)");
    expect_error(BASE "hss:\n  workers: 1\nhss:\n  workers: 2\n", ":6:", "hss: duplicate key", NULL);
}

static void test_top_level_not_mapping(void **state)
{
    (void)state;
    expect_error("- a\n- b\n", ":1:", "top level must be a mapping", NULL);
    expect_error("just a string\n", ":1:", "top level must be a mapping", NULL);
    expect_error(BASE "---\nlog:\n  level: info\n", ":5:", "only one YAML document", NULL);
}

static void test_yaml_syntax_error(void **state)
{
    (void)state;
    /* Unclosed flow sequence: libyaml notices at the end of the input (line 3), the context
     * says where the sequence started. */
    expect_error("diameter:\n  identity: [x\n", "ims-test-config-", ":3: YAML syntax error",
                 "while parsing a flow sequence at line 2");
    /* Bad indentation on line 5. */
    expect_error("log:\n  level: info\ndiameter:\n  identity: a\n realm: b\n", ":5: YAML syntax error",
                 "did not find expected key", NULL);
}

static void test_missing_file(void **state)
{
    (void)state;
    test_cfg cfg;
    char err[512];
    memset(&cfg, 0, sizeof(cfg));
    int rc = ims_cfg_load("/nonexistent/hss.yaml", "hss", schema, &cfg, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_string_equal(err, "cannot read /nonexistent/hss.yaml: No such file or directory");
    assert_null(cfg.hss.database);   /* the defaults applied before the failure were freed */

    rc = ims_cfg_load("/tmp", "hss", schema, &cfg, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_string_equal(err, "cannot read /tmp: Is a directory");

    /* No buffer for the message: still a clean failure. */
    assert_int_equal(ims_cfg_load("/nonexistent/hss.yaml", "hss", schema, &cfg, NULL, 0), -1);
    ims_cfg_free(schema, &cfg);
}

static void test_load_or_exit_exits_2(void **state)
{
    (void)state;
    const char *p = write_yaml("diameter:\n  port: 1\n");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        test_cfg cfg;
        memset(&cfg, 0, sizeof(cfg));
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        ims_cfg_load_or_exit(p, "hss", schema, &cfg);
        _exit(0);
    }
    close(fds[1]);
    char out[1024];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof(out) - 1 && (n = read(fds[0], out + used, sizeof(out) - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(p);
    /* 2, not LeakSanitizer's exit code: the child also released everything before exiting. */
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s: configuration error: ", program_invocation_short_name);
    assert_true(strncmp(out, prefix, strlen(prefix)) == 0);
    assert_non_null(strstr(out, "diameter.identity: required"));
}

static void test_reference_lists_every_key(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ims_cfg_print_reference("hss", schema, f);
    fclose(f);
    assert_non_null(strstr(buf, "| key | type | default | environment | meaning |\n|---|---|---|---|---|\n"));
    assert_non_null(strstr(buf, "| `diameter.port` | integer | `3868` | `IMS_HSS_DIAMETER_PORT` | Diameter TCP port |\n"));
    assert_non_null(strstr(buf, "| `diameter.identity` | string (required) |  | `IMS_HSS_DIAMETER_IDENTITY` |"));
    assert_non_null(strstr(buf, "| `hss.database` | string | `/tmp/x.db` | `IMS_HSS_DATABASE` | database file |"));
    assert_non_null(strstr(buf, "| `diameter.peers` | list of records |  | - |"));
    assert_non_null(strstr(buf, "| `diameter.peers[].address` | string (required) |  | - |"));
    assert_non_null(strstr(buf, "a \\| in help"));
    /* Every shared field has help text. */
    assert_null(strstr(buf, " |  |\n"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config_and_defaults),
        cmocka_unit_test(test_defaults_only),
        cmocka_unit_test(test_null_values_keep_defaults),
        cmocka_unit_test(test_log_level_canonical),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_env_errors_name_the_variable),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_errors_name_file_line_and_key),
        cmocka_unit_test(test_value_checks),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_list_of_records),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_top_level_not_mapping),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_load_or_exit_exits_2),
        cmocka_unit_test(test_reference_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
