"""System-test harness: the whole core (hss, scscf, icscf, pcscf) as separate processes on
127.0.0.1 with generated configs on free ports, plus SIPp and raw-socket helpers.

Python 3 standard library only; reuses tests/component/harness.py (Hss, check, the runner):

    import lab
    from lab import check
    def test_something(tmp):                 # tmp: a fresh directory, kept when the test fails
        with lab.Lab(tmp) as core:           # starts hss, scscf, icscf, pcscf; waits for /readyz
            ue = core.ue("alice")
            r = core.sipp("register_aka.xml", ue)
            check(r.rc == 0, r.failure())
            check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered")
    if __name__ == "__main__":
        lab.main()

Topology (every port chosen free at start; host names resolved by each CSCF's sip.hosts):

    UE (SIPp) --SIP--> pcscf.ims.lab --> icscf.ims.lab --(UAR/LIR)--> hss.ims.lab
                                             |                            ^
                                             +--> scscf.ims.lab --(MAR/SAR, RTR/PPR)-+
                                                      |
                                                      +--> as.ims.lab (a SIPp UAS, third-party REGISTER)

The S-CSCF's name "sip:scscf.ims.lab:<port>" is the same in the HSS (hss.scscf_names, offered
in Server-Capabilities), the I-CSCF pool (icscf.scscfs) and the S-CSCF itself (scscf.name).

A missing binary is a failure, never a skip. When the block ends with an exception, the tail of
every NF log is printed (the whole logs stay in the kept directory); when it ends normally,
every NF must still be running, exit 0 on SIGTERM and have no sanitizer report in its log.
"""

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "component"))

import harness  # noqa: E402  (tests/component/harness.py)
from harness import TestFailure, check, http  # noqa: E402,F401

BUILD_DIR = harness.BUILD_DIR
SOURCE_DIR = harness.SOURCE_DIR
SCENARIOS = os.path.join(HERE, "scenarios")
SIPP = shutil.which("sipp") or "/usr/bin/sipp"

DOMAIN = "ims.lab"
REALM = "ims.lab"

main = harness.main

# Pieces kept in their own modules (one role each), re-exported so that tests keep using lab.X.
from lab_aka import (AKA_AMF, AKA_K, AKA_OP, aes128_encrypt, aka_res_of_nonce, aka_sqn_of_nonce, digest_ha1,  # noqa: E402,F401
                     digest_response, milenage_f2_f5, milenage_res, selftest, xor)
from lab_sip import SipMessage, parse_sipp_trace  # noqa: E402,F401
from lab_raw import (RawUdp, RawUe, first_line, metric, register_request, status_of,  # noqa: E402,F401
                     tcp_exchange)


# --- small helpers ------------------------------------------------------------------------

def warnings(nf):
    """The WARN lines of an NF's log, less the S-CSCF's "wrong response" to SIPp 3.6.1's
    occasional wrong AKA RES (a 0x00 byte in RES, sipp_aka_quirk): the harness runs such a
    registration again, and that WARN is the right answer to it; and less the start-up WARN that
    net.core.rmem_max caps sip.udp_rcvbuf, a property of the test machine (not root, stock
    sysctl), not of the code."""
    return [l for l in nf.log().splitlines() if " WARN " in l and "failed: wrong response" not in l
            and "net.core.rmem_max caps it" not in l]


# A port free a moment ago for both TCP and UDP on 127.0.0.1 (SIP listens on both).
free_port = harness.free_port_tcp_udp


class Ports:
    """Distinct free ports (the OS may hand out a port twice if nothing holds it)."""

    def __init__(self):
        self.used = set()

    def get(self):
        for _ in range(100):
            p = free_port()
            if p not in self.used:
                self.used.add(p)
                return p
        raise TestFailure("no distinct free port")


def to_yaml(obj, indent=0):
    """A small YAML emitter for the configs: dicts, lists, strings, numbers, booleans."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                if isinstance(v, list) and all(not isinstance(i, (dict, list)) for i in v):
                    out.append("%s%s: [%s]" % (pad, k, ", ".join(scalar(i) for i in v)))
                else:
                    out.append("%s%s:" % (pad, k))
                    out.append(to_yaml(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, scalar(v) if not isinstance(v, (dict, list)) else
                                         ("{}" if isinstance(v, dict) else "[]")))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                first = True
                for k, v in item.items():
                    prefix = pad + ("- " if first else "  ")
                    first = False
                    if isinstance(v, list):
                        out.append("%s%s: [%s]" % (prefix, k, ", ".join(scalar(i) for i in v)))
                    else:
                        out.append("%s%s: %s" % (prefix, k, scalar(v)))
            else:
                out.append("%s- %s" % (pad, scalar(item)))
    return "\n".join(out)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    return json.dumps(str(v))   # a JSON string is a valid YAML double-quoted scalar


def merge(base, over):
    """Deep merge of dicts (over wins); None in over deletes the key."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out[(m.group(1), frozenset(labels.items()))] = value
    return out


def wait_for(cond, timeout=10.0, interval=0.1, what="condition"):
    """Polls cond() until it returns a true value (returned) or raises TestFailure."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def sipp_aka_quirk(run, ue):
    """True when the run's last AKA challenge has a RES with a 0x00 byte (SIPp answers it wrongly)."""
    for m in reversed(run.received(status=401)):
        www = m.get("WWW-Authenticate", "")
        n = re.search(r'nonce="([^"]+)"', www)
        if "AKAv1-MD5" in www and n:
            return 0 in aka_res_of_nonce(n.group(1), ue.k, ue.op)
        return False
    return False


# --- one network function process ----------------------------------------------------------

class Nf:
    """One NF process (hss, scscf, icscf, pcscf) with its YAML, log and HTTP port."""

    def __init__(self, name, binary, workdir, config, http_port):
        self.name = name
        self.binary = binary
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.config_path = os.path.join(workdir, "%s.yaml" % name)
        self.logfile = os.path.join(workdir, "%s.log" % name)
        self.config = config
        self.http_port = http_port
        self.base = "http://127.0.0.1:%d" % http_port
        self.proc = None
        self.returncode = None
        self.write_config()

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write("# generated by tests/system/lab.py\n" + to_yaml(self.config) + "\n")

    def spawn(self):
        check(os.access(self.binary, os.X_OK),
              "no %s binary at %s (build first; IMS_BUILD_DIR=%s)" % (self.name, self.binary, BUILD_DIR))
        log = open(self.logfile, "ab")
        # IMS_LAB_PIN="pcscf=0,hss=1": that NF and every thread it starts on one CPU (benchmarks)
        pins = dict(x.split("=") for x in os.environ.get("IMS_LAB_PIN", "").split(",") if "=" in x)
        self.proc = subprocess.Popen([self.binary, "-c", self.config_path], stdout=log, stderr=log,
                                     cwd=self.dir,
                                     preexec_fn=(lambda c=int(pins[self.name]): os.sched_setaffinity(0, {c}))
                                     if self.name in pins else None)
        log.close()
        self.returncode = None
        return self

    def get(self, path, timeout=2):
        return http("GET", self.base + path, timeout=timeout)

    def probe(self, path):
        """HTTP status of GET path, or None while nothing answers."""
        try:
            status, _, _ = self.get(path, timeout=1)
            return status
        except (OSError, urllib.error.URLError):
            return None

    def check_alive(self, when=""):
        rc = self.proc.poll() if self.proc else None
        if self.proc is not None and rc is not None:
            self.returncode = rc
            raise TestFailure("%s exited with %s%s; log tail:\n%s" % (self.name, describe_rc(rc), when,
                                                                    tail(self.log(), 30)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "hung"
                return self.returncode
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def metrics(self):
        status, body, _ = self.get("/metrics")
        check(status == 200, "%s /metrics: %s %r" % (self.name, status, body))
        return parse_metrics(body if isinstance(body, str) else json.dumps(body))

    def metric(self, name, **labels):
        """Sum of the series `name` whose labels include `labels`; None when there is none."""
        found = None
        for (n, ls), v in self.metrics().items():
            if n == name and all((k, str(val)) in ls for k, val in labels.items()):
                found = (found or 0.0) + v
        return found

    def metric_names(self):
        return sorted({n for n, _ in self.metrics()})


def describe_rc(rc):
    if isinstance(rc, int) and rc < 0:
        try:
            return "signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "signal %d" % -rc
    return "code %s" % rc


# --- subscribers ------------------------------------------------------------------------------

class Ue:
    """A SIPp user: what goes into the injection file and -au/-ap."""

    def __init__(self, user, domain=DOMAIN, impi=None, password=None, k=AKA_K, op=AKA_OP, amf=AKA_AMF):
        self.user = user
        self.domain = domain
        self.impi = impi or "%s@%s" % (user, domain)
        self.password = password
        self.k, self.op, self.amf = k, op, amf
        self.impu = "sip:%s@%s" % (user, domain)


def default_subscribers(as_uri):
    """alice and bob (AKA + digest; alice defaults to AKA, bob to digest), carol (digest, with
    an iFC sending a third-party REGISTER to the AS), dave (digest only, for the softphone)."""
    def impi(name, password, default="aka", schemes=("aka", "digest")):
        d = {"impi": "%s@%s" % (name, DOMAIN), "auth_schemes": list(schemes), "default_scheme": default,
             "password": password}
        if "aka" in schemes:
            d.update({"k": AKA_K, "op": AKA_OP, "amf": AKA_AMF})
        return d

    return {"subscribers": [
        {"id": "alice",
         "impis": [impi("alice", "alicepass", "aka")],
         "impus": [{"impu": "sip:alice@ims.lab", "irs": 1, "service_profile": "default"},
                   {"impu": "tel:+15550001", "irs": 1, "service_profile": "default"}],
         "service_profiles": [{"name": "default"}]},
        {"id": "bob",
         "impis": [impi("bob", "bobpass", "digest")],
         "impus": [{"impu": "sip:bob@ims.lab", "irs": 1, "service_profile": "default"},
                   {"impu": "tel:+15550002", "irs": 1, "service_profile": "default"}],
         "service_profiles": [{"name": "default"}]},
        {"id": "carol",
         "impis": [impi("carol", "carolpass", "digest", ("digest",))],
         "impus": [{"impu": "sip:carol@ims.lab", "irs": 1, "service_profile": "as"},
                   {"impu": "tel:+15550003", "irs": 1, "service_profile": "as"}],
         "service_profiles": [{"name": "as", "ifc": [
             {"priority": 1,
              "trigger_point": {"cnf": True, "spt": [{"group": 0, "method": "REGISTER"}]},
              "application_server": {"server_name": as_uri, "default_handling": "session_continued"}}]}]},
        {"id": "dave",
         "impis": [impi("dave", "davepass", "digest", ("digest",))],
         "impus": [{"impu": "sip:dave@ims.lab", "irs": 1, "service_profile": "default"}],
         "service_profiles": [{"name": "default"}]},
    ]}


UES = {
    "alice": dict(password="alicepass"),
    "bob": dict(password="bobpass"),
    "carol": dict(password="carolpass"),
    "dave": dict(password="davepass"),
}


# --- SIPp ------------------------------------------------------------------------------------

class SippRun:
    """One SIPp process. rc: its exit code (0 = the scenario passed), None while running."""

    def __init__(self, cmd, workdir, label, msgfile, errfile, outfile):
        self.cmd = cmd
        self.dir = workdir
        self.label = label
        self.msgfile, self.errfile, self.outfile = msgfile, errfile, outfile
        out = open(outfile, "wb")
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=workdir)
        out.close()
        self.rc = None

    def wait(self, timeout=40.0):
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.rc = "killed after %.0f s" % timeout
        return self.rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            if self.rc is None:
                self.rc = "killed"

    def running(self):
        return self.proc.poll() is None

    def _read(self, path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def trace(self):
        return self._read(self.msgfile)

    def errors(self):
        return self._read(self.errfile)

    def output(self):
        return self._read(self.outfile)

    def messages(self):
        return parse_sipp_trace(self.trace())

    def received(self, method=None, status=None, cseq_method=None):
        out = []
        for m in self.messages():
            if m.direction != "recv":
                continue
            if method and m.method != method:
                continue
            if status and m.status != status:
                continue
            if cseq_method and m.cseq_method() != cseq_method:
                continue
            out.append(m)
        return out

    def sent(self, method=None):
        return [m for m in self.messages() if m.direction == "sent" and (not method or m.method == method)]

    def failure(self):
        """A readable account of why the scenario did not pass: exit code, SIPp's error log and
        the SIP messages exchanged (first lines, and the last received message whole)."""
        msgs = self.messages()
        flow = "\n".join("  %s %s" % (">>" if m.direction == "sent" else "<<", m.first) for m in msgs)
        last = next((m for m in reversed(msgs) if m.direction == "recv"), None)
        errs = self.errors().strip()
        return ("SIPp %s: rc=%s\n-- flow --\n%s\n-- last received --\n%s\n-- SIPp errors --\n%s\n-- files: %s" %
                (self.label, self.rc, flow or "  (nothing)", last.text.strip() if last else "(none)",
                 tail(errs, 15) or "(none)", self.dir))


# --- the lab -------------------------------------------------------------------------------

class Lab:
    """hss + scscf + icscf + pcscf with generated configs in `tmp`.

    Overrides (deep-merged into the generated YAML, None deletes a key) let a test adapt
    to the NF's exact key names: Lab(tmp, overrides={"scscf": {"scscf": {"min_expires": 1}}}).
    subscribers: the HSS import document (default_subscribers(as_uri) when None)."""

    # Every NF listens on 127.0.0.1 and advertises that address (sip.advertise default).
    pcscf_host = scscf_host = icscf_host = "127.0.0.1"

    NFS = ("hss", "scscf", "icscf", "pcscf")

    def __init__(self, tmp, subscribers=None, overrides=None, log_level="debug", start=True,
                 min_expires=5, max_expires=3600):
        self.tmp = tmp
        self.ports = Ports()
        p = self.ports
        self.hss_diameter, self.hss_http = p.get(), p.get()
        self.scscf_sip, self.scscf_diameter, self.scscf_http = p.get(), p.get(), p.get()
        self.icscf_sip, self.icscf_diameter, self.icscf_http = p.get(), p.get(), p.get()
        self.pcscf_sip, self.pcscf_http = p.get(), p.get()
        self.as_port = p.get()
        self.scscf_name = "sip:scscf.ims.lab:%d" % self.scscf_sip
        self.icscf_uri = "sip:icscf.ims.lab:%d" % self.icscf_sip
        self.pcscf_uri = "sip:pcscf.ims.lab:%d" % self.pcscf_sip
        self.as_uri = "sip:as.ims.lab:%d" % self.as_port
        self.sipp_runs = []
        self.nfs = {}
        overrides = overrides or {}

        hosts = ["scscf.ims.lab=127.0.0.1", "pcscf.ims.lab=127.0.0.1", "icscf.ims.lab=127.0.0.1",
                 "as.ims.lab=127.0.0.1"]
        log = {"level": log_level}
        # The trust domain (README "Security model"): every NF of the lab is on 127.0.0.1; other
        # loopback addresses (127.0.0.2 ...) stand for strangers (tests/system/test_trust.py).
        trust = {"cidrs": ["127.0.0.1/32"]}

        # HSS
        hss_dir = os.path.join(tmp, "hss")
        os.makedirs(hss_dir, exist_ok=True)
        self.subscribers = subscribers if subscribers is not None else default_subscribers(self.as_uri)
        subs_path = os.path.join(hss_dir, "subscribers.json")
        with open(subs_path, "w") as f:
            json.dump(self.subscribers, f, indent=1)
        hss_cfg = {
            "log": log,
            "http": {"listen": "127.0.0.1", "port": self.hss_http},
            "diameter": {"identity": "hss.ims.lab", "realm": REALM, "listen": "127.0.0.1",
                         "port": self.hss_diameter, "tc_timer": 1, "conf_dir": hss_dir},
            "hss": {"database": os.path.join(hss_dir, "hss.db"), "import": subs_path,
                    "scscf_names": [self.scscf_name]},
        }

        def diameter(identity, port, d):
            return {"identity": identity, "realm": REALM, "listen": "127.0.0.1", "port": port,
                    "tc_timer": 1, "conf_dir": d,
                    "peers": [{"identity": "hss.ims.lab", "address": "127.0.0.1", "port": self.hss_diameter}]}

        scscf_dir = os.path.join(tmp, "scscf")
        scscf_cfg = {
            "log": log,
            "http": {"listen": "127.0.0.1", "port": self.scscf_http},
            "diameter": diameter("scscf.ims.lab", self.scscf_diameter, scscf_dir),
            "sip": {"listen": "127.0.0.1", "port": self.scscf_sip, "hostname": "scscf.ims.lab", "hosts": hosts},
            "trust": trust,
            "scscf": {"name": self.scscf_name, "min_expires": min_expires, "max_expires": max_expires},
        }
        icscf_dir = os.path.join(tmp, "icscf")
        icscf_cfg = {
            "log": log,
            "http": {"listen": "127.0.0.1", "port": self.icscf_http},
            "diameter": diameter("icscf.ims.lab", self.icscf_diameter, icscf_dir),
            "sip": {"listen": "127.0.0.1", "port": self.icscf_sip, "hostname": "icscf.ims.lab", "hosts": hosts},
            "trust": trust,
            "icscf": {"home_domains": [DOMAIN], "scscfs": [{"name": self.scscf_name}]},
        }
        pcscf_dir = os.path.join(tmp, "pcscf")
        pcscf_cfg = {
            "log": log,
            "http": {"listen": "127.0.0.1", "port": self.pcscf_http},
            "sip": {"listen": "127.0.0.1", "port": self.pcscf_sip, "hostname": "pcscf.ims.lab", "hosts": hosts},
            "trust": trust,
            "pcscf": {"icscf": self.icscf_uri, "home_domains": [DOMAIN]},
        }
        cfgs = {"hss": (hss_cfg, hss_dir, self.hss_http), "scscf": (scscf_cfg, scscf_dir, self.scscf_http),
                "icscf": (icscf_cfg, icscf_dir, self.icscf_http), "pcscf": (pcscf_cfg, pcscf_dir, self.pcscf_http)}
        for name in self.NFS:
            cfg, d, hp = cfgs[name]
            cfg = merge(cfg, overrides.get(name))
            binary = os.path.join(BUILD_DIR, name, name)
            self.nfs[name] = Nf(name, binary, d, cfg, hp)
        self.hss, self.scscf, self.icscf, self.pcscf = (self.nfs[n] for n in self.NFS)
        if start:
            self.start()

    # --- process control -------------------------------------------------------------------

    def start(self, timeout=20.0):
        try:
            # Every binary must exist before anything starts: a missing NF fails the test.
            for nf in self.nfs.values():
                check(os.access(nf.binary, os.X_OK),
                      "no %s binary at %s (build first; IMS_BUILD_DIR=%s)" % (nf.name, nf.binary, BUILD_DIR))
            self.hss.spawn()
            self._wait(self.hss, "/healthz", timeout)
            for name in ("scscf", "icscf", "pcscf"):
                self.nfs[name].spawn()
            for name in ("scscf", "icscf", "pcscf"):
                self._wait(self.nfs[name], "/healthz", timeout)
            # /readyz: the Diameter peer (HSS) connected, the SIP loop running.
            for name in ("hss", "scscf", "icscf", "pcscf"):
                self._wait(self.nfs[name], "/readyz", timeout)
        except BaseException:
            self.dump()
            self.stop()
            raise
        return self

    def _wait(self, nf, path, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            nf.check_alive(" during start-up")
            last = nf.probe(path)
            if last == 200:
                return
            time.sleep(0.05)
        body = ""
        try:
            body = nf.get(path)[1]
        except (OSError, urllib.error.URLError):
            pass
        raise TestFailure("%s: GET %s not 200 after %.0f s (last %s %r); log tail:\n%s" %
                          (nf.name, path, timeout, last, body, tail(nf.log(), 30)))

    def stop(self):
        for r in self.sipp_runs:
            r.stop()
        codes = {}
        for name in reversed(self.NFS):   # pcscf first, hss last
            nf = self.nfs.get(name)
            if nf is not None and nf.proc is not None:
                codes[name] = nf.stop()
        return codes

    def alive(self):
        """Raises TestFailure naming every NF that is no longer running."""
        dead = [nf for nf in self.nfs.values() if nf.proc is not None and nf.proc.poll() is not None]
        if dead:
            raise TestFailure("; ".join("%s exited with %s; log tail:\n%s" % (
                nf.name, describe_rc(nf.proc.returncode), tail(nf.log(), 30)) for nf in dead))

    def dump(self, lines=25):
        """Prints the tail of each NF log (for failures; the whole logs stay in tmp)."""
        for nf in self.nfs.values():
            if nf.proc is None:
                continue
            print("---- %s (%s) log tail: %s" % (nf.name, "running" if nf.running() else
                                                 describe_rc(nf.proc.returncode), nf.logfile))
            print(tail(nf.log(), lines))
        sys.stdout.flush()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump()
            self.stop()
            return False
        problems = []
        for nf in self.nfs.values():
            if nf.proc is not None and nf.proc.poll() is not None:
                problems.append("%s died during the test (%s)" % (nf.name, describe_rc(nf.proc.returncode)))
        # Once the test's traffic is over, no CSCF may still hold a SIP transaction, nor count
        # work in progress for overload control (a leak there would end in 503 for everything).
        for r in self.sipp_runs:
            r.stop()
        for name in ("pcscf", "icscf", "scscf"):
            nf = self.nfs.get(name)
            if nf is None or not nf.running():
                continue
            deadline = time.monotonic() + 5
            active = work = None
            while time.monotonic() < deadline:
                active = nf.metric("sip_transactions_active")
                work = nf.metric("sip_work_in_progress")
                if not active and not work:
                    break
                time.sleep(0.2)
            if active:
                problems.append("%s still has %s SIP transaction(s) active after the test" % (name, active))
            elif work:
                problems.append("%s still counts %s request(s) as work in progress after the test" % (name, work))
        codes = self.stop()
        for name, rc in codes.items():
            if rc != 0 and not any(p.startswith(name) for p in problems):
                problems.append("%s did not exit 0 on SIGTERM (%s)" % (name, describe_rc(rc)))
        for nf in self.nfs.values():
            text = nf.log()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in text:
                    problems.append("sanitizer report in %s.log:\n%s" % (nf.name, text[text.index(marker):][:3000]))
        if problems:
            self.dump()
            raise TestFailure("; ".join(problems))
        return False

    # --- HSS API ---------------------------------------------------------------------------

    def api(self, method, path, body=None):
        status, payload, _ = http(method, self.hss.base + path, body)
        return status, payload

    def reg_states(self, subscriber_id):
        """{impu: reg_state} of a subscriber, from the HSS API."""
        status, body = self.api("GET", "/api/v1/subscribers/%s" % subscriber_id)
        check(status == 200, "GET subscriber %s: %s %r" % (subscriber_id, status, body))
        return {u["impu"]: u.get("reg_state") for u in body.get("impus", [])}

    def wait_reg_state(self, subscriber_id, impu, state, timeout=10.0):
        return wait_for(lambda: self.reg_states(subscriber_id).get(impu) == state, timeout,
                        what="HSS reg_state of %s = %s" % (impu, state))

    # --- SIPp ------------------------------------------------------------------------------

    def ue(self, name, **kw):
        args = dict(UES.get(name, {}))
        args.update(kw)
        return Ue(name, **args)

    def sipp(self, scenario, ue=None, keys=None, local_port=None, call_id=None, base_cseq=None,
             transport="u1", recv_timeout=10000, remote=None, extra=(), label=None, wait=True,
             timeout=40.0, password=None, netns=None, local_ip="127.0.0.1", edit=None):
        """Runs tests/system/scenarios/<scenario> against the P-CSCF (remote: "host:port" to
        target something else). ue: a Ue (injection file "user;domain;impi", -au IMPI, -ap
        password). keys: -key values (expires defaults to 600). netns: run SIPp in that network
        namespace (ip netns exec) with address local_ip; edit: a function applied to the
        scenario text (e.g. adding ;rport to its Via). Returns a SippRun, finished unless
        wait=False. SIPp exit code 0 = the scenario passed."""
        idx = len(self.sipp_runs) + 1
        label = label or "%02d-%s" % (idx, os.path.splitext(scenario)[0])
        d = os.path.join(self.tmp, "sipp", label)
        os.makedirs(d, exist_ok=True)
        src = os.path.join(SCENARIOS, scenario)
        check(os.path.exists(src), "no scenario %s" % src)
        with open(src) as f:
            text = f.read()
        if ue is not None and (ue.k, ue.op, ue.amf) != (AKA_K, AKA_OP, AKA_AMF):
            text = text.replace("aka_K=0x%s" % AKA_K, "aka_K=0x%s" % ue.k)
            text = text.replace("aka_OP=0x%s" % AKA_OP, "aka_OP=0x%s" % ue.op)
            text = text.replace("aka_AMF=0x%s" % AKA_AMF, "aka_AMF=0x%s" % ue.amf)
        if edit is not None:
            text = edit(text)
        sf = os.path.join(d, scenario)
        with open(sf, "w") as f:
            f.write(text)
        msgfile = os.path.join(d, "messages.log")
        errfile = os.path.join(d, "errors.log")
        outfile = os.path.join(d, "sipp.out")
        cmd = ["ip", "netns", "exec", netns] if netns else []
        cmd += [SIPP, remote or "127.0.0.1:%d" % self.pcscf_sip, "-sf", sf, "-m", "1", "-nostdin",
               "-i", local_ip, "-t", transport, "-recv_timeout", str(recv_timeout),
               "-default_behaviors", "all,-bye",
               "-trace_msg", "-message_file", msgfile, "-trace_err", "-error_file", errfile,
               "-auth_uri", DOMAIN]
        if local_port:
            cmd += ["-p", str(local_port)]
        if call_id:
            cmd += ["-cid_str", call_id]
        if base_cseq:
            cmd += ["-base_cseq", str(base_cseq)]
        if ue is not None:
            csv = os.path.join(d, "ue.csv")
            with open(csv, "w") as f:
                f.write("SEQUENTIAL\n%s;%s;%s;\n" % (ue.user, ue.domain, ue.impi))
            cmd += ["-inf", csv, "-au", ue.impi, "-ap", password or ue.password or "x"]
        k = {"expires": "600"}
        k.update({a: str(b) for a, b in (keys or {}).items()})
        for a, b in k.items():
            cmd += ["-key", a, b]
        cmd += list(extra)
        run = SippRun(cmd, d, label, msgfile, errfile, outfile)
        self.sipp_runs.append(run)
        if wait:
            run.wait(timeout)
            # SIPp 3.6.1 turns aka_K/aka_OP into bytes without a terminator and parses them again
            # as message text: now and then (~2 % of starts) the memory after them holds a '[' and
            # the scenario fails to load ("Syntax error or invalid [keyword]") before sending
            # anything. Such a start is run again; nothing reached the network.
            for _ in range(3):
                if run.rc == 0 or run.messages() or "invalid [keyword]" not in run.errors():
                    break
                print("note: %s: SIPp failed to load the scenario (3.6.1 key parsing), started again" % label)
                for f in (msgfile, errfile):
                    if os.path.exists(f):
                        os.rename(f, f + ".failed-start")
                self.sipp_runs.remove(run)
                run = SippRun(cmd, d, label, msgfile, errfile, outfile)
                self.sipp_runs.append(run)
                run.wait(timeout)
        return run

    def sipp_aka(self, scenario, ue, base_cseq=1, label=None, attempts=3, **kw):
        """self.sipp for a scenario answering an AKA challenge, run again (CSeq continuing, same
        Call-ID and port) when SIPp 3.6.1 answered wrongly because RES had a 0x00 byte."""
        label = label or os.path.splitext(scenario)[0]
        for attempt in range(attempts):
            run = self.sipp(scenario, ue, base_cseq=base_cseq,
                            label=label if attempt == 0 else "%s-retry%d" % (label, attempt), **kw)
            if run.rc == 0 or not sipp_aka_quirk(run, ue):
                return run
            print("note: %s: RES with a 0x00 byte (SIPp 3.6.1 cannot answer it), run again" % run.label)
            base_cseq += len(run.sent("REGISTER"))
        return run

    def as_uas(self, scenario="as_uas.xml", recv_timeout=20000):
        """A SIPp UAS on the AS port (background); wait() it after the trigger."""
        return self.sipp(scenario, remote="127.0.0.1:%d" % self.scscf_sip, local_port=self.as_port,
                         recv_timeout=recv_timeout, wait=False, label="as-%02d" % (len(self.sipp_runs) + 1))
