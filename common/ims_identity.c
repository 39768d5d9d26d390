/*
 * ims_identity: canonical keys of IMS identities. See ims_identity.h.
 *
 * References: RFC 3261 §19.1.4 (URI comparison), §25.1 (grammar: user, unreserved, escaped,
 * hostname, IPv6reference, port), RFC 2396 §2.2 (the reserved set that stays escaped), RFC 3966
 * §3 and §5.1.5 (tel: numbers, visual separators, phone-context), RFC 5952 §4 (IPv6 text form),
 * TS 23.003 §13.3-13.4 (IMPI and IMPU forms).
 *
 * A hand-written parser rather than sofia-sip's url_make(): the HSS (no sofia-sip loop) uses it
 * too, and sofia-sip accepts and keeps things an identity key must not (unescaped spaces, lone
 * '%', case variants of escapes). Anything that is not a well-formed identity is refused, so a
 * caller never builds a key out of garbage that might collide with a real identity.
 */
#include "ims_identity.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Output buffer: every put checks the room, ok turns false once anything did not fit. */
typedef struct {
    char *p;
    size_t len, n;
    bool ok;
} obuf;

static void put(obuf *o, char c)
{
    if (o->n + 1 >= o->len) {
        o->ok = false;
        return;
    }
    o->p[o->n++] = c;
    o->p[o->n] = '\0';
}

static void puts_n(obuf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(o, s[i]);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 3261 §25.1 unreserved = alphanum / mark */
static bool is_unreserved(int c)
{
    return isalnum(c) || (c && strchr("-_.!~*'()", c));
}

/* RFC 3261 §25.1 user-unreserved (all in RFC 2396's reserved set, so kept as written) */
static bool is_user_unreserved(int c)
{
    return c && strchr("&=+$,;?/", c);
}

/* Printable ASCII without space, and none of the characters that delimit a URI in a header
 * ('<', '>', '"'): callers pass a bare URI. */
static bool clean_text(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
            return false;
    }
    return true;
}

/* User part [b, e): unreserved and user-unreserved as written, escapes of unreserved characters
 * decoded ("%61lice" is "alice", §19.1.4), other escapes kept with upper-case hex ("%3b" is
 * "%3B", which differs from ";": reserved characters are not equivalent to their escapes). */
static int put_user(obuf *o, const char *b, const char *e)
{
    if (b == e)
        return -1;   /* "sip:@host" */
    for (const char *p = b; p < e; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            if (e - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0)
                return -1;
            int v = hexval(p[1]) * 16 + hexval(p[2]);
            if (is_unreserved(v)) {
                put(o, (char)v);
            } else {
                static const char hex[] = "0123456789ABCDEF";
                put(o, '%');
                put(o, hex[v >> 4]);
                put(o, hex[v & 0xf]);
            }
            p += 2;
        } else if (is_unreserved(c) || is_user_unreserved(c)) {
            put(o, (char)c);
        } else {
            return -1;
        }
    }
    return 0;
}

/* host [":" port] at s, lower-cased; returns where it ends (at ';', '?' or the end), NULL when
 * malformed. */
static const char *put_hostport(obuf *o, const char *s)
{
    const char *p = s;
    if (*p == '[') {
        /* IPv6reference: printed in one form (RFC 5952), so [::1] and [0:0::1] are one host */
        const char *close = strchr(p, ']');
        char lit[INET6_ADDRSTRLEN + 1];
        struct in6_addr a;
        size_t n = close ? (size_t)(close - p - 1) : 0;
        if (!close || n == 0 || n >= sizeof(lit))
            return NULL;
        memcpy(lit, p + 1, n);
        lit[n] = '\0';
        if (inet_pton(AF_INET6, lit, &a) != 1 || !inet_ntop(AF_INET6, &a, lit, sizeof(lit)))
            return NULL;
        put(o, '[');
        puts_n(o, lit, strlen(lit));
        put(o, ']');
        p = close + 1;
    } else {
        /* hostname / IPv4address: alphanum, '-', '.' (§25.1) */
        for (; isalnum((unsigned char)*p) || *p == '-' || *p == '.'; p++)
            put(o, (char)tolower((unsigned char)*p));
        if (p == s)
            return NULL;
    }
    if (*p == ':') {
        /* The port stays even when it is the default one: §19.1.4 says a URI omitting a
         * component with a default value does not match one that states it. Leading zeros go
         * (the port is a number). */
        unsigned long port = 0;
        const char *d = ++p;
        for (; isdigit((unsigned char)*p); p++) {
            port = port * 10 + (unsigned long)(*p - '0');
            if (port > 65535)
                return NULL;
        }
        if (p == d)
            return NULL;
        char num[8];
        int w = snprintf(num, sizeof(num), ":%lu", port);
        puts_n(o, num, (size_t)w);
    }
    return *p == '\0' || *p == ';' || *p == '?' ? p : NULL;
}

static int norm_sip(obuf *o, const char *rest)
{
    /* Neither parameters nor headers may hold an unescaped '@' (§25.1 paramchar, hvalue), and the
     * user may hold ';' and '?': the userinfo ends at the last '@'. */
    const char *at = strrchr(rest, '@');
    const char *host = rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        /* the password (user:password@) is not part of an identity */
        if (put_user(o, rest, colon ? colon : at) != 0)
            return -1;
        put(o, '@');
        host = at + 1;
    }
    /* parameters (;user=phone, ;transport=...) and headers are not part of an identity: the
     * registrars and the HSS match an IMPU without them (TS 24.229 §5.4.1.2, TS 29.228 §6.1) */
    return put_hostport(o, host) ? 0 : -1;
}

/* Visual separators of RFC 3966 §3, dropped from numbers */
static bool is_visual(int c)
{
    return c == '-' || c == '.' || c == '(' || c == ')';
}

/* "+" digits with visual separators at [b, e) into o without them. */
static int put_global(obuf *o, const char *b, const char *e)
{
    size_t digits = 0;
    if (b >= e || *b != '+')
        return -1;
    put(o, '+');
    for (const char *p = b + 1; p < e; p++) {
        if (isdigit((unsigned char)*p)) {
            put(o, *p);
            digits++;
        } else if (!is_visual((unsigned char)*p)) {
            return -1;
        }
    }
    return digits ? 0 : -1;
}

static int norm_tel(obuf *o, const char *rest)
{
    const char *semi = strchr(rest, ';');
    const char *end = semi ? semi : rest + strlen(rest);
    if (*rest == '+')
        return put_global(o, rest, end);   /* every parameter dropped */

    /* A local number means nothing without its phone-context (§5.1.5 makes it mandatory), so
     * that parameter stays, lower-cased (a domain name, or a global number prefix without
     * separators); every other parameter is dropped. */
    size_t digits = 0;
    for (const char *p = rest; p < end; p++) {
        int c = (unsigned char)*p;
        if (isxdigit(c) || c == '*' || c == '#') {
            put(o, (char)tolower(c));
            digits++;
        } else if (!is_visual(c)) {
            return -1;
        }
    }
    if (!digits)
        return -1;
    for (const char *p = semi; p && *p;) {
        const char *name = p + 1;
        const char *next = strchr(name, ';');
        const char *pe = next ? next : name + strlen(name);
        p = next;
        if ((size_t)(pe - name) <= 14 || strncasecmp(name, "phone-context=", 14) != 0)
            continue;
        const char *v = name + 14;
        puts_n(o, ";phone-context=", 15);
        if (*v == '+')
            return put_global(o, v, pe);
        for (; v < pe; v++) {
            if (!isalnum((unsigned char)*v) && *v != '-' && *v != '.')
                return -1;
            put(o, (char)tolower((unsigned char)*v));
        }
        return 0;
    }
    return -1;
}

int ims_identity_normalise(const char *in, char *out, size_t len)
{
    if (!in || !out || len == 0 || !clean_text(in))
        return -1;
    const char *colon = strchr(in, ':');
    if (!colon)
        return -1;
    size_t sl = (size_t)(colon - in);
    obuf o = { out, len, 0, true };
    out[0] = '\0';
    int rc;
    /* schemes are case-insensitive (§19.1.4); sip: and sips: stay different identities */
    if (sl == 3 && strncasecmp(in, "sip", 3) == 0) {
        puts_n(&o, "sip:", 4);
        rc = norm_sip(&o, colon + 1);
    } else if (sl == 4 && strncasecmp(in, "sips", 4) == 0) {
        puts_n(&o, "sips:", 5);
        rc = norm_sip(&o, colon + 1);
    } else if (sl == 3 && strncasecmp(in, "tel", 3) == 0) {
        puts_n(&o, "tel:", 4);
        rc = norm_tel(&o, colon + 1);
    } else {
        return -1;
    }
    return rc == 0 && o.ok ? 0 : -1;
}

int ims_identity_normalise_private(const char *impi, char *out, size_t len)
{
    if (!impi || !out || len == 0 || !*impi)
        return -1;
    size_t n = strlen(impi);
    if (n + 1 > len)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)impi[i];
        if (c <= 0x20 || c == 0x7f)
            return -1;
    }
    const char *at = strrchr(impi, '@');
    if (at && (at == impi || at[1] == '\0'))
        return -1;
    /* the realm is a DNS name (TS 23.003 §13.3): case-insensitive; the user part is not */
    for (size_t i = 0; i < n; i++)
        out[i] = at && impi + i > at ? (char)tolower((unsigned char)impi[i]) : impi[i];
    out[n] = '\0';
    return 0;
}

bool ims_identity_equal(const char *a, const char *b)
{
    char ka[IMS_IDENTITY_MAX], kb[IMS_IDENTITY_MAX];
    return ims_identity_normalise(a, ka, sizeof(ka)) == 0 &&
           ims_identity_normalise(b, kb, sizeof(kb)) == 0 && strcmp(ka, kb) == 0;
}
