"""The P-CSCF's identity binding and routing limits (issue 10; pcscf/pcscf_route.c,
pcscf/pcscf_bindings.c; TS 24.229 §5.2.2.1, §5.2.3, §5.2.6.3, §5.2.7), on the whole core (lab.py:
every NF on 127.0.0.1, trust.cidrs [127.0.0.1/32]).

Without IPsec a UE is its exact flow: the UDP address AND port it registered from, or the TCP
connection it registered over. Each attack must get 403 Forbidden and reach nobody:
- (a) alice registered (SIPp AKA, UDP); a host on the same address (127.0.0.1) but another port
  sends an INVITE as alice (From alice, Route to the S-CSCF's orig URI, i.e. her Service-Route):
  bob's registered contact receives nothing;
- (b) dave registered over a TCP connection (kept open); the same INVITE as dave over a new TCP
  connection;
- (c) a UE request (from alice's registered flow, and from a stranger on 127.0.0.2, outside the
  trust domain) with a Route to the P-CSCF's own Path URI (`term`) and bob's contact as
  Request-URI: bob receives nothing (no bypass of the S-CSCF);
- (d) a To-tagged request from a UE (alice's flow, the stranger) whose Request-URI names another
  address and that carries no Route of ours: the target socket receives nothing (no open relay);
- (e) in-dialog requests with our Record-Route URI on top but without the token of the dialog
  and UE, with a token of another Call-ID or address, or with a valid token but a next hop
  outside the core (route set dropped, a Route of the UE's choice): all 403, nothing reaches the
  target; the real in-dialog BYE along the route set reaches the callee.
Every refusal is counted in pcscf_refused_total{reason} and warned about with the source flow and
the identity it used; alice and dave stay registered. Against the code before this change (IP-only
match, `term`/To-tag relayed) (a)-(d) were forwarded: every assertion here failed there.
The legitimate flows (registration, calls both ways, re-INVITE, BYE, CANCEL, PRACK, MESSAGE,
baresip) are the rest of the system suite, on the same P-CSCF.
"""

import re
import socket
import time

import lab
from lab import check
from test_trust import Endpoint, register, request, subscribers

ATTACKER = "127.0.0.2"


def refused(core, reason):
    return core.pcscf.metric("pcscf_refused_total", reason=reason) or 0


class TcpUe:
    """A UE on one TCP connection of its own to the P-CSCF (digest REGISTER computed by lab.RawUe)."""

    def __init__(self, core, user, password):
        self.core, self.user = core, user
        self.sock = socket.create_connection(("127.0.0.1", core.pcscf_sip), timeout=5)
        self.port = self.sock.getsockname()[1]
        self.buf = b""
        self.auth = lab.RawUe(core, user, password=password)   # only its digest computation

    def read_message(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.M | re.I)
                n = int(m.group(1)) if m else 0
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return lab.SipMessage((head + sep + rest[:n]).decode("utf-8", "replace"))
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65535)
            except socket.timeout:
                continue
            if not chunk:
                return None
            self.buf += chunk
        return None

    def final(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.read_message(max(0.05, deadline - time.monotonic()))
            if m is None:
                return None
            if m.status and m.status >= 200:
                return m
        return None

    def register(self):
        call_id = "tcpue-%s-%d@127.0.0.1" % (self.user, self.port)
        auth = None
        for cseq in (1, 2):
            headers = {"Authorization": auth} if auth else None
            req = lab.register_request(self.port, self.core.pcscf_sip, user=self.user, call_id=call_id, cseq=cseq,
                                       transport="TCP", headers=headers)
            self.sock.sendall(req.encode())
            resp = self.final()
            if resp is None or resp.status != 401:
                return resp
            auth = self.auth.answer(resp)
        return resp

    def close(self):
        self.sock.close()
        self.auth.close()


def invite_as(user, src, transport="UDP", route=None, ruri=None, extra=()):
    headers = [("Route", route)] if route else []
    headers += [("From", "<sip:%s@%s>;tag=forged-%d" % (user, lab.DOMAIN, src.port)),
                ("To", "<sip:bob@%s>" % lab.DOMAIN),
                ("Call-ID", "forged-%s-%d@%s" % (user, src.port, src.host)),
                ("CSeq", "1 INVITE"),
                ("Contact", "<sip:%s@%s:%d>" % (user, src.host, src.port))]
    text = request("INVITE", ruri or "sip:bob@%s" % lab.DOMAIN, src, headers + list(extra))
    return text.replace("SIP/2.0/UDP", "SIP/2.0/%s" % transport, 1)


class Src:
    def __init__(self, host, port):
        self.host, self.port = host, port


def test_identity_bound_to_flow(tmp):
    with lab.Lab(tmp, subscribers=subscribers()) as core:
        register(core, "alice")
        bob_port = register(core, "bob")
        service_route = "<sip:orig@127.0.0.1:%d;lr>" % core.scscf_sip
        problems = []
        with Endpoint(port=bob_port) as bob, Endpoint() as neighbour:
            # (a) same address as alice, another UDP port
            st = neighbour.exchange(core.pcscf_sip, invite_as("alice", neighbour, route=service_route,
                                                              extra=[("P-Preferred-Identity",
                                                                      "<sip:alice@%s>" % lab.DOMAIN)]), timeout=5)
            if st != 403:
                problems.append("(a) INVITE as alice from another port of her address: expected 403, got %s" % st)

            # (b) dave registered over TCP; the same over a new TCP connection
            dave = TcpUe(core, "dave", "davepass")
            try:
                resp = dave.register()
                check(resp is not None and resp.status == 200,
                      "dave's REGISTER over TCP: %s" % lab.first_line(resp))
                other = TcpUe(core, "dave", "davepass")
                try:
                    check(other.port != dave.port, "two TCP connections with one port?")
                    other.sock.sendall(invite_as("dave", Src("127.0.0.1", other.port), transport="TCP",
                                                 route=service_route).encode())
                    resp = other.final()
                    if lab.status_of(resp) != 403:
                        problems.append("(b) INVITE as dave over another TCP connection: expected 403, got %s" %
                                        lab.first_line(resp))
                finally:
                    other.close()
                # dave's own connection still holds the binding
                check(core.reg_states("dave").get("sip:dave@%s" % lab.DOMAIN) == "registered",
                      "dave lost his registration")
            finally:
                dave.close()

            got = bob.collect(1.5)
            if got:
                problems.append("bob received: %s" % [m.first for m in got])
        check(core.reg_states("alice").get("sip:alice@%s" % lab.DOMAIN) == "registered", "alice lost her registration")
        if refused(core, "other_flow") != 2:
            problems.append("pcscf_refused_total{reason=other_flow} is %s, expected 2" % refused(core, "other_flow"))
        log = core.pcscf.log()
        if not re.search(r"WARN.*INVITE from 127\.0\.0\.1:\d+/udp as sip:alice@ims\.lab refused: other_flow", log):
            problems.append("no WARN naming the flow and alice in the P-CSCF log")
        core.alive()
        check(not problems, "; ".join(problems))


def test_no_bypass_of_the_scscf(tmp):
    with lab.Lab(tmp, subscribers=subscribers()) as core:
        alice_port = register(core, "alice")
        bob_port = register(core, "bob")
        term = "<sip:term@127.0.0.1:%d;lr>" % core.pcscf_sip
        bob_contact = "sip:bob@127.0.0.1:%d" % bob_port
        problems = []
        # alice's registered flow (SIPp has exited: the port is ours now) and a stranger
        with Endpoint(port=bob_port) as bob, Endpoint(port=alice_port) as alice, \
                Endpoint(ATTACKER) as stranger, Endpoint() as target:
            # (c) Route to our Path URI, Request-URI bob's registered contact
            for who, ep in (("alice's flow", alice), ("stranger", stranger)):
                st = ep.exchange(core.pcscf_sip, invite_as("alice", ep, route=term, ruri=bob_contact,
                                                           extra=[("P-Asserted-Identity",
                                                                   "<sip:alice@%s>" % lab.DOMAIN)]), timeout=5)
                if st != 403:
                    problems.append("(c) INVITE from %s routed to our term URI: expected 403, got %s" % (who, st))

            # (d) To-tagged requests towards another address, no Route of ours
            for n, (who, ep) in enumerate((("alice's flow", alice), ("stranger", stranger))):
                msg = request("MESSAGE", "sip:anyone@127.0.0.1:%d" % target.port, ep, [
                    ("From", "<sip:alice@%s>;tag=relay%d" % (lab.DOMAIN, n)),
                    ("To", "<sip:anyone@127.0.0.1>;tag=relay-to%d" % n),
                    ("Call-ID", "relay%d@%s" % (n, ep.host)),
                    ("CSeq", "2 MESSAGE"),
                    ("Content-Type", "text/plain"),
                ], body="relayed?")
                st = ep.exchange(core.pcscf_sip, msg, timeout=5)
                if st != 403:
                    problems.append("(d) To-tagged MESSAGE from %s to another address: expected 403, got %s" %
                                    (who, st))
                # an in-dialog BYE with a Route that is not ours (the S-CSCF's) is refused too
                bye = request("BYE", "sip:anyone@127.0.0.1:%d" % target.port, ep, [
                    ("Route", "<sip:127.0.0.1:%d;lr>" % core.scscf_sip),
                    ("From", "<sip:alice@%s>;tag=bye%d" % (lab.DOMAIN, n)),
                    ("To", "<sip:anyone@127.0.0.1>;tag=bye-to%d" % n),
                    ("Call-ID", "bye%d@%s" % (n, ep.host)),
                    ("CSeq", "3 BYE"),
                ])
                st = ep.exchange(core.pcscf_sip, bye, timeout=5)
                if st != 403:
                    problems.append("(d) BYE from %s with a foreign top Route: expected 403, got %s" % (who, st))

            for ep, what in ((bob, "bob's registered contact"), (target, "the relay target")):
                got = ep.collect(1.5 if ep is bob else 0.5)
                if got:
                    problems.append("%s received: %s" % (what, [m.first for m in got]))
        for reason, n in (("term_route", 2), ("dialog_route", 4)):
            if refused(core, reason) != n:
                problems.append("pcscf_refused_total{reason=%s} is %s, expected %d" % (reason, refused(core, reason), n))
        log = core.pcscf.log()
        for what, pat in (("term", r"WARN.*INVITE from 127\.0\.0\.[12]:\d+/udp as sip:alice@ims\.lab.* refused: term_route"),
                          ("dialog", r"WARN.*MESSAGE from 127\.0\.0\.[12]:\d+/udp as sip:alice@ims\.lab.* refused: "
                                     r"dialog_route")):
            if not re.search(pat, log):
                problems.append("no WARN for the %s refusal naming the flow and identity in the P-CSCF log" % what)
        check(core.reg_states("alice").get("sip:alice@%s" % lab.DOMAIN) == "registered", "alice lost her registration")
        core.alive()
        check(not problems, "; ".join(problems))


def test_reg_event_only_for_the_user(tmp):
    """TS 24.229 5.4.2.1.1: through its P-CSCF a registered UE may subscribe to its own reg event,
    not to another user's (which would give it bob's contacts, addresses and Call-IDs)."""
    with lab.Lab(tmp, subscribers=subscribers()) as core:
        alice_port = register(core, "alice")
        register(core, "bob")
        route = "<sip:127.0.0.1:%d;lr>, <sip:orig@127.0.0.1:%d;lr>" % (core.pcscf_sip, core.scscf_sip)
        subs_before = core.scscf.metric("scscf_reg_subscriptions") or 0
        with Endpoint(port=alice_port) as alice, Endpoint() as victim:
            def subscribe(aor, n, contact_port=None):
                return request("SUBSCRIBE", aor, alice, [
                    ("Route", route),
                    ("From", "<sip:alice@%s>;tag=sub%d" % (lab.DOMAIN, n)),
                    ("To", "<%s>" % aor),
                    ("Call-ID", "regsub-%d-%d@test" % (n, alice.port)),
                    ("CSeq", "1 SUBSCRIBE"),
                    ("Contact", "<sip:alice@127.0.0.1:%d>" % (contact_port or alice.port)),
                    ("Event", "reg"), ("Accept", "application/reginfo+xml"), ("Expires", "600")])
            st = alice.exchange(core.pcscf_sip, subscribe("sip:bob@%s" % lab.DOMAIN, 1), timeout=5)
            check(st == 403, "alice subscribing to bob's reg event: expected 403, got %s" % st)
            leaked = [m.first for m in alice.collect(1.5) if m.method == "NOTIFY"]
            check(not leaked, "alice received NOTIFYs about bob: %r" % leaked)
            check((core.scscf.metric("scscf_reg_subscriptions") or 0) == subs_before, "a subscription was kept")
            check((core.scscf.metric("scscf_reg_subscribe_refused_total") or 0) == 1,
                  "scscf_reg_subscribe_refused_total should be 1")
            check(re.search(r"WARN.*reg SUBSCRIBE to sip:bob@ims\.lab by sip:alice@ims\.lab refused", core.scscf.log()),
                  "the S-CSCF's WARN names the subscriber and the identity")
            # her own: accepted, and a NOTIFY about her follows
            alice.got = []
            st = alice.exchange(core.pcscf_sip, subscribe("sip:alice@%s" % lab.DOMAIN, 2), timeout=5)
            check(st == 200, "alice subscribing to her own reg event: expected 200, got %s" % st)
            notes = [m for m in alice.collect(2) if m.method == "NOTIFY"]
            check(notes and 'aor="sip:alice@ims.lab"' in notes[0].body, "no NOTIFY about alice: %r" % alice.got)
            # Reflection: her own reg event, but with a victim's address as Contact (the target of
            # every NOTIFY): the P-CSCF refuses a SUBSCRIBE whose Contact is not the UE.
            st = alice.exchange(core.pcscf_sip, subscribe("sip:alice@%s" % lab.DOMAIN, 3, victim.port), timeout=5)
            check(st == 403, "alice subscribing with a victim's Contact: expected 403, got %s" % st)
            hit = victim.collect(2)
            check(not hit, "the victim received: %r" % [m.first for m in hit])
            check(refused(core, "foreign_contact") == 1, "pcscf_refused_total{reason=foreign_contact} should be 1")
        core.alive()


def reply(ep, req, status, phrase, to_tag, dest_port):
    """A response from ep to the request req (Via, From, Call-ID, CSeq copied; To gets to_tag)."""
    to = req.get("To")
    if ";tag=" not in to:
        to += ";tag=%s" % to_tag
    lines = ["SIP/2.0 %d %s" % (status, phrase)]
    lines += ["Via: %s" % v for v in req.all("Via")]
    lines += ["From: %s" % req.get("From"), "To: %s" % to, "Call-ID: %s" % req.get("Call-ID"),
              "CSeq: %s" % req.get("CSeq"), "Content-Length: 0", "", ""]
    ep.send(dest_port, "\r\n".join(lines))
    return to


def busy_dialog(core, alice, bob, call_id):
    """alice INVITEs bob through the core (her Service-Route), bob answers 486, alice ACKs: the
    proxies keep no dialog state, so its route set stays usable. Returns (the INVITE as bob got
    it, the To with bob's tag)."""
    service_route = "<sip:orig@127.0.0.1:%d;lr>" % core.scscf_sip
    alice.send(core.pcscf_sip, request("INVITE", "sip:bob@%s" % lab.DOMAIN, alice, [
        ("Route", service_route),
        ("From", "<sip:alice@%s>;tag=a1" % lab.DOMAIN), ("To", "<sip:bob@%s>" % lab.DOMAIN),
        ("Call-ID", call_id), ("CSeq", "1 INVITE"),
        ("Contact", "<sip:alice@127.0.0.1:%d>" % alice.port)]))
    lab.wait_for(lambda: any(m.method == "INVITE" for m in bob.collect(0.2)), timeout=10,
                 what="the INVITE at bob")
    invite = [m for m in bob.got if m.method == "INVITE"][0]
    to = reply(bob, invite, 486, "Busy Here", "b1", core.pcscf_sip)
    lab.wait_for(lambda: any(m.status == 486 for m in alice.collect(0.2)), timeout=10, what="486 at alice")
    alice.send(core.pcscf_sip, "\r\n".join([
        "ACK sip:bob@%s SIP/2.0" % lab.DOMAIN,
        "Via: %s" % [m for m in alice.got if m.status == 486][0].get("Via"),
        "Route: %s" % service_route, "Max-Forwards: 70",
        "From: <sip:alice@%s>;tag=a1" % lab.DOMAIN, "To: %s" % to, "Call-ID: %s" % call_id,
        "CSeq: 1 ACK", "Content-Length: 0", "", ""]))
    return invite, to


def test_in_dialog_only_along_our_record_route(tmp):
    """(e) Our Record-Route for a UE's dialog carries a token bound to the dialog's Call-ID and the
    UE's address (pcscf/pcscf_dialog.c). In-dialog requests from a UE must show it, and go on into
    the core. Before this change a To-tagged request with our bare URI on top was relayed to any
    Request-URI: an open relay for every UE and any stranger."""
    with lab.Lab(tmp, subscribers=subscribers()) as core:
        alice_port = register(core, "alice")
        bob_port = register(core, "bob")
        ours = "<sip:127.0.0.1:%d;lr>" % core.pcscf_sip
        problems = []
        # the relay target is outside the trust domain (127.0.0.1/32): 127.0.0.3
        with Endpoint(port=alice_port) as alice, Endpoint(port=bob_port) as bob, \
                Endpoint(ATTACKER) as stranger, Endpoint("127.0.0.3") as target:
            # A real dialog (busy_dialog: the proxies keep no dialog state, its route set stays
            # usable, which is what an attacker would use).
            call_id = "dialog-%d@127.0.0.1" % alice.port
            invite, to = busy_dialog(core, alice, bob, call_id)
            rr = re.findall(r"<([^>]+)>", ",".join(invite.all("Record-Route")))
            ours_rr = [u for u in rr if u.startswith("sip:127.0.0.1:%d;" % core.pcscf_sip)]
            # per pass the UE-side entry with its token, and the core-side one (;transport=tcp,
            # sip.core_transport, RFC 5658) next to it
            check(len([u for u in ours_rr if ";ue=" in u]) == 2 and
                  len([u for u in ours_rr if ";transport=tcp" in u and ";ue=" not in u]) == 2 and
                  ";ue=" in rr[0] and ";ue=" in rr[-1],
                  "the P-CSCF's Record-Routes: a ue= token on each UE side, the core side by TCP: %r" % rr)
            alice_route = ", ".join("<%s>" % u for u in reversed(rr))   # the UAC's route set
            token_route = "<%s>" % rr[-1]                                # ours, alice's side

            def in_dialog(ep, method, ruri, route, cid=call_id, n=0):
                return request(method, ruri, ep, [
                    ("Route", route), ("From", "<sip:alice@%s>;tag=a1" % lab.DOMAIN), ("To", to),
                    ("Call-ID", cid), ("CSeq", "%d %s" % (10 + n, method)),
                    ("Content-Type", "text/plain")], body="relayed?")

            victim = "sip:victim@127.0.0.3:%d" % target.port
            cases = [
                ("our URI without a token, from alice", alice, in_dialog(alice, "MESSAGE", victim, ours, n=1)),
                ("our URI without a token, from a stranger", stranger,
                 in_dialog(stranger, "MESSAGE", victim, ours, n=2)),
                ("alice's token from a stranger's address", stranger,
                 in_dialog(stranger, "MESSAGE", victim, token_route, n=3)),
                ("alice's token with another Call-ID", alice,
                 in_dialog(alice, "MESSAGE", victim, token_route, cid="other-" + call_id, n=4)),
                ("alice's token, route set dropped, Request-URI elsewhere", alice,
                 in_dialog(alice, "MESSAGE", victim, token_route, n=5)),
                ("alice's token, then a Route of her own choice", alice,
                 in_dialog(alice, "MESSAGE", "sip:bob@%s" % lab.DOMAIN,
                           token_route + ", <sip:127.0.0.3:%d;lr>" % target.port, n=6)),
            ]
            for what, ep, text in cases:
                st = ep.exchange(core.pcscf_sip, text, timeout=5)
                if st != 403:
                    problems.append("%s: expected 403, got %s" % (what, st))
            got = target.collect(1.0)
            if got:
                problems.append("the relay target received: %s" % [m.first for m in got])
            for reason, n in (("dialog_route", 4), ("dialog_relay", 2)):
                if refused(core, reason) != n:
                    problems.append("pcscf_refused_total{reason=%s} is %s, expected %d" %
                                    (reason, refused(core, reason), n))

            # The legitimate in-dialog request, along the whole route set, reaches bob.
            bob.got = []
            alice.send(core.pcscf_sip, in_dialog(alice, "BYE", "sip:bob@127.0.0.1:%d" % bob.port, alice_route,
                                                 n=7).replace("Content-Type: text/plain\r\n", ""))
            byes = []
            lab.wait_for(lambda: byes.extend(m for m in bob.collect(0.2) if m.method == "BYE") or byes, timeout=10,
                         what="alice's BYE along the route set at bob")
            reply(bob, byes[0], 200, "OK", "b1", core.pcscf_sip)
            if refused(core, "dialog_route") + refused(core, "dialog_relay") != 6:
                problems.append("the refusals counted after the legitimate BYE: %s dialog_route, %s dialog_relay"
                                % (refused(core, "dialog_route"), refused(core, "dialog_relay")))
        check(core.reg_states("alice").get("sip:alice@%s" % lab.DOMAIN) == "registered", "alice lost her registration")
        core.alive()
        check(not problems, "; ".join(problems))


if __name__ == "__main__":
    lab.main()
