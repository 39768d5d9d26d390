/*
 * ims_diameter: freeDiameter bootstrap from our YAML. See ims_diameter.h.
 *
 * References: RFC 6733 (base protocol: CER/CEA, Tc timer §2.1), TS 29.229 §5 (Cx runs over
 * Diameter, application id 16777216, vendor 10415), freeDiameter 1.2.1 configuration syntax.
 */
#include "ims_diameter.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "ims_cx.h"
#include "ims_log.h"

#ifndef IMS_FD_EXT_DIR
#define IMS_FD_EXT_DIR "/usr/lib/freeDiameter"
#endif

#define SUBSYS "diameter"

static const ims_diameter_cfg *g_cfg;
static char g_conf_path[512];
static bool g_initialised, g_started;

/* ---------- signals ---------- */

static void termination_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGPIPE);
    sigaddset(set, SIGUSR1);
}

void ims_signals_block(void)
{
    sigset_t set;
    termination_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int ims_signals_wait(void)
{
    sigset_t set;
    termination_set(&set);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGPIPE)            /* a peer closed a socket: the write path handles it */
            continue;
        return sig;
    }
}

/* ---------- freeDiameter log -> ims_log ---------- */

static void fd_logger(int level, const char *format, va_list args)
{
    ims_log_level ours;
    /* freeDiameter announces an orderly shutdown at FATAL level: it is not an error here. */
    if (strncmp(format, "Initiating freeDiameter shutdown", 32) == 0)
        ours = IMS_LOG_INFO;
    else if (level >= FD_LOG_FATAL)
        ours = IMS_LOG_ERROR;
    else if (level >= FD_LOG_ERROR)
        ours = IMS_LOG_WARN;
    else
        ours = IMS_LOG_DEBUG;   /* NOTICE dumps the whole configuration: keep it for debug */
    ims_vlog(ours, "freediameter", format, args);
}

/* ---------- per-message hooks ---------- */

/* freeDiameter 1.2.1 runs a default hook for every message event nobody hooked (libfdcore
 * hooks.c): it formats a dump of the message (a full dump for HOOK_MESSAGE_LOCAL) under one
 * process-wide mutex, then hands the text to the logger, which drops it below debug level. At
 * tens of thousands of messages per second that dump and that lock were a large part of the
 * Cx cost (perf). Hooking the per-message events ourselves stops the default; we log the
 * message only when debug logging is on. Errors (parsing, routing, dropped messages) keep
 * freeDiameter's default, which logs them. */
static void quiet_message_hook(enum fd_hook_type type, struct msg *msg, struct peer_hdr *peer,
                               void *other, struct fd_hook_permsgdata *pmd, void *regdata)
{
    (void)other; (void)pmd; (void)regdata;
    if (!msg || ims_log_get_level() < IMS_LOG_DEBUG)
        return;
    char *buf = NULL;
    size_t len = 0;
    if (fd_msg_dump_summary(&buf, &len, NULL, msg, NULL, 0, 1))
        IMS_DEBUG(SUBSYS, "message event %d, peer %s: %s", (int)type,
                  peer ? peer->info.pi_diamid : "-", buf);
    free(buf);
}

/* ---------- received bytes a freeDiameter 1.2.1 code path cannot survive ---------- */

/* RFC 6733 §8.8: Session-Id has the V bit clear. freeDiameter 1.2.1 finds the Session-Id of a
 * message by code 263 and vendor 0 and then asserts that it holds a value (fd_msg_sess_get): a
 * Session-Id sent with the V bit set and a vendor field of 0 has none, so the first answer built
 * for such a request (ours, or the core's own error answer) aborted the whole process — any
 * connected peer could stop the HSS with one message (found by tests/fuzz/fuzz_cx). We rename
 * such an AVP to code 0 (reserved, unknown) before freeDiameter parses the bytes: the message
 * then lacks a Session-Id and is refused with an error answer like any other malformed one. */
int ims_diameter_sanitize(uint8_t *buf, size_t len)
{
    if (!buf || len < 20)
        return 0;
    size_t msglen = ((size_t)buf[1] << 16) | ((size_t)buf[2] << 8) | buf[3];
    if (msglen < len)
        len = msglen;
    int fixed = 0;
    for (size_t pos = 20; pos + 8 <= len;) {
        uint32_t code = ((uint32_t)buf[pos] << 24) | ((uint32_t)buf[pos + 1] << 16) |
                        ((uint32_t)buf[pos + 2] << 8) | buf[pos + 3];
        uint8_t flags = buf[pos + 4];
        size_t alen = ((size_t)buf[pos + 5] << 16) | ((size_t)buf[pos + 6] << 8) | buf[pos + 7];
        if (alen < 8 || alen > len - pos)
            break;   /* freeDiameter refuses the message itself */
        if (code == 263 && (flags & 0x80)) {
            memset(buf + pos, 0, 4);
            fixed++;
        }
        pos += (alen + 3) & ~(size_t)3;
    }
    return fixed;
}

static void sanitize_hook(enum fd_hook_type type, struct msg *msg, struct peer_hdr *peer,
                          void *other, struct fd_hook_permsgdata *pmd, void *regdata)
{
    (void)type; (void)msg; (void)pmd; (void)regdata;
    struct fd_cnx_rcvdata *rcv = other;
    if (!rcv || ims_diameter_sanitize(rcv->buffer, rcv->length) == 0)
        return;
    static ims_log_limit limit;   /* a peer doing this may do it a lot */
    unsigned long held;
    if (ims_log_allow(&limit, &held))
        IMS_WARN(SUBSYS, "peer %s sent a Session-Id with the V bit set (RFC 6733 §8.8): refused as "
                 "a message without Session-Id (%lu more since the last warning)",
                 peer ? peer->info.pi_diamid : "(not identified yet)", held);
}

static int register_sanitize_hook(void)
{
    static struct fd_hook_hdl *hdl;
    return fd_hook_register(HOOK_MASK(HOOK_DATA_RECEIVED), sanitize_hook, NULL, NULL, &hdl);
}

static int register_quiet_hooks(void)
{
    static struct fd_hook_hdl *hdl;
    return fd_hook_register(HOOK_MASK(HOOK_DATA_RECEIVED, HOOK_MESSAGE_RECEIVED, HOOK_MESSAGE_LOCAL,
                                      HOOK_MESSAGE_SENDING, HOOK_MESSAGE_SENT,
                                      HOOK_MESSAGE_ROUTING_FORWARD, HOOK_MESSAGE_ROUTING_LOCAL),
                            quiet_message_hook, NULL, NULL, &hdl);
}

/* ---------- configuration file ---------- */

/* Diameter identities and addresses go inside "..." in freeDiameter's syntax: refuse quotes. */
static int check_token(const char *what, const char *v, char *err, size_t errlen)
{
    if (!v || !*v) {
        snprintf(err, errlen, "diameter.%s: required", what);
        return -1;
    }
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '\n' || *p == ';' || *p == ' ') {
            snprintf(err, errlen, "diameter.%s: '%s' contains a character not allowed in a Diameter identity or address", what, v);
            return -1;
        }
    }
    return 0;
}

/* freeDiameter resolves a ConnectTo name once, silently drops names that resolve to loopback,
 * and fails its whole configuration when a lookup fails. So names are resolved here, with
 * retries (a Kubernetes Service name may not resolve yet when the pod starts), and freeDiameter
 * gets an IPv4 literal. */
static int resolve_peer(const char *what, const char *address, char *ip, size_t iplen, char *err, size_t errlen)
{
    struct in_addr a;
    if (inet_pton(AF_INET, address, &a) == 1) {
        snprintf(ip, iplen, "%s", address);
        return 0;
    }
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = 0;
    for (int attempt = 0; attempt < 30; attempt++) {
        rc = getaddrinfo(address, NULL, &hints, &res);
        if (rc == 0)
            break;
        if (attempt == 0)
            IMS_WARN(SUBSYS, "diameter.%s: cannot resolve %s yet (%s); retrying for 30 s", what, address,
                     gai_strerror(rc));
        sleep(1);
    }
    if (rc != 0) {
        snprintf(err, errlen, "diameter.%s: cannot resolve '%s': %s", what, address, gai_strerror(rc));
        return -1;
    }
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, (socklen_t)iplen);
    freeaddrinfo(res);
    IMS_INFO(SUBSYS, "diameter.%s: %s is %s", what, address, ip);
    return 0;
}

static int write_fd_conf(const ims_diameter_cfg *cfg, const char *nf, char *err, size_t errlen)
{
    if (check_token("identity", cfg->identity, err, errlen) ||
        check_token("realm", cfg->realm, err, errlen) ||
        check_token("listen", cfg->listen, err, errlen))
        return -1;
    bool tls = cfg->tls_cert && cfg->tls_key;
    if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL)) {
        snprintf(err, errlen, "diameter.tls_cert and diameter.tls_key must be given together");
        return -1;
    }

    snprintf(g_conf_path, sizeof(g_conf_path), "%s/ims-%s-%d.fd.conf",
             cfg->conf_dir ? cfg->conf_dir : "/tmp", nf, (int)getpid());
    FILE *f = fopen(g_conf_path, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write freeDiameter configuration %s: %s", g_conf_path, strerror(errno));
        return -1;
    }
    fprintf(f, "# Generated by %s from its YAML configuration; do not edit.\n", nf);
    fprintf(f, "Identity = \"%s\";\nRealm = \"%s\";\n", cfg->identity, cfg->realm);
    fprintf(f, "Port = %ld;\n", cfg->port);
    if (tls) {
        fprintf(f, "SecPort = %ld;\n", cfg->port + 1);
        fprintf(f, "TLS_Cred = \"%s\", \"%s\";\n", cfg->tls_cert, cfg->tls_key);
        if (cfg->tls_ca)
            fprintf(f, "TLS_CA = \"%s\";\n", cfg->tls_ca);
    } else {
        fprintf(f, "SecPort = 0;\n");
    }
    fprintf(f, "No_SCTP;\nNoRelay;\nNo_IPv6;\n");
    fprintf(f, "TcTimer = %ld;\n", cfg->tc_timer);
    fprintf(f, "ListenOn = \"%s\";\n", cfg->listen);
    /* Dispatch threads run the handlers of received messages, answers included. A CSCF's
     * handlers only hand the message to the SIP loop (ims_cx_client.c), so one thread is enough,
     * and with one the same warm thread takes every answer instead of four taking turns to be
     * woken (issue 16: about 0.03-0.06 ms less CPU per AKA registration in each of the I-CSCF
     * and S-CSCF). The HSS's handlers do the work (store, AKA, User-Data) and keep four. */
    bool cscf = strcmp(nf, "pcscf") == 0 || strcmp(nf, "icscf") == 0 || strcmp(nf, "scscf") == 0;
    fprintf(f, "AppServThreads = %d;\n", cscf ? 1 : 4);
    fprintf(f, "LoadExtension = \"%s/dict_nasreq.fdx\";\n", IMS_FD_EXT_DIR);
    fprintf(f, "LoadExtension = \"%s/dict_dcca.fdx\";\n", IMS_FD_EXT_DIR);
    fprintf(f, "LoadExtension = \"%s/dict_dcca_3gpp.fdx\";\n", IMS_FD_EXT_DIR);

    const ims_diameter_peer_cfg *peers = cfg->peers.items;
    for (size_t i = 0; i < cfg->peers.count; i++) {
        char what[64];
        snprintf(what, sizeof(what), "peers[%zu].identity", i);
        if (check_token(what, peers[i].identity, err, errlen))
            goto fail;
        snprintf(what, sizeof(what), "peers[%zu].address", i);
        char ip[INET_ADDRSTRLEN];
        if (check_token(what, peers[i].address, err, errlen) ||
            resolve_peer(what, peers[i].address, ip, sizeof(ip), err, errlen))
            goto fail;
        fprintf(f, "ConnectPeer = \"%s\" { ConnectTo = \"%s\"; Port = %ld; %s };\n",
                peers[i].identity, ip, peers[i].port, tls ? "" : "No_TLS;");
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write freeDiameter configuration %s: %s", g_conf_path, strerror(errno));
        return -1;
    }
    return 0;
fail:
    fclose(f);
    unlink(g_conf_path);
    return -1;
}

/* Accept any peer that connects (labs, Kubernetes pods with changing names). Without TLS
 * configured we do not ask the peer for it either. */
static int accept_any_peer(struct peer_info *info, int *auth, int (**cb2)(struct peer_info *))
{
    (void)cb2;
    *auth = 1;
    if (!(g_cfg->tls_cert && g_cfg->tls_key))
        info->config.pic_flags.sec = PI_SEC_NONE;
    IMS_INFO(SUBSYS, "accepting Diameter peer %.*s", (int)info->pi_diamidlen, info->pi_diamid);
    return 0;
}

int ims_diameter_init(const ims_diameter_cfg *cfg, const char *nf, char *err, size_t errlen)
{
    g_cfg = cfg;
    if (write_fd_conf(cfg, nf, err, errlen))
        return -1;

    fd_g_debug_lvl = ims_log_get_level() >= IMS_LOG_DEBUG ? FD_LOG_NOTICE : FD_LOG_ERROR;
    fd_log_handler_register(fd_logger);

    int rc = fd_core_initialize();
    if (rc) {
        snprintf(err, errlen, "freeDiameter core initialisation failed: %s", strerror(rc));
        return -1;
    }
    g_initialised = true;
    rc = fd_core_parseconf(g_conf_path);
    if (rc) {
        snprintf(err, errlen, "freeDiameter rejected its configuration %s (generated from diameter: section): %s",
                 g_conf_path, strerror(rc));
        return -1;
    }
    if (ims_cx_dict_init()) {
        snprintf(err, errlen, "cannot build the Cx dictionary (is freediameter-extensions installed in %s?)",
                 IMS_FD_EXT_DIR);
        return -1;
    }
    rc = register_sanitize_hook();
    if (rc == 0)
        rc = register_quiet_hooks();
    if (rc) {
        snprintf(err, errlen, "cannot register the freeDiameter message hooks: %s", strerror(rc));
        return -1;
    }
    rc = fd_disp_app_support(ims_cx_dict.app, ims_cx_dict.vendor, 1, 0);
    if (rc) {
        snprintf(err, errlen, "cannot declare Cx application support: %s", strerror(rc));
        return -1;
    }
    if (cfg->accept_unknown_peers) {
        rc = fd_peer_validate_register(accept_any_peer);
        if (rc) {
            snprintf(err, errlen, "cannot register the peer validator: %s", strerror(rc));
            return -1;
        }
    }
    return 0;
}

int ims_diameter_start(char *err, size_t errlen)
{
    int rc = fd_core_start();
    if (rc == 0)
        rc = fd_core_waitstartcomplete();
    if (rc) {
        snprintf(err, errlen, "freeDiameter failed to start (port %ld in use?): %s", g_cfg->port, strerror(rc));
        return -1;
    }
    g_started = true;
    IMS_INFO(SUBSYS, "Diameter node %s (realm %s) listening on %s:%ld, %zu configured peer(s)",
             g_cfg->identity, g_cfg->realm, g_cfg->listen, g_cfg->port, g_cfg->peers.count);
    return 0;
}

/* freeDiameter 1.2.1 tears down its queues with fd_fifo_del(), which wakes the threads waiting
 * on a queue one at a time and aborts the process (assertion "++loops < 20" in fifo.c) when they
 * have not all left within ~20 ms. On a loaded machine a woken thread can wait longer than that
 * for a CPU, and a clean SIGTERM became SIGABRT. Raising the priority of our threads for the
 * shutdown lets them run at once; without the privilege (EPERM/EACCES) it stays as it was. */
static void boost_threads_for_shutdown(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    int boosted = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (setpriority(PRIO_PROCESS, (id_t)atoi(e->d_name), -15) == 0)
            boosted++;
    }
    closedir(d);
    IMS_DEBUG(SUBSYS, "shutdown: %d thread(s) at raised priority", boosted);
}

/* The freeDiameter teardown is the last step of an NF's stop, and two faults of the library can
 * hit it: the fd_fifo_del assertion above still fires now and then on a loaded machine, and the
 * teardown waits up to 16 s for peers that do not answer our DPR (all NFs stopped at once, as
 * in "docker-compose down" or a deleted Kubernetes namespace). Neither loses anything of ours:
 * SIP is stopped, the HSS's SQN marks are durable (a skipped write-back only skips SQNs). So
 * while the teardown runs, an abort or IMS_DIAMETER_STOP_MAX_S passing ends the process with
 * exit code 0 and a line that says what happened. Signal handlers: write(2) and _exit only. */
#define IMS_DIAMETER_STOP_MAX_S 6

static void teardown_fault(int sig)
{
    static const char aborted[] = "WARN  diameter   freeDiameter aborted inside its own shutdown "
                                  "(libfdproto fifo.c assertion, a known race of 1.2.1): exiting now\n";
    static const char too_long[] = "WARN  diameter   freeDiameter shutdown still waiting for peers "
                                   "after 6 s (no DPA): exiting without it\n";
    ssize_t n = sig == SIGABRT ? write(STDERR_FILENO, aborted, sizeof(aborted) - 1)
                               : write(STDERR_FILENO, too_long, sizeof(too_long) - 1);
    (void)n;
    _exit(0);
}

void ims_diameter_stop(void)
{
    if (!g_initialised)
        return;
    boost_threads_for_shutdown();
    struct sigaction fault = { .sa_handler = teardown_fault };
    sigaction(SIGABRT, &fault, NULL);
    sigaction(SIGALRM, &fault, NULL);
    alarm(IMS_DIAMETER_STOP_MAX_S);
    fd_core_shutdown();
    fd_core_wait_shutdown_complete();
    alarm(0);
    signal(SIGABRT, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    g_initialised = g_started = false;
    if (g_conf_path[0])
        unlink(g_conf_path);
}

const char *ims_diameter_identity(void) { return g_cfg ? g_cfg->identity : NULL; }
const char *ims_diameter_realm(void) { return g_cfg ? g_cfg->realm : NULL; }
long ims_diameter_request_timeout_ms(void) { return g_cfg ? g_cfg->request_timeout_ms : 3000; }

struct timespec ims_diameter_deadline(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

bool ims_diameter_peer_is_open(const char *identity)
{
    if (!g_started || !identity)
        return false;
    struct peer_hdr *peer = NULL;
    if (fd_peer_getbyid((DiamId_t)identity, strlen(identity), 1, &peer) || !peer)
        return false;
    return fd_peer_get_state(peer) == STATE_OPEN;
}

int ims_diameter_open_peers(char *why, size_t whylen)
{
    int open = 0;
    if (why && whylen)
        why[0] = '\0';
    if (!g_started) {
        if (why)
            snprintf(why, whylen, "Diameter not started");
        return 0;
    }
    CHECK_POSIX_DO(pthread_rwlock_rdlock(&fd_g_peers_rw), return 0);
    for (struct fd_list *li = fd_g_peers.next; li != &fd_g_peers; li = li->next) {
        struct peer_hdr *p = (struct peer_hdr *)li->o;
        if (fd_peer_get_state(p) == STATE_OPEN)
            open++;
        else if (why && whylen) {
            size_t used = strlen(why);
            snprintf(why + used, whylen - used, "%speer %s not open", used ? "; " : "", p->info.pi_diamid);
        }
    }
    CHECK_POSIX_DO(pthread_rwlock_unlock(&fd_g_peers_rw), );
    return open;
}
