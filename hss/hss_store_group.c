/*
 * hss_store_group.c: group commit of the HSS's write transactions on SQLite (st_write_txn).
 *
 * Why: a COMMIT with synchronous=FULL is an fsync of the WAL, made while st->lock is held (one
 * connection, hss_store.c). Under a registration load every first registration's SAR writes the
 * S-CSCF name and the registration state (hss_store_reg.c), so the four freeDiameter dispatch
 * threads queue behind one fsync after another: at 1,000 AKA registrations/s on the 2-core lab
 * machine (each registration of a user also reserves a block of SQNs at its first MAR, a second
 * commit, hss_store_auth.c) the HSS spent its time waiting for the disk, Cx answers queued and the P-CSCF shed
 * REGISTERs with 503 at 59 % HSS CPU (issue 16). With synchronous=NORMAL the same load passed,
 * which shows where the time went, but NORMAL gives up durability at a power loss.
 *
 * What: writers that arrive while a write transaction is open join it instead of waiting for it
 * to end, and one COMMIT (one fsync) makes all of them durable. Each caller still returns only
 * after the commit that holds its write, so what a caller is told is on disk is on disk, as
 * before. Each write runs inside its own SAVEPOINT, so a failed one (unknown identity, constraint)
 * is rolled back alone; a failed COMMIT fails every write of the group (and drops the in-memory
 * SQN reservations, hss_store_auth.c, which may belong to it).
 *
 *   writer arrives     st->grp.arriving++ (before the lock: it counts who is about to write)
 *   no group open      BEGIN IMMEDIATE, it leads the group
 *   group open         it joins: SAVEPOINT, its statements, RELEASE
 *   leader, own write  waits (lock released) while writers counted in `arriving` are still
 *                      coming, at most GROUP_WAIT_US and GROUP_MAX writes; then COMMIT, tells
 *                      every member its result, closes the group
 *   other operations   st_lock waits while a group is open, so no statement of theirs runs
 *                      inside it and no BEGIN of theirs meets an open transaction
 *
 * The leader waits only for writers already past their first step, so a lone write commits at
 * once (no added latency without concurrency). PostgreSQL commits as before: its server does
 * group commit itself.
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "ims_clock.h"
#include "ims_http.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"

#define GROUP_WAIT_US 2000      /* the longest a leader waits for writers on their way */
#define GROUP_MAX HSS_STORE_GROUP_MAX

/* A COMMIT slower than this is logged: Cx answers that wrote wait for it (a slow or busy disk). */
#define SLOW_COMMIT_US 100000

static ims_metric *m_commits, *m_writes, *m_commit_seconds;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void metrics_init(void)
{
    m_commits = ims_metric_counter("hss_store_commits_total",
                                   "Write transactions committed (a group commit counts once)");
    m_writes = ims_metric_counter("hss_store_committed_writes_total",
                                  "Writes made durable by those commits (writes / commits = the "
                                  "mean group size)");
    m_commit_seconds = ims_metric_histogram("hss_store_commit_seconds",
                                            "Time one COMMIT takes on SQLite: the fsync of the "
                                            "WAL, and any checkpoint SQLite runs with it");
}

/* Times one COMMIT; a slow one is logged (the project's rate limit: at most one line a second,
 * with how many were held back). */
static int timed_commit(hss_store *st, size_t writes)
{
    static ims_log_limit limit;
    int64_t t0 = ims_monotonic_us();
    int rc = st_txn(st, "COMMIT");
    uint64_t took = (uint64_t)(ims_monotonic_us() - t0);
    unsigned long held;

    pthread_once(&metrics_once, metrics_init);
    ims_metric_observe_us(m_commit_seconds, took);
    if (took >= SLOW_COMMIT_US && ims_log_allow(&limit, &held))
        IMS_WARN(LOG_SUB, "subscriber database: a commit of %zu write(s) took %llu ms (%lu more slow "
                 "commits since the last warning); Cx requests that write waited for it: is the "
                 "disk slow or busy?", writes, (unsigned long long)(took / 1000), held);
    return rc;
}

void st_group_init(hss_store *st)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->grp.cv, &ca);
    pthread_condattr_destroy(&ca);
}

void st_group_destroy(hss_store *st)
{
    pthread_cond_destroy(&st->grp.cv);
}

void st_group_wait_closed(hss_store *st)
{
    while (st->grp.open)
        pthread_cond_wait(&st->grp.cv, &st->lock);
}

/* The leader, lock held, its own write done (own: it succeeded): lets the writers on their way
 * join (the wait releases the lock), then commits for all. Returns the group's result. */
static int group_commit(hss_store *st, bool own)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += GROUP_WAIT_US * 1000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (atomic_load(&st->grp.arriving) > 0 && st->grp.n < GROUP_MAX)
        if (pthread_cond_timedwait(&st->grp.cv, &st->lock, &until) == ETIMEDOUT)
            break;

    size_t writes = st->grp.n + (own ? 1 : 0);
    int rc = timed_commit(st, writes) == 0 ? HSS_STORE_OK : HSS_STORE_ERROR;
    if (rc != HSS_STORE_OK) {
        st_rollback(st, "ROLLBACK");
        hss_sqn_drop_all(st);   /* SQN reservations of the group were written in memory too */
    } else {
        st_counts_changed(st);
        ims_metric_inc(m_commits);
        ims_metric_add(m_writes, (int64_t)writes);
    }
    for (size_t i = 0; i < st->grp.n; i++)
        *st->grp.results[i] = rc;
    st->grp.n = 0;
    st->grp.open = false;
    pthread_cond_broadcast(&st->grp.cv);
    return rc;
}

/* One write inside the open group, in its own savepoint. Lock held. */
static int group_write(hss_store *st, int (*fn)(hss_store *, void *), void *arg)
{
    if (st_exec(st, "SAVEPOINT w") != 0)
        return HSS_STORE_ERROR;
    int rc = fn(st, arg);
    if (rc != HSS_STORE_OK)
        st_rollback(st, "ROLLBACK TO w");
    if (st_exec(st, "RELEASE w") != 0 && rc == HSS_STORE_OK)
        rc = HSS_STORE_ERROR;
    return rc;
}

int st_write_txn(hss_store *st, int (*fn)(hss_store *, void *), void *arg)
{
    int rc;

    if (st->drv == &st_pg_driver) {
        st_lock(st);
        if (st->bulk) {
            rc = group_write(st, fn, arg);      /* inside the import's transaction */
            st_unlock(st);
            return rc;
        }
        if (st_txn(st, "BEGIN IMMEDIATE") != 0) {
            st_unlock(st);
            return HSS_STORE_ERROR;
        }
        rc = fn(st, arg);
        if (rc == HSS_STORE_OK && st_txn(st, "COMMIT") != 0)
            rc = HSS_STORE_ERROR;
        if (rc != HSS_STORE_OK)
            st_rollback(st, "ROLLBACK");
        else
            st_counts_changed(st);
        st_unlock(st);
        return rc;
    }

    atomic_fetch_add(&st->grp.arriving, 1);
    st_lock_nowait(st);
    if (st->bulk) {
        /* Inside the bulk transaction (an import): it commits at its end. */
        atomic_fetch_sub(&st->grp.arriving, 1);
        rc = group_write(st, fn, arg);
        st_unlock(st);
        return rc;
    }

    if (st->grp.open && st->grp.n < GROUP_MAX && st->drv->in_txn(st)) {
        /* Join: the leader commits for us. (Not when an error made SQLite roll the group's
         * transaction back already: a SAVEPOINT would then start and commit one of its own.) */
        int result = HSS_STORE_ERROR;
        rc = group_write(st, fn, arg);
        if (rc == HSS_STORE_OK)
            st->grp.results[st->grp.n++] = &result;
        atomic_fetch_sub(&st->grp.arriving, 1);
        pthread_cond_broadcast(&st->grp.cv);    /* the leader counts who is still coming */
        if (rc != HSS_STORE_OK) {
            st_unlock(st);
            return rc;
        }
        uint64_t gen = st->grp.gen;
        while (st->grp.open && st->grp.gen == gen)
            pthread_cond_wait(&st->grp.cv, &st->lock);
        st_unlock(st);
        return result;
    }

    st_group_wait_closed(st);                   /* a full group: the next one */
    /* IMMEDIATE takes the write lock up front, so a read-then-write never fails half-way with
     * SQLITE_BUSY on the lock upgrade (another process on the file: imsctl). */
    if (st_txn(st, "BEGIN IMMEDIATE") != 0) {
        atomic_fetch_sub(&st->grp.arriving, 1);
        st_unlock(st);
        return HSS_STORE_ERROR;
    }
    st->grp.open = true;
    st->grp.gen++;
    st->grp.n = 0;
    rc = group_write(st, fn, arg);
    atomic_fetch_sub(&st->grp.arriving, 1);
    int group_rc = group_commit(st, rc == HSS_STORE_OK);
    st_unlock(st);
    return rc != HSS_STORE_OK ? rc : group_rc;
}
