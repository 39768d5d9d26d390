/*
 * scscf_cx: the S-CSCF side of Cx (TS 29.228 §6.1-§6.3, TS 29.229 §6.1): MAR/MAA and SAR/SAA
 * towards the HSS (asynchronous, answers on the SIP loop through ims_cx_client), RTR and PPR from it.
 */
#ifndef SCSCF_CX_H
#define SCSCF_CX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_cx_client.h"
#include "ims_register.h"
#include "ims_userdata.h"
#include "scscf_auth.h"

struct scscf_context;

#define SCSCF_MAX_VECTORS 16

/* What an MAA carries. */
typedef struct {
    uint32_t result;            /* Result-Code (0 if absent) */
    uint32_t experimental;      /* Experimental-Result-Code (0 if absent) */
    size_t n_aka;
    scscf_aka_vector aka[SCSCF_MAX_VECTORS];
    bool digest;
    char digest_realm[128];
    char digest_qop[64];
    char digest_ha1[40];
} scscf_maa;

/* MAR for impi/impu: scheme (IMS_SCHEME_*), items vectors; resync (RAND || AUTS, 30 bytes) or NULL.
 * cb on the loop (ans NULL on timeout). 0 / -1 (cb not called). */
int scscf_cx_mar(struct scscf_context *ctx, const char *impi, const char *impu, const char *scheme,
                 unsigned items, const uint8_t *resync, ims_cx_answer_f cb, void *arg);
/* Parses an MAA. 0 when it is a success with at least one usable item, else -1 (out->result /
 * experimental say why; both 0 when the items were unusable). */
int scscf_cx_parse_maa(struct msg *ans, scscf_maa *out);

/* What an SAA carries. */
typedef struct {
    uint32_t result;            /* Result-Code (0 if absent) */
    uint32_t experimental;      /* Experimental-Result-Code (0 if absent) */
    bool has_profile;           /* User-Data came and parsed: sub holds it */
    ims_subscription sub;
} scscf_saa;

/* Parses an SAA (ans NULL: no answer). 0 success (out->sub when has_profile; scscf_saa_free),
 * -1 a failure answer or none (result / experimental say why), -2 success with a User-Data
 * that does not parse (err says why). */
int scscf_cx_parse_saa(struct msg *ans, scscf_saa *out, char *err, size_t errlen);
void scscf_saa_free(scscf_saa *saa);

/* SIP answer for a failed MAA/SAA (ans NULL: no answer), from the table of common/ims_register.c;
 * a success whose content was unusable is 500. */
void scscf_cx_sip_answer(struct msg *ans, ims_cx_purpose purpose, ims_cx_sip *out);

#endif
