/*
 * ims_register: REGISTER toolkit shared by the CSCFs. See ims_register.h.
 *
 * References: RFC 3261 §10.2.1 (Expires header and Contact expires parameter), §10.2.2 (Contact
 * "*" with Expires: 0), §10.3 steps 5-7 (registrar: 400 for "*" misuse, 423 Interval Too Brief
 * with Min-Expires, may shorten), §20.19 (Expires is delta-seconds), §21.4.18 (480 may carry
 * Retry-After); TS 24.229 §5.2.2.1 (the P-CSCF takes the granted expiry from the 200),
 * §5.3.1.3 (I-CSCF: a negative HSS answer is 403; a query that cannot be completed, e.g. time-out,
 * is 480), §5.3.2.2 (LIR: unknown user 404, not registered 480), §5.4.1.2.1 (S-CSCF: 403 for
 * too many registration flows and refused identities); TS 29.228 §6.1-§6.3, TS 29.229 §6.2
 * (result codes); RFC 6733 §7.1.3 (3002/3003/3004: the peer was not reached or is busy).
 *
 * Why 480 + Retry-After for an HSS that cannot be reached or cannot comply, at every CSCF: it is
 * the I-CSCF's answer in TS 24.229 §5.3.1.3; 480 is relayed unchanged by proxies (a 503 is not,
 * RFC 3261 §16.7 step 6) and makes the I-CSCF try another S-CSCF (§5.3.1.3), which is right when
 * only that S-CSCF lost its HSS; a 5xx (504 / 503) would send UEs to another P-CSCF. Before this
 * table the I-CSCF answered 504 and the S-CSCF 503 (or 403 for DIAMETER_UNABLE_TO_COMPLY).
 */
#include "ims_register.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>

#include "ims_cx.h"

/* ---------- Contact / Expires ---------- */

/* sofia-sip lists in sip_error the header fields it could not parse (generic error headers:
 * er_name valid) and the surplus instances of single header fields (their own class, so the
 * name is the class's: er_name is not a name there). */
static bool error_header(const sip_t *sip, const char *name, const char *compact)
{
    for (const msg_error_t *e = sip->sip_error; e; e = e->er_next) {
        const msg_hclass_t *hc = e->er_common->h_class;
        const char *n = hc && hc->hc_name ? hc->hc_name : e->er_name;
        if (n && (strcasecmp(n, name) == 0 || (compact && strcasecmp(n, compact) == 0)))
            return true;
    }
    return false;
}

static bool all_digits(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static long clamp_delta(unsigned long v)
{
    return v > 0x7fffffffUL ? 0x7fffffff : (long)v;
}

static int verdict(ims_reg_verdict *v, int status, const char *phrase)
{
    v->status = status;
    v->phrase = phrase;
    return status;
}

int ims_register_check(const sip_t *sip, const ims_reg_policy *pol, ims_reg_contacts *out, ims_reg_verdict *v)
{
    memset(out, 0, sizeof(*out));
    memset(v, 0, sizeof(*v));
    if (error_header(sip, "Expires", NULL))
        return verdict(v, 400, "Bad Request - Malformed Expires");
    if (error_header(sip, "Contact", "m"))
        return verdict(v, 400, "Bad Request - Malformed Contact");
    if (!sip->sip_to || !sip->sip_from || !sip->sip_call_id || !sip->sip_cseq)
        return verdict(v, 400, "Bad Request - Missing Mandatory Header");
    /* RFC 3261 §20.19: delta-seconds only (the HTTP date of RFC 2543 is gone) */
    if (sip->sip_expires && sip->sip_expires->ex_date)
        return verdict(v, 400, "Bad Request - Expires must be delta-seconds");
    long header_expires = sip->sip_expires ? clamp_delta(sip->sip_expires->ex_delta) : -1;

    size_t max = pol->max_contacts && pol->max_contacts < IMS_REG_MAX_CONTACTS ? pol->max_contacts
                                                                                : IMS_REG_MAX_CONTACTS;
    size_t total = 0;
    for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
        total++;
        if (m->m_url->url_type == url_any) {
            out->star = true;
            continue;
        }
        if (m->m_expires && !all_digits(m->m_expires))
            return verdict(v, 400, "Bad Request - Malformed Contact expires");
    }
    /* RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0 */
    if (out->star && (total > 1 || header_expires != 0))
        return verdict(v, 400, "Bad Request - Contact * needs Expires: 0 and no other Contact");
    if (total > max)
        return verdict(v, 403, "Forbidden - Too Many Contacts");

    for (const sip_contact_t *m = out->star ? NULL : sip->sip_contact; m; m = m->m_next) {
        long exp = header_expires >= 0 ? header_expires : pol->default_expires;
        if (m->m_expires)
            exp = clamp_delta(strtoul(m->m_expires, NULL, 10));
        if (pol->registrar) {
            if (exp > 0 && exp < pol->min_expires) {
                v->min_expires = pol->min_expires;
                return verdict(v, 423, "Interval Too Brief");
            }
            if (exp > pol->max_expires)
                exp = pol->max_expires;
        }
        out->c[out->n].m = m;
        out->c[out->n].expires = exp;
        out->n++;
    }
    return 0;
}

bool ims_register_is_deregistration(const sip_t *sip)
{
    const ims_reg_policy pol = { .registrar = false, .default_expires = IMS_REG_DEFAULT_EXPIRES,
                                 .max_contacts = IMS_REG_MAX_CONTACTS };
    ims_reg_contacts c;
    ims_reg_verdict v;
    if (!sip || !sip->sip_contact || ims_register_check(sip, &pol, &c, &v) != 0)
        return false;
    if (c.star)
        return true;
    for (size_t i = 0; i < c.n; i++)
        if (c.c[i].expires != 0)
            return false;
    return c.n > 0;
}

/* ---------- Cx result -> SIP status ---------- */

typedef struct {
    uint32_t code;
    bool experimental;
    int status_register;      /* answer to the REGISTER */
    int status_request;       /* answer to another request */
    const char *phrase_register, *phrase_request;
    const char *result;
    bool retry;               /* transient: Retry-After */
} cx_sip_row;

/* TS 29.229 §6.2 codes the HSS sends in answers to a CSCF; both columns per TS 24.229 (header). */
static const cx_sip_row cx_sip_table[] = {
    { IMS_CX_ERROR_USER_UNKNOWN, true, 403, 404, "Forbidden - Unknown User", "Not Found - User Unknown",
      "user_unknown", false },
    { IMS_CX_ERROR_IDENTITIES_DONT_MATCH, true, 403, 403, "Forbidden - Identities Do Not Match",
      "Forbidden - Identities Do Not Match", "forbidden", false },
    { IMS_CX_ERROR_IDENTITY_NOT_REGISTERED, true, 403, 480, "Forbidden - Identity Not Registered",
      "Temporarily Unavailable - Not Registered", "not_registered", false },
    { IMS_CX_ERROR_ROAMING_NOT_ALLOWED, true, 403, 403, "Forbidden - Roaming Not Allowed",
      "Forbidden - Roaming Not Allowed", "forbidden", false },
    { IMS_CX_ERROR_IDENTITY_ALREADY_REGISTERED, true, 403, 403, "Forbidden - Registered Elsewhere",
      "Forbidden - Registered Elsewhere", "forbidden", false },
    { IMS_CX_ERROR_AUTH_SCHEME_NOT_SUPPORTED, true, 403, 403, "Forbidden - Authentication Scheme Not Supported",
      "Forbidden - Authentication Scheme Not Supported", "forbidden", false },
    { IMS_DIAMETER_AUTHORIZATION_REJECTED, false, 403, 403, "Forbidden - Authorization Rejected",
      "Forbidden - Authorization Rejected", "forbidden", false },
    { IMS_DIAMETER_UNABLE_TO_COMPLY, false, 480, 480, "Temporarily Unavailable - HSS Unable To Comply",
      "Temporarily Unavailable - HSS Unable To Comply", "error", true },
};

#define IMS_DIAMETER_REALM_NOT_SERVED 3003u

bool ims_cx_unreachable(bool answered, uint32_t result, uint32_t experimental)
{
    if (!answered)
        return true;
    return !experimental && (result == IMS_DIAMETER_UNABLE_TO_DELIVER || result == IMS_DIAMETER_REALM_NOT_SERVED ||
                             result == IMS_DIAMETER_TOO_BUSY);
}

void ims_cx_to_sip(bool answered, uint32_t result, uint32_t experimental, ims_cx_purpose purpose, ims_cx_sip *out)
{
    memset(out, 0, sizeof(*out));
    if (ims_cx_unreachable(answered, result, experimental)) {
        out->status = 480;
        out->phrase = answered ? "Temporarily Unavailable - HSS Not Reachable"
                               : "Temporarily Unavailable - HSS Not Answering";
        out->retry_after = IMS_CX_RETRY_AFTER;
        out->result = answered ? "hss_unreachable" : "hss_timeout";
        return;
    }
    /* Success: Experimental 2001-2004 (first/subsequent registration, unregistered service,
     * server name not stored) or the base 2xxx. */
    if (experimental ? experimental / 1000 == 2 : result / 1000 == 2)
        return;
    for (size_t i = 0; i < sizeof(cx_sip_table) / sizeof(cx_sip_table[0]); i++) {
        const cx_sip_row *r = &cx_sip_table[i];
        if (r->experimental != (experimental != 0) || r->code != (experimental ? experimental : result))
            continue;
        bool reg = purpose == IMS_CX_FOR_REGISTER;
        out->status = reg ? r->status_register : r->status_request;
        out->phrase = reg ? r->phrase_register : r->phrase_request;
        out->result = r->result;
        if (r->retry)
            out->retry_after = IMS_CX_RETRY_AFTER;
        return;
    }
    out->status = 500;
    out->phrase = "Server Internal Error - Unexpected HSS Answer";
    out->result = "error";
}
