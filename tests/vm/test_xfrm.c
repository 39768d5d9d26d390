/*
 * vm.test_xfrm: pcscf_xfrm against a real kernel's XFRM/ESP, inside the VM of tests/vm/run.sh
 * (the build machines' kernel has no ESP). Refuses to run outside it (IMS_IN_VM=1).
 *
 * A UE lives in its own network namespace with a veth pair to the root namespace (XFRM policies do
 * not apply on loopback). The P-CSCF side of the four SAs of a sec-agree pair (TS 33.203 §7.1) is
 * installed through pcscf_xfrm; the UE side through `ip xfrm`, as a phone's IPsec stack would, so
 * both ends agree only if our netlink messages mean what the kernel's own tool means.
 *   SA1 UE port-uc -> P port-ps  spi-ps  (in at P)     SA2 P port-ps -> UE port-uc  spi-uc (out)
 *   SA3 P port-pc  -> UE port-us spi-us  (out at P)    SA4 UE port-us -> P port-pc  spi-pc (in)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pcscf_xfrm.h"

#define UE_NS "imsue"
#define TAG 0x1ac5c0f /* reqid of "our" entries */
#define FOREIGN_SPI 0x7777

static pcscf_xfrm *X;

/* ---- helpers: shell, sockets, the UE namespace ---- */

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int family_of(const char *addr)
{
    return strchr(addr, ':') ? AF_INET6 : AF_INET;
}

static socklen_t sockaddr_of(const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family_of(addr) == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        inet_pton(AF_INET6, addr, &s6->sin6_addr);
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    inet_pton(AF_INET, addr, &s4->sin_addr);
    return sizeof *s4;
}

/* A socket bound to addr:port, 3 s send/receive (and connect) timeouts; listening for TCP. */
static int bound(int type, const char *addr, uint16_t port, int listening)
{
    int fd = socket(family_of(addr), type, 0), one = 1;
    if (fd < 0)
        return -1;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(addr, port, &ss);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (listening && listen(fd, 4) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Client: from src:sport to dst:dport sends "ping", wants "pong". 0 when it came. */
static int ping(int type, const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
    int fd = bound(type, src, sport, 0), ok = -1;
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(dst, dport, &ss);
    char buf[16] = "";
    if (connect(fd, (struct sockaddr *)&ss, len) == 0 && send(fd, "ping", 4, 0) == 4 &&
        recv(fd, buf, sizeof buf - 1, 0) == 4 && strcmp(buf, "pong") == 0)
        ok = 0;
    close(fd);
    return ok;
}

/* Server: answers one "ping" on fd (UDP socket or TCP listener) with "pong". 0 when it did. */
static int pong(int fd, int type)
{
    char buf[16] = "";
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int ok = -1;
    if (type == SOCK_DGRAM) {
        if (recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &plen) == 4 &&
            strcmp(buf, "ping") == 0 && sendto(fd, "pong", 4, 0, (struct sockaddr *)&peer, plen) == 4)
            ok = 0;
        return ok;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 3000) != 1)
        return -1;
    int c = accept(fd, NULL, NULL);
    if (c < 0)
        return -1;
    struct timeval tv = {3, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (recv(c, buf, sizeof buf - 1, 0) == 4 && strcmp(buf, "ping") == 0 && send(c, "pong", 4, 0) == 4)
        ok = 0;
    close(c);
    return ok;
}

static void enter_ue_ns(void)
{
    int fd = open("/run/netns/" UE_NS, O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
        _exit(90);
    close(fd);
}

/* The UE pings P (in its namespace, in a child) while P answers: 0 when both ends saw it. */
static int ue_pings_p(int type, const char *ue, uint16_t uport, const char *p, uint16_t pport)
{
    int fd = bound(type, p, pport, type == SOCK_STREAM);
    if (fd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        enter_ue_ns();
        _exit(ping(type, ue, uport, p, pport) == 0 ? 0 : 1);
    }
    int served = pong(fd, type), status = 0;
    close(fd);
    waitpid(pid, &status, 0);
    return served == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* P pings the UE, whose server runs in its namespace: 0 when both ends saw it. */
static int p_pings_ue(int type, const char *p, uint16_t pport, const char *ue, uint16_t uport)
{
    int ready[2];
    if (pipe(ready) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        enter_ue_ns();
        int fd = bound(type, ue, uport, type == SOCK_STREAM);
        if (fd < 0 || write(ready[1], "r", 1) != 1)
            _exit(2);
        _exit(pong(fd, type) == 0 ? 0 : 1);
    }
    close(ready[1]);
    char r;
    struct pollfd pf = {ready[0], POLLIN, 0};
    int ok = poll(&pf, 1, 5000) == 1 && read(ready[0], &r, 1) == 1 ? ping(type, p, pport, ue, uport) : -1;
    close(ready[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return ok == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A kernel counter of /proc/net/xfrm_stat (CONFIG_XFRM_STATISTICS). */
static long xfrm_stat(const char *name)
{
    FILE *f = fopen("/proc/net/xfrm_stat", "r");
    char key[64];
    long v, found = -1;
    while (f && fscanf(f, "%63s %ld", key, &v) == 2)
        if (strcmp(key, name) == 0)
            found = v;
    if (f)
        fclose(f);
    return found;
}

/* ---- the SA pair ---- */

typedef struct {
    const char *alg, *ealg;    /* sec-agree names, given to pcscf_xfrm */
    const char *kalg, *kealg;  /* the same in Linux names, given to ip xfrm (the UE) */
    size_t ak, ek;             /* key lengths */
    const char *p, *ue;        /* addresses */
} combo;

/* Every alg/ealg pair of TS 33.203 Annex H; the last over IPv6. */
static const combo combos[] = {
    {"hmac-sha-1-96", "null", "hmac(sha1)", "ecb(cipher_null)", 20, 0, "10.77.0.1", "10.77.0.2"},
    {"hmac-sha-1-96", "aes-cbc", "hmac(sha1)", "cbc(aes)", 20, 16, "10.77.0.1", "10.77.0.2"},
    {"hmac-sha-1-96", "des-ede3-cbc", "hmac(sha1)", "cbc(des3_ede)", 20, 24, "10.77.0.1", "10.77.0.2"},
    {"hmac-md5-96", "null", "hmac(md5)", "ecb(cipher_null)", 16, 0, "10.77.0.1", "10.77.0.2"},
    {"hmac-md5-96", "aes-cbc", "hmac(md5)", "cbc(aes)", 16, 16, "10.77.0.1", "10.77.0.2"},
    {"hmac-md5-96", "des-ede3-cbc", "hmac(md5)", "cbc(des3_ede)", 16, 24, "fd77::1", "fd77::2"},
};

typedef struct {
    pcscf_xfrm_sa sa[4];
    uint16_t ps, pc, uc, us;
    const combo *c;
} pair;

static void fill_sa(pcscf_xfrm_sa *sa, const combo *c, int out, const char *src, uint16_t sport,
                    const char *dst, uint16_t dport, uint32_t spi, uint8_t seed)
{
    memset(sa, 0, sizeof *sa);
    snprintf(sa->src, sizeof sa->src, "%s", src);
    snprintf(sa->dst, sizeof sa->dst, "%s", dst);
    sa->sport = sport;
    sa->dport = dport;
    sa->spi = spi;
    sa->dir = out ? PCSCF_XFRM_OUT : PCSCF_XFRM_IN;
    snprintf(sa->alg, sizeof sa->alg, "%s", c->alg);
    snprintf(sa->ealg, sizeof sa->ealg, "%s", c->ealg);
    sa->auth_key_len = c->ak;
    sa->enc_key_len = c->ek;
    for (size_t i = 0; i < PCSCF_XFRM_KEY_MAX; i++) {
        sa->auth_key[i] = (uint8_t)(seed + 3 * i);
        sa->enc_key[i] = (uint8_t)(seed + 7 * i + 1);
    }
    sa->lifetime = 120;
}

/* The four SAs of combo n on ports base..base+3, SPIs 16*base+1..4: every pair of the run has its
 * own ports (no TCP TIME_WAIT between runs) and SPIs (a failed test leaves nothing in the way). */
static void make_pair(pair *p, int n, uint16_t base)
{
    const combo *c = &combos[n];
    p->c = c;
    p->ps = base;
    p->pc = base + 1;
    p->uc = base + 2;
    p->us = base + 3;
    uint32_t spi = 16u * base;
    fill_sa(&p->sa[0], c, 0, c->ue, p->uc, c->p, p->ps, spi + 1, 0x11); /* SA1 spi-ps */
    fill_sa(&p->sa[1], c, 1, c->p, p->ps, c->ue, p->uc, spi + 2, 0x22); /* SA2 spi-uc */
    fill_sa(&p->sa[2], c, 1, c->p, p->pc, c->ue, p->us, spi + 3, 0x33); /* SA3 spi-us */
    fill_sa(&p->sa[3], c, 0, c->ue, p->us, c->p, p->pc, spi + 4, 0x44); /* SA4 spi-pc */
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = 0;
}

/* The UE's side with ip xfrm: the same states, and policies the other way round, one per
 * transport protocol (ip xfrm takes ports only with a protocol). */
static void ue_install(const pair *p)
{
    char path[] = "/tmp/ims-xfrm-ue.XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    for (int i = 0; i < 4; i++) {
        const pcscf_xfrm_sa *sa = &p->sa[i];
        char ak[2 * PCSCF_XFRM_KEY_MAX + 1], ek[2 * PCSCF_XFRM_KEY_MAX + 3] = "\"\"";
        hex(sa->auth_key, sa->auth_key_len, ak);
        if (sa->enc_key_len) {
            strcpy(ek, "0x");
            hex(sa->enc_key, sa->enc_key_len, ek + 2);
        }
        fprintf(f, "xfrm state add src %s dst %s proto esp spi 0x%x mode transport "
                   "auth-trunc %s 0x%s 96 enc %s %s\n",
                sa->src, sa->dst, sa->spi, p->c->kalg, ak, p->c->kealg, ek);
        for (int t = 0; t < 2; t++)
            fprintf(f, "xfrm policy add src %s dst %s proto %s sport %u dport %u dir %s "
                       "tmpl src %s dst %s proto esp spi 0x%x mode transport\n",
                    sa->src, sa->dst, t ? "tcp" : "udp", sa->sport, sa->dport,
                    sa->dir == PCSCF_XFRM_OUT ? "in" : "out", sa->src, sa->dst, sa->spi);
    }
    fclose(f);
    int rc = sh("ip -n " UE_NS " -batch %s", path);
    unlink(path);
    assert_int_equal(rc, 0);
}

static void ue_flush(void)
{
    assert_int_equal(sh("ip -n " UE_NS " xfrm policy flush && ip -n " UE_NS " xfrm state flush"), 0);
}

static void p_install(const pair *p)
{
    char err[256];
    for (int i = 0; i < 4; i++)
        if (pcscf_xfrm_add(X, &p->sa[i], err, sizeof err) < 0)
            fail_msg("%s", err);
}

static uint64_t packets(const pcscf_xfrm_sa *sa)
{
    char err[256];
    uint64_t n = 0, bytes = 0;
    if (pcscf_xfrm_counters(X, sa, &n, &bytes, err, sizeof err) < 0)
        fail_msg("%s", err);
    return n;
}

/* UDP then TCP, on both port pairs, both ways; every SA counts packets for each transport. */
static void traffic(const pair *p)
{
    const char *P = p->c->p, *UE = p->c->ue;
    if (ue_pings_p(SOCK_DGRAM, UE, p->uc, P, p->ps) < 0)
        fail_msg("UDP UE:%u -> P:%u over SA1/SA2 (%s/%s)", p->uc, p->ps, p->c->alg, p->c->ealg);
    if (p_pings_ue(SOCK_DGRAM, P, p->pc, UE, p->us) < 0)
        fail_msg("UDP P:%u -> UE:%u over SA3/SA4 (%s/%s)", p->pc, p->us, p->c->alg, p->c->ealg);
    uint64_t after_udp[4];
    for (int i = 0; i < 4; i++) {
        after_udp[i] = packets(&p->sa[i]);
        if (after_udp[i] == 0)
            fail_msg("SA%d (spi 0x%x, %s) carried no UDP packet", i + 1, p->sa[i].spi, P);
    }
    if (ue_pings_p(SOCK_STREAM, UE, p->uc, P, p->ps) < 0)
        fail_msg("TCP UE:%u -> P:%u over SA1/SA2 (%s/%s)", p->uc, p->ps, p->c->alg, p->c->ealg);
    if (p_pings_ue(SOCK_STREAM, P, p->pc, UE, p->us) < 0)
        fail_msg("TCP P:%u -> UE:%u over SA3/SA4 (%s/%s)", p->pc, p->us, p->c->alg, p->c->ealg);
    for (int i = 0; i < 4; i++)
        if (packets(&p->sa[i]) <= after_udp[i])
            fail_msg("SA%d (spi 0x%x) carried no TCP packet: the policy does not cover TCP", i + 1,
                     p->sa[i].spi);
}

static void p_delete(const pair *p)
{
    char err[256];
    for (int i = 0; i < 4; i++)
        if (pcscf_xfrm_del(X, &p->sa[i], err, sizeof err) < 0)
            fail_msg("%s", err);
}

/* ---- tests ---- */

static int setup(void **state)
{
    char err[256];
    if (!getenv("IMS_IN_VM") || strcmp(getenv("IMS_IN_VM"), "1") != 0) {
        fprintf(stderr, "test_xfrm: run it in the VM (tests/vm/run.sh): it changes the kernel's "
                        "IPsec state\n");
        return -1;
    }
    if (sh("modprobe -a xfrm_user esp4 esp6 veth") != 0 ||
        sh("ip netns add " UE_NS " && ip link add imsv0 type veth peer name imsv1 && "
           "ip link set imsv1 netns " UE_NS " && "
           "ip addr add 10.77.0.1/24 dev imsv0 && ip addr add fd77::1/64 dev imsv0 nodad && "
           "ip link set imsv0 up && "
           "ip -n " UE_NS " addr add 10.77.0.2/24 dev imsv1 && "
           "ip -n " UE_NS " addr add fd77::2/64 dev imsv1 nodad && "
           "ip -n " UE_NS " link set imsv1 up && ip -n " UE_NS " link set lo up") != 0)
        return -1;
    X = pcscf_xfrm_open(TAG, err, sizeof err);
    if (!X) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    pcscf_xfrm_close(X);
    sh("ip netns del " UE_NS " 2>/dev/null");
    return 0;
}

static void expect_refused(const pcscf_xfrm_sa *sa, const char *want)
{
    char err[256] = "";
    if (pcscf_xfrm_add(X, sa, err, sizeof err) == 0)
        fail_msg("added an SA that should be refused with \"%s\"", want);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
    if (!strstr(err, "spi 0x"))
        fail_msg("error \"%s\" does not name the SPI", err);
}

static void test_bad_input_refused(void **state)
{
    pair p;
    make_pair(&p, 1, 6000);
    pcscf_xfrm_sa sa = p.sa[0];
    snprintf(sa.alg, sizeof sa.alg, "hmac-sha-256");
    expect_refused(&sa, "unsupported alg \"hmac-sha-256\"");
    sa = p.sa[0];
    snprintf(sa.ealg, sizeof sa.ealg, "aes-gcm");
    expect_refused(&sa, "unsupported ealg \"aes-gcm\"");
    sa = p.sa[0];
    sa.auth_key_len = 16; /* the MD5 length with SHA-1 */
    expect_refused(&sa, "key lengths 16/16 bytes");
    sa = p.sa[0];
    snprintf(sa.dst, sizeof sa.dst, "fd77::1");
    expect_refused(&sa, "two IPv4 or two IPv6");
    sa = p.sa[0];
    snprintf(sa.src, sizeof sa.src, "ue.example");
    expect_refused(&sa, "two IPv4 or two IPv6");
    sa = p.sa[0];
    sa.spi = 255;
    expect_refused(&sa, "SPI below 256");
    sa = p.sa[0];
    sa.sport = 0;
    expect_refused(&sa, "port 0");

    /* Twice the same: the kernel's EEXIST, naming the SA. */
    char err[256];
    if (pcscf_xfrm_add(X, &p.sa[0], err, sizeof err) < 0)
        fail_msg("%s", err);
    expect_refused(&p.sa[0], "File exists");
    /* A new SPI on a flow that already has its policy: the policy is refused and the new SA
     * does not stay behind. */
    sa = p.sa[0];
    sa.spi = 0x5ee;
    expect_refused(&sa, "add policy of SA spi 0x5ee");
    uint64_t n;
    assert_int_equal(pcscf_xfrm_counters(X, &sa, &n, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such process"));
    assert_int_equal(pcscf_xfrm_del(X, &p.sa[0], err, sizeof err), 0);
    unsigned deleted = 99;
    assert_int_equal(pcscf_xfrm_flush_ours(X, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 0); /* del left nothing of ours */
}

static void test_needs_cap_net_admin(void **state)
{
    pair p;
    make_pair(&p, 0, 6010);
    pid_t pid = fork();
    if (pid == 0) {
        /* nobody: no capabilities */
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
            _exit(2);
        char err[256] = "";
        pcscf_xfrm *x = pcscf_xfrm_open(TAG, err, sizeof err);
        if (!x) {
            fprintf(stderr, "open as nobody: %s\n", err);
            _exit(3);
        }
        int rc = pcscf_xfrm_add(x, &p.sa[0], err, sizeof err);
        fprintf(stderr, "as nobody: %s\n", err);
        pcscf_xfrm_close(x);
        char spi[32];
        snprintf(spi, sizeof spi, "spi 0x%x ", p.sa[0].spi);
        _exit(rc < 0 && strstr(err, "needs CAP_NET_ADMIN") && strstr(err, spi) ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Every alg/ealg pair: the four SAs carry UDP and TCP both ways; del removes all of it. */
static void test_pair_every_algorithm(void **state)
{
    for (int n = 0; n < (int)(sizeof combos / sizeof combos[0]); n++) {
        pair p;
        make_pair(&p, n, (uint16_t)(6100 + 10 * n));
        p_install(&p);
        ue_install(&p);
        traffic(&p);
        p_delete(&p);
        ue_flush();
        char err[256];
        unsigned deleted = 99;
        assert_int_equal(pcscf_xfrm_flush_ours(X, &deleted, err, sizeof err), 0);
        if (deleted != 0)
            fail_msg("%s/%s: %u entries left after del", p.c->alg, p.c->ealg, deleted);
    }
}

/* A clear datagram from the UE's protected client port to our protected server port is dropped
 * by the kernel (inbound policy, level required); the same through the SA arrives. */
static void test_clear_udp_dropped(void **state)
{
    pair p;
    make_pair(&p, 1, 6200);
    p_install(&p);
    ue_install(&p);
    long mismatch = xfrm_stat("XfrmInTmplMismatch"), nopols = xfrm_stat("XfrmInNoPols");
    int fd = bound(SOCK_DGRAM, p.c->p, p.ps, 0);
    assert_true(fd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        enter_ue_ns();
        int s = bound(SOCK_DGRAM, p.c->ue, p.uc, 0);
        /* A socket policy without templates: this socket bypasses the UE's IPsec (as an IKE
         * daemon's does), so the datagram leaves in clear from the protected port. */
        struct xfrm_userpolicy_info bypass;
        memset(&bypass, 0, sizeof bypass);
        bypass.sel.family = AF_INET;
        bypass.lft.soft_byte_limit = bypass.lft.hard_byte_limit = XFRM_INF;
        bypass.lft.soft_packet_limit = bypass.lft.hard_packet_limit = XFRM_INF;
        bypass.dir = XFRM_POLICY_OUT;
        bypass.action = XFRM_POLICY_ALLOW;
        if (s < 0 || setsockopt(s, IPPROTO_IP, IP_XFRM_POLICY, &bypass, sizeof bypass) < 0)
            _exit(2);
        struct sockaddr_storage ss;
        socklen_t len = sockaddr_of(p.c->p, p.ps, &ss);
        _exit(sendto(s, "clear", 5, 0, (struct sockaddr *)&ss, len) == 5 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    struct timeval tv = {1, 500000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16];
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got >= 0)
        fail_msg("a clear datagram reached the protected port %u", p.ps);
    close(fd);
    long dropped = xfrm_stat("XfrmInTmplMismatch") - mismatch + xfrm_stat("XfrmInNoPols") - nopols;
    if (dropped < 1)
        fail_msg("the kernel did not count the clear datagram as refused by policy");
    /* Control: through the SA it arrives. */
    assert_int_equal(ue_pings_p(SOCK_DGRAM, p.c->ue, p.uc, p.c->p, p.ps), 0);
    p_delete(&p);
    ue_flush();
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

/* set_lifetime counts from now, not from the SA's creation; the SA really expires; then del of
 * one SA, flush_ours of the rest, and foreign entries (untagged, or another tag) stay. */
static void test_lifetime_del_flush(void **state)
{
    char err[256];
    pair p;
    make_pair(&p, 1, 6300);
    p_install(&p);
    double added = now_s();
    ue_install(&p);
    for (int i = 0; i < 4; i++)
        if (pcscf_xfrm_set_lifetime(X, &p.sa[i], 600, err, sizeof err) < 0)
            fail_msg("%s", err);
    traffic(&p); /* the update keeps the SAs working */
    double age = now_s() - added;
    if (age < 4)
        sleep_s(4 - age);
    /* 3 s from now. Counted from creation (>= 4 s ago) the SA would be gone at once. */
    if (pcscf_xfrm_set_lifetime(X, &p.sa[3], 3, err, sizeof err) < 0)
        fail_msg("%s", err);
    double updated = now_s();
    sleep_s(1.5);
    uint64_t n;
    if (pcscf_xfrm_counters(X, &p.sa[3], &n, NULL, err, sizeof err) < 0)
        fail_msg("SA4 gone 1.5 s after its lifetime was set to 3 s: %s", err);
    sleep_s(4.5 - (now_s() - updated));
    if (pcscf_xfrm_counters(X, &p.sa[3], &n, NULL, err, sizeof err) == 0)
        fail_msg("SA4 still there 4.5 s after its lifetime was set to 3 s");

    /* del: once, and again (already gone: fine). */
    assert_int_equal(pcscf_xfrm_del(X, &p.sa[1], err, sizeof err), 0);
    assert_int_equal(pcscf_xfrm_del(X, &p.sa[1], err, sizeof err), 0);
    assert_int_equal(pcscf_xfrm_counters(X, &p.sa[1], &n, NULL, err, sizeof err), -1);
    char spi[32];
    snprintf(spi, sizeof spi, "spi 0x%x ", p.sa[1].spi);
    assert_non_null(strstr(err, spi));

    /* Foreign entries in the same namespace: untagged (reqid 0) and another P-CSCF's tag. */
    assert_int_equal(sh("ip xfrm state add src 10.77.0.1 dst 10.77.0.9 proto esp spi 0x%x mode transport "
                        "auth-trunc 'hmac(sha1)' 0x%040d 96 enc 'ecb(cipher_null)' ''",
                        FOREIGN_SPI, 0),
                     0);
    assert_int_equal(sh("ip xfrm state add src 10.77.0.1 dst 10.77.0.9 proto esp spi 0x%x reqid %u "
                        "mode transport auth-trunc 'hmac(sha1)' 0x%040d 96 enc 'ecb(cipher_null)' ''",
                        FOREIGN_SPI + 1, TAG + 1, 0),
                     0);
    assert_int_equal(sh("ip xfrm policy add src 10.77.0.1 dst 10.77.0.9 proto udp dport 9 dir out "
                        "tmpl src 10.77.0.1 dst 10.77.0.9 proto esp reqid %u mode transport",
                        TAG + 1),
                     0);
    /* Left of ours: states SA1 and SA3; policies of SA1, SA3 and SA4 (the expired SA's policy
     * stays: fail closed). */
    unsigned deleted = 0;
    if (pcscf_xfrm_flush_ours(X, &deleted, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(deleted, 5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pcscf_xfrm_counters(X, &p.sa[i], &n, NULL, err, sizeof err), -1);
    assert_int_equal(sh("ip xfrm state get src 10.77.0.1 dst 10.77.0.9 proto esp spi 0x%x >/dev/null", FOREIGN_SPI), 0);
    assert_int_equal(sh("ip xfrm state get src 10.77.0.1 dst 10.77.0.9 proto esp spi 0x%x >/dev/null", FOREIGN_SPI + 1), 0);
    assert_int_equal(sh("ip xfrm policy get src 10.77.0.1 dst 10.77.0.9 proto udp dport 9 dir out >/dev/null"), 0);
    assert_int_equal(pcscf_xfrm_flush_ours(X, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 0);
    ue_flush();
    assert_int_equal(sh("ip xfrm policy flush && ip xfrm state flush"), 0); /* the VM's own namespace */
}

/* Each case prints its time: VM time is scarce (1 CPU under TCG), keep the cases lean. */
static double started;

static int clock_start(void **state)
{
    started = now_s();
    return 0;
}

static int clock_stop(void **state)
{
    fprintf(stderr, "(%.1f s)\n", now_s() - started);
    return 0;
}

#define timed_test(t) cmocka_unit_test_setup_teardown(t, clock_start, clock_stop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        timed_test(test_bad_input_refused),
        timed_test(test_needs_cap_net_admin),
        timed_test(test_pair_every_algorithm),
        timed_test(test_clear_udp_dropped),
        timed_test(test_lifetime_del_flush),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
