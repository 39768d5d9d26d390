/*
 * scscf_util: see scscf_util.h.
 *
 * The map is a chained hash table (FNV-1a) that doubles when it reaches 3/4 load; an entry is
 * one allocation (key stored inline) to keep per-user memory small.
 */
#include "scscf_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_aka.h"

typedef struct map_entry {
    struct map_entry *next;
    void *val;
    uint32_t hash;
    char key[];
} map_entry;

struct scscf_map {
    map_entry **buckets;
    size_t n_buckets;
    size_t count;
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

scscf_map *scscf_map_new(void)
{
    scscf_map *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n_buckets = 64;
    m->buckets = calloc(m->n_buckets, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void scscf_map_free(scscf_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        map_entry *e = m->buckets[i];
        while (e) {
            map_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    free(m);
}

static map_entry **slot(const scscf_map *m, const char *key, uint32_t h)
{
    map_entry **pp = &m->buckets[h & (m->n_buckets - 1)];
    while (*pp && !((*pp)->hash == h && strcmp((*pp)->key, key) == 0))
        pp = &(*pp)->next;
    return pp;
}

void *scscf_map_get(const scscf_map *m, const char *key)
{
    if (!m || !key)
        return NULL;
    map_entry **pp = slot(m, key, fnv1a(key));
    return *pp ? (*pp)->val : NULL;
}

static void grow(scscf_map *m)
{
    size_t n = m->n_buckets * 2;
    map_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;   /* stays correct, just slower */
    for (size_t i = 0; i < m->n_buckets; i++) {
        map_entry *e = m->buckets[i];
        while (e) {
            map_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
}

int scscf_map_put(scscf_map *m, const char *key, void *val)
{
    if (!m || !key)
        return -1;
    uint32_t h = fnv1a(key);
    map_entry **pp = slot(m, key, h);
    if (*pp) {
        (*pp)->val = val;
        return 0;
    }
    size_t kl = strlen(key);
    map_entry *e = malloc(sizeof(*e) + kl + 1);
    if (!e)
        return -1;
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->val = val;
    e->next = NULL;
    *pp = e;
    if (++m->count > m->n_buckets * 3 / 4)
        grow(m);
    return 0;
}

void *scscf_map_del(scscf_map *m, const char *key)
{
    if (!m || !key)
        return NULL;
    map_entry **pp = slot(m, key, fnv1a(key));
    map_entry *e = *pp;
    if (!e)
        return NULL;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

size_t scscf_map_count(const scscf_map *m)
{
    return m ? m->count : 0;
}

void scscf_map_foreach(scscf_map *m, int (*fn)(void *arg, const char *key, void *val), void *arg)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_buckets; i++) {
        map_entry *e = m->buckets[i];
        while (e) {
            map_entry *next = e->next;
            if (fn(arg, e->key, e->val))
                return;
            e = next;
        }
    }
}

/* ---------- string builder ---------- */

static bool reserve(scscf_buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void scscf_buf_append(scscf_buf *b, const char *s, size_t len)
{
    if (!reserve(b, len))
        return;
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = '\0';
}

void scscf_buf_printf(scscf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void scscf_buf_xml(scscf_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': scscf_buf_append(b, "&amp;", 5); break;
        case '<': scscf_buf_append(b, "&lt;", 4); break;
        case '>': scscf_buf_append(b, "&gt;", 4); break;
        case '"': scscf_buf_append(b, "&quot;", 6); break;
        case '\'': scscf_buf_append(b, "&apos;", 6); break;
        default: scscf_buf_append(b, s, 1); break;
        }
    }
}

char *scscf_buf_take(scscf_buf *b)
{
    char *s = NULL;
    if (b->failed)
        free(b->s);
    else
        s = b->s ? b->s : strdup("");
    memset(b, 0, sizeof(*b));
    return s;
}

void scscf_buf_free(scscf_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof(*b));
}

/* ---------- misc ---------- */

void scscf_token(char *out, size_t n)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t raw[64];
    if (n > sizeof(raw))
        n = sizeof(raw);
    if (ims_random(raw, n))
        memset(raw, 0, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[raw[i] % 36];
    out[n] = '\0';
}

char *scscf_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

const char *scscf_param(const char *const *params, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; params && params[i]; i++) {
        const char *p = params[i];
        if (strncasecmp(p, name, nl) != 0)
            continue;
        const char *v = p + nl;
        while (*v == ' ' || *v == '\t')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t o = 0;
        if (*v == '"') {
            v++;
            for (; *v && *v != '"'; v++) {
                if (*v == '\\' && v[1])
                    v++;
                if (o + 1 >= len)
                    return NULL;
                buf[o++] = *v;
            }
        } else {
            for (; *v && *v != ' ' && *v != '\t'; v++) {
                if (o + 1 >= len)
                    return NULL;
                buf[o++] = *v;
            }
        }
        buf[o] = '\0';
        return buf;
    }
    return NULL;
}
