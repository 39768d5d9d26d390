/*
 * scscf_reginfo: the reg event package at the S-CSCF (RFC 3680, RFC 6665, TS 24.229 §5.4.2.1).
 *
 * A SUBSCRIBE (Event: reg) for a public identity we have registered creates a subscription dialog
 * (we are the notifier, the UAS of the SUBSCRIBE); every change of the registration is sent as a
 * full-state application/reginfo+xml NOTIFY to every subscription of the implicit registration set.
 */
#ifndef SCSCF_REGINFO_H
#define SCSCF_REGINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "scscf_context.h"

typedef struct scscf_reginfo scscf_reginfo;

/* One subscription (a dialog where we are the notifier). Its fields are public for the state
 * store's records (scscf_regrecord.c); only this module changes them. */
typedef struct regsub scscf_regsub;
struct regsub {
    struct regsub *next;        /* in reg->subs */
    scscf_reg *reg;
    char *key;                  /* Call-ID "\n" our tag: the map key */
    char *aor;                  /* the subscribed public identity */
    char *call_id;
    char *local_tag, *remote_tag;
    char *local_uri;            /* To of the SUBSCRIBE: From of our NOTIFYs */
    char *remote_uri;           /* From of the SUBSCRIBE: To of our NOTIFYs */
    char *target;               /* remote target (Contact of the SUBSCRIBE) */
    char *routes;               /* route set "<a>, <b>", or NULL */
    uint32_t local_cseq, remote_cseq;
    uint32_t version;
    int64_t expires_at;
    ims_sip_timer *timer;
};

/* Frees the strings of s (not s, not its timer). */
void scscf_regsub_strings_free(scscf_regsub *s);

/* Re-creates a subscription of reg from a stored record (fields copied; timer, key and links are
 * made here). A subscription whose time is up ends at once (final NOTIFY). 0 / -1. */
int scscf_reginfo_restore(scscf_context *ctx, scscf_reg *reg, const scscf_regsub *rec);


scscf_reginfo *scscf_reginfo_new(scscf_context *ctx);
/* Frees every subscription (no NOTIFY: shutdown). */
void scscf_reginfo_free(scscf_reginfo *ri);
size_t scscf_reginfo_count(const scscf_reginfo *ri);

/* SUBSCRIBE (initial or in-dialog). Always answers irq; returns 0. */
int scscf_reginfo_subscribe(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip);

/* Full-state NOTIFY to every subscription of reg. Contacts with `terminated` set are shown as
 * terminated (with their event); when reg_terminated, every registration element is terminated
 * and the subscriptions end (Subscription-State: terminated) and are freed. */
void scscf_reginfo_notify(scscf_context *ctx, scscf_reg *reg, bool reg_terminated);

/* Renders the reginfo document for reg (malloc'd). version: the document version; exposed for
 * the unit tests. */
char *scscf_reginfo_xml(const scscf_reg *reg, unsigned version, bool reg_terminated, int64_t now);

#endif
