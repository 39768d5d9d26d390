/*
 * ims_map: see ims_map.h.
 *
 * A chained hash table (FNV-1a) that doubles when it reaches 3/4 load; an entry is one allocation
 * (key stored inline) to keep per-user memory small.
 */
#include "ims_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct map_entry {
    struct map_entry *next;
    void *val;
    uint32_t hash;
    char key[];
} map_entry;

struct ims_map {
    map_entry **buckets;
    size_t n_buckets;
    size_t count;
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

uint64_t ims_hash64(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

ims_map *ims_map_new(void)
{
    ims_map *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n_buckets = 64;
    m->buckets = calloc(m->n_buckets, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void ims_map_free(ims_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        map_entry *e = m->buckets[i];
        while (e) {
            map_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

static map_entry **slot(const ims_map *m, const char *key, uint32_t h)
{
    map_entry **pp = &m->buckets[h & (m->n_buckets - 1)];
    while (*pp && !((*pp)->hash == h && strcmp((*pp)->key, key) == 0))
        pp = &(*pp)->next;
    return pp;
}

void *ims_map_get(const ims_map *m, const char *key)
{
    if (!m || !key)
        return NULL;
    map_entry **pp = slot(m, key, fnv1a(key));
    return *pp ? (*pp)->val : NULL;
}

static void grow(ims_map *m)
{
    size_t n = m->n_buckets * 2;
    map_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;   /* stays correct, just slower */
    for (size_t i = 0; i < m->n_buckets; i++) {
        map_entry *e = m->buckets[i];
        while (e) {
            map_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
}

int ims_map_put(ims_map *m, const char *key, void *val)
{
    if (!m || !key)
        return -1;
    uint32_t h = fnv1a(key);
    map_entry **pp = slot(m, key, h);
    if (*pp) {
        (*pp)->val = val;
        return 0;
    }
    size_t kl = strlen(key);
    map_entry *e = malloc(sizeof(*e) + kl + 1);
    if (!e)
        return -1;
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->val = val;
    e->next = NULL;
    *pp = e;
    if (++m->count > m->n_buckets * 3 / 4)
        grow(m);
    return 0;
}

void *ims_map_del(ims_map *m, const char *key)
{
    if (!m || !key)
        return NULL;
    map_entry **pp = slot(m, key, fnv1a(key));
    map_entry *e = *pp;
    if (!e)
        return NULL;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

size_t ims_map_count(const ims_map *m)
{
    return m ? m->count : 0;
}

void ims_map_foreach(ims_map *m, int (*fn)(void *arg, const char *key, void *val), void *arg)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        map_entry *e = m->buckets[i];
        while (e) {
            map_entry *next = e->next;
            if (fn(arg, e->key, e->val))
                return;
            e = next;
        }
    }
}
