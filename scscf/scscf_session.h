/*
 * scscf_session: the state of one initial request (INVITE, MESSAGE, ...) while the S-CSCF runs
 * the originating or terminating procedure on it (TS 24.229 §5.4.3.2 / §5.4.3.3): the served
 * user, the matching iFCs (priority order, evaluated once when the case starts) and how far the
 * AS chain has got. Shared by scscf_session.c (routing) and scscf_as.c (AS chaining).
 *
 * Ownership: a session owns `irq` while the S-CSCF works on it. While the request is at an AS,
 * irq belongs to the fork towards that AS and the session sits in ctx->odi under its token until
 * the AS sends the request back (new irq), gives up (DefaultHandling) or answers it itself.
 */
#ifndef SCSCF_SESSION_H
#define SCSCF_SESSION_H

#include "scscf_context.h"

#define SCSCF_MAX_AS 16

typedef struct {
    char *uri;              /* the AS's ServerName */
    int default_handling;   /* IMS_DEFAULT_HANDLING_* */
} scscf_as_hop;

typedef struct scscf_sess {
    scscf_context *ctx;
    nta_incoming_t *irq;    /* the transaction being worked on; NULL while at an AS */
    int scase;              /* IMS_SESSION_CASE_* */
    char user[256];         /* served user: P-Asserted-Identity (orig) / callee IMPU (term) */
    char odi[33];           /* token in our Route towards ASes (128 random bits in hex) */
    bool orig_local;        /* originating case of a callee we serve: counted at the end too */
    size_t n_as, next;
    scscf_as_hop as[SCSCF_MAX_AS];
} scscf_sess;

/* scscf_session.c */
/* The callee identity of a Request-URI: tel:+digits for tel: URIs and for
 * sip:+digits@host;user=phone (TS 24.229 §5.4.3.2, RFC 3966), else the URI normalised (no
 * parameters, lower-case scheme and host). 0 / -1. */
int scscf_sess_callee(const url_t *u, char *out, size_t len);
/* RFC 3261 §22: removes the Authorization / Proxy-Authorization headers for our realm
 * (scscf.realm and scscf.home_domains) from a request we forward; other realms' stay. */
void scscf_sess_strip_credentials(const scscf_context *ctx, msg_t *msg, sip_t *sip);
/* A tel: URI, or a host in scscf.home_domains (default: the realm). */
bool scscf_sess_is_home(const scscf_context *ctx, const url_t *u);
void scscf_sess_free(scscf_sess *st);
/* The iFC chain is done (or empty): route the request on (orig: destination; term: contacts). */
void scscf_sess_route(scscf_sess *st);
/* Final local answer on st->irq, counted, and st freed. */
void scscf_sess_reject(scscf_sess *st, int status, const char *phrase);
void scscf_sess_count(const char *scase, int status);

/* scscf_as.c */
/* Pops the Routes naming us from a copy to forward and adds our Record-Route (once). 0 / -1. */
int scscf_sess_prepare(scscf_context *ctx, msg_t *msg, sip_t *sip);

/* scscf_as.c */
/* Next AS of the chain, or scscf_sess_route when none is left. Consumes st. */
void scscf_as_next(scscf_sess *st);
/* A request that came back from an AS (top Route is ours with ;odi=): continues its session.
 * 0 handled, else a status to answer with (unknown or stale token). */
int scscf_as_returned(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip, const char *odi);
/* Fills st->as from the service profile of st->user (orig: registered / term: registered or
 * unregistered) matching the request of st->irq. */
void scscf_as_select(scscf_sess *st, const ims_service_profile *sp, bool registered);
void scscf_as_shutdown(scscf_context *ctx);

#endif
