/*
 * ims_statesync: a CSCF's in-memory records written through to the state store (ims_state.h)
 * and loaded back at start. The machinery the S-CSCF's registrations (scscf_regsync.c) and the
 * P-CSCF's bindings and subscriptions (pcscf_bindsync.c) share; what a record holds and how it is
 * checked stays with the NF.
 *
 * With store.backend: memory nothing is written (the NF's own tables are the state and die with
 * the process): changed/removed are no-ops and the NF is ready at once.
 *
 * With redis:
 *  - Write-through: a change marks the object dirty; the dirty ones are written on the next loop
 *    turn (several changes of one event make one write). A removed object's record is deleted.
 *  - Start: the NF answers 503 while ims_statesync_loading() and /readyz says "loading" until
 *    every index is walked; each record goes to ops->load_item (the NF's hostile-input checks: a
 *    refused one is skipped with a warning and counted), then ops->load_end applies the kept
 *    ones (and may drop more, e.g. conflicting ones) and calls ims_statesync_loaded for each.
 *  - Store unreachable later: the NF keeps serving from memory; changes stay dirty and /readyz is
 *    false; on reconnect every object is written again and the deletions made meanwhile are
 *    replayed (a Redis that restarted empty is refilled).
 *
 * Objects are the NF's records; each embeds an ims_statesync_ent, by which this module knows it
 * (the NF finds its object from it with IMS_STATESYNC_OBJ; `kind` tells an NF with several kinds
 * of records which one it is). Completions carry a key, never a pointer (the object may be gone
 * when they arrive): the module keeps the key -> entry map of what is in the store for them.
 *
 * Metrics (<metric_prefix>_pending, _loaded_total, _skipped_total). All on the SIP loop.
 */
#ifndef IMS_STATESYNC_H
#define IMS_STATESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_sip.h"
#include "ims_state.h"

typedef struct ims_statesync ims_statesync;

/* Embedded in every object that is written through. */
typedef struct {
    int kind;         /* the NF's: which kind of object embeds it */
    bool dirty;       /* waits for the next flush */
    char *key;        /* the store key it is (or was last) written under, or NULL */
} ims_statesync_ent;

/* The object of type `type` whose member `member` is the entry e. */
#define IMS_STATESYNC_OBJ(e, type, member) ((type *)(void *)((char *)(e) - offsetof(type, member)))

typedef struct {
    const char *subsys;              /* log subsystem, e.g. "scscf.store" */
    const char *what;                /* what load_end counts, for the log: "registration(s)" */
    const char *metric_prefix;       /* "scscf_store" */
    const char *const *indexes;      /* the indexes loaded at start, in order, NULL-terminated */
    /* e's object's record: key and JSON (malloc'd) and TTL in seconds (0: none). -1: it cannot be written
     * (not retried; the next change tries anew). 0 with *key and *json NULL: not to be stored
     * (e.g. a flow that cannot survive a restart): a record written before is deleted. */
    int (*encode)(void *arg, ims_statesync_ent *e, char **key, char **json, int64_t *ttl_s);
    /* One record found at start under index. 0 kept, -1 + err: skipped (logged and counted here). */
    int (*load_item)(void *arg, const char *index, const char *key, const char *value, size_t len, char *err,
                     size_t errlen);
    /* Every index walked (complete) or the walk broke off (!complete: free what was kept). Returns how
     * many records became objects (each announced with ims_statesync_loaded); *dropped: records
     * kept by load_item and then refused. */
    size_t (*load_end)(void *arg, bool complete, size_t *dropped);
} ims_statesync_ops;

/* Opens the store (the "store:" section, namespace def_prefix unless store.prefix) and, with redis,
 * starts the load. ops must outlive the sync. NULL + err. */
ims_statesync *ims_statesync_open(const ims_state_cfg *cfg, const char *def_prefix, ims_sip *sip,
                                  const ims_statesync_ops *ops, void *arg, char *err, size_t errlen);
/* Writes nothing more and closes the store (the records stay for the next start). NULL is fine. */
void ims_statesync_close(ims_statesync *s);

/* Records survive this process (redis): the NF writes through only then. */
bool ims_statesync_durable(const ims_statesync *s);
/* e's object changed: its record is rewritten on the next loop turn. */
void ims_statesync_changed(ims_statesync *s, ims_statesync_ent *e);
/* e's object leaves memory (before it is freed): its record is deleted. */
void ims_statesync_removed(ims_statesync *s, ims_statesync_ent *e);
/* From load_end: e's object was rebuilt from the record under key (it is in the store already). */
void ims_statesync_loaded(ims_statesync *s, ims_statesync_ent *e, const char *key);

/* True while the records are being loaded (the NF answers 503 meanwhile). */
bool ims_statesync_loading(const ims_statesync *s);
/* /readyz (any thread): false with a reason while loading or while the store is unreachable. */
bool ims_statesync_ready(const ims_statesync *s, char *why, size_t whylen);
ims_state *ims_statesync_store(const ims_statesync *s);

#endif
