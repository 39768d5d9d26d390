/*
 * ims_sip: the SIP side of a CSCF over sofia-sip's nta (transaction-stateful), one su_root loop
 * per process (docs/design.md "Threads and loops").
 *
 * Everything here runs on the loop thread except ims_sip_stop() and ims_sip_defer(), which any
 * thread may call (freeDiameter callbacks hand their results to the loop with ims_sip_defer).
 * The loop belongs to the thread that creates it: call ims_sip_create, ims_sip_run and
 * ims_sip_destroy on the same thread.
 *
 * Header classes: sofia-sip 1.12.11's default message class does not parse the P-headers
 * (P-Asserted-Identity, P-Associated-URI, P-Charging-Vector, P-Visited-Network-ID ...): they are
 * sip_unknown_t, and sip_p_asserted_identity(sip) returns NULL. Use ims_sip_header() & co by
 * name for them. Path (sip->sip_path), Service-Route (sip_service_route), Route, Record-Route,
 * Authorization, WWW-Authenticate ... are typed.
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
    char *hostname;            /* a host name peers use for this NF (e.g. pcscf.ims.lab, through
                                  their sip.hosts or DNS): recognised as ours in Request-URI and
                                  Route; never written into headers (see advertise) */
    char *advertise;           /* host[:port] written into Path / Record-Route / Service-Route
                                  and our own requests' URIs: what the peers (UEs for the
                                  P-CSCF) can reach; default: the listen address and port */
    ims_cfg_strlist hosts;     /* static name table, "name=address" items, e.g.
                                  "scscf.ims.lab=127.0.0.1": used before DNS when forwarding */
    long max_transactions;     /* overload limit: work in progress (forwards, our own requests,
                                  Cx requests) at which new requests get 503; 0: no limit */
    long retry_after;          /* seconds, in the Retry-After of that 503 */
    long tcp_idle_timeout;     /* seconds a TCP connection may carry nothing before it is closed
                                  (no byte either way); <= 0: sofia's own default (30 min) */
    long tcp_max_per_address;  /* TCP connections accepted from one IP address; more are closed
                                  at once; <= 0: no limit */
    long udp_rcvbuf;           /* bytes asked for each SIP UDP socket's receive buffer (the kernel
                                  keeps twice that); <= 0: the kernel default */
    long udp_sndbuf;           /* same for the send buffer */
    long udp_shed_percent;     /* a UDP receive queue this full (% of its buffer) makes new
                                  requests get 503 until all are below half of it; <= 0: never */
    int core_transport;        /* IMS_SIP_CORE_*: how the other network elements reach us and we
                                  them (ims_sip_core_param); UEs keep their own transport */
} ims_sip_cfg;

enum { IMS_SIP_CORE_UDP = 0, IMS_SIP_CORE_TCP = 1 };

extern const ims_cfg_field ims_sip_cfg_fields[];

typedef struct ims_sip ims_sip;

/* A new request that is not part of an existing transaction (nta default leg with no dialog).
 * Return 0 when handled (answered now or later through irq; the NF then owns irq until it gives
 * it to ims_sip_forward/ims_sip_proxy_onward or answers it and calls nta_incoming_destroy), or a
 * SIP status code (400..699) for nta to answer with (nta then destroys irq).
 * ACK (for a 2xx: a transaction of its own) arrives here too: forward it (ims_sip_proxy_onward)
 * or return any non-zero value to drop it (nothing is sent for an ACK).
 * A CANCEL never arrives here: nta matches it to its INVITE (see ims_sip_forward), and ims_sip
 * answers 481 when there is none. An INVITE irq comes with a no-op nta_incoming_bind callback
 * already set (so the ACK of a non-2xx final is absorbed by nta, not passed as a new request);
 * while the NF holds an INVITE irq, a CANCEL is answered by nta (200, and 487 on the INVITE). */
typedef int (*ims_sip_request_f)(void *arg, nta_incoming_t *irq, const sip_t *sip);

/* Creates the loop and the agent bound to sip:listen:port (UDP and TCP). NULL + err on failure
 * (address in use, bad address, bad hosts item). cfg is copied: it may be freed afterwards. */
ims_sip *ims_sip_create(const ims_sip_cfg *cfg, ims_sip_request_f on_request, void *arg,
                        char *err, size_t errlen);
void ims_sip_destroy(ims_sip *s);

su_root_t *ims_sip_root(ims_sip *s);
nta_agent_t *ims_sip_agent(ims_sip *s);
su_home_t *ims_sip_home(ims_sip *s);
/* sip:<advertised host>:<port> of this NF, as a string ("sip:127.0.0.1:5060"): the URI it puts
 * into Path, Record-Route, Service-Route and its own requests. */
const char *ims_sip_self_uri(const ims_sip *s);
/* The URI parameter for sip.core_transport: ";transport=tcp" (tcp) or "" (udp). It goes into the
 * URIs this NF hands to other network elements of the core (Path, Service-Route, the core-facing
 * Record-Route, the Contact of its own subscriptions), never into what a UE routes by. Why TCP by
 * default: on a reliable transport nta ends a completed transaction at once instead of keeping it,
 * with both messages, for Timer J / Timer D (64*T1 = 32 s, RFC 3261 §17.1.1.2, §17.2.2), and TCP's
 * flow control replaces silent datagram drops between the CSCFs (issue 16). */
const char *ims_sip_core_param(const ims_sip *s);
/* A copy (in home) of `target`, a core element's URI from the configuration or the HSS, with
 * ";transport=<core>" added when it names no transport and the core transport is tcp. NULL on
 * bad input or out of memory. */
url_t *ims_sip_core_hop(const ims_sip *s, su_home_t *home, const url_t *target);

/* Overload control (RFC 3261 §21.5.4, §20.33; the simple local form of RFC 7339's idea):
 * the work a CSCF has in progress — forwarded transactions, its own client transactions and
 * whatever the NF counts with ims_sip_work_add (Cx requests waiting for the HSS) — is the
 * process-wide figure below. When it reaches sip.max_transactions, new out-of-dialog requests
 * (no To tag; not ACK, not CANCEL) are answered 503 Service Unavailable with Retry-After at
 * once, before the NF spends anything on them, so that the core degrades into quick refusals
 * instead of timeouts, and in-dialog requests (BYE, re-INVITE, ACK) still get through to end
 * what is already established. Exported as sip_overload_rejected_total. */
void ims_sip_work_add(int64_t delta);

/* Runs the loop until ims_sip_stop(). */
void ims_sip_run(ims_sip *s);
/* Thread-safe and async-signal-safe (an atomic flag and an eventfd write): makes ims_sip_run
 * return. A NF may call it from its SIGTERM handler. */
void ims_sip_stop(ims_sip *s);
/* Thread-safe: fn(arg) will run on the loop thread (FIFO). 0 / -1.
 * Functions still queued when the loop stops run inside ims_sip_destroy (so their argument is not
 * leaked); producers must stop deferring before ims_sip_destroy. */
int ims_sip_defer(ims_sip *s, void (*fn)(void *arg), void *arg);

/* One-shot timers on the loop thread. ims_sip_timer_cancel is safe with NULL and must not be
 * called once fn has run (the timer is freed when it fires, before fn runs). Timers still pending
 * at ims_sip_destroy are freed without calling fn. */
typedef struct ims_sip_timer ims_sip_timer;
ims_sip_timer *ims_sip_timer_start(ims_sip *s, unsigned ms, void (*fn)(void *arg), void *arg);
void ims_sip_timer_cancel(ims_sip_timer *t);

/* The address sip.hosts gives for `name` (case-insensitive), or NULL when the table has none. */
const char *ims_sip_host_lookup(const ims_sip *s, const char *name);
/* sip.listen as configured (an IP literal; may be a wildcard such as 0.0.0.0). */
const char *ims_sip_listen_address(const ims_sip *s);

/* Where to send a request for `target`: a copy (in home) with the host mapped through the static
 * hosts table (port, transport and other parameters kept). NULL on bad input.
 * ims_sip_forward / ims_sip_proxy_onward / ims_sip_send_request apply the table themselves. */
url_t *ims_sip_next_hop(ims_sip *s, su_home_t *home, const url_t *target);

/* Stateful forwarding of a request (RFC 3261 §16.6).
 * `msg` is the request to send (usually ims_sip_request_copy(irq), already edited: Route popped,
 * Path/Record-Route added...); ownership of msg AND irq passes to ims_sip_forward in every case
 * (it destroys irq once the final response is sent; do not use irq after the final response).
 * Max-Forwards: 70 is added when absent; 0 gets 483 Too Many Hops upstream; else decremented.
 * `next_hop` is where to send it (nta route URL, mapped through the hosts table; ";transport=tcp"
 * honoured); the Request-URI is not changed. NULL: the top Route if it has ;lr, else the
 * Request-URI (a Route without ;lr gets 400). Not sip:/sips: -> 416.
 * For every response (101..6xx; the downstream 100 is hop-by-hop and not passed) `on_response`
 * (may be NULL) is called first and may edit the response (msg/sip) or return a status >= 300 to
 * replace it with a locally generated response of that code (a replaced provisional response to
 * an INVITE also CANCELs downstream); then it is relayed upstream with our Via removed.
 * After the final response the callback is not called again: more 2xx to an INVITE (forks,
 * retransmissions) are relayed statelessly without it. Other late responses (after the client
 * transaction was destroyed, by us or by the NF's own nta_outgoing_destroy) are dropped. If nothing answers, nta produces 408
 * (timeout) or 503 (transport error, e.g. TCP connection refused) and that goes through
 * on_response and upstream like any response (nta does not send 408 upstream for non-INVITE,
 * RFC 4320). For INVITE we send 100 Trying upstream at once (§16.2).
 * A CANCEL from upstream for irq: nta answers it 200 and we CANCEL downstream; the INVITE's
 * final response is the callee's (its 487, or a 2xx that crossed the CANCEL: RFC 3261 §16.10;
 * nta runs with NTATAG_CANCEL_487(0), ims_sip.c).
 * An irq already answered (e.g. CANCELled while the NF waited for Diameter) is not forwarded.
 * ACK: sent and forgotten (no client transaction to wait on). Responses never arrive inside
 * this call; on_response runs later on the loop.
 * Returns 0, or -1 (then an error response was already sent on irq, if it could be). */
typedef int (*ims_sip_response_f)(void *arg, nta_incoming_t *irq, msg_t *msg, sip_t *sip);
/* on_response of ims_sip_forward may also return IMS_SIP_RESPONSE_HOLD: it keeps msg (our Via
 * still on top) to finish it later, e.g. after asking rtpengine for a rewritten SDP. Nothing is
 * relayed meanwhile and, for a final response, the forward (irq and all) stays open until the NF
 * hands the response back with ims_sip_fwd_resume. The id of the forward is ims_sip_fwd_current()
 * inside on_response. Not for ims_sip_fork. */
#define IMS_SIP_RESPONSE_HOLD 1
uint64_t ims_sip_fwd_current(const ims_sip *s);
/* Finishes a held response of forward `id`: rc 0 relays msg (the NF may have edited it), rc
 * 300..699 answers upstream with that status instead (msg may then be NULL), as if on_response had
 * returned rc. msg is consumed. 0, or -1 when the forward is gone (ims_sip_destroy) or id unknown. */
int ims_sip_fwd_resume(ims_sip *s, uint64_t id, msg_t *msg, int rc);
/* More 2xx to a forwarded INVITE (retransmissions, forks) are relayed statelessly, without
 * on_response. drop(arg, sip) (NULL: none), asked first, may keep one back (true): the P-CSCF
 * does while it holds that call's first 2xx for rtpengine, so that the raw retransmission does not
 * overtake the rewritten original. Loop thread. */
void ims_sip_set_stray_2xx_filter(ims_sip *s, bool (*drop)(void *arg, const sip_t *sip), void *arg);
/* A 2xx to an INVITE that cannot go upstream (on_response or ims_sip_fwd_resume replaced it with
 * an error, or the upstream transaction is already answered) is ACKed and its dialog ended with a
 * BYE (ims_sip_proxy.c end_unrelayed_2xx). */
int ims_sip_forward(ims_sip *s, nta_incoming_t *irq, msg_t *msg, const url_t *next_hop,
                    ims_sip_response_f on_response, void *arg);

/* Like ims_sip_forward, but the request leaves from the transports added with `ident`
 * (ims_sip_add_port; NULL: as ims_sip_forward): the P-CSCF sends requests to a sec-agree UE from
 * its protected client port (TS 33.203 §7.1). Over UDP the source port is that port; over TCP
 * sofia-sip 1.12 connects from an ephemeral port whatever the ident (tport_base_connect binds
 * port 0), so only UDP gets the fixed source port. A 2xx ACK goes the same way. */
int ims_sip_forward_from(ims_sip *s, nta_incoming_t *irq, msg_t *msg, const url_t *next_hop, const char *ident,
                         ims_sip_response_f on_response, void *arg);

/* ---------- stateless forwarding (ims_sip_stateless.c) ---------- */

/* Asked first for every request that matches no transaction: take(arg, msg, sip) returns true
 * when it took msg (forwarded with ims_sip_forward_stateless, answered with
 * ims_sip_reply_stateless, or destroyed), false to have it handled statefully (on_request, as
 * without a hook). Runs while the request is being delivered (ims_sip_msg_ident works). Drops the
 * default leg. 0 / -1 (no random key). Loop thread, before traffic. */
typedef bool (*ims_sip_stateless_f)(void *arg, msg_t *msg, sip_t *sip);
int ims_sip_set_stateless_intake(ims_sip *s, ims_sip_stateless_f take, void *arg);
/* Sends msg (taken, edited by the NF) to its top Route or Request-URI without a transaction, with
 * a Via whose branch lets its responses be relayed back from the transports named reply_ident
 * (where the request came in, ims_sip_msg_ident). Answers it statelessly itself when it cannot
 * (483, no route, ...). Consumes msg. 0 / -1. */
int ims_sip_forward_stateless(ims_sip *s, msg_t *msg, const char *reply_ident);
/* Answers request msg statelessly (RFC 3261 §8.2.6 / §16.11). Consumes msg. 0 / -1. */
int ims_sip_reply_stateless(ims_sip *s, msg_t *msg, int status, const char *phrase);

/* ---------- extra listening ports (ims_sip_transport.c) ---------- */

/* The ident of the transports of sip.listen:sip.port. */
#define IMS_SIP_IDENT_MAIN "main"
/* Listens on one more port of the listen address, UDP and TCP, named `ident` (a short token,
 * not IMS_SIP_IDENT_MAIN); requests arriving there come to the same on_request. 0 / -1 + err. */
int ims_sip_add_port(ims_sip *s, unsigned port, const char *ident, char *err, size_t errlen);
/* The port of the transports named ident, as text ("5100"). 0 / -1 (no such transports). */
int ims_sip_ident_port(ims_sip *s, const char *ident, char *out, size_t len);
/* The ident of the transport a request arrived on (IMS_SIP_IDENT_MAIN, or one given to
 * ims_sip_add_port), copied into out. 0 / -1. */
int ims_sip_incoming_ident(ims_sip *s, nta_incoming_t *irq, char *out, size_t len);
/* The same for a request being delivered right now without a transaction (the stateless hook). */
int ims_sip_msg_ident(ims_sip *s, msg_t *msg, char *out, size_t len);

/* The request of irq as a message the NF may edit and forward: a copy that shares the received
 * buffers (msg_copy of nta_incoming_getrequest, the extra reference released). NULL on error.
 * ims_sip_forward replaces it by a copy with its own memory when the client transaction would
 * keep the received message alive longer than nta keeps irq (ims_sip_proxy.c). */
msg_t *ims_sip_request_copy(nta_incoming_t *irq);

/* True when the URI names this NF (sip:/sips:, hostname or listen address, and our port; a
 * missing port means 5060). */
bool ims_sip_is_self(const ims_sip *s, const url_t *u);

/* Proxy routing of RFC 3261 §16.4-§16.6 for requests that need no NF logic (in-dialog requests,
 * responses to our Record-Route): when the Request-URI is us (previous hop was a strict router)
 * the last Route becomes the Request-URI; removes the top Route when it is us, then forwards to
 * the next Route (loose routing, ;lr required: else 400) or, when none is left, to the
 * Request-URI. Same ownership and callback rules as ims_sip_forward. */
int ims_sip_proxy_onward(ims_sip *s, nta_incoming_t *irq, msg_t *msg, ims_sip_response_f on_response,
                         void *arg);

/* Sends a new request of our own, transaction-stateful as UAC (NOTIFY, third-party REGISTER,
 * ...): `msg` (e.g. nta_msg_create(ims_sip_agent(s), 0) + headers) must carry request line, From
 * (with tag), To, Call-ID and CSeq, and no Via (nta adds it); Max-Forwards 70 is added when
 * absent. msg is consumed in every case. next_hop as in ims_sip_forward (NULL: top Route or
 * Request-URI). The final response goes to on_response(arg, status, sip) (may be NULL; sip is
 * nta's 408/503 for timeout / transport error) — it is never called from inside this function —
 * and then the transaction is destroyed. An ACK is sent without callback. Pending requests at ims_sip_destroy are dropped without
 * a callback. 0 / -1. */
typedef void (*ims_sip_uac_f)(void *arg, int status, const sip_t *sip);
int ims_sip_send_request(ims_sip *s, msg_t *msg, const url_t *next_hop, ims_sip_uac_f on_response,
                         void *arg);

/* Parallel forking (RFC 3261 §16.5 - §16.7, §16.8 Timer C, §16.10 CANCEL).
 * One server transaction (irq) and one client transaction per branch. Each branch is a copy of
 * `msg` (checked for Max-Forwards once, like ims_sip_forward) with its Request-URI set to
 * `ruri` (e.g. a registered contact) and its Route headers replaced by `route` ("<a>, <b>", e.g.
 * the Path of that contact; NULL/"" = no Route): it goes to the top Route, else to the
 * Request-URI (hosts table applied). Ownership of msg and irq passes to ims_sip_fork in every
 * case, as for ims_sip_forward.
 * Responses (§16.7):
 *  - provisional responses (101-199) of any branch are relayed upstream (on_response first);
 *  - every 2xx is relayed (on_response first; its return value is ignored), the first one
 *    through irq, later ones (other branches of a forked INVITE) statelessly; the first 2xx
 *    CANCELs every branch still pending;
 *  - a 6xx CANCELs the other pending branches;
 *  - other finals are kept; when no branch is pending any more, the best one (6xx if any, else
 *    the lowest class, 401/407/415/420/484 first among 4xx; 503 becomes 500, §16.7 step 6)
 *    goes through on_response and upstream.
 *    There on_response may return a status >= 300 to answer with that instead, or
 *    IMS_SIP_FORK_RETAKE: nothing is sent and irq goes back to the NF (which must answer it or
 *    forward it again) — for "try the next target" logic such as DefaultHandling of an AS.
 * Timer C (§16.8): an INVITE branch with no final response timer_c ms after its last provisional
 * response (or its start) is CANCELled and counts as 408. `no_answer_ms` (> 0): when no branch
 * has sent anything but 100 by then, every branch is CANCELled and the final is 408 (the NF's
 * "AS does not answer" timer). A CANCEL from upstream CANCELs every pending branch (nta answers
 * 487 upstream). A locally generated final (408 of Timer C / no answer, or the status of a
 * branch that could not be sent) reaches on_response with msg and sip NULL. When no branch can
 * be sent at all, that goes through on_response inside this call. Returns 0, or -1 (bad arguments, Max-Forwards: an error response
 * was sent on irq). */
typedef struct {
    const char *ruri;           /* Request-URI of the branch (sip:/sips: URI) */
    const char *route;          /* Route header values for the branch, or NULL */
} ims_sip_branch;

#define IMS_SIP_FORK_RETAKE 1

typedef struct {
    ims_sip_response_f on_response;     /* may be NULL */
    void *arg;
    unsigned no_answer_ms;              /* 0: none */
    /* no_answer_ms passed: return false to keep waiting after all (NULL: give up). */
    bool (*give_up)(void *arg);
    /* The fork is over (every branch final, or irq retaken, or ims_sip_destroy): release arg.
     * Called once whenever ims_sip_fork returned 0. May be NULL. */
    void (*on_end)(void *arg);
} ims_sip_fork_opts;

int ims_sip_fork(ims_sip *s, nta_incoming_t *irq, msg_t *msg, const ims_sip_branch *branches, size_t n,
                 const ims_sip_fork_opts *opts);

/* Default Timer C of forked INVITE branches (RFC 3261 §16.6 step 11: > 3 min); shorter for
 * tests. 0 restores the default. */
#define IMS_SIP_TIMER_C_MS 180000u
void ims_sip_set_timer_c(ims_sip *s, unsigned ms);

/* Lowers nta's timers (T1, and T1x64 = Timer B/F: how long an unanswered request waits before
 * 408), e.g. for tests; 0 keeps a value. Defaults: 500 ms, 32 s. 0 / -1. */
int ims_sip_set_timers(ims_sip *s, unsigned t1_ms, unsigned t1x64_ms);

/* ---------- headers ---------- */

/* Value of the first header `name` (known or unknown to sofia-sip, case-insensitive; compact
 * forms like "v" work for known headers), copied into buf. For a typed header it is the first
 * value as sofia prints it (a line "Path: <a>, <b>" is two Path values: "<a>"). Returns buf, or
 * NULL when absent (or longer than buf). */
const char *ims_sip_header(const sip_t *sip, const char *name, char *buf, size_t len);
/* Appends "name: value" to msg (parsed by sofia-sip if it knows the header: -1 if the value does
 * not parse). name must be a token, value one line (no CR/LF). 0 / -1. */
int ims_sip_add_header(msg_t *msg, sip_t *sip, const char *name, const char *value);
/* Prepends (adds before every header of the same name) a header, for Path / Record-Route
 * stacking. Same rules as ims_sip_add_header. 0 / -1. */
int ims_sip_prepend_header(msg_t *msg, sip_t *sip, const char *name, const char *value);
/* Removes every header `name`. Returns how many. */
int ims_sip_remove_headers(msg_t *msg, sip_t *sip, const char *name);
/* RFC 3261 §22.3 / §22.4: removes every Authorization and Proxy-Authorization header whose realm
 * parameter equals `realm` (case-insensitive, quotes removed). Credentials for other realms
 * stay: a proxy must not remove those. Returns how many headers were removed (0 when none,
 * also for NULL arguments). */
int ims_sip_remove_credentials(msg_t *msg, sip_t *sip, const char *realm);

/* n lower-case hex characters and a NUL into out (n + 1 bytes) from the kernel's random source:
 * tags, Call-IDs and MIME boundaries of requests we originate (RFC 3261 §19.3: tags and Call-IDs
 * must be globally unique and, for tags, cryptographically random). */
void ims_sip_random_token(char *out, size_t n);

/* ---------- IMS identities (TS 23.003 §13, TS 24.229 §5.1.1.2) ---------- */

/* Public identity of a REGISTER: the To URI without parameters/headers ("sip:alice@ims.lab",
 * "tel:+155500"; sip:, sips: and tel: only; a port is kept). 0 / -1. */
int ims_sip_impu_of(const sip_t *sip, char *buf, size_t len);
/* Private identity of a REGISTER: the username of the (first) Authorization header if present,
 * unquoted, else the IMPU without scheme ("alice@ims.lab"), as TS 24.229 §5.1.1.2.1 lets the UE
 * omit it. A tel: IMPU without Authorization: -1. 0 / -1. */
int ims_sip_impi_of(const sip_t *sip, char *buf, size_t len);
/* Normalises a URI string for comparison (lower-case scheme and host, no params, no headers;
 * user part and port kept). 0 / -1 (unparsable, or longer than out). */
int ims_sip_normalise_uri(const char *in, char *out, size_t len);
/* A new unique ICID (P-Charging-Vector icid-value): 28 hex digits (time, per-process random,
 * pid, counter); give at least 29 bytes. */
void ims_sip_new_icid(char *buf, size_t len);

#endif
