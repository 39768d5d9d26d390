"""System tests of the I-CSCF's S-CSCF re-selection (TS 24.229 §5.3.1.2-§5.3.1.3): the states
WAIT_UAA -> WAIT_SCSCF -> WAIT_UAA_RESELECT -> WAIT_SCSCF_RETRY of icscf/icscf_register.c.

The HSS names two S-CSCFs in the capabilities of its UAA (hss.scscf_names) and the I-CSCF pool
lists the same two, the broken one first, so it is the one selected first:
- a silent S-CSCF (accepts the TCP connection, never answers): after icscf.scscf_timeout_ms the
  I-CSCF asks the HSS again (UAR type 2) and forwards to the real S-CSCF; the registration works.
- a refused connection first (nta's 503), then a silent one: no S-CSCF is left, the UE gets 600
  within about two S-CSCF timeouts (never left without an answer).
- the I-CSCF stops (SIGTERM) while a REGISTER waits for a silent S-CSCF: the REGISTER is answered
  at once (503 Shutting Down from the record's cleanup), not left to the P-CSCF's timeout.
- terminating requests (icscf/icscf_route.c): an S-CSCF that refuses the connection gives the
  caller 480 "S-CSCF Not Reachable" with Retry-After at once; an overloaded one (503 with
  Retry-After) gives 500 with that Retry-After, never a relayed 503 (RFC 3261 §16.7 step 6).
"""

import os
import socket
import threading
import time

import lab
from lab import check, first_line, metric, status_of, wait_for

SCSCF_TIMEOUT_MS = 1000


class SilentScscf(threading.Thread):
    """A TCP listener that reads whatever it is sent and never answers."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.uri = "sip:127.0.0.1:%d" % self.port
        self.received = 0
        self.conns = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.drain, args=(c,), daemon=True).start()

    def drain(self, c):
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received += data.count(b"REGISTER sip:")

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def core_with(tmp, first, second=None, timeout_ms=SCSCF_TIMEOUT_MS):
    """The lab with the S-CSCFs [first, second] (second None: the lab's real S-CSCF)."""
    core = lab.Lab(tmp, start=False)
    names = [first, second or core.scscf_name]
    core.hss.config = lab.merge(core.hss.config, {"hss": {"scscf_names": names}})
    core.icscf.config = lab.merge(core.icscf.config, {"icscf": {
        "scscfs": [{"name": n} for n in names], "scscf_timeout_ms": timeout_ms}})
    core.hss.write_config()
    core.icscf.write_config()
    core.start()
    return core


def test_silent_scscf_reselected(tmp):
    hole = SilentScscf()
    try:
        with core_with(tmp, hole.uri) as core, lab.RawUe(core, "alice") as ue:
            t0 = time.monotonic()
            ch = ue.register()
            took = time.monotonic() - t0
            check(status_of(ch) == 401, "first REGISTER: 401 from the second S-CSCF expected, got %s" % first_line(ch))
            check(hole.received >= 1, "the silent S-CSCF must have been tried first")
            check(took >= SCSCF_TIMEOUT_MS / 1000.0 * 0.8, "re-selection only after the S-CSCF timeout: %.2f s" % took)
            ok = ue.register(ue.answer(ch))
            check(status_of(ok) == 200, "answered REGISTER: 200 expected, got %s" % first_line(ok))
            check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered", core.reg_states("alice"))
            check(metric(core.icscf, "icscf_register_total", result="reselection") >= 1,
                  "icscf_register_total{result=reselection} must count it")
            log = core.icscf.log()
            for st in ("WAIT_UAA -> WAIT_SCSCF", "WAIT_SCSCF -> WAIT_UAA_RESELECT",
                       "WAIT_UAA_RESELECT -> WAIT_SCSCF_RETRY"):
                check(st in log, "the I-CSCF log must show the state change %s" % st)
            check(metric(core.icscf, "icscf_pending") == 0, "nothing left pending at the I-CSCF")
    finally:
        hole.close()


def test_no_scscf_left_600(tmp):
    hole = SilentScscf()
    refused = "sip:127.0.0.1:%d" % closed_port()
    try:
        with core_with(tmp, refused, hole.uri) as core, lab.RawUe(core, "alice") as ue:
            t0 = time.monotonic()
            r = ue.register(timeout=10)
            took = time.monotonic() - t0
            print("  600 after %.2f s" % took)
            check(status_of(r) == 600, "no S-CSCF answers: 600 Busy Everywhere expected, got %s" % first_line(r))
            check(hole.received >= 1, "the second S-CSCF (silent) must have been tried")
            check(took < 2 * SCSCF_TIMEOUT_MS / 1000.0 + 2, "600 within about two S-CSCF timeouts: %.2f s" % took)
            check(metric(core.icscf, "icscf_register_total", result="no_scscf") >= 1,
                  "icscf_register_total{result=no_scscf} must count it")
            check("WAIT_UAA_RESELECT -> WAIT_SCSCF_RETRY" in core.icscf.log(), "the retry state must be reached")
            check(metric(core.icscf, "icscf_pending") == 0, "nothing left pending at the I-CSCF")
    finally:
        hole.close()


def test_stop_answers_pending(tmp):
    hole = SilentScscf()
    try:
        with core_with(tmp, hole.uri, timeout_ms=20000) as core, lab.RawUe(core, "alice") as ue:
            result = {}
            th = threading.Thread(target=lambda: result.setdefault("r", ue.register(timeout=15)), daemon=True)
            th.start()
            wait_for(lambda: hole.received >= 1, 5, what="the REGISTER at the silent S-CSCF")
            t0 = time.monotonic()
            rc = core.icscf.stop()
            th.join(15)
            took = time.monotonic() - t0
            r = result.get("r")
            check(rc == 0, "the I-CSCF must exit 0 on SIGTERM: %r" % rc)
            check(r is not None and 500 <= r.status < 600, "REGISTER pending at the stop: 5xx expected, got %s" %
                  first_line(r))
            check(took < 5, "answered when the I-CSCF stopped, not at a timeout: %.2f s" % took)
            check("503 Service Unavailable - Shutting Down" in core.icscf.log(),
                  "the I-CSCF must answer the pending REGISTER 503 (Shutting Down)")
            core.icscf.spawn()   # the lab checks every NF at the end
            wait_for(lambda: core.icscf.probe("/healthz") == 200, 15, what="icscf running again")
    finally:
        hole.close()


class Busy503Scscf(SilentScscf):
    """A TCP S-CSCF that answers every request 503 Service Unavailable with Retry-After: 77."""

    def drain(self, c):
        buf = b""
        while True:
            try:
                data = c.recv(65535)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = lab.SipMessage(head.decode("utf-8", "replace") + "\r\n\r\n")
                n = int(m.get("Content-Length", "0") or 0)
                buf = buf[n:]
                if m.status or m.method == "ACK":
                    continue
                lines = ["SIP/2.0 503 Service Unavailable"] + ["Via: %s" % v for v in m.all("Via")]
                lines += ["From: %s" % m.get("From"), "To: %s;tag=busy" % m.get("To"), "Call-ID: %s" % m.get("Call-ID"),
                          "CSeq: %s" % m.get("CSeq"), "Retry-After: 77", "Content-Length: 0", "", ""]
                c.sendall("\r\n".join(lines).encode())


def message_via_icscf(core, udp, to="bob"):
    req = ("MESSAGE sip:%s@ims.lab SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-t%d\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:alice@ims.lab>;tag=t\r\nTo: <sip:%s@ims.lab>\r\n"
           "Call-ID: term-%d@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n"
           "Content-Length: 2\r\n\r\nhi" % (to, udp.port, time.monotonic_ns(), to, time.monotonic_ns()))
    finals = [m for m in udp.exchange(core.icscf_sip, req, timeout=5) if m.status and m.status >= 200]
    return finals[-1] if finals else None


def test_terminating_scscf_unreachable_or_overloaded(tmp):
    busy = Busy503Scscf()
    try:
        for target, status, retry_after in (("sip:127.0.0.1:%d" % closed_port(), 480, "30"), (busy.uri, 500, "77")):
            # icscf.lir false: the first S-CSCF of icscf.scscfs takes every terminating request
            d = os.path.join(tmp, str(status))
            core = lab.Lab(d, overrides={"icscf": {"icscf": {"lir": False, "scscfs": [{"name": target}]}}})
            with core, lab.RawUdp() as udp:
                t0 = time.monotonic()
                r = message_via_icscf(core, udp)
                check(r is not None and r.status == status, "S-CSCF %s: %d expected, got %s" %
                      (target, status, first_line(r)))
                check(r.get("Retry-After") == retry_after, "Retry-After %s expected: %s" % (retry_after, r.text))
                check(time.monotonic() - t0 < 3, "answered at once")
                if status == 480:
                    check("S-CSCF Not Reachable" in r.first, r.first)
                    check(metric(core.icscf, "icscf_requests_total", result="scscf_unreachable") == 1,
                          "icscf_requests_total{result=scscf_unreachable}")
    finally:
        busy.close()


if __name__ == "__main__":
    lab.main()
