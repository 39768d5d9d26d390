/*
 * inproc_pcscf: the P-CSCF's REGISTER, originating and terminating INVITE paths, in process
 * (inproc.h, inproc_pcscf_lab.h).
 *
 * The test plays the UE, the I-CSCF (REGISTERs go there) and the S-CSCF (the Service-Route).
 * Checked against pcscf.ok, and pcscf_tcp.ok with sip.core_transport tcp (the I-CSCF and S-CSCF
 * are TCP peers) (TS 24.229 §5.2.2.1, §5.2.6.3; RFC 3327, RFC 3608, RFC 7315, RFC 5658):
 *   1. REGISTER from the UE goes to the I-CSCF with Path (user part "term"), Require/Supported:
 *      path, P-Visited-Network-ID and P-Charging-Vector; its Route (to us) removed.
 *   2. The 401 comes back to the UE without the ck and ik parameters.
 *   3. The 200 stores the Service-Route and P-Associated-URI; Path stays (the UE supports path).
 *   4. An INVITE from the registered UE gets P-Asserted-Identity (the default public identity),
 *      P-Charging-Vector and our Record-Route (with its dialog token), and follows the stored
 *      Service-Route to the S-CSCF whatever Route the UE preloaded; 180 and 486 come back, the
 *      486 is ACKed hop by hop.
 *   5. A terminating INVITE from the core (S-CSCF, Route = our Path URI "term", Request-URI = the
 *      UE's contact) goes to the UE's contact, the address it registered from, with our
 *      Record-Route (TS 24.229 §5.2.6.4, §5.2.7; RFC 3327); the UE's 180 and 486 go back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inproc_pcscf_lab.h"

#define WAIT_MS PCSCF_LAB_WAIT_MS

static void registration(pcscf_lab *lab)
{
    int pport = lab->port, sport = lab->scscf.port;
    inproc_peer *ue = &lab->ue, *icscf = &lab->icscf;
    char path[512] = "", nonce[256] = "", v[1024];

    inproc_note("== REGISTER: UE -> P-CSCF -> I-CSCF, 401 back ==");
    inproc_send(ue, pport, "P-CSCF", inproc_fmt(
        "REGISTER sip:ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-ue-reg-1\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:alice@ims.lab>;tag=ue-reg\n"
        "To: <sip:alice@ims.lab>\n"
        "Call-ID: ue-reg-call@127.0.0.1\n"
        "CSeq: 1 REGISTER\n"
        "Contact: <sip:alice@127.0.0.1:%d>;expires=600\n"
        "Supported: path\n"
        "P-Asserted-Identity: <sip:mallory@ims.lab>\n"
        "Authorization: Digest username=\"alice@ims.lab\", realm=\"ims.lab\", uri=\"sip:ims.lab\", "
        "nonce=\"\", response=\"\"\n"
        "Expires: 600", ue->port, pport, ue->port), NULL);
    if (inproc_recv(icscf, "P-CSCF", WAIT_MS))
        inproc_hdr(icscf->last, "Path", 0, path, sizeof(path));
    inproc_check(path[0] != '\0', "the REGISTER reaching the I-CSCF has a Path");
    inproc_respond(icscf, "P-CSCF", 401, "Unauthorized",
                   "WWW-Authenticate: Digest realm=\"ims.lab\", nonce=\"I1NTPL5jeKJpTHDdOTSBTqwGZN5Nh/AAoO6MqJNUYFY=\", "
                   "algorithm=AKAv1-MD5, qop=\"auth\", ck=\"b40ba9a3c58b2a05bbf0d987b21bf8cb\", "
                   "ik=\"f769bcd751044604127672711c6d3441\"\n");
    if (inproc_recv(ue, "P-CSCF", WAIT_MS)) {
        const char *w = inproc_hdr(ue->last, "WWW-Authenticate", 0, v, sizeof(v));
        inproc_check(w && inproc_param(w, "nonce", nonce, sizeof(nonce)), "the 401 keeps the nonce");
    }

    inproc_note("== REGISTER with credentials: 200 with Service-Route and P-Associated-URI ==");
    inproc_send(ue, pport, "P-CSCF", inproc_fmt(
        "REGISTER sip:ims.lab SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-ue-reg-2\n"
        "Max-Forwards: 70\n"
        "Route: <sip:127.0.0.1:%d;lr>\n"
        "From: <sip:alice@ims.lab>;tag=ue-reg\n"
        "To: <sip:alice@ims.lab>\n"
        "Call-ID: ue-reg-call@127.0.0.1\n"
        "CSeq: 2 REGISTER\n"
        "Contact: <sip:alice@127.0.0.1:%d>;expires=600\n"
        "Supported: path\n"
        "Authorization: Digest username=\"alice@ims.lab\", realm=\"ims.lab\", uri=\"sip:ims.lab\", "
        "nonce=\"%s\", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce=\"ue-cnonce\", "
        "response=\"6629fae49393a05397450978507c4ef1\"\n"
        "Expires: 600", ue->port, pport, ue->port, nonce), NULL);
    inproc_recv(icscf, "P-CSCF", WAIT_MS);
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "Path: %s\n"
             "Service-Route: <sip:orig@127.0.0.1:%d;lr%s>\n"
             "P-Associated-URI: <sip:alice@ims.lab>, <tel:+15550001>\n"
             "Contact: <sip:alice@127.0.0.1:%d>;expires=600\n", path, sport, lab->core_param, ue->port);
    inproc_respond(icscf, "P-CSCF", 200, "OK", extra);
    inproc_recv(ue, "P-CSCF", WAIT_MS);
}

static void invite(pcscf_lab *lab)
{
    inproc_peer *ue = &lab->ue, *scscf = &lab->scscf;
    char to[512] = "";
    inproc_note("== INVITE from the registered UE: P-Asserted-Identity, along the Service-Route ==");
    pcscf_lab_ue_invite(lab);
    inproc_recv(scscf, "P-CSCF", WAIT_MS);
    inproc_respond(scscf, "P-CSCF", 180, "Ringing", NULL);
    inproc_recv(ue, "P-CSCF", WAIT_MS);
    inproc_respond(scscf, "P-CSCF", 486, "Busy Here", NULL);
    inproc_recv(scscf, "P-CSCF", WAIT_MS);   /* the P-CSCF's ACK of the 486 */
    if (inproc_recv(ue, "P-CSCF", WAIT_MS))
        inproc_hdr(ue->last, "To", 0, to, sizeof(to));
    pcscf_lab_ue_ack(lab, to);
}

static void terminating(pcscf_lab *lab)
{
    int pport = lab->port;
    inproc_peer *ue = &lab->ue, *scscf = &lab->scscf;
    static const char sdp[] = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                              "t=0 0\r\nm=audio 4002 RTP/AVP 0\r\n";
    char to[512] = "";
    inproc_note("== terminating INVITE from the S-CSCF (Route: our Path) -> the UE's contact ==");
    inproc_send(scscf, pport, "P-CSCF", inproc_fmt(
        "INVITE sip:alice@127.0.0.1:%d SIP/2.0\n"
        "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-s-term-1\n"
        "Max-Forwards: 67\n"
        "Route: <sip:term@127.0.0.1:%d;lr%s>\n"
        "Record-Route: <sip:127.0.0.1:%d;lr%s>\n"
        "From: <sip:bob@ims.lab>;tag=bob-inv\n"
        "To: <sip:alice@ims.lab>\n"
        "Call-ID: bob-inv-call@127.0.0.1\n"
        "CSeq: 1 INVITE\n"
        "Contact: <sip:bob@127.0.0.1:5556>\n"
        "P-Asserted-Identity: <sip:bob@ims.lab>\n"
        "P-Called-Party-ID: <sip:alice@ims.lab>\n"
        "P-Charging-Vector: icid-value=icid-term\n"
        "Content-Type: application/sdp", ue->port, lab->core, scscf->port, pport, lab->core_param, scscf->port,
        lab->core_param), sdp);
    const char *m = inproc_recv(ue, "P-CSCF", WAIT_MS);
    inproc_check(m && strncmp(m, inproc_fmt("INVITE sip:alice@127.0.0.1:%d SIP/2.0", ue->port), 40) == 0,
                 "the UE receives the INVITE for its contact");
    inproc_respond(ue, "P-CSCF", 180, "Ringing", NULL);
    inproc_recv(scscf, "P-CSCF", WAIT_MS);
    inproc_respond(ue, "P-CSCF", 486, "Busy Here", NULL);
    inproc_recv(ue, "P-CSCF", WAIT_MS);      /* the P-CSCF's ACK of the 486 */
    if (inproc_recv(scscf, "P-CSCF", WAIT_MS))
        inproc_hdr(scscf->last, "To", 0, to, sizeof(to));
    inproc_send(scscf, pport, "P-CSCF", inproc_fmt(
        "ACK sip:alice@127.0.0.1:%d SIP/2.0\n"
        "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-s-term-1\n"
        "Max-Forwards: 70\n"
        "Route: <sip:term@127.0.0.1:%d;lr%s>\n"
        "From: <sip:bob@ims.lab>;tag=bob-inv\n"
        "To: %s\n"
        "Call-ID: bob-inv-call@127.0.0.1\n"
        "CSeq: 1 ACK", ue->port, lab->core, scscf->port, pport, lab->core_param, to), NULL);
}

/* inproc_pcscf [tcp]: sip.core_transport udp (pcscf.ok) or tcp (pcscf_tcp.ok, the default of the
 * shipped configurations: Path and the core-side Record-Route name it, the I-CSCF and S-CSCF
 * are TCP peers). */
int main(int argc, char **argv)
{
    bool tcp = argc > 1 && strcmp(argv[1], "tcp") == 0;
    pcscf_lab lab;
    if (pcscf_lab_start(&lab, tcp ? "pcscf_tcp" : "pcscf", false, tcp ? "tcp" : "udp"))
        return 1;
    registration(&lab);
    invite(&lab);
    terminating(&lab);
    return pcscf_lab_finish(&lab);
}
