/*
 * ims_sip: the SIP side of a CSCF over sofia-sip's nta (transaction-stateful), one su_root loop
 * per process (DESIGN.md "Threads and loops").
 *
 * Everything here runs on the loop thread except ims_sip_stop() and ims_sip_defer(), which any
 * thread may call (freeDiameter callbacks hand their results to the loop with ims_sip_defer).
 *
 * References: RFC 3261 §16 (proxy behaviour: Max-Forwards, Via, Route, response relay), §17
 * (transactions, handled by nta), RFC 3327 (Path), RFC 3608 (Service-Route), RFC 7315
 * (P-headers: P-Associated-URI, P-Charging-Vector, P-Visited-Network-ID, P-Asserted-Identity).
 */
#ifndef IMS_SIP_H
#define IMS_SIP_H

#include <stdbool.h>
#include <stddef.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_wait.h>

#include "ims_config.h"

/* The "sip:" section of every CSCF's YAML. */
typedef struct {
    char *listen;              /* IP address to bind (UDP and TCP); default 127.0.0.1 */
    long port;                 /* default 5060 */
    char *hostname;            /* our SIP host name, used in Path / Record-Route / Service-Route
                                  (e.g. pcscf.ims.lab); default: the listen address */
    ims_cfg_strlist hosts;     /* static name table, "name=address" items, e.g.
                                  "scscf.ims.lab=127.0.0.1": used before DNS when forwarding */
} ims_sip_cfg;

extern const ims_cfg_field ims_sip_cfg_fields[];

typedef struct ims_sip ims_sip;

/* A new request that is not part of an existing transaction (nta default leg with no dialog).
 * Return 0 when handled (answered now or later through irq), or a SIP status code (400..699) for
 * nta to answer with. */
typedef int (*ims_sip_request_f)(void *arg, nta_incoming_t *irq, const sip_t *sip);

/* Creates the loop and the agent bound to sip:listen:port (UDP and TCP). NULL + err on failure
 * (address in use, bad address). */
ims_sip *ims_sip_create(const ims_sip_cfg *cfg, ims_sip_request_f on_request, void *arg,
                        char *err, size_t errlen);
void ims_sip_destroy(ims_sip *s);

su_root_t *ims_sip_root(ims_sip *s);
nta_agent_t *ims_sip_agent(ims_sip *s);
su_home_t *ims_sip_home(ims_sip *s);
/* sip:<hostname>:<port> of this NF, as a string ("sip:pcscf.ims.lab:5060"). */
const char *ims_sip_self_uri(const ims_sip *s);

/* Runs the loop until ims_sip_stop(). */
void ims_sip_run(ims_sip *s);
/* Thread-safe; makes ims_sip_run return. */
void ims_sip_stop(ims_sip *s);
/* Thread-safe: fn(arg) will run on the loop thread (FIFO). 0 / -1. */
int ims_sip_defer(ims_sip *s, void (*fn)(void *arg), void *arg);

/* One-shot timers on the loop thread. ims_sip_timer_cancel is safe with NULL and must not be
 * called once fn has run (the timer is freed when it fires). */
typedef struct ims_sip_timer ims_sip_timer;
ims_sip_timer *ims_sip_timer_start(ims_sip *s, unsigned ms, void (*fn)(void *arg), void *arg);
void ims_sip_timer_cancel(ims_sip_timer *t);

/* Where to send a request for `target`: a copy (in home) with the host mapped through the static
 * hosts table (port, transport and other parameters kept). NULL on bad input. */
url_t *ims_sip_next_hop(ims_sip *s, su_home_t *home, const url_t *target);

/* Stateful forwarding of a request (RFC 3261 §16.6).
 * `msg` is the request to send (usually msg_copy of nta_incoming_getrequest(irq), already edited:
 * Route popped, Path/Record-Route added...); ownership passes to ims_sip_forward in every case.
 * Max-Forwards is decremented here (483 Too Many Hops upstream when it would reach 0).
 * `next_hop` is where to send it (nta route URL); the Request-URI is not changed.
 * For every response (1xx..6xx) `on_response` (may be NULL) is called first and may edit the
 * response (msg/sip) or return a status >= 300 to replace it with a locally generated response
 * of that code; then it is relayed upstream with our Via removed. After the final response the
 * callback is not called again. If nothing answers, nta's timer produces 408 and that is relayed.
 * A CANCEL from upstream for irq is forwarded as CANCEL downstream.
 * Returns 0, or -1 (then an error response was already sent on irq). */
typedef int (*ims_sip_response_f)(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip);
int ims_sip_forward(ims_sip *s, nta_incoming_t *irq, msg_t *msg, const url_t *next_hop,
                    ims_sip_response_f on_response, void *arg);

/* True when the URI names this NF (hostname or listen address, and our port; a missing port
 * means 5060). */
bool ims_sip_is_self(const ims_sip *s, const url_t *u);

/* Proxy routing of RFC 3261 §16.4-§16.6 for requests that need no NF logic (in-dialog requests,
 * responses to our Record-Route): removes the top Route when it is us, then forwards to the next
 * Route (loose routing) or, when none is left, to the Request-URI. Same ownership and callback
 * rules as ims_sip_forward. */
int ims_sip_proxy_onward(ims_sip *s, nta_incoming_t *irq, msg_t *msg, ims_sip_response_f on_response,
                         void *arg);

/* Sends a new request statelessly-built but transaction-stateful as UAC (NOTIFY, third-party
 * REGISTER, ...): `msg` must be a complete request without Via (nta adds it); responses go to
 * on_response(arg, status, sip) — final only — and then the transaction is destroyed. 0 / -1. */
typedef void (*ims_sip_uac_f)(void *arg, int status, const sip_t *sip);
int ims_sip_send_request(ims_sip *s, msg_t *msg, const url_t *next_hop, ims_sip_uac_f on_response,
                         void *arg);

/* ---------- headers ---------- */

/* Value of the first header `name` (known or unknown to sofia-sip, case-insensitive), copied into
 * buf. Returns buf, or NULL when absent (or longer than buf). */
const char *ims_sip_header(const sip_t *sip, const char *name, char *buf, size_t len);
/* Appends "name: value" to msg (parsed by sofia-sip if it knows the header). 0 / -1. */
int ims_sip_add_header(msg_t *msg, sip_t *sip, const char *name, const char *value);
/* Prepends (adds first) a header, for Path / Record-Route / Via-like stacking. 0 / -1. */
int ims_sip_prepend_header(msg_t *msg, sip_t *sip, const char *name, const char *value);
/* Removes every header `name`. Returns how many. */
int ims_sip_remove_headers(msg_t *msg, sip_t *sip, const char *name);

/* ---------- IMS identities (TS 23.003 §13, TS 24.229 §5.1.1.2) ---------- */

/* Public identity of a REGISTER: the To URI without parameters/headers ("sip:alice@ims.lab",
 * "tel:+155500"). 0 / -1. */
int ims_sip_impu_of(const sip_t *sip, char *buf, size_t len);
/* Private identity of a REGISTER: the username of the Authorization header if present, else the
 * IMPU without scheme ("alice@ims.lab"), as TS 24.229 §5.1.1.2.1 lets the UE omit it. 0 / -1. */
int ims_sip_impi_of(const sip_t *sip, char *buf, size_t len);
/* Normalises a URI string for comparison (lower-case scheme and host, no params). */
int ims_sip_normalise_uri(const char *in, char *out, size_t len);
/* A new unique ICID (P-Charging-Vector icid-value). */
void ims_sip_new_icid(char *buf, size_t len);

#endif
