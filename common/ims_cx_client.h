/*
 * ims_cx_client: Cx on a CSCF, bridged to its SIP loop (docs/design.md: never block the loop).
 *
 * Requests go out with fd_msg_send_timeout; freeDiameter calls back on its own thread; the answer
 * is handed to the SIP loop with ims_sip_defer, so `cb` always runs on the loop thread. A timeout
 * calls cb with ans == NULL; a request that cannot be sent makes ims_cx_send return -1 without
 * calling cb. Either way the SIP side answers (common/ims_register.c: 480 + Retry-After for an
 * HSS that cannot be reached) and never hangs.
 *
 * Requests the HSS sends to us (RTR, PPR at the S-CSCF) are likewise handed to the loop.
 */
#ifndef IMS_CX_CLIENT_H
#define IMS_CX_CLIENT_H

#include <time.h>

#include "ims_cx.h"
#include "ims_sip.h"

/* Answer callback on the loop thread. ans is freed after cb returns (don't keep it); NULL on
 * timeout or when the request could not be sent. */
typedef void (*ims_cx_answer_f)(void *arg, struct msg *ans);

/* Sends *req (built with ims_cx_new_request) and takes ownership of it. 0, or -1 when it could
 * not be sent (cb is then NOT called; the caller answers at once). */
int ims_cx_send(ims_sip *sip, struct msg **req, ims_cx_answer_f cb, void *arg);

/* Serves incoming Cx requests of `cmd` (e.g. ims_cx_dict.rtr) on the loop thread: fn receives the
 * request and must answer it: ims_cx_new_answer(&req), ims_cx_set_result(...), fd_msg_send(&req...)
 * (or use ims_cx_reply below). 0 / -1. */
typedef void (*ims_cx_request_f)(void *arg, struct msg *req);
int ims_cx_serve(ims_sip *sip, struct dict_object *cmd, ims_cx_request_f fn, void *arg);

/* Answers `req` with a base Result-Code (experimental false) or a Cx Experimental-Result, and
 * sends it. Frees what it must. */
void ims_cx_reply(struct msg *req, uint32_t code, bool experimental);

/* The Cx seam (as scscf_timer_ops is the timers' seam): the one call through which ims_cx_send
 * hands a request to Diameter. By default it is freeDiameter's fd_msg_send_timeout; an in-process
 * test (tests/inproc) installs its own to answer requests from a script, so that everything
 * around it (metrics, overload accounting, the hand-over to the loop) stays the real code.
 * The contract is fd_msg_send_timeout's: on 0, *req is taken (and NULL); later exactly one of
 * `answered` (with the answer, which it takes) or `expired` (with the request back) runs, on any
 * thread, with `data`. On non-0 nothing is called and *req may still be set. */
typedef void (*ims_cx_answered_f)(void *data, struct msg **ans);
typedef void (*ims_cx_expired_f)(void *data, DiamId_t to, size_t tolen, struct msg **req);
typedef struct {
    int (*send)(void *arg, struct msg **req, ims_cx_answered_f answered, void *data,
                ims_cx_expired_f expired, const struct timespec *deadline);
    void *arg;
} ims_cx_ops;

/* Installs `ops` for every later ims_cx_send (copied); NULL restores freeDiameter. Call it before
 * the SIP loop sends any Cx request (not thread-safe against a concurrent ims_cx_send). */
void ims_cx_client_set_ops(const ims_cx_ops *ops);

/* Latency and outcome metrics: <nf>_cx_requests_total{cmd,result}, <nf>_cx_latency_seconds. */
void ims_cx_client_set_metrics_prefix(const char *nf);

#endif
