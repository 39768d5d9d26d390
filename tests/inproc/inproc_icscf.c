/*
 * inproc_icscf: the I-CSCF's REGISTER path, in process (inproc.h).
 *
 * The test plays the P-CSCF, the S-CSCF and the HSS (scripted UAA). Checked against icscf.ok
 * (TS 24.229 §5.3.1.2, TS 29.228 §6.1.1, TS 29.229 §6.1.1-§6.1.2):
 *   1. REGISTER -> UAR (User-Name, Public-Identity, Visited-Network-Identifier from the
 *      P-Visited-Network-ID, User-Authorization-Type REGISTRATION); UAA FIRST_REGISTRATION with
 *      Server-Name -> the REGISTER goes to that S-CSCF; its 401 comes back to the P-CSCF.
 *   2. UAA with Server-Capabilities and no Server-Name -> an S-CSCF of icscf.scscfs that has the
 *      mandatory capability is chosen.
 *   3. UAA DIAMETER_ERROR_USER_UNKNOWN -> 403 (icscf.user_unknown_code) without a forward.
 *   4. No UAA at all (the HSS does not answer) -> 480 + Retry-After.
 *   5. The UAR cannot be sent at all (no HSS connection) -> the same 480 + Retry-After.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icscf_context.h"
#include "inproc.h"

#define WAIT_MS 3000

static int g_scscf_port;

static int nf_start(inproc_nf *nf, char *err, size_t errlen)
{
    icscf_context *ctx = &icscf_ctx;
    ctx->sip = nf->sip;
    ctx->trust = ims_trust_start(&ctx->cfg.trust, ctx->sip, "icscf");
    return icscf_start(ctx, err, errlen);
}

static void nf_stop(inproc_nf *nf)
{
    (void)nf;
    icscf_stop(&icscf_ctx);
}

/* ---------- scripted answers ---------- */

static struct msg *uaa_server_name(struct msg *req, void *arg)
{
    (void)arg;
    struct msg *ans = inproc_cx_answer(req, IMS_CX_FIRST_REGISTRATION, true);
    if (ans && ims_cx_add_str(ans, ims_cx_dict.server_name, inproc_fmt("sip:127.0.0.1:%d", g_scscf_port))) {
        fd_msg_free(ans);
        return NULL;
    }
    return ans;
}

static struct msg *uaa_capabilities(struct msg *req, void *arg)
{
    (void)arg;
    struct msg *ans = inproc_cx_answer(req, IMS_CX_FIRST_REGISTRATION, true);
    struct avp *caps = NULL;
    if (ans && (ims_cx_add_group(ans, ims_cx_dict.server_caps, &caps) ||
                ims_cx_add_u32(caps, ims_cx_dict.mandatory_cap, 7))) {
        fd_msg_free(ans);
        return NULL;
    }
    return ans;
}

static struct msg *uaa_user_unknown(struct msg *req, void *arg)
{
    (void)arg;
    return inproc_cx_answer(req, IMS_CX_ERROR_USER_UNKNOWN, true);
}

static struct msg *no_answer(struct msg *req, void *arg)
{
    (void)arg;
    fd_msg_free(req);
    return NULL;
}

/* ---------- the cases ---------- */

static void send_register(inproc_peer *pcscf, int iport, const char *user, int n)
{
    inproc_send(pcscf, iport, "I-CSCF", inproc_fmt(
        "REGISTER sip:ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-p-reg-%d\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5555;received=127.0.0.1;rport=5555;branch=z9hG4bK-ue-reg-%d\n"
        "Max-Forwards: 69\n"
        "Path: <sip:term@127.0.0.1:%d;lr>\n"
        "Require: path\n"
        "Supported: path\n"
        "From: <sip:%s@ims.lab>;tag=ue-%d\n"
        "To: <sip:%s@ims.lab>\n"
        "Call-ID: reg-%d@127.0.0.1\n"
        "CSeq: 1 REGISTER\n"
        "Contact: <sip:%s@127.0.0.1:5555>;expires=600\n"
        "Authorization: Digest username=\"%s@ims.lab\", realm=\"ims.lab\", uri=\"sip:ims.lab\", nonce=\"\", "
        "response=\"\"\n"
        "P-Visited-Network-ID: visited.lab\n"
        "P-Charging-Vector: icid-value=icid-%d\n"
        "Expires: 600", pcscf->port, n, n, pcscf->port, user, n, user, n, user, user, n), NULL);
}

static void forwarded(inproc_peer *pcscf, inproc_peer *scscf)
{
    inproc_cx_expect(1);
    inproc_recv(scscf, "I-CSCF", WAIT_MS);
    inproc_respond(scscf, "I-CSCF", 401, "Unauthorized",
                   "WWW-Authenticate: Digest realm=\"ims.lab\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, "
                   "qop=\"auth\"\n");
    inproc_recv(pcscf, "I-CSCF", WAIT_MS);
}

int main(void)
{
    inproc_begin("icscf");
    inproc_peer pcscf, scscf, scscf2;
    if (inproc_peer_open(&pcscf, "P-CSCF") || inproc_peer_open(&scscf, "S-CSCF") ||
        inproc_peer_open(&scscf2, "S-CSCF-2")) {
        fprintf(stderr, "inproc icscf: cannot open the test sockets\n");
        return 1;
    }
    g_scscf_port = scscf.port;
    int iport = inproc_free_port();
    char yaml[1536];
    snprintf(yaml, sizeof(yaml),
             "http: {enabled: false}\n"
             "diameter: {identity: icscf.ims.lab, realm: ims.lab, listen: 127.0.0.1, request_timeout_ms: 1000}\n"
             "sip: {listen: 127.0.0.1, port: %d, core_transport: udp}\n"
             "icscf:\n"
             "  home_domains: [ims.lab]\n"
             "  scscfs:\n"
             "    - {name: \"sip:127.0.0.1:%d\", capabilities: []}\n"
             "    - {name: \"sip:127.0.0.1:%d\", capabilities: [\"7\"]}\n",
             iport, scscf.port, scscf2.port);
    icscf_context *ctx = &icscf_ctx;
    if (!iport || inproc_load_config(yaml, "icscf", icscf_config_fields, &ctx->cfg))
        return 1;
    char err[512];
    if (icscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "inproc icscf: %s\n", err);
        return 1;
    }
    if (inproc_cx_init(&ctx->cfg.diameter, "icscf", "I-CSCF"))
        return 1;
    inproc_nf nf = { .name = "I-CSCF", .sip_cfg = &ctx->cfg.sip, .on_request = icscf_on_request, .arg = ctx,
                     .start = nf_start, .stop = nf_stop };
    if (inproc_nf_start(&nf)) {
        fprintf(stderr, "inproc icscf: cannot start the I-CSCF: %s\n", nf.err);
        return 1;
    }

    inproc_note("== REGISTER: UAA names the S-CSCF -> forwarded there, its 401 relayed ==");
    inproc_cx_script(uaa_server_name, NULL);
    send_register(&pcscf, iport, "alice", 1);
    forwarded(&pcscf, &scscf);

    inproc_note("== REGISTER: UAA with Server-Capabilities only -> the S-CSCF with capability 7 ==");
    inproc_cx_script(uaa_capabilities, NULL);
    send_register(&pcscf, iport, "carol", 2);
    forwarded(&pcscf, &scscf2);

    inproc_note("== REGISTER: UAA DIAMETER_ERROR_USER_UNKNOWN -> 403, nothing forwarded ==");
    inproc_cx_script(uaa_user_unknown, NULL);
    send_register(&pcscf, iport, "nobody", 3);
    inproc_cx_expect(1);
    inproc_recv(&pcscf, "I-CSCF", WAIT_MS);

    inproc_note("== REGISTER: the HSS does not answer -> 480 + Retry-After ==");
    inproc_cx_script(no_answer, NULL);
    send_register(&pcscf, iport, "dave", 4);
    inproc_cx_expect(1);
    inproc_recv(&pcscf, "I-CSCF", WAIT_MS);

    inproc_note("== REGISTER: the UAR cannot be sent (no HSS connection) -> 480 + Retry-After, the same answer ==");
    inproc_cx_script_unsent();
    send_register(&pcscf, iport, "erin", 5);
    inproc_cx_expect(1);
    inproc_recv(&pcscf, "I-CSCF", WAIT_MS);

    inproc_nf_stop(&nf);
    inproc_cx_fini();
    ims_trust_free(ctx->trust);
    icscf_free(ctx);
    ims_cfg_free(icscf_config_fields, &ctx->cfg);
    inproc_peer_close(&pcscf);
    inproc_peer_close(&scscf);
    inproc_peer_close(&scscf2);
    return inproc_finish();
}
