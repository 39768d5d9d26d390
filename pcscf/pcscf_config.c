/*
 * pcscf_config: the P-CSCF YAML schema (pcscf.yaml). Reference: `pcscf --config-reference`.
 *
 * There is no diameter: section: Rx (TS 29.214) towards a PCRF is not implemented.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_cfg_check.h"

#include "pcscf_context.h"

static const ims_cfg_field pcscf_fields[] = {
    { .key = "icscf", .type = IMS_CFG_STR, .offset = offsetof(pcscf_cfg, icscf), .check = ims_cfg_check_sip_uri, .required = true,
      .help = "SIP URI of the home network entry point (I-CSCF) REGISTERs go to, e.g. sip:icscf.ims.lab:5062" },
    { .key = "home_domains", .type = IMS_CFG_STRLIST, .offset = offsetof(pcscf_cfg, home_domains), .check = ims_cfg_check_domain,
      .help = "REGISTER Request-URI domains served (others get 403); empty = any" },
    { .key = "visited_network_id", .type = IMS_CFG_STR, .offset = offsetof(pcscf_cfg, visited_network_id), .check = ims_cfg_check_line,
      .def = "ims.lab", .help = "P-Visited-Network-ID added to REGISTER (RFC 7315)" },
    { .key = "sec_agree", .type = IMS_CFG_BOOL, .offset = offsetof(pcscf_cfg, sec_agree), .def = "false",
      .help = "true: a UE that requires sec-agree (RFC 3329) and offers no mechanism we support gets 494; "
              "false: sec-agree is removed and registration proceeds unprotected (no IPsec here)" },
    { .key = "subscribe_reg_event", .type = IMS_CFG_BOOL, .offset = offsetof(pcscf_cfg, subscribe_reg_event),
      .def = "true", .help = "SUBSCRIBE to the reg event package at the S-CSCF after a registration (TS 24.229 5.2.3)" },
    { .key = "auth_max_failures", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, auth_max_failures),
      .def = "20", .min = 0, .max = 1000000,
      .help = "failed REGISTERs (answered 403) from one UE IP address "
              "within auth_failure_window that block it: we answer its REGISTERs with 403 for auth_lockout "
              "seconds; 0: off (set 0, or high, when many UEs share one address, e.g. load tests or a NAT)" },
    { .key = "auth_failure_window", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, auth_failure_window),
      .def = "60", .min = 1, .max = 86400, .help = "seconds over which auth_max_failures are counted" },
    { .key = "auth_lockout", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, auth_lockout),
      .def = "60", .min = 1, .max = 86400, .help = "seconds a blocked UE address stays blocked" },
    { .key = NULL },
};

const ims_cfg_field pcscf_config_fields[] = {
    { .key = "log", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, log), .sub = ims_log_cfg_fields },
    { .key = "http", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, http), .sub = ims_http_cfg_fields },
    { .key = "sip", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, sip), .sub = ims_sip_cfg_fields },
    { .key = "trust", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, trust), .sub = ims_trust_cfg_fields },
    { .key = "pcscf", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, pcscf), .sub = pcscf_fields },
    { .key = NULL },
};

/* Every value is checked as it is loaded (ims_cfg_check); nothing relates two values yet. */
int pcscf_config_check(const pcscf_config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    return 0;
}
