"""The newcomer's proof that the core works: two real softphones call each other through the core
as shipped (deploy/config/*.yaml, started by scripts/run.sh), and every step is checked.

    scripts/demo.sh [--no-install] [--no-build] [--seconds N] [--keep-running]
    python3 tests/system/demo.py ...                       (the same; demo.sh only calls this)

Steps (the first that fails ends the demo, named on the last line, exit code 1):
  core        scripts/run.sh --detach: every NF ready (/readyz), the table of NFs and ports
              (an already running core, started by run.sh from this tree, is used and left running)
  register    two baresip phones (Debian baresip-core, headless: aufile source, aubridge sink,
              ctrl_tcp) register with SIP digest through the P-CSCF at its configured address:
              carol@ims.lab / carolpass and dave@ims.lab / davepass; the HSS shows both registered
  call        carol dials dave, dave answers on his own; set-up time = dial (INVITE sent) ->
              CALL_ESTABLISHED at the caller (baresip ctrl_tcp events)
  ack         the ACK reached dave (his SIP trace), his 200 OK was not retransmitted, and both
              phones report CALL_ESTABLISHED
  media       the call is held N seconds (default 3); RTP packets each way from each phone's own
              counters (rtp_stats), and on the wire (lo) when run with CAP_NET_RAW
  hang-up     carol hangs up: the BYE reached dave (in his SIP trace; CALL_CLOSED "Connection
              reset by peer", i.e. closed by the remote BYE) and carol got its 200 OK
  idle        no transaction left: sip_transactions_active and sip_work_in_progress back at 0 on
              the P-CSCF, I-CSCF and S-CSCF (/metrics)
  deregister  the phones quit (REGISTER Expires: 0): the HSS shows both not registered
Then the core started here is stopped (scripts/run.sh --stop). Files: var/demo/ (baresip config
and log with its SIP trace, per phone); the NF logs: var/<nf>.log.

tests/system/test_demo.py runs the same code (run_demo) and asserts on its result; it honours
IMS_BUILD_DIR (the binaries) and keeps its state in its own directory (IMS_VAR_DIR of run.sh).
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("IMS_SOURCE_DIR", ROOT)                       # before lab/harness read them
os.environ.setdefault("IMS_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, HERE)

import lab  # noqa: E402
import test_baresip  # noqa: E402
import test_baresip_call  # noqa: E402
from harness import http  # noqa: E402
from test_baresip import ANSI  # noqa: E402

RUN_SH = os.path.join(ROOT, "scripts", "run.sh")
CONFIG_DIR = os.path.join(ROOT, "deploy", "config")
CSCFS = ("pcscf", "icscf", "scscf")
CALLER = ("carol", "carolpass")
CALLEE = ("dave", "davepass")


class StepFailed(Exception):
    def __init__(self, step, why):
        super().__init__("%s: %s" % (step, why))
        self.step, self.why = step, why


def wait_step(name, cond, timeout, what):
    """lab.wait_for that fails the demo step `name` instead of raising TestFailure."""
    try:
        lab.wait_for(cond, timeout, interval=0.2, what=what)
    except lab.TestFailure as e:
        raise StepFailed(name, str(e))


# --- the shipped configuration ---------------------------------------------------------------

def config_value(nf, section, key):
    """section.key of deploy/config/<nf>.yaml (block style, as shipped), or its environment
    override IMS_<NF>_<SECTION>_<KEY> (the NF's own section dropped), like scripts/run.sh."""
    var = ("IMS_%s_%s" % (nf, key) if section == nf else "IMS_%s_%s_%s" % (nf, section, key)).upper()
    if os.environ.get(var):
        return os.environ[var]
    current = None
    with open(os.path.join(CONFIG_DIR, nf + ".yaml")) as f:
        for line in f:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):", line)
            if m:
                current = m.group(1)
                continue
            m = re.match(r"^\s+%s:\s*([^#\s]+)" % re.escape(key), line)
            if current == section and m:
                return m.group(1).strip("\"'")
    return None


def endpoint(nf, section):
    """(host, port) to reach a listener of the shipped config (a wildcard listen on loopback)."""
    host = config_value(nf, section, "listen") or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return host, int(config_value(nf, section, "port"))


def http_base(nf):
    return "http://%s:%d" % endpoint(nf, "http")


def metric(nf, name):
    status, body, _ = http("GET", http_base(nf) + "/metrics", timeout=3)
    if status != 200:
        raise lab.TestFailure("%s /metrics: %s" % (nf, status))
    return sum(v for (n, _), v in lab.parse_metrics(body if isinstance(body, str) else json.dumps(body)).items()
               if n == name)


def reg_state(user):
    status, body, _ = http("GET", http_base("hss") + "/api/v1/subscribers/" + user, timeout=3)
    if status != 200:
        return "HSS API %s" % status
    return {u["impu"]: u.get("reg_state") for u in body.get("impus", [])}.get("sip:%s@ims.lab" % user)


# --- a phone whose ctrl_tcp events are kept ----------------------------------------------------

class Phone(test_baresip_call.Phone):
    """test_baresip_call.Phone (baresip, digest account, answer mode, rtp_stats) whose ctrl_tcp
    connection is read by a thread: command answers by token, events kept with their time."""

    def __init__(self, site, user, password, answermode="manual"):
        self.user = user
        self.events = []              # (monotonic time, event dict)
        self._answers = {}
        self._cv = threading.Condition()
        self._reader = None
        self.pcscf_port = site.pcscf_sip
        super().__init__(site, user, password, answermode=answermode)

    def command(self, cmd, params=""):
        sock = self._connect()
        if self._reader is None:
            self._reader = threading.Thread(target=self._read, args=(sock,), daemon=True)
            self._reader.start()
        token = "t%d" % int(time.monotonic() * 1e6)
        data = json.dumps({"command": cmd, "params": params, "token": token}).encode()
        sock.sendall(b"%d:%s," % (len(data), data))
        with self._cv:
            if not self._cv.wait_for(lambda: token in self._answers, 5):
                raise lab.TestFailure("%s: no ctrl_tcp answer to %s" % (self.aor, cmd))
            return self._answers.pop(token)

    def _read(self, sock):
        buf = b""
        sock.settimeout(None)
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                m = re.match(rb"(\d+):", buf)
                if not m or len(buf) < m.end() + int(m.group(1)) + 1:
                    break
                n = int(m.group(1))
                try:
                    obj = json.loads(buf[m.end():m.end() + n])
                except ValueError:
                    obj = {}
                buf = buf[m.end() + n + 1:]
                with self._cv:
                    if obj.get("event"):
                        self.events.append((time.monotonic(), obj))
                    elif obj.get("response"):
                        self._answers[obj.get("token")] = obj
                    self._cv.notify_all()

    def event(self, kind, since=0.0):
        """(time, event) of the first ctrl_tcp event of this type after `since`, or None."""
        with self._cv:
            return next(((t, e) for t, e in self.events if e.get("type") == kind and t >= since), None)

    def wait_event(self, kind, timeout, since=0.0):
        """event(), waiting up to timeout seconds for it."""
        with self._cv:
            self._cv.wait_for(lambda: any(e.get("type") == kind and t >= since for t, e in self.events),
                              timeout)
        return self.event(kind, since)

    def sip_log(self):
        return ANSI.sub("", self.log())

    def trace(self):
        """[(direction, lab.SipMessage)] from baresip's -s SIP trace ("#", then "UDP a -> b", then
        the message). The phones talk to the P-CSCF only. Sent: from our SIP port (UDP, and TCP
        connections the P-CSCF opened to us), or to the P-CSCF's port (TCP connections we opened,
        from an ephemeral port); the rest was received."""
        out = []
        for chunk in re.split(r"^#\s*$", self.sip_log(), flags=re.M)[1:]:
            m = re.match(r"\s*(UDP|TCP|TLS) (\S+) -> (\S+)\s*\n", chunk)
            if not m:
                continue
            src, dst = m.group(2).rsplit(":", 1)[-1], m.group(3).rsplit(":", 1)[-1]
            sent = src == str(self.sip_port) or dst == str(self.pcscf_port)
            out.append(("sent" if sent else "recv", lab.SipMessage(chunk[m.end():])))
        return out

    def flow(self, last=12):
        """The last SIP messages of the trace, one line each (for failure messages)."""
        return "\n".join("  %s %s" % (">>" if d == "sent" else "<<", m.first) for d, m in self.trace()[-last:]) \
            or "  (no SIP message traced)"

    def first_hop(self):
        """(uri, why) of the first hop of the in-dialog requests (ACK, BYE) the caller sends: the
        last Record-Route entry of the 200 OK to its INVITE. why: when a phone cannot reach it."""
        ok = [m for d, m in self.trace() if d == "recv" and m.status == 200 and m.cseq_method() == "INVITE"]
        if not ok:
            return None, "no 200 OK to the INVITE"
        entries = [e.strip() for v in ok[-1].all("Record-Route") for e in v.split(",") if e.strip()]
        if not entries:
            return None, "no Record-Route: in-dialog requests go to the callee's Contact"
        uri = entries[-1]
        m = re.search(r"sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>]+)", uri)
        host = m.group(1).strip("[]") if m else ""
        try:
            socket.getaddrinfo(host, None)
            return uri, None
        except (OSError, UnicodeError):
            return uri, "host %s does not resolve here (a phone resolves it by DNS)" % host

    def count(self, direction, method=None, status=None, cseq_method=None, call_id=None):
        """How many traced messages match (requests by method, responses by status + CSeq method)."""
        return sum(1 for d, msg in self.trace() if d == direction
                   and (method is None or msg.method == method)
                   and (status is None or msg.status == status)
                   and (cseq_method is None or msg.cseq_method() == cseq_method)
                   and (call_id is None or msg.get("Call-ID") == call_id))


# --- the demo --------------------------------------------------------------------------------

class Result:
    """What happened: steps [(name, ok, text)], and the numbers the test asserts on."""

    def __init__(self):
        self.steps = []
        self.failed = None            # StepFailed of the first failing step
        self.core_started = False
        self.registered = {}          # user -> HSS reg_state after registration
        self.setup_seconds = None
        self.caller_established = self.callee_established = False
        self.ack_received = 0         # ACKs in the callee's SIP trace
        self.invite_200_sent = None   # 200 OK (INVITE) sent by the callee (1 = no retransmission)
        self.bye_received = 0         # BYEs in the callee's SIP trace
        self.callee_closed = self.caller_closed = None     # CALL_CLOSED param
        self.bye_200 = False
        self.rtp = {}                 # user -> (tx, rx) from baresip's counters
        self.wire = None              # {(sport, dport): packets} on lo, None without CAP_NET_RAW
        self.idle = {}                # nf -> (sip_transactions_active, sip_work_in_progress)
        self.deregistered = {}
        self.seconds = 0.0

    def ok(self):
        return self.failed is None


def run_demo(workdir, seconds=3.0, install=True, build=True, keep_running=False, out=print,
             var_dir=None, stream=False):
    """Runs every step; returns a Result (result.failed names the first failing step). var_dir:
    run.sh's state directory (IMS_VAR_DIR, default var/); workdir: the phones' files; stream:
    run.sh's output (install, build, table) straight to our stdout rather than through out."""
    res = Result()
    t_start = time.monotonic()
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ)
    if var_dir:
        env["IMS_VAR_DIR"] = var_dir
    phones = []
    wire = None

    def step(name, text):
        res.steps.append((name, True, text))
        out("[ ok ] %-10s %s" % (name, text))

    try:
        # core ------------------------------------------------------------------------------
        status = subprocess.run(["bash", RUN_SH, "--status"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True)
        if status.returncode == 0:
            out(status.stdout.rstrip())
            step("core", "already running (started by scripts/run.sh): used and left running")
        else:
            args = ["bash", RUN_SH, "--detach"] + ([] if install else ["--no-install"]) + \
                   ([] if build else ["--no-build"])
            out("$ scripts/run.sh %s" % " ".join(args[2:]))
            if stream:     # a first build takes minutes: its progress shows as it comes
                p = subprocess.run(args, env=env)
            else:          # the table and what follows it (or, on failure, the end of the output)
                p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True)
                i = p.stdout.find("NF     PID")
                out((p.stdout[i:] if i >= 0 and p.returncode == 0 else lab.tail(p.stdout, 40)).rstrip())
            res.core_started = p.returncode == 0
            if p.returncode != 0:
                raise StepFailed("core", "scripts/run.sh exited %d (above: which NF, and why)" % p.returncode)
            step("core", "every NF ready (scripts/run.sh --detach)")

        pcscf_host, pcscf_port = endpoint("pcscf", "sip")
        site = types.SimpleNamespace(tmp=workdir, pcscf_sip=pcscf_port)
        if pcscf_host != "127.0.0.1":
            raise StepFailed("core", "the phones use outbound sip:127.0.0.1 (test_baresip.Baresip); "
                             "the P-CSCF listens on %s" % pcscf_host)

        # register --------------------------------------------------------------------------
        t0 = time.monotonic()
        caller = Phone(site, *CALLER)
        callee = Phone(site, *CALLEE, answermode="auto")
        phones += [caller, callee]
        wire = test_baresip_call.WireRtp()
        for p in phones:
            try:
                lab.wait_for(p.registered, 15, interval=0.2, what="%s registered (baresip reginfo)" % p.aor)
            except lab.TestFailure as e:
                raise StepFailed("register", "%s\n%s's SIP flow:\n%s" % (e, p.aor, p.flow()))
        for p in phones:
            wait_step("register", lambda: reg_state(p.user) == "registered", 5,
                      "HSS reg_state of sip:%s@ims.lab = registered" % p.user)
            res.registered[p.user] = reg_state(p.user)
        step("register", "%s and %s registered with SIP digest via P-CSCF %s:%d "
             "(HSS reg_state registered; %.2f s)" % (caller.aor, callee.aor, pcscf_host, pcscf_port,
                                                   time.monotonic() - t0))

        # call ------------------------------------------------------------------------------
        t_dial = time.monotonic()
        caller.command("dial", callee.aor)
        est = caller.wait_event("CALL_ESTABLISHED", 10, t_dial)
        if not est:
            closed = caller.event("CALL_CLOSED", t_dial)
            raise StepFailed("call", "%s: no CALL_ESTABLISHED 10 s after dialling %s (%s)\n%s's SIP flow:\n%s"
                             "\n%s's SIP flow:\n%s" % (
                                 caller.aor, callee.aor, "call closed: %r" % closed[1].get("param") if closed
                                 else "no answer", caller.aor, caller.flow(), callee.aor, callee.flow()))
        res.caller_established = True
        res.setup_seconds = est[0] - t_dial
        step("call", "%s -> %s answered: set-up %.0f ms (INVITE sent -> CALL_ESTABLISHED at the caller)" %
             (caller.aor, callee.aor, res.setup_seconds * 1000))

        # ack -------------------------------------------------------------------------------
        # baresip's callee reports CALL_ESTABLISHED when it sends its 200 OK; the ACK shows in its
        # SIP trace. Without the ACK it retransmits the 200 OK (0.5 s, 1 s, 2 s, ...), which the
        # hold below would show.
        def no_ack(what):
            hop, why = caller.first_hop()
            return StepFailed("ack", "the ACK did not reach %s: %s; its 200 OK sent %d time(s). The caller "
                              "sends the ACK to %s%s\n%s's SIP flow:\n%s\n%s's SIP flow:\n%s" % (
                                  callee.aor, what, callee.count("sent", status=200, cseq_method="INVITE"),
                                  hop, ": " + why if why else "", caller.aor, caller.flow(),
                                  callee.aor, callee.flow()))
        est2 = callee.wait_event("CALL_ESTABLISHED", 5, t_dial)
        if not est2:
            raise no_ack("no CALL_ESTABLISHED at the callee 5 s after the dial")
        res.callee_established = True
        try:
            lab.wait_for(lambda: callee.count("recv", method="ACK"), 3, interval=0.05,
                         what="the ACK at %s" % callee.aor)
        except lab.TestFailure:
            raise no_ack("no ACK in its SIP trace")
        res.ack_received = callee.count("recv", method="ACK")

        # media -----------------------------------------------------------------------------
        time.sleep(seconds)
        live = {p.user: p.text("callstat") for p in phones}
        res.invite_200_sent = callee.count("sent", status=200, cseq_method="INVITE")
        if res.invite_200_sent != 1:
            raise StepFailed("ack", "%s sent its 200 OK %d time(s): the ACK came late or not at all" %
                             (callee.aor, res.invite_200_sent))
        step("ack", "reached %s (in its SIP trace; its 200 OK sent once, not retransmitted; "
             "CALL_ESTABLISHED on both sides)" % callee.aor)

        # hang-up ---------------------------------------------------------------------------
        t_bye = time.monotonic()
        caller.command("hangup")
        closed = callee.wait_event("CALL_CLOSED", 5, t_bye)
        mine = caller.wait_event("CALL_CLOSED", 5, t_bye)
        res.callee_closed = closed[1].get("param", "") if closed else None
        res.caller_closed = mine[1].get("param", "") if mine else None
        res.bye_received = callee.count("recv", method="BYE")
        if not closed or not res.bye_received:
            hop, why = caller.first_hop()
            raise StepFailed("hang-up", "the BYE did not reach %s (%s). The caller sends it to %s%s\n"
                             "%s's SIP flow:\n%s" % (
                                 callee.aor, "CALL_CLOSED: %r" % res.callee_closed if closed else
                                 "no CALL_CLOSED within 5 s", hop, ": " + why if why else "",
                                 caller.aor, caller.flow()))
        if "reset by peer" not in res.callee_closed.lower():
            raise StepFailed("hang-up", "%s's call closed for another reason than the remote BYE: %r" %
                             (callee.aor, res.callee_closed))
        try:
            lab.wait_for(lambda: caller.count("recv", status=200, cseq_method="BYE"), 5, interval=0.1,
                         what="200 OK to %s's BYE" % caller.aor)
            res.bye_200 = True
        except lab.TestFailure as e:
            raise StepFailed("hang-up", "%s\n%s's SIP flow:\n%s" % (e, caller.aor, caller.flow()))
        step("hang-up", "BYE reached %s in %.0f ms (CALL_CLOSED: %s); %s got 200 OK" %
             (callee.aor, (closed[0] - t_bye) * 1000, res.callee_closed, caller.aor))

        # media counters (printed by baresip when the call ends) -------------------------------
        for p in phones:
            try:
                counts = lab.wait_for(lambda: test_baresip_call.packets(p.sip_log()), 5, interval=0.2,
                                      what="%s: RTP summary in the log" % p.aor)
            except lab.TestFailure:
                counts = test_baresip_call.packets(ANSI.sub("", live[p.user]))
            if not counts:
                raise StepFailed("media", "%s: no RTP statistics (callstat: %r)" % (p.aor, live[p.user]))
            res.rtp[p.user] = counts
        wire.stop()
        if wire.available:
            res.wire = dict(wire.flows)
        text = ", ".join("%s sent %d / received %d" % (u, tx, rx) for u, (tx, rx) in res.rtp.items())
        if res.wire is not None:
            big = sorted(((f, n) for f, n in res.wire.items() if n >= 10), key=lambda x: -x[1])[:2]
            text += "; on lo: %s" % ", ".join("%d->%d: %d" % (f[0], f[1], n) for f, n in big)
        bad = [u for u, (tx, rx) in res.rtp.items() if tx == 0 or rx == 0]
        if bad:
            raise StepFailed("media", "no RTP one way for %s: %s" % (", ".join(bad), text))
        step("media", "%.0f s of PCMU: RTP packets %s" % (seconds, text))

        # idle ------------------------------------------------------------------------------
        def gauges():
            return {nf: (metric(nf, "sip_transactions_active"), metric(nf, "sip_work_in_progress"))
                    for nf in CSCFS}
        deadline = time.monotonic() + 5
        while True:
            res.idle = gauges()
            if all(a == 0 and w == 0 for a, w in res.idle.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        text = ", ".join("%s %d/%d" % (nf, a, w) for nf, (a, w) in res.idle.items())
        if not all(a == 0 and w == 0 for a, w in res.idle.values()):
            raise StepFailed("idle", "transactions left 5 s after the call (sip_transactions_active/"
                             "sip_work_in_progress): %s" % text)
        step("idle", "no transaction left: sip_transactions_active/sip_work_in_progress %s" % text)

        # deregister ------------------------------------------------------------------------
        for p in phones:
            try:
                p.command("quit")
            except (lab.TestFailure, OSError):
                pass
        for p in phones:
            try:
                p.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            wait_step("deregister", lambda: reg_state(p.user) == "not_registered", 8,
                      "HSS reg_state of sip:%s@ims.lab = not_registered after quit" % p.user)
            res.deregistered[p.user] = reg_state(p.user)
        step("deregister", "both phones quit; HSS reg_state not_registered")
    except StepFailed as e:
        res.failed = e
        res.steps.append((e.step, False, e.why))
        out("[FAIL] %-10s %s" % (e.step, e.why))
    except lab.TestFailure as e:     # a helper's own check (ctrl_tcp gone, baresip exited, ...)
        name = next((s for s in ("core", "register", "call", "ack", "media", "hang-up", "idle", "deregister")
                     if s not in [n for n, _, _ in res.steps]), "demo")
        res.failed = StepFailed(name, str(e))
        res.steps.append((name, False, str(e)))
        out("[FAIL] %-10s %s" % (name, e))
    finally:
        if wire:
            wire.stop()
        for p in phones:
            p.stop()
        if res.core_started and not keep_running:
            subprocess.run(["bash", RUN_SH, "--stop"], env=env, stdout=subprocess.DEVNULL)
        res.seconds = time.monotonic() - t_start
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description="Two baresip phones call each other through the IMS core "
                                             "as shipped (deploy/config); every step checked.")
    ap.add_argument("--no-install", action="store_true", help="skip scripts/install-deps.sh")
    ap.add_argument("--no-build", action="store_true", help="use the binaries in build/ as they are")
    ap.add_argument("--seconds", type=float, default=3.0, help="how long the call lasts (default 3, at most 8)")
    ap.add_argument("--keep-running", action="store_true", help="leave the core running afterwards")
    a = ap.parse_args(argv)
    seconds = min(max(a.seconds, 1.0), 8.0)     # the phones' audio file lasts 10 s
    var_dir = os.environ.get("IMS_VAR_DIR") or os.path.join(ROOT, "var")
    workdir = os.path.join(var_dir, "demo")
    print("== IMS core demo: baresip carol@ims.lab calls dave@ims.lab through deploy/config/*.yaml ==")
    sys.stdout.flush()
    res = run_demo(workdir, seconds=seconds, install=not a.no_install, build=not a.no_build,
                   keep_running=a.keep_running, stream=True,
                   out=lambda s: (print(s), sys.stdout.flush()))
    if res.core_started and a.keep_running:
        print("The core keeps running (--keep-running): scripts/run.sh --status, scripts/run.sh --stop")
    if res.ok():
        print("PASS: registration, call, ACK, RTP both ways, BYE, no transaction left (%.1f s)" % res.seconds)
        return 0
    print("FAIL at step '%s' (%.1f s). Phone files: %s; NF logs: %s/<nf>.log" % (
        res.failed.step, res.seconds, workdir, var_dir))
    return 1


if __name__ == "__main__":
    sys.exit(main())
