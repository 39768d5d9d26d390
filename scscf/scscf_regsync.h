/*
 * scscf_regsync: the S-CSCF's registrations written through to the state store (common/ims_state)
 * and loaded back at start, so that a restarted S-CSCF (same store.prefix, by default the same
 * scscf.name) keeps serving its registered users.
 *
 * With store.backend: memory nothing is written (the registrar's own tables are the state and
 * die with the process, as before): every function here is then a no-op.
 *
 * With redis:
 *  - Write-through: every change of a registration (binding added / refreshed / removed, profile
 *    pushed by PPR, reg-event subscription created / refreshed / ended, NOTIFY version and CSeq)
 *    marks it dirty; the dirty ones are written on the next loop turn (several changes of one
 *    event make one write). A removed registration's record is deleted. Record TTL = the last
 *    contact's expiry + SCSCF_REGRECORD_GRACE_S.
 *  - Start: requests get 503 (Retry-After) and /readyz says "loading" until every record under
 *    the prefix is loaded (records that fail scscf_regrecord_decode, or claim an identity that
 *    another record owns, are skipped with a warning); expiry and subscription timers are re-armed,
 *    registrations that expired while we were down expire now (SAR TIMEOUT_DEREGISTRATION).
 *  - Store unreachable later: we keep serving from memory (registrations, calls, expiry all go
 *    on); changes stay dirty and /readyz is false; on reconnect every registration is written
 *    again and the deletions made meanwhile are replayed (a Redis that restarted empty is refilled).
 */
#ifndef SCSCF_REGSYNC_H
#define SCSCF_REGSYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "scscf_context.h"

/* Opens the store (store: section) and, with redis, starts the load. 0 / -1 + err. */
int scscf_regsync_start(scscf_context *ctx, char *err, size_t errlen);
/* Writes nothing more and closes the store (the records stay for the next start). */
void scscf_regsync_stop(scscf_context *ctx);
/* reg changed: its record is rewritten on the next loop turn. */
void scscf_regsync_changed(scscf_context *ctx, scscf_reg *reg);
/* True while the records are being loaded (requests are then refused with 503). */
bool scscf_regsync_loading(const scscf_context *ctx);
/* /readyz: false with a reason while loading or while the store is unreachable. */
bool scscf_regsync_ready(const scscf_context *ctx, char *why, size_t whylen);

#endif
