/*
 * ims_secagree: sec-agree header codec, mechanism choice and ESP key expansion (API and references
 * in ims_secagree.h).
 *
 * Grammar read (RFC 3329 §2.2, RFC 3261 §25.1, TS 33.203 Annex H), LWS allowed around ";", ","
 * and "=":
 *   value          = sec-mechanism *(COMMA sec-mechanism)
 *   sec-mechanism  = mechanism-name *(SEMI mech-parameters)          (name: token)
 *   mech-parameter = token [EQUAL (token / host / quoted-string)]    (generic-param)
 *   q              = qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]
 *   d-alg, d-qop   = token;  d-ver = LDQUOT 32LHEX RDQUOT
 *   ipsec-3gpp:  alg = hmac-md5-96 / hmac-sha-1-96 (mandatory); ealg = null / aes-cbc /
 *                des-ede3-cbc (absent: null); prot = esp / ah (absent: esp); mod = trans / tun /
 *                UDP-enc-tun (absent: trans); spi-c, spi-s = 1*10DIGIT, 1..2^32-1 (mandatory);
 *                port-c, port-s = 1*5DIGIT, 1..65535 (mandatory).
 * Token-valued parameters are compared case-insensitively (RFC 3261 §7.3.1).
 * The two SPIs of one ipsec-3gpp offer must differ: both SAs end at the same address, and the
 * kernel tells SAs apart by (destination, SPI, protocol) (RFC 4303 §2.1).
 *
 * Key expansion, TS 33.203 Annex I (IK and CK are 128 bits, from the AKA run, §6.1):
 *   integrity  hmac-md5-96:   IK_ESP = IK                                   (128 bits)
 *              hmac-sha-1-96: IK_ESP = IK || 32 zero bits                   (160 bits)
 *   encryption aes-cbc:       CK_ESP = CK                                   (128 bits)
 *              des-ede3-cbc:  CK = CK1 || CK2 (64 bits each),
 *                             CK_ESP = CK1 || CK2 || CK1                    (192 bits; parity bits
 *                             ignored, as Linux's des3_ede does outside FIPS mode)
 *              null:          no key
 * (The search tool found no copy of the Annex I text to quote; this is the expansion the plan
 * states and the one deployed P-CSCFs and UEs use, e.g. 32 zero bits appended for SHA-1.)
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>

#include "ims_secagree.h"

/* ---------- enum tables ---------- */

typedef struct {
    int value;
    const char *name;
} sa_name;

static const sa_name alg_names[] = {
    { IMS_SA_ALG_HMAC_MD5_96, "hmac-md5-96" },
    { IMS_SA_ALG_HMAC_SHA1_96, "hmac-sha-1-96" },
    { 0, NULL },
};

static const sa_name ealg_names[] = {
    { IMS_SA_EALG_NULL, "null" },
    { IMS_SA_EALG_AES_CBC, "aes-cbc" },
    { IMS_SA_EALG_DES_EDE3_CBC, "des-ede3-cbc" },
    { 0, NULL },
};

static const char *name_of(const sa_name *t, int value)
{
    for (; t->name; t++)
        if (t->value == value)
            return t->name;
    return NULL;
}

static int value_of(const sa_name *t, const char *name)
{
    for (; name && t->name; t++)
        if (strcasecmp(t->name, name) == 0)
            return t->value;
    return 0;
}

const char *ims_sa_alg_name(ims_sa_alg alg) { return name_of(alg_names, (int)alg); }
const char *ims_sa_ealg_name(ims_sa_ealg ealg) { return name_of(ealg_names, (int)ealg); }
ims_sa_alg ims_sa_alg_by_name(const char *name) { return (ims_sa_alg)value_of(alg_names, name); }
ims_sa_ealg ims_sa_ealg_by_name(const char *name) { return (ims_sa_ealg)value_of(ealg_names, name); }

/* ---------- lexer ---------- */

#define MECH_MAX_PARAMS 16
#define PARAM_TEXT_MAX 128 /* one parameter value */

typedef struct {
    const char *p;
    char *err;
    size_t errlen;
} lexer;

static int fail(lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(lexer *lx, const char *fmt, ...)
{
    if (lx->err && lx->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(lx->err, lx->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* RFC 3261 §25.1 token characters (ASCII, whatever the locale). */
static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-.!%*_+`'~", c));
}

/* Control characters (other than tab) are refused even inside quotes: the text ends up in logs. */
static bool is_ctl(char c)
{
    return ((unsigned char)c < 0x20 && c != '\t') || c == 0x7f;
}

static void skip_lws(lexer *lx)
{
    while (*lx->p == ' ' || *lx->p == '\t')
        lx->p++;
}

/* A token into out (lower-cased when lower). Length 0 when there is none; -1 when too long. */
static int read_token(lexer *lx, char *out, size_t outlen, bool lower)
{
    size_t n = 0;
    while (is_token_char(*lx->p)) {
        if (n + 1 >= outlen)
            return -1;
        out[n++] = lower && *lx->p >= 'A' && *lx->p <= 'Z' ? (char)(*lx->p - 'A' + 'a') : *lx->p;
        lx->p++;
    }
    out[n] = '\0';
    return (int)n;
}

/* gen-value = token / host / quoted-string. host adds IPv6 references "[...]" to what a token
 * allows (host names and IPv4 addresses are tokens). Copied as written, quotes included. */
static int read_gen_value(lexer *lx, char *out, size_t outlen)
{
    const char *start = lx->p;
    if (*lx->p == '"') {
        lx->p++;
        while (*lx->p && *lx->p != '"') {
            if (*lx->p == '\\' && lx->p[1])
                lx->p++;
            if (is_ctl(*lx->p))
                return -1;
            lx->p++;
        }
        if (*lx->p != '"')
            return -1;
        lx->p++;
    } else if (*lx->p == '[') {
        while (*lx->p && (isxdigit((unsigned char)*lx->p) || *lx->p == ':' || *lx->p == '.' || *lx->p == '['))
            lx->p++;
        if (*lx->p != ']')
            return -1;
        lx->p++;
    } else {
        while (is_token_char(*lx->p))
            lx->p++;
    }
    size_t n = (size_t)(lx->p - start);
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, start, n);
    out[n] = '\0';
    return (int)n;
}

/* ---------- value checks ---------- */

/* 1..max_digits decimal digits, value <= max. */
static bool parse_uint(const char *s, size_t max_digits, uint64_t max, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > max_digits)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* qvalue (RFC 3261 §25.1) -> 0..1000. */
static bool parse_qvalue(const char *s, int *out)
{
    if (s[0] != '0' && s[0] != '1')
        return false;
    int v = (s[0] - '0') * 1000;
    if (s[1] == '\0') {
        *out = v;
        return true;
    }
    if (s[1] != '.')
        return false;
    int scale = 100;
    size_t i = 2;
    for (; s[i]; i++) {
        if (i > 4 || !isdigit((unsigned char)s[i]) || (s[0] == '1' && s[i] != '0'))
            return false;
        v += (s[i] - '0') * scale;
        scale /= 10;
    }
    *out = v;
    return true;
}

static bool is_dver(const char *s)
{
    if (strlen(s) != 34 || s[0] != '"' || s[33] != '"')
        return false;
    for (int i = 1; i < 33; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!is_token_char(*s))
            return false;
    return true;
}

/* ---------- one mechanism ---------- */

/* What the ipsec-3gpp parameters said, before the checks that need all of them. */
typedef struct {
    bool has_alg;
    const char *unsupported; /* first reason, static */
} ipsec_seen;

static void unsupported(ipsec_seen *seen, const char *why)
{
    if (!seen->unsupported)
        seen->unsupported = why;
}

/* Applies one parameter of mechanism m. */
static int apply_param(lexer *lx, ims_sa_mech *m, ipsec_seen *seen, const char *name, const char *value)
{
    bool ipsec = strcmp(m->name, "ipsec-3gpp") == 0;
    bool has_value = value != NULL;
    uint64_t n;

    if (strcmp(name, "q") == 0) {
        if (!has_value || !parse_qvalue(value, &m->q))
            return fail(lx, "%s: q must be a qvalue (0 to 1, 3 decimals at most), not \"%s\"", m->name,
                        value ? value : "");
        return 0;
    }
    if (strcmp(name, "d-alg") == 0 || strcmp(name, "d-qop") == 0) {
        if (!has_value || !is_token(value))
            return fail(lx, "%s: %s must be a token", m->name, name);
        return 0;
    }
    if (strcmp(name, "d-ver") == 0) {
        if (!has_value || !is_dver(value))
            return fail(lx, "%s: d-ver must be 32 lower-case hex digits in quotes", m->name);
        return 0;
    }
    if (!ipsec)
        return 0; /* extension parameter of another mechanism */

    bool is_spi = strcmp(name, "spi-c") == 0 || strcmp(name, "spi-s") == 0;
    bool is_port = strcmp(name, "port-c") == 0 || strcmp(name, "port-s") == 0;
    bool is_ipsec_param = is_spi || is_port || strcmp(name, "alg") == 0 || strcmp(name, "ealg") == 0 ||
                          strcmp(name, "prot") == 0 || strcmp(name, "mod") == 0;
    if (!is_ipsec_param)
        return 0; /* extension: allowed by RFC 3329, ignored */
    if (!has_value || !is_token(value))
        return fail(lx, "ipsec-3gpp: %s needs a token value", name);

    if (is_spi || is_port) {
        uint64_t max = is_spi ? UINT32_MAX : 65535;
        if (!parse_uint(value, is_spi ? 10 : 5, max, &n) || n == 0)
            return fail(lx, "ipsec-3gpp: %s must be 1..%lu, not \"%s\"", name, (unsigned long)max, value);
        /* 0 is refused above, so a field left at 0 means "parameter absent". */
        if (strcmp(name, "spi-c") == 0)
            m->spi_c = (uint32_t)n;
        else if (strcmp(name, "spi-s") == 0)
            m->spi_s = (uint32_t)n;
        else if (strcmp(name, "port-c") == 0)
            m->port_c = (uint16_t)n;
        else
            m->port_s = (uint16_t)n;
    } else if (strcmp(name, "alg") == 0) {
        seen->has_alg = true;
        m->alg = ims_sa_alg_by_name(value);
        if (m->alg == IMS_SA_ALG_UNKNOWN)
            unsupported(seen, "integrity algorithm (alg) not implemented");
    } else if (strcmp(name, "ealg") == 0) {
        m->ealg = ims_sa_ealg_by_name(value);
        if (m->ealg == IMS_SA_EALG_UNKNOWN)
            unsupported(seen, "encryption algorithm (ealg) not implemented");
    } else if (strcmp(name, "prot") == 0) {
        if (strcasecmp(value, "esp") != 0)
            unsupported(seen, "only prot=esp is implemented");
    } else if (strcasecmp(value, "trans") != 0) { /* mod */
        unsupported(seen, "only mod=trans is implemented");
    }
    return 0;
}

/* Appends ";name[=value]" (without the first ";") to m->params. */
static int add_param_text(lexer *lx, ims_sa_mech *m, const char *name, const char *value)
{
    size_t used = strlen(m->params);
    int w = snprintf(m->params + used, sizeof m->params - used, "%s%s%s%s", used ? ";" : "", name,
                     value ? "=" : "", value ? value : "");
    if (w < 0 || (size_t)w >= sizeof m->params - used)
        return fail(lx, "%s: parameters longer than %zu characters", m->name, sizeof m->params - 1);
    return 0;
}

/* Reads one sec-mechanism at lx->p into *m; stops before "," or at the end. */
static int parse_mechanism(lexer *lx, ims_sa_mech *m)
{
    memset(m, 0, sizeof *m);
    m->q = -1;
    m->ealg = IMS_SA_EALG_NULL;

    skip_lws(lx);
    int n = read_token(lx, m->name, sizeof m->name, true);
    if (n < 0)
        return fail(lx, "mechanism name longer than %d characters", IMS_SA_MECH_NAME_MAX - 1);
    if (n == 0)
        return *lx->p ? fail(lx, "mechanism name expected before character 0x%02x", (unsigned char)*lx->p)
                      : fail(lx, "mechanism name expected");

    char names[MECH_MAX_PARAMS][32];
    size_t nparams = 0;
    ipsec_seen seen = { 0 };
    for (;;) {
        skip_lws(lx);
        if (*lx->p != ';')
            break;
        lx->p++;
        skip_lws(lx);
        char name[32], value[PARAM_TEXT_MAX];
        int len = read_token(lx, name, sizeof name, true);
        if (len <= 0)
            return fail(lx, "%s: %s", m->name, len < 0 ? "parameter name too long" : "parameter name expected");
        skip_lws(lx);
        bool has_value = false;
        if (*lx->p == '=') {
            lx->p++;
            skip_lws(lx);
            if (read_gen_value(lx, value, sizeof value) < 0)
                return fail(lx, "%s: bad or too long value of %s", m->name, name);
            has_value = true;
        }
        for (size_t i = 0; i < nparams; i++)
            if (strcmp(names[i], name) == 0)
                return fail(lx, "%s: parameter %s appears twice", m->name, name);
        if (nparams == MECH_MAX_PARAMS)
            return fail(lx, "%s: more than %d parameters", m->name, MECH_MAX_PARAMS);
        memcpy(names[nparams++], name, sizeof name);
        if (apply_param(lx, m, &seen, name, has_value ? value : NULL) < 0 ||
            add_param_text(lx, m, name, has_value ? value : NULL) < 0)
            return -1;
    }
    if (*lx->p != '\0' && *lx->p != ',')
        return fail(lx, "%s: unexpected character 0x%02x", m->name, (unsigned char)*lx->p);

    if (strcmp(m->name, "ipsec-3gpp") != 0) {
        m->why = "mechanism not implemented (only ipsec-3gpp)";
        return 0;
    }
    const char *missing = !seen.has_alg ? "alg" : !m->spi_c ? "spi-c" : !m->spi_s ? "spi-s"
                        : !m->port_c ? "port-c" : !m->port_s ? "port-s" : NULL;
    if (missing)
        return fail(lx, "ipsec-3gpp: %s missing (alg, spi-c, spi-s, port-c and port-s are mandatory)", missing);
    if (m->spi_c == m->spi_s)
        return fail(lx, "ipsec-3gpp: spi-c and spi-s are both %u", m->spi_c);
    m->why = seen.unsupported;
    m->supported = seen.unsupported == NULL;
    return 0;
}

/* ---------- lists ---------- */

int ims_secagree_parse(const char *value, ims_sa_list *out, char *err, size_t errlen)
{
    lexer lx = { value, err, errlen };
    if (err && errlen)
        err[0] = '\0';
    if (!value || !out)
        return fail(&lx, "no value");
    size_t len = strnlen(value, IMS_SA_VALUE_MAX + 1);
    if (len > IMS_SA_VALUE_MAX)
        return fail(&lx, "value longer than %d characters", IMS_SA_VALUE_MAX);

    for (;;) {
        if (out->n >= IMS_SA_MAX_MECHS)
            return fail(&lx, "more than %d mechanisms", IMS_SA_MAX_MECHS);
        ims_sa_mech m;
        if (parse_mechanism(&lx, &m) < 0)
            return -1;
        out->mech[out->n++] = m;
        if (*lx.p == '\0')
            return 0;
        lx.p++; /* the "," parse_mechanism stopped at */
    }
}

int ims_secagree_parse_sip(const sip_t *sip, const char *name, ims_sa_list *out, char *err, size_t errlen)
{
    lexer lx = { NULL, err, errlen }; /* for its messages only */
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return fail(&lx, "no list");
    memset(out, 0, sizeof *out);
    if (!sip || !name)
        return fail(&lx, "no message or header name");

    const sip_security_client_t *list;
    if (strcasecmp(name, "Security-Client") == 0)
        list = sip->sip_security_client;
    else if (strcasecmp(name, "Security-Server") == 0)
        list = sip->sip_security_server;
    else if (strcasecmp(name, "Security-Verify") == 0)
        list = sip->sip_security_verify;
    else
        return fail(&lx, "%s is not a sec-agree header", name);

    /* A line sofia-sip refused is in sip_error, not in the list: it must not look absent. */
    for (const sip_error_t *e = sip->sip_error; e; e = e->er_next)
        if (e->er_name && strcasecmp(e->er_name, name) == 0)
            return fail(&lx, "%s: malformed header (refused by the SIP parser)", name);

    char buf[IMS_SA_VALUE_MAX + 1];
    for (const sip_security_client_t *sa = list; sa; sa = sa->sa_next) {
        issize_t n = msg_header_field_e(buf, sizeof buf, (const msg_header_t *)sa, 0);
        if (n < 0 || (size_t)n >= sizeof buf)
            return fail(&lx, "%s: value longer than %d characters", name, IMS_SA_VALUE_MAX);
        buf[n] = '\0';
        if (ims_secagree_parse(buf, out, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* ---------- choice ---------- */

/* Position of a value in our preference list, -1 when it is not listed (not acceptable). */
static int alg_rank(const ims_sa_alg *pref, size_t n, ims_sa_alg alg)
{
    for (size_t i = 0; pref && i < n; i++)
        if (pref[i] == alg)
            return (int)i;
    return -1;
}

static int ealg_rank(const ims_sa_ealg *pref, size_t n, ims_sa_ealg ealg)
{
    for (size_t i = 0; pref && i < n; i++)
        if (pref[i] == ealg)
            return (int)i;
    return -1;
}

int ims_secagree_choose(const ims_sa_list *offered, const ims_sa_alg *alg_pref, size_t n_alg,
                        const ims_sa_ealg *ealg_pref, size_t n_ealg, ims_sa_mech *chosen)
{
    if (!offered)
        return -1;
    int best = -1, best_e = 0, best_a = 0;
    for (size_t i = 0; i < offered->n && i < IMS_SA_MAX_MECHS; i++) {
        const ims_sa_mech *m = &offered->mech[i];
        if (!m->supported || strcmp(m->name, "ipsec-3gpp") != 0)
            continue;
        int e = ealg_rank(ealg_pref, n_ealg, m->ealg);
        int a = alg_rank(alg_pref, n_alg, m->alg);
        if (e < 0 || a < 0)
            continue;
        /* Earlier index wins a full tie: only a strictly better one replaces it. */
        if (best < 0 || e < best_e || (e == best_e && (a < best_a || (a == best_a && m->q > offered->mech[best].q)))) {
            best = (int)i;
            best_e = e;
            best_a = a;
        }
    }
    if (best >= 0 && chosen)
        *chosen = offered->mech[best];
    return best;
}

/* ---------- output ---------- */

int ims_secagree_format(const ims_sa_mech *m, char *buf, size_t len)
{
    if (!m || !buf || len == 0 || !m->supported || strcmp(m->name, "ipsec-3gpp") != 0)
        return -1;
    const char *alg = ims_sa_alg_name(m->alg), *ealg = ims_sa_ealg_name(m->ealg);
    if (!alg || !ealg || m->spi_c == 0 || m->spi_s == 0 || m->port_c == 0 || m->port_s == 0 || m->q > 1000)
        return -1;

    char q[16] = "";
    if (m->q >= 0) {
        /* Shortest qvalue: 1000 -> "1", 100 -> "0.1", 50 -> "0.05", 123 -> "0.123". */
        if (m->q == 1000 || m->q == 0)
            snprintf(q, sizeof q, ";q=%d", m->q / 1000);
        else {
            int frac = m->q, digits = 3;
            while (frac % 10 == 0) {
                frac /= 10;
                digits--;
            }
            snprintf(q, sizeof q, ";q=0.%0*d", digits, frac);
        }
    }
    int n = snprintf(buf, len, "ipsec-3gpp%s;alg=%s;ealg=%s;spi-c=%u;spi-s=%u;port-c=%u;port-s=%u;prot=esp;mod=trans",
                     q, alg, ealg, m->spi_c, m->spi_s, (unsigned)m->port_c, (unsigned)m->port_s);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}

static bool same_mech(const ims_sa_mech *a, const ims_sa_mech *b)
{
    if (strcmp(a->name, b->name) != 0)
        return false;
    if (strcmp(a->name, "ipsec-3gpp") == 0 && a->supported && b->supported)
        return a->q == b->q && a->alg == b->alg && a->ealg == b->ealg && a->spi_c == b->spi_c &&
               a->spi_s == b->spi_s && a->port_c == b->port_c && a->port_s == b->port_s;
    return strcasecmp(a->params, b->params) == 0;
}

bool ims_secagree_verify_matches(const ims_sa_list *verify, const ims_sa_list *server_sent)
{
    if (!verify || !server_sent || verify->n == 0 || verify->n != server_sent->n || verify->n > IMS_SA_MAX_MECHS)
        return false;
    for (size_t i = 0; i < verify->n; i++)
        if (!same_mech(&verify->mech[i], &server_sent->mech[i]))
            return false;
    return true;
}

/* ---------- keys (TS 33.203 Annex I, see the file header) ---------- */

int ims_secagree_keys(ims_sa_alg alg, ims_sa_ealg ealg, const uint8_t ck[16], const uint8_t ik[16],
                      ims_sa_keys *out)
{
    if (!out || !ck || !ik)
        return -1;
    memset(out, 0, sizeof *out);
    out->auth_trunc_bits = 96;
    switch (alg) {
    case IMS_SA_ALG_HMAC_MD5_96:
        out->auth_xfrm = "hmac(md5)";
        memcpy(out->auth_key, ik, 16);
        out->auth_key_len = 16;
        break;
    case IMS_SA_ALG_HMAC_SHA1_96:
        out->auth_xfrm = "hmac(sha1)";
        memcpy(out->auth_key, ik, 16); /* bytes 16..19 stay zero: IK || 0^32 */
        out->auth_key_len = 20;
        break;
    default:
        return -1;
    }
    switch (ealg) {
    case IMS_SA_EALG_NULL:
        out->enc_xfrm = "ecb(cipher_null)";
        out->enc_key_len = 0;
        break;
    case IMS_SA_EALG_AES_CBC:
        out->enc_xfrm = "cbc(aes)";
        memcpy(out->enc_key, ck, 16);
        out->enc_key_len = 16;
        break;
    case IMS_SA_EALG_DES_EDE3_CBC:
        out->enc_xfrm = "cbc(des3_ede)";
        memcpy(out->enc_key, ck, 16);      /* CK1 || CK2 */
        memcpy(out->enc_key + 16, ck, 8);  /* || CK1     */
        out->enc_key_len = 24;
        break;
    default:
        ims_secagree_keys_wipe(out);
        return -1;
    }
    return 0;
}

void ims_secagree_keys_wipe(ims_sa_keys *keys)
{
    if (keys)
        explicit_bzero(keys, sizeof *keys);
}
