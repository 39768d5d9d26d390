/*
 * scscf_regstore: the S-CSCF's registrations, in memory, with expiry timers.
 *
 * One scscf_reg per registered implicit registration set (TS 23.228 §4.3.3.3, TS 29.228 §6.1.2):
 * the private identity that registered it, the public identities of the set (the registered one
 * first), the contacts bound to them (RFC 3261 §10.3) and the service profile(s) from the HSS
 * (User-Data, TS 29.228 Annex E). Every public identity of the set is an index key, so a lookup by
 * any IMPU finds the registration.
 *
 * The interface is data-oriented (find / create / set profile / contacts / remove / foreach and one
 * expiry callback) so that a shared store for several workers can replace this file later
 * (docs/design.md "Threads and loops"). These tables are the live state; with store.backend redis
 * scscf_regsync.c writes them through to Redis and rebuilds them at start, otherwise a restart
 * loses them (UEs re-register at their next refresh; the HSS keeps the S-CSCF name).
 *
 * Timers: one per registration, at the earliest contact expiry (not one per contact) to keep the
 * per-user memory small. They run through the scscf_timer_ops given at creation (ims_sip timers in
 * the daemon, a fake clock in unit tests). Not thread-safe: the SIP loop thread only.
 */
#ifndef SCSCF_REGSTORE_H
#define SCSCF_REGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_statesync.h"
#include "ims_userdata.h"

/* Contact events of RFC 3680 §5.3 (the event attribute of <contact>). */
typedef enum {
    SCSCF_CEV_REGISTERED = 0,
    SCSCF_CEV_CREATED,
    SCSCF_CEV_REFRESHED,
    SCSCF_CEV_SHORTENED,
    SCSCF_CEV_EXPIRED,
    SCSCF_CEV_DEACTIVATED,
    SCSCF_CEV_PROBATION,
    SCSCF_CEV_UNREGISTERED,
    SCSCF_CEV_REJECTED,
} scscf_contact_event;

const char *scscf_contact_event_name(int ev);

typedef struct scscf_contact {
    struct scscf_contact *next;
    char *uri;              /* Contact URI as sent by the UE */
    char *params;           /* its header parameters except expires (";+sip.instance=..."), or NULL */
    char *path;             /* Path header values of the REGISTER ("<a>, <b>"), or NULL */
    char *call_id;          /* Call-ID / CSeq of the REGISTER that last refreshed it */
    char *received;         /* where that REGISTER came from ("udp:1.2.3.4:5060"), or NULL */
    int64_t expires_at;     /* scscf_now() seconds */
    uint32_t cseq;
    uint32_t id;            /* reginfo contact id, unique within the registration */
    uint8_t event;          /* the last scscf_contact_event that applied to it */
    bool terminated;        /* being removed: shown as state="terminated" in the next NOTIFY */
} scscf_contact;

typedef struct {
    char *uri;
    bool barred;
} scscf_impu;

typedef struct scscf_reg {
    struct scscf_reg *prev, *next;   /* store list */
    char *impi;
    scscf_impu *impus;               /* implicit registration set, the registered IMPU first */
    size_t n_impus;
    ims_subscription profile;        /* from the SAA / PPR User-Data */
    scscf_contact *contacts;
    void *subs;                      /* reg event subscriptions (owned by scscf_reginfo.c) */
    void *store;                     /* owning store (internal) */
    void *timer;                     /* expiry timer (store internal) */
    int64_t timer_at;
    uint32_t id;                     /* for reginfo <registration id> */
    uint32_t next_contact_id;
    uint8_t auth_scheme;             /* scheme of the last successful authentication (scscf_auth.h) */
    ims_statesync_ent sync;          /* write-through to the state store (scscf_regsync.c) */
} scscf_reg;

typedef struct {
    /* start: one-shot timer in ms calling fn(fnarg); returns a handle or NULL. cancel(handle) is
     * never called after fn ran. */
    void *(*start)(void *arg, unsigned ms, void (*fn)(void *fnarg), void *fnarg);
    void (*cancel)(void *arg, void *timer);
    int64_t (*now)(void *arg);       /* seconds, monotonic */
    void *arg;
} scscf_timer_ops;

/* Called when the earliest contact expiry of reg has come; the callback removes the expired
 * contacts (scscf_reg_contact_remove) and then calls scscf_regstore_touch or scscf_regstore_remove. */
typedef void (*scscf_expiry_f)(void *arg, struct scscf_reg *reg);

typedef struct scscf_regstore scscf_regstore;

scscf_regstore *scscf_regstore_new(const scscf_timer_ops *ops, scscf_expiry_f on_expiry, void *arg);
/* Frees every registration (timers cancelled, subscriptions must have been released). */
void scscf_regstore_free(scscf_regstore *st);

/* Registration holding this public identity (normalised comparison), or NULL. */
scscf_reg *scscf_regstore_find(scscf_regstore *st, const char *impu);
/* New registration of `impi` for the set of `profile` (moved into the store: *profile is zeroed);
 * registered_impu goes first. NULL on ENOMEM (profile then freed). */
scscf_reg *scscf_regstore_create(scscf_regstore *st, const char *impi, ims_subscription *profile,
                                 const char *registered_impu);
/* Replaces the profile (moved) and re-derives the IRS and the index. 0 / -1. */
int scscf_regstore_set_profile(scscf_regstore *st, scscf_reg *reg, ims_subscription *profile,
                               const char *registered_impu);
/* Unindexes and frees reg (its contacts too; reg->subs must be NULL). The remove hook runs first. */
void scscf_regstore_remove(scscf_regstore *st, scscf_reg *reg);
/* Called by scscf_regstore_remove before a registration goes (the state store deletes its
 * record); not by scscf_regstore_free (a stop keeps the records). */
void scscf_regstore_on_remove(scscf_regstore *st, void (*fn)(void *arg, scscf_reg *reg), void *arg);
/* Gives reg the reginfo id it had before a restart (later ids stay above it). */
void scscf_regstore_set_id(scscf_regstore *st, scscf_reg *reg, uint32_t id);
/* Re-arms the expiry timer after the contacts changed. */
void scscf_regstore_touch(scscf_regstore *st, scscf_reg *reg);
/* Calls fn for every registration; fn may remove the one it is given. Non-zero stops. */
void scscf_regstore_foreach(scscf_regstore *st, int (*fn)(void *arg, scscf_reg *reg), void *arg);

/* Contacts. uri comparison follows RFC 3261 §19.1.4. */
scscf_contact *scscf_reg_contact_find(const scscf_reg *reg, const char *uri);
/* Adds a zeroed contact with uri (caller fills the rest, strings strdup'd). NULL on ENOMEM. */
scscf_contact *scscf_reg_contact_add(scscf_regstore *st, scscf_reg *reg, const char *uri);
/* Unlinks and frees c. */
void scscf_reg_contact_remove(scscf_regstore *st, scscf_reg *reg, scscf_contact *c);
/* Replaces a string field of a contact (strdup; NULL allowed). 0 / -1. */
int scscf_contact_set(char **field, const char *value);
size_t scscf_reg_contact_count(const scscf_reg *reg);

/* The service profile holding `impu` (or the first one). NULL when the profile is empty. */
const ims_service_profile *scscf_reg_service_profile(const scscf_reg *reg, const char *impu);
/* True when `impu` is in the registration's set. */
bool scscf_reg_has_impu(const scscf_reg *reg, const char *impu);

/* Totals for the gauges. */
size_t scscf_regstore_impus(const scscf_regstore *st);
size_t scscf_regstore_contacts(const scscf_regstore *st);
size_t scscf_regstore_regs(const scscf_regstore *st);

/* Canonical key of an identity for comparison/indexing (ims_identity_normalise: lower-case
 * scheme and host, user part case-sensitive, no parameters; <> tolerated). A text that is not a
 * sip:/sips:/tel: identity is its own key; one too long for any identity gives "". */
void scscf_identity_key(const char *uri, char *out, size_t len);

#endif
