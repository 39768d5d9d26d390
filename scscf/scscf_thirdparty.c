/*
 * scscf_thirdparty: third-party REGISTER from the S-CSCF to application servers.
 *
 * References: TS 24.229 §5.4.1.7 (Request-URI = the AS's ServerName, From = the S-CSCF, To = the
 * registered public identity, Contact = the S-CSCF, Expires = the registration's, 0 for a
 * de-registration; message/sip bodies with the UE's REGISTER (IncludeRegisterRequest) and/or our
 * 200 OK (IncludeRegisterResponse); an AS that does not answer, or answers 408/5xx/6xx, with
 * DefaultHandling SESSION_TERMINATED -> network-initiated de-registration, §5.4.1.5),
 * TS 29.228 Annex B (iFC, RegistrationType), RFC 3261 §7.4 / RFC 2046 (multipart/mixed when both
 * bodies are asked for), RFC 7315 §4.6 (P-Charging-Vector).
 *
 * Decisions: the iFCs are evaluated against the UE's REGISTER as the originating case of a
 * registered user; without the UE's request (expiry, network de-registration) against a minimal
 * REGISTER for the identity. An AS failure with SESSION_TERMINATED de-registers the whole
 * registration with SAR ADMINISTRATIVE_DEREGISTRATION and reg event "rejected" (the UE should not
 * come straight back to an AS that refuses it); failures of de-registration REGISTERs are only
 * logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_alloc.h>

#include "ims_cx.h"
#include "ims_log.h"
#include "ims_strbuf.h"
#include "scscf_context.h"
#include "scscf_ifc.h"
#include "scscf_util.h"

#define SUBSYS "scscf.3pr"
#define MAX_AS 16

typedef struct {
    char *impu;
    char *as;
    int default_handling;
    unsigned regtype;
} tpr_ctx;

static void tpr_free(tpr_ctx *p)
{
    if (!p)
        return;
    free(p->impu);
    free(p->as);
    free(p);
}

static void on_response(void *arg, int status, const sip_t *sip)
{
    (void)sip;
    tpr_ctx *p = arg;
    scscf_context *ctx = &scscf_ctx;
    if (status < 300) {
        IMS_DEBUG(SUBSYS, "third-party REGISTER of %s to %s: %d", p->impu, p->as, status);
    } else if (status == 408 || status >= 500) {
        bool terminate = p->default_handling == IMS_DEFAULT_HANDLING_SESSION_TERMINATED &&
                         p->regtype != IMS_REGTYPE_DE_REGISTRATION;
        IMS_WARN(SUBSYS, "third-party REGISTER of %s to %s failed (%d)%s", p->impu, p->as, status,
                 p->regtype == IMS_REGTYPE_DE_REGISTRATION ? " (de-registration: nothing more to do)"
                 : terminate ? ": default handling SESSION_TERMINATED, de-registering the user"
                             : ": default handling SESSION_CONTINUED");
        scscf_reg *reg = terminate && !ctx->stopping ? scscf_regstore_find(ctx->store, p->impu) : NULL;
        if (reg)
            scscf_registrar_terminate(ctx, reg, SCSCF_CEV_REJECTED, IMS_SAT_ADMINISTRATIVE_DEREGISTRATION);
    } else {
        IMS_WARN(SUBSYS, "third-party REGISTER of %s to %s refused (%d)", p->impu, p->as, status);
    }
    tpr_free(p);
}

static char *as_text(su_home_t *home, msg_t *msg, size_t *len)
{
    *len = 0;
    if (!msg)
        return NULL;
    return msg_as_string(home, msg, NULL, 0, len);
}

static int send_one(scscf_context *ctx, const ims_ifc *ifc, const char *impu, unsigned regtype, long expires,
                    const char *req_text, size_t req_len, const char *resp_text, size_t resp_len)
{
    int rv = -1;
    msg_t *msg = nta_msg_create(ims_sip_agent(ctx->sip), 0);
    sip_t *sip = msg ? sip_object(msg) : NULL;
    tpr_ctx *p = calloc(1, sizeof(*p));
    ims_strbuf rl = { 0 }, to = { 0 }, body = { 0 };
    char from[320], contact[300], callid[96], tag[17], exp[24], icid[64], pcv[96], ctype[96] = "";
    if (!sip || !p)
        goto out;
    p->impu = strdup(impu);
    p->as = strdup(ifc->as.server_name);
    p->default_handling = ifc->as.default_handling;
    p->regtype = regtype;
    if (!p->impu || !p->as)
        goto out;

    ims_sip_random_token(tag, 16);
    ims_strbuf_printf(&rl, "REGISTER %s SIP/2.0", ifc->as.server_name);
    ims_strbuf_printf(&to, "<%s>", impu);
    snprintf(from, sizeof(from), "<%s>;tag=%s", ctx->name, tag);
    snprintf(contact, sizeof(contact), "<%s>", ctx->name);
    char rnd[17];
    ims_sip_random_token(rnd, 16);
    snprintf(callid, sizeof(callid), "%s-%llu@scscf", rnd, (unsigned long long)++ctx->seq);
    snprintf(exp, sizeof(exp), "%ld", expires);
    ims_sip_new_icid(icid, sizeof(icid));
    snprintf(pcv, sizeof(pcv), "icid-value=\"%s\"", icid);

    bool with_req = ifc->as.include_register_request && req_text;
    bool with_resp = ifc->as.include_register_response && resp_text;
    if (with_req && with_resp) {
        /* RFC 2046 multipart/mixed with both messages */
        char boundary[24];
        ims_sip_random_token(boundary, 20);
        snprintf(ctype, sizeof(ctype), "multipart/mixed;boundary=%s", boundary);
        ims_strbuf_printf(&body, "--%s\r\nContent-Type: message/sip\r\n\r\n", boundary);
        ims_strbuf_append(&body, req_text, req_len);
        ims_strbuf_printf(&body, "\r\n--%s\r\nContent-Type: message/sip\r\n\r\n", boundary);
        ims_strbuf_append(&body, resp_text, resp_len);
        ims_strbuf_printf(&body, "\r\n--%s--\r\n", boundary);
    } else if (with_req || with_resp) {
        snprintf(ctype, sizeof(ctype), "message/sip");
        if (with_req)
            ims_strbuf_append(&body, req_text, req_len);
        else
            ims_strbuf_append(&body, resp_text, resp_len);
    }
    if (rl.failed || to.failed || body.failed)
        goto out;
    if (sip_add_tl(msg, sip, SIPTAG_REQUEST_STR(rl.s), SIPTAG_MAX_FORWARDS_STR("70"), SIPTAG_FROM_STR(from),
                   SIPTAG_TO_STR(to.s), SIPTAG_CALL_ID_STR(callid), SIPTAG_CSEQ_STR("1 REGISTER"),
                   SIPTAG_CONTACT_STR(contact), SIPTAG_EXPIRES_STR(exp), TAG_END()) < 0 ||
        ims_sip_add_header(msg, sip, "P-Charging-Vector", pcv))
        goto out;
    if (body.len) {
        if (sip_add_tl(msg, sip, SIPTAG_CONTENT_TYPE_STR(ctype),
                       SIPTAG_PAYLOAD(sip_payload_make(msg_home(msg), body.s)), TAG_END()) < 0)
            goto out;
    }
    msg_t *m = msg;
    msg = NULL;
    tpr_ctx *arg = p;
    p = NULL;
    if (ims_sip_send_request(ctx->sip, m, NULL, on_response, arg) < 0) {
        IMS_WARN(SUBSYS, "cannot send third-party REGISTER of %s to %s", impu, ifc->as.server_name);
        tpr_free(arg);
        goto out;
    }
    IMS_INFO(SUBSYS, "third-party REGISTER of %s to %s (Expires %ld%s%s)", impu, ifc->as.server_name, expires,
             with_req ? ", with the UE's REGISTER" : "", with_resp ? ", with our 200 OK" : "");
    rv = 0;
out:
    if (msg)
        msg_destroy(msg);
    tpr_free(p);
    ims_strbuf_free(&rl);
    ims_strbuf_free(&to);
    ims_strbuf_free(&body);
    return rv;
}

void scscf_thirdparty_register(scscf_context *ctx, const scscf_reg *reg, const char *impu, unsigned regtype,
                               long expires, msg_t *ue_req, msg_t *ok_resp)
{
    const ims_service_profile *sp = scscf_reg_service_profile(reg, impu);
    if (!sp || !sp->n_ifcs || ctx->stopping)
        return;
    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (!home)
        return;
    size_t req_len = 0, resp_len = 0;
    char *req_text = as_text(home, ue_req, &req_len);
    char *resp_text = as_text(home, ok_resp, &resp_len);

    scscf_ifc_request r;
    char method[32], ruri[512];
    char synth[1200];
    if (!req_text || scscf_ifc_request_from_text(req_text, req_len, method, sizeof(method), ruri, sizeof(ruri), &r)) {
        int n = snprintf(synth, sizeof(synth), "REGISTER sip:%s SIP/2.0\r\nTo: <%s>\r\nFrom: <%s>\r\n\r\n",
                         ctx->realm, impu, impu);
        if (n < 0 || (size_t)n >= sizeof(synth) ||
            scscf_ifc_request_from_text(synth, (size_t)n, method, sizeof(method), ruri, sizeof(ruri), &r)) {
            su_home_unref(home);
            return;
        }
    }
    r.session_case = IMS_SESSION_CASE_ORIGINATING;
    r.registration_type = regtype;

    const ims_ifc *match[MAX_AS];
    size_t n = scscf_ifc_select(sp, &r, true, match, MAX_AS);
    for (size_t i = 0; i < n; i++) {
        if (!match[i]->as.server_name || !*match[i]->as.server_name)
            continue;
        send_one(ctx, match[i], impu, regtype, expires, req_text, req_len, resp_text, resp_len);
    }
    su_home_unref(home);
}
