/*
 * hss_context: the HSS process state shared by its interfaces (Cx, provisioning API).
 */
#ifndef HSS_CONTEXT_H
#define HSS_CONTEXT_H

#include <stdbool.h>

#include "ims_config.h"
#include "ims_http.h"
#include "hss_store.h"

typedef enum { HSS_STORE_SQLITE = 0, HSS_STORE_POSTGRESQL = 1 } hss_store_backend_kind;

typedef struct {
    int backend;                     /* hss_store_backend_kind */
    char *path;                      /* SQLite file (NULL: hss.database) */
    char *conninfo;                  /* PostgreSQL: libpq conninfo or postgresql:// URI */
} hss_store_cfg;

typedef struct {
    char *database;                  /* SQLite file (the older spelling of store.path) */
    hss_store_cfg store;
    char *import;                    /* subscribers file imported at start, or NULL */
    ims_cfg_strlist scscf_names;     /* S-CSCFs offered to the I-CSCF in Server-Capabilities */
    ims_cfg_strlist mandatory_capabilities;  /* numbers, TS 29.228 §6.7 */
    ims_cfg_strlist optional_capabilities;
    long max_auth_items;             /* cap on SIP-Number-Auth-Items per MAR */
    char *digest_qop;                /* Digest-QoP offered with SIP Digest: auth | auth-int | auth,auth-int */
} hss_cfg;

typedef struct {
    ims_log_cfg log;
    ims_http_cfg http;
    ims_diameter_cfg diameter;
    hss_cfg hss;
} hss_config;

extern const ims_cfg_field hss_config_fields[];

typedef struct {
    hss_config cfg;
    hss_store *store;
    ims_http *http;
    unsigned *mandatory_caps, *optional_caps;   /* parsed capability numbers */
    size_t n_mandatory_caps, n_optional_caps;
} hss_context;

/* The one HSS of this process (set up by hss_main). */
extern hss_context hss_ctx;

/* Opens the subscriber database the configuration names (hss.store, or hss.database);
 * *name says which, for logs. NULL + err on failure. */
hss_store *hss_context_open_store(const hss_cfg *cfg, const char **name, char *err, size_t errlen);

/* Parses capability lists; -1 + err on a non-number. */
int hss_context_parse_capabilities(hss_context *ctx, char *err, size_t errlen);

/* Cx server (hss_cx.c, hss_cx_auth.c): registers UAR/MAR/SAR/LIR handlers. After
 * ims_diameter_init, before ims_diameter_start. */
int hss_cx_init(void);
void hss_cx_fini(void);

/* HSS-initiated procedures (hss_cx_push.c). Both return 0 when the request was sent (the answer
 * is handled and logged asynchronously), -1 + err when it could not be (no S-CSCF assigned,
 * peer down, unknown subscriber). */
int hss_cx_send_ppr(const char *subscription_id, char *err, size_t errlen);
int hss_cx_send_rtr(const char *subscription_id, int reason_code, const char *reason_info,
                    char *err, size_t errlen);

/* /metrics gauges of the subscriber database (hss_metrics.c): hss_subscribers,
 * hss_private_identities, hss_public_identities{state=...}; kept current from the store's
 * counts from now on. */
void hss_metrics_watch(hss_store *st);

#endif
