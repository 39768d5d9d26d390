/*
 * hss_json_ifc.c: initial filter criteria of the provisioning JSON -> ims_ifc (TS 29.228 Annex B/E;
 * the format is described in hss_json.c), with the enum names of common/ims_userdata.c.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "hss_json_priv.h"

/* ---------- iFC ---------- */

static int spt_from_json(jctx *c, json_object *o, const char *path, ims_spt *spt)
{
    static const char *const keys[] = {"group", "negated", "method", "request_uri", "header",
                                       "content", "session_case", "sdp_line",
                                       "registration_type", NULL};
    int nkinds = 0;
    int64_t x;
    const char *s;
    json_object *arr;

    if (!json_object_is_type(o, json_type_object))
        return hj_jfail(c, path, NULL, "must be an object");
    if (hj_check_keys(c, o, path, keys) != 0 ||
        hj_get_int(c, o, path, "group", false, 0, 0, INT32_MAX, &x) != 0)
        return -1;
    spt->group = (int)x;
    if (hj_get_bool(c, o, path, "negated", false, &spt->negated) != 0)
        return -1;
    for (const ims_enum_name *k = ims_spt_kind_names; k->name; k++) {
        if (!hj_jget(o, k->name))
            continue;
        if (++nkinds > 1)
            return hj_jfail(c, path, k->name,
                         "only one of method, request_uri, header, session_case, sdp_line");
        spt->kind = (ims_spt_kind)k->value;
        if (k->value == IMS_SPT_SESSION_CASE) {
            if (hj_get_int(c, o, path, k->name, true, 0, 0, IMS_SESSION_CASE_ORIGINATING_CDIV, &x) != 0)
                return -1;
            spt->session_case = (int)x;
        } else {
            if (hj_get_str(c, o, path, k->name, true, &s) != 0)
                return -1;
            /* method, header and sdp_line are tokens the User-Data reader trims: a value with
             * white space around it could not go into User-Data (tests/fuzz/fuzz_json). */
            if (!s[0] || (k->value != IMS_SPT_REQUEST_URI &&
                          (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]))))
                return hj_jfail(c, path, k->name, "must not be empty or begin or end with white space");
            if (hj_dup_str(c, path, s, &spt->value) != 0)
                return -1;
        }
    }
    if (nkinds == 0)
        return hj_jfail(c, path, NULL, "needs one of method, request_uri, header, session_case, sdp_line");
    if (hj_get_str(c, o, path, "content", false, &s) != 0)
        return -1;
    if (s && spt->kind != IMS_SPT_SIP_HEADER && spt->kind != IMS_SPT_SESSION_DESC)
        return hj_jfail(c, path, "content", "only with header or sdp_line");
    if (hj_dup_str(c, path, s, &spt->content) != 0 ||
        hj_get_typed(c, o, path, "registration_type", false, json_type_array, &arr) != 0)
        return -1;
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        int v;

        if (hj_get_enum_item(c, arr, i, path, "registration_type", ims_regtype_names, &v) != 0)
            return -1;
        spt->registration_type |= 1u << v;
    }
    return 0;
}

static int ifc_from_json(jctx *c, json_object *o, const char *path, ims_ifc *ifc)
{
    static const char *const keys[] = {"priority", "trigger_point", "application_server",
                                       "profile_part_indicator", NULL};
    static const char *const tp_keys[] = {"cnf", "spt", NULL};
    static const char *const as_keys[] = {"server_name", "default_handling", "service_info",
                                          "include_register_request",
                                          "include_register_response", NULL};
    json_object *tp, *as, *arr, *v;
    char p[JPATH], q[JPATH];
    const char *s;
    int64_t x;

    ifc->profile_part_indicator = -1;
    if (!json_object_is_type(o, json_type_object))
        return hj_jfail(c, path, NULL, "must be an object");
    if (hj_check_keys(c, o, path, keys) != 0 ||
        hj_get_int(c, o, path, "priority", true, 0, 0, INT32_MAX, &x) != 0)
        return -1;
    ifc->priority = (int)x;

    if (hj_get_typed(c, o, path, "trigger_point", false, json_type_object, &tp) != 0)
        return -1;
    if (tp) {
        hj_join_path(p, sizeof(p), path, "trigger_point", -1);
        ifc->has_trigger_point = true;
        if (hj_check_keys(c, tp, p, tp_keys) != 0)
            return -1;
        v = hj_jget(tp, "cnf");
        if (!v)
            return hj_jfail(c, p, "cnf", "required");
        if (hj_get_bool(c, tp, p, "cnf", false, &ifc->tp.cnf) != 0 ||
            hj_get_typed(c, tp, p, "spt", true, json_type_array, &arr) != 0)
            return -1;
        if (json_object_array_length(arr) == 0)
            return hj_jfail(c, p, "spt", "needs at least one SPT");
        ifc->tp.spts = calloc(json_object_array_length(arr), sizeof(ims_spt));
        if (!ifc->tp.spts)
            return hj_jfail(c, p, NULL, "out of memory");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            hj_join_path(q, sizeof(q), p, "spt", (long)i);
            ifc->tp.n_spts++;
            if (spt_from_json(c, json_object_array_get_idx(arr, i), q, &ifc->tp.spts[i]) != 0)
                return -1;
        }
    }

    if (hj_get_typed(c, o, path, "application_server", true, json_type_object, &as) != 0)
        return -1;
    hj_join_path(p, sizeof(p), path, "application_server", -1);
    if (hj_check_keys(c, as, p, as_keys) != 0 || hj_get_str(c, as, p, "server_name", true, &s) != 0)
        return -1;
    if (!s[0] || hj_has_space(s))
        return hj_jfail(c, p, "server_name", "must be a SIP URI");
    if (hj_dup_str(c, p, s, &ifc->as.server_name) != 0 ||
        hj_get_enum(c, as, p, "default_handling", ims_default_handling_names,
                 IMS_DEFAULT_HANDLING_SESSION_CONTINUED, &ifc->as.default_handling) != 0 ||
        hj_get_str(c, as, p, "service_info", false, &s) != 0 ||
        hj_dup_str(c, p, s, &ifc->as.service_info) != 0 ||
        hj_get_bool(c, as, p, "include_register_request", false, &ifc->as.include_register_request) != 0 ||
        hj_get_bool(c, as, p, "include_register_response", false, &ifc->as.include_register_response) != 0)
        return -1;

    /* -1: absent, the iFC applies in both states */
    return hj_get_enum(c, o, path, "profile_part_indicator", ims_profile_part_names, -1,
                    &ifc->profile_part_indicator);
}

int hss_ifcs_from_json(json_object *arr, const char *path, ims_ifc **out, size_t *n, char *err,
                       size_t errlen)
{
    jctx c = {err, errlen};
    ims_ifc *ifcs = NULL;
    size_t len, count = 0;
    char p[JPATH];

    *out = NULL;
    *n = 0;
    if (!arr)
        return 0;
    if (!json_object_is_type(arr, json_type_array))
        return hj_jfail(&c, path, NULL, "must be an array");
    len = json_object_array_length(arr);
    if (len == 0)
        return 0;
    if (!(ifcs = calloc(len, sizeof(*ifcs))))
        return hj_jfail(&c, path, NULL, "out of memory");
    for (; count < len; count++) {
        hj_join_path(p, sizeof(p), "", path, (long)count);
        if (ifc_from_json(&c, json_object_array_get_idx(arr, count), p, &ifcs[count]) != 0) {
            hss_ifcs_free(ifcs, count + 1);
            return -1;
        }
    }
    *out = ifcs;
    *n = len;
    return 0;
}
