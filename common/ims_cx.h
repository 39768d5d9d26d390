/*
 * ims_cx: the Cx/Dx interface dictionary and message helpers (TS 29.228, TS 29.229).
 *
 * Application 16777216 (3GPP Cx), vendor 10415. Commands (TS 29.229 §6.1):
 *   300 User-Authorization    UAR/UAA   I-CSCF -> HSS
 *   301 Server-Assignment     SAR/SAA   S-CSCF -> HSS
 *   302 Location-Info         LIR/LIA   I-CSCF -> HSS
 *   303 Multimedia-Auth       MAR/MAA   S-CSCF -> HSS
 *   304 Registration-Termination RTR/RTA HSS -> S-CSCF
 *   305 Push-Profile          PPR/PPA   HSS -> S-CSCF
 * The AVPs come from freeDiameter's dict_dcca_3gpp (vendor 10415); the RFC 4740 Digest-* AVPs used
 * inside SIP-Digest-Authenticate are added here with vendor 0 (TS 29.229 §6.3.36 cites RFC 4740,
 * whose AVPs are IETF ones; dict_dcca_3gpp 1.2.1 wrongly defines them under 10415).
 *
 * Result codes: Cx codes travel in Experimental-Result (vendor 10415), base codes in Result-Code.
 * They share numbers (5003 is both DIAMETER_AUTHORIZATION_REJECTED and
 * DIAMETER_ERROR_IDENTITY_NOT_REGISTERED), so the two enums below are kept apart.
 */
#ifndef IMS_CX_H
#define IMS_CX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <freeDiameter/freeDiameter-host.h>
#include <freeDiameter/libfdproto.h>

#define IMS_CX_APP_ID 16777216u
#define IMS_VENDOR_3GPP 10415u

enum ims_cx_cmd_code {
    IMS_CX_UAR = 300, IMS_CX_SAR = 301, IMS_CX_LIR = 302,
    IMS_CX_MAR = 303, IMS_CX_RTR = 304, IMS_CX_PPR = 305,
};

/* Base protocol Result-Code values (RFC 6733 §7.1). */
enum ims_diameter_result {
    IMS_DIAMETER_SUCCESS = 2001,
    IMS_DIAMETER_UNABLE_TO_DELIVER = 3002,
    IMS_DIAMETER_TOO_BUSY = 3004,
    IMS_DIAMETER_AUTHORIZATION_REJECTED = 5003,
    IMS_DIAMETER_INVALID_AVP_VALUE = 5004,
    IMS_DIAMETER_MISSING_AVP = 5005,
    IMS_DIAMETER_UNABLE_TO_COMPLY = 5012,
};

/* Cx Experimental-Result-Code values (TS 29.229 §6.2). */
enum ims_cx_result {
    IMS_CX_FIRST_REGISTRATION = 2001,
    IMS_CX_SUBSEQUENT_REGISTRATION = 2002,
    IMS_CX_UNREGISTERED_SERVICE = 2003,
    IMS_CX_SUCCESS_SERVER_NAME_NOT_STORED = 2004,
    IMS_CX_ERROR_USER_UNKNOWN = 5001,
    IMS_CX_ERROR_IDENTITIES_DONT_MATCH = 5002,
    IMS_CX_ERROR_IDENTITY_NOT_REGISTERED = 5003,
    IMS_CX_ERROR_ROAMING_NOT_ALLOWED = 5004,
    IMS_CX_ERROR_IDENTITY_ALREADY_REGISTERED = 5005,
    IMS_CX_ERROR_AUTH_SCHEME_NOT_SUPPORTED = 5006,
    IMS_CX_ERROR_IN_ASSIGNMENT_TYPE = 5007,
    IMS_CX_ERROR_TOO_MUCH_DATA = 5008,
    IMS_CX_ERROR_NOT_SUPPORTED_USER_DATA = 5009,
};

/* User-Authorization-Type (TS 29.229 §6.3.24). */
enum { IMS_UAT_REGISTRATION = 0, IMS_UAT_DE_REGISTRATION = 1, IMS_UAT_REGISTRATION_AND_CAPABILITIES = 2 };

/* Server-Assignment-Type (TS 29.229 §6.3.15). */
enum {
    IMS_SAT_NO_ASSIGNMENT = 0,
    IMS_SAT_REGISTRATION = 1,
    IMS_SAT_RE_REGISTRATION = 2,
    IMS_SAT_UNREGISTERED_USER = 3,
    IMS_SAT_TIMEOUT_DEREGISTRATION = 4,
    IMS_SAT_USER_DEREGISTRATION = 5,
    IMS_SAT_TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME = 6,
    IMS_SAT_USER_DEREGISTRATION_STORE_SERVER_NAME = 7,
    IMS_SAT_ADMINISTRATIVE_DEREGISTRATION = 8,
    IMS_SAT_AUTHENTICATION_FAILURE = 9,
    IMS_SAT_AUTHENTICATION_TIMEOUT = 10,
    IMS_SAT_DEREGISTRATION_TOO_MUCH_DATA = 11,
};

/* Reason-Code in Deregistration-Reason (TS 29.229 §6.3.17). */
enum {
    IMS_DEREG_PERMANENT_TERMINATION = 0,
    IMS_DEREG_NEW_SERVER_ASSIGNED = 1,
    IMS_DEREG_SERVER_CHANGE = 2,
    IMS_DEREG_REMOVE_SCSCF = 3,
};

/* SIP-Authentication-Scheme strings (TS 29.229 §6.3.12, TS 33.203). */
#define IMS_SCHEME_AKA "Digest-AKAv1-MD5"
#define IMS_SCHEME_DIGEST "SIP Digest"
#define IMS_SCHEME_UNKNOWN "Unknown"

struct ims_cx_dictionary {
    struct dict_object *app, *vendor;
    struct dict_object *uar, *uaa, *sar, *saa, *lir, *lia, *mar, *maa, *rtr, *rta, *ppr, *ppa;
    /* base */
    struct dict_object *session_id, *vsai, *vendor_id, *auth_app_id, *auth_session_state,
        *origin_host, *origin_realm, *dest_host, *dest_realm, *user_name, *result_code,
        *exp_result, *exp_result_code;
    /* Cx */
    struct dict_object *visited_network_id, *public_identity, *server_name, *server_caps,
        *mandatory_cap, *optional_cap, *user_data, *sip_number_auth_items, *sip_auth_scheme,
        *sip_authenticate, *sip_authorization, *sip_auth_context, *sip_auth_data_item,
        *sip_item_number, *server_assignment_type, *dereg_reason, *reason_code, *reason_info,
        *charging_info, *pri_ecf, *sec_ecf, *pri_ccf, *sec_ccf, *user_auth_type,
        *user_data_already_available, *ck, *ik, *sip_digest_authenticate, *associated_identities,
        *originating_request, *supported_features;
    /* RFC 4740, vendor 0 */
    struct dict_object *digest_realm, *digest_qop, *digest_algorithm, *digest_ha1;
};
extern struct ims_cx_dictionary ims_cx_dict;

/* After fd_core_parseconf (the dictionary extensions are loaded then). Idempotent. 0 / -1. */
int ims_cx_dict_init(void);

/* ---------- building messages ---------- */

/* New Cx request with Session-Id, Vendor-Specific-Application-Id, Auth-Session-State
 * (NO_STATE_MAINTAINED), Origin-Host/Realm, Destination-Realm and (if non-NULL) Destination-Host. */
int ims_cx_new_request(struct dict_object *cmd, const char *dest_realm, const char *dest_host,
                       struct msg **out);
/* Turns *msg (a received request) into its answer, with Vendor-Specific-Application-Id and
 * Auth-Session-State copied from the TS 29.229 answer formats. */
int ims_cx_new_answer(struct msg **msg);

int ims_cx_add_str(msg_or_avp *parent, struct dict_object *model, const char *s);
int ims_cx_add_os(msg_or_avp *parent, struct dict_object *model, const uint8_t *data, size_t len);
int ims_cx_add_u32(msg_or_avp *parent, struct dict_object *model, uint32_t v);
int ims_cx_add_i32(msg_or_avp *parent, struct dict_object *model, int32_t v);
/* Adds an empty grouped AVP and returns it to fill. */
int ims_cx_add_group(msg_or_avp *parent, struct dict_object *model, struct avp **group);

/* Answer results: base Result-Code (+ Origin-Host/Realm) or Cx Experimental-Result. */
int ims_cx_set_result(struct msg *ans, uint32_t result_code);
int ims_cx_set_experimental(struct msg *ans, uint32_t exp_code);
/* Base error answers with a Failed-AVP naming the model / an Error-Message. */
int ims_cx_set_missing_avp(struct msg *ans, struct dict_object *missing, const char *why);
int ims_cx_set_invalid_avp(struct msg *ans, struct avp *bad, const char *why);

/* ---------- reading messages ---------- */

/* Next direct child of `parent` with this model after `after` (NULL = first). NULL when none. */
struct avp *ims_cx_child(msg_or_avp *parent, struct dict_object *model, struct avp *after);
/* Value of the first such child into buf (NUL-terminated). 0, -1 absent, -2 longer than buf. */
int ims_cx_get_str(msg_or_avp *parent, struct dict_object *model, char *buf, size_t buflen);
/* Pointer into the message for the first such child (valid while the message lives). */
const uint8_t *ims_cx_get_os(msg_or_avp *parent, struct dict_object *model, size_t *len);
int ims_cx_get_u32(msg_or_avp *parent, struct dict_object *model, uint32_t *v);
int ims_cx_get_i32(msg_or_avp *parent, struct dict_object *model, int32_t *v);
/* Result of an answer: base code in *result (0 if absent), Cx code in *experimental (0 if absent). */
void ims_cx_get_result(struct msg *ans, uint32_t *result, uint32_t *experimental);
/* The Origin-Host of a received message into buf ("" if absent). */
void ims_cx_origin_host(struct msg *msg, char *buf, size_t buflen);

/* Names for logs: "DIAMETER_FIRST_REGISTRATION", "DIAMETER_MISSING_AVP", "MAR", ... */
const char *ims_cx_result_name(uint32_t code, bool experimental);
const char *ims_cx_cmd_name(uint32_t code);

#endif
