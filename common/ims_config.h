/*
 * ims_config: YAML configuration (libyaml) read through declarative schemas.
 *
 * Each NF has one YAML file with a top-level key named after the NF ("hss:", "scscf:", ...)
 * plus the shared sections "log:", "http:" and "diameter:". A schema is a table of
 * ims_cfg_field rows; the loader fills a C struct through the offsets in the table.
 *
 * Rules (docs/design.md "Configuration"):
 *  - defaults come from the table (string form, parsed like YAML values);
 *  - unknown keys, wrong types, out-of-range numbers, bad enum values and missing required
 *    keys are errors naming file, line and key:  "hss.yaml:12: diameter.port: 70000 is out of range 1..65535";
 *  - every scalar (and string list) can be overridden by an environment variable
 *    IMS_<NF>_<PATH>: the path's parts joined by '_', upper-cased, with '-' -> '_', and the NF's own
 *    section name dropped:  hss.database -> IMS_HSS_DATABASE,  diameter.port -> IMS_HSS_DIAMETER_PORT.
 *    String lists from the environment are comma-separated. Lists of records cannot be overridden.
 *    An env error names the variable instead of the file line. An empty variable counts as unset.
 *  - "key:", "key: ~" and "key: null" (unquoted) leave the field at its default, as if absent.
 *  - `required` applies to strings and lists (absent / empty); numbers, booleans and enums
 *    always hold a value, so give them a default instead.
 *  - a program that fails to load its config prints the message and exits with code 2
 *    (ims_cfg_load_or_exit does that).
 */
#ifndef IMS_CONFIG_H
#define IMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    IMS_CFG_STR,      /* char *            (strdup'd; NULL when absent and no default)   */
    IMS_CFG_INT,      /* long              (range min..max)                                */
    IMS_CFG_BOOL,     /* bool              (true/false/yes/no/on/off)                      */
    IMS_CFG_ENUM,     /* int               (index into enum_names)                         */
    IMS_CFG_STRLIST,  /* ims_cfg_strlist   (YAML sequence of scalars)                      */
    IMS_CFG_SECTION,  /* nested struct at offset, fields in sub                            */
    IMS_CFG_LIST,     /* ims_cfg_list      (YAML sequence of mappings, each a sub record)  */
} ims_cfg_type;

typedef struct {
    char **items;
    size_t count;
} ims_cfg_strlist;

typedef struct {
    void *items;      /* array of `count` records of rec_size bytes (calloc'd) */
    size_t count;
} ims_cfg_list;

typedef struct ims_cfg_field {
    const char *key;
    ims_cfg_type type;
    size_t offset;                       /* offsetof(struct, member)                      */
    const char *def;                     /* default in YAML scalar form, or NULL          */
    long min, max;                       /* IMS_CFG_INT range (both 0: any value)         */
    bool required;
    const char *const *enum_names;       /* IMS_CFG_ENUM: NULL-terminated                 */
    const struct ims_cfg_field *sub;     /* SECTION / LIST: fields, ended by {NULL}       */
    size_t rec_size;                     /* LIST: sizeof(record)                          */
    const char *help;                    /* one line, for documentation                   */
    /* Optional value check for STR fields and each STRLIST item (file, environment, default):
     * 0 when the value is acceptable, else -1 with the reason in why ("not a CIDR ..."); the
     * loader then reports it as "file:line: key: 'value': why". */
    int (*check)(const char *value, char *why, size_t whylen);
} ims_cfg_field;

/* ---------- shared sections ---------- */

typedef struct {
    char *level;                /* error | warn | info | debug (default info) */
} ims_log_cfg;

typedef struct {
    bool enabled;               /* default true */
    char *listen;               /* default 127.0.0.1 */
    long port;                  /* default depends on NF; 0 = ephemeral */
} ims_http_cfg;

typedef struct {
    char *identity;             /* Origin-Host, e.g. scscf.ims.lab */
    char *address;              /* connect to */
    long port;                  /* default 3868 */
} ims_diameter_peer_cfg;

typedef struct {
    char *identity;             /* required: our Origin-Host */
    char *realm;                /* required: our Origin-Realm */
    char *listen;               /* address to listen on; default 127.0.0.1 */
    long port;                  /* default 3868 */
    long tc_timer;              /* reconnect timer, seconds; default 3 */
    long request_timeout_ms;    /* answer wait for our requests; default 3000 */
    char *tls_cert;             /* TLS is off unless cert+key are given (then SecPort = port+1) */
    char *tls_key;
    char *tls_ca;
    bool accept_unknown_peers;  /* accept CER from peers not listed (labs); default true */
    ims_cfg_list peers;         /* of ims_diameter_peer_cfg */
    char *conf_dir;             /* where the generated freeDiameter .conf goes; default /tmp */
} ims_diameter_cfg;

extern const ims_cfg_field ims_log_cfg_fields[];
extern const ims_cfg_field ims_http_cfg_fields[];       /* port default 9090 */
extern const ims_cfg_field ims_diameter_cfg_fields[];
extern const ims_cfg_field ims_diameter_peer_cfg_fields[];

/*
 * Load `path` into `out` using the top-level `schema` (fields ended by {NULL}).
 * `nf` is the NF name for env overrides ("hss" -> IMS_HSS_...). path may be NULL: defaults + env only.
 * `out` must be zero-initialised (or emptied by ims_cfg_free).
 * Returns 0, or -1 with a message in err; on -1 everything already allocated in `out` is freed.
 */
int ims_cfg_load(const char *path, const char *nf, const ims_cfg_field *schema, void *out,
                 char *err, size_t errlen);

/* ims_cfg_load; on error prints "<prog>: configuration error: <msg>" to stderr and exit(2). */
void ims_cfg_load_or_exit(const char *path, const char *nf, const ims_cfg_field *schema, void *out);

/* Frees every string / list the loader allocated in `out`. */
void ims_cfg_free(const ims_cfg_field *schema, void *out);

/* Writes a commented reference of the schema (key, type, default, env var, help) to a FILE*.
 * Used to generate the README configuration reference. */
void ims_cfg_print_reference(const char *nf, const ims_cfg_field *schema, FILE *f);

#endif
