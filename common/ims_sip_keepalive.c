/*
 * ims_sip_keepalive: NAT keep-alives of UEs on the SIP port, answered without ever reaching the
 * SIP parser.
 *
 * References: RFC 5626 §3.5.1 (CRLF keep-alive: the client sends CRLFCRLF, the "ping", and the
 * server answers CRLF, the "pong"; defined for connection-oriented transports only), §3.5.2 and
 * §8 (on UDP the keep-alive is a STUN Binding request, RFC 5389, answered by a STUN server on the
 * SIP port, which tells STUN from SIP by the first two bits), RFC 5389 §6, §7.3.1, §15.2
 * (Binding success response, XOR-MAPPED-ADDRESS), RFC 5769 §2.2 (test vector), socket(7)
 * SO_REUSEPORT and SO_ATTACH_REUSEPORT_CBPF.
 *
 *  - TCP: sofia-sip's stream reader consumes the whitespace before a message itself and answers
 *    CRLFCRLF with CRLF when TPTAG_PONG2PING is on (ims_sip.c turns it on); nothing is allocated,
 *    parsed or logged per ping, and the connection watch (ims_sip_transport.c) counts a ping as
 *    traffic.
 *  - UDP: sofia-sip 1.12.11 parses every datagram as SIP. A CRLFCRLF datagram (what many phones
 *    send on UDP to keep their NAT binding: PJSIP, Linphone) is "garbage" there: counted as a bad
 *    message, a log line each at debug level, no answer. A STUN request is answered with a 600
 *    error and leaks 12 bytes each time (send_stun_error, docs/pitfalls.md), so a flood of them
 *    grows the heap without bound. So these datagrams never reach sofia: a second UDP socket of
 *    ours joins the SIP socket's SO_REUSEPORT group (same address and port) and a classic BPF
 *    program of the group steers every datagram shorter than 20 bytes (the smallest STUN
 *    message; no SIP message is that short) and every RFC 5389 STUN message (magic cookie at
 *    byte 4) to our socket, everything else to sofia's. On our socket:
 *      CRLFCRLF                -> CRLF, from the SIP port to the sender's observed address and
 *                                 port (what such phones expect; it also refreshes the binding)
 *      STUN Binding request    -> Binding success with XOR-MAPPED-ADDRESS (RFC 5626 §8: what an
 *                                 outbound UA on UDP uses to keep its flow and detect NAT reboot)
 *      anything else           -> dropped
 *    Counted in sip_keepalive_udp_total{kind}. Cost per datagram: one recvfrom into a stack
 *    buffer and at most one sendto; no allocation, no log line. Anyone may send them (a UE
 *    before its REGISTER needs the binding too): the answer is never larger than 2.2 times the
 *    datagram (CRLF for 4 bytes, 32 or 44 bytes for a 20-byte STUN request), so a spoofed source
 *    gains little amplification.
 */
#include "ims_sip_priv.h"
#include "ims_http.h"
#include "ims_log.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sofia-sip/su_wait.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/tport.h>

/* sofia-sip 1.12's own entry for an ICMP error of a UDP socket (tport.c; exported, declared only
 * in its internal header tport_internal.h): fails the messages pending to that address, so that
 * nta ends their transactions at once (503 / transport error) instead of at Timer F/B. */
void tport_error_report(tport_t *self, int errcode, su_sockaddr_t const *addr);

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51     /* asm-generic/socket.h, Linux 4.5 */
#endif

#define STUN_HEADER 20
#define STUN_COOKIE 0x2112A442u
#define STUN_BINDING_REQUEST 0x0001
#define STUN_BINDING_SUCCESS 0x0101
#define STUN_XOR_MAPPED_ADDRESS 0x0020

#define KEEPALIVE_HELP "UDP datagrams on the SIP port taken before SIP parsing: CRLFCRLF pings (answered " \
                       "CRLF), STUN Binding requests (answered), other short or STUN datagrams (dropped)"

static ims_metric *m_crlf, *m_stun, *m_other;

static void metrics_init(void)
{
    if (m_crlf)
        return;
    m_crlf = ims_metric_counter("sip_keepalive_udp_total{kind=\"crlf\"}", KEEPALIVE_HELP);
    m_stun = ims_metric_counter("sip_keepalive_udp_total{kind=\"stun\"}", KEEPALIVE_HELP);
    m_other = ims_metric_counter("sip_keepalive_udp_total{kind=\"dropped\"}", KEEPALIVE_HELP);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* RFC 5389 §15.2: XOR-MAPPED-ADDRESS of `from`, after the request's header in `req`. */
static size_t xor_mapped_address(const uint8_t *req, const struct sockaddr *from, uint8_t *out)
{
    const uint8_t *mask = req + 4;      /* magic cookie, then the transaction ID (IPv6) */
    put16(out, STUN_XOR_MAPPED_ADDRESS);
    out[4] = 0;
    if (from->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)from;
        const uint8_t *ip = (const uint8_t *)&a->sin_addr;
        put16(out + 2, 8);
        out[5] = 0x01;
        put16(out + 6, ntohs(a->sin_port) ^ (STUN_COOKIE >> 16));
        for (int i = 0; i < 4; i++)
            out[8 + i] = ip[i] ^ mask[i];
        return 12;
    }
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    const uint8_t *ip = (const uint8_t *)&a->sin6_addr;
    put16(out + 2, 20);
    out[5] = 0x02;
    put16(out + 6, ntohs(a->sin6_port) ^ (STUN_COOKIE >> 16));
    for (int i = 0; i < 16; i++)
        out[8 + i] = ip[i] ^ mask[i];
    return 24;
}

ims_keepalive_kind ims_sip_keepalive_answer(const uint8_t *in, size_t n, const struct sockaddr *from,
                                            uint8_t *out, size_t outlen, size_t *answer_len)
{
    *answer_len = 0;
    if (n == 4 && memcmp(in, "\r\n\r\n", 4) == 0) {
        if (outlen >= 2) {
            memcpy(out, "\r\n", 2);
            *answer_len = 2;
        }
        return IMS_KEEPALIVE_CRLF;
    }
    /* RFC 5389 §6: first two bits 0, length a multiple of 4 that matches, the magic cookie. */
    if (n < STUN_HEADER || (in[0] & 0xc0) || get32(in + 4) != STUN_COOKIE || get16(in + 2) != n - STUN_HEADER ||
        (n & 3) || get16(in) != STUN_BINDING_REQUEST || !from ||
        (from->sa_family != AF_INET && from->sa_family != AF_INET6) || outlen < STUN_HEADER + 24)
        return IMS_KEEPALIVE_OTHER;
    /* §7.3.1: a success response with the request's transaction ID. Attributes of the request
     * (FINGERPRINT, SOFTWARE) are not needed for a keep-alive (RFC 5626 §8: no authentication). */
    size_t alen = xor_mapped_address(in, from, out + STUN_HEADER);
    put16(out, STUN_BINDING_SUCCESS);
    put16(out + 2, (unsigned)alen);
    memcpy(out + 4, in + 4, 16);        /* cookie and transaction ID */
    *answer_len = STUN_HEADER + alen;
    return IMS_KEEPALIVE_STUN;
}

/* The reuseport group's program: the datagram's UDP payload is at offset 0 (the kernel pulls the
 * UDP header before running it, net/core/sock_reuseport.c); the value returned is the index of
 * the socket in the group: 0 is sofia's (it was in place first), 1 ours. */
static struct sock_filter steer_prog[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),                      /* A = payload length */
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, STUN_HEADER, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, 1),                               /* < 20 bytes: ours */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),                      /* A = bytes 4..7 */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, STUN_COOKIE, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 1),                               /* STUN: ours */
    BPF_STMT(BPF_RET | BPF_K, 0),                               /* SIP: sofia's */
};

/* The ICMP errors that land on our socket. The kernel picks the socket of a reuseport group for
 * an ICMP error by the flow's hash, not by the steering program (there is no datagram to run it
 * on), so about half of the "port unreachable" errors for what sofia sent arrive here. They are
 * handed to sofia's UDP transport as if its own socket had read them (IP_RECVERR on ours). */
static void forward_errors(ims_sip_keepalive_sock *k)
{
    for (int i = 0; i < 64; i++) {
        char cbuf[512];
        uint8_t data[64];
        struct sockaddr_storage dest;
        struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
        struct msghdr mh = { .msg_name = &dest, .msg_namelen = sizeof(dest), .msg_iov = &iov,
                             .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        if (recvmsg(k->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                  (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
                continue;
            const struct sock_extended_err *ee = (const struct sock_extended_err *)CMSG_DATA(c);
            if (k->tport && mh.msg_namelen > 0)
                tport_error_report(k->tport, (int)ee->ee_errno, (su_sockaddr_t const *)&dest);
        }
    }
}

static int on_readable(su_root_magic_t *magic, su_wait_t *w, su_wakeup_arg_t *arg)
{
    (void)magic;
    ims_sip_keepalive_sock *k = (ims_sip_keepalive_sock *)arg;
    if (su_wait_events(w, k->fd) & SU_WAIT_ERR)
        forward_errors(k);
    /* A bounded batch per wake-up, so that a flood cannot hold the loop. */
    for (int i = 0; i < 64; i++) {
        uint8_t in[576], out[64];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(k->fd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0)
            break;
        size_t alen = 0;
        switch (ims_sip_keepalive_answer(in, (size_t)n, (struct sockaddr *)&from, out, sizeof(out), &alen)) {
        case IMS_KEEPALIVE_CRLF: ims_metric_inc(m_crlf); break;
        case IMS_KEEPALIVE_STUN: ims_metric_inc(m_stun); break;
        default: ims_metric_inc(m_other); break;
        }
        if (alen)   /* from the SIP port (same address and port as sofia's socket) */
            (void)sendto(k->fd, out, alen, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&from, fl);
    }
    return 0;
}

static void keepalive_close(ims_sip *s, ims_sip_keepalive_sock *k)
{
    if (!k->open)       /* never set up: fd 0 of a zeroed struct is not ours */
        return;
    if (k->wait_index > 0)
        su_root_deregister(s->root, k->wait_index);
    if (k->fd >= 0)
        close(k->fd);
    k->wait_index = 0;
    k->fd = -1;
    k->open = false;
}

/* sofia's primary UDP transport for an address family (IPv6: its host name holds a ':'). */
static tport_t *udp_tport(ims_sip *s, int family)
{
    for (tport_t *tp = tport_primaries(nta_agent_tports(s->agent)); tp; tp = tport_next(tp)) {
        const tp_name_t *n = tport_name(tp);
        if (n && n->tpn_proto && !strcasecmp(n->tpn_proto, "udp") && n->tpn_host &&
            (strchr(n->tpn_host, ':') != NULL) == (family == AF_INET6))
            return tp;
    }
    return NULL;
}

/* Joins sofia's socket u in a reuseport group with a socket of ours. 0 / -1 (errno). */
static int join(ims_sip *s, const ims_sip_udp_sock *u, ims_sip_keepalive_sock *k)
{
    struct sockaddr_storage local;
    socklen_t ll = sizeof(local);
    int one = 1;
    if (getsockname(u->fd, (struct sockaddr *)&local, &ll) < 0 ||
        setsockopt(u->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        return -1;
    k->fd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0)
        return -1;
    if (local.ss_family == AF_INET6) {  /* the same dual-stack setting, or bind fails or differs */
        int v6only = 0;
        socklen_t vl = sizeof(v6only);
        if (getsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vl) < 0 ||
            setsockopt(k->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
            return -1;
    }
    /* The SIP socket's buffers (sip.udp_rcvbuf / sip.udp_sndbuf as the kernel kept them, doubled:
     * hence the half), so that both sockets of the port behave alike under a flood. */
    static const int opts[][2] = { { SO_RCVBUF, SO_RCVBUFFORCE }, { SO_SNDBUF, SO_SNDBUFFORCE } };
    for (size_t i = 0; i < 2; i++) {
        int v = 0;
        socklen_t vl = sizeof(v);
        if (getsockopt(u->fd, SOL_SOCKET, opts[i][0], &v, &vl) == 0 && v > 1) {
            v /= 2;
            if (setsockopt(k->fd, SOL_SOCKET, opts[i][1], &v, sizeof(v)) < 0)
                (void)setsockopt(k->fd, SOL_SOCKET, opts[i][0], &v, sizeof(v));
        }
    }
    /* ICMP errors queued on our socket (forward_errors) */
    if (local.ss_family == AF_INET6)
        (void)setsockopt(k->fd, SOL_IPV6, IPV6_RECVERR, &one, sizeof(one));
    if (local.ss_family == AF_INET || local.ss_family == AF_INET6)  /* v4-mapped on a dual socket */
        (void)setsockopt(k->fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
    k->tport = udp_tport(s, local.ss_family);
    struct sock_fprog prog = { .len = sizeof(steer_prog) / sizeof(steer_prog[0]), .filter = steer_prog };
    if (setsockopt(k->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(k->fd, (struct sockaddr *)&local, ll) < 0 ||
        setsockopt(k->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
        return -1;
    su_wait_t w[1];
    if (su_wait_create(w, k->fd, SU_WAIT_IN | SU_WAIT_ERR) < 0)
        return -1;
    k->wait_index = su_root_register(s->root, w, on_readable, (su_wakeup_arg_t *)k, 0);
    if (k->wait_index <= 0) {
        su_wait_destroy(w);
        k->wait_index = 0;
        return -1;
    }
    return 0;
}

void ims_sip_keepalive_setup(ims_sip *s)
{
    metrics_init();
    for (size_t i = 0; i < s->nudp; i++) {
        ims_sip_keepalive_sock *k = &s->keepalive[i];
        k->fd = -1;
        k->open = true;
        if (join(s, &s->udp[i], k) < 0) {
            /* Not fatal: SIP works; keep-alives then reach sofia as before (no answer). */
            IMS_WARN("sip", "UDP socket %s: no keep-alive socket beside it (%s): CRLF and STUN "
                     "keep-alives on UDP are not answered", s->udp[i].name, strerror(errno));
            keepalive_close(s, k);
            continue;
        }
        IMS_DEBUG("sip", "UDP socket %s: CRLF and STUN keep-alives answered (RFC 5626)", s->udp[i].name);
    }
}

void ims_sip_keepalive_shutdown(ims_sip *s)
{
    for (size_t i = 0; i < s->nudp; i++)
        keepalive_close(s, &s->keepalive[i]);
}
