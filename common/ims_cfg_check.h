/*
 * ims_cfg_check: value checks for configuration fields (ims_cfg_field.check), shared by the NFs so
 * that one kind of value is accepted by the same rule everywhere and reported by the loader as
 * "file:line: key: 'value': why".
 */
#ifndef IMS_CFG_CHECK_H
#define IMS_CFG_CHECK_H

#include <stddef.h>

/* A sip: or sips: URI with a host, in one token (no white space, <, > or "): next hops, our names. */
int ims_cfg_check_sip_uri(const char *value, char *why, size_t whylen);

/* A domain name, realm or Diameter identity: non-empty, none of the characters that would split a
 * SIP header or URI (white space : ; , @ < > " /). */
int ims_cfg_check_domain(const char *value, char *why, size_t whylen);

/* A non-empty text that fits on one header line (no CR or LF). */
int ims_cfg_check_line(const char *value, char *why, size_t whylen);

#endif
