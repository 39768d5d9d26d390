/*
 * test_state: the state store (common/ims_state.h) — the memory backend, and the Redis backend
 * against a real redis-server (redis_test_server.h): put/get/del/expire/scan, TTLs mirrored in
 * Redis, namespaces kept apart (glob characters in a prefix), completions never inside the call,
 * the server killed (outstanding requests fail, the owner hears it, requests are refused, the
 * connection comes back) and a server that stops answering (the request timeout).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sofia-sip/su_wait.h>

#include "ims_clock.h"
#include "ims_state.h"
#include "redis_test_server.h"

static su_root_t *root;
static redis_test_server srv;

typedef struct {
    int calls;
    int status;
    char value[256];
    int items;
    char keys[16][128];
    int ups, downs;
} result;

static void done(void *arg, int status, const char *value, size_t len)
{
    result *r = arg;
    r->calls++;
    r->status = status;
    snprintf(r->value, sizeof(r->value), "%.*s", (int)len, value ? value : "");
}

static void item(void *arg, const char *key, const char *value, size_t len)
{
    result *r = arg;
    (void)value;
    (void)len;
    if (r->items < 16)
        snprintf(r->keys[r->items], sizeof(r->keys[0]), "%s", key);
    r->items++;
}

static void conn(void *arg, bool up)
{
    result *r = arg;
    if (up)
        r->ups++;
    else
        r->downs++;
}

/* Runs the loop until *flag reaches n or ms pass. */
static void run_until_n(const int *flag, int n, int ms)
{
    int64_t end = ims_monotonic_ms() + ms;
    while (*flag < n && ims_monotonic_ms() < end)
        su_root_step(root, 10);
}

static void run_until(const int *flag, int ms)
{
    run_until_n(flag, 1, ms);
}

static ims_state *open_store(int backend, const char *prefix, long timeout_ms, result *events)
{
    char hp[64], err[256];
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", srv.port);
    ims_state_cfg cfg = { .backend = backend, .redis = hp, .prefix = (char *)prefix, .timeout_ms = timeout_ms };
    ims_state *st = ims_state_open(&cfg, "default-ns", root, conn, events, err, sizeof(err));
    assert_non_null(st);
    if (backend == IMS_STATE_REDIS)
        run_until(&events->ups, 3000);
    return st;
}

static void roundtrip(ims_state *st)
{
    result r = { 0 };
    assert_int_equal(ims_state_put(st, "reg:alice", "A1", 2, 60, done, &r), 0);
    assert_int_equal(r.calls, 0);   /* never inside the call */
    run_until(&r.calls, 2000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, IMS_STATE_OK);

    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_get(st, "reg:alice", done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_OK);
    assert_string_equal(r.value, "A1");

    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_get(st, "reg:nobody", done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_NOTFOUND);

    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_expire(st, "reg:nobody", 5, done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_NOTFOUND);

    /* scan: one index only */
    assert_int_equal(ims_state_put(st, "reg:bob", "B", 1, 0, NULL, NULL), 0);
    assert_int_equal(ims_state_put(st, "sub:x", "S", 1, 0, NULL, NULL), 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_scan(st, "reg", item, done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_OK);
    assert_int_equal(r.items, 2);
    assert_true((strcmp(r.keys[0], "reg:alice") == 0 && strcmp(r.keys[1], "reg:bob") == 0) ||
                (strcmp(r.keys[1], "reg:alice") == 0 && strcmp(r.keys[0], "reg:bob") == 0));
    assert_int_equal(ims_state_scan(st, "re:g", item, done, &r), -1);   /* not an index */

    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_del(st, "reg:alice", done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_OK);
    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_get(st, "reg:alice", done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_NOTFOUND);
}

static void test_memory(void **state)
{
    (void)state;
    result ev = { 0 };
    ims_state *st = open_store(IMS_STATE_MEMORY, "ns1", 500, &ev);
    assert_false(ims_state_durable(st));
    assert_true(ims_state_up(st, NULL, 0));
    assert_string_equal(ims_state_prefix(st), "ns1");
    roundtrip(st);
    /* a TTL ends a record */
    result r = { 0 };
    assert_int_equal(ims_state_put(st, "reg:short", "x", 1, 1, NULL, NULL), 0);
    int never = 0;
    run_until(&never, 1100);
    assert_int_equal(ims_state_get(st, "reg:short", done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_NOTFOUND);
    /* close completes what is outstanding, as errors */
    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_get(st, "reg:bob", done, &r), 0);
    ims_state_close(st);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, IMS_STATE_ERROR);
}

static long long pttl(const char *key)
{
    redisContext *c = redis_test_connect(&srv);
    assert_non_null(c);
    redisReply *rep = redisCommand(c, "PTTL %s", key);
    long long v = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -100;
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

static void redis_set(const char *key, const char *value)
{
    redisContext *c = redis_test_connect(&srv);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "SET %s %s", key, value));
    redisFree(c);
}

static void test_redis(void **state)
{
    (void)state;
    result ev = { 0 };
    ims_state *st = open_store(IMS_STATE_REDIS, "sip:scscf*[1]:6060", 1000, &ev);
    assert_int_equal(ev.ups, 1);
    assert_true(ims_state_durable(st));
    assert_true(ims_state_up(st, NULL, 0));
    roundtrip(st);

    /* TTLs are Redis's own */
    result r = { 0 };
    assert_int_equal(ims_state_put(st, "reg:ttl", "t", 1, 120, done, &r), 0);
    run_until(&r.calls, 2000);
    long long t = pttl("sip:scscf*[1]:6060:reg:ttl");
    assert_true(t > 110000 && t <= 120000);
    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_expire(st, "reg:ttl", 30, done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_OK);
    t = pttl("sip:scscf*[1]:6060:reg:ttl");
    assert_true(t > 20000 && t <= 30000);

    /* other namespaces are invisible, even those the prefix would match as a glob */
    redis_set("sip:scscfX1:6060:reg:mallory", "m");
    redis_set("sip:scscf2:6060:reg:eve", "e");
    redis_set("other:reg:x", "o");
    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_scan(st, "reg", item, done, &r), 0);
    run_until(&r.calls, 3000);
    assert_int_equal(r.status, IMS_STATE_OK);
    assert_int_equal(r.items, 2);   /* reg:bob, reg:ttl */
    for (int i = 0; i < r.items; i++)
        assert_true(strcmp(r.keys[i], "reg:bob") == 0 || strcmp(r.keys[i], "reg:ttl") == 0);

    /* a scan over many records (several SCAN pages) */
    for (int i = 0; i < 1200; i++) {
        char k[32];
        snprintf(k, sizeof(k), "bulk:%d", i);
        assert_int_equal(ims_state_put(st, k, "v", 1, 60, NULL, NULL), 0);
    }
    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_scan(st, "bulk", item, done, &r), 0);
    run_until(&r.calls, 5000);
    assert_int_equal(r.status, IMS_STATE_OK);
    assert_int_equal(r.items, 1200);
    ims_state_close(st);
}

static void test_redis_killed(void **state)
{
    (void)state;
    result ev = { 0 };
    ims_state *st = open_store(IMS_STATE_REDIS, "killns", 1000, &ev);
    assert_int_equal(ev.ups, 1);
    result r = { 0 };
    assert_int_equal(ims_state_put(st, "reg:a", "1", 1, 60, done, &r), 0);
    redis_test_stop(&srv, 1);   /* kill -9 with the request in flight or just answered */
    run_until(&ev.downs, 3000);
    assert_int_equal(ev.downs, 1);
    assert_int_equal(r.calls, 1);   /* answered or failed, exactly once */
    char why[256];
    assert_false(ims_state_up(st, why, sizeof(why)));
    assert_non_null(strstr(why, "redis 127.0.0.1:"));
    /* down: refused at once, no completion */
    memset(&r, 0, sizeof(r));
    assert_int_equal(ims_state_put(st, "reg:b", "2", 1, 60, done, &r), -1);
    assert_int_equal(ims_state_scan(st, "reg", item, done, &r), -1);
    assert_int_equal(r.calls, 0);
    /* the server comes back on its port: reconnected within the retry interval */
    assert_int_equal(redis_test_start(&srv), 0);
    run_until_n(&ev.ups, 2, 4000);
    assert_int_equal(ev.ups, 2);
    assert_true(ims_state_up(st, NULL, 0));
    assert_int_equal(ims_state_put(st, "reg:b", "2", 1, 60, done, &r), 0);
    run_until(&r.calls, 2000);
    assert_int_equal(r.status, IMS_STATE_OK);
    ims_state_close(st);
}

static void test_redis_hangs(void **state)
{
    (void)state;
    result ev = { 0 };
    ims_state *st = open_store(IMS_STATE_REDIS, "hangns", 200, &ev);
    assert_int_equal(ev.ups, 1);
    kill(srv.pid, SIGSTOP);   /* accepts nothing, answers nothing */
    result r = { 0 };
    int64_t t0 = ims_monotonic_ms();
    assert_int_equal(ims_state_get(st, "reg:x", done, &r), 0);
    run_until(&r.calls, 3000);
    int64_t took = ims_monotonic_ms() - t0;
    assert_int_equal(r.status, IMS_STATE_ERROR);
    assert_true(took >= 200 && took < 1500);
    assert_int_equal(ev.downs, 1);
    kill(srv.pid, SIGCONT);
    run_until_n(&ev.ups, 2, 4000);
    assert_int_equal(ev.ups, 2);
    ims_state_close(st);
}

static void test_bad_config(void **state)
{
    (void)state;
    char err[256];
    ims_state_cfg cfg = { .backend = IMS_STATE_REDIS, .redis = "nohostport", .timeout_ms = 100 };
    assert_null(ims_state_open(&cfg, "ns", root, NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "host:port"));
    cfg.redis = "127.0.0.1:6379";
    assert_null(ims_state_open(&cfg, "", root, NULL, NULL, err, sizeof(err)));
}

static int setup(void **state)
{
    (void)state;
    su_init();
    root = su_root_create(NULL);
    signal(SIGPIPE, SIG_IGN);
    return root && redis_test_start(&srv) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    redis_test_cleanup(&srv);
    su_root_destroy(root);
    su_deinit();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),      cmocka_unit_test(test_redis),       cmocka_unit_test(test_redis_killed),
        cmocka_unit_test(test_redis_hangs), cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
