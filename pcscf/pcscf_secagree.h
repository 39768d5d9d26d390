/*
 * pcscf_secagree: RFC 3329 policy of the P-CSCF (what is and is not supported: pcscf_secagree.c).
 */
#ifndef PCSCF_SECAGREE_H
#define PCSCF_SECAGREE_H

#include <stdbool.h>

#include <sofia-sip/sip.h>

#include "pcscf_context.h"

/* True when the request carries "sec-agree" in Require or Proxy-Require. */
bool pcscf_secagree_required(const sip_t *sip);
/* Policy for a REGISTER from the UE: 0 = go on, or the status to answer (494).
 * *security_server is the Security-Server value for that answer, or NULL for none. */
int pcscf_secagree_check(const pcscf_context *ctx, const sip_t *sip, const char **security_server);
/* Before forwarding any request from the UE: removes Security-Client, Security-Verify and the
 * sec-agree option tag from Require / Proxy-Require. */
void pcscf_secagree_strip(msg_t *msg, sip_t *sip);

#endif
