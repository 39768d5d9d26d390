/*
 * pcscf_util: SIP helpers shared by the P-CSCF modules.
 *
 * References: RFC 3261 §20 (header field lists: comma-separated values, name-addr / addr-spec),
 * §19.1.4 (URI comparison, used loosely for contacts: scheme, user, host, port; identities go
 * through common/ims_identity).
 */
#include <netdb.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_uniqueid.h>
#include <sofia-sip/url.h>

#include "ims_identity.h"
#include "ims_sip.h"
#include "pcscf_util.h"

int pcscf_source_of_msg(msg_t *msg, pcscf_addr *out)
{
    memset(out, 0, sizeof(*out));
    su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
    if (!ai || !ai->ai_addr || !ai->ai_addrlen)
        return -1;
    char port[16];
    if (getnameinfo((const struct sockaddr *)ai->ai_addr, (socklen_t)ai->ai_addrlen, out->host,
                    sizeof(out->host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV))
        return -1;
    out->port = (unsigned)strtoul(port, NULL, 10);
    snprintf(out->transport, sizeof(out->transport), "%s",
             (ai->ai_protocol == IPPROTO_TCP || ai->ai_socktype == SOCK_STREAM) ? "tcp" : "udp");
    return 0;
}

int pcscf_source_of(nta_incoming_t *irq, pcscf_addr *out)
{
    memset(out, 0, sizeof(*out));
    msg_t *msg = nta_incoming_getrequest(irq);
    int rv = pcscf_source_of_msg(msg, out);
    if (msg)
        msg_destroy(msg);
    return rv;
}

int pcscf_header_values(const sip_t *sip, const char *name, pcscf_value_f fn, void *arg)
{
    int n = 0;
    for (const msg_unknown_t *u = sip->sip_unknown; u; u = u->un_next) {
        if (!u->un_name || strcasecmp(u->un_name, name))
            continue;
        n++;
        if (fn(arg, u->un_value ? u->un_value : ""))
            return n;
    }
    if (n == 0) {
        /* a header sofia-sip parses (P-Asserted-Identity when the extra headers are enabled) */
        char buf[1024];
        if (ims_sip_header(sip, name, buf, sizeof(buf))) {
            n = 1;
            fn(arg, buf);
        }
    }
    return n;
}

/* p at the opening '"' of a quoted-string: returns its closing '"', or the terminating NUL when it
 * is not closed (RFC 3261 §25.1: a backslash escapes the next character). */
static const char *skip_quoted(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return p;
}

/* One element of a comma-separated list starting at s: its URI into out, returns where the next
 * element starts (after the comma) or NULL at the end. */
static const char *next_uri(const char *s, char *out, size_t len, bool *found)
{
    *found = false;
    while (*s == ' ' || *s == '\t' || *s == ',' || *s == '\r' || *s == '\n')
        s++;
    if (!*s)
        return NULL;
    const char *lt = NULL;
    const char *p = s;
    /* display name (quoted or tokens) up to '<', or an addr-spec up to ';' ',' or space */
    for (; *p && *p != ','; p++) {
        if (*p == '"') {
            p = skip_quoted(p);
            if (!*p)
                break;
        } else if (*p == '<') {
            lt = p;
            break;
        }
    }
    const char *b, *e;
    if (lt) {
        b = lt + 1;
        e = strchr(b, '>');
        if (!e)
            return NULL;
        p = e + 1;
    } else {
        b = s;
        for (e = s; *e && *e != ';' && *e != ',' && *e != ' ' && *e != '\t'; e++)
            ;
        p = e;
    }
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    size_t n = (size_t)(e - b);
    if (n && n < len) {
        memcpy(out, b, n);
        out[n] = '\0';
        *found = true;
    }
    /* skip header parameters up to the next top-level comma */
    for (; *p && *p != ','; p++) {
        if (*p == '"') {
            p = skip_quoted(p);
            if (!*p)
                break;
        }
    }
    return *p ? p + 1 : p;
}

int pcscf_split_uris(const char *list, pcscf_value_f fn, void *arg)
{
    int n = 0;
    char uri[512];
    const char *s = list;
    while (s && *s) {
        bool found;
        s = next_uri(s, uri, sizeof(uri), &found);
        if (found) {
            n++;
            if (fn(arg, uri))
                break;
        }
    }
    return n;
}

int pcscf_addr_uri(const char *value, char *out, size_t len)
{
    bool found = false;
    if (!value)
        return -1;
    next_uri(value, out, len, &found);
    return found ? 0 : -1;
}

bool pcscf_list_has(const msg_list_t *list, const char *tag)
{
    for (; list; list = list->k_next)
        for (msg_param_t const *i = list->k_items; i && *i; i++)
            if (strcasecmp(*i, tag) == 0)
                return true;
    return false;
}

int pcscf_remove_option_tag(msg_t *msg, sip_t *sip, const char *name, const char *tag)
{
    msg_list_t *list;
    msg_hclass_t *hc;
    if (strcasecmp(name, "Require") == 0) {
        list = sip->sip_require;
        hc = sip_require_class;
    } else if (strcasecmp(name, "Proxy-Require") == 0) {
        list = sip->sip_proxy_require;
        hc = sip_proxy_require_class;
    } else if (strcasecmp(name, "Supported") == 0) {
        list = sip->sip_supported;
        hc = sip_supported_class;
    } else {
        return -1;
    }
    if (!pcscf_list_has(list, tag))
        return 0;

    char rest[1024] = "";
    size_t used = 0;
    for (msg_list_t *l = list; l; l = l->k_next) {
        for (msg_param_t const *i = l->k_items; i && *i; i++) {
            if (strcasecmp(*i, tag) == 0)
                continue;
            int w = snprintf(rest + used, sizeof(rest) - used, "%s%s", used ? ", " : "", *i);
            if (w < 0 || (size_t)w >= sizeof(rest) - used)
                return -1;
            used += (size_t)w;
        }
    }
    msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)list);
    if (used && msg_header_add_make(msg, (msg_pub_t *)sip, hc, rest) < 0)
        return -1;
    return 1;
}

bool pcscf_url_same(const url_t *a, const url_t *b)
{
    if (!a || !b || a->url_type != b->url_type)
        return false;
    if (a->url_type == url_tel)   /* tel:+1555 : the number is in url_host */
        return a->url_host && b->url_host && strcmp(a->url_host, b->url_host) == 0;
    const char *ua = a->url_user ? a->url_user : "", *ub = b->url_user ? b->url_user : "";
    if (strcmp(ua, ub))
        return false;
    if (!a->url_host || !b->url_host || strcasecmp(a->url_host, b->url_host))
        return false;
    const char *pa = a->url_port && *a->url_port ? a->url_port : "5060";
    const char *pb = b->url_port && *b->url_port ? b->url_port : "5060";
    return strcmp(pa, pb) == 0;
}

bool pcscf_uri_same(const char *a, const char *b)
{
    bool same = false;
    if (!a || !b)
        return false;
    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home)
        return false;
    url_t *ua = url_make(home, a);
    url_t *ub = url_make(home, b);
    same = ua && ub && pcscf_url_same(ua, ub);
    su_home_unref(home);
    return same;
}

int pcscf_identity(const char *uri, char *out, size_t len)
{
    /* The one canonical key of every NF and the HSS: the P-CSCF no longer lower-cases the user
     * part, which made sip:Alice@ and sip:alice@ one binding here and two at the S-CSCF. */
    return ims_identity_normalise(uri, out, len);
}

bool pcscf_identity_key(const char *identity, char *out, size_t len)
{
    if (!identity || !len)
        return false;
    if (ims_identity_normalise(identity, out, len) == 0)
        return true;
    /* not a URI we normalise: the key is the text itself, so it matches only itself */
    size_t n = strlen(identity);
    if (n + 1 > len)
        return false;
    memcpy(out, identity, n + 1);
    return true;
}

bool pcscf_identity_same(const char *a, const char *b)
{
    char ka[IMS_IDENTITY_MAX], kb[IMS_IDENTITY_MAX];
    if (!a || !b)
        return false;
    if (strcmp(a, b) == 0)
        return true;   /* the common case: both already canonical */
    return pcscf_identity_key(a, ka, sizeof(ka)) && pcscf_identity_key(b, kb, sizeof(kb)) &&
           strcmp(ka, kb) == 0;
}

void pcscf_pop_route(msg_t *msg, sip_t *sip)
{
    if (sip->sip_route)
        msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_route);
}

void pcscf_reply(nta_incoming_t *irq, int status, const char *phrase)
{
    nta_incoming_treply(irq, status, phrase, TAG_END());
    nta_incoming_destroy(irq);
}
