/*
 * hss_store_auth.c: the MAR path of the HSS store: the credentials lookup, and SQNs handed out
 * from memory under durable reservations.
 *
 * Lookup: a MAR needs one IMPI row and whether its IMPU belongs to the same subscription
 * (TS 29.228 §6.3: 5001 / 5002), not the whole subscription with its iFCs: one cached statement.
 *
 * TS 33.102 §6.3.2 / Annex C: the HSS must never send two vectors with the same SQN, and the
 * SQNs it sends must increase. Committing every SQN to disk before its vector leaves (one fsync
 * per MAR) caps the HSS at a few thousand MAR/s. Instead the impi.sqn column holds a durable
 * high-water mark: "every SQN up to here may have left". Per IMPI this process keeps in memory
 * the last SQN it handed out and how many SQN steps are still free below the mark:
 *
 *   - a MAR takes its SQNs from memory while the reservation lasts;
 *   - when it runs out, the mark is moved HSS_SQN_BLOCK (+ the SQNs asked for) steps further
 *     and committed (WAL, synchronous=FULL) BEFORE any SQN of the new block is returned;
 *   - at start (or after a crash) nothing is in memory: the next SQN follows the stored mark,
 *     which is above every SQN that ever left. The unused rest of a block is skipped.
 *   - a clean close writes the last SQN handed out back, so an orderly restart skips nothing.
 *
 * Bound on the jump (documented in the README): after a crash the SQN of an IMPI jumps by at
 * most HSS_SQN_BLOCK + 32 SEQ steps. TS 33.102 C.2.2 lets the USIM accept any SEQ above its
 * highest accepted one within a window Δ (suggested 2^28); 1,032 is far inside it. Skipping SQNs
 * is allowed (Annex C: only "fresh", i.e. increasing, SQNs are required). A USIM with the
 * optional limit L on consecutive jumps (C.2.2) answers a too-large jump with a resync, which
 * still works.
 *
 * Resync (TS 33.102 §6.3.5): SQN_MS from a verified AUTS moves the in-memory SQN up to SQN_MS;
 * when SQN_MS is at or above the mark, the mark is moved to SQN_MS and committed before the
 * answer leaves, so the resynchronised SQN survives a crash too.
 *
 * The stored value is only rewritten when it still holds the mark this process wrote
 * (WHERE sqn = mark); otherwise someone else changed it (another process on the file) and the
 * state is reloaded from the row. PUT/DELETE in this process drop the state of the IMPIs they
 * rewrite (hss_sqn_forget*), so a provisioned SQN is honoured from the next MAR on.
 *
 * All functions run with st->lock held (the public ones take it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "ims_aka.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"
/* SQN steps reserved per commit, on top of the SQNs the MAR asked for. */
#define HSS_SQN_BLOCK 1000

typedef struct sqn_entry {
    struct sqn_entry *next;
    uint64_t last;                  /* last SQN handed out (or the stored value we started from) */
    uint64_t mark;                  /* the value of impi.sqn, written by us */
    uint32_t left;                  /* SQN steps after `last` that stay at or below `mark` */
    char impi[];                    /* normalised identity */
} sqn_entry;

struct hss_sqn_cache {
    sqn_entry **buckets;
    size_t n_buckets, count;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;   /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static sqn_entry **slot(hss_sqn_cache *c, const char *impi)
{
    sqn_entry **p = &c->buckets[hash(impi) & (c->n_buckets - 1)];

    while (*p && strcmp((*p)->impi, impi) != 0)
        p = &(*p)->next;
    return p;
}

static sqn_entry *find(hss_store *st, const char *impi)
{
    return st->sqn ? *slot(st->sqn, impi) : NULL;
}

/* Doubles the table when it holds more entries than buckets. */
static void grow(hss_sqn_cache *c)
{
    size_t n = c->n_buckets * 2;
    sqn_entry **b = calloc(n, sizeof(*b));

    if (!b)
        return;   /* keep the longer chains */
    for (size_t i = 0; i < c->n_buckets; i++) {
        for (sqn_entry *e = c->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[hash(e->impi) & (n - 1)];
            b[hash(e->impi) & (n - 1)] = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = n;
}

static sqn_entry *add(hss_store *st, const char *impi, uint64_t stored)
{
    size_t len = strlen(impi) + 1;
    sqn_entry *e;

    if (!st->sqn) {
        hss_sqn_cache *c = calloc(1, sizeof(*c));

        if (!c || !(c->buckets = calloc(1024, sizeof(*c->buckets)))) {
            free(c);
            return NULL;
        }
        c->n_buckets = 1024;
        st->sqn = c;
    }
    if (!(e = malloc(sizeof(*e) + len)))
        return NULL;
    memcpy(e->impi, impi, len);
    e->last = e->mark = stored;
    e->left = 0;
    sqn_entry **p = &st->sqn->buckets[hash(impi) & (st->sqn->n_buckets - 1)];
    e->next = *p;
    *p = e;
    if (++st->sqn->count > st->sqn->n_buckets)
        grow(st->sqn);
    return e;
}

void hss_sqn_forget(hss_store *st, const char *impi)
{
    sqn_entry **p, *e;

    if (!st->sqn || !*(p = slot(st->sqn, impi)))
        return;
    e = *p;
    *p = e->next;
    st->sqn->count--;
    free(e);
}

int hss_sqn_forget_subscription(hss_store *st, const char *id)
{
    st_stmt *stmt;
    int step;

    if (!st->sqn || st->sqn->count == 0)
        return 0;
    stmt = st_query(st, "SELECT identity FROM impi WHERE imsu_id = ?", "t", id);
    while ((step = st_step(st, stmt)) == 1)
        hss_sqn_forget(st, st_col_text(st, stmt, 0));
    st_done(st, stmt);
    return step == 0 ? 0 : -1;
}

bool hss_sqn_cached_last(hss_store *st, const char *impi, uint64_t *last)
{
    sqn_entry *e = find(st, impi);

    if (e)
        *last = e->last;
    return e != NULL;
}

/* The IMPI's entry, loaded from its row when this process has none. NULL + *rc otherwise. */
static sqn_entry *entry(hss_store *st, const char *impi, int *rc)
{
    sqn_entry *e = find(st, impi);
    int64_t stored = 0;
    int found;

    if (e)
        return e;
    found = st_query_int(st, &stored, "SELECT sqn FROM impi WHERE identity = ?", "t", impi);
    if (found != 1) {
        *rc = found == 0 ? HSS_STORE_NOT_FOUND : HSS_STORE_ERROR;
        return NULL;
    }
    if (!(e = add(st, impi, (uint64_t)stored)))
        *rc = HSS_STORE_ERROR;
    return e;
}

/* Commits impi.sqn = mark (only over the mark we wrote last). HSS_STORE_OK, HSS_STORE_ERROR, or
 * HSS_STORE_CONFLICT when the row changed under us (the entry is dropped: reload and retry). */
static int write_mark(hss_store *st, sqn_entry *e, uint64_t mark)
{
    int n = st_change(st, "UPDATE impi SET sqn = ?1 WHERE identity = ?2 AND sqn = ?3", "ItI",
                      (int64_t)mark, e->impi, (int64_t)e->mark);

    if (n < 0) {
        /* st_change logged SQLite's reason (disk full, read-only file, I/O error). */
        IMS_ERROR(LOG_SUB, "cannot store the SQN reservation of %s: no vector is issued", e->impi);
        return HSS_STORE_ERROR;
    }
    if (n == 0) {
        IMS_WARN(LOG_SUB, "SQN of %s changed outside this HSS: reloading it", e->impi);
        hss_sqn_forget(st, e->impi);
        return HSS_STORE_CONFLICT;
    }
    e->mark = mark;
    return HSS_STORE_OK;
}

int hss_store_auth_lookup(hss_store *st, const char *impi, const char *impu, hss_impi *out,
                          hss_impu_owner *owner, char *scscf, size_t scscf_len)
{
    char *ni = impi ? hss_impi_normalise(impi) : NULL, *nu = impu ? hss_impu_normalise(impu) : NULL;
    st_stmt *stmt;
    int rc = HSS_STORE_ERROR, step;

    memset(out, 0, sizeof(*out));
    *owner = HSS_IMPU_UNKNOWN;
    if (scscf && scscf_len)
        scscf[0] = '\0';
    if (!ni || !nu) {
        free(ni);
        free(nu);
        return impi && impu ? HSS_STORE_ERROR : HSS_STORE_NOT_FOUND;
    }
    st_lock(st);
    /* Last column: NULL unknown IMPU, 1 same subscription, 0 another one (CASE: an integer in
     * both dialects; PostgreSQL's = is a boolean). */
    stmt = st_query(st, "SELECT i.identity, i.auth_schemes, i.default_scheme, i.k, i.op,"
                        " i.op_is_opc, i.amf, i.sqn, i.digest_realm, i.ha1,"
                        " (SELECT CASE WHEN u.imsu_id = i.imsu_id THEN 1 ELSE 0 END FROM impu u"
                        " WHERE u.identity = ?2),"
                        " (SELECT s.scscf_name FROM imsu s WHERE s.id = i.imsu_id)"
                        " FROM impi i WHERE i.identity = ?1", "tt", ni, nu);
    if ((step = st_step(st, stmt)) == 1) {
        rc = st_row_impi(st, stmt, out) == 0 ? HSS_STORE_OK : HSS_STORE_ERROR;
        if (!st_col_null(st, stmt, 10))
            *owner = st_col_int(st, stmt, 10) ? HSS_IMPU_SAME : HSS_IMPU_OTHER;
        if (scscf && scscf_len && !st_col_null(st, stmt, 11))
            snprintf(scscf, scscf_len, "%s", st_col_text(st, stmt, 11));
        hss_sqn_cached_last(st, ni, &out->sqn);
    } else if (step == 0) {
        rc = HSS_STORE_NOT_FOUND;
    } else {
        IMS_ERROR(LOG_SUB, "reading %s: %s", ni, st_errmsg(st));
    }
    st_done(st, stmt);
    st_unlock(st);
    if (rc != HSS_STORE_OK)
        hss_impi_clear(out);
    free(ni);
    free(nu);
    return rc;
}

void hss_impi_clear(hss_impi *m)
{
    free(m->identity);
    free(m->digest_realm);
    memset(m, 0, sizeof(*m));
}

/* The SQN before `sqn` (the inverse of ims_sqn_next). */
static uint64_t sqn_prev(uint64_t sqn)
{
    const uint64_t ind_mask = (UINT64_C(1) << IMS_SQN_IND_BITS) - 1;
    const uint64_t seq_mask = (UINT64_C(1) << (48 - IMS_SQN_IND_BITS)) - 1;

    return ((((sqn >> IMS_SQN_IND_BITS) - 1) & seq_mask) << IMS_SQN_IND_BITS) |
           (((sqn & ind_mask) - 1) & ind_mask);
}

/* A shared database (several HSS processes, PostgreSQL): no block is held in memory, since SQNs
 * handed out from two processes' blocks would interleave (A: 5, B: 1005, A: 6) and a USIM must
 * see them increase. Each MAR moves impi.sqn by n steps of ims_sqn_next in one statement: the
 * row lock orders concurrent MARs for one IMPI across processes, and the statement commits
 * (autocommit) before it returns, so no SQN handed out here is ever handed out again, whichever
 * HSS crashes when. The expression is ims_sqn_next applied n times: SEQ + n and IND + n, each
 * wrapping in its own width. */
static int advance_shared(hss_store *st, const char *impi, unsigned n, uint64_t *sqns)
{
    int64_t last = 0;
    int found = 0;

    /* A row that a provisioning replace rewrote under this statement is skipped by it (0 rows):
     * the second try sees the new row. */
    for (int attempt = 0; attempt < 2 && found == 0; attempt++) {
        st_stmt *stmt = st_query(st, "UPDATE impi SET sqn = ((((sqn >> 5) + ?2) & 8796093022207)"
                                     " << 5) | (((sqn & 31) + ?2) & 31) WHERE identity = ?1"
                                     " RETURNING sqn", "ti", impi, (int)n);

        if ((found = st_step(st, stmt)) == 1)
            last = st_col_int(st, stmt, 0);
        st_done(st, stmt);
    }
    if (found < 0) {
        IMS_ERROR(LOG_SUB, "cannot advance the SQN of %s: no vector is issued", impi);
        return HSS_STORE_ERROR;
    }
    if (found == 0)
        return HSS_STORE_NOT_FOUND;
    sqns[n - 1] = (uint64_t)last;
    for (unsigned i = n - 1; i > 0; i--)
        sqns[i - 1] = sqn_prev(sqns[i]);
    return HSS_STORE_OK;
}

static int advance_locked(hss_store *st, const char *impi, unsigned n, uint64_t *sqns)
{
    int rc = HSS_STORE_OK;

    if (st->drv->shared)
        return advance_shared(st, impi, n, sqns);

    for (int attempt = 0; attempt < 3; attempt++) {
        sqn_entry *e = entry(st, impi, &rc);

        if (!e)
            return rc;
        if (e->left < n) {
            uint64_t mark = e->last;

            for (unsigned i = 0; i < n + HSS_SQN_BLOCK; i++)
                mark = ims_sqn_next(mark);
            rc = write_mark(st, e, mark);
            if (rc == HSS_STORE_CONFLICT)
                continue;
            if (rc != HSS_STORE_OK)
                return rc;
            /* Durable now: every SQN up to `mark` may leave. */
            e->left = n + HSS_SQN_BLOCK;
        }
        for (unsigned i = 0; i < n; i++)
            sqns[i] = e->last = ims_sqn_next(e->last);
        e->left -= n;
        return HSS_STORE_OK;
    }
    return HSS_STORE_ERROR;
}

typedef struct {
    const char *impi;
    unsigned n;
    uint64_t *sqns;
} advance_args;

static int advance_txn(hss_store *st, void *arg)
{
    advance_args *a = arg;

    return advance_locked(st, a->impi, a->n, a->sqns);
}

/* True when the reservation held for impi covers n more SQNs: no write needed. Lock held. */
static bool reserved(hss_store *st, const char *impi, unsigned n)
{
    sqn_entry *e = find(st, impi);

    return e && e->left >= n;
}

int hss_store_advance_sqn(hss_store *st, const char *impi, unsigned n, uint64_t *sqns)
{
    char *norm;
    int rc;

    if (n == 0)
        return HSS_STORE_OK;
    if (!impi || !(norm = hss_impi_normalise(impi)))
        return impi ? HSS_STORE_ERROR : HSS_STORE_NOT_FOUND;
    st_lock(st);
    bool from_memory = st->drv->shared || reserved(st, norm, n);
    if (from_memory)
        rc = advance_locked(st, norm, n, sqns);
    st_unlock(st);
    if (!from_memory) {
        /* A new reservation is a write: it shares its commit with concurrent writes
         * (hss_store_group.c) and returns once it is durable. */
        advance_args a = {norm, n, sqns};
        rc = st_write_txn(st, advance_txn, &a);
    }
    free(norm);
    return rc;
}

static uint64_t seq_of(uint64_t sqn)
{
    return sqn >> IMS_SQN_IND_BITS;
}

static int set_locked(hss_store *st, const char *impi, uint64_t sqn)
{
    int rc = HSS_STORE_OK;

    if (st->drv->shared) {
        /* Only upward, in one committed statement (see advance_shared). */
        int n = st_change(st, "UPDATE impi SET sqn = ?2 WHERE identity = ?1 AND sqn < ?2", "tI",
                          impi, (int64_t)sqn);

        if (n != 0)
            return n < 0 ? HSS_STORE_ERROR : HSS_STORE_OK;
        return st_query_int(st, NULL, "SELECT 1 FROM impi WHERE identity = ?", "t", impi) == 1
                   ? HSS_STORE_OK : HSS_STORE_NOT_FOUND;
    }

    for (int attempt = 0; attempt < 3; attempt++) {
        sqn_entry *e = entry(st, impi, &rc);

        if (!e)
            return rc;
        /* Only upward: a stale or replayed resync must not rewind the SQN (TS 33.102 C.3). */
        if (sqn <= e->last)
            return HSS_STORE_OK;
        if (seq_of(sqn) + 1 < seq_of(e->mark)) {
            /* Still inside the reservation: the steps left end one SEQ below the mark, so that
             * whatever IND they carry they stay under it. */
            e->last = sqn;
            e->left = (uint32_t)(seq_of(e->mark) - seq_of(sqn) - 1);
            return HSS_STORE_OK;
        }
        rc = write_mark(st, e, sqn);
        if (rc == HSS_STORE_CONFLICT)
            continue;
        if (rc != HSS_STORE_OK)
            return rc;
        e->last = sqn;
        e->left = 0;
        return HSS_STORE_OK;
    }
    return HSS_STORE_ERROR;
}

int hss_store_set_sqn(hss_store *st, const char *impi, uint64_t sqn)
{
    char *norm;
    int rc;

    if (sqn > IMS_SQN_MAX || !impi || !(norm = hss_impi_normalise(impi)))
        return HSS_STORE_ERROR;
    st_lock(st);
    rc = set_locked(st, norm, sqn);
    st_unlock(st);
    free(norm);
    return rc;
}

void hss_sqn_drop_all(hss_store *st)
{
    hss_sqn_cache *c = st->sqn;

    if (!c)
        return;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (sqn_entry *e = c->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(c->buckets);
    free(c);
    st->sqn = NULL;
}

void hss_sqn_release_all(hss_store *st)
{
    hss_sqn_cache *c = st->sqn;
    size_t written = 0;

    if (!c)
        return;
    /* One transaction: a clean stop costs one commit, however many IMPIs hold a reservation.
     * If it fails, the marks stay: SQNs are skipped, never reused. */
    bool txn = st_exec(st, "BEGIN IMMEDIATE") == 0;
    for (size_t i = 0; txn && i < c->n_buckets; i++)
        for (sqn_entry *e = c->buckets[i]; e; e = e->next)
            if (e->last != e->mark &&
                st_change(st, "UPDATE impi SET sqn = ?1 WHERE identity = ?2 AND sqn = ?3", "ItI",
                          (int64_t)e->last, e->impi, (int64_t)e->mark) == 1)
                written++;
    if (txn && st_exec(st, "COMMIT") != 0) {
        st_rollback(st, "ROLLBACK");
        written = 0;
    }
    if (written)
        IMS_INFO(LOG_SUB, "released the unused SQN reservations of %zu IMPI(s)", written);
    hss_sqn_drop_all(st);
}
