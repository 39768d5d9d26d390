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
