/*
 * inproc_pcscf_regevent: the P-CSCF's reg event subscription (subscribe_reg_event: true), in
 * process (inproc.h, inproc_pcscf_lab.h).
 *
 * The test plays the UE, the I-CSCF (REGISTERs, answered 200 at once) and the S-CSCF (the
 * Service-Route: SUBSCRIBEs come to it, it sends the NOTIFYs). Checked against
 * pcscf_regevent.ok, and pcscf_regevent_tcp.ok with sip.core_transport tcp (TS 24.229 §5.2.3,
 * §5.2.4; RFC 3680; RFC 6665):
 *   1. After the 200 to the REGISTER the P-CSCF SUBSCRIBEs to reg of the registered identity
 *      along the Service-Route (Event: reg, Expires above the registration's, its own
 *      P-Asserted-Identity); the S-CSCF answers 200 and NOTIFYs the full state: 200.
 *   2. A NOTIFY that terminates the registration (contact "deactivated", Subscription-State:
 *      terminated, as the S-CSCF sends on a network-initiated de-registration) removes the
 *      binding: the UE's next INVITE gets 403 (not registered). No un-SUBSCRIBE follows (the
 *      notifier ended the subscription).
 *   3. Registered again: a new subscription (a new dialog). The UE de-registers: the P-CSCF
 *      un-SUBSCRIBEs (Expires: 0) and the S-CSCF holds its answer; the UE registers again before
 *      that answer. The P-CSCF must subscribe again for the new registration (§5.2.3): a new
 *      SUBSCRIBE, whatever becomes of the old one (this was the bug: the registration stayed
 *      without a subscription once the old one ended). The old dialog is gone (its final NOTIFY
 *      gets 481), the new one takes NOTIFYs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inproc_pcscf_lab.h"

#define WAIT_MS PCSCF_LAB_WAIT_MS

/* A subscription as the S-CSCF sees it, from the SUBSCRIBE it received. */
typedef struct {
    char call_id[256];
    char subscriber[512];    /* From of the SUBSCRIBE (the P-CSCF, with its tag): NOTIFY To */
    char target[512];        /* Contact of the SUBSCRIBE without <>: NOTIFY Request-URI */
    int notify_cseq;
} sub_dialog;

/* The S-CSCF receives the next message: true when it is a SUBSCRIBE with Expires expires (-1:
 * any but 0); then d (may be NULL) is filled from it. */
static bool recv_subscribe(pcscf_lab *lab, int expires, sub_dialog *d)
{
    char v[512];
    const char *m = inproc_recv(&lab->scscf, "P-CSCF", WAIT_MS);
    if (!m || strncmp(m, "SUBSCRIBE ", 10) != 0 || !inproc_hdr(m, "Expires", 0, v, sizeof(v)))
        return false;
    long e = strtol(v, NULL, 10);
    if (expires < 0 ? e <= 0 : e != expires)
        return false;
    if (d) {
        memset(d, 0, sizeof(*d));
        inproc_hdr(m, "Call-ID", 0, d->call_id, sizeof(d->call_id));
        inproc_hdr(m, "From", 0, d->subscriber, sizeof(d->subscriber));
        if (inproc_hdr(m, "Contact", 0, v, sizeof(v)))
            snprintf(d->target, sizeof(d->target), "%.*s", (int)strcspn(v + (v[0] == '<'), ">"), v + (v[0] == '<'));
    }
    return true;
}

/* The S-CSCF answers the SUBSCRIBE in lab->scscf.last: 200 with its Contact and Expires. */
static void accept_subscribe(pcscf_lab *lab, int expires)
{
    inproc_respond(&lab->scscf, "P-CSCF", 200, "OK", inproc_fmt(
        "Contact: <sip:scscf@127.0.0.1:%d%s>\nExpires: %d\n", lab->scscf.port, lab->core_param, expires));
}

/* The S-CSCF NOTIFYs in dialog d: Subscription-State substate, the reginfo document with the
 * UE's contact in state contact_state / event; the P-CSCF's answer is read. Returns its status. */
static int notify(pcscf_lab *lab, sub_dialog *d, const char *substate, const char *reg_state,
                  const char *contact_state, const char *event)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "<?xml version=\"1.0\"?>\r\n"
             "<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"%d\" state=\"full\">\r\n"
             "<registration aor=\"sip:alice@ims.lab\" id=\"a1\" state=\"%s\">\r\n"
             "<contact id=\"c1\" state=\"%s\" event=\"%s\" expires=\"%d\"><uri>sip:alice@127.0.0.1:%d</uri></contact>\r\n"
             "</registration>\r\n</reginfo>\r\n", d->notify_cseq, reg_state, contact_state, event,
             strcmp(contact_state, "active") == 0 ? 600 : 0, lab->ue.port);
    inproc_note("(reginfo: registration %s, contact of the UE %s, event %s)", reg_state, contact_state, event);
    static int n_notify;   /* a new branch for each NOTIFY */
    d->notify_cseq++;
    n_notify++;
    inproc_send(&lab->scscf, lab->port, "P-CSCF", inproc_fmt(
        "NOTIFY %s SIP/2.0\n"
        "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK-s-notify-%d\n"
        "Max-Forwards: 70\n"
        "From: <sip:alice@ims.lab>;tag=S-CSCF\n"
        "To: %s\n"
        "Call-ID: %s\n"
        "CSeq: %d NOTIFY\n"
        "Contact: <sip:scscf@127.0.0.1:%d%s>\n"
        "Event: reg\n"
        "Subscription-State: %s\n"
        "Content-Type: application/reginfo+xml", d->target, lab->core, lab->scscf.port, n_notify,
        d->subscriber, d->call_id, d->notify_cseq, lab->scscf.port, lab->core_param, substate), body);
    const char *r = inproc_recv(&lab->scscf, "P-CSCF", WAIT_MS);
    return r ? (int)strtol(r + 8, NULL, 10) : 0;
}

/* An INVITE from the UE; the answer is read (and ACKed). Returns its status. */
static int ue_invite(pcscf_lab *lab)
{
    char to[512] = "";
    pcscf_lab_ue_invite(lab);
    const char *r = inproc_recv(&lab->ue, "P-CSCF", WAIT_MS);
    if (!r)
        return 0;
    inproc_hdr(r, "To", 0, to, sizeof(to));
    int status = (int)strtol(r + 8, NULL, 10);
    pcscf_lab_ue_ack(lab, to);
    return status;
}

/* inproc_pcscf_regevent [tcp]: sip.core_transport udp (pcscf_regevent.ok) or tcp
 * (pcscf_regevent_tcp.ok: the S-CSCF is a TCP peer, its Contact names TCP). */
int main(int argc, char **argv)
{
    bool tcp = argc > 1 && strcmp(argv[1], "tcp") == 0;
    pcscf_lab lab;
    if (pcscf_lab_start(&lab, tcp ? "pcscf_regevent_tcp" : "pcscf_regevent", true, tcp ? "tcp" : "udp"))
        return 1;
    sub_dialog first, second, third;

    inproc_note("== REGISTER -> 200; then SUBSCRIBE reg along the Service-Route; 200 and a full NOTIFY ==");
    pcscf_lab_register(&lab, 1, 600);
    inproc_check(recv_subscribe(&lab, -1, &first), "a SUBSCRIBE (Expires > 0) follows the registration");
    accept_subscribe(&lab, 1800);
    inproc_check(notify(&lab, &first, "active;expires=1800", "active", "active", "registered") == 200,
                 "the NOTIFY is answered 200");

    inproc_note("== NOTIFY: registration terminated, contact deactivated -> binding removed ==");
    inproc_check(notify(&lab, &first, "terminated;reason=deactivated", "terminated", "terminated",
                        "deactivated") == 200, "the NOTIFY is answered 200");
    inproc_note("== the UE's INVITE is refused: it is no longer registered ==");
    inproc_check(ue_invite(&lab) == 403, "the INVITE gets 403");
    inproc_note("== no un-SUBSCRIBE: the notifier ended the subscription ==");
    inproc_check(inproc_recv(&lab.scscf, "P-CSCF", 500) == NULL, "nothing more reaches the S-CSCF");

    inproc_note("== REGISTER again -> 200; a new subscription (new dialog) ==");
    pcscf_lab_register(&lab, 2, 600);
    inproc_check(recv_subscribe(&lab, -1, &second), "a SUBSCRIBE follows the registration");
    inproc_check(strcmp(second.call_id, first.call_id) != 0, "a new Call-ID");
    accept_subscribe(&lab, 1800);

    inproc_note("== de-REGISTER -> 200; the P-CSCF un-SUBSCRIBEs; the S-CSCF holds its answer ==");
    pcscf_lab_register(&lab, 3, 0);
    inproc_check(recv_subscribe(&lab, 0, NULL), "an un-SUBSCRIBE (Expires: 0) follows the de-registration");
    char held[INPROC_MSG_MAX];
    memcpy(held, lab.scscf.last, sizeof(held));

    inproc_note("== REGISTER again before the un-SUBSCRIBE is answered -> 200 ==");
    pcscf_lab_register(&lab, 4, 600);
    inproc_note("== the S-CSCF answers the un-SUBSCRIBE; a new SUBSCRIBE for the new registration ==");
    memcpy(lab.scscf.last, held, sizeof(held));
    inproc_respond(&lab.scscf, "P-CSCF", 200, "OK", "Expires: 0\n");
    if (!inproc_check(recv_subscribe(&lab, -1, &third), "a new SUBSCRIBE for the new registration (TS 24.229 §5.2.3)"))
        return pcscf_lab_finish(&lab);
    inproc_check(strcmp(third.call_id, second.call_id) != 0, "a new Call-ID");
    accept_subscribe(&lab, 1800);
    inproc_note("== the old dialog's final NOTIFY finds nothing (481); the new one is ours (200) ==");
    inproc_check(notify(&lab, &second, "terminated;reason=timeout", "terminated", "terminated", "unregistered") ==
                 481, "the old dialog is gone");
    inproc_check(notify(&lab, &third, "active;expires=1800", "active", "active", "registered") == 200,
                 "the new dialog takes NOTIFYs");
    return pcscf_lab_finish(&lab);
}
