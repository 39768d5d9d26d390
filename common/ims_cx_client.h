/*
 * ims_cx_client: Cx on a CSCF, bridged to its SIP loop (docs/design.md: never block the loop).
 *
 * Requests go out with fd_msg_send_timeout; freeDiameter calls back on its own thread; the answer
 * is handed to the SIP loop with ims_sip_defer, so `cb` always runs on the loop thread. A timeout
 * or a send failure calls cb with ans == NULL, so the SIP side can answer 504/500 and never hangs.
 *
 * Requests the HSS sends to us (RTR, PPR at the S-CSCF) are likewise handed to the loop.
 */
#ifndef IMS_CX_CLIENT_H
#define IMS_CX_CLIENT_H

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

/* Latency and outcome metrics: <nf>_cx_requests_total{cmd,result}, <nf>_cx_latency_seconds. */
void ims_cx_client_set_metrics_prefix(const char *nf);

#endif
