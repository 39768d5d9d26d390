/*
 * inproc_scscf: the S-CSCF's REGISTER (IMS-AKA) and originating INVITE paths, in process
 * (inproc.h).
 *
 * The test plays the I-CSCF (REGISTERs come from it; originating requests to home users not
 * registered here go to it), the P-CSCF (originating INVITE) and the HSS (scripted MAA / SAA).
 * The AKA vectors are TS 35.208 test sets 1 and 2 (tests/unit/vectors): RAND, AUTN =
 * SQN^AK || AMF || MAC-A, XRES = f2, CK = f3, IK = f4, so every challenge is the same each run.
 * Checked against scscf.ok (TS 24.229 §5.4.1.2, §5.4.3.2; TS 29.229 §6.1.3, §6.1.7; RFC 3310):
 *   1. REGISTER -> MAR (Digest-AKAv1-MD5) -> 401 with nonce = base64(RAND || AUTN), ck, ik.
 *   2. REGISTER with the right RES -> SAR REGISTRATION -> 200 with Service-Route ("orig"),
 *      P-Associated-URI from the User-Data, Path and the Contact.
 *   3. A new challenge answered with a wrong RES -> SAR AUTHENTICATION_FAILURE -> 403.
 *   4. INVITE of the registered user from the P-CSCF along the Service-Route -> Record-Route and
 *      on to the I-CSCF (callee in the home domain, not registered here); 486 back, ACKed.
 *   5. Terminating INVITE to the registered user from the I-CSCF (top Route ours, no "orig"):
 *      Request-URI replaced by the registered contact, Route by its Path (the P-CSCF),
 *      P-Called-Party-ID, Record-Route (TS 24.229 §5.4.3.3; RFC 3327 §5.3); 486 back, ACKed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ims_aka.h"
#include "inproc.h"
#include "scscf_context.h"

#define WAIT_MS 3000

#ifndef IMS_VECTORS_DIR
#error "IMS_VECTORS_DIR must name tests/unit/vectors"
#endif

typedef struct {
    uint8_t rand[16], autn[16], xres[8], ck[16], ik[16];
} vector;

static vector g_vec[2];       /* TS 35.208 test sets 1 and 2 */
static int g_port;            /* ours: Server-Name */

/* Reads test set `set` of milenage-ts35208.tsv (columns by name) into v. 0 / -1. */
static int load_vector(int set, vector *v)
{
    FILE *f = fopen(IMS_VECTORS_DIR "/milenage-ts35208.tsv", "r");
    if (!f)
        return -1;
    char line[1024], *cols[16], head[1024] = "";
    int rc = -1;
    while (rc && fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\r\n")] = '\0';
        if (!head[0]) {
            snprintf(head, sizeof(head), "%s", line);
            continue;
        }
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(line, "\t", &save); t && n < 16; t = strtok_r(NULL, "\t", &save))
            cols[n++] = t;
        if (n < 14 || atoi(cols[0]) != set)
            continue;
        /* set K RAND SQN AMF OP OPc f1 f1star f2 f5 f3 f4 f5star */
        uint8_t sqn[6], amf[2], mac[8], ak[6];
        if (ims_hex_decode(cols[2], v->rand, 16) || ims_hex_decode(cols[3], sqn, 6) ||
            ims_hex_decode(cols[4], amf, 2) || ims_hex_decode(cols[7], mac, 8) ||
            ims_hex_decode(cols[9], v->xres, 8) || ims_hex_decode(cols[10], ak, 6) ||
            ims_hex_decode(cols[11], v->ck, 16) || ims_hex_decode(cols[12], v->ik, 16))
            break;
        for (int i = 0; i < 6; i++)
            v->autn[i] = sqn[i] ^ ak[i];
        memcpy(v->autn + 6, amf, 2);
        memcpy(v->autn + 8, mac, 8);
        rc = 0;
    }
    fclose(f);
    return strcmp(head, "set\tK\tRAND\tSQN\tAMF\tOP\tOPc\tf1\tf1star\tf2\tf5\tf3\tf4\tf5star") == 0 ? rc : -1;
}

static int nf_start(inproc_nf *nf, char *err, size_t errlen)
{
    scscf_context *ctx = &scscf_ctx;
    ctx->sip = nf->sip;
    ctx->trust = ims_trust_start(&ctx->cfg.trust, ctx->sip, "scscf");
    return scscf_start(ctx, err, errlen);
}

static void nf_stop(inproc_nf *nf)
{
    (void)nf;
    scscf_stop(&scscf_ctx);
}

/* ---------- scripted answers ---------- */

static struct msg *maa(struct msg *req, void *arg)
{
    const vector *v = arg;
    struct msg *ans = inproc_cx_answer(req, IMS_DIAMETER_SUCCESS, false);
    struct avp *item = NULL;
    uint8_t challenge[32];
    memcpy(challenge, v->rand, 16);
    memcpy(challenge + 16, v->autn, 16);
    if (ans && (ims_cx_add_str(ans, ims_cx_dict.user_name, "alice@ims.lab") ||
                ims_cx_add_u32(ans, ims_cx_dict.sip_number_auth_items, 1) ||
                ims_cx_add_group(ans, ims_cx_dict.sip_auth_data_item, &item) ||
                ims_cx_add_u32(item, ims_cx_dict.sip_item_number, 1) ||
                ims_cx_add_str(item, ims_cx_dict.sip_auth_scheme, IMS_SCHEME_AKA) ||
                ims_cx_add_os(item, ims_cx_dict.sip_authenticate, challenge, sizeof(challenge)) ||
                ims_cx_add_os(item, ims_cx_dict.sip_authorization, v->xres, sizeof(v->xres)) ||
                ims_cx_add_os(item, ims_cx_dict.ck, v->ck, sizeof(v->ck)) ||
                ims_cx_add_os(item, ims_cx_dict.ik, v->ik, sizeof(v->ik)))) {
        fd_msg_free(ans);
        return NULL;
    }
    return ans;
}

static const char user_data[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<IMSSubscription><PrivateID>alice@ims.lab</PrivateID><ServiceProfile>"
    "<PublicIdentity><Identity>sip:alice@ims.lab</Identity></PublicIdentity>"
    "<PublicIdentity><Identity>tel:+15550001</Identity></PublicIdentity>"
    "</ServiceProfile></IMSSubscription>";

static struct msg *saa_profile(struct msg *req, void *arg)
{
    (void)arg;
    struct msg *ans = inproc_cx_answer(req, IMS_DIAMETER_SUCCESS, false);
    if (ans && ims_cx_add_os(ans, ims_cx_dict.user_data, (const uint8_t *)user_data, strlen(user_data))) {
        fd_msg_free(ans);
        return NULL;
    }
    return ans;
}

static struct msg *saa_plain(struct msg *req, void *arg)
{
    (void)arg;
    return inproc_cx_answer(req, IMS_DIAMETER_SUCCESS, false);
}

/* ---------- the cases ---------- */

static int g_pcscf_port;      /* the P-CSCF peer: Via and Path of the REGISTERs */

static void send_register(inproc_peer *icscf, int cseq, const char *authorization)
{
    inproc_send(icscf, g_port, "S-CSCF", inproc_fmt(
        "REGISTER sip:ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-i-reg-%d\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-p-reg-%d\n"
        "Max-Forwards: 68\n"
        "Path: <sip:term@127.0.0.1:%d;lr>\n"
        "Require: path\n"
        "Supported: path\n"
        "From: <sip:alice@ims.lab>;tag=ue-reg\n"
        "To: <sip:alice@ims.lab>\n"
        "Call-ID: ue-reg-call@127.0.0.1\n"
        "CSeq: %d REGISTER\n"
        "Contact: <sip:alice@127.0.0.1:5555>;expires=600\n"
        "Authorization: %s\n"
        "P-Visited-Network-ID: ims.lab\n"
        "P-Charging-Vector: icid-value=icid-%d\n"
        "Expires: 600", icscf->port, cseq, g_pcscf_port, cseq, g_pcscf_port, cseq, authorization, cseq), NULL);
}

/* REGISTER -> MAR -> 401; returns the nonce (checked to be base64(RAND || AUTN) of v). */
static void challenge(inproc_peer *icscf, int cseq, const vector *v, char *nonce, size_t len)
{
    inproc_cx_script(maa, (void *)v);
    send_register(icscf, cseq,
                  "Digest username=\"alice@ims.lab\", realm=\"ims.lab\", uri=\"sip:ims.lab\", nonce=\"\", "
                  "response=\"\", algorithm=AKAv1-MD5");
    inproc_cx_expect(1);
    nonce[0] = '\0';
    char www[1024];
    if (inproc_recv(icscf, "S-CSCF", WAIT_MS) && inproc_hdr(icscf->last, "WWW-Authenticate", 0, www, sizeof(www)))
        inproc_param(www, "nonce", nonce, len);
    uint8_t raw[32];
    char expected[64];
    memcpy(raw, v->rand, 16);
    memcpy(raw + 16, v->autn, 16);
    ims_base64_encode(raw, sizeof(raw), expected);
    inproc_check(strcmp(nonce, expected) == 0, "the nonce is base64(RAND || AUTN) of the MAA");
    inproc_note("(checked: nonce = base64(RAND || AUTN) of the scripted MAA)");
}

/* The UE's answer to the challenge: RFC 3310 digest with RES as the password. */
static void answer(inproc_peer *icscf, int cseq, const char *nonce, const uint8_t res[8])
{
    char ha1[33], response[33];
    ims_aka_digest_ha1("alice@ims.lab", "ims.lab", res, 8, ha1);
    ims_digest_response(ha1, nonce, "00000001", "0a4f113b", "auth", "REGISTER", "sip:ims.lab", NULL, 0, response);
    char authorization[512];
    snprintf(authorization, sizeof(authorization),
             "Digest username=\"alice@ims.lab\", realm=\"ims.lab\", uri=\"sip:ims.lab\", nonce=\"%s\", "
             "response=\"%s\", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\"", nonce, response);
    send_register(icscf, cseq, authorization);
}

static void invite(inproc_peer *pcscf, inproc_peer *icscf)
{
    static const char sdp[] = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                              "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    inproc_note("== INVITE of the registered user (originating) -> towards the I-CSCF ==");
    inproc_send(pcscf, g_port, "S-CSCF", inproc_fmt(
        "INVITE sip:bob@ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-p-inv-1\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5555;received=127.0.0.1;rport=5555;branch=z9hG4bK-ue-inv-1\n"
        "Max-Forwards: 69\n"
        "Route: <sip:orig@127.0.0.1:%d;lr>\n"
        "Record-Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:alice@ims.lab>;tag=ue-inv\n"
        "To: <sip:bob@ims.lab>\n"
        "Call-ID: ue-inv-call@127.0.0.1\n"
        "CSeq: 1 INVITE\n"
        "Contact: <sip:alice@127.0.0.1:5555>\n"
        "P-Asserted-Identity: <sip:alice@ims.lab>\n"
        "P-Charging-Vector: icid-value=icid-inv\n"
        "Content-Type: application/sdp", pcscf->port, g_port, pcscf->port), sdp);
    inproc_recv(icscf, "S-CSCF", WAIT_MS);
    inproc_respond(icscf, "S-CSCF", 486, "Busy Here", NULL);
    inproc_recv(icscf, "S-CSCF", WAIT_MS);   /* the S-CSCF's ACK of the 486 */
    char to[512] = "";
    if (inproc_recv(pcscf, "S-CSCF", WAIT_MS))
        inproc_hdr(pcscf->last, "To", 0, to, sizeof(to));
    inproc_send(pcscf, g_port, "S-CSCF", inproc_fmt(   /* hop-by-hop ACK of the 486 */
        "ACK sip:bob@ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-p-inv-1\n"
        "Max-Forwards: 70\n"
        "Route: <sip:orig@127.0.0.1:%d;lr>\n"
        "From: <sip:alice@ims.lab>;tag=ue-inv\n"
        "To: %s\n"
        "Call-ID: ue-inv-call@127.0.0.1\n"
        "CSeq: 1 ACK", pcscf->port, g_port, to), NULL);
}

static void terminating(inproc_peer *icscf, inproc_peer *pcscf)
{
    static const char sdp[] = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                              "t=0 0\r\nm=audio 4002 RTP/AVP 0\r\n";
    char ruri[256] = "", route[256] = "", to[512] = "";
    inproc_note("== terminating INVITE from the I-CSCF -> the registered contact, along its Path ==");
    inproc_send(icscf, g_port, "S-CSCF", inproc_fmt(
        "INVITE sip:alice@ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-i-term-1\n"
        "Max-Forwards: 68\n"
        "Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:bob@ims.lab>;tag=bob-inv\n"
        "To: <sip:alice@ims.lab>\n"
        "Call-ID: bob-inv-call@127.0.0.1\n"
        "CSeq: 1 INVITE\n"
        "Contact: <sip:bob@127.0.0.1:5556>\n"
        "P-Asserted-Identity: <sip:bob@ims.lab>\n"
        "P-Charging-Vector: icid-value=icid-term\n"
        "Content-Type: application/sdp", icscf->port, g_port), sdp);
    if (inproc_recv(pcscf, "S-CSCF", WAIT_MS)) {
        snprintf(ruri, sizeof(ruri), "%.*s", (int)strcspn(pcscf->last, "\r"), pcscf->last);
        inproc_hdr(pcscf->last, "Route", 0, route, sizeof(route));
    }
    inproc_check(strcmp(ruri, "INVITE sip:alice@127.0.0.1:5555 SIP/2.0") == 0,
                 "the Request-URI is the registered contact");
    inproc_check(strcmp(route, inproc_fmt("<sip:term@127.0.0.1:%d;lr>", g_pcscf_port)) == 0,
                 "the Route is the Path of the registration");
    inproc_respond(pcscf, "S-CSCF", 486, "Busy Here", NULL);
    inproc_recv(pcscf, "S-CSCF", WAIT_MS);   /* the S-CSCF's ACK of the 486 */
    if (inproc_recv(icscf, "S-CSCF", WAIT_MS))
        inproc_hdr(icscf->last, "To", 0, to, sizeof(to));
    inproc_send(icscf, g_port, "S-CSCF", inproc_fmt(   /* hop-by-hop ACK of the 486 */
        "ACK sip:alice@ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-i-term-1\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:bob@ims.lab>;tag=bob-inv\n"
        "To: %s\n"
        "Call-ID: bob-inv-call@127.0.0.1\n"
        "CSeq: 1 ACK", icscf->port, g_port, to), NULL);
}

int main(void)
{
    inproc_begin("scscf");
    if (load_vector(1, &g_vec[0]) || load_vector(2, &g_vec[1])) {
        fprintf(stderr, "inproc scscf: cannot read TS 35.208 test sets 1 and 2 from %s\n", IMS_VECTORS_DIR);
        return 1;
    }
    inproc_peer icscf, pcscf;
    if (inproc_peer_open(&icscf, "I-CSCF") || inproc_peer_open(&pcscf, "P-CSCF")) {
        fprintf(stderr, "inproc scscf: cannot open the test sockets\n");
        return 1;
    }
    g_pcscf_port = pcscf.port;
    g_port = inproc_free_port();
    char yaml[1536];
    snprintf(yaml, sizeof(yaml),
             "http: {enabled: false}\n"
             "diameter: {identity: scscf.ims.lab, realm: ims.lab, listen: 127.0.0.1, request_timeout_ms: 1000}\n"
             "sip: {listen: 127.0.0.1, port: %d, core_transport: udp}\n"
             "scscf:\n"
             "  realm: ims.lab\n"
             "  hss_host: hss.ims.lab\n"
             "  icscf: sip:127.0.0.1:%d\n"
             "  auth_vectors: 1\n", g_port, icscf.port);
    scscf_context *ctx = &scscf_ctx;
    if (!g_port || inproc_load_config(yaml, "scscf", scscf_config_fields, &ctx->cfg))
        return 1;
    char err[512];
    if (scscf_config_check(&ctx->cfg, err, sizeof(err))) {
        fprintf(stderr, "inproc scscf: %s\n", err);
        return 1;
    }
    if (inproc_cx_init(&ctx->cfg.diameter, "scscf", "S-CSCF"))
        return 1;
    inproc_nf nf = { .name = "S-CSCF", .sip_cfg = &ctx->cfg.sip, .on_request = scscf_on_request, .arg = ctx,
                     .start = nf_start, .stop = nf_stop };
    if (inproc_nf_start(&nf)) {
        fprintf(stderr, "inproc scscf: cannot start the S-CSCF: %s\n", nf.err);
        return 1;
    }

    char nonce[128];
    inproc_note("== REGISTER -> MAR -> 401 with the AKA challenge (TS 35.208 set 1) ==");
    challenge(&icscf, 1, &g_vec[0], nonce, sizeof(nonce));
    inproc_note("== REGISTER with RES = XRES -> SAR -> 200 ==");
    inproc_cx_script(saa_profile, NULL);
    answer(&icscf, 2, nonce, g_vec[0].xres);
    inproc_cx_expect(1);
    inproc_recv(&icscf, "S-CSCF", WAIT_MS);

    inproc_note("== re-REGISTER challenged (TS 35.208 set 2), answered with a wrong RES -> 403 ==");
    challenge(&icscf, 3, &g_vec[1], nonce, sizeof(nonce));
    uint8_t wrong[8];
    memcpy(wrong, g_vec[1].xres, 8);
    wrong[7] ^= 0x01;
    inproc_cx_script(saa_plain, NULL);
    answer(&icscf, 4, nonce, wrong);
    inproc_cx_expect(1);
    inproc_recv(&icscf, "S-CSCF", WAIT_MS);

    invite(&pcscf, &icscf);
    terminating(&icscf, &pcscf);

    inproc_nf_stop(&nf);
    inproc_cx_fini();
    ims_trust_free(ctx->trust);
    ims_cfg_free(scscf_config_fields, &ctx->cfg);
    inproc_peer_close(&icscf);
    inproc_peer_close(&pcscf);
    return inproc_finish();
}
