/*
 * pcscf_bindsync: bindings and reg-event subscriptions in the state store. See pcscf_bindsync.h
 * for what is kept and why; the machinery is common/ims_statesync.c (shared with the S-CSCF), the
 * records and their checks pcscf_bindrecord.c.
 *
 * The bindings store tells about changes through pcscf_bindings_on_sync (every place that changes
 * a binding is in pcscf_bindings.c: REGISTER, reg event, expiry, flow move), pcscf_regevent.c
 * through pcscf_bindsync_changed / _removed.
 */
#include "pcscf_bindsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ims_clock.h"
#include "ims_log.h"

#define SUBSYS "pcscf.store"

typedef struct {
    pcscf_bindrecord r;
    char *key;
} loaded_bind;

typedef struct pcscf_bindsync {
    pcscf_context *ctx;
    ims_statesync *sync;
    bool applying;                     /* load: the bindings store's changes are not writes */
    loaded_bind *binds;                /* records of the load in progress */
    size_t n_binds, cap_binds;
    pcscf_subrecord *subs;
    size_t n_subs, cap_subs;
} pcscf_bindsync;

/* ---------- write-through ---------- */

static int encode(void *arg, ims_statesync_ent *e, char **key, char **json, int64_t *ttl)
{
    pcscf_bindsync *s = arg;
    int64_t mono = ims_monotonic_s(), wall = (int64_t)time(NULL);
    *key = *json = NULL;
    if (e->kind == PCSCF_SYNC_SUB) {
        pcscf_subrecord r;
        if (!pcscf_regevent_export(e, &r, mono, wall))
            return 0;   /* no dialog to keep */
        *key = pcscf_subrecord_key(r.impu);
        *json = *key ? pcscf_subrecord_encode(&r, s->ctx->record_key, wall, ttl) : NULL;
        if (*key && *json)
            return 0;
        IMS_ERROR(SUBSYS, "cannot make the record of the reg subscription of %s", r.impu);
    } else {
        pcscf_binding *b = IMS_STATESYNC_OBJ(e, pcscf_binding, sync);
        if (!pcscf_bindrecord_storable(&b->source))
            return 0;   /* TCP / IPsec: does not survive a restart (pcscf_bindsync.h) */
        *key = pcscf_bindrecord_key(b->impu, &b->source);
        *json = *key ? pcscf_bindrecord_encode(b, s->ctx->record_key, mono, wall, ttl) : NULL;
        if (*key && *json)
            return 0;
        IMS_ERROR(SUBSYS, "cannot make the record of the binding of %s", b->impu);
    }
    free(*key);
    free(*json);
    *key = *json = NULL;
    return -1;
}

void pcscf_bindsync_changed(pcscf_context *ctx, ims_statesync_ent *e)
{
    if (ctx->sync && !ctx->sync->applying && !ctx->stopping)
        ims_statesync_changed(ctx->sync->sync, e);
}

void pcscf_bindsync_removed(pcscf_context *ctx, ims_statesync_ent *e)
{
    if (ctx->sync && !ctx->stopping)
        ims_statesync_removed(ctx->sync->sync, e);
}

static void binding_changed(void *arg, pcscf_binding *b)
{
    pcscf_bindsync *s = arg;
    pcscf_bindsync_changed(s->ctx, &b->sync);
}

static void binding_removed(void *arg, pcscf_binding *b)
{
    pcscf_bindsync *s = arg;
    pcscf_bindsync_removed(s->ctx, &b->sync);
}

/* ---------- load at start ---------- */

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    size_t c = *cap ? *cap * 2 : 64;
    void *nv = realloc(v, c * size);
    if (nv)
        *cap = c;
    return nv;
}

static int load_item(void *arg, const char *index, const char *key, const char *value, size_t len, char *err,
                     size_t errlen)
{
    pcscf_bindsync *s = arg;
    int64_t wall = (int64_t)time(NULL);
    if (strcmp(index, "bind") == 0) {
        loaded_bind *v = grow(s->binds, &s->cap_binds, s->n_binds, sizeof(*v));
        if (!v) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->binds = v;
        loaded_bind *lb = &s->binds[s->n_binds];
        if (pcscf_bindrecord_decode(key, value, len, s->ctx->record_key, wall, &lb->r, err, errlen))
            return -1;
        if (!(lb->key = strdup(key))) {
            pcscf_bindrecord_free(&lb->r);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->n_binds++;
        return 0;
    }
    pcscf_subrecord *v = grow(s->subs, &s->cap_subs, s->n_subs, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->subs = v;
    if (pcscf_subrecord_decode(key, value, len, s->ctx->record_key, wall, &s->subs[s->n_subs], err, errlen))
        return -1;
    s->n_subs++;
    return 0;
}

static void free_loaded(pcscf_bindsync *s)
{
    for (size_t i = 0; i < s->n_binds; i++) {
        pcscf_bindrecord_free(&s->binds[i].r);
        free(s->binds[i].key);
    }
    for (size_t i = 0; i < s->n_subs; i++)
        pcscf_subrecord_free(&s->subs[i]);
    free(s->binds);
    free(s->subs);
    s->binds = NULL;
    s->subs = NULL;
    s->n_binds = s->cap_binds = s->n_subs = s->cap_subs = 0;
}

/* One binding from its record: contacts that expired while we were down are left out. */
static bool apply_binding(pcscf_bindsync *s, const pcscf_bindrecord *r, const char *key)
{
    pcscf_context *ctx = s->ctx;
    int64_t now = ims_monotonic_s(), wall = (int64_t)time(NULL);
    pcscf_contact contacts[PCSCF_REC_MAX_CONTACTS];
    size_t n = 0;
    for (size_t i = 0; i < r->n_contacts; i++) {
        if (r->contacts[i].expires <= wall)
            continue;
        contacts[n].uri = r->contacts[i].uri;
        contacts[n++].expires = now + (r->contacts[i].expires - wall);
    }
    if (!n || pcscf_bindings_get(ctx->bindings, r->impu, &r->source))
        return false;
    pcscf_binding_update u = {
        .impu = r->impu, .source = &r->source,
        .impus = (const char *const *)r->impus, .n_impus = r->n_impus,
        .service_route = (const char *const *)r->routes, .n_service_route = r->n_routes, .replace_route = true,
        .contacts = contacts, .n_contacts = n,
    };
    if (pcscf_bindings_update(ctx->bindings, &u, now) != PCSCF_BINDING_CREATED)
        return false;
    pcscf_binding *b = (pcscf_binding *)pcscf_bindings_get(ctx->bindings, r->impu, &r->source);
    if (b)
        ims_statesync_loaded(s->sync, &b->sync, key);
    IMS_DEBUG(SUBSYS, "binding of %s from %s:%u/%s restored (%zu contact(s))", r->impu, r->source.host,
              r->source.port, r->source.transport, n);
    return b != NULL;
}

static size_t load_end(void *arg, bool complete, size_t *dropped)
{
    pcscf_bindsync *s = arg;
    pcscf_context *ctx = s->ctx;
    size_t n = 0, subs = 0;
    *dropped = 0;
    if (complete) {
        int64_t now = ims_monotonic_s(), wall = (int64_t)time(NULL);
        s->applying = true;
        for (size_t i = 0; i < s->n_binds; i++)
            n += apply_binding(s, &s->binds[i].r, s->binds[i].key);
        /* a subscription only for a user registered here (its identity is a restored binding's) */
        for (size_t i = 0; i < s->n_subs; i++) {
            ims_statesync_ent *e = NULL;
            const pcscf_subrecord *r = &s->subs[i];
            char *key = pcscf_subrecord_key(r->impu);
            if (key && pcscf_bindings_has_impu(ctx->bindings, r->impu) &&
                pcscf_regevent_restore(ctx, r, now, wall, &e) == 0) {
                ims_statesync_loaded(s->sync, e, key);
                subs++;
            } else {
                IMS_WARN(SUBSYS, "reg subscription record of %s not restored (no binding of it, or in use)", r->impu);
            }
            free(key);
        }
        s->applying = false;
        *dropped = s->n_binds - n + s->n_subs - subs;
        /* users without a restored subscription subscribe anew (TS 24.229 §5.2.3) */
        for (const pcscf_binding *b = pcscf_bindings_first(ctx->bindings); b && ctx->cfg.pcscf.subscribe_reg_event;
             b = b->next)
            pcscf_regevent_ensure(ctx, b);
        ims_metric_set(ctx->m_bindings, (int64_t)pcscf_bindings_count(ctx->bindings));
        IMS_INFO(SUBSYS, "restored %zu binding(s) and %zu reg subscription(s)", n, subs);
    }
    free_loaded(s);
    return n;
}

static const char *const indexes[] = { "bind", "sub", NULL };

static const ims_statesync_ops sync_ops = {
    .subsys = SUBSYS, .what = "binding(s)", .metric_prefix = "pcscf_store", .indexes = indexes,
    .encode = encode, .load_item = load_item, .load_end = load_end,
};

/* ---------- start / stop ---------- */

int pcscf_bindsync_start(pcscf_context *ctx, char *err, size_t errlen)
{
    pcscf_bindsync *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->ctx = ctx;
    ctx->sync = s;
    /* our name: sip.hostname (stable across restarts and pod replacements) and port, else our URI */
    char name[300];
    if (ctx->cfg.sip.hostname && *ctx->cfg.sip.hostname)
        snprintf(name, sizeof(name), "sip:%s:%ld", ctx->cfg.sip.hostname, (long)ctx->cfg.sip.port);
    else
        snprintf(name, sizeof(name), "%s", ctx->self_uri);
    s->sync = ims_statesync_open(&ctx->cfg.store, name, ctx->sip, &sync_ops, s, err, errlen);
    if (!s->sync)
        return -1;
    bool redis = ims_statesync_durable(s->sync);
    if (redis)
        pcscf_bindings_on_sync(ctx->bindings, binding_changed, binding_removed, s);
    IMS_INFO(SUBSYS, "bindings: %s store%s%s (prefix %s)", ims_state_backend(ims_statesync_store(s->sync)),
             redis ? " at " : "", redis ? ctx->cfg.store.redis : "", ims_state_prefix(ims_statesync_store(s->sync)));
    return 0;
}

void pcscf_bindsync_stop(pcscf_context *ctx)
{
    pcscf_bindsync *s = ctx->sync;
    if (!s)
        return;
    if (ctx->bindings)
        pcscf_bindings_on_sync(ctx->bindings, NULL, NULL, NULL);
    ims_statesync_close(s->sync);   /* outstanding completions run now (ignored) */
    free_loaded(s);
    ctx->sync = NULL;
    free(s);
}

bool pcscf_bindsync_loading(const pcscf_context *ctx)
{
    return ctx->sync && ims_statesync_loading(ctx->sync->sync);
}

bool pcscf_bindsync_ready(const pcscf_context *ctx, char *why, size_t whylen)
{
    return !ctx->sync || ims_statesync_ready(ctx->sync->sync, why, whylen);
}
