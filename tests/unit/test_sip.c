/*
 * Unit tests for ims_sip (common/ims_sip*.c): three ims_sip instances in one process, each
 * created, run and destroyed on its own thread (docs/design.md: one loop per thread), on 127.0.0.1:
 *
 *   C (UAC: ims_sip_send_request, or nta directly for INVITE/CANCEL)
 *     -> A (proxy: ims_sip_forward to sip:b.test:PORT_B through its hosts table
 *           "b.test=127.0.0.1", or ims_sip_proxy_onward when the request says X-Mode: onward)
 *       -> B (UAS: answers 180 then 200, reports what it saw)
 *
 * The main thread drives the tests with ims_sip_defer (everything SIP runs on the loops) and
 * waits for results under a mutex. RFC 3261 §16 behaviour shown: Max-Forwards, Via removal,
 * response editing and replacement, CANCEL forwarding, stray 2xx relay, ACK, loose routing,
 * transport errors, input checks (invalid Max-Forwards, truncated TCP body). Header and identity
 * helpers: test_sip_hdr.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#include "ims_sip.h"
#include "sip_test_node.h"

/* ---------- nodes: one ims_sip per thread ---------- */

static node g_a = { .name = "A" }, g_b = { .name = "B" }, g_c = { .name = "C" };
static int g_closed_port;

/* What the nodes saw, read by the main thread (under g_lock). */
static struct {
    int done;                   /* final response at C */
    int status;
    int vias;                   /* Via headers in the final response at C */
    char x_a[64], x_mf[64];
    int has_secret;
    int b_requests;             /* requests B answered */
    unsigned long b_mf;         /* Max-Forwards B saw */
    int b_routes;               /* Route headers B saw */
    char b_ruri[128];
    int a_resp_1xx, a_resp_final;   /* A's on_response calls */
    int c_provisional;          /* INVITE test: 180 reached C */
    int c_2xx;                  /* INVITE test: 2xx responses that reached C */
    int b_acks;                 /* ACKs that reached B's default leg */
    nta_incoming_t *b_held;     /* INVITE test: B keeps the transaction open */
    int b_held_status;
    int deferred, deferred_on_loop;
    int timer_fired, timer_cancelled_fired;
} g;

static void signal_all(void)
{
    pthread_cond_broadcast(&g_cond);
}

static void reset_results(void)
{
    pthread_mutex_lock(&g_lock);
    memset(&g, 0, sizeof(g));
    pthread_mutex_unlock(&g_lock);
}

/* ---------- B: the UAS ---------- */

static int b_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    node *b = arg;
    char test[32] = "";
    (void)b;
    ims_sip_header(sip, "X-Test", test, sizeof(test));

    pthread_mutex_lock(&g_lock);
    g.b_mf = sip->sip_max_forwards ? sip->sip_max_forwards->mf_count : 9999;
    g.b_routes = 0;
    for (sip_route_t const *r = sip->sip_route; r; r = r->r_next)
        g.b_routes++;
    url_e(g.b_ruri, sizeof(g.b_ruri), sip->sip_request->rq_url);
    if (sip->sip_request->rq_method == sip_method_ack) {
        g.b_acks++;
        signal_all();
        pthread_mutex_unlock(&g_lock);
        return 500;             /* never answered: nta just drops it */
    }
    g.b_requests++;
    pthread_mutex_unlock(&g_lock);

    nta_incoming_treply(irq, SIP_180_RINGING, TAG_END());
    if (strcmp(test, "hold") == 0) {
        /* INVITE test: no final answer; the CANCEL will end it. */
        pthread_mutex_lock(&g_lock);
        g.b_held = irq;
        pthread_mutex_unlock(&g_lock);
        return 0;
    }
    char mf[48];
    snprintf(mf, sizeof(mf), "X-MF: %lu", sip->sip_max_forwards ? sip->sip_max_forwards->mf_count : 9999UL);
    nta_incoming_treply(irq, SIP_200_OK,
                        SIPTAG_HEADER_STR(mf),
                        SIPTAG_HEADER_STR("X-Secret: s3cr3t"),
                        SIPTAG_HEADER_STR(strcmp(test, "deny") == 0 ? "X-Deny: 1" : NULL),
                        TAG_END());
    if (strcmp(test, "twice") == 0)     /* a 2xx retransmission (or another fork's 2xx) */
        nta_incoming_treply(irq, SIP_200_OK, SIPTAG_HEADER_STR(mf), TAG_END());
    nta_incoming_destroy(irq);
    return 0;
}

/* ---------- A: the proxy ---------- */

static int a_response(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    char deny[8];
    (void)arg;
    (void)irq;
    int status = sip->sip_status->st_status;
    pthread_mutex_lock(&g_lock);
    if (status < 200)
        g.a_resp_1xx++;
    else
        g.a_resp_final++;
    pthread_mutex_unlock(&g_lock);

    if (status >= 200 && ims_sip_header(sip, "X-Deny", deny, sizeof(deny)))
        return 403;
    ims_sip_add_header(msg, sip, "X-A", "seen");
    ims_sip_remove_headers(msg, sip, "X-Secret");
    return 0;
}

static int a_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    node *a = arg;
    char mode[32] = "", hop[96];
    ims_sip_header(sip, "X-Mode", mode, sizeof(mode));

    msg_t *msg = ims_sip_request_copy(irq);
    if (!msg)
        return 500;
    if (strcmp(mode, "onward") == 0) {
        ims_sip_proxy_onward(a->s, irq, msg, a_response, a);
        return 0;
    }
    if (strcmp(mode, "dead") == 0)
        snprintf(hop, sizeof(hop), "sip:127.0.0.1:%d;transport=tcp", g_closed_port);
    else
        snprintf(hop, sizeof(hop), "sip:b.test:%ld", g_b.cfg.port);
    url_t *u = url_make(msg_home(msg), hop);
    ims_sip_forward(a->s, irq, msg, u, a_response, a);
    return 0;
}

/* ---------- C: the UAC ---------- */

static int c_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    (void)arg;
    (void)irq;
    (void)sip;
    return 501;
}

static void c_final(void *arg, int status, const sip_t *sip)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    g.status = status;
    g.vias = 0;
    for (sip_via_t const *v = sip ? sip->sip_via : NULL; v; v = v->v_next)
        g.vias++;
    if (sip) {
        char secret[32];
        ims_sip_header(sip, "X-A", g.x_a, sizeof(g.x_a));
        ims_sip_header(sip, "X-MF", g.x_mf, sizeof(g.x_mf));
        g.has_secret = ims_sip_header(sip, "X-Secret", secret, sizeof(secret)) != NULL;
    }
    g.done = 1;
    signal_all();
    pthread_mutex_unlock(&g_lock);
}

typedef struct {
    char method[16];
    char extra[3][128];         /* extra header lines ("" = none) */
    char max_forwards[8];       /* "" = none */
    bool via_route;             /* next hop NULL: route by the Route header */
} send_spec;

static int g_call;

/* Builds the request on C's loop (nta messages belong to the loop thread). */
static msg_t *c_build(const send_spec *sp)
{
    nta_agent_t *agent = ims_sip_agent(g_c.s);
    msg_t *m = nta_msg_create(agent, 0);
    sip_t *sip = sip_object(m);
    char rq[128], cseq[48], callid[64];
    snprintf(rq, sizeof(rq), "%s sip:bob@b.test SIP/2.0", sp->method);
    snprintf(cseq, sizeof(cseq), "1 %s", sp->method);
    snprintf(callid, sizeof(callid), "test-%d-%d@c.test", (int)getpid(), ++g_call);
    sip_add_tl(m, sip,
               SIPTAG_REQUEST_STR(rq),
               SIPTAG_FROM_STR("<sip:alice@c.test>;tag=c1"),
               SIPTAG_TO_STR("<sip:bob@b.test>"),
               SIPTAG_CALL_ID_STR(callid),
               SIPTAG_CSEQ_STR(cseq),
               SIPTAG_CONTACT_STR("<sip:alice@127.0.0.1>"),
               SIPTAG_MAX_FORWARDS_STR(sp->max_forwards[0] ? sp->max_forwards : NULL),
               SIPTAG_HEADER_STR(sp->extra[0][0] ? sp->extra[0] : NULL),
               SIPTAG_HEADER_STR(sp->extra[1][0] ? sp->extra[1] : NULL),
               SIPTAG_HEADER_STR(sp->extra[2][0] ? sp->extra[2] : NULL),
               TAG_END());
    return m;
}

static void c_send(void *arg)
{
    send_spec *sp = arg;
    msg_t *m = c_build(sp);
    url_t *hop = NULL;
    if (!sp->via_route) {
        char a[64];
        snprintf(a, sizeof(a), "sip:127.0.0.1:%ld", g_a.cfg.port);
        hop = url_make(msg_home(m), a);
    }
    if (ims_sip_send_request(g_c.s, m, hop, c_final, NULL) < 0) {
        pthread_mutex_lock(&g_lock);
        g.status = -1;
        g.done = 1;
        signal_all();
        pthread_mutex_unlock(&g_lock);
    }
}

/* Sends through A and waits for the final response at C. */
static void send_and_wait(send_spec *sp)
{
    reset_results();
    assert_int_equal(ims_sip_defer(g_c.s, c_send, sp), 0);
    assert_true(wait_flag(&g.done, 8000));
}

/* ---------- setup ---------- */

static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static int group_setup(void **state)
{
    (void)state;
    g_a.on_request = a_request;
    g_b.on_request = b_request;
    g_c.on_request = c_request;
    /* Distinct high ports per process; move on when one is taken. */
    int base = 21000 + (int)(getpid() % 2000) * 4;
    for (int tries = 0; tries < 20; tries++, base += 8000 / 20 * 4) {
        if (base > 64000)
            base = 21000 + tries * 4;
        if (node_start(&g_b, base, NULL) < 0)
            continue;
        if (node_start(&g_a, base + 1, "b.test=127.0.0.1") < 0) {
            node_stop(&g_b);
            continue;
        }
        if (node_start(&g_c, base + 2, NULL) < 0) {
            node_stop(&g_a);
            node_stop(&g_b);
            continue;
        }
        g_closed_port = free_tcp_port();
        return 0;
    }
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    node_stop(&g_c);
    node_stop(&g_a);
    node_stop(&g_b);
    return 0;
}

/* ---------- proxy tests ---------- */

static void test_forward_basic(void **state)
{
    (void)state;
    send_spec sp = { .method = "OPTIONS", .max_forwards = "70" };
    send_and_wait(&sp);
    pthread_mutex_lock(&g_lock);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.b_requests, 1);
    assert_int_equal(g.b_mf, 69);               /* decremented by A */
    assert_string_equal(g.x_mf, "69");
    assert_int_equal(g.vias, 1);                /* only C's own Via: A removed its own */
    assert_string_equal(g.x_a, "seen");         /* added by A's on_response */
    assert_false(g.has_secret);                 /* removed by A's on_response */
    assert_int_equal(g.a_resp_1xx, 1);          /* the 180 went through on_response */
    assert_int_equal(g.a_resp_final, 1);
    pthread_mutex_unlock(&g_lock);

    /* Without Max-Forwards, ims_sip_send_request puts 70 (and A decrements). MESSAGE and
     * REGISTER go the same way. */
    send_spec sp2 = { .method = "MESSAGE" };
    send_and_wait(&sp2);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.b_mf, 69);
    send_spec sp3 = { .method = "REGISTER", .max_forwards = "10" };
    send_and_wait(&sp3);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.b_mf, 9);
}

static void test_max_forwards_zero(void **state)
{
    (void)state;
    send_spec sp = { .method = "OPTIONS", .max_forwards = "0" };
    send_and_wait(&sp);
    assert_int_equal(g.status, 483);
    assert_int_equal(g.b_requests, 0);

    /* 1 is still forwarded, as 0 (RFC 3261 §16.3 step 3). */
    send_spec sp1 = { .method = "OPTIONS", .max_forwards = "1" };
    send_and_wait(&sp1);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.b_mf, 0);
}

static void test_response_replaced(void **state)
{
    (void)state;
    send_spec sp = { .method = "MESSAGE", .extra = { "X-Test: deny" } };
    send_and_wait(&sp);
    assert_int_equal(g.status, 403);
    assert_int_equal(g.b_requests, 1);
    assert_int_equal(g.vias, 1);
}

static void test_unreachable_next_hop(void **state)
{
    (void)state;
    time_t t0 = time(NULL);
    send_spec sp = { .method = "OPTIONS", .extra = { "X-Mode: dead" } };
    send_and_wait(&sp);
    assert_true(g.status == 503 || g.status == 408);
    assert_int_equal(g.b_requests, 0);
    assert_true(time(NULL) - t0 <= 5);
}

static void test_proxy_onward(void **state)
{
    (void)state;
    /* C routes by its Route set (next hop NULL): first A, then B (through A's hosts table). */
    send_spec sp = { .method = "OPTIONS", .via_route = true };
    snprintf(sp.extra[0], sizeof(sp.extra[0]), "Route: <sip:127.0.0.1:%ld;lr>, <sip:b.test:%ld;lr>",
             g_a.cfg.port, g_b.cfg.port);
    snprintf(sp.extra[1], sizeof(sp.extra[1]), "X-Mode: onward");
    send_and_wait(&sp);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.b_requests, 1);
    assert_int_equal(g.b_routes, 1);                    /* A popped its own Route */
    assert_string_equal(g.b_ruri, "sip:bob@b.test");    /* Request-URI untouched */
    assert_int_equal(g.b_mf, 69);
    assert_int_equal(g.vias, 1);

    /* A Route without ;lr (strict router) is refused. */
    send_spec sp2 = { .method = "OPTIONS" };
    snprintf(sp2.extra[0], sizeof(sp2.extra[0]), "Route: <sip:b.test:%ld>", g_b.cfg.port);
    snprintf(sp2.extra[1], sizeof(sp2.extra[1]), "X-Mode: onward");
    send_and_wait(&sp2);
    assert_int_equal(g.status, 400);
    assert_int_equal(g.b_requests, 0);
}

/* INVITE, 180, CANCEL from C: A forwards the CANCEL to B, C gets 487. nta is used directly on C
 * because ims_sip_send_request has no cancel. */
static nta_outgoing_t *g_invite;

static int c_invite_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
    (void)magic;
    int status = sip ? sip->sip_status->st_status : 500;
    pthread_mutex_lock(&g_lock);
    if (status < 200) {
        g.c_provisional = 1;
    } else {
        g.status = status;
        g.done = 1;
        if (status < 300)
            g.c_2xx++;
    }
    signal_all();
    pthread_mutex_unlock(&g_lock);
    /* A 2xx keeps the transaction: nta passes more 2xx (forks) to it until we destroy it. */
    if (status >= 300) {
        nta_outgoing_destroy(orq);
        g_invite = NULL;
    }
    return 0;
}

static void c_send_invite(void *arg)
{
    const char *test = arg;
    send_spec sp = { .method = "INVITE" };
    snprintf(sp.extra[0], sizeof(sp.extra[0]), "X-Test: %s", test);
    msg_t *m = c_build(&sp);
    char a[64];
    snprintf(a, sizeof(a), "sip:127.0.0.1:%ld", g_a.cfg.port);
    url_t *hop = url_make(msg_home(m), a);
    g_invite = nta_outgoing_mcreate(ims_sip_agent(g_c.s), c_invite_response, NULL, (url_string_t *)hop, m,
                                    TAG_END());
    if (!g_invite)
        msg_destroy(m);
}

static void c_cancel(void *arg)
{
    (void)arg;
    if (g_invite)
        nta_outgoing_cancel(g_invite);
}

static void b_check_held(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    g.b_held_status = g.b_held ? nta_incoming_status(g.b_held) : -1;
    if (g.b_held)
        nta_incoming_destroy(g.b_held);
    g.b_held = NULL;
    g.deferred = 1;
    signal_all();
    pthread_mutex_unlock(&g_lock);
}

static void test_invite_cancel(void **state)
{
    (void)state;
    reset_results();
    assert_int_equal(ims_sip_defer(g_c.s, c_send_invite, "hold"), 0);
    assert_true(wait_flag(&g.c_provisional, 5000));     /* B's 180 came back through A */
    assert_int_equal(ims_sip_defer(g_c.s, c_cancel, NULL), 0);
    assert_true(wait_flag(&g.done, 5000));
    assert_int_equal(g.status, 487);
    usleep(300 * 1000);                                  /* A's CANCEL reaches B */
    assert_int_equal(ims_sip_defer(g_b.s, b_check_held, NULL), 0);
    assert_true(wait_flag(&g.deferred, 5000));
    assert_int_equal(g.b_held_status, 487);              /* B's INVITE was cancelled */
}

static void c_forget_invite(void *arg)
{
    (void)arg;
    nta_outgoing_destroy(g_invite);
    g_invite = NULL;
    pthread_mutex_lock(&g_lock);
    g.deferred = 1;
    signal_all();
    pthread_mutex_unlock(&g_lock);
}

/* INVITE answered 200 twice by B: the first 2xx ends A's client transaction and goes through
 * on_response; the second is relayed statelessly (not ACKed and BYEd as an orphan). Then the
 * ACK for the 2xx (a new transaction) goes C -> A -> B by the Route set. */
static void test_invite_2xx_and_ack(void **state)
{
    (void)state;
    reset_results();
    assert_int_equal(ims_sip_defer(g_c.s, c_send_invite, "twice"), 0);
    assert_true(wait_flag(&g.done, 5000));
    assert_int_equal(g.status, 200);
    usleep(300 * 1000);
    pthread_mutex_lock(&g_lock);
    assert_int_equal(g.c_2xx, 2);
    assert_int_equal(g.a_resp_final, 1);
    assert_int_equal(g.b_acks, 0);
    pthread_mutex_unlock(&g_lock);
    assert_int_equal(ims_sip_defer(g_c.s, c_forget_invite, NULL), 0);
    assert_true(wait_flag(&g.deferred, 3000));

    send_spec sp = { .method = "ACK", .via_route = true };
    snprintf(sp.extra[0], sizeof(sp.extra[0]), "Route: <sip:127.0.0.1:%ld;lr>, <sip:b.test:%ld;lr>",
             g_a.cfg.port, g_b.cfg.port);
    snprintf(sp.extra[1], sizeof(sp.extra[1]), "X-Mode: onward");
    reset_results();
    assert_int_equal(ims_sip_defer(g_c.s, c_send, &sp), 0);
    assert_true(wait_flag(&g.b_acks, 5000));
    pthread_mutex_lock(&g_lock);
    assert_int_equal(g.b_mf, 69);
    assert_int_equal(g.b_routes, 1);
    assert_int_equal(g.done, 0);            /* no callback for an ACK */
    pthread_mutex_unlock(&g_lock);
}

/* ---------- loop services ---------- */

static void on_deferred(void *arg)
{
    pthread_mutex_lock(&g_lock);
    g.deferred++;
    g.deferred_on_loop = pthread_equal(pthread_self(), *(pthread_t *)arg);
    signal_all();
    pthread_mutex_unlock(&g_lock);
}

static void on_timer(void *arg)
{
    pthread_mutex_lock(&g_lock);
    (*(int *)arg)++;
    signal_all();
    pthread_mutex_unlock(&g_lock);
}

static void start_timers(void *arg)
{
    (void)arg;
    ims_sip_timer_start(g_a.s, 50, on_timer, &g.timer_fired);
    /* No cmocka assert here: this runs on A's thread. A NULL timer would count as "fired". */
    ims_sip_timer *t = ims_sip_timer_start(g_a.s, 50, on_timer, &g.timer_cancelled_fired);
    if (!t)
        g.timer_cancelled_fired = 100;
    ims_sip_timer_cancel(t);
    ims_sip_timer_cancel(NULL);
}

static void test_defer_and_timers(void **state)
{
    (void)state;
    reset_results();
    assert_int_equal(ims_sip_defer(g_a.s, on_deferred, &g_a.thread), 0);
    assert_true(wait_flag(&g.deferred, 3000));
    assert_int_equal(g.deferred_on_loop, 1);
    assert_int_equal(ims_sip_defer(NULL, on_deferred, NULL), -1);
    assert_int_equal(ims_sip_defer(g_a.s, NULL, NULL), -1);

    assert_int_equal(ims_sip_defer(g_a.s, start_timers, NULL), 0);
    assert_true(wait_flag(&g.timer_fired, 3000));
    usleep(200 * 1000);
    pthread_mutex_lock(&g_lock);
    assert_int_equal(g.timer_fired, 1);
    assert_int_equal(g.timer_cancelled_fired, 0);
    pthread_mutex_unlock(&g_lock);
}

static void test_self_and_next_hop(void **state)
{
    (void)state;
    su_home_t home[1] = { SU_HOME_INIT(home) };
    char self[64];
    snprintf(self, sizeof(self), "sip:127.0.0.1:%ld", g_a.cfg.port);
    assert_string_equal(ims_sip_self_uri(g_a.s), self);
    assert_true(ims_sip_is_self(g_a.s, url_make(home, self)));
    snprintf(self, sizeof(self), "sip:127.0.0.1:%ld;lr", g_a.cfg.port);
    assert_true(ims_sip_is_self(g_a.s, url_make(home, self)));
    assert_false(ims_sip_is_self(g_a.s, url_make(home, "sip:127.0.0.1")));   /* 5060 */
    assert_false(ims_sip_is_self(g_a.s, url_make(home, "sip:other.lab:5060")));

    url_t *u = ims_sip_next_hop(g_a.s, home, url_make(home, "sip:B.test:5099;transport=tcp"));
    assert_non_null(u);
    assert_string_equal(u->url_host, "127.0.0.1");
    assert_string_equal(u->url_port, "5099");
    assert_string_equal(u->url_params, "transport=tcp");
    u = ims_sip_next_hop(g_a.s, home, url_make(home, "sip:unknown.test"));
    assert_string_equal(u->url_host, "unknown.test");
    assert_null(ims_sip_next_hop(g_a.s, home, NULL));
    su_home_deinit(home);
}

static void test_create_errors(void **state)
{
    (void)state;
    char err[256];
    ims_sip_cfg cfg = { .listen = "127.0.0.1", .port = g_a.cfg.port };
    assert_null(ims_sip_create(&cfg, c_request, NULL, err, sizeof(err)));       /* in use */
    assert_non_null(strstr(err, "cannot listen"));

    cfg.listen = "192.0.2.250";                                                  /* not ours */
    cfg.port = g_closed_port;
    assert_null(ims_sip_create(&cfg, c_request, NULL, err, sizeof(err)));
    assert_true(err[0] != '\0');

    char *bad[] = { "no-equals-sign" };
    ims_sip_cfg cfg2 = { .listen = "127.0.0.1", .port = g_closed_port, .hosts = { bad, 1 } };
    assert_null(ims_sip_create(&cfg2, c_request, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no-equals-sign"));

    ims_sip_cfg cfg3 = { .listen = "127.0.0.1", .port = 0 };
    assert_null(ims_sip_create(&cfg3, c_request, NULL, err, sizeof(err)));
    assert_null(ims_sip_create(&cfg, NULL, NULL, err, sizeof(err)));
}

/* sip.advertise: what goes into our headers; the listen address by default, host[:port] when set,
 * the host name when we listen on a wildcard address; recognised as ours in Route. */
static void test_advertise(void **state)
{
    (void)state;
    char err[256];
    struct { const char *listen, *hostname, *advertise, *self; } ok[] = {
        { "127.0.0.1", "p.ims.lab", NULL, "sip:127.0.0.1:%u" },
        { "127.0.0.1", "p.ims.lab", "192.0.2.7", "sip:192.0.2.7:%u" },
        { "127.0.0.1", NULL, "phones.example.net:5099", "sip:phones.example.net:5099" },
        { "127.0.0.1", NULL, "[2001:db8::7]:5070", "sip:[2001:db8::7]:5070" },
        { "127.0.0.1", NULL, "2001:db8::7", "sip:[2001:db8::7]:%u" },
        { "0.0.0.0", "p.ims.svc", NULL, "sip:p.ims.svc:%u" },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ims_sip_cfg cfg = { .listen = (char *)ok[i].listen, .port = g_closed_port,
                            .hostname = (char *)ok[i].hostname, .advertise = (char *)ok[i].advertise };
        ims_sip *s = ims_sip_create(&cfg, c_request, NULL, err, sizeof(err));
        assert_non_null(s);
        char want[128];
        snprintf(want, sizeof(want), ok[i].self, (unsigned)g_closed_port);
        assert_string_equal(ims_sip_self_uri(s), want);
        su_home_t home[1] = { SU_HOME_INIT(home) };
        assert_true(ims_sip_is_self(s, url_make(home, want)));
        char listen_uri[64];
        snprintf(listen_uri, sizeof(listen_uri), "sip:%s:%u", ok[i].listen, (unsigned)g_closed_port);
        assert_true(ims_sip_is_self(s, url_make(home, listen_uri)));
        assert_false(ims_sip_is_self(s, url_make(home, "sip:192.0.2.99:5099")));
        su_home_deinit(home);
        ims_sip_destroy(s);
    }
    const char *bad[] = { "host:0", "host:70000", "host:", "[::1", "[]:5060", "a b", "<sip:x>", "0.0.0.0" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ims_sip_cfg cfg = { .listen = "127.0.0.1", .port = g_closed_port, .advertise = (char *)bad[i] };
        assert_null(ims_sip_create(&cfg, c_request, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "sip.advertise"));
    }
    ims_sip_cfg wild = { .listen = "0.0.0.0", .port = g_closed_port };     /* no name to advertise */
    assert_null(ims_sip_create(&wild, c_request, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "sip.advertise: required"));
}

/* ---------- input checks (common/ims_sip_transport.c), with hand-made requests ---------- */

static bool has_final(const char *resp)
{
    for (const char *p = resp; (p = strstr(p, "SIP/2.0 ")) != NULL; p += 8)
        if (p[8] >= '2' && p[8] <= '6' && strstr(p, "\r\n\r\n"))
            return true;
    return false;
}

/* Sends a request to A over UDP or TCP (for TCP: optionally half-closes after sending) and
 * returns what came back within ms ("" when nothing). */
static void raw_exchange(int type, const char *mf, const char *content_length, bool half_close,
                         char *out, size_t outlen, int ms)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in a = me;
    socklen_t len = sizeof(me);
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
    getsockname(fd, (struct sockaddr *)&me, &len);
    a.sin_port = htons((uint16_t)g_a.cfg.port);
    char req[1024];
    int id = ++g_call;
    int n = snprintf(req, sizeof(req),
                     "OPTIONS sip:bob@b.test SIP/2.0\r\n"
                     "Via: SIP/2.0/%s 127.0.0.1:%u;rport;branch=z9hG4bK-raw%d\r\n"
                     "Max-Forwards: %s\r\nFrom: <sip:alice@c.test>;tag=r1\r\nTo: <sip:bob@b.test>\r\n"
                     "Call-ID: raw-%d-%d@c.test\r\nCSeq: 1 OPTIONS\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %s\r\n\r\n",
                     type == SOCK_STREAM ? "TCP" : "UDP", ntohs(me.sin_port), id, mf,
                     (int)getpid(), id, content_length);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(send(fd, req, (size_t)n, 0), n);
    if (half_close)
        shutdown(fd, SHUT_WR);
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t got = 0;
    out[0] = '\0';
    while (got + 1 < outlen) {
        ssize_t r = recv(fd, out + got, outlen - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        out[got] = '\0';
        if (has_final(out))
            break;
    }
    out[got] = '\0';
    close(fd);
}

/* RFC 3261 §20.22: Max-Forwards is 1*DIGIT, 0..255. sofia-sip leaves an unparsable one out of
 * sip_max_forwards (it looked absent, and the proxy put 70): 400 before the NF sees it. */
static void test_invalid_max_forwards(void **state)
{
    (void)state;
    const char *bad[] = { "-5x", "abc", "99999999999", "1.5", "", "256", "4294967295" };
    char resp[2048];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reset_results();
        raw_exchange(SOCK_DGRAM, bad[i], "0", false, resp, sizeof(resp), 3000);
        if (strncmp(resp, "SIP/2.0 400 Invalid Max-Forwards", 32) != 0)
            fail_msg("Max-Forwards '%s': got '%.60s'", bad[i], resp);
        pthread_mutex_lock(&g_lock);
        assert_int_equal(g.b_requests, 0);
        pthread_mutex_unlock(&g_lock);
    }
    reset_results();
    raw_exchange(SOCK_DGRAM, "255", "0", false, resp, sizeof(resp), 3000);
    assert_non_null(strstr(resp, "SIP/2.0 200"));       /* after B's 180 */
    assert_int_equal(g.b_mf, 254);
}

/* RFC 3261 §18.3: the connection closes before the body announced by Content-Length is there:
 * sofia-sip hands the request over with no body; it is discarded, nothing is answered. */
static void test_truncated_tcp_body(void **state)
{
    (void)state;
    char resp[2048];
    /* A complete request over TCP goes through (before and after). */
    reset_results();
    raw_exchange(SOCK_STREAM, "70", "0", false, resp, sizeof(resp), 3000);
    if (!strstr(resp, "SIP/2.0 200"))
        fail_msg("complete request over TCP: got '%s'", resp);
    reset_results();
    raw_exchange(SOCK_STREAM, "70", "100", true, resp, sizeof(resp), 1500);
    assert_string_equal(resp, "");
    pthread_mutex_lock(&g_lock);
    assert_int_equal(g.b_requests, 0);
    pthread_mutex_unlock(&g_lock);
    reset_results();
    raw_exchange(SOCK_STREAM, "70", "0", false, resp, sizeof(resp), 3000);
    if (!strstr(resp, "SIP/2.0 200"))
        fail_msg("complete request over TCP: got '%s'", resp);
    assert_int_equal(g.b_requests, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_basic),
        cmocka_unit_test(test_max_forwards_zero),
        cmocka_unit_test(test_response_replaced),
        cmocka_unit_test(test_unreachable_next_hop),
        cmocka_unit_test(test_proxy_onward),
        cmocka_unit_test(test_invite_cancel),
        cmocka_unit_test(test_invite_2xx_and_ack),
        cmocka_unit_test(test_defer_and_timers),
        cmocka_unit_test(test_self_and_next_hop),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_advertise),
        cmocka_unit_test(test_invalid_max_forwards),
        cmocka_unit_test(test_truncated_tcp_body),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
