/*
 * ims_sip_hdr: header access by name and IMS identity helpers over sofia-sip's parser.
 *
 * Headers: sofia-sip parses the headers its message class knows into typed slots of sip_t
 * (Via, Route, Path (RFC 3327), Service-Route (RFC 3608), Authorization, ...) and keeps every
 * other one as a sip_unknown_t (name, value). The default SIP class of 1.12.11 does not include
 * the "extra" headers of <sofia-sip/sip_extra.h>, so P-Asserted-Identity, P-Associated-URI,
 * P-Charging-Vector, P-Visited-Network-ID (RFC 7315) ... are unknown headers here: use these
 * name-based helpers for them, not sip_p_asserted_identity() (which returns NULL).
 * The helpers look the name up in the message's class (msg_find_hclass, compact forms too) so
 * that a known header always goes to, and is found in, its typed slot.
 *
 * Identities: TS 23.003 §13 (IMPI, IMPU), TS 24.229 §5.1.1.2 (REGISTER: IMPU in To, IMPI in the
 * Authorization username, or derived from the IMPU when the UE sends none), TS 32.260 / RFC 7315
 * §4.6 (ICID in P-Charging-Vector).
 */
#include "ims_sip_priv.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/msg_mclass.h>
#include <sofia-sip/su_uniqueid.h>
#include <sofia-sip/url.h>

/* ---------- header lookup ---------- */

/* RFC 3261 §25.1 token characters: header names must be made of these. */
static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-.!%*_+`'~", *s))
            return false;
    return true;
}

/* Values go on one line: no CR/LF (header injection) and no other control characters. */
static bool is_value(const char *s)
{
    if (!s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;
    return true;
}

/* The message class of a parsed message: sofia keeps it as the "class" of the sip_t itself. */
static msg_mclass_t const *mclass_of(const sip_t *sip)
{
    msg_mclass_t const *mc = (msg_mclass_t const *)sip->sip_common->h_class;
    return mc ? mc : sip_default_mclass();
}

/* The known header reference for `name`, or NULL when sofia keeps it as unknown. */
static msg_href_t const *known_href(msg_mclass_t const *mc, const char *name)
{
    msg_href_t const *hr = msg_find_hclass(mc, name, NULL);
    if (!hr || hr == mc->mc_unknown || hr == mc->mc_error || !hr->hr_class || !hr->hr_offset)
        return NULL;
    return hr;
}

static msg_header_t **slot(sip_t *sip, msg_href_t const *hr)
{
    return (msg_header_t **)((char *)sip + hr->hr_offset);
}

const char *ims_sip_header(const sip_t *sip, const char *name, char *buf, size_t len)
{
    if (!sip || !is_token(name) || !buf || len == 0)
        return NULL;

    msg_href_t const *hr = known_href(mclass_of(sip), name);
    if (hr) {
        msg_header_t const *h = *slot((sip_t *)sip, hr);
        if (!h)
            return NULL;
        issize_t n = msg_header_field_e(buf, (isize_t)len, h, 0);
        if (n < 0 || (size_t)n >= len)
            return NULL;
        buf[n] = '\0';
        return buf;
    }

    for (sip_unknown_t const *un = sip->sip_unknown; un; un = un->un_next) {
        if (!un->un_name || strcasecmp(un->un_name, name) != 0)
            continue;
        const char *v = un->un_value ? un->un_value : "";
        size_t n = strlen(v);
        if (n >= len)
            return NULL;
        memcpy(buf, v, n + 1);
        return buf;
    }
    return NULL;
}

/* Builds a header of the right class: typed when sofia knows the name, unknown otherwise. */
static msg_header_t *make_header(msg_t *msg, sip_t *sip, const char *name, const char *value,
                                 msg_header_t ***where)
{
    if (!msg || !sip || !is_token(name) || !is_value(value))
        return NULL;
    msg_mclass_t const *mc = msg_mclass(msg);
    msg_href_t const *hr = known_href(mc, name);
    if (hr) {
        *where = slot(sip, hr);
        return msg_header_make(msg_home(msg), hr->hr_class, value);
    }
    *where = (msg_header_t **)&sip->sip_unknown;
    return msg_header_format(msg_home(msg), mc->mc_unknown->hr_class, "%s: %s", name, value);
}

int ims_sip_add_header(msg_t *msg, sip_t *sip, const char *name, const char *value)
{
    msg_header_t **where = NULL;
    msg_header_t *h = make_header(msg, sip, name, value, &where);
    if (!h)
        return -1;
    /* msg_header_insert would put list headers first; msg_header_add_dup appends. The copy
     * is cheap and keeps one code path for every header kind. */
    int rc = msg_header_add_dup(msg, (msg_pub_t *)sip, h);
    msg_header_free_all(msg_home(msg), h);
    return rc < 0 ? -1 : 0;
}

int ims_sip_prepend_header(msg_t *msg, sip_t *sip, const char *name, const char *value)
{
    msg_header_t **where = NULL;
    msg_header_t *h = make_header(msg, sip, name, value, &where);
    if (!h)
        return -1;
    /* Before every header of the same class (RFC 3327 §5: a proxy adds its Path on top). */
    return msg_header_prepend(msg, (msg_pub_t *)sip, where, h) < 0 ? -1 : 0;
}

int ims_sip_remove_headers(msg_t *msg, sip_t *sip, const char *name)
{
    if (!msg || !sip || !is_token(name))
        return 0;
    int n = 0;
    msg_href_t const *hr = known_href(msg_mclass(msg), name);
    if (hr) {
        msg_header_t **hh = slot(sip, hr);
        while (*hh) {
            if (msg_header_remove(msg, (msg_pub_t *)sip, *hh) < 0)
                break;
            n++;
        }
        return n;
    }
    sip_unknown_t *un = sip->sip_unknown;
    while (un) {
        sip_unknown_t *next = un->un_next;
        if (un->un_name && strcasecmp(un->un_name, name) == 0 &&
            msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)un) == 0)
            n++;
        un = next;
    }
    return n;
}

/* ---------- credentials (RFC 3261 §22) ---------- */

/* True when the auth-param list holds realm=<realm> (token or quoted-string, RFC 2617 §1.2). */
static bool realm_is(msg_param_t const *params, const char *realm)
{
    const char *v = msg_params_find(params, "realm");
    if (!v)
        return false;
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    return n == strlen(realm) && strncasecmp(v, realm, n) == 0;
}

int ims_sip_remove_credentials(msg_t *msg, sip_t *sip, const char *realm)
{
    if (!msg || !sip || !realm || !*realm)
        return 0;
    int n = 0;
    msg_auth_t *lists[2] = { sip->sip_authorization, sip->sip_proxy_authorization };
    for (size_t i = 0; i < 2; i++) {
        msg_auth_t *au = lists[i];
        while (au) {
            msg_auth_t *next = au->au_next;
            if (realm_is(au->au_params, realm) && msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)au) == 0)
                n++;
            au = next;
        }
    }
    return n;
}

/* ---------- identities ---------- */

/* Prints u without parameters and headers ("sip:alice@ims.lab", "tel:+155500"). */
static int print_bare(const url_t *src, char *buf, size_t len)
{
    url_t u = *src;
    u.url_params = NULL;
    u.url_headers = NULL;
    u.url_password = NULL;
    issize_t n = url_e(buf, (isize_t)len, &u);
    if (n <= 0 || (size_t)n >= len)
        return -1;
    buf[n] = '\0';
    return 0;
}

int ims_sip_impu_of(const sip_t *sip, char *buf, size_t len)
{
    if (!sip || !sip->sip_to || !buf || len == 0)
        return -1;
    const url_t *u = sip->sip_to->a_url;
    if (u->url_type != url_sip && u->url_type != url_sips && u->url_type != url_tel)
        return -1;
    return print_bare(u, buf, len);
}

int ims_sip_impi_of(const sip_t *sip, char *buf, size_t len)
{
    if (!sip || !buf || len == 0)
        return -1;

    /* TS 24.229 §5.1.1.2.1: the UE puts its IMPI in the username of Authorization. */
    if (sip->sip_authorization) {
        const char *v = msg_params_find(sip->sip_authorization->au_params, "username=");
        if (v) {
            char tmp[512];
            size_t n = strlen(v);
            if (n >= sizeof(tmp))
                return -1;
            if (v[0] == '"')
                msg_unquote(tmp, v);
            else
                memcpy(tmp, v, n + 1);
            if (!tmp[0] || strlen(tmp) >= len)
                return -1;
            strcpy(buf, tmp);
            return 0;
        }
    }

    /* None: derived from the IMPU (TS 23.003 §13.3 for the form; a tel: IMPU has no user@host
     * to derive from). */
    if (!sip->sip_to)
        return -1;
    const url_t *u = sip->sip_to->a_url;
    if ((u->url_type != url_sip && u->url_type != url_sips) || !u->url_user || !u->url_host)
        return -1;
    int n = snprintf(buf, len, "%s@%s", u->url_user, u->url_host);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int ims_sip_normalise_uri(const char *in, char *out, size_t len)
{
    if (!in || !out || len == 0)
        return -1;
    su_home_t home[1] = { SU_HOME_INIT(home) };
    int rc = -1;
    url_t *u = url_make(home, in);
    if (u && u->url_type != url_invalid && u->url_type != url_unknown && u->url_scheme) {
        char *scheme = su_strdup(home, u->url_scheme);
        char *host = u->url_host ? su_strdup(home, u->url_host) : NULL;
        for (char *p = scheme; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        for (char *p = host; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        u->url_scheme = scheme;
        u->url_host = host;
        rc = print_bare(u, out, len);
    }
    su_home_deinit(home);
    return rc;
}

/* Random per process, so that two processes (or hosts) started in the same second differ. */
static uint32_t icid_salt;
static pthread_once_t icid_once = PTHREAD_ONCE_INIT;

static void icid_salt_init(void)
{
    if (getrandom(&icid_salt, sizeof(icid_salt), 0) != (ssize_t)sizeof(icid_salt))
        icid_salt = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
}

/* time (s) + per-process salt + pid + counter, hex: unique per process without coordination. */
void ims_sip_new_icid(char *buf, size_t len)
{
    static _Atomic uint32_t counter;

    if (!buf || len == 0)
        return;
    pthread_once(&icid_once, icid_salt_init);
    uint32_t n = atomic_fetch_add(&counter, 1);
    snprintf(buf, len, "%08lx%08x%04x%08x", (unsigned long)time(NULL) & 0xffffffffUL, icid_salt,
             (unsigned)getpid() & 0xffffu, n);
}

/* ---------- random tokens ---------- */

void ims_sip_random_token(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[32];
    size_t i = 0;
    while (i < n) {
        size_t want = (n - i + 1) / 2 < sizeof(raw) ? (n - i + 1) / 2 : sizeof(raw);
        /* getrandom on a few bytes does not fail once the pool is initialised; if it ever does,
         * sofia's generator still keeps tags unique */
        if (getrandom(raw, want, 0) != (ssize_t)want)
            for (size_t k = 0; k < want; k++)
                raw[k] = (uint8_t)su_random();
        for (size_t k = 0; k < want && i < n; k++) {
            out[i++] = hex[raw[k] >> 4];
            if (i < n)
                out[i++] = hex[raw[k] & 0xf];
        }
    }
    out[n] = '\0';
}
