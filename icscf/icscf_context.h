/*
 * icscf_context: the I-CSCF process state and the entry points of its modules.
 *
 * Modules (one role per file):
 *   icscf_config.c    YAML schema (icscf.yaml) and its checks
 *   icscf_sip.c       start/stop, request dispatch, metrics, /readyz
 *   icscf_register.c  REGISTER: UAR, S-CSCF assignment, forwarding and re-selection
 *                     (TS 24.229 §5.3.1, TS 29.228 §6.1.1)
 *   icscf_route.c     every other request: LIR for initial requests to a home domain
 *                     (TS 24.229 §5.3.2, TS 29.228 §6.1.4); everything else is refused
 *   icscf_cx.c        building UAR / LIR and reading their answers (TS 29.229 §6.1.1-§6.1.2, §6.1.5-§6.1.6)
 *   icscf_scscf.c     S-CSCF selection from Server-Capabilities (TS 29.228 §6.7, TS 23.228 §5.2.1)
 *
 * Threading: everything runs on the ims_sip loop thread; the HTTP threads only read atomics and
 * metrics. Cx answers come back on the loop (ims_cx_client). Pending transactions are found by
 * a numeric key, never by a pointer handed to another module, so a late callback (Cx answer,
 * response of a forward) for a transaction that is gone is a harmless lookup miss.
 */
#ifndef ICSCF_CONTEXT_H
#define ICSCF_CONTEXT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ims_config.h"
#include "ims_cx_client.h"
#include "ims_http.h"
#include "ims_log.h"
#include "ims_register.h"
#include "ims_sip.h"
#include "ims_trust.h"

/* ---------- configuration ---------- */

/* One entry of icscf.scscfs. */
typedef struct {
    char *name;                      /* SIP URI, e.g. sip:scscf.ims.lab:6060 */
    ims_cfg_strlist capabilities;    /* capability numbers this S-CSCF supports (TS 29.228 §6.7) */
} icscf_scscf_cfg;

/* icscf.selection: how equally suitable S-CSCFs are ordered for a first registration. */
enum { ICSCF_SELECT_ORDER, ICSCF_SELECT_HASH };

/* The "icscf:" section. */
typedef struct {
    ims_cfg_strlist home_domains;    /* domains whose REGISTERs / terminating requests we serve */
    char *hss_realm;                 /* Destination-Realm of UAR/LIR; NULL = diameter.realm */
    char *hss_host;                  /* Destination-Host of UAR/LIR, or NULL */
    ims_cfg_list scscfs;             /* of icscf_scscf_cfg, in order of preference */
    long user_unknown_code;          /* SIP status for a REGISTER of an unknown user (5001) */
    long scscf_timeout_ms;           /* no final response from the S-CSCF within this: re-select */
    int selection;                   /* ICSCF_SELECT_ORDER | ICSCF_SELECT_HASH */
    bool lir;                        /* LIR for initial requests to home-domain Request-URIs */
    bool register_from_untrusted;    /* accept REGISTER from outside the trust domain (roaming P-CSCFs) */
} icscf_cfg;

typedef struct {
    ims_log_cfg log;
    ims_http_cfg http;
    ims_diameter_cfg diameter;
    ims_sip_cfg sip;
    ims_trust_cfg trust;        /* the trust domain (ims_trust.h) */
    icscf_cfg icscf;
} icscf_config;

extern const ims_cfg_field icscf_config_fields[];

/* ---------- S-CSCF pool (icscf_scscf.c) ---------- */

#define ICSCF_URI_MAX 256
#define ICSCF_MAX_CAPS 32
#define ICSCF_MAX_NAMES 16

typedef struct {
    char name[ICSCF_URI_MAX];        /* as configured */
    char norm[ICSCF_URI_MAX];        /* normalised (ims_sip_normalise_uri) for comparisons */
    uint32_t caps[ICSCF_MAX_CAPS];
    size_t n_caps;
} icscf_scscf;

/* Server-Capabilities of an answer (TS 29.229 §6.3.4). */
typedef struct {
    bool present;
    uint32_t mandatory[ICSCF_MAX_CAPS];
    size_t n_mandatory;
    uint32_t optional[ICSCF_MAX_CAPS];
    size_t n_optional;
    char names[ICSCF_MAX_NAMES][ICSCF_URI_MAX];   /* Server-Name AVPs inside the group */
    size_t n_names;
} icscf_caps;

/* Builds the pool from cfg.icscf.scscfs. 0 / -1 + err. */
int icscf_scscf_pool_init(const icscf_cfg *cfg, icscf_scscf **pool, size_t *n, char *err, size_t errlen);
/* Selects an S-CSCF for `caps` (NULL or !present: no requirement) among the pool and the
 * Server-Names inside caps, skipping `exclude` (a URI, or NULL). spread_key (the IMPU, or NULL):
 * among equally suitable candidates the one with the highest rendezvous score for it, instead
 * of configuration order (icscf.selection: hash). The name goes to out.
 * 0, or -1 when no candidate fulfils the mandatory capabilities. */
int icscf_scscf_select(const icscf_scscf *pool, size_t n, const icscf_caps *caps, const char *exclude,
                       const char *spread_key, char *out, size_t outlen);

/* ---------- Cx (icscf_cx.c) ---------- */

/* What a UAA or LIA said, reduced to what the I-CSCF acts upon. */
typedef struct {
    bool answered;                   /* false: timeout, HSS unreachable */
    uint32_t result;                 /* base Result-Code (0 if absent) */
    uint32_t experimental;           /* Experimental-Result-Code (0 if absent) */
    char server_name[ICSCF_URI_MAX]; /* Server-Name ("" if absent) */
    icscf_caps caps;                 /* Server-Capabilities */
} icscf_cx_answer;

typedef struct {
    const char *impi;
    const char *impu;
    const char *visited;             /* Visited-Network-Identifier */
    int32_t type;                    /* User-Authorization-Type (IMS_UAT_*) */
} icscf_uar;

struct icscf_context;
/* Sends a UAR / LIR; cb(arg, ans) runs on the loop (ans NULL on timeout). 0 / -1 (cb not called). */
int icscf_cx_send_uar(struct icscf_context *ctx, const icscf_uar *uar, ims_cx_answer_f cb, void *arg);
int icscf_cx_send_lir(struct icscf_context *ctx, const char *impu, ims_cx_answer_f cb, void *arg);
/* Reads an answer (NULL = no answer) into out. */
void icscf_cx_read_answer(struct msg *ans, icscf_cx_answer *out);
/* True when the HSS was not reached: no answer, or a 3002/3003/3004 protocol error. */
bool icscf_cx_unreachable(const icscf_cx_answer *a);
/* The SIP answer for a UAA / LIA (status 0: a success to act upon), from the one Cx table of
 * common/ims_register.c; icscf.user_unknown_code for a REGISTER of an unknown user. */
void icscf_cx_to_sip(const struct icscf_context *ctx, const icscf_cx_answer *a, ims_cx_purpose purpose,
                     ims_cx_sip *out);
/* Sends s upstream on irq (with its Retry-After) unless irq has its final response already. */
void icscf_cx_reply(nta_incoming_t *irq, const ims_cx_sip *s);
/* "DIAMETER_FIRST_REGISTRATION", "timeout", ... for logs and metrics. */
const char *icscf_cx_answer_name(const icscf_cx_answer *a);

/* ---------- the context ---------- */

struct ims_pending;
struct icscf_sess;

typedef struct icscf_context {
    icscf_config cfg;
    ims_sip *sip;
    ims_trust *trust;                /* the trust domain (ims_trust.h): checked on entry (icscf_sip.c) */
    ims_http *http;
    const char *hss_realm;           /* cfg.icscf.hss_realm or the diameter realm */

    icscf_scscf *pool;               /* cfg.icscf.scscfs, parsed */
    size_t n_pool;

    struct ims_pending *regs;        /* REGISTERs in progress (icscf_register.c), by key */
    struct icscf_sess *sessions;     /* other requests waiting for their LIA */
    uint64_t next_key;               /* keys of pending records (never 0) */
    size_t n_pending;

    atomic_bool running;             /* the SIP loop runs (for /readyz) */
    bool stopping;

    ims_metric *m_pending;           /* icscf_pending (gauge) */

    ims_log_limit refused_log;       /* refusal warnings: one per second */
} icscf_context;

/* The one I-CSCF of this process (the NF main sets it up). */
extern icscf_context icscf_ctx;

/* ---------- icscf_config.c ---------- */
/* Checks what the schema cannot (URIs, domains, capability numbers). 0 / -1 + err. */
int icscf_config_check(const icscf_config *cfg, char *err, size_t errlen);

/* ---------- icscf_sip.c ---------- */
/* After ims_sip_create: pool, metrics. 0 / -1 + err. */
int icscf_start(icscf_context *ctx, char *err, size_t errlen);
/* After the loop ended, before ims_sip_destroy: answers and frees every pending record. */
void icscf_stop(icscf_context *ctx);
/* Frees what icscf_start allocated (after ims_sip_destroy). */
void icscf_free(icscf_context *ctx);
/* The ims_sip_request_f given to ims_sip_create (arg = the context). */
int icscf_on_request(void *arg, nta_incoming_t *irq, const sip_t *sip);
/* /readyz: the SIP loop runs and the HSS peer is open. */
bool icscf_ready(void *arg, char *why, size_t whylen);
/* True when `host` is one of icscf.home_domains (any host when the list is empty). */
bool icscf_is_home_domain(const icscf_context *ctx, const char *host);
void icscf_count_register(const char *result);
/* The I-CSCF refuses a request its role does not allow (TS 24.229 §5.3; README "Security model"):
 * counts icscf_refused_total{reason}, logs a WARN (at most one a second, the rest counted in the
 * next one) naming the source address, the method and the Request-URI, answers status/phrase.
 * Returns what the request handler returns: 0 (answered, irq destroyed), or for an ACK a
 * non-zero value (nta drops it: an ACK is never answered). */
int icscf_refuse(icscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, const char *reason, int status,
                 const char *phrase);
/* True when the request's source address is in the trust domain (ims_trust_is_trusted). */
bool icscf_from_trusted(const icscf_context *ctx, nta_incoming_t *irq);
/* RFC 3325 §5, TS 24.229 §5.3.1.2/§5.3.2.1: removes from a request received from outside the
 * trust domain the headers only our own elements may set (P-Asserted-Identity, P-Asserted-Service,
 * P-Charging-Vector, P-Charging-Function-Addresses, P-Served-User, P-Profile-Key and, except on a
 * REGISTER, P-Visited-Network-ID). Counts icscf_untrusted_headers_removed_total. Returns the
 * number of headers removed. */
int icscf_strip_untrusted(msg_t *msg, sip_t *sip);
/* True when `u` names one of the home S-CSCFs of icscf.scscfs (host, case-insensitive, and port). */
bool icscf_is_home_scscf(const icscf_context *ctx, const url_t *u);
void icscf_count_request(const char *method, const char *result);
void icscf_pending_changed(icscf_context *ctx, int delta);
/* A new key for a pending record. */
uint64_t icscf_new_key(icscf_context *ctx);

/* ---------- icscf_register.c ---------- */
/* `trusted`: the source is in the trust domain (otherwise trust headers are removed before forwarding). */
int icscf_register_handle(icscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, bool trusted);
/* Answers (503 Shutting Down) and frees every pending REGISTER. */
void icscf_register_fini(icscf_context *ctx);

/* ---------- icscf_route.c ---------- */
int icscf_route_handle(icscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, bool trusted);
void icscf_route_fini(icscf_context *ctx);

#endif
