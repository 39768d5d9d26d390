/*
 * ims_sip_hosts: the static host table (sip.hosts), sip.advertise, and "is this URI us"
 * (RFC 3261 §16.4: a proxy removes the top Route when it names itself). Split from ims_sip.c;
 * the loop and the agent are there.
 */
#include "ims_sip_priv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/url.h>

/* "name=address" items from the configuration; blanks around either side are ignored. */
int ims_sip_parse_hosts(ims_sip *s, const ims_cfg_strlist *l, char *err, size_t errlen)
{
    if (l->count == 0)
        return 0;
    s->hosts = su_zalloc(s->home, l->count * sizeof(*s->hosts));
    if (!s->hosts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < l->count; i++) {
        const char *item = l->items[i] ? l->items[i] : "";
        const char *eq = strchr(item, '=');
        const char *n = item, *ne = eq, *a = eq ? eq + 1 : NULL, *ae = a ? a + strlen(a) : NULL;
        if (eq) {
            while (n < ne && (*n == ' ' || *n == '\t'))
                n++;
            while (ne > n && (ne[-1] == ' ' || ne[-1] == '\t'))
                ne--;
            while (a < ae && (*a == ' ' || *a == '\t'))
                a++;
            while (ae > a && (ae[-1] == ' ' || ae[-1] == '\t'))
                ae--;
        }
        if (!eq || ne == n || ae == a) {
            snprintf(err, errlen, "sip.hosts: '%s' is not name=address", item);
            return -1;
        }
        s->hosts[s->nhosts].name = su_strndup(s->home, n, ne - n);
        s->hosts[s->nhosts].addr = su_strndup(s->home, a, ae - a);
        if (!s->hosts[s->nhosts].name || !s->hosts[s->nhosts].addr) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->nhosts++;
    }
    return 0;
}

static const char *host_lookup(const ims_sip *s, const char *name)
{
    for (size_t i = 0; name && i < s->nhosts; i++)
        if (strcasecmp(s->hosts[i].name, name) == 0)
            return s->hosts[i].addr;
    return NULL;
}

const char *ims_sip_host_lookup(const ims_sip *s, const char *name)
{
    return s ? host_lookup(s, name) : NULL;
}

const char *ims_sip_listen_address(const ims_sip *s)
{
    return s ? s->listen : NULL;
}

url_t *ims_sip_next_hop(ims_sip *s, su_home_t *home, const url_t *target)
{
    if (!s || !home || !target || !target->url_host)
        return NULL;
    url_t *u = url_hdup(home, target);
    if (!u)
        return NULL;
    const char *addr = host_lookup(s, u->url_host);
    if (addr)
        u->url_host = addr;     /* the table lives as long as s, like any request using it */
    return u;
}

/* Literal IPv6 addresses are written in brackets in URIs, and url_host keeps the brackets. */
bool ims_sip_host_eq(const char *url_host, const char *ours)
{
    if (!url_host || !ours)
        return false;
    size_t ul = strlen(url_host), ol = strlen(ours);
    if (ul >= 2 && url_host[0] == '[' && url_host[ul - 1] == ']' && ours[0] != '[')
        return ol == ul - 2 && strncasecmp(url_host + 1, ours, ol) == 0;
    return strcasecmp(url_host, ours) == 0;
}

bool ims_sip_is_self(const ims_sip *s, const url_t *u)
{
    if (!s || !u || !u->url_host)
        return false;
    if (u->url_type != url_sip && u->url_type != url_sips)
        return false;
    unsigned port = 5060;
    if (u->url_port && *u->url_port) {
        char *end = NULL;
        unsigned long p = strtoul(u->url_port, &end, 10);
        if (*end || p == 0 || p > 65535)
            return false;
        port = (unsigned)p;
    }
    if (port == s->adv_port && ims_sip_host_eq(u->url_host, s->adv_host))
        return true;
    if (port != s->port)
        return false;
    return ims_sip_host_eq(u->url_host, s->hostname) || ims_sip_host_eq(u->url_host, s->listen);
}

/* A wildcard listen address is no address a peer could send to. */
static bool is_wildcard(const char *addr)
{
    return strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0 || strcmp(addr, "[::]") == 0;
}

/* sip.advertise "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal -> adv_host
 * (no brackets) and adv_port. Without it: the listen address, or the host name when we listen
 * on a wildcard address. */
int ims_sip_parse_advertise(ims_sip *s, const char *adv, char *err, size_t errlen)
{
    s->adv_port = s->port;
    if (!adv || !*adv) {
        if (!is_wildcard(s->listen)) {
            s->adv_host = su_strdup(s->home, s->listen);
        } else if (s->hostname) {
            s->adv_host = su_strdup(s->home, s->hostname);
        } else {
            snprintf(err, errlen, "sip.advertise: required when sip.listen is the wildcard address %s "
                     "(no peer can reach that): give the address or name peers should use", s->listen);
            return -1;
        }
        return s->adv_host ? 0 : -1;
    }
    char host[256];
    const char *port = NULL;
    if (adv[0] == '[') {
        const char *close = strchr(adv, ']');
        if (!close || close == adv + 1 || (size_t)(close - adv - 1) >= sizeof(host) ||
            (close[1] && close[1] != ':'))
            goto bad;
        memcpy(host, adv + 1, (size_t)(close - adv - 1));
        host[close - adv - 1] = '\0';
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(adv, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL;              /* a bare IPv6 literal: no port */
        size_t hl = colon ? (size_t)(colon - adv) : strlen(adv);
        if (hl == 0 || hl >= sizeof(host))
            goto bad;
        memcpy(host, adv, hl);
        host[hl] = '\0';
        port = colon ? colon + 1 : NULL;
    }
    for (const char *c = host; *c; c++)
        if (strchr(" \t<>;,@\"/?", *c))
            goto bad;
    if (port) {
        char *end = NULL;
        errno = 0;
        unsigned long p = strtoul(port, &end, 10);
        if (!*port || *end || errno || p == 0 || p > 65535)
            goto bad;
        s->adv_port = (unsigned)p;
    }
    if (is_wildcard(host)) {
        snprintf(err, errlen, "sip.advertise: '%s' is a wildcard address, which no peer can reach", adv);
        return -1;
    }
    s->adv_host = su_strdup(s->home, host);
    return s->adv_host ? 0 : -1;
bad:
    snprintf(err, errlen, "sip.advertise: '%s' is not host[:port] (IPv6 as [addr]:port)", adv);
    return -1;
}
