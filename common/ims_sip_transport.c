/*
 * ims_sip_transport: input checks every CSCF applies to a new request before any NF logic
 * (called from the default leg in ims_sip.c), and the TCP connection settings of the agent.
 *
 *  - Max-Forwards that is not an integer 0..255 (RFC 3261 §8.1.1.6, §20.22: "1*DIGIT", and the
 *    value is an integer in the range 0-255) -> 400 "Invalid Max-Forwards". sofia-sip 1.12.11
 *    does not reject it: a value that does not parse leaves sip->sip_max_forwards NULL and the
 *    header in sip->sip_error (so it looked absent and the proxy reset it to 70, losing loop
 *    protection), and 256..4294967295 parse as they are (docs/pitfalls.md).
 *  - A request whose body is shorter than its Content-Length (RFC 3261 §18.3): over TCP sofia-sip
 *    hands such a request over when the peer closes the connection right after the headers
 *    (body missing entirely; with part of the body it answers 400 itself and never delivers it).
 *    We discard it: no NF sees it, nothing is sent on that connection, which we shut down.
 *  - TCP connections (sip.tcp_idle_timeout, sip.tcp_max_per_address). sofia-sip 1.12.11 has an
 *    idle timer (TPTAG_IDLE, default 30 min) but tells nobody when it closes a connection, and
 *    no limit per address at all; its connections are not visible through the public API (no
 *    accept or close callback; tport_pend callbacks do not fire on an idle or peer close; a
 *    tport_ref stops the idle timer) — docs/pitfalls.md. So once a second we look at the
 *    process's own sockets (/proc/self/fd): every TCP socket whose local port is our SIP port and
 *    that has a peer is a connection sofia accepted. A connection with no byte received or sent
 *    for tcp_idle_timeout (TCP_INFO, so RFC 5626 CRLF keep-alives count as traffic) is shut
 *    down and counted; connections from one IP address beyond tcp_max_per_address that were not
 *    there at the previous look are shut down and counted. shutdown(2) leaves the descriptor to
 *    sofia, which sees the end of the stream and closes its transport as for a peer close.
 *    Cost: a few system calls per open connection and second, on the loop thread.
 */
#include "ims_sip_priv.h"
#include "ims_http.h"
#include "ims_log.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/su.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>

/* Created by ims_sip_transport_setup, so that /metrics shows them (0) from the start. */
static ims_metric *m_bad_mf, *m_truncated, *m_idle, *m_refused, *m_open;

static void metrics_init(void)
{
    if (m_bad_mf)
        return;
    m_bad_mf = ims_metric_counter("sip_invalid_max_forwards_total",
                                  "requests answered 400 because Max-Forwards was not an integer 0..255");
    m_truncated = ims_metric_counter("sip_truncated_discarded_total",
                                     "requests discarded because the body was shorter than Content-Length "
                                     "(connection closed early)");
    m_idle = ims_metric_counter("sip_tcp_idle_closed_total",
                                "TCP connections closed because they carried nothing for sip.tcp_idle_timeout");
    m_refused = ims_metric_counter("sip_tcp_refused_total",
                                   "TCP connections closed at once because their address already had "
                                   "sip.tcp_max_per_address");
    m_open = ims_metric_gauge("sip_tcp_connections", "TCP connections accepted on the SIP port and open");
}

/* "addr:port" the request came from, for the operator's log line. */
static void source_of(nta_incoming_t *irq, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    msg_t *msg = nta_incoming_getrequest(irq);
    if (!msg)
        return;
    su_sockaddr_t su;
    socklen_t sulen = sizeof(su);
    char host[64];
    if (msg_get_address(msg, &su, &sulen) == 0 &&
        su_inet_ntop(su.su_family, SU_ADDR(&su), host, sizeof(host)))
        snprintf(buf, len, "%s:%u", host, ntohs(su.su_port));
    msg_destroy(msg);       /* the reference nta_incoming_getrequest added */
}

/* RFC 3261 §20.22. sofia-sip puts a Max-Forwards it cannot parse (not 1*DIGIT, or above
 * 2^32-1) into sip_error under its own name and leaves sip_max_forwards NULL. */
static bool bad_max_forwards(const sip_t *sip)
{
    if (sip->sip_max_forwards)
        return sip->sip_max_forwards->mf_count > 255;
    for (const msg_error_t *e = sip->sip_error; e; e = e->er_next)
        if (e->er_name && strcasecmp(e->er_name, "Max-Forwards") == 0)
            return true;
    return false;
}

/* Bytes of body received: sofia may keep a body in several payload fragments. */
static size_t body_length(const sip_t *sip)
{
    size_t n = 0;
    for (const sip_payload_t *pl = sip->sip_payload; pl; pl = pl->pl_next)
        n += pl->pl_len;
    return n;
}

int ims_sip_check_request(ims_sip *s, nta_incoming_t *irq, const sip_t *sip)
{
    static ims_log_limit mf_log, trunc_log;   /* one warning per second per kind: a peer can send these at will */
    char from[80];
    metrics_init();

    if (bad_max_forwards(sip)) {
        ims_metric_inc(m_bad_mf);
        if (ims_log_allow(&mf_log, NULL)) {
            source_of(irq, from, sizeof(from));
            IMS_WARN("sip", "%s from %s: Max-Forwards is not an integer 0..255 (RFC 3261 §20.22): "
                     "answered 400", sip->sip_request->rq_method_name, from);
        }
        if (sip->sip_request->rq_method == sip_method_ack)
            return 400;         /* nta never answers an ACK: this drops it */
        nta_incoming_treply(irq, 400, "Invalid Max-Forwards", TAG_END());
        nta_incoming_destroy(irq);
        return -1;
    }

    unsigned long want = sip->sip_content_length ? sip->sip_content_length->l_length : 0;
    size_t got = body_length(sip);
    if (want > got) {
        ims_metric_inc(m_truncated);
        if (ims_log_allow(&trunc_log, NULL)) {
            source_of(irq, from, sizeof(from));
            IMS_WARN("sip", "%s from %s: body of %zu bytes, Content-Length %lu (connection closed "
                     "early?): discarded (RFC 3261 §18.3)", sip->sip_request->rq_method_name, from,
                     got, want);
        }
        /* Discarded: not processed, and nothing is sent on that connection, which we shut down
         * (the peer closed it anyway). nta still sends its 500 for an unanswered transaction
         * when irq is destroyed, over a new connection to the Via sent-by: sofia-sip offers no
         * silent drop (docs/pitfalls.md); a client that closed its connection rarely listens
         * there. Over UDP (sofia does not deliver such a datagram today) §18.3 says 400. */
        tport_t *tp = nta_incoming_transport(s->agent, irq, NULL);
        bool stream = tp && tport_is_reliable(tp);
        if (stream)
            tport_shutdown(tp, 2);
        if (tp)
            tport_unref(tp);
        if (sip->sip_request->rq_method == sip_method_ack)
            return 400;         /* an ACK is dropped: nta never answers it */
        if (!stream)
            nta_incoming_treply(irq, 400, "Body Shorter Than Content-Length", TAG_END());
        nta_incoming_destroy(irq);
        return -1;
    }
    return 0;
}

/* ---------- TCP connection watch ---------- */

#define TCP_WATCH_MS 1000

typedef struct {
    int fd;
    bool is_new;                /* not there at the previous look */
    char ip[64];                /* peer address, the unit of the limit */
    unsigned port;
    unsigned idle_ms;           /* since the last byte received or sent */
} tcp_conn;

/* A non-zero 64-bit identity of a peer address and port (FNV-1a), to tell a connection that
 * was there at the previous look from a new one that reuses its descriptor number. */
static uint64_t peer_key(const struct sockaddr_storage *ss)
{
    const unsigned char *p = (const unsigned char *)ss;
    size_t n = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        if (ss->ss_family == AF_INET6 && i >= offsetof(struct sockaddr_in6, sin6_flowinfo) &&
            i < offsetof(struct sockaddr_in6, sin6_addr))
            continue;           /* flow info is no part of the identity */
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h ? h : 1;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

/* fd is an established TCP connection accepted on our SIP port: fills c (and *key). One that
 * is closing (ours after shutdown, or the peer's: sofia closes it) is left out. */
static bool sip_connection(const ims_sip *s, int fd, tcp_conn *c, uint64_t *key)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
        return false;
    len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || listening)
        return false;
    struct sockaddr_storage local, peer;
    socklen_t ll = sizeof(local), pl = sizeof(peer);
    if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0 || port_of(&local) != s->port)
        return false;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
        return false;
    const void *addr = peer.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)&peer)->sin_addr;
    if (!su_inet_ntop(peer.ss_family, addr, c->ip, sizeof(c->ip)))
        return false;
    struct tcp_info ti;
    len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || ti.tcpi_state != TCP_ESTABLISHED)
        return false;
    c->fd = fd;
    c->port = port_of(&peer);
    c->idle_ms = ti.tcpi_last_data_recv < ti.tcpi_last_data_sent ? ti.tcpi_last_data_recv
                                                                  : ti.tcpi_last_data_sent;
    *key = peer_key(&peer);
    return true;
}

/* Same peer address together, those already known first, then by descriptor (oldest first). */
static int conn_cmp(const void *a, const void *b)
{
    const tcp_conn *x = a, *y = b;
    int c = strcmp(x->ip, y->ip);
    if (c)
        return c;
    if (x->is_new != y->is_new)
        return x->is_new ? 1 : -1;
    return x->fd - y->fd;
}

static void tcp_watch(void *arg)
{
    ims_sip *s = arg;

    DIR *d = opendir("/proc/self/fd");
    tcp_conn *conns = NULL;
    size_t n = 0, cap = 0;
    uint64_t *seen = NULL;
    int seen_len = 0;
    if (d) {
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            char *end = NULL;
            long fd = strtol(e->d_name, &end, 10);
            if (*end || fd < 0 || fd == dirfd(d))
                continue;
            tcp_conn c;
            uint64_t key;
            if (!sip_connection(s, (int)fd, &c, &key))
                continue;
            c.is_new = !(fd < s->tcp_seen_len && s->tcp_seen[fd] == key);
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                tcp_conn *nc = realloc(conns, ncap * sizeof(*nc));
                if (!nc)
                    break;
                conns = nc;
                cap = ncap;
            }
            conns[n++] = c;
            if (fd >= seen_len) {
                int nlen = (int)fd + 64;
                uint64_t *ns = realloc(seen, (size_t)nlen * sizeof(*ns));
                if (!ns)
                    continue;
                memset(ns + seen_len, 0, (size_t)(nlen - seen_len) * sizeof(*ns));
                seen = ns;
                seen_len = nlen;
            }
            seen[fd] = key;
        }
        closedir(d);
    }

    int64_t open = 0;
    if (n)
        qsort(conns, n, sizeof(*conns), conn_cmp);
    for (size_t i = 0, run = 0; i < n; i++) {
        tcp_conn *c = &conns[i];
        run = (i > 0 && strcmp(conns[i - 1].ip, c->ip) == 0) ? run + 1 : 1;
        if (s->tcp_max_per_address && c->is_new && run > s->tcp_max_per_address) {
            shutdown(c->fd, SHUT_RDWR);
            ims_metric_inc(m_refused);
            if (ims_log_allow(&s->tcp_refused_log, NULL))
                IMS_WARN("sip", "TCP connection from %s:%u refused: %s already has %u connections "
                         "(sip.tcp_max_per_address)", c->ip, c->port, c->ip, s->tcp_max_per_address);
            continue;
        }
        if (s->tcp_idle_ms && c->idle_ms >= s->tcp_idle_ms) {
            shutdown(c->fd, SHUT_RDWR);
            ims_metric_inc(m_idle);
            if (ims_log_allow(&s->tcp_idle_log, NULL))
                IMS_WARN("sip", "TCP connection from %s:%u closed: nothing received or sent for %u s "
                         "(sip.tcp_idle_timeout %u s)", c->ip, c->port, c->idle_ms / 1000, s->tcp_idle_ms / 1000);
            continue;
        }
        open++;
    }
    ims_metric_set(m_open, open);
    free(conns);
    free(s->tcp_seen);
    s->tcp_seen = seen;
    s->tcp_seen_len = seen_len;
    ims_sip_timer_start(s, TCP_WATCH_MS, tcp_watch, s);
}

void ims_sip_transport_shutdown(ims_sip *s)
{
    free(s->tcp_seen);
    s->tcp_seen = NULL;
    s->tcp_seen_len = 0;
}

int ims_sip_transport_setup(ims_sip *s, const ims_sip_cfg *cfg, char *err, size_t errlen)
{
    metrics_init();
    s->tcp_max_per_address = cfg->tcp_max_per_address > 0 ? (unsigned)cfg->tcp_max_per_address : 0;
    if (cfg->tcp_idle_timeout > 0) {
        s->tcp_idle_ms = (unsigned)cfg->tcp_idle_timeout * 1000u;
        /* sofia's own idle timer stays as a backstop behind ours (which counts and logs): it
         * would close the same connections a little later. */
        unsigned backstop = s->tcp_idle_ms * 2;
        if (nta_agent_set_params(s->agent, TPTAG_IDLE(backstop), TAG_END()) < 0) {
            snprintf(err, errlen, "sip.tcp_idle_timeout: sofia-sip refused TPTAG_IDLE(%u ms)", backstop);
            return -1;
        }
    }
    /* Not configured at all (unit tests): sofia's own idle timer (30 min) and no watch. */
    if (s->tcp_idle_ms || s->tcp_max_per_address)
        ims_sip_timer_start(s, TCP_WATCH_MS, tcp_watch, s);
    return 0;
}

/* ---------- extra listening ports ---------- */

int ims_sip_add_port(ims_sip *s, unsigned port, const char *ident, char *err, size_t errlen)
{
    if (!s || !ident || !port || port > 65535 || strcmp(ident, IMS_SIP_IDENT_MAIN) == 0) {
        snprintf(err, errlen, "bad extra port %u", port);
        return -1;
    }
    /* same address and Via host as the main transports (ims_sip_create) */
    bool v6 = strchr(s->listen, ':') && s->listen[0] != '[';
    bool h6 = strchr(s->adv_host, ':') != NULL;
    char url[300];
    snprintf(url, sizeof(url), "sip:%s%s%s:%u;maddr=%s%s%s", h6 ? "[" : "", s->adv_host, h6 ? "]" : "", port,
             v6 ? "[" : "", s->listen, v6 ? "]" : "");
    errno = 0;
    if (nta_agent_add_tport(s->agent, (url_string_t *)url, TPTAG_IDENT(ident), TPTAG_STUN_SERVER(0), TAG_END()) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s:%u (UDP and TCP)%s%s", s->listen, port, e ? ": " : "",
                 e ? strerror(e) : "");
        return -1;
    }
    return 0;
}

int ims_sip_ident_port(ims_sip *s, const char *ident, char *out, size_t len)
{
    for (tport_t *tp = s && ident ? tport_primaries(nta_agent_tports(s->agent)) : NULL; tp; tp = tport_next(tp)) {
        const char *id = tport_ident(tp);
        const tp_name_t *n = tport_name(tp);
        if (id && strcmp(id, ident) == 0 && n && n->tpn_port) {
            snprintf(out, len, "%s", n->tpn_port);
            return 0;
        }
    }
    return -1;
}

/* The ident of tp's transports into out: an accepted TCP connection is a secondary transport,
 * its primary carries the ident. 0 / -1. */
static int ident_of(const tport_t *tp, char *out, size_t len)
{
    const tport_t *pri = tp && tport_is_secondary(tp) ? tport_parent(tp) : tp;
    const char *id = pri ? tport_ident(pri) : NULL;
    if (!id)
        return -1;
    snprintf(out, len, "%s", id);
    return 0;
}

int ims_sip_msg_ident(ims_sip *s, msg_t *msg, char *out, size_t len)
{
    return ident_of(s && msg ? tport_delivered_by(nta_agent_tports(s->agent), msg) : NULL, out, len);
}

int ims_sip_incoming_ident(ims_sip *s, nta_incoming_t *irq, char *out, size_t len)
{
    tport_t *tp = s && irq ? nta_incoming_transport(s->agent, irq, NULL) : NULL;
    if (!tp && s && irq) {
        /* a 2xx ACK has no transport of its own in nta: the one delivering it right now */
        msg_t *m = nta_incoming_getrequest(irq);
        tp = m ? tport_ref(tport_delivered_by(nta_agent_tports(s->agent), m)) : NULL;
        if (m)
            msg_destroy(m);
    }
    if (!tp)
        return -1;
    int rv = ident_of(tp, out, len);
    tport_unref(tp);
    return rv;
}
