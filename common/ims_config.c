/*
 * ims_config: YAML configuration through declarative schemas. See ims_config.h for the rules.
 *
 * Order of application: schema defaults, then the YAML file (libyaml document API, which keeps
 * the line of every node for error messages), then IMS_<NF>_<PATH> environment variables, then
 * the required-key check. The first problem stops the load with one message naming where it is.
 */
#include "ims_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "ims_log.h"

extern char *program_invocation_short_name;

typedef struct {
    const char *file;
    const char *nf;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
} load_ctx;

static int fail(load_ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(load_ctx *c, int line, const char *path, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file ? c->file : "-", line, path, msg);
    else
        snprintf(c->err, c->errlen, "%s: %s", path, msg);
    return -1;
}

static void *field_ptr(void *base, const ims_cfg_field *f) { return (char *)base + f->offset; }

static void join_path(char *out, size_t len, const char *prefix, const char *key)
{
    if (prefix && *prefix)
        snprintf(out, len, "%s.%s", prefix, key);
    else
        snprintf(out, len, "%s", key);
}

/* ---------- scalar conversion ---------- */

static int parse_bool(const char *v, bool *out)
{
    static const char *yes[] = { "true", "yes", "on", "1" }, *no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(v, no[i]) == 0) { *out = false; return 0; }
    }
    return -1;
}

/* Sets one scalar field from text. `where_line` > 0: a YAML line; else `env` names the variable. */
static int set_scalar(load_ctx *c, const ims_cfg_field *f, void *base, const char *v, const char *path,
                      int line, const char *env)
{
    char where[256];
    if (env)
        snprintf(where, sizeof(where), "%s (%s)", env, path);
    else
        snprintf(where, sizeof(where), "%s", path);
    switch (f->type) {
    case IMS_CFG_STR: {
        if (f->enum_names) {   /* a string restricted to names (log.level) */
            int i = 0;
            while (f->enum_names[i] && strcasecmp(v, f->enum_names[i]) != 0)
                i++;
            if (!f->enum_names[i])
                return fail(c, line, where, "'%s' is not one of: %s", v, f->help ? f->help : "the allowed values");
        }
        char **p = field_ptr(base, f), *copy = strdup(v);
        if (!copy)
            return fail(c, line, where, "out of memory");
        free(*p);
        *p = copy;
        return 0;
    }
    case IMS_CFG_INT: {
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 0);
        if (errno || !*v || *end)
            return fail(c, line, where, "'%s' is not an integer", v);
        if ((f->min || f->max) && (n < f->min || n > f->max))
            return fail(c, line, where, "%ld is out of range %ld..%ld", n, f->min, f->max);
        *(long *)field_ptr(base, f) = n;
        return 0;
    }
    case IMS_CFG_BOOL:
        if (parse_bool(v, field_ptr(base, f)))
            return fail(c, line, where, "'%s' is not a boolean (true/false)", v);
        return 0;
    case IMS_CFG_ENUM: {
        char allowed[256] = "";
        for (int i = 0; f->enum_names && f->enum_names[i]; i++) {
            if (strcasecmp(v, f->enum_names[i]) == 0) {
                *(int *)field_ptr(base, f) = i;
                return 0;
            }
            size_t used = strlen(allowed);
            snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "", f->enum_names[i]);
        }
        return fail(c, line, where, "'%s' is not one of: %s", v, allowed);
    }
    default:
        return fail(c, line, where, "expected a %s, got a scalar",
                    f->type == IMS_CFG_STRLIST ? "list" : "mapping");
    }
}

static void strlist_free(ims_cfg_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int strlist_push(ims_cfg_strlist *l, const char *v)
{
    char **n = realloc(l->items, (l->count + 1) * sizeof(char *));
    if (!n)
        return -1;
    l->items = n;
    if (!(l->items[l->count] = strdup(v)))
        return -1;
    l->count++;
    return 0;
}

/* ---------- defaults ---------- */

static int apply_defaults(load_ctx *c, const ims_cfg_field *fields, void *base, const char *prefix)
{
    for (const ims_cfg_field *f = fields; f->key; f++) {
        char path[256];
        join_path(path, sizeof(path), prefix, f->key);
        if (f->type == IMS_CFG_SECTION) {
            if (apply_defaults(c, f->sub, field_ptr(base, f), path))
                return -1;
        } else if (f->type == IMS_CFG_STRLIST && f->def) {
            ims_cfg_strlist *l = field_ptr(base, f);
            char *copy = strdup(f->def), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                strlist_push(l, t);
            free(copy);
        } else if (f->def && f->type != IMS_CFG_LIST) {
            if (set_scalar(c, f, base, f->def, path, 0, NULL))
                return -1;
        }
    }
    return 0;
}

/* ---------- YAML ---------- */

static int node_line(yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static int load_mapping(load_ctx *c, const ims_cfg_field *fields, void *base, yaml_node_t *map,
                        const char *prefix);

static int load_field(load_ctx *c, const ims_cfg_field *f, void *base, yaml_node_t *val, const char *path)
{
    switch (f->type) {
    case IMS_CFG_SECTION:
        if (val->type == YAML_SCALAR_NODE && val->data.scalar.length == 0)
            return 0;   /* "section:" with nothing under it */
        if (val->type != YAML_MAPPING_NODE)
            return fail(c, node_line(val), path, "expected a mapping");
        return load_mapping(c, f->sub, field_ptr(base, f), val, path);
    case IMS_CFG_STRLIST: {
        if (val->type != YAML_SEQUENCE_NODE)
            return fail(c, node_line(val), path, "expected a list");
        ims_cfg_strlist *l = field_ptr(base, f);
        strlist_free(l);
        for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top; it++) {
            yaml_node_t *n = yaml_document_get_node(c->doc, *it);
            if (!n || n->type != YAML_SCALAR_NODE)
                return fail(c, n ? node_line(n) : 0, path, "list items must be scalars");
            if (strlist_push(l, (const char *)n->data.scalar.value))
                return fail(c, node_line(n), path, "out of memory");
        }
        return 0;
    }
    case IMS_CFG_LIST: {
        if (val->type != YAML_SEQUENCE_NODE)
            return fail(c, node_line(val), path, "expected a list of mappings");
        ims_cfg_list *l = field_ptr(base, f);
        size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
        if (n == 0)
            return 0;
        l->items = calloc(n, f->rec_size);
        if (!l->items)
            return fail(c, node_line(val), path, "out of memory");
        l->count = n;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *rec = yaml_document_get_node(c->doc, val->data.sequence.items.start[i]);
            char rpath[300];
            snprintf(rpath, sizeof(rpath), "%s[%zu]", path, i);
            void *rbase = (char *)l->items + i * f->rec_size;
            if (apply_defaults(c, f->sub, rbase, rpath))
                return -1;
            if (!rec || rec->type != YAML_MAPPING_NODE)
                return fail(c, rec ? node_line(rec) : 0, rpath, "expected a mapping");
            if (load_mapping(c, f->sub, rbase, rec, rpath))
                return -1;
        }
        return 0;
    }
    default:
        if (val->type != YAML_SCALAR_NODE)
            return fail(c, node_line(val), path, "expected a single value");
        return set_scalar(c, f, base, (const char *)val->data.scalar.value, path, node_line(val), NULL);
    }
}

static int load_mapping(load_ctx *c, const ims_cfg_field *fields, void *base, yaml_node_t *map,
                        const char *prefix)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE)
            return fail(c, k ? node_line(k) : 0, prefix && *prefix ? prefix : "(top)", "keys must be plain names");
        const char *key = (const char *)k->data.scalar.value;
        char path[256];
        join_path(path, sizeof(path), prefix, key);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE && strcmp((const char *)k2->data.scalar.value, key) == 0)
                return fail(c, node_line(k), path, "duplicate key (first at line %d)", node_line(k2));
        }
        const ims_cfg_field *f = fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (!f->key)
            return fail(c, node_line(k), path, "unknown key");
        if (load_field(c, f, base, v, path))
            return -1;
    }
    return 0;
}

static int load_file(load_ctx *c, const ims_cfg_field *schema, void *out)
{
    FILE *fp = fopen(c->file, "rb");
    if (!fp) {
        snprintf(c->err, c->errlen, "cannot read %s: %s", c->file, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(c->err, c->errlen, "%s:%zu: YAML syntax error: %s%s%s", c->file,
                 parser.problem_mark.line + 1, parser.problem ? parser.problem : "unknown problem",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(fp);
        return -1;
    }
    c->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {   /* an empty file means "all defaults" */
        if (root->type == YAML_MAPPING_NODE)
            rc = load_mapping(c, schema, out, root, "");
        else if (!(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
            rc = fail(c, node_line(root), "(top)", "the document must be a mapping of sections");
    }
    c->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

/* ---------- environment ---------- */

static void env_name(char *out, size_t len, const char *nf, const char *path)
{
    /* IMS_<NF>_<PATH>, the NF's own section dropped: hss.database -> IMS_HSS_DATABASE. */
    size_t nflen = strlen(nf);
    if (strncmp(path, nf, nflen) == 0 && path[nflen] == '.')
        path += nflen + 1;
    int n = snprintf(out, len, "IMS_%s_%s", nf, path);
    for (int i = 0; i < n && (size_t)i < len; i++) {
        char ch = out[i];
        out[i] = (ch == '.' || ch == '-') ? '_' : (char)((ch >= 'a' && ch <= 'z') ? ch - 32 : ch);
    }
}

static int apply_env(load_ctx *c, const ims_cfg_field *fields, void *base, const char *prefix)
{
    for (const ims_cfg_field *f = fields; f->key; f++) {
        char path[256], name[300];
        join_path(path, sizeof(path), prefix, f->key);
        if (f->type == IMS_CFG_SECTION) {
            if (apply_env(c, f->sub, field_ptr(base, f), path))
                return -1;
            continue;
        }
        if (f->type == IMS_CFG_LIST)
            continue;
        env_name(name, sizeof(name), c->nf, path);
        const char *v = getenv(name);
        if (!v)
            continue;
        if (f->type == IMS_CFG_STRLIST) {
            ims_cfg_strlist *l = field_ptr(base, f);
            strlist_free(l);
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                strlist_push(l, t);
            free(copy);
        } else if (set_scalar(c, f, base, v, path, 0, name)) {
            return -1;
        }
    }
    return 0;
}

/* ---------- required ---------- */

static int check_required(load_ctx *c, const ims_cfg_field *fields, void *base, const char *prefix)
{
    for (const ims_cfg_field *f = fields; f->key; f++) {
        char path[256];
        join_path(path, sizeof(path), prefix, f->key);
        if (f->type == IMS_CFG_SECTION) {
            if (check_required(c, f->sub, field_ptr(base, f), path))
                return -1;
        } else if (f->type == IMS_CFG_LIST) {
            ims_cfg_list *l = field_ptr(base, f);
            for (size_t i = 0; i < l->count; i++) {
                char rpath[300];
                snprintf(rpath, sizeof(rpath), "%s[%zu]", path, i);
                if (check_required(c, f->sub, (char *)l->items + i * f->rec_size, rpath))
                    return -1;
            }
        } else if (f->required && f->type == IMS_CFG_STR && !*(char **)field_ptr(base, f)) {
            char env[300];
            env_name(env, sizeof(env), c->nf, path);
            return fail(c, 0, path, "required (set it in the file%s%s)",
                        strchr(path, '[') ? "" : " or with ", strchr(path, '[') ? "" : env);
        }
    }
    return 0;
}

int ims_cfg_load(const char *path, const char *nf, const ims_cfg_field *schema, void *out,
                 char *err, size_t errlen)
{
    load_ctx c = { .file = path, .nf = nf, .err = err, .errlen = errlen };
    if (apply_defaults(&c, schema, out, ""))
        return -1;
    if (path && load_file(&c, schema, out))
        return -1;
    if (apply_env(&c, schema, out, ""))
        return -1;
    return check_required(&c, schema, out, "");
}

void ims_cfg_load_or_exit(const char *path, const char *nf, const ims_cfg_field *schema, void *out)
{
    char err[512];
    if (ims_cfg_load(path, nf, schema, out, err, sizeof(err)) == 0)
        return;
    fprintf(stderr, "%s: configuration error: %s\n", program_invocation_short_name, err);
    ims_cfg_free(schema, out);
    exit(2);
}

void ims_cfg_free(const ims_cfg_field *schema, void *out)
{
    for (const ims_cfg_field *f = schema; f->key; f++) {
        switch (f->type) {
        case IMS_CFG_STR: {
            char **p = field_ptr(out, f);
            free(*p);
            *p = NULL;
            break;
        }
        case IMS_CFG_STRLIST:
            strlist_free(field_ptr(out, f));
            break;
        case IMS_CFG_SECTION:
            ims_cfg_free(f->sub, field_ptr(out, f));
            break;
        case IMS_CFG_LIST: {
            ims_cfg_list *l = field_ptr(out, f);
            for (size_t i = 0; i < l->count; i++)
                ims_cfg_free(f->sub, (char *)l->items + i * f->rec_size);
            free(l->items);
            l->items = NULL;
            l->count = 0;
            break;
        }
        default:
            break;
        }
    }
}

/* ---------- reference ---------- */

static void print_fields(const char *nf, const ims_cfg_field *fields, const char *prefix, FILE *f)
{
    static const char *type_names[] = { "string", "integer", "boolean", "enum", "list of strings",
                                        "section", "list of records" };
    for (const ims_cfg_field *fl = fields; fl->key; fl++) {
        char path[256], env[300];
        join_path(path, sizeof(path), prefix, fl->key);
        if (fl->type == IMS_CFG_SECTION) {
            print_fields(nf, fl->sub, path, f);
            continue;
        }
        bool in_list = strchr(path, '[') != NULL;
        env_name(env, sizeof(env), nf, path);
        fprintf(f, "| `%s` | %s%s | %s%s%s | %s%s%s | %s |\n", path, type_names[fl->type],
                fl->required ? " (required)" : "", fl->def ? "`" : "", fl->def ? fl->def : "",
                fl->def ? "`" : "", (in_list || fl->type == IMS_CFG_LIST) ? "" : "`",
                (in_list || fl->type == IMS_CFG_LIST) ? "-" : env,
                (in_list || fl->type == IMS_CFG_LIST) ? "" : "`", fl->help ? fl->help : "");
        if (fl->type == IMS_CFG_LIST) {
            char sub[300];
            snprintf(sub, sizeof(sub), "%s[]", path);
            print_fields(nf, fl->sub, sub, f);
        }
    }
}

void ims_cfg_print_reference(const char *nf, const ims_cfg_field *schema, FILE *f)
{
    fprintf(f, "| key | type | default | environment | meaning |\n|---|---|---|---|---|\n");
    print_fields(nf, schema, "", f);
}

/* ---------- shared sections ---------- */

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

/* log.level is kept as a string (ims_log_level_from_name) but validated here as an enum would be. */
const ims_cfg_field ims_log_cfg_fields[] = {
    { .key = "level", .type = IMS_CFG_STR, .offset = offsetof(ims_log_cfg, level), .def = "info",
      .enum_names = log_levels, .help = "error, warn, info or debug" },
    { .key = NULL },
};

const ims_cfg_field ims_http_cfg_fields[] = {
    { .key = "enabled", .type = IMS_CFG_BOOL, .offset = offsetof(ims_http_cfg, enabled), .def = "true",
      .help = "serve /healthz, /readyz, /metrics (and the HSS API)" },
    { .key = "listen", .type = IMS_CFG_STR, .offset = offsetof(ims_http_cfg, listen), .def = "127.0.0.1",
      .help = "HTTP listen address (IPv4 or IPv6 literal)" },
    { .key = "port", .type = IMS_CFG_INT, .offset = offsetof(ims_http_cfg, port), .def = "9090",
      .min = 0, .max = 65535, .help = "HTTP port (0 = any free port)" },
    { .key = NULL },
};

const ims_cfg_field ims_diameter_peer_cfg_fields[] = {
    { .key = "identity", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_peer_cfg, identity),
      .required = true, .help = "the peer's Diameter identity (Origin-Host)" },
    { .key = "address", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_peer_cfg, address),
      .required = true, .help = "IP address to connect to" },
    { .key = "port", .type = IMS_CFG_INT, .offset = offsetof(ims_diameter_peer_cfg, port), .def = "3868",
      .min = 1, .max = 65535, .help = "TCP port" },
    { .key = NULL },
};

const ims_cfg_field ims_diameter_cfg_fields[] = {
    { .key = "identity", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_cfg, identity),
      .required = true, .help = "our Diameter identity (Origin-Host), e.g. hss.ims.lab" },
    { .key = "realm", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_cfg, realm),
      .required = true, .help = "our Diameter realm (Origin-Realm), e.g. ims.lab" },
    { .key = "listen", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_cfg, listen),
      .def = "127.0.0.1", .help = "address to listen on (freeDiameter binds all addresses for 127.0.0.1)" },
    { .key = "port", .type = IMS_CFG_INT, .offset = offsetof(ims_diameter_cfg, port), .def = "3868",
      .min = 1, .max = 65535, .help = "Diameter TCP port" },
    { .key = "tc_timer", .type = IMS_CFG_INT, .offset = offsetof(ims_diameter_cfg, tc_timer), .def = "3",
      .min = 1, .max = 300, .help = "seconds between reconnection attempts (RFC 6733 Tc)" },
    { .key = "request_timeout_ms", .type = IMS_CFG_INT, .offset = offsetof(ims_diameter_cfg, request_timeout_ms),
      .def = "3000", .min = 100, .max = 60000, .help = "how long to wait for an answer to our requests" },
    { .key = "tls_cert", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_cfg, tls_cert),
      .help = "PEM certificate; with tls_key enables TLS on port+1" },
    { .key = "tls_key", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_cfg, tls_key), .help = "PEM key" },
    { .key = "tls_ca", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_cfg, tls_ca), .help = "PEM CA bundle" },
    { .key = "accept_unknown_peers", .type = IMS_CFG_BOOL,
      .offset = offsetof(ims_diameter_cfg, accept_unknown_peers), .def = "true",
      .help = "accept connections from peers not listed in peers" },
    { .key = "peers", .type = IMS_CFG_LIST, .offset = offsetof(ims_diameter_cfg, peers),
      .sub = ims_diameter_peer_cfg_fields, .rec_size = sizeof(ims_diameter_peer_cfg),
      .help = "peers to connect to" },
    { .key = "conf_dir", .type = IMS_CFG_STR, .offset = offsetof(ims_diameter_cfg, conf_dir), .def = "/tmp",
      .help = "where the generated freeDiameter configuration is written" },
    { .key = NULL },
};
