/*
 * scscf_config: the S-CSCF YAML schema (scscf.yaml). Reference: `scscf --config-reference`.
 *
 * Derived defaults (applied in scscf_start, once the SIP agent knows its URI):
 *   scscf.name      sip:<sip.advertise>           (Server-Name in MAR/SAR, TS 29.229 §6.3.4)
 *   scscf.realm     diameter.realm                  (digest realm of AKA challenges)
 *   scscf.hss_realm diameter.realm                  (Destination-Realm of MAR/SAR)
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_cfg_check.h"

#include "scscf_context.h"

const char *const scscf_reauth_names[] = { "always", "when_needed", NULL };

static const ims_cfg_field scscf_fields[] = {
    { .key = "name", .type = IMS_CFG_STR, .offset = offsetof(scscf_cfg, name), .check = ims_cfg_check_sip_uri,
      .help = "our SIP URI, sent as Server-Name in MAR/SAR; default sip:<sip.advertise> (the listen address and port unless set)" },
    { .key = "realm", .type = IMS_CFG_STR, .offset = offsetof(scscf_cfg, realm), .check = ims_cfg_check_domain,
      .help = "home domain and digest realm of AKA challenges; default diameter.realm" },
    { .key = "hss_realm", .type = IMS_CFG_STR, .offset = offsetof(scscf_cfg, hss_realm), .check = ims_cfg_check_domain,
      .help = "Destination-Realm of Cx requests; default diameter.realm" },
    { .key = "hss_host", .type = IMS_CFG_STR, .offset = offsetof(scscf_cfg, hss_host), .check = ims_cfg_check_domain,
      .help = "Destination-Host of Cx requests (e.g. hss.ims.lab); default: routed by realm" },
    { .key = "min_expires", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, min_expires),
      .def = "60", .min = 1, .max = 86400, .help = "shortest registration accepted (shorter: 423 Interval Too Brief)" },
    { .key = "max_expires", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, max_expires),
      .def = "3600", .min = 1, .max = 604800, .help = "longer registrations are shortened to this" },
    { .key = "default_expires", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, default_expires),
      .def = "3600", .min = 1, .max = 604800,
      .help = "registration time when neither the Contact nor the Expires header gives one" },
    { .key = "auth_vectors", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, auth_vectors),
      .def = "1", .min = 1, .max = 16, .help = "SIP-Number-Auth-Items asked per MAR (spare AKA vectors are kept for later challenges)" },
    { .key = "nonce_lifetime", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, nonce_lifetime),
      .def = "60", .min = 5, .max = 3600, .help = "seconds a challenge (nonce) stays valid" },
    { .key = "reg_event_expires", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, reg_event_expires),
      .def = "3600", .min = 60, .max = 604800, .help = "longest reg event subscription granted (RFC 3680)" },
    { .key = "icscf", .type = IMS_CFG_STR, .offset = offsetof(scscf_cfg, icscf), .check = ims_cfg_check_sip_uri,
      .help = "I-CSCF SIP URI (e.g. sip:icscf.ims.lab:5062): originating requests to home users not served "
              "here go there for the location query (LIR); default: none (such requests get 404)" },
    { .key = "home_domains", .type = IMS_CFG_STRLIST, .offset = offsetof(scscf_cfg, home_domains), .check = ims_cfg_check_domain,
      .help = "domains of this network (Request-URI host decides home or other network); default [realm]" },
    { .key = "breakout", .type = IMS_CFG_STR, .offset = offsetof(scscf_cfg, breakout), .check = ims_cfg_check_sip_uri,
      .help = "SIP URI where originating requests to other domains go (e.g. a BGCF/IBCF); default: none (404)" },
    { .key = "as_timeout_ms", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, as_timeout_ms),
      .def = "3000", .min = 100, .max = 120000,
      .help = "ms to wait for an application server's first response before its DefaultHandling applies" },
    { .key = "timer_c_ms", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, timer_c_ms),
      .def = "180000", .min = 1000, .max = 600000,
      .help = "Timer C (RFC 3261 §16.8): a forked INVITE branch with no final response this long is CANCELled" },
    { .key = "auth_max_failures", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, auth_max_failures),
      .def = "5", .min = 0, .max = 10000,
      .help = "failed authentications (wrong password/RES) of one private identity within auth_failure_window "
              "that lock it: its REGISTERs then get 403 without a challenge or MAR for auth_lockout seconds; 0: off" },
    { .key = "auth_failure_window", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, auth_failure_window),
      .def = "60", .min = 1, .max = 86400, .help = "seconds over which auth_max_failures are counted" },
    { .key = "auth_lockout", .type = IMS_CFG_INT, .offset = offsetof(scscf_cfg, auth_lockout),
      .def = "60", .min = 1, .max = 86400, .help = "seconds a private identity stays locked" },
    { .key = "reauth_protected", .type = IMS_CFG_ENUM, .offset = offsetof(scscf_cfg, reauth_protected),
      .def = "always", .enum_names = scscf_reauth_names,
      .help = "always: every REGISTER is challenged; when_needed: a re-/de-REGISTER of a registered AKA user "
              "that the P-CSCF marks integrity-protected=\"yes\" (it came over the UE's IPsec SAs) is accepted "
              "without a new challenge (TS 24.229 §5.4.1.2.1)" },
    { .key = NULL },
};

const ims_cfg_field scscf_config_fields[] = {
    { .key = "log", .type = IMS_CFG_SECTION, .offset = offsetof(scscf_config, log), .sub = ims_log_cfg_fields },
    { .key = "http", .type = IMS_CFG_SECTION, .offset = offsetof(scscf_config, http), .sub = ims_http_cfg_fields },
    { .key = "diameter", .type = IMS_CFG_SECTION, .offset = offsetof(scscf_config, diameter),
      .sub = ims_diameter_cfg_fields },
    { .key = "sip", .type = IMS_CFG_SECTION, .offset = offsetof(scscf_config, sip), .sub = ims_sip_cfg_fields },
    { .key = "trust", .type = IMS_CFG_SECTION, .offset = offsetof(scscf_config, trust), .sub = ims_trust_cfg_fields },
    { .key = "store", .type = IMS_CFG_SECTION, .offset = offsetof(scscf_config, store), .sub = ims_state_cfg_fields },
    { .key = "scscf", .type = IMS_CFG_SECTION, .offset = offsetof(scscf_config, scscf), .sub = scscf_fields },
    { .key = NULL },
};

int scscf_config_check(const scscf_config *cfg, char *err, size_t errlen)
{
    const scscf_cfg *c = &cfg->scscf;
    if (c->min_expires > c->max_expires) {
        snprintf(err, errlen, "scscf.min_expires (%ld) is above scscf.max_expires (%ld)", c->min_expires,
                 c->max_expires);
        return -1;
    }
    return 0;
}
