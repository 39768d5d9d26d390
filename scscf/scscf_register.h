/*
 * scscf_register: the S-CSCF registrar, one file per role, sharing the REGISTER transaction below.
 *
 *   REGISTER ─ scscf_register_check.c   request checks (identities, lock-out, Contact/Expires, order)
 *            ─ scscf_register_auth.c    challenge (MAR -> 401), verification, resync, auth failure
 *            ─ scscf_register_update.c  SAR, binding update, de-registration, expiry, and the one
 *                                       "registration changed" hook (NOTIFY / remove / refresh)
 *            ─ scscf_register_reply.c   final answers: 200 with bindings, errors, Cx failures
 *            ─ scscf_register_fsm.c     the transaction's states (ims_fsm), pending by key (ims_pending)
 *
 *   REGISTER ──(no/unknown/expired nonce, or AUTS)──> MAR ──> 401 (AKA or SIP Digest challenge)
 *   REGISTER with our nonce ──verify──> bad: 403 + SAR AUTHENTICATION_FAILURE
 *                                       ok:  bindings ─> SAR REGISTRATION / RE_REGISTRATION ─> 200
 *                                            Expires 0 / "*": SAR USER_DEREGISTRATION when none left
 *                                            no Contact: query, 200 with the current bindings
 *   contact expiry (scscf_regstore timer) ─> NOTIFY expired; last one: SAR TIMEOUT_DEREGISTRATION
 *
 * References: TS 24.229 §5.4.1 (each file names its subclauses); TS 29.228 §6.1.2 / §6.3 (SAR /
 * MAR); RFC 3261 §10.3 (registrar); RFC 3327 §5.3 (Path); RFC 3608 (Service-Route).
 */
#ifndef SCSCF_REGISTER_H
#define SCSCF_REGISTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ims_fsm.h"
#include "ims_register.h"
#include "scscf_auth.h"
#include "scscf_context.h"

#define SCSCF_REG_SUBSYS "scscf.reg"

typedef struct {
    char *uri;
    char *params;          /* ";a=b;c" without expires, or NULL */
    long expires;          /* granted (clamped to max), 0 = remove */
} scscf_req_contact;

/* States of a REGISTER transaction (scscf_register_fsm.c). */
enum {
    SCSCF_REG_CHECKING,        /* checks and verification (synchronous) */
    SCSCF_REG_WAIT_MAA,        /* MAR sent */
    SCSCF_REG_WAIT_SAA,        /* SAR REGISTRATION / RE_REGISTRATION sent */
    SCSCF_REG_WAIT_SAA_DEREG,  /* SAR USER_DEREGISTRATION sent */
    SCSCF_REG_N_STATES
};

/* One REGISTER from its arrival to its final response (answered exactly once, then freed). */
typedef struct scscf_reg_txn {
    scscf_context *ctx;
    uint64_t key;          /* in ctx->reg_txns; the argument of its Cx callbacks */
    ims_fsm_inst *fi;      /* its state */
    nta_incoming_t *irq;
    msg_t *req;            /* reference to the REGISTER */
    sip_t *sip;
    char impi[256];
    char impu[256];
    bool star;             /* Contact: * */
    scscf_req_contact contacts[IMS_REG_MAX_CONTACTS];
    size_t n_contacts;
    scscf_credentials cred;
    bool has_cred;
    bool stale;
    bool resync;           /* the MAR carries RAND || AUTS */
    uint8_t scheme;        /* of the challenge this REGISTER answered */
} scscf_reg_txn;

/* ---------- scscf_register_fsm.c ---------- */
/* A new transaction for irq in CHECKING, or NULL (then nta answers 500). */
scscf_reg_txn *scscf_reg_txn_new(scscf_context *ctx, nta_incoming_t *irq);
/* The transaction is over (answered): t is freed. */
void scscf_reg_done(scscf_reg_txn *t);
/* Enters a WAIT_* state (with its timeout). -1: refused or no timer, and t is answered and freed. */
int scscf_reg_wait(scscf_reg_txn *t, int state);
/* The argument of t's Cx callbacks (its key) and the callbacks themselves. */
void *scscf_reg_cx_arg(const scscf_reg_txn *t);
void scscf_reg_on_maa(void *arg, struct msg *ans);
void scscf_reg_on_saa(void *arg, struct msg *ans);

/* ---------- scscf_register_reply.c ---------- */
void scscf_reg_txn_free(scscf_reg_txn *t);
/* Final response (headers: "Name: value\r\n" lines or NULL); the transaction ends (t freed). */
void scscf_reg_finish(scscf_reg_txn *t, int status, const char *phrase, const char *headers);
/* Final response for a failed Cx request (ans NULL: no answer); t is freed. Returns the status. */
int scscf_reg_finish_cx(scscf_reg_txn *t, struct msg *ans);
/* Header lines of a 200 to a REGISTER: the bindings of reg (may be NULL) and, when full,
 * Service-Route and P-Associated-URI; Path when the UE supports it. Caller frees. */
char *scscf_reg_ok_headers(const scscf_reg_txn *t, const scscf_reg *reg, bool full);

/* ---------- scscf_register_auth.c ---------- */
ims_authlimit *scscf_reg_limiter(scscf_context *ctx);
/* After the checks: challenge, verify, resync; on success scscf_reg_authenticated. Consumes t. */
void scscf_reg_authenticate(scscf_reg_txn *t);
/* The MAA (NULL: none) in WAIT_MAA: 401 or an error. */
void scscf_reg_maa(scscf_reg_txn *t, struct msg *ans);

/* ---------- scscf_register_update.c ---------- */
/* The REGISTER is authenticated: query, registration, re-registration or de-registration. */
void scscf_reg_authenticated(scscf_reg_txn *t);
size_t scscf_reg_active_contacts(const scscf_reg *reg);
/* The SAA (NULL: none) in WAIT_SAA / WAIT_SAA_DEREG. */
void scscf_reg_saa(scscf_reg_txn *t, struct msg *ans);
void scscf_reg_dereg_saa(scscf_reg_txn *t, struct msg *ans);

#endif
