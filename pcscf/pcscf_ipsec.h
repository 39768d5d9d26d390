/*
 * pcscf_ipsec: the sec-agree IPsec SA sets of the P-CSCF (TS 33.203 §7, TS 24.229 §5.2.2-5.2.3).
 * What is and is not supported, and why: pcscf_ipsec.c.
 *
 * A UE's SA set is named by the flow its protected requests come from: pcscf_addr
 * { UE address, its port-c, transport "sa" } (pcscf_bindings.h). pcscf_ue_source() gives that flow
 * for a request that arrived on our protected server port from the port-c of a set; every other
 * request keeps its plain flow ("udp" / "tcp"), so the bindings store, which authorises UE requests
 * by their exact flow, needs no other change.
 */
#ifndef PCSCF_IPSEC_H
#define PCSCF_IPSEC_H

#include <stdbool.h>
#include <stdint.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

#include "ims_secagree.h"
#include "pcscf_context.h"

/* ims_sip idents of our protected transports */
#define PCSCF_IDENT_PORT_C "pc"
#define PCSCF_IDENT_PORT_S "ps"
#define PCSCF_FLOW_SA "sa"

/* What a REGISTER asked for and came over, kept with the pending REGISTER. */
typedef struct {
    bool offered;            /* an acceptable ipsec-3gpp mechanism was chosen */
    ims_sa_mech ue;          /* ... the UE's (its spi-c/s, port-c/s, alg, ealg) */
    uint64_t came_over;      /* the SA set (id) the REGISTER arrived over; 0: unprotected */
    uint64_t created;        /* the set our 401 set up (id), 0: none */
} pcscf_ipsec_reg;

/* Start-up (sec_agree not off): the protected listeners, the XFRM socket, and the flush of SAs a
 * previous run left. 0 / -1 + err. Stop: every set deleted, then the socket closed. */
int pcscf_ipsec_start(pcscf_context *ctx, char *err, size_t errlen);
void pcscf_ipsec_stop(pcscf_context *ctx);

/* Where the request came from (pcscf_source_of), as the "sa" flow of its SA set when it arrived
 * on our protected server port from a set's port-c; *protected_out (may be NULL) says which. */
int pcscf_ue_source(pcscf_context *ctx, nta_incoming_t *irq, pcscf_addr *out, bool *protected_out);
/* The same for a request being delivered without a transaction (pcscf_route_stateless). */
int pcscf_ue_source_msg(pcscf_context *ctx, msg_t *msg, pcscf_addr *out, bool *protected_out);
/* True when the UE at `host` has an SA set in use (its plain requests are refused). */
bool pcscf_ipsec_host_protected(pcscf_context *ctx, const char *host);

/* REGISTER from the UE (src from pcscf_ue_source): the mechanism choice and, over an SA set,
 * the Security-Verify check. 0 (go on; *reg filled), or a status to answer (400, 494) with
 * *phrase. */
int pcscf_ipsec_on_register(pcscf_context *ctx, const sip_t *sip, const pcscf_addr *src, pcscf_ipsec_reg *reg,
                            const char **phrase);
/* The forwarded REGISTER: any integrity-protected parameter of the UE removed, then
 * integrity-protected="yes" in its Authorization when it came over an SA set (TS 24.229
 * §5.2.2.1). 0 / -1. */
int pcscf_ipsec_mark_register(msg_t *msg, sip_t *sip, const pcscf_ipsec_reg *reg);
/* The 401 for it: takes CK/IK (before they are stripped), installs a temporary SA set, adds
 * Security-Server. 0, or 500 (no SAs could be set up: the UE must not be left waiting for them). */
int pcscf_ipsec_on_401(pcscf_context *ctx, pcscf_ipsec_reg *reg, const char *impu, const pcscf_addr *src,
                       msg_t *msg, sip_t *sip);
/* The 200 (expires: the registration's expiry in seconds, 0 for a de-registration): the set it
 * came over is now the UE's, with lifetime expires + sa_slack; older sets of the UE for this
 * identity go (TS 33.203 §7.4), and their flows (up to max) are returned in `replaced`: the
 * caller moves their bindings to the new flow. */
size_t pcscf_ipsec_on_200(pcscf_context *ctx, const pcscf_ipsec_reg *reg, const char *impu, long expires,
                          pcscf_addr *replaced, size_t max);
/* Any other final response: a temporary set the REGISTER came over or created goes; for a
 * REGISTER in clear (src: its source) also the unused temporary sets of impu at that UE, set up
 * by an earlier challenge the UE answered without them (MAC failure, TS 24.229 §5.1.1.5.3). */
void pcscf_ipsec_on_failure(pcscf_context *ctx, const pcscf_ipsec_reg *reg, const char *impu,
                            const pcscf_addr *src);
/* A binding left the store: its SA set goes (a moment later, so that the response in flight,
 * e.g. the 200 to a de-registration, still leaves protected). */
void pcscf_ipsec_flow_gone(pcscf_context *ctx, const pcscf_addr *source);
/* For a request to a UE registered over an "sa" flow: where to send it (sip:UE:port-us;
 * transport=udp) and the ident of our port-c transports. 0 / -1 (no such set). */
int pcscf_ipsec_next_hop(pcscf_context *ctx, const pcscf_addr *flow, su_home_t *home, url_t **hop,
                         const char **ident);
/* Housekeeping: temporary sets past their lifetime, sets whose deletion is due. */
void pcscf_ipsec_sweep(pcscf_context *ctx, int64_t now);

#endif
