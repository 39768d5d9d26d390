/*
 * pcscf_bindsync: the P-CSCF's bindings and reg-event subscriptions written through to the state
 * store (common/ims_statesync.h: same store: section, dirty marking, 503 + /readyz while loading,
 * reconnect as the S-CSCF) and loaded back at start, so that a P-CSCF killed and restarted with
 * the same store.prefix (by default its SIP URI) and the same pcscf.key_file keeps its UEs
 * reachable without a new REGISTER, and its reg-event dialogs at the S-CSCF go on.
 *
 * What is kept: bindings of UDP flows (IMPU, flow, contacts with expiry, P-Associated-URI set,
 * Service-Route) and the subscriptions whose dialog exists (Call-ID, tags, target, route set,
 * CSeq, expiry). What is not, and why (README "State store"):
 *  - bindings over TCP: the connection is the flow (RFC 5626 §5.2, TS 24.229 §5.2.2.1) and it dies
 *    with the process; a request could not reach the UE over it, and opening a new connection to
 *    its Contact would send it to whoever has that address now. The UE learns of the closed
 *    connection and registers again (RFC 5626 §4.4.1); meanwhile it is unreachable (480), as before;
 *  - bindings over IPsec SA sets: the kernel's SAs outlive a kill -9, but their keys (CK/IK) must
 *    never go to the store; a restarted P-CSCF flushes its SAs (pcscf_ipsec_start), so such UEs
 *    register again, as before;
 *  - transactions in flight (a REGISTER or INVITE being forwarded), media legs (pcscf_media.c:
 *    rtpengine keeps the call; a BYE still ends it there), failed-REGISTER counters.
 */
#ifndef PCSCF_BINDSYNC_H
#define PCSCF_BINDSYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "ims_statesync.h"
#include "pcscf_bindrecord.h"
#include "pcscf_context.h"

/* ims_statesync_ent.kind of the P-CSCF's records */
enum { PCSCF_SYNC_BINDING = 0, PCSCF_SYNC_SUB = 1 };

/* Opens the store (store: section) and, with redis, starts the load. 0 / -1 + err. */
int pcscf_bindsync_start(pcscf_context *ctx, char *err, size_t errlen);
/* Writes nothing more and closes the store (the records stay for the next start). */
void pcscf_bindsync_stop(pcscf_context *ctx);
/* A binding or subscription changed / is removed (before it is freed). */
void pcscf_bindsync_changed(pcscf_context *ctx, ims_statesync_ent *e);
void pcscf_bindsync_removed(pcscf_context *ctx, ims_statesync_ent *e);
/* True while the records are being loaded (requests are then refused with 503). */
bool pcscf_bindsync_loading(const pcscf_context *ctx);
/* /readyz: false with a reason while loading or while the store is unreachable. */
bool pcscf_bindsync_ready(const pcscf_context *ctx, char *why, size_t whylen);

/* pcscf_regevent.c: a subscription's record (strings borrowed from it); false when it has no
 * dialog to keep. */
bool pcscf_regevent_export(const ims_statesync_ent *e, pcscf_subrecord *out, int64_t mono_now, int64_t wall_now);
/* A subscription rebuilt from its record (ACTIVE, refresh timer armed). 0 + *ent / -1. */
int pcscf_regevent_restore(pcscf_context *ctx, const pcscf_subrecord *r, int64_t mono_now, int64_t wall_now,
                           ims_statesync_ent **ent);

#endif
