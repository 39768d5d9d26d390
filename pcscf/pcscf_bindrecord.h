/*
 * pcscf_bindrecord: a P-CSCF binding and a reg-event subscription as state-store records and
 * back, for the write-through and the reload of pcscf_bindsync.c.
 *
 * Keys (relative to store.prefix, by default the P-CSCF's SIP URI):
 *   bind:<transport>:<host>:<port>:<identity key of the IMPU>   one per binding (flow, IMPU);
 *                                                          an IPv6 host is written [addr]
 *   sub:<identity key of the IMPU>                             one per reg-event subscription
 * Value: "<MAC> <JSON>", MAC = 32 hex digits of HMAC-MD5(record key, key "\n" JSON) where the
 * record key is derived from the P-CSCF's secret (pcscf.key_file, pcscf_dialog.c) and never leaves the host.
 *   bind, version 1: {"v":1,"impu","host","port","tp","impus":[..],"routes":[..],
 *                     "contacts":[{"uri","exp"}]}
 *   sub,  version 1: {"v":1,"impu","callid","ftag","ttag","target","routes":[..],"cseq","exp"}
 * Times ("exp") are wall-clock seconds (UNIX time): the monotonic clock restarts with the host.
 *
 * Why a MAC: the binding is what the P-CSCF asserts an identity for (pcscf_bindings_by_flow). A
 * record is the only input that can create one without a REGISTER answered by the S-CSCF, and
 * Redis is shared infrastructure (often without authentication). Whoever can write there must
 * not be able to bind sip:alice to their own address: a record under a key other than the one it
 * was sealed under, or not sealed with our secret, is refused. What the MAC does not stop: the
 * replay of a record we wrote earlier under the same key (within its TTL) — docs/design.md.
 *
 * Decoding also checks what it can without the MAC (a record sealed by a P-CSCF with a leaked
 * secret, or by an older version, is still input): the key names the record's own flow and
 * IMPU, only UDP flows (TCP connections and IPsec SAs do not survive a restart), a numeric host,
 * SIP URIs for contacts, routes and targets, no control characters anywhere (they would end up in
 * SIP headers), bounded counts and lengths; expiries beyond PCSCF_BINDRECORD_MAX_EXPIRES are
 * shortened to it.
 */
#ifndef PCSCF_BINDRECORD_H
#define PCSCF_BINDRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcscf_bindings.h"

#define PCSCF_BINDRECORD_VERSION 1
#define PCSCF_REC_MAX_CONTACTS 16
#define PCSCF_REC_MAX_IMPUS 32
#define PCSCF_REC_MAX_ROUTES 8
#define PCSCF_REC_MAC_KEY 16
/* Records outlive the last contact by this much (a restart right at expiry still sees them). */
#define PCSCF_BINDRECORD_GRACE_S 60
/* No registration or subscription we restore lasts longer than this from the load. */
#define PCSCF_BINDRECORD_MAX_EXPIRES (7 * 86400)

/* Flows whose bindings are written: UDP only (a TCP connection is gone with the process, an
 * IPsec SA set's keys must never leave the host). */
bool pcscf_bindrecord_storable(const pcscf_addr *flow);

/* "bind:..." of (impu, flow) (malloc'd), or NULL. */
char *pcscf_bindrecord_key(const char *impu, const pcscf_addr *flow);
/* The sealed record of b (malloc'd) and its TTL; NULL on ENOMEM or an unstorable flow. */
char *pcscf_bindrecord_encode(const pcscf_binding *b, const uint8_t mac_key[PCSCF_REC_MAC_KEY], int64_t mono_now,
                              int64_t wall_now, int64_t *ttl_s);

/* A binding as read from the store (contact expiries: wall clock). */
typedef struct {
    char *impu;
    pcscf_addr source;
    char *impus[PCSCF_REC_MAX_IMPUS];
    size_t n_impus;
    char *routes[PCSCF_REC_MAX_ROUTES];
    size_t n_routes;
    pcscf_contact contacts[PCSCF_REC_MAX_CONTACTS];
    size_t n_contacts;
} pcscf_bindrecord;

/* Checks and parses the record found under key. 0, or -1 with the reason in err (out empty). */
int pcscf_bindrecord_decode(const char *key, const char *value, size_t len, const uint8_t mac_key[PCSCF_REC_MAC_KEY],
                            int64_t wall_now, pcscf_bindrecord *out, char *err, size_t errlen);
void pcscf_bindrecord_free(pcscf_bindrecord *r);

/* A reg-event subscription's dialog (RFC 6665) as stored; expires: wall clock. In encode the
 * strings are borrowed; decode allocates them (pcscf_subrecord_free). */
typedef struct {
    char *impu, *call_id, *from_tag, *to_tag, *target;
    char *routes[PCSCF_REC_MAX_ROUTES];
    size_t n_routes;
    uint32_t cseq;
    int64_t expires;
} pcscf_subrecord;

char *pcscf_subrecord_key(const char *impu);
char *pcscf_subrecord_encode(const pcscf_subrecord *r, const uint8_t mac_key[PCSCF_REC_MAC_KEY], int64_t wall_now,
                             int64_t *ttl_s);
int pcscf_subrecord_decode(const char *key, const char *value, size_t len, const uint8_t mac_key[PCSCF_REC_MAC_KEY],
                           int64_t wall_now, pcscf_subrecord *out, char *err, size_t errlen);
void pcscf_subrecord_free(pcscf_subrecord *r);

#endif
