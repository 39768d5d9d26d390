/*
 * ims_userdata.c: the model of the Cx User-Data (IMSSubscription, TS 29.228 Annex E): free, deep
 * copy, the enum <-> text tables, and the validation the writer applies before it writes.
 * The writer is ims_userdata_write.c, the strict reader ims_userdata_read.c.
 *
 * Spec references (3GPP TS 29.228):
 *   Annex E  "XML schema for the Cx interface user profile" (CxDataType.xsd): element names,
 *            cardinalities, what the schema can express (checked here before writing).
 *   Table E.1 / E.2 (simple and complex data types): tPriority, tGroupID, tDefaultHandling (0/1),
 *            tDirectionOfRequest = SessionCase (0..4), tProfilePartIndicator (0/1), tIdentityType,
 *            tRegistrationType (0 INITIAL, 1 RE, 2 DE-REGISTRATION), tBool.
 */
#include "ims_userdata.h"
#include "ims_userdata_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------ */
/* common helpers                                                                                   */

char *ud_dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* ------------------------------------------------------------------------------------------------ */
/* enum <-> text tables (ims_userdata.h)                                                            */

const ims_enum_name ims_spt_kind_names[] = {
    { IMS_SPT_REQUEST_URI, "request_uri", "RequestURI" },
    { IMS_SPT_METHOD, "method", "Method" },
    { IMS_SPT_SIP_HEADER, "header", "SIPHeader" },
    { IMS_SPT_SESSION_CASE, "session_case", "SessionCase" },
    { IMS_SPT_SESSION_DESC, "sdp_line", "SessionDescription" },
    { 0, NULL, NULL },
};

const ims_enum_name ims_regtype_names[] = {
    { 0, "initial", NULL },
    { 1, "re-registration", NULL },
    { 2, "de-registration", NULL },
    { 0, NULL, NULL },
};

const ims_enum_name ims_default_handling_names[] = {
    { IMS_DEFAULT_HANDLING_SESSION_CONTINUED, "session_continued", NULL },
    { IMS_DEFAULT_HANDLING_SESSION_TERMINATED, "session_terminated", NULL },
    { 0, NULL, NULL },
};

const ims_enum_name ims_profile_part_names[] = {
    { 0, "registered", NULL },
    { 1, "unregistered", NULL },
    { 0, NULL, NULL },
};

const ims_enum_name *ims_enum_by_value(const ims_enum_name *t, int value)
{
    for (; t->name; t++)
        if (t->value == value)
            return t;
    return NULL;
}

const ims_enum_name *ims_enum_by_name(const ims_enum_name *t, const char *name)
{
    for (; name && t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

const ims_enum_name *ims_enum_by_xml(const ims_enum_name *t, const char *xml)
{
    for (; xml && t->name; t++)
        if (t->xml && strcmp(t->xml, xml) == 0)
            return t;
    return NULL;
}

void ud_enum_range(const ims_enum_name *t, int *min, int *max)
{
    *min = t->value;
    *max = t->value;
    for (; t->name; t++) {
        if (t->value < *min)
            *min = t->value;
        if (t->value > *max)
            *max = t->value;
    }
}

/* IMS_REGTYPE_* bits of every tRegistrationType value. */
static unsigned regtype_mask(void)
{
    unsigned mask = 0;
    for (const ims_enum_name *r = ims_regtype_names; r->name; r++)
        mask |= 1u << r->value;
    return mask;
}

/* ------------------------------------------------------------------------------------------------ */
/* free / copy                                                                                      */

void ud_spt_free(ims_spt *s)
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
        ud_spt_free(&ifc->tp.spts[i]);
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

void ud_spt_copy(ims_spt *d, const ims_spt *s, bool *oom)
{
    *d = *s;
    d->value = ud_dup_or_null(s->value, oom);
    d->content = ud_dup_or_null(s->content, oom);
}

static void ifc_copy(ims_ifc *d, const ims_ifc *s, bool *oom)
{
    *d = *s;
    d->tp.spts = NULL;
    d->tp.n_spts = 0;
    d->as.server_name = ud_dup_or_null(s->as.server_name, oom);
    d->as.service_info = ud_dup_or_null(s->as.service_info, oom);
    if (s->tp.n_spts) {
        d->tp.spts = calloc(s->tp.n_spts, sizeof *d->tp.spts);
        if (!d->tp.spts) {
            *oom = true;
            return;
        }
        d->tp.n_spts = s->tp.n_spts;   /* set before copying: a partial copy stays freeable */
        for (size_t i = 0; i < s->tp.n_spts; i++)
            ud_spt_copy(&d->tp.spts[i], &s->tp.spts[i], oom);
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
            dst->ids[i].identity = ud_dup_or_null(src->ids[i].identity, &oom);
            dst->ids[i].display_name = ud_dup_or_null(src->ids[i].display_name, &oom);
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
/* validation (what the writer refuses)                                                             */

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

/* Token fields (URIs, method, header names) are trimmed by the reader; refuse surrounding blanks
 * here so that parse(write(x)) == x holds. */
static bool token_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && !ud_is_xml_space(s[0]) && !ud_is_xml_space(s[n - 1]) && text_ok(s);
}

static int check_spt(const ims_spt *s, char *err, size_t errlen, const char *where)
{
    if (s->group < 0) {
        ims_set_err(err, errlen, "%s: Group %d is negative", where, s->group);
        return -1;
    }
    if (s->registration_type & ~regtype_mask()) {
        ims_set_err(err, errlen, "%s: unknown RegistrationType bits 0x%x", where, s->registration_type);
        return -1;
    }
    switch (s->kind) {
    case IMS_SPT_SESSION_CASE:
        if (s->session_case < 0 || s->session_case > IMS_SESSION_CASE_ORIGINATING_CDIV) {
            ims_set_err(err, errlen, "%s: SessionCase %d out of range 0..4", where, s->session_case);
            return -1;
        }
        return 0;
    case IMS_SPT_REQUEST_URI:
        /* RequestURI is a regular expression: kept verbatim, only needs to be non-empty text. */
        if (!s->value || !*s->value || !text_ok(s->value)) {
            ims_set_err(err, errlen, "%s: empty or invalid RequestURI", where);
            return -1;
        }
        return 0;
    case IMS_SPT_METHOD:
    case IMS_SPT_SIP_HEADER:
    case IMS_SPT_SESSION_DESC:
        if (!token_ok(s->value)) {
            ims_set_err(err, errlen, "%s: empty or invalid %s", where,
                   s->kind == IMS_SPT_METHOD ? "Method" :
                   s->kind == IMS_SPT_SIP_HEADER ? "SIPHeader/Header" : "SessionDescription/Line");
            return -1;
        }
        if (s->kind != IMS_SPT_METHOD && s->content && !text_ok(s->content)) {
            ims_set_err(err, errlen, "%s: invalid Content text", where);
            return -1;
        }
        return 0;
    }
    ims_set_err(err, errlen, "%s: unknown SPT kind %d", where, (int)s->kind);
    return -1;
}

static int check_ifc(const ims_ifc *f, char *err, size_t errlen, const char *where)
{
    char w[256];
    if (f->priority < 0) {
        ims_set_err(err, errlen, "%s: Priority %d is negative", where, f->priority);
        return -1;
    }
    if (f->has_trigger_point) {
        if (f->tp.n_spts == 0 || !f->tp.spts) {
            ims_set_err(err, errlen, "%s: TriggerPoint without SPT", where);
            return -1;
        }
        for (size_t i = 0; i < f->tp.n_spts; i++) {
            snprintf(w, sizeof w, "%s/TriggerPoint/SPT[%zu]", where, i);
            if (check_spt(&f->tp.spts[i], err, errlen, w) < 0)
                return -1;
        }
    }
    if (!token_ok(f->as.server_name)) {
        ims_set_err(err, errlen, "%s: ApplicationServer without valid ServerName", where);
        return -1;
    }
    if (!ims_enum_by_value(ims_default_handling_names, f->as.default_handling)) {
        int min, max;
        ud_enum_range(ims_default_handling_names, &min, &max);
        ims_set_err(err, errlen, "%s: DefaultHandling %d out of range %d..%d", where, f->as.default_handling,
               min, max);
        return -1;
    }
    if (f->as.service_info && !text_ok(f->as.service_info)) {
        ims_set_err(err, errlen, "%s: invalid ServiceInfo text", where);
        return -1;
    }
    /* -1: the element is absent */
    if (f->profile_part_indicator != -1 && !ims_enum_by_value(ims_profile_part_names, f->profile_part_indicator)) {
        ims_set_err(err, errlen, "%s: ProfilePartIndicator %d out of range", where, f->profile_part_indicator);
        return -1;
    }
    return 0;
}

/* Refuses what the Annex E schema cannot express (mandatory elements, out-of-range enums). */
int ud_check_subscription(const ims_subscription *sub, char *err, size_t errlen)
{
    char w[128];
    if (!token_ok(sub->private_id)) {
        ims_set_err(err, errlen, "IMSSubscription: missing or invalid PrivateID");
        return -1;
    }
    if (sub->n_profiles == 0 || !sub->profiles) {
        ims_set_err(err, errlen, "IMSSubscription: no ServiceProfile");
        return -1;
    }
    for (size_t p = 0; p < sub->n_profiles; p++) {
        const ims_service_profile *sp = &sub->profiles[p];
        if (sp->n_ids == 0 || !sp->ids) {
            ims_set_err(err, errlen, "ServiceProfile[%zu]: no PublicIdentity", p);
            return -1;
        }
        for (size_t i = 0; i < sp->n_ids; i++) {
            const ims_public_identity *id = &sp->ids[i];
            if (!token_ok(id->identity)) {
                ims_set_err(err, errlen, "ServiceProfile[%zu]/PublicIdentity[%zu]: missing or invalid Identity", p, i);
                return -1;
            }
            if (id->identity_type < 0 || id->identity_type > IMS_IDENTITY_TYPE_WILDCARDED_PSI) {
                ims_set_err(err, errlen, "ServiceProfile[%zu]/PublicIdentity[%zu]: IdentityType %d out of range",
                       p, i, id->identity_type);
                return -1;
            }
            if (id->display_name && !text_ok(id->display_name)) {
                ims_set_err(err, errlen, "ServiceProfile[%zu]/PublicIdentity[%zu]: invalid DisplayName text", p, i);
                return -1;
            }
        }
        if (sp->subscribed_media_profile_id < -1) {
            ims_set_err(err, errlen, "ServiceProfile[%zu]: SubscribedMediaProfileId %d is negative", p,
                   sp->subscribed_media_profile_id);
            return -1;
        }
        if (sp->n_ifcs && !sp->ifcs) {
            ims_set_err(err, errlen, "ServiceProfile[%zu]: n_ifcs set without ifcs", p);
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

