/*
 * ims_bencode: bencode decoder and encoder (see ims_bencode.h).
 *
 * References: BitTorrent BEP 3 "bencoding":
 *   integer  i<digits>e     "-" allowed, no leading zeros, "-0" invalid
 *   string   <len>:<bytes>  len in decimal, no leading zeros
 *   list     l<values>e
 *   dict     d(<string key><value>)*e
 *
 * The decoder runs twice over the input: a first pass checks everything (limits, syntax) and
 * counts nodes and string bytes, the second builds the tree into one allocation sized from those
 * counts. Hostile input therefore costs at most one bounded scan and never a partial tree.
 * Recursion depth is bounded by max_depth. Duplicate dictionary keys are kept; lookups return the
 * first.
 */
#include "ims_bencode.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_INPUT 65535
#define DEFAULT_MAX_DEPTH 16
#define DEFAULT_MAX_ITEMS 8192

struct ims_benc_doc {
    ims_benc *root;
    /* the nodes, then the string bytes, follow in the same allocation */
};

typedef struct {
    const char *buf;
    size_t len, pos;
    size_t max_depth, max_items;
    size_t items;           /* nodes seen (pass 1) / built (pass 2) */
    size_t str_bytes;       /* string bytes incl. NULs (pass 1) / used (pass 2) */
    ims_benc *nodes;        /* pass 2 only */
    char *strs;
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *what)
{
    ims_set_err(p->err, p->errlen, "at byte %zu: %s", p->pos, what);
    return -1;
}

/* Reads an unsigned decimal (no sign, no leading zero unless it is "0") ending at `end`.
 * Bounded to 18 digits so it never overflows. */
static int read_uint(parser *p, char end, uint64_t *out)
{
    size_t start = p->pos;
    uint64_t v = 0;
    while (p->pos < p->len && p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9') {
        if (p->pos - start >= 18)
            return fail(p, "number too long");
        v = v * 10 + (uint64_t)(p->buf[p->pos] - '0');
        p->pos++;
    }
    if (p->pos == start)
        return fail(p, "digit expected");
    if (p->buf[start] == '0' && p->pos - start > 1) {
        p->pos = start;
        return fail(p, "leading zero");
    }
    if (p->pos >= p->len)
        return fail(p, "input ends inside a number");
    if (p->buf[p->pos] != end)
        return fail(p, end == ':' ? "':' expected after a string length" : "'e' expected after an integer");
    p->pos++;
    *out = v;
    return 0;
}

/* A string at p->pos; on pass 2 copies it (NUL-terminated) and returns the copy. */
static int parse_string(parser *p, const char **s, size_t *slen)
{
    uint64_t n;
    if (read_uint(p, ':', &n) < 0)
        return -1;
    if (n > p->len - p->pos)
        return fail(p, "string length beyond the end of the input");
    if (p->nodes) {
        char *c = p->strs + p->str_bytes;
        memcpy(c, p->buf + p->pos, (size_t)n);
        c[n] = '\0';
        *s = c;
    }
    *slen = (size_t)n;
    p->str_bytes += (size_t)n + 1;
    p->pos += (size_t)n;
    return 0;
}

static ims_benc *new_node(parser *p, ims_benc_type t)
{
    ims_benc *n = NULL;
    if (p->nodes) {
        n = &p->nodes[p->items];
        memset(n, 0, sizeof(*n));
        n->type = t;
    }
    p->items++;
    return n;
}

static int parse_value(parser *p, size_t depth, ims_benc **out);

/* A list or dict body after its 'l' / 'd', up to and including the 'e'. */
static int parse_container(parser *p, size_t depth, bool dict, ims_benc *node)
{
    const ims_benc **tail = node ? &node->first : NULL;
    size_t count = 0;
    if (depth >= p->max_depth)
        return fail(p, "nested too deep");
    for (;;) {
        if (p->pos >= p->len)
            return fail(p, dict ? "input ends inside a dictionary" : "input ends inside a list");
        if (p->buf[p->pos] == 'e') {
            p->pos++;
            break;
        }
        const char *key = NULL;
        size_t key_len = 0;
        if (dict) {
            if (p->buf[p->pos] < '0' || p->buf[p->pos] > '9')
                return fail(p, "dictionary key must be a string");
            if (parse_string(p, &key, &key_len) < 0)
                return -1;
            if (p->pos >= p->len)
                return fail(p, "dictionary key without a value");
        }
        ims_benc *item;
        if (parse_value(p, depth + 1, &item) < 0)
            return -1;
        if (item) {
            item->key = key;
            item->key_len = key_len;
            *tail = item;
            tail = &item->next;
        }
        count++;
    }
    if (node)
        node->len = count;
    return 0;
}

static int parse_value(parser *p, size_t depth, ims_benc **out)
{
    *out = NULL;
    if (p->pos >= p->len)
        return fail(p, "value expected");
    if (p->items >= p->max_items)
        return fail(p, "too many items");
    char c = p->buf[p->pos];
    ims_benc *n;
    switch (c) {
    case 'i': {
        p->pos++;
        bool neg = p->pos < p->len && p->buf[p->pos] == '-';
        if (neg)
            p->pos++;
        uint64_t v;
        if (read_uint(p, 'e', &v) < 0)
            return -1;
        if (neg && v == 0)
            return fail(p, "negative zero");
        n = new_node(p, IMS_BENC_INT);
        if (n)
            n->num = neg ? -(int64_t)v : (int64_t)v;
        break;
    }
    case 'l':
    case 'd':
        p->pos++;
        n = new_node(p, c == 'l' ? IMS_BENC_LIST : IMS_BENC_DICT);
        if (parse_container(p, depth, c == 'd', n) < 0)
            return -1;
        break;
    default:
        if (c < '0' || c > '9')
            return fail(p, "unexpected byte (not i, l, d or a digit)");
        n = new_node(p, IMS_BENC_STR);
        {
            const char *s = NULL;
            size_t len;
            if (parse_string(p, &s, &len) < 0)
                return -1;
            if (n) {
                n->str = s;
                n->len = len;
            }
        }
        break;
    }
    *out = n;
    return 0;
}

ims_benc_doc *ims_benc_decode(const char *buf, size_t len, const ims_benc_limits *lim, char *err,
                              size_t errlen)
{
    size_t max_input = lim && lim->max_input ? lim->max_input : DEFAULT_MAX_INPUT;
    parser p = {
        .buf = buf, .len = len,
        .max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH,
        .max_items = lim && lim->max_items ? lim->max_items : DEFAULT_MAX_ITEMS,
        .err = err, .errlen = errlen,
    };
    if (!buf && len) {
        ims_set_err(err, errlen, "no input");
        return NULL;
    }
    if (len > max_input) {
        ims_set_err(err, errlen, "input of %zu bytes exceeds the limit of %zu", len, max_input);
        return NULL;
    }
    ims_benc *root;
    if (parse_value(&p, 0, &root) < 0)
        return NULL;
    if (p.pos != len) {
        fail(&p, "trailing bytes after the value");
        return NULL;
    }

    /* Pass 2 into one allocation: the doc header, the nodes, the strings. */
    size_t n_nodes = p.items, n_bytes = p.str_bytes;
    ims_benc_doc *d = malloc(sizeof(*d) + n_nodes * sizeof(ims_benc) + n_bytes);
    if (!d) {
        ims_set_err(err, errlen, "out of memory");
        return NULL;
    }
    p.nodes = (ims_benc *)(d + 1);
    p.strs = (char *)(p.nodes + n_nodes);
    p.pos = 0;
    p.items = 0;
    p.str_bytes = 0;
    if (parse_value(&p, 0, &d->root) < 0) {   /* cannot fail: pass 1 accepted the same bytes */
        free(d);
        return NULL;
    }
    return d;
}

const ims_benc *ims_benc_root(const ims_benc_doc *d)
{
    return d ? d->root : NULL;
}

void ims_benc_free(ims_benc_doc *d)
{
    free(d);
}

const ims_benc *ims_benc_get(const ims_benc *dict, const char *key)
{
    if (!dict || dict->type != IMS_BENC_DICT || !key)
        return NULL;
    size_t kl = strlen(key);
    for (const ims_benc *it = dict->first; it; it = it->next)
        if (it->key_len == kl && memcmp(it->key, key, kl) == 0)
            return it;
    return NULL;
}

const char *ims_benc_get_str(const ims_benc *dict, const char *key, size_t *len)
{
    const ims_benc *v = ims_benc_get(dict, key);
    if (!v || v->type != IMS_BENC_STR)
        return NULL;
    if (len)
        *len = v->len;
    return v->str;
}

int64_t ims_benc_get_int(const ims_benc *dict, const char *key, int64_t fallback)
{
    const ims_benc *v = ims_benc_get(dict, key);
    return v && v->type == IMS_BENC_INT ? v->num : fallback;
}

/* ---------- encoder ---------- */

void ims_benc_put_int(ims_strbuf *b, int64_t v)
{
    ims_strbuf_printf(b, "i%" PRId64 "e", v);
}

void ims_benc_put_str(ims_strbuf *b, const char *s, size_t len)
{
    ims_strbuf_printf(b, "%zu:", len);
    ims_strbuf_append(b, s ? s : "", s ? len : 0);
}

void ims_benc_put_cstr(ims_strbuf *b, const char *s)
{
    ims_benc_put_str(b, s, s ? strlen(s) : 0);
}

void ims_benc_open_dict(ims_strbuf *b)
{
    ims_strbuf_append(b, "d", 1);
}

void ims_benc_open_list(ims_strbuf *b)
{
    ims_strbuf_append(b, "l", 1);
}

void ims_benc_close(ims_strbuf *b)
{
    ims_strbuf_append(b, "e", 1);
}

void ims_benc_encode(ims_strbuf *b, const ims_benc *v)
{
    if (!v)
        return;
    switch (v->type) {
    case IMS_BENC_INT:
        ims_benc_put_int(b, v->num);
        break;
    case IMS_BENC_STR:
        ims_benc_put_str(b, v->str, v->len);
        break;
    case IMS_BENC_LIST:
    case IMS_BENC_DICT:
        ims_strbuf_append(b, v->type == IMS_BENC_LIST ? "l" : "d", 1);
        for (const ims_benc *it = v->first; it; it = it->next) {
            if (v->type == IMS_BENC_DICT)
                ims_benc_put_str(b, it->key, it->key_len);
            ims_benc_encode(b, it);
        }
        ims_benc_close(b);
        break;
    }
}

bool ims_benc_equal(const ims_benc *a, const ims_benc *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case IMS_BENC_INT:
        return a->num == b->num;
    case IMS_BENC_STR:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case IMS_BENC_LIST:
    case IMS_BENC_DICT:
        if (a->len != b->len)
            return false;
        for (const ims_benc *x = a->first, *y = b->first; x && y; x = x->next, y = y->next) {
            if (a->type == IMS_BENC_DICT &&
                (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0))
                return false;
            if (!ims_benc_equal(x, y))
                return false;
        }
        return true;
    }
    return false;
}
