/*
 * Unit tests for ims_sip_fork (common/ims_sip_fork.c): three ims_sip instances in one process,
 * each on its own thread (as in test_sip.c), on 127.0.0.1:
 *
 *   C (UAC: ims_sip_send_request, or nta directly for INVITE)
 *     -> A (forks to the targets listed in X-Targets: sip:<user>@b.test:PORT_B, or with
 *           X-Route: yes Request-URI sip:<user>@nowhere.invalid and Route <sip:b.test:PORT_B;lr>)
 *       -> B (UAS: what it does depends on the Request-URI user)
 *            ok 180+200, busy 486, ambiguous 485, incomplete 484, err 503, decline 603,
 *            hold 180 and no final, silent nothing
 *
 * RFC 3261 §16.7 shown: best response (2xx wins, 6xx over 4xx, lowest class, 503 -> 500),
 * CANCEL of pending branches after a 2xx, Timer C (408 + CANCEL), per-branch Request-URI and
 * Route, the NF taking irq back (IMS_SIP_FORK_RETAKE), the "no answer" timer, and no
 * transaction left behind (sip_transactions_active back to 0).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#include "ims_http.h"
#include "ims_sip.h"
#include "sip_test_node.h"

static node g_a, g_b, g_c;

#define MAX_HELD 4

static struct {
    int done, status;
    char phrase[64];
    int c_2xx;
    int b_requests, b_routes;
    char b_ruri[128];
    nta_incoming_t *held[MAX_HELD];
    int n_held;
    int held_status[MAX_HELD];
    int checked;
    int a_calls;
} g;

static void reset(void)
{
    pthread_mutex_lock(&g_lock);
    memset(&g, 0, sizeof(g));
    pthread_mutex_unlock(&g_lock);
}

/* ---------- B ---------- */

static int b_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    (void)arg;
    const char *user = sip->sip_request->rq_url->url_user ? sip->sip_request->rq_url->url_user : "";
    if (sip->sip_request->rq_method == sip_method_ack)
        return 500;
    pthread_mutex_lock(&g_lock);
    g.b_requests++;
    g.b_routes = 0;
    for (sip_route_t const *r = sip->sip_route; r; r = r->r_next)
        g.b_routes++;
    url_e(g.b_ruri, sizeof(g.b_ruri), sip->sip_request->rq_url);
    pthread_mutex_unlock(&g_lock);

    if (strcmp(user, "hold") == 0 || strcmp(user, "silent") == 0) {
        if (strcmp(user, "hold") == 0)
            nta_incoming_treply(irq, SIP_180_RINGING, TAG_END());
        pthread_mutex_lock(&g_lock);
        if (g.n_held < MAX_HELD)
            g.held[g.n_held++] = irq;
        pthread_mutex_unlock(&g_lock);
        return 0;
    }
    if (strcmp(user, "busy") == 0)
        return 486;
    if (strcmp(user, "ambiguous") == 0)
        return 485;
    if (strcmp(user, "incomplete") == 0)
        return 484;
    if (strcmp(user, "err") == 0)
        return 503;
    if (strcmp(user, "decline") == 0)
        return 603;
    nta_incoming_treply(irq, SIP_180_RINGING, TAG_END());
    nta_incoming_treply(irq, SIP_200_OK, TAG_END());
    nta_incoming_destroy(irq);
    return 0;
}

/* B: statuses of the held transactions (CANCELled ones are 487), then they are released. */
static void b_release(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g.n_held; i++) {
        g.held_status[i] = nta_incoming_status(g.held[i]);
        nta_incoming_destroy(g.held[i]);
        g.held[i] = NULL;
    }
    g.checked = 1;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

static void release_held(void)
{
    assert_int_equal(ims_sip_defer(g_b.s, b_release, NULL), 0);
    assert_true(wait_flag(&g.checked, 3000));
}

/* ---------- A ---------- */

static int a_response(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    (void)msg;
    (void)irq;
    bool retake = arg != NULL;
    pthread_mutex_lock(&g_lock);
    g.a_calls++;
    pthread_mutex_unlock(&g_lock);
    int status = sip && sip->sip_status ? sip->sip_status->st_status : 0;
    if (retake && (status == 0 || status >= 300))
        return IMS_SIP_FORK_RETAKE;
    return 0;
}

/* After a RETAKE: A answers the request itself, on the loop. */
static void a_answer_retaken(void *arg)
{
    nta_incoming_t *irq = arg;
    nta_incoming_treply(irq, 480, "Retaken", TAG_END());
    nta_incoming_destroy(irq);
}

static int a_response_retake(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip)
{
    int rc = a_response(arg, irq, msg, sip);
    if (rc == IMS_SIP_FORK_RETAKE)
        ims_sip_timer_start(g_a.s, 0, a_answer_retaken, irq);
    return rc;
}

static int a_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    node *a = arg;
    char targets[128] = "", route_mode[8] = "", retake[8] = "", noans[16] = "", timer_c[16] = "";
    if (sip->sip_request->rq_method == sip_method_ack)
        return 500;
    ims_sip_header(sip, "X-Targets", targets, sizeof(targets));
    ims_sip_header(sip, "X-Route", route_mode, sizeof(route_mode));
    ims_sip_header(sip, "X-Retake", retake, sizeof(retake));
    ims_sip_header(sip, "X-No-Answer", noans, sizeof(noans));
    ims_sip_header(sip, "X-Timer-C", timer_c, sizeof(timer_c));
    ims_sip_set_timer_c(a->s, (unsigned)atoi(timer_c));

    ims_sip_branch b[4];
    char ruri[4][96], route[96];
    size_t n = 0;
    snprintf(route, sizeof(route), "<sip:b.test:%ld;lr>", g_b.cfg.port);
    for (char *save = NULL, *t = strtok_r(targets, ",", &save); t && n < 4; t = strtok_r(NULL, ",", &save)) {
        if (route_mode[0])
            snprintf(ruri[n], sizeof(ruri[n]), "sip:%s@nowhere.invalid", t);
        else
            snprintf(ruri[n], sizeof(ruri[n]), "sip:%s@b.test:%ld", t, g_b.cfg.port);
        b[n] = (ims_sip_branch){ .ruri = ruri[n], .route = route_mode[0] ? route : NULL };
        n++;
    }
    ims_sip_fork_opts o = { .on_response = retake[0] ? a_response_retake : a_response,
                            .arg = retake[0] ? (void *)1 : NULL, .no_answer_ms = (unsigned)atoi(noans) };
    ims_sip_fork(a->s, irq, ims_sip_request_copy(irq), b, n, &o);
    return 0;
}

/* ---------- C ---------- */

static int c_request(void *arg, nta_incoming_t *irq, const sip_t *sip)
{
    (void)arg;
    (void)irq;
    (void)sip;
    return 501;
}

typedef struct {
    char method[16];
    char extra[4][96];
} spec;

static int g_call;

static msg_t *c_build(const spec *sp)
{
    msg_t *m = nta_msg_create(ims_sip_agent(g_c.s), 0);
    sip_t *sip = sip_object(m);
    char rq[96], cseq[48], callid[64];
    snprintf(rq, sizeof(rq), "%s sip:bob@a.test SIP/2.0", sp->method);
    snprintf(cseq, sizeof(cseq), "1 %s", sp->method);
    snprintf(callid, sizeof(callid), "fork-%d-%d@c.test", (int)getpid(), ++g_call);
    sip_add_tl(m, sip, SIPTAG_REQUEST_STR(rq), SIPTAG_FROM_STR("<sip:alice@c.test>;tag=c1"),
               SIPTAG_TO_STR("<sip:bob@a.test>"), SIPTAG_CALL_ID_STR(callid), SIPTAG_CSEQ_STR(cseq),
               SIPTAG_CONTACT_STR("<sip:alice@127.0.0.1>"),
               SIPTAG_HEADER_STR(sp->extra[0][0] ? sp->extra[0] : NULL),
               SIPTAG_HEADER_STR(sp->extra[1][0] ? sp->extra[1] : NULL),
               SIPTAG_HEADER_STR(sp->extra[2][0] ? sp->extra[2] : NULL),
               SIPTAG_HEADER_STR(sp->extra[3][0] ? sp->extra[3] : NULL), TAG_END());
    return m;
}

static void c_final(void *arg, int status, const sip_t *sip)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    g.status = status;
    if (sip && sip->sip_status && sip->sip_status->st_phrase)
        snprintf(g.phrase, sizeof(g.phrase), "%s", sip->sip_status->st_phrase);
    g.done = 1;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

static url_t *a_hop(msg_t *m)
{
    char a[64];
    snprintf(a, sizeof(a), "sip:127.0.0.1:%ld", g_a.cfg.port);
    return url_make(msg_home(m), a);
}

static void c_send(void *arg)
{
    msg_t *m = c_build(arg);
    if (ims_sip_send_request(g_c.s, m, a_hop(m), c_final, NULL) < 0)
        c_final(NULL, -1, NULL);
}

static nta_outgoing_t *g_invite;

static int c_invite_response(nta_outgoing_magic_t *magic, nta_outgoing_t *orq, sip_t const *sip)
{
    (void)magic;
    int status = sip ? sip->sip_status->st_status : 500;
    if (status < 200)
        return 0;
    pthread_mutex_lock(&g_lock);
    if (status < 300)
        g.c_2xx++;
    if (!g.done) {
        g.status = status;
        g.done = 1;
    }
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (status >= 300) {
        nta_outgoing_destroy(orq);
        g_invite = NULL;
    }
    return 0;
}

static void c_send_invite(void *arg)
{
    msg_t *m = c_build(arg);
    g_invite = nta_outgoing_mcreate(ims_sip_agent(g_c.s), c_invite_response, NULL, (url_string_t *)a_hop(m), m,
                                    TAG_END());
    if (!g_invite)
        msg_destroy(m);
}

static void c_forget_invite(void *arg)
{
    (void)arg;
    if (g_invite)
        nta_outgoing_destroy(g_invite);
    g_invite = NULL;
    pthread_mutex_lock(&g_lock);
    g.checked = 1;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

static int run(const char *method, const char *targets, const char *extra1, const char *extra2)
{
    static spec sp;
    memset(&sp, 0, sizeof(sp));
    snprintf(sp.method, sizeof(sp.method), "%s", method);
    snprintf(sp.extra[0], sizeof(sp.extra[0]), "X-Targets: %s", targets);
    if (extra1)
        snprintf(sp.extra[1], sizeof(sp.extra[1]), "%s", extra1);
    if (extra2)
        snprintf(sp.extra[2], sizeof(sp.extra[2]), "%s", extra2);
    reset();
    bool invite = strcmp(method, "INVITE") == 0;
    assert_int_equal(ims_sip_defer(g_c.s, invite ? c_send_invite : c_send, &sp), 0);
    assert_true(wait_flag(&g.done, 8000));
    return g.status;
}

static int64_t active(void)
{
    return ims_metric_value(ims_metric_gauge("sip_transactions_active", "x"));
}

/* Every transaction of the test has ended (Timer C and the INVITE tails are short here). */
static void assert_no_transactions(void)
{
    for (int i = 0; i < 100 && active() != 0; i++)
        usleep(50 * 1000);
    assert_int_equal(active(), 0);
}

/* ---------- tests ---------- */

static void test_best_response(void **state)
{
    (void)state;
    assert_int_equal(run("MESSAGE", "busy,ok", NULL, NULL), 200);      /* 2xx wins */
    assert_int_equal(g.b_requests, 2);
    assert_int_equal(run("MESSAGE", "err,busy", NULL, NULL), 486);     /* lowest class */
    assert_int_equal(run("MESSAGE", "busy,decline", NULL, NULL), 603); /* 6xx over 4xx */
    assert_int_equal(run("MESSAGE", "ambiguous,incomplete", NULL, NULL), 484);  /* actionable 4xx */
    assert_int_equal(run("MESSAGE", "err", NULL, NULL), 500);          /* 503 -> 500 */
    assert_int_equal(g.a_calls, 1);
    assert_no_transactions();
}

static void test_branch_route(void **state)
{
    (void)state;
    /* Request-URI per branch; the branch's Route decides the next hop. */
    assert_int_equal(run("MESSAGE", "ok", "X-Route: yes", "Route: <sip:stale.invalid;lr>"), 200);
    assert_int_equal(g.b_routes, 1);
    assert_string_equal(g.b_ruri, "sip:ok@nowhere.invalid");
    assert_no_transactions();
}

static void test_invite_2xx_cancels_others(void **state)
{
    (void)state;
    assert_int_equal(run("INVITE", "hold,ok", NULL, NULL), 200);
    for (int i = 0; i < 50; i++) {
        usleep(20 * 1000);
        pthread_mutex_lock(&g_lock);
        int n = g.n_held;
        pthread_mutex_unlock(&g_lock);
        if (n)
            break;
    }
    usleep(300 * 1000);     /* the CANCEL reaches B */
    release_held();
    assert_int_equal(g.held_status[0], 487);
    assert_int_equal(g.c_2xx, 1);
    g.checked = 0;
    assert_int_equal(ims_sip_defer(g_c.s, c_forget_invite, NULL), 0);
    assert_true(wait_flag(&g.checked, 3000));
    assert_no_transactions();
}

static void test_timer_c(void **state)
{
    (void)state;
    /* hold never answers: Timer C (400 ms here) CANCELs it and the caller gets 408 */
    assert_int_equal(run("INVITE", "hold", "X-Timer-C: 400", NULL), 408);
    usleep(200 * 1000);
    release_held();
    assert_int_equal(g.held_status[0], 487);
    assert_no_transactions();
}

static void test_busy_and_ringing(void **state)
{
    (void)state;
    /* a 4xx from one branch waits for the other: Timer C ends it, the 486 is the best */
    assert_int_equal(run("INVITE", "busy,hold", "X-Timer-C: 400", NULL), 486);
    usleep(200 * 1000);
    release_held();
    assert_no_transactions();
}

static void test_retake(void **state)
{
    (void)state;
    assert_int_equal(run("MESSAGE", "err", "X-Retake: yes", NULL), 480);
    assert_string_equal(g.phrase, "Retaken");
    assert_no_transactions();
}

static void test_no_answer(void **state)
{
    (void)state;
    /* B never answers the MESSAGE: after 300 ms the fork gives up with 408 (long before nta's
     * own 2 s Timer F) */
    assert_int_equal(run("MESSAGE", "silent", "X-No-Answer: 300", NULL), 408);
    release_held();
    assert_no_transactions();
}

/* ---------- setup ---------- */

static int group_setup(void **state)
{
    (void)state;
    g_a.on_request = a_request;
    g_b.on_request = b_request;
    g_c.on_request = c_request;
    int base = 31000 + (int)(getpid() % 1500) * 4;
    for (int tries = 0; tries < 20; tries++, base += 1200) {
        if (base > 64000)
            base = 31000 + tries * 4;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_response),
        cmocka_unit_test(test_branch_route),
        cmocka_unit_test(test_invite_2xx_cancels_others),
        cmocka_unit_test(test_timer_c),
        cmocka_unit_test(test_busy_and_ringing),
        cmocka_unit_test(test_retake),
        cmocka_unit_test(test_no_answer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
