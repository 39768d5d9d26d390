/*
 * scscf_ifc: initial filter criteria evaluation (TS 29.228 Annex B.2 and Annex F, TS 23.218 §6,
 * TS 24.229 §5.4.3.2/§5.4.3.3 and §5.4.1.7).
 *
 * A trigger point is a set of service point triggers (SPT), each in one or more groups, combined
 * in conjunctive normal form (CNF: AND of groups, each the OR of its SPTs) or disjunctive normal
 * form (DNF: OR of groups, each the AND of its SPTs); ConditionNegated inverts one SPT.
 * SPT kinds:
 *   RequestURI          regular expression (POSIX ERE) against the Request-URI
 *   Method              the request method (case-insensitive); for REGISTER, the optional
 *                       RegistrationType extension restricts it to initial / re- / de-registration
 *   SIPHeader           the header exists (no Content) or one of its values matches Content (ERE);
 *                       names compared case-insensitively, compact forms understood
 *   SessionCase         originating, terminating registered/unregistered, originating
 *                       unregistered, originating CDIV
 *   SessionDescription  an SDP line of type Line ("m", "a", ...) whose value matches Content (ERE),
 *                       or that exists when there is no Content
 * The evaluator works on plain text so that it needs no SIP stack (and is unit-tested on its own).
 */
#ifndef SCSCF_IFC_H
#define SCSCF_IFC_H

#include <stdbool.h>
#include <stddef.h>

#include "ims_userdata.h"

typedef struct {
    const char *method;             /* "REGISTER", "INVITE", ... */
    const char *request_uri;        /* as a string */
    const char *headers;            /* the header section as text ("Name: value\r\n..."), or NULL */
    size_t headers_len;
    const char *body;               /* the SDP (SessionDescription SPTs), or NULL */
    size_t body_len;
    int session_case;               /* IMS_SESSION_CASE_* */
    unsigned registration_type;     /* IMS_REGTYPE_* bit of this REGISTER; 0 for other requests */
} scscf_ifc_request;

bool scscf_ifc_spt_match(const ims_spt *spt, const scscf_ifc_request *r);
bool scscf_ifc_tp_match(const ims_trigger_point *tp, const scscf_ifc_request *r);
/* iFC applies to the request: ProfilePartIndicator fits (absent, or REGISTERED when `registered`,
 * UNREGISTERED otherwise) and the trigger point matches (no trigger point: always). */
bool scscf_ifc_match(const ims_ifc *ifc, const scscf_ifc_request *r, bool registered);
/* The matching iFCs of a service profile in priority order (lowest Priority first); returns how
 * many were written to out (at most max). */
size_t scscf_ifc_select(const ims_service_profile *sp, const scscf_ifc_request *r, bool registered,
                        const ims_ifc **out, size_t max);

/* Splits a SIP message text into request line parts and header section for scscf_ifc_request:
 * method, request_uri (copied into the buffers) and headers/body pointers into `text`. 0 / -1. */
int scscf_ifc_request_from_text(const char *text, size_t len, char *method, size_t mlen, char *ruri,
                                size_t rlen, scscf_ifc_request *out);

#endif
