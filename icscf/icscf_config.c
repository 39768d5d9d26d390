/*
 * icscf_config: the I-CSCF YAML schema (icscf.yaml). Reference: `icscf --config-reference`.
 *
 * Capability numbers of icscf.scscfs[].capabilities are the operator's own values, the ones the
 * HSS sends in Mandatory-Capability / Optional-Capability (TS 29.228 §6.7, TS 29.229 §6.3.5-6).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_cfg_check.h"

#include "icscf_context.h"

static const ims_cfg_field icscf_scscf_fields[] = {
    { .key = "name", .type = IMS_CFG_STR, .offset = offsetof(icscf_scscf_cfg, name), .check = ims_cfg_check_sip_uri, .required = true,
      .help = "SIP URI of the S-CSCF, as the HSS names it (Server-Name), e.g. sip:scscf.ims.lab:6060" },
    { .key = "capabilities", .type = IMS_CFG_STRLIST, .offset = offsetof(icscf_scscf_cfg, capabilities),
      .help = "capability numbers this S-CSCF supports (matched against Mandatory/Optional-Capability)" },
    { .key = NULL },
};

static const char *const icscf_selection_names[] = { "order", "hash", NULL };

static const ims_cfg_field icscf_fields[] = {
    { .key = "home_domains", .type = IMS_CFG_STRLIST, .offset = offsetof(icscf_cfg, home_domains), .check = ims_cfg_check_domain,
      .help = "domains served: REGISTERs to others get 403, other requests to them 404 (never proxied); empty = any" },
    { .key = "hss_realm", .type = IMS_CFG_STR, .offset = offsetof(icscf_cfg, hss_realm), .check = ims_cfg_check_domain,
      .help = "Destination-Realm of UAR/LIR (default: diameter.realm)" },
    { .key = "hss_host", .type = IMS_CFG_STR, .offset = offsetof(icscf_cfg, hss_host), .check = ims_cfg_check_domain,
      .help = "Destination-Host of UAR/LIR (default: none, routed by realm)" },
    { .key = "scscfs", .type = IMS_CFG_LIST, .offset = offsetof(icscf_cfg, scscfs),
      .sub = icscf_scscf_fields, .rec_size = sizeof(icscf_scscf_cfg),
      .help = "S-CSCFs the I-CSCF may select from Server-Capabilities, in order of preference" },
    { .key = "user_unknown_code", .type = IMS_CFG_INT, .offset = offsetof(icscf_cfg, user_unknown_code),
      .def = "403", .min = 400, .max = 699,
      .help = "SIP status for a REGISTER the HSS answers DIAMETER_ERROR_USER_UNKNOWN (TS 24.229: 403)" },
    { .key = "scscf_timeout_ms", .type = IMS_CFG_INT, .offset = offsetof(icscf_cfg, scscf_timeout_ms),
      .def = "5000", .min = 0, .max = 60000,
      .help = "no final response to a REGISTER from the S-CSCF within this: select another one (0 = SIP timer only)" },
    { .key = "selection", .type = IMS_CFG_ENUM, .offset = offsetof(icscf_cfg, selection), .def = "order",
      .enum_names = icscf_selection_names,
      .help = "first registration, among equally suitable S-CSCFs (same capabilities, named by the HSS or not): "
              "order: the first in icscf.scscfs; hash: spread users by a rendezvous hash of the public "
              "identity (the same S-CSCF for a user at every I-CSCF; only the users of an S-CSCF that is "
              "added or removed move)" },
    { .key = "lir", .type = IMS_CFG_BOOL, .offset = offsetof(icscf_cfg, lir), .def = "true",
      .help = "route initial requests to home-domain users to their S-CSCF with LIR (false: to the first "
              "usable S-CSCF of icscf.scscfs, without asking the HSS)" },
    { .key = "register_from_untrusted", .type = IMS_CFG_BOOL, .offset = offsetof(icscf_cfg, register_from_untrusted),
      .def = "false",
      .help = "accept REGISTER from sources outside the trust domain (visited networks' P-CSCFs not listed in "
              "trust.peers/trust.cidrs); their P-Asserted-Identity, P-Charging-* ... are removed first. "
              "false: 403 (list roaming partners' P-CSCFs in trust instead)" },
    { .key = NULL },
};

const ims_cfg_field icscf_config_fields[] = {
    { .key = "log", .type = IMS_CFG_SECTION, .offset = offsetof(icscf_config, log), .sub = ims_log_cfg_fields },
    { .key = "http", .type = IMS_CFG_SECTION, .offset = offsetof(icscf_config, http), .sub = ims_http_cfg_fields },
    { .key = "diameter", .type = IMS_CFG_SECTION, .offset = offsetof(icscf_config, diameter),
      .sub = ims_diameter_cfg_fields },
    { .key = "sip", .type = IMS_CFG_SECTION, .offset = offsetof(icscf_config, sip), .sub = ims_sip_cfg_fields },
    { .key = "trust", .type = IMS_CFG_SECTION, .offset = offsetof(icscf_config, trust), .sub = ims_trust_cfg_fields },
    { .key = "icscf", .type = IMS_CFG_SECTION, .offset = offsetof(icscf_config, icscf), .sub = icscf_fields },
    { .key = NULL },
};

static int check_scscf(const icscf_scscf_cfg *s, size_t i, char *err, size_t errlen)
{
    if (strlen(s->name) >= ICSCF_URI_MAX) {
        snprintf(err, errlen, "icscf.scscfs[%zu].name: longer than %d characters", i, ICSCF_URI_MAX - 1);
        return -1;
    }
    if (s->capabilities.count > ICSCF_MAX_CAPS) {
        snprintf(err, errlen, "icscf.scscfs[%zu].capabilities: more than %d", i, ICSCF_MAX_CAPS);
        return -1;
    }
    for (size_t k = 0; k < s->capabilities.count; k++) {
        const char *c = s->capabilities.items[k];
        char *end = NULL;
        errno = 0;
        unsigned long v = c ? strtoul(c, &end, 10) : 0;
        if (!c || !*c || *c == '-' || errno || !end || *end || v > 0xffffffffUL) {
            snprintf(err, errlen, "icscf.scscfs[%zu].capabilities[%zu]: '%s' is not a capability number", i, k,
                     c ? c : "");
            return -1;
        }
    }
    return 0;
}

int icscf_config_check(const icscf_config *cfg, char *err, size_t errlen)
{
    const icscf_scscf_cfg *s = cfg->icscf.scscfs.items;
    for (size_t i = 0; i < cfg->icscf.scscfs.count; i++)
        if (check_scscf(&s[i], i, err, errlen))
            return -1;
    return 0;
}
