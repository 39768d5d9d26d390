/*
 * inproc: the harness of the in-process CSCF tests. See inproc.h.
 */
#define _GNU_SOURCE   /* strcasestr, mkstemps, memmem */
#include "inproc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <freeDiameter/libfdcore.h>

#include "ims_cx_client.h"
#include "ims_diameter.h"
#include "ims_log.h"

#ifndef IMS_INPROC_DIR
#error "IMS_INPROC_DIR (tests/inproc in the source tree) must be defined"
#endif

/* ---------- a growing string ---------- */

typedef struct {
    char *s;
    size_t len, cap;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p)
            abort();   /* a test harness out of memory: nothing sensible to do */
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ---------- normalisation: volatile values -> stable placeholders ---------- */

#define MAX_VALUES 256

/* Placeholder classes: the parameters whose values change from run to run. */
static const char *const volatile_params[] = {
    "branch", "tag", "nonce", "response", "icid-value", "ue", "opaque", "cnonce", NULL,
};

static struct {
    char cls[16];
    char value[160];
} g_values[MAX_VALUES];
static size_t g_n_values;

static struct {
    char num[8];
    char name[40];
} g_ports[32];
static size_t g_n_ports;

/* "<cls-N>": N counts the distinct values of the class in order of first appearance. */
static void placeholder(const char *cls, const char *value, size_t vlen, char *out, size_t outlen)
{
    int n = 0;
    for (size_t i = 0; i < g_n_values; i++) {
        if (strcmp(g_values[i].cls, cls) != 0)
            continue;
        n++;
        if (strlen(g_values[i].value) == vlen && strncmp(g_values[i].value, value, vlen) == 0) {
            snprintf(out, outlen, "<%s-%d>", cls, n);
            return;
        }
    }
    if (g_n_values < MAX_VALUES) {
        snprintf(g_values[g_n_values].cls, sizeof(g_values[0].cls), "%s", cls);
        snprintf(g_values[g_n_values].value, sizeof(g_values[0].value), "%.*s", (int)vlen, value);
        g_n_values++;
    }
    snprintf(out, outlen, "<%s-%d>", cls, n + 1);
}

void inproc_name_port(int port, const char *name)
{
    if (g_n_ports < sizeof(g_ports) / sizeof(g_ports[0])) {
        snprintf(g_ports[g_n_ports].num, sizeof(g_ports[0].num), "%d", port);
        snprintf(g_ports[g_n_ports].name, sizeof(g_ports[0].name), "<%s>", name);
        g_n_ports++;
    }
}

static bool param_start(const char *line, const char *p)
{
    return p == line || strchr(";, \t<", p[-1]) != NULL;
}

/* One header line (or start line), normalised, appended to b. */
static void normalise_line(strbuf *b, const char *line, size_t len)
{
    char tmp[INPROC_MSG_MAX];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)len, line);
    const char *colon = strchr(tmp, ':');
    if (colon && (strncasecmp(tmp, "Call-ID:", 8) == 0 || strncasecmp(tmp, "i:", 2) == 0)) {
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        char ph[48];
        placeholder("call-id", v, strlen(v), ph, sizeof(ph));
        sb_printf(b, "%.*s %s\n", (int)(colon + 1 - tmp), tmp, ph);
        return;
    }
    for (const char *p = tmp; *p;) {
        /* volatile parameters */
        bool done = false;
        for (size_t k = 0; volatile_params[k] && !done; k++) {
            size_t kl = strlen(volatile_params[k]);
            if (strncasecmp(p, volatile_params[k], kl) != 0 || p[kl] != '=' || !param_start(tmp, p))
                continue;
            const char *v = p + kl + 1;
            bool quoted = *v == '"';
            const char *e = quoted ? strchr(v + 1, '"') : v + strcspn(v, ";,> \t");
            if (!e)
                e = v + strlen(v);
            const char *val = quoted ? v + 1 : v;
            char ph[48];
            placeholder(volatile_params[k], val, (size_t)(e - val), ph, sizeof(ph));
            sb_printf(b, "%.*s=%s%s%s", (int)kl, p, quoted ? "\"" : "", ph, quoted ? "\"" : "");
            p = quoted && *e ? e + 1 : e;
            done = true;
        }
        if (done)
            continue;
        /* known ports after ':' or '=' */
        if ((*p == ':' || *p == '=') && isdigit((unsigned char)p[1])) {
            size_t dl = strspn(p + 1, "0123456789");
            for (size_t i = 0; i < g_n_ports && !done; i++) {
                if (strlen(g_ports[i].num) == dl && strncmp(p + 1, g_ports[i].num, dl) == 0) {
                    sb_printf(b, "%c%s", *p, g_ports[i].name);
                    p += 1 + dl;
                    done = true;
                }
            }
            if (!done) {
                sb_add(b, p, 1 + dl);
                p += 1 + dl;
            }
            continue;
        }
        sb_add(b, p, 1);
        p++;
    }
    sb_add(b, "\n", 1);
}

/* ---------- transcript ---------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static strbuf g_out;
static char g_name[64];
static int g_failed_checks;

void inproc_begin(const char *name)
{
    snprintf(g_name, sizeof(g_name), "%s", name);
    /* The NF's INFO lines on stderr help when the diff fails; the transcript is stdout-free. */
    ims_log_set_level(getenv("IMS_INPROC_DEBUG") ? IMS_LOG_DEBUG : IMS_LOG_WARN);
}

void inproc_note(const char *fmt, ...)
{
    char tmp[INPROC_MSG_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    /* Notes carry the Cx dumps too (inproc_cx.c): the same placeholders as the SIP lines. */
    pthread_mutex_lock(&g_lock);
    for (const char *p = tmp; *p;) {
        size_t len = strcspn(p, "\n");
        normalise_line(&g_out, p, len);
        p += len;
        if (*p == '\n')
            p++;
    }
    pthread_mutex_unlock(&g_lock);
}

bool inproc_check(bool ok, const char *what)
{
    if (!ok) {
        g_failed_checks++;
        fprintf(stderr, "inproc %s: CHECK FAILED: %s\n", g_name, what);
        inproc_note("CHECK FAILED: %s", what);
    }
    return ok;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    strbuf b = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        sb_add(&b, buf, n);
    fclose(f);
    if (!b.s)
        sb_add(&b, "", 0);
    return b.s;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t len = strlen(text);
    int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int inproc_finish(void)
{
    char ok_path[600], out_path[600];
    snprintf(ok_path, sizeof(ok_path), "%s/%s.ok", IMS_INPROC_DIR, g_name);
    snprintf(out_path, sizeof(out_path), "%s.out", g_name);
    const char *text = g_out.s ? g_out.s : "";
    if (write_file(out_path, text)) {
        fprintf(stderr, "inproc %s: cannot write %s: %s\n", g_name, out_path, strerror(errno));
        return 1;
    }
    const char *update = getenv("IMS_INPROC_UPDATE");
    if (update && strcmp(update, "1") == 0) {
        if (write_file(ok_path, text)) {
            fprintf(stderr, "inproc %s: cannot write %s: %s\n", g_name, ok_path, strerror(errno));
            return 1;
        }
        fprintf(stderr, "inproc %s: %s rewritten (IMS_INPROC_UPDATE=1)\n", g_name, ok_path);
        return g_failed_checks ? 1 : 0;
    }
    char *expected = read_file(ok_path);
    int rc = 0;
    if (!expected) {
        fprintf(stderr, "inproc %s: no %s (run with IMS_INPROC_UPDATE=1 to create it)\n", g_name, ok_path);
        rc = 1;
    } else if (strcmp(expected, text) != 0) {
        fprintf(stderr, "inproc %s: transcript differs from %s (- expected, + actual):\n", g_name, ok_path);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(STDERR_FILENO, STDOUT_FILENO);
            execlp("diff", "diff", "-u", ok_path, out_path, (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
        fprintf(stderr, "inproc %s: if the change is intended: IMS_INPROC_UPDATE=1 ctest -R inproc.%s\n",
                g_name, g_name);
        rc = 1;
    }
    free(expected);
    if (g_failed_checks)
        rc = 1;
    if (rc == 0)
        fprintf(stderr, "inproc %s: transcript matches %s\n", g_name, ok_path);
    return rc;
}

int inproc_free_port(void)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t al = sizeof(a);
        int port = 0;
        if (t >= 0 && u >= 0 && bind(t, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(t, (struct sockaddr *)&a, &al) == 0 && bind(u, (struct sockaddr *)&a, sizeof(a)) == 0)
            port = ntohs(a.sin_port);
        if (t >= 0)
            close(t);
        if (u >= 0)
            close(u);
        if (port)
            return port;
    }
    return 0;
}

/* ---------- SIP text ---------- */

static const struct {
    const char *compact, *full;
} compact_names[] = {
    { "v", "Via" }, { "f", "From" }, { "t", "To" }, { "i", "Call-ID" }, { "m", "Contact" },
    { "l", "Content-Length" }, { "c", "Content-Type" }, { "k", "Supported" }, { NULL, NULL },
};

/* True when the header line `line` (len) is header `name`. */
static bool header_is(const char *line, size_t len, const char *name)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return false;
    size_t nl = (size_t)(colon - line);
    while (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
        nl--;
    if (strlen(name) == nl && strncasecmp(line, name, nl) == 0)
        return true;
    for (size_t i = 0; compact_names[i].compact; i++)
        if (nl == 1 && tolower((unsigned char)line[0]) == compact_names[i].compact[0] &&
            strcasecmp(compact_names[i].full, name) == 0)
            return true;
    return false;
}

const char *inproc_fmt(const char *fmt, ...)
{
    static char buf[INPROC_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

const char *inproc_hdr(const char *msg, const char *name, int idx, char *buf, size_t len)
{
    const char *p = strstr(msg, "\r\n");
    while (p) {
        p += 2;
        const char *e = strstr(p, "\r\n");
        if (!e || e == p)
            return NULL;   /* end of the headers */
        if (header_is(p, (size_t)(e - p), name) && idx-- == 0) {
            const char *v = memchr(p, ':', (size_t)(e - p)) + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(buf, len, "%.*s", (int)(e - v), v);
            return buf;
        }
        p = e;
    }
    return NULL;
}

const char *inproc_param(const char *value, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = value; (p = strcasestr(p, name)); p += nl) {
        if (!param_start(value, p) || p[nl] != '=')
            continue;
        const char *v = p + nl + 1;
        if (*v == '"') {
            const char *e = strchr(v + 1, '"');
            snprintf(buf, len, "%.*s", e ? (int)(e - v - 1) : (int)strlen(v + 1), v + 1);
        } else {
            snprintf(buf, len, "%.*s", (int)strcspn(v, ";,> \t"), v);
        }
        return buf;
    }
    return NULL;
}

/* The headers written to the transcript (the rest are not part of what is checked). */
static const char *const shown_headers[] = {
    "Via", "Route", "Record-Route", "Path", "Service-Route", "Max-Forwards", "From", "To", "Call-ID",
    "CSeq", "Contact", "Expires", "Require", "Supported", "WWW-Authenticate", "Authorization",
    "P-Asserted-Identity", "P-Preferred-Identity", "P-Associated-URI", "P-Visited-Network-ID",
    "P-Charging-Vector", "P-Called-Party-ID", "P-Served-User", "Retry-After", "Security-Server", "Event",
    "Subscription-State", NULL,
};

static void transcript_message(const char *from, const char *to, const char *msg)
{
    pthread_mutex_lock(&g_lock);
    sb_printf(&g_out, "--- %s -> %s\n", from, to);
    const char *p = msg;
    const char *e = strstr(p, "\r\n");
    if (e)
        normalise_line(&g_out, p, (size_t)(e - p));
    long body = 0;
    while (e) {
        p = e + 2;
        e = strstr(p, "\r\n");
        if (!e || e == p)
            break;
        size_t len = (size_t)(e - p);
        if (header_is(p, len, "Content-Length")) {
            const char *colon = memchr(p, ':', len);
            body = strtol(colon + 1, NULL, 10);
        }
        for (size_t i = 0; shown_headers[i]; i++) {
            if (header_is(p, len, shown_headers[i])) {
                sb_add(&g_out, "  ", 2);
                normalise_line(&g_out, p, len);
                break;
            }
        }
    }
    if (body > 0)
        sb_printf(&g_out, "  (body: %ld bytes)\n", body);
    pthread_mutex_unlock(&g_lock);
}

/* ---------- peers ---------- */

int inproc_peer_open(inproc_peer *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(p->fd, (struct sockaddr *)&a, &al))
        return -1;
    p->port = ntohs(a.sin_port);
    inproc_name_port(p->port, name);
    return 0;
}

int inproc_peer_open_core(inproc_peer *p, const char *name, bool tcp)
{
    if (!tcp)
        return inproc_peer_open(p, name);
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->fd = -1;
    p->tcp = true;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(p->lfd, 8) ||
        getsockname(p->lfd, (struct sockaddr *)&a, &al))
        return -1;
    p->port = ntohs(a.sin_port);
    inproc_name_port(p->port, name);
    return 0;
}

void inproc_peer_close(inproc_peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    if (!p->tcp)
        return;
    for (size_t i = 0; i < p->n_conn; i++)
        if (p->conn[i].fd >= 0)
            close(p->conn[i].fd);
    p->n_conn = 0;
    if (p->lfd >= 0)
        close(p->lfd);
    p->lfd = -1;
}

/* TCP: a new connection slot for fd (to_port 0: accepted). Its index, or -1 (full: closed). */
static int conn_add(inproc_peer *p, int fd, int to_port)
{
    if (fd < 0)
        return -1;
    if (p->n_conn == INPROC_TCP_CONNS) {
        close(fd);
        return -1;
    }
    p->conn[p->n_conn] = (inproc_conn){ .fd = fd, .to_port = to_port };
    return (int)p->n_conn++;
}

/* TCP: our connection to 127.0.0.1:port (opened on first use). Its index, or -1. */
static int conn_to(inproc_peer *p, int port)
{
    for (size_t i = 0; i < p->n_conn; i++)
        if (p->conn[i].fd >= 0 && p->conn[i].to_port == port)
            return (int)i;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd >= 0 && connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
        close(fd);
        return -1;
    }
    /* its local port is ephemeral; the NF writes it as rport= in our Via: named "<NAME-conn>" */
    struct sockaddr_in local;
    socklen_t ll = sizeof(local);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&local, &ll) == 0) {
        char name[32];
        snprintf(name, sizeof(name), "%s-conn", p->name);
        inproc_name_port(ntohs(local.sin_port), name);
    }
    return conn_add(p, fd, port);
}

/* TCP: a whole message at the start of c->buf (headers and Content-Length bytes of body) moved
 * into out. Its length, or 0 when not complete yet. */
static size_t conn_take(inproc_conn *c, char *out, size_t outlen)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end + 4 - c->buf);
    char v[32];
    snprintf(out, outlen, "%.*s", (int)head, c->buf);   /* the headers, for inproc_hdr */
    long body = inproc_hdr(out, "Content-Length", 0, v, sizeof(v)) ? strtol(v, NULL, 10) : 0;
    size_t total = head + (size_t)(body > 0 ? body : 0);
    if (c->len < total || total >= outlen)
        return 0;
    memcpy(out, c->buf, total);
    out[total] = '\0';
    memmove(c->buf, c->buf + total, c->len - total);
    c->len -= total;
    return total;
}

/* The message on the wire: text ("\n"-separated lines) with CRLF, Content-Length and body.
 * The caller frees it. */
static char *wire_text(const char *text, const char *body)
{
    strbuf b = { 0 };
    for (const char *s = text; *s; s++)
        sb_add(&b, *s == '\n' ? "\r\n" : s, *s == '\n' ? 2 : 1);
    if (b.len < 2 || strcmp(b.s + b.len - 2, "\r\n") != 0)
        sb_add(&b, "\r\n", 2);
    size_t blen = body ? strlen(body) : 0;
    sb_printf(&b, "Content-Length: %zu\r\n\r\n", blen);
    if (blen)
        sb_add(&b, body, blen);
    return b.s;
}

/* Writes the message to the transcript and sends it: on TCP connection conn (>= 0), else over
 * UDP to `to`. 0 / -1. */
static int send_wire(inproc_peer *from, int conn, const struct sockaddr_in *to, const char *to_name,
                     const char *text, const char *body)
{
    char *wire = wire_text(text, body);
    transcript_message(from->name, to_name, wire);
    size_t len = strlen(wire);
    ssize_t n = conn >= 0 ? send(from->conn[conn].fd, wire, len, MSG_NOSIGNAL)
                          : sendto(from->fd, wire, len, 0, (const struct sockaddr *)to, sizeof(*to));
    free(wire);
    return n == (ssize_t)len ? 0 : -1;
}

int inproc_send(inproc_peer *from, int port, const char *to_name, const char *text, const char *body)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int conn = from->tcp ? conn_to(from, port) : -1;
    if (from->tcp && conn < 0) {
        inproc_note("(%s cannot connect to %s over TCP)", from->name, to_name);
        return -1;
    }
    return send_wire(from, conn, &to, to_name, text, body);
}

/* The start line and the top Via: what tells a retransmission from a new message. */
static void message_key(const char *msg, char *out, size_t len)
{
    char via[1024] = "", cseq[128] = "";
    inproc_hdr(msg, "Via", 0, via, sizeof(via));
    inproc_hdr(msg, "CSeq", 0, cseq, sizeof(cseq));
    snprintf(out, len, "%.*s|%s|%s", (int)strcspn(msg, "\r"), msg, via, cseq);
}

/* TCP: reads what connection i has for us; closes it when the NF closed it. */
static void conn_read(inproc_peer *p, size_t i)
{
    inproc_conn *c = &p->conn[i];
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
    if (n > 0) {
        c->len += (size_t)n;
        return;
    }
    close(c->fd);   /* closed (or full of garbage): poll skips it from now on */
    c->fd = -1;
    c->to_port = 0;
}

/* The next message for p within left ms into p->last: a UDP datagram, or a whole message from
 * one of its TCP connections (accepting new ones on the way). Its length; 0: nothing usable
 * yet (read again); -1: nothing within left ms. */
static ssize_t next_message(inproc_peer *p, long left)
{
    if (!p->tcp) {
        struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)left) <= 0)
            return -1;
        socklen_t al = sizeof(p->last_from);
        ssize_t n = recvfrom(p->fd, p->last, sizeof(p->last) - 1, 0, (struct sockaddr *)&p->last_from, &al);
        if (n <= 0)
            return 0;
        p->last[n] = '\0';
        return n;
    }
    for (size_t i = 0; i < p->n_conn; i++) {
        size_t n = p->conn[i].fd >= 0 ? conn_take(&p->conn[i], p->last, sizeof(p->last)) : 0;
        if (n) {
            p->last_conn = (int)i;
            return (ssize_t)n;
        }
    }
    struct pollfd pfd[1 + INPROC_TCP_CONNS] = { { .fd = p->lfd, .events = POLLIN } };
    size_t n_conn = p->n_conn;
    for (size_t i = 0; i < n_conn; i++)
        pfd[1 + i] = (struct pollfd){ .fd = p->conn[i].fd, .events = POLLIN };
    if (poll(pfd, 1 + n_conn, (int)left) <= 0)
        return -1;
    for (size_t i = 0; i < n_conn; i++)
        if (pfd[1 + i].revents)
            conn_read(p, i);
    if (pfd[0].revents & POLLIN)
        conn_add(p, accept(p->lfd, NULL, NULL), 0);
    return 0;
}

const char *inproc_recv(inproc_peer *p, const char *from_name, int timeout_ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        ssize_t n = left > 0 ? next_message(p, left) : -1;
        if (n < 0)
            break;
        if (n == 0)
            continue;
        if (strncmp(p->last, "SIP/2.0 100 ", 12) == 0)
            continue;   /* timing-dependent (nta may send it or not before the final response) */
        char key[INPROC_MSG_MAX / 4];
        message_key(p->last, key, sizeof(key));
        bool again = false;
        for (size_t i = 0; i < p->n_seen && !again; i++)
            again = strcmp(p->seen[i], key) == 0;
        if (again)
            continue;   /* a retransmission */
        snprintf(p->seen[p->n_seen % 16], sizeof(p->seen[0]), "%s", key);
        if (p->n_seen < 16)
            p->n_seen++;
        transcript_message(from_name, p->name, p->last);
        return p->last;
    }
    inproc_note("--- %s -> %s\n(nothing received within %d ms)", from_name, p->name, timeout_ms);
    p->last[0] = '\0';
    return NULL;
}

int inproc_respond(inproc_peer *p, const char *to_name, int status, const char *reason, const char *extra)
{
    strbuf b = { 0 };
    char v[2048];
    sb_printf(&b, "SIP/2.0 %d %s\n", status, reason);
    for (int i = 0; inproc_hdr(p->last, "Via", i, v, sizeof(v)); i++)
        sb_printf(&b, "Via: %s\n", v);
    if (inproc_hdr(p->last, "From", 0, v, sizeof(v)))
        sb_printf(&b, "From: %s\n", v);
    if (inproc_hdr(p->last, "To", 0, v, sizeof(v))) {
        char tag[128];
        bool tagged = inproc_param(v, "tag", tag, sizeof(tag)) != NULL;
        sb_printf(&b, "To: %s%s%s\n", v, tagged ? "" : ";tag=", tagged ? "" : p->name);
    }
    if (inproc_hdr(p->last, "Call-ID", 0, v, sizeof(v)))
        sb_printf(&b, "Call-ID: %s\n", v);
    if (inproc_hdr(p->last, "CSeq", 0, v, sizeof(v)))
        sb_printf(&b, "CSeq: %s\n", v);
    if (extra)
        sb_printf(&b, "%s", extra);
    int rc = send_wire(p, p->tcp ? p->last_conn : -1, &p->last_from, to_name, b.s, NULL);
    free(b.s);
    return rc;
}

/* ---------- the NF on its loop thread ---------- */

static void *nf_main(void *arg)
{
    inproc_nf *nf = arg;
    nf->sip = ims_sip_create(nf->sip_cfg, nf->on_request, nf->arg, nf->err, sizeof(nf->err));
    nf->rc = nf->sip ? nf->start(nf, nf->err, sizeof(nf->err)) : -1;
    ims_sip *s = nf->sip;
    sem_post(&nf->ready);
    if (!s)
        return NULL;
    if (nf->rc == 0)
        ims_sip_run(s);
    nf->stop(nf);
    ims_sip_destroy(s);
    return NULL;
}

int inproc_nf_start(inproc_nf *nf)
{
    sem_init(&nf->ready, 0, 0);
    if (pthread_create(&nf->thread, NULL, nf_main, nf) != 0) {
        snprintf(nf->err, sizeof(nf->err), "cannot create the loop thread");
        return -1;
    }
    sem_wait(&nf->ready);
    sem_destroy(&nf->ready);
    if (!nf->sip || nf->rc) {
        if (nf->sip)
            ims_sip_stop(nf->sip);
        pthread_join(nf->thread, NULL);
        nf->sip = NULL;
        return -1;
    }
    inproc_name_port((int)nf->sip_cfg->port, nf->name);
    return 0;
}

void inproc_nf_stop(inproc_nf *nf)
{
    if (!nf->sip)
        return;
    ims_sip_stop(nf->sip);
    pthread_join(nf->thread, NULL);
    nf->sip = NULL;
}

int inproc_load_config(const char *yaml, const char *nf, const ims_cfg_field *schema, void *out)
{
    char path[] = "/tmp/ims-inproc-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    if (fd < 0)
        return -1;
    size_t len = strlen(yaml);
    bool ok = write(fd, yaml, len) == (ssize_t)len;
    close(fd);
    char err[512] = "";
    int rc = ok ? ims_cfg_load(path, nf, schema, out, err, sizeof(err)) : -1;
    unlink(path);
    if (rc)
        fprintf(stderr, "inproc: configuration error: %s\n", err);
    return rc;
}
