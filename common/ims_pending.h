/*
 * ims_pending: the transactions a CSCF is waiting on (a REGISTER forwarded, a UAR sent, a
 * SUBSCRIBE in flight), as key -> record with an optional deadline.
 *
 * Why keys and not pointers: the callbacks that complete a transaction (a Cx answer, the
 * response of a forward, a UAC response) may arrive after the record is gone (deadline passed,
 * NF stopping). They carry the numeric key; a key no longer in the table is a lookup miss the
 * caller sees (NULL, -1) and logs, never a pointer into freed memory.
 *
 * Rules:
 *  - Keys are made here (never 0, never reused within a table's life) and found in O(1)
 *    (ims_map); a key fits a callback's void * argument through uintptr_t.
 *  - The cleanup given at creation runs exactly once for each record the table itself ends:
 *    when its deadline passes (IMS_PENDING_DEADLINE) or when the table is freed
 *    (IMS_PENDING_SHUTDOWN). The record is out of the table when the cleanup runs; the cleanup
 *    answers the request if nobody else will, and frees the record.
 *  - ims_pending_release is the caller finishing a record itself (it answered): the record comes
 *    back to the caller and the cleanup does not run. Releasing a key that is not in the table
 *    is an error returned to the caller (-1), not ignored.
 *  - One thread (the SIP loop); timers through ims_timer_ops (ims_fsm.h).
 */
#ifndef IMS_PENDING_H
#define IMS_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "ims_fsm.h"

typedef enum {
    IMS_PENDING_DEADLINE,   /* no completion before the deadline */
    IMS_PENDING_SHUTDOWN,   /* ims_pending_free with the record still pending */
} ims_pending_reason;

typedef struct ims_pending ims_pending;

/* cleanup(arg, key, rec, reason): see the rules above. */
typedef void (*ims_pending_cleanup_f)(void *arg, uint64_t key, void *rec, ims_pending_reason reason);

/* name: for logs ("pcscf REGISTER"). ops is copied. NULL on ENOMEM. */
ims_pending *ims_pending_new(const char *name, const ims_timer_ops *ops, ims_pending_cleanup_f cleanup, void *arg);
/* Runs the cleanup (IMS_PENDING_SHUTDOWN) for every record left, cancels the timers, frees the
 * table. NULL is a no-op. */
void ims_pending_free(ims_pending *p);

/* Adds rec (not NULL) under a new key; deadline_ms 0: no deadline. The key, or 0 on ENOMEM or
 * when the deadline timer cannot be started (rec is then not in the table). */
uint64_t ims_pending_add(ims_pending *p, void *rec, unsigned deadline_ms);
/* The record of key, or NULL (never added, released, deadline passed; p NULL). */
void *ims_pending_get(const ims_pending *p, uint64_t key);
/* Takes the record of key out of the table (deadline cancelled, cleanup not run) into *rec (may
 * be NULL). 0, or -1 when key is not in the table (*rec set to NULL). */
int ims_pending_release(ims_pending *p, uint64_t key, void **rec);
size_t ims_pending_count(const ims_pending *p);

/* Key as a callback argument and back. */
static inline void *ims_pending_arg(uint64_t key)
{
    return (void *)(uintptr_t)key;
}

static inline uint64_t ims_pending_key(const void *arg)
{
    return (uint64_t)(uintptr_t)arg;
}

#endif
