/*
 * ims_sip_priv: internals shared by ims_sip.c (loop, agent, timers, defer), ims_sip_proxy.c
 * (stateful forwarding, UAC requests) and ims_sip_hdr.c (headers, identities).
 * Not for NF code: use ims_sip.h.
 */
#ifndef IMS_SIP_PRIV_H
#define IMS_SIP_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "ims_log.h"
#include "ims_sip.h"

typedef struct {
    char *name;                 /* looked up case-insensitively */
    char *addr;
} ims_sip_host;

typedef struct ims_sip_defer_item {
    struct ims_sip_defer_item *next;
    void (*fn)(void *arg);
    void *arg;
} ims_sip_defer_item;

struct ims_sip_fwd;             /* ims_sip_proxy.c: one forwarded server transaction */
struct ims_sip_uac;             /* ims_sip_proxy.c: one request of our own */
struct ims_sip_fork;            /* ims_sip_fork.c: one forked server transaction */
struct ims_metric;

/* One SIP UDP socket of the agent (ims_sip_udp.c); nta owns the descriptor. */
typedef struct {
    int fd;
    unsigned long inode;        /* the socket's inode: its row in /proc/net/udp{,6} */
    char name[64];              /* "127.0.0.1:5060", "[::1]:5060": logs and the metric label */
    int64_t rcvbuf;             /* receive buffer as the kernel keeps it (twice what was asked) */
    uint64_t drops;             /* kernel drops at the last look */
    uint64_t drops_warned;      /* drops at the last warning */
    time_t warned;              /* time of the last drop warning, 0: none yet */
    struct ims_metric *m_drops, *m_queue, *m_rcvbuf;
} ims_sip_udp_sock;

/* nta opens one UDP socket per address family it listens on. */
#define IMS_SIP_UDP_MAX 4

/* Our socket beside one SIP UDP socket, in its SO_REUSEPORT group, that gets the keep-alives
 * (ims_sip_keepalive.c). */
typedef struct {
    bool open;                  /* set up (fd and wait_index are ours to close) */
    int fd;
    int wait_index;             /* su_root_register() index, 0 when not registered */
    struct tport_s *tport;      /* sofia's UDP transport of that socket: ICMP errors go there */
} ims_sip_keepalive_sock;

struct ims_sip {
    su_home_t home[1];          /* strings and tables that live as long as the agent */
    su_root_t *root;
    nta_agent_t *agent;
    nta_leg_t *leg;             /* default leg: every request outside a transaction */

    ims_sip_request_f on_request;
    void *arg;

    char *listen;
    char *hostname;             /* NULL when not configured */
    unsigned port;
    char *adv_host;             /* sip.advertise host (no brackets), default the listen address */
    unsigned adv_port;          /* sip.advertise port, default our port */
    char *self_uri;             /* sip:<adv_host>:<adv_port> */
    int core_transport;         /* sip.core_transport, IMS_SIP_CORE_* */
    unsigned max_transactions;  /* overload limit (ims_sip_work_add), 0: none */
    unsigned retry_after;       /* seconds */
    ims_log_limit overload_log; /* overload warnings, one per second */

    ims_sip_host *hosts;
    size_t nhosts;

    /* Cross-thread wake-up (ims_sip_defer, ims_sip_stop): an eventfd watched by the root. */
    int efd;
    int wait_index;             /* su_root_register() index, 0 when not registered */
    pthread_mutex_t lock;       /* protects the defer queue */
    ims_sip_defer_item *dq_head, **dq_tail;
    atomic_bool stopping;

    /* Loop-thread state, released by ims_sip_destroy when still pending. */
    struct ims_sip_fwd *fwds;
    uint64_t fwd_next_id;       /* ids of forwards (ims_sip_fwd_current / ims_sip_fwd_resume) */
    uint64_t fwd_current;       /* the forward whose on_response runs, 0: none */
    struct ims_sip_uac *uacs;
    bool (*stray_2xx_drop)(void *arg, const sip_t *sip);   /* ims_sip_set_stray_2xx_filter */
    void *stray_2xx_arg;
    ims_sip_stateless_f stateless_fn;   /* ims_sip_set_stateless_intake (ims_sip_stateless.c) */
    void *stateless_arg;
    uint8_t sl_key[16];         /* MAC key of our stateless branches */
    struct ims_sip_sl_seen *sl_seen;    /* what their retransmissions need (ims_sip_stateless.c) */
    struct ims_sip_fork *forks;
    unsigned timer_c_ms;        /* 0: IMS_SIP_TIMER_C_MS */

    /* TCP connection policy (ims_sip_transport.c): idle reaping and the per-address limit. */
    unsigned tcp_idle_ms;       /* 0: sofia's own idle timer only */
    unsigned tcp_max_per_address;   /* 0: no limit */
    uint64_t *tcp_seen;         /* per fd: peer of the connection seen at the last scan, 0: none */
    int tcp_seen_len;
    ims_log_limit tcp_idle_log, tcp_refused_log;

    /* UDP sockets: buffers, drops, shedding on a full receive queue (ims_sip_udp.c). */
    ims_sip_udp_sock udp[IMS_SIP_UDP_MAX];
    size_t nudp;
    bool udp_meminfo;           /* getsockopt(SO_MEMINFO) works, else /proc/net/udp */
    unsigned udp_shed_percent;  /* sip.udp_shed_percent, 0: no shedding on the queue */
    bool udp_shedding;          /* a queue passed udp_shed_percent and not all are below half */
    uint64_t udp_shed_base;     /* sip_udp_queue_rejected_total when shedding started */
    time_t udp_shed_since, udp_shed_logged;
    ims_sip_keepalive_sock keepalive[IMS_SIP_UDP_MAX];  /* one per udp[i] (ims_sip_keepalive.c) */
    ims_sip_timer *timers;
};

/* ims_sip_proxy.c: drops every pending forward / UAC context (ims_sip_destroy, before the agent
 * goes away). Callbacks are not called. */
void ims_sip_proxy_shutdown(ims_sip *s);

/* ims_sip_fork.c: drops every pending fork (ims_sip_destroy). Callbacks are not called. */
void ims_sip_fork_shutdown(ims_sip *s);

/* ims_sip_proxy.c helpers shared with ims_sip_fork.c. */
void ims_sip_count_active(int64_t delta);
/* Answers irq with status (if it can still be answered) and destroys it. Returns -1. */
int ims_sip_reject(nta_incoming_t *irq, int status, const char *phrase);
/* RFC 3261 §16.6 step 3 (decrement) / default 70. 0 or the status to answer with. */
int ims_sip_max_forwards(msg_t *msg, sip_t *sip, bool decrement);
/* Next hop of msg: `hop`, or the top Route (;lr) / Request-URI, mapped through the hosts table
 * into msg's home. NULL with *status / *phrase set. */
url_string_t *ims_sip_route_of(ims_sip *s, msg_t *msg, const url_t *hop, int *status, const char **phrase);

/* ims_sip_stateless.c: a response to a request we forwarded statelessly (our Via's branch): relayed
 * when its MAC checks, dropped when not; true when it was such a response (msg consumed), false
 * when it is not one of ours (msg untouched). */
bool ims_sip_stateless_response(ims_sip *s, msg_t *msg, sip_t *sip);
/* ims_sip_stateless.c: frees what ims_sip_set_stateless_intake keeps (ims_sip_destroy). */
void ims_sip_stateless_shutdown(ims_sip *s);

/* ims_sip_proxy.c: stray responses (no client transaction left): 2xx to INVITE (retransmissions,
 * forks, after the transaction ended) are forwarded statelessly (RFC 3261 §16.7 / §18.2.2),
 * anything else is dropped. */
int ims_sip_stray_response(ims_sip *s, msg_t *msg, sip_t *sip);

/* CANCEL of a client INVITE transaction (RFC 3261 §9.1), built and sent here instead of by
 * nta_outgoing_cancel(): nta "completes" the INVITE transaction when it sends the CANCEL, and on
 * a reliable transport (sip.core_transport tcp) that terminates it at once (nta.c
 * outgoing_complete), so the 487 that follows matches no transaction and is never relayed
 * upstream. Returns 1 when sent (or nothing is left to cancel: a final response came), 0 when no
 * provisional response has come yet (§9.1: not before one; call again on the first one), -1 on
 * error (the caller may fall back to nta_outgoing_cancel). */
int ims_sip_cancel(ims_sip *s, nta_outgoing_t *orq);

/* ims_sip_transport.c: checks of a new request before any NF logic (invalid Max-Forwards ->
 * 400, body shorter than Content-Length -> discarded). 0: go on; > 0: a status for the default
 * leg to return (ACK); -1: dealt with, irq destroyed. */
int ims_sip_check_request(ims_sip *s, nta_incoming_t *irq, const sip_t *sip);
/* ims_sip_transport.c: applies sip.tcp_idle_timeout and sip.tcp_max_per_address (the once a
 * second connection watch). 0 / -1 + err. */
int ims_sip_transport_setup(ims_sip *s, const ims_sip_cfg *cfg, char *err, size_t errlen);
/* ims_sip_transport.c: frees what ims_sip_transport_setup allocated (ims_sip_destroy). */
void ims_sip_transport_shutdown(ims_sip *s);

/* ims_sip_udp.c: applies sip.udp_rcvbuf / sip.udp_sndbuf to the agent's UDP sockets and starts
 * the look at their queues and drops. 0 / -1 + err. */
int ims_sip_udp_setup(ims_sip *s, const ims_sip_cfg *cfg, char *err, size_t errlen);
/* ims_sip_udp.c: true while new requests are to be answered 503 (a UDP receive queue is full). */
bool ims_sip_udp_shedding(ims_sip *s);
/* ims_sip_udp.c: counts one request answered 503 because of ims_sip_udp_shedding. */
void ims_sip_udp_count_rejected(void);

/* ims_sip_keepalive.c: a socket of ours beside each SIP UDP socket that answers CRLFCRLF pings
 * and STUN Binding requests before sofia-sip sees them (after ims_sip_udp_setup found them). */
void ims_sip_keepalive_setup(ims_sip *s);
void ims_sip_keepalive_shutdown(ims_sip *s);

/* What a datagram steered to the keep-alive socket is, and its answer (the pure part of
 * ims_sip_keepalive.c, for unit tests): CRLFCRLF -> CRLF; a STUN Binding request (RFC 5389)
 * from `from` -> a Binding success response with XOR-MAPPED-ADDRESS; anything else -> no answer.
 * *answer_len is 0 when nothing is to be sent. */
typedef enum { IMS_KEEPALIVE_OTHER, IMS_KEEPALIVE_CRLF, IMS_KEEPALIVE_STUN } ims_keepalive_kind;
struct sockaddr;
ims_keepalive_kind ims_sip_keepalive_answer(const uint8_t *in, size_t n, const struct sockaddr *from,
                                            uint8_t *out, size_t outlen, size_t *answer_len);

/* One row of /proc/net/udp or /proc/net/udp6 (proc(5)). */
typedef struct {
    unsigned local_port;
    bool v6;                    /* 32 hex digits of address */
    unsigned long inode;
    uint64_t tx_queue, rx_queue;    /* bytes (hex in the file) */
    uint64_t drops;
} ims_udp_proc_line;
/* Parses one row; the header line and anything malformed: -1. 0 on success. */
int ims_udp_parse_proc_line(const char *line, ims_udp_proc_line *out);

/* ims_sip_hosts.c: fills the host table from sip.hosts ("name=address"). 0 / -1 + err. */
int ims_sip_parse_hosts(ims_sip *s, const ims_cfg_strlist *l, char *err, size_t errlen);
/* ims_sip_hosts.c: sip.advertise ("host" or "host:port") into the advertised host/port. 0 / -1 + err. */
int ims_sip_parse_advertise(ims_sip *s, const char *adv, char *err, size_t errlen);
/* ims_sip_hosts.c: a URI host equals one of our names/addresses (case-insensitive, [v6] brackets). */
bool ims_sip_host_eq(const char *url_host, const char *ours);

/* Bound to INVITEs the NF holds: answers a CANCEL with 487 (ims_sip.c). */
int ims_sip_held_irq_event(nta_incoming_magic_t *magic, nta_incoming_t *irq, sip_t const *sip);

#endif
