/*
 * ims_map: a string-keyed hash map (keys copied, values borrowed), for the in-memory stores of the
 * CSCFs (registrations, challenges, bindings, subscriptions). Not thread-safe: one owner thread.
 */
#ifndef IMS_MAP_H
#define IMS_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ims_map ims_map;

ims_map *ims_map_new(void);
/* Frees the map (not the values). */
void ims_map_free(ims_map *m);
void *ims_map_get(const ims_map *m, const char *key);
/* Inserts or replaces. 0 / -1 (ENOMEM). */
int ims_map_put(ims_map *m, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *ims_map_del(ims_map *m, const char *key);
size_t ims_map_count(const ims_map *m);
/* Calls fn for every entry; fn may delete the entry it is given (and no other). fn returns
 * non-zero to stop. */
void ims_map_foreach(ims_map *m, int (*fn)(void *arg, const char *key, void *val), void *arg);

/* A 64-bit hash of s continuing from seed (FNV-1a, then the splitmix64 finaliser so that close
 * inputs spread over the whole range). Start with IMS_HASH64_SEED. For rendezvous hashing: the
 * score of candidate c for key k is ims_hash64(c, ims_hash64(k, IMS_HASH64_SEED)), the same in
 * every process (the rtpengine instance of a call, the S-CSCF of a user at the I-CSCF). */
#define IMS_HASH64_SEED 0xcbf29ce484222325ULL
uint64_t ims_hash64(const char *s, uint64_t seed);

#endif
