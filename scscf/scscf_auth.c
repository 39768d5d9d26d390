/*
 * scscf_auth: IMS-AKA and SIP Digest challenges of the S-CSCF. See scscf_auth.h.
 *
 * References: TS 24.229 §5.4.1.2 (authentication at the S-CSCF), TS 33.203 §6.1, RFC 3310
 * (HTTP Digest AKA: nonce = base64(RAND || AUTN), password = RES), RFC 2617 §3.2 (digest
 * computation, qop, nc), RFC 7616 §3.3/§3.4 (stale, nonce-count replay protection).
 */
#include "scscf_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_aka.h"
#include "scscf_util.h"

#define MAX_SPARES 16

typedef struct {
    size_t n;
    scscf_aka_vector v[MAX_SPARES];
} spare_list;

struct scscf_auth {
    long lifetime;
    ims_map *by_nonce;     /* nonce -> scscf_challenge */
    ims_map *spares;       /* impi -> spare_list */
    ims_authlimit *limiter;  /* failed authentications per IMPI */
};

scscf_auth *scscf_auth_new(long nonce_lifetime)
{
    scscf_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->lifetime = nonce_lifetime > 0 ? nonce_lifetime : 60;
    a->by_nonce = ims_map_new();
    a->spares = ims_map_new();
    if (!a->by_nonce || !a->spares) {
        scscf_auth_free(a);
        return NULL;
    }
    return a;
}

static void challenge_free(scscf_challenge *c)
{
    free(c->impi);
    free(c->impu);
    free(c->realm);
    free(c->qop);
    free(c);
}

static int free_challenge(void *arg, const char *key, void *val)
{
    (void)arg; (void)key;
    challenge_free(val);
    return 0;
}

static int free_val(void *arg, const char *key, void *val)
{
    (void)arg; (void)key;
    free(val);
    return 0;
}

void scscf_auth_free(scscf_auth *a)
{
    if (!a)
        return;
    ims_map_foreach(a->by_nonce, free_challenge, NULL);
    ims_map_foreach(a->spares, free_val, NULL);
    ims_map_free(a->by_nonce);
    ims_map_free(a->spares);
    ims_authlimit_free(a->limiter);
    free(a);
}

size_t scscf_auth_count(const scscf_auth *a)
{
    return a ? ims_map_count(a->by_nonce) : 0;
}

const sip_authorization_t *scscf_auth_pick(const sip_t *sip, const char *realm)
{
    const sip_authorization_t *first = NULL;
    for (const sip_authorization_t *au = sip->sip_authorization; au; au = au->au_next) {
        if (!au->au_scheme || strcasecmp(au->au_scheme, "Digest") != 0)
            continue;
        char r[128];
        if (realm && scscf_param(au->au_params, "realm", r, sizeof(r)) && strcasecmp(r, realm) == 0)
            return au;
        if (!first)
            first = au;
    }
    return first;
}

int scscf_auth_parse(const sip_authorization_t *au, scscf_credentials *out)
{
    memset(out, 0, sizeof(*out));
    if (!au || !au->au_scheme || strcasecmp(au->au_scheme, "Digest") != 0)
        return -1;
    const char *const *p = au->au_params;
    struct { const char *name; char *buf; size_t len; } fields[] = {
        { "username", out->username, sizeof(out->username) },
        { "realm", out->realm, sizeof(out->realm) },
        { "nonce", out->nonce, sizeof(out->nonce) },
        { "uri", out->uri, sizeof(out->uri) },
        { "response", out->response, sizeof(out->response) },
        { "algorithm", out->algorithm, sizeof(out->algorithm) },
        { "cnonce", out->cnonce, sizeof(out->cnonce) },
        { "qop", out->qop, sizeof(out->qop) },
        { "nc", out->nc, sizeof(out->nc) },
        { "auts", out->auts, sizeof(out->auts) },
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char tmp[1024];
        if (!scscf_param(p, fields[i].name, tmp, sizeof(tmp)))
            continue;   /* absent (or absurdly long: rejected below) */
        if (strlen(tmp) >= fields[i].len)
            return -1;
        memcpy(fields[i].buf, tmp, strlen(tmp) + 1);
        if (strcmp(fields[i].name, "auts") == 0)
            out->has_auts = true;
    }
    char ip[16];
    out->integrity_protected = scscf_param(p, "integrity-protected", ip, sizeof(ip)) && strcasecmp(ip, "yes") == 0;
    /* A parameter longer than our scratch buffer is present but unreadable: malformed. */
    for (size_t i = 0; p && p[i]; i++)
        if (strlen(p[i]) > 1000)
            return -1;
    return 0;
}

static scscf_challenge *new_challenge(scscf_auth *a, const char *impi, const char *impu, const char *realm,
                                      const char *qop, int64_t now)
{
    scscf_challenge *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->impi = strdup(impi);
    c->impu = strdup(impu);
    c->realm = strdup(realm);
    c->qop = strdup(qop && *qop ? qop : "auth");
    if (!c->impi || !c->impu || !c->realm || !c->qop) {
        challenge_free(c);
        return NULL;
    }
    c->expires_at = now + a->lifetime;
    return c;
}

static int insert(scscf_auth *a, scscf_challenge *c)
{
    if (ims_map_get(a->by_nonce, c->nonce) || ims_map_put(a->by_nonce, c->nonce, c)) {
        challenge_free(c);
        return -1;
    }
    return 0;
}

int scscf_auth_challenge_aka(scscf_auth *a, const char *impi, const char *impu, const char *realm,
                             const scscf_aka_vector *v, bool stale, int64_t now, char *hdr, size_t hdrlen)
{
    scscf_challenge *c = new_challenge(a, impi, impu, realm, "auth", now);
    if (!c)
        return -1;
    uint8_t raw[32];
    memcpy(raw, v->rand, 16);
    memcpy(raw + 16, v->autn, 16);
    ims_base64_encode(raw, sizeof(raw), c->nonce);
    c->scheme = SCSCF_AUTH_AKA;
    c->xres_len = v->xres_len > 16 ? 16 : v->xres_len;
    memcpy(c->xres, v->xres, c->xres_len);
    memcpy(c->rand, v->rand, 16);
    char ck[33], ik[33];
    ims_hex_encode(v->ck, 16, ck);
    ims_hex_encode(v->ik, 16, ik);
    int n = snprintf(hdr, hdrlen,
                     "Digest realm=\"%s\", nonce=\"%s\", algorithm=AKAv1-MD5, qop=\"auth\", ck=\"%s\", "
                     "ik=\"%s\"%s", realm, c->nonce, ck, ik, stale ? ", stale=true" : "");
    if (n < 0 || (size_t)n >= hdrlen) {
        challenge_free(c);
        return -1;
    }
    return insert(a, c);
}

int scscf_auth_challenge_digest(scscf_auth *a, const char *impi, const char *impu, const char *realm,
                                const char *qop, const char *ha1, bool stale, int64_t now, char *hdr,
                                size_t hdrlen)
{
    if (!ha1 || strlen(ha1) != 32)
        return -1;
    scscf_challenge *c = new_challenge(a, impi, impu, realm, qop, now);
    if (!c)
        return -1;
    uint8_t raw[24];
    if (ims_random(raw, sizeof(raw))) {
        challenge_free(c);
        return -1;
    }
    ims_base64_encode(raw, sizeof(raw), c->nonce);
    c->scheme = SCSCF_AUTH_DIGEST;
    for (size_t i = 0; i < 32; i++)
        c->ha1[i] = (char)((ha1[i] >= 'A' && ha1[i] <= 'F') ? ha1[i] - 'A' + 'a' : ha1[i]);
    c->ha1[32] = '\0';
    int n = snprintf(hdr, hdrlen, "Digest realm=\"%s\", nonce=\"%s\", algorithm=MD5, qop=\"%s\"%s", realm,
                     c->nonce, c->qop, stale ? ", stale=true" : "");
    if (n < 0 || (size_t)n >= hdrlen) {
        challenge_free(c);
        return -1;
    }
    return insert(a, c);
}

void scscf_auth_keep_spare(scscf_auth *a, const char *impi, const scscf_aka_vector *v)
{
    spare_list *l = ims_map_get(a->spares, impi);
    if (!l) {
        l = calloc(1, sizeof(*l));
        if (!l || ims_map_put(a->spares, impi, l)) {
            free(l);
            return;
        }
    }
    if (l->n < MAX_SPARES)
        l->v[l->n++] = *v;
}

bool scscf_auth_take_spare(scscf_auth *a, const char *impi, scscf_aka_vector *out)
{
    spare_list *l = ims_map_get(a->spares, impi);
    if (!l || !l->n)
        return false;
    /* oldest first: vectors must be used in SQN order (TS 33.102 §6.3.2) */
    *out = l->v[0];
    memmove(&l->v[0], &l->v[1], (l->n - 1) * sizeof(l->v[0]));
    if (--l->n == 0)
        free(ims_map_del(a->spares, impi));
    return true;
}

void scscf_auth_drop_spares(scscf_auth *a, const char *impi)
{
    free(ims_map_del(a->spares, impi));
}

scscf_challenge *scscf_auth_find(scscf_auth *a, const char *nonce)
{
    return nonce && *nonce ? ims_map_get(a->by_nonce, nonce) : NULL;
}

void scscf_auth_forget(scscf_auth *a, scscf_challenge *c)
{
    if (!c)
        return;
    if (ims_map_get(a->by_nonce, c->nonce) == c)
        ims_map_del(a->by_nonce, c->nonce);
    challenge_free(c);
}

typedef struct {
    const scscf_challenge *c;
    int64_t now;
    bool found;
} other_ctx;

static int find_other(void *arg, const char *key, void *val)
{
    (void)key;
    other_ctx *o = arg;
    const scscf_challenge *c = val;
    if (c != o->c && c->expires_at > o->now && strcmp(c->impu, o->c->impu) == 0) {
        o->found = true;
        return 1;
    }
    return 0;
}

bool scscf_auth_other_pending(scscf_auth *a, const scscf_challenge *c, int64_t now)
{
    other_ctx o = { c, now, false };
    ims_map_foreach(a->by_nonce, find_other, &o);
    return o.found;
}

static bool hexeq(const char *a, const char *b)
{
    return strlen(a) == 32 && strcasecmp(a, b) == 0;
}

scscf_verify_result scscf_auth_verify(scscf_challenge *c, const scscf_credentials *cr, const char *method,
                                      const void *body, size_t body_len)
{
    if (!cr->response[0] || !cr->uri[0] || !cr->username[0])
        return SCSCF_VERIFY_MALFORMED;
    if (strcmp(cr->username, c->impi) != 0 || (cr->realm[0] && strcmp(cr->realm, c->realm) != 0))
        return SCSCF_VERIFY_MISMATCH;

    bool with_qop = cr->qop[0] != '\0';
    if (with_qop) {
        if (strcasecmp(cr->qop, "auth") != 0 && strcasecmp(cr->qop, "auth-int") != 0)
            return SCSCF_VERIFY_MALFORMED;
        if (!cr->nc[0] || !cr->cnonce[0] || strlen(cr->nc) != 8 || strspn(cr->nc, "0123456789abcdefABCDEF") != 8)
            return SCSCF_VERIFY_MALFORMED;
    }

    char ha1[33], expected[33];
    if (c->scheme == SCSCF_AUTH_AKA)
        ims_aka_digest_ha1(cr->username, c->realm, c->xres, c->xres_len, ha1);
    else
        memcpy(ha1, c->ha1, sizeof(ha1));
    ims_digest_response(ha1, c->nonce, with_qop ? cr->nc : NULL, with_qop ? cr->cnonce : NULL,
                        with_qop ? cr->qop : NULL, method, cr->uri, body, body ? body_len : 0, expected);
    if (!hexeq(cr->response, expected))
        return SCSCF_VERIFY_BAD_RESPONSE;

    if (with_qop) {
        uint32_t nc = (uint32_t)strtoul(cr->nc, NULL, 16);
        if (nc <= c->last_nc)
            return SCSCF_VERIFY_REPLAY;
        c->last_nc = nc;
    }
    return SCSCF_VERIFY_OK;
}

typedef struct {
    scscf_auth *a;
    int64_t now;
    void (*fn)(void *arg, const scscf_challenge *c);
    void *arg;
} sweep_ctx;

static int sweep_one(void *arg, const char *key, void *val)
{
    (void)key;
    sweep_ctx *s = arg;
    scscf_challenge *c = val;
    if (c->expires_at > s->now)
        return 0;
    if (!c->timeout_reported) {
        c->timeout_reported = true;
        if (s->fn)
            s->fn(s->arg, c);
    }
    if (c->expires_at + s->a->lifetime <= s->now) {
        ims_map_del(s->a->by_nonce, c->nonce);   /* the entry being visited: allowed */
        challenge_free(c);
    }
    return 0;
}

void scscf_auth_sweep(scscf_auth *a, int64_t now, void (*fn)(void *arg, const scscf_challenge *c), void *arg)
{
    sweep_ctx s = { a, now, fn, arg };
    ims_map_foreach(a->by_nonce, sweep_one, &s);
    ims_authlimit_sweep(a->limiter, now);
}

/* The limiter keeps at most this many IMPIs: only identities the HSS knows reach the S-CSCF's
 * authentication (the I-CSCF's UAR stops unknown ones), so this bounds memory, not the policy. */
#define LIMITER_MAX_ENTRIES 200000

ims_authlimit *scscf_auth_limiter(scscf_auth *a, long max_failures, long window, long lockout)
{
    if (!a->limiter)
        a->limiter = ims_authlimit_new(max_failures, window, lockout, LIMITER_MAX_ENTRIES);
    return a->limiter;
}

void scscf_auth_source(const sip_t *sip, char *buf, size_t len)
{
    const sip_via_t *v = sip ? sip->sip_via : NULL;
    while (v && v->v_next)
        v = v->v_next;   /* the bottom Via is the UE's; the P-CSCF added received/rport to it */
    char ue[200] = "unknown address";
    if (v) {
        const char *proto = v->v_protocol ? strrchr(v->v_protocol, '/') : NULL;
        const char *host = v->v_received && *v->v_received ? v->v_received : v->v_host;
        const char *port = v->v_rport && *v->v_rport ? v->v_rport : v->v_port ? v->v_port : "5060";
        snprintf(ue, sizeof(ue), "%s %s:%s", proto ? proto + 1 : "UDP", host ? host : "?", port);
    }
    char path[200] = "";
    if (sip && sip->sip_path && sip->sip_path->r_url->url_host) {
        const url_t *u = sip->sip_path->r_url;
        snprintf(path, sizeof(path), " via <sip:%s%s%s%s%s>", u->url_user ? u->url_user : "",
                 u->url_user ? "@" : "", u->url_host, u->url_port ? ":" : "", u->url_port ? u->url_port : "");
    }
    snprintf(buf, len, "%s%s", ue, path);
}
