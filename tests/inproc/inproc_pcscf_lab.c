/*
 * inproc_pcscf_lab: the P-CSCF under test and its peers. See inproc_pcscf_lab.h.
 */
#include "inproc_pcscf_lab.h"

#include <stdio.h>
#include <string.h>

#include "pcscf_context.h"

static int nf_start(inproc_nf *nf, char *err, size_t errlen)
{
    pcscf_context *ctx = &pcscf_ctx;
    ctx->sip = nf->sip;
    ctx->trust = ims_trust_start(&ctx->cfg.trust, ctx->sip, "pcscf");
    return pcscf_start(ctx, err, errlen);
}

static void nf_stop(inproc_nf *nf)
{
    (void)nf;
    pcscf_stop(&pcscf_ctx);
}

int pcscf_lab_start(pcscf_lab *lab, const char *name, bool subscribe_reg_event, const char *core_transport)
{
    bool tcp = strcmp(core_transport, "tcp") == 0;
    memset(lab, 0, sizeof(*lab));
    inproc_begin(name);
    lab->core = tcp ? "TCP" : "UDP";
    lab->core_param = tcp ? ";transport=tcp" : "";
    if (inproc_peer_open(&lab->ue, "UE") || inproc_peer_open_core(&lab->icscf, "I-CSCF", tcp) ||
        inproc_peer_open_core(&lab->scscf, "S-CSCF", tcp)) {
        fprintf(stderr, "inproc %s: cannot open the test sockets\n", name);
        return -1;
    }
    lab->port = inproc_free_port();
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "http: {enabled: false}\n"
             "sip: {listen: 127.0.0.1, port: %d, core_transport: %s}\n"
             "pcscf:\n"
             "  icscf: sip:127.0.0.1:%d\n"
             "  home_domains: [ims.lab]\n"
             "  visited_network_id: visited.lab\n"
             "  subscribe_reg_event: %s\n", lab->port, core_transport, lab->icscf.port,
             subscribe_reg_event ? "true" : "false");
    pcscf_context *ctx = &pcscf_ctx;
    if (!lab->port || inproc_load_config(yaml, "pcscf", pcscf_config_fields, &ctx->cfg))
        return -1;
    char err[512];
    if (pcscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "inproc %s: %s\n", name, err);
        return -1;
    }
    lab->nf = (inproc_nf){ .name = "P-CSCF", .sip_cfg = &ctx->cfg.sip, .on_request = pcscf_on_request, .arg = ctx,
                           .start = nf_start, .stop = nf_stop };
    if (inproc_nf_start(&lab->nf)) {
        fprintf(stderr, "inproc %s: cannot start the P-CSCF: %s\n", name, lab->nf.err);
        return -1;
    }
    return 0;
}

int pcscf_lab_finish(pcscf_lab *lab)
{
    pcscf_context *ctx = &pcscf_ctx;
    inproc_nf_stop(&lab->nf);
    ims_trust_free(ctx->trust);
    ims_cfg_free(pcscf_config_fields, &ctx->cfg);
    inproc_peer_close(&lab->ue);
    inproc_peer_close(&lab->icscf);
    inproc_peer_close(&lab->scscf);
    return inproc_finish();
}

bool pcscf_lab_register(pcscf_lab *lab, int cseq, int expires)
{
    char path[512] = "", extra[1024], contact[128] = "";
    inproc_send(&lab->ue, lab->port, "P-CSCF", inproc_fmt(
        "REGISTER sip:ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-ue-reg-%d\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:alice@ims.lab>;tag=ue-reg\n"
        "To: <sip:alice@ims.lab>\n"
        "Call-ID: ue-reg-call@127.0.0.1\n"
        "CSeq: %d REGISTER\n"
        "Contact: <sip:alice@127.0.0.1:%d>;expires=%d\n"
        "Supported: path\n"
        "Authorization: Digest username=\"alice@ims.lab\", realm=\"ims.lab\", uri=\"sip:ims.lab\", "
        "nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce=\"ue-cnonce\", "
        "response=\"6629fae49393a05397450978507c4ef1\"\n"
        "Expires: %d", lab->ue.port, cseq, lab->port, cseq, lab->ue.port, expires, expires), NULL);
    if (inproc_recv(&lab->icscf, "P-CSCF", PCSCF_LAB_WAIT_MS))
        inproc_hdr(lab->icscf.last, "Path", 0, path, sizeof(path));
    inproc_check(path[0] != '\0', "the REGISTER reaching the I-CSCF has a Path");
    if (expires)
        snprintf(contact, sizeof(contact), "Contact: <sip:alice@127.0.0.1:%d>;expires=%d\n", lab->ue.port, expires);
    snprintf(extra, sizeof(extra),
             "Path: %s\n"
             "Service-Route: <sip:orig@127.0.0.1:%d;lr%s>\n"
             "P-Associated-URI: <sip:alice@ims.lab>, <tel:+15550001>\n"
             "%s", path, lab->scscf.port, lab->core_param, contact);
    inproc_respond(&lab->icscf, "P-CSCF", 200, "OK", extra);
    const char *r = inproc_recv(&lab->ue, "P-CSCF", PCSCF_LAB_WAIT_MS);
    return r && strncmp(r, "SIP/2.0 200 ", 12) == 0;
}

void pcscf_lab_ue_invite(pcscf_lab *lab)
{
    static const char sdp[] = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                              "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    inproc_send(&lab->ue, lab->port, "P-CSCF", inproc_fmt(
        "INVITE sip:bob@ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-ue-inv-1\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:alice@ims.lab>;tag=ue-inv\n"
        "To: <sip:bob@ims.lab>\n"
        "Call-ID: ue-inv-call@127.0.0.1\n"
        "CSeq: 1 INVITE\n"
        "Contact: <sip:alice@127.0.0.1:%d>\n"
        "Content-Type: application/sdp", lab->ue.port, lab->port, lab->ue.port), sdp);
}

void pcscf_lab_ue_ack(pcscf_lab *lab, const char *to)
{
    inproc_send(&lab->ue, lab->port, "P-CSCF", inproc_fmt(
        "ACK sip:bob@ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-ue-inv-1\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:alice@ims.lab>;tag=ue-inv\n"
        "To: %s\n"
        "Call-ID: ue-inv-call@127.0.0.1\n"
        "CSeq: 1 ACK", lab->ue.port, lab->port, to), NULL);
}
