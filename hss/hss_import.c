/*
 * hss_import.c: bulk import of subscribers at start from a YAML or JSON file.
 *
 * Both formats become json-c objects and go through hss_subscriber_from_json, so a file is
 * validated exactly like a POST body and its errors name the same field paths, prefixed with
 * the file and the subscriber's index (top-level keys other than "subscribers" must start with
 * "x-"; they may hold YAML anchors):
 *     subscribers.yaml: subscribers[2].impis[0].k: must be 32 hex digits
 *
 * YAML -> JSON mapping (libyaml document API; anchors/aliases are expanded, so profiles can be
 * shared with &anchor / *alias):
 *   mapping -> object, sequence -> array,
 *   quoted / block scalars -> string,
 *   plain scalars: true/false -> boolean, null/~/empty -> null, decimal integers that fit in
 *   64 bits and have no leading zero -> int (so "0011..." hex keys and YAML-1.1 octal lookalikes
 *   stay strings), anything else -> string.
 *
 * JSON lines (.jsonl): one subscriber object per line, read as a stream (a file of a million
 * subscribers is never held in memory); errors name the line: "subs.jsonl:7: impis[0].k: ...".
 *
 * Subscribers are stored with hss_store_put(create_only = 0): re-importing the same file at every
 * start replaces them with identical content and keeps the volatile state (SQN, registrations).
 * The import runs before Cx and HTTP start, in bulk mode (hss_store_bulk_begin): one commit per
 * IMPORT_BATCH subscribers instead of one fsync each. On an error the subscribers before the
 * failing one are committed, as without batching.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <yaml.h>

#include "hss_api.h"
#include "ims_log.h"
#include "ims_strbuf.h"

#define YAML_MAX_DEPTH 64
#define IMPORT_BATCH 20000

/* State of one YAML -> JSON conversion. */
typedef struct {
    yaml_document_t *doc;
    size_t budget;          /* nodes we may still create: aliases can expand exponentially */
    char *err;
    size_t errlen;
    const char *path;
} yaml_conv;

static bool is_plain_int(const char *s, int64_t *out)
{
    const char *p = s;
    char *end;
    long long v;

    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    if (p[0] == '0' && p[1] != '\0')
        return false;               /* leading zero: keep the text (hex keys, octal lookalikes) */
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end)
        return false;               /* too large for int64: a string, not a wrapped number */
    *out = v;
    return true;
}

static json_object *yaml_scalar_to_json(const yaml_node_t *node)
{
    const char *v = (const char *)node->data.scalar.value;
    int64_t i;

    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_object_new_string_len(v, (int)node->data.scalar.length);
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
        return json_object_new_boolean(1);
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
        return json_object_new_boolean(0);
    if (!v[0] || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
        return NULL;                /* json-c's null */
    if (is_plain_int(v, &i))
        return json_object_new_int64(i);
    return json_object_new_string_len(v, (int)node->data.scalar.length);
}

/* Converts node `idx` into *out (NULL is a valid JSON null). Returns 0 / -1 + message. */
static int yaml_node_to_json(yaml_conv *c, int idx, int depth, json_object **out)
{
    yaml_node_t *node = yaml_document_get_node(c->doc, idx);
    json_object *obj = NULL;

    *out = NULL;
    if (!node) {
        snprintf(c->err, c->errlen, "%s: invalid YAML node", c->path);
        return -1;
    }
    if (depth > YAML_MAX_DEPTH || c->budget == 0) {
        snprintf(c->err, c->errlen, "%s:%zu: document too deep or alias expansion too large", c->path,
                 (size_t)node->start_mark.line + 1);
        return -1;
    }
    c->budget--;

    switch (node->type) {
    case YAML_SCALAR_NODE:
        *out = yaml_scalar_to_json(node);
        return 0;

    case YAML_SEQUENCE_NODE:
        obj = json_object_new_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
             it++) {
            json_object *child;
            if (yaml_node_to_json(c, *it, depth + 1, &child) != 0)
                goto fail;
            json_object_array_add(obj, child);
        }
        *out = obj;
        return 0;

    case YAML_MAPPING_NODE:
        obj = json_object_new_object();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *key = yaml_document_get_node(c->doc, p->key);
            json_object *child;
            const char *k;

            if (!key || key->type != YAML_SCALAR_NODE) {
                snprintf(c->err, c->errlen, "%s:%zu: mapping keys must be scalars", c->path,
                         (size_t)(key ? key->start_mark.line : node->start_mark.line) + 1);
                goto fail;
            }
            k = (const char *)key->data.scalar.value;
            /* YAML forbids duplicate keys; libyaml does not check, and json-c would keep the
             * last one silently. */
            if (json_object_object_get_ex(obj, k, NULL)) {
                snprintf(c->err, c->errlen, "%s:%zu: duplicate key '%s'", c->path,
                         (size_t)key->start_mark.line + 1, k);
                goto fail;
            }
            if (yaml_node_to_json(c, p->value, depth + 1, &child) != 0)
                goto fail;
            json_object_object_add(obj, k, child);
        }
        *out = obj;
        return 0;

    default:
        snprintf(c->err, c->errlen, "%s:%zu: unsupported YAML node", c->path,
                 (size_t)node->start_mark.line + 1);
        return -1;
    }
fail:
    json_object_put(obj);
    return -1;
}

static json_object *load_yaml(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    yaml_conv c = {.doc = &doc, .err = err, .errlen = errlen, .path = path};
    json_object *root = NULL;
    bool have_doc = false;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", path, (size_t)parser.problem_mark.line + 1,
                 (size_t)parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error",
                 parser.context ? " " : "", parser.context ? parser.context : "");
        goto out;
    }
    have_doc = true;
    if (!yaml_document_get_root_node(&doc)) {
        snprintf(err, errlen, "%s: empty file (expected a 'subscribers' list)", path);
        goto out;
    }
    /* A second document would be silently ignored: refuse it instead. */
    if (!yaml_parser_load(&parser, &extra)) {
        snprintf(err, errlen, "%s:%zu: %s", path, (size_t)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML error");
        goto out;
    }
    if (yaml_document_get_root_node(&extra)) {
        snprintf(err, errlen, "%s:%zu: more than one YAML document", path,
                 (size_t)yaml_document_get_root_node(&extra)->start_mark.line + 1);
        yaml_document_delete(&extra);
        goto out;
    }
    yaml_document_delete(&extra);
    c.budget = 100000 + 64 * (size_t)(doc.nodes.top - doc.nodes.start);
    if (yaml_node_to_json(&c, 1, 0, &root) != 0) {
        json_object_put(root);
        root = NULL;
        goto out;
    }
    if (!root) {
        snprintf(err, errlen, "%s: empty file (expected a 'subscribers' list)", path);
    }
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return root;
}

static json_object *load_json(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    json_tokener *tok = NULL;
    json_object *root = NULL;
    enum json_tokener_error jerr;
    ims_strbuf text = IMS_STRBUF_INIT;
    const char *buf;
    size_t len, end, line = 1;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (ims_strbuf_read(&text, f) != 0) {
        snprintf(err, errlen, "%s: %s", path, text.failed ? "out of memory" : "read error");
        goto out;
    }
    buf = text.s ? text.s : "";
    len = text.len;
    if (len > INT32_MAX) {
        snprintf(err, errlen, "%s: file too large", path);
        goto out;
    }
    tok = json_tokener_new();
    if (!tok) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);   /* no trailing commas etc. */
    root = json_tokener_parse_ex(tok, buf, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_success) {
        /* Only whitespace may follow the value. */
        while (end < len && isspace((unsigned char)buf[end]))
            end++;
        if (end == len)
            goto out;
        json_object_put(root);
        root = NULL;
    }
    for (size_t i = 0; i < end && i < len; i++)
        line += buf[i] == '\n';
    snprintf(err, errlen, "%s:%zu: invalid JSON at offset %zu: %s", path, line, end,
             jerr == json_tokener_continue   ? "unexpected end of input"
             : jerr == json_tokener_success ? "unexpected data after the value"
                                            : json_tokener_error_desc(jerr));
out:
    if (tok)
        json_tokener_free(tok);
    ims_strbuf_free(&text);
    fclose(f);
    return root;
}

/* "impis[0].k: bad" -> "<file>: subscribers[3].impis[0].k: bad"; a message without a field
 * path ("must be an object") is joined with ": " instead of ".". */
static void prefix_error(char *err, size_t errlen, const char *path, size_t idx, const char *msg)
{
    size_t fieldlen = strcspn(msg, ": ");
    bool has_field = msg[0] && msg[0] != '[' && msg[fieldlen] == ':' && fieldlen > 0;

    if (msg[0] == '$')              /* "$: ..." = the subscriber itself */
        snprintf(err, errlen, "%s: subscribers[%zu]%s", path, idx, msg + 1);
    else if (msg[0] == '[')
        snprintf(err, errlen, "%s: subscribers[%zu]%s", path, idx, msg);
    else
        snprintf(err, errlen, "%s: subscribers[%zu]%s%s", path, idx, has_field ? "." : ": ", msg);
}

typedef struct {
    const char *id;
    size_t idx;
} id_ref;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* The same id twice in one file would make the second silently replace the first: refuse. */
static int check_duplicate_ids(json_object *arr, const char *path, char *err, size_t errlen)
{
    size_t n = json_object_array_length(arr), m = 0;
    id_ref *refs = calloc(n ? n : 1, sizeof(*refs));
    int rc = 0;

    if (!refs) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *jid;
        if (json_object_object_get_ex(json_object_array_get_idx(arr, i), "id", &jid) &&
            json_object_is_type(jid, json_type_string)) {
            refs[m].id = json_object_get_string(jid);
            refs[m].idx = i;
            m++;
        }
    }
    qsort(refs, m, sizeof(*refs), id_ref_cmp);
    for (size_t i = 1; i < m; i++) {
        if (strcmp(refs[i - 1].id, refs[i].id) == 0) {
            snprintf(err, errlen, "%s: subscribers[%zu].id: '%s' is already used by subscribers[%zu]", path,
                     refs[i].idx, refs[i].id, refs[i - 1].idx);
            rc = -1;
            break;
        }
    }
    free(refs);
    return rc;
}

/* Validates and stores one subscriber object. -1 + msg: a validation error (a field path message
 * of hss_subscriber_from_json, *id NULL) or a store error (*id = the subscriber's id). */
static int import_one(hss_store *st, json_object *obj, char *msg, size_t msglen, const char **id)
{
    hss_subscriber s = {0};
    int prc;

    *id = NULL;
    if (hss_subscriber_from_json(obj, &s, msg, msglen) != 0) {
        hss_subscriber_free(&s);
        return -1;
    }
    prc = hss_store_put(st, &s, 0, msg, msglen);
    if (prc != HSS_STORE_OK) {
        json_object *jid;
        if (!msg[0])
            snprintf(msg, msglen, "%s", prc == HSS_STORE_CONFLICT ? "conflict" : "database error");
        /* The id as the caller's object holds it (s is freed below). */
        if (json_object_object_get_ex(obj, "id", &jid))
            *id = json_object_get_string(jid);
        hss_subscriber_free(&s);
        return -1;
    }
    hss_subscriber_free(&s);
    return 0;
}

/* Ids seen so far in a JSON lines file (a set of strings, open addressing): the same id twice
 * in one file is refused, as in the other formats. */
typedef struct {
    char **slot;
    size_t *line;
    size_t cap, n;
} id_set;

static size_t id_hash(const char *s)
{
    size_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* 0 added, >0 the line the id was first seen on, -1 ENOMEM. */
static long id_set_add(id_set *set, const char *id, size_t line)
{
    if ((set->n + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 4096;
        char **slot = calloc(cap, sizeof(char *));
        size_t *lines = calloc(cap, sizeof(size_t));
        if (!slot || !lines) {
            free(slot);
            free(lines);
            return -1;
        }
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slot[i])
                continue;
            size_t j = id_hash(set->slot[i]) & (cap - 1);
            while (slot[j])
                j = (j + 1) & (cap - 1);
            slot[j] = set->slot[i];
            lines[j] = set->line[i];
        }
        free(set->slot);
        free(set->line);
        set->slot = slot;
        set->line = lines;
        set->cap = cap;
    }
    size_t j = id_hash(id) & (set->cap - 1);
    while (set->slot[j]) {
        if (strcmp(set->slot[j], id) == 0)
            return (long)set->line[j];
        j = (j + 1) & (set->cap - 1);
    }
    if (!(set->slot[j] = strdup(id)))
        return -1;
    set->line[j] = line;
    set->n++;
    return 0;
}

static void id_set_free(id_set *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slot[i]);
    free(set->slot);
    free(set->line);
}

/* One JSON object on a line: the object, or NULL + err. */
static json_object *parse_line(json_tokener *tok, const char *line, size_t len, const char *path,
                               size_t lineno, char *err, size_t errlen)
{
    json_object *o;
    enum json_tokener_error jerr;
    size_t end;

    if (len > INT32_MAX) {
        snprintf(err, errlen, "%s:%zu: line too long", path, lineno);
        return NULL;
    }
    json_tokener_reset(tok);
    o = json_tokener_parse_ex(tok, line, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    while (jerr == json_tokener_success && end < len && isspace((unsigned char)line[end]))
        end++;
    if (jerr == json_tokener_success && end == len && json_object_is_type(o, json_type_object))
        return o;
    snprintf(err, errlen, "%s:%zu: %s at offset %zu", path, lineno,
             jerr == json_tokener_continue    ? "invalid JSON: unexpected end of line"
             : jerr != json_tokener_success   ? json_tokener_error_desc(jerr)
             : end != len                     ? "invalid JSON: unexpected data after the value"
                                              : "a subscriber must be a JSON object",
             end);
    json_object_put(o);
    return NULL;
}

static int import_jsonl(hss_store *st, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    json_tokener *tok = json_tokener_new();
    id_set ids = {0};
    char *line = NULL;
    size_t cap = 0, lineno = 0, n = 0;
    ssize_t len;
    int rc = -1;

    if (!f || !tok) {
        snprintf(err, errlen, "%s: %s", path, f ? "out of memory" : strerror(errno));
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    if (hss_store_bulk_begin(st) != HSS_STORE_OK) {
        snprintf(err, errlen, "%s: cannot start the import transaction (database error)", path);
        goto out;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char msg[512] = "";
        const char *id = NULL;
        json_object *o, *jid;
        size_t i = 0;

        lineno++;
        while (i < (size_t)len && isspace((unsigned char)line[i]))
            i++;
        if (i == (size_t)len)
            continue;   /* blank line */
        if (!(o = parse_line(tok, line, (size_t)len, path, lineno, err, errlen)))
            goto fail;
        if (json_object_object_get_ex(o, "id", &jid) && json_object_is_type(jid, json_type_string)) {
            long first = id_set_add(&ids, json_object_get_string(jid), lineno);
            if (first != 0) {
                if (first < 0)
                    snprintf(err, errlen, "%s:%zu: out of memory", path, lineno);
                else
                    snprintf(err, errlen, "%s:%zu: id: '%s' is already used on line %ld", path,
                             lineno, json_object_get_string(jid), first);
                json_object_put(o);
                goto fail;
            }
        }
        if (import_one(st, o, msg, sizeof(msg), &id) != 0) {
            if (id)
                snprintf(err, errlen, "%s:%zu (%s): %s", path, lineno, id, msg);
            else
                snprintf(err, errlen, "%s:%zu: %s", path, lineno,
                         strncmp(msg, "$: ", 3) == 0 ? msg + 3 : msg);
            json_object_put(o);
            goto fail;
        }
        json_object_put(o);
        if (++n % IMPORT_BATCH == 0 && hss_store_bulk_commit(st) != HSS_STORE_OK) {
            snprintf(err, errlen, "%s:%zu: commit failed (database error)", path, lineno);
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error after line %zu", path, lineno);
        goto fail;
    }
    if (hss_store_bulk_end(st, true) != HSS_STORE_OK) {
        snprintf(err, errlen, "%s: commit failed (database error)", path);
        goto out;
    }
    IMS_INFO("hss.import", "imported %zu subscriber%s from %s", n, n == 1 ? "" : "s", path);
    rc = 0;
    goto out;
fail:
    hss_store_bulk_end(st, true);   /* the subscribers before the failing line stay */
out:
    id_set_free(&ids);
    free(line);
    if (tok)
        json_tokener_free(tok);
    if (f)
        fclose(f);
    return rc;
}

int hss_import_file(hss_store *st, const char *path, char *err, size_t errlen)
{
    const char *ext = strrchr(path, '.');
    json_object *root = NULL, *arr = NULL;
    size_t n = 0;
    int rc = -1;

    if (ext && (!strcasecmp(ext, ".yaml") || !strcasecmp(ext, ".yml"))) {
        root = load_yaml(path, err, errlen);
    } else if (ext && !strcasecmp(ext, ".json")) {
        root = load_json(path, err, errlen);
    } else if (ext && !strcasecmp(ext, ".jsonl")) {
        return import_jsonl(st, path, err, errlen);
    } else {
        snprintf(err, errlen, "%s: unknown file type (expected .yaml, .yml, .json or .jsonl)", path);
        goto out;
    }
    if (!root)
        goto out;
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "%s: top level must be a mapping with a 'subscribers' list", path);
        goto out;
    }
    /* Keys "x-..." are free for the operator (docker-compose style), e.g. to hold YAML anchors
     * of shared service profiles; anything else is a typo worth reporting. */
    json_object_object_foreach(root, key, val) {
        (void)val;
        if (strcmp(key, "subscribers") != 0 && strncmp(key, "x-", 2) != 0) {
            snprintf(err, errlen, "%s: %s: unknown key (expected 'subscribers' or 'x-...')", path, key);
            goto out;
        }
    }
    json_object_object_get_ex(root, "subscribers", &arr);
    if (arr && !json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "%s: subscribers: must be a list", path);
        goto out;
    }
    n = arr ? json_object_array_length(arr) : 0;   /* "subscribers:" with nothing = empty list */
    if (arr && check_duplicate_ids(arr, path, err, errlen) != 0)
        goto out;

    if (hss_store_bulk_begin(st) != HSS_STORE_OK) {
        snprintf(err, errlen, "%s: cannot start the import transaction (database error)", path);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char msg[512] = "";
        const char *id = NULL;

        if (import_one(st, json_object_array_get_idx(arr, i), msg, sizeof(msg), &id) != 0) {
            if (id)
                snprintf(err, errlen, "%s: subscribers[%zu] (%s): %s", path, i, id, msg);
            else
                prefix_error(err, errlen, path, i, msg);
            hss_store_bulk_end(st, true);
            goto out;
        }
        if ((i + 1) % IMPORT_BATCH == 0 && hss_store_bulk_commit(st) != HSS_STORE_OK) {
            snprintf(err, errlen, "%s: commit after subscribers[%zu] failed (database error)", path, i);
            goto out;
        }
    }
    if (hss_store_bulk_end(st, true) != HSS_STORE_OK) {
        snprintf(err, errlen, "%s: commit failed (database error)", path);
        goto out;
    }
    IMS_INFO("hss.import", "imported %zu subscriber%s from %s", n, n == 1 ? "" : "s", path);
    rc = 0;
out:
    json_object_put(root);
    return rc;
}
