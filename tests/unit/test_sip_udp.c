/*
 * Unit tests of common/ims_sip_udp.c: the /proc/net/udp{,6} row parser (proc(5)) on fixed rows
 * and on this kernel's own rows (checked against getsockopt(SO_MEMINFO)), and sip.udp_rcvbuf /
 * sip.udp_sndbuf applied to the agent's UDP socket, also when net.core.rmem_max caps them
 * (a child process without CAP_NET_ADMIN).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/capability.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ims_http.h"
#include "ims_sip_priv.h"
#include "metrics_test_util.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

static void test_parse_rows(void **state)
{
    (void)state;
    ims_udp_proc_line pl;
    /* Header line of both files. */
    assert_int_equal(ims_udp_parse_proc_line("   sl  local_address rem_address   st tx_queue rx_queue tr "
                                             "tm->when retrnsmt   uid  timeout inode ref pointer drops\n", &pl), -1);
    /* IPv4, as Linux 6.x prints it (udp4_format_sock). */
    const char *v4 = "12771: 0100007F:B0FE 00000000:0000 07 00000000:0001F800 00:00000000 00000000     0"
                     "        0 2035263 2 00000000e5507eaa 144     \n";
    assert_int_equal(ims_udp_parse_proc_line(v4, &pl), 0);
    assert_int_equal(pl.local_port, 0xB0FE);
    assert_false(pl.v6);
    assert_int_equal(pl.inode, 2035263);
    assert_int_equal(pl.rx_queue, 0x1F800);
    assert_int_equal(pl.tx_queue, 0);
    assert_int_equal(pl.drops, 144);
    /* IPv6 (__ip6_dgram_sock_seq_show): 32 hex digits of address. */
    const char *v6 = "  417: 00000000000000000000000001000000:13C4 00000000000000000000000000000000:0000 07 "
                     "00000A00:00000000 00:00000000 00000000  1000        0 99 2 ffff8881046e3000 18446744073709551615\n";
    assert_int_equal(ims_udp_parse_proc_line(v6, &pl), 0);
    assert_int_equal(pl.local_port, 5060);
    assert_true(pl.v6);
    assert_int_equal(pl.inode, 99);
    assert_int_equal(pl.tx_queue, 0xA00);
    assert_true(pl.drops == UINT64_MAX);
    /* Malformed rows. */
    static const char *const bad[] = {
        "",
        "12771: 0100007F:B0FE 00000000:0000 07 00000000:0001F800 00:00000000 00000000 0 0 2035263 2 0\n", /* no drops */
        "12771: 0100007F:B0FE 00000000:0000 07 00000000:0001F800 00:00000000 00000000 0 0 2035263 2 0 144 x\n",
        "12771: 0100007:B0FE 00000000:0000 07 00000000:0001F800 00:00000000 00000000 0 0 2035263 2 0 144\n",
        "12771: 0100007F:1B0FE 00000000:0000 07 00000000:0001F800 00:00000000 00000000 0 0 2035263 2 0 144\n",
        "12771: 0100007F: 00000000:0000 07 00000000:0001F800 00:00000000 00000000 0 0 2035263 2 0 144\n",
        "12771: 0100007FB0FE 00000000:0000 07 00000000:0001F800 00:00000000 00000000 0 0 2035263 2 0 144\n",
        "12771: 0100007G:B0FE 00000000:0000 07 00000000:0001F800 00:00000000 00000000 0 0 2035263 2 0 144\n",
        "12771: 0100007F:B0FE 00000000:0000 07 00000000-0001F800 00:00000000 00000000 0 0 2035263 2 0 144\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ims_udp_parse_proc_line(bad[i], &pl) == 0)
            fail_msg("row %zu parsed: %s", i, bad[i]);
    }
    assert_int_equal(ims_udp_parse_proc_line(NULL, &pl), -1);
    assert_int_equal(ims_udp_parse_proc_line(v4, NULL), -1);
}

/* This kernel's row for a socket of ours agrees with SO_MEMINFO after an overflow. */
static void test_parse_live(void **state)
{
    (void)state;
    int r = socket(AF_INET, SOCK_DGRAM, 0), w = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(r >= 0 && w >= 0);
    int small = 4096;       /* the kernel's minimum applies: a few datagrams fit */
    assert_int_equal(setsockopt(r, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(r, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(r, (struct sockaddr *)&sa, &len), 0);
    char buf[600];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 100; i++)
        sendto(w, buf, sizeof(buf), 0, (struct sockaddr *)&sa, sizeof(sa));

    uint32_t mi[SK_MEMINFO_VARS] = { 0 };
    socklen_t ml = sizeof(mi);
    assert_int_equal(getsockopt(r, SOL_SOCKET, SO_MEMINFO, mi, &ml), 0);
    assert_true(mi[SK_MEMINFO_DROPS] > 0);
    struct stat st;
    assert_int_equal(fstat(r, &st), 0);

    FILE *fp = fopen("/proc/net/udp", "r");
    assert_non_null(fp);
    char line[512];
    bool found = false;
    while (fgets(line, sizeof(line), fp)) {
        ims_udp_proc_line pl;
        if (ims_udp_parse_proc_line(line, &pl) < 0 || pl.inode != (unsigned long)st.st_ino)
            continue;
        found = true;
        assert_int_equal(pl.local_port, ntohs(sa.sin_port));
        assert_int_equal(pl.rx_queue, mi[SK_MEMINFO_RMEM_ALLOC]);
        assert_int_equal(pl.drops, mi[SK_MEMINFO_DROPS]);
    }
    fclose(fp);
    assert_true(found);
    close(r);
    close(w);
}

static int request_none(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    (void)arg, (void)irq, (void)sip;
    return 500;
}

/* An ims_sip on a free port with these buffers: 0 / -1 (port taken). */
static ims_sip *start(long rcvbuf, long sndbuf, int *port)
{
    for (int tries = 0; tries < 20; tries++) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        getsockname(fd, (struct sockaddr *)&sa, &len);
        close(fd);
        ims_sip_cfg cfg = { .listen = "127.0.0.1", .port = ntohs(sa.sin_port), .udp_rcvbuf = rcvbuf,
                            .udp_sndbuf = sndbuf, .udp_shed_percent = 50 };
        char err[256];
        ims_sip *s = ims_sip_create(&cfg, request_none, NULL, err, sizeof(err));
        if (s) {
            *port = ntohs(sa.sin_port);
            return s;
        }
    }
    return NULL;
}

/* SO_SNDBUF of this process's UDP socket on port, -1 when there is none. */
static int sndbuf_of(int port)
{
    DIR *d = opendir("/proc/self/fd");
    int got = -1;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        int fd = atoi(e->d_name), type = 0, v = 0;
        struct sockaddr_in sa;
        socklen_t len = sizeof(type), sl = sizeof(sa);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_DGRAM ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 || sa.sin_family != AF_INET ||
            ntohs(sa.sin_port) != port)
            continue;
        len = sizeof(v);
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) == 0)
            got = v;
    }
    if (d)
        closedir(d);
    return got;
}

static void test_buffers(void **state)
{
    (void)state;
    int port = 0;
    ims_sip *s = start(65536, 98304, &port);
    assert_non_null(s);
    char series[128];
    snprintf(series, sizeof(series), "sip_udp_rcvbuf_bytes{socket=\"127.0.0.1:%d\"}", port);
    assert_int_equal(metric_value(series), 2 * 65536);     /* the kernel doubles it */
    assert_int_equal(sndbuf_of(port), 2 * 98304);
    snprintf(series, sizeof(series), "sip_udp_socket_drops_total{socket=\"127.0.0.1:%d\"}", port);
    assert_int_equal(metric_value(series), 0);
    snprintf(series, sizeof(series), "sip_udp_rx_queue_bytes{socket=\"127.0.0.1:%d\"}", port);
    assert_int_equal(metric_value(series), 0);
    ims_sip_destroy(s);

    /* 0: the kernel default stays (net.core.rmem_default, not doubled). */
    s = start(0, 0, &port);
    assert_non_null(s);
    long long def = 0;
    FILE *fp = fopen("/proc/sys/net/core/rmem_default", "r");
    if (fp) {
        assert_int_equal(fscanf(fp, "%lld", &def), 1);
        fclose(fp);
        snprintf(series, sizeof(series), "sip_udp_rcvbuf_bytes{socket=\"127.0.0.1:%d\"}", port);
        assert_int_equal(metric_value(series), def);
    }
    ims_sip_destroy(s);
}

/* Without CAP_NET_ADMIN net.core.rmem_max caps the request (SO_RCVBUFFORCE refused): the socket
 * gets twice rmem_max and the metric shows that. In a child, which drops the capability. */
static void test_capped(void **state)
{
    (void)state;
    long long rmem_max = 0;
    FILE *fp = fopen("/proc/sys/net/core/rmem_max", "r");
    if (!fp)
        skip();
    assert_int_equal(fscanf(fp, "%lld", &rmem_max), 1);
    fclose(fp);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2];
        memset(d, 0, sizeof(d));
        if (syscall(SYS_capget, &h, d) == 0) {
            d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
            if (syscall(SYS_capset, &h, d) != 0)
                _exit(3);
        }
        int port = 0;
        ims_sip *s = start((long)rmem_max + 65536, 0, &port);
        if (!s)
            _exit(4);
        char series[128];
        snprintf(series, sizeof(series), "sip_udp_rcvbuf_bytes{socket=\"127.0.0.1:%d\"}", port);
        long long got = metric_value(series);
        ims_sip_destroy(s);
        _exit(got == 2 * rmem_max ? 0 : 5);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rows),
        cmocka_unit_test(test_parse_live),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
