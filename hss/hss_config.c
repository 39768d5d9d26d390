/*
 * hss_config: the HSS YAML schema (hss.yaml). Reference: README "Configuration".
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "hss_context.h"

static const char *const backend_names[] = {"sqlite", "postgresql", NULL};

static const ims_cfg_field store_fields[] = {
    { .key = "backend", .type = IMS_CFG_ENUM, .offset = offsetof(hss_store_cfg, backend),
      .def = "sqlite", .enum_names = backend_names,
      .help = "subscriber database: sqlite (one HSS process) or postgresql (several may share it)" },
    { .key = "path", .type = IMS_CFG_STR, .offset = offsetof(hss_store_cfg, path),
      .help = "sqlite: database file (created if missing); default hss.database" },
    { .key = "conninfo", .type = IMS_CFG_STR, .offset = offsetof(hss_store_cfg, conninfo),
      .help = "postgresql: libpq connection string \"host=... port=... dbname=... user=...\" or "
              "postgresql:// URI (password better in ~/.pgpass or PGPASSWORD)" },
    { .key = NULL },
};

static const ims_cfg_field hss_fields[] = {
    { .key = "database", .type = IMS_CFG_STR, .offset = offsetof(hss_cfg, database),
      .def = "/var/lib/ims/hss.db", .help = "SQLite database file (created if missing); "
      "the same as store.path" },
    { .key = "store", .type = IMS_CFG_SECTION, .offset = offsetof(hss_cfg, store), .sub = store_fields },
    { .key = "import", .type = IMS_CFG_STR, .offset = offsetof(hss_cfg, import),
      .help = "YAML or JSON subscribers file imported (created or replaced) at every start" },
    { .key = "scscf_names", .type = IMS_CFG_STRLIST, .offset = offsetof(hss_cfg, scscf_names),
      .help = "S-CSCF SIP URIs offered to the I-CSCF in Server-Capabilities on first registration" },
    { .key = "mandatory_capabilities", .type = IMS_CFG_STRLIST,
      .offset = offsetof(hss_cfg, mandatory_capabilities),
      .help = "Mandatory-Capability numbers sent in Server-Capabilities" },
    { .key = "optional_capabilities", .type = IMS_CFG_STRLIST,
      .offset = offsetof(hss_cfg, optional_capabilities),
      .help = "Optional-Capability numbers sent in Server-Capabilities" },
    { .key = "max_auth_items", .type = IMS_CFG_INT, .offset = offsetof(hss_cfg, max_auth_items),
      .def = "5", .min = 1, .max = 32, .help = "most AKA vectors returned by one MAR" },
    { .key = "digest_qop", .type = IMS_CFG_STR, .offset = offsetof(hss_cfg, digest_qop),
      .def = "auth", .help = "Digest-QoP sent with SIP Digest credentials" },
    { .key = NULL },
};

const ims_cfg_field hss_config_fields[] = {
    { .key = "log", .type = IMS_CFG_SECTION, .offset = offsetof(hss_config, log), .sub = ims_log_cfg_fields },
    { .key = "http", .type = IMS_CFG_SECTION, .offset = offsetof(hss_config, http), .sub = ims_http_cfg_fields },
    { .key = "diameter", .type = IMS_CFG_SECTION, .offset = offsetof(hss_config, diameter),
      .sub = ims_diameter_cfg_fields },
    { .key = "hss", .type = IMS_CFG_SECTION, .offset = offsetof(hss_config, hss), .sub = hss_fields },
    { .key = NULL },
};

static int parse_caps(const ims_cfg_strlist *list, const char *key, unsigned **out, size_t *n,
                      char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!list->count)
        return 0;
    *out = calloc(list->count, sizeof(unsigned));
    if (!*out)
        return -1;
    for (size_t i = 0; i < list->count; i++) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(list->items[i], &end, 10);
        if (errno || !end || *end || end == list->items[i] || v > 0xffffffffUL) {
            snprintf(err, errlen, "hss.%s[%zu]: '%s' is not a capability number", key, i, list->items[i]);
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = (unsigned)v;
    }
    *n = list->count;
    return 0;
}

hss_store *hss_context_open_store(const hss_cfg *cfg, const char **name, char *err, size_t errlen)
{
    if (cfg->store.backend == HSS_STORE_POSTGRESQL) {
        *name = "postgresql";
        if (!cfg->store.conninfo) {
            snprintf(err, errlen, "hss.store.conninfo: required with backend postgresql");
            return NULL;
        }
        return hss_store_open_pg(cfg->store.conninfo, err, errlen);
    }
    *name = cfg->store.path ? cfg->store.path : cfg->database;
    return hss_store_open(*name, err, errlen);
}

int hss_context_parse_capabilities(hss_context *ctx, char *err, size_t errlen)
{
    if (parse_caps(&ctx->cfg.hss.mandatory_capabilities, "mandatory_capabilities",
                   &ctx->mandatory_caps, &ctx->n_mandatory_caps, err, errlen))
        return -1;
    return parse_caps(&ctx->cfg.hss.optional_capabilities, "optional_capabilities",
                      &ctx->optional_caps, &ctx->n_optional_caps, err, errlen);
}
