/*
 * ims_authlimit: failed-authentication counters with a lockout. See ims_authlimit.h.
 *
 * A chained hash table (FNV-1a) of fixed size: the keys are identities or addresses that have
 * failed recently, a small set next to the registered users.
 */
#include "ims_authlimit.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096

typedef struct entry {
    struct entry *next;
    int64_t window_start;   /* first failure of the current window */
    int64_t locked_until;   /* 0: not locked */
    long failures;          /* in the current window */
    char key[];
} entry;

struct ims_authlimit {
    long max_failures, window, lockout;
    size_t max_entries, count;
    int64_t full_sweep;     /* last sweep made because the table was full (at most one a second) */
    entry *buckets[BUCKETS];
};

static size_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h % BUCKETS;
}

ims_authlimit *ims_authlimit_new(long max_failures, long window, long lockout, size_t max_entries)
{
    ims_authlimit *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->max_failures = max_failures > 0 ? max_failures : 0;
    l->window = window > 0 ? window : 1;
    l->lockout = lockout > 0 ? lockout : 1;
    l->max_entries = max_entries ? max_entries : 100000;
    return l;
}

void ims_authlimit_free(ims_authlimit *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        entry *e = l->buckets[i];
        while (e) {
            entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(l);
}

static entry *find(ims_authlimit *l, const char *key)
{
    for (entry *e = l->buckets[hash(key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Nothing left to remember: the window is over and no lockout runs. */
static bool idle(const ims_authlimit *l, const entry *e, int64_t now)
{
    return e->locked_until <= now && now - e->window_start >= l->window;
}

long ims_authlimit_locked(ims_authlimit *l, const char *key, int64_t now)
{
    if (!l || !l->max_failures || !key)
        return 0;
    entry *e = find(l, key);
    return e && e->locked_until > now ? (long)(e->locked_until - now) : 0;
}

long ims_authlimit_failures(ims_authlimit *l, const char *key, int64_t now)
{
    if (!l || !key)
        return 0;
    entry *e = find(l, key);
    if (!e || e->locked_until > now || now - e->window_start >= l->window)
        return 0;
    return e->failures;
}

bool ims_authlimit_fail(ims_authlimit *l, const char *key, int64_t now)
{
    if (!l || !l->max_failures || !key)
        return false;
    entry *e = find(l, key);
    if (!e) {
        if (l->count >= l->max_entries && l->full_sweep != now) {
            l->full_sweep = now;
            ims_authlimit_sweep(l, now);
        }
        if (l->count >= l->max_entries)
            return false;   /* full of live entries: this key goes untracked */
        size_t len = strlen(key);
        e = calloc(1, sizeof(*e) + len + 1);
        if (!e)
            return false;
        memcpy(e->key, key, len + 1);
        e->window_start = now;
        size_t h = hash(key);
        e->next = l->buckets[h];
        l->buckets[h] = e;
        l->count++;
    }
    if (e->locked_until > now)
        return false;   /* already locked: the lockout is not extended by further attempts */
    if (now - e->window_start >= l->window) {
        e->window_start = now;
        e->failures = 0;
    }
    if (++e->failures < l->max_failures)
        return false;
    e->locked_until = now + l->lockout;
    e->failures = 0;
    e->window_start = e->locked_until;   /* a new window starts when the lockout ends */
    return true;
}

void ims_authlimit_sweep(ims_authlimit *l, int64_t now)
{
    if (!l)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        entry **pp = &l->buckets[i];
        while (*pp) {
            entry *e = *pp;
            if (idle(l, e, now)) {
                *pp = e->next;
                free(e);
                l->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

size_t ims_authlimit_count(const ims_authlimit *l)
{
    return l ? l->count : 0;
}
