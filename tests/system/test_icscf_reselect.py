"""System tests of the I-CSCF's S-CSCF re-selection (TS 24.229 §5.3.1.2-§5.3.1.3): the states
WAIT_UAA -> WAIT_SCSCF -> WAIT_UAA_RESELECT -> WAIT_SCSCF_RETRY of icscf/icscf_register.c.

The HSS names two S-CSCFs in the capabilities of its UAA (hss.scscf_names) and the I-CSCF pool
lists the same two, the broken one first, so it is the one selected first:
- a silent S-CSCF (accepts the TCP connection, never answers): after icscf.scscf_timeout_ms the
  I-CSCF asks the HSS again (UAR type 2) and forwards to the real S-CSCF; the registration works.
- a refused connection first (nta's 503), then a silent one: no S-CSCF is left, the UE gets 600
  within about two S-CSCF timeouts (never left without an answer).
"""

import socket
import threading
import time

import lab
from lab import check, first_line, metric, status_of

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


def core_with(tmp, first, second=None):
    """The lab with the S-CSCFs [first, second] (second None: the lab's real S-CSCF)."""
    core = lab.Lab(tmp, start=False)
    names = [first, second or core.scscf_name]
    core.hss.config = lab.merge(core.hss.config, {"hss": {"scscf_names": names}})
    core.icscf.config = lab.merge(core.icscf.config, {"icscf": {
        "scscfs": [{"name": n} for n in names], "scscf_timeout_ms": SCSCF_TIMEOUT_MS}})
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


if __name__ == "__main__":
    lab.main()
