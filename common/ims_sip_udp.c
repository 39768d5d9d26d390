/*
 * ims_sip_udp: the SIP UDP sockets of a CSCF — their kernel buffers, the datagrams the kernel
 * drops at them, and shedding new work (503 + Retry-After) before it has to.
 *
 * Why: when the SIP loop falls behind, datagrams wait in the socket's receive queue; once that
 * holds sk_rcvbuf bytes the kernel drops every further datagram (UDP has no flow control) and
 * counts it in the socket's sk_drops, which nobody looked at (/proc/net/udp showed 15k drops at
 * a P-CSCF in one benchmark). A dropped request is retransmitted by its sender (RFC 3261 §17.1.1
 * Timer A/E) and so comes back as more load; a dropped response costs a whole transaction. So:
 *
 *  1. Buffers: sip.udp_rcvbuf / sip.udp_sndbuf are applied to our UDP sockets after nta bound
 *     them, SO_RCVBUFFORCE first (works with CAP_NET_ADMIN, ignores net.core.rmem_max), else
 *     SO_RCVBUF (capped by net.core.rmem_max). Linux doubles the value for its bookkeeping
 *     overhead (socket(7)); we read back what it kept and warn when it is less than asked.
 *  2. Visibility: every UDP_TICK_MS we read each socket's queued bytes (sk_rmem_alloc), receive
 *     buffer and drop count with getsockopt(SO_MEMINFO) (Linux >= 4.12; one system call per
 *     socket; the same sk_drops /proc/net/udp prints). Where SO_MEMINFO is refused (older
 *     kernels, sandboxes) the `rx_queue` and `drops` columns of /proc/net/udp and /proc/net/udp6
 *     are read for our sockets' inodes instead. Exported as sip_udp_socket_drops_total,
 *     sip_udp_rx_queue_bytes and sip_udp_rcvbuf_bytes, labelled socket="addr:port"; new drops
 *     are logged (WARN, at most one per socket and UDP_WARN_S) with what to do about them.
 *  3. Overload before loss: while a socket's queue holds sip.udp_shed_percent of its receive
 *     buffer, ims_sip.c's shed_load answers new out-of-dialog requests 503 with Retry-After
 *     (RFC 3261 §21.5.4), like sip.max_transactions does, until every queue is below half of
 *     that (hysteresis, so that one drained datagram does not flip the state back and forth).
 *     A 503 is cheap next to what it spares (an HSS round trip, a forward), so the loop drains
 *     the queue faster than it fills, and well-behaved clients back off for Retry-After.
 *     Counted in sip_udp_queue_rejected_total; sip_udp_queue_shedding is 1 meanwhile.
 *     Only new requests are refused: responses, ACK, CANCEL and in-dialog requests end work.
 *
 * Our sockets are found once, after nta bound them: every UDP socket of this process whose local
 * port is sip.port (/proc/self/fd, as ims_sip_transport.c does for TCP): nta opens one per
 * address family it listens on (IPv4, IPv6 or both). Outgoing UDP leaves from the same sockets.
 *
 * References: socket(7) SO_RCVBUF / SO_RCVBUFFORCE / SO_MEMINFO; proc(5) /proc/net/udp;
 * Linux include/uapi/linux/sock_diag.h (SK_MEMINFO_*); RFC 3261 §21.5.4, §20.33.
 */
#include "ims_sip_priv.h"
#include "ims_http.h"
#include "ims_log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su.h>

#ifndef SO_MEMINFO
#define SO_MEMINFO 55           /* asm-generic/socket.h, Linux 4.12 */
#endif

/* 50 ms: at a flood of 30,000 datagrams/s of ~2 KiB truesize a 4 MiB queue grows from half to
 * full in about 70 ms, so a slower look would often see it only when it already overflows. */
#define UDP_TICK_MS 50
#define UDP_WARN_S 10           /* one drop warning per socket per 10 s */

static ims_metric *m_rejected, *m_shedding;

static void metrics_init(void)
{
    if (m_rejected)
        return;
    m_rejected = ims_metric_counter("sip_udp_queue_rejected_total",
                                    "new requests answered 503 because a SIP UDP receive queue held "
                                    "sip.udp_shed_percent of its buffer");
    m_shedding = ims_metric_gauge("sip_udp_queue_shedding",
                                  "1 while new requests are answered 503 because of a full SIP UDP receive queue");
}

/* ---------- /proc/net/udp ---------- */

int ims_udp_parse_proc_line(const char *line, ims_udp_proc_line *out)
{
    /* proc(5), net/ipv4/udp.c udp4_format_sock, net/ipv6/datagram.c __ip6_dgram_sock_seq_show:
     * "sl: local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops"
     * with the addresses as hex "ADDR:PORT" (8 hex digits for IPv4, 32 for IPv6). */
    unsigned sl, st, tr;
    char local[64], rem[64];
    unsigned long long txq, rxq, when, retr, ptr, drops;
    unsigned long uid, timeout, inode, ref;
    int n = 0;
    if (!line || !out)
        return -1;
    if (sscanf(line, " %u: %63s %63s %x %llx:%llx %x:%llx %llx %lu %lu %lu %lu %llx %llu%n", &sl, local,
               rem, &st, &txq, &rxq, &tr, &when, &retr, &uid, &timeout, &inode, &ref, &ptr, &drops, &n) != 15)
        return -1;
    const char *colon = strrchr(local, ':');
    size_t alen = colon ? (size_t)(colon - local) : 0;
    if (!colon || (alen != 8 && alen != 32) || strspn(local, "0123456789abcdefABCDEF") != alen)
        return -1;
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 16);
    if (*end || end == colon + 1 || port > 65535)
        return -1;
    for (const char *p = line + n; *p; p++)     /* nothing but blanks may follow */
        if (*p != ' ' && *p != '\t' && *p != '\n')
            return -1;
    out->local_port = (unsigned)port;
    out->v6 = alen == 32;
    out->inode = inode;
    out->tx_queue = txq;
    out->rx_queue = rxq;
    out->drops = drops;
    return 0;
}

/* Fallback sample: rx_queue and drops of our sockets from /proc/net/udp{,6}. The receive buffer
 * stays the value read back at start-up. */
static void sample_proc(ims_sip *s, uint64_t *rmem, uint64_t *drops)
{
    static const char *const files[] = { "/proc/net/udp", "/proc/net/udp6" };
    for (size_t f = 0; f < 2; f++) {
        FILE *fp = fopen(files[f], "r");
        if (!fp)
            continue;
        char line[512];
        while (fgets(line, sizeof(line), fp)) {
            ims_udp_proc_line pl;
            if (ims_udp_parse_proc_line(line, &pl) < 0 || pl.local_port != s->port)
                continue;
            for (size_t i = 0; i < s->nudp; i++)
                if (s->udp[i].inode == pl.inode) {
                    rmem[i] = pl.rx_queue;
                    drops[i] = pl.drops;
                }
        }
        fclose(fp);
    }
}

/* SO_MEMINFO: queued bytes, receive buffer, drops. -1 when the kernel does not offer it. */
static int sample_meminfo(ims_sip_udp_sock *u, uint64_t *rmem, uint64_t *drops)
{
    uint32_t mi[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mi);
    memset(mi, 0, sizeof(mi));
    if (getsockopt(u->fd, SOL_SOCKET, SO_MEMINFO, mi, &len) < 0 ||
        len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t))
        return -1;
    *rmem = mi[SK_MEMINFO_RMEM_ALLOC];
    *drops = mi[SK_MEMINFO_DROPS];
    u->rcvbuf = (int64_t)mi[SK_MEMINFO_RCVBUF];
    return 0;
}

/* ---------- the periodic look ---------- */

static void warn_drops(ims_sip_udp_sock *u, time_t now)
{
    if (u->drops <= u->drops_warned || (u->warned && now - u->warned < UDP_WARN_S))
        return;
    IMS_WARN("sip", "UDP socket %s: the kernel dropped %" PRIu64 " SIP datagrams since %s (receive "
             "buffer full: %" PRId64 " bytes): raise sip.udp_rcvbuf (and net.core.rmem_max, or run "
             "with CAP_NET_ADMIN), or the offered load is beyond what this NF can process "
             "(see sip_udp_queue_rejected_total); total %" PRIu64, u->name, u->drops - u->drops_warned,
             u->warned ? "the last warning" : "start", u->rcvbuf, u->drops);
    u->drops_warned = u->drops;
    u->warned = now;
}

static void udp_tick(void *arg)
{
    ims_sip *s = arg;
    uint64_t rmem[IMS_SIP_UDP_MAX] = { 0 }, drops[IMS_SIP_UDP_MAX] = { 0 };
    bool via_proc = !s->udp_meminfo;
    for (size_t i = 0; i < s->nudp && !via_proc; i++) {
        if (sample_meminfo(&s->udp[i], &rmem[i], &drops[i]) < 0) {
            IMS_WARN("sip", "UDP socket %s: getsockopt(SO_MEMINFO) refused (%s): reading drops from "
                     "/proc/net/udp instead", s->udp[i].name, strerror(errno));
            s->udp_meminfo = false;
            via_proc = true;
        }
    }
    if (via_proc) {
        for (size_t i = 0; i < s->nudp; i++)
            rmem[i] = drops[i] = 0;
        sample_proc(s, rmem, drops);
    }

    time_t now = time(NULL);
    bool high = false, low = true;
    size_t worst = 0;
    uint64_t worst_pct = 0;
    for (size_t i = 0; i < s->nudp; i++) {
        ims_sip_udp_sock *u = &s->udp[i];
        if (drops[i] >= u->drops)       /* a counter: never backwards */
            u->drops = drops[i];
        ims_metric_set(u->m_drops, (int64_t)u->drops);
        ims_metric_set(u->m_queue, (int64_t)rmem[i]);
        ims_metric_set(u->m_rcvbuf, u->rcvbuf);
        warn_drops(u, now);
        if (!s->udp_shed_percent || u->rcvbuf <= 0)
            continue;
        uint64_t pct = rmem[i] * 100 / (uint64_t)u->rcvbuf;
        if (pct >= s->udp_shed_percent)
            high = true;
        if (pct * 2 >= s->udp_shed_percent)
            low = false;
        if (pct >= worst_pct)
            worst_pct = pct, worst = i;
    }

    uint64_t shed = (uint64_t)ims_metric_value(m_rejected);
    if (!s->udp_shedding && high) {
        s->udp_shedding = true;
        s->udp_shed_base = shed;
        s->udp_shed_since = now;
        ims_metric_set(m_shedding, 1);
    } else if (s->udp_shedding && low) {
        s->udp_shedding = false;
        ims_metric_set(m_shedding, 0);
        if (s->udp_shed_logged >= s->udp_shed_since)
            IMS_INFO("sip", "SIP UDP receive queues below %u %% of their buffers again: new requests "
                     "are served (%" PRIu64 " answered 503 in %ld s)", s->udp_shed_percent / 2,
                     shed - s->udp_shed_base, (long)(now - s->udp_shed_since));
    }
    /* One warning when shedding starts, then one per UDP_WARN_S while it lasts. */
    if (s->udp_shedding && (s->udp_shed_logged < s->udp_shed_since || now - s->udp_shed_logged >= UDP_WARN_S)) {
        s->udp_shed_logged = now;
        IMS_WARN("sip", "overload: UDP receive queue of %s holds %" PRIu64 " %% of its %" PRId64 " byte "
                 "buffer (sip.udp_shed_percent %u): answering new requests 503 Retry-After %u until "
                 "below %u %% (%" PRIu64 " so far); the offered load is beyond what this NF processes",
                 s->udp[worst].name, worst_pct, s->udp[worst].rcvbuf, s->udp_shed_percent,
                 s->retry_after, s->udp_shed_percent / 2, shed - s->udp_shed_base);
    }
    ims_sip_timer_start(s, UDP_TICK_MS, udp_tick, s);
}

bool ims_sip_udp_shedding(ims_sip *s)
{
    return s->udp_shedding;
}

void ims_sip_udp_count_rejected(void)
{
    ims_metric_inc(m_rejected);
}

/* ---------- set-up ---------- */

/* "addr:port" ("[v6]:port") of a bound socket, for logs and the metric label. */
static void sock_name(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[64] = "?";
    unsigned port = 0;
    snprintf(buf, len, "?");
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        su_inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        su_inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    }
}

static unsigned local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Every UDP socket of this process bound to our SIP port. */
static void find_sockets(ims_sip *s)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL && s->nudp < IMS_SIP_UDP_MAX;) {
        char *end = NULL;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || fd < 0 || fd == dirfd(d))
            continue;
        struct stat st;
        int type = 0;
        socklen_t len = sizeof(type);
        if (fstat((int)fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
            getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM ||
            local_port((int)fd) != s->port)
            continue;
        ims_sip_udp_sock *u = &s->udp[s->nudp++];
        memset(u, 0, sizeof(*u));
        u->fd = (int)fd;
        u->inode = (unsigned long)st.st_ino;    /* the "inode" column of /proc/net/udp */
        sock_name(u->fd, u->name, sizeof(u->name));
    }
    closedir(d);
}

/* Sets one buffer: the FORCE option first (CAP_NET_ADMIN: not capped by net.core.*mem_max),
 * else the plain one. Returns what the kernel kept (it doubles the request, socket(7)). */
static int64_t set_buffer(ims_sip_udp_sock *u, int force_opt, int opt, long bytes, const char *key,
                          const char *sysctl)
{
    int v = (int)bytes;
    if (setsockopt(u->fd, SOL_SOCKET, force_opt, &v, sizeof(v)) < 0 &&
        setsockopt(u->fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
        IMS_WARN("sip", "UDP socket %s: %s %ld refused by the kernel (%s)", u->name, key, bytes, strerror(errno));
    int got = 0;
    socklen_t len = sizeof(got);
    if (getsockopt(u->fd, SOL_SOCKET, opt, &got, &len) < 0)
        return 0;
    if ((int64_t)got < 2 * (int64_t)bytes)
        IMS_WARN("sip", "UDP socket %s: %s is %ld bytes but the kernel gave %d (it doubles the request, "
                 "so %ld expected): %s caps it; raise it (sysctl -w %s=%ld) or run with CAP_NET_ADMIN",
                 u->name, key, bytes, got, 2 * bytes, sysctl, sysctl, bytes);
    return got;
}

int ims_sip_udp_setup(ims_sip *s, const ims_sip_cfg *cfg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    metrics_init();
    s->udp_shed_percent = cfg->udp_shed_percent > 0 ? (unsigned)cfg->udp_shed_percent : 0;
    s->udp_meminfo = true;
    find_sockets(s);
    if (s->nudp == 0) {
        /* Not fatal: SIP over TCP still works; the operator learns that nothing is watched. */
        IMS_WARN("sip", "no UDP socket on SIP port %u found in /proc/self/fd: UDP drops are not "
                 "monitored and sip.udp_rcvbuf / sip.udp_sndbuf are not applied", s->port);
        return 0;
    }
    for (size_t i = 0; i < s->nudp; i++) {
        ims_sip_udp_sock *u = &s->udp[i];
        if (cfg->udp_rcvbuf > 0)
            set_buffer(u, SO_RCVBUFFORCE, SO_RCVBUF, cfg->udp_rcvbuf, "sip.udp_rcvbuf", "net.core.rmem_max");
        if (cfg->udp_sndbuf > 0)
            set_buffer(u, SO_SNDBUFFORCE, SO_SNDBUF, cfg->udp_sndbuf, "sip.udp_sndbuf", "net.core.wmem_max");
        int rb = 0;
        socklen_t len = sizeof(rb);
        if (getsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rb, &len) == 0)
            u->rcvbuf = rb;
        char name[160];
        snprintf(name, sizeof(name), "sip_udp_socket_drops_total{socket=\"%s\"}", u->name);
        u->m_drops = ims_metric_counter(name, "datagrams the kernel dropped at this SIP UDP socket "
                                              "(receive buffer full), as /proc/net/udp drops");
        snprintf(name, sizeof(name), "sip_udp_rx_queue_bytes{socket=\"%s\"}", u->name);
        u->m_queue = ims_metric_gauge(name, "bytes waiting in this SIP UDP socket's receive queue "
                                            "(kernel accounting, sk_rmem_alloc)");
        snprintf(name, sizeof(name), "sip_udp_rcvbuf_bytes{socket=\"%s\"}", u->name);
        u->m_rcvbuf = ims_metric_gauge(name, "this SIP UDP socket's receive buffer as the kernel keeps it "
                                             "(twice sip.udp_rcvbuf): the queue is dropped beyond it");
        ims_metric_set(u->m_rcvbuf, u->rcvbuf);
        if (s->udp_shed_percent)
            IMS_INFO("sip", "UDP socket %s: receive buffer %" PRId64 " bytes; new requests get 503 while "
                     "its queue is above %u %% of it", u->name, u->rcvbuf, s->udp_shed_percent);
        else
            IMS_INFO("sip", "UDP socket %s: receive buffer %" PRId64 " bytes (sip.udp_shed_percent 0: "
                     "no shedding on its queue)", u->name, u->rcvbuf);
    }
    ims_sip_timer_start(s, UDP_TICK_MS, udp_tick, s);
    return 0;
}
