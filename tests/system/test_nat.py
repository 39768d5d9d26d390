"""System tests of a UE behind NAT: the real hss, scscf, icscf and pcscf (lab.py) in a "public"
network namespace, a UE (SIPp, raw sockets) in a namespace of its own behind a router namespace
that masquerades it (nft, source ports remapped to 40000-40999, so the UE's Via / Contact / SDP
ports and address are never the ones the core sees).

    ns <tag>ue  192.168.77.2 --- 192.168.77.1  ns <tag>rt  203.0.113.2 --- 203.0.113.1  ns <tag>pub
    (bob, NATed)                  (masquerade on its public side)          (P-CSCF: listens on
                                                                            0.0.0.0, sip.advertise
                                                                            203.0.113.1; the other NFs
                                                                            on 127.0.0.1; alice, the
                                                                            public UE, on 203.0.113.1)

The public namespace has no route to 192.168.77.0/24: anything the core or alice sends to the
UE's private address is lost, as on the Internet. What is asserted:
  - REGISTER over UDP with rport (RFC 3581): the 200 reaches the UE through the NAT, and its Via
    shows received=203.0.113.2 and an rport in 40000-40999;
  - terminating requests (INVITE, re-INVITE, BYE) reach the UE at the flow it registered from
    (the binding's observed address, not its private Contact), and the UE's own requests in the
    dialog (ACK, BYE) reach the P-CSCF by its Record-Route; the P-CSCF's Via / Record-Route /
    Path carry sip.advertise (203.0.113.1), the only P-CSCF address the UE can reach;
  - over TCP: the UE registers and receives a call on its one connection (the P-CSCF cannot open
    a connection through the NAT, so the call proves the connection is reused);
  - keep-alives through the NAT: CRLFCRLF -> CRLF on UDP and TCP, a STUN Binding request
    answered with the NAT's public address and port (RFC 5626 §3.5, §8);
  - a keep-alive flood (UDP and TCP) costs no heap and no log line at the P-CSCF;
  - media: without anchoring, RTP that alice sends to the address in the NATed UE's SDP never
    arrives (and RTP sent back to the UE's observed source, what a media relay does by latching,
    does); with anchoring (pcscf.media.anchor: rtpengine, the real rtpengine daemon) both
    directions arrive through the relay and rtpengine holds no call after the BYE.

Needs root (ip netns, nft); exits 77 (skipped) when network namespaces cannot be created.
References: RFC 3581 (rport), RFC 5626 §3.5.1, §3.5.2, §8 (keep-alives), TS 24.229 §5.2.2
(P-CSCF REGISTER, Path), RFC 3261 §16.6, §18.2.2, RFC 3550 (RTP header).
"""

import contextlib
import ctypes
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import lab
import lab_rtpengine
from lab import check, wait_for

CLONE_NEWNET = 0x40000000
PUB = "203.0.113.1"        # P-CSCF's advertised address; TEST-NET-3
ALICE = "203.0.113.10"     # the public UE, beside it
RT_PUB = "203.0.113.2"     # the NAT's public address
RT_PRIV = "192.168.77.1"
UE = "192.168.77.2"
NAT_PORTS = (40000, 40999)

_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise lab.TestFailure("%s: %s" % (" ".join(cmd), r.stdout.strip()))
    return r.stdout


def _setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns %s" % path)
    finally:
        os.close(fd)


class NatNet:
    """The three namespaces (names carry the pid: several runs never collide) and the NAT."""

    def __init__(self):
        tag = "nat%d" % os.getpid()
        self.pub, self.rt, self.ue = tag + "pub", tag + "rt", tag + "ue"
        self.home = None      # /proc/self/ns/net of the test before enter()

    def up(self):
        for ns in (self.pub, self.rt, self.ue):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.pub, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", self.rt)
        sh("ip", "-n", self.rt, "link", "add", "v2", "type", "veth", "peer", "name", "v3", "netns", self.ue)
        for ns, dev, addr in ((self.pub, "v0", PUB), (self.rt, "v1", RT_PUB), (self.rt, "v2", RT_PRIV),
                              (self.ue, "v3", UE)):
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", self.pub, "addr", "add", ALICE + "/24", "dev", "v0")
        sh("ip", "-n", self.ue, "route", "add", "default", "via", RT_PRIV)
        sh("ip", "netns", "exec", self.rt, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        rules = ("table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n"
                 "  oifname \"v1\" ip saddr 192.168.77.0/24 meta l4proto { tcp, udp } masquerade to :%d-%d\n"
                 "  oifname \"v1\" ip saddr 192.168.77.0/24 masquerade\n }\n}\n" % NAT_PORTS)
        r = subprocess.run(["ip", "netns", "exec", self.rt, "nft", "-f", "-"], input=rules, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise lab.TestFailure("nft in the router namespace: %s" % r.stdout)

    def enter(self):
        """The test's main thread (and every process it starts: the NFs, alice's SIPp) into pub."""
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        _setns("/run/netns/" + self.pub)

    def down(self):
        if self.home is not None:
            if _libc.setns(self.home, CLONE_NEWNET) != 0:
                print("note: could not return to the original network namespace")
            os.close(self.home)
            self.home = None
        for ns in (self.ue, self.rt, self.pub):
            pids = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE, text=True).stdout.split()
            for p in pids:      # only what this test started in its own namespaces
                with contextlib.suppress(OSError):
                    os.kill(int(p), 9)
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    @contextlib.contextmanager
    def inside(self, ns):
        """Sockets created in this block belong to namespace ns (this thread only switches)."""
        back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns("/run/netns/" + ns)
            yield
        finally:
            _libc.setns(back, CLONE_NEWNET)
            os.close(back)

    def udp(self, ns, addr, port=0):
        with self.inside(ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, port))
        s.settimeout(2)
        return s

    def tcp(self, ns, dest):
        with self.inside(ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(dest)
        return s


def netns_usable():
    """None when namespaces, veth and nft work here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns add, nft)"
    probe = "natprobe%d" % os.getpid()
    try:
        sh("ip", "netns", "add", probe)
        sh("ip", "netns", "exec", probe, "nft", "add", "table", "ip", "t")
    except (lab.TestFailure, OSError) as e:
        return "network namespaces or nft unavailable: %s" % e
    finally:
        subprocess.run(["ip", "netns", "del", probe], stderr=subprocess.DEVNULL)
    return None


# --- the core in the public namespace -----------------------------------------------------------

def nat_lab(tmp, extra_pcscf=None, listen="0.0.0.0"):
    """lab.Lab with the P-CSCF on the wildcard address, advertising PUB (what the NATed UE
    reaches); PUB joins every NF's trust domain (the P-CSCF sends to the core from it); the UEs
    (the NAT's 203.0.113.2, alice's 203.0.113.10) stay outside."""
    trust = {"trust": {"cidrs": ["127.0.0.1/32", PUB + "/32"]}}
    pcscf = lab.merge(trust, {"sip": {"listen": listen, "advertise": PUB}})
    return lab.Lab(tmp, overrides={"pcscf": lab.merge(pcscf, extra_pcscf or {}), "icscf": trust, "scscf": trust})


def rport(text):
    """The UE side of a scenario as a phone behind NAT sends it: ;rport in its Via (RFC 3581)."""
    return text if ";rport" in text else text.replace(";branch=[branch]", ";rport;branch=[branch]")


class Bob:
    """The NATed UE: digest REGISTER from UE:port in the ue namespace, over transport."""

    def __init__(self, core, net, transport="u1"):
        self.core, self.net, self.transport = core, net, transport
        self.ue = core.ue("bob")
        self.port = lab.free_port()
        self.remote = "%s:%d" % (PUB, core.pcscf_sip)
        run = self.sipp("register_digest.xml", label="bob-register")
        check(run.rc == 0, "the NATed UE's REGISTER failed:\n" + run.failure())
        self.ok = run.received(status=200, cseq_method="REGISTER")[-1]

    def sipp(self, scenario, wait=True, label=None, **kw):
        return self.core.sipp(scenario, self.ue, local_port=self.port, remote=self.remote, netns=self.net.ue,
                              local_ip=UE, transport=self.transport, edit=rport, wait=wait, label=label,
                              recv_timeout=15000, **kw)


class Alice:
    """The public UE (AKA) on ALICE in the public namespace."""

    def __init__(self, core):
        self.core = core
        self.ue = core.ue("alice")
        self.port = lab.free_port()
        self.remote = "%s:%d" % (PUB, core.pcscf_sip)
        run = core.sipp_aka("register_aka.xml", self.ue, local_port=self.port, local_ip=ALICE, remote=self.remote,
                            label="alice-register")
        check(run.rc == 0, "alice's REGISTER failed:\n" + run.failure())
        ok = run.received(status=200, cseq_method="REGISTER")[-1]
        self.route = ", ".join("<%s>" % u for v in ok.all("Service-Route") for u in re.findall(r"<([^>]+)>", v))

    def call(self, scenario, wait=True, edit=rport):
        return self.core.sipp(scenario, self.ue, local_port=self.port, local_ip=ALICE, remote=self.remote,
                              keys={"route": self.route, "callee": "bob"}, label="alice-" + scenario.split(".")[0],
                              wait=wait, edit=edit)


def top_via(msg):
    return (msg.all("Via") or [""])[0].split(",")[0]


def check_nat_register(bob):
    via = top_via(bob.ok)
    m = re.search(r"received=([0-9.]+)", via)
    p = re.search(r"rport=(\d+)", via)
    check(m and m.group(1) == RT_PUB, "the P-CSCF saw the NAT's address (received=%s): %r" % (RT_PUB, via))
    if bob.transport == "u1":
        check(p and NAT_PORTS[0] <= int(p.group(1)) <= NAT_PORTS[1],
              "rport= carries the NAT's mapped port (%d-%d), not the UE's %d: %r" % (NAT_PORTS + (bob.port, via)))


def check_terminating(core, callee_run, bye_from_ue):
    invs = callee_run.received(method="INVITE")
    check(invs, "the INVITE did not reach the NATed UE:\n" + callee_run.failure())
    via = top_via(invs[0])
    check(("%s:%d" % (PUB, core.pcscf_sip)) in via,
          "the P-CSCF's Via to the UE names sip.advertise %s: %r" % (PUB, via))
    rr = " ".join(invs[0].all("Record-Route"))
    check("sip:%s:%d;lr" % (PUB, core.pcscf_sip) in rr.replace(";lr;", ";lr"),
          "the P-CSCF Record-Routes with sip.advertise %s: %r" % (PUB, rr))
    check("127.0.0.1" not in via and "0.0.0.0" not in via + rr, "no unreachable P-CSCF address: %r %r" % (via, rr))
    if bye_from_ue:
        check(callee_run.sent("BYE"), "the UE sent its BYE")


# --- RTP ---------------------------------------------------------------------------------------

def rtp_packet(seq, ssrc):
    return struct.pack("!BBHII", 0x80, 0, seq & 0xffff, seq * 160, ssrc) + b"\xff" * 160


def sdp_addr(text):
    c = re.search(r"^c=IN IP4 ([0-9.]+)", text, re.M)
    m = re.search(r"^m=audio (\d+)", text, re.M)
    return (c.group(1), int(m.group(1))) if c and m else None


class RtpEnd:
    """A UE's RTP socket (its SDP address) that sends to a peer and counts what arrives, with the
    source of the first packet (what a relay latches onto)."""

    def __init__(self, sock):
        self.sock, self.got, self.first_from = sock, 0, None
        self.sock.settimeout(0.05)

    def send(self, dest, n=25, ssrc=1):
        sent = 0
        for i in range(n):
            try:
                self.sock.sendto(rtp_packet(i, ssrc), dest)
                sent += 1
            except OSError:        # ENETUNREACH: no route to a private address
                pass
            time.sleep(0.002)
        return sent

    def drain(self, seconds=1.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data, src = self.sock.recvfrom(2048)
            except (socket.timeout, BlockingIOError):
                continue
            if len(data) >= 12 and data[0] >> 6 == 2:
                self.got += 1
                self.first_from = self.first_from or src
        return self.got


def rtp_check(net, offer_at_ue, answer_at_alice, ue_private, alice_media):
    """Sends RTP both ways between sockets standing for the UEs' media ports: the UE's socket on
    its private SDP address (ue_private), alice's on alice_media. Each side sends to the address
    in the SDP it received. Returns (ue_got, alice_got, latched_got)."""
    ue = RtpEnd(net.udp(net.ue, ue_private[0], ue_private[1]))
    al = RtpEnd(net.udp(net.pub, alice_media[0], alice_media[1]))
    try:
        al.send(answer_at_alice, ssrc=0xa11ce)   # alice -> what the UE's answer says
        ue.send(offer_at_ue, ssrc=0xb0b)         # UE -> what alice's offer says (opens the NAT)
        al.send(answer_at_alice, ssrc=0xa11ce)
        ue_got = ue.drain(1.0)
        alice_got = al.drain(0.5)
        latched = 0
        if al.first_from:                        # back to the UE's observed source, as a relay would
            before = ue.got
            al.send(al.first_from, ssrc=0xa11ce)
            latched = ue.drain(1.0) - before
        return ue_got, alice_got, latched, al.first_from
    finally:
        ue.sock.close()
        al.sock.close()


# --- the tests ----------------------------------------------------------------------------------

def run_in_nat(tmp, body, extra_pcscf=None, listen="0.0.0.0"):
    net = NatNet()
    try:
        net.up()
        net.enter()
        with nat_lab(tmp, extra_pcscf, listen) as core:
            body(core, net)
    finally:
        net.down()


def test_register_and_call_udp(tmp):
    def body(core, net):
        bob = Bob(core, net)
        check_nat_register(bob)
        alice = Alice(core)
        check(alice.route, "alice has a Service-Route")
        # 1. alice hangs up: INVITE, re-INVITE and BYE reach the NATed UE through its mapping
        callee = bob.sipp("callee_answer.xml", wait=False, label="bob-callee")
        time.sleep(0.3)
        caller = alice.call("call_uac.xml")
        callee.wait(20)
        check(caller.rc == 0, "alice's call failed:\n" + caller.failure())
        check(callee.rc == 0, "the NATed UE's side failed:\n" + callee.failure())
        check_terminating(core, callee, bye_from_ue=False)
        check(len(callee.received(method="INVITE")) == 2 and callee.received(method="BYE"),
              "re-INVITE and BYE reached the NATed UE:\n" + callee.failure())
        # 2. the NATed UE hangs up: its BYE reaches the P-CSCF by the advertised Record-Route
        callee = bob.sipp("callee_answer_bye.xml", wait=False, label="bob-callee-bye")
        time.sleep(0.3)
        caller = alice.call("call_uac_callee_bye.xml")
        callee.wait(20)
        check(caller.rc == 0 and caller.received(method="BYE"), "alice got the UE's BYE:\n" + caller.failure())
        check(callee.rc == 0, "the NATed UE's BYE was answered:\n" + callee.failure())
        check_terminating(core, callee, bye_from_ue=True)
        # the Path the S-CSCF stored names the advertised address too (the INVITE came by it)
        check("sip:term@%s:%d" % (PUB, core.pcscf_sip) in core.pcscf.log() or
              "%s:%d" % (PUB, core.pcscf_sip) in " ".join(callee.received(method="INVITE")[0].all("Via")),
              "Path/Via name the advertised address")
    run_in_nat(tmp, body)


class TcpUe:
    """The NATed UE over TCP, by hand: one connection for its REGISTER (digest) and for every
    request to it (SIPp starts a new process, so a new connection, per scenario)."""

    def __init__(self, core, net):
        self.sock = net.tcp(net.ue, (PUB, core.pcscf_sip))
        self.port = self.sock.getsockname()[1]
        self.buf = b""
        helper = lab.RawUe(core, "bob", password="bobpass")     # the digest answer only
        req = self.register_text(core, None)
        self.sock.sendall(req.encode())
        r401 = self.final()
        check(r401 and r401.status == 401, "a 401 over TCP: %r" % (r401,))
        self.sock.sendall(self.register_text(core, helper.answer(r401), cseq=2).encode())
        helper.close()
        self.ok = self.final()
        check(self.ok and self.ok.status == 200, "the TCP REGISTER through the NAT: %r" % (self.ok,))

    def register_text(self, core, auth, cseq=1):
        req = lab.register_request(self.port, core.pcscf_sip, user="bob", call_id="nat-tcp-%d@x" % os.getpid(),
                                   cseq=cseq, transport="TCP",
                                   headers={"Authorization": auth} if auth else None)
        return req.replace("127.0.0.1:%d" % self.port, "%s:%d" % (UE, self.port))

    def read(self, timeout=10):
        """The next SIP message on the connection (SipMessage), None on timeout."""
        self.sock.settimeout(timeout)
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?im)^(?:Content-Length|l)\s*:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return lab.SipMessage((head + sep + rest[:n]).decode(errors="replace"))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def final(self):
        while True:
            m = self.read()
            if m is None or (m.status and m.status >= 200):
                return m

    def reply(self, req, status, phrase):
        vias = "".join("Via: %s\r\n" % v for v in req.all("Via"))
        text = ("SIP/2.0 %d %s\r\n%sFrom: %s\r\nTo: %s;tag=nat-ue\r\nCall-ID: %s\r\nCSeq: %s\r\n"
                "Content-Length: 0\r\n\r\n" % (status, phrase, vias, req.get("From"), req.get("To"),
                                                  req.get("Call-ID"), req.get("CSeq")))
        self.sock.sendall(text.encode())


def test_register_and_call_tcp(tmp):
    """Over TCP: the P-CSCF cannot open a connection through the NAT, so an INVITE that reaches
    the UE proves that the UE's own connection carries the requests to it (RFC 5626 §5.3,
    TS 24.229 §5.2.6.4: the registered flow). The UE answers 486; the ACK comes the same way."""
    def body(core, net):
        bob = TcpUe(core, net)
        check(re.search(r"received=%s" % re.escape(RT_PUB), top_via(bob.ok)), "the NAT's address: %r" % top_via(bob.ok))
        alice = Alice(core)
        caller = alice.call("call_rejected.xml", wait=False)
        inv = None
        while True:
            m = bob.read(15)
            check(m is not None, "the INVITE reached the NATed TCP UE on its connection:\n" + caller.failure())
            if m.method == "INVITE":
                inv = m
                break
        via = top_via(inv)
        check("SIP/2.0/TCP %s:%d" % (PUB, core.pcscf_sip) in via, "over TCP from sip.advertise: %r" % via)
        bob.reply(inv, 486, "Busy Here")
        ack = bob.read(10)
        check(ack is not None and ack.method == "ACK", "the ACK of the 486 on the same connection: %r" % (ack,))
        caller.wait(20)
        finals = [x.status for x in caller.received() if x.status and x.status >= 200 and x.cseq_method() == "INVITE"]
        check(caller.rc == 0 and finals and finals[-1] == 486, "alice got the 486: %r\n%s" % (finals, caller.failure()))
        bob.sock.close()
    run_in_nat(tmp, body)


def stun_request():
    tid = os.urandom(12)
    return struct.pack("!HHI", 1, 0, 0x2112A442) + tid, tid


def stun_mapped(resp, tid):
    """(ip, port) of the XOR-MAPPED-ADDRESS in a Binding success for tid, else None."""
    if len(resp) < 32 or resp[:2] != b"\x01\x01" or resp[8:20] != tid:
        return None
    typ, ln, fam, xport = struct.unpack("!HHxBH", resp[20:28])
    if typ != 0x20 or fam != 1:
        return None
    ip = bytes(a ^ b for a, b in zip(resp[28:32], b"\x21\x12\xa4\x42"))
    return socket.inet_ntoa(ip), xport ^ 0x2112


def test_keepalives_through_nat(tmp):
    def body(core, net):
        dest = (PUB, core.pcscf_sip)
        u = net.udp(net.ue, UE)
        try:
            u.sendto(b"\r\n\r\n", dest)
            data, src = u.recvfrom(100)
            check(data == b"\r\n" and src == dest, "UDP ping -> CRLF pong from the SIP port: %r from %r" % (data, src))
            req, tid = stun_request()
            u.sendto(req, dest)
            mapped = stun_mapped(u.recvfrom(100)[0], tid)
            check(mapped and mapped[0] == RT_PUB and NAT_PORTS[0] <= mapped[1] <= NAT_PORTS[1],
                  "STUN Binding: the NAT's public address and mapped port: %r" % (mapped,))
        finally:
            u.close()
        t = net.tcp(net.ue, dest)
        try:
            for _ in range(3):
                t.sendall(b"\r\n\r\n")
                check(t.recv(100) == b"\r\n", "TCP ping -> CRLF pong through the NAT")
        finally:
            t.close()
        check(not [l for l in core.pcscf.log().splitlines() if "garbage" in l],
              "keep-alives are no SIP garbage at the P-CSCF")

        # A flood: 6000 UDP pings, 2000 STUN requests, 3000 TCP pings. Cost = the packets.
        # the heap gauge is updated every 5 s (ims_sip.c housekeeping)
        # (a sanitizer build's allocator does not feed glibc's mallinfo2: the gauge stays 0 there
        # and the heap half of the check is skipped, the rest still runs)
        sanitized = "IMS_SANITIZE:BOOL=ON" in open(os.path.join(lab.BUILD_DIR, "CMakeCache.txt")).read()
        if not sanitized:
            wait_for(lambda: core.pcscf.metric("process_heap_inuse_bytes"), 8, what="the P-CSCF's heap gauge")
        time.sleep(5.2)
        heap0 = core.pcscf.metric("process_heap_inuse_bytes")
        lines0 = len(core.pcscf.log().splitlines())
        crlf0 = core.pcscf.metric("sip_keepalive_udp_total", kind="crlf") or 0
        u = net.udp(net.ue, UE)
        t = net.tcp(net.ue, dest)
        pongs = tcp_pongs = 0
        try:
            u.settimeout(0.5)
            for i in range(8000):
                u.sendto(stun_request()[0] if i % 4 == 3 else b"\r\n\r\n", dest)
                if i % 50 == 49:              # keep the socket queue from overflowing
                    with contextlib.suppress(socket.timeout):
                        while True:
                            u.recvfrom(100)
                            pongs += 1
                            if pongs % 50 == 0:
                                break
            for _ in range(3000):
                t.sendall(b"\r\n\r\n")
            t.settimeout(2)
            got = b""
            with contextlib.suppress(socket.timeout):
                while len(got) < 6000:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            tcp_pongs = got.count(b"\r\n")
            t.settimeout(3)
            t.sendall(b"\r\n\r\n")         # the connection still works: one ping, one pong
            check(t.recv(100) == b"\r\n", "a ping after the flood gets its pong")
        finally:
            u.close()
            t.close()
        wait_for(lambda: (core.pcscf.metric("sip_keepalive_udp_total", kind="crlf") or 0) - crlf0 >= 5000, 10,
                 what="UDP pings counted at the P-CSCF")
        # sofia-sip answers the pings it reads at once with one pong: pipelined pings (which no
        # client sends: it waits for the pong) get fewer pongs than pings
        check(tcp_pongs >= 1, "TCP pings answered during the flood: %d" % tcp_pongs)
        time.sleep(5.2)
        heap1 = core.pcscf.metric("process_heap_inuse_bytes")
        lines1 = len(core.pcscf.log().splitlines())
        check(sanitized or (heap0 is not None and heap1 is not None and heap1 - heap0 < 64 * 1024),
              "a keep-alive flood costs no heap: %r -> %r bytes" % (heap0, heap1))
        check(lines1 - lines0 <= 3, "no log line per keep-alive: %d lines during the flood:\n%s" % (
            lines1 - lines0, "\n".join(core.pcscf.log().splitlines()[lines0:lines0 + 10])))
        check(core.pcscf.running(), "the P-CSCF survived the flood")
    run_in_nat(tmp, body)


def media_call_rtp(core, net):
    """A call alice -> NATed bob that the UE holds up 4 s before its BYE, for RTP between two
    sockets standing for the UEs' media ports (the ports the scenarios put in their SDP: SIPp
    sends no RTP here). Returns (rtp_check result, SDP the UE received, SDP alice received, the
    UE's media address, alice's)."""
    bob = Bob(core, net)
    alice = Alice(core)
    ue_media, alice_media = (UE, lab.free_port()), (ALICE, lab.free_port())

    def media(port, extra=lambda t: t):
        return lambda text: extra(rport(text)).replace("[media_port]", str(port))

    callee = core.sipp("callee_answer_bye.xml", bob.ue, local_port=bob.port, remote=bob.remote, netns=net.ue,
                       local_ip=UE, edit=media(ue_media[1], pause_before_bye), wait=False,
                       label="bob-callee-media", recv_timeout=20000)
    time.sleep(0.3)
    caller = alice.call("call_uac_callee_bye.xml", wait=False, edit=media(alice_media[1]))
    inv = wait_for(lambda: callee.received(method="INVITE"), 15, what="the INVITE at the NATed UE")[0]
    ok = wait_for(lambda: [m for m in caller.received(status=200) if m.cseq_method() == "INVITE"], 15,
                  what="the 200 (INVITE) at alice")[0]
    offer_at_ue, answer_at_alice = sdp_addr(inv.text), sdp_addr(ok.text)
    check(offer_at_ue and answer_at_alice, "SDP on both sides: %r %r" % (offer_at_ue, answer_at_alice))
    res = rtp_check(net, offer_at_ue, answer_at_alice, ue_media, alice_media)
    caller.wait(20)
    callee.wait(20)
    check(caller.rc == 0 and callee.rc == 0, "the media call ended normally:\n%s\n%s" % (
        caller.failure(), callee.failure()))
    return res, offer_at_ue, answer_at_alice, ue_media, alice_media


def pause_before_bye(text, ms=4000):
    """The UE keeps the call up ms after the ACK before it sends its BYE."""
    m = re.search(r"^\s*BYE ", text, re.M)
    k = text.rfind("<send", 0, m.start()) if m else -1
    check(k >= 0, "no BYE in the scenario")
    return text[:k] + '<pause milliseconds="%d"/>\n\n  ' % ms + text[k:]


def test_media_without_anchor_does_not_reach_the_nated_ue(tmp):
    """Without anchoring, the NATed UE's SDP names its private address: alice's RTP to it is
    lost. The same packets sent to the UE's observed source (what a media relay learns by
    latching) arrive: the anchor is what makes media work, not the network."""
    def body(core, net):
        (ue_got, alice_got, latched, observed), offer_at_ue, answer_at_alice, ue_media, _ = media_call_rtp(core, net)
        check(answer_at_alice == ue_media, "unanchored, alice sees the UE's private address: %r" % (answer_at_alice,))
        check(ue_got == 0, "RTP to the private SDP address must not arrive: %d packets did" % ue_got)
        check(alice_got > 0, "the UE's RTP reaches alice (outbound through the NAT): %d" % alice_got)
        check(observed and observed[0] == RT_PUB, "alice sees the NAT's address as the source: %r" % (observed,))
        check(latched > 0, "RTP to the observed source reaches the UE (latching works): %d" % latched)
    run_in_nat(tmp, body)


def check_media_anchored(core, net, rtpe):
    """With pcscf.media.anchor: rtpengine: the SDP each side receives names rtpengine (its
    address, a port of its range; never the UE's private address), and RTP arrives both ways at
    the NATed UE and at alice."""
    (ue_got, alice_got, latched, observed), offer_at_ue, answer_at_alice, ue_media, alice_media = \
        media_call_rtp(core, net)
    for who, addr in (("alice", answer_at_alice), ("the UE", offer_at_ue)):
        check(addr[0] == rtpe.address and rtpe.port_min <= addr[1] <= rtpe.port_max,
              "anchored: the SDP %s received names rtpengine %s:%d-%d: %r" % (
                  who, rtpe.address, rtpe.port_min, rtpe.port_max, addr))
    check(ue_got > 0, "anchored: RTP reaches the NATed UE: %d" % ue_got)
    check(alice_got > 0, "anchored: RTP from the NATed UE reaches alice: %d" % alice_got)
    check(observed and observed[0] == rtpe.address, "alice's RTP comes from rtpengine: %r" % (observed,))


def test_media_anchored_reaches_the_nated_ue(tmp):
    """The same call with pcscf.media.anchor: rtpengine (the real daemon in the public
    namespace, media on PUB): both SDPs name rtpengine and RTP flows both ways, the UE's through
    its NAT mapping (rtpengine learns it from the SIP source, SIP-source-address, and latches);
    after the UE's BYE rtpengine holds no call."""
    net = NatNet()
    rtpe = None
    try:
        net.up()
        net.enter()
        # rtpengine in the public namespace (lab_rtpengine: --config-file=none, delete-delay 0):
        # ng control and media on PUB, beside the P-CSCF
        rtpe = lab_rtpengine.Rtpengine(os.path.join(tmp, "rtpengine"), address=PUB)
        media = {"media": {"anchor": "rtpengine", "rtpengine": [rtpe.ng_uri]}}
        with nat_lab(tmp, {"pcscf": media}) as core:
            check_media_anchored(core, net, rtpe)
            wait_for(lambda: rtpe.command({"command": "list"}).get("calls") == [], 5,
                     what="rtpengine holds no call after the BYE")
            check((core.pcscf.metric("pcscf_media_sessions_created_total") or 0) == 2,
                  "two anchored legs (alice's orig, the UE's term): %s"
                  % core.pcscf.metric("pcscf_media_sessions_created_total"))
    finally:
        if rtpe is not None:
            rtpe.stop()
        net.down()


if __name__ == "__main__":
    why = netns_usable()
    if why:
        print("SKIP: %s" % why)
        sys.exit(77)
    lab.main()
