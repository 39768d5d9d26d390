/*
 * ims_http_client: a minimal blocking HTTP/1.1 client for imsctl and tests. See ims_http.h.
 *
 * References:
 *   RFC 9112 (HTTP/1.1): request line §3, Host §3.2, status line §4, header fields §5,
 *     message body length §6.3 (no body for HEAD/1xx/204/304; chunked wins over Content-Length;
 *     otherwise Content-Length; otherwise read until the server closes), chunked coding §7.1.
 *   RFC 9110: Connection: close §7.6.1, 1xx interim responses §15.2 (skipped).
 *
 * One request per connection (Connection: close) keeps the client free of connection state.
 * timeout_ms bounds the whole exchange (connect + send + receive), so a stuck server can never
 * hang imsctl.
 */
#include "ims_http.h"
#include "ims_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_LIMIT (64u * 1024 * 1024)   /* refuse to buffer more than this */
#define DEFAULT_TIMEOUT_MS 10000

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/* Waits for `events` on fd until the deadline. 1 = ready, 0 = timed out, -1 = error (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - ims_monotonic_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n > 0)
            return 1;
    }
}

/* Tries every address getaddrinfo gives (e.g. ::1 then 127.0.0.1 for "localhost"). */
static int connect_host(const char *host, const char *hostport, uint16_t port, int64_t deadline,
                        char *err, size_t errlen)
{
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        set_err(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int last_errno = 0;
    bool timed_out = false;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            if (w == 0)
                timed_out = true;
            last_errno = w == 1 ? soerr : errno;
        } else {
            last_errno = errno;
        }
        close(fd);
        fd = -1;
        if (timed_out)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (timed_out)
            set_err(err, errlen, "cannot connect to %s: timed out", hostport);
        else
            set_err(err, errlen, "cannot connect to %s: %s", hostport,
                    strerror(last_errno ? last_errno : ECONNREFUSED));
    }
    return fd;
}

/* Sends all of buf. 0 = sent, -1 = error (errno set; ETIMEDOUT on deadline). */
static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        /* MSG_NOSIGNAL: a server that closes early must not kill the process with SIGPIPE. */
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w == 0)
                errno = ETIMEDOUT;
            if (w <= 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

/* ---------- response parsing ---------- */

typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_EOF } body_mode;

typedef struct {
    size_t head_len;            /* bytes up to and including the blank line; 0 = not yet known */
    int status;
    body_mode mode;
    size_t content_length;
} resp_head;

/* Finds the end of the header block ("\r\n\r\n"; bare "\n\n" tolerated, RFC 9112 §2.2). */
static size_t find_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n')
            return i + 2;
        if (i + 3 < len && buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
            buf[i + 3] == '\n')
            return i + 4;
    }
    return 0;
}

/* Parses the status line and the headers that decide the body length. -1 + err on bad syntax. */
static int parse_head(const char *buf, size_t head_len, bool is_head_req, resp_head *rh,
                      char *err, size_t errlen)
{
    if (head_len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
        buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
        buf[11] < '0' || buf[11] > '9') {
        set_err(err, errlen, "malformed HTTP status line");
        return -1;
    }
    rh->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    rh->mode = BODY_EOF;
    bool have_cl = false, chunked = false;
    size_t cl = 0;

    const char *p = memchr(buf, '\n', head_len);
    const char *end = buf + head_len;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        size_t ll = (size_t)(nl - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        const char *colon = memchr(line, ':', ll);
        if (colon) {
            size_t nlen = (size_t)(colon - line);
            const char *v = colon + 1;
            const char *vend = line + ll;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            size_t vlen = (size_t)(vend - v);
            if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                char tmp[32];
                if (vlen == 0 || vlen >= sizeof(tmp)) {
                    set_err(err, errlen, "malformed Content-Length");
                    return -1;
                }
                memcpy(tmp, v, vlen);
                tmp[vlen] = '\0';
                char *e;
                errno = 0;
                unsigned long long x = strtoull(tmp, &e, 10);
                if (*e || errno || tmp[0] < '0' || tmp[0] > '9') {
                    set_err(err, errlen, "malformed Content-Length");
                    return -1;
                }
                cl = (size_t)x;
                have_cl = true;
            } else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                /* chunked must be the final coding (RFC 9112 §6.3 rule 4). */
                chunked = vlen >= 7 && strncasecmp(vend - 7, "chunked", 7) == 0;
            }
        }
        p = nl;
    }
    if (is_head_req || rh->status < 200 || rh->status == 204 || rh->status == 304)
        rh->mode = BODY_NONE;
    else if (chunked)
        rh->mode = BODY_CHUNKED;
    else if (have_cl)
        rh->mode = BODY_LENGTH;
    rh->content_length = cl;
    if (rh->mode == BODY_LENGTH && cl > RESP_LIMIT) {
        set_err(err, errlen, "response body too large (%zu bytes)", cl);
        return -1;
    }
    return 0;
}

/*
 * Decodes a chunked body in buf[0..len). 1 = complete (decoded into out, *out_len), 0 = need more
 * data, -1 = malformed. With out == NULL only checks completeness.
 */
static int dechunk(const char *buf, size_t len, char *out, size_t *out_len)
{
    size_t pos = 0, o = 0;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            return 0;
        size_t size = 0;
        size_t i = pos;
        int digits = 0;
        for (; buf + i < nl; i++) {
            char c = buf[i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;           /* ';' chunk extensions, '\r', spaces: ignored */
            if (size > (RESP_LIMIT >> 4))
                return -1;
            size = size * 16 + (size_t)d;
            digits++;
        }
        if (digits == 0)
            return -1;
        pos = (size_t)(nl - buf) + 1;
        if (size == 0) {
            /* Trailer section: lines until an empty one (RFC 9112 §7.1.2). */
            for (;;) {
                const char *tnl = memchr(buf + pos, '\n', len - pos);
                if (!tnl)
                    return 0;
                size_t tl = (size_t)(tnl - (buf + pos));
                pos = (size_t)(tnl - buf) + 1;
                if (tl == 0 || (tl == 1 && buf[pos - 2] == '\r'))
                    break;
            }
            if (out_len)
                *out_len = o;
            return 1;
        }
        if (len - pos < size)
            return 0;
        if (out)
            memcpy(out + o, buf + pos, size);
        o += size;
        pos += size;
        /* CRLF after the data. */
        if (len - pos < 1)
            return 0;
        if (buf[pos] == '\r') {
            if (len - pos < 2)
                return 0;
            pos++;
        }
        if (buf[pos] != '\n')
            return -1;
        pos++;
    }
}

/* ---------- the request ---------- */

int ims_http_client_request(const char *host, uint16_t port, const char *method, const char *path,
                            const char *content_type, const char *body, size_t body_len,
                            int timeout_ms, int *status, char **resp_body, char *err, size_t errlen)
{
    if (resp_body)
        *resp_body = NULL;
    if (!host || !method || !path) {
        set_err(err, errlen, "invalid request arguments");
        return -1;
    }
    if (!body)
        body_len = 0;
    int64_t deadline = ims_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    bool v6 = strchr(host, ':') != NULL;
    char hostport[300];
    snprintf(hostport, sizeof(hostport), "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)port);

    int fd = connect_host(host, hostport, port, deadline, err, errlen);
    if (fd < 0)
        return -1;

    char head[2048];
    int hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ims-http-client\r\n"
                      "Accept: */*\r\nConnection: close\r\n",
                      method, path, hostport);
    if (hn > 0 && (size_t)hn < sizeof(head) && (body || strcmp(method, "POST") == 0 ||
                                                 strcmp(method, "PUT") == 0 ||
                                                 strcmp(method, "PATCH") == 0))
        hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "Content-Length: %zu\r\n", body_len);
    if (hn > 0 && (size_t)hn < sizeof(head) && content_type && body_len > 0)
        hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "Content-Type: %s\r\n", content_type);
    if (hn > 0 && (size_t)hn < sizeof(head))
        hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "\r\n");
    if (hn <= 0 || (size_t)hn >= sizeof(head)) {
        set_err(err, errlen, "request line too long");
        close(fd);
        return -1;
    }

    /* A send failure is not final: a server may answer (e.g. 413) and close before reading the
     * whole body, so we still try to read its response. */
    int send_errno = 0;
    if (send_all(fd, head, (size_t)hn, deadline) != 0 ||
        (body_len > 0 && send_all(fd, body, body_len, deadline) != 0))
        send_errno = errno;
    if (send_errno == ETIMEDOUT) {
        set_err(err, errlen, "%s: timed out sending request", hostport);
        close(fd);
        return -1;
    }

    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    resp_head rh = { 0 };
    size_t start = 0;           /* where the current response (after 1xx ones) begins */
    int rc = -1;
    bool eof = false;
    if (!buf) {
        set_err(err, errlen, "out of memory");
        close(fd);
        return -1;
    }
    for (;;) {
        /* Try to finish with what we have. */
        if (rh.head_len == 0) {
            size_t he = find_head_end(buf + start, len - start);
            if (he) {
                if (parse_head(buf + start, he, strcmp(method, "HEAD") == 0, &rh, err, errlen) != 0)
                    break;
                rh.head_len = he;
                if (rh.status < 200) {       /* interim response: skip it */
                    start += he;
                    memset(&rh, 0, sizeof(rh));
                    continue;
                }
            }
        }
        if (rh.head_len) {
            const char *b = buf + start + rh.head_len;
            size_t blen = len - start - rh.head_len;
            int done = 0;
            if (rh.mode == BODY_NONE) {
                done = 1;
                blen = 0;
            } else if (rh.mode == BODY_LENGTH) {
                done = blen >= rh.content_length;
                blen = rh.content_length;
            } else if (rh.mode == BODY_CHUNKED) {
                done = dechunk(b, blen, NULL, NULL);
                if (done < 0) {
                    set_err(err, errlen, "malformed chunked response body");
                    break;
                }
            } else {
                done = eof;
            }
            if (done) {
                char *out = malloc(blen + 1);
                if (!out) {
                    set_err(err, errlen, "out of memory");
                    break;
                }
                if (rh.mode == BODY_CHUNKED)
                    dechunk(b, len - start - rh.head_len, out, &blen);
                else
                    memcpy(out, b, blen);
                out[blen] = '\0';
                if (status)
                    *status = rh.status;
                if (resp_body)
                    *resp_body = out;
                else
                    free(out);
                rc = 0;
                break;
            }
        }
        if (eof) {
            if (len == 0 && send_errno)
                set_err(err, errlen, "%s: %s", hostport, strerror(send_errno));
            else
                set_err(err, errlen, "%s: connection closed before the response was complete",
                        hostport);
            break;
        }

        /* Read more. */
        if (len + 1 >= cap) {
            if (cap >= RESP_LIMIT) {
                set_err(err, errlen, "%s: response too large", hostport);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                set_err(err, errlen, "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n > 0) {
            len += (size_t)n;
        } else if (n == 0) {
            eof = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(fd, POLLIN, deadline);
            if (w == 0) {
                set_err(err, errlen, "%s: timed out waiting for the response", hostport);
                break;
            }
            if (w < 0) {
                set_err(err, errlen, "%s: %s", hostport, strerror(errno));
                break;
            }
        } else if (errno == ECONNRESET && len > 0) {
            eof = true;      /* parse what arrived before the reset */
        } else {
            set_err(err, errlen, "%s: %s", hostport, strerror(errno));
            break;
        }
    }
    free(buf);
    close(fd);
    return rc;
}
