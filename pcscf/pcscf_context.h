/*
 * pcscf_context: the P-CSCF process state and the entry points of its modules.
 *
 * Modules (one role per file):
 *   pcscf_config.c    YAML schema (pcscf.yaml) and its checks
 *   pcscf_sip.c       start/stop, request dispatch, housekeeping timer, metrics
 *   pcscf_register.c  REGISTER from the UE towards the I-CSCF and its responses (TS 24.229 §5.2.2),
 *                     failed REGISTERs counted per UE address (ims_authlimit)
 *   pcscf_bindings.c  registration bindings store (pcscf_bindings.h); a UE is its registered flow
 *   pcscf_secagree.c  RFC 3329 security agreement policy (which UE gets which mechanism, 494)
 *   pcscf_ipsec.c     sec-agree IPsec SA sets: protected ports, SA lifecycle (TS 33.203 §7)
 *   pcscf_xfrm.c      the kernel side of one SA (XFRM netlink)
 *   pcscf_regevent.c  subscription to the reg event package at the S-CSCF (TS 24.229 §5.2.3, RFC 3680)
 *   pcscf_route.c     routing of every other request (TS 24.229 §5.2.6, §5.2.7; RFC 3261 §16)
 *   pcscf_dialog.c    the token in our Record-Route that in-dialog requests of a UE must carry
 *   pcscf_bindsync.c  bindings and reg subscriptions written through to the state store, reloaded
 *   pcscf_bindrecord.c  ... a binding / subscription as a sealed store record, checked on load
 *   pcscf_media.c     media anchoring through rtpengine: legs, the one delete (pcscf_media.h),
 *   pcscf_media_sip.c ... and the SDP offer/answer of every request and response
 *   pcscf_util.c      SIP helpers shared by the modules (pcscf_util.h)
 *
 * Threading: everything here runs on the ims_sip loop thread, except the `running` flag and the
 * metrics, which the HTTP threads read (both atomic).
 */
#ifndef PCSCF_CONTEXT_H
#define PCSCF_CONTEXT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ims_config.h"
#include "ims_http.h"
#include "ims_sip.h"
#include "ims_state.h"
#include "ims_trust.h"
#include "pcscf_bindings.h"
#include "pcscf_media.h"

/* The "pcscf:" section. */
typedef struct {
    char *icscf;                     /* SIP URI of the home network entry point (I-CSCF) */
    ims_cfg_strlist home_domains;    /* REGISTER Request-URI domains we forward; empty = any */
    char *visited_network_id;        /* P-Visited-Network-ID value (RFC 7315 §4.3) */
    int sec_agree;                   /* PCSCF_SEC_AGREE_* (index into pcscf_sec_agree_names) */
    ims_cfg_strlist sa_alg;          /* integrity algorithms we accept, best first (TS 33.203 Annex H) */
    ims_cfg_strlist sa_ealg;         /* encryption algorithms we accept, best first */
    long sa_port_c, sa_port_s;       /* our protected client / server ports (UDP and TCP) */
    long sa_spi_min, sa_spi_max;     /* the SPIs we allocate (spi-c, spi-s), unique per P-CSCF */
    long sa_tag;                     /* XFRM reqid of all our SAs and policies (start-up flush) */
    long sa_temp_lifetime;           /* seconds the temporary SAs of a 401 live (TS 33.203 §7.1) */
    long sa_slack;                   /* SA lifetime beyond the registration's expiry */
    bool subscribe_reg_event;        /* SUBSCRIBE to reg at the S-CSCF after registration */
    long auth_max_failures;          /* failed REGISTERs from one address that block it (0: never) */
    long auth_failure_window;        /* ... counted within this many seconds */
    long auth_lockout;               /* seconds a blocked address gets 403 from us */
    pcscf_media_cfg media;           /* pcscf.media: media anchoring through rtpengine (pcscf_media.h) */
    char *key_file;                  /* the secret of tokens and store records (pcscf_dialog.c) */
} pcscf_cfg;

/* pcscf.sec_agree; "false" / "true" are the old boolean spellings (= off / optional). */
enum { PCSCF_SEC_AGREE_OFF = 0, PCSCF_SEC_AGREE_OPTIONAL = 1, PCSCF_SEC_AGREE_REQUIRED = 2,
       PCSCF_SEC_AGREE_FALSE = 3, PCSCF_SEC_AGREE_TRUE = 4 };
/* The effective mode (the boolean spellings mapped). */
int pcscf_sec_agree_mode(const pcscf_cfg *cfg);

typedef struct {
    ims_log_cfg log;
    ims_http_cfg http;
    ims_sip_cfg sip;
    ims_trust_cfg trust;        /* the trust domain (ims_trust.h) */
    pcscf_cfg pcscf;
    ims_state_cfg store;        /* where bindings are kept (ims_state.h, pcscf_bindsync.c) */
} pcscf_config;

extern const ims_cfg_field pcscf_config_fields[];

struct ims_pending;

typedef struct pcscf_context {
    pcscf_config cfg;
    ims_sip *sip;
    ims_trust *trust;           /* the trust domain (ims_trust.h): tells the core from UEs (pcscf_route.c) */
    ims_http *http;
    su_home_t *home;                 /* for the parsed URIs below */
    url_t *icscf_url;                /* cfg.pcscf.icscf, parsed */

    /* Our URIs, from sip.hostname and sip.port */
    char self_uri[256];              /* sip:pcscf.ims.lab:5060 (From/P-Asserted-Identity of our SUBSCRIBEs) */
    char path_uri[256];              /* <sip:term@pcscf.ims.lab:5060;lr>: Path (RFC 3327) */
    char rr_uri[256];                /* <sip:pcscf.ims.lab:5060;lr>: Record-Route (UE side) */
    char rr_core_uri[256];           /* <sip:pcscf.ims.lab:5060;lr;transport=tcp>: Record-Route on
                                        the core side when sip.core_transport is not the UE's
                                        (RFC 5658 double Record-Route); "" with core_transport udp */
    uint8_t dialog_key[16];          /* Record-Route tokens (pcscf_dialog.c: random, or from key_file) */
    uint8_t record_key[16];          /* MAC of our state-store records (pcscf_bindrecord.h) */
    struct pcscf_bindsync *sync;     /* bindings written through to the state store (pcscf_bindsync.c) */

    pcscf_bindings *bindings;
    struct ims_pending *pending;     /* REGISTERs forwarded, waiting for their final response (by key) */
    struct ims_pending *subs;        /* reg event subscriptions, one per IMPU, by key (pcscf_regevent.c) */
    struct ims_map *subs_by_impu;    /* canonical IMPU (ims_identity) -> subscription (pcscf_regevent.c) */
    struct ims_map *subs_by_call_id; /* Call-ID of its dialog -> subscription (NOTIFY matching) */
    ims_sip_timer *housekeeping;     /* 1 s timer: binding expiry, stale pending registrations */
    struct ims_authlimit *authlimit; /* failed REGISTERs per UE address (pcscf_register.c) */

    atomic_bool running;             /* the SIP loop runs (for /readyz) */
    bool stopping;

    ims_metric *m_bindings;          /* pcscf_bindings (gauge) */
    struct pcscf_media *media;       /* media anchoring (pcscf_media.c); NULL when off */
    struct pcscf_ipsec *ipsec;       /* sec-agree SA sets (pcscf_ipsec.c); NULL when sec_agree is off */
} pcscf_context;

/* The one P-CSCF of this process (the NF main sets it up). */
extern pcscf_context pcscf_ctx;

/* Local name of the user part of our Path URI: requests routed to it are terminating (core -> UE). */
#define PCSCF_TERM_USER "term"

/* ---------- pcscf_config.c ---------- */
/* Checks what the schema cannot (icscf is a sip: URI, ...). 0 / -1 + err. */
int pcscf_config_check(const pcscf_config *cfg, char *err, size_t errlen);

/* ---------- pcscf_sip.c ---------- */
/* After ims_sip_create: parses the URIs, creates the store, starts housekeeping. 0 / -1 + err. */
int pcscf_start(pcscf_context *ctx, char *err, size_t errlen);
/* Before ims_sip_destroy: frees every module's state (timers cancelled). */
void pcscf_stop(pcscf_context *ctx);
/* The ims_sip_request_f given to ims_sip_create (arg = the context). */
int pcscf_on_request(void *arg, nta_incoming_t *irq, const sip_t *sip);
/* Metrics (registered once, process-wide). */
void pcscf_count_request(const char *method);
/* pcscf_count_request and, with sec_agree on, pcscf_requests_(un)protected_total. */
void pcscf_count_arrival(pcscf_context *ctx, const sip_t *sip, bool protected_req);
void pcscf_count_register(const char *result);

/* ---------- pcscf_register.c ---------- */
int pcscf_register_handle(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip);
/* Sweeps the failed-REGISTER counters (max_age >= 0); max_age < 0 (stop): frees them and every pending
 * REGISTER record (these otherwise expire on their own deadline). */
void pcscf_register_sweep(pcscf_context *ctx, int64_t now, int64_t max_age);

/* ---------- pcscf_dialog.c ---------- */
/* The token and record keys: from pcscf.key_file (created when absent), else random. 0 / -1 + err. */
int pcscf_dialog_start(pcscf_context *ctx, char *err, size_t errlen);
/* Our Record-Route value for a dialog of the UE at ue_host (numeric address):
 * "<sip:host:port;lr;ue=TOKEN>". 0 / -1 (no Call-ID, too long). */
int pcscf_dialog_record_route(const pcscf_context *ctx, const sip_t *sip, const char *ue_host, char *out,
                              size_t len);
/* True when route (our URI, the top Route of a UE's in-dialog request) carries the token of the
 * request's Call-ID and ue_host (the address the request came from). */
bool pcscf_dialog_token_ok(const pcscf_context *ctx, const url_t *route, const sip_t *sip, const char *ue_host);

/* ---------- pcscf_route.c ---------- */
int pcscf_route_handle(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip);
/* The stateless intake (ims_sip_set_stateless_intake): a UE's BYE in a dialog over UDP is checked
 * as pcscf_route_handle checks it and sent on without a server transaction; true when it took
 * msg, false to leave it to the stateful way. */
bool pcscf_route_stateless(pcscf_context *ctx, msg_t *msg, sip_t *sip);

/* ---------- pcscf_regevent.c ---------- */
/* Makes sure a reg subscription exists for the binding's IMPU (sends SUBSCRIBE if none). */
void pcscf_regevent_ensure(pcscf_context *ctx, const pcscf_binding *b);
/* No binding is left for this IMPU: ends and forgets its subscription. */
void pcscf_regevent_forget(pcscf_context *ctx, const char *impu);
/* True when the request is a NOTIFY for one of our subscriptions (by Call-ID). */
bool pcscf_regevent_is_ours(pcscf_context *ctx, const sip_t *sip);
/* Answers and applies such a NOTIFY. */
int pcscf_regevent_notify(pcscf_context *ctx, nta_incoming_t *irq, const sip_t *sip);
/* Applies a reginfo document (RFC 3680) to the bindings store. Returns the number of changes
 * (contacts or bindings removed / updated), -1 when the XML is not a reginfo document. */
int pcscf_regevent_apply(pcscf_context *ctx, const char *xml, size_t len);
void pcscf_regevent_fini(pcscf_context *ctx);

#endif
