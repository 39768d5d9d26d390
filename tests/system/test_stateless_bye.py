"""A UE's BYE over UDP goes through the P-CSCF without a server transaction (issue 16;
common/ims_sip_stateless.c, pcscf/pcscf_route.c pcscf_route_stateless; RFC 3261 §16.11, §18.2.2),
on the whole core (lab.py, every NF on 127.0.0.1).

Why: nta keeps a UDP server transaction, request and final response, for Timer J (32 s) after the
answer; at 300 calls/s the callers' BYE transactions held ~140 MB of the P-CSCF's heap.

What must hold:
- alice (registered, UDP) calls bob; her BYE along the route set reaches bob with a Via of the
  P-CSCF whose branch is a stateless one (z9hG4bK-sl-), and bob's 200 reaches alice through the
  P-CSCF; counted in sip_stateless_total{event=request_forwarded / response_relayed};
- her retransmission of the same BYE gets the 200 again from what the P-CSCF kept of it (a few
  hundred bytes for Timer J instead of nta's transaction) and does not go through the core again;
- the checks of the stateful way apply: a BYE from alice without the dialog's token is 403, counted
  in pcscf_refused_total{reason="dialog_route"}, and reaches nobody;
- an attacker cannot use the stateless relay: responses sent to the P-CSCF with its Via on top
  and a victim's Via below, with a made-up stateless branch or with the real branch of alice's
  BYE, reach nothing and are counted as response_dropped.
Against the code before this change: no stateless branch at bob, no sip_stateless_total.
"""

import re

import lab
from lab import check
from test_trust import Endpoint, register, request, subscribers
from test_trust_pcscf import busy_dialog, reply

ATTACKER = "127.0.0.2"


def stateless(core, event):
    return core.pcscf.metric("sip_stateless_total", event=event) or 0


def pcscf_branch(msg, pcscf_port):
    """The branch of the P-CSCF's stateless Via in a request bob received (None: none)."""
    for v in msg.all("Via"):
        if "127.0.0.1:%d;" % pcscf_port in v and "branch=z9hG4bK-sl-" in v:
            return re.search(r"branch=([^;,\s]+)", v).group(1)
    return None


def test_bye_without_a_server_transaction(tmp):
    with lab.Lab(tmp, subscribers=subscribers()) as core:
        alice_port = register(core, "alice")
        bob_port = register(core, "bob")
        service_route = "<sip:orig@127.0.0.1:%d;lr>" % core.scscf_sip
        problems = []
        with Endpoint(port=alice_port) as alice, Endpoint(port=bob_port) as bob, \
                Endpoint(ATTACKER) as attacker, Endpoint("127.0.0.3") as victim:
            call_id = "slbye-%d@127.0.0.1" % alice.port
            invite, to = busy_dialog(core, alice, bob, call_id)
            rr = re.findall(r"<([^>]+)>", ",".join(invite.all("Record-Route")))
            alice_route = ", ".join("<%s>" % u for u in reversed(rr))   # the UAC's route set

            def bye(route, cseq):
                return request("BYE", "sip:bob@127.0.0.1:%d" % bob.port, alice, [
                    ("Route", route), ("From", "<sip:alice@%s>;tag=a1" % lab.DOMAIN), ("To", to),
                    ("Call-ID", call_id), ("CSeq", "%d BYE" % cseq)])

            # the BYE along the route set
            fwd0, rel0 = stateless(core, "request_forwarded"), stateless(core, "response_relayed")
            text = bye(alice_route, 2)
            bob.got, alice.got = [], []
            alice.send(core.pcscf_sip, text)
            byes = []
            lab.wait_for(lambda: byes.extend(m for m in bob.collect(0.2) if m.method == "BYE") or byes,
                         timeout=10, what="alice's BYE at bob")
            branch = pcscf_branch(byes[0], core.pcscf_sip)
            if not branch:
                problems.append("no stateless branch of the P-CSCF in the BYE at bob: %r" % byes[0].all("Via"))
            reply(bob, byes[0], 200, "OK", "b1", core.pcscf_sip)

            def final_at_alice(what):
                finals = []
                lab.wait_for(lambda: finals.extend(m for m in alice.collect(0.2) if m.status and m.status >= 200
                                                   and "BYE" in (m.get("CSeq") or "")) or finals,
                             timeout=10, what=what)
                return finals[0]
            first = final_at_alice("the 200 to alice's BYE")
            if first.status != 200 or len(first.all("Via")) != 1:
                problems.append("alice got %s with Vias %r, expected 200 with hers only" %
                                (first.status, first.all("Via")))
            # her retransmission (the same datagram): answered again from what the P-CSCF kept
            # of the 200 (Timer J), not sent through the core again
            alice.got, bob.got = [], []
            alice.send(core.pcscf_sip, text)
            again = final_at_alice("the 200 again for alice's retransmitted BYE")
            if again.status != 200 or again.get("Call-ID") != call_id:
                problems.append("the retransmission got %s, expected the 200 again" % again.status)
            if any(m.method == "BYE" for m in bob.collect(0.5)):
                problems.append("the retransmitted BYE went through the core to bob again")
            if (stateless(core, "request_forwarded") - fwd0, stateless(core, "response_relayed") - rel0,
                    stateless(core, "retransmission_absorbed")) != (1, 1, 1):
                problems.append("sip_stateless_total: %s forwarded, %s relayed, %s absorbed (expected 1 each)" %
                                (stateless(core, "request_forwarded") - fwd0, stateless(core, "response_relayed") - rel0,
                                 stateless(core, "retransmission_absorbed")))

            # the stateful way's checks: our URI without the dialog's token
            bob.got = []
            st = alice.exchange(core.pcscf_sip, bye("<sip:127.0.0.1:%d;lr>, %s" % (core.pcscf_sip, service_route), 3),
                                timeout=5)
            if st != 403:
                problems.append("a BYE without the dialog's token: expected 403, got %s" % st)
            if core.pcscf.metric("pcscf_refused_total", reason="dialog_route") != 1:
                problems.append("pcscf_refused_total{reason=dialog_route} is %s, expected 1" %
                                core.pcscf.metric("pcscf_refused_total", reason="dialog_route"))

            # forged responses towards the victim: a made-up branch, and alice's real one
            drop0 = stateless(core, "response_dropped")
            for forged in ("z9hG4bK-sl-main-00112233445566ff", branch or "z9hG4bK-sl-main-0"):
                attacker.send(core.pcscf_sip, "\r\n".join([
                    "SIP/2.0 200 OK",
                    "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s" % (core.pcscf_sip, forged),
                    "Via: SIP/2.0/UDP 127.0.0.3:%d;branch=z9hG4bK-victim" % victim.port,
                    "From: <sip:alice@%s>;tag=a1" % lab.DOMAIN, "To: %s" % to, "Call-ID: %s" % call_id,
                    "CSeq: 2 BYE", "Content-Length: 0", "", ""]))
            got = victim.collect(1.5)
            if got:
                problems.append("the victim received: %s" % [m.first for m in got])
            if stateless(core, "response_dropped") - drop0 != 2:
                problems.append("sip_stateless_total{event=response_dropped} rose by %s, expected 2" %
                                (stateless(core, "response_dropped") - drop0))
            if any(m.method == "BYE" for m in bob.collect(0.3)):
                problems.append("bob received a BYE that was refused")
        check(core.reg_states("alice").get("sip:alice@%s" % lab.DOMAIN) == "registered", "alice lost her registration")
        core.alive()
        check(not problems, "; ".join(problems))


if __name__ == "__main__":
    lab.main()
