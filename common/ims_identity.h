/*
 * ims_identity: the one canonical form of an IMS identity, used as the key wherever an identity
 * is stored or compared (P-CSCF bindings and reg-event subscriptions, S-CSCF registrations, I-CSCF
 * Cx requests, HSS store and provisioning).
 *
 * References:
 *  - RFC 3261 §19.1.4 (SIP URI comparison: scheme and host case-insensitive, userinfo
 *    case-sensitive, characters outside the reserved set equal to their %HEX HEX escape, a
 *    component with a default value not equal to its absence), §25.1 (user, host grammar)
 *  - RFC 3966 §3, §5.1.5 (tel: global numbers, visual separators, phone-context of local numbers)
 *  - TS 23.003 §13.3 (IMPI: NAI user@realm), §13.4 (IMPU: SIP URI or tel URI)
 *  - RFC 5952 §4 (IPv6 text form: lower case, shortest)
 */
#ifndef IMS_IDENTITY_H
#define IMS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

/* A buffer this large holds any identity the NFs keep (their SIP buffers are 512 bytes). */
#define IMS_IDENTITY_MAX 512

/* Canonical key of a public identity (a bare sip:, sips: or tel: URI; no display name, no angle
 * brackets). 0, or -1 when `in` is not such a URI or the result does not fit in len (then
 * nothing is guaranteed in out).
 *   sip/sips: scheme lower-cased; user kept case-sensitive with %-escapes of unreserved
 *     characters decoded and other escapes' hex upper-cased; password dropped; host lower-cased
 *     (an IPv6 reference in RFC 5952 form); port kept as written (without leading zeros) — "sip:a@h"
 *     and "sip:a@h:5060" are different URIs (§19.1.4); parameters and headers dropped.
 *   tel: global number "+digits" without visual separators "-.()"; a local number keeps its
 *     (required) phone-context, lower-cased; every other parameter dropped. */
int ims_identity_normalise(const char *in, char *out, size_t len);

/* Canonical key of a private identity (NAI user@realm): the realm (after the last '@')
 * lower-cased, the user kept. An IMPI without '@' is kept as it is. 0, or -1 when empty, with an
 * empty user or realm, with spaces or control characters, or when it does not fit. */
int ims_identity_normalise_private(const char *impi, char *out, size_t len);

/* True when both are public identities with the same canonical key. */
bool ims_identity_equal(const char *a, const char *b);

#endif
