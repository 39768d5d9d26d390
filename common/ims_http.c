/*
 * ims_http: the HTTP server every NF runs (libmicrohttpd 0.9.75). See ims_http.h.
 *
 * References:
 *   RFC 9110 (HTTP semantics): 404 §15.5.5, 405 §15.5.6, 413 §15.5.14, 503 §15.6.4,
 *     Content-Type §8.3, Location §10.2.2.
 *   RFC 9112 (HTTP/1.1 message syntax): message body length §6.3 (libmicrohttpd does the framing).
 *   Prometheus text exposition format 0.0.4 for /metrics (rendered by ims_metrics.c).
 *
 * Threads: libmicrohttpd's internal thread pool (epoll) runs the access handler; several requests
 * are in flight at once, so the route table and the ready callback are read under locks and NF
 * handlers must be thread-safe.
 *
 * Request life: libmicrohttpd calls the access handler once after the headers, then once per body
 * fragment, then once more with no data. We collect the fragments into one buffer and dispatch
 * only on that last call, so handlers always see the complete body.
 */
#include "ims_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "ims_log.h"
#include "ims_strbuf.h"

#define SUBSYS "http"

#define BODY_LIMIT (8u * 1024 * 1024)     /* largest body handed to a handler */
/* Bodies over BODY_LIMIT are still read (and dropped) up to this size so that the client, which
 * is usually still sending, reliably receives the 413 instead of a connection reset. Beyond it we
 * stop reading: no server should buffer or drain unbounded uploads. */
#define DRAIN_LIMIT (64u * 1024 * 1024)
#define POOL_THREADS 4                     /* handlers may block on SQLite: keep /healthz answering */
#define CONN_TIMEOUT_S 30                  /* idle connections are closed after this */

typedef struct {
    char *method;
    char *prefix;
    size_t prefix_len;
    ims_http_handler fn;
    void *arg;
} route;

struct ims_http {
    struct MHD_Daemon *daemon;
    uint16_t port;

    pthread_rwlock_t routes_lock;
    route *routes;
    size_t n_routes, cap_routes;

    pthread_mutex_t ready_lock;
    ims_http_ready_cb ready_cb;
    void *ready_arg;

    char start_err[256];                    /* last libmicrohttpd message during start */
    bool starting;
};

/* Per-request state, freed by the completion callback (also runs when a client disconnects
 * mid-upload, when the access handler is never called again). */
typedef struct {
    ims_strbuf body;
    bool too_big;
    size_t drained;
} req_ctx;

/* ---------- response helpers ---------- */

void ims_http_error(ims_http_resp *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* json-c does the string escaping; NOSLASHESCAPE keeps paths readable ("/x", not "\/x"). */
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
    free(resp->body);
    resp->body = strdup(s ? s : "{\"error\":\"internal error\"}");
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->status = status;
    resp->content_type = "application/json";
    json_object_put(o);
}

void ims_http_text(ims_http_resp *resp, int status, const char *content_type, const char *text)
{
    free(resp->body);
    resp->body = strdup(text ? text : "");
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->status = status;
    resp->content_type = content_type ? content_type : "text/plain; charset=utf-8";
}

const char *ims_http_query(const ims_http_req *req, const char *key)
{
    if (!req || !req->conn || !key)
        return NULL;
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND,
                                       key);
}

/* Hands resp to libmicrohttpd; takes ownership of resp->body in every case. */
static enum MHD_Result send_resp(struct MHD_Connection *conn, ims_http_resp *resp)
{
    struct MHD_Response *r;
    if (resp->body) {
        size_t len = resp->body_len ? resp->body_len : strlen(resp->body);
        /* MUST_FREE: libmicrohttpd free()s the buffer once it has been sent. */
        r = MHD_create_response_from_buffer(len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (!r)
            free(resp->body);
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    resp->body = NULL;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    if (resp->location[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
    int status = resp->status ? resp->status : 200;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---------- built-in routes ---------- */

static void builtin_readyz(ims_http *h, ims_http_resp *resp)
{
    pthread_mutex_lock(&h->ready_lock);
    ims_http_ready_cb cb = h->ready_cb;
    void *arg = h->ready_arg;
    pthread_mutex_unlock(&h->ready_lock);

    /* No callback means the NF has nothing to wait for. */
    char why[256] = "";
    if (!cb || cb(arg, why, sizeof(why))) {
        ims_http_text(resp, 200, "text/plain; charset=utf-8", "ready");
        return;
    }
    why[sizeof(why) - 1] = '\0';
    char msg[300];
    snprintf(msg, sizeof(msg), "not ready: %s", why[0] ? why : "unknown reason");
    ims_http_text(resp, 503, "text/plain; charset=utf-8", msg);
}

/* Returns true when path is a built-in and resp has been filled. */
static bool builtin(ims_http *h, const char *method, const char *path, ims_http_resp *resp)
{
    bool health = strcmp(path, "/healthz") == 0;
    bool ready = strcmp(path, "/readyz") == 0;
    bool metrics = strcmp(path, "/metrics") == 0;
    if (!health && !ready && !metrics)
        return false;
    /* HEAD is answered like GET; libmicrohttpd drops the body (RFC 9110 §9.3.2). */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        ims_http_error(resp, 405, "method %s not allowed on %s", method, path);
        return true;
    }
    if (health) {
        ims_http_text(resp, 200, "text/plain; charset=utf-8", "ok");
    } else if (ready) {
        builtin_readyz(h, resp);
    } else {
        char *text = ims_metrics_render();
        if (!text) {
            ims_http_error(resp, 500, "out of memory rendering metrics");
            return true;
        }
        free(resp->body);
        resp->body = text;
        resp->body_len = strlen(text);
        resp->status = 200;
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    }
    return true;
}

/* ---------- route table ---------- */

/* Does path fall under prefix (equal, or prefix + "/...")? Sets *rest to the part after it. */
static bool prefix_match(const route *r, const char *path, const char **rest)
{
    if (strncmp(path, r->prefix, r->prefix_len) != 0)
        return false;
    const char *p = path + r->prefix_len;
    /* A prefix that ends in '/' (e.g. "/") already supplies the boundary. */
    if (r->prefix_len > 0 && r->prefix[r->prefix_len - 1] == '/') {
        *rest = p;
        return true;
    }
    if (*p == '\0') {
        *rest = p;
        return true;
    }
    if (*p == '/') {
        *rest = p + 1;
        return true;
    }
    return false; /* "/apix" is not under "/api" */
}

/*
 * Longest prefix among the routes that accept the method wins. If the path is under some route but
 * none of them accepts the method, the answer is 405 rather than 404: the resource exists.
 * Returns 200 (found, *out filled, *rest set), 405 or 404.
 */
static int route_lookup(ims_http *h, const char *method, const char *path, route *out,
                        const char **rest)
{
    int result = 404;
    size_t best = 0;
    pthread_rwlock_rdlock(&h->routes_lock);
    for (size_t i = 0; i < h->n_routes; i++) {
        const route *r = &h->routes[i];
        const char *rr;
        if (!prefix_match(r, path, &rr))
            continue;
        if (r->method && strcmp(r->method, method) != 0) {
            if (result == 404)
                result = 405;
            continue;
        }
        if (result != 200 || r->prefix_len > best) {
            result = 200;
            best = r->prefix_len;
            /* Copy the entry out: another thread may realloc the table after we unlock. Handler
             * and arg stay valid: routes are never removed while the server runs. */
            *out = *r;
            *rest = rr;
        }
    }
    pthread_rwlock_unlock(&h->routes_lock);
    return result;
}

int ims_http_route(ims_http *h, const char *method, const char *prefix, ims_http_handler fn,
                   void *arg)
{
    if (!h || !prefix || prefix[0] != '/' || !fn)
        return -1;
    route r = { .method = method ? strdup(method) : NULL, .prefix = strdup(prefix),
                .prefix_len = strlen(prefix), .fn = fn, .arg = arg };
    if (!r.prefix || (method && !r.method)) {
        free(r.method);
        free(r.prefix);
        return -1;
    }
    pthread_rwlock_wrlock(&h->routes_lock);
    if (h->n_routes == h->cap_routes) {
        size_t ncap = h->cap_routes ? h->cap_routes * 2 : 16;
        route *nr = realloc(h->routes, ncap * sizeof(*nr));
        if (!nr) {
            pthread_rwlock_unlock(&h->routes_lock);
            free(r.method);
            free(r.prefix);
            return -1;
        }
        h->routes = nr;
        h->cap_routes = ncap;
    }
    h->routes[h->n_routes++] = r;
    pthread_rwlock_unlock(&h->routes_lock);
    return 0;
}

/* ---------- libmicrohttpd callbacks ---------- */

static void dispatch(ims_http *h, struct MHD_Connection *conn, const char *method,
                     const char *path, req_ctx *ctx, ims_http_resp *resp)
{
    if (ctx->too_big) {
        ims_http_error(resp, 413, "request body too large (limit %u bytes)", BODY_LIMIT);
        return;
    }
    if (builtin(h, method, path, resp))
        return;

    route r;
    const char *rest = "";
    int found = route_lookup(h, method, path, &r, &rest);
    if (found == 404) {
        ims_http_error(resp, 404, "no such resource: %s", path);
        return;
    }
    if (found == 405) {
        ims_http_error(resp, 405, "method %s not allowed on %s", method, path);
        return;
    }
    ims_http_req req = {
        .method = method,
        .path = path,
        .path_rest = rest,
        .body = ctx->body.s ? ctx->body.s : "",
        .body_len = ctx->body.len,
        .conn = conn,
    };
    r.fn(r.arg, &req, resp);
}

static bool body_append(req_ctx *ctx, const char *data, size_t n)
{
    if (ctx->too_big || n > BODY_LIMIT - ctx->body.len) {
        ctx->too_big = true;
        ctx->drained += n;
        /* Free what we have: it will never be used. */
        ims_strbuf_free(&ctx->body);
        return ctx->drained <= DRAIN_LIMIT;
    }
    /* The builder keeps a NUL after the data: handlers get a C string for free. */
    ims_strbuf_append(&ctx->body, data, n);
    return !ctx->body.failed;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    ims_http *h = cls;
    req_ctx *ctx = *con_cls;
    (void)version;

    if (!ctx) {
        /* First call: headers only. */
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return MHD_NO;
        *con_cls = ctx;
        /* A declared length beyond what we would even drain: answer now (the client may be
         * waiting for 100-continue) rather than read it. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > DRAIN_LIMIT) {
            ims_http_resp resp = { .status = 0 };
            ims_http_error(&resp, 413, "request body too large (limit %u bytes)", BODY_LIMIT);
            return send_resp(conn, &resp);
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        if (!body_append(ctx, upload_data, *upload_data_size))
            return MHD_NO; /* out of memory or an upload beyond DRAIN_LIMIT: drop the connection */
        *upload_data_size = 0;
        return MHD_YES;
    }

    /* Last call: the whole body is here. */
    ims_http_resp resp = { .status = 200, .content_type = NULL, .body = NULL };
    dispatch(h, conn, method, url, ctx, &resp);
    IMS_DEBUG(SUBSYS, "%s %s -> %d", method, url, resp.status ? resp.status : 200);
    return send_resp(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_ctx *ctx = *con_cls;
    (void)cls, (void)conn, (void)toe;
    if (!ctx)
        return;
    ims_strbuf_free(&ctx->body);
    free(ctx);
    *con_cls = NULL;
}

/* libmicrohttpd's own messages go to our log; during start we also keep the last one, because
 * MHD_start_daemon() reports failure (e.g. a bind error) only through the logger. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    ims_http *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (h->starting)
        snprintf(h->start_err, sizeof(h->start_err), "%s", msg);
    IMS_WARN(SUBSYS, "microhttpd: %s", msg);
}

/* ---------- lifecycle ---------- */

/* cfg->listen must be an IPv4 or IPv6 literal ("[::1]" accepted too): the HTTP endpoint is an
 * operator-chosen interface, and a name that resolves to several addresses would be ambiguous. */
static int parse_listen(const char *listen, long port, struct sockaddr_storage *ss, bool *v6)
{
    char addr[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(listen);
    if (n >= sizeof(addr))
        return -1;
    memcpy(addr, listen, n + 1);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        addr[n - 1] = '\0';
        memmove(addr, addr + 1, n - 1);
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *v6 = false;
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return 0;
    }
    return -1;
}

ims_http *ims_http_start(const ims_http_cfg *cfg, char *err, size_t errlen)
{
    if (!cfg) {
        ims_set_err(err, errlen, "http: no configuration");
        return NULL;
    }
    if (!cfg->enabled) {
        ims_set_err(err, errlen, "http: server disabled by configuration (http.enabled: false)");
        return NULL;
    }
    const char *listen = cfg->listen && cfg->listen[0] ? cfg->listen : "127.0.0.1";
    if (cfg->port < 0 || cfg->port > 65535) {
        ims_set_err(err, errlen, "http: invalid port %ld (0..65535, 0 = any free port)", cfg->port);
        return NULL;
    }
    struct sockaddr_storage ss;
    bool v6 = false;
    if (parse_listen(listen, cfg->port, &ss, &v6) != 0) {
        ims_set_err(err, errlen, "http: invalid listen address '%s' (need an IPv4 or IPv6 literal)",
                listen);
        return NULL;
    }

    ims_http *h = calloc(1, sizeof(*h));
    if (!h) {
        ims_set_err(err, errlen, "http: out of memory");
        return NULL;
    }
    pthread_rwlock_init(&h->routes_lock, NULL);
    pthread_mutex_init(&h->ready_lock, NULL);

    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    h->starting = true;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_access, h,
        /* First, or libmicrohttpd prints option errors to stderr itself. */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)POOL_THREADS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_END);
    h->starting = false;
    if (!h->daemon) {
        ims_set_err(err, errlen, "http: cannot listen on %s%s%s:%ld: %s", v6 ? "[" : "", listen,
                v6 ? "]" : "", cfg->port, h->start_err[0] ? h->start_err : "microhttpd failed");
        pthread_rwlock_destroy(&h->routes_lock);
        pthread_mutex_destroy(&h->ready_lock);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : (uint16_t)cfg->port;
    IMS_INFO(SUBSYS, "listening on %s port %u", listen, (unsigned)h->port);
    return h;
}

uint16_t ims_http_port(const ims_http *h)
{
    return h ? h->port : 0;
}

void ims_http_set_ready(ims_http *h, ims_http_ready_cb cb, void *arg)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->ready_lock);
    h->ready_cb = cb;
    h->ready_arg = arg;
    pthread_mutex_unlock(&h->ready_lock);
}

void ims_http_stop(ims_http *h)
{
    if (!h)
        return;
    /* Joins the pool threads: no handler runs after this returns. */
    MHD_stop_daemon(h->daemon);
    for (size_t i = 0; i < h->n_routes; i++) {
        free(h->routes[i].method);
        free(h->routes[i].prefix);
    }
    free(h->routes);
    pthread_rwlock_destroy(&h->routes_lock);
    pthread_mutex_destroy(&h->ready_lock);
    free(h);
}
