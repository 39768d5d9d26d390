/*
 * scscf_util: small helpers shared by the S-CSCF modules: a growable
 * string builder, random tokens, XML escaping and auth-param parsing (RFC 3261 §25.1 / RFC 7616
 * §3.4 quoted strings).
 */
#ifndef SCSCF_UTIL_H
#define SCSCF_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_map.h"   /* the string map of the S-CSCF stores */

/* ---------- string builder ---------- */
typedef struct {
    char *s;
    size_t len, cap;
    bool failed;            /* an allocation failed: the content is incomplete */
} scscf_buf;

void scscf_buf_printf(scscf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void scscf_buf_append(scscf_buf *b, const char *s, size_t len);
/* Appends s with & < > " ' escaped (XML attribute and text content). */
void scscf_buf_xml(scscf_buf *b, const char *s);
/* Returns the string (caller frees) or NULL when something failed; b is reset. */
char *scscf_buf_take(scscf_buf *b);
void scscf_buf_free(scscf_buf *b);

/* ---------- misc ---------- */
/* `n` random characters [0-9a-z] + NUL into out (n+1 bytes). */
void scscf_token(char *out, size_t n);
char *scscf_strdup(const char *s);   /* NULL-safe strdup */

/* Finds auth-param `name` (case-insensitive) in a sofia-sip parameter list ("name=value" items,
 * values possibly quoted) and copies the unquoted value into buf. Returns buf, or NULL when
 * absent or too long. */
const char *scscf_param(const char *const *params, const char *name, char *buf, size_t len);

#endif
