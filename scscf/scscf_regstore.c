/*
 * scscf_regstore: in-memory registrations of the S-CSCF. See scscf_regstore.h.
 *
 * References: TS 23.228 §4.3.3.3 (implicit registration set), TS 29.228 §6.1.2 and Annex E
 * (User-Data), RFC 3261 §10.3 (bindings), §19.1.4 (URI comparison; identity keys from
 * common/ims_identity), RFC 3680 §5.3 (contact events).
 */
#include "scscf_regstore.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/url.h>

#include "ims_identity.h"
#include "scscf_util.h"

struct scscf_regstore {
    scscf_timer_ops ops;
    scscf_expiry_f on_expiry;
    void *arg;
    void (*on_remove)(void *arg, scscf_reg *reg);
    void *remove_arg;
    ims_map *by_impu;          /* identity key -> scscf_reg */
    scscf_reg *head;
    size_t n_regs, n_impus, n_contacts;
    uint32_t next_id;
};

const char *scscf_contact_event_name(int ev)
{
    static const char *const names[] = {
        "registered", "created", "refreshed", "shortened", "expired",
        "deactivated", "probation", "unregistered", "rejected",
    };
    return ev >= 0 && ev < (int)(sizeof(names) / sizeof(names[0])) ? names[ev] : "registered";
}

void scscf_identity_key(const char *uri, char *out, size_t len)
{
    /* The canonical key every NF and the HSS use (common/ims_identity: scheme and host
     * case-insensitive, user part as RFC 3261 §19.1.4 says, no parameters or headers). A
     * name-addr's angle brackets are tolerated here, as callers always could pass them. */
    if (!len)
        return;
    out[0] = '\0';
    const char *p = uri ? uri : "";
    while (*p == ' ' || *p == '\t' || *p == '<')
        p++;
    size_t n = strcspn(p, ">");
    char bare[IMS_IDENTITY_MAX];
    if (n >= sizeof(bare))
        return;   /* longer than any identity we register: matches nothing registered */
    memcpy(bare, p, n);
    bare[n] = '\0';
    while (n && (bare[n - 1] == ' ' || bare[n - 1] == '\t'))
        bare[--n] = '\0';
    if (ims_identity_normalise(bare, out, len) == 0)
        return;
    /* not an identity we normalise: the text itself, so that it matches only itself */
    snprintf(out, len, "%s", bare);
}

scscf_regstore *scscf_regstore_new(const scscf_timer_ops *ops, scscf_expiry_f on_expiry, void *arg)
{
    scscf_regstore *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->by_impu = ims_map_new();
    if (!st->by_impu) {
        free(st);
        return NULL;
    }
    st->ops = *ops;
    st->on_expiry = on_expiry;
    st->arg = arg;
    return st;
}

static void contact_free(scscf_contact *c)
{
    free(c->uri);
    free(c->params);
    free(c->path);
    free(c->call_id);
    free(c->received);
    free(c);
}

static void unindex(scscf_regstore *st, scscf_reg *reg)
{
    char key[512];
    for (size_t i = 0; i < reg->n_impus; i++) {
        scscf_identity_key(reg->impus[i].uri, key, sizeof(key));
        if (ims_map_get(st->by_impu, key) == reg) {
            ims_map_del(st->by_impu, key);
            st->n_impus--;
        }
    }
}

static void impus_free(scscf_reg *reg)
{
    for (size_t i = 0; i < reg->n_impus; i++)
        free(reg->impus[i].uri);
    free(reg->impus);
    reg->impus = NULL;
    reg->n_impus = 0;
}

static void cancel_timer(scscf_regstore *st, scscf_reg *reg)
{
    if (reg->timer && st->ops.cancel)
        st->ops.cancel(st->ops.arg, reg->timer);
    reg->timer = NULL;
    reg->timer_at = 0;
}

static void reg_free(scscf_regstore *st, scscf_reg *reg)
{
    cancel_timer(st, reg);
    while (reg->contacts) {
        scscf_contact *c = reg->contacts;
        reg->contacts = c->next;
        contact_free(c);
        st->n_contacts--;
    }
    impus_free(reg);
    ims_subscription_free(&reg->profile);
    free(reg->impi);
    free(reg->sync.key);
    free(reg);
}

void scscf_regstore_free(scscf_regstore *st)
{
    if (!st)
        return;
    while (st->head) {
        scscf_reg *reg = st->head;
        st->head = reg->next;
        unindex(st, reg);
        reg_free(st, reg);
    }
    ims_map_free(st->by_impu);
    free(st);
}

scscf_reg *scscf_regstore_find(scscf_regstore *st, const char *impu)
{
    char key[512];
    scscf_identity_key(impu, key, sizeof(key));
    return ims_map_get(st->by_impu, key);
}

/* Derives the IRS from the profile: every PublicIdentity of every ServiceProfile, the registered
 * one first (added even if the HSS did not list it). */
static int build_irs(scscf_reg *reg, const char *registered_impu)
{
    size_t total = 1;
    for (size_t p = 0; p < reg->profile.n_profiles; p++)
        total += reg->profile.profiles[p].n_ids;
    scscf_impu *ids = calloc(total, sizeof(*ids));
    if (!ids)
        return -1;
    size_t n = 0;
    char key[512], k2[512];
    scscf_identity_key(registered_impu, key, sizeof(key));
    ids[n].uri = strdup(registered_impu);
    if (!ids[n].uri) {
        free(ids);
        return -1;
    }
    n++;
    for (size_t p = 0; p < reg->profile.n_profiles; p++) {
        const ims_service_profile *sp = &reg->profile.profiles[p];
        for (size_t i = 0; i < sp->n_ids; i++) {
            if (!sp->ids[i].identity)
                continue;
            scscf_identity_key(sp->ids[i].identity, k2, sizeof(k2));
            if (strcmp(k2, key) == 0) {
                ids[0].barred = sp->ids[i].barred;
                continue;
            }
            bool dup = false;
            for (size_t j = 1; j < n && !dup; j++) {
                char k3[512];
                scscf_identity_key(ids[j].uri, k3, sizeof(k3));
                dup = strcmp(k3, k2) == 0;
            }
            if (dup)
                continue;
            ids[n].uri = strdup(sp->ids[i].identity);
            if (!ids[n].uri)
                break;
            ids[n].barred = sp->ids[i].barred;
            n++;
        }
    }
    reg->impus = ids;
    reg->n_impus = n;
    return 0;
}

static int index_reg(scscf_regstore *st, scscf_reg *reg)
{
    char key[512];
    for (size_t i = 0; i < reg->n_impus; i++) {
        scscf_identity_key(reg->impus[i].uri, key, sizeof(key));
        scscf_reg *other = ims_map_get(st->by_impu, key);
        if (other == reg)
            continue;
        if (ims_map_put(st->by_impu, key, reg))
            return -1;
        if (!other)
            st->n_impus++;
    }
    return 0;
}

scscf_reg *scscf_regstore_create(scscf_regstore *st, const char *impi, ims_subscription *profile,
                                 const char *registered_impu)
{
    scscf_reg *reg = calloc(1, sizeof(*reg));
    if (!reg || !(reg->impi = strdup(impi ? impi : ""))) {
        free(reg);
        ims_subscription_free(profile);
        return NULL;
    }
    reg->profile = *profile;
    memset(profile, 0, sizeof(*profile));
    reg->id = ++st->next_id;
    reg->store = st;
    if (build_irs(reg, registered_impu)) {
        ims_subscription_free(&reg->profile);
        free(reg->impi);
        free(reg);
        return NULL;
    }
    reg->next = st->head;
    if (st->head)
        st->head->prev = reg;
    st->head = reg;
    st->n_regs++;
    if (index_reg(st, reg)) {
        scscf_regstore_remove(st, reg);
        return NULL;
    }
    return reg;
}

int scscf_regstore_set_profile(scscf_regstore *st, scscf_reg *reg, ims_subscription *profile,
                               const char *registered_impu)
{
    unindex(st, reg);
    impus_free(reg);
    ims_subscription_free(&reg->profile);
    reg->profile = *profile;
    memset(profile, 0, sizeof(*profile));
    if (build_irs(reg, registered_impu))
        return -1;
    return index_reg(st, reg);
}

void scscf_regstore_remove(scscf_regstore *st, scscf_reg *reg)
{
    if (!reg)
        return;
    if (st->on_remove)
        st->on_remove(st->remove_arg, reg);
    unindex(st, reg);
    if (reg->prev)
        reg->prev->next = reg->next;
    else
        st->head = reg->next;
    if (reg->next)
        reg->next->prev = reg->prev;
    st->n_regs--;
    reg_free(st, reg);
}

void scscf_regstore_on_remove(scscf_regstore *st, void (*fn)(void *arg, scscf_reg *reg), void *arg)
{
    st->on_remove = fn;
    st->remove_arg = arg;
}

void scscf_regstore_set_id(scscf_regstore *st, scscf_reg *reg, uint32_t id)
{
    reg->id = id;
    if (id > st->next_id)
        st->next_id = id;
}

static void fire(void *p)
{
    scscf_reg *reg = p;
    scscf_regstore *st = reg->store;
    reg->timer = NULL;
    reg->timer_at = 0;
    if (st->on_expiry)
        st->on_expiry(st->arg, reg);
}

void scscf_regstore_touch(scscf_regstore *st, scscf_reg *reg)
{
    int64_t earliest = 0;
    for (scscf_contact *c = reg->contacts; c; c = c->next)
        if (!earliest || c->expires_at < earliest)
            earliest = c->expires_at;
    if (!earliest) {
        cancel_timer(st, reg);
        return;
    }
    if (reg->timer && reg->timer_at == earliest)
        return;
    cancel_timer(st, reg);
    if (!st->ops.start)
        return;
    int64_t now = st->ops.now ? st->ops.now(st->ops.arg) : 0;
    int64_t secs = earliest - now;
    if (secs < 0)
        secs = 0;
    if (secs > 86400 * 7)
        secs = 86400 * 7;
    reg->timer = st->ops.start(st->ops.arg, (unsigned)(secs * 1000 + 50), fire, reg);
    reg->timer_at = reg->timer ? earliest : 0;
}

void scscf_regstore_foreach(scscf_regstore *st, int (*fn)(void *arg, scscf_reg *reg), void *arg)
{
    scscf_reg *reg = st->head;
    while (reg) {
        scscf_reg *next = reg->next;
        if (fn(arg, reg))
            return;
        reg = next;
    }
}

/* RFC 3261 §19.1.4 through sofia-sip's parser and comparison (in-place decoding of copies). */
static bool same_uri(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return true;
    size_t la = strlen(a), lb = strlen(b);
    if (la > 1024 || lb > 1024)
        return false;
    char ba[1025], bb[1025];
    memcpy(ba, a, la + 1);
    memcpy(bb, b, lb + 1);
    url_t ua, ub;
    if (url_d(&ua, ba) < 0 || url_d(&ub, bb) < 0)
        return false;
    /* scheme, user, password, host, port as RFC 3261 §19.1.4 says (url_cmp); the parameters
     * compared case-insensitively as a whole (transport=UDP equals transport=udp) */
    if (url_cmp(&ua, &ub) != 0)
        return false;
    const char *pa = ua.url_params ? ua.url_params : "", *pb = ub.url_params ? ub.url_params : "";
    return strcasecmp(pa, pb) == 0;
}

scscf_contact *scscf_reg_contact_find(const scscf_reg *reg, const char *uri)
{
    for (scscf_contact *c = reg->contacts; c; c = c->next)
        if (same_uri(c->uri, uri))
            return c;
    return NULL;
}

scscf_contact *scscf_reg_contact_add(scscf_regstore *st, scscf_reg *reg, const char *uri)
{
    scscf_contact *c = calloc(1, sizeof(*c));
    if (!c || !(c->uri = strdup(uri))) {
        free(c);
        return NULL;
    }
    c->id = ++reg->next_contact_id;
    /* append: contacts keep their registration order */
    scscf_contact **pp = &reg->contacts;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    st->n_contacts++;
    return c;
}

void scscf_reg_contact_remove(scscf_regstore *st, scscf_reg *reg, scscf_contact *c)
{
    for (scscf_contact **pp = &reg->contacts; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            contact_free(c);
            st->n_contacts--;
            return;
        }
    }
}

int scscf_contact_set(char **field, const char *value)
{
    char *v = NULL;
    if (value && !(v = strdup(value)))
        return -1;
    free(*field);
    *field = v;
    return 0;
}

size_t scscf_reg_contact_count(const scscf_reg *reg)
{
    size_t n = 0;
    for (const scscf_contact *c = reg->contacts; c; c = c->next)
        n++;
    return n;
}

const ims_service_profile *scscf_reg_service_profile(const scscf_reg *reg, const char *impu)
{
    char key[512], k2[512];
    scscf_identity_key(impu, key, sizeof(key));
    for (size_t p = 0; p < reg->profile.n_profiles; p++) {
        const ims_service_profile *sp = &reg->profile.profiles[p];
        for (size_t i = 0; i < sp->n_ids; i++) {
            scscf_identity_key(sp->ids[i].identity, k2, sizeof(k2));
            if (strcmp(key, k2) == 0)
                return sp;
        }
    }
    return reg->profile.n_profiles ? &reg->profile.profiles[0] : NULL;
}

bool scscf_reg_has_impu(const scscf_reg *reg, const char *impu)
{
    char key[512], k2[512];
    scscf_identity_key(impu, key, sizeof(key));
    for (size_t i = 0; i < reg->n_impus; i++) {
        scscf_identity_key(reg->impus[i].uri, k2, sizeof(k2));
        if (strcmp(key, k2) == 0)
            return true;
    }
    return false;
}

size_t scscf_regstore_impus(const scscf_regstore *st) { return st->n_impus; }
size_t scscf_regstore_contacts(const scscf_regstore *st) { return st->n_contacts; }
size_t scscf_regstore_regs(const scscf_regstore *st) { return st->n_regs; }
