/*
 * ims_trust: the trust domain of a CSCF (see ims_trust.h) — parsing of trust.peers and
 * trust.cidrs, address matching, and the entry check with its metric and warning.
 *
 * References: RFC 3325 §2.3 (Trust Domain), TS 24.229 §4.4 (trust domain of the IM CN
 * subsystem), TS 33.210 §4 (network domain security: the elements of one security domain).
 */
#include "ims_trust.h"
#include "ims_http.h"
#include "ims_log.h"
#include "ims_nf.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <sofia-sip/msg_addr.h>

/* ---------- configuration ---------- */

const ims_cfg_field ims_trust_cfg_fields[] = {
    { .key = "peers", .type = IMS_CFG_STRLIST, .offset = offsetof(ims_trust_cfg, peers),
      .help = "network elements of this IMS, host names or IP literals; names are resolved at start "
              "through sip.hosts, then DNS (a name that does not resolve stops the start)" },
    { .key = "cidrs", .type = IMS_CFG_STRLIST, .offset = offsetof(ims_trust_cfg, cidrs),
      .check = ims_trust_cidr_check,
      .help = "address ranges of this IMS's network elements, e.g. 172.22.0.0/24 or fd00::/64; with "
              "neither peers nor cidrs only the NF's own listen address is trusted" },
    { .key = NULL },
};

/* ---------- ranges ---------- */

typedef struct {
    int family;                 /* AF_INET / AF_INET6 */
    uint8_t addr[16];           /* network byte order; 4 bytes used for AF_INET */
    unsigned prefix;            /* bits */
} trust_range;

struct ims_trust {
    trust_range *ranges;
    size_t count, cap;
    bool implicit;
    char **peer_names;          /* trust.peers items as configured (ims_trust_host_is_trusted) */
    size_t n_peer_names;
    time_t logged;              /* last refusal warning (one a second) */
    unsigned long unlogged;     /* refusals since then */
};

static size_t family_bytes(int family) { return family == AF_INET ? 4 : 16; }

/* Literal address -> family and bytes. 0 / -1. */
static int parse_addr(const char *text, int *family, uint8_t out[16])
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, text, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

/* True when the bits of addr beyond `prefix` are all zero. */
static bool host_bits_clear(const uint8_t *addr, size_t bytes, unsigned prefix)
{
    for (size_t i = 0; i < bytes; i++) {
        unsigned first = (unsigned)i * 8;
        uint8_t keep = prefix >= first + 8 ? 0xff : prefix <= first ? 0 : (uint8_t)(0xff << (8 - (prefix - first)));
        if (addr[i] & (uint8_t)~keep)
            return false;
    }
    return true;
}

/* "address/prefix" -> range. 0, or -1 with the reason in why. */
static int parse_cidr(const char *value, trust_range *r, char *why, size_t whylen)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(value, '/');
    if (!slash) {
        snprintf(why, whylen, "not address/prefix (e.g. 172.22.0.0/24, 10.0.0.7/32, fd00::/64)");
        return -1;
    }
    size_t alen = (size_t)(slash - value);
    if (alen == 0 || alen >= sizeof(addr)) {
        snprintf(why, whylen, "no IP address before the '/'");
        return -1;
    }
    memcpy(addr, value, alen);
    addr[alen] = '\0';
    if (parse_addr(addr, &r->family, r->addr)) {
        snprintf(why, whylen, "'%s' is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    unsigned max = r->family == AF_INET ? 32 : 128;
    const char *p = slash + 1;
    unsigned long n = 0;
    if (!*p || strlen(p) > 3) {
        snprintf(why, whylen, "the prefix length must be 0..%u", max);
        return -1;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            snprintf(why, whylen, "the prefix length must be 0..%u", max);
            return -1;
        }
        n = n * 10 + (unsigned long)(*p - '0');
    }
    if (n > max) {
        snprintf(why, whylen, "the prefix length must be 0..%u", max);
        return -1;
    }
    r->prefix = (unsigned)n;
    if (!host_bits_clear(r->addr, family_bytes(r->family), r->prefix)) {
        snprintf(why, whylen, "bits are set beyond the /%u prefix (a host address needs /%u)", r->prefix, max);
        return -1;
    }
    return 0;
}

int ims_trust_cidr_check(const char *value, char *why, size_t whylen)
{
    trust_range r;
    return parse_cidr(value ? value : "", &r, why, whylen);
}

static int add_range(ims_trust *t, const trust_range *r)
{
    for (size_t i = 0; i < t->count; i++)   /* a name and a range may give the same address */
        if (t->ranges[i].family == r->family && t->ranges[i].prefix == r->prefix &&
            memcmp(t->ranges[i].addr, r->addr, 16) == 0)
            return 0;
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        trust_range *n = realloc(t->ranges, cap * sizeof(*n));
        if (!n)
            return -1;
        t->ranges = n;
        t->cap = cap;
    }
    t->ranges[t->count++] = *r;
    return 0;
}

/* An IP literal as a host range (/32, /128). 1 added, 0 not a literal, -1 out of memory. */
static int add_literal(ims_trust *t, const char *text)
{
    trust_range r;
    if (parse_addr(text, &r.family, r.addr))
        return 0;
    r.prefix = r.family == AF_INET ? 32 : 128;
    return add_range(t, &r) ? -1 : 1;
}

/* Every address DNS gives for name. 0; -1 out of memory; else the getaddrinfo code (> 0 when
 * it is negative, EAI_NONAME & co) so the caller can say why. */
static int add_resolved(ims_trust *t, const char *name, const char **why)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0 || !res) {
        *why = rc ? gai_strerror(rc) : "no address";
        return 1;
    }
    int out = 0;
    for (struct addrinfo *ai = res; ai && out == 0; ai = ai->ai_next) {
        char host[INET6_ADDRSTRLEN];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0 &&
            add_literal(t, host) < 0)
            out = -1;
    }
    freeaddrinfo(res);
    return out;
}

/* One trust.peers item: literal, sip.hosts entry (itself a literal or a name), or DNS name. */
static int add_peer(ims_trust *t, const char *peer, ims_trust_lookup_f lookup, void *arg, char *err,
                    size_t errlen)
{
    if (!peer || !*peer) {
        snprintf(err, errlen, "trust.peers: empty item");
        return -1;
    }
    const char *mapped = lookup ? lookup(arg, peer) : NULL;
    const char *name = mapped ? mapped : peer;
    int rc = add_literal(t, name);
    if (rc == 0) {
        const char *why = "";
        rc = add_resolved(t, name, &why);
        if (rc > 0) {
            if (mapped)
                snprintf(err, errlen, "trust.peers: '%s' (sip.hosts: %s) does not resolve (DNS: %s)", peer,
                         mapped, why);
            else
                snprintf(err, errlen, "trust.peers: '%s' does not resolve (not in sip.hosts; DNS: %s)", peer,
                         why);
            return -1;
        }
    }
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

ims_trust *ims_trust_create(const ims_trust_cfg *cfg, ims_trust_lookup_f lookup, void *arg,
                            const char *self_addr, char *err, size_t errlen)
{
    ims_trust *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t npeers = cfg ? cfg->peers.count : 0, ncidrs = cfg ? cfg->cidrs.count : 0;
    for (size_t i = 0; i < ncidrs; i++) {
        trust_range r;
        char why[200];
        const char *item = cfg->cidrs.items[i] ? cfg->cidrs.items[i] : "";
        if (parse_cidr(item, &r, why, sizeof(why))) {
            snprintf(err, errlen, "trust.cidrs: '%s': %s", item, why);
            goto fail;
        }
        if (add_range(t, &r)) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (npeers && !(t->peer_names = calloc(npeers, sizeof(char *)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < npeers; i++) {
        if (add_peer(t, cfg->peers.items[i], lookup, arg, err, errlen))
            goto fail;
        if (!(t->peer_names[t->n_peer_names++] = strdup(cfg->peers.items[i]))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (npeers == 0 && ncidrs == 0) {
        /* The default (ims_trust.h): our own address; loopback when we listen on a wildcard. */
        t->implicit = true;
        int rc = 0;
        trust_range r;
        bool specific = self_addr && parse_addr(self_addr, &r.family, r.addr) == 0 &&
                        !host_bits_clear(r.addr, family_bytes(r.family), 0);
        if (specific)
            rc = add_literal(t, self_addr);
        else if (add_literal(t, "127.0.0.1") < 0 || add_literal(t, "::1") < 0)
            rc = -1;
        if (rc < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    return t;
fail:
    ims_trust_free(t);
    return NULL;
}

static const char *sip_lookup(void *arg, const char *name)
{
    return ims_sip_host_lookup(arg, name);
}

ims_trust *ims_trust_new(const ims_trust_cfg *cfg, const ims_sip *sip, char *err, size_t errlen)
{
    return ims_trust_create(cfg, sip ? sip_lookup : NULL, (void *)sip, ims_sip_listen_address(sip), err,
                            errlen);
}

ims_trust *ims_trust_start(const ims_trust_cfg *cfg, const ims_sip *sip, const char *subsys)
{
    char err[512], ranges[1024];
    ims_trust *t = ims_trust_new(cfg, sip, err, sizeof(err));
    if (!t)
        ims_nf_die(subsys, 2, "trust domain set-up failed", err);
    ims_trust_describe(t, ranges, sizeof(ranges));
    IMS_INFO(subsys, "trust domain: %s%s", ranges,
             t->implicit ? " (no trust.peers or trust.cidrs configured: this NF's own address only)" : "");
    return t;
}

void ims_trust_free(ims_trust *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_peer_names; i++)
        free(t->peer_names[i]);
    free(t->peer_names);
    free(t->ranges);
    free(t);
}

bool ims_trust_is_implicit(const ims_trust *t) { return t && t->implicit; }

void ims_trust_describe(const ims_trust *t, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; t && i < t->count; i++) {
        char a[INET6_ADDRSTRLEN] = "?";
        inet_ntop(t->ranges[i].family, t->ranges[i].addr, a, sizeof(a));
        size_t used = strlen(buf);
        if (used + 1 >= len)
            break;
        snprintf(buf + used, len - used, "%s%s/%u", i ? ", " : "", a, t->ranges[i].prefix);
    }
    if (!buf[0])
        snprintf(buf, len, "(nobody)");
}

/* ---------- matching ---------- */

static bool range_has(const trust_range *r, int family, const uint8_t *addr)
{
    if (r->family != family)
        return false;
    unsigned full = r->prefix / 8, rest = r->prefix % 8;
    if (memcmp(r->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (r->addr[full] & mask) == (addr[full] & mask);
}

bool ims_trust_is_trusted(const ims_trust *t, const su_sockaddr_t *sa)
{
    if (!t || !sa)
        return false;
    int family;
    uint8_t addr[16] = { 0 };
    if (sa->su_family == AF_INET) {
        family = AF_INET;
        memcpy(addr, &sa->su_sin.sin_addr, 4);
    } else if (sa->su_family == AF_INET6) {
        const uint8_t *b = (const uint8_t *)&sa->su_sin6.sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&sa->su_sin6.sin6_addr)) {
            family = AF_INET;
            memcpy(addr, b + 12, 4);
        } else {
            family = AF_INET6;
            memcpy(addr, b, 16);
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < t->count; i++)
        if (range_has(&t->ranges[i], family, addr))
            return true;
    return false;
}

bool ims_trust_host_is_trusted(const ims_trust *t, const ims_sip *sip, const char *host)
{
    if (!t || !host || !*host)
        return false;
    char lit[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    if (host[0] == '[' && n > 2 && host[n - 1] == ']' && n - 2 < sizeof(lit)) {   /* [v6] */
        memcpy(lit, host + 1, n - 2);
        lit[n - 2] = '\0';
        host = lit;
    }
    for (size_t i = 0; i < t->n_peer_names; i++)
        if (strcasecmp(t->peer_names[i], host) == 0)
            return true;
    const char *mapped = sip ? ims_sip_host_lookup(sip, host) : NULL;
    trust_range r;
    if (parse_addr(mapped ? mapped : host, &r.family, r.addr))
        return false;   /* a name we would have to ask DNS for: not here (no blocking lookups) */
    for (size_t i = 0; i < t->count; i++)
        if (range_has(&t->ranges[i], r.family, r.addr))
            return true;
    return false;
}

/* ---------- requests ---------- */

int ims_trust_source(nta_incoming_t *irq, su_sockaddr_t *out, char *text, size_t textlen)
{
    int rv = -1;
    memset(out, 0, sizeof(*out));
    if (text && textlen)
        snprintf(text, textlen, "unknown");
    msg_t *msg = irq ? nta_incoming_getrequest(irq) : NULL;
    if (!msg)
        return -1;
    su_addrinfo_t *ai = msg_addrinfo(msg);
    if (!ai || !ai->ai_addr || ai->ai_addrlen == 0 || ai->ai_addrlen > sizeof(*out))
        goto out;
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    if (text && textlen) {
        char host[INET6_ADDRSTRLEN], port[16];
        if (getnameinfo((const struct sockaddr *)ai->ai_addr, (socklen_t)ai->ai_addrlen, host, sizeof(host),
                        port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            snprintf(text, textlen, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    }
    rv = 0;
out:
    msg_destroy(msg);
    return rv;
}

/* A bounded label: the methods of RFC 3261 and its extensions, anything else "other". */
static const char *method_label(const sip_t *sip)
{
    static const char *const known[] = { "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER",
                                         "SUBSCRIBE", "NOTIFY", "MESSAGE", "PRACK", "UPDATE", "INFO",
                                         "REFER", "PUBLISH", NULL };
    const char *m = sip && sip->sip_request ? sip->sip_request->rq_method_name : NULL;
    for (size_t i = 0; m && known[i]; i++)
        if (strcmp(m, known[i]) == 0)
            return known[i];
    return "other";
}

bool ims_trust_admit(ims_trust *t, nta_incoming_t *irq, const sip_t *sip, const char *subsys)
{
    su_sockaddr_t src;
    char text[INET6_ADDRSTRLEN + 16];
    bool known = ims_trust_source(irq, &src, text, sizeof(text)) == 0;
    if (known && ims_trust_is_trusted(t, &src))
        return true;

    const char *method = method_label(sip);
    char name[96];
    snprintf(name, sizeof(name), "sip_untrusted_refused_total{method=\"%s\"}", method);
    ims_metric_inc(ims_metric_counter(name, "requests refused because their source is outside the trust "
                                            "domain (trust.peers, trust.cidrs), by method"));

    /* One warning a second at most: a stranger may send floods. */
    time_t now = time(NULL);
    if (t && now == t->logged) {
        t->unlogged++;
        return false;
    }
    unsigned long skipped = t ? t->unlogged : 0;
    if (t) {
        t->logged = now;
        t->unlogged = 0;
    }
    const char *from = sip && sip->sip_from && sip->sip_from->a_url->url_user ? sip->sip_from->a_url->url_user : "-";
    IMS_WARN(subsys ? subsys : "trust",
             "refused %s from %s (From user %s): the source is not in the trust domain (trust.peers, "
             "trust.cidrs)%s; %lu more refused since the last warning",
             sip && sip->sip_request ? sip->sip_request->rq_method_name : "?", text, from,
             t && t->implicit ? " — none configured, only this NF's own address is trusted" : "", skipped);
    return false;
}
