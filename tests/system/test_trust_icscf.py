"""The I-CSCF's role limits and trust domain (icscf/icscf_sip.c, icscf/icscf_route.c; TS 24.229
§5.3, RFC 3325 §5), on the whole core (lab.py: every NF on 127.0.0.1, trust.cidrs [127.0.0.1/32]).

The attacker is a UDP socket on 127.0.0.2 (loopback, but outside the trust domain), straight at
the I-CSCF:
- (a) a To-tagged MESSAGE whose Request-URI names another address (a listening socket): 403,
  nothing arrives there (no open relay); a To-tagged request from inside the trust domain is
  refused the same way (the I-CSCF never Record-Routes: no dialog passes through it);
- (a') an initial MESSAGE for bob with a Route set leading beyond the I-CSCF to that socket:
  403 (the next hop is not a home S-CSCF), from outside and from inside;
- (b) a MESSAGE for a foreign domain (Request-URI at a listening socket's address): 404, nothing
  forwarded; the same from inside the trust domain (the I-CSCF is no exit: breakout is the
  S-CSCF's);
- (c) an INVITE for registered bob with a forged P-Asserted-Identity of alice (and a
  P-Charging-Vector, P-Served-User, P-Profile-Key): the I-CSCF routes it (LIR) to bob's S-CSCF,
  which serves it as unauthenticated terminating traffic: bob gets the INVITE with none of these
  headers (no P-Asserted-Identity at all) and the caller bob's 486; the same INVITE from
  inside the trust domain keeps its P-Asserted-Identity (the control: the check can see one);
- (d) a REGISTER from outside the trust domain: 403 (icscf.register_from_untrusted is false);
- with icscf.register_from_untrusted: true such a REGISTER is served, its PAI removed; with
  icscf.lir: false an INVITE for bob goes to icscf.scscfs, not to the Request-URI host;
- every refusal is counted in icscf_refused_total{reason} and warned about naming the source.
The legitimate flows through the I-CSCF (registration via P-CSCF, LIR routing of INVITEs from the
S-CSCF and straight at the I-CSCF) are the rest of the system suite (test_registration.py,
test_sessions.py, test_interop.py), which runs with the same trust configuration.

Checked against the I-CSCF before this change (HEAD's icscf/ built alone, the other NFs as now):
every assertion of test_icscf_role_and_trust fails (the target receives the relayed MESSAGEs,
bob receives the forged headers, the REGISTER gets 401 after a UAR, no metric, no warning),
test_without_lir_to_a_home_scscf gets 503 (proxied to the unresolvable ims.lab), and
test_register_from_untrusted_allowed fails on the unknown key.
"""

import re
import socket
import time

import lab
from lab import check
from test_trust import Endpoint, register, request, subscribers

ATTACKER = "127.0.0.2"
DOMAIN = lab.DOMAIN


class Udp(Endpoint):
    """test_trust.Endpoint (a UDP socket and a TCP listener on one port) that also keeps the
    source address of what arrives and can answer a request it received."""

    def receive(self, seconds, until=None):
        """[(SipMessage, source)] within `seconds` (stops early when until(msg) is true)."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                conn, src = self.tcp.accept()
                conn.settimeout(0.5)
                try:
                    data = conn.recv(65535)
                except socket.timeout:
                    data = b""
                conn.close()
                got.append((lab.SipMessage(data.decode("utf-8", "replace") or "<tcp connection>"), src))
            except (BlockingIOError, socket.timeout):
                pass
            self.udp.settimeout(0.05)
            try:
                raw, src = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            m = lab.SipMessage(raw.decode("utf-8", "replace"))
            got.append((m, src))
            if until and until(m):
                break
        return got

    def exchange(self, port, text, timeout=4.0):
        """Sends a request; (final status or None, [messages received])."""
        self.send(port, text)
        got = [m for m, _ in self.receive(timeout, until=lambda m: m.status and m.status >= 200)]
        finals = [m.status for m in got if m.status and m.status >= 200]
        return (finals[0] if finals else None), got

    def answer(self, req, src, code, phrase):
        """A final response to `req` (received from `src`), along its Via headers."""
        to = req.get("To")
        if ";tag=" not in to:
            to += ";tag=uas%d" % self.port
        lines = ["SIP/2.0 %d %s" % (code, phrase)]
        lines += ["Via: %s" % v for v in req.all("Via")]
        lines += ["From: %s" % req.get("From"), "To: %s" % to, "Call-ID: %s" % req.get("Call-ID"),
                  "CSeq: %s" % req.get("CSeq"), "Content-Length: 0", "", ""]
        self.udp.sendto("\r\n".join(lines).encode(), src)


def refused(core, reason):
    return core.icscf.metric("icscf_refused_total", reason=reason) or 0


FORGED = [
    ("P-Asserted-Identity", "<sip:alice@%s>" % DOMAIN),
    ("P-Charging-Vector", "icid-value=forged-icid-1"),
    ("P-Served-User", "<sip:alice@%s>;sescase=orig;regstate=reg" % DOMAIN),
    ("P-Profile-Key", "<sip:forged-psi@%s>" % DOMAIN),
]


def invite_bob(src, call_id, tag):
    return request("INVITE", "sip:bob@%s" % DOMAIN, src, [
        ("From", "<sip:alice@%s>;tag=%s" % (DOMAIN, tag)),
        ("To", "<sip:bob@%s>" % DOMAIN),
        ("Call-ID", call_id),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:alice@%s:%d>" % (src.host, src.port)),
    ] + FORGED)


def deliver_invite(core, sender, bob, call_id, tag):
    """sender INVITEs bob at the I-CSCF; bob answers 486. (INVITE bob received or None, final status)."""
    invite = invite_bob(sender, call_id, tag)
    sender.send(core.icscf_sip, invite)
    seen = None
    for m, src in bob.receive(6.0, until=lambda m: m.method == "INVITE" and m.get("Call-ID") == call_id):
        if m.method == "INVITE" and m.get("Call-ID") == call_id:
            seen = m
            bob.answer(m, src, 486, "Busy Here")
    got = [m for m, _ in sender.receive(5.0, until=lambda m: m.status and m.status >= 200)]
    final = next((m for m in got if m.status and m.status >= 200), None)
    if final:
        # ACK of the non-2xx final: same branch as the INVITE (RFC 3261 17.1.1.3), absorbed by
        # the I-CSCF's transaction.
        via = invite.split("\r\n")[1]
        sender.send(core.icscf_sip, "\r\n".join([
            "ACK sip:bob@%s SIP/2.0" % DOMAIN, via, "Max-Forwards: 70",
            "From: <sip:alice@%s>;tag=%s" % (DOMAIN, tag), "To: %s" % final.get("To"),
            "Call-ID: %s" % call_id, "CSeq: 1 ACK", "Content-Length: 0", "", ""]))
    return seen, (final.status if final else None)


def test_icscf_role_and_trust(tmp):
    with lab.Lab(tmp, subscribers=subscribers()) as core:
        register(core, "alice")
        bob_port = register(core, "bob")
        problems = []
        with Udp(port=bob_port) as bob, Udp() as target, Udp(ATTACKER) as attacker, Udp() as trusted:
            def tagged(src, n):
                return request("MESSAGE", "sip:anyone@127.0.0.1:%d" % target.port, src, [
                    ("From", "<sip:alice@%s>;tag=relay%d" % (DOMAIN, n)),
                    ("To", "<sip:anyone@127.0.0.1>;tag=dialog%d" % n),
                    ("Call-ID", "relay%d@%s" % (n, src.host)),
                    ("CSeq", "2 MESSAGE"),
                    ("Content-Type", "text/plain"),
                ], body="relayed?")

            def foreign(src, n):
                return request("MESSAGE", "sip:victim@127.0.0.1:%d" % target.port, src, [
                    ("From", "<sip:alice@%s>;tag=foreign%d" % (DOMAIN, n)),
                    ("To", "<sip:victim@127.0.0.1:%d>" % target.port),
                    ("Call-ID", "foreign%d@%s" % (n, src.host)),
                    ("CSeq", "1 MESSAGE"),
                    ("P-Asserted-Identity", "<sip:alice@%s>" % DOMAIN),
                    ("Content-Type", "text/plain"),
                ], body="proxied?")

            # (a) To-tagged request towards another address, from outside and from inside.
            for n, src in enumerate((attacker, trusted)):
                st, _ = src.exchange(core.icscf_sip, tagged(src, n))
                if st != 403:
                    problems.append("(a) To-tagged MESSAGE from %s to another address: expected 403, got %s"
                                    % (src.host, st))
            # An ACK of no transaction: dropped, nothing relayed.
            attacker.send(core.icscf_sip, request("ACK", "sip:anyone@127.0.0.1:%d" % target.port, attacker, [
                ("From", "<sip:alice@%s>;tag=ack1" % DOMAIN), ("To", "<sip:anyone@127.0.0.1>;tag=ack2"),
                ("Call-ID", "ack@%s" % ATTACKER), ("CSeq", "1 ACK")]))

            # (b) a foreign domain (the Request-URI's host is the target's address).
            for n, src in enumerate((attacker, trusted)):
                st, _ = src.exchange(core.icscf_sip, foreign(src, n))
                if st != 404:
                    problems.append("(b) MESSAGE for a foreign domain from %s: expected 404, got %s" % (src.host, st))

            # (a') an initial request with a Route set beyond the I-CSCF towards the target (not a
            # home S-CSCF), from outside and from inside.
            for n, src in enumerate((attacker, trusted)):
                routed = request("MESSAGE", "sip:bob@%s" % DOMAIN, src, [
                    ("Route", "<sip:127.0.0.1:%d;lr>, <sip:127.0.0.1:%d;lr>" % (core.icscf_sip, target.port)),
                    ("From", "<sip:alice@%s>;tag=route%d" % (DOMAIN, n)),
                    ("To", "<sip:bob@%s>" % DOMAIN),
                    ("Call-ID", "route%d@%s" % (n, src.host)),
                    ("CSeq", "1 MESSAGE"),
                    ("Content-Type", "text/plain"),
                ], body="routed?")
                st, _ = src.exchange(core.icscf_sip, routed)
                if st != 403:
                    problems.append("(a') MESSAGE from %s with a Route beyond the I-CSCF to another address: "
                                    "expected 403, got %s" % (src.host, st))

            got = [m.first for m, _ in target.receive(1.0)]
            if got:
                problems.append("(a)/(b) the relay target received: %s" % got)
            for reason, n in (("in_dialog", 3), ("foreign_domain", 2), ("foreign_route", 2)):
                if refused(core, reason) != n:
                    problems.append("icscf_refused_total{reason=%s} = %s, expected %d" % (reason, refused(core, reason), n))

            # (c) forged identity towards a registered home user: routed, headers gone.
            seen, st = deliver_invite(core, attacker, bob, "forged-invite@%s" % ATTACKER, "forged1")
            if seen is None:
                problems.append("(c) the INVITE for registered bob from outside never reached bob (final %s): "
                                "initial requests for home users are accepted from anywhere" % st)
            else:
                # What really happens: the S-CSCF serves it as terminating traffic from another
                # network with no asserted identity at all (From is not an assertion, RFC 3325).
                for name, _ in FORGED:
                    if seen.all(name):
                        problems.append("(c) bob's INVITE carries %s: %s (forged, or asserted by nobody)"
                                        % (name, seen.all(name)))
                if st != 486:
                    problems.append("(c) the caller should get bob's 486, got %s" % st)
            if (core.icscf.metric("icscf_untrusted_headers_removed_total") or 0) < len(FORGED):
                problems.append("(c) icscf_untrusted_headers_removed_total = %s, expected >= %d" % (
                    core.icscf.metric("icscf_untrusted_headers_removed_total"), len(FORGED)))

            # Control: the same INVITE from inside the trust domain keeps its P-Asserted-Identity,
            # so the check above can see a forged one.
            seen, st = deliver_invite(core, trusted, bob, "trusted-invite@127.0.0.1", "trusted1")
            if seen is None:
                problems.append("control: the INVITE from the trust domain never reached bob (final %s)" % st)
            elif not any("sip:alice@%s" % DOMAIN in v for v in seen.all("P-Asserted-Identity")):
                problems.append("control: the trusted INVITE reached bob without its P-Asserted-Identity: %s"
                                % seen.all("P-Asserted-Identity"))

            # (d) a REGISTER from outside the trust domain.
            reg = request("REGISTER", "sip:%s" % DOMAIN, attacker, [
                ("From", "<sip:alice@%s>;tag=reg1" % DOMAIN), ("To", "<sip:alice@%s>" % DOMAIN),
                ("Call-ID", "reg@%s" % ATTACKER), ("CSeq", "1 REGISTER"),
                ("Contact", "<sip:alice@%s:%d>" % (ATTACKER, attacker.port)), ("Expires", "600"),
                ("Path", "<sip:term@%s:%d;lr>" % (ATTACKER, attacker.port)),
                ("P-Visited-Network-ID", DOMAIN)])
            uar_before = core.icscf.metric("icscf_cx_requests_total", cmd="UAR") or 0
            st, _ = attacker.exchange(core.icscf_sip, reg)
            if st != 403:
                problems.append("(d) REGISTER from outside the trust domain: expected 403, got %s" % st)
            if (core.icscf.metric("icscf_cx_requests_total", cmd="UAR") or 0) != uar_before:
                problems.append("(d) the refused REGISTER still cost a UAR")
            if refused(core, "untrusted_register") != 1:
                problems.append("icscf_refused_total{reason=untrusted_register} = %s, expected 1"
                                % refused(core, "untrusted_register"))

            log = core.icscf.log()
            if not re.search(r"refused MESSAGE sip:anyone@127\.0\.0\.1:%d from 127\.0\.0\.2:%d" % (
                    target.port, attacker.port), log):
                problems.append("no warning naming the method, target and source in the I-CSCF log:\n"
                                + lab.tail(log, 20))
        check(core.reg_states("bob").get("sip:bob@%s" % DOMAIN) == "registered", "bob lost his registration")
        core.alive()
        check(not problems, "\n".join(problems))


def test_register_from_untrusted_allowed(tmp):
    """icscf.register_from_untrusted: true (roaming P-CSCFs outside trust): the REGISTER is served
    (the S-CSCF challenges it), P-Asserted-Identity, P-Charging-Vector and the integrity-protected
    parameter of Authorization are removed first."""
    with lab.Lab(tmp, overrides={"icscf": {"icscf": {"register_from_untrusted": True}}}) as core:
        with Udp(ATTACKER) as attacker:
            reg = request("REGISTER", "sip:%s" % DOMAIN, attacker, [
                ("From", "<sip:alice@%s>;tag=reg1" % DOMAIN), ("To", "<sip:alice@%s>" % DOMAIN),
                ("Call-ID", "reg@%s" % ATTACKER), ("CSeq", "1 REGISTER"),
                ("Contact", "<sip:alice@%s:%d>" % (ATTACKER, attacker.port)), ("Expires", "600"),
                ("Path", "<sip:term@%s:%d;lr>" % (ATTACKER, attacker.port)),
                ("P-Visited-Network-ID", DOMAIN),
                ("P-Asserted-Identity", "<sip:alice@%s>" % DOMAIN),
                ("P-Charging-Vector", "icid-value=forged-icid-2"),
                # our P-CSCF's mark (scscf.reauth_protected skips the challenge on it): not from outside
                ("Authorization", 'Digest username="alice@%s", realm="%s", uri="sip:%s", nonce="", response="", '
                                  'integrity-protected="yes"' % (DOMAIN, DOMAIN, DOMAIN))])
            st, _ = attacker.exchange(core.icscf_sip, reg)
            check(st == 401, "REGISTER from outside with register_from_untrusted: expected the S-CSCF's 401, got %s" % st)
            check((core.icscf.metric("icscf_untrusted_headers_removed_total") or 0) == 3,
                  "P-Asserted-Identity, P-Charging-Vector and integrity-protected removed: "
                  "icscf_untrusted_headers_removed_total = %s"
                  % core.icscf.metric("icscf_untrusted_headers_removed_total"))
            check(refused(core, "untrusted_register") == 0, "nothing refused")
        core.alive()


def test_without_lir_to_a_home_scscf(tmp):
    """icscf.lir: false: an initial request for a home user goes to the first S-CSCF of
    icscf.scscfs (never to the Request-URI's host), without an LIR."""
    with lab.Lab(tmp, subscribers=subscribers(), overrides={"icscf": {"icscf": {"lir": False}}}) as core:
        bob_port = register(core, "bob")
        with Udp(port=bob_port) as bob, Udp() as trusted:
            seen, st = deliver_invite(core, trusted, bob, "nolir@127.0.0.1", "nolir1")
            check(seen is not None and st == 486,
                  "without LIR the INVITE for bob must still reach him via the S-CSCF (final %s)" % st)
            check((core.icscf.metric("icscf_cx_requests_total", cmd="LIR") or 0) == 0, "no LIR with icscf.lir: false")
            check((core.icscf.metric("icscf_requests_total", method="INVITE", result="routed") or 0) == 1,
                  "counted as routed")
        core.alive()


if __name__ == "__main__":
    lab.main()
