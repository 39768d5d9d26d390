/*
 * scscf_register_reply: the final answers of the S-CSCF registrar. See scscf_register.h.
 *
 * References: TS 24.229 §5.4.1.2.2 (200 OK: Contact with expires, Service-Route,
 * P-Associated-URI without barred identities, Path), RFC 3261 §10.3 step 8 (every current
 * binding with its remaining time), RFC 3327 §5.3 (Path only to a UE that supports it; never
 * Require: path in a response, §6.2), RFC 3261 §20.33 (Retry-After); the Cx failure answers come
 * from the one table in common/ims_register.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>

#include "ims_log.h"
#include "ims_strbuf.h"
#include "scscf_cx.h"
#include "scscf_register.h"
#include "scscf_util.h"

#define SUBSYS SCSCF_REG_SUBSYS

void scscf_reg_txn_free(scscf_reg_txn *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_contacts; i++) {
        free(t->contacts[i].uri);
        free(t->contacts[i].params);
    }
    if (t->req)
        msg_destroy(t->req);
    if (t->irq)
        nta_incoming_destroy(t->irq);   /* only when never answered through scscf_reply */
    free(t);
}

void scscf_reg_finish(scscf_reg_txn *t, int status, const char *phrase, const char *headers)
{
    scscf_reply(t->ctx, t->irq, status, phrase, headers, true);
    t->irq = NULL;
    scscf_reg_done(t);
}

int scscf_reg_finish_cx(scscf_reg_txn *t, struct msg *ans)
{
    ims_cx_sip s;
    scscf_cx_sip_answer(ans, IMS_CX_FOR_REGISTER, &s);
    char hdr[64] = "";
    if (s.retry_after)
        snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", s.retry_after);
    int status = s.status;
    scscf_reg_finish(t, status, s.phrase, hdr[0] ? hdr : NULL);
    return status;
}

static void add_path_headers(ims_strbuf *b, const sip_t *sip)
{
    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home)
        return;
    for (const sip_path_t *p = sip->sip_path; p; p = p->r_next) {
        char *v = sip_header_as_string(home, (const sip_header_t *)p);
        if (v)
            ims_strbuf_printf(b, "Path: %s\r\n", v);
    }
    su_home_unref(home);
}

static bool supports_path(const sip_t *sip)
{
    for (const sip_supported_t *s = sip->sip_supported; s; s = s->k_next)
        for (size_t i = 0; s->k_items && s->k_items[i]; i++)
            if (strcasecmp(s->k_items[i], "path") == 0)
                return true;
    return false;
}

char *scscf_reg_ok_headers(const scscf_reg_txn *t, const scscf_reg *reg, bool full)
{
    ims_strbuf b = { 0 };
    int64_t now = scscf_now();
    for (const scscf_contact *c = reg ? reg->contacts : NULL; c; c = c->next) {
        if (c->terminated)
            continue;
        long left = (long)(c->expires_at - now);
        ims_strbuf_printf(&b, "Contact: <%s>%s;expires=%ld\r\n", c->uri, c->params ? c->params : "",
                         left > 0 ? left : 0);
    }
    if (full && reg) {
        ims_strbuf_printf(&b, "Service-Route: %s\r\n", t->ctx->service_route);
        bool first = true;
        for (size_t i = 0; i < reg->n_impus; i++) {
            if (reg->impus[i].barred)
                continue;
            if (first)
                ims_strbuf_printf(&b, "P-Associated-URI: ");
            ims_strbuf_printf(&b, "%s<%s>", first ? "" : ", ", reg->impus[i].uri);
            first = false;
        }
        if (!first)
            ims_strbuf_printf(&b, "\r\n");
    }
    if (t->sip->sip_path && supports_path(t->sip)) {
        /* RFC 3327 §5.3: the stored Path goes back in the 200 OK only when the REGISTER said
         * Supported: path; never Require: path in a response (§6.2: it is no extension to use) */
        add_path_headers(&b, t->sip);
        ims_strbuf_printf(&b, "Supported: path\r\n");
    }
    return ims_strbuf_take(&b);
}
