/*
 * ims_userdata.c: the Cx User-Data XML (IMSSubscription) of TS 29.228, writer and strict reader.
 *
 * Spec references (3GPP TS 29.228):
 *   Annex E  "XML schema for the Cx interface user profile" (CxDataType.xsd): element names, the
 *            xs:sequence order of every complex type, cardinalities, and the extension chain
 *            (every complex type ends with an optional <Extension> whose content grows per release).
 *   Table E.1 / E.2 (simple and complex data types): tPriority, tGroupID, tDefaultHandling (0/1),
 *            tDirectionOfRequest = SessionCase (0..4), tProfilePartIndicator (0/1), tIdentityType,
 *            tRegistrationType (0 INITIAL, 1 RE, 2 DE-REGISTRATION), tBool.
 *   Annex F  "Definition of parameters for service point trigger matching" and the shared iFC sets
 *            (SharedIFCSetID inside ServiceProfile/Extension). We never advertise the shared-iFC
 *            feature, so an HSS must not send SharedIFCSetID to us; it is skipped like any other
 *            Extension content.
 *
 * Extension chain as used here (Annex E):
 *   PublicIdentity/Extension        = IdentityType?, WildcardedPSI?, Extension{DisplayName?, ...}?
 *   SPT/Extension                   = RegistrationType*
 *   ApplicationServer/Extension     = IncludeRegisterRequest?, IncludeRegisterResponse?
 * DisplayName lives one level deeper (tPublicIdentityExtension2); the writer puts it there. The reader
 * also accepts it directly in the first Extension, because ims_userdata.h documents that shape and a
 * producer following the header must not lose the name silently.
 *
 * Security: the input comes from the network (Cx UDR/SAA/PPR). libxml2 is run with XML_PARSE_NONET,
 * without XML_PARSE_NOENT/DTDLOAD, and a SAX hook stops the parser at the first <!DOCTYPE, so no
 * entity declaration is ever processed (billion laughs, XXE). Input is capped at 1 MiB.
 *
 * An SPT with several <Group> elements belongs to several groups; the struct holds one group per SPT,
 * so the reader expands it into one ims_spt per group. This keeps CNF/DNF evaluation exact (the
 * evaluator collects SPTs by group number) instead of silently dropping group memberships.
 */
#include "ims_userdata.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define USERDATA_MAX_LEN (1024u * 1024u)   /* refuse anything larger: a real profile is a few KiB */
#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

/* ------------------------------------------------------------------------------------------------ */
/* common helpers                                                                                   */

/* libxml2 wants xmlInitParser() once before concurrent use (HSS dispatch threads, CSCF workers). */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init_once(void) { xmlInitParser(); }

/* libxml2 reports input encoding failures (a declared encoding the bytes do not match) through its
 * generic error function even with XML_PARSE_NOERROR: without this, every such User-Data printed
 * lines to stderr (found by tests/fuzz). The handler is per thread in libxml2, so it is swapped
 * around one parse only; the error still reaches us through xmlCtxtGetLastError. */
static void xml_quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Error at a node: every reader message starts with the line so an operator can find it. */
static void node_err(char *err, size_t errlen, const xmlNode *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void node_err(char *err, size_t errlen, const xmlNode *n, const char *path, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "line %ld: %s: %s", n ? xmlGetLineNo(n) : 0L, path, msg);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* Grows *arr by one zeroed element; returns it or NULL (ENOMEM). */
static void *grow(void **arr, size_t *n, size_t elsize)
{
    if (*n >= SIZE_MAX / elsize - 1)
        return NULL;
    void *p = realloc(*arr, (*n + 1) * elsize);
    if (!p)
        return NULL;
    *arr = p;
    void *el = (char *)p + *n * elsize;
    memset(el, 0, elsize);
    (*n)++;
    return el;
}

/* ------------------------------------------------------------------------------------------------ */
/* free / copy                                                                                      */

static void spt_free(ims_spt *s)
{
    free(s->value);
    free(s->content);
    memset(s, 0, sizeof *s);
}

void ims_ifc_free(ims_ifc *ifc)
{
    if (!ifc)
        return;
    for (size_t i = 0; i < ifc->tp.n_spts; i++)
        spt_free(&ifc->tp.spts[i]);
    free(ifc->tp.spts);
    free(ifc->as.server_name);
    free(ifc->as.service_info);
    memset(ifc, 0, sizeof *ifc);
    ifc->profile_part_indicator = -1;
}

void ims_service_profile_free(ims_service_profile *sp)
{
    if (!sp)
        return;
    for (size_t i = 0; i < sp->n_ids; i++) {
        free(sp->ids[i].identity);
        free(sp->ids[i].display_name);
    }
    free(sp->ids);
    for (size_t i = 0; i < sp->n_ifcs; i++)
        ims_ifc_free(&sp->ifcs[i]);
    free(sp->ifcs);
    memset(sp, 0, sizeof *sp);
    sp->subscribed_media_profile_id = -1;
}

void ims_subscription_free(ims_subscription *sub)
{
    if (!sub)
        return;
    free(sub->private_id);
    for (size_t i = 0; i < sub->n_profiles; i++)
        ims_service_profile_free(&sub->profiles[i]);
    free(sub->profiles);
    memset(sub, 0, sizeof *sub);
}

static void spt_copy(ims_spt *d, const ims_spt *s, bool *oom)
{
    *d = *s;
    d->value = dup_or_null(s->value, oom);
    d->content = dup_or_null(s->content, oom);
}

static void ifc_copy(ims_ifc *d, const ims_ifc *s, bool *oom)
{
    *d = *s;
    d->tp.spts = NULL;
    d->tp.n_spts = 0;
    d->as.server_name = dup_or_null(s->as.server_name, oom);
    d->as.service_info = dup_or_null(s->as.service_info, oom);
    if (s->tp.n_spts) {
        d->tp.spts = calloc(s->tp.n_spts, sizeof *d->tp.spts);
        if (!d->tp.spts) {
            *oom = true;
            return;
        }
        d->tp.n_spts = s->tp.n_spts;   /* set before copying: a partial copy stays freeable */
        for (size_t i = 0; i < s->tp.n_spts; i++)
            spt_copy(&d->tp.spts[i], &s->tp.spts[i], oom);
    }
}

int ims_service_profile_copy(ims_service_profile *dst, const ims_service_profile *src)
{
    bool oom = false;
    memset(dst, 0, sizeof *dst);
    dst->subscribed_media_profile_id = src->subscribed_media_profile_id;
    if (src->n_ids) {
        dst->ids = calloc(src->n_ids, sizeof *dst->ids);
        if (!dst->ids)
            goto fail;
        dst->n_ids = src->n_ids;
        for (size_t i = 0; i < src->n_ids; i++) {
            dst->ids[i] = src->ids[i];
            dst->ids[i].identity = dup_or_null(src->ids[i].identity, &oom);
            dst->ids[i].display_name = dup_or_null(src->ids[i].display_name, &oom);
        }
    }
    if (src->n_ifcs) {
        dst->ifcs = calloc(src->n_ifcs, sizeof *dst->ifcs);
        if (!dst->ifcs)
            goto fail;
        dst->n_ifcs = src->n_ifcs;
        for (size_t i = 0; i < src->n_ifcs; i++)
            ifc_copy(&dst->ifcs[i], &src->ifcs[i], &oom);
    }
    if (oom)
        goto fail;
    return 0;
fail:
    ims_service_profile_free(dst);
    errno = ENOMEM;
    return -1;
}

/* ------------------------------------------------------------------------------------------------ */
/* writer                                                                                           */

/* Text we put into the document must be valid UTF-8 and contain only XML 1.0 characters, otherwise
 * the output is not well-formed (libxml2 would write &#1; which XML 1.0 forbids). Strict RFC 3629:
 * xmlCheckUTF8 accepts overlong forms (C0 91) that the parser then refuses (found by tests/fuzz). */
bool ims_userdata_text_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++, more, min;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return false;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) { more = 1; min = 0x80; c &= 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { more = 2; min = 0x800; c &= 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { more = 3; min = 0x10000; c &= 0x07; }
        else return false;
        for (; more; more--, p++) {
            if ((*p & 0xc0) != 0x80)   /* also stops at the terminating NUL */
                return false;
            c = (c << 6) | (*p & 0x3f);
        }
        /* XML 1.0 Char: no surrogates, no U+FFFE / U+FFFF, nothing above U+10FFFF */
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff)
            return false;
    }
    return true;
}

static bool text_ok(const char *s) { return ims_userdata_text_ok(s); }

static bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Token fields (URIs, method, header names) are trimmed by the reader; refuse surrounding blanks
 * here so that parse(write(x)) == x holds. */
static bool token_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && !is_xml_space(s[0]) && !is_xml_space(s[n - 1]) && text_ok(s);
}

static int check_spt(const ims_spt *s, char *err, size_t errlen, const char *where)
{
    if (s->group < 0) {
        seterr(err, errlen, "%s: Group %d is negative", where, s->group);
        return -1;
    }
    if (s->registration_type & ~7u) {
        seterr(err, errlen, "%s: unknown RegistrationType bits 0x%x", where, s->registration_type);
        return -1;
    }
    switch (s->kind) {
    case IMS_SPT_SESSION_CASE:
        if (s->session_case < 0 || s->session_case > IMS_SESSION_CASE_ORIGINATING_CDIV) {
            seterr(err, errlen, "%s: SessionCase %d out of range 0..4", where, s->session_case);
            return -1;
        }
        return 0;
    case IMS_SPT_REQUEST_URI:
        /* RequestURI is a regular expression: kept verbatim, only needs to be non-empty text. */
        if (!s->value || !*s->value || !text_ok(s->value)) {
            seterr(err, errlen, "%s: empty or invalid RequestURI", where);
            return -1;
        }
        return 0;
    case IMS_SPT_METHOD:
    case IMS_SPT_SIP_HEADER:
    case IMS_SPT_SESSION_DESC:
        if (!token_ok(s->value)) {
            seterr(err, errlen, "%s: empty or invalid %s", where,
                   s->kind == IMS_SPT_METHOD ? "Method" :
                   s->kind == IMS_SPT_SIP_HEADER ? "SIPHeader/Header" : "SessionDescription/Line");
            return -1;
        }
        if (s->kind != IMS_SPT_METHOD && s->content && !text_ok(s->content)) {
            seterr(err, errlen, "%s: invalid Content text", where);
            return -1;
        }
        return 0;
    }
    seterr(err, errlen, "%s: unknown SPT kind %d", where, (int)s->kind);
    return -1;
}

static int check_ifc(const ims_ifc *f, char *err, size_t errlen, const char *where)
{
    char w[256];
    if (f->priority < 0) {
        seterr(err, errlen, "%s: Priority %d is negative", where, f->priority);
        return -1;
    }
    if (f->has_trigger_point) {
        if (f->tp.n_spts == 0 || !f->tp.spts) {
            seterr(err, errlen, "%s: TriggerPoint without SPT", where);
            return -1;
        }
        for (size_t i = 0; i < f->tp.n_spts; i++) {
            snprintf(w, sizeof w, "%s/TriggerPoint/SPT[%zu]", where, i);
            if (check_spt(&f->tp.spts[i], err, errlen, w) < 0)
                return -1;
        }
    }
    if (!token_ok(f->as.server_name)) {
        seterr(err, errlen, "%s: ApplicationServer without valid ServerName", where);
        return -1;
    }
    if (f->as.default_handling != IMS_DEFAULT_HANDLING_SESSION_CONTINUED &&
        f->as.default_handling != IMS_DEFAULT_HANDLING_SESSION_TERMINATED) {
        seterr(err, errlen, "%s: DefaultHandling %d out of range 0..1", where, f->as.default_handling);
        return -1;
    }
    if (f->as.service_info && !text_ok(f->as.service_info)) {
        seterr(err, errlen, "%s: invalid ServiceInfo text", where);
        return -1;
    }
    if (f->profile_part_indicator < -1 || f->profile_part_indicator > 1) {
        seterr(err, errlen, "%s: ProfilePartIndicator %d out of range", where, f->profile_part_indicator);
        return -1;
    }
    return 0;
}

/* Refuses what the Annex E schema cannot express (mandatory elements, out-of-range enums). */
static int check_subscription(const ims_subscription *sub, char *err, size_t errlen)
{
    char w[128];
    if (!token_ok(sub->private_id)) {
        seterr(err, errlen, "IMSSubscription: missing or invalid PrivateID");
        return -1;
    }
    if (sub->n_profiles == 0 || !sub->profiles) {
        seterr(err, errlen, "IMSSubscription: no ServiceProfile");
        return -1;
    }
    for (size_t p = 0; p < sub->n_profiles; p++) {
        const ims_service_profile *sp = &sub->profiles[p];
        if (sp->n_ids == 0 || !sp->ids) {
            seterr(err, errlen, "ServiceProfile[%zu]: no PublicIdentity", p);
            return -1;
        }
        for (size_t i = 0; i < sp->n_ids; i++) {
            const ims_public_identity *id = &sp->ids[i];
            if (!token_ok(id->identity)) {
                seterr(err, errlen, "ServiceProfile[%zu]/PublicIdentity[%zu]: missing or invalid Identity", p, i);
                return -1;
            }
            if (id->identity_type < 0 || id->identity_type > IMS_IDENTITY_TYPE_WILDCARDED_PSI) {
                seterr(err, errlen, "ServiceProfile[%zu]/PublicIdentity[%zu]: IdentityType %d out of range",
                       p, i, id->identity_type);
                return -1;
            }
            if (id->display_name && !text_ok(id->display_name)) {
                seterr(err, errlen, "ServiceProfile[%zu]/PublicIdentity[%zu]: invalid DisplayName text", p, i);
                return -1;
            }
        }
        if (sp->subscribed_media_profile_id < -1) {
            seterr(err, errlen, "ServiceProfile[%zu]: SubscribedMediaProfileId %d is negative", p,
                   sp->subscribed_media_profile_id);
            return -1;
        }
        if (sp->n_ifcs && !sp->ifcs) {
            seterr(err, errlen, "ServiceProfile[%zu]: n_ifcs set without ifcs", p);
            return -1;
        }
        for (size_t i = 0; i < sp->n_ifcs; i++) {
            snprintf(w, sizeof w, "ServiceProfile[%zu]/InitialFilterCriteria[%zu]", p, i);
            if (check_ifc(&sp->ifcs[i], err, errlen, w) < 0)
                return -1;
        }
    }
    return 0;
}

/* Tree building. Every helper tolerates a NULL parent so that an allocation failure deep down
 * only needs to be noticed once, by the oom flag, at the end. */
typedef struct {
    bool oom;
} wctx;

static xmlNode *w_elem(wctx *w, xmlNode *parent, const char *name)
{
    if (!parent)
        return NULL;
    xmlNode *n = xmlNewChild(parent, NULL, BAD_CAST name, NULL);
    if (!n)
        w->oom = true;
    return n;
}

/* xmlNewTextChild escapes &, <, > in the content (xmlNewChild would not). */
static xmlNode *w_text(wctx *w, xmlNode *parent, const char *name, const char *text)
{
    if (!parent)
        return NULL;
    xmlNode *n = xmlNewTextChild(parent, NULL, BAD_CAST name, BAD_CAST text);
    if (!n)
        w->oom = true;
    return n;
}

static xmlNode *w_int(wctx *w, xmlNode *parent, const char *name, int v)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%d", v);
    return w_text(w, parent, name, buf);
}

static void write_spt(wctx *w, xmlNode *tp, const ims_spt *s)
{
    xmlNode *e = w_elem(w, tp, "SPT");
    /* Annex E: ConditionNegated is optional (default false); written always, as Open IMS does,
     * so a reader of the dump does not need to know the default. */
    w_int(w, e, "ConditionNegated", s->negated ? 1 : 0);
    w_int(w, e, "Group", s->group);
    switch (s->kind) {
    case IMS_SPT_REQUEST_URI:
        w_text(w, e, "RequestURI", s->value);
        break;
    case IMS_SPT_METHOD:
        w_text(w, e, "Method", s->value);
        break;
    case IMS_SPT_SIP_HEADER: {
        xmlNode *h = w_elem(w, e, "SIPHeader");
        w_text(w, h, "Header", s->value);
        if (s->content)
            w_text(w, h, "Content", s->content);
        break;
    }
    case IMS_SPT_SESSION_CASE:
        w_int(w, e, "SessionCase", s->session_case);
        break;
    case IMS_SPT_SESSION_DESC: {
        xmlNode *d = w_elem(w, e, "SessionDescription");
        w_text(w, d, "Line", s->value);
        if (s->content)
            w_text(w, d, "Content", s->content);
        break;
    }
    }
    if (s->registration_type) {
        /* tSePoTriExtension: one RegistrationType per value; absent = all REGISTER kinds match. */
        xmlNode *x = w_elem(w, e, "Extension");
        for (int bit = 0; bit < 3; bit++)
            if (s->registration_type & (1u << bit))
                w_int(w, x, "RegistrationType", bit);
    }
}

static void write_ifc(wctx *w, xmlNode *sp, const ims_ifc *f)
{
    xmlNode *e = w_elem(w, sp, "InitialFilterCriteria");
    w_int(w, e, "Priority", f->priority);
    if (f->has_trigger_point) {
        xmlNode *tp = w_elem(w, e, "TriggerPoint");
        w_int(w, tp, "ConditionTypeCNF", f->tp.cnf ? 1 : 0);
        for (size_t i = 0; i < f->tp.n_spts; i++)
            write_spt(w, tp, &f->tp.spts[i]);
    }
    xmlNode *as = w_elem(w, e, "ApplicationServer");
    w_text(w, as, "ServerName", f->as.server_name);
    w_int(w, as, "DefaultHandling", f->as.default_handling);
    if (f->as.service_info)
        w_text(w, as, "ServiceInfo", f->as.service_info);
    if (f->as.include_register_request || f->as.include_register_response) {
        /* tApplicationServerExtension: presence of the empty element means "include". */
        xmlNode *x = w_elem(w, as, "Extension");
        if (f->as.include_register_request)
            w_elem(w, x, "IncludeRegisterRequest");
        if (f->as.include_register_response)
            w_elem(w, x, "IncludeRegisterResponse");
    }
    if (f->profile_part_indicator >= 0)
        w_int(w, e, "ProfilePartIndicator", f->profile_part_indicator);
}

static void write_public_identity(wctx *w, xmlNode *sp, const ims_public_identity *id)
{
    xmlNode *e = w_elem(w, sp, "PublicIdentity");
    if (id->barred)
        w_int(w, e, "BarringIndication", 1);
    w_text(w, e, "Identity", id->identity);
    if (id->identity_type != IMS_IDENTITY_TYPE_PUBLIC_USER || id->display_name) {
        xmlNode *x = w_elem(w, e, "Extension");
        if (id->identity_type != IMS_IDENTITY_TYPE_PUBLIC_USER)
            w_int(w, x, "IdentityType", id->identity_type);
        if (id->display_name) {
            /* DisplayName is in tPublicIdentityExtension2, i.e. Extension/Extension. */
            xmlNode *x2 = w_elem(w, x, "Extension");
            w_text(w, x2, "DisplayName", id->display_name);
        }
    }
}

char *ims_userdata_write(const ims_subscription *sub, char *err, size_t errlen)
{
    if (!sub) {
        seterr(err, errlen, "no subscription");
        return NULL;
    }
    if (check_subscription(sub, err, errlen) < 0)
        return NULL;
    pthread_once(&xml_once, xml_init_once);

    wctx w = { .oom = false };
    xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNode *root = doc ? xmlNewNode(NULL, BAD_CAST "IMSSubscription") : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    xmlDocSetRootElement(doc, root);
    /* Same root attributes as Open IMS / Kamailio HSS output: the schema has no target namespace. */
    xmlNs *xsi = xmlNewNs(root, BAD_CAST XSI_NS, BAD_CAST "xsi");
    if (!xsi || !xmlNewNsProp(root, xsi, BAD_CAST "noNamespaceSchemaLocation", BAD_CAST "CxDataType.xsd"))
        w.oom = true;

    w_text(&w, root, "PrivateID", sub->private_id);
    for (size_t p = 0; p < sub->n_profiles; p++) {
        const ims_service_profile *sp = &sub->profiles[p];
        xmlNode *e = w_elem(&w, root, "ServiceProfile");
        for (size_t i = 0; i < sp->n_ids; i++)
            write_public_identity(&w, e, &sp->ids[i]);
        if (sp->subscribed_media_profile_id >= 0) {
            xmlNode *c = w_elem(&w, e, "CoreNetworkServicesAuthorization");
            w_int(&w, c, "SubscribedMediaProfileId", sp->subscribed_media_profile_id);
        }
        for (size_t i = 0; i < sp->n_ifcs; i++)
            write_ifc(&w, e, &sp->ifcs[i]);
    }

    xmlChar *mem = NULL;
    int size = 0;
    if (!w.oom)
        xmlDocDumpFormatMemoryEnc(doc, &mem, &size, "UTF-8", 1);
    xmlFreeDoc(doc);
    if (!mem || size <= 0) {
        xmlFree(mem);
        seterr(err, errlen, "out of memory while writing User-Data");
        return NULL;
    }
    /* Hand back plain malloc memory so that callers free() it whatever libxml2's allocator is. */
    char *out = malloc((size_t)size + 1);
    if (out) {
        memcpy(out, mem, (size_t)size);
        out[size] = '\0';
    } else {
        seterr(err, errlen, "out of memory while writing User-Data");
    }
    xmlFree(mem);
    return out;
}

/* ------------------------------------------------------------------------------------------------ */
/* reader: schema sequences                                                                         */

/* One position of an xs:sequence. names is "Name" or, for an xs:choice, "A|B|C".
 * max 0 = unbounded. */
typedef struct {
    const char *names;
    int min, max;
} seq_item;

typedef struct {
    const seq_item *items;
    size_t n;
    bool open;             /* Extension content: unknown children are skipped (schema extensibility) */
    const char *path;      /* for messages, e.g. "ServiceProfile/PublicIdentity" */
    const xmlNode *parent;
    size_t cur;            /* current sequence position */
    int count;             /* elements seen at cur */
    const xmlNode *child;  /* iteration cursor */
} seq_walk;

static bool name_in(const char *names, const char *name)
{
    size_t len = strlen(name);
    const char *p = names;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == len && memcmp(p, name, len) == 0)
            return true;
        if (!bar)
            return false;
        p = bar + 1;
    }
}

/* "A|B|C" -> "A" for messages; names are short constants. */
static const char *first_name(const char *names, char *buf, size_t len)
{
    size_t l = strcspn(names, "|");
    if (l >= len)
        l = len - 1;
    memcpy(buf, names, l);
    buf[l] = '\0';
    return strchr(names, '|') ? names : buf;
}

static bool all_blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (!is_xml_space((char)*s))
            return false;
    return true;
}

static void seq_init(seq_walk *w, const xmlNode *parent, const char *path, const seq_item *items,
                     size_t n, bool open)
{
    memset(w, 0, sizeof *w);
    w->items = items;
    w->n = n;
    w->open = open;
    w->path = path;
    w->parent = parent;
    w->child = parent->children;
}

/* Next child element of the walk, checked against the sequence. Returns 1 with *el and *slot,
 * 0 at the end (mandatory positions checked), -1 on error. Whitespace text, comments and
 * processing instructions are ignored; other text between elements is an error. */
static int seq_next(seq_walk *w, const xmlNode **el, size_t *slot, char *err, size_t errlen)
{
    char b1[64], b2[64];
    for (; w->child; w->child = w->child->next) {
        const xmlNode *c = w->child;
        if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE)
            continue;
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (all_blank(c->content))
                continue;
            node_err(err, errlen, c, w->path, "unexpected text in <%s>", (const char *)w->parent->name);
            return -1;
        }
        if (c->type != XML_ELEMENT_NODE) {
            node_err(err, errlen, c, w->path, "unexpected node type %d", (int)c->type);
            return -1;
        }
        const char *name = (const char *)c->name;
        size_t s;
        for (s = 0; s < w->n; s++)
            if (name_in(w->items[s].names, name))
                break;
        if (s == w->n) {
            if (w->open)
                continue;
            node_err(err, errlen, c, w->path, "unknown element <%s>", name);
            return -1;
        }
        if (s < w->cur) {
            node_err(err, errlen, c, w->path, "<%s> out of order (must come before <%s>)", name,
                     first_name(w->items[w->cur].names, b1, sizeof b1));
            return -1;
        }
        if (s == w->cur) {
            w->count++;
        } else {
            for (size_t k = w->cur; k < s; k++) {
                int seen = (k == w->cur) ? w->count : 0;
                if (seen < w->items[k].min) {
                    node_err(err, errlen, c, w->path, "missing <%s> before <%s>",
                             first_name(w->items[k].names, b1, sizeof b1), name);
                    return -1;
                }
            }
            w->cur = s;
            w->count = 1;
        }
        if (w->items[s].max > 0 && w->count > w->items[s].max) {
            node_err(err, errlen, c, w->path, "too many <%s> (at most %d)",
                     first_name(w->items[s].names, b2, sizeof b2), w->items[s].max);
            return -1;
        }
        w->child = c->next;
        *el = c;
        *slot = s;
        return 1;
    }
    for (size_t k = w->cur; k < w->n; k++) {
        int seen = (k == w->cur) ? w->count : 0;
        if (seen < w->items[k].min) {
            node_err(err, errlen, w->parent, w->path, "missing <%s>",
                     first_name(w->items[k].names, b1, sizeof b1));
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* reader: leaf values                                                                              */

/* Text of a simple-typed element (text and CDATA, comments ignored, no child elements). */
static char *leaf_text(const xmlNode *el, const char *path, char *err, size_t errlen, bool *oom)
{
    size_t len = 0;
    for (const xmlNode *c = el->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            len += c->content ? strlen((const char *)c->content) : 0;
        } else if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE) {
            continue;
        } else {
            node_err(err, errlen, c, path, "<%s> must hold text only, found <%s>", (const char *)el->name,
                     c->name ? (const char *)c->name : "?");
            return NULL;
        }
    }
    char *s = malloc(len + 1);
    if (!s) {
        *oom = true;
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    size_t off = 0;
    for (const xmlNode *c = el->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t l = strlen((const char *)c->content);
            memcpy(s + off, c->content, l);
            off += l;
        }
    }
    s[off] = '\0';
    return s;
}

static void trim(char *s)
{
    size_t n = strlen(s), a = 0;
    while (a < n && is_xml_space(s[a]))
        a++;
    while (n > a && is_xml_space(s[n - 1]))
        n--;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
}

/* Token-valued element (URI, method, header name): trimmed, must not be empty. */
static int leaf_token(const xmlNode *el, const char *path, char **out, char *err, size_t errlen)
{
    bool oom = false;
    char *s = leaf_text(el, path, err, errlen, &oom);
    if (!s)
        return -1;
    trim(s);
    if (!*s) {
        free(s);
        node_err(err, errlen, el, path, "empty <%s>", (const char *)el->name);
        return -1;
    }
    free(*out);   /* a maxOccurs=1 slot cannot be seen twice, but stay leak-free regardless */
    *out = s;
    return 0;
}

/* Free text (regex, display name, service info): kept verbatim. */
static int leaf_string(const xmlNode *el, const char *path, char **out, char *err, size_t errlen)
{
    bool oom = false;
    char *s = leaf_text(el, path, err, errlen, &oom);
    if (!s)
        return -1;
    free(*out);
    *out = s;
    return 0;
}

static int leaf_int(const xmlNode *el, const char *path, int min, int max, int *out, char *err,
                    size_t errlen)
{
    bool oom = false;
    char *s = leaf_text(el, path, err, errlen, &oom);
    if (!s)
        return -1;
    trim(s);
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    /* strtol alone accepts "", " 1" and "1x"; the schema types are plain decimal integers. */
    bool ok = *s && (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+') && end && *end == '\0' &&
              errno == 0;
    if (!ok) {
        node_err(err, errlen, el, path, "<%s> is not an integer: \"%.40s\"", (const char *)el->name, s);
        free(s);
        return -1;
    }
    free(s);
    if (v < min || v > max) {
        node_err(err, errlen, el, path, "<%s> value %ld out of range %d..%d", (const char *)el->name, v, min,
                 max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* tBool: xs:boolean lexical space, 0/1/true/false. */
static int parse_bool_str(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "true")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "false")) {
        *out = false;
        return 0;
    }
    return -1;
}

static int leaf_bool(const xmlNode *el, const char *path, bool empty_is_true, bool *out, char *err,
                     size_t errlen)
{
    bool oom = false;
    char *s = leaf_text(el, path, err, errlen, &oom);
    if (!s)
        return -1;
    trim(s);
    int rc = 0;
    if (!*s && empty_is_true)
        *out = true;
    else if (parse_bool_str(s, out) < 0) {
        node_err(err, errlen, el, path, "<%s> is not a boolean (0/1/true/false): \"%.40s\"",
                 (const char *)el->name, s);
        rc = -1;
    }
    free(s);
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* reader: complex types (Annex E sequences)                                                        */

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* tPublicIdentityExtension (depth 1) and tPublicIdentityExtension2 (depth 2). */
static int parse_pi_extension(const xmlNode *node, ims_public_identity *id, int depth, char *err,
                              size_t errlen)
{
    static const seq_item ext1[] = {
        { "IdentityType", 0, 1 }, { "WildcardedPSI", 0, 1 },
        { "DisplayName", 0, 1 },   /* tolerated here, see file header */
        { "Extension", 0, 1 },
    };
    static const seq_item ext2[] = { { "DisplayName", 0, 1 } };
    const char *path = depth == 1 ? "PublicIdentity/Extension" : "PublicIdentity/Extension/Extension";
    seq_walk w;
    if (depth == 1)
        seq_init(&w, node, path, ext1, NITEMS(ext1), true);
    else
        seq_init(&w, node, path, ext2, NITEMS(ext2), true);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        const char *name = (const char *)el->name;
        if (!strcmp(name, "IdentityType")) {
            if (leaf_int(el, path, 0, IMS_IDENTITY_TYPE_WILDCARDED_PSI, &id->identity_type, err, errlen) < 0)
                return -1;
        } else if (!strcmp(name, "DisplayName")) {
            if (leaf_string(el, path, &id->display_name, err, errlen) < 0)
                return -1;
        } else if (!strcmp(name, "Extension")) {
            if (parse_pi_extension(el, id, 2, err, errlen) < 0)
                return -1;
        }
        /* WildcardedPSI: the identity itself already carries the wildcard; nothing to store. */
    }
    return rc;
}

static int parse_public_identity(const xmlNode *node, ims_public_identity *id, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "BarringIndication", 0, 1 }, { "Identity", 1, 1 }, { "Extension", 0, 1 },
    };
    const char *path = "ServiceProfile/PublicIdentity";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        switch (slot) {
        case 0:
            if (leaf_bool(el, path, false, &id->barred, err, errlen) < 0)
                return -1;
            break;
        case 1:
            if (leaf_token(el, path, &id->identity, err, errlen) < 0)
                return -1;
            break;
        case 2:
            if (parse_pi_extension(el, id, 1, err, errlen) < 0)
                return -1;
            break;
        }
    }
    return rc;
}

static int parse_cnsa(const xmlNode *node, ims_service_profile *sp, char *err, size_t errlen)
{
    static const seq_item items[] = { { "SubscribedMediaProfileId", 0, 1 }, { "Extension", 0, 1 } };
    const char *path = "ServiceProfile/CoreNetworkServicesAuthorization";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0)
        if (slot == 0 && leaf_int(el, path, 0, INT_MAX, &sp->subscribed_media_profile_id, err, errlen) < 0)
            return -1;
    return rc;
}

/* SIPHeader = Header, Content?, Extension?; SessionDescription = Line, Content?, Extension?. */
static int parse_match(const xmlNode *node, const char *key, const char *path, ims_spt *s, char *err,
                       size_t errlen)
{
    const seq_item items[] = { { key, 1, 1 }, { "Content", 0, 1 }, { "Extension", 0, 1 } };
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        if (slot == 0 && leaf_token(el, path, &s->value, err, errlen) < 0)
            return -1;
        if (slot == 1 && leaf_string(el, path, &s->content, err, errlen) < 0)
            return -1;
    }
    return rc;
}

static int parse_spt_extension(const xmlNode *node, ims_spt *s, char *err, size_t errlen)
{
    static const seq_item items[] = { { "RegistrationType", 0, 0 } };
    const char *path = "SPT/Extension";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), true);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        int v;
        if (leaf_int(el, path, 0, 2, &v, err, errlen) < 0)
            return -1;
        s->registration_type |= 1u << v;
    }
    return rc;
}

/* Parses one SPT and appends one ims_spt per <Group> to tp (see file header). */
static int parse_spt(const xmlNode *node, ims_trigger_point *tp, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "ConditionNegated", 0, 1 },
        { "Group", 1, 0 },
        { "RequestURI|Method|SIPHeader|SessionCase|SessionDescription", 1, 1 },
        { "Extension", 0, 1 },
    };
    const char *path = "TriggerPoint/SPT";
    ims_spt t;
    memset(&t, 0, sizeof t);
    int *groups = NULL;
    size_t n_groups = 0;
    int rc;
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        const char *name = (const char *)el->name;
        if (slot == 0) {
            rc = leaf_bool(el, path, false, &t.negated, err, errlen);
        } else if (slot == 1) {
            int *g = grow((void **)&groups, &n_groups, sizeof *groups);
            if (!g) {
                seterr(err, errlen, "out of memory");
                rc = -1;
            } else {
                rc = leaf_int(el, path, 0, INT_MAX, g, err, errlen);
            }
        } else if (slot == 2) {
            if (!strcmp(name, "RequestURI")) {
                t.kind = IMS_SPT_REQUEST_URI;
                rc = leaf_string(el, path, &t.value, err, errlen);
                if (rc == 0 && !*t.value) {
                    node_err(err, errlen, el, path, "empty <RequestURI>");
                    rc = -1;
                }
            } else if (!strcmp(name, "Method")) {
                t.kind = IMS_SPT_METHOD;
                rc = leaf_token(el, path, &t.value, err, errlen);
            } else if (!strcmp(name, "SIPHeader")) {
                t.kind = IMS_SPT_SIP_HEADER;
                rc = parse_match(el, "Header", "SPT/SIPHeader", &t, err, errlen);
            } else if (!strcmp(name, "SessionCase")) {
                t.kind = IMS_SPT_SESSION_CASE;
                rc = leaf_int(el, path, 0, IMS_SESSION_CASE_ORIGINATING_CDIV, &t.session_case, err, errlen);
            } else {
                t.kind = IMS_SPT_SESSION_DESC;
                rc = parse_match(el, "Line", "SPT/SessionDescription", &t, err, errlen);
            }
        } else {
            rc = parse_spt_extension(el, &t, err, errlen);
        }
        if (rc < 0)
            break;
    }
    for (size_t i = 0; rc == 0 && i < n_groups; i++) {
        ims_spt *d = grow((void **)&tp->spts, &tp->n_spts, sizeof *tp->spts);
        bool oom = false;
        if (d) {
            spt_copy(d, &t, &oom);
            d->group = groups[i];
        }
        if (!d || oom) {
            seterr(err, errlen, "out of memory");
            rc = -1;
        }
    }
    spt_free(&t);
    free(groups);
    return rc;
}

static int parse_trigger_point(const xmlNode *node, ims_trigger_point *tp, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "ConditionTypeCNF", 1, 1 }, { "SPT", 1, 0 }, { "Extension", 0, 1 },
    };
    const char *path = "InitialFilterCriteria/TriggerPoint";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        if (slot == 0 && leaf_bool(el, path, false, &tp->cnf, err, errlen) < 0)
            return -1;
        if (slot == 1 && parse_spt(el, tp, err, errlen) < 0)
            return -1;
    }
    return rc;
}

static int parse_as_extension(const xmlNode *node, ims_app_server *as, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "IncludeRegisterRequest", 0, 1 }, { "IncludeRegisterResponse", 0, 1 },
    };
    const char *path = "ApplicationServer/Extension";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), true);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        /* Annex E: an empty element means "include"; a boolean value is accepted too. */
        bool *flag = slot == 0 ? &as->include_register_request : &as->include_register_response;
        if (leaf_bool(el, path, true, flag, err, errlen) < 0)
            return -1;
    }
    return rc;
}

static int parse_app_server(const xmlNode *node, ims_app_server *as, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "ServerName", 1, 1 }, { "DefaultHandling", 0, 1 }, { "ServiceInfo", 0, 1 }, { "Extension", 0, 1 },
    };
    const char *path = "InitialFilterCriteria/ApplicationServer";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        switch (slot) {
        case 0:
            rc = leaf_token(el, path, &as->server_name, err, errlen);
            break;
        case 1:
            rc = leaf_int(el, path, 0, 1, &as->default_handling, err, errlen);
            break;
        case 2:
            rc = leaf_string(el, path, &as->service_info, err, errlen);
            break;
        default:
            rc = parse_as_extension(el, as, err, errlen);
            break;
        }
        if (rc < 0)
            return -1;
    }
    return rc;
}

static int parse_ifc(const xmlNode *node, ims_ifc *f, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "Priority", 1, 1 }, { "TriggerPoint", 0, 1 }, { "ApplicationServer", 1, 1 },
        { "ProfilePartIndicator", 0, 1 }, { "Extension", 0, 1 },
    };
    const char *path = "ServiceProfile/InitialFilterCriteria";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        switch (slot) {
        case 0:
            rc = leaf_int(el, path, 0, INT_MAX, &f->priority, err, errlen);
            break;
        case 1:
            f->has_trigger_point = true;
            rc = parse_trigger_point(el, &f->tp, err, errlen);
            break;
        case 2:
            rc = parse_app_server(el, &f->as, err, errlen);
            break;
        case 3:
            rc = leaf_int(el, path, 0, 1, &f->profile_part_indicator, err, errlen);
            break;
        default:
            rc = 0;   /* tInitialFilterCriteriaExtension: nothing we use */
            break;
        }
        if (rc < 0)
            return -1;
    }
    return rc;
}

static int parse_service_profile(const xmlNode *node, ims_service_profile *sp, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "PublicIdentity", 1, 0 }, { "CoreNetworkServicesAuthorization", 0, 1 },
        { "InitialFilterCriteria", 0, 0 }, { "Extension", 0, 1 },
    };
    const char *path = "IMSSubscription/ServiceProfile";
    seq_walk w;
    seq_init(&w, node, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        if (slot == 0) {
            ims_public_identity *id = grow((void **)&sp->ids, &sp->n_ids, sizeof *sp->ids);
            if (!id) {
                seterr(err, errlen, "out of memory");
                return -1;
            }
            rc = parse_public_identity(el, id, err, errlen);
        } else if (slot == 1) {
            rc = parse_cnsa(el, sp, err, errlen);
        } else if (slot == 2) {
            ims_ifc *f = grow((void **)&sp->ifcs, &sp->n_ifcs, sizeof *sp->ifcs);
            if (!f) {
                seterr(err, errlen, "out of memory");
                return -1;
            }
            f->profile_part_indicator = -1;
            rc = parse_ifc(el, f, err, errlen);
        }
        /* slot 3: tServiceProfileExtension (SharedIFCSetID, Annex F) is skipped, see file header. */
        if (rc < 0)
            return -1;
    }
    return rc;
}

static int parse_subscription(const xmlNode *root, ims_subscription *out, char *err, size_t errlen)
{
    static const seq_item items[] = {
        { "PrivateID", 1, 1 }, { "ServiceProfile", 1, 0 }, { "Extension", 0, 1 },
    };
    const char *path = "IMSSubscription";
    seq_walk w;
    seq_init(&w, root, path, items, NITEMS(items), false);
    const xmlNode *el;
    size_t slot;
    int rc;
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        if (slot == 0) {
            rc = leaf_token(el, path, &out->private_id, err, errlen);
        } else if (slot == 1) {
            ims_service_profile *sp = grow((void **)&out->profiles, &out->n_profiles, sizeof *out->profiles);
            if (!sp) {
                seterr(err, errlen, "out of memory");
                return -1;
            }
            sp->subscribed_media_profile_id = -1;
            rc = parse_service_profile(el, sp, err, errlen);
        }
        if (rc < 0)
            return -1;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* reader: entry point                                                                              */

static char doctype_seen_marker;

/* SAX internalSubset hook: called as soon as "<!DOCTYPE name" is read, before any declaration in
 * it. Stopping here means no entity is ever declared, let alone expanded. */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id)
{
    (void)name;
    (void)ext_id;
    (void)sys_id;
    xmlParserCtxtPtr ctxt = ctx;
    ctxt->_private = &doctype_seen_marker;
    xmlStopParser(ctxt);
}

int ims_userdata_parse(const char *xml, size_t len, ims_subscription *out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out) {
        seterr(err, errlen, "no output struct");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!xml || len == 0) {
        seterr(err, errlen, "empty User-Data");
        return -1;
    }
    if (len > USERDATA_MAX_LEN) {
        seterr(err, errlen, "User-Data too large: %zu bytes (limit %u)", len, USERDATA_MAX_LEN);
        return -1;
    }
    pthread_once(&xml_once, xml_init_once);

    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt || !ctxt->sax) {
        xmlFreeParserCtxt(ctxt);
        seterr(err, errlen, "out of memory");
        return -1;
    }
    ctxt->sax->internalSubset = refuse_doctype;
    ctxt->_private = NULL;
    /* NONET: never fetch anything. No NOENT / DTDLOAD / DTDATTR: no entity substitution, no DTD.
     * NOERROR/NOWARNING: libxml2 must not print to stderr; we report the last error ourselves.
     * BIG_LINES: correct line numbers past 65535. */
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES;
    xmlGenericErrorFunc saved_fn = xmlGenericError;
    void *saved_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, xml_quiet);
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "User-Data", NULL, opts);
    xmlSetGenericErrorFunc(saved_ctx, saved_fn);
    int rc = -1;

    if (ctxt->_private == &doctype_seen_marker || (doc && (doc->intSubset || doc->extSubset))) {
        seterr(err, errlen, "line %d: <!DOCTYPE> not allowed in User-Data", ctxt->input ? ctxt->input->line : 0);
        goto done;
    }
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[200] = "parse error";
        int line = 0;
        if (e && e->message) {
            snprintf(msg, sizeof msg, "%s", e->message);
            size_t l = strlen(msg);
            while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
                msg[--l] = '\0';
            line = e->line;
        }
        seterr(err, errlen, "line %d: User-Data is not well-formed XML: %s", line, msg);
        goto done;
    }
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || !root->name || strcmp((const char *)root->name, "IMSSubscription") != 0) {
        seterr(err, errlen, "line %ld: root element is <%s>, expected <IMSSubscription>",
               root ? xmlGetLineNo(root) : 0L, root && root->name ? (const char *)root->name : "");
        goto done;
    }
    rc = parse_subscription(root, out, err, errlen);

done:
    if (rc < 0) {
        ims_subscription_free(out);
        memset(out, 0, sizeof *out);
        if (err && errlen && !err[0])
            seterr(err, errlen, "invalid User-Data");
    }
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return rc;
}
