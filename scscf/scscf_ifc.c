/*
 * scscf_ifc: initial filter criteria evaluation. See scscf_ifc.h.
 *
 * References: TS 29.228 Annex B.2.2 (iFC, trigger point, SPT semantics, CNF/DNF, ConditionNegated,
 * RegistrationType), Annex F (Group), TS 23.218 §6.4/§6.5 (filter criteria, priority order),
 * RFC 3261 §7.3.1 (header folding) and §7.3.3 (compact forms), RFC 4566 §5 (SDP "type=value").
 */
#include "scscf_ifc.h"

#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ims_log.h"

#define SUBSYS "scscf.ifc"

/* POSIX ERE on a counted string (copied to NUL-terminate it). */
static bool regex_match(const char *pattern, const char *s, size_t len)
{
    regex_t re;
    if (!pattern)
        return true;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB)) {
        IMS_WARN(SUBSYS, "bad regular expression in iFC: %s", pattern);
        return false;
    }
    char stackbuf[512];
    char *buf = len < sizeof(stackbuf) ? stackbuf : malloc(len + 1);
    bool ok = false;
    if (buf) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        ok = regexec(&re, buf, 0, NULL, 0) == 0;
        if (buf != stackbuf)
            free(buf);
    }
    regfree(&re);
    return ok;
}

/* RFC 3261 §7.3.3 compact forms (and a few from later RFCs). */
static const char *full_name(const char *n, size_t len)
{
    static const struct { char c; const char *name; } compact[] = {
        { 'a', "Accept-Contact" }, { 'b', "Referred-By" }, { 'c', "Content-Type" },
        { 'd', "Request-Disposition" }, { 'e', "Content-Encoding" }, { 'f', "From" },
        { 'i', "Call-ID" }, { 'j', "Reject-Contact" }, { 'k', "Supported" }, { 'l', "Content-Length" },
        { 'm', "Contact" }, { 'o', "Event" }, { 'r', "Refer-To" }, { 's', "Subject" }, { 't', "To" },
        { 'u', "Allow-Events" }, { 'v', "Via" }, { 'x', "Session-Expires" }, { 'y', "Identity" },
    };
    if (len != 1)
        return NULL;
    for (size_t i = 0; i < sizeof(compact) / sizeof(compact[0]); i++)
        if ((n[0] | 0x20) == compact[i].c)
            return compact[i].name;
    return NULL;
}

static bool name_eq(const char *want, const char *n, size_t len)
{
    if (strlen(want) == len && strncasecmp(want, n, len) == 0)
        return true;
    const char *full = full_name(n, len);
    if (full && strcasecmp(full, want) == 0)
        return true;
    /* the iFC may itself use a compact form */
    const char *wfull = full_name(want, strlen(want));
    return wfull && strlen(wfull) == len && strncasecmp(wfull, n, len) == 0;
}

/* Walks header lines (unfolding continuation lines); calls fn with name/value spans. */
static bool header_match(const scscf_ifc_request *r, const char *name, const char *content)
{
    const char *p = r->headers, *end = r->headers ? r->headers + r->headers_len : NULL;
    while (p && p < end) {
        const char *eol = p;
        /* a logical line ends at CRLF/LF not followed by SP/HTAB */
        while (eol < end) {
            if (*eol == '\n' && !(eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')))
                break;
            eol++;
        }
        const char *line_end = eol;
        while (line_end > p && (line_end[-1] == '\r' || line_end[-1] == '\n'))
            line_end--;
        if (line_end == p)
            break;   /* empty line: end of headers */
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon) {
            const char *ne = colon;
            while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
                ne--;
            if (name_eq(name, p, (size_t)(ne - p))) {
                const char *v = colon + 1;
                while (v < line_end && (*v == ' ' || *v == '\t'))
                    v++;
                if (!content || regex_match(content, v, (size_t)(line_end - v)))
                    return true;
            }
        }
        p = eol < end ? eol + 1 : end;
    }
    return false;
}

static bool sdp_match(const scscf_ifc_request *r, const char *line, const char *content)
{
    if (!r->body || !line || !*line)
        return false;
    size_t ll = strlen(line);
    const char *p = r->body, *end = r->body + r->body_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *ve = le;
        if (ve > p && ve[-1] == '\r')
            ve--;
        if ((size_t)(ve - p) > ll && strncmp(p, line, ll) == 0 && p[ll] == '=') {
            const char *v = p + ll + 1;
            if (!content || regex_match(content, v, (size_t)(ve - v)))
                return true;
        }
        p = eol ? eol + 1 : end;
    }
    return false;
}

bool scscf_ifc_spt_match(const ims_spt *spt, const scscf_ifc_request *r)
{
    bool m = false;
    switch (spt->kind) {
    case IMS_SPT_REQUEST_URI:
        m = r->request_uri && spt->value && regex_match(spt->value, r->request_uri, strlen(r->request_uri));
        break;
    case IMS_SPT_METHOD:
        m = r->method && spt->value && strcasecmp(spt->value, r->method) == 0;
        if (m && spt->registration_type && strcasecmp(r->method, "REGISTER") == 0)
            m = (spt->registration_type & r->registration_type) != 0;
        break;
    case IMS_SPT_SIP_HEADER:
        m = spt->value && header_match(r, spt->value, spt->content);
        break;
    case IMS_SPT_SESSION_CASE:
        m = spt->session_case == r->session_case;
        break;
    case IMS_SPT_SESSION_DESC:
        m = sdp_match(r, spt->value, spt->content);
        break;
    }
    return spt->negated ? !m : m;
}

bool scscf_ifc_tp_match(const ims_trigger_point *tp, const scscf_ifc_request *r)
{
    if (!tp || !tp->n_spts)
        return true;
    /* distinct groups, in order of appearance */
    int groups[64];
    size_t ng = 0;
    for (size_t i = 0; i < tp->n_spts && ng < 64; i++) {
        bool seen = false;
        for (size_t g = 0; g < ng && !seen; g++)
            seen = groups[g] == tp->spts[i].group;
        if (!seen)
            groups[ng++] = tp->spts[i].group;
    }
    for (size_t g = 0; g < ng; g++) {
        /* CNF: group = OR of its SPTs; DNF: group = AND of its SPTs */
        bool group_val = !tp->cnf;
        for (size_t i = 0; i < tp->n_spts; i++) {
            if (tp->spts[i].group != groups[g])
                continue;
            bool v = scscf_ifc_spt_match(&tp->spts[i], r);
            if (tp->cnf && v) {
                group_val = true;
                break;
            }
            if (!tp->cnf && !v) {
                group_val = false;
                break;
            }
        }
        if (tp->cnf && !group_val)
            return false;   /* AND of groups */
        if (!tp->cnf && group_val)
            return true;    /* OR of groups */
    }
    return tp->cnf;
}

bool scscf_ifc_match(const ims_ifc *ifc, const scscf_ifc_request *r, bool registered)
{
    if (ifc->profile_part_indicator == 0 && !registered)
        return false;
    if (ifc->profile_part_indicator == 1 && registered)
        return false;
    if (!ifc->has_trigger_point)
        return true;
    return scscf_ifc_tp_match(&ifc->tp, r);
}

size_t scscf_ifc_select(const ims_service_profile *sp, const scscf_ifc_request *r, bool registered,
                        const ims_ifc **out, size_t max)
{
    size_t n = 0;
    if (!sp)
        return 0;
    for (size_t i = 0; i < sp->n_ifcs && n < max; i++) {
        if (!scscf_ifc_match(&sp->ifcs[i], r, registered))
            continue;
        /* insertion by priority; equal priorities keep document order */
        size_t j = n;
        while (j > 0 && out[j - 1]->priority > sp->ifcs[i].priority) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = &sp->ifcs[i];
        n++;
    }
    return n;
}

int scscf_ifc_request_from_text(const char *text, size_t len, char *method, size_t mlen, char *ruri,
                                size_t rlen, scscf_ifc_request *out)
{
    memset(out, 0, sizeof(*out));
    const char *end = text + len;
    const char *eol = memchr(text, '\n', len);
    if (!eol)
        return -1;
    const char *sp1 = memchr(text, ' ', (size_t)(eol - text));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - text) >= mlen || (size_t)(sp2 - sp1 - 1) >= rlen)
        return -1;
    memcpy(method, text, (size_t)(sp1 - text));
    method[sp1 - text] = '\0';
    memcpy(ruri, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    ruri[sp2 - sp1 - 1] = '\0';
    out->method = method;
    out->request_uri = ruri;
    out->headers = eol + 1;
    /* the body follows the first empty line */
    const char *p = eol + 1;
    while (p < end) {
        const char *n = memchr(p, '\n', (size_t)(end - p));
        if (!n)
            break;
        if (n == p || (n == p + 1 && *p == '\r')) {
            out->headers_len = (size_t)(p - out->headers);
            out->body = n + 1;
            out->body_len = (size_t)(end - (n + 1));
            return 0;
        }
        p = n + 1;
    }
    out->headers_len = (size_t)(end - out->headers);
    return 0;
}
