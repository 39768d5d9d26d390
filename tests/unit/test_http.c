/*
 * Unit tests for ims_http (server), ims_metrics (registry + Prometheus 0.0.4 rendering) and
 * ims_http_client. One server on 127.0.0.1, ephemeral port, shared by all tests; the client under
 * test is the only way we talk to it, so both sides are exercised together. A tiny raw-socket
 * server checks the client's chunked and read-to-EOF paths, which libmicrohttpd never produces for
 * our buffer responses, and the request head and error messages the client (libcurl) produces.
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ims_http.h"

static ims_http *g_http;
static uint16_t g_port;

/* ---------- handlers ---------- */

/* Echoes the body; 500 if the body is not the NUL-terminated string the API promises. */
static void h_echo(void *arg, const ims_http_req *req, ims_http_resp *resp)
{
    (void)arg;
    if (req->body[req->body_len] != '\0' || strlen(req->body) != req->body_len) {
        ims_http_error(resp, 500, "body not NUL-terminated at body_len");
        return;
    }
    resp->body = malloc(req->body_len + 1);
    memcpy(resp->body, req->body, req->body_len + 1);
    resp->body_len = req->body_len;
    resp->status = 201;
    resp->content_type = "application/octet-stream";
    snprintf(resp->location, sizeof(resp->location), "/echo/1");
}

/* Replies "<tag>:<path_rest>" so tests see which route won. */
static void h_tag(void *arg, const ims_http_req *req, ims_http_resp *resp)
{
    char out[512];
    snprintf(out, sizeof(out), "%s:%s", (const char *)arg, req->path_rest);
    ims_http_text(resp, 200, "text/plain", out);
}

static void h_query(void *arg, const ims_http_req *req, ims_http_resp *resp)
{
    (void)arg;
    const char *name = ims_http_query(req, "name");
    const char *missing = ims_http_query(req, "missing");
    char out[512];
    snprintf(out, sizeof(out), "name=%s missing=%s", name ? name : "(null)",
             missing ? missing : "(null)");
    ims_http_text(resp, 200, "text/plain", out);
}

static int group_setup(void **state)
{
    (void)state;
    ims_http_cfg cfg = { .enabled = true, .listen = "127.0.0.1", .port = 0 };
    char err[256] = "";
    g_http = ims_http_start(&cfg, err, sizeof(err));
    if (!g_http) {
        fprintf(stderr, "ims_http_start: %s\n", err);
        return -1;
    }
    g_port = ims_http_port(g_http);
    if (g_port == 0)
        return -1;
    int rc = 0;
    rc |= ims_http_route(g_http, "POST", "/echo", h_echo, NULL);
    rc |= ims_http_route(g_http, "GET", "/api", h_tag, "api");
    rc |= ims_http_route(g_http, "GET", "/api/v1/subscribers", h_tag, "subs-get");
    rc |= ims_http_route(g_http, "PUT", "/api/v1/subscribers", h_tag, "subs-put");
    rc |= ims_http_route(g_http, "POST", "/only-post", h_tag, "only-post");
    rc |= ims_http_route(g_http, NULL, "/any", h_tag, "any");
    rc |= ims_http_route(g_http, "GET", "/q", h_query, NULL);
    return rc == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    ims_http_stop(g_http);
    return 0;
}

/* Request helper: status, body (caller frees). Fails the test on client errors. */
static char *req(const char *method, const char *path, const char *body, size_t body_len,
                 int *status)
{
    char err[256] = "";
    char *out = NULL;
    int rc = ims_http_client_request("127.0.0.1", g_port, method, path, "application/json", body,
                                     body_len, 10000, status, &out, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s %s: %s\n", method, path, err);
    assert_int_equal(rc, 0);
    assert_non_null(out);
    return out;
}

/* ---------- built-ins ---------- */

static void test_healthz(void **state)
{
    (void)state;
    int st = 0;
    char *b = req("GET", "/healthz", NULL, 0, &st);
    assert_int_equal(st, 200);
    assert_string_equal(b, "ok");
    free(b);
}

static bool g_ready;
static bool ready_cb(void *arg, char *why, size_t whylen)
{
    if (__atomic_load_n(&g_ready, __ATOMIC_SEQ_CST))
        return true;
    snprintf(why, whylen, "%s", (const char *)arg);
    return false;
}

static void test_readyz(void **state)
{
    (void)state;
    int st = 0;
    char *b = req("GET", "/readyz", NULL, 0, &st);   /* no callback: ready */
    assert_int_equal(st, 200);
    assert_string_equal(b, "ready");
    free(b);

    ims_http_set_ready(g_http, ready_cb, "diameter peer hss.ims.lab not open");
    b = req("GET", "/readyz", NULL, 0, &st);
    assert_int_equal(st, 503);
    assert_non_null(strstr(b, "diameter peer hss.ims.lab not open"));
    free(b);

    __atomic_store_n(&g_ready, true, __ATOMIC_SEQ_CST);
    b = req("GET", "/readyz", NULL, 0, &st);
    assert_int_equal(st, 200);
    assert_string_equal(b, "ready");
    free(b);
    ims_http_set_ready(g_http, NULL, NULL);
}

/* ---------- metrics ---------- */

static ims_metric *g_ctr;
static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++)
        ims_metric_inc(g_ctr);
    return NULL;
}

static int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_metrics(void **state)
{
    (void)state;
    g_ctr = ims_metric_counter("test_requests_total{cmd=\"MAR\"}", "Requests handled.");
    ims_metric *other = ims_metric_counter("test_requests_total{cmd=\"SAR\"}", "Requests handled.");
    assert_non_null(g_ctr);
    assert_ptr_equal(ims_metric_counter("test_requests_total{cmd=\"MAR\"}", "x"), g_ctr);
    /* Same family, other type: refused (would need a second # TYPE). */
    assert_null(ims_metric_gauge("test_requests_total{cmd=\"UAR\"}", "x"));
    assert_null(ims_metric_counter("bad name", "x"));

    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, bump, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(ims_metric_value(g_ctr), 40000);
    ims_metric_add(other, 5);

    ims_metric *g = ims_metric_gauge("test_peers_open", "Open Diameter peers.\nSecond line.");
    ims_metric_set(g, 7);
    ims_metric_add(g, -2);

    ims_metric *h = ims_metric_histogram("test_latency_seconds{cmd=\"MAR\"}", "MAR latency.");
    ims_metric_observe_us(h, 300);      /* <= 0.0005 */
    ims_metric_observe_us(h, 500);      /* <= 0.0005 (le is inclusive) */
    ims_metric_observe_us(h, 900);      /* <= 0.001 */
    ims_metric_observe_us(h, 30000);    /* <= 0.05 */
    ims_metric_observe_us(h, 9000000);  /* +Inf only */
    ims_metric *hplain = ims_metric_histogram("test_plain_seconds", "No labels.");
    ims_metric_observe_us(hplain, 1500000);

    int st = 0;
    char *b = req("GET", "/metrics", NULL, 0, &st);
    assert_int_equal(st, 200);

    assert_non_null(strstr(b, "test_requests_total{cmd=\"MAR\"} 40000\n"));
    assert_non_null(strstr(b, "test_requests_total{cmd=\"SAR\"} 5\n"));
    assert_int_equal(count_substr(b, "# TYPE test_requests_total counter\n"), 1);
    assert_int_equal(count_substr(b, "# HELP test_requests_total "), 1);
    /* The family's samples directly follow its header. */
    assert_non_null(strstr(b, "# TYPE test_requests_total counter\n"
                              "test_requests_total{cmd=\"MAR\"} 40000\n"
                              "test_requests_total{cmd=\"SAR\"} 5\n"));

    assert_non_null(strstr(b, "# HELP test_peers_open Open Diameter peers.\\nSecond line.\n"));
    assert_non_null(strstr(b, "# TYPE test_peers_open gauge\ntest_peers_open 5\n"));

    assert_int_equal(count_substr(b, "# TYPE test_latency_seconds histogram\n"), 1);
    assert_non_null(strstr(b, "test_latency_seconds_bucket{cmd=\"MAR\",le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(b, "test_latency_seconds_bucket{cmd=\"MAR\",le=\"0.001\"} 3\n"));
    assert_non_null(strstr(b, "test_latency_seconds_bucket{cmd=\"MAR\",le=\"0.025\"} 3\n"));
    assert_non_null(strstr(b, "test_latency_seconds_bucket{cmd=\"MAR\",le=\"0.05\"} 4\n"));
    assert_non_null(strstr(b, "test_latency_seconds_bucket{cmd=\"MAR\",le=\"5\"} 4\n"));
    assert_non_null(strstr(b, "test_latency_seconds_bucket{cmd=\"MAR\",le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(b, "test_latency_seconds_sum{cmd=\"MAR\"} 9.031700\n"));
    assert_non_null(strstr(b, "test_latency_seconds_count{cmd=\"MAR\"} 5\n"));
    assert_int_equal(ims_metric_value(h), 5);

    assert_non_null(strstr(b, "test_plain_seconds_bucket{le=\"1\"} 0\n"));
    assert_non_null(strstr(b, "test_plain_seconds_bucket{le=\"2.5\"} 1\n"));
    assert_non_null(strstr(b, "test_plain_seconds_sum 1.500000\n"));
    assert_non_null(strstr(b, "test_plain_seconds_count 1\n"));
    free(b);
}

/* ---------- routes ---------- */

static void test_post_body(void **state)
{
    (void)state;
    int st = 0;
    const char *small = "{\"impi\":\"alice@ims.lab\"}";
    char *b = req("POST", "/echo", small, strlen(small), &st);
    assert_int_equal(st, 201);
    assert_string_equal(b, small);
    free(b);

    /* Empty body: handler gets "" and 0. */
    b = req("POST", "/echo", NULL, 0, &st);
    assert_int_equal(st, 201);
    assert_string_equal(b, "");
    free(b);

    /* 1 MiB: arrives in many fragments; the handler must see all of it at once. */
    size_t n = 1024 * 1024;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('!' + (i * 7 + i / 1000) % 90);
    big[n] = '\0';
    b = req("POST", "/echo", big, n, &st);
    assert_int_equal(st, 201);
    assert_int_equal(strlen(b), n);
    assert_memory_equal(b, big, n);
    free(b);
    free(big);
}

static void expect_body(const char *method, const char *path, int status, const char *body)
{
    int st = 0;
    char *b = req(method, path, NULL, 0, &st);
    assert_int_equal(st, status);
    assert_string_equal(b, body);
    free(b);
}

static void test_routing(void **state)
{
    (void)state;
    expect_body("GET", "/api/v1/subscribers/alice@ims.lab", 200, "subs-get:alice@ims.lab");
    expect_body("GET", "/api/v1/subscribers", 200, "subs-get:");
    expect_body("GET", "/api/v1/subscribers/a/b", 200, "subs-get:a/b");
    expect_body("PUT", "/api/v1/subscribers/bob", 200, "subs-put:bob");
    expect_body("GET", "/api/v1/other", 200, "api:v1/other");
    expect_body("GET", "/api", 200, "api:");
    expect_body("DELETE", "/any/x", 200, "any:x");
    /* "/apix" is not under "/api". */
    expect_body("GET", "/apix", 404, "{\"error\":\"no such resource: /apix\"}");
}

static void test_errors(void **state)
{
    (void)state;
    expect_body("GET", "/nope", 404, "{\"error\":\"no such resource: /nope\"}");
    expect_body("GET", "/only-post/x", 405, "{\"error\":\"method GET not allowed on /only-post/x\"}");
    expect_body("DELETE", "/api/v1/subscribers/bob", 405,
                "{\"error\":\"method DELETE not allowed on /api/v1/subscribers/bob\"}");
    expect_body("POST", "/healthz", 405, "{\"error\":\"method POST not allowed on /healthz\"}");
}

static void test_body_too_large(void **state)
{
    (void)state;
    size_t n = 9u * 1024 * 1024;
    char *big = malloc(n);
    memset(big, 'x', n);
    int st = 0;
    char *b = req("POST", "/echo", big, n, &st);
    assert_int_equal(st, 413);
    assert_non_null(strstr(b, "\"error\":\"request body too large"));
    free(b);
    free(big);

    /* The server is still fine afterwards. */
    expect_body("GET", "/healthz", 200, "ok");
}

static void test_query(void **state)
{
    (void)state;
    expect_body("GET", "/q?name=alice&x=1", 200, "name=alice missing=(null)");
    expect_body("GET", "/q?x=1&name=sip%3Abob%40ims.lab", 200, "name=sip:bob@ims.lab missing=(null)");
    expect_body("GET", "/q", 200, "name=(null) missing=(null)");
}

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        char err[256];
        char *out = NULL;
        int st = 0;
        if (ims_http_client_request("127.0.0.1", g_port, "GET", "/healthz", NULL, NULL, 0, 10000,
                                    &st, &out, err, sizeof(err)) != 0 || st != 200 ||
            strcmp(out, "ok") != 0) {
            free(out);
            return (void *)1;
        }
        free(out);
    }
    return NULL;
}

static void test_concurrent_requests(void **state)
{
    (void)state;
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
}

/* ---------- start errors ---------- */

static void test_start_errors(void **state)
{
    (void)state;
    char err[256] = "";
    ims_http_cfg bad = { .enabled = true, .listen = "not-an-address", .port = 0 };
    assert_null(ims_http_start(&bad, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid listen address 'not-an-address'"));

    /* Port already taken by our own server. */
    ims_http_cfg busy = { .enabled = true, .listen = "127.0.0.1", .port = g_port };
    err[0] = '\0';
    assert_null(ims_http_start(&busy, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));

    /* IPv6 loopback works when the host has it; skip quietly otherwise. */
    ims_http_cfg v6 = { .enabled = true, .listen = "::1", .port = 0 };
    ims_http *h6 = ims_http_start(&v6, err, sizeof(err));
    if (h6) {
        int st = 0;
        char *out = NULL;
        assert_int_equal(ims_http_client_request("::1", ims_http_port(h6), "GET", "/healthz", NULL,
                                                 NULL, 0, 5000, &st, &out, err, sizeof(err)), 0);
        assert_int_equal(st, 200);
        free(out);
        ims_http_stop(h6);
    }
}

/* The client API hides headers, so check Content-Type and Location over a raw socket. */
static void test_response_headers(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(g_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char *rq = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     "Connection: close\r\n\r\nhi";
    assert_int_equal(send(fd, rq, strlen(rq), MSG_NOSIGNAL), (ssize_t)strlen(rq));
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 201"));
    assert_non_null(strcasestr(buf, "\r\nContent-Type: application/octet-stream\r\n"));
    assert_non_null(strcasestr(buf, "\r\nLocation: /echo/1\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\nhi"));
}

/* ---------- client ---------- */

static uint16_t free_port(int *fd_out, bool keep_listening)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);
    if (keep_listening) {
        assert_int_equal(listen(fd, 4), 0);
        *fd_out = fd;
    } else {
        close(fd);
    }
    return ntohs(a.sin_port);
}

static void test_client_refused(void **state)
{
    (void)state;
    uint16_t port = free_port(NULL, false);
    char err[256] = "";
    char *out = (char *)1;
    int st = 0;
    int rc = ims_http_client_request("127.0.0.1", port, "GET", "/", NULL, NULL, 0, 2000, &st, &out,
                                     err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_null(out);
    char want[128];
    snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%u: Connection refused", port);
    assert_string_equal(err, want);
}

/* Raw server: accepts one connection, reads the request head, writes a canned reply, closes. */
typedef struct {
    int fd;
    const char *reply;      /* NULL: never answer, wait until the client gives up */
    size_t body;            /* request body bytes to read before answering */
    char head[4096];        /* the request head as received */
} raw_srv;

static void *raw_serve(void *arg)
{
    raw_srv *s = arg;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        ssize_t n = recv(c, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    memcpy(s->head, buf, len + 1);
    const char *end = strstr(buf, "\r\n\r\n");
    size_t got = end ? len - (size_t)(end + 4 - buf) : 0;
    while (got < s->body) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (!s->reply) {
        while (recv(c, buf, sizeof(buf), 0) > 0)
            ;
        close(c);
        return NULL;
    }
    /* Write in two pieces so the client must reassemble. */
    size_t rl = strlen(s->reply);
    send(c, s->reply, rl / 2, MSG_NOSIGNAL);
    usleep(20000);
    send(c, s->reply + rl / 2, rl - rl / 2, MSG_NOSIGNAL);
    close(c);
    return NULL;
}

/* Runs server s for one request from the client under test; returns the client's result. */
static int raw_call(raw_srv *s, const char *method, const char *body, size_t body_len, int timeout_ms,
                    int *st, char **out, char *err, size_t errlen)
{
    uint16_t port = free_port(&s->fd, true);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, raw_serve, s), 0);
    int rc = ims_http_client_request("127.0.0.1", port, method, "/x", "application/json", body,
                                     body_len, timeout_ms, st, out, err, errlen);
    pthread_join(t, NULL);
    close(s->fd);
    return rc;
}

static void raw_exchange(const char *reply, int expect_rc, int expect_status, const char *expect)
{
    raw_srv s = { .reply = reply };
    char err[256] = "";
    char *out = NULL;
    int st = 0;
    int rc = raw_call(&s, "GET", NULL, 0, 5000, &st, &out, err, sizeof(err));
    assert_int_equal(rc, expect_rc);
    if (rc == 0) {
        assert_int_equal(st, expect_status);
        assert_string_equal(out, expect);
    } else {
        assert_non_null(strstr(err, expect));
    }
    free(out);
}

/* One request to a raw server -> the request head it saw (for the header checks below). */
static void raw_head(const char *method, const char *body, size_t body_len, char *head, size_t len)
{
    raw_srv s = { .reply = "HTTP/1.1 204 No Content\r\n\r\n", .body = body_len };
    char err[256] = "";
    char *out = NULL;
    int st = 0;
    assert_int_equal(raw_call(&s, method, body, body_len, 5000, &st, &out, err, sizeof(err)), 0);
    assert_int_equal(st, 204);
    assert_string_equal(out, "");
    free(out);
    snprintf(head, len, "%s", s.head);
}

/* The request as imsctl has always sent it (libcurl adds headers of its own unless told not to):
 * Content-Length whenever a body is given or the method takes one, Content-Type only with a
 * non-empty body, no Expect: 100-continue, Connection: close. */
static void test_client_request_head(void **state)
{
    (void)state;
    char h[4096];
    raw_head("POST", "{}", 2, h, sizeof(h));
    assert_non_null(strstr(h, "POST /x HTTP/1.1\r\n"));
    assert_non_null(strcasestr(h, "\r\nContent-Length: 2\r\n"));
    assert_non_null(strcasestr(h, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strcasestr(h, "\r\nConnection: close\r\n"));
    assert_non_null(strcasestr(h, "\r\nUser-Agent: ims-http-client\r\n"));
    assert_null(strcasestr(h, "\r\nExpect:"));
    /* libcurl would ask for 100-continue on a large body (and wait a second for it). */
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    raw_head("PUT", big, n, h, sizeof(h));
    free(big);
    assert_non_null(strstr(h, "PUT /x HTTP/1.1\r\n"));
    assert_non_null(strcasestr(h, "\r\nContent-Length: 2097152\r\n"));
    assert_null(strcasestr(h, "\r\nExpect:"));

    raw_head("GET", NULL, 0, h, sizeof(h));
    assert_non_null(strstr(h, "GET /x HTTP/1.1\r\n"));
    assert_null(strcasestr(h, "\r\nContent-Length:"));
    assert_null(strcasestr(h, "\r\nContent-Type:"));

    /* imsctl passes "" for requests without a body: the method stays what it is. */
    raw_head("GET", "", 0, h, sizeof(h));
    assert_non_null(strstr(h, "GET /x HTTP/1.1\r\n"));
    assert_non_null(strcasestr(h, "\r\nContent-Length: 0\r\n"));
    assert_null(strcasestr(h, "\r\nContent-Type:"));
    raw_head("DELETE", "", 0, h, sizeof(h));
    assert_non_null(strstr(h, "DELETE /x HTTP/1.1\r\n"));
    assert_non_null(strcasestr(h, "\r\nContent-Length: 0\r\n"));
    assert_null(strcasestr(h, "\r\nContent-Type:"));
}

/* A server that never answers: the timeout bounds the exchange and says what was awaited. */
static void test_client_timeout(void **state)
{
    (void)state;
    raw_srv s = { .reply = NULL };
    char err[256] = "";
    char *out = NULL;
    int st = 0;
    assert_int_equal(raw_call(&s, "GET", NULL, 0, 300, &st, &out, err, sizeof(err)), -1);
    assert_null(out);
    assert_non_null(strstr(err, "127.0.0.1:"));
    assert_non_null(strstr(err, ": timed out waiting for the response"));
}

/* The API is reached directly: a proxy named in the environment (as on many build hosts) must not
 * capture the request (libcurl would use it by default). */
static void test_client_ignores_proxy_env(void **state)
{
    (void)state;
    uint16_t dead = free_port(NULL, false);
    char proxy[64];
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", dead);
    setenv("http_proxy", proxy, 1);
    setenv("HTTP_PROXY", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);
    expect_body("GET", "/healthz", 200, "ok");
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
}

static void test_client_framing(void **state)
{
    (void)state;
    raw_exchange("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n",
                 0, 200, "Wikipedia in\r\n\r\nchunks.");
    raw_exchange("HTTP/1.0 202 Accepted\r\nContent-Type: text/plain\r\n\r\nuntil the end", 0, 202,
                 "until the end");
    raw_exchange("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
                 "trailing junk ignored", 0, 200, "hello");
    raw_exchange("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", -1, 0,
                 "connection closed before the response was complete");
    raw_exchange("garbage\r\n\r\n", -1, 0, "malformed HTTP status line");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_readyz),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_post_body),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_concurrent_requests),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_response_headers),
        cmocka_unit_test(test_client_refused),
        cmocka_unit_test(test_client_framing),
        cmocka_unit_test(test_client_request_head),
        cmocka_unit_test(test_client_timeout),
        cmocka_unit_test(test_client_ignores_proxy_env),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
