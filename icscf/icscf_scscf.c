/*
 * icscf_scscf: S-CSCF selection from Server-Capabilities.
 *
 * References:
 *  - TS 29.228 §6.7: capabilities are operator-defined numbers; an S-CSCF is suitable when it has
 *    every Mandatory-Capability; among those, the I-CSCF prefers the ones with most of the
 *    Optional-Capabilities. Server-Name AVPs inside Server-Capabilities name S-CSCFs the HSS
 *    proposes for the user (TS 29.229 §6.3.4): they are candidates as well.
 *  - TS 23.228 §5.2.1 (the I-CSCF selects the S-CSCF), TS 24.229 §5.3.1.2 (on the UAA).
 *
 * Ranking here:
 *  1. candidates: the configured pool (icscf.scscfs, in order) and the Server-Names of the answer;
 *     a Server-Name that is in the pool is the same candidate (compared normalised);
 *  2. a configured S-CSCF must have every mandatory capability; an S-CSCF known only from a
 *     Server-Name has unknown capabilities and is accepted (the HSS proposed it), with no optional
 *     capability counted;
 *  3. most optional capabilities matched first; then one the HSS named; then configuration order,
 *     then answer order — or, with icscf.selection: hash, the highest rendezvous score of the
 *     user's public identity (ims_hash64), so that several S-CSCFs share the first registrations
 *     and a user lands on the same S-CSCF whichever I-CSCF selects;
 *  4. `exclude` (the S-CSCF that failed, on re-selection) is never chosen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icscf_context.h"
#include "ims_map.h"

int icscf_scscf_pool_init(const icscf_cfg *cfg, icscf_scscf **pool, size_t *n, char *err, size_t errlen)
{
    *pool = NULL;
    *n = 0;
    if (!cfg->scscfs.count)
        return 0;
    icscf_scscf *p = calloc(cfg->scscfs.count, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const icscf_scscf_cfg *c = cfg->scscfs.items;
    for (size_t i = 0; i < cfg->scscfs.count; i++) {
        snprintf(p[i].name, sizeof(p[i].name), "%s", c[i].name);
        if (ims_sip_normalise_uri(c[i].name, p[i].norm, sizeof(p[i].norm)))
            snprintf(p[i].norm, sizeof(p[i].norm), "%s", c[i].name);
        for (size_t k = 0; k < c[i].capabilities.count && k < ICSCF_MAX_CAPS; k++)
            p[i].caps[p[i].n_caps++] = (uint32_t)strtoul(c[i].capabilities.items[k], NULL, 10);
    }
    *pool = p;
    *n = cfg->scscfs.count;
    return 0;
}

static bool has_cap(const icscf_scscf *s, uint32_t cap)
{
    for (size_t i = 0; i < s->n_caps; i++)
        if (s->caps[i] == cap)
            return true;
    return false;
}

static void normalise(const char *in, char *out, size_t len)
{
    if (ims_sip_normalise_uri(in, out, len))
        snprintf(out, len, "%s", in);
}

typedef struct {
    const char *name;
    int optional;                    /* optional capabilities matched */
    bool named;                      /* the HSS named it */
    uint64_t score;                  /* rendezvous score (0 without a spread key) */
    size_t order;                    /* pool index, then n_pool + answer index */
} candidate;

static bool better(const candidate *a, const candidate *b)
{
    if (a->optional != b->optional)
        return a->optional > b->optional;
    if (a->named != b->named)
        return a->named;
    if (a->score != b->score)
        return a->score > b->score;
    return a->order < b->order;
}

int icscf_scscf_select(const icscf_scscf *pool, size_t n, const icscf_caps *caps, const char *exclude,
                       const char *spread_key, char *out, size_t outlen)
{
    uint64_t seed = spread_key ? ims_hash64(spread_key, IMS_HASH64_SEED) : 0;
    char ex[ICSCF_URI_MAX] = "";
    if (exclude && *exclude)
        normalise(exclude, ex, sizeof(ex));
    bool have_caps = caps && caps->present;
    candidate best = { 0 };
    bool found = false;

    /* Names from the answer, normalised once. */
    char named[ICSCF_MAX_NAMES][ICSCF_URI_MAX];
    size_t n_named = have_caps ? caps->n_names : 0;
    for (size_t i = 0; i < n_named; i++)
        normalise(caps->names[i], named[i], sizeof(named[i]));

    for (size_t i = 0; i < n; i++) {
        const icscf_scscf *s = &pool[i];
        if (ex[0] && strcmp(s->norm, ex) == 0)
            continue;
        candidate c = { .name = s->name, .order = i, .score = spread_key ? ims_hash64(s->norm, seed) : 0 };
        bool ok = true;
        for (size_t k = 0; have_caps && k < caps->n_mandatory && ok; k++)
            ok = has_cap(s, caps->mandatory[k]);
        if (!ok)
            continue;
        for (size_t k = 0; have_caps && k < caps->n_optional; k++)
            c.optional += has_cap(s, caps->optional[k]);
        for (size_t k = 0; k < n_named && !c.named; k++)
            c.named = strcmp(named[k], s->norm) == 0;
        if (!found || better(&c, &best)) {
            best = c;
            found = true;
        }
    }
    for (size_t i = 0; i < n_named; i++) {
        if (!caps->names[i][0] || (ex[0] && strcmp(named[i], ex) == 0))
            continue;
        bool in_pool = false;
        for (size_t k = 0; k < n && !in_pool; k++)
            in_pool = strcmp(pool[k].norm, named[i]) == 0;
        if (in_pool)
            continue;   /* judged above with its known capabilities */
        candidate c = { .name = caps->names[i], .named = true, .order = n + i,
                        .score = spread_key ? ims_hash64(named[i], seed) : 0 };
        if (!found || better(&c, &best)) {
            best = c;
            found = true;
        }
    }
    if (!found)
        return -1;
    snprintf(out, outlen, "%s", best.name);
    return 0;
}
