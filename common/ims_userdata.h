/*
 * ims_userdata: the IMS subscription profile of TS 29.228 Annex E (Cx User-Data AVP XML)
 * as C structs, with a writer and a strict reader (libxml2).
 *
 *   IMSSubscription  = PrivateID, ServiceProfile+
 *   ServiceProfile   = PublicIdentity+, CoreNetworkServicesAuthorization?, InitialFilterCriteria*
 *   PublicIdentity   = BarringIndication?, Identity, Extension{IdentityType, DisplayName}?
 *   InitialFilterCriteria = Priority, TriggerPoint?, ApplicationServer, ProfilePartIndicator?
 *   TriggerPoint     = ConditionTypeCNF, SPT+
 *   SPT              = ConditionNegated?, Group+, (RequestURI | Method | SIPHeader | SessionCase |
 *                      SessionDescription), Extension{RegistrationType*}?
 *   ApplicationServer = ServerName, DefaultHandling?, ServiceInfo?,
 *                      Extension{IncludeRegisterRequest?, IncludeRegisterResponse?}?
 *
 * The reader enforces this element order (TS 29.228 Annex E schema is a sequence) and reports the
 * first violation with the element name and line.
 * The S-CSCF evaluates iFC from these structs; the HSS builds them from its store.
 *
 * Files: ims_userdata.c (model: free, copy, validation, enum tables), ims_userdata_write.c
 * (writer), ims_userdata_read.c (the reader: one table per Annex E type), ims_userdata_seq.c (the
 * strict sequence walker and leaf readers under it), ims_userdata_int.h (what they share).
 */
#ifndef IMS_USERDATA_H
#define IMS_USERDATA_H

#include <stdbool.h>
#include <stddef.h>

/* SPT kinds (TS 29.228 E.?: choice inside SPT). */
typedef enum {
    IMS_SPT_REQUEST_URI = 0,
    IMS_SPT_METHOD,
    IMS_SPT_SIP_HEADER,
    IMS_SPT_SESSION_CASE,
    IMS_SPT_SESSION_DESC,
} ims_spt_kind;

/* SessionCase values (TS 29.228 Table E.x). */
enum {
    IMS_SESSION_CASE_ORIGINATING = 0,
    IMS_SESSION_CASE_TERMINATING_REGISTERED = 1,
    IMS_SESSION_CASE_TERMINATING_UNREGISTERED = 2,
    IMS_SESSION_CASE_ORIGINATING_UNREGISTERED = 3,
    IMS_SESSION_CASE_ORIGINATING_CDIV = 4,
};

/* RegistrationType bits (values 0 INITIAL, 1 RE-REGISTRATION, 2 DE-REGISTRATION). */
enum {
    IMS_REGTYPE_INITIAL = 1u << 0,
    IMS_REGTYPE_RE_REGISTRATION = 1u << 1,
    IMS_REGTYPE_DE_REGISTRATION = 1u << 2,
};

/* DefaultHandling values. */
enum {
    IMS_DEFAULT_HANDLING_SESSION_CONTINUED = 0,
    IMS_DEFAULT_HANDLING_SESSION_TERMINATED = 1,
};

/* IdentityType values (Extension of PublicIdentity). */
enum {
    IMS_IDENTITY_TYPE_PUBLIC_USER = 0,
    IMS_IDENTITY_TYPE_DISTINCT_PSI = 1,
    IMS_IDENTITY_TYPE_WILDCARDED_PSI = 2,
};

typedef struct {
    int group;                  /* Group: the first Group element (one per SPT in practice) */
    bool negated;               /* ConditionNegated */
    ims_spt_kind kind;
    char *value;                /* RequestURI / Method / SIPHeader.Header / SessionDescription.Line */
    char *content;              /* SIPHeader.Content / SessionDescription.Content (regex), or NULL */
    int session_case;           /* IMS_SPT_SESSION_CASE */
    unsigned registration_type; /* IMS_REGTYPE_* bits; 0 = element absent (matches all) */
} ims_spt;

typedef struct {
    bool cnf;                   /* ConditionTypeCNF: true = CNF, false = DNF */
    ims_spt *spts;
    size_t n_spts;
} ims_trigger_point;

typedef struct {
    char *server_name;          /* SIP URI of the AS */
    int default_handling;       /* IMS_DEFAULT_HANDLING_*; default SESSION_CONTINUED */
    char *service_info;         /* or NULL */
    bool include_register_request;
    bool include_register_response;
} ims_app_server;

typedef struct {
    int priority;
    bool has_trigger_point;     /* no TriggerPoint = matches every request */
    ims_trigger_point tp;
    ims_app_server as;
    int profile_part_indicator; /* -1 absent, 0 REGISTERED, 1 UNREGISTERED */
} ims_ifc;

typedef struct {
    char *identity;             /* sip:alice@ims.lab or tel:+15551234 */
    bool barred;                /* BarringIndication */
    int identity_type;          /* IMS_IDENTITY_TYPE_* */
    char *display_name;         /* or NULL */
} ims_public_identity;

typedef struct {
    ims_public_identity *ids;   /* at least one */
    size_t n_ids;
    int subscribed_media_profile_id;  /* CoreNetworkServicesAuthorization; -1 = absent */
    ims_ifc *ifcs;              /* in any order; evaluators sort by priority */
    size_t n_ifcs;
} ims_service_profile;

typedef struct {
    char *private_id;           /* PrivateID (IMPI) */
    ims_service_profile *profiles;
    size_t n_profiles;
} ims_subscription;

/* Enum <-> text tables, one per enum, shared by the XML reader and writer and the HSS provisioning
 * JSON (hss_json.c parses, hss_subscriber.c prints). A table lists every valid value once, in the
 * order messages list them, and ends with a row whose name is NULL. The values of a table whose XML
 * form is an integer have no gaps: the reader takes its smallest and largest as the range.
 *   value: the C value, which is also the Annex E integer where the XML carries one
 *          (tDefaultHandling, tProfilePartIndicator, tRegistrationType: IMS_REGTYPE_* bit = 1u << value)
 *   name:  the provisioning JSON text
 *   xml:   the Annex E element name where the XML form is an element (SPT choice), else NULL */
typedef struct {
    int value;
    const char *name;
    const char *xml;
} ims_enum_name;

extern const ims_enum_name ims_spt_kind_names[];         /* ims_spt_kind: "request_uri" <RequestURI>, ... */
extern const ims_enum_name ims_regtype_names[];          /* tRegistrationType 0..2: "initial", ...      */
extern const ims_enum_name ims_default_handling_names[]; /* IMS_DEFAULT_HANDLING_*: "session_continued"  */
extern const ims_enum_name ims_profile_part_names[];     /* ProfilePartIndicator 0..1: "registered", ... */

/* The row of a table by value, by JSON name, or by XML element name; NULL when there is none. */
const ims_enum_name *ims_enum_by_value(const ims_enum_name *table, int value);
const ims_enum_name *ims_enum_by_name(const ims_enum_name *table, const char *name);
const ims_enum_name *ims_enum_by_xml(const ims_enum_name *table, const char *xml);

/* Serialises to a malloc'd, NUL-terminated UTF-8 XML document (with XML declaration).
 * Returns NULL and a message in err when the struct breaks the schema (e.g. no PublicIdentity). */
char *ims_userdata_write(const ims_subscription *sub, char *err, size_t errlen);

/* Parses User-Data XML into *out (zeroed first). Returns 0, or -1 with a message naming the
 * element and line. On error *out holds nothing that needs freeing. */
int ims_userdata_parse(const char *xml, size_t len, ims_subscription *out, char *err, size_t errlen);

/* True when s can be User-Data text: well-formed UTF-8 of XML 1.0 characters (no control
 * characters other than tab, LF, CR). The writer refuses anything else; provisioning checks with it. */
bool ims_userdata_text_ok(const char *s);

void ims_subscription_free(ims_subscription *sub);
/* Deep copies (used by stores and caches). Return 0 / -1 (ENOMEM). */
int ims_service_profile_copy(ims_service_profile *dst, const ims_service_profile *src);
void ims_service_profile_free(ims_service_profile *sp);
void ims_ifc_free(ims_ifc *ifc);

#endif
