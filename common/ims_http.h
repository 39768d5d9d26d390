/*
 * ims_http: the HTTP server every NF runs (libmicrohttpd, internal thread pool).
 *
 * Built-in routes:
 *   GET /healthz  200 "ok" while the process runs
 *   GET /readyz   200 "ready" when the ready callback says so (e.g. Diameter peers up), else 503 with
 *                 the reason the callback gave
 *   GET /metrics  Prometheus text exposition format 0.0.4 of the process's ims_metric registry
 * NF routes (the HSS provisioning API) are added with ims_http_route().
 *
 * Handlers run on libmicrohttpd threads, several at once: they must be thread-safe.
 */
#ifndef IMS_HTTP_H
#define IMS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_config.h"

typedef struct ims_http ims_http;

typedef struct {
    const char *method;         /* "GET", "POST", ... */
    const char *path;           /* URL path without query, e.g. "/api/v1/subscribers/alice" */
    const char *path_rest;      /* part of path after the route's prefix (no leading '/'), "" if none */
    const char *body;           /* request body, NUL-terminated (may be "" ) */
    size_t body_len;
    void *conn;                 /* opaque (for ims_http_query) */
} ims_http_req;

/* Value of query argument `key` or NULL. */
const char *ims_http_query(const ims_http_req *req, const char *key);

typedef struct {
    int status;                 /* default 200 */
    const char *content_type;   /* default "application/json" (static string) */
    char *body;                 /* malloc'd; the server frees it. NULL = empty body */
    size_t body_len;            /* 0 = strlen(body) */
    char location[256];         /* optional Location header ("" = none) */
} ims_http_resp;

/* Convenience: set status + JSON body {"error": "<msg>"} (msg printf-formatted). */
void ims_http_error(ims_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Convenience: status + body copied from a string. */
void ims_http_text(ims_http_resp *resp, int status, const char *content_type, const char *text);

typedef void (*ims_http_handler)(void *arg, const ims_http_req *req, ims_http_resp *resp);

/* ready callback: return true when ready; otherwise write a short reason into why. */
typedef bool (*ims_http_ready_cb)(void *arg, char *why, size_t whylen);

/* Starts listening (cfg->listen:cfg->port; port 0 = ephemeral). NULL + err on failure. */
ims_http *ims_http_start(const ims_http_cfg *cfg, char *err, size_t errlen);
/* The bound port (useful with port 0). */
uint16_t ims_http_port(const ims_http *h);
void ims_http_set_ready(ims_http *h, ims_http_ready_cb cb, void *arg);
/* Routes match when method is equal (NULL = any) and the path equals prefix or starts with
 * prefix + "/". Longest prefix wins. Bodies up to 8 MiB are accepted (413 beyond). */
int ims_http_route(ims_http *h, const char *method, const char *prefix, ims_http_handler fn, void *arg);
void ims_http_stop(ims_http *h);

/* ---------- metrics (process-wide registry, thread-safe, lock-free updates) ---------- */

typedef struct ims_metric ims_metric;

/* name may carry labels: "cx_requests_total{cmd=\"MAR\",result=\"2001\"}". Metrics sharing
 * a base name are printed under one # HELP / # TYPE. Registering the same full name twice
 * returns the same metric. */
ims_metric *ims_metric_counter(const char *name, const char *help);
ims_metric *ims_metric_gauge(const char *name, const char *help);
void ims_metric_inc(ims_metric *m);
void ims_metric_add(ims_metric *m, int64_t v);
void ims_metric_set(ims_metric *m, int64_t v);
int64_t ims_metric_value(const ims_metric *m);

/* Latency summary: observe() records a duration in microseconds; exposed as
 * <name>_count, <name>_sum (seconds) and a fixed set of histogram buckets (<name>_bucket{le=...}). */
ims_metric *ims_metric_histogram(const char *name, const char *help);
void ims_metric_observe_us(ims_metric *m, uint64_t usec);

/* Renders the whole registry in Prometheus text format (malloc'd). */
char *ims_metrics_render(void);

/* ---------- blocking HTTP/1.1 client (for imsctl and tests; libcurl, ims_http_client.c) ---------- */

/* Sends one request to host:port (IPv4/IPv6 literal or name) with Connection: close; proxies
 * named in the environment are not used.
 * On success returns 0, *status and a malloc'd NUL-terminated *resp_body. -1 + err on failure. */
int ims_http_client_request(const char *host, uint16_t port, const char *method, const char *path,
                            const char *content_type, const char *body, size_t body_len,
                            int timeout_ms, int *status, char **resp_body, char *err, size_t errlen);

#endif
