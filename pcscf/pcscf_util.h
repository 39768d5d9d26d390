/*
 * pcscf_util: SIP helpers the P-CSCF modules share (header lists, option tags, source address,
 * URI comparison). Over sofia-sip; no P-CSCF state.
 */
#ifndef PCSCF_UTIL_H
#define PCSCF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

#include "pcscf_bindings.h"

/* Where the request of irq came from (numeric address, port, "udp"/"tcp"). 0 / -1. */
int pcscf_source_of(nta_incoming_t *irq, pcscf_addr *out);
/* The same for a received message. */
int pcscf_source_of_msg(msg_t *msg, pcscf_addr *out);

/* Calls fn for every value of header `name` (all instances; for headers sofia-sip does not parse,
 * and the first instance of those it parses). Stops when fn returns non-zero. Returns the count. */
typedef int (*pcscf_value_f)(void *arg, const char *value);
int pcscf_header_values(const sip_t *sip, const char *name, pcscf_value_f fn, void *arg);

/* Splits a header value holding a comma-separated list of name-addr / addr-spec
 * ("<sip:a@x>;p=1, \"B\" <tel:+1>") and calls fn with each URI (without <>, display name or
 * header parameters). Returns how many URIs. */
int pcscf_split_uris(const char *list, pcscf_value_f fn, void *arg);

/* The URI of a single name-addr / addr-spec, copied into out. 0 / -1. */
int pcscf_addr_uri(const char *value, char *out, size_t len);

/* True when an option-tag list (Require, Proxy-Require, Supported) holds `tag`. */
bool pcscf_list_has(const msg_list_t *list, const char *tag);
/* Removes `tag` from every header of the list kind `name` ("Require", "Proxy-Require"); a header
 * left empty disappears. Returns 1 when something was removed, 0 when not, -1 on error. */
int pcscf_remove_option_tag(msg_t *msg, sip_t *sip, const char *name, const char *tag);

/* Contact comparison: same scheme, user, host (case-insensitive) and port (absent = 5060). */
bool pcscf_uri_same(const char *a, const char *b);
bool pcscf_url_same(const url_t *a, const url_t *b);

/* The canonical identity (ims_identity_normalise: scheme and host lower-case, user part as
 * RFC 3261 §19.1.4 says, no parameters) of a bare URI string. 0 / -1. */
int pcscf_identity(const char *uri, char *out, size_t len);
/* Index key of an identity: its canonical form, or the text itself when it is not a URI
 * ims_identity normalises (then it matches only itself). False when it does not fit in len. */
bool pcscf_identity_key(const char *identity, char *out, size_t len);
/* Same identity (equal keys). */
bool pcscf_identity_same(const char *a, const char *b);

/* Removes the first Route header (the one naming us). */
void pcscf_pop_route(msg_t *msg, sip_t *sip);

/* Answers irq (which the NF owns after returning 0 from on_request) and releases it. */
void pcscf_reply(nta_incoming_t *irq, int status, const char *phrase);

#endif
