/*
 * pcscf_bindings: registration bindings of the P-CSCF (pcscf_bindings.h).
 *
 * References: TS 24.229 §5.2.2.1 (what the P-CSCF stores from the 200 (OK) to REGISTER: the
 * Service-Route, the P-Associated-URI list, the contact of the UE), RFC 3261 §10.3 (per-contact
 * expiry), RFC 3680 §5 (contact / registration states applied by pcscf_regevent.c).
 *
 * Storage: a doubly linked list of bindings (iteration, expiry sweep) and four hash indexes, so
 * that every per-request lookup costs the same at 10 or 100,000 UEs:
 *   by_key       IMPU + source (address, port, transport) -> the binding (unique);
 *   by_identity  every identity of a binding (its IMPU and P-Associated-URI set) -> the bindings
 *                holding it (a small vector; one UE per identity is the normal case);
 *   by_hostport  source address:port -> a list of bindings threaded through hp_next/hp_prev
 *                (one SIPp process sends for thousands of users from one address:port);
 *   by_contact   contact key (scheme, user, host, port as pcscf_url_same compares them) -> the
 *                bindings holding that contact.
 * A binding is taken out of the identity and contact indexes before it changes and put back
 * after (reindex), which keeps the update code as simple as the list version was.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_map.h"
#include "pcscf_bindings.h"
#include "pcscf_util.h"

struct pcscf_bindings {
    pcscf_binding *head;
    size_t count;
    ims_map *by_key, *by_identity, *by_hostport, *by_contact;
    pcscf_binding_removed_f on_removed;
    void *arg;
    pcscf_binding_sync_f sync_changed, sync_removed;
    void *sync_arg;
};

static void changed(pcscf_bindings *s, pcscf_binding *b)
{
    if (s->sync_changed)
        s->sync_changed(s->sync_arg, b);
}

void pcscf_bindings_on_sync(pcscf_bindings *s, pcscf_binding_sync_f on_changed, pcscf_binding_sync_f on_removed,
                            void *arg)
{
    s->sync_changed = on_changed;
    s->sync_removed = on_removed;
    s->sync_arg = arg;
}

/* ---------- keys and binding vectors ---------- */

#define KEY_MAX 600

static bool binding_key(const char *impu, const pcscf_addr *src, char *out, size_t len)
{
    char id[KEY_MAX];
    if (!pcscf_identity_key(impu, id, sizeof(id)))
        return false;
    int n = snprintf(out, len, "%s\n%s\n%u\n%s", id, src->host, src->port, src->transport);
    return n > 0 && (size_t)n < len;
}

static void hostport_key(const char *host, unsigned port, char *out, size_t len)
{
    snprintf(out, len, "%s\n%u", host, port);
}

/* The parts of a URI that pcscf_url_same compares, as one string. False when unparsable (such a
 * contact never matches, as in pcscf_uri_same). */
static bool contact_key(const char *uri, char *out, size_t len)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    url_t *u = url_make(home, uri);
    bool ok = false;
    if (u && u->url_host) {
        int n;
        if (u->url_type == url_tel) {
            n = snprintf(out, len, "tel\n%s", u->url_host);
        } else {
            /* host case-insensitive (RFC 3261 §19.1.4); a contact is not an identity key */
            char host[256];
            size_t hl = strlen(u->url_host);
            ok = hl < sizeof(host);
            for (size_t i = 0; ok && i <= hl; i++)
                host[i] = (char)tolower((unsigned char)u->url_host[i]);
            n = ok ? snprintf(out, len, "%d\n%s\n%s\n%s", (int)u->url_type, u->url_user ? u->url_user : "",
                              host, u->url_port && *u->url_port ? u->url_port : "5060") : -1;
        }
        ok = n > 0 && (size_t)n < len;
    }
    su_home_deinit(home);
    return ok;
}

typedef struct {
    size_t n, cap;
    pcscf_binding **v;
} bvec;

static int bvec_add(ims_map *m, const char *key, pcscf_binding *b)
{
    bvec *l = ims_map_get(m, key);
    if (!l) {
        if (!(l = calloc(1, sizeof(*l))) || ims_map_put(m, key, l) < 0) {
            free(l);
            return -1;
        }
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == b)
            return 0;   /* an identity both the IMPU and in the set */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1;
        pcscf_binding **v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = b;
    return 0;
}

static void bvec_del(ims_map *m, const char *key, const pcscf_binding *b)
{
    bvec *l = ims_map_get(m, key);
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] == b) {
            l->v[i] = l->v[--l->n];
            break;
        }
    }
    if (l->n == 0) {
        ims_map_del(m, key);
        free(l->v);
        free(l);
    }
}

/* A copy of the bindings of an index entry, for loops that change the store. NULL when none. */
static pcscf_binding **bvec_snapshot(ims_map *m, const char *key, size_t *n)
{
    bvec *l = ims_map_get(m, key);
    *n = 0;
    if (!l || !l->n)
        return NULL;
    pcscf_binding **v = malloc(l->n * sizeof(*v));
    if (v) {
        memcpy(v, l->v, l->n * sizeof(*v));
        *n = l->n;
    }
    return v;
}

static int free_bvec(void *arg, const char *key, void *val)
{
    (void)arg;
    (void)key;
    bvec *l = val;
    free(l->v);
    free(l);
    return 0;
}

/* Adds b to (add) or takes it out of the identity and contact entries of the indexes: they
 * change with its set and contacts. Adding is best effort on ENOMEM: a binding missing from an
 * index is only not found by that lookup. */
static void index_entries(pcscf_bindings *s, pcscf_binding *b, bool add)
{
    char k[KEY_MAX];
    for (size_t i = 0; i <= b->n_impus; i++) {
        const char *id = i == 0 ? b->impu : b->impus[i - 1];
        if (!pcscf_identity_key(id, k, sizeof(k)))
            continue;
        if (add)
            bvec_add(s->by_identity, k, b);
        else
            bvec_del(s->by_identity, k, b);
    }
    for (size_t i = 0; i < b->n_contacts; i++) {
        if (!contact_key(b->contacts[i].uri, k, sizeof(k)))
            continue;
        if (add)
            bvec_add(s->by_contact, k, b);
        else
            bvec_del(s->by_contact, k, b);
    }
}

static void unindex(pcscf_bindings *s, pcscf_binding *b) { index_entries(s, b, false); }
static void reindex(pcscf_bindings *s, pcscf_binding *b) { index_entries(s, b, true); }

static char **strv_dup(const char *const *v, size_t n)
{
    if (!n)
        return NULL;
    char **out = calloc(n, sizeof(char *));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i] ? v[i] : "");
        if (!out[i]) {
            for (size_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void binding_free(pcscf_binding *b)
{
    if (!b)
        return;
    free(b->impu);
    strv_free(b->impus, b->n_impus);
    strv_free(b->service_route, b->n_service_route);
    for (size_t i = 0; i < b->n_contacts; i++)
        free(b->contacts[i].uri);
    free(b->contacts);
    free(b->sync.key);
    free(b);
}

/* ---------- store ---------- */

pcscf_bindings *pcscf_bindings_new(pcscf_binding_removed_f on_removed, void *arg)
{
    pcscf_bindings *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->by_key = ims_map_new();
    s->by_identity = ims_map_new();
    s->by_hostport = ims_map_new();
    s->by_contact = ims_map_new();
    if (!s->by_key || !s->by_identity || !s->by_hostport || !s->by_contact) {
        pcscf_bindings_free(s);
        return NULL;
    }
    s->on_removed = on_removed;
    s->arg = arg;
    return s;
}

void pcscf_bindings_free(pcscf_bindings *s)
{
    if (!s)
        return;
    pcscf_binding *b = s->head;
    while (b) {
        pcscf_binding *n = b->next;
        binding_free(b);
        b = n;
    }
    ims_map_foreach(s->by_identity, free_bvec, NULL);
    ims_map_foreach(s->by_contact, free_bvec, NULL);
    ims_map_free(s->by_key);
    ims_map_free(s->by_identity);
    ims_map_free(s->by_hostport);
    ims_map_free(s->by_contact);
    free(s);
}

size_t pcscf_bindings_count(const pcscf_bindings *s)
{
    return s ? s->count : 0;
}

const pcscf_binding *pcscf_bindings_first(const pcscf_bindings *s)
{
    return s ? s->head : NULL;
}

/* Links a new binding into the list and the key and source indexes. 0 / -1. */
static int link_binding(pcscf_bindings *s, pcscf_binding *b)
{
    char k[KEY_MAX + 128];
    if (!binding_key(b->impu, &b->source, k, sizeof(k)) || ims_map_put(s->by_key, k, b) < 0)
        return -1;
    hostport_key(b->source.host, b->source.port, k, sizeof(k));
    pcscf_binding *first = ims_map_get(s->by_hostport, k);
    if (ims_map_put(s->by_hostport, k, b) < 0) {
        binding_key(b->impu, &b->source, k, sizeof(k));
        ims_map_del(s->by_key, k);
        return -1;
    }
    b->hp_prev = NULL;
    if ((b->hp_next = first))
        first->hp_prev = b;

    b->prev = NULL;
    if ((b->next = s->head))
        s->head->prev = b;
    s->head = b;
    s->count++;
    reindex(s, b);
    return 0;
}

/* Takes b out of the list and every index (the binding itself is left alone). */
static void detach_binding(pcscf_bindings *s, pcscf_binding *b)
{
    char k[KEY_MAX + 128];
    unindex(s, b);
    if (binding_key(b->impu, &b->source, k, sizeof(k)))
        ims_map_del(s->by_key, k);
    if (b->hp_prev) {
        b->hp_prev->hp_next = b->hp_next;
    } else {
        hostport_key(b->source.host, b->source.port, k, sizeof(k));
        if (b->hp_next)
            ims_map_put(s->by_hostport, k, b->hp_next);   /* replaces: no allocation */
        else
            ims_map_del(s->by_hostport, k);
    }
    if (b->hp_next)
        b->hp_next->hp_prev = b->hp_prev;

    if (b->prev)
        b->prev->next = b->next;
    else
        s->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    s->count--;
}

/* Takes b out of the store, tells the owner, frees it. */
static void unlink_binding(pcscf_bindings *s, pcscf_binding *b)
{
    detach_binding(s, b);
    if (s->on_removed)
        s->on_removed(s->arg, b->impu, &b->source);
    if (s->sync_removed)
        s->sync_removed(s->sync_arg, b);
    binding_free(b);
}

static pcscf_binding *find(pcscf_bindings *s, const char *impu, const pcscf_addr *src)
{
    char k[KEY_MAX + 128];
    return binding_key(impu, src, k, sizeof(k)) ? ims_map_get(s->by_key, k) : NULL;
}

const pcscf_binding *pcscf_bindings_get(pcscf_bindings *s, const char *impu, const pcscf_addr *source)
{
    return s && impu && source ? find(s, impu, source) : NULL;
}

/* ---------- contacts of one binding ---------- */

static int contact_index(const pcscf_binding *b, const char *uri)
{
    for (size_t i = 0; i < b->n_contacts; i++)
        if (pcscf_uri_same(b->contacts[i].uri, uri))
            return (int)i;
    return -1;
}

static void contact_remove_at(pcscf_binding *b, size_t i)
{
    free(b->contacts[i].uri);
    memmove(&b->contacts[i], &b->contacts[i + 1], (b->n_contacts - i - 1) * sizeof(pcscf_contact));
    b->n_contacts--;
}

/* Sets (or, expires <= now, removes) one contact. 1 changed, 0 not, -1 memory. The binding must
 * be out of the contact index (unindex) while this runs. */
static int contact_set(pcscf_binding *b, const char *uri, int64_t expires, int64_t now)
{
    int i = contact_index(b, uri);
    if (expires <= now) {
        if (i < 0)
            return 0;
        contact_remove_at(b, (size_t)i);
        return 1;
    }
    if (i >= 0) {
        b->contacts[i].expires = expires;
        return 1;
    }
    pcscf_contact *c = realloc(b->contacts, (b->n_contacts + 1) * sizeof(pcscf_contact));
    if (!c)
        return -1;
    b->contacts = c;
    c[b->n_contacts].uri = strdup(uri);
    if (!c[b->n_contacts].uri)
        return -1;
    c[b->n_contacts].expires = expires;
    b->n_contacts++;
    return 1;
}

/* ---------- update from a REGISTER ---------- */

static void apply_sets(pcscf_binding *b, const pcscf_binding_update *u)
{
    if (u->n_impus) {
        char **v = strv_dup(u->impus, u->n_impus);
        if (v) {
            strv_free(b->impus, b->n_impus);
            b->impus = v;
            b->n_impus = u->n_impus;
        }
    }
    if (u->replace_route) {
        char **v = strv_dup(u->service_route, u->n_service_route);
        if (v || !u->n_service_route) {
            strv_free(b->service_route, b->n_service_route);
            b->service_route = v;
            b->n_service_route = u->n_service_route;
        }
    }
}

static int create_binding(pcscf_bindings *s, const pcscf_binding_update *u, int64_t now)
{
    bool any = false;
    for (size_t i = 0; i < u->n_contacts; i++)
        any |= u->contacts[i].expires > now;
    if (!any)
        return PCSCF_BINDING_NONE;
    pcscf_binding *b = calloc(1, sizeof(*b));
    if (!b || !(b->impu = strdup(u->impu))) {
        free(b);
        return PCSCF_BINDING_ERROR;
    }
    b->source = *u->source;
    b->created = now;
    for (size_t i = 0; i < u->n_contacts; i++) {
        if (contact_set(b, u->contacts[i].uri, u->contacts[i].expires, now) < 0) {
            binding_free(b);
            return PCSCF_BINDING_ERROR;
        }
    }
    apply_sets(b, u);
    if (link_binding(s, b) < 0) {
        binding_free(b);
        return PCSCF_BINDING_ERROR;
    }
    changed(s, b);
    return PCSCF_BINDING_CREATED;
}

int pcscf_bindings_update(pcscf_bindings *s, const pcscf_binding_update *u, int64_t now)
{
    if (!s || !u || !u->impu || !u->source)
        return PCSCF_BINDING_ERROR;
    pcscf_binding *b = find(s, u->impu, u->source);
    if (!b)
        return u->remove_all ? PCSCF_BINDING_NONE : create_binding(s, u, now);
    if (u->remove_all) {
        unlink_binding(s, b);
        return PCSCF_BINDING_REMOVED;
    }

    int rv = PCSCF_BINDING_UPDATED;
    unindex(s, b);
    for (size_t i = 0; i < u->n_contacts; i++) {
        if (contact_set(b, u->contacts[i].uri, u->contacts[i].expires, now) < 0) {
            rv = PCSCF_BINDING_ERROR;
            break;
        }
    }
    if (rv != PCSCF_BINDING_ERROR)
        apply_sets(b, u);
    reindex(s, b);
    if (rv != PCSCF_BINDING_ERROR && b->n_contacts == 0) {
        unlink_binding(s, b);
        rv = PCSCF_BINDING_REMOVED;
    } else {
        changed(s, b);
    }
    return rv;
}

/* ---------- lookups ---------- */

bool pcscf_binding_has_identity(const pcscf_binding *b, const char *identity)
{
    if (!b || !identity)
        return false;
    if (pcscf_identity_same(b->impu, identity))
        return true;
    for (size_t i = 0; i < b->n_impus; i++)
        if (pcscf_identity_same(b->impus[i], identity))
            return true;
    return false;
}

const char *pcscf_binding_default_identity(const pcscf_binding *b)
{
    return b->n_impus ? b->impus[0] : b->impu;
}

int64_t pcscf_binding_expires(const pcscf_binding *b)
{
    int64_t e = 0;
    for (size_t i = 0; i < b->n_contacts; i++)
        if (b->contacts[i].expires > e)
            e = b->contacts[i].expires;
    return e;
}

static const bvec *identity_list(pcscf_bindings *s, const char *identity)
{
    char k[KEY_MAX];
    return identity && pcscf_identity_key(identity, k, sizeof(k)) ? ims_map_get(s->by_identity, k) : NULL;
}

bool pcscf_flow_same(const pcscf_addr *registered, const pcscf_addr *src)
{
    /* plain flow (no IPsec yet: see pcscf_addr in pcscf_bindings.h) */
    return registered->port == src->port && strcasecmp(registered->transport, src->transport) == 0 &&
           strcmp(registered->host, src->host) == 0;
}

const pcscf_binding *pcscf_bindings_by_flow(pcscf_bindings *s, const pcscf_addr *src, const char *identity)
{
    if (!s || !src)
        return NULL;
    /* 1. a binding of this flow holding the identity (a UE registers a few identities at most) */
    const bvec *l = identity_list(s, identity);
    for (size_t i = 0; l && i < l->n; i++)
        if (pcscf_flow_same(&l->v[i]->source, src))
            return l->v[i];
    /* 2. any binding of this flow: the address:port list, transport compared (a UDP source port and
     * a TCP connection's port may coincide; they are different flows) */
    char k[KEY_MAX];
    hostport_key(src->host, src->port, k, sizeof(k));
    for (const pcscf_binding *b = ims_map_get(s->by_hostport, k); b; b = b->hp_next)
        if (pcscf_flow_same(&b->source, src))
            return b;
    return NULL;
}

const pcscf_binding *pcscf_bindings_by_contact(pcscf_bindings *s, const char *uri, int64_t now)
{
    char k[KEY_MAX];
    const bvec *l = uri && contact_key(uri, k, sizeof(k)) ? ims_map_get(s->by_contact, k) : NULL;
    for (size_t i = 0; l && i < l->n; i++) {
        int c = contact_index(l->v[i], uri);
        if (c >= 0 && l->v[i]->contacts[c].expires > now)
            return l->v[i];
    }
    return NULL;
}

bool pcscf_bindings_has_impu(pcscf_bindings *s, const char *impu)
{
    const bvec *l = identity_list(s, impu);
    for (size_t i = 0; l && i < l->n; i++)
        if (pcscf_identity_same(l->v[i]->impu, impu))
            return true;
    return false;
}

void pcscf_bindings_foreach_identity(pcscf_bindings *s, const char *identity,
                                     void (*fn)(void *arg, const pcscf_binding *b), void *arg)
{
    const bvec *l = identity_list(s, identity);
    for (size_t i = 0; l && i < l->n; i++)
        fn(arg, l->v[i]);
}

/* ---------- reg event driven changes ---------- */

static pcscf_binding **holders(pcscf_bindings *s, const char *aor, size_t *n)
{
    char k[KEY_MAX];
    *n = 0;
    return pcscf_identity_key(aor, k, sizeof(k)) ? bvec_snapshot(s->by_identity, k, n) : NULL;
}

int pcscf_bindings_terminate_aor(pcscf_bindings *s, const char *aor)
{
    int n_changed = 0;
    size_t n;
    pcscf_binding **v = holders(s, aor, &n);
    for (size_t j = 0; j < n; j++) {
        pcscf_binding *b = v[j];
        if (pcscf_identity_same(b->impu, aor)) {
            unlink_binding(s, b);
            n_changed++;
            continue;
        }
        for (size_t i = 0; i < b->n_impus; i++) {
            if (!pcscf_identity_same(b->impus[i], aor))
                continue;
            unindex(s, b);
            free(b->impus[i]);
            memmove(&b->impus[i], &b->impus[i + 1], (b->n_impus - i - 1) * sizeof(char *));
            b->n_impus--;
            reindex(s, b);
            changed(s, b);
            n_changed++;
            break;
        }
    }
    free(v);
    return n_changed;
}

int pcscf_bindings_set_contact(pcscf_bindings *s, const char *aor, const char *uri, int64_t expires,
                               int64_t now)
{
    int n_changed = 0;
    size_t n;
    pcscf_binding **v = holders(s, aor, &n);
    for (size_t j = 0; j < n; j++) {
        pcscf_binding *b = v[j];
        if (contact_index(b, uri) < 0)
            continue;
        unindex(s, b);
        if (contact_set(b, uri, expires, now) > 0)
            n_changed++;
        reindex(s, b);
        if (b->n_contacts == 0)
            unlink_binding(s, b);
        else
            changed(s, b);
    }
    free(v);
    return n_changed;
}

size_t pcscf_bindings_expire(pcscf_bindings *s, int64_t now)
{
    size_t removed = 0;
    pcscf_binding *b = s->head;
    while (b) {
        pcscf_binding *next = b->next;
        bool expired = false;
        for (size_t i = 0; i < b->n_contacts && !expired; i++)
            expired = b->contacts[i].expires <= now;
        if (expired) {
            unindex(s, b);
            for (size_t i = b->n_contacts; i-- > 0;)
                if (b->contacts[i].expires <= now)
                    contact_remove_at(b, i);
            reindex(s, b);
            if (b->n_contacts == 0) {
                unlink_binding(s, b);
                removed++;
            } else {
                changed(s, b);
            }
        }
        b = next;
    }
    return removed;
}

/* ---------- flow change ---------- */

int pcscf_bindings_move_flow(pcscf_bindings *s, const pcscf_addr *from, const pcscf_addr *to)
{
    if (!s || !from || !to || pcscf_flow_same(from, to))
        return 0;
    /* the bindings of `from`, gathered first: moving one changes the chain being walked */
    pcscf_binding *v[32];
    size_t n = 0;
    char k[KEY_MAX];
    hostport_key(from->host, from->port, k, sizeof(k));
    for (pcscf_binding *b = ims_map_get(s->by_hostport, k); b && n < 32; b = b->hp_next)
        if (pcscf_flow_same(&b->source, from))
            v[n++] = b;
    int moved = 0;
    for (size_t i = 0; i < n; i++) {
        pcscf_binding *b = v[i];
        if (find(s, b->impu, to)) {
            unlink_binding(s, b);   /* the new flow holds this identity already */
            continue;
        }
        detach_binding(s, b);
        b->source = *to;
        if (link_binding(s, b)) {   /* out of memory: the binding is lost, as a removal */
            if (s->on_removed)
                s->on_removed(s->arg, b->impu, from);
            if (s->sync_removed)
                s->sync_removed(s->sync_arg, b);
            binding_free(b);
            continue;
        }
        changed(s, b);
        moved++;
    }
    return moved;
}
