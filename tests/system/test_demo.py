"""System test through the configuration as shipped: scripts/run.sh starts hss, icscf, scscf and
pcscf with deploy/config/*.yaml (fixed ports: SIP 5060/5062/6060, Diameter 3868-3870, HTTP
9090-9093; no test-specific host names), and the demo (tests/system/demo.py, what
scripts/demo.sh runs) has two baresip phones, carol and dave (digest), call each other.

Asserted: both phones registered (HSS reg_state), the call answered (CALL_ESTABLISHED on both
sides), the ACK reached the callee (in its SIP trace; its 200 OK not retransmitted), the BYE
reached the far end (the callee's CALL_CLOSED is "Connection reset by peer": closed by the remote
BYE; the caller got 200 OK), RTP counted both ways (> 0 each way per phone; on lo too with
CAP_NET_RAW), sip_transactions_active and sip_work_in_progress back at 0 on the three CSCFs, and
both phones de-registered. Also: run.sh reports an NF that fails at start, stops the others and
exits non-zero.

The binaries are IMS_BUILD_DIR's (ctest's build directory: build/, or build-asan/ in the
sanitizer pass); run.sh's state (logs, HSS database, pid file) stays in the test's directory
(IMS_VAR_DIR). The fixed ports make it a serial test (RUN_SERIAL, like every system test);
`ctest -L demo` runs it alone.
"""

import os
import subprocess
import time

import demo
import lab
from lab import check

SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def nf_logs(var_dir):
    out = {}
    for nf in ("hss", "icscf", "scscf", "pcscf"):
        try:
            with open(os.path.join(var_dir, nf + ".log"), encoding="utf-8", errors="replace") as f:
                out[nf] = f.read()
        except OSError:
            out[nf] = ""
    return out


def run_sh(var_dir, *args, env=None):
    e = dict(os.environ, IMS_VAR_DIR=var_dir, **(env or {}))
    return subprocess.run(["bash", demo.RUN_SH] + list(args), env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)


def no_core_left(var_dir):
    """run.sh --status finds nothing running, and nothing answers on the HSS's HTTP port."""
    st = run_sh(var_dir, "--status")
    check(st.returncode != 0, "a core is still running:\n" + st.stdout)
    try:
        status, _, _ = demo.http("GET", demo.http_base("hss") + "/healthz", timeout=1)
    except OSError:
        status = None
    check(status is None, "something still answers on the HSS HTTP port (%s)" % status)


def test_demo_call_through_shipped_config(tmp):
    var_dir = os.path.join(tmp, "var")
    res = demo.run_demo(os.path.join(tmp, "phones"), seconds=3, install=False, build=False,
                        out=print, var_dir=var_dir)
    try:
        check(res.core_started, "run.sh did not start the core (or one was running already)")
        check(res.ok(), "demo failed at step %s: %s" % (res.failed.step, res.failed.why) if res.failed else "")
        # the same facts again, one by one, so that a change in demo.py cannot drop one silently
        check(res.registered == {"carol": "registered", "dave": "registered"}, "HSS reg_state: %r" % res.registered)
        check(res.caller_established and res.callee_established, "CALL_ESTABLISHED on both sides")
        check(res.setup_seconds is not None and res.setup_seconds < 10, "set-up time %r" % res.setup_seconds)
        check(res.ack_received >= 1, "no ACK in the callee's SIP trace")
        check(res.invite_200_sent == 1, "the callee sent its 200 OK %r times (ACK late or lost)" % res.invite_200_sent)
        check(res.bye_received >= 1, "no BYE in the callee's SIP trace")
        check(res.callee_closed and "reset by peer" in res.callee_closed.lower(),
              "callee CALL_CLOSED: %r (expected the remote BYE)" % res.callee_closed)
        check(res.bye_200, "the caller got no 200 OK to its BYE")
        check(set(res.rtp) == {"carol", "dave"} and all(tx > 0 and rx > 0 for tx, rx in res.rtp.values()),
              "RTP packets (tx, rx) per phone: %r" % res.rtp)
        if res.wire is not None:
            both = [f for f, n in res.wire.items() if n > 0 and res.wire.get((f[1], f[0]), 0) > 0]
            check(both, "no RTP both ways on lo: %r" % res.wire)
        check(res.idle and all(a == 0 and w == 0 for a, w in res.idle.values()),
              "sip_transactions_active / sip_work_in_progress after the call: %r" % res.idle)
        check(res.deregistered == {"carol": "not_registered", "dave": "not_registered"},
              "HSS reg_state after quit: %r" % res.deregistered)
        # the core was stopped by the demo (run.sh --stop), cleanly
        no_core_left(var_dir)
        for nf, text in nf_logs(var_dir).items():
            for marker in SANITIZER:
                if marker in text:
                    raise lab.TestFailure("sanitizer report in %s.log:\n%s" % (nf, text[text.index(marker):][:3000]))
    except lab.TestFailure:
        for nf, text in nf_logs(var_dir).items():
            print("---- %s log tail (%s/%s.log)" % (nf, var_dir, nf))
            print(lab.tail(text, 20))
        raise


def test_run_sh_stops_everything_when_an_nf_fails(tmp):
    """An NF that cannot start (here the P-CSCF, given an invalid SIP port by environment) is
    named in run.sh's table with its log's error, the others are stopped, the exit code is 1."""
    var_dir = os.path.join(tmp, "var")
    t0 = time.monotonic()
    p = run_sh(var_dir, "--no-install", "--no-build", "--detach", env={"IMS_PCSCF_SIP_PORT": "99999"})
    print(p.stdout)
    check(p.returncode == 1, "run.sh exit code %s (expected 1)" % p.returncode)
    row = next((l for l in p.stdout.splitlines() if l.startswith("pcscf ")), "")
    check("exited" in row and "99999" in row, "the table's P-CSCF row names neither the exit nor the cause: %r" % row)
    for nf in ("hss", "icscf", "scscf"):
        check(any(l.startswith(nf + " ") and "ready" in l for l in p.stdout.splitlines()),
              "%s not listed as ready:\n%s" % (nf, p.stdout))
    check(time.monotonic() - t0 < 60, "run.sh took %.0f s to give up" % (time.monotonic() - t0))
    no_core_left(var_dir)


if __name__ == "__main__":
    lab.main()
