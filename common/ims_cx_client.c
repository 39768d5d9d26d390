/*
 * ims_cx_client: Cx requests from a CSCF's SIP loop, and Cx requests served on it.
 * See ims_cx_client.h. The loop never waits for Diameter: answers and timeouts come back through
 * ims_sip_defer (docs/design.md "Threads and loops").
 *
 * References: TS 29.229 §6.1 (commands), RFC 6733 §5.5.4 / §7 (answers, timeouts).
 */
#include "ims_cx_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <freeDiameter/libfdcore.h>

#include "ims_diameter.h"
#include "ims_http.h"
#include "ims_clock.h"
#include "ims_log.h"

#define SUBSYS "cx"

static char g_prefix[32] = "ims";

void ims_cx_client_set_metrics_prefix(const char *nf)
{
    snprintf(g_prefix, sizeof(g_prefix), "%s", nf);
}

/* ---------- the Cx seam (ims_cx_client.h) ---------- */

static int fd_send(void *arg, struct msg **req, ims_cx_answered_f answered, void *data,
                   ims_cx_expired_f expired, const struct timespec *deadline)
{
    (void)arg;
    return fd_msg_send_timeout(req, answered, data, expired, deadline);
}

static const ims_cx_ops fd_ops = { .send = fd_send };
static ims_cx_ops g_ops = { .send = fd_send };

void ims_cx_client_set_ops(const ims_cx_ops *ops)
{
    g_ops = ops ? *ops : fd_ops;
}

typedef struct {
    ims_sip *sip;
    ims_cx_answer_f cb;
    void *arg;
    struct msg *ans;        /* NULL: timeout or failure */
    uint32_t cmd;
    uint64_t t0;
} cx_pending;

static void count(const cx_pending *c)
{
    uint32_t rc = 0, exp = 0;
    const char *result = "timeout";
    if (c->ans) {
        ims_cx_get_result(c->ans, &rc, &exp);
        result = exp ? ims_cx_result_name(exp, true) : ims_cx_result_name(rc, false);
    }
    char name[192];
    snprintf(name, sizeof(name), "%s_cx_requests_total{cmd=\"%s\",result=\"%s\"}", g_prefix,
             ims_cx_cmd_name(c->cmd), result);
    ims_metric_inc(ims_metric_counter(name, "Cx requests sent, by command and outcome"));
    snprintf(name, sizeof(name), "%s_cx_latency_seconds{cmd=\"%s\"}", g_prefix, ims_cx_cmd_name(c->cmd));
    ims_metric_observe_us(ims_metric_histogram(name, "Cx request to answer (or timeout)"), ims_monotonic_us() - c->t0);
}

/* On the SIP loop. */
static void deliver(void *p)
{
    cx_pending *c = p;
    count(c);
    ims_sip_work_add(-1);
    c->cb(c->arg, c->ans);
    if (c->ans)
        fd_msg_free(c->ans);
    free(c);
}

static void hand_over(cx_pending *c)
{
    if (ims_sip_defer(c->sip, deliver, c) != 0) {
        /* The loop is shutting down: nobody is left to tell. */
        ims_sip_work_add(-1);
        if (c->ans)
            fd_msg_free(c->ans);
        free(c);
    }
}

/* On a freeDiameter thread. */
static void on_answer(void *data, struct msg **ans)
{
    cx_pending *c = data;
    c->ans = *ans;
    *ans = NULL;
    hand_over(c);
}

static void on_expire(void *data, DiamId_t to, size_t tolen, struct msg **req)
{
    cx_pending *c = data;
    IMS_WARN(SUBSYS, "no answer to %s from %.*s within %ld ms", ims_cx_cmd_name(c->cmd), (int)tolen,
             to ? (const char *)to : "?", ims_diameter_request_timeout_ms());
    fd_msg_free(*req);
    *req = NULL;
    c->ans = NULL;
    hand_over(c);
}

int ims_cx_send(ims_sip *sip, struct msg **req, ims_cx_answer_f cb, void *arg)
{
    struct msg_hdr *h = NULL;
    cx_pending *c = calloc(1, sizeof(*c));
    if (!c || fd_msg_hdr(*req, &h)) {
        free(c);
        fd_msg_free(*req);
        *req = NULL;
        return -1;
    }
    c->sip = sip;
    c->cb = cb;
    c->arg = arg;
    c->cmd = h->msg_code;
    c->t0 = ims_monotonic_us();

    /* Counted as work in progress for overload control (ims_sip_work_add) until delivered. */
    ims_sip_work_add(1);
    struct timespec ts = ims_diameter_deadline(ims_diameter_request_timeout_ms());
    int rc = g_ops.send(g_ops.arg, req, on_answer, c, on_expire, &ts);
    if (rc) {
        IMS_WARN(SUBSYS, "cannot send %s: %s (is the HSS connected?)", ims_cx_cmd_name(c->cmd), strerror(rc));
        if (*req)
            fd_msg_free(*req);
        *req = NULL;
        c->ans = NULL;
        count(c);
        ims_sip_work_add(-1);
        free(c);
        return -1;
    }
    return 0;
}

/* ---------- serving ---------- */

typedef struct {
    ims_sip *sip;
    ims_cx_request_f fn;
    void *arg;
} cx_server;

typedef struct {
    cx_server *srv;
    struct msg *req;
} cx_incoming;

static void run_incoming(void *p)
{
    cx_incoming *in = p;
    in->srv->fn(in->srv->arg, in->req);
    free(in);
}

void ims_cx_reply(struct msg *req, uint32_t code, bool experimental)
{
    struct msg *m = req;
    if (ims_cx_new_answer(&m)) {
        fd_msg_free(m);
        return;
    }
    int rc = experimental ? ims_cx_set_experimental(m, code) : ims_cx_set_result(m, code);
    if (rc == 0)
        rc = fd_msg_send(&m, NULL, NULL);
    if (rc && m)
        fd_msg_free(m);
}

/* On a freeDiameter thread: hand the request to the loop. */
static int on_request(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                      enum disp_action *act)
{
    (void)avp; (void)sess; (void)act;
    cx_server *srv = opaque;
    cx_incoming *in = malloc(sizeof(*in));
    if (!in) {
        ims_cx_reply(*msg, IMS_DIAMETER_UNABLE_TO_COMPLY, false);
        *msg = NULL;
        return 0;
    }
    in->srv = srv;
    in->req = *msg;
    *msg = NULL;
    if (ims_sip_defer(srv->sip, run_incoming, in) != 0) {
        ims_cx_reply(in->req, IMS_DIAMETER_UNABLE_TO_COMPLY, false);
        free(in);
    }
    return 0;
}

/* Served commands live as long as the process: a static table, nothing to free at exit. */
static cx_server g_servers[8];
static size_t g_n_servers;

int ims_cx_serve(ims_sip *sip, struct dict_object *cmd, ims_cx_request_f fn, void *arg)
{
    if (g_n_servers >= sizeof(g_servers) / sizeof(g_servers[0]))
        return -1;
    cx_server *srv = &g_servers[g_n_servers];
    srv->sip = sip;
    srv->fn = fn;
    srv->arg = arg;
    struct disp_when when;
    memset(&when, 0, sizeof(when));
    when.app = ims_cx_dict.app;
    when.command = cmd;
    if (fd_disp_register(on_request, DISP_HOW_CC, &when, srv, NULL))
        return -1;
    g_n_servers++;
    return 0;
}
