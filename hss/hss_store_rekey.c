/*
 * hss_store_rekey.c: brings the identity keys of a database written by an older HSS to the
 * canonical form of common/ims_identity, at open.
 *
 * Older HSS versions stored an IMPU with only its scheme and host lower-cased, keeping URI
 * parameters (";user=phone"), %-escapes as written and tel: visual separators. Lookups now
 * normalise their argument with ims_identity (parameters dropped, escapes of unreserved
 * characters decoded, separators removed), so such a row would no longer be found. The schema
 * is unchanged (impu.identity stays the primary key, BINARY collation: the user part is
 * case-sensitive, RFC 3261 §19.1.4); only the key text of those rows is rewritten, in one
 * transaction. A row whose canonical key is already another row's (the same identity provisioned
 * twice in two spellings) is left as it is and named in a warning: which one is right is the
 * operator's call. IMPI keys (realm lower-cased) are the same as before and need nothing.
 *
 * Cost: one scan of the impu primary-key index per open (about a second per million rows);
 * there is no version mark to skip it, because an older HSS may still write to the same file.
 *
 * References: RFC 3261 §19.1.4, RFC 3966 §3, TS 23.003 §13.4, TS 29.228 Annex E.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "hss_store.h"
#include "hss_store_priv.h"
#include "hss_subscriber.h"
#include "ims_log.h"

#define LOG_SUB "hss.store"

typedef struct {
    char **old, **key;
    size_t n, cap;
} rekey_list;

static void list_free(rekey_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->old[i]);
        free(l->key[i]);
    }
    free(l->old);
    free(l->key);
}

static int list_add(rekey_list *l, const char *old, char *key)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **o = realloc(l->old, cap * sizeof(*o));
        if (o)
            l->old = o;
        char **k = o ? realloc(l->key, cap * sizeof(*k)) : NULL;
        if (!k)
            return -1;
        l->key = k;
        l->cap = cap;
    }
    if (!(l->old[l->n] = strdup(old)))
        return -1;
    l->key[l->n++] = key;
    return 0;
}

/* Rows whose key is not canonical, collected before any UPDATE (rewriting the primary key while
 * scanning it could visit a row twice). */
static int collect(hss_store *st, rekey_list *l)
{
    sqlite3_stmt *stmt = NULL;
    int rc = 0, step;

    if (sqlite3_prepare_v2(st->db, "SELECT identity FROM impu", -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    while (rc == 0 && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(stmt, 0);
        char *key = id ? hss_impu_normalise(id) : NULL;
        if (!id)
            continue;
        if (!key)
            rc = -1;
        else if (strcmp(key, id) == 0)
            free(key);
        else if (list_add(l, id, key) != 0) {
            free(key);
            rc = -1;
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -1;
    sqlite3_finalize(stmt);
    return rc;
}

int st_rekey_identities(hss_store *st, const char *path, char *err, size_t errlen)
{
    rekey_list l = {0};
    size_t done = 0;
    int rc = -1;

    if (st_exec(st, "BEGIN IMMEDIATE") != 0)
        goto out;
    if (collect(st, &l) != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        /* OR IGNORE: a key taken by another row leaves this one unchanged (0 rows changed) */
        int n = st_change(st, "UPDATE OR IGNORE impu SET identity = ? WHERE identity = ?", "tt",
                          l.key[i], l.old[i]);
        if (n < 0)
            goto out;
        if (n == 0)
            IMS_WARN(LOG_SUB, "%s: IMPU %s is also stored as %s, its canonical form: left as it is"
                     " (unreachable by lookups); remove one of them", path, l.old[i], l.key[i]);
        done += (size_t)n;
    }
    if (st_exec(st, "COMMIT") != 0)
        goto out;
    if (done)
        IMS_INFO(LOG_SUB, "%s: %zu IMPU key(s) rewritten in canonical form (parameters, escapes,"
                 " tel: separators)", path, done);
    rc = 0;
out:
    if (rc != 0) {
        snprintf(err, errlen, "%s: rewriting identity keys: %s", path, st_errmsg(st));
        st_rollback(st, "ROLLBACK");
    }
    list_free(&l);
    return rc;
}
