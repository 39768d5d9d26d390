/*
 * ims_userdata_read.c: Cx User-Data XML (TS 29.228 Annex E, IMSSubscription) -> ims_subscription,
 * a strict reader on libxml2.
 *
 * Spec references (3GPP TS 29.228):
 *   Annex E  "XML schema for the Cx interface user profile" (CxDataType.xsd): element names, the
 *            xs:sequence order of every complex type, cardinalities, and the extension chain
 *            (every complex type ends with an optional <Extension> whose content grows per release).
 *   Table E.1 / E.2: the simple types and their ranges (enum tables in ims_userdata.c).
 *   Annex F  "Definition of parameters for service point trigger matching" and the shared iFC sets
 *            (SharedIFCSetID inside ServiceProfile/Extension). We never advertise the shared-iFC
 *            feature, so an HSS must not send SharedIFCSetID to us; it is skipped like any other
 *            Extension content.
 *
 * Every complex type is a declarative table (seq_type): one row per element of its xs:sequence,
 * in schema order, with its occurrence limits and the handler that reads one occurrence. One
 * walker (ud_read_seq, ims_userdata_seq.c) enforces the order and the limits for all of them, so
 * adding an element of a later release is one row and one handler.
 *
 * Extension chain as read here (Annex E):
 *   PublicIdentity/Extension        = IdentityType?, WildcardedPSI?, Extension{DisplayName?, ...}?
 *   SPT/Extension                   = RegistrationType*
 *   ApplicationServer/Extension     = IncludeRegisterRequest?, IncludeRegisterResponse?
 * DisplayName lives one level deeper (tPublicIdentityExtension2). The reader also accepts it directly
 * in the first Extension, because ims_userdata.h documents that shape and a producer following the
 * header must not lose the name silently.
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
#include "ims_userdata_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#define USERDATA_MAX_LEN (1024u * 1024u)   /* refuse anything larger: a real profile is a few KiB */

/* ------------------------------------------------------------------------------------------------ */
/* libxml2 set-up                                                                                   */

/* libxml2 wants xmlInitParser() once before concurrent use (HSS dispatch threads, CSCF workers). */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init_once(void) { xmlInitParser(); }

void ud_xml_init(void) { pthread_once(&xml_once, xml_init_once); }

/* libxml2 reports input encoding failures (a declared encoding the bytes do not match) through its
 * generic error function even with XML_PARSE_NOERROR: without this, every such User-Data printed
 * lines to stderr (found by tests/fuzz). The handler is per thread in libxml2, so it is swapped
 * around one parse only; the error still reaches us through xmlCtxtGetLastError. */
static void xml_quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

/* ------------------------------------------------------------------------------------------------ */
/* reader: complex types (Annex E sequences), innermost first                                       */

/* tPublicIdentityExtension2 (obj: ims_public_identity) */

static int rd_display_name(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_public_identity *id = obj;
    return ud_leaf_string(el, path, &id->display_name, err, errlen);
}

static const seq_type pi_extension2_type = {
    "PublicIdentity/Extension/Extension", true, {
        { "DisplayName", 0, 1, rd_display_name },
    } };

/* tPublicIdentityExtension (obj: ims_public_identity) */

static int rd_identity_type(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_public_identity *id = obj;
    return ud_leaf_int(el, path, 0, IMS_IDENTITY_TYPE_WILDCARDED_PSI, &id->identity_type, err, errlen);
}

static int rd_pi_extension2(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    (void)path;
    return ud_read_seq(el, &pi_extension2_type, obj, err, errlen);
}

static const seq_type pi_extension_type = {
    "PublicIdentity/Extension", true, {
        { "IdentityType", 0, 1, rd_identity_type },
        { "WildcardedPSI", 0, 1, NULL },   /* the identity itself already carries the wildcard */
        { "DisplayName", 0, 1, rd_display_name },   /* tolerated here, see file header */
        { "Extension", 0, 1, rd_pi_extension2 },
    } };

/* tPublicIdentity (obj: ims_public_identity) */

static int rd_barring(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_public_identity *id = obj;
    return ud_leaf_bool(el, path, false, &id->barred, err, errlen);
}

static int rd_identity(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_public_identity *id = obj;
    return ud_leaf_token(el, path, &id->identity, err, errlen);
}

static int rd_pi_extension(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    (void)path;
    return ud_read_seq(el, &pi_extension_type, obj, err, errlen);
}

static const seq_type public_identity_type = {
    "ServiceProfile/PublicIdentity", false, {
        { "BarringIndication", 0, 1, rd_barring },
        { "Identity", 1, 1, rd_identity },
        { "Extension", 0, 1, rd_pi_extension },
    } };

/* tCoreNetworkServicesAuthorization (obj: ims_service_profile) */

static int rd_media_profile(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_service_profile *sp = obj;
    return ud_leaf_int(el, path, 0, INT_MAX, &sp->subscribed_media_profile_id, err, errlen);
}

static const seq_type cnsa_type = {
    "ServiceProfile/CoreNetworkServicesAuthorization", false, {
        { "SubscribedMediaProfileId", 0, 1, rd_media_profile },
        { "Extension", 0, 1, NULL },
    } };

/* tHeader = Header, Content?, Extension?; tSessionDescription = Line, Content?, Extension?
 * (obj: ims_spt) */

static int rd_match_value(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_spt *s = obj;
    return ud_leaf_token(el, path, &s->value, err, errlen);
}

static int rd_match_content(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_spt *s = obj;
    return ud_leaf_string(el, path, &s->content, err, errlen);
}

static const seq_type sip_header_type = {
    "SPT/SIPHeader", false, {
        { "Header", 1, 1, rd_match_value },
        { "Content", 0, 1, rd_match_content },
        { "Extension", 0, 1, NULL },
    } };

static const seq_type session_desc_type = {
    "SPT/SessionDescription", false, {
        { "Line", 1, 1, rd_match_value },
        { "Content", 0, 1, rd_match_content },
        { "Extension", 0, 1, NULL },
    } };

/* tSePoTriExtension (obj: ims_spt) */

static int rd_registration_type(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_spt *s = obj;
    int v;
    if (ud_leaf_enum(el, path, ims_regtype_names, &v, err, errlen) < 0)
        return -1;
    s->registration_type |= 1u << v;
    return 0;
}

static const seq_type spt_extension_type = {
    "SPT/Extension", true, {
        { "RegistrationType", 0, 0, rd_registration_type },
    } };

/* tSePoTri (obj: spt_build). The SPT is collected once, then copied per <Group> (file header). */

typedef struct {
    ims_spt t;
    int *groups;
    size_t n_groups;
} spt_build;

static int rd_negated(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    spt_build *b = obj;
    return ud_leaf_bool(el, path, false, &b->t.negated, err, errlen);
}

static int rd_group(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    spt_build *b = obj;
    int *g = ims_array_append((void **)&b->groups, &b->n_groups, sizeof *b->groups);
    if (!g) {
        ims_set_err(err, errlen, "out of memory");
        return -1;
    }
    return ud_leaf_int(el, path, 0, INT_MAX, g, err, errlen);
}

/* The xs:choice RequestURI | Method | SIPHeader | SessionCase | SessionDescription: the element
 * names are those of ims_spt_kind_names (a unit test checks that every one is read). */
static int rd_spt_choice(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_spt *t = &((spt_build *)obj)->t;
    const ims_enum_name *k = ims_enum_by_xml(ims_spt_kind_names, (const char *)el->name);
    if (!k) {
        ud_node_err(err, errlen, el, path, "unknown element <%s>", (const char *)el->name);
        return -1;
    }
    t->kind = (ims_spt_kind)k->value;
    switch (t->kind) {
    case IMS_SPT_REQUEST_URI:
        /* a regular expression: kept verbatim, not trimmed */
        if (ud_leaf_string(el, path, &t->value, err, errlen) < 0)
            return -1;
        if (!*t->value) {
            ud_node_err(err, errlen, el, path, "empty <RequestURI>");
            return -1;
        }
        return 0;
    case IMS_SPT_METHOD:
        return ud_leaf_token(el, path, &t->value, err, errlen);
    case IMS_SPT_SIP_HEADER:
        return ud_read_seq(el, &sip_header_type, t, err, errlen);
    case IMS_SPT_SESSION_CASE:
        return ud_leaf_int(el, path, 0, IMS_SESSION_CASE_ORIGINATING_CDIV, &t->session_case, err, errlen);
    case IMS_SPT_SESSION_DESC:
        return ud_read_seq(el, &session_desc_type, t, err, errlen);
    }
    return -1;
}

static int rd_spt_extension(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    (void)path;
    return ud_read_seq(el, &spt_extension_type, &((spt_build *)obj)->t, err, errlen);
}

static const seq_type spt_type = {
    "TriggerPoint/SPT", false, {
        { "ConditionNegated", 0, 1, rd_negated },
        { "Group", 1, 0, rd_group },
        { "RequestURI|Method|SIPHeader|SessionCase|SessionDescription", 1, 1, rd_spt_choice },
        { "Extension", 0, 1, rd_spt_extension },
    } };

/* tTrigger (obj: ims_trigger_point) */

static int rd_cnf(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_trigger_point *tp = obj;
    return ud_leaf_bool(el, path, false, &tp->cnf, err, errlen);
}

/* Reads one SPT and appends one ims_spt per <Group> to the trigger point. */
static int rd_spt(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_trigger_point *tp = obj;
    spt_build b;
    (void)path;
    memset(&b, 0, sizeof b);
    int rc = ud_read_seq(el, &spt_type, &b, err, errlen);
    for (size_t i = 0; rc == 0 && i < b.n_groups; i++) {
        ims_spt *d = ims_array_append((void **)&tp->spts, &tp->n_spts, sizeof *tp->spts);
        bool oom = false;
        if (d) {
            ud_spt_copy(d, &b.t, &oom);
            d->group = b.groups[i];
        }
        if (!d || oom) {
            ims_set_err(err, errlen, "out of memory");
            rc = -1;
        }
    }
    ud_spt_free(&b.t);
    free(b.groups);
    return rc;
}

static const seq_type trigger_point_type = {
    "InitialFilterCriteria/TriggerPoint", false, {
        { "ConditionTypeCNF", 1, 1, rd_cnf },
        { "SPT", 1, 0, rd_spt },
        { "Extension", 0, 1, NULL },
    } };

/* tApplicationServerExtension (obj: ims_app_server). Annex E: an empty element means "include";
 * a boolean value is accepted too. */

static int rd_include_request(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_app_server *as = obj;
    return ud_leaf_bool(el, path, true, &as->include_register_request, err, errlen);
}

static int rd_include_response(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_app_server *as = obj;
    return ud_leaf_bool(el, path, true, &as->include_register_response, err, errlen);
}

static const seq_type as_extension_type = {
    "ApplicationServer/Extension", true, {
        { "IncludeRegisterRequest", 0, 1, rd_include_request },
        { "IncludeRegisterResponse", 0, 1, rd_include_response },
    } };

/* tApplicationServer (obj: ims_app_server) */

static int rd_server_name(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_app_server *as = obj;
    return ud_leaf_token(el, path, &as->server_name, err, errlen);
}

static int rd_default_handling(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_app_server *as = obj;
    return ud_leaf_enum(el, path, ims_default_handling_names, &as->default_handling, err, errlen);
}

static int rd_service_info(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_app_server *as = obj;
    return ud_leaf_string(el, path, &as->service_info, err, errlen);
}

static int rd_as_extension(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    (void)path;
    return ud_read_seq(el, &as_extension_type, obj, err, errlen);
}

static const seq_type app_server_type = {
    "InitialFilterCriteria/ApplicationServer", false, {
        { "ServerName", 1, 1, rd_server_name },
        { "DefaultHandling", 0, 1, rd_default_handling },
        { "ServiceInfo", 0, 1, rd_service_info },
        { "Extension", 0, 1, rd_as_extension },
    } };

/* tInitialFilterCriteria (obj: ims_ifc) */

static int rd_priority(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_ifc *f = obj;
    return ud_leaf_int(el, path, 0, INT_MAX, &f->priority, err, errlen);
}

static int rd_trigger_point(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_ifc *f = obj;
    (void)path;
    f->has_trigger_point = true;
    return ud_read_seq(el, &trigger_point_type, &f->tp, err, errlen);
}

static int rd_app_server(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_ifc *f = obj;
    (void)path;
    return ud_read_seq(el, &app_server_type, &f->as, err, errlen);
}

static int rd_profile_part(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_ifc *f = obj;
    return ud_leaf_enum(el, path, ims_profile_part_names, &f->profile_part_indicator, err, errlen);
}

static const seq_type ifc_type = {
    "ServiceProfile/InitialFilterCriteria", false, {
        { "Priority", 1, 1, rd_priority },
        { "TriggerPoint", 0, 1, rd_trigger_point },
        { "ApplicationServer", 1, 1, rd_app_server },
        { "ProfilePartIndicator", 0, 1, rd_profile_part },
        { "Extension", 0, 1, NULL },   /* tInitialFilterCriteriaExtension: nothing we use */
    } };

/* tServiceProfile (obj: ims_service_profile) */

static int rd_public_identity(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_service_profile *sp = obj;
    (void)path;
    ims_public_identity *id = ims_array_append((void **)&sp->ids, &sp->n_ids, sizeof *sp->ids);
    if (!id) {
        ims_set_err(err, errlen, "out of memory");
        return -1;
    }
    return ud_read_seq(el, &public_identity_type, id, err, errlen);
}

static int rd_cnsa(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    (void)path;
    return ud_read_seq(el, &cnsa_type, obj, err, errlen);
}

static int rd_ifc(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_service_profile *sp = obj;
    (void)path;
    ims_ifc *f = ims_array_append((void **)&sp->ifcs, &sp->n_ifcs, sizeof *sp->ifcs);
    if (!f) {
        ims_set_err(err, errlen, "out of memory");
        return -1;
    }
    f->profile_part_indicator = -1;
    return ud_read_seq(el, &ifc_type, f, err, errlen);
}

static const seq_type service_profile_type = {
    "IMSSubscription/ServiceProfile", false, {
        { "PublicIdentity", 1, 0, rd_public_identity },
        { "CoreNetworkServicesAuthorization", 0, 1, rd_cnsa },
        { "InitialFilterCriteria", 0, 0, rd_ifc },
        /* tServiceProfileExtension (SharedIFCSetID, Annex F) is skipped, see file header. */
        { "Extension", 0, 1, NULL },
    } };

/* tIMSSubscription (obj: ims_subscription) */

static int rd_private_id(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_subscription *sub = obj;
    return ud_leaf_token(el, path, &sub->private_id, err, errlen);
}

static int rd_service_profile(const xmlNode *el, void *obj, const char *path, char *err, size_t errlen)
{
    ims_subscription *sub = obj;
    (void)path;
    ims_service_profile *sp = ims_array_append((void **)&sub->profiles, &sub->n_profiles, sizeof *sub->profiles);
    if (!sp) {
        ims_set_err(err, errlen, "out of memory");
        return -1;
    }
    sp->subscribed_media_profile_id = -1;
    return ud_read_seq(el, &service_profile_type, sp, err, errlen);
}

static const seq_type subscription_type = {
    "IMSSubscription", false, {
        { "PrivateID", 1, 1, rd_private_id },
        { "ServiceProfile", 1, 0, rd_service_profile },
        { "Extension", 0, 1, NULL },
    } };

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
        ims_set_err(err, errlen, "no output struct");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!xml || len == 0) {
        ims_set_err(err, errlen, "empty User-Data");
        return -1;
    }
    if (len > USERDATA_MAX_LEN) {
        ims_set_err(err, errlen, "User-Data too large: %zu bytes (limit %u)", len, USERDATA_MAX_LEN);
        return -1;
    }
    ud_xml_init();

    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt || !ctxt->sax) {
        xmlFreeParserCtxt(ctxt);
        ims_set_err(err, errlen, "out of memory");
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
        ims_set_err(err, errlen, "line %d: <!DOCTYPE> not allowed in User-Data", ctxt->input ? ctxt->input->line : 0);
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
        ims_set_err(err, errlen, "line %d: User-Data is not well-formed XML: %s", line, msg);
        goto done;
    }
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || !root->name || strcmp((const char *)root->name, "IMSSubscription") != 0) {
        ims_set_err(err, errlen, "line %ld: root element is <%s>, expected <IMSSubscription>",
               root ? xmlGetLineNo(root) : 0L, root && root->name ? (const char *)root->name : "");
        goto done;
    }
    rc = ud_read_seq(root, &subscription_type, out, err, errlen);

done:
    if (rc < 0) {
        ims_subscription_free(out);
        memset(out, 0, sizeof *out);
        if (err && errlen && !err[0])
            ims_set_err(err, errlen, "invalid User-Data");
    }
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return rc;
}
