"""Hostile SIP against every CSCF: the RFC 4475 torture messages and a seeded fuzz corpus.

hss, scscf, icscf and pcscf run as separate processes (lab.py, log level warn for speed).
Each CSCF's SIP port gets:

  1. the 48 messages of RFC 4475 section 3 (torture/rfc4475/*.sip, expectations in
     torture/rfc4475.py): well-formed requests must be handled (a routing/authorisation outcome,
     not 400), invalid ones get a 4xx/5xx or are dropped, responses are dropped;
  2. a deterministic fuzz corpus (torture/fuzz.py, seed per CSCF) over UDP, and a share of it over
     TCP: whole messages, messages cut and the connection closed, messages sent in pieces,
     connections left half-sent until the end.

Then: every NF is alive and answers /healthz, a valid AKA registration through
P-CSCF -> I-CSCF -> S-CSCF still works (SIPp, as test_registration.py), sip_transactions_active
returns to 0 on every CSCF, and the Lab's exit check asserts exit 0 on SIGTERM and no sanitizer
report in any log. Counts per CSCF (responses by class, no answer) are printed.

Environment: IMS_TORTURE_COUNT (fuzz messages per CSCF over UDP, default 3000),
IMS_TORTURE_SEED (default 4475). A failure names the message; `python3 torture/fuzz.py DIR SEED
COUNT` writes the corpus to files for replaying one by hand.

References: RFC 4475; RFC 3261 16.3 (request validation), 18.3 (framing), 21.4.
"""

import os
import re
import select
import socket
import sys
import threading
import time

import lab
from lab import check, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "torture"))

import fuzz      # noqa: E402
import rfc4475   # noqa: E402

COUNT = int(os.environ.get("IMS_TORTURE_COUNT", "3000"))
SEED = int(os.environ.get("IMS_TORTURE_SEED", "4475"))
TCP_SHARE = 150          # fuzz messages per CSCF also sent over TCP, in the ways listed above
CSCFS = ("pcscf", "icscf", "scscf")

STATUS = re.compile(rb"^SIP/2\.0 (\d{3}) ", re.M)


def sip_port(core, name):
    return {"pcscf": core.pcscf_sip, "icscf": core.icscf_sip, "scscf": core.scscf_sip}[name]


# --- RFC 4475 ---------------------------------------------------------------------------------

class Pending:
    """One message in flight on its own UDP socket or TCP connection."""

    def __init__(self, msg, sock, transport):
        self.msg, self.sock, self.transport = msg, sock, transport
        self.buf = b""
        self.statuses = []
        self.reasons = []
        self.done = False

    def feed(self, data):
        if self.transport == "UDP":
            m = STATUS.match(data)
            if m:
                self.statuses.append(int(m.group(1)))
                self.reasons.append(data.split(b"\r\n", 1)[0][12:].decode("utf-8", "replace"))
        else:
            self.buf += data
            self.statuses = [int(c) for c in STATUS.findall(self.buf)]
            self.reasons = [r.decode("utf-8", "replace") for r in re.findall(rb"^SIP/2\.0 \d{3} ([^\r\n]*)",
                                                                           self.buf, re.M)]
        if any(s >= 200 for s in self.statuses):
            self.done = True

    def finals(self):
        return [s for s in self.statuses if s >= 200]


def send_rfc4475(core, name, wait=6.0):
    """Sends every RFC 4475 message to one CSCF at once (one socket each); returns [(msg, Pending)]."""
    port = sip_port(core, name)
    pend = []
    # One UDP socket per message: load() writes that socket's port into the message's top Via.
    loaded = []
    for i in range(len(rfc4475.load(0))):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        loaded.append((rfc4475.load(s.getsockname()[1])[i], s))
    for m, s in loaded:
        if m.transport == "TCP":
            s.close()
            t = socket.create_connection(("127.0.0.1", port), timeout=3)
            t.sendall(m.data)
            pend.append(Pending(m, t, "TCP"))
        else:
            s.sendto(m.data, ("127.0.0.1", port))
            pend.append(Pending(m, s, "UDP"))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and not all(p.done for p in pend):
        live = [p for p in pend if not p.done and p.sock.fileno() >= 0]
        if not live:
            break
        r, _, _ = select.select([p.sock for p in live], [], [], 0.1)
        for sock in r:
            p = next(x for x in live if x.sock is sock)
            try:
                data = sock.recv(65535)
            except OSError:
                data = b""
            if not data and p.transport == "TCP":
                p.sock.close()
                continue
            p.feed(data)
    for p in pend:
        if p.sock.fileno() >= 0:
            p.sock.close()
    return pend


# --- fuzz -------------------------------------------------------------------------------------

class Tally:
    def __init__(self):
        self.sent = 0
        self.never = 0     # responses and ACKs sent: nothing answers those
        self.kernel_drops = 0
        self.by_class = {}
        self.answered = set()
        self.unmatched = 0
        self.odd = []      # status codes outside 100..699

    def add(self, data):
        m = STATUS.match(data)
        if not m:
            return
        code = int(m.group(1))
        if not 100 <= code <= 699:
            self.odd.append(code)
        cls = "%dxx" % (code // 100)
        self.by_class[cls] = self.by_class.get(cls, 0) + 1
        ids = re.findall(rb"fz\w+-(\d+)x", data)
        if ids:
            self.answered.add(int(ids[0]))
        else:
            self.unmatched += 1

    def line(self, name):
        classes = " ".join("%s=%d" % kv for kv in sorted(self.by_class.items()))
        return ("%s: %d sent over UDP (%d of them responses/ACKs), responses %s, unmatched %d, no answer %d, "
                "lost in the CSCF's socket buffer %d" % (name, self.sent, self.never, classes or "none", self.unmatched,
                                                         self.sent - len(self.answered), self.kernel_drops))


def udp_drops(port):
    """Datagrams the kernel dropped at 127.0.0.1:port (receive buffer full), from /proc/net/udp."""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/udp") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[1] == want:
                    return int(cols[-1])
    except OSError:
        pass
    return 0


def fuzz_udp(core, name, idx, tally, stop):
    port = sip_port(core, name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    msgs = fuzz.corpus(SEED + idx, COUNT, sock.getsockname()[1], "127.0.0.1", port, tag=str(idx))

    def reader():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            tally.add(data)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    # Paced so that the CSCF reads everything (its socket buffer is not what is tested): when the
    # kernel starts dropping datagrams at the CSCF's port, the pause between bursts doubles; while
    # nothing is dropped it shrinks again.
    gap, drops0 = 0.01, udp_drops(port)
    drops = drops0
    for i, m in enumerate(msgs):
        try:
            sock.sendto(m, ("127.0.0.1", port))
        except OSError:
            pass
        tally.sent += 1
        tally.never += m.startswith((b"SIP/", b"ACK "))
        if i % 10 == 9:
            time.sleep(gap)
            now = udp_drops(port)
            gap = min(gap * 2, 0.2) if now > drops else max(gap * 0.8, 0.005)
            drops = now
    tally.kernel_drops = udp_drops(port) - drops0
    return sock, t


def fuzz_tcp(core, name, idx):
    """Fuzz messages over TCP: whole, cut and closed, dribbled, pipelined; returns a summary and
    the half-sent connections still open (closed by the caller at the end)."""
    port = sip_port(core, name)
    msgs = fuzz.corpus(SEED + 100 + idx, TCP_SHARE, 40000, "127.0.0.1", port, tag="t%d" % idx)
    held, got, failed = [], 0, 0
    for i, m in enumerate(msgs):
        m = m.replace(b"SIP/2.0/UDP 127.0.0.1:40000", b"SIP/2.0/TCP 127.0.0.1:40000", 1)
        way = i % 5
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            failed += 1
            continue
        try:
            if way == 0:                       # whole message, read an answer briefly
                s.sendall(m)
                s.settimeout(0.05)
                try:
                    got += len(STATUS.findall(s.recv(65535)))
                except (socket.timeout, OSError):
                    pass
                s.close()
            elif way == 1:                     # cut in the middle, connection closed
                s.sendall(m[:max(1, len(m) // 2)])
                s.close()
            elif way == 2:                     # dribbled in small pieces
                for k in range(0, min(len(m), 600), 37):
                    s.sendall(m[k:k + 37])
                s.sendall(m[600:])
                s.close()
            elif way == 3:                     # two messages pipelined, then reset
                s.sendall(m + msgs[(i + 1) % len(msgs)])
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            else:                              # half a message, kept open until the end
                s.sendall(m[:max(1, len(m) // 3)])
                if len(held) < 20:
                    held.append(s)
                else:
                    s.close()
        except OSError:
            failed += 1
            s.close()
    return "%s: %d sent over TCP (whole, cut, dribbled, pipelined+reset, half-open), %d responses read, " \
           "%d connects/sends refused" % (name, len(msgs), got, failed), held


# --- the test ---------------------------------------------------------------------------------

def check_alive(core, problems, when):
    for nf in core.nfs.values():
        if not nf.running():
            problems.append("%s died %s:\n%s" % (nf.name, when, lab.tail(nf.log(), 40)))
    return not problems


def test_rfc4475_and_fuzz(tmp):
    # Every fuzz message comes from 127.0.0.1, and the REGISTERs among them that get 403 would
    # make the P-CSCF block that address (pcscf.auth_max_failures, test_auth_abuse.py) before
    # the final AKA registration: the per-address limit is off here.
    with lab.Lab(tmp, log_level="warn", overrides={"pcscf": {"pcscf": {"auth_max_failures": 0}}}) as core:
        problems = []
        report = []
        # 1. RFC 4475 to each CSCF, the three in parallel.
        results = {}
        threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, send_rfc4475(core, n)))
                   for n in CSCFS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in CSCFS:
            counts = {}
            for p in results[name]:
                finals = p.finals()
                key = "%dxx" % (finals[-1] // 100) if finals else "silent"
                counts[key] = counts.get(key, 0) + 1
                what = p.msg.judge(finals, p.reasons)
                if what:
                    problems.append("RFC 4475 %s %s to %s over %s: %s" % (p.msg.section, p.msg.name, name,
                                                                         p.transport, what))
                report.append("  %-6s %-9s %-11s %-4s -> %s" % (name, p.msg.section, p.msg.name, p.transport,
                                                                finals or "silence"))
            report.append("%s RFC 4475: %s" % (name, " ".join("%s=%d" % kv for kv in sorted(counts.items()))))
        check_alive(core, problems, "during the RFC 4475 messages")
        print("\n".join(report))
        sys.stdout.flush()

        # 2. Fuzz: the three CSCFs in parallel over UDP, then TCP.
        if not problems:
            stop = threading.Event()
            tallies = {n: Tally() for n in CSCFS}
            runs = {}
            t0 = time.monotonic()
            errors = []

            def send(n, i):
                try:
                    runs[n] = fuzz_udp(core, n, i, tallies[n], stop)
                except Exception as e:   # noqa: BLE001  (reported as a test failure below)
                    errors.append("fuzz sender for %s: %r" % (n, e))

            senders = [threading.Thread(target=send, args=(n, i)) for i, n in enumerate(CSCFS)]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            check(not errors, "; ".join(errors))
            tcp_lines, held = [], []
            for i, n in enumerate(CSCFS):
                line, h = fuzz_tcp(core, n, i)
                tcp_lines.append(line)
                held += h
            time.sleep(3)       # stragglers: answers after Cx round trips
            stop.set()
            for sock, t in runs.values():
                t.join()
                sock.close()
            print("fuzz: %.1f s" % (time.monotonic() - t0))
            for n in CSCFS:
                print(tallies[n].line(n))
                if tallies[n].odd:
                    problems.append("%s answered with impossible status codes %s" % (n, tallies[n].odd[:10]))
            print("\n".join(tcp_lines))
            check_alive(core, problems, "during the fuzz corpus")
            # While half-sent TCP connections are still open, the CSCFs keep serving.
            if not problems:
                ue = core.ue("alice")
                run = core.sipp_aka("register_aka.xml", ue, local_port=lab.free_port(), call_id="torture-alice@test")
                if run.rc != 0:
                    problems.append("AKA registration after the fuzz failed:\n" + run.failure())
                elif core.reg_states("alice").get("sip:alice@ims.lab") != "registered":
                    problems.append("HSS does not show alice registered: %r" % core.reg_states("alice"))
            for s in held:
                s.close()
            for n in CSCFS:
                nf = getattr(core, n)
                if nf.running() and nf.probe("/healthz") != 200:
                    problems.append("%s /healthz not 200 after the fuzz" % n)
            # Every transaction the fuzz started ends (Timer F/H bound it: 32 s at most).
            for n in CSCFS:
                nf = getattr(core, n)
                try:
                    wait_for(lambda: not nf.metric("sip_transactions_active"), 40, interval=0.5,
                             what="%s sip_transactions_active back to 0" % n)
                except lab.TestFailure as e:
                    problems.append(str(e))
        check(not problems, "\n".join(problems))
        core.alive()


if __name__ == "__main__":
    lab.main()
