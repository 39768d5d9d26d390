/*
 * ims_authlimit: failed-authentication counters with a lockout, keyed by a string (the S-CSCF
 * keys them by private identity, the P-CSCF by the UE's source address).
 *
 * Why: TS 33.203 §6.1 and RFC 3261 §22 / RFC 3310 say how a UE proves who it is, not how many
 * times it may try; digest passwords (TS 24.229 §5.4.1.2.1B) can be guessed. An operator policy
 * "N failures within W seconds lock the key for L seconds" bounds the guessing rate and the Cx
 * load (no MAR is sent for a locked key).
 *
 * Semantics: a fixed window starts at the first failure; the max_failures-th failure inside it
 * locks the key for `lockout` seconds and restarts the count. A success does not clear the count
 * (an attacker could otherwise interleave a registration of his own to reset it). max_failures 0
 * disables the limiter. At most max_entries keys are tracked: when full, idle entries are swept;
 * if none can go, the new key is not tracked (logged by the caller's metrics, never a crash).
 *
 * Not thread-safe: each NF uses it from its SIP loop only. Times are monotonic seconds.
 */
#ifndef IMS_AUTHLIMIT_H
#define IMS_AUTHLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ims_authlimit ims_authlimit;

ims_authlimit *ims_authlimit_new(long max_failures, long window, long lockout, size_t max_entries);
void ims_authlimit_free(ims_authlimit *l);

/* Seconds of lockout left for key (0: not locked). */
long ims_authlimit_locked(ims_authlimit *l, const char *key, int64_t now);
/* Records one failure of key. True when this failure starts a lockout. */
bool ims_authlimit_fail(ims_authlimit *l, const char *key, int64_t now);
/* Failures of key in its current window (0 when unknown or locked). */
long ims_authlimit_failures(ims_authlimit *l, const char *key, int64_t now);
/* Forgets entries whose window and lockout are over. */
void ims_authlimit_sweep(ims_authlimit *l, int64_t now);
/* Keys tracked. */
size_t ims_authlimit_count(const ims_authlimit *l);

#endif
