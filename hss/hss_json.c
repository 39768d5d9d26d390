/*
 * hss_json.c: the provisioning JSON format of a subscription -> hss_subscriber, with all its
 * validation. The printer (hss_subscriber_to_json, hss_ifcs_to_json) is in hss_subscriber.c so
 * that both files stay readable; this comment is the format's reference for both directions.
 *
 * The data model is TS 23.228 §4.3.3 / TS 29.228 Annex E (see hss_subscriber.h); credentials are
 * those of TS 33.102 (K, OP/OPc, AMF, SQN: Annex C) and RFC 2617 (digest HA1).
 *
 * Input document (every key not listed is rejected: "impis[0].kk: unknown field"):
 *
 * {
 *   "id": "alice",                              [A-Za-z0-9._@+-]{1,128}, required
 *   "impis": [ {                                at least one
 *     "impi": "alice@ims.lab",                  required, non-empty, no white space
 *     "auth_schemes": ["aka", "digest"],        default ["aka"] if k is given, else ["digest"]
 *     "default_scheme": "aka",                  one of auth_schemes; default the first listed
 *     "k": "<32 hex>",                          required by "aka"
 *     "opc": "<32 hex>"  or  "op": "<32 hex>",  exactly one, required by "aka"
 *     "amf": "8000",                            4 hex, default "8000"
 *     "sqn": 0,                                 0 .. 2^48-1, default 0 (highest SQN issued)
 *     "password": "secret"  or  "ha1": "<32 hex>",   one of them required by "digest";
 *                                               HA1 = MD5(impi ":" digest_realm ":" password)
 *     "digest_realm": "ims.lab"                 default: the part after '@' of the IMPI, else the IMPI
 *   } ],
 *   "impus": [ {                                at least one
 *     "impu": "sip:alice@ims.lab",              sip:, sips: or tel: (tel:+<digits> or tel:<digits>,
 *                                               optionally ;parameters), required
 *     "barred": false,                          default false
 *     "irs": 1,                                 implicit registration set number 0..65535, default 1
 *     "service_profile": "default",             a name in service_profiles; default the first one
 *     "display_name": "Alice",                  optional
 *     "identity_type": 0,                       0 public user identity, 1 distinct PSI,
 *                                               2 wildcarded PSI; default 0
 *     "can_register": true                      default true
 *   } ],
 *   "service_profiles": [ {                     absent or [] = one profile "default" without iFC
 *     "name": "default",                        required, unique
 *     "subscribed_media_profile_id": -1,        -1 = absent (default)
 *     "ifc": [ {
 *       "priority": 1,                          required, >= 0
 *       "trigger_point": {                      absent = the iFC matches every request
 *         "cnf": true,                          required: true CNF, false DNF
 *         "spt": [ {                            at least one
 *           "group": 0, "negated": false,       defaults 0 / false
 *           exactly one of:  "method": "INVITE" | "request_uri": "sip:x@y" |
 *                            "header": "Contact" (+ optional "content": "<regex>") |
 *                            "session_case": 0..4 |
 *                            "sdp_line": "m" (+ optional "content": "<regex>"),
 *           "registration_type": ["initial", "re-registration", "de-registration"]  optional
 *         } ] },
 *       "application_server": {                 required
 *         "server_name": "sip:as.ims.lab:5070", required
 *         "default_handling": "session_continued" | "session_terminated",  default continued
 *         "service_info": "...",                optional
 *         "include_register_request": false, "include_register_response": false
 *       },
 *       "profile_part_indicator": "registered" | "unregistered"     optional
 *     } ]
 *   } ],
 *   "roaming": { "visited_networks": ["visited.net"] },      optional; home network always allowed
 *   "charging": { "ccf_primary": "aaa://ccf.ims.lab", "ccf_secondary": ..,
 *                 "ecf_primary": .., "ecf_secondary": .. }   optional
 * }
 *
 * Output (hss_subscriber_to_json) is the same document without secrets (k, op, opc, password,
 * ha1 are never printed) plus read-only state: per IMPI "aka": true/false (AKA credentials held),
 * "digest": true/false (HA1 held), "sqn": N; per IMPU "reg_state": "not_registered" |
 * "registered" | "unregistered"; top-level "registration": {"scscf_name", "scscf_host",
 * "scscf_realm"} (null when no S-CSCF is assigned). These read-only keys are accepted and ignored
 * on input, so that a document read with GET can be edited and sent back.
 * A JSON null value counts as "absent" for optional keys. Identities in the output are those of
 * the store (their canonical keys: scheme and host lower-cased, no parameters, see
 * hss_impu_normalise).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hss_json_priv.h"
#include "ims_aka.h"
#include "ims_identity.h"

#define MAX_IRS 65535

/* ---------- the subscription ---------- */

static bool valid_id(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 128)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._@+-", *s))
            return false;
    return true;
}

/* sip:/sips: URI with a host, or a tel: global number or local number with its phone-context
 * (TS 23.003 §13.4, RFC 3966 §5.1.5): whatever has a canonical key (common/ims_identity), which
 * is what the store keeps and every NF looks up. A tel: number is provisioned without visual
 * separators (E.164 as TS 23.003 §13.4 writes it): lookups ignore them, but a "-" in provisioned
 * data is more likely a typo than a wish. */
static bool valid_impu(const char *s)
{
    char key[IMS_IDENTITY_MAX];

    if (strncasecmp(s, "tel:", 4) == 0 && strcspn(s + 4, "-.()") < strcspn(s + 4, ";"))
        return false;
    return ims_identity_normalise(s, key, sizeof(key)) == 0;
}

static int impi_from_json(jctx *c, json_object *o, const char *path, hss_impi *m)
{
    static const char *const keys[] = {"impi", "auth_schemes", "default_scheme", "k", "op", "opc",
                                       "amf", "sqn", "password", "ha1", "digest_realm",
                                       "aka", "digest", NULL};
    const char *impi, *s, *pw, *ha1, *realm;
    bool has_k, has_op, has_opc;
    uint8_t opc[16];
    json_object *arr;
    int64_t x;

    if (!json_object_is_type(o, json_type_object))
        return hj_jfail(c, path, NULL, "must be an object");
    if (hj_check_keys(c, o, path, keys) != 0 || hj_get_str(c, o, path, "impi", true, &impi) != 0)
        return -1;
    if (!impi[0] || hj_has_space(impi))
        return hj_jfail(c, path, "impi", "must be non-empty without spaces");
    if (hj_dup_str(c, path, impi, &m->identity) != 0 ||
        hj_get_hex(c, o, path, "k", m->k, 16, &has_k) != 0 ||
        hj_get_hex(c, o, path, "op", m->op, 16, &has_op) != 0 ||
        hj_get_hex(c, o, path, "opc", opc, 16, &has_opc) != 0)
        return -1;
    if (has_op && has_opc)
        return hj_jfail(c, path, "opc", "op and opc are mutually exclusive");
    if (has_opc) {
        memcpy(m->op, opc, 16);
        m->op_is_opc = true;
    }
    if ((has_op || has_opc) && !has_k)
        return hj_jfail(c, path, "k", "required with op/opc");
    if (has_k && !has_op && !has_opc)
        return hj_jfail(c, path, "opc", "op or opc required with k");
    m->has_aka = has_k;
    if (hj_get_str(c, o, path, "amf", false, &s) != 0)
        return -1;
    if (!s)
        s = "8000";
    if (!hj_is_hex(s, 4) || ims_hex_decode(s, m->amf, 2) != 0)
        return hj_jfail(c, path, "amf", "must be 4 hex digits");
    if (hj_get_int(c, o, path, "sqn", false, 0, 0, (int64_t)IMS_SQN_MAX, &x) != 0)
        return -1;
    m->sqn = (uint64_t)x;

    if (hj_get_str(c, o, path, "password", false, &pw) != 0 ||
        hj_get_str(c, o, path, "ha1", false, &ha1) != 0 ||
        hj_get_str(c, o, path, "digest_realm", false, &realm) != 0)
        return -1;
    if (pw && ha1)
        return hj_jfail(c, path, "ha1", "password and ha1 are mutually exclusive");
    if (ha1 && !hj_is_hex(ha1, 32))
        return hj_jfail(c, path, "ha1", "must be 32 hex digits");
    if (realm && !realm[0])
        return hj_jfail(c, path, "digest_realm", "must not be empty");
    if (!realm)
        realm = strrchr(impi, '@') && strrchr(impi, '@')[1] ? strrchr(impi, '@') + 1 : impi;
    if (hj_dup_str(c, path, realm, &m->digest_realm) != 0)
        return -1;
    if (pw) {
        ims_digest_ha1(impi, realm, pw, strlen(pw), m->ha1);
    } else if (ha1) {
        for (int i = 0; i < 32; i++)
            m->ha1[i] = (char)tolower((unsigned char)ha1[i]);
        m->ha1[32] = '\0';
    }

    if (hj_get_typed(c, o, path, "auth_schemes", false, json_type_array, &arr) != 0)
        return -1;
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        int bit;

        if (hj_get_enum_item(c, arr, i, path, "auth_schemes", hss_auth_scheme_names, &bit) != 0)
            return -1;
        if (!m->auth_schemes)
            m->default_scheme = (unsigned)bit;   /* the first listed is the default's default */
        m->auth_schemes |= (unsigned)bit;
    }
    if (!m->auth_schemes) {
        if (arr)
            return hj_jfail(c, path, "auth_schemes", "needs at least one scheme");
        m->auth_schemes = m->default_scheme = has_k ? HSS_AUTH_AKA : HSS_AUTH_DIGEST;
    }
    if (hj_get_str(c, o, path, "default_scheme", false, &s) != 0)
        return -1;
    if (s) {
        const ims_enum_name *r = ims_enum_by_name(hss_auth_scheme_names, s);

        if (!r || !((unsigned)r->value & m->auth_schemes))
            return hj_jfail(c, path, "default_scheme", "must be one of auth_schemes");
        m->default_scheme = (unsigned)r->value;
    }
    if ((m->auth_schemes & HSS_AUTH_AKA) && !has_k)
        return hj_jfail(c, path, "k", "required by the aka scheme (with op or opc)");
    if ((m->auth_schemes & HSS_AUTH_DIGEST) && !m->ha1[0])
        return hj_jfail(c, path, "password", "password or ha1 required by the digest scheme");
    return 0;
}

static int impu_from_json(jctx *c, json_object *o, const char *path, const hss_subscriber *s,
                          hss_impu *m)
{
    static const char *const keys[] = {"impu", "barred", "irs", "service_profile", "display_name",
                                       "identity_type", "can_register", "reg_state", NULL};
    const char *str;
    int64_t x;

    if (!json_object_is_type(o, json_type_object))
        return hj_jfail(c, path, NULL, "must be an object");
    if (hj_check_keys(c, o, path, keys) != 0 || hj_get_str(c, o, path, "impu", true, &str) != 0)
        return -1;
    if (!valid_impu(str))
        return hj_jfail(c, path, "impu", "must be a sip:, sips: or tel: URI (tel:+digits, or tel:digits;phone-context=...)");
    if (hj_dup_str(c, path, str, &m->identity) != 0 ||
        hj_get_bool(c, o, path, "barred", false, &m->barred) != 0 ||
        hj_get_int(c, o, path, "irs", false, 1, 0, MAX_IRS, &x) != 0)
        return -1;
    m->irs = (int)x;
    if (hj_get_str(c, o, path, "service_profile", false, &str) != 0)
        return -1;
    if (!str)
        str = s->profiles[0].name;
    if (!hss_subscriber_profile(s, str))
        return hj_jfail(c, path, "service_profile", "no service profile \"%s\" in this subscription", str);
    if (hj_dup_str(c, path, str, &m->service_profile) != 0 ||
        hj_get_str(c, o, path, "display_name", false, &str) != 0 ||
        hj_dup_str(c, path, str, &m->display_name) != 0 ||
        hj_get_int(c, o, path, "identity_type", false, 0, 0, 2, &x) != 0)
        return -1;
    m->identity_type = (int)x;
    return hj_get_bool(c, o, path, "can_register", true, &m->can_register);
}

static int profiles_from_json(jctx *c, json_object *obj, hss_subscriber *out)
{
    static const char *const keys[] = {"name", "subscribed_media_profile_id", "ifc", NULL};
    json_object *arr;
    size_t len;
    int64_t x;

    if (hj_get_typed(c, obj, "", "service_profiles", false, json_type_array, &arr) != 0)
        return -1;
    len = arr ? json_object_array_length(arr) : 0;
    out->profiles = calloc(len ? len : 1, sizeof(*out->profiles));
    if (!out->profiles)
        return hj_jfail(c, "", "service_profiles", "out of memory");
    if (len == 0) {
        /* No profiles given: one empty profile, so that every IMPU still has one (Annex E:
         * a ServiceProfile may carry no InitialFilterCriteria). */
        out->n_profiles = 1;
        out->profiles[0].subscribed_media_profile_id = -1;
        return hj_dup_str(c, "service_profiles", "default", &out->profiles[0].name);
    }
    for (size_t i = 0; i < len; i++) {
        json_object *o = json_object_array_get_idx(arr, i), *ifc;
        hss_service_profile *sp = &out->profiles[i];
        const char *name;
        char p[JPATH], q[JPATH];

        hj_join_path(p, sizeof(p), "", "service_profiles", (long)i);
        out->n_profiles++;
        if (!json_object_is_type(o, json_type_object))
            return hj_jfail(c, p, NULL, "must be an object");
        if (hj_check_keys(c, o, p, keys) != 0 || hj_get_str(c, o, p, "name", true, &name) != 0)
            return -1;
        if (!name[0])
            return hj_jfail(c, p, "name", "must not be empty");
        if (hss_subscriber_profile(out, name))
            return hj_jfail(c, p, "name", "duplicate service profile \"%s\"", name);
        if (hj_get_int(c, o, p, "subscribed_media_profile_id", false, -1, -1, INT32_MAX, &x) != 0 ||
            hj_get_typed(c, o, p, "ifc", false, json_type_array, &ifc) != 0)
            return -1;
        sp->subscribed_media_profile_id = (int)x;
        hj_join_path(q, sizeof(q), p, "ifc", -1);
        if (hss_ifcs_from_json(ifc, q, &sp->ifcs, &sp->n_ifcs, c->err, c->errlen) != 0)
            return -1;
        /* The name last: hss_subscriber_profile above must not see this entry half-built. */
        if (hj_dup_str(c, p, name, &sp->name) != 0)
            return -1;
    }
    return 0;
}

/* Parses the "impis" or "impus" array, rejecting duplicates by the identity comparison rules. */
static int identities_from_json(jctx *c, json_object *obj, hss_subscriber *out, bool impus)
{
    const char *key = impus ? "impus" : "impis";
    json_object *arr;
    size_t len;

    if (hj_get_typed(c, obj, "", key, true, json_type_array, &arr) != 0)
        return -1;
    len = json_object_array_length(arr);
    if (len == 0)
        return hj_jfail(c, "", key, "needs at least one %s identity", impus ? "public" : "private");
    if (impus)
        out->impus = calloc(len, sizeof(hss_impu));
    else
        out->impis = calloc(len, sizeof(hss_impi));
    if (impus ? !out->impus : !out->impis)
        return hj_jfail(c, "", key, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_object *o = json_object_array_get_idx(arr, i);
        const char *id;
        char p[JPATH];

        hj_join_path(p, sizeof(p), "", key, (long)i);
        if (impus) {
            out->n_impus++;
            if (impu_from_json(c, o, p, out, &out->impus[i]) != 0)
                return -1;
            id = out->impus[i].identity;
        } else {
            out->n_impis++;
            if (impi_from_json(c, o, p, &out->impis[i]) != 0)
                return -1;
            id = out->impis[i].identity;
        }
        for (size_t j = 0; j < i; j++) {
            if (impus ? hss_impu_equal(out->impus[j].identity, id)
                      : hss_impi_equal(out->impis[j].identity, id))
                return hj_jfail(c, p, NULL, "duplicate identity %s (also %s[%zu])", id, key, j);
        }
    }
    return 0;
}

int hss_subscriber_from_json(json_object *obj, hss_subscriber *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", "impis", "impus", "service_profiles", "roaming",
                                       "charging", "registration", NULL};
    static const char *const roaming_keys[] = {"visited_networks", NULL};
    static const char *const charging_keys[] = {"ccf_primary", "ccf_secondary", "ecf_primary",
                                                "ecf_secondary", NULL};
    jctx c = {err, errlen};
    json_object *o, *arr;
    const char *s;

    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    if (!obj || !json_object_is_type(obj, json_type_object))
        return hj_jfail(&c, "", NULL, "must be an object");
    if (hj_check_keys(&c, obj, "", keys) != 0 || hj_get_str(&c, obj, "", "id", true, &s) != 0)
        goto fail;
    if (!valid_id(s)) {
        hj_jfail(&c, "", "id", "must match [A-Za-z0-9._@+-]{1,128}");
        goto fail;
    }
    /* Profiles before identities: an IMPU names its profile. */
    if (hj_dup_str(&c, "id", s, &out->id) != 0 || profiles_from_json(&c, obj, out) != 0 ||
        identities_from_json(&c, obj, out, false) != 0 ||
        identities_from_json(&c, obj, out, true) != 0)
        goto fail;

    if (hj_get_typed(&c, obj, "", "roaming", false, json_type_object, &o) != 0)
        goto fail;
    if (o && (hj_check_keys(&c, o, "roaming", roaming_keys) != 0 ||
              hj_get_typed(&c, o, "roaming", "visited_networks", false, json_type_array, &arr) != 0))
        goto fail;
    if (o && arr && json_object_array_length(arr) > 0) {
        out->visited_networks = calloc(json_object_array_length(arr), sizeof(char *));
        if (!out->visited_networks) {
            hj_jfail(&c, "roaming", "visited_networks", "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i);
            char p[JPATH];

            hj_join_path(p, sizeof(p), "roaming", "visited_networks", (long)i);
            if (!json_object_is_type(e, json_type_string) || !json_object_get_string(e)[0] ||
                hj_has_space(json_object_get_string(e)) ||
                !hj_text_ok(json_object_get_string(e), (size_t)json_object_get_string_len(e))) {
                hj_jfail(&c, p, NULL, "must be a network name (string)");
                goto fail;
            }
            if (hj_dup_str(&c, p, json_object_get_string(e), &out->visited_networks[i]) != 0)
                goto fail;
            out->n_visited_networks++;
        }
    }

    if (hj_get_typed(&c, obj, "", "charging", false, json_type_object, &o) != 0)
        goto fail;
    if (o) {
        char **dst[] = {&out->ccf_primary, &out->ccf_secondary, &out->ecf_primary,
                        &out->ecf_secondary};

        if (hj_check_keys(&c, o, "charging", charging_keys) != 0)
            goto fail;
        for (int i = 0; i < 4; i++)
            if (hj_get_str(&c, o, "charging", charging_keys[i], false, &s) != 0 ||
                hj_dup_str(&c, "charging", s, dst[i]) != 0)
                goto fail;
    }
    return 0;
fail:
    hss_subscriber_free(out);
    return -1;
}
