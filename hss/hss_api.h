/*
 * hss_api: the HSS provisioning REST API (JSON over HTTP, see hss/openapi.yaml) and the bulk
 * import of a subscriber file at start.
 *
 *   GET    /api/v1/subscribers?after=ID&limit=N   page of ids in name order; &reg_state=
 *                                                 registered|unregistered|not_registered keeps
 *                                                 those with an IMPU in that state
 *   POST   /api/v1/subscribers                    create (201 + Location)
 *   GET    /api/v1/subscribers/{id}               read (secrets never returned)
 *   PUT    /api/v1/subscribers/{id}               replace (SQN, reg state, S-CSCF kept)
 *   DELETE /api/v1/subscribers/{id}               delete (204)
 *   POST   /api/v1/subscribers/{id}/deregister    administrative de-registration: Cx RTR to
 *                                                 the serving S-CSCF (202; 409 if not registered)
 *   GET    /api/v1/identities/{impi-or-impu}      which subscription holds an identity
 *
 * Handlers run on the HTTP server's threads; everything they touch (store, metrics,
 * on_profile_change) must be thread-safe.
 */
#ifndef HSS_API_H
#define HSS_API_H

#include <stddef.h>

#include "hss_store.h"
#include "ims_http.h"

typedef struct {
    hss_store *store;
    /* Called after a PUT committed a new profile for a subscription that has an assigned
     * S-CSCF, so the Cx side can push it (PPR). May be NULL. */
    void (*on_profile_change)(void *arg, const char *subscription_id);
    /* Sends a Cx RTR for the subscription (TS 29.228 §6.1.3). 0 when sent, -1 + err when it
     * cannot be (not registered, S-CSCF not connected). May be NULL (then 501). */
    int (*deregister)(void *arg, const char *subscription_id, int reason_code,
                      const char *reason_info, char *err, size_t errlen);
    void *arg;
} hss_api_ctx;

/* Adds the /api/v1/... routes to `http`. ctx must outlive the server. Returns 0 / -1. */
int hss_api_register(ims_http *http, hss_api_ctx *ctx);

/* Imports {"subscribers": [ {subscriber}, ... ]} from a .yaml/.yml or .json file, or one
 * subscriber object per line from a .jsonl file (streamed), into the store,
 * replacing subscribers with the same id (idempotent when re-run at every start).
 * Stops at the first error and returns -1 with a message naming the file and the field, e.g.
 * "subscribers.yaml: subscribers[2].impis[0].k: must be 32 hex digits". Returns 0 on success
 * (the count is logged). Subscribers before the failing one stay imported. */
int hss_import_file(hss_store *st, const char *path, char *err, size_t errlen);

#endif
