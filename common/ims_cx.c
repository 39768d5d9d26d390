/*
 * ims_cx: Cx dictionary and message helpers. See ims_cx.h.
 *
 * Command ABNF: TS 29.229 §6.1.1-§6.1.12. The rules below declare the AVPs each Cx request must
 * carry ({...} in the ABNF), so freeDiameter itself answers a request that lacks one with
 * DIAMETER_MISSING_AVP (5005) and a Failed-AVP, before any handler runs (RFC 6733 §7.5).
 */
#include "ims_cx.h"

#include <errno.h>
#include <string.h>

#include <freeDiameter/libfdcore.h>

#include "ims_log.h"

#define SUBSYS "cx"

struct ims_cx_dictionary ims_cx_dict;
static bool g_dict_ready;

/* freeDiameter-style check: log the failing call and return -1. */
#define CX_CHECK(call)                                                         \
    do {                                                                       \
        int _rc = (call);                                                      \
        if (_rc) {                                                             \
            IMS_ERROR(SUBSYS, "%s failed: %s", #call, strerror(_rc));          \
            return -1;                                                         \
        }                                                                      \
    } while (0)

static struct dictionary *dict(void) { return fd_g_config->cnf_dict; }

static int find_avp(uint32_t vendor, const char *name, struct dict_object **out)
{
    struct dict_avp_request req = { .avp_vendor = vendor, .avp_name = (char *)name };
    int rc = fd_dict_search(dict(), DICT_AVP, AVP_BY_NAME_AND_VENDOR, &req, out, ENOENT);
    if (rc)
        IMS_ERROR(SUBSYS, "AVP %s (vendor %u) not in the dictionary", name, vendor);
    return rc ? -1 : 0;
}

/* RFC 4740 Digest-* AVPs with vendor 0 (UTF8String, M bit). */
static int define_digest_avp(uint32_t code, const char *name, struct dict_object **out)
{
    struct dict_avp_request req = { .avp_vendor = 0, .avp_code = code };
    if (fd_dict_search(dict(), DICT_AVP, AVP_BY_CODE_AND_VENDOR, &req, out, ENOENT) == 0)
        return 0;
    struct dict_object *utf8 = NULL;
    CX_CHECK(fd_dict_search(dict(), DICT_TYPE, TYPE_BY_NAME, "UTF8String", &utf8, ENOENT));
    struct dict_avp_data data = {
        .avp_code = code, .avp_vendor = 0, .avp_name = (char *)name,
        .avp_flag_mask = AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY, .avp_flag_val = AVP_FLAG_MANDATORY,
        .avp_basetype = AVP_TYPE_OCTETSTRING,
    };
    CX_CHECK(fd_dict_new(dict(), DICT_AVP, &data, utf8, out));
    return 0;
}

static int define_cmd(uint32_t code, const char *name, bool request, struct dict_object **out)
{
    struct dict_cmd_data data = {
        .cmd_code = code, .cmd_name = (char *)name,
        .cmd_flag_mask = CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE,
        .cmd_flag_val = (uint8_t)((request ? CMD_FLAG_REQUEST : 0) | CMD_FLAG_PROXIABLE),
    };
    if (fd_dict_search(dict(), DICT_COMMAND, CMD_BY_NAME, name, out, ENOENT) == 0)
        return 0;
    CX_CHECK(fd_dict_new(dict(), DICT_COMMAND, &data, ims_cx_dict.app, out));
    return 0;
}

static int rule(struct dict_object *parent, struct dict_object *avp, enum rule_position pos, int min, int max)
{
    struct dict_rule_data r = { .rule_avp = avp, .rule_position = pos, .rule_order = 0,
                                .rule_min = min, .rule_max = max };
    if (pos == RULE_FIXED_HEAD)
        r.rule_order = 1;
    int rc = fd_dict_new(dict(), DICT_RULE, &r, parent, NULL);
    if (rc && rc != EEXIST) {
        IMS_ERROR(SUBSYS, "cannot add a dictionary rule: %s", strerror(rc));
        return -1;
    }
    return 0;
}

#define REQUIRED(parent, avp) rule(parent, avp, RULE_REQUIRED, -1, 1)
#define OPTIONAL(parent, avp) rule(parent, avp, RULE_OPTIONAL, -1, 1)
#define OPTIONAL_N(parent, avp) rule(parent, avp, RULE_OPTIONAL, -1, -1)

/* Rules common to every Cx message (TS 29.229 §6.1): < Session-Id > first, then
 * { Vendor-Specific-Application-Id } { Auth-Session-State } { Origin-Host } { Origin-Realm }. */
static int common_rules(struct dict_object *cmd, bool request)
{
    struct ims_cx_dictionary *d = &ims_cx_dict;
    if (rule(cmd, d->session_id, RULE_FIXED_HEAD, -1, 1) || REQUIRED(cmd, d->vsai) ||
        REQUIRED(cmd, d->auth_session_state) || REQUIRED(cmd, d->origin_host) ||
        REQUIRED(cmd, d->origin_realm))
        return -1;
    if (request && REQUIRED(cmd, d->dest_realm))
        return -1;
    if (request && OPTIONAL(cmd, d->dest_host))
        return -1;
    return 0;
}

int ims_cx_dict_init(void)
{
    if (g_dict_ready)
        return 0;
    struct ims_cx_dictionary *d = &ims_cx_dict;
    uint32_t vendor = IMS_VENDOR_3GPP;
    CX_CHECK(fd_dict_search(dict(), DICT_VENDOR, VENDOR_BY_ID, &vendor, &d->vendor, ENOENT));

    uint32_t app_id = IMS_CX_APP_ID;
    if (fd_dict_search(dict(), DICT_APPLICATION, APPLICATION_BY_ID, &app_id, &d->app, ENOENT)) {
        struct dict_application_data app = { .application_id = IMS_CX_APP_ID,
                                             .application_name = "3GPP Cx" };
        CX_CHECK(fd_dict_new(dict(), DICT_APPLICATION, &app, d->vendor, &d->app));
    }

    struct { uint32_t vendor; const char *name; struct dict_object **obj; } avps[] = {
        { 0, "Session-Id", &d->session_id },
        { 0, "Vendor-Specific-Application-Id", &d->vsai },
        { 0, "Vendor-Id", &d->vendor_id },
        { 0, "Auth-Application-Id", &d->auth_app_id },
        { 0, "Auth-Session-State", &d->auth_session_state },
        { 0, "Origin-Host", &d->origin_host },
        { 0, "Origin-Realm", &d->origin_realm },
        { 0, "Destination-Host", &d->dest_host },
        { 0, "Destination-Realm", &d->dest_realm },
        { 0, "User-Name", &d->user_name },
        { 0, "Result-Code", &d->result_code },
        { 0, "Experimental-Result", &d->exp_result },
        { 0, "Experimental-Result-Code", &d->exp_result_code },
        { IMS_VENDOR_3GPP, "Visited-Network-Identifier", &d->visited_network_id },
        { IMS_VENDOR_3GPP, "Public-Identity", &d->public_identity },
        { IMS_VENDOR_3GPP, "Server-Name", &d->server_name },
        { IMS_VENDOR_3GPP, "Server-Capabilities", &d->server_caps },
        { IMS_VENDOR_3GPP, "Mandatory-Capability", &d->mandatory_cap },
        { IMS_VENDOR_3GPP, "Optional-Capability", &d->optional_cap },
        { IMS_VENDOR_3GPP, "User-Data", &d->user_data },
        { IMS_VENDOR_3GPP, "SIP-Number-Auth-Items", &d->sip_number_auth_items },
        { IMS_VENDOR_3GPP, "SIP-Authentication-Scheme", &d->sip_auth_scheme },
        { IMS_VENDOR_3GPP, "SIP-Authenticate", &d->sip_authenticate },
        { IMS_VENDOR_3GPP, "SIP-Authorization", &d->sip_authorization },
        { IMS_VENDOR_3GPP, "SIP-Authentication-Context", &d->sip_auth_context },
        { IMS_VENDOR_3GPP, "SIP-Auth-Data-Item", &d->sip_auth_data_item },
        { IMS_VENDOR_3GPP, "SIP-Item-Number", &d->sip_item_number },
        { IMS_VENDOR_3GPP, "Server-Assignment-Type", &d->server_assignment_type },
        { IMS_VENDOR_3GPP, "Deregistration-Reason", &d->dereg_reason },
        { IMS_VENDOR_3GPP, "Reason-Code", &d->reason_code },
        { IMS_VENDOR_3GPP, "Reason-Info", &d->reason_info },
        { IMS_VENDOR_3GPP, "Charging-Information", &d->charging_info },
        { IMS_VENDOR_3GPP, "Primary-Event-Charging-Function-Name", &d->pri_ecf },
        { IMS_VENDOR_3GPP, "Secondary-Event-Charging-Function-Name", &d->sec_ecf },
        { IMS_VENDOR_3GPP, "Primary-Charging-Collection-Function-Name", &d->pri_ccf },
        { IMS_VENDOR_3GPP, "Secondary-Charging-Collection-Function-Name", &d->sec_ccf },
        { IMS_VENDOR_3GPP, "User-Authorization-Type", &d->user_auth_type },
        { IMS_VENDOR_3GPP, "User-Data-Already-Available", &d->user_data_already_available },
        { IMS_VENDOR_3GPP, "Confidentiality-Key", &d->ck },
        { IMS_VENDOR_3GPP, "Integrity-Key", &d->ik },
        { IMS_VENDOR_3GPP, "SIP-Digest-Authenticate", &d->sip_digest_authenticate },
        { IMS_VENDOR_3GPP, "Associated-Identities", &d->associated_identities },
        { IMS_VENDOR_3GPP, "Originating-Request", &d->originating_request },
        { IMS_VENDOR_3GPP, "Supported-Features", &d->supported_features },
    };
    for (size_t i = 0; i < sizeof(avps) / sizeof(avps[0]); i++)
        if (find_avp(avps[i].vendor, avps[i].name, avps[i].obj))
            return -1;

    if (define_digest_avp(104, "Digest-Realm", &d->digest_realm) ||
        define_digest_avp(110, "Digest-QoP", &d->digest_qop) ||
        define_digest_avp(111, "Digest-Algorithm", &d->digest_algorithm) ||
        define_digest_avp(121, "Digest-HA1", &d->digest_ha1))
        return -1;

    if (define_cmd(IMS_CX_UAR, "User-Authorization-Request", true, &d->uar) ||
        define_cmd(IMS_CX_UAR, "User-Authorization-Answer", false, &d->uaa) ||
        define_cmd(IMS_CX_SAR, "Server-Assignment-Request", true, &d->sar) ||
        define_cmd(IMS_CX_SAR, "Server-Assignment-Answer", false, &d->saa) ||
        define_cmd(IMS_CX_LIR, "Location-Info-Request", true, &d->lir) ||
        define_cmd(IMS_CX_LIR, "Location-Info-Answer", false, &d->lia) ||
        define_cmd(IMS_CX_MAR, "Multimedia-Auth-Request", true, &d->mar) ||
        define_cmd(IMS_CX_MAR, "Multimedia-Auth-Answer", false, &d->maa) ||
        define_cmd(IMS_CX_RTR, "Registration-Termination-Request", true, &d->rtr) ||
        define_cmd(IMS_CX_RTR, "Registration-Termination-Answer", false, &d->rta) ||
        define_cmd(IMS_CX_PPR, "Push-Profile-Request", true, &d->ppr) ||
        define_cmd(IMS_CX_PPR, "Push-Profile-Answer", false, &d->ppa))
        return -1;

    /* Requests: the mandatory ({...}) AVPs of TS 29.229 §6.1. */
    if (common_rules(d->uar, true) || REQUIRED(d->uar, d->user_name) ||
        REQUIRED(d->uar, d->public_identity) || REQUIRED(d->uar, d->visited_network_id) ||
        OPTIONAL(d->uar, d->user_auth_type))
        return -1;
    if (common_rules(d->mar, true) || REQUIRED(d->mar, d->user_name) ||
        REQUIRED(d->mar, d->public_identity) || REQUIRED(d->mar, d->sip_auth_data_item) ||
        REQUIRED(d->mar, d->sip_number_auth_items) || REQUIRED(d->mar, d->server_name))
        return -1;
    if (common_rules(d->sar, true) || OPTIONAL(d->sar, d->user_name) ||
        OPTIONAL_N(d->sar, d->public_identity) || REQUIRED(d->sar, d->server_name) ||
        REQUIRED(d->sar, d->server_assignment_type) ||
        REQUIRED(d->sar, d->user_data_already_available))
        return -1;
    if (common_rules(d->lir, true) || REQUIRED(d->lir, d->public_identity) ||
        OPTIONAL(d->lir, d->originating_request) || OPTIONAL(d->lir, d->user_auth_type))
        return -1;
    if (common_rules(d->rtr, true) || REQUIRED(d->rtr, d->user_name) ||
        OPTIONAL_N(d->rtr, d->public_identity) || REQUIRED(d->rtr, d->dereg_reason))
        return -1;
    if (common_rules(d->ppr, true) || REQUIRED(d->ppr, d->user_name) ||
        OPTIONAL(d->ppr, d->user_data) || OPTIONAL(d->ppr, d->charging_info))
        return -1;
    /* Answers: only what every answer has, so a peer's odd answer still reaches our handler. */
    struct dict_object *answers[] = { d->uaa, d->saa, d->lia, d->maa, d->rta, d->ppa };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
        if (rule(answers[i], d->session_id, RULE_FIXED_HEAD, -1, 1) ||
            REQUIRED(answers[i], d->origin_host) || REQUIRED(answers[i], d->origin_realm))
            return -1;

    g_dict_ready = true;
    return 0;
}

/* ---------- building ---------- */

static int add_value(msg_or_avp *parent, struct dict_object *model, union avp_value *val, struct avp **out)
{
    struct avp *avp = NULL;
    CX_CHECK(fd_msg_avp_new(model, 0, &avp));
    if (val) {
        int rc = fd_msg_avp_setvalue(avp, val);
        if (rc) {
            fd_msg_free(avp);
            IMS_ERROR(SUBSYS, "cannot set an AVP value: %s", strerror(rc));
            return -1;
        }
    }
    int rc = fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, avp);
    if (rc) {
        fd_msg_free(avp);
        IMS_ERROR(SUBSYS, "cannot add an AVP: %s", strerror(rc));
        return -1;
    }
    if (out)
        *out = avp;
    return 0;
}

int ims_cx_add_os(msg_or_avp *parent, struct dict_object *model, const uint8_t *data, size_t len)
{
    union avp_value v;
    memset(&v, 0, sizeof(v));
    v.os.data = (uint8_t *)data;
    v.os.len = len;
    return add_value(parent, model, &v, NULL);
}

int ims_cx_add_str(msg_or_avp *parent, struct dict_object *model, const char *s)
{
    return ims_cx_add_os(parent, model, (const uint8_t *)s, strlen(s));
}

int ims_cx_add_u32(msg_or_avp *parent, struct dict_object *model, uint32_t value)
{
    union avp_value v;
    memset(&v, 0, sizeof(v));
    v.u32 = value;
    return add_value(parent, model, &v, NULL);
}

int ims_cx_add_i32(msg_or_avp *parent, struct dict_object *model, int32_t value)
{
    union avp_value v;
    memset(&v, 0, sizeof(v));
    v.i32 = value;
    return add_value(parent, model, &v, NULL);
}

int ims_cx_add_group(msg_or_avp *parent, struct dict_object *model, struct avp **group)
{
    return add_value(parent, model, NULL, group);
}

static int add_vsai_and_state(struct msg *msg)
{
    struct avp *vsai = NULL;
    if (ims_cx_add_group(msg, ims_cx_dict.vsai, &vsai) ||
        ims_cx_add_u32(vsai, ims_cx_dict.vendor_id, IMS_VENDOR_3GPP) ||
        ims_cx_add_u32(vsai, ims_cx_dict.auth_app_id, IMS_CX_APP_ID) ||
        ims_cx_add_i32(msg, ims_cx_dict.auth_session_state, 1 /* NO_STATE_MAINTAINED */))
        return -1;
    return 0;
}

int ims_cx_new_request(struct dict_object *cmd, const char *dest_realm, const char *dest_host,
                       struct msg **out)
{
    struct msg *msg = NULL;
    CX_CHECK(fd_msg_new(cmd, MSGFL_ALLOC_ETEID, &msg));
    if (fd_msg_new_session(msg, (os0_t)"cx", 2) || add_vsai_and_state(msg) ||
        fd_msg_add_origin(msg, 0) ||
        (dest_host && *dest_host && ims_cx_add_str(msg, ims_cx_dict.dest_host, dest_host)) ||
        ims_cx_add_str(msg, ims_cx_dict.dest_realm, dest_realm)) {
        fd_msg_free(msg);
        return -1;
    }
    *out = msg;
    return 0;
}

int ims_cx_new_answer(struct msg **msg)
{
    CX_CHECK(fd_msg_new_answer_from_req(dict(), msg, 0));
    return add_vsai_and_state(*msg);
}

int ims_cx_set_result(struct msg *ans, uint32_t result_code)
{
    CX_CHECK(fd_msg_add_origin(ans, 0));
    return ims_cx_add_u32(ans, ims_cx_dict.result_code, result_code);
}

int ims_cx_set_experimental(struct msg *ans, uint32_t exp_code)
{
    struct avp *er = NULL;
    CX_CHECK(fd_msg_add_origin(ans, 0));
    if (ims_cx_add_group(ans, ims_cx_dict.exp_result, &er) ||
        ims_cx_add_u32(er, ims_cx_dict.vendor_id, IMS_VENDOR_3GPP) ||
        ims_cx_add_u32(er, ims_cx_dict.exp_result_code, exp_code))
        return -1;
    return 0;
}

/* Result-Code + Failed-AVP (RFC 6733 §7.5) holding `example` + Error-Message. freeDiameter's
 * fd_msg_rescode_set can only copy AVPs that came off the wire, so the group is built here. */
static int set_failed(struct msg *ans, uint32_t code, struct avp *example, const char *why)
{
    struct dict_object *failed_avp = NULL, *error_message = NULL;
    struct avp *group = NULL;
    if (ims_cx_set_result(ans, code)) {
        fd_msg_free(example);
        return -1;
    }
    if (fd_dict_search(dict(), DICT_AVP, AVP_BY_NAME, "Failed-AVP", &failed_avp, ENOENT) == 0 &&
        ims_cx_add_group(ans, failed_avp, &group) == 0) {
        if (fd_msg_avp_add(group, MSG_BRW_LAST_CHILD, example))
            fd_msg_free(example);
    } else {
        fd_msg_free(example);
    }
    if (why && fd_dict_search(dict(), DICT_AVP, AVP_BY_NAME, "Error-Message", &error_message, ENOENT) == 0)
        ims_cx_add_str(ans, error_message, why);
    return 0;
}

/* A fresh AVP of `model` with an empty/zero value (grouped: no children). */
static struct avp *example_avp(struct dict_object *model, const union avp_value *value)
{
    struct avp *a = NULL;
    struct dict_avp_data data;
    if (fd_msg_avp_new(model, 0, &a) || fd_dict_getval(model, &data))
        return a;
    if (data.avp_basetype != AVP_TYPE_GROUPED) {
        union avp_value v;
        memset(&v, 0, sizeof(v));
        if (value)
            v = *value;
        else if (data.avp_basetype == AVP_TYPE_OCTETSTRING)
            v.os.data = (uint8_t *)"";
        fd_msg_avp_setvalue(a, &v);
    }
    return a;
}

int ims_cx_set_missing_avp(struct msg *ans, struct dict_object *missing, const char *why)
{
    return set_failed(ans, IMS_DIAMETER_MISSING_AVP, example_avp(missing, NULL), why);
}

int ims_cx_set_invalid_avp(struct msg *ans, struct avp *bad, const char *why)
{
    struct dict_object *model = NULL;
    struct avp_hdr *h = NULL;
    if (!bad || fd_msg_model(bad, &model) || !model || fd_msg_avp_hdr(bad, &h))
        return ims_cx_set_result(ans, IMS_DIAMETER_INVALID_AVP_VALUE);
    return set_failed(ans, IMS_DIAMETER_INVALID_AVP_VALUE, example_avp(model, h->avp_value), why);
}

/* ---------- reading ---------- */

struct avp *ims_cx_child(msg_or_avp *parent, struct dict_object *model, struct avp *after)
{
    struct avp *cur = NULL;
    if (after) {
        if (fd_msg_browse(after, MSG_BRW_NEXT, &cur, NULL))
            return NULL;
    } else if (fd_msg_browse(parent, MSG_BRW_FIRST_CHILD, &cur, NULL)) {
        return NULL;
    }
    for (; cur; ) {
        struct dict_object *m = NULL;
        if (fd_msg_model(cur, &m) == 0 && m == model)
            return cur;
        struct avp *next = NULL;
        if (fd_msg_browse(cur, MSG_BRW_NEXT, &next, NULL))
            return NULL;
        cur = next;
    }
    return NULL;
}

static struct avp_hdr *child_hdr(msg_or_avp *parent, struct dict_object *model)
{
    struct avp *avp = ims_cx_child(parent, model, NULL);
    struct avp_hdr *h = NULL;
    if (!avp || fd_msg_avp_hdr(avp, &h) || !h->avp_value)
        return NULL;
    return h;
}

int ims_cx_get_str(msg_or_avp *parent, struct dict_object *model, char *buf, size_t buflen)
{
    struct avp_hdr *h = child_hdr(parent, model);
    if (!h)
        return -1;
    if (h->avp_value->os.len >= buflen)
        return -2;
    memcpy(buf, h->avp_value->os.data, h->avp_value->os.len);
    buf[h->avp_value->os.len] = '\0';
    return 0;
}

const uint8_t *ims_cx_get_os(msg_or_avp *parent, struct dict_object *model, size_t *len)
{
    struct avp_hdr *h = child_hdr(parent, model);
    if (!h)
        return NULL;
    *len = h->avp_value->os.len;
    return h->avp_value->os.data;
}

int ims_cx_get_u32(msg_or_avp *parent, struct dict_object *model, uint32_t *v)
{
    struct avp_hdr *h = child_hdr(parent, model);
    if (!h)
        return -1;
    *v = h->avp_value->u32;
    return 0;
}

int ims_cx_get_i32(msg_or_avp *parent, struct dict_object *model, int32_t *v)
{
    struct avp_hdr *h = child_hdr(parent, model);
    if (!h)
        return -1;
    *v = h->avp_value->i32;
    return 0;
}

void ims_cx_get_result(struct msg *ans, uint32_t *result, uint32_t *experimental)
{
    *result = 0;
    *experimental = 0;
    ims_cx_get_u32(ans, ims_cx_dict.result_code, result);
    struct avp *er = ims_cx_child(ans, ims_cx_dict.exp_result, NULL);
    if (er)
        ims_cx_get_u32(er, ims_cx_dict.exp_result_code, experimental);
}

void ims_cx_origin_host(struct msg *msg, char *buf, size_t buflen)
{
    if (ims_cx_get_str(msg, ims_cx_dict.origin_host, buf, buflen) != 0 && buflen)
        buf[0] = '\0';
}

const char *ims_cx_result_name(uint32_t code, bool experimental)
{
    if (experimental) {
        switch (code) {
        case 2001: return "DIAMETER_FIRST_REGISTRATION";
        case 2002: return "DIAMETER_SUBSEQUENT_REGISTRATION";
        case 2003: return "DIAMETER_UNREGISTERED_SERVICE";
        case 2004: return "DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED";
        case 5001: return "DIAMETER_ERROR_USER_UNKNOWN";
        case 5002: return "DIAMETER_ERROR_IDENTITIES_DONT_MATCH";
        case 5003: return "DIAMETER_ERROR_IDENTITY_NOT_REGISTERED";
        case 5004: return "DIAMETER_ERROR_ROAMING_NOT_ALLOWED";
        case 5005: return "DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED";
        case 5006: return "DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED";
        case 5007: return "DIAMETER_ERROR_IN_ASSIGNMENT_TYPE";
        case 5008: return "DIAMETER_ERROR_TOO_MUCH_DATA";
        case 5009: return "DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA";
        default: return "DIAMETER_EXPERIMENTAL_RESULT";
        }
    }
    switch (code) {
    case 2001: return "DIAMETER_SUCCESS";
    case 3002: return "DIAMETER_UNABLE_TO_DELIVER";
    case 3004: return "DIAMETER_TOO_BUSY";
    case 3007: return "DIAMETER_APPLICATION_UNSUPPORTED";
    case 5003: return "DIAMETER_AUTHORIZATION_REJECTED";
    case 5004: return "DIAMETER_INVALID_AVP_VALUE";
    case 5005: return "DIAMETER_MISSING_AVP";
    case 5012: return "DIAMETER_UNABLE_TO_COMPLY";
    default: return "DIAMETER_RESULT";
    }
}

const char *ims_cx_cmd_name(uint32_t code)
{
    switch (code) {
    case IMS_CX_UAR: return "UAR";
    case IMS_CX_SAR: return "SAR";
    case IMS_CX_LIR: return "LIR";
    case IMS_CX_MAR: return "MAR";
    case IMS_CX_RTR: return "RTR";
    case IMS_CX_PPR: return "PPR";
    default: return "?";
    }
}
