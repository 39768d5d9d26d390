/*
 * ims_pending: key -> pending record with a deadline (see ims_pending.h).
 *
 * Storage: ims_map (string keys: the key in hex) for O(1) lookup and release, plus a doubly
 * linked list of the entries so that ims_pending_free can take them out one by one while a
 * cleanup releases others (ims_map_foreach allows deleting only the visited entry).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ims_log.h"
#include "ims_map.h"
#include "ims_pending.h"

#define KEY_LEN 20   /* 16 hex digits + NUL */

typedef struct pending_entry {
    struct pending_entry *next, *prev;
    ims_pending *p;
    uint64_t key;
    void *rec;
    void *timer;                     /* deadline, or NULL */
} pending_entry;

struct ims_pending {
    ims_map *map;                    /* hex key -> pending_entry */
    pending_entry *head;
    ims_timer_ops ops;
    ims_pending_cleanup_f cleanup;
    void *arg;
    uint64_t last_key;
    char name[48];
};

static void key_str(uint64_t key, char *buf)
{
    snprintf(buf, KEY_LEN, "%" PRIx64, key);
}

static pending_entry *find(const ims_pending *p, uint64_t key)
{
    char k[KEY_LEN];
    if (!p || key == 0)
        return NULL;
    key_str(key, k);
    return ims_map_get(p->map, k);
}

/* Takes e out of the map and the list, cancels its deadline; e itself stays for the caller. */
static void unlink_entry(pending_entry *e)
{
    ims_pending *p = e->p;
    char k[KEY_LEN];
    key_str(e->key, k);
    ims_map_del(p->map, k);
    if (e->prev)
        e->prev->next = e->next;
    else
        p->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    if (e->timer)
        p->ops.cancel(p->ops.arg, e->timer);
    e->timer = NULL;
}

ims_pending *ims_pending_new(const char *name, const ims_timer_ops *ops, ims_pending_cleanup_f cleanup, void *arg)
{
    if (!ops || !ops->start || !ops->cancel || !cleanup)
        return NULL;
    ims_pending *p = calloc(1, sizeof(*p));
    if (!p || !(p->map = ims_map_new())) {
        free(p);
        return NULL;
    }
    p->ops = *ops;
    p->cleanup = cleanup;
    p->arg = arg;
    snprintf(p->name, sizeof(p->name), "%s", name ? name : "pending");
    return p;
}

void ims_pending_free(ims_pending *p)
{
    if (!p)
        return;
    /* one at a time from the head: a cleanup may release other records meanwhile */
    while (p->head) {
        pending_entry *e = p->head;
        unlink_entry(e);
        p->cleanup(p->arg, e->key, e->rec, IMS_PENDING_SHUTDOWN);
        free(e);
    }
    ims_map_free(p->map);
    free(p);
}

static void on_deadline(void *arg)
{
    pending_entry *e = arg;
    ims_pending *p = e->p;
    e->timer = NULL;   /* fired: the timer ops freed it */
    IMS_DEBUG("pending", "%s #%" PRIu64 ": deadline passed", p->name, e->key);
    unlink_entry(e);
    p->cleanup(p->arg, e->key, e->rec, IMS_PENDING_DEADLINE);
    free(e);
}

uint64_t ims_pending_add(ims_pending *p, void *rec, unsigned deadline_ms)
{
    if (!p || !rec)
        return 0;
    pending_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return 0;
    e->p = p;
    e->rec = rec;
    if (++p->last_key == 0)
        ++p->last_key;
    e->key = p->last_key;
    char k[KEY_LEN];
    key_str(e->key, k);
    if (ims_map_put(p->map, k, e) < 0) {
        free(e);
        return 0;
    }
    if (deadline_ms > 0 && !(e->timer = p->ops.start(p->ops.arg, deadline_ms, on_deadline, e))) {
        ims_map_del(p->map, k);
        free(e);
        return 0;
    }
    if ((e->next = p->head))
        e->next->prev = e;
    p->head = e;
    return e->key;
}

void *ims_pending_get(const ims_pending *p, uint64_t key)
{
    pending_entry *e = find(p, key);
    return e ? e->rec : NULL;
}

int ims_pending_release(ims_pending *p, uint64_t key, void **rec)
{
    pending_entry *e = find(p, key);
    if (rec)
        *rec = e ? e->rec : NULL;
    if (!e)
        return -1;
    unlink_entry(e);
    free(e);
    return 0;
}

size_t ims_pending_count(const ims_pending *p)
{
    return p ? ims_map_count(p->map) : 0;
}
