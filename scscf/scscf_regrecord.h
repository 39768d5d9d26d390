/*
 * scscf_regrecord: a registration as a state-store record (JSON, json-c) and back, for the
 * write-through and the reload of scscf_regsync.c.
 *
 * Key: "reg:<identity key of the registered IMPU>" (scscf_identity_key). Value, version 1:
 *   {"v":1, "impi":..., "impu": the registered IMPU, "id": reginfo registration id,
 *    "ncid": next contact id, "scheme": auth scheme, "profile": User-Data XML (TS 29.228 Annex E),
 *    "contacts":[{"uri","params","path","callid","cseq","recv","exp","id","ev"}],
 *    "subs":[{"aor","callid","ltag","rtag","luri","ruri","target","routes","lcseq","rcseq","ver","exp"}]}
 * Times ("exp") are wall-clock seconds (UNIX time): the monotonic clock restarts with the host.
 * The implicit registration set is not stored: it is derived from the profile again, as at SAA.
 *
 * Decoding trusts nothing (the store is shared infrastructure, and a record may be stale or
 * written by something else): unknown versions, a key that is not the record's own registered
 * identity (a record cannot speak for another user), an identity absent from its own profile,
 * over-long or control-character strings (they would go into SIP headers), Contact/target URIs
 * that are not SIP URIs, and too many contacts or subscriptions are refused with a reason.
 * Expiries further away than the configuration allows are shortened to its limits.
 */
#ifndef SCSCF_REGRECORD_H
#define SCSCF_REGRECORD_H

#include <stddef.h>
#include <stdint.h>

#include "ims_register.h"
#include "scscf_reginfo.h"
#include "scscf_regstore.h"

#define SCSCF_REGRECORD_VERSION 1
#define SCSCF_REGRECORD_MAX_SUBS 16
/* Records outlive the last contact by this much, so that a restarted S-CSCF still finds a
 * registration that expired while it was down and sends its SAR TIMEOUT_DEREGISTRATION. */
#define SCSCF_REGRECORD_GRACE_S 600

typedef struct {
    char *uri, *params, *path, *call_id, *received;
    int64_t expires;        /* wall clock */
    uint32_t cseq, id;
    uint8_t event;
} scscf_rec_contact;

typedef struct {
    char *impi, *impu;
    uint32_t id, next_contact_id;
    uint8_t auth_scheme;
    ims_subscription profile;
    scscf_rec_contact contacts[IMS_REG_MAX_CONTACTS];
    size_t n_contacts;
    scscf_regsub subs[SCSCF_REGRECORD_MAX_SUBS];   /* expires_at: wall clock here */
    size_t n_subs;
} scscf_regrecord;

/* Limits applied on decoding (seconds from now). */
typedef struct {
    long max_expires;       /* scscf.max_expires */
    long max_sub_expires;   /* scscf.reg_event_expires */
} scscf_regrecord_limits;

/* "reg:<identity key>" of reg's registered identity (malloc'd), or NULL. */
char *scscf_regrecord_key(const scscf_reg *reg);
/* JSON of reg (malloc'd) and its store TTL in seconds; terminated contacts are left out. NULL on
 * ENOMEM or when the profile cannot be written. mono_now/wall_now: scscf_now() and time(NULL). */
char *scscf_regrecord_encode(const scscf_reg *reg, int64_t mono_now, int64_t wall_now, int64_t *ttl_s);
/* Parses and checks a record found under key. 0, or -1 with the reason in err (out is then
 * empty). */
int scscf_regrecord_decode(const char *key, const char *json, size_t len, const scscf_regrecord_limits *lim,
                           int64_t wall_now, scscf_regrecord *out, char *err, size_t errlen);
void scscf_regrecord_free(scscf_regrecord *r);

#endif
