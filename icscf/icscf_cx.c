/*
 * icscf_cx: the I-CSCF's Cx requests and what it reads from their answers.
 *
 * References:
 *  - TS 29.229 §6.1.1 UAR: User-Name, Public-Identity, Visited-Network-Identifier,
 *    User-Authorization-Type; §6.1.2 UAA: Result-Code or Experimental-Result, Server-Name,
 *    Server-Capabilities.
 *  - TS 29.229 §6.1.5 LIR: Public-Identity; §6.1.6 LIA: Server-Name, Server-Capabilities.
 *  - TS 29.229 §6.3.4 Server-Capabilities ::= *Mandatory-Capability *Optional-Capability *Server-Name.
 *  - TS 29.228 §6.1.1 / §6.1.4: the procedures (the results are acted upon in icscf_register.c
 *    and icscf_route.c; their SIP answers come from the Cx table of common/ims_register.c).
 * Requests go out through ims_cx_client (answer or timeout back on the SIP loop).
 */
#include <stdio.h>
#include <string.h>

#include "icscf_context.h"
#include "ims_cx_client.h"
#include "ims_diameter.h"
#include "ims_log.h"

#define SUBSYS "icscf.cx"

static int send_request(icscf_context *ctx, struct msg *req, ims_cx_answer_f cb, void *arg)
{
    /* ims_cx_send owns req in every case; cb is not called when it fails. */
    return ims_cx_send(ctx->sip, &req, cb, arg);
}

int icscf_cx_send_uar(icscf_context *ctx, const icscf_uar *uar, ims_cx_answer_f cb, void *arg)
{
    struct msg *req = NULL;
    if (ims_cx_new_request(ims_cx_dict.uar, ctx->hss_realm, ctx->cfg.icscf.hss_host, &req))
        return -1;
    if (ims_cx_add_str(req, ims_cx_dict.user_name, uar->impi) ||
        ims_cx_add_str(req, ims_cx_dict.public_identity, uar->impu) ||
        ims_cx_add_str(req, ims_cx_dict.visited_network_id, uar->visited) ||
        ims_cx_add_i32(req, ims_cx_dict.user_auth_type, uar->type)) {
        IMS_ERROR(SUBSYS, "cannot build the UAR for %s", uar->impu);
        fd_msg_free(req);
        return -1;
    }
    IMS_DEBUG(SUBSYS, "UAR %s %s visited %s type %d -> %s", uar->impi, uar->impu, uar->visited, uar->type,
              ctx->hss_realm);
    return send_request(ctx, req, cb, arg);
}

int icscf_cx_send_lir(icscf_context *ctx, const char *impu, ims_cx_answer_f cb, void *arg)
{
    struct msg *req = NULL;
    if (ims_cx_new_request(ims_cx_dict.lir, ctx->hss_realm, ctx->cfg.icscf.hss_host, &req))
        return -1;
    if (ims_cx_add_str(req, ims_cx_dict.public_identity, impu)) {
        IMS_ERROR(SUBSYS, "cannot build the LIR for %s", impu);
        fd_msg_free(req);
        return -1;
    }
    IMS_DEBUG(SUBSYS, "LIR %s -> %s", impu, ctx->hss_realm);
    return send_request(ctx, req, cb, arg);
}

static bool avp_u32(struct avp *avp, uint32_t *v)
{
    struct avp_hdr *h = NULL;
    if (fd_msg_avp_hdr(avp, &h) || !h->avp_value)
        return false;
    *v = h->avp_value->u32;
    return true;
}

static bool avp_str(struct avp *avp, char *buf, size_t len)
{
    struct avp_hdr *h = NULL;
    if (fd_msg_avp_hdr(avp, &h) || !h->avp_value || h->avp_value->os.len >= len)
        return false;
    memcpy(buf, h->avp_value->os.data, h->avp_value->os.len);
    buf[h->avp_value->os.len] = '\0';
    return true;
}

static void read_caps(struct avp *sc, icscf_caps *caps)
{
    caps->present = true;
    for (struct avp *a = ims_cx_child(sc, ims_cx_dict.mandatory_cap, NULL);
         a && caps->n_mandatory < ICSCF_MAX_CAPS; a = ims_cx_child(sc, ims_cx_dict.mandatory_cap, a))
        if (avp_u32(a, &caps->mandatory[caps->n_mandatory]))
            caps->n_mandatory++;
    for (struct avp *a = ims_cx_child(sc, ims_cx_dict.optional_cap, NULL);
         a && caps->n_optional < ICSCF_MAX_CAPS; a = ims_cx_child(sc, ims_cx_dict.optional_cap, a))
        if (avp_u32(a, &caps->optional[caps->n_optional]))
            caps->n_optional++;
    for (struct avp *a = ims_cx_child(sc, ims_cx_dict.server_name, NULL);
         a && caps->n_names < ICSCF_MAX_NAMES; a = ims_cx_child(sc, ims_cx_dict.server_name, a))
        if (avp_str(a, caps->names[caps->n_names], sizeof(caps->names[0])) && caps->names[caps->n_names][0])
            caps->n_names++;
}

void icscf_cx_read_answer(struct msg *ans, icscf_cx_answer *out)
{
    memset(out, 0, sizeof(*out));
    if (!ans)
        return;
    out->answered = true;
    ims_cx_get_result(ans, &out->result, &out->experimental);
    if (ims_cx_get_str(ans, ims_cx_dict.server_name, out->server_name, sizeof(out->server_name)))
        out->server_name[0] = '\0';
    struct avp *sc = ims_cx_child(ans, ims_cx_dict.server_caps, NULL);
    if (sc)
        read_caps(sc, &out->caps);
}

bool icscf_cx_unreachable(const icscf_cx_answer *a)
{
    return ims_cx_unreachable(a->answered, a->result, a->experimental);
}

void icscf_cx_to_sip(const icscf_context *ctx, const icscf_cx_answer *a, ims_cx_purpose purpose, ims_cx_sip *out)
{
    ims_cx_to_sip(a->answered, a->result, a->experimental, purpose, out);
    if (purpose == IMS_CX_FOR_REGISTER && out->status && a->experimental == IMS_CX_ERROR_USER_UNKNOWN &&
        ctx->cfg.icscf.user_unknown_code != out->status) {
        out->status = (int)ctx->cfg.icscf.user_unknown_code;
        out->phrase = "User Unknown";
    }
}

void icscf_cx_reply(nta_incoming_t *irq, const ims_cx_sip *s)
{
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", s->retry_after);
    if (irq && nta_incoming_status(irq) < 200)
        nta_incoming_treply(irq, s->status, s->phrase, TAG_IF(s->retry_after, SIPTAG_RETRY_AFTER_STR(ra)), TAG_END());
}

const char *icscf_cx_answer_name(const icscf_cx_answer *a)
{
    if (!a->answered)
        return "timeout";
    if (a->experimental)
        return ims_cx_result_name(a->experimental, true);
    if (a->result)
        return ims_cx_result_name(a->result, false);
    return "no result";
}
