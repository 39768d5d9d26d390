/*
 * pcscf_bindings: registration bindings of the P-CSCF (pcscf_bindings.h).
 *
 * References: TS 24.229 §5.2.2.1 (what the P-CSCF stores from the 200 (OK) to REGISTER: the
 * Service-Route, the P-Associated-URI list, the contact of the UE), RFC 3261 §10.3 (per-contact
 * expiry), RFC 3680 §5 (contact / registration states applied by pcscf_regevent.c).
 *
 * A singly linked list: a lab P-CSCF serves hundreds of UEs, and each lookup is a short scan.
 * Should it need to scale, the interface stays and the list becomes hash tables by IMPU, source
 * and contact.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pcscf_bindings.h"
#include "pcscf_util.h"

struct pcscf_bindings {
    pcscf_binding *head;
    size_t count;
    pcscf_binding_removed_f on_removed;
    void *arg;
};

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
    free(b);
}

static bool same_source(const pcscf_addr *a, const pcscf_addr *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port && strcmp(a->transport, b->transport) == 0;
}

pcscf_bindings *pcscf_bindings_new(pcscf_binding_removed_f on_removed, void *arg)
{
    pcscf_bindings *s = calloc(1, sizeof(*s));
    if (s) {
        s->on_removed = on_removed;
        s->arg = arg;
    }
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

/* Unlinks *pp, tells the owner, frees it. */
static void unlink_binding(pcscf_bindings *s, pcscf_binding **pp)
{
    pcscf_binding *b = *pp;
    *pp = b->next;
    s->count--;
    if (s->on_removed)
        s->on_removed(s->arg, b->impu, &b->source);
    binding_free(b);
}

static pcscf_binding **find_slot(pcscf_bindings *s, const char *impu, const pcscf_addr *src)
{
    for (pcscf_binding **pp = &s->head; *pp; pp = &(*pp)->next)
        if (strcasecmp((*pp)->impu, impu) == 0 && same_source(&(*pp)->source, src))
            return pp;
    return NULL;
}

const pcscf_binding *pcscf_bindings_get(pcscf_bindings *s, const char *impu, const pcscf_addr *source)
{
    pcscf_binding **pp = find_slot(s, impu, source);
    return pp ? *pp : NULL;
}

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

/* Sets (or, expires <= now, removes) one contact. 1 changed, 0 not, -1 memory. */
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

int pcscf_bindings_update(pcscf_bindings *s, const pcscf_binding_update *u, int64_t now)
{
    int rv = PCSCF_BINDING_ERROR;
    if (!s || !u || !u->impu || !u->source)
        goto out;
    pcscf_binding **pp = find_slot(s, u->impu, u->source);
    pcscf_binding *b = pp ? *pp : NULL;
    bool created = false;

    if (u->remove_all) {
        if (!b) {
            rv = PCSCF_BINDING_NONE;
            goto out;
        }
        unlink_binding(s, pp);
        rv = PCSCF_BINDING_REMOVED;
        goto out;
    }
    if (!b) {
        bool any = false;
        for (size_t i = 0; i < u->n_contacts; i++)
            any |= u->contacts[i].expires > now;
        if (!any) {
            rv = PCSCF_BINDING_NONE;
            goto out;
        }
        b = calloc(1, sizeof(*b));
        if (!b || !(b->impu = strdup(u->impu))) {
            free(b);
            goto out;
        }
        b->source = *u->source;
        b->created = now;
        created = true;
    }
    for (size_t i = 0; i < u->n_contacts; i++) {
        if (contact_set(b, u->contacts[i].uri, u->contacts[i].expires, now) < 0) {
            if (created)
                binding_free(b);
            goto out;
        }
    }
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
    if (created) {
        b->next = s->head;
        s->head = b;
        s->count++;
        rv = PCSCF_BINDING_CREATED;
        goto out;
    }
    if (b->n_contacts == 0) {
        unlink_binding(s, pp);
        rv = PCSCF_BINDING_REMOVED;
        goto out;
    }
    rv = PCSCF_BINDING_UPDATED;
out:
    return rv;
}

bool pcscf_binding_has_identity(const pcscf_binding *b, const char *identity)
{
    if (!b || !identity)
        return false;
    if (strcasecmp(b->impu, identity) == 0)
        return true;
    for (size_t i = 0; i < b->n_impus; i++)
        if (strcasecmp(b->impus[i], identity) == 0)
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

const pcscf_binding *pcscf_bindings_by_source(pcscf_bindings *s, const pcscf_addr *src, const char *identity)
{
    const pcscf_binding *same_port = NULL, *same_host_id = NULL;
    for (const pcscf_binding *b = s->head; b; b = b->next) {
        if (strcmp(b->source.host, src->host))
            continue;
        bool id = identity && pcscf_binding_has_identity(b, identity);
        if (b->source.port == src->port) {
            if (id)
                return b;
            if (!same_port)
                same_port = b;
        } else if (id && !same_host_id) {
            same_host_id = b;
        }
    }
    return same_port ? same_port : same_host_id;
}

const pcscf_binding *pcscf_bindings_by_contact(pcscf_bindings *s, const char *uri, int64_t now)
{
    for (const pcscf_binding *b = s->head; b; b = b->next) {
        int i = contact_index(b, uri);
        if (i >= 0 && b->contacts[i].expires > now)
            return b;
    }
    return NULL;
}

bool pcscf_bindings_has_impu(pcscf_bindings *s, const char *impu)
{
    for (const pcscf_binding *b = s->head; b; b = b->next)
        if (strcasecmp(b->impu, impu) == 0)
            return true;
    return false;
}

int pcscf_bindings_terminate_aor(pcscf_bindings *s, const char *aor)
{
    int changed = 0;
    pcscf_binding **pp = &s->head;
    while (*pp) {
        pcscf_binding *b = *pp;
        if (strcasecmp(b->impu, aor) == 0) {
            unlink_binding(s, pp);
            changed++;
            continue;
        }
        for (size_t i = 0; i < b->n_impus; i++) {
            if (strcasecmp(b->impus[i], aor))
                continue;
            free(b->impus[i]);
            memmove(&b->impus[i], &b->impus[i + 1], (b->n_impus - i - 1) * sizeof(char *));
            b->n_impus--;
            changed++;
            break;
        }
        pp = &b->next;
    }
    return changed;
}

int pcscf_bindings_set_contact(pcscf_bindings *s, const char *aor, const char *uri, int64_t expires,
                               int64_t now)
{
    int changed = 0;
    pcscf_binding **pp = &s->head;
    while (*pp) {
        pcscf_binding *b = *pp;
        if (pcscf_binding_has_identity(b, aor) && contact_index(b, uri) >= 0) {
            if (contact_set(b, uri, expires, now) > 0)
                changed++;
            if (b->n_contacts == 0) {
                unlink_binding(s, pp);
                continue;
            }
        }
        pp = &b->next;
    }
    return changed;
}

size_t pcscf_bindings_expire(pcscf_bindings *s, int64_t now)
{
    size_t removed = 0;
    pcscf_binding **pp = &s->head;
    while (*pp) {
        pcscf_binding *b = *pp;
        for (size_t i = b->n_contacts; i-- > 0;)
            if (b->contacts[i].expires <= now)
                contact_remove_at(b, i);
        if (b->n_contacts == 0) {
            unlink_binding(s, pp);
            removed++;
            continue;
        }
        pp = &b->next;
    }
    return removed;
}
