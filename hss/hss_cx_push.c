/*
 * hss_cx_push: HSS-initiated Cx procedures towards the S-CSCF that serves a user.
 *
 *  - RTR/RTA, network initiated de-registration by the HSS (TS 29.228 §6.1.3, TS 29.229 §6.1.9/10):
 *    sent by the provisioning API (administrative de-registration). On DIAMETER_SUCCESS the HSS
 *    marks the identities not registered and forgets the S-CSCF.
 *  - PPR/PPA, HSS initiated update of user information (TS 29.228 §6.2.2, §6.6.1): sent when an
 *    operator changes the profile of a user that has an S-CSCF; one PPR per registered implicit
 *    registration set, each with its User-Data and the Charging-Information.
 *
 * Both are asynchronous: the answer (or the timeout) is logged and counted from freeDiameter's
 * thread; the caller only learns whether the request could be sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdcore.h>

#include "hss_cx_internal.h"
#include "ims_diameter.h"
#include "ims_log.h"

#define SUBSYS "hss.push"
#define MAX_IDS 64

typedef struct {
    uint32_t cmd;                 /* IMS_CX_RTR or IMS_CX_PPR */
    char id[256];                 /* subscription */
    char peer[256];               /* S-CSCF Origin-Host */
    size_t n_impus;
    char *impus[MAX_IDS];         /* RTR: identities to mark not registered on success */
} push_req;

static void push_req_free(push_req *p)
{
    for (size_t i = 0; i < p->n_impus; i++)
        free(p->impus[i]);
    free(p);
}

static void count(uint32_t cmd, const char *result)
{
    char metric[160];
    snprintf(metric, sizeof(metric), "hss_cx_requests_sent_total{cmd=\"%s\",result=\"%s\"}",
             ims_cx_cmd_name(cmd), result);
    ims_metric_inc(ims_metric_counter(metric, "Cx requests the HSS sent (RTR, PPR), by outcome"));
}

static void on_answer(void *data, struct msg **ans)
{
    push_req *p = data;
    uint32_t rc = 0, exp = 0;
    ims_cx_get_result(*ans, &rc, &exp);
    const char *name = exp ? ims_cx_result_name(exp, true) : ims_cx_result_name(rc, false);
    count(p->cmd, name);
    if (rc == IMS_DIAMETER_SUCCESS && !exp) {
        IMS_INFO(SUBSYS, "%s for subscription %s accepted by %s", ims_cx_cmd_name(p->cmd), p->id, p->peer);
        if (p->cmd == IMS_CX_RTR) {
            hss_store_set_reg_state(hss_ctx.store, p->id, (const char *const *)p->impus, p->n_impus,
                                    HSS_NOT_REGISTERED);
            hss_store_set_scscf(hss_ctx.store, p->id, NULL, NULL, NULL);
        }
    } else {
        IMS_WARN(SUBSYS, "%s for subscription %s refused by %s: %s (%u)", ims_cx_cmd_name(p->cmd),
                 p->id, p->peer, name, exp ? exp : rc);
    }
    fd_msg_free(*ans);
    *ans = NULL;
    push_req_free(p);
}

static void on_timeout(void *data, DiamId_t sentto, size_t senttolen, struct msg **req)
{
    (void)sentto; (void)senttolen;
    push_req *p = data;
    count(p->cmd, "timeout");
    IMS_WARN(SUBSYS, "%s for subscription %s: no answer from %s within %ld ms", ims_cx_cmd_name(p->cmd),
             p->id, p->peer, ims_diameter_request_timeout_ms());
    fd_msg_free(*req);
    *req = NULL;
    push_req_free(p);
}

/* Loads the subscription and checks it has a reachable S-CSCF. */
static int load_served(const char *id, hss_subscriber *sub, char *err, size_t errlen)
{
    memset(sub, 0, sizeof(*sub));
    int rc = hss_store_get(hss_ctx.store, id, sub);
    if (rc != HSS_STORE_OK) {
        snprintf(err, errlen, rc == HSS_STORE_NOT_FOUND ? "no subscriber %s" : "store error reading %s", id);
        return -1;
    }
    if (!sub->scscf_name || !sub->scscf_host) {
        snprintf(err, errlen, "subscriber %s has no S-CSCF assigned (not registered)", id);
        hss_subscriber_free(sub);
        return -1;
    }
    if (!ims_diameter_peer_is_open(sub->scscf_host)) {
        snprintf(err, errlen, "S-CSCF %s of subscriber %s is not connected", sub->scscf_host, id);
        hss_subscriber_free(sub);
        return -1;
    }
    return 0;
}

static int send_request(struct msg **req, push_req *p, char *err, size_t errlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ms = ims_diameter_request_timeout_ms();
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    /* Logged before the send: once sent, the answer may arrive and free p on a freeDiameter
     * thread before this one runs again. */
    IMS_INFO(SUBSYS, "sending %s to %s for subscription %s", ims_cx_cmd_name(p->cmd), p->peer, p->id);
    int rc = fd_msg_send_timeout(req, on_answer, p, on_timeout, &ts);
    if (rc) {
        snprintf(err, errlen, "cannot send %s to %s: %s", ims_cx_cmd_name(p->cmd), p->peer, strerror(rc));
        if (*req)
            fd_msg_free(*req);
        push_req_free(p);
        return -1;
    }
    return 0;
}

static push_req *new_push(uint32_t cmd, const hss_subscriber *sub)
{
    push_req *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cmd = cmd;
    snprintf(p->id, sizeof(p->id), "%s", sub->id);
    snprintf(p->peer, sizeof(p->peer), "%s", sub->scscf_host);
    return p;
}

int hss_cx_send_rtr(const char *id, int reason_code, const char *reason_info, char *err, size_t errlen)
{
    hss_subscriber sub;
    struct msg *req = NULL;
    struct avp *dr = NULL;
    if (load_served(id, &sub, err, errlen))
        return -1;
    push_req *p = new_push(IMS_CX_RTR, &sub);
    int rc = -1;
    if (!p || ims_cx_new_request(ims_cx_dict.rtr, sub.scscf_realm ? sub.scscf_realm : ims_diameter_realm(),
                                 sub.scscf_host, &req)) {
        snprintf(err, errlen, "cannot build RTR");
        goto out;
    }
    ims_cx_add_str(req, ims_cx_dict.user_name, sub.impis[0].identity);
    for (size_t i = 0; i < sub.n_impus && p->n_impus < MAX_IDS; i++) {
        if (sub.impus[i].reg_state == HSS_NOT_REGISTERED)
            continue;
        ims_cx_add_str(req, ims_cx_dict.public_identity, sub.impus[i].identity);
        p->impus[p->n_impus++] = strdup(sub.impus[i].identity);
    }
    if (ims_cx_add_group(req, ims_cx_dict.dereg_reason, &dr) ||
        ims_cx_add_i32(dr, ims_cx_dict.reason_code, reason_code) ||
        (reason_info && *reason_info && ims_cx_add_str(dr, ims_cx_dict.reason_info, reason_info))) {
        snprintf(err, errlen, "cannot build RTR");
        goto out;
    }
    rc = send_request(&req, p, err, errlen);
    p = NULL;
    req = NULL;
out:
    if (req)
        fd_msg_free(req);
    if (p)
        push_req_free(p);
    hss_subscriber_free(&sub);
    return rc;
}

int hss_cx_send_ppr(const char *id, char *err, size_t errlen)
{
    hss_subscriber sub;
    if (load_served(id, &sub, err, errlen))
        return -1;
    int sent = 0, rc = 0;
    int done_irs[MAX_IDS];
    size_t n_done = 0;
    for (size_t i = 0; i < sub.n_impus && rc == 0; i++) {
        const hss_impu *pu = &sub.impus[i];
        bool seen = false;
        for (size_t j = 0; j < n_done; j++)
            seen = seen || done_irs[j] == pu->irs;
        if (pu->reg_state == HSS_NOT_REGISTERED || seen || n_done >= MAX_IDS)
            continue;
        done_irs[n_done++] = pu->irs;

        struct msg *req = NULL;
        push_req *p = new_push(IMS_CX_PPR, &sub);
        if (!p || ims_cx_new_request(ims_cx_dict.ppr, sub.scscf_realm ? sub.scscf_realm : ims_diameter_realm(),
                                     sub.scscf_host, &req) ||
            ims_cx_add_str(req, ims_cx_dict.user_name, sub.impis[0].identity) ||
            hss_cx_add_user_data(req, &sub, sub.impis[0].identity, pu->identity) ||
            hss_cx_add_charging(req, &sub)) {
            snprintf(err, errlen, "cannot build PPR for %s", pu->identity);
            if (req)
                fd_msg_free(req);
            if (p)
                push_req_free(p);
            rc = -1;
            break;
        }
        rc = send_request(&req, p, err, errlen);
        if (rc == 0)
            sent++;
    }
    if (rc == 0 && sent == 0) {
        snprintf(err, errlen, "subscriber %s has no registered identity", id);
        rc = -1;
    }
    hss_subscriber_free(&sub);
    return rc;
}
