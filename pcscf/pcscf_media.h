/*
 * pcscf_media: media anchoring at the P-CSCF through rtpengine (issue 13). Every SDP a UE sends or
 * receives passes rtpengine's ng offer/answer (common/ims_rtpengine.h), so the UE sees rtpengine's
 * address and its media crosses one controlled point (TS 23.228 §4.2.4 IMS-ALG / IMS-AGW at the
 * P-CSCF; the Kamailio-P-CSCF-with-rtpengine arrangement).
 *
 *   pcscf_media.c      the dialog/media records ("legs"), the one delete, configuration of the
 *                      client, metrics, readiness, de-registration and shutdown
 *   pcscf_media_sip.c  the SIP side: which message is an offer or an answer, holding a request or
 *                      a response while rtpengine answers, rewriting the body
 *
 * A leg is one role of one call at this P-CSCF: "orig" (the caller is our UE) or "term" (the
 * callee is). A call between two UEs of the same P-CSCF passes twice and has both legs, each its
 * own rtpengine call (call-id "<Call-ID>;orig" / ";term"), so the two never mix, also when two
 * P-CSCFs share an rtpengine.
 *
 * Who may use it: only requests that passed pcscf_route.c's checks reach pcscf_media_forward (a
 * registered flow for an initial request, our Record-Route token for a UE's in-dialog request,
 * the trust domain for the core). On top, a leg belongs to the UE flow it was created for: an
 * initial INVITE of another UE with the same Call-ID is refused (403) instead of re-offering into
 * that call, and a UE's in-dialog request acts only on a leg whose owner has its address.
 */
#ifndef PCSCF_MEDIA_H
#define PCSCF_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

#include "ims_config.h"
#include "pcscf_bindings.h"

/* The "pcscf.media:" section. */
typedef struct {
    int anchor;                  /* PCSCF_MEDIA_ANCHOR_* */
    ims_cfg_strlist rtpengine;   /* ng control addresses "host:port" */
    long timeout_ms;             /* per ng attempt */
    long retries;                /* retransmissions per instance */
    long dead_s;                 /* an instance that timed out is skipped this long */
    long ping_s;                 /* health ping period (0: none) */
    int on_failure;              /* PCSCF_MEDIA_FAIL_* */
    long max_session_s;          /* a leg with no request for this long is deleted (0: never) */
    long check_s;                /* a leg with no request for this long is queried at rtpengine */
    char *access_interface;      /* rtpengine interface name towards UEs (NULL: no direction) */
    char *core_interface;        /* ... towards the core */
} pcscf_media_cfg;

enum { PCSCF_MEDIA_ANCHOR_OFF = 0, PCSCF_MEDIA_ANCHOR_RTPENGINE = 1 };
enum { PCSCF_MEDIA_FAIL_REJECT = 0, PCSCF_MEDIA_FAIL_PASS = 1 };

extern const ims_cfg_field pcscf_media_cfg_fields[];
/* What the schema cannot check (anchor on needs rtpengine addresses, both interfaces or none). */
int pcscf_media_config_check(const pcscf_media_cfg *cfg, char *err, size_t errlen);

struct pcscf_context;

/* Creates the rtpengine client when anchoring is on. 0 / -1 + err. */
int pcscf_media_start(struct pcscf_context *ctx, char *err, size_t errlen);
/* NF shutdown: every leg deleted at rtpengine (sent, not waited for), held messages dropped. */
void pcscf_media_stop(struct pcscf_context *ctx);
/* Housekeeping (once a second): readiness figure for /readyz; expiry of calls whose BYE never
 * came (media.max_session_s) or that rtpengine dropped itself (media.check_s). */
void pcscf_media_tick(struct pcscf_context *ctx);
/* /readyz: false (+ why) when anchoring is required (on_failure reject) and no rtpengine is
 * live. Any thread. */
bool pcscf_media_ready(const struct pcscf_context *ctx, char *why, size_t whylen);
/* The UE flow has no binding left (de-registration, expiry): its legs are deleted. */
void pcscf_media_flow_gone(struct pcscf_context *ctx, const pcscf_addr *flow);

/* How pcscf_route.c sends a request on once the media step is done. */
typedef struct {
    bool onward;                 /* ims_sip_proxy_onward (Route processing), else forward */
    const url_t *next_hop;       /* forward: where (in msg's home; NULL: top Route / Request-URI) */
    const char *ident;           /* forward: our transports to send from (ims_sip_forward_from) */
} pcscf_media_send;

/* The UE a request concerns: it comes from it (to_ue false) or goes to it. */
typedef struct {
    bool to_ue;
    const pcscf_addr *ue;        /* the UE's flow */
} pcscf_media_side;

/* Sends msg (the edited request of irq) on as `send` says: at once when anchoring is off or the
 * request concerns no media; otherwise after rtpengine rewrote its SDP, with the media hook on
 * its responses. Takes msg and irq in every case (as ims_sip_forward). Returns 0. */
int pcscf_media_forward(struct pcscf_context *ctx, nta_incoming_t *irq, msg_t *msg, const pcscf_media_side *side,
                        const pcscf_media_send *send);
/* A BYE in a dialog from or to side->ue: its media leg is deleted at rtpengine (the stateless
 * BYE, pcscf_route_stateless; pcscf_media_forward does the same for its BYEs). */
void pcscf_media_bye(struct pcscf_context *ctx, const sip_t *sip, const pcscf_media_side *side);

#endif
