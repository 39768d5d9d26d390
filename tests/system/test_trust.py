"""The S-CSCF's trust domain (common/ims_trust.c, scscf/scscf_sip.c; RFC 3325 §2.3, TS 24.229 §5.4,
TS 33.210 §4), on the whole core (lab.py: every NF on 127.0.0.1, trust.cidrs [127.0.0.1/32]).

The attacker is a UDP socket on 127.0.0.2 (the whole 127/8 is local, but outside the trust
domain). Straight at the S-CSCF, each attack must get 403 Forbidden and change nothing:
- (a) an INVITE to the S-CSCF's orig URI with a forged P-Asserted-Identity of registered alice:
  bob's registered contact receives nothing, no session is counted;
- (b) a reg-event SUBSCRIBE for alice, with the attacker's own Contact and with a victim's: no
  NOTIFY anywhere, no subscription kept;
- (c) a To-tagged request (an "in-dialog" request of no dialog) whose Request-URI names another
  address: nothing reaches that address (no open relay);
- an ACK is dropped silently; every refusal is counted in sip_untrusted_refused_total{method}
  and logged with the source address.
The legitimate flows (registration, calls, AS chaining, reg-event) are the rest of the system
suite, which runs with the same trust configuration.

Start-up: a malformed trust.cidrs item stops the S-CSCF with exit code 2 naming file:line:key;
a trust.peers name that resolves nowhere stops it with exit code 2 naming the name.
"""

import copy
import os
import re
import socket
import subprocess
import time

import lab
from lab import check

ATTACKER = "127.0.0.2"


class Endpoint:
    """A UDP socket (and a TCP listener on the same port) that records whatever arrives."""

    def __init__(self, host="127.0.0.1", port=0):
        # one port for both protocols: a UDP port the OS picks may be some TCP connection's
        # local port, so the TCP bind below could fail; lab.free_port is free for both
        port = port or lab.free_port()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((host, port))
        self.host, self.port = host, self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((host, self.port))
        self.tcp.listen(8)
        self.tcp.setblocking(False)
        self.got = []

    def send(self, port, text):
        self.udp.sendto(text.encode(), ("127.0.0.1", port))

    def collect(self, seconds):
        """Everything received within `seconds` (UDP datagrams, TCP connections' bytes)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                conn, _ = self.tcp.accept()
                conn.settimeout(0.5)
                try:
                    data = conn.recv(65535)
                except socket.timeout:
                    data = b""
                conn.close()
                self.got.append(lab.SipMessage(data.decode("utf-8", "replace") or "<tcp connection>"))
            except (BlockingIOError, socket.timeout):
                pass
            self.udp.settimeout(0.05)
            try:
                raw, _ = self.udp.recvfrom(65535)
                self.got.append(lab.SipMessage(raw.decode("utf-8", "replace")))
            except socket.timeout:
                pass
        return self.got

    def exchange(self, port, text, timeout=3.0):
        """Sends a request, returns the final response's status (None: no final response)."""
        self.send(port, text)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.udp.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                raw, _ = self.udp.recvfrom(65535)
            except socket.timeout:
                break
            m = lab.SipMessage(raw.decode("utf-8", "replace"))
            self.got.append(m)
            if m.status and m.status >= 200:
                return m.status
        return None

    def close(self):
        self.udp.close()
        self.tcp.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def request(method, ruri, src, headers, body=""):
    branch = "z9hG4bK-%x" % (int(time.monotonic() * 1e9) & 0xffffffffff)
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/UDP %s:%d;rport;branch=%s" % (src.host, src.port, branch),
             "Max-Forwards: 70"]
    lines += ["%s: %s" % (n, v) for n, v in headers]
    lines += ["Content-Length: %d" % len(body.encode()), "", body]
    return "\r\n".join(lines)


def sessions_total(core):
    return sum(v for (n, _), v in core.scscf.metrics().items() if n == "scscf_sessions_total")


def refused(core, method):
    return core.scscf.metric("sip_untrusted_refused_total", method=method) or 0


def subscribers():
    """lab.default_subscribers with bob on AKA too (both register with SIPp AKA)."""
    subs = copy.deepcopy(lab.default_subscribers("sip:as.ims.lab:1"))
    for s in subs["subscribers"]:
        if s["id"] == "bob":
            s["impis"][0]["default_scheme"] = "aka"
    return subs


def register(core, name):
    """Registers `name` with SIPp AKA from a port of its own; returns that port (its contact)."""
    ue = core.ue(name)
    port = lab.free_port()
    run = core.sipp_aka("register_aka.xml", ue, local_port=port, call_id="reg-%s-%d@test" % (name, port),
                        label="register-" + name)
    check(run.rc == 0, run.failure())
    return port


def test_attacks_on_the_scscf(tmp):
    with lab.Lab(tmp, subscribers=subscribers()) as core:
        register(core, "alice")
        bob_port = register(core, "bob")
        problems = []
        orig = "<sip:orig@127.0.0.1:%d;lr>" % core.scscf_sip
        with Endpoint(port=bob_port) as bob, Endpoint() as victim, Endpoint() as target, \
                Endpoint(ATTACKER) as attacker:
            before_sessions = sessions_total(core)
            before_subs = core.scscf.metric("scscf_reg_subscriptions") or 0

            # (a) forged identity, originating session straight at the S-CSCF
            invite = request("INVITE", "sip:bob@%s" % lab.DOMAIN, attacker, [
                ("Route", orig),
                ("From", "<sip:alice@%s>;tag=forged1" % lab.DOMAIN),
                ("To", "<sip:bob@%s>" % lab.DOMAIN),
                ("Call-ID", "forged-invite@%s" % ATTACKER),
                ("CSeq", "1 INVITE"),
                ("Contact", "<sip:alice@%s:%d>" % (ATTACKER, attacker.port)),
                ("P-Asserted-Identity", "<sip:alice@%s>" % lab.DOMAIN),
            ])
            st = attacker.exchange(core.scscf_sip, invite, timeout=5)
            if st != 403:
                problems.append("(a) forged INVITE: expected 403, got %s" % st)
            ack = request("ACK", "sip:bob@%s" % lab.DOMAIN, attacker, [
                ("Route", orig), ("From", "<sip:alice@%s>;tag=forged1" % lab.DOMAIN),
                ("To", "<sip:bob@%s>;tag=x" % lab.DOMAIN), ("Call-ID", "forged-ack@%s" % ATTACKER),
                ("CSeq", "1 ACK")])
            attacker.send(core.scscf_sip, ack)

            # (b) reg-event SUBSCRIBE for alice: the attacker's own Contact, then a victim's
            for n, contact in enumerate(("%s:%d" % (ATTACKER, attacker.port), "127.0.0.1:%d" % victim.port)):
                sub = request("SUBSCRIBE", "sip:alice@%s" % lab.DOMAIN, attacker, [
                    ("From", "<sip:eve@%s>;tag=sub%d" % (lab.DOMAIN, n)),
                    ("To", "<sip:alice@%s>" % lab.DOMAIN),
                    ("Call-ID", "forged-sub%d@%s" % (n, ATTACKER)),
                    ("CSeq", "1 SUBSCRIBE"),
                    ("Event", "reg"), ("Accept", "application/reginfo+xml"), ("Expires", "600"),
                    ("Contact", "<sip:eve@%s>" % contact),
                ])
                st = attacker.exchange(core.scscf_sip, sub, timeout=5)
                if st != 403:
                    problems.append("(b) reg SUBSCRIBE with Contact %s: expected 403, got %s" % (contact, st))

            # (c) open relay: a To-tagged request towards another address
            relay = request("MESSAGE", "sip:anyone@127.0.0.1:%d" % target.port, attacker, [
                ("Route", "<sip:127.0.0.1:%d;lr>" % core.scscf_sip),
                ("From", "<sip:alice@%s>;tag=relay1" % lab.DOMAIN),
                ("To", "<sip:anyone@127.0.0.1>;tag=relay2"),
                ("Call-ID", "relay@%s" % ATTACKER),
                ("CSeq", "2 MESSAGE"),
                ("Content-Type", "text/plain"),
            ], body="relayed?")
            st = attacker.exchange(core.scscf_sip, relay, timeout=5)
            if st != 403:
                problems.append("(c) To-tagged MESSAGE to another address: expected 403, got %s" % st)

            # Nothing may arrive anywhere (NOTIFYs come at once; forwarding within a second).
            for ep, what in ((bob, "bob's registered contact"), (victim, "the victim Contact"),
                             (target, "the relay target")):
                got = ep.collect(1.5 if ep is bob else 0.5)
                if got:
                    problems.append("%s received: %s" % (what, [m.first for m in got]))
            notifies = [m.first for m in attacker.collect(0.5) if m.first.startswith("NOTIFY")]
            if notifies:
                problems.append("the attacker received NOTIFYs: %s" % notifies)

            if sessions_total(core) != before_sessions:
                problems.append("scscf_sessions_total changed: %s -> %s" % (before_sessions, sessions_total(core)))
            if (core.scscf.metric("scscf_reg_subscriptions") or 0) != before_subs:
                problems.append("scscf_reg_subscriptions changed")
            for method, n in (("INVITE", 1), ("ACK", 1), ("SUBSCRIBE", 2), ("MESSAGE", 1)):
                if refused(core, method) != n:
                    problems.append("sip_untrusted_refused_total{method=%s} %s, expected %d" % (
                        method, refused(core, method), n))
            log = core.scscf.log()
            if not re.search(r"refused INVITE from 127\.0\.0\.2:%d" % attacker.port, log):
                problems.append("no warning naming the source address and method in the S-CSCF log")

            # The same S-CSCF still answers its own network: OPTIONS from 127.0.0.1 gets 200.
            with lab.RawUdp() as u:
                opts = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-o1\r\n"
                        "Max-Forwards: 70\r\nFrom: <sip:probe@ims.lab>;tag=o1\r\nTo: <sip:probe@ims.lab>\r\n"
                        "Call-ID: opts@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (
                            core.scscf_sip, u.port))
                got = [m.status for m in u.exchange(core.scscf_sip, opts) if m.status]
                if got[-1:] != [200]:
                    problems.append("OPTIONS from the trust domain: expected 200, got %s" % got)
                # and from outside: 403
                st = attacker.exchange(core.scscf_sip, opts.replace("127.0.0.1:%d;rport" % u.port,
                                                                    "%s:%d;rport" % (ATTACKER, attacker.port)))
                if st != 403:
                    problems.append("OPTIONS from outside: expected 403, got %s" % st)
        check(core.reg_states("alice").get("sip:alice@%s" % lab.DOMAIN) == "registered", "alice lost her registration")
        core.alive()
        check(not problems, "; ".join(problems))


def run_scscf(core, timeout=30):
    nf = core.scscf
    nf.write_config()
    r = subprocess.run([nf.binary, "-c", nf.config_path], capture_output=True, text=True, timeout=timeout,
                       cwd=nf.dir)
    return r.returncode, r.stdout + r.stderr


def test_bad_trust_config(tmp):
    core = lab.Lab(os.path.join(tmp, "cidr"), start=False,
                   overrides={"scscf": {"trust": {"cidrs": ["127.0.0.1/32", "10.0.0.0/33"]}}})
    rc, out = run_scscf(core)
    check(rc == 2, "bad trust.cidrs: expected exit 2, got %s:\n%s" % (rc, out))
    check(re.search(r"scscf\.yaml:\d+: trust\.cidrs: '10\.0\.0\.0/33'", out),
          "the error must name file:line:key and the item:\n%s" % out)

    core = lab.Lab(os.path.join(tmp, "peer"), start=False,
                   overrides={"scscf": {"trust": {"peers": ["pcscf.ims.lab", "no-such-peer.invalid"]}}})
    rc, out = run_scscf(core)
    check(rc in (1, 2), "unresolvable trust.peers: expected exit 1 or 2, got %s:\n%s" % (rc, out))
    check("trust.peers" in out and "no-such-peer.invalid" in out,
          "the error must name the key and the name:\n%s" % out)


if __name__ == "__main__":
    lab.main()
