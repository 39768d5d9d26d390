/*
 * inproc_pcscf_lab: the P-CSCF under test and the peers around it, shared by the in-process
 * P-CSCF tests (inproc_pcscf.c, inproc_pcscf_regevent.c). See inproc.h.
 *
 * The lab: the P-CSCF on 127.0.0.1 (an ephemeral port, home domain ims.lab, visited network
 * visited.lab), the UE (UDP), the I-CSCF (pcscf.icscf: REGISTERs go there) and the S-CSCF (the
 * Service-Route the tests' 200s give: "orig" on its port). The I-CSCF and S-CSCF peers speak the
 * core transport (sip.core_transport: udp or tcp).
 */
#ifndef INPROC_PCSCF_LAB_H
#define INPROC_PCSCF_LAB_H

#include <stdbool.h>

#include "inproc.h"

#define PCSCF_LAB_WAIT_MS 3000

typedef struct {
    int port;                  /* the P-CSCF's */
    const char *core;          /* "UDP" or "TCP": the Via transport of the core peers */
    const char *core_param;    /* "" or ";transport=tcp": in the core peers' URIs (Service-Route) */
    inproc_peer ue, icscf, scscf;
    inproc_nf nf;
} pcscf_lab;

/* Starts transcript `name` and the P-CSCF with subscribe_reg_event and sip.core_transport
 * ("udp", "tcp"). 0 / -1 (printed). */
int pcscf_lab_start(pcscf_lab *lab, const char *name, bool subscribe_reg_event, const char *core_transport);
/* Stops the P-CSCF, closes the peers, compares the transcript: the process exit code. */
int pcscf_lab_finish(pcscf_lab *lab);

/* The UE sends REGISTER (CSeq cseq, Expires expires, with credentials) and the I-CSCF answers
 * 200 at once (the S-CSCF's challenge is not the P-CSCF's business): Path echoed, Service-Route
 * to the S-CSCF peer, P-Associated-URI, the Contact with expires (none when 0). The 200 reaches
 * the UE. Returns true when the UE got the 200. */
bool pcscf_lab_register(pcscf_lab *lab, int cseq, int expires);

/* The UE sends INVITE sip:bob@ims.lab (an SDP offer) via the P-CSCF; then the ACK of its final
 * response, whose To (with tag) is `to`. */
void pcscf_lab_ue_invite(pcscf_lab *lab);
void pcscf_lab_ue_ack(pcscf_lab *lab, const char *to);

#endif
