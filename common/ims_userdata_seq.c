/*
 * ims_userdata_seq.c: the strict reading of XML that ims_userdata_read.c builds on: a walker that
 * checks the children of an element against an xs:sequence table (order, occurrences, choice
 * groups, open Extension content) and calls each element's handler, and the readers of simple-typed
 * leaves (token, free text, integer in a range, xs:boolean, enum with a table). Nothing here knows
 * the Annex E types: they are the tables of ims_userdata_read.c.
 *
 * Spec references: XML Schema Part 1 (xs:sequence, xs:choice, minOccurs/maxOccurs), Part 2
 * (xs:integer, xs:boolean lexical spaces); TS 29.228 Annex E for what the tables declare.
 */
#include "ims_userdata.h"
#include "ims_userdata_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

/* Error at a node: every reader message starts with the line so an operator can find it. */
void ud_node_err(char *err, size_t errlen, const xmlNode *n, const char *path, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "line %ld: %s: %s", n ? xmlGetLineNo(n) : 0L, path, msg);
}

/* ------------------------------------------------------------------------------------------------ */
/* schema sequences                                                                                 */

typedef struct {
    const seq_item *items;
    size_t n;
    bool open;
    const char *path;
    const xmlNode *parent;
    size_t cur;            /* current sequence position */
    int count;             /* elements seen at cur */
    const xmlNode *child;  /* iteration cursor */
} seq_walk;

static bool name_in(const char *names, const char *name)
{
    size_t len = strlen(name);
    const char *p = names;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == len && memcmp(p, name, len) == 0)
            return true;
        if (!bar)
            return false;
        p = bar + 1;
    }
}

/* "A|B|C" -> "A" for messages; names are short constants. */
static const char *first_name(const char *names, char *buf, size_t len)
{
    size_t l = strcspn(names, "|");
    if (l >= len)
        l = len - 1;
    memcpy(buf, names, l);
    buf[l] = '\0';
    return strchr(names, '|') ? names : buf;
}

static bool all_blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (!ud_is_xml_space((char)*s))
            return false;
    return true;
}

static void seq_init(seq_walk *w, const xmlNode *parent, const seq_type *t)
{
    memset(w, 0, sizeof *w);
    w->items = t->items;
    while (w->n < SEQ_MAX && t->items[w->n].names)
        w->n++;
    w->open = t->open;
    w->path = t->path;
    w->parent = parent;
    w->child = parent->children;
}

/* Next child element of the walk, checked against the sequence. Returns 1 with *el and *slot,
 * 0 at the end (mandatory positions checked), -1 on error. Whitespace text, comments and
 * processing instructions are ignored; other text between elements is an error. */
static int seq_next(seq_walk *w, const xmlNode **el, size_t *slot, char *err, size_t errlen)
{
    char b1[64], b2[64];
    for (; w->child; w->child = w->child->next) {
        const xmlNode *c = w->child;
        if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE)
            continue;
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (all_blank(c->content))
                continue;
            ud_node_err(err, errlen, c, w->path, "unexpected text in <%s>", (const char *)w->parent->name);
            return -1;
        }
        if (c->type != XML_ELEMENT_NODE) {
            ud_node_err(err, errlen, c, w->path, "unexpected node type %d", (int)c->type);
            return -1;
        }
        const char *name = (const char *)c->name;
        size_t s;
        for (s = 0; s < w->n; s++)
            if (name_in(w->items[s].names, name))
                break;
        if (s == w->n) {
            if (w->open)
                continue;
            ud_node_err(err, errlen, c, w->path, "unknown element <%s>", name);
            return -1;
        }
        if (s < w->cur) {
            ud_node_err(err, errlen, c, w->path, "<%s> out of order (must come before <%s>)", name,
                        first_name(w->items[w->cur].names, b1, sizeof b1));
            return -1;
        }
        if (s == w->cur) {
            w->count++;
        } else {
            for (size_t k = w->cur; k < s; k++) {
                int seen = (k == w->cur) ? w->count : 0;
                if (seen < w->items[k].min) {
                    ud_node_err(err, errlen, c, w->path, "missing <%s> before <%s>",
                                first_name(w->items[k].names, b1, sizeof b1), name);
                    return -1;
                }
            }
            w->cur = s;
            w->count = 1;
        }
        if (w->items[s].max > 0 && w->count > w->items[s].max) {
            ud_node_err(err, errlen, c, w->path, "too many <%s> (at most %d)",
                        first_name(w->items[s].names, b2, sizeof b2), w->items[s].max);
            return -1;
        }
        w->child = c->next;
        *el = c;
        *slot = s;
        return 1;
    }
    for (size_t k = w->cur; k < w->n; k++) {
        int seen = (k == w->cur) ? w->count : 0;
        if (seen < w->items[k].min) {
            ud_node_err(err, errlen, w->parent, w->path, "missing <%s>",
                        first_name(w->items[k].names, b1, sizeof b1));
            return -1;
        }
    }
    return 0;
}

int ud_read_seq(const xmlNode *node, const seq_type *t, void *obj, char *err, size_t errlen)
{
    seq_walk w;
    const xmlNode *el;
    size_t slot;
    int rc;
    seq_init(&w, node, t);
    while ((rc = seq_next(&w, &el, &slot, err, errlen)) > 0) {
        seq_fn fn = t->items[slot].fn;
        if (fn && fn(el, obj, t->path, err, errlen) < 0)
            return -1;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------------ */
/* leaf values                                                                                     */

/* Text of a simple-typed element (text and CDATA, comments ignored, no child elements). */
static char *leaf_text(const xmlNode *el, const char *path, char *err, size_t errlen, bool *oom)
{
    size_t len = 0;
    for (const xmlNode *c = el->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            len += c->content ? strlen((const char *)c->content) : 0;
        } else if (c->type == XML_COMMENT_NODE || c->type == XML_PI_NODE) {
            continue;
        } else {
            ud_node_err(err, errlen, c, path, "<%s> must hold text only, found <%s>", (const char *)el->name,
                        c->name ? (const char *)c->name : "?");
            return NULL;
        }
    }
    char *s = malloc(len + 1);
    if (!s) {
        *oom = true;
        ims_set_err(err, errlen, "out of memory");
        return NULL;
    }
    size_t off = 0;
    for (const xmlNode *c = el->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t l = strlen((const char *)c->content);
            memcpy(s + off, c->content, l);
            off += l;
        }
    }
    s[off] = '\0';
    return s;
}

static void trim(char *s)
{
    size_t n = strlen(s), a = 0;
    while (a < n && ud_is_xml_space(s[a]))
        a++;
    while (n > a && ud_is_xml_space(s[n - 1]))
        n--;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
}

/* Text of a simple-typed element without the white space around it (tokens, numbers, booleans). */
static char *leaf_trimmed(const xmlNode *el, const char *path, char *err, size_t errlen)
{
    bool oom = false;
    char *s = leaf_text(el, path, err, errlen, &oom);
    if (s)
        trim(s);
    return s;
}

/* Token-valued element (URI, method, header name): trimmed, must not be empty. */
int ud_leaf_token(const xmlNode *el, const char *path, char **out, char *err, size_t errlen)
{
    char *s = leaf_trimmed(el, path, err, errlen);
    if (!s)
        return -1;
    if (!*s) {
        free(s);
        ud_node_err(err, errlen, el, path, "empty <%s>", (const char *)el->name);
        return -1;
    }
    free(*out);   /* a maxOccurs=1 slot cannot be seen twice, but stay leak-free regardless */
    *out = s;
    return 0;
}

/* Free text (regex, display name, service info): kept verbatim. */
int ud_leaf_string(const xmlNode *el, const char *path, char **out, char *err, size_t errlen)
{
    bool oom = false;
    char *s = leaf_text(el, path, err, errlen, &oom);
    if (!s)
        return -1;
    free(*out);
    *out = s;
    return 0;
}

int ud_leaf_int(const xmlNode *el, const char *path, int min, int max, int *out, char *err, size_t errlen)
{
    char *s = leaf_trimmed(el, path, err, errlen);
    if (!s)
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    /* strtol alone accepts "", " 1" and "1x"; the schema types are plain decimal integers. */
    bool ok = *s && (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+') && end && *end == '\0' &&
              errno == 0;
    if (!ok) {
        ud_node_err(err, errlen, el, path, "<%s> is not an integer: \"%.40s\"", (const char *)el->name, s);
        free(s);
        return -1;
    }
    free(s);
    if (v < min || v > max) {
        ud_node_err(err, errlen, el, path, "<%s> value %ld out of range %d..%d", (const char *)el->name, v,
                    min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* tBool: xs:boolean lexical space, 0/1/true/false. */
static int parse_bool_str(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "true")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "false")) {
        *out = false;
        return 0;
    }
    return -1;
}

int ud_leaf_bool(const xmlNode *el, const char *path, bool empty_is_true, bool *out, char *err, size_t errlen)
{
    char *s = leaf_trimmed(el, path, err, errlen);
    if (!s)
        return -1;
    int rc = 0;
    if (!*s && empty_is_true)
        *out = true;
    else if (parse_bool_str(s, out) < 0) {
        ud_node_err(err, errlen, el, path, "<%s> is not a boolean (0/1/true/false): \"%.40s\"",
                    (const char *)el->name, s);
        rc = -1;
    }
    free(s);
    return rc;
}

/* Annex E integer of an enum with a table (ims_userdata.c): the table gives the range. */
int ud_leaf_enum(const xmlNode *el, const char *path, const ims_enum_name *table, int *out, char *err,
                 size_t errlen)
{
    int min, max;
    ud_enum_range(table, &min, &max);
    return ud_leaf_int(el, path, min, max, out, err, errlen);
}
