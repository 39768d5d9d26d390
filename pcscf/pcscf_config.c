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
#include "ims_secagree.h"

#include "pcscf_context.h"

const char *const pcscf_sec_agree_names[] = { "off", "optional", "required", "false", "true", NULL };

int pcscf_sec_agree_mode(const pcscf_cfg *cfg)
{
    switch (cfg->sec_agree) {
    case PCSCF_SEC_AGREE_FALSE: return PCSCF_SEC_AGREE_OFF;
    case PCSCF_SEC_AGREE_TRUE: return PCSCF_SEC_AGREE_OPTIONAL;
    default: return cfg->sec_agree;
    }
}

static int check_alg(const char *v, char *err, size_t errlen)
{
    if (ims_sa_alg_by_name(v) != IMS_SA_ALG_UNKNOWN)
        return 0;
    snprintf(err, errlen, "'%s' is not hmac-sha-1-96 or hmac-md5-96", v);
    return -1;
}

static int check_ealg(const char *v, char *err, size_t errlen)
{
    if (ims_sa_ealg_by_name(v) != IMS_SA_EALG_UNKNOWN)
        return 0;
    snprintf(err, errlen, "'%s' is not aes-cbc, des-ede3-cbc or null", v);
    return -1;
}

static const ims_cfg_field pcscf_fields[] = {
    { .key = "icscf", .type = IMS_CFG_STR, .offset = offsetof(pcscf_cfg, icscf), .check = ims_cfg_check_sip_uri, .required = true,
      .help = "SIP URI of the home network entry point (I-CSCF) REGISTERs go to, e.g. sip:icscf.ims.lab:5062" },
    { .key = "home_domains", .type = IMS_CFG_STRLIST, .offset = offsetof(pcscf_cfg, home_domains), .check = ims_cfg_check_domain,
      .help = "REGISTER Request-URI domains served (others get 403); empty = any" },
    { .key = "visited_network_id", .type = IMS_CFG_STR, .offset = offsetof(pcscf_cfg, visited_network_id), .check = ims_cfg_check_line,
      .def = "ims.lab", .help = "P-Visited-Network-ID added to REGISTER (RFC 7315)" },
    { .key = "sec_agree", .type = IMS_CFG_ENUM, .offset = offsetof(pcscf_cfg, sec_agree), .def = "off",
      .enum_names = pcscf_sec_agree_names,
      .help = "off: no security agreement, signalling unprotected; optional: a UE offering ipsec-3gpp "
              "(TS 33.203) gets IPsec SAs, others register unprotected, one that requires sec-agree with "
              "nothing acceptable gets 494; required: every REGISTER must offer an acceptable ipsec-3gpp "
              "mechanism, else 494. false/true: old spellings of off/optional. Needs CAP_NET_ADMIN" },
    { .key = "sa_alg", .type = IMS_CFG_STRLIST, .offset = offsetof(pcscf_cfg, sa_alg),
      .def = "hmac-sha-1-96,hmac-md5-96", .check = check_alg,
      .help = "integrity algorithms accepted, best first: hmac-sha-1-96, hmac-md5-96" },
    { .key = "sa_ealg", .type = IMS_CFG_STRLIST, .offset = offsetof(pcscf_cfg, sa_ealg),
      .def = "aes-cbc,des-ede3-cbc,null", .check = check_ealg,
      .help = "encryption algorithms accepted, best first: aes-cbc, des-ede3-cbc, null" },
    { .key = "sa_port_c", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, sa_port_c), .def = "5100",
      .min = 1, .max = 65535, .help = "our protected client port (port-c of Security-Server; UDP and TCP)" },
    { .key = "sa_port_s", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, sa_port_s), .def = "5101",
      .min = 1, .max = 65535, .help = "our protected server port (port-s of Security-Server; UDP and TCP)" },
    { .key = "sa_spi_min", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, sa_spi_min), .def = "4096",
      .min = 256, .max = 4294967295L, .help = "lowest SPI we allocate (RFC 4303: 1-255 are reserved)" },
    { .key = "sa_spi_max", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, sa_spi_max), .def = "1048575",
      .min = 257, .max = 4294967295L, .help = "highest SPI we allocate (two per UE SA set)" },
    { .key = "sa_tag", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, sa_tag), .def = "3329",
      .min = 1, .max = 4294967295L, .help = "XFRM reqid of every SA and policy of this P-CSCF: start-up flushes "
                                             "these and nothing else; give each P-CSCF of a host its own" },
    { .key = "sa_temp_lifetime", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, sa_temp_lifetime),
      .def = "240", .min = 10, .max = 3600,
      .help = "seconds the temporary SAs set up with a 401 live unless the UE registers over them (TS 33.203 7.1)" },
    { .key = "sa_slack", .type = IMS_CFG_INT, .offset = offsetof(pcscf_cfg, sa_slack), .def = "30",
      .min = 0, .max = 3600, .help = "seconds the SAs outlive the registration's expiry" },
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
    { .key = "media", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_cfg, media), .sub = pcscf_media_cfg_fields },
    { .key = "key_file", .type = IMS_CFG_STR, .offset = offsetof(pcscf_cfg, key_file), .check = ims_cfg_check_line,
      .help = "file with this P-CSCF's secret (64 hex digits; created with a random one, mode 0600, when absent): "
              "the keys of the Record-Route dialog tokens and of its state-store records derive from it, so "
              "that a restart keeps calls in progress (BYE) and registrations. Unset: a random secret per "
              "process. Required with store.backend redis. Never put it in the store" },
    { .key = NULL },
};

const ims_cfg_field pcscf_config_fields[] = {
    { .key = "log", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, log), .sub = ims_log_cfg_fields },
    { .key = "http", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, http), .sub = ims_http_cfg_fields },
    { .key = "sip", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, sip), .sub = ims_sip_cfg_fields },
    { .key = "trust", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, trust), .sub = ims_trust_cfg_fields },
    { .key = "pcscf", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, pcscf), .sub = pcscf_fields },
    { .key = "store", .type = IMS_CFG_SECTION, .offset = offsetof(pcscf_config, store), .sub = ims_state_cfg_fields },
    { .key = NULL },
};

/* Every value is checked as it is loaded (ims_cfg_check); here what relates two values. */
int pcscf_config_check(const pcscf_config *cfg, char *err, size_t errlen)
{
    const pcscf_cfg *p = &cfg->pcscf;
    if (pcscf_media_config_check(&p->media, err, errlen))
        return -1;
    if (cfg->store.backend == IMS_STATE_REDIS && !(p->key_file && *p->key_file)) {
        /* the records are sealed with a key derived from it (pcscf_bindrecord.h) */
        snprintf(err, errlen, "pcscf.key_file is required with store.backend redis");
        return -1;
    }
    if (pcscf_sec_agree_mode(p) == PCSCF_SEC_AGREE_OFF)
        return 0;
    if (p->sa_spi_max - p->sa_spi_min < 2) {
        snprintf(err, errlen, "pcscf.sa_spi_min..sa_spi_max must hold at least two SPIs");
        return -1;
    }
    if (p->sa_port_c == p->sa_port_s || p->sa_port_c == cfg->sip.port || p->sa_port_s == cfg->sip.port) {
        snprintf(err, errlen, "pcscf.sa_port_c, sa_port_s and sip.port must differ");
        return -1;
    }
    return 0;
}
