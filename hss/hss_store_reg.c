/*
 * hss_store_reg.c: the registration state the SAR writes (TS 29.228 §6.1.2): the state of
 * each public identity and the S-CSCF assigned to the subscription.
 *
 * A registration writes both in one transaction (one commit, one fsync), and callers skip the
 * write when nothing changes (re-registrations, hss_cx.c), so the common SAR costs no disk
 * write at all.
 */
#include <stdlib.h>

#include "hss_store.h"
#include "hss_store_priv.h"

typedef struct {
    const char *id;
    const char *const *impus;
    size_t n;
    hss_reg_state state;
    bool set_scscf;
    const char *name, *host, *realm;
} reg_args;

static int reg_state_txn(hss_store *st, void *arg)
{
    reg_args *a = arg;
    int rc = HSS_STORE_OK;

    if (a->set_scscf)
        rc = st_changed(st_change(st, "UPDATE imsu SET scscf_name = ?, scscf_host = ?,"
                                      " scscf_realm = ? WHERE id = ?", "tttt", a->name,
                                  a->name ? a->host : NULL, a->name ? a->realm : NULL, a->id));
    /* All or nothing: an unknown IMPU fails the whole SAR. */
    for (size_t i = 0; rc == HSS_STORE_OK && i < a->n; i++) {
        char *norm = hss_impu_normalise(a->impus[i]);

        rc = norm ? st_changed(st_change(st, "UPDATE impu SET reg_state = ? WHERE identity = ?"
                                             " AND imsu_id = ?", "itt", (int)a->state, norm, a->id))
                  : HSS_STORE_ERROR;
        free(norm);
    }
    return rc;
}

int hss_store_set_reg_state(hss_store *st, const char *id, const char *const *impus, size_t n,
                            hss_reg_state state)
{
    reg_args a = {id, impus, n, state, false, NULL, NULL, NULL};

    return st_write_txn(st, reg_state_txn, &a);
}

int hss_store_register(hss_store *st, const char *id, const char *name, const char *host,
                       const char *realm, const char *const *impus, size_t n, hss_reg_state state)
{
    reg_args a = {id, impus, n, state, true, name, host, realm};

    return st_write_txn(st, reg_state_txn, &a);
}

int hss_store_set_scscf(hss_store *st, const char *id, const char *name, const char *host,
                        const char *realm)
{
    int rc;

    st_lock(st);
    rc = st_changed(st_change(st, "UPDATE imsu SET scscf_name = ?, scscf_host = ?, scscf_realm = ?"
                                  " WHERE id = ?", "tttt", name, name ? host : NULL,
                              name ? realm : NULL, id));
    st_unlock(st);
    return rc;
}

int hss_store_move_scscf(hss_store *st, const char *impi, const char *name, const char *host,
                         const char *realm)
{
    char *ni = impi ? hss_impi_normalise(impi) : NULL;
    int rc;

    if (!ni || !name)
        return HSS_STORE_ERROR;
    st_lock(st);
    rc = st_changed(st_change(st, "UPDATE imsu SET scscf_name = ?, scscf_host = ?, scscf_realm = ?"
                                  " WHERE id = (SELECT imsu_id FROM impi WHERE identity = ?)", "tttt",
                              name, host, realm, ni));
    st_unlock(st);
    free(ni);
    return rc;
}
