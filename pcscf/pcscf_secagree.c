/*
 * pcscf_secagree: security mechanism agreement between the UE and the P-CSCF.
 *
 * References: RFC 3329 (Security-Client / Security-Server / Security-Verify, option tag
 * "sec-agree", 494 Security Agreement Required), TS 33.203 §6-7 (IMS AKA with IPsec SAs,
 * mechanism "ipsec-3gpp"), TS 24.229 §5.2.2.1 (P-CSCF REGISTER handling), TS 24.228 (the
 * P-CSCF removes Security-Client / Security-Verify and the sec-agree option tags before it
 * forwards a request: the agreement is between the UE and its first hop only).
 *
 * What is supported, precisely:
 *  - Mechanisms: none. This P-CSCF cannot set up IPsec security associations (no kernel xfrm
 *    set-up, no protected ports), nor TLS (ims_sip listens on UDP and TCP only). So it never
 *    sends Security-Server, never takes CK/IK from the 401 (they are removed, see
 *    pcscf_register.c) and signalling between the UE and the P-CSCF is unprotected.
 *  - Always, whatever sec_agree says: Security-Client and Security-Verify are removed from
 *    requests from the UE, and "sec-agree" from their Require / Proxy-Require (a header left empty
 *    disappears), as a P-CSCF with IPsec would do too before forwarding.
 *  - sec_agree: false (default; what Kamailio's P-CSCF does with IPsec off): a UE that requires
 *    sec-agree is let through unprotected: it receives the 401 without Security-Server. Softphones
 *    and SIPp register; 3GPP UEs that insist on IPsec fail at the 401 (no Security-Server).
 *  - sec_agree: true: RFC 3329 §2.3.1 applied strictly to REGISTER: a UE that requires sec-agree
 *    (Require or Proxy-Require: sec-agree) and sends no Security-Client, or only mechanisms we do
 *    not support (today: any), is answered 494 Security Agreement Required. RFC 3329 wants our
 *    list in Security-Server; with no mechanism to offer the 494 carries none, which tells the UE
 *    that no agreement is possible here rather than downgrading it silently (the bidding-down
 *    attack RFC 3329 exists to prevent). UEs that do not require sec-agree register normally.
 *  - Not done: Security-Verify checking, IPsec SAs and protected ports (port-c / port-s, spi-c /
 *    spi-s), re-negotiation on re-registration, TLS, the "digest" mechanism of RFC 3329.
 */
#include <string.h>
#include <strings.h>

#include <sofia-sip/sip_header.h>

#include "pcscf_context.h"
#include "pcscf_secagree.h"
#include "pcscf_util.h"

/* Mechanisms we could agree on. Empty until IPsec (ipsec-3gpp) is implemented. */
static const char *const supported_mechanisms[] = { NULL };

static bool mechanism_supported(const char *mec)
{
    for (size_t i = 0; mec && supported_mechanisms[i]; i++)
        if (strcasecmp(mec, supported_mechanisms[i]) == 0)
            return true;
    return false;
}

bool pcscf_secagree_required(const sip_t *sip)
{
    return pcscf_list_has(sip->sip_require, "sec-agree") || pcscf_list_has(sip->sip_proxy_require, "sec-agree");
}

int pcscf_secagree_check(const pcscf_context *ctx, const sip_t *sip, const char **security_server)
{
    *security_server = NULL;
    if (!ctx->cfg.pcscf.sec_agree || !pcscf_secagree_required(sip))
        return 0;
    for (const sip_security_client_t *sc = sip->sip_security_client; sc; sc = sc->sa_next)
        if (mechanism_supported(sc->sa_mec))
            return 0;
    /* No Security-Client, or nothing in common (RFC 3329 §2.3.1). The Security-Server list would
     * be built from supported_mechanisms; it is empty today. */
    return 494;
}

void pcscf_secagree_strip(msg_t *msg, sip_t *sip)
{
    if (sip->sip_security_client)
        msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_security_client);
    if (sip->sip_security_verify)
        msg_header_remove_all(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_security_verify);
    pcscf_remove_option_tag(msg, sip, "Require", "sec-agree");
    pcscf_remove_option_tag(msg, sip, "Proxy-Require", "sec-agree");
}
