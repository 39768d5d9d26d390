/*
 * scscf_util: small helpers shared by the S-CSCF modules: a NULL-safe strdup and auth-param
 * parsing (RFC 3261 §25.1 / RFC 7616 §3.4 quoted strings). The string builder is
 * common/ims_strbuf.h, random tokens are ims_sip_random_token (common/ims_sip_hdr.c).
 */
#ifndef SCSCF_UTIL_H
#define SCSCF_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_map.h"   /* the string map of the S-CSCF stores */

/* ---------- misc ---------- */
char *scscf_strdup(const char *s);   /* NULL-safe strdup */

/* Finds auth-param `name` (case-insensitive) in a sofia-sip parameter list ("name=value" items,
 * values possibly quoted) and copies the unquoted value into buf. Returns buf, or NULL when
 * absent or too long. */
const char *scscf_param(const char *const *params, const char *name, char *buf, size_t len);

#endif
