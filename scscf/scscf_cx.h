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

/* SIP status for a failed MAA/SAA (ans NULL = timeout: 504). */
int scscf_cx_sip_status(struct msg *ans, const char **phrase);

#endif
