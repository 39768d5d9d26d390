/*
 * scscf_calllog: info lines for session set-up and tear-down (who, whom, result, duration).
 * See scscf_calllog.c. Runs on the SIP loop only.
 */
#ifndef SCSCF_CALLLOG_H
#define SCSCF_CALLLOG_H

#include <stddef.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>

typedef struct scscf_calllog scscf_calllog;

scscf_calllog *scscf_calllog_new(void);
void scscf_calllog_free(scscf_calllog *l);
size_t scscf_calllog_count(const scscf_calllog *l);

/* An initial INVITE the S-CSCF starts to route: `served` is the served user (originating: the
 * asserted caller; may be NULL: From), `scase` "orig" or "term". Other methods are ignored. */
void scscf_calllog_begin(scscf_calllog *l, const sip_t *sip, const char *served, const char *scase);
/* The final response to that INVITE (relayed or ours): one line; a failure forgets the call. */
void scscf_calllog_final(scscf_calllog *l, const char *call_id, int status, const char *phrase);
/* The same, for the INVITE of a server transaction (its request gives the Call-ID). */
void scscf_calllog_final_irq(scscf_calllog *l, nta_incoming_t *irq, int status, const char *phrase);
/* A BYE passing through: one line with the duration; the call is forgotten. */
void scscf_calllog_bye(scscf_calllog *l, const sip_t *sip);
/* Housekeeping: forgets calls whose final response or BYE never came through us. */
void scscf_calllog_sweep(scscf_calllog *l);

#endif
