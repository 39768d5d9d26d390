/*
 * hss_cx_internal: helpers shared by the HSS Cx files (hss_cx.c, hss_cx_auth.c, hss_cx_push.c).
 */
#ifndef HSS_CX_INTERNAL_H
#define HSS_CX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ims_cx.h"
#include "hss_context.h"
#include "ims_diameter.h"

#define HSS_ID_MAX 512   /* longest IMPI / IMPU / Server-Name we accept (bytes) */

/* The result an answer carries: a Cx Experimental-Result-Code or a base Result-Code. */
typedef struct {
    uint32_t code;
    bool experimental;
    const char *why;     /* for the log line (static or from a buffer that outlives the answer) */
} hss_cx_outcome;

#define CX_OK ((hss_cx_outcome){ IMS_DIAMETER_SUCCESS, false, NULL })
#define CX_EXP(c, w) ((hss_cx_outcome){ (c), true, (w) })
#define CX_BASE(c, w) ((hss_cx_outcome){ (c), false, (w) })

/* Sets the result on *ans (unless a Result-Code is already there, e.g. with a Failed-AVP), sends it, counts it (metrics) and logs one line:
 *   "UAR alice@ims.lab sip:alice@ims.lab from icscf.ims.lab: DIAMETER_FIRST_REGISTRATION"
 * `t0_us` is when the request arrived (monotonic microseconds). */
int hss_cx_send_answer(struct msg **ans, uint32_t cmd, const char *who, const char *peer,
                       hss_cx_outcome out, uint64_t t0_us);


/* Reads a mandatory string AVP of qry into buf. When it is absent or unusable, sets
 * DIAMETER_MISSING_AVP / DIAMETER_INVALID_AVP_VALUE (with Failed-AVP) on ans, fills *out and
 * returns false. */
bool hss_cx_read_str(struct msg *qry, struct msg *ans, struct dict_object *model, char *buf,
                     size_t buflen, hss_cx_outcome *out);

/* Builds the Cx User-Data XML for impu's IRS and adds it to msg (SAA, PPR). */
int hss_cx_add_user_data(struct msg *msg, const hss_subscriber *sub, const char *impi, const char *impu);
/* Adds Charging-Information when the subscription has any. */
int hss_cx_add_charging(struct msg *msg, const hss_subscriber *sub);

int hss_cx_auth_init(void);  /* MAR handler (hss_cx_auth.c) */

#endif
