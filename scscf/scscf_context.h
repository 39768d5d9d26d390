/*
 * scscf_context: the S-CSCF process state and the entry points of its modules.
 *
 * Modules (one role per file):
 *   scscf_config.c      YAML schema (scscf.yaml), derived defaults and checks
 *   scscf_sip.c         start/stop, request dispatch, replies, metrics, /readyz
 *   scscf_register_*.c  REGISTER (TS 24.229 §5.4.1.2 - §5.4.1.4, RFC 3261 §10.3): _check request
 *                       checks, _auth challenge and verification, _update binding changes and the
 *                       one registration-changed hook, _reply answers, _fsm the transaction's
 *                       state machine (scscf_register.h)
 *   scscf_auth.c        challenges and their verification: IMS-AKA (RFC 3310) and SIP digest
 *                       (RFC 2617 / RFC 7616), nonce table (scscf_auth.h)
 *   scscf_cx.c          Cx towards the HSS: MAR, SAR; RTR and PPR from it (TS 29.228/29.229)
 *   scscf_regstore.c    in-memory registrations with expiry timers (scscf_regstore.h)
 *   scscf_regsync.c     registrations written through to the state store, reloaded at start
 *   scscf_regrecord.c   a registration as a store record (JSON) and back, checked on load
 *   scscf_reginfo.c     reg event package: subscriptions, NOTIFY, application/reginfo+xml
 *                       (RFC 3680, RFC 6665, TS 24.229 §5.4.2.1)
 *   scscf_thirdparty.c  third-party REGISTER to application servers (TS 24.229 §5.4.1.7)
 *   scscf_ifc.c         initial filter criteria evaluation (TS 29.228 Annex B/F) (scscf_ifc.h)
 *   scscf_session.c     originating / terminating routing of initial requests, in-dialog
 *                       requests (TS 24.229 §5.4.3) (scscf_session.h)
 *   scscf_as.c          AS chaining with the original dialog identifier, DefaultHandling
 *                       (TS 24.229 §5.4.3.2 / §5.4.3.3, TS 23.218 §6)
 *   scscf_calllog.c     one log line per call set-up and tear-down (scscf_calllog.h)
 *   scscf_util.c        small helpers: auth-param lookup, NULL-safe strdup (scscf_util.h)
 *
 * Threading: everything runs on the ims_sip loop thread (Cx answers and HSS requests are handed
 * to it by ims_cx_client); the metrics are read by the HTTP threads (they are atomic).
 */
#ifndef SCSCF_CONTEXT_H
#define SCSCF_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "ims_config.h"
#include "ims_http.h"
#include "ims_sip.h"
#include "ims_trust.h"
#include "ims_cx_client.h"
#include "ims_state.h"
#include "scscf_regstore.h"

/* The "scscf:" section. */
typedef struct {
    char *name;                 /* our SIP URI, Server-Name in MAR/SAR; default sip:<sip.hostname>:<sip.port> */
    char *realm;                /* digest realm / home domain; default diameter.realm */
    char *hss_realm;            /* Destination-Realm of Cx requests; default diameter.realm */
    char *hss_host;             /* Destination-Host of Cx requests; default none (realm routing) */
    long min_expires;           /* shortest registration accepted (else 423) */
    long max_expires;           /* longer requests are shortened to this */
    long default_expires;       /* when neither the contact nor the request says */
    long auth_vectors;          /* SIP-Number-Auth-Items asked per MAR */
    long nonce_lifetime;        /* seconds a challenge stays valid */
    long reg_event_expires;     /* longest reg event subscription */
    char *icscf;                /* I-CSCF URI for terminating home users (LIR), or NULL */
    ims_cfg_strlist home_domains; /* home domains; default [realm] */
    char *breakout;             /* where requests for other domains go (SIP URI), or NULL: 404 */
    long as_timeout_ms;         /* wait for an AS's first response before DefaultHandling */
    long timer_c_ms;            /* Timer C of forked INVITE branches (RFC 3261 §16.8) */
    long auth_max_failures;     /* failed authentications of one IMPI that lock it (0: never) */
    long auth_failure_window;   /* ... counted within this many seconds */
    long auth_lockout;          /* seconds a locked IMPI gets 403 without a challenge */
    int reauth_protected;       /* SCSCF_REAUTH_* (index into scscf_reauth_names) */
} scscf_cfg;

/* scscf.reauth_protected: challenge every REGISTER, or only those not integrity-protected (or
 * from an unregistered user) (TS 24.229 §5.4.1.2.1). */
enum { SCSCF_REAUTH_ALWAYS, SCSCF_REAUTH_WHEN_NEEDED };
extern const char *const scscf_reauth_names[];

typedef struct {
    ims_log_cfg log;
    ims_http_cfg http;
    ims_diameter_cfg diameter;
    ims_sip_cfg sip;
    ims_trust_cfg trust;        /* the trust domain (ims_trust.h) */
    ims_state_cfg store;        /* where registrations are kept (ims_state.h, scscf_regsync.c) */
    scscf_cfg scscf;
} scscf_config;

extern const ims_cfg_field scscf_config_fields[];

struct scscf_auth;
struct scscf_reginfo;

typedef struct scscf_context {
    scscf_config cfg;
    ims_sip *sip;
    ims_trust *trust;           /* the trust domain (ims_trust.h): requests from outside get 403 on entry */
    ims_http *http;

    char name[256];             /* effective scscf.name */
    const char *realm;          /* effective realm (cfg or diameter realm) */
    const char *hss_realm;
    const char *hss_host;       /* NULL: route by realm */
    char service_route[300];    /* <sip:orig@scscf.ims.lab:6060;lr> */

    scscf_regstore *store;
    struct scscf_auth *auth;
    struct scscf_reginfo *reginfo;
    struct scscf_regsync *sync; /* write-through to the state store (scscf_regsync.c) */
    void *odi;                  /* ims_map: odi token -> session waiting at an AS (scscf_as.c) */
    struct scscf_calllog *calls; /* session set-up / tear-down log lines (scscf_calllog.c) */
    char rr[300];               /* our Record-Route value: <sip:scscf.ims.lab:6060;lr> */
    ims_sip_timer *housekeeping;

    bool stopping;
    struct ims_pending *reg_txns;       /* REGISTERs waiting on the HSS (scscf_register_fsm.c) */
    uint64_t seq;               /* for Call-IDs of the requests we originate */

    /* metrics */
    ims_metric *m_registrations, *m_contacts, *m_auth_failures, *m_subscriptions;
} scscf_context;

/* The one S-CSCF of this process (set up by scscf_main). */
extern scscf_context scscf_ctx;

/* Local user part of our Service-Route URI: requests routed to it are the originating case. */
#define SCSCF_ORIG_USER "orig"

/* ---------- scscf_config.c ---------- */
/* Checks what the schema cannot (URIs, min <= max). 0 / -1 + err. */
int scscf_config_check(const scscf_config *cfg, char *err, size_t errlen);

/* ---------- scscf_sip.c ---------- */
/* Sets up the modules after ims_sip_create (name, Service-Route, stores, Cx handlers). 0 / -1. */
int scscf_start(scscf_context *ctx, char *err, size_t errlen);
void scscf_stop(scscf_context *ctx);
int scscf_on_request(void *arg, nta_incoming_t *irq, const sip_t *sip);
bool scscf_ready(void *arg, char *why, size_t whylen);
/* Final response on irq, with optional extra header lines ("Name: value\r\n..."), then the
 * transaction is released. Counts REGISTER results when `count_register`. */
void scscf_reply(scscf_context *ctx, nta_incoming_t *irq, int status, const char *phrase,
                 const char *headers, bool count_register);
/* The same, returning a reference to the response sent (msg_destroy it), or NULL. */
msg_t *scscf_reply_msg(scscf_context *ctx, nta_incoming_t *irq, int status, const char *phrase,
                       const char *headers, bool count_register);
/* Monotonic seconds. */
int64_t scscf_now(void);
/* Refreshes the gauges from the stores. */
void scscf_update_gauges(scscf_context *ctx);

/* ---------- scscf_session.c ---------- */
/* Every request but REGISTER / SUBSCRIBE(reg) / OPTIONS: same contract as ims_sip_request_f. */
int scscf_session_request(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip);
/* Releases the sessions waiting at ASes (scscf_stop). */
void scscf_session_shutdown(scscf_context *ctx);

/* ---------- the registrar: scscf_register_*.c (scscf_register.h) ---------- */
int scscf_registrar_register(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip);
/* Network-initiated de-registration of a whole registration (RTR, AS failure): NOTIFY with
 * `event` (SCSCF_CEV_DEACTIVATED / REJECTED ...), third-party de-REGISTER, subscriptions
 * terminated, reg removed. `sat` >= 0 sends that SAR first (-1: the HSS already knows). */
void scscf_registrar_terminate(scscf_context *ctx, scscf_reg *reg, int event, int sat);
/* The store's expiry callback: contacts of reg whose time has come. */
void scscf_registrar_expired(void *arg, scscf_reg *reg);
/* The table of pending REGISTER transactions: made at start; at stop every one still waiting
 * is answered 503. 0 / -1. */
int scscf_reg_txns_start(scscf_context *ctx);
void scscf_reg_txns_stop(scscf_context *ctx);

/* ---------- scscf_cx.c ---------- */
/* Builds the common part of a MAR/SAR (Destination, User-Name, Public-Identity, Server-Name). */
struct msg *scscf_cx_new(scscf_context *ctx, struct dict_object *cmd, const char *impi, const char *impu);
/* SAR of `sat` for impi/impu (either may be NULL); cb (may be NULL: logged only). 0 / -1. */
int scscf_cx_sar(scscf_context *ctx, const char *impi, const char *impu, int sat, bool uda,
                 ims_cx_answer_f cb, void *arg);
/* Serves RTR and PPR on the loop. */
int scscf_cx_serve(scscf_context *ctx);

/* ---------- scscf_thirdparty.c ---------- */
/* Third-party REGISTER for each matching iFC of impu's service profile (TS 24.229 §5.4.1.7).
 * regtype: IMS_REGTYPE_*; expires: the registration's (0 for de-registration); ue_req / ok_resp:
 * the UE's REGISTER and our response for the message/sip bodies (may be NULL). */
void scscf_thirdparty_register(scscf_context *ctx, const scscf_reg *reg, const char *impu,
                               unsigned regtype, long expires, msg_t *ue_req, msg_t *ok_resp);

#endif
