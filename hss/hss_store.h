/*
 * hss_store: the HSS subscriber database, safe for concurrent calls from freeDiameter's dispatch
 * threads and libmicrohttpd's threads. Two backends behind the same calls: SQLite (WAL, one
 * process) and PostgreSQL (several HSS processes may share one database).
 *
 * Durability: hss_store_advance_sqn returns only SQNs covered by a committed reservation
 * (synchronous=FULL; hss_store_auth.c), so a vector is never sent with an SQN that a crash could
 * hand out again.
 */
#ifndef HSS_STORE_H
#define HSS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hss_subscriber.h"

typedef struct hss_store hss_store;

enum {
    HSS_STORE_OK = 0,
    HSS_STORE_NOT_FOUND = 1,
    HSS_STORE_CONFLICT = 2,     /* id or identity already used by another subscription */
    HSS_STORE_ERROR = -1,       /* database error (logged) */
};

/* Opens (creating the file and schema if needed). NULL + err on failure (unwritable path, not a
 * database, newer schema version). */
hss_store *hss_store_open(const char *path, char *err, size_t errlen);
/* The same on PostgreSQL (libpq conninfo "host=... port=... dbname=... user=..." or a
 * postgresql:// URI): connects and creates the schema in an empty database. NULL + err on a
 * malformed conninfo, an unreachable server, a foreign or newer schema. */
hss_store *hss_store_open_pg(const char *conninfo, char *err, size_t errlen);
void hss_store_close(hss_store *st);
/* Whether the database answers now (/readyz): 0, or -1 + why. */
int hss_store_ping(hss_store *st, char *why, size_t whylen);
/* "sqlite" or "postgresql". */
const char *hss_store_backend(const hss_store *st);

/* Full subscriber reads (out is zeroed first; free with hss_subscriber_free). */
int hss_store_get(hss_store *st, const char *id, hss_subscriber *out);
int hss_store_find_by_impi(hss_store *st, const char *impi, hss_subscriber *out);
int hss_store_find_by_impu(hss_store *st, const char *impu, hss_subscriber *out);

/* Ids in name order, at most `limit` (0 = all) starting after `after` (NULL = from start). */
int hss_store_list(hss_store *st, const char *after, size_t limit, char ***ids, size_t *n);
/* The same, only subscriptions with at least one IMPU in registration state `state` (an
 * hss_reg_state; -1 = all). Walks an index: the cost is that of the page, not of the store. */
int hss_store_list_by_state(hss_store *st, int state, const char *after, size_t limit, char ***ids,
                            size_t *n);
void hss_store_free_ids(char **ids, size_t n);
size_t hss_store_count(hss_store *st);

/* Rows in the store, kept by triggers in the database (hss_store_counts.c): reading them costs
 * one row whatever the size of the store. impus[] is indexed by hss_reg_state (TS 29.228
 * Annex B: NOT_REGISTERED, REGISTERED, UNREGISTERED). */
typedef struct {
    int64_t subscriptions;          /* IMSU */
    int64_t impis;
    int64_t impus[3];
} hss_store_counts;
int hss_store_get_counts(hss_store *st, hss_store_counts *out);
/* fn gets the counts now and after every committed write that may change them (create,
 * replace, delete, registration state, each commit of a bulk import). It runs with the store
 * locked: it must be quick and must not call back into the store. */
void hss_store_on_counts(hss_store *st, void (*fn)(void *arg, const hss_store_counts *c), void *arg);

/* Creates (create_only) or replaces a subscription in one transaction. On replace the
 * volatile state is kept: the SQN of IMPIs that stay (the larger of stored and given wins, so an
 * SQN never goes back), the reg_state of IMPUs that stay, and the assigned S-CSCF.
 * HSS_STORE_CONFLICT + err when an id/IMPI/IMPU belongs to another subscription or (create_only)
 * the id exists. */
int hss_store_put(hss_store *st, const hss_subscriber *s, int create_only, char *err, size_t errlen);
int hss_store_delete(hss_store *st, const char *id);

/* Bulk loading (the import at start, while nothing else uses the store): the writes between
 * begin and end share one transaction instead of a commit (fsync) each; a write that fails is
 * rolled back alone (savepoint). bulk_commit commits what is there and goes on; bulk_end
 * commits (commit=true) or drops everything since the last commit. Each commit recounts the
 * identities (hss_store_get_counts) instead of counting row by row. */
int hss_store_bulk_begin(hss_store *st);
int hss_store_bulk_commit(hss_store *st);
int hss_store_bulk_end(hss_store *st, bool commit);

/* Where the IMPU of a MAR belongs, relative to its IMPI. */
typedef enum {
    HSS_IMPU_UNKNOWN = 0,           /* no such public identity */
    HSS_IMPU_SAME,                  /* in the IMPI's subscription */
    HSS_IMPU_OTHER,                 /* in another subscription (Cx IDENTITIES_DONT_MATCH) */
} hss_impu_owner;

/* The MAR lookup: the credentials of `impi` into *out (free with hss_impi_clear; its sqn is the
 * last one handed out) and where `impu` belongs. HSS_STORE_NOT_FOUND when there is no such
 * IMPI (*owner is then not meaningful). scscf (may be NULL) receives the S-CSCF name assigned to
 * the IMPI's subscription ("" when none; truncated to scscf_len). */
int hss_store_auth_lookup(hss_store *st, const char *impi, const char *impu, hss_impi *out,
                          hss_impu_owner *owner, char *scscf, size_t scscf_len);
void hss_impi_clear(hss_impi *m);

/* Hands out n consecutive SQNs for `impi` (next = ims_sqn_next(previous)) in sqns[0..n-1], all
 * covered by a durable reservation (committed first when the current one runs out; on
 * PostgreSQL every call commits the new SQN, so that HSS processes sharing the database never
 * issue one twice and issue them in increasing order).
 * HSS_STORE_NOT_FOUND if no such IMPI, HSS_STORE_ERROR (nothing handed out) when the
 * reservation cannot be written. */
int hss_store_advance_sqn(hss_store *st, const char *impi, unsigned n, uint64_t *sqns);
/* Resynchronisation: sets the IMPI's SQN to `sqn` (only ever upward), durably when it passes
 * the reservation. */
int hss_store_set_sqn(hss_store *st, const char *impi, uint64_t sqn);

/* Registration state written by SAR: the state of each listed IMPU of subscription `id`. */
int hss_store_set_reg_state(hss_store *st, const char *id, const char *const *impus, size_t n,
                            hss_reg_state state);
/* Both of the above in one transaction (a registration: one commit). */
int hss_store_register(hss_store *st, const char *id, const char *name, const char *host,
                       const char *realm, const char *const *impus, size_t n, hss_reg_state state);
/* Assigned S-CSCF of the subscription of IMPI `impi` (a MAR from another S-CSCF, TS 29.228
 * §8.1): name, host and realm replaced. HSS_STORE_NOT_FOUND when there is no such IMPI. */
int hss_store_move_scscf(hss_store *st, const char *impi, const char *name, const char *host,
                         const char *realm);
/* Assigned S-CSCF of subscription `id` (name NULL clears all three). */
int hss_store_set_scscf(hss_store *st, const char *id, const char *name, const char *host,
                        const char *realm);

#endif
