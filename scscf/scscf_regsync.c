/*
 * scscf_regsync: registrations written through to the state store and loaded at start. See
 * scscf_regsync.h for the behaviour; the machinery (dirty marking, flush on the next loop turn,
 * load, reconnect) is common/ims_statesync.c, the record format and its checks scscf_regrecord.c.
 * Here: what a registration's record is, and how the loaded records become registrations.
 */
#include "scscf_regsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ims_log.h"
#include "ims_map.h"
#include "ims_statesync.h"
#include "scscf_reginfo.h"
#include "scscf_regrecord.h"

#define SUBSYS "scscf.store"
/* A registration that expired while we were down expires this long after the load, so that the
 * Diameter connection for its SAR TIMEOUT_DEREGISTRATION is up by then. */
#define LOAD_EXPIRY_DELAY_S 3

typedef struct scscf_regsync {
    scscf_context *ctx;
    ims_statesync *sync;
    scscf_regrecord **loaded;     /* records of the load in progress */
    size_t n_loaded, cap_loaded;
} scscf_regsync;

/* ---------- write-through ---------- */

static int reg_encode(void *arg, ims_statesync_ent *e, char **key, char **json, int64_t *ttl)
{
    (void)arg;
    scscf_reg *reg = IMS_STATESYNC_OBJ(e, scscf_reg, sync);
    *key = scscf_regrecord_key(reg);
    *json = *key ? scscf_regrecord_encode(reg, scscf_now(), (int64_t)time(NULL), ttl) : NULL;
    if (*key && *json)
        return 0;
    IMS_ERROR(SUBSYS, "cannot make the record of %s", reg->n_impus ? reg->impus[0].uri : reg->impi);
    return -1;
}

void scscf_regsync_changed(scscf_context *ctx, scscf_reg *reg)
{
    if (ctx->sync)
        ims_statesync_changed(ctx->sync->sync, &reg->sync);
}

static void on_remove(void *arg, scscf_reg *reg)
{
    scscf_regsync *s = arg;
    ims_statesync_removed(s->sync, &reg->sync);
}

/* ---------- load at start ---------- */

static int load_item(void *arg, const char *index, const char *key, const char *value, size_t len, char *err,
                     size_t errlen)
{
    (void)index;
    scscf_regsync *s = arg;
    scscf_context *ctx = s->ctx;
    scscf_regrecord_limits lim = { .max_expires = ctx->cfg.scscf.max_expires,
                                   .max_sub_expires = ctx->cfg.scscf.reg_event_expires };
    if (s->n_loaded == s->cap_loaded) {
        size_t cap = s->cap_loaded ? s->cap_loaded * 2 : 64;
        scscf_regrecord **n = realloc(s->loaded, cap * sizeof(*n));
        if (!n) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->loaded = n;
        s->cap_loaded = cap;
    }
    scscf_regrecord *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (scscf_regrecord_decode(key, value, len, &lim, (int64_t)time(NULL), r, err, errlen)) {
        free(r);
        return -1;
    }
    s->loaded[s->n_loaded++] = r;
    return 0;
}

/* Every identity belongs to one record (a record cannot take over a user's calls by naming it in
 * its profile): first a record listing an identity that is another record's registered one goes;
 * then, among the rest, records sharing an implicit identity all go (no way to tell which is right). */
static void drop_conflicts(scscf_regsync *s, bool *drop)
{
    ims_map *primary = ims_map_new(), *implicit = ims_map_new();
    char k[512];
    if (!primary || !implicit)
        goto out;
    for (size_t i = 0; i < s->n_loaded; i++) {
        scscf_identity_key(s->loaded[i]->impu, k, sizeof(k));
        ims_map_put(primary, k, s->loaded[i]);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->n_loaded; i++) {
            const scscf_regrecord *r = s->loaded[i];
            for (size_t p = 0; p < r->profile.n_profiles && !drop[i]; p++) {
                for (size_t j = 0; j < r->profile.profiles[p].n_ids && !drop[i]; j++) {
                    scscf_identity_key(r->profile.profiles[p].ids[j].identity, k, sizeof(k));
                    void *owner = ims_map_get(primary, k);
                    if (owner == r)
                        continue;
                    size_t other = (size_t)(uintptr_t)ims_map_get(implicit, k);
                    if (pass == 0 && owner) {
                        drop[i] = true;
                    } else if (pass == 1 && other && other - 1 != i) {
                        drop[i] = drop[other - 1] = true;
                    } else if (pass == 1) {
                        ims_map_put(implicit, k, (void *)(uintptr_t)(i + 1));
                        continue;
                    } else {
                        continue;
                    }
                    IMS_WARN(SUBSYS, "record of %s skipped: %s belongs to another record", r->impu, k);
                }
            }
        }
    }
out:
    ims_map_free(primary);
    ims_map_free(implicit);
}

static bool apply(scscf_regsync *s, scscf_regrecord *r)
{
    scscf_context *ctx = s->ctx;
    int64_t now = scscf_now(), wall = (int64_t)time(NULL);
    if (scscf_regstore_find(ctx->store, r->impu))
        return false;   /* loaded by an earlier walk */
    scscf_reg *reg = scscf_regstore_create(ctx->store, r->impi, &r->profile, r->impu);
    if (!reg)
        return false;
    scscf_regstore_set_id(ctx->store, reg, r->id);
    reg->next_contact_id = r->next_contact_id;
    reg->auth_scheme = r->auth_scheme;
    for (size_t i = 0; i < r->n_contacts; i++) {
        const scscf_rec_contact *rc = &r->contacts[i];
        scscf_contact *c = scscf_reg_contact_add(ctx->store, reg, rc->uri);
        if (!c || scscf_contact_set(&c->params, rc->params) || scscf_contact_set(&c->path, rc->path) ||
            scscf_contact_set(&c->call_id, rc->call_id) || scscf_contact_set(&c->received, rc->received))
            break;
        int64_t at = now + (rc->expires - wall);
        c->expires_at = at > now ? at : now + LOAD_EXPIRY_DELAY_S;
        c->cseq = rc->cseq;
        c->id = rc->id;
        c->event = rc->event;
        if (c->id >= reg->next_contact_id)
            reg->next_contact_id = c->id;
    }
    char *key = scscf_regrecord_key(reg);
    if (key)
        ims_statesync_loaded(s->sync, &reg->sync, key);
    free(key);
    for (size_t i = 0; i < r->n_subs; i++) {
        r->subs[i].expires_at = now + (r->subs[i].expires_at - wall);
        if (scscf_reginfo_restore(ctx, reg, &r->subs[i]))
            IMS_WARN(SUBSYS, "subscription of %s to %s not restored", r->subs[i].remote_uri, r->subs[i].aor);
    }
    scscf_regstore_touch(ctx->store, reg);
    return true;
}

static void free_loaded(scscf_regsync *s)
{
    for (size_t i = 0; i < s->n_loaded; i++) {
        scscf_regrecord_free(s->loaded[i]);
        free(s->loaded[i]);
    }
    free(s->loaded);
    s->loaded = NULL;
    s->n_loaded = s->cap_loaded = 0;
}

static size_t load_end(void *arg, bool complete, size_t *dropped)
{
    scscf_regsync *s = arg;
    size_t n = 0;
    bool *drop = complete ? calloc(s->n_loaded + 1, sizeof(bool)) : NULL;
    if (drop) {
        drop_conflicts(s, drop);
        for (size_t i = 0; i < s->n_loaded; i++)
            n += !drop[i] && apply(s, s->loaded[i]);
    }
    *dropped = complete ? s->n_loaded - n : 0;
    free(drop);
    free_loaded(s);
    if (complete) {
        scscf_update_gauges(s->ctx);
        scscf_regcheck_start(s->ctx);   /* users another S-CSCF took over while we were down */
    }
    return n;
}

static const char *const indexes[] = { "reg", NULL };

static const ims_statesync_ops sync_ops = {
    .subsys = SUBSYS, .what = "registration(s)", .metric_prefix = "scscf_store", .indexes = indexes,
    .encode = reg_encode, .load_item = load_item, .load_end = load_end,
};

/* ---------- start / stop ---------- */

int scscf_regsync_start(scscf_context *ctx, char *err, size_t errlen)
{
    scscf_regsync *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->ctx = ctx;
    ctx->sync = s;
    s->sync = ims_statesync_open(&ctx->cfg.store, ctx->name, ctx->sip, &sync_ops, s, err, errlen);
    if (!s->sync)
        return -1;
    bool redis = ims_statesync_durable(s->sync);
    if (redis)
        scscf_regstore_on_remove(ctx->store, on_remove, s);
    IMS_INFO(SUBSYS, "registrations: %s store%s%s (prefix %s)", ims_state_backend(ims_statesync_store(s->sync)),
             redis ? " at " : "", redis ? ctx->cfg.store.redis : "", ims_state_prefix(ims_statesync_store(s->sync)));
    return 0;
}

void scscf_regsync_stop(scscf_context *ctx)
{
    scscf_regsync *s = ctx->sync;
    if (!s)
        return;
    if (ctx->store)
        scscf_regstore_on_remove(ctx->store, NULL, NULL);
    ims_statesync_close(s->sync);   /* outstanding completions run now (ignored) */
    free_loaded(s);
    ctx->sync = NULL;
    free(s);
}

bool scscf_regsync_loading(const scscf_context *ctx)
{
    return ctx->sync && ims_statesync_loading(ctx->sync->sync);
}

bool scscf_regsync_ready(const scscf_context *ctx, char *why, size_t whylen)
{
    return !ctx->sync || ims_statesync_ready(ctx->sync->sync, why, whylen);
}
