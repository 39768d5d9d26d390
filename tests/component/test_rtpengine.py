"""Component test of the rtpengine ng client (common/ims_rtpengine.c) against the REAL rtpengine
daemon (Debian rtpengine-daemon, userspace forwarding), started here on free ports.

The client runs in rtpe_driver (tests/component/rtpe_driver.c) on its own su_root loop, as in the
P-CSCF; this script feeds it commands and reads its JSON events. Covered: ping, offer / answer with
real SDP (rtpengine's address and ports come back, and RTP really flows through them), query,
delete, delete of an unknown call, direction (interfaces), ICE removal, failover to a second
instance with dead marking and recovery by health ping, no instance at all (NO_ANSWER within the
configured time), a hostile UDP peer (garbage, oversized, deep nesting, wrong cookie, spoofed
source: all ignored), cancel.
"""

import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import harness
from harness import check, free_port

DRIVER = os.path.join(harness.BUILD_DIR, "tests", "component", "rtpe_driver")
RTPENGINE = shutil.which("rtpengine") or "/usr/bin/rtpengine"


def free_udp_range(size=200):
    """A range of `size` UDP ports on 127.0.0.1 that are all free right now (200: the failover
    case puts up to 16 offers of 2 ports each, and some in pairs per direction, on one instance)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - size) & ~1
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base, base + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


def read_text(path):
    """A log file's text ("" while it does not exist)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def ng(port, payload, timeout=0.5):
    """One raw ng exchange (used only to wait until a daemon is up)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(b"probe " + payload, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except (socket.timeout, ConnectionRefusedError):
            return None


class Rtpengine:
    """The real daemon on a free control port and a free media port range."""

    def __init__(self, tmp, name="rtpe", port=None, interfaces=("127.0.0.1",)):
        self.name = name
        self.port = port or free_port(socket.SOCK_DGRAM)
        self.pmin, self.pmax = free_udp_range()
        self.interfaces = interfaces
        self.logfile = os.path.join(tmp, name + ".log")
        self.proc = None

    def start(self):
        # --config-file=none: rtpengine reads /etc/rtpengine/rtpengine.conf by default (fixed HTTP and
        # CLI ports 2225/2224, recording); without it only the ports named here are opened.
        cmd = [RTPENGINE, "--config-file=none", "--table=-1", "--listen-ng=127.0.0.1:%d" % self.port, "--foreground",
               "--log-stderr", "--port-min", str(self.pmin), "--port-max", str(self.pmax)]
        cmd += ["--interface=%s" % i for i in self.interfaces]
        self.proc = subprocess.Popen(cmd, stdout=open(self.logfile, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "%s exited: %s" % (self.name, self.log()[-2000:]))
            if ng(self.port, b"d7:command4:pinge", 0.2) == b"probe d6:result4:ponge":
                return self
            time.sleep(0.1)
        raise harness.TestFailure("%s did not answer ping: %s" % (self.name, self.log()[-2000:]))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        return read_text(self.logfile)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Driver:
    """rtpe_driver: our client on its own loop."""

    def __init__(self, tmp):
        self.logfile = os.path.join(tmp, "driver.log")
        env = dict(os.environ, RTPE_DRIVER_DEBUG="1")
        self.proc = subprocess.Popen([DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.logfile, "ab"), env=env)
        self.events = queue.Queue()
        self.backlog = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait("ready")

    def _read(self):
        for line in self.proc.stdout:
            self.events.put(json.loads(line.decode("utf-8", "replace")))
        self.events.put({"event": "eof"})

    def cmd(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, event, id=None, timeout=10.0):
        def match(e):
            return e["event"] == event and (id is None or e.get("id") == id)
        for i, e in enumerate(self.backlog):
            if match(e):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise harness.TestFailure("no %s event (id %s) within %.1f s; driver log:\n%s"
                                          % (event, id, timeout, self.log()[-3000:]))
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            check(e["event"] != "eof", "driver exited; log:\n%s" % self.log()[-3000:])
            if match(e):
                return e
            self.backlog.append(e)

    def create(self, addrs, timeout=200, retries=1, dead=30, ping=0, prefix="t"):
        self.cmd("create timeout=%d retries=%d dead=%d ping=%d prefix=%s %s"
                 % (timeout, retries, dead, ping, prefix, " ".join("addr=" + a for a in addrs)))
        e = self.wait_any(("created", "error"))
        check(e["event"] == "created", "create failed: %s" % e)

    def wait_any(self, events, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            for ev in events:
                for i, e in enumerate(self.backlog):
                    if e["event"] == ev:
                        return self.backlog.pop(i)
            e = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            check(e["event"] != "eof", "driver exited; log:\n%s" % self.log()[-3000:])
            self.backlog.append(e)

    def send(self, id, **kw):
        """Sends one request -> its result event (or the send_failed event)."""
        self.submit(id, **kw)
        return self.wait("result", id, timeout=kw.get("_timeout", 10.0))

    def submit(self, id, **kw):
        parts = ["send", "id=" + id]
        for k, v in kw.items():
            if k.startswith("_"):
                continue
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                parts.append("%s=%s" % (k, one))
        self.cmd(" ".join(parts))
        e = self.wait_any(("sent", "send_failed"))
        check(e["event"] == "sent" and e["id"] == id, "send %s failed: %s" % (id, e))

    def health(self):
        self.cmd("health")
        return self.wait("health")

    def metrics(self):
        self.cmd("metrics")
        return self.wait("metrics")["text"]

    def log(self):
        return read_text(self.logfile)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
                self.proc.wait(5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        check(self.proc.returncode == 0, "driver exit code %s; log:\n%s" % (self.proc.returncode, self.log()[-3000:]))
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(marker not in self.log(), "sanitizer report:\n%s" % self.log()[-4000:])

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.proc.kill()
            self.proc.wait()


def sdp(user, port, extra=""):
    return ("v=0\r\no=%s 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "%sa=sendrecv\r\n" % (user, port, extra))


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    return "@" + path


def media_of(sdp_text):
    """(c= address, first m= port) of an SDP."""
    c = re.search(r"^c=IN IP4 (\S+)", sdp_text, re.M)
    m = re.search(r"^m=audio (\d+) ", sdp_text, re.M)
    check(c and m, "SDP without c= or m=: %r" % sdp_text)
    return c.group(1), int(m.group(1))


def rtp(seq):
    return struct.pack("!BBHII", 0x80, 0, seq, 160 * seq, 0x1234) + b"\xff" * 160


def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(2)
    return s


# --- tests -----------------------------------------------------------------------------------

def test_call_through_real_rtpengine(tmp):
    """ping, offer, answer (SDPs point at rtpengine), RTP both ways through it, query counts it,
    delete, then the call is gone in rtpengine and in the client."""
    with Rtpengine(tmp, interfaces=("access/127.0.0.1", "core/127.0.0.2")) as rt, Driver(tmp) as d:
        d.create([rt.address])
        r = d.send("p", cmd="ping")
        check(r["status"] == "ok" and r["instance"] == rt.address, r)

        a_port, b_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        alice, bob = udp(a_port), udp(b_port)
        # The offer comes from the access side (alice) and goes to the core (bob).
        cand = "a=candidate:1 1 UDP 2130706431 127.0.0.1 %d typ host\r\n" % a_port
        r = d.send("o", cmd="offer", call_id="call-1@ue", from_tag="ft1",
                   sdp=write(tmp, "offer.sdp", sdp("alice", a_port, cand)),
                   direction="access,core", ice="remove", flag="trust-address", replace="origin")
        check(r["status"] == "ok", r)
        to_bob = media_of(r["sdp"])
        check(to_bob[0] == "127.0.0.2", "offer towards the core must carry the core interface: %s" % r["sdp"])
        check(rt.pmin <= to_bob[1] <= rt.pmax, "port %d outside rtpengine's range" % to_bob[1])
        check("a=candidate" not in r["sdp"], "ICE remove left candidates: %s" % r["sdp"])

        r = d.send("a", cmd="answer", call_id="call-1@ue", from_tag="ft1", to_tag="tt1",
                   sdp=write(tmp, "answer.sdp", sdp("bob", b_port)), direction="core,access")
        check(r["status"] == "ok", r)
        to_alice = media_of(r["sdp"])
        check(to_alice[0] == "127.0.0.1" and rt.pmin <= to_alice[1] <= rt.pmax, r["sdp"])

        # RTP really goes through the anchor, both ways.
        for seq in range(1, 4):
            alice.sendto(rtp(seq), to_alice)
            data, src = bob.recvfrom(2048)
            check(data == rtp(seq) and src == to_bob, "bob got %r from %s" % (data[:12], src))
            bob.sendto(rtp(seq), to_bob)
            data, src = alice.recvfrom(2048)
            check(data == rtp(seq) and src == to_alice, "alice got %r from %s" % (data[:12], src))

        r = d.send("q", cmd="query", call_id="call-1@ue", from_tag="ft1")
        check(r["status"] == "ok", r)
        tags = r["reply"]["tags"]
        check(set(tags) == {"ft1", "tt1"}, tags)
        packets = sum(s["stats"]["packets"] for t in tags.values() for m in t["medias"] for s in m["streams"])
        check(packets >= 6, "rtpengine counted %d packets, expected >= 6" % packets)
        check(d.health()["calls"] == 1, "the client remembers the call's instance")

        r = d.send("d", cmd="delete", call_id="call-1@ue", from_tag="ft1", delete_delay=0)
        check(r["status"] == "ok", r)
        r = d.send("q2", cmd="query", call_id="call-1@ue")
        check(r["status"] == "error" and r["error"] == "Unknown call-id", r)
        h = d.health()
        check(h["calls"] == 0 and h["pending"] == 0 and h["live"] == 1, h)
        m = d.metrics()
        check('t_rtpengine_requests_total{instance="%s",command="offer",result="ok"} 1' % rt.address in m, m)
        check('t_rtpengine_requests_total{instance="%s",command="query",result="error"} 1' % rt.address in m, m)
        check('t_rtpengine_up{instance="%s"} 1' % rt.address in m and "t_rtpengine_live 1" in m, m)
        check('t_rtpengine_rtt_seconds_count{instance="%s"} 6' % rt.address in m, m)
        alice.close()
        bob.close()


def test_delete_unknown_call(tmp):
    """rtpengine 10.5 answers a delete of an unknown call with ok + a warning, or with an error when
    the "fatal" flag is set; the client passes both on as they are."""
    with Rtpengine(tmp) as rt, Driver(tmp) as d:
        d.create([rt.address])
        r = d.send("d1", cmd="delete", call_id="nosuchcall", from_tag="x")
        check(r["status"] == "ok" and "not found" in r["reply"].get("warning", ""), r)
        r = d.send("d2", cmd="delete", call_id="nosuchcall", from_tag="x", flag="fatal")
        check(r["status"] == "error" and "not found" in r["error"], r)
        check(d.health()["calls"] == 0, "nothing remembered")
        # Without delete-delay 0 rtpengine keeps a deleted call for its delete delay: the P-CSCF's
        # "no session left after BYE" depends on sending it.
        d.send("o", cmd="offer", call_id="linger", from_tag="f", sdp=write(tmp, "o.sdp", sdp("a", 4000)))
        check(d.health()["calls"] == 1, "the call's instance is remembered")
        r = d.send("d3", cmd="delete", call_id="linger", from_tag="f")
        check(r["status"] == "ok" and d.health()["calls"] == 0, r)
        r = d.send("q", cmd="query", call_id="linger")
        check(r["status"] == "ok", "rtpengine 10.5 still knows a call deleted without delete-delay: %s" % r)
        # An invalid request never leaves the client (no callback, clear error).
        d.cmd("send id=bad cmd=answer call_id=c from_tag=f sdp=@%s" % write(tmp, "x.sdp", sdp("a", 4000))[1:])
        e = d.wait_any(("sent", "send_failed"))
        check(e["event"] == "send_failed" and "To tag" in e["error"], e)


def test_failover_dead_marking_and_recovery(tmp):
    """Two instances: calls spread over both by Call-ID and stay there (also for a new client:
    the hash is stable); one stops -> its calls' requests fail over after timeout x tries, it is
    marked dead and skipped; a health ping brings it back when it returns."""
    rt_a, rt_b = Rtpengine(tmp, "rtpe-a"), Rtpengine(tmp, "rtpe-b")
    try:
        rt_a.start()
        rt_b.start()
        with Driver(tmp) as d:
            d.create([rt_a.address, rt_b.address], timeout=200, retries=1, dead=60)
            offer = write(tmp, "offer.sdp", sdp("alice", 40000))
            where = {}
            for i in range(16):
                r = d.send("o%d" % i, cmd="offer", call_id="c%d" % i, from_tag="f", sdp=offer)
                check(r["status"] == "ok" and r["attempts"] == 1, r)
                where["c%d" % i] = r["instance"]
            on_a = [c for c, a in where.items() if a == rt_a.address]
            check(0 < len(on_a) < 16, "16 calls should spread over both instances: %s" % where)
            # A new client (no memory) finds every call on the instance that holds it.
            d.cmd("destroy")
            d.wait("destroyed")
            d.create([rt_b.address, rt_a.address], timeout=200, retries=1, dead=60)
            for c, addr in where.items():
                r = d.send("q" + c, cmd="query", call_id=c)
                check(r["status"] == "ok" and r["instance"] == addr, "query %s: %s" % (c, r))

            rt_a.stop()
            t0 = time.monotonic()
            r = d.send("fo", cmd="offer", call_id=on_a[0], from_tag="f", sdp=offer)
            took = time.monotonic() - t0
            check(r["status"] == "ok" and r["instance"] == rt_b.address and r["attempts"] == 3, r)
            check(0.35 <= took <= 2.0, "failover took %.2f s, expected about 2 x 200 ms" % took)
            h = d.health()
            ia = next(i for i in h["instances"] if i["address"] == rt_a.address)
            check(h["live"] == 1 and not ia["up"] and ia["timeouts"] >= 1, h)
            # Dead: the next call of A goes straight to B.
            if len(on_a) > 1:
                r = d.send("fo2", cmd="offer", call_id=on_a[1], from_tag="f", sdp=offer)
                check(r["status"] == "ok" and r["instance"] == rt_b.address and r["attempts"] == 1, r)
            m = d.metrics()
            check('t_rtpengine_up{instance="%s"} 0' % rt_a.address in m and "t_rtpengine_live 1" in m, m)
            check(re.search(r't_rtpengine_requests_total\{instance="%s",command="(offer|ping)",result="timeout"\} \d'
                            % re.escape(rt_a.address), m), m)

            # Health pings: a fresh client learns that A is down, and that it is back (the dead
            # time of 60 s is not what brings it back).
            d.cmd("destroy")
            d.wait("destroyed")
            d.create([rt_a.address, rt_b.address], timeout=200, retries=1, dead=60, ping=1)
            deadline = time.monotonic() + 5
            while d.health()["live"] != 1:
                check(time.monotonic() < deadline, "A not marked dead by pings: %s" % d.health())
                time.sleep(0.1)
            rt_a.start()
            deadline = time.monotonic() + 5
            while d.health()["live"] != 2:
                check(time.monotonic() < deadline, "A not back up after 5 s: %s" % d.health())
                time.sleep(0.2)
            check("answers again: up" in d.log(), "recovery is logged")
    finally:
        rt_a.stop()
        rt_b.stop()


def test_no_instance_answers(tmp):
    """Nothing listens: NO_ANSWER after instances x (retries + 1) x timeout; afterwards, with all
    marked dead, at once."""
    p1, p2 = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    with Driver(tmp) as d:
        d.create(["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2], timeout=150, retries=2, dead=30)
        r = d.send("o", cmd="offer", call_id="lonely", from_tag="f", sdp=write(tmp, "o.sdp", sdp("a", 4000)))
        check(r["status"] == "no_answer" and r["attempts"] == 6 and "reply" not in r, r)
        check(800 <= r["elapsed_ms"] <= 2000, "2 x 3 x 150 ms expected, took %d ms" % r["elapsed_ms"])
        r = d.send("o2", cmd="offer", call_id="lonely2", from_tag="f", sdp=write(tmp, "o.sdp", sdp("a", 4000)))
        check(r["status"] == "no_answer" and r["attempts"] == 0 and "instance" not in r, r)
        check(r["elapsed_ms"] < 100, "all dead: at once, took %d ms" % r["elapsed_ms"])
        h = d.health()
        check(h["live"] == 0 and h["pending"] == 0 and h["calls"] == 0, h)
        check("no rtpengine answered" in d.log() and "lonely" in d.log(), "logged with the Call-ID")


def test_hostile_peer(tmp):
    """A fake instance answers with garbage, oversized and deeply nested datagrams, answers with an
    unknown cookie or without a result, and a third socket spoofs a valid answer from another
    port: all ignored without a crash; only the real answer counts."""
    peer = udp(free_port(socket.SOCK_DGRAM))
    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with Driver(tmp) as d:
        d.create(["127.0.0.1:%d" % peer.getsockname()[1]], timeout=400, retries=0, dead=1)
        d.submit("p1", cmd="ping")
        data, client = peer.recvfrom(65535)
        cookie, _, body = data.partition(b" ")
        check(body == b"d7:command4:pinge", data)
        junk = [
            b"",
            b"no cookie at all, just text" * 3,
            cookie,
            cookie + b" ",
            cookie + b" d6:result",
            cookie + b" i42e",
            cookie + b" le",
            cookie + b" d3:fooi1ee",
            cookie + b" " + b"l" * 5000 + b"e" * 5000,
            cookie + b" d6:result2:oke" + b"x",
            cookie + b" d6:result99999999999999999999:oke",
            cookie + b" d" + b"1:ai1e" * 10000 + b"e",
            cookie + b" " + os.urandom(65507 - len(cookie) - 1),
            b"0123456789abcdef_1 d6:result4:ponge",
        ]
        for j in junk:
            peer.sendto(j, client)
        spoofer.sendto(cookie + b" d6:result5:errore", client)
        time.sleep(0.1)
        peer.sendto(cookie + b" d6:result4:ponge", client)
        r = d.wait("result", "p1")
        check(r["status"] == "ok" and r["reply"] == {"result": "pong"}, r)

        # Only a spoofed answer from another port: the request still times out.
        d.submit("p2", cmd="ping")
        data, client = peer.recvfrom(65535)
        cookie = data.partition(b" ")[0]
        spoofer.sendto(cookie + b" d6:result4:ponge", client)
        r = d.wait("result", "p2")
        check(r["status"] == "no_answer", "a spoofed source must not answer: %s" % r)

        # Cancel: no callback ever, nothing pending.
        time.sleep(1.1)  # dead time over
        d.submit("p3", cmd="ping")
        d.cmd("cancel id=p3")
        check(d.wait("cancelled")["found"], "p3 was pending")
        time.sleep(0.6)
        data, _ = peer.recvfrom(65535)
        peer.sendto(data.partition(b" ")[0] + b" d6:result4:ponge", client)
        time.sleep(0.2)
        h = d.health()
        check(h["pending"] == 0, h)
        check(not any(e.get("id") == "p3" and e["event"] == "result" for e in d.backlog), d.backlog)
        check("without a cookie dropped" in d.log(), "garbage is logged (rate-limited)")
        m = d.metrics()
        check('t_rtpengine_answers_dropped_total{instance="127.0.0.1:%d"} 12' % peer.getsockname()[1] in m,
              "12 unusable datagrams counted: %s" % m)
    peer.close()
    spoofer.close()


if __name__ == "__main__":
    harness.main()
