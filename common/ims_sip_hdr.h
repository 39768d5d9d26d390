/*
 * ims_sip_hdr.h: header helpers of ims_sip_hdr.c that are not part of the ims_sip.h interface
 * (kept apart so that ims_sip.h can change independently).
 */
#ifndef IMS_SIP_HDR_H
#define IMS_SIP_HDR_H

#include "ims_sip.h"

/* RFC 3261 §22.3 / §22.4: removes every Authorization and Proxy-Authorization header whose realm
 * parameter equals `realm` (case-insensitive, quotes removed). Credentials for other realms
 * stay: a proxy must not remove those. Returns how many headers were removed (0 when none,
 * also for NULL arguments). */
int ims_sip_remove_credentials(msg_t *msg, sip_t *sip, const char *realm);

#endif
