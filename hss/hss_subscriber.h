/*
 * hss_subscriber: the HSS data model of one IMS subscription (TS 23.228 §5.2 / TS 29.228 Annex E),
 * as the store returns it and the provisioning API exchanges it as JSON.
 *
 *   subscription (IMSU)  id, roaming, charging, assigned S-CSCF
 *     ├── private identities (IMPI)  K, OP or OPc, AMF, SQN, auth schemes, digest HA1
 *     ├── public identities (IMPU)   sip:/tel:, barring, implicit registration set, profile, state
 *     └── service profiles           name -> iFC list (+ subscribed media profile)
 *
 * Every IMPI of a subscription may register every IMPU of it (TS 23.228 §4.3.3.4 allows any
 * association; a subscription is the unit of association here). An IMPU in another subscription
 * "doesn't match" (Cx 5002).
 */
#ifndef HSS_SUBSCRIBER_H
#define HSS_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "ims_userdata.h"

/* Authentication schemes an IMPI may use (bits). */
enum {
    HSS_AUTH_AKA = 1u << 0,        /* "Digest-AKAv1-MD5" (IMS AKA)         */
    HSS_AUTH_DIGEST = 1u << 1,     /* "SIP Digest" (RFC 2617 via RFC 4740)  */
};

/* Registration state of a public identity (TS 29.228 §6.1.2 / Annex B). */
typedef enum {
    HSS_NOT_REGISTERED = 0,
    HSS_REGISTERED = 1,
    HSS_UNREGISTERED = 2,          /* S-CSCF keeps the profile for unregistered services */
} hss_reg_state;

/* Names of HSS_AUTH_* ("aka", "digest") and of hss_reg_state ("registered", "unregistered",
 * "not_registered") in the provisioning API, for its parsers and printers (hss_subscriber.c). */
extern const ims_enum_name hss_auth_scheme_names[];
extern const ims_enum_name hss_reg_state_names[];

typedef struct {
    char *identity;                /* IMPI, e.g. alice@ims.lab */
    unsigned auth_schemes;         /* HSS_AUTH_* bits; at least one */
    unsigned default_scheme;       /* one HSS_AUTH_* bit, used when the S-CSCF asks "Unknown" */
    bool has_aka;                  /* k/op/amf valid */
    uint8_t k[16];
    uint8_t op[16];                /* OP, or OPc when op_is_opc */
    bool op_is_opc;
    uint8_t amf[2];
    uint64_t sqn;                  /* highest SQN issued (48 bits: SEQ << 5 | IND) */
    char *digest_realm;            /* realm of the HA1; default: domain part of the IMPI */
    char ha1[33];                  /* hex MD5(impi:realm:password), "" when no digest credentials */
} hss_impi;

typedef struct {
    char *identity;                /* sip:alice@ims.lab, tel:+15551234 */
    bool barred;
    int irs;                       /* implicit registration set number inside the subscription */
    char *service_profile;         /* name of a hss_service_profile of the same subscription */
    char *display_name;            /* or NULL */
    int identity_type;             /* IMS_IDENTITY_TYPE_* (0 public user identity) */
    bool can_register;             /* default true; false for PSIs (UAR then refuses them) */
    hss_reg_state reg_state;       /* volatile: written by SAR */
} hss_impu;

typedef struct {
    char *name;
    int subscribed_media_profile_id;   /* -1 = absent */
    ims_ifc *ifcs;
    size_t n_ifcs;
} hss_service_profile;

typedef struct {
    char *id;                      /* subscription name, unique, [A-Za-z0-9._@+-]{1,128} */
    hss_impi *impis;
    size_t n_impis;
    hss_impu *impus;
    size_t n_impus;
    hss_service_profile *profiles;
    size_t n_profiles;
    char **visited_networks;       /* roaming allowed into these networks; the home network is
                                      always allowed. Empty list = home only. */
    size_t n_visited_networks;
    char *ccf_primary, *ccf_secondary, *ecf_primary, *ecf_secondary;  /* charging, or NULL */
    /* volatile: written by SAR */
    char *scscf_name;              /* assigned S-CSCF SIP URI, NULL if none */
    char *scscf_host;              /* its Diameter Origin-Host (RTR/PPR go there) */
    char *scscf_realm;             /* its Diameter Origin-Realm */
} hss_subscriber;

void hss_subscriber_free(hss_subscriber *s);

/* Lookups inside one subscriber; NULL when absent. Case-sensitive on the user part,
 * case-insensitive on scheme and host ("sip:Alice@IMS.lab" != "sip:alice@ims.lab",
 * "SIP:alice@ims.LAB" == "sip:alice@ims.lab"). */
hss_impi *hss_subscriber_impi(const hss_subscriber *s, const char *impi);
hss_impu *hss_subscriber_impu(const hss_subscriber *s, const char *impu);
hss_service_profile *hss_subscriber_profile(const hss_subscriber *s, const char *name);

/* Canonical form of an identity, as the store keeps it (malloc'd, NULL on ENOMEM), from
 * common/ims_identity (the key every NF uses):
 * IMPU (sip:, sips:, tel:): scheme and host lower-cased, user part case-sensitive with escapes of
 * unreserved characters decoded (RFC 3261 §19.1.4), port kept, parameters and headers dropped;
 * tel: global numbers without visual separators (RFC 3966). Text that is not such a URI: as given.
 * IMPI (NAI user@realm, TS 23.003 §13.3): realm lower-cased, user part untouched. */
char *hss_impu_normalise(const char *impu);
char *hss_impi_normalise(const char *impi);
/* Identity comparison with the rules above: true when equal. */
bool hss_impu_equal(const char *a, const char *b);
bool hss_impi_equal(const char *a, const char *b);

/* Deep copy of one iFC (dst is overwritten). 0 / -1 (ENOMEM; dst then holds nothing). */
int hss_ifc_copy(ims_ifc *dst, const ims_ifc *src);
/* Frees ifcs[0..n-1] and the array. */
void hss_ifcs_free(ims_ifc *ifcs, size_t n);

/* The iFC list in the provisioning JSON format (the "ifc" array of a service profile). The store
 * keeps a profile's iFC list as this JSON text. `path` prefixes error messages
 * ("service_profiles[0].ifc"). from_json: 0 / -1 + err; *out is NULL/0 on error. */
int hss_ifcs_from_json(json_object *arr, const char *path, ims_ifc **out, size_t *n, char *err,
                       size_t errlen);
json_object *hss_ifcs_to_json(const ims_ifc *ifcs, size_t n);

/* Builds the Cx User-Data of `impu`'s implicit registration set (TS 29.228 §6.1.2, §6.6):
 * every IMPU with the same irs, grouped into one ServiceProfile per profile name, PrivateID = impi.
 * Returns 0 / -1. */
int hss_subscriber_userdata(const hss_subscriber *s, const char *impi, const char *impu,
                            ims_subscription *out);

/* JSON <-> model (the provisioning API format, see hss/openapi.yaml).
 * from_json validates everything and returns -1 with a message naming the field path,
 * e.g. "impis[0].k: must be 32 hex digits". Secrets (k, op, opc, password, ha1) are accepted on
 * input; to_json never prints them (it prints "aka": true/false and "digest": true/false). */
int hss_subscriber_from_json(json_object *obj, hss_subscriber *out, char *err, size_t errlen);
json_object *hss_subscriber_to_json(const hss_subscriber *s);

#endif
