/*
 * ims_trust: the trust domain of a CSCF — "is this peer one of our network elements?"
 *
 * The trust domain (RFC 3325 §2.3 "Trust Domain", TS 24.229 §4.4, TS 33.210 §4 "Network Domain
 * Security") is the set of P-/I-/S-CSCFs, application servers and breakout elements of this IMS.
 * Identity and charging headers (P-Asserted-Identity, P-Charging-*, P-Served-User ...) are believed
 * only from inside it, and some NFs (the S-CSCF) serve nobody outside it.
 *
 * Configuration: the "trust:" section, the same keys in every CSCF (ims_trust_cfg_fields):
 *   trust.peers  host names or IP literals; a name is resolved once at start, through the NF's
 *                sip.hosts table first, then DNS (getaddrinfo, every address it gives). A name
 *                that resolves to nothing is a start-up error naming it.
 *   trust.cidrs  IPv4/IPv6 ranges "address/prefix" (172.22.0.0/24, fd00::/64, 10.0.0.7/32);
 *                a malformed range, or one with bits set beyond the prefix, is a configuration
 *                error naming file:line:key.
 * Both empty (section absent): only the NF's own listen address is trusted (127.0.0.1/32 and
 * ::1/128 when it listens on a wildcard address). A single-host lab, where every NF shares one
 * address, keeps working; any deployment across hosts must list its elements, and until it does
 * the refusals say who was refused (README "Security model"). Nothing off the host is ever
 * trusted by default.
 *
 * An IPv4-mapped IPv6 source (::ffff:a.b.c.d, from a dual-stack socket) is matched as IPv4.
 *
 * Threads: create and free on any one thread; ims_trust_admit (it keeps the warning's rate
 * limit) on the SIP loop thread only; ims_trust_is_trusted anywhere (read-only).
 */
#ifndef IMS_TRUST_H
#define IMS_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su.h>

#include "ims_config.h"
#include "ims_sip.h"

/* The "trust:" section of every CSCF's YAML. */
typedef struct {
    ims_cfg_strlist peers;      /* host names (sip.hosts, then DNS) or IP literals */
    ims_cfg_strlist cidrs;      /* "address/prefix" ranges */
} ims_trust_cfg;

extern const ims_cfg_field ims_trust_cfg_fields[];

/* The value check of trust.cidrs items (ims_cfg_field.check): 0, or -1 with the reason. */
int ims_trust_cidr_check(const char *value, char *why, size_t whylen);

typedef struct ims_trust ims_trust;

/* Name -> address table consulted before DNS (the NF's sip.hosts); NULL when it has no entry. */
typedef const char *(*ims_trust_lookup_f)(void *arg, const char *name);

/* Builds the trust domain. `lookup` may be NULL (DNS only). `self_addr` is the NF's listen
 * address, trusted alone when cfg has neither peers nor cidrs (see above). NULL + err when a
 * range is malformed or a peer name does not resolve. */
ims_trust *ims_trust_create(const ims_trust_cfg *cfg, ims_trust_lookup_f lookup, void *arg,
                            const char *self_addr, char *err, size_t errlen);
/* ims_trust_create with the agent's sip.hosts table and listen address. */
ims_trust *ims_trust_new(const ims_trust_cfg *cfg, const ims_sip *sip, char *err, size_t errlen);
void ims_trust_free(ims_trust *t);
/* Start-up of a NF: ims_trust_new, then an INFO line listing the trust domain; on error the
 * process exits with code 2 (ims_nf_die), the message naming the key and item. */
ims_trust *ims_trust_start(const ims_trust_cfg *cfg, const ims_sip *sip, const char *subsys);

/* True when the address is inside the trust domain. NULL t or addr: false. */
bool ims_trust_is_trusted(const ims_trust *t, const su_sockaddr_t *addr);
/* True when a host (of a URI: IP literal, [v6], or name) is inside the trust domain: a name
 * listed in trust.peers, or an address (the literal, or what sip.hosts maps the name to) in a
 * trusted range. No DNS lookup is made (this runs on the SIP loop): a name that is neither a peer
 * nor in sip.hosts is not trusted. `sip` may be NULL (no sip.hosts). */
bool ims_trust_host_is_trusted(const ims_trust *t, const ims_sip *sip, const char *host);
/* True when the configuration gave neither peers nor cidrs (the listen-address default). */
bool ims_trust_is_implicit(const ims_trust *t);
/* The ranges as text for the start-up log: "127.0.0.1/32, 172.22.0.0/24". */
void ims_trust_describe(const ims_trust *t, char *buf, size_t len);

/* Source address of a request (the packet's, not its Via): 0, or -1 when nta does not know it.
 * `text` (may be NULL) receives "address:port" / "[v6]:port" for logs. */
int ims_trust_source(nta_incoming_t *irq, su_sockaddr_t *out, char *text, size_t textlen);

/* The entry check of a CSCF: true when irq comes from inside the trust domain. Otherwise it
 * counts sip_untrusted_refused_total{method=...}, logs a WARN (at most one a second, with the
 * number left unlogged) naming the source address and the method, and returns false: the caller
 * refuses the request (403; an ACK is dropped) before any processing. */
bool ims_trust_admit(ims_trust *t, nta_incoming_t *irq, const sip_t *sip, const char *subsys);

#endif
