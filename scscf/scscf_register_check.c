/*
 * scscf_register_check: a REGISTER arriving at the S-CSCF, before anything is asked of the HSS.
 * See scscf_register.h for the whole registrar.
 *
 * References: RFC 3261 §10.3 steps 1 (domain served), 5-7 (Contact / Expires, via
 * common/ims_register.c with the registrar's policy, and Call-ID/CSeq ordering); TS 24.229
 * §5.4.1.2.1 (the private identity from Authorization, else derived from the public one),
 * §5.4.1.2.3A (lock-out after failed authentications).
 *
 * Decisions:
 *  - Syntax (400) and Expires (423 Interval Too Brief) are checked before authentication, so a
 *    doomed REGISTER burns no AKA vector (RFC 3261 §10.3 checks them after step 3; the outcome for
 *    the UE is the same).
 *  - Brute force (scscf.auth_max_failures / auth_failure_window / auth_lockout): past the limit
 *    every REGISTER naming the IMPI gets 403 with Retry-After, without a MAR (scscf_register_auth.c
 *    says why 403).
 *  - The same Call-ID with a CSeq not above the binding's is out of order (RFC 3261 §10.3 step 7):
 *    500 with Retry-After, as the RFC says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include "ims_identity.h"
#include "ims_log.h"
#include "ims_strbuf.h"
#include "scscf_register.h"
#include "scscf_util.h"

#define SUBSYS SCSCF_REG_SUBSYS

/* The request's bindings as the registrar grants them. 0, or a status with *phrase (and the
 * Min-Expires value for 423). */
static int take_contacts(scscf_reg_txn *t, ims_reg_verdict *v)
{
    const scscf_cfg *cfg = &t->ctx->cfg.scscf;
    const ims_reg_policy pol = {
        .registrar = true, .min_expires = cfg->min_expires, .max_expires = cfg->max_expires,
        .default_expires = cfg->default_expires, .max_contacts = IMS_REG_MAX_CONTACTS,
    };
    ims_reg_contacts rc;
    if (ims_register_check(t->sip, &pol, &rc, v))
        return v->status;
    t->star = rc.star;

    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home) {
        v->phrase = "Server Internal Error";
        return v->status = 500;
    }
    for (size_t n = 0; n < rc.n; n++) {
        const sip_contact_t *m = rc.c[n].m;
        char *uri = url_as_string(home, m->m_url);
        if (!uri || (m->m_url->url_type != url_sip && m->m_url->url_type != url_sips &&
                     m->m_url->url_type != url_tel)) {
            v->phrase = "Bad Request - Unsupported Contact URI";
            v->status = 400;
            break;
        }
        ims_strbuf params = { 0 };
        for (size_t i = 0; m->m_params && m->m_params[i]; i++) {
            if (strncasecmp(m->m_params[i], "expires", 7) == 0 &&
                (m->m_params[i][7] == '=' || m->m_params[i][7] == '\0'))
                continue;
            ims_strbuf_printf(&params, ";%s", m->m_params[i]);
        }
        scscf_req_contact *c = &t->contacts[t->n_contacts++];
        c->uri = strdup(uri);
        c->params = params.len ? ims_strbuf_take(&params) : NULL;
        ims_strbuf_free(&params);
        c->expires = rc.c[n].expires;
        if (!c->uri) {
            v->phrase = "Server Internal Error";
            v->status = 500;
            break;
        }
    }
    su_home_unref(home);
    return v->status;
}

static bool out_of_order(const scscf_reg_txn *t)
{
    const scscf_reg *reg = scscf_regstore_find(t->ctx->store, t->impu);
    if (!reg || !t->sip->sip_call_id || !t->sip->sip_cseq)
        return false;
    for (size_t i = 0; i < t->n_contacts; i++) {
        const scscf_contact *c = scscf_reg_contact_find(reg, t->contacts[i].uri);
        if (c && c->call_id && strcmp(c->call_id, t->sip->sip_call_id->i_id) == 0 &&
            t->sip->sip_cseq->cs_seq <= c->cseq)
            return true;
    }
    return false;
}

/* 0 when t may go on; otherwise t was answered and freed. */
static int check(scscf_reg_txn *t)
{
    scscf_context *ctx = t->ctx;
    const sip_t *sip = t->sip;
    ims_reg_verdict v;
    if (take_contacts(t, &v)) {
        char hdr[64] = "";
        if (v.status == 423)
            snprintf(hdr, sizeof(hdr), "Min-Expires: %ld\r\n", v.min_expires);
        scscf_reg_finish(t, v.status, v.phrase, hdr[0] ? hdr : NULL);
        return -1;
    }
    /* the IMPU in its canonical form (ims_identity), the key of the store, the challenges and
     * the HSS: sip:Alice@IMS.LAB is sip:Alice@ims.lab, sip:alice@ims.lab is another identity */
    char to_uri[sizeof(t->impu)];
    if (ims_sip_impu_of(sip, to_uri, sizeof(to_uri)) || ims_identity_normalise(to_uri, t->impu, sizeof(t->impu))) {
        scscf_reg_finish(t, 400, "Bad Request - Bad To URI", NULL);
        return -1;
    }
    const url_t *ruri = sip->sip_request->rq_url;
    if (ruri->url_host && strcasecmp(ruri->url_host, ctx->realm) != 0 && !ims_sip_is_self(ctx->sip, ruri)) {
        scscf_reg_finish(t, 403, "Forbidden - Domain Not Served", NULL);
        return -1;
    }
    const sip_authorization_t *au = scscf_auth_pick(sip, ctx->realm);
    if (au) {
        if (scscf_auth_parse(au, &t->cred)) {
            scscf_reg_finish(t, 400, "Bad Request - Malformed Authorization", NULL);
            return -1;
        }
        t->has_cred = true;
    }
    if (t->has_cred && t->cred.username[0])
        snprintf(t->impi, sizeof(t->impi), "%s", t->cred.username);
    else if (ims_sip_impi_of(sip, t->impi, sizeof(t->impi))) {
        scscf_reg_finish(t, 403, "Forbidden - No Private Identity", NULL);
        return -1;
    }
    long locked = ims_authlimit_locked(scscf_reg_limiter(ctx), t->impi, scscf_now());
    if (locked) {
        char source[400], hdr[64];
        scscf_auth_source(sip, source, sizeof(source));
        ims_metric_inc(ims_metric_counter("scscf_register_locked_total",
                                          "REGISTERs refused because their private identity is locked"));
        IMS_INFO(SUBSYS, "REGISTER of %s (%s) from %s refused: locked for another %ld s after failed "
                 "authentications", t->impi, t->impu, source, locked);
        snprintf(hdr, sizeof(hdr), "Retry-After: %ld\r\n", locked);
        scscf_reg_finish(t, 403, "Forbidden - Too Many Failed Authentications", hdr);
        return -1;
    }
    if (out_of_order(t)) {
        scscf_reg_finish(t, 500, "Server Internal Error - Out of Order CSeq", "Retry-After: 1\r\n");
        return -1;
    }
    return 0;
}

int scscf_registrar_register(scscf_context *ctx, nta_incoming_t *irq, const sip_t *sip)
{
    (void)sip;   /* the transaction keeps its own reference to the request */
    scscf_reg_txn *t = scscf_reg_txn_new(ctx, irq);
    if (!t)
        return 500;   /* nta answers the 500 and destroys irq */
    if (check(t) == 0)
        scscf_reg_authenticate(t);
    return 0;
}
