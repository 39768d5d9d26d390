/*
 * ims_http_client: a blocking HTTP/1.1 client for imsctl and tests, on libcurl. See ims_http.h.
 *
 * libcurl does the protocol (RFC 9112 framing: chunked, Content-Length, read-to-close, 1xx
 * interim responses; RFC 9110 semantics); this file only maps our call onto one easy handle and
 * curl's errors onto the messages imsctl has always printed ("cannot connect to HOST:PORT: ...").
 *
 * One request per connection (Connection: close, no reuse) keeps the client free of connection
 * state. timeout_ms bounds the whole exchange (connect + send + receive), so a stuck server can
 * never hang imsctl. Proxies from the environment (http_proxy, ...) are ignored: the HSS API is
 * reached directly, as before libcurl.
 */
#include "ims_http.h"
#include "ims_strbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define RESP_LIMIT (64u * 1024 * 1024)   /* refuse to buffer more than this */
#define DEFAULT_TIMEOUT_MS 10000

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in every libcurl build: once, before any handle. */
static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The response body, limited to RESP_LIMIT. */
typedef struct {
    ims_strbuf body;
    bool too_large;
} resp_sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    resp_sink *r = arg;
    size_t n = size * nmemb;
    if (n > RESP_LIMIT - r->body.len) {
        r->too_large = true;
        return 0;                   /* CURLE_WRITE_ERROR ends the transfer */
    }
    ims_strbuf_append(&r->body, data, n);
    return r->body.failed ? 0 : n;
}

/* curl's result -> our message (the wording imsctl users and tests know). */
static void describe_error(CURL *c, CURLcode rc, const resp_sink *r, const char *host,
                           const char *hostport, const char *curl_err, char *err, size_t errlen)
{
    long os_errno = 0;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
    const char *detail = curl_err[0] ? curl_err : curl_easy_strerror(rc);

    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        /* curl keeps getaddrinfo's reason to itself; its own text only repeats the name. */
        ims_set_err(err, errlen, "cannot resolve %s", host);
        break;
    case CURLE_COULDNT_CONNECT:
        ims_set_err(err, errlen, "cannot connect to %s: %s", hostport,
                    strerror(os_errno ? (int)os_errno : ECONNREFUSED));
        break;
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_us == 0)
            ims_set_err(err, errlen, "cannot connect to %s: timed out", hostport);
        else
            ims_set_err(err, errlen, "%s: timed out waiting for the response", hostport);
        break;
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
        ims_set_err(err, errlen, "%s: connection closed before the response was complete", hostport);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:   /* "Received HTTP/0.9 when not allowed" */
    case CURLE_WEIRD_SERVER_REPLY:
        ims_set_err(err, errlen, "malformed HTTP status line");
        break;
    case CURLE_FILESIZE_EXCEEDED:
        ims_set_err(err, errlen, "%s: response too large", hostport);
        break;
    case CURLE_WRITE_ERROR:
        ims_set_err(err, errlen, r->too_large ? "%s: response too large" : "%s: out of memory",
                    hostport);
        break;
    case CURLE_OUT_OF_MEMORY:
        ims_set_err(err, errlen, "out of memory");
        break;
    default:
        ims_set_err(err, errlen, "%s: %s", hostport, detail);
        break;
    }
}

int ims_http_client_request(const char *host, uint16_t port, const char *method, const char *path,
                            const char *content_type, const char *body, size_t body_len,
                            int timeout_ms, int *status, char **resp_body, char *err, size_t errlen)
{
    if (resp_body)
        *resp_body = NULL;
    if (!host || !method || !path) {
        ims_set_err(err, errlen, "invalid request arguments");
        return -1;
    }
    if (!body)
        body_len = 0;
    bool v6 = strchr(host, ':') != NULL;
    char hostport[300], url[2400], curl_err[CURL_ERROR_SIZE] = "", ctype[256];
    snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)port);
    int un = snprintf(url, sizeof(url), "http://%s%s", hostport, path);
    if (un < 0 || (size_t)un >= sizeof(url) || path[0] != '/') {
        ims_set_err(err, errlen, "request line too long");
        return -1;
    }
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) {
        ims_set_err(err, errlen, "libcurl: %s", curl_easy_strerror(g_curl_init_rc));
        return -1;
    }

    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL, *h;
    resp_sink sink = { .body = IMS_STRBUF_INIT };
    int rc = -1;
    if (!c) {
        ims_set_err(err, errlen, "out of memory");
        return -1;
    }
    /* The request as the hand-written client sent it: Content-Length whenever there is a body
     * (or the method takes one), Content-Type only with a non-empty body, no Expect: 100-continue
     * (the server answers at once, e.g. 413 for a body too large). An empty "Name:" removes a
     * header curl would add by itself. */
    bool with_body = body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                     strcmp(method, "PATCH") == 0;
    if (content_type && body_len > 0)
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
    else
        snprintf(ctype, sizeof(ctype), "Content-Type:");
    const char *lines[] = { "Connection: close", "Expect:", ctype };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        h = curl_slist_append(hdrs, lines[i]);
        if (!h) {
            ims_set_err(err, errlen, "out of memory");
            goto out;
        }
        hdrs = h;
    }

    CURLcode cc = CURLE_OK;
#define SETOPT(opt, val) \
    do { if (cc == CURLE_OK) cc = curl_easy_setopt(c, opt, val); } while (0)
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http");
    SETOPT(CURLOPT_PROXY, "");                  /* ignore http_proxy & co */
    SETOPT(CURLOPT_NOSIGNAL, 1L);               /* threads (tests): no SIGALRM for DNS timeouts */
    SETOPT(CURLOPT_FORBID_REUSE, 1L);
    SETOPT(CURLOPT_PATH_AS_IS, 1L);             /* send the path as given, "/../" included */
    SETOPT(CURLOPT_USERAGENT, "ims-http-client");
    SETOPT(CURLOPT_HTTPHEADER, hdrs);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS));
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)RESP_LIMIT);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, &sink);
    SETOPT(CURLOPT_ERRORBUFFER, curl_err);
    if (strcmp(method, "HEAD") == 0)
        SETOPT(CURLOPT_NOBODY, 1L);
    if (with_body) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SETOPT(CURLOPT_POSTFIELDS, body ? body : "");
    }
    /* POSTFIELDS implies POST: name the method on the request line, GET included (imsctl sends
     * GET and DELETE with an empty body). */
    if (strcmp(method, "HEAD") != 0)
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
#undef SETOPT
    if (cc != CURLE_OK) {
        ims_set_err(err, errlen, "libcurl: %s", curl_easy_strerror(cc));
        goto out;
    }

    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        describe_error(c, cc, &sink, host, hostport, curl_err, err, errlen);
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    char *out = ims_strbuf_take(&sink.body);
    if (!out) {
        ims_set_err(err, errlen, "out of memory");
        goto out;
    }
    if (status)
        *status = (int)code;
    if (resp_body)
        *resp_body = out;
    else
        free(out);
    rc = 0;
out:
    ims_strbuf_free(&sink.body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}
