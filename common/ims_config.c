/*
 * ims_config: YAML configuration through declarative schemas. See ims_config.h for the rules.
 *
 * Order of application: schema defaults, then the YAML file (libyaml document API, which keeps
 * the line of every node for error messages), then IMS_<NF>_<PATH> environment variables, then
 * the required-key check. The first problem stops the load with one message naming where it is:
 *
 *   hss.yaml:12: diameter.port: 70000 is out of range 1..65535      (a line of the file)
 *   hss.yaml: diameter.identity: required (set it ... or with IMS_HSS_DIAMETER_IDENTITY)
 *   IMS_HSS_HTTP_PORT (http.port): 'abc' is not an integer           (an environment variable)
 *
 * A failed load frees whatever it had allocated, so a caller that gives up does not leak.
 */
#include "ims_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <yaml.h>

/* glibc's name of the running program (errno.h declares it only under _GNU_SOURCE). */
extern char *program_invocation_short_name;

/* Where an error is: a line of the file (> 0), the file as a whole, or no file at all. */
enum { AT_FILE = 0, AT_NOWHERE = -1 };

typedef struct {
    const char *file;          /* NULL: defaults + environment only */
    const char *nf;            /* NULL: no environment overrides */
    yaml_document_t *doc;      /* while the file is being walked */
    char *err;
    size_t errlen;
} load_ctx;

static int fail(load_ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Formats "file:line: path: problem" (parts left out when they do not apply); always returns -1. */
static int fail(load_ctx *c, int line, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    char where[320] = "";
    if (line > 0 && c->file)
        snprintf(where, sizeof(where), "%s:%d: ", c->file, line);
    else if (line == AT_FILE && c->file)
        snprintf(where, sizeof(where), "%s: ", c->file);
    snprintf(c->err, c->errlen, "%s%s%s%s", where, path ? path : "", path ? ": " : "", msg);
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

/* The field's own value check (ims_cfg_field.check), reported like every other value error. */
static int check_value(load_ctx *c, const ims_cfg_field *f, const char *v, const char *where, int line)
{
    char why[256] = "";
    if (!f->check || f->check(v, why, sizeof(why)) == 0)
        return 0;
    return fail(c, line, where, "'%s': %s", v, why[0] ? why : "invalid value");
}

/* Every item of a string list through the field's check. */
static int check_items(load_ctx *c, const ims_cfg_field *f, const ims_cfg_strlist *l, const char *where,
                       int line)
{
    for (size_t i = 0; f->check && i < l->count; i++)
        if (check_value(c, f, l->items[i] ? l->items[i] : "", where, line))
            return -1;
    return 0;
}

/* "a, b, c" from a NULL-terminated name table, for messages. */
static void names_list(const char *const *names, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; names && names[i]; i++) {
        size_t used = strlen(out);
        if (used + 1 >= len)
            break;
        snprintf(out + used, len - used, "%s%s", i ? ", " : "", names[i]);
    }
}

static int names_index(const char *const *names, const char *v)
{
    for (int i = 0; names && names[i]; i++)
        if (strcasecmp(v, names[i]) == 0)
            return i;
    return -1;
}

/* ---------- scalar conversion ---------- */

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(v, no[i]) == 0) { *out = false; return 0; }
    }
    return -1;
}

/*
 * Sets one scalar field from text. `where` is the key path (or "VAR (path)" for the
 * environment) and `line` where to point the user (see fail()).
 */
static int set_scalar(load_ctx *c, const ims_cfg_field *f, void *base, const char *v, const char *where,
                      int line)
{
    char allowed[256];
    switch (f->type) {
    case IMS_CFG_STR: {
        const char *value = v;
        if (f->enum_names) {
            /* A string restricted to a set of names (log.level). The table's spelling is kept so
             * that users of the string compare against one canonical form. */
            int i = names_index(f->enum_names, v);
            if (i < 0) {
                names_list(f->enum_names, allowed, sizeof(allowed));
                return fail(c, line, where, "'%s' is not one of: %s", v, allowed);
            }
            value = f->enum_names[i];
        }
        if (check_value(c, f, value, where, line))
            return -1;
        char **p = field_ptr(base, f), *copy = strdup(value);
        if (!copy)
            return fail(c, line, where, "out of memory");
        free(*p);
        *p = copy;
        return 0;
    }
    case IMS_CFG_INT: {
        /* Base 10 only: YAML 1.2 reads "010" as ten, and strtol base 0 would read it as eight. */
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (!*v || end == v || *end)
            return fail(c, line, where, "'%s' is not an integer", v);
        bool ranged = f->min != 0 || f->max != 0;
        if (errno == ERANGE || (ranged && (n < f->min || n > f->max))) {
            if (ranged)
                return fail(c, line, where, "%s is out of range %ld..%ld", v, f->min, f->max);
            return fail(c, line, where, "%s is too large", v);
        }
        *(long *)field_ptr(base, f) = n;
        return 0;
    }
    case IMS_CFG_BOOL:
        if (parse_bool(v, field_ptr(base, f)))
            return fail(c, line, where, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", v);
        return 0;
    case IMS_CFG_ENUM: {
        int i = names_index(f->enum_names, v);
        if (i < 0) {
            names_list(f->enum_names, allowed, sizeof(allowed));
            return fail(c, line, where, "'%s' is not one of: %s", v, allowed);
        }
        *(int *)field_ptr(base, f) = i;
        return 0;
    }
    case IMS_CFG_STRLIST:
        return fail(c, line, where, "expected a list, got a single value");
    case IMS_CFG_LIST:
        return fail(c, line, where, "expected a list of mappings, got a single value");
    case IMS_CFG_SECTION:
    default:
        return fail(c, line, where, "expected a mapping, got a single value");
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

static int strlist_push(ims_cfg_strlist *l, const char *v, size_t len)
{
    char **n = realloc(l->items, (l->count + 1) * sizeof(char *));
    if (!n)
        return -1;
    l->items = n;
    if (!(l->items[l->count] = strndup(v, len)))
        return -1;
    l->count++;
    return 0;
}

/* Replaces the list with the comma-separated items of `text` (env values and defaults).
 * Blanks around items are dropped, so "a, b" and "a,b" mean the same; empty items are skipped. */
static int strlist_split(ims_cfg_strlist *l, const char *text)
{
    strlist_free(l);
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s && strlist_push(l, s, (size_t)(e - s)))
            return -1;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

/* ---------- defaults ---------- */

static int apply_defaults(load_ctx *c, const ims_cfg_field *fields, void *base, const char *prefix)
{
    for (const ims_cfg_field *f = fields; f->key; f++) {
        char path[256], where[300];
        join_path(path, sizeof(path), prefix, f->key);
        /* A bad default is a bug in the schema table, not in the user's file. */
        snprintf(where, sizeof(where), "%s (schema default)", path);
        if (f->type == IMS_CFG_SECTION) {
            if (apply_defaults(c, f->sub, field_ptr(base, f), path))
                return -1;
        } else if (f->type == IMS_CFG_STRLIST) {
            if (f->def && strlist_split(field_ptr(base, f), f->def))
                return fail(c, AT_NOWHERE, where, "out of memory");
            if (check_items(c, f, field_ptr(base, f), where, AT_NOWHERE))
                return -1;
        } else if (f->def && f->type != IMS_CFG_LIST) {
            if (set_scalar(c, f, base, f->def, where, AT_NOWHERE))
                return -1;
        }
    }
    return 0;
}

/* ---------- required ---------- */

static void env_name(char *out, size_t len, const char *nf, const char *path);

/*
 * Reports the first required key without a value. `line` > 0 is the line of a list record
 * (records are checked as they are read, and only come from the file); AT_FILE is the top level.
 * Only strings and lists can be "absent": numbers, booleans and enums always hold a value.
 */
static int check_required(load_ctx *c, const ims_cfg_field *fields, void *base, const char *prefix, int line)
{
    for (const ims_cfg_field *f = fields; f->key; f++) {
        char path[256];
        join_path(path, sizeof(path), prefix, f->key);
        bool missing = false;
        switch (f->type) {
        case IMS_CFG_SECTION:
            if (check_required(c, f->sub, field_ptr(base, f), path, line))
                return -1;
            break;
        case IMS_CFG_STR:
            missing = f->required && !*(char **)field_ptr(base, f);
            break;
        case IMS_CFG_STRLIST:
            missing = f->required && ((ims_cfg_strlist *)field_ptr(base, f))->count == 0;
            break;
        case IMS_CFG_LIST:
            missing = f->required && ((ims_cfg_list *)field_ptr(base, f))->count == 0;
            break;
        default:
            break;
        }
        if (!missing)
            continue;
        if (line > 0 || !c->nf || f->type == IMS_CFG_LIST)
            return fail(c, line, path, "required");
        char env[300];
        env_name(env, sizeof(env), c->nf, path);
        return fail(c, line, path, "required (set it in the configuration file or with %s)", env);
    }
    return 0;
}

/* ---------- YAML ---------- */

static int node_line(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : AT_FILE; }

/* "key:", "key: ~" and "key: null" (unquoted) mean "no value here": the field keeps its default. */
static bool node_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static int load_mapping(load_ctx *c, const ims_cfg_field *fields, void *base, yaml_node_t *map,
                        const char *prefix);

static int load_list(load_ctx *c, const ims_cfg_field *f, void *base, yaml_node_t *val, const char *path)
{
    if (val->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(val), path, "expected a list of mappings");
    ims_cfg_list *l = field_ptr(base, f);
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n == 0)
        return 0;
    /* count is set with the allocation so that ims_cfg_free can release a half-read list. */
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
            return fail(c, rec ? node_line(rec) : node_line(val), rpath, "expected a mapping");
        if (load_mapping(c, f->sub, rbase, rec, rpath))
            return -1;
        if (check_required(c, f->sub, rbase, rpath, node_line(rec)))
            return -1;
    }
    return 0;
}

static int load_field(load_ctx *c, const ims_cfg_field *f, void *base, yaml_node_t *val, const char *path)
{
    if (node_is_null(val))
        return 0;
    switch (f->type) {
    case IMS_CFG_SECTION:
        if (val->type != YAML_MAPPING_NODE)
            return fail(c, node_line(val), path, "expected a mapping");
        return load_mapping(c, f->sub, field_ptr(base, f), val, path);
    case IMS_CFG_STRLIST: {
        if (val->type != YAML_SEQUENCE_NODE)
            return fail(c, node_line(val), path, "expected a list");
        ims_cfg_strlist *l = field_ptr(base, f);
        strlist_free(l);   /* the file replaces the default list */
        for (yaml_node_item_t *it = val->data.sequence.items.start; it < val->data.sequence.items.top; it++) {
            yaml_node_t *n = yaml_document_get_node(c->doc, *it);
            if (!n || n->type != YAML_SCALAR_NODE)
                return fail(c, n ? node_line(n) : node_line(val), path, "list items must be single values");
            if (strlist_push(l, (const char *)n->data.scalar.value, n->data.scalar.length))
                return fail(c, node_line(n), path, "out of memory");
            if (check_value(c, f, l->items[l->count - 1], path, node_line(n)))
                return -1;
        }
        return 0;
    }
    case IMS_CFG_LIST:
        return load_list(c, f, base, val, path);
    default:
        if (val->type != YAML_SCALAR_NODE)
            return fail(c, node_line(val), path, "expected a single value");
        return set_scalar(c, f, base, (const char *)val->data.scalar.value, path, node_line(val));
    }
}

static int load_mapping(load_ctx *c, const ims_cfg_field *fields, void *base, yaml_node_t *map,
                        const char *prefix)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE)
            return fail(c, k ? node_line(k) : node_line(map), *prefix ? prefix : NULL,
                        "keys must be plain names");
        const char *key = (const char *)k->data.scalar.value;
        char path[256];
        join_path(path, sizeof(path), prefix, key);
        /* libyaml keeps both values of a repeated key; silently taking one would hide a mistake. */
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE && strcmp((const char *)k2->data.scalar.value, key) == 0)
                return fail(c, node_line(k), path, "duplicate key (first at line %d)", node_line(k2));
        }
        const ims_cfg_field *f = fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (!f->key) {
            /* Listing the keys that exist turns most typos into a one-glance fix. */
            char known[384] = "";
            for (const ims_cfg_field *g = fields; g->key; g++) {
                size_t used = strlen(known);
                snprintf(known + used, sizeof(known) - used, "%s%s", g == fields ? "" : ", ", g->key);
            }
            return fail(c, node_line(k), path, "unknown key (known keys: %s)", known);
        }
        if (load_field(c, f, base, v, path))
            return -1;
    }
    return 0;
}

/* Reports libyaml's own problem and position. */
static int yaml_problem(load_ctx *c, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return fail(c, AT_FILE, NULL, "out of memory while reading YAML");
    if (parser->error == YAML_READER_ERROR)   /* bad encoding: libyaml only knows the byte */
        return fail(c, AT_FILE, NULL, "YAML read error: %s at byte %zu",
                    parser->problem ? parser->problem : "unknown problem", parser->problem_offset);
    int line = (int)parser->problem_mark.line + 1;
    if (parser->context)
        return fail(c, line, NULL, "YAML syntax error: %s (%s at line %d)",
                    parser->problem ? parser->problem : "unknown problem", parser->context,
                    (int)parser->context_mark.line + 1);
    return fail(c, line, NULL, "YAML syntax error: %s", parser->problem ? parser->problem : "unknown problem");
}

static int load_file(load_ctx *c, const ims_cfg_field *schema, void *out)
{
    FILE *fp = fopen(c->file, "rb");
    struct stat st;
    if (fp && fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);   /* fopen accepts a directory; reading it would fail with a vaguer message */
        fp = NULL;
        errno = EISDIR;
    }
    if (!fp) {
        snprintf(c->err, c->errlen, "cannot read %s: %s", c->file, strerror(errno));
        return -1;
    }

    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int rc = 0;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_problem(c, &parser);
        yaml_parser_delete(&parser);
        fclose(fp);
        return rc;
    }

    /* A second document ("---") would be ignored by everything below: say so instead. */
    if (!yaml_parser_load(&parser, &extra)) {
        rc = yaml_problem(c, &parser);
    } else {
        yaml_node_t *root2 = yaml_document_get_root_node(&extra);
        if (root2)
            rc = fail(c, node_line(root2), NULL, "only one YAML document is allowed per file");
        yaml_document_delete(&extra);
    }

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (rc == 0 && root && !node_is_null(root)) {   /* an empty file means "all defaults" */
        c->doc = &doc;
        if (root->type == YAML_MAPPING_NODE)
            rc = load_mapping(c, schema, out, root, "");
        else
            rc = fail(c, node_line(root), NULL, "the top level must be a mapping of sections (key: ...)");
        c->doc = NULL;
    }
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
    snprintf(out, len, "IMS_%s_%s", nf, path);
    for (char *p = out; *p; p++) {
        if (*p == '.' || *p == '-')
            *p = '_';
        else if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    }
}

static int apply_env(load_ctx *c, const ims_cfg_field *fields, void *base, const char *prefix)
{
    for (const ims_cfg_field *f = fields; f->key; f++) {
        char path[256], name[300], where[600];
        join_path(path, sizeof(path), prefix, f->key);
        if (f->type == IMS_CFG_SECTION) {
            if (apply_env(c, f->sub, field_ptr(base, f), path))
                return -1;
            continue;
        }
        if (f->type == IMS_CFG_LIST)   /* records only come from the file (ims_config.h) */
            continue;
        env_name(name, sizeof(name), c->nf, path);
        const char *v = getenv(name);
        /* An empty variable counts as unset: compose files often pass "VAR=" or "${VAR:-}". */
        if (!v || !*v)
            continue;
        snprintf(where, sizeof(where), "%s (%s)", name, path);
        if (f->type == IMS_CFG_STRLIST) {
            if (strlist_split(field_ptr(base, f), v))
                return fail(c, AT_NOWHERE, where, "out of memory");
            if (check_items(c, f, field_ptr(base, f), where, AT_NOWHERE))
                return -1;
        } else if (set_scalar(c, f, base, v, where, AT_NOWHERE)) {
            return -1;
        }
    }
    return 0;
}

/* ---------- public ---------- */

int ims_cfg_load(const char *path, const char *nf, const ims_cfg_field *schema, void *out,
                 char *err, size_t errlen)
{
    char scratch[8];
    load_ctx c = { .file = path, .nf = nf, .err = err, .errlen = errlen };
    if (!err || errlen == 0) {   /* the caller does not want the message; still fail cleanly */
        c.err = scratch;
        c.errlen = sizeof(scratch);
    }
    c.err[0] = '\0';
    int rc = apply_defaults(&c, schema, out, "");
    if (rc == 0 && path)
        rc = load_file(&c, schema, out);
    if (rc == 0 && nf)
        rc = apply_env(&c, schema, out, "");
    if (rc == 0)
        rc = check_required(&c, schema, out, "", AT_FILE);
    if (rc != 0)
        ims_cfg_free(schema, out);
    return rc;
}

void ims_cfg_load_or_exit(const char *path, const char *nf, const ims_cfg_field *schema, void *out)
{
    char err[1024];
    if (ims_cfg_load(path, nf, schema, out, err, sizeof(err)) == 0)
        return;
    fprintf(stderr, "%s: configuration error: %s\n", program_invocation_short_name, err);
    exit(2);
}

void ims_cfg_free(const ims_cfg_field *schema, void *out)
{
    if (!schema || !out)
        return;
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

/* Writes text for a markdown table cell: a '|' would end the cell early. */
static void put_cell(const char *s, FILE *f)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void print_fields(const char *nf, const ims_cfg_field *fields, const char *prefix, FILE *f)
{
    static const char *const type_names[] = { "string", "integer", "boolean", "enum", "list of strings",
                                              "section", "list of records" };
    for (const ims_cfg_field *fl = fields; fl->key; fl++) {
        char path[256], env[300];
        join_path(path, sizeof(path), prefix, fl->key);
        if (fl->type == IMS_CFG_SECTION) {
            print_fields(nf, fl->sub, path, f);
            continue;
        }
        /* Records (and the list holding them) have no variable: they only come from the file. */
        bool no_env = !nf || strchr(path, '[') != NULL || fl->type == IMS_CFG_LIST;
        if (!no_env)
            env_name(env, sizeof(env), nf, path);

        fprintf(f, "| `%s` | %s%s | ", path, type_names[fl->type], fl->required ? " (required)" : "");
        if (fl->def) {
            fputc('`', f);
            put_cell(fl->def, f);
            fputc('`', f);
        }
        fputs(" | ", f);
        if (no_env)
            fputc('-', f);
        else
            fprintf(f, "`%s`", env);
        fputs(" | ", f);
        put_cell(fl->help, f);
        fputs(" |\n", f);

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

/* log.level stays a string (the header's ims_log_cfg; ims_log_level_from_name reads it) but is
 * checked against the names here, and stored in the table's spelling. */
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
      .required = true, .help = "IP address or host name to connect to (resolved at start)" },
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
