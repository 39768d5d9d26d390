/*
 * pcscf_xfrm: the P-CSCF's IPsec security associations in the Linux kernel (XFRM netlink, libmnl).
 *
 * TS 33.203 §7.1-7.2 and Annex H: sec-agree "ipsec-3gpp" uses ESP in transport mode between the UE
 * and the P-CSCF, one SA per direction and per client/server port pair (four per UE). This module
 * installs one such SA with the policies that bind its ports to it; the caller (the P-CSCF's
 * sec-agree logic) decides which SAs exist and when. Keys come already derived (TS 33.203 Annex I,
 * common/ims_secagree); keys are never logged or put in error texts.
 *
 * Tagging: every SA and policy we install carries the open()'s `tag` as its XFRM reqid (state
 * reqid, and the reqid of the policy's ESP template). pcscf_xfrm_flush_ours() deletes exactly the
 * entries with that reqid, so a restarted P-CSCF removes what it left behind and never touches the
 * host's other SAs (strongSwan, another P-CSCF with another tag, ...). Why reqid and not an XFRM
 * mark: a mark takes part in matching (a state or policy with a mark only applies to packets whose
 * skb mark matches), so marking ours would need every protected packet marked, and packets from
 * the UE arrive unmarked; the reqid only links a policy's template to its states and changes
 * nothing on the data path. reqid 0 means "any" in a template, so the tag must not be 0.
 *
 * Policies (per SA):
 *   out: selector src:sport -> dst:dport, template ESP transport, this SPI, level required: a
 *        packet on those ports never leaves in clear (no SA -> dropped, not sent).
 *   in:  selector src:sport -> dst:dport, template ESP transport, this SPI, level required: a clear
 *        packet (or one from another SA) arriving on those ports is dropped by the kernel.
 * One policy per SA covers UDP and TCP: its selector has protocol 0 with the ports, which the
 * kernel matches for both (verified in tests/vm/test_xfrm.c; `ip xfrm` itself only takes ports
 * with a protocol, so a UE configured with it needs one policy per protocol). The SA's own
 * selector is the same flow, so an SA carries nothing but its port pair. Only packets from
 * exactly src:sport are covered: a clear packet from another port of the UE is the caller's to
 * refuse. Policies carry no lifetime (fail closed): the SA expires by itself, its policies stay
 * until pcscf_xfrm_del() or pcscf_xfrm_flush_ours().
 *
 * Needs CAP_NET_ADMIN. Not thread-safe: one handle per thread (the P-CSCF's main loop).
 * Every call returns 0 on success and -1 on failure with a one-line reason in err (errno text
 * of the kernel, the SPI and addresses; "needs CAP_NET_ADMIN" for EPERM).
 */
#ifndef PCSCF_XFRM_H
#define PCSCF_XFRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pcscf_xfrm pcscf_xfrm;

typedef enum {
    PCSCF_XFRM_IN = 0,  /* we are dst: the UE's packets to us (spi-ps, spi-pc) */
    PCSCF_XFRM_OUT = 1, /* we are src: our packets to the UE (spi-uc, spi-us) */
} pcscf_xfrm_dir;

#define PCSCF_XFRM_ADDR_MAX 46 /* INET6_ADDRSTRLEN */
#define PCSCF_XFRM_KEY_MAX 32

/* One ESP transport SA and its policies. Algorithm names are those of sec-agree (RFC 3329,
 * TS 33.203 Annex H): alg "hmac-sha-1-96" (key 20 bytes) | "hmac-md5-96" (16 bytes), both
 * truncated to 96 bits; ealg "null" (no key) | "aes-cbc" (16 bytes) | "des-ede3-cbc" (24 bytes). */
typedef struct pcscf_xfrm_sa {
    char src[PCSCF_XFRM_ADDR_MAX]; /* sender's address literal, IPv4 or IPv6 ("10.0.0.2", "2001:db8::2") */
    char dst[PCSCF_XFRM_ADDR_MAX]; /* receiver's address literal, same family */
    uint16_t sport, dport;         /* the sender's and receiver's protected ports */
    uint32_t spi;                  /* host order; chosen by the receiver (>= 256) */
    pcscf_xfrm_dir dir;
    char alg[16];
    uint8_t auth_key[PCSCF_XFRM_KEY_MAX];
    size_t auth_key_len;
    char ealg[16];
    uint8_t enc_key[PCSCF_XFRM_KEY_MAX];
    size_t enc_key_len;
    unsigned lifetime; /* seconds from now to the hard expiry (soft expiry a little earlier); 0: none */
} pcscf_xfrm_sa;

/* Opens the XFRM netlink socket. tag: the reqid of all our entries (non-zero, e.g. configured
 * per P-CSCF instance). NULL on failure (err says why). */
pcscf_xfrm *pcscf_xfrm_open(uint32_t tag, char *err, size_t errlen);
void pcscf_xfrm_close(pcscf_xfrm *x);

/* Installs the SA (XFRM_MSG_NEWSA, replay window 32) and its policies. On failure nothing of it
 * remains installed. An existing SA with the same dst/SPI, or policy with the same selector,
 * is an error (EEXIST). */
int pcscf_xfrm_add(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, char *err, size_t errlen);

/* The SA now expires `seconds` from now, to the second (XFRM_MSG_UPDSA; the kernel counts
 * lifetimes from the SA's creation, this converts); 0: never. Only an SA with our tag. sa as given
 * to add (keys included: UPDSA carries the whole SA). */
int pcscf_xfrm_set_lifetime(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, unsigned seconds, char *err,
                            size_t errlen);

/* Deletes the SA and its policies. Entries already gone (e.g. the SA expired) are not an error:
 * on success none of them exists any more. */
int pcscf_xfrm_del(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, char *err, size_t errlen);
/* on: an out policy blocking everything from local:sport to the address ue (any port, any
 * protocol), tagged like our SAs; off: that policy removed. Already there / already gone is
 * success. The P-CSCF's plain SIP port towards a UE that has SAs (nothing in clear). */
int pcscf_xfrm_block(pcscf_xfrm *x, const char *local, uint16_t sport, const char *ue, bool on, char *err,
                     size_t errlen);

/* Deletes every SA and policy carrying our tag (start-up, shutdown). *deleted (may be NULL):
 * how many entries (SAs + policies) were removed. */
int pcscf_xfrm_flush_ours(pcscf_xfrm *x, unsigned *deleted, char *err, size_t errlen);

/* The SA's packet and byte counters (XFRM_MSG_GETSA, current lifetime): tests, metrics. */
int pcscf_xfrm_counters(pcscf_xfrm *x, const pcscf_xfrm_sa *sa, uint64_t *packets, uint64_t *bytes,
                        char *err, size_t errlen);

#endif
