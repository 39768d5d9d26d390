/*
 * ims_bencode: the bencode codec of rtpengine's ng control protocol.
 *
 * References:
 *   BitTorrent BEP 3 "bencoding": integers i<decimal>e, strings <length>:<bytes>, lists l...e,
 *     dictionaries d<key><value>...e with byte-string keys (sorted on the wire).
 *   rtpengine ng protocol (docs "ng Control Protocol"): one UDP datagram "<cookie> <bencoded dict>".
 *
 * The decoder takes input from outside the trust domain (any UDP peer can send us a datagram), so it
 * is bounded: nesting depth, item count and input length are limited, every error names the byte
 * position, and a decoded document owns all its memory (one arena; strings are copied and
 * NUL-terminated, so an SDP can be used as a C string; len stays authoritative). Only the one
 * canonical spelling of a value is accepted (no leading zeros, no "-0"); numbers (integers and
 * string lengths) have at most 18 digits, so they never overflow.
 *
 * The encoder appends to an ims_strbuf; the caller writes dictionary keys in sorted order (rtpengine
 * does not require it, BEP 3 does).
 */
#ifndef IMS_BENCODE_H
#define IMS_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_strbuf.h"

typedef enum { IMS_BENC_INT, IMS_BENC_STR, IMS_BENC_LIST, IMS_BENC_DICT } ims_benc_type;

typedef struct ims_benc ims_benc;
struct ims_benc {
    ims_benc_type type;
    int64_t num;                /* INT */
    const char *str;            /* STR: NUL-terminated copy (may contain NULs; len counts) */
    size_t len;                 /* STR: bytes; LIST/DICT: number of items */
    const char *key;            /* on an item of a DICT: its key (NUL-terminated copy), else NULL */
    size_t key_len;
    const ims_benc *first;      /* LIST/DICT: first item */
    const ims_benc *next;       /* next item of the enclosing LIST/DICT */
};

typedef struct {
    size_t max_input;           /* bytes (default 65535: one UDP datagram) */
    unsigned max_depth;         /* nested lists/dicts (default 16) */
    size_t max_items;           /* values of every kind in the document (default 8192) */
} ims_benc_limits;

typedef struct ims_benc_doc ims_benc_doc;

/* Decodes exactly one value spanning buf[0..len) (trailing bytes are an error). lim NULL = the
 * defaults; 0 in a field = its default. NULL + err ("at byte N: ...") on bad input or ENOMEM. */
ims_benc_doc *ims_benc_decode(const char *buf, size_t len, const ims_benc_limits *lim, char *err,
                              size_t errlen);
const ims_benc *ims_benc_root(const ims_benc_doc *d);
void ims_benc_free(ims_benc_doc *d);

/* Lookup helpers; NULL-safe (a NULL or wrong-typed node gives NULL / the fallback). */
const ims_benc *ims_benc_get(const ims_benc *dict, const char *key);
/* The string value of dict[key] (NUL-terminated) or NULL when missing or not a string. */
const char *ims_benc_get_str(const ims_benc *dict, const char *key, size_t *len);
int64_t ims_benc_get_int(const ims_benc *dict, const char *key, int64_t fallback);

/* ---------- encoder ---------- */
void ims_benc_put_int(ims_strbuf *b, int64_t v);
void ims_benc_put_str(ims_strbuf *b, const char *s, size_t len);
void ims_benc_put_cstr(ims_strbuf *b, const char *s);
void ims_benc_open_dict(ims_strbuf *b);
void ims_benc_open_list(ims_strbuf *b);
void ims_benc_close(ims_strbuf *b);
/* Re-encodes a decoded value (round trips: decode(encode(v)) equals v). */
void ims_benc_encode(ims_strbuf *b, const ims_benc *v);
/* Structural equality of two decoded values (dict items compared in order). */
bool ims_benc_equal(const ims_benc *a, const ims_benc *b);

#endif
