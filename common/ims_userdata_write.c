/*
 * ims_userdata_write.c: ims_subscription -> Cx User-Data XML (TS 29.228 Annex E, IMSSubscription).
 *
 * Spec references (3GPP TS 29.228 Annex E, CxDataType.xsd): the xs:sequence order of every complex
 * type and the extension chain (every complex type ends with an optional <Extension>):
 *   PublicIdentity/Extension        = IdentityType?, WildcardedPSI?, Extension{DisplayName?, ...}?
 *   SPT/Extension                   = RegistrationType*
 *   ApplicationServer/Extension     = IncludeRegisterRequest?, IncludeRegisterResponse?
 * DisplayName lives one level deeper (tPublicIdentityExtension2); the writer puts it there.
 * The struct is validated first (ud_check_subscription, ims_userdata.c): what the schema cannot
 * express is refused rather than written.
 */
#include "ims_userdata.h"
#include "ims_userdata_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#define XSI_NS "http://www.w3.org/2001/XMLSchema-instance"

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
    /* The kind is known: ud_check_subscription refused any other. */
    const char *choice = ims_enum_by_value(ims_spt_kind_names, (int)s->kind)->xml;
    switch (s->kind) {
    case IMS_SPT_REQUEST_URI:
    case IMS_SPT_METHOD:
        w_text(w, e, choice, s->value);
        break;
    case IMS_SPT_SIP_HEADER:
    case IMS_SPT_SESSION_DESC: {
        /* tHeader = Header, Content?; tSessionDescription = Line, Content? */
        xmlNode *m = w_elem(w, e, choice);
        w_text(w, m, s->kind == IMS_SPT_SIP_HEADER ? "Header" : "Line", s->value);
        if (s->content)
            w_text(w, m, "Content", s->content);
        break;
    }
    case IMS_SPT_SESSION_CASE:
        w_int(w, e, choice, s->session_case);
        break;
    }
    if (s->registration_type) {
        /* tSePoTriExtension: one RegistrationType per value; absent = all REGISTER kinds match. */
        xmlNode *x = w_elem(w, e, "Extension");
        for (const ims_enum_name *r = ims_regtype_names; r->name; r++)
            if (s->registration_type & (1u << r->value))
                w_int(w, x, "RegistrationType", r->value);
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
        ims_set_err(err, errlen, "no subscription");
        return NULL;
    }
    if (ud_check_subscription(sub, err, errlen) < 0)
        return NULL;
    ud_xml_init();

    wctx w = { .oom = false };
    xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNode *root = doc ? xmlNewNode(NULL, BAD_CAST "IMSSubscription") : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        ims_set_err(err, errlen, "out of memory");
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
        ims_set_err(err, errlen, "out of memory while writing User-Data");
        return NULL;
    }
    /* Hand back plain malloc memory so that callers free() it whatever libxml2's allocator is. */
    char *out = malloc((size_t)size + 1);
    if (out) {
        memcpy(out, mem, (size_t)size);
        out[size] = '\0';
    } else {
        ims_set_err(err, errlen, "out of memory while writing User-Data");
    }
    xmlFree(mem);
    return out;
}
