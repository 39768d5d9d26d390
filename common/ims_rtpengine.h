/*
 * ims_rtpengine: an asynchronous client of rtpengine's ng control protocol, on a CSCF's su_root loop.
 *
 * References:
 *   rtpengine "ng Control Protocol" (rtpengine 10.5 docs/ng_control_protocol.md): one UDP datagram
 *     "<cookie> <bencoded dict>" per request, the answer echoes the cookie; a repeated cookie is
 *     answered from rtpengine's cookie cache (so a retransmission never runs a command twice).
 *     Commands used: ping, offer, answer, delete, query. Answer "result": "ok" / "pong" /
 *     "error" (+ "error-reason") / "load limit"; offer and answer return the rewritten "sdp".
 *   ims_bencode.h for the codec.
 *
 * Model (docs/design.md "Media anchoring"): never block the loop. ims_rtpe_send() encodes, sends
 * the datagram and returns a handle at once; the answer, or the end of all attempts, comes back
 * through the callback on the loop thread, never from inside ims_rtpe_send().
 *
 * Choosing an instance: rendezvous hashing of the Call-ID over the configured instances gives each
 * call a stable order of instances (the same on every P-CSCF and after a restart; an instance that
 * goes away moves only its own calls). A request goes to the first instance of that order that is
 * not marked dead; an instance that does not answer within timeout_ms is asked again with the same
 * cookie `retries` times, then marked dead for dead_s seconds and the request fails over to the
 * next live one. Once an instance answered for a Call-ID, later requests of that Call-ID go to it
 * first (remembered here, forgotten on delete), because the call's media state lives there.
 * Worst case before the callback: (live instances) x (retries + 1) x timeout_ms. With no live
 * instance at all the callback reports IMS_RTPE_NO_ANSWER at once (on the next loop round).
 * A dead instance comes back when its dead_s expire (the next request tries it) or when a health
 * ping (ping_s > 0) gets a pong.
 *
 * Trust: answers are read from a UDP socket connected to the instance (the kernel drops datagrams
 * from any other source); an answer is used only when its cookie matches a pending request;
 * anything else (garbage, oversized, unknown cookie, not a dict) is logged and dropped.
 *
 * Not thread-safe: everything runs on the loop thread of the su_root given to ims_rtpe_create.
 */
#ifndef IMS_RTPENGINE_H
#define IMS_RTPENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/su_wait.h>

#include "ims_bencode.h"

#define IMS_RTPE_MAX_INSTANCES 16

typedef struct {
    const char *const *addresses;   /* "host:port", "1.2.3.4:2223", "[::1]:2223" (resolved once) */
    size_t n_addresses;             /* 1..IMS_RTPE_MAX_INSTANCES */
    unsigned timeout_ms;            /* per attempt (default 1000) */
    unsigned retries;               /* retransmissions per instance, same cookie (default 2) */
    unsigned dead_s;                /* an instance that timed out is skipped this long (default 30) */
    unsigned ping_s;                /* health ping of every instance every ping_s s (0 = none) */
    /* Metrics are registered as <prefix>_rtpengine_... (e.g. "pcscf"); NULL = no metrics:
     *   <p>_rtpengine_up{instance}                        gauge 1/0
     *   <p>_rtpengine_live                                gauge, instances not marked dead
     *   <p>_rtpengine_requests_total{instance,command,result}  result = ok | error | timeout
     *   <p>_rtpengine_rtt_seconds{instance}               histogram of answered attempts
     *   <p>_rtpengine_answers_dropped_total{instance}     unusable datagrams (garbage) dropped */
    const char *metrics_prefix;
} ims_rtpe_config;

/* Fills the defaults above (addresses none, metrics off). */
void ims_rtpe_config_init(ims_rtpe_config *cfg);

typedef struct ims_rtpe ims_rtpe;

/* Resolves the addresses and opens one UDP socket per instance on `root`. NULL + err on a bad
 * address or a socket error. */
ims_rtpe *ims_rtpe_create(su_root_t *root, const ims_rtpe_config *cfg, char *err, size_t errlen);
/* Closes everything; pending requests are dropped and their callbacks are NOT called. */
void ims_rtpe_destroy(ims_rtpe *r);

typedef enum {
    IMS_RTPE_PING,
    IMS_RTPE_OFFER,
    IMS_RTPE_ANSWER,
    IMS_RTPE_DELETE,
    IMS_RTPE_QUERY,
} ims_rtpe_cmd;

const char *ims_rtpe_cmd_name(ims_rtpe_cmd c);   /* the ng "command" value: "offer", ... */

/* One request. Everything is copied by ims_rtpe_send (the caller's memory may go right after).
 * Strings NULL (or lists with n 0) are not sent. */
typedef struct {
    ims_rtpe_cmd command;
    const char *call_id;            /* all but ping */
    const char *from_tag;           /* offer, answer; delete/query: optional */
    const char *to_tag;             /* answer (required), delete/query: optional (one branch) */
    const char *via_branch;         /* optional (rtpengine tells forked branches apart by it) */
    const char *sdp;                /* offer, answer */
    size_t sdp_len;                 /* 0 = strlen(sdp) */
    /* "direction": the rtpengine interface names (--interface=NAME/addr) the media comes from and
     * goes to; both or neither. */
    const char *direction[2];
    const char *const *flags;       /* "flags" list: "trust-address", "symmetric", "strict-source",
                                     * "port-latching", "SIP-source-address", ... */
    size_t n_flags;
    const char *const *replace;     /* "replace" list: "origin", "session-connection", ... */
    size_t n_replace;
    const char *const *sdes;        /* "SDES" list: "off", ... */
    size_t n_sdes;
    const char *ice;                /* "ICE": "remove", "force", ... */
    const char *dtls;               /* "DTLS": "off", "passive", ... */
    const char *transport_protocol; /* "transport-protocol": "RTP/AVP", ... */
    const char *media_address;      /* "media-address": the address rtpengine should put in the SDP */
    const char *received_from;      /* the SIP source address of the message ("1.2.3.4" or an IPv6
                                     * literal), sent as "received-from": ["IP4"|"IP6", addr] */
    int delete_delay;               /* delete: seconds rtpengine keeps the call (-1 = its default,
                                     * 0 = at once); ignored for other commands */
} ims_rtpe_request;

/* Fills neutral values (delete_delay -1, everything else zero/NULL). */
void ims_rtpe_request_init(ims_rtpe_request *req, ims_rtpe_cmd command);

typedef enum {
    IMS_RTPE_OK,            /* result "ok" (or "pong") */
    IMS_RTPE_ERROR,         /* rtpengine answered with an error ("error", "load limit", ...) */
    IMS_RTPE_NO_ANSWER,     /* no instance answered (all timed out, or none was live) */
} ims_rtpe_status;

typedef struct {
    ims_rtpe_status status;
    const char *error_reason;   /* ERROR: rtpengine's "error-reason" (or its "result"); else NULL */
    const char *warning;        /* rtpengine's "warning", if any */
    const char *sdp;            /* OK offer/answer: the rewritten SDP (NUL-terminated); else NULL */
    size_t sdp_len;
    const char *instance;       /* "host:port" that answered (NO_ANSWER: the last one tried, or
                                 * NULL when none was live) */
    unsigned rtt_ms;            /* request sent to answer received (of the attempt that answered;
                                 * NO_ANSWER: time since ims_rtpe_send) */
    unsigned attempts;          /* datagrams sent, over all instances */
    const ims_benc *reply;      /* the whole decoded answer (e.g. query statistics); NULL for
                                 * NO_ANSWER */
} ims_rtpe_result;

/* Everything in *res is valid only during the call. The callback may call ims_rtpe_send and
 * ims_rtpe_cancel (of other requests), but not ims_rtpe_destroy. */
typedef void (*ims_rtpe_cb)(void *arg, const ims_rtpe_result *res);

typedef struct ims_rtpe_req ims_rtpe_req;

/* Sends `req`. Returns a handle, or NULL when the request is invalid (missing Call-ID or tags the
 * command needs, SDP missing) or memory ran out: cb is then never called and err says why.
 * The handle is valid until cb has been called or ims_rtpe_cancel. */
ims_rtpe_req *ims_rtpe_send(ims_rtpe *r, const ims_rtpe_request *req, ims_rtpe_cb cb, void *arg,
                            char *err, size_t errlen);
/* The caller no longer wants the answer (e.g. its transaction died): cb is never called. The
 * command may still have reached rtpengine: a cancelled offer may leave a call there, which the
 * caller deletes. NULL-safe. */
void ims_rtpe_cancel(ims_rtpe_req *q);

/* ---------- health ---------- */

typedef struct {
    const char *address;        /* as configured */
    bool up;                    /* not marked dead */
    uint64_t requests;          /* datagrams sent (retransmissions included) */
    uint64_t answers, errors, timeouts; /* answers received (errors among them), attempts timed out */
    unsigned last_rtt_ms;
} ims_rtpe_instance_info;

size_t ims_rtpe_instances(const ims_rtpe *r);
/* Instances not marked dead (for /readyz). */
size_t ims_rtpe_live(const ims_rtpe *r);
/* 0, or -1 when i is out of range. */
int ims_rtpe_instance(const ims_rtpe *r, size_t i, ims_rtpe_instance_info *out);
/* Requests waiting for an answer, and Call-IDs remembered (for leak checks). */
size_t ims_rtpe_pending(const ims_rtpe *r);
size_t ims_rtpe_calls(const ims_rtpe *r);

#endif
