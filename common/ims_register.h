/*
 * ims_register: the REGISTER toolkit the CSCFs share, so that the P-CSCF, I-CSCF and S-CSCF give
 * one answer to the same question.
 *
 *  - Contact / Expires validation (RFC 3261 §10.2, §10.3 steps 5-7; TS 24.229 §5.2.2.1,
 *    §5.4.1.2): one function, two policies. The P-CSCF checks what makes a REGISTER malformed
 *    and bounds what it stores; the registrar (S-CSCF) also applies its expiry policy. Answers:
 *      400  malformed Expires / Contact / Contact expires, a missing To/From/Call-ID/CSeq,
 *           Contact "*" with other Contacts or without Expires: 0 (RFC 3261 §10.3 step 6)
 *      403  more Contacts than allowed (TS 24.229 §5.4.1.2.1: too many registration flows is 403)
 *      423  Interval Too Brief with Min-Expires (registrar only, RFC 3261 §10.3 step 7)
 *    The expiry of each contact: its expires parameter, else the Expires header, else the
 *    default; the registrar shortens it to max_expires (§10.3 step 7: "MAY shorten").
 *  - Cx result -> SIP status (TS 29.228 §6.1/§6.3 result codes, TS 24.229 §5.3.1.3,
 *    §5.3.2.2, §5.4.1.2): one table for the I-CSCF and the S-CSCF.
 */
#ifndef IMS_REGISTER_H
#define IMS_REGISTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sofia-sip/sip.h>

/* ---------- Contact / Expires ---------- */

#define IMS_REG_MAX_CONTACTS 16
/* RFC 3261 §10.3 step 7 leaves the default to the registrar; ours (scscf.default_expires) and
 * what a P-CSCF assumes when the 200 carries no expiry at all. */
#define IMS_REG_DEFAULT_EXPIRES 3600

typedef struct {
    bool registrar;          /* apply the registrar's policy: 423 below min_expires, clamp to max */
    long min_expires;        /* registrar only */
    long max_expires;        /* registrar only */
    long default_expires;    /* neither Contact expires nor Expires header */
    size_t max_contacts;     /* <= IMS_REG_MAX_CONTACTS */
} ims_reg_policy;

typedef struct {
    const sip_contact_t *m;  /* the Contact header field value (in the request) */
    long expires;            /* seconds; 0 = remove */
} ims_reg_contact;

typedef struct {
    bool star;               /* Contact: * (then n == 0) */
    size_t n;
    ims_reg_contact c[IMS_REG_MAX_CONTACTS];
} ims_reg_contacts;

typedef struct {
    int status;              /* 0: acceptable */
    const char *phrase;      /* static */
    long min_expires;        /* for 423: the Min-Expires header */
} ims_reg_verdict;

/* Checks a REGISTER; fills out (pointers into sip) and returns v->status (0 = acceptable). */
int ims_register_check(const sip_t *sip, const ims_reg_policy *pol, ims_reg_contacts *out, ims_reg_verdict *v);

/* A well-formed REGISTER that removes every Contact it names (each expires 0 by its parameter or
 * the Expires header, or Contact: * with Expires: 0): a de-registration (TS 24.229 §5.3.1.2: the
 * I-CSCF's UAR then says User-Authorization-Type REGISTRATION_AND_CAPABILITIES... no: DE_REGISTRATION).
 * A malformed one is not: the registrar refuses it. */
bool ims_register_is_deregistration(const sip_t *sip);

/* ---------- Cx result -> SIP status ---------- */

/* What the Cx request was for: a REGISTER (UAR, MAR, SAR of a registration) or another request
 * (LIR, SAR for an unregistered user): an unknown user is 403 for the first, 404 for the second. */
typedef enum { IMS_CX_FOR_REGISTER, IMS_CX_FOR_REQUEST } ims_cx_purpose;

/* Seconds a UE is asked to wait (Retry-After) when the HSS cannot be reached or cannot comply:
 * the Diameter reconnect (TcTimer, a few seconds) and a restart fit in it. */
#define IMS_CX_RETRY_AFTER 30

typedef struct {
    int status;              /* 0: the answer is a success (the caller reads it) */
    const char *phrase;      /* static */
    unsigned retry_after;    /* seconds for a Retry-After header, 0 = none */
    const char *result;      /* metric label: user_unknown, forbidden, not_registered, hss_unreachable,
                                hss_timeout, error; NULL on success */
} ims_cx_sip;

/* answered false: no answer (timeout, not sent, peer gone). result / experimental as
 * ims_cx_get_result gives them (0 when absent). */
void ims_cx_to_sip(bool answered, uint32_t result, uint32_t experimental, ims_cx_purpose purpose, ims_cx_sip *out);
/* The HSS was not reached (no answer, or a protocol error our node or a relay put in:
 * 3002 UNABLE_TO_DELIVER, 3003 REALM_NOT_SERVED, 3004 TOO_BUSY). */
bool ims_cx_unreachable(bool answered, uint32_t result, uint32_t experimental);

#endif
