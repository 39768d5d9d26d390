/*
 * hss_subscriber.c: the HSS data model of one IMS subscription — identity comparison and
 * normalisation, lookups, and the Cx User-Data (IMS subscription profile) of an implicit
 * registration set.
 *
 * References:
 *  - TS 23.228 §4.3.3 (public/private identities, their relation), §4.3.3.4 (implicit
 *    registration sets), §5.2 (service profile download)
 *  - TS 29.228 §6.1.2 (SAR/SAA User-Data: the whole IRS), §6.6, Annex B and Annex E
 *    (IMSSubscription XML: PrivateID, ServiceProfile per profile, PublicIdentity per IMPU)
 *  - RFC 3261 §19.1.4 (SIP URI comparison: scheme and host case-insensitive, user part
 *    case-sensitive), RFC 3966 (tel:), TS 23.003 §13.3 (IMPI as NAI user@realm; realms are DNS
 *    names): identities compared by their common/ims_identity key
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hss_subscriber.h"
#include "ims_aka.h"
#include "ims_identity.h"

/* ---------- identities ---------- */

/* Both delegate to common/ims_identity, the canonical key of every NF: the S-CSCF and I-CSCF
 * send what they key by, and a request in another case of scheme or host (or with %-escaped
 * unreserved characters, parameters, tel: separators) finds the same row. Text that is not an
 * identity is kept as given: it only ever finds itself. The canonical form is never longer than
 * the input (decoding, dropping, case only); the margin is for safety. */
static char *normalise_with(int (*norm)(const char *, char *, size_t), const char *id)
{
    size_t len;
    char *out;

    if (!id)
        return NULL;
    len = strlen(id) + 64;
    out = malloc(len);
    if (out && norm(id, out, len) != 0)
        memcpy(out, id, strlen(id) + 1);
    return out;
}

char *hss_impu_normalise(const char *impu)
{
    return normalise_with(ims_identity_normalise, impu);
}

char *hss_impi_normalise(const char *impi)
{
    return normalise_with(ims_identity_normalise_private, impi);
}

static bool equal_with(char *(*norm)(const char *), const char *a, const char *b)
{
    char *na, *nb;
    bool eq;

    if (!a || !b)
        return false;
    if (strcmp(a, b) == 0)
        return true;                /* the common case needs no allocation */
    na = norm(a);
    nb = norm(b);
    eq = na && nb && strcmp(na, nb) == 0;
    free(na);
    free(nb);
    return eq;
}

bool hss_impu_equal(const char *a, const char *b)
{
    return equal_with(hss_impu_normalise, a, b);
}

bool hss_impi_equal(const char *a, const char *b)
{
    return equal_with(hss_impi_normalise, a, b);
}

/* ---------- iFC copies ---------- */

static int strdup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

int hss_ifc_copy(ims_ifc *dst, const ims_ifc *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->priority = src->priority;
    dst->has_trigger_point = src->has_trigger_point;
    dst->profile_part_indicator = src->profile_part_indicator;
    dst->tp.cnf = src->tp.cnf;
    dst->as.default_handling = src->as.default_handling;
    dst->as.include_register_request = src->as.include_register_request;
    dst->as.include_register_response = src->as.include_register_response;
    if (strdup_opt(&dst->as.server_name, src->as.server_name) != 0 ||
        strdup_opt(&dst->as.service_info, src->as.service_info) != 0)
        goto fail;
    if (src->tp.n_spts > 0) {
        dst->tp.spts = calloc(src->tp.n_spts, sizeof(ims_spt));
        if (!dst->tp.spts)
            goto fail;
        dst->tp.n_spts = src->tp.n_spts;
        for (size_t i = 0; i < src->tp.n_spts; i++) {
            const ims_spt *a = &src->tp.spts[i];
            ims_spt *b = &dst->tp.spts[i];

            b->group = a->group;
            b->negated = a->negated;
            b->kind = a->kind;
            b->session_case = a->session_case;
            b->registration_type = a->registration_type;
            if (strdup_opt(&b->value, a->value) != 0 || strdup_opt(&b->content, a->content) != 0)
                goto fail;
        }
    }
    return 0;
fail:
    ims_ifc_free(dst);
    memset(dst, 0, sizeof(*dst));
    return -1;
}

void hss_ifcs_free(ims_ifc *ifcs, size_t n)
{
    for (size_t i = 0; ifcs && i < n; i++)
        ims_ifc_free(&ifcs[i]);
    free(ifcs);
}

/* ---------- the subscriber ---------- */

void hss_subscriber_free(hss_subscriber *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_impis; i++) {
        free(s->impis[i].identity);
        free(s->impis[i].digest_realm);
    }
    free(s->impis);
    for (size_t i = 0; i < s->n_impus; i++) {
        free(s->impus[i].identity);
        free(s->impus[i].service_profile);
        free(s->impus[i].display_name);
    }
    free(s->impus);
    for (size_t i = 0; i < s->n_profiles; i++) {
        free(s->profiles[i].name);
        hss_ifcs_free(s->profiles[i].ifcs, s->profiles[i].n_ifcs);
    }
    free(s->profiles);
    for (size_t i = 0; i < s->n_visited_networks; i++)
        free(s->visited_networks[i]);
    free(s->visited_networks);
    free(s->id);
    free(s->ccf_primary);
    free(s->ccf_secondary);
    free(s->ecf_primary);
    free(s->ecf_secondary);
    free(s->scscf_name);
    free(s->scscf_host);
    free(s->scscf_realm);
    /* Zeroed so that a second free (error paths of callers) is harmless; the secrets go too. */
    memset(s, 0, sizeof(*s));
}

hss_impi *hss_subscriber_impi(const hss_subscriber *s, const char *impi)
{
    for (size_t i = 0; s && impi && i < s->n_impis; i++)
        if (hss_impi_equal(s->impis[i].identity, impi))
            return &s->impis[i];
    return NULL;
}

hss_impu *hss_subscriber_impu(const hss_subscriber *s, const char *impu)
{
    for (size_t i = 0; s && impu && i < s->n_impus; i++)
        if (hss_impu_equal(s->impus[i].identity, impu))
            return &s->impus[i];
    return NULL;
}

hss_service_profile *hss_subscriber_profile(const hss_subscriber *s, const char *name)
{
    /* Profile names are our own labels, not identities: exact match. */
    for (size_t i = 0; s && name && i < s->n_profiles; i++)
        if (s->profiles[i].name && strcmp(s->profiles[i].name, name) == 0)
            return &s->profiles[i];
    return NULL;
}

/* Appends `u` to the ServiceProfile of its profile name in `out`, creating that profile (with a
 * deep copy of its iFC) on first use. names[] parallels out->profiles. */
static int userdata_add(const hss_subscriber *s, const hss_impu *u, ims_subscription *out,
                        const char **names)
{
    const hss_service_profile *sp;
    ims_service_profile *dst = NULL;
    ims_public_identity *id;

    for (size_t i = 0; i < out->n_profiles; i++)
        if (strcmp(names[i], u->service_profile) == 0)
            dst = &out->profiles[i];
    if (!dst) {
        sp = hss_subscriber_profile(s, u->service_profile);
        if (!sp)
            return -1;              /* from_json and the store never let this happen */
        dst = &out->profiles[out->n_profiles];
        names[out->n_profiles] = sp->name;
        out->n_profiles++;
        dst->subscribed_media_profile_id = sp->subscribed_media_profile_id;
        /* Upper bound: every IMPU of the subscription in this profile. */
        dst->ids = calloc(s->n_impus, sizeof(*dst->ids));
        if (!dst->ids)
            return -1;
        if (sp->n_ifcs > 0) {
            dst->ifcs = calloc(sp->n_ifcs, sizeof(*dst->ifcs));
            if (!dst->ifcs)
                return -1;
            for (size_t i = 0; i < sp->n_ifcs; i++) {
                if (hss_ifc_copy(&dst->ifcs[i], &sp->ifcs[i]) != 0)
                    return -1;
                dst->n_ifcs++;
            }
        }
    }
    id = &dst->ids[dst->n_ids];
    if (!(id->identity = strdup(u->identity)))
        return -1;
    dst->n_ids++;
    id->barred = u->barred;
    id->identity_type = u->identity_type;
    if (strdup_opt(&id->display_name, u->display_name) != 0)
        return -1;
    return 0;
}

int hss_subscriber_userdata(const hss_subscriber *s, const char *impi, const char *impu,
                            ims_subscription *out)
{
    const hss_impu *target;
    const char **names = NULL;

    memset(out, 0, sizeof(*out));
    target = hss_subscriber_impu(s, impu);
    if (!target || s->n_impus == 0)
        return -1;
    /* PrivateID is mandatory in the schema; without a named IMPI (e.g. a PPR for an
     * unregistered user) the subscription's first one stands for it. */
    if (!impi)
        impi = s->n_impis > 0 ? s->impis[0].identity : "";
    out->private_id = strdup(impi);
    out->profiles = calloc(s->n_impus, sizeof(*out->profiles));
    names = calloc(s->n_impus, sizeof(*names));
    if (!out->private_id || !out->profiles || !names)
        goto fail;
    /* The requested IMPU goes first (its profile first, itself first in it): S-CSCFs commonly
     * take the first PublicIdentity as the one the profile was fetched for. The rest of the
     * IRS (TS 23.228 §4.3.3.4: same irs number) follows in provisioning order. */
    if (userdata_add(s, target, out, names) != 0)
        goto fail;
    for (size_t i = 0; i < s->n_impus; i++) {
        const hss_impu *u = &s->impus[i];

        if (u == target || u->irs != target->irs)
            continue;
        if (userdata_add(s, u, out, names) != 0)
            goto fail;
    }
    free(names);
    return 0;
fail:
    free(names);
    ims_subscription_free(out);
    memset(out, 0, sizeof(*out));
    return -1;
}

/* ---------- printing (the provisioning JSON; parsing and its validation are in hss_json.c) ---------- */

/* Names of the HSS's own enums in the provisioning API (the iFC ones are in common/ims_userdata.c). */
const ims_enum_name hss_auth_scheme_names[] = {
    {HSS_AUTH_AKA, "aka", NULL},
    {HSS_AUTH_DIGEST, "digest", NULL},
    {0, NULL, NULL},
};

const ims_enum_name hss_reg_state_names[] = {
    {HSS_REGISTERED, "registered", NULL},
    {HSS_UNREGISTERED, "unregistered", NULL},
    {HSS_NOT_REGISTERED, "not_registered", NULL},
    {0, NULL, NULL},
};

/* The name of value in table t (the tables the parser uses too), or that
 * of dflt for a value the table does not hold, so that the output is always valid input. */
static const char *enum_name(const ims_enum_name *t, int value, int dflt)
{
    const ims_enum_name *r = ims_enum_by_value(t, value);

    if (!r)
        r = ims_enum_by_value(t, dflt);
    return r ? r->name : "";
}


static void add_str(json_object *o, const char *key, const char *val)
{
    json_object_object_add(o, key, val ? json_object_new_string(val) : NULL);
}

json_object *hss_ifcs_to_json(const ims_ifc *ifcs, size_t n)
{
    json_object *arr = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        const ims_ifc *f = &ifcs[i];
        json_object *o = json_object_new_object(), *as = json_object_new_object();
        const ims_enum_name *ppi;

        json_object_object_add(o, "priority", json_object_new_int(f->priority));
        if (f->has_trigger_point) {
            json_object *tp = json_object_new_object(), *spts = json_object_new_array();

            json_object_object_add(tp, "cnf", json_object_new_boolean(f->tp.cnf));
            for (size_t j = 0; j < f->tp.n_spts; j++) {
                const ims_spt *s = &f->tp.spts[j];
                const ims_enum_name *k = ims_enum_by_value(ims_spt_kind_names, (int)s->kind);
                json_object *so = json_object_new_object();

                json_object_object_add(so, "group", json_object_new_int(s->group));
                json_object_object_add(so, "negated", json_object_new_boolean(s->negated));
                if (k && s->kind == IMS_SPT_SESSION_CASE)
                    json_object_object_add(so, k->name, json_object_new_int(s->session_case));
                else if (k)
                    add_str(so, k->name, s->value ? s->value : "");
                if (s->content)
                    add_str(so, "content", s->content);
                if (s->registration_type) {
                    json_object *rt = json_object_new_array();

                    for (const ims_enum_name *r = ims_regtype_names; r->name; r++)
                        if (s->registration_type & (1u << r->value))
                            json_object_array_add(rt, json_object_new_string(r->name));
                    json_object_object_add(so, "registration_type", rt);
                }
                json_object_array_add(spts, so);
            }
            json_object_object_add(tp, "spt", spts);
            json_object_object_add(o, "trigger_point", tp);
        }
        add_str(as, "server_name", f->as.server_name ? f->as.server_name : "");
        add_str(as, "default_handling", enum_name(ims_default_handling_names, f->as.default_handling,
                                                  IMS_DEFAULT_HANDLING_SESSION_CONTINUED));
        if (f->as.service_info)
            add_str(as, "service_info", f->as.service_info);
        json_object_object_add(as, "include_register_request",
                               json_object_new_boolean(f->as.include_register_request));
        json_object_object_add(as, "include_register_response",
                               json_object_new_boolean(f->as.include_register_response));
        json_object_object_add(o, "application_server", as);
        ppi = ims_enum_by_value(ims_profile_part_names, f->profile_part_indicator);
        if (ppi)   /* else absent (-1) */
            add_str(o, "profile_part_indicator", ppi->name);
        json_object_array_add(arr, o);
    }
    return arr;
}

json_object *hss_subscriber_to_json(const hss_subscriber *s)
{
    json_object *o = json_object_new_object(), *arr, *x;
    char hex[5];

    add_str(o, "id", s->id);
    arr = json_object_new_array();
    for (size_t i = 0; i < s->n_impis; i++) {
        const hss_impi *m = &s->impis[i];
        json_object *schemes = json_object_new_array();

        x = json_object_new_object();
        add_str(x, "impi", m->identity);
        for (const ims_enum_name *r = hss_auth_scheme_names; r->name; r++)
            if (m->auth_schemes & (unsigned)r->value)
                json_object_array_add(schemes, json_object_new_string(r->name));
        json_object_object_add(x, "auth_schemes", schemes);
        add_str(x, "default_scheme",
                enum_name(hss_auth_scheme_names, (int)m->default_scheme, HSS_AUTH_DIGEST));
        ims_hex_encode(m->amf, 2, hex);
        add_str(x, "amf", hex);
        json_object_object_add(x, "sqn", json_object_new_int64((int64_t)m->sqn));
        add_str(x, "digest_realm", m->digest_realm);
        /* Whether credentials are held, never the credentials themselves. */
        json_object_object_add(x, "aka", json_object_new_boolean(m->has_aka));
        json_object_object_add(x, "digest", json_object_new_boolean(m->ha1[0] != '\0'));
        json_object_array_add(arr, x);
    }
    json_object_object_add(o, "impis", arr);

    arr = json_object_new_array();
    for (size_t i = 0; i < s->n_impus; i++) {
        const hss_impu *u = &s->impus[i];

        x = json_object_new_object();
        add_str(x, "impu", u->identity);
        json_object_object_add(x, "barred", json_object_new_boolean(u->barred));
        json_object_object_add(x, "irs", json_object_new_int(u->irs));
        add_str(x, "service_profile", u->service_profile);
        if (u->display_name)
            add_str(x, "display_name", u->display_name);
        json_object_object_add(x, "identity_type", json_object_new_int(u->identity_type));
        json_object_object_add(x, "can_register", json_object_new_boolean(u->can_register));
        add_str(x, "reg_state", enum_name(hss_reg_state_names, (int)u->reg_state, HSS_NOT_REGISTERED));
        json_object_array_add(arr, x);
    }
    json_object_object_add(o, "impus", arr);

    arr = json_object_new_array();
    for (size_t i = 0; i < s->n_profiles; i++) {
        x = json_object_new_object();
        add_str(x, "name", s->profiles[i].name);
        json_object_object_add(x, "subscribed_media_profile_id",
                               json_object_new_int(s->profiles[i].subscribed_media_profile_id));
        json_object_object_add(x, "ifc", hss_ifcs_to_json(s->profiles[i].ifcs, s->profiles[i].n_ifcs));
        json_object_array_add(arr, x);
    }
    json_object_object_add(o, "service_profiles", arr);

    x = json_object_new_object();
    arr = json_object_new_array();
    for (size_t i = 0; i < s->n_visited_networks; i++)
        json_object_array_add(arr, json_object_new_string(s->visited_networks[i]));
    json_object_object_add(x, "visited_networks", arr);
    json_object_object_add(o, "roaming", x);

    x = json_object_new_object();
    if (s->ccf_primary)
        add_str(x, "ccf_primary", s->ccf_primary);
    if (s->ccf_secondary)
        add_str(x, "ccf_secondary", s->ccf_secondary);
    if (s->ecf_primary)
        add_str(x, "ecf_primary", s->ecf_primary);
    if (s->ecf_secondary)
        add_str(x, "ecf_secondary", s->ecf_secondary);
    json_object_object_add(o, "charging", x);

    x = json_object_new_object();
    add_str(x, "scscf_name", s->scscf_name);
    add_str(x, "scscf_host", s->scscf_host);
    add_str(x, "scscf_realm", s->scscf_realm);
    json_object_object_add(o, "registration", x);
    return o;
}
