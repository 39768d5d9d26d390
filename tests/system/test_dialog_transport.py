"""In-dialog requests follow the dialog target's transport (issue 10; RFC 3263 §4.1, RFC 3261
§18.1.1, §12.2.1.1; TS 24.229 §5.2.6.4 / RFC 5626 §5.3 for the registered flow), on the whole
core (lab.py: every NF on 127.0.0.1).

Two hand-made UEs (class Ua: a UDP socket and a TCP listener on the same port, like a SIP UA
listening on both) register through the P-CSCF over UDP with a Contact without transport. In a
call, one of them puts `;transport=tcp` in its dialog target (the Contact of its 200 or of its
INVITE). Every request towards that target crosses P-CSCF -> S-CSCF -> P-CSCF and must arrive
over TCP at the target's port (the URI's transport parameter decides, RFC 3263 §4.1), not over
UDP to the flow the UE registered from:
- (a) callee's 200 Contact ;transport=tcp: the caller's ACK, re-INVITE (and its ACK) and BYE
  arrive on the callee's TCP listener; the callee answers on that connection and the caller
  gets the 200s;
- (b) caller's INVITE Contact ;transport=tcp: the callee's BYE arrives on the caller's TCP
  listener; the caller's ACK (dialog target without transport) still goes over UDP to the
  registered flow (the Request-URI is the registered contact);
- (c) a UE registered over TCP (connection kept open) with Contact ;transport=tcp: the requests
  to its dialog target use that registered connection (RFC 5626 flow, connection reuse), not a
  new connection to the listener.
Before the fix the P-CSCF matched the Request-URI to the registered contact ignoring its
transport and sent (a) and (b) over UDP to the registered flow: those assertions failed there.
"""

import re
import select
import socket
import time

import lab
from lab import check

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def split_uris(values):
    """Header values like '<a;lr>, <b;lr>' (repeated or comma-joined) -> ['<a;lr>', '<b;lr>']."""
    out = []
    for v in values:
        out += re.findall(r"<[^>]*>[^,]*", v)
    return [u.strip() for u in out]


def uri_of(value):
    m = re.search(r"<([^>]*)>", value or "")
    return m.group(1) if m else (value or "").split(";")[0].strip()


class Received:
    def __init__(self, msg, transport, conn=None, addr=None):
        self.msg, self.transport, self.conn, self.addr = msg, transport, conn, addr


class Ua:
    """A UE on 127.0.0.1:port: UDP socket + TCP listener (accepted connections read too), or,
    with tcp_flow=True, also one TCP connection of its own to the P-CSCF that it registers over."""

    def __init__(self, core, user, password, tcp_flow=False):
        self.core, self.user, self.password = core, user, password
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", lab.free_port()))     # free for TCP too (the listener below)
        self.port = self.udp.getsockname()[1]
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(8)
        self.conns = {}        # socket -> bytes buffered
        self.accepted = []     # connections the core opened to our listener
        self.flow = None       # our own TCP connection to the P-CSCF (tcp_flow)
        if tcp_flow:
            self.flow = socket.create_connection(("127.0.0.1", core.pcscf_sip), timeout=5)
            self.conns[self.flow] = b""
        self.inbox = []
        self.n = 0
        self.service_route = []

    def close(self):
        for c in list(self.conns):
            c.close()
        self.udp.close()
        self.listener.close()

    # --- transport ---

    def _poll(self, timeout):
        socks = [self.udp, self.listener] + list(self.conns)
        ready, _, _ = select.select(socks, [], [], max(0.0, timeout))
        for s in ready:
            if s is self.udp:
                raw, addr = self.udp.recvfrom(65535)
                self.inbox.append(Received(lab.SipMessage(raw.decode("utf-8", "replace")), "udp", addr=addr))
            elif s is self.listener:
                conn, _ = self.listener.accept()
                self.conns[conn] = b""
                self.accepted.append(conn)
            else:
                try:
                    chunk = s.recv(65535)
                except OSError:
                    chunk = b""
                if not chunk:
                    del self.conns[s]
                    s.close()
                    continue
                self.conns[s] += chunk
                self._frames(s)

    def _frames(self, conn):
        while True:
            buf = self.conns[conn].lstrip(b"\r\n")
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                self.conns[conn] = buf
                return
            m = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.M | re.I)
            n = int(m.group(1)) if m else 0
            if len(rest) < n:
                self.conns[conn] = buf
                return
            self.conns[conn] = rest[n:]
            text = (head + sep + rest[:n]).decode("utf-8", "replace")
            how = "flow" if conn is self.flow else "tcp"
            self.inbox.append(Received(lab.SipMessage(text), how, conn=conn))

    def wait(self, pred, timeout=5.0, what="message"):
        """The first received message (Received) for which pred(msg) holds; others stay queued."""
        deadline = time.monotonic() + timeout
        while True:
            for i, r in enumerate(self.inbox):
                if pred(r.msg):
                    return self.inbox.pop(i)
            left = deadline - time.monotonic()
            check(left > 0, "%s: no %s within %.0f s (got %r)" % (self.user, what, timeout,
                                                                 [(r.transport, r.msg.first) for r in self.inbox]))
            self._poll(min(left, 0.2))

    def request_in(self, method, timeout=5.0):
        return self.wait(lambda m: m.method == method, timeout, method)

    def final_to(self, method, timeout=5.0):
        return self.wait(lambda m: m.status is not None and m.status >= 200 and m.cseq_method() == method,
                         timeout, "final response to " + method)

    def send_to_core(self, text):
        """A request of ours: over our TCP flow if we have one, else over UDP (to the P-CSCF)."""
        if self.flow:
            self.flow.sendall(text.encode())
        else:
            self.udp.sendto(text.encode(), ("127.0.0.1", self.core.pcscf_sip))

    def reply(self, r, status, phrase, to_tag=None, contact=None, body=""):
        """Answers the request r on the way it came (same TCP connection, or UDP to its source)."""
        req = r.msg
        lines = ["SIP/2.0 %d %s" % (status, phrase)]
        lines += ["Via: %s" % v for v in req.all("via")]
        if req.method == "INVITE" and 200 <= status < 300:
            lines += ["Record-Route: %s" % v for v in req.all("record-route")]
        lines.append("From: %s" % req.get("from"))
        to = req.get("to")
        if to_tag and ";tag=" not in to:
            to += ";tag=%s" % to_tag
        lines += ["To: %s" % to, "Call-ID: %s" % req.get("call-id"), "CSeq: %s" % req.get("cseq")]
        if contact:
            lines.append("Contact: <%s>" % contact)
        if body:
            lines.append("Content-Type: application/sdp")
        lines += ["Content-Length: %d" % len(body.encode()), "", body]
        data = "\r\n".join(lines).encode()
        if r.conn is not None:
            r.conn.sendall(data)
        else:
            self.udp.sendto(data, r.addr)

    def via(self):
        self.n += 1
        return "SIP/2.0/%s 127.0.0.1:%d;rport;branch=z9hG4bK-%s-%d-%d" % (
            "TCP" if self.flow else "UDP", (self.flow.getsockname()[1] if self.flow else self.port),
            self.user, self.port, self.n)

    # --- registration (digest or AKA computed by lab.RawUe) ---

    def register(self, contact):
        helper = lab.RawUe(self.core, self.user, password=self.password)
        try:
            call_id = "dt-reg-%s-%d@127.0.0.1" % (self.user, self.port)
            auth = None
            local = self.flow.getsockname()[1] if self.flow else self.port
            for cseq in (1, 2):
                headers = {"Contact": "<%s>" % contact}
                if auth:
                    headers["Authorization"] = auth
                req = lab.register_request(local, self.core.pcscf_sip, user=self.user, call_id=call_id, cseq=cseq,
                                           transport="TCP" if self.flow else "UDP", headers=headers)
                self.send_to_core(req)
                resp = self.final_to("REGISTER").msg
                if resp.status != 401:
                    break
                auth = helper.answer(resp)
        finally:
            helper.close()
        check(resp.status == 200, "%s's REGISTER: %s" % (self.user, resp.first))
        self.service_route = split_uris(resp.all("service-route"))
        check(self.service_route, "%s's 200 to REGISTER has no Service-Route" % self.user)


class Dialog:
    """One side's view of a dialog: route set, remote target, tags, CSeq (RFC 3261 §12.1)."""

    def __init__(self, call_id, local_uri, local_tag, remote_uri, remote_tag, target, route_set, cseq):
        self.call_id, self.local_uri, self.local_tag = call_id, local_uri, local_tag
        self.remote_uri, self.remote_tag = remote_uri, remote_tag
        self.target, self.route_set, self.cseq = target, route_set, cseq

    def request(self, ua, method, cseq=None, body=""):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        lines = ["%s %s SIP/2.0" % (method, self.target), "Via: %s" % ua.via(), "Max-Forwards: 70"]
        if self.route_set:
            lines.append("Route: %s" % ", ".join(self.route_set))
        lines += ["From: <%s>;tag=%s" % (self.local_uri, self.local_tag),
                  "To: <%s>;tag=%s" % (self.remote_uri, self.remote_tag),
                  "Call-ID: %s" % self.call_id, "CSeq: %d %s" % (cseq, method),
                  "Contact: <sip:%s@127.0.0.1:%d>" % (ua.user, ua.port)]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += ["Content-Length: %d" % len(body.encode()), "", body]
        return "\r\n".join(lines)


def tag_of(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def call(core, caller, callee, caller_contact, callee_contact, call_id):
    """INVITE caller -> callee through the core, answered 200 by callee. Returns (caller's Dialog,
    callee's Dialog, the INVITE as received by the callee, the 200 as received by the caller)."""
    aor_from, aor_to = "sip:%s@%s" % (caller.user, lab.DOMAIN), "sip:%s@%s" % (callee.user, lab.DOMAIN)
    route = ["<sip:127.0.0.1:%d;lr>" % core.pcscf_sip] + caller.service_route
    invite = "\r\n".join([
        "INVITE %s SIP/2.0" % aor_to, "Via: %s" % caller.via(), "Max-Forwards: 70",
        "Route: %s" % ", ".join(route),
        "From: <%s>;tag=%s-tag" % (aor_from, caller.user), "To: <%s>" % aor_to,
        "Call-ID: %s" % call_id, "CSeq: 1 INVITE", "Contact: <%s>" % caller_contact,
        "Content-Type: application/sdp", "Content-Length: %d" % len(SDP), "", SDP])
    caller.send_to_core(invite)
    inv = callee.request_in("INVITE", timeout=10)
    callee.reply(inv, 200, "OK", to_tag="%s-tag" % callee.user, contact=callee_contact, body=SDP)
    ok = caller.final_to("INVITE", timeout=10)
    check(ok.msg.status == 200, "INVITE: %s" % ok.msg.first)
    rr = split_uris(ok.msg.all("record-route"))
    check(rr, "no Record-Route in the 200 at the caller")
    # RFC 3261 §12.1.2: the caller's route set is the Record-Route reversed, the target the 200's
    # Contact; §12.1.1: the callee's is the Record-Route in order, the target the INVITE's Contact.
    mine = Dialog(call_id, aor_from, "%s-tag" % caller.user, aor_to, tag_of(ok.msg.get("to")),
                  uri_of(ok.msg.get("contact")), list(reversed(rr)), 1)
    theirs = Dialog(call_id, aor_to, "%s-tag" % callee.user, aor_from, "%s-tag" % caller.user,
                    uri_of(inv.msg.get("contact")), split_uris(inv.msg.all("record-route")), 0)
    return mine, theirs, inv, ok


def ack_for_2xx(caller, dialog, cseq):
    caller.send_to_core(dialog.request(caller, "ACK", cseq=cseq))


def expect(got, transport, what, problems):
    if got.transport != transport:
        problems.append("%s arrived over %s, expected %s" % (what, got.transport, transport))


def test_callee_target_tcp(tmp):
    """(a) bob's 200 says ;transport=tcp: ACK, re-INVITE + ACK, BYE reach bob over TCP."""
    with lab.Lab(tmp) as core:
        alice, bob = Ua(core, "alice", "alicepass"), Ua(core, "bob", "bobpass")
        try:
            alice.register("sip:alice@127.0.0.1:%d" % alice.port)
            bob.register("sip:bob@127.0.0.1:%d" % bob.port)
            target = "sip:bob@127.0.0.1:%d;transport=tcp" % bob.port
            a, b, inv, _ = call(core, alice, bob, "sip:alice@127.0.0.1:%d" % alice.port, target, "dt-a@test")
            problems = []
            expect(inv, "udp", "the INVITE (initial, to the registered contact)", problems)
            check(a.target == target, "the caller's dialog target is %s" % a.target)

            ack_for_2xx(alice, a, 1)
            got = bob.request_in("ACK")
            expect(got, "tcp", "the ACK to %s" % target, problems)
            check(got.msg.first.split()[1] == target, "ACK Request-URI: %s" % got.msg.first)

            alice.send_to_core(a.request(alice, "INVITE", body=SDP))
            reinv = bob.request_in("INVITE")
            expect(reinv, "tcp", "the re-INVITE to %s" % target, problems)
            bob.reply(reinv, 200, "OK", contact=target, body=SDP)
            check(alice.final_to("INVITE").msg.status == 200, "re-INVITE not answered 200")
            ack_for_2xx(alice, a, a.cseq)
            expect(bob.request_in("ACK"), "tcp", "the ACK of the re-INVITE", problems)

            alice.send_to_core(a.request(alice, "BYE"))
            bye = bob.request_in("BYE")
            expect(bye, "tcp", "the BYE to %s" % target, problems)
            bob.reply(bye, 200, "OK")
            check(alice.final_to("BYE").msg.status == 200, "BYE not answered 200")
            udp_stray = [r.msg.first for r in bob.inbox if r.transport == "udp"]
            check(not udp_stray, "bob also got over UDP: %r" % udp_stray)
            check(not problems, "; ".join(problems))
        finally:
            alice.close()
            bob.close()
        core.alive()


def test_caller_target_tcp(tmp):
    """(b) alice's INVITE says ;transport=tcp: bob's BYE reaches alice over TCP; alice's ACK to
    bob's plain contact still takes bob's registered UDP flow."""
    with lab.Lab(tmp) as core:
        alice, bob = Ua(core, "alice", "alicepass"), Ua(core, "bob", "bobpass")
        try:
            alice.register("sip:alice@127.0.0.1:%d" % alice.port)
            bob.register("sip:bob@127.0.0.1:%d" % bob.port)
            target = "sip:alice@127.0.0.1:%d;transport=tcp" % alice.port
            a, b, inv, _ = call(core, alice, bob, target, "sip:bob@127.0.0.1:%d" % bob.port, "dt-b@test")
            problems = []
            check(b.target == target, "the callee's dialog target is %s" % b.target)
            ack_for_2xx(alice, a, 1)
            expect(bob.request_in("ACK"), "udp", "the ACK to bob's registered contact", problems)

            bob.send_to_core(b.request(bob, "BYE"))
            bye = alice.request_in("BYE")
            expect(bye, "tcp", "the BYE to %s" % target, problems)
            check(bye.msg.first.split()[1] == target, "BYE Request-URI: %s" % bye.msg.first)
            alice.reply(bye, 200, "OK")
            check(bob.final_to("BYE").msg.status == 200, "BYE not answered 200")
            check(not problems, "; ".join(problems))
        finally:
            alice.close()
            bob.close()
        core.alive()


def test_tcp_registered_flow_reused(tmp):
    """(c) bob registered over his own TCP connection with Contact ;transport=tcp: in-dialog
    requests to that contact go over the registered connection (RFC 5626 §5.3), not a new one."""
    with lab.Lab(tmp) as core:
        alice, bob = Ua(core, "alice", "alicepass"), Ua(core, "bob", "bobpass", tcp_flow=True)
        try:
            alice.register("sip:alice@127.0.0.1:%d" % alice.port)
            target = "sip:bob@127.0.0.1:%d;transport=tcp" % bob.port
            bob.register(target)
            a, b, inv, _ = call(core, alice, bob, "sip:alice@127.0.0.1:%d" % alice.port, target, "dt-c@test")
            problems = []
            expect(inv, "flow", "the INVITE to bob's registered contact", problems)
            ack_for_2xx(alice, a, 1)
            expect(bob.request_in("ACK"), "flow", "the ACK", problems)
            alice.send_to_core(a.request(alice, "BYE"))
            bye = bob.request_in("BYE")
            expect(bye, "flow", "the BYE", problems)
            bob.reply(bye, 200, "OK")
            check(alice.final_to("BYE").msg.status == 200, "BYE not answered 200")
            check(not bob.accepted, "the core opened %d new connection(s) to bob's listener" % len(bob.accepted))
            check(not problems, "; ".join(problems))
        finally:
            alice.close()
            bob.close()
        core.alive()


if __name__ == "__main__":
    lab.main()
