"""Helpers of the SIP load benchmark (tests/bench/bench_sip.py): benchmark subscribers, the core
on loopback (tests/system/lab.py's Lab with quiet logs and a pre-built HSS database), SIPp load
runs and what they measured, RSS and machine facts.

A SIPp load run writes, in its own directory:
  *_logs.log   one line per call that got a final answer, from the scenario's <log> actions
               (OK / FAIL <code> / REJ <code>, see scenarios/*.xml)
  *_rtt.csv    one line per completed response-time measure (-trace_rtt -rtt_freq 1)
  *_.csv       SIPp's statistics (-trace_stat), of which the last line is used
  *_errors.log SIPp's own account of aborted calls (-trace_err)
The outcome of a call is taken from the scenario's log line; a call created by SIPp without a log
line got no final answer in -recv_timeout (a timeout).

Python 3 standard library only.
"""

import base64
import csv
import glob
import json
import os
import platform
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))

import lab  # noqa: E402  (tests/system/lab.py)

SCENARIOS = os.path.join(HERE, "scenarios")
SIPP = lab.SIPP
DOMAIN = lab.DOMAIN

# One K/OP/AMF for every benchmark subscriber: lab.py's demo keys, which SIPp 3.6.1 can parse
# (no 00/0a/0d/5b/5d bytes, docs/pitfalls.md). Milenage still runs per MAR with a fresh RAND and SQN.
AKA_K, AKA_OP, AKA_AMF = lab.AKA_K, lab.AKA_OP, lab.AKA_AMF


# --- machine ---------------------------------------------------------------------------------

def machine_facts():
    model = lab.harness.cpu_model()
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.1f GiB" % (kb / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    load = "?"
    try:
        load = " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        pass
    sipp = "?"
    try:
        out = subprocess.run([SIPP, "-v"], capture_output=True, text=True, timeout=5).stdout
        sipp = next((line.strip() for line in out.splitlines() if "SIPp" in line), "?")
    except (OSError, subprocess.SubprocessError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "memory": mem, "loadavg at start": load,
            "kernel": platform.release(), "sipp": sipp, "build": lab.BUILD_DIR}


def raise_nofile(want=65536):
    """Raises RLIMIT_NOFILE (inherited by the NFs and SIPp) as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def children_cpu():
    """CPU seconds of this process's finished children (the SIPp runs waited for)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def rss_kib(pid):
    """VmRSS of a process in KiB (from /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def cpu_seconds(pid):
    """utime+stime of a process in seconds (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- subscribers -----------------------------------------------------------------------------

def user_name(i):
    return "alice%d" % i


def subscribers(n):
    """The HSS import document: alice0..alice<n-1>, AKA by default (digest too), one IMPU each."""
    subs = []
    for i in range(n):
        u = user_name(i)
        subs.append({"id": u,
                     "impis": [{"impi": "%s@%s" % (u, DOMAIN), "auth_schemes": ["aka", "digest"],
                                "default_scheme": "aka", "password": "pw-%s" % u,
                                "k": AKA_K, "op": AKA_OP, "amf": AKA_AMF}],
                     "impus": [{"impu": "sip:%s@%s" % (u, DOMAIN), "irs": 1, "service_profile": "default"}],
                     "service_profiles": [{"name": "default"}]})
    return {"subscribers": subs}


def write_injection(path, users, peers=None):
    """SIPp injection file, one line per user: user;domain;impi;[authentication ...] and, with
    peers, the callee as field4. SIPp 3.6.1 takes no [fieldN] inside the scenario's
    [authentication] keyword, but a whole [authentication ...] from the injection file works,
    so the username (IMPI) follows the user."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for n, u in enumerate(users):
            impi = "%s@%s" % (u, DOMAIN)
            line = "%s;%s;%s;[authentication username=%s aka_K=0x%s aka_OP=0x%s aka_AMF=0x%s]" % (
                u, DOMAIN, impi, impi, AKA_K, AKA_OP, AKA_AMF)
            if peers is not None:
                line += ";%s" % peers[n]
            f.write(line + "\n")
    return path


# --- the core --------------------------------------------------------------------------------

def config_keys(binary):
    """The config keys an NF binary knows (from its --config-reference table)."""
    try:
        out = subprocess.run([binary, "--config-reference"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.split("`")[1] for line in out.splitlines() if line.startswith("| `")}


def nested(dotted, value):
    """"a.b.c", v -> {"a": {"b": {"c": v}}}"""
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def bench_overrides(extra=()):
    """Config overrides of the benchmark core. Every simulated UE sends from 127.0.0.1, so the
    P-CSCF's failed-REGISTER limiter per UE address (pcscf.auth_max_failures, when the build has
    it; its help says to turn it off for load tests) would block them all after SIPp's AKA quirk
    failures, and the S-CSCF's per-IMPI lockout would lock users SIPp answered wrongly a few
    times (the control run of 'mem' registers 100 users over and over): both are turned off.
    extra: ("nf.section.key=value", ...) from --set."""
    over = {"hss": {"hss": {"import": None}}}
    notes = []
    for nf, why in (("pcscf", "all SIPp UEs share 127.0.0.1"),
                    ("scscf", "SIPp's wrong AKA answers are not an attack")):
        if "%s.auth_max_failures" % nf in config_keys(os.path.join(lab.BUILD_DIR, nf, nf)):
            over = lab.merge(over, {nf: {nf: {"auth_max_failures": 0}}})
            notes.append("%s.auth_max_failures=0 (%s)" % (nf, why))
    for item in extra:
        key, _, value = item.partition("=")
        nf, _, path = key.partition(".")
        if not path or nf not in lab.Lab.NFS:
            raise ValueError("--set wants nf.section.key=value (nf: hss, scscf, icscf, pcscf): %r" % item)
        v = value
        if value.lower() in ("true", "false"):
            v = value.lower() == "true"
        else:
            try:
                v = int(value)
            except ValueError:
                pass
        over = lab.merge(over, {nf: nested(path, v)})
        notes.append("%s=%s" % (key, value))
    return over, notes


class Core:
    """hss + scscf + icscf + pcscf (lab.Lab) with n_users benchmark subscribers.

    The HSS imports the subscribers once per benchmark run (seed_db); every phase then starts
    a fresh core from a copy of that database (no registration state, no import at start)."""

    def __init__(self, workdir, seed_db, overrides, log_level="error", max_expires=7200):
        self.dir = workdir
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.lab = lab.Lab(workdir, subscribers={"subscribers": []}, log_level=log_level, start=False,
                           min_expires=5, max_expires=max_expires,
                           overrides=overrides)
        shutil.copy(seed_db, self.lab.hss.config["hss"]["database"])
        self.lab.start(timeout=60)

    def pid(self, name):
        return self.lab.nfs[name].proc.pid

    def rss(self, name):
        return rss_kib(self.pid(name))

    def metric(self, nf, name, **labels):
        return getattr(self.lab, nf).metric(name, **labels)

    def stop(self):
        """Stops the core; returns None or what lab.Lab found wrong (an NF died, a transaction
        left, no clean exit on SIGTERM, a sanitizer report)."""
        try:
            self.lab.__exit__(None, None, None)
        except lab.TestFailure as e:
            return str(e)
        return None


def seed_database(workdir, n_users, log=print):
    """Imports n_users subscribers into a fresh HSS database once; returns (path, seconds)."""
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    t0 = time.monotonic()
    core = lab.Lab(workdir, subscribers=subscribers(n_users), log_level="error", start=False)
    core.hss.spawn()
    core._wait(core.hss, "/healthz", max(60.0, n_users / 200.0))
    took = time.monotonic() - t0
    core.stop()
    db = core.hss.config["hss"]["database"]
    # One self-contained file (the WAL folded in) to copy for every phase.
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    out = os.path.join(workdir, "seed.db")
    src = sqlite3.connect(db)
    dst = sqlite3.connect(out)
    src.backup(dst)
    dst.close()
    src.close()
    return out, took


# --- SIPp load runs --------------------------------------------------------------------------

FAILED_STARTS = []    # SIPp runs started again after SIPp 3.6.1's key-parsing failure (Load._failed_start)
MIDRUN_ABORTS = []    # (directory, calls made) of SIPp processes the same failure stopped mid-run


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Load:
    """One SIPp client process at a fixed rate (calls/s) for a number of calls."""

    def __init__(self, workdir, scenario, remote, injection, rate, calls, local_port=None,
                 recv_timeout_ms=5000, keys=None, extra=(), resume=True):
        self.dir = workdir
        self.seg_dir = workdir      # the current SIPp process's directory (see wait: resume)
        self.segments = [(workdir, 0.0)]
        self.resume = resume
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.rate, self.calls = rate, calls
        self.scenario = os.path.join(SCENARIOS, scenario)
        cmd = [SIPP, remote, "-sf", self.scenario, "-inf", injection, "-i", "127.0.0.1",
               "-r", str(rate), "-rp", "1000", "-m", str(calls), "-nostdin",
               "-recv_timeout", str(recv_timeout_ms), "-default_behaviors", "all,-bye",
               "-trace_logs", "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1",
               "-trace_err", "-auth_uri", DOMAIN,
               # Enough simultaneous calls for the rate and the timeouts (the default limit is
               # derived from the rate and the scenario's pauses).
               "-l", str(max(1000, int(rate * (recv_timeout_ms / 1000.0 + 2))))]
        # Always an explicit free port: SIPp's default 5060 may be anyone's on a shared machine.
        cmd += ["-p", str(local_port or lab.free_port())]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, str(v)]
        cmd += list(extra)
        self.cmd = cmd
        self.restarts = 0
        self.t0 = time.monotonic()
        self.rc = None
        self.elapsed = None
        self._spawn()

    def _spawn(self):
        self.started = time.monotonic()
        out = open(os.path.join(self.seg_dir, "sipp.out"), "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=self.seg_dir, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out.close()

    def _failed_start(self):
        """SIPp 3.6.1 turns aka_K/aka_OP into bytes without a terminator and parses them again:
        now and then (about 1 start in 50) the memory after them holds a '[' and SIPp stops at
        its first call with "Syntax error or invalid [keyword]" (lab.py does the same check)."""
        return self._key_parse_abort() and self._created(self.seg_dir) <= 1

    def _key_parse_abort(self):
        if self.proc.poll() is None or self.proc.returncode == 0:
            return False
        found = glob.glob(os.path.join(self.seg_dir, "*_errors.log"))
        text = open(found[0], encoding="utf-8", errors="replace").read() if found else ""
        return "invalid [keyword]" in text

    @staticmethod
    def _created(d):
        found = glob.glob(os.path.join(d, "*_.csv"))
        f = found[0] if found else None
        rows = open(f, encoding="utf-8", errors="replace").read().splitlines() if f else []
        if len(rows) < 2:
            return 0
        row = dict(zip(rows[0].split(";"), rows[-1].split(";")))
        try:
            return int(row.get("TotalCallCreated", 0))
        except ValueError:
            return 0

    def check_start(self, settle=1.0):
        """Waits settle seconds; a start that failed on SIPp's key parsing is made again (up to
        3 times; nothing of it reached the core but at most one request)."""
        time.sleep(settle)
        while self.restarts < 3 and self._failed_start():
            self._restart()
            time.sleep(settle)
        return self

    def _restart(self):
        self.restarts += 1
        old = os.path.join(self.seg_dir, "failed-start-%d" % self.restarts)
        os.makedirs(old)
        for f in glob.glob(os.path.join(self.seg_dir, "*")):
            if os.path.isfile(f):
                shutil.move(f, old)
        FAILED_STARTS.append(self.seg_dir)
        self._spawn()

    def wait(self, timeout):
        while True:
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.rc = "killed"
            if self.restarts < 3 and self._failed_start():
                self._restart()
                continue
            # The same key parsing can stop SIPp in the middle of a run (it parses the
            # [authentication] of the injection file for every message): the calls not made yet
            # are made by a new SIPp process in a sub-directory (resume=False: just reported).
            made = sum(self._created(d) for d, _ in self.segments)
            if self._key_parse_abort() and made < self.calls:
                MIDRUN_ABORTS.append((self.seg_dir, made))
                if self.resume and len(self.segments) < 6:
                    self.seg_dir = os.path.join(self.dir, "resumed-%d" % len(self.segments))
                    os.makedirs(self.seg_dir)
                    i = self.cmd.index("-m")
                    self.cmd[i + 1] = str(self.calls - made)
                    self.segments.append((self.seg_dir, (time.monotonic() - self.t0) * 1000.0))
                    self._spawn()
                    continue
            break
        self.elapsed = time.monotonic() - self.started
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def files(self, pattern):
        """[(path, ms offset of its SIPp process from the first)] over the run's SIPp processes."""
        out = []
        for d, offset in self.segments:
            found = glob.glob(os.path.join(d, pattern))
            if found:
                out.append((found[0], offset))
        return out

    def result(self, aka_check=True):
        return Result(self, aka_check)


class Result:
    """What one Load measured."""

    def __init__(self, load, aka_check=True):
        self.load = load
        self.ok = 0
        self.codes = {}             # final code -> count (failures and rejections)
        self.rej503 = 0             # 503 answers (first or second request)
        self.rej503_retry_after = 0
        self.quirk = 0              # 403 to a RES with a 0x00 byte: SIPp 3.6.1's fault
        self.failed_users = []      # users whose call failed (any reason but the quirk's users too)
        self.ok_users = []
        self.service_route = None
        lines = []
        for logf, _ in load.files("*_logs.log"):
            lines += open(logf, encoding="utf-8", errors="replace").read().splitlines()
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "OK":
                self.ok += 1
                if len(parts) > 1:
                    self.ok_users.append(parts[1])
                if len(parts) > 2 and self.service_route is None:
                    self.service_route = " ".join(parts[2:])
                continue
            if parts[0] not in ("FAIL", "REJ") or len(parts) < 3:
                continue
            code, user = parts[1], parts[2]
            rest = parts[3:]
            self.failed_users.append(user)
            self.codes[code] = self.codes.get(code, 0) + 1
            if code == "503":
                self.rej503 += 1
                if rest and rest[0].isdigit():
                    self.rej503_retry_after += 1
            nonce = next((r for r in rest if len(r) > 30), None)
            if aka_check and code == "403" and nonce:
                try:
                    if 0 in lab.aka_res_of_nonce(nonce, AKA_K, AKA_OP):
                        self.quirk += 1
                except (ValueError, base64.binascii.Error):
                    pass
        stats = self._stats()
        self.created = int(stats.get("TotalCallCreated", 0) or 0)
        self.sipp_ok = int(stats.get("SuccessfulCall(C)", 0) or 0)
        self.sipp_failed = int(stats.get("FailedCall(C)", 0) or 0)
        self.retrans = int(stats.get("Retransmissions(C)", 0) or 0)
        # Calls still in progress when SIPp stopped (only when it stopped mid-run on its own key
        # parsing, MIDRUN_ABORTS): their outcome is unknown, they count nowhere.
        self.cut = int(stats.get("CurrentCall", 0) or 0)
        answered = self.ok + sum(self.codes.values())
        self.timeouts = max(0, self.created - answered - self.cut)
        self.failed = self.created - self.ok - self.cut          # everything that did not succeed
        self.failed_core = self.failed - self.quirk              # not SIPp's own fault
        self.rtt = {}
        stamps = []
        for rttf, offset in load.files("*_rtt.csv"):
            with open(rttf) as f:
                for row in csv.reader(f, delimiter=";"):
                    if len(row) >= 3 and row[0] != "Date_ms":
                        try:
                            self.rtt.setdefault(row[2], []).append(float(row[1]))
                            stamps.append(float(row[0]) + offset)
                        except ValueError:
                            pass
        for v in self.rtt.values():
            v.sort()
        # Successful calls completed per second: from the completion times of the response-time
        # measures (first to last), which leaves out the hold and the drain at the end. When the
        # core cannot keep up, requests queue and this stays below the offered rate even if they
        # all succeed in the end.
        if len(stamps) >= 10 and max(stamps) > min(stamps):
            span = (max(stamps) - min(stamps)) / 1000.0
            self.achieved = (len(stamps) - 1) / span
        else:
            self.achieved = self.ok / load.elapsed if load.elapsed else 0.0

    def _stats(self):
        """The counters of SIPp's last statistics line, summed over the run's SIPp processes."""
        total = {}
        for f, _ in self.load.files("*_.csv"):
            rows = open(f, encoding="utf-8", errors="replace").read().splitlines()
            if len(rows) < 2:
                continue
            for k, v in zip(rows[0].split(";"), rows[-1].split(";")):
                try:
                    total[k] = total.get(k, 0) + int(v)
                except ValueError:
                    pass
        return total

    def fail_ratio(self):
        """Failures that are the core's (SIPp's AKA quirk excluded), over the calls made."""
        judged = self.created - self.cut
        return self.failed_core / judged if judged > 0 else 1.0

    def pct(self, rtd, p):
        return percentile(self.rtt.get(rtd, []), p)

    def summary(self):
        codes = ",".join("%s:%d" % kv for kv in sorted(self.codes.items())) or "-"
        return ("made %d ok %d failed %d (core %d, SIPp quirk %d) timeouts %d codes %s%s" %
                (self.created, self.ok, self.failed, self.failed_core, self.quirk, self.timeouts, codes,
                 " (%d cut by SIPp stopping)" % self.cut if self.cut else ""))


def scenario_waits(path):
    """{element index: what a <recv> there waits for} as SIPp numbers a scenario's elements
    (labels and Reference left out): "the INVITE (send #1)"; None for the <recv response="999">
    our scenarios use to end a failed call."""
    import xml.etree.ElementTree as ET
    out, last, sends = {}, "?", 0
    try:
        elements = [e for e in ET.parse(path).getroot() if e.tag not in ("label", "Reference")]
    except (OSError, ET.ParseError):
        return out
    for i, e in enumerate(elements):
        if e.tag == "send":
            sends += 1
            first = (e.text or "").strip().split(None, 1)
            last = "the %s (send #%d)" % (first[0] if first else "?", sends)
        elif e.tag == "recv":
            out[i] = None if e.get("response") == "999" else last
    return out


def sipp_errors_summary(load):
    """SIPp's aborted calls by reason, from its -trace_err file: e.g. "receive timeout at
    scenario element 2: 583" (the element index is the position in the scenario file, 0-based)."""
    text = "".join(open(f, encoding="utf-8", errors="replace").read() for f, _ in load.files("*_errors.log"))
    if not text:
        return ""
    counts = {}
    waits = scenario_waits(load.scenario)
    for m in re.finditer(r"receive timeout on message [^:]*:(\d+)", text):
        what = waits.get(int(m.group(1)), "element %s" % m.group(1))
        if what is None:
            continue            # the scenario's own end of a failed call (already logged)
        k = "no answer to " + what
        counts[k] = counts.get(k, 0) + 1
    for what in ("Aborting call on unexpected message", "Dead call", "Max Retrans",  # Dead call: a late answer
                 "Unable to send", "Syntax error"):
        c = text.count(what)
        if c:
            counts[what] = c
    return ", ".join("%s: %d" % kv for kv in sorted(counts.items(), key=lambda kv: -kv[1])) or "(none)"


# --- output ----------------------------------------------------------------------------------

def table(headers, rows):
    """A plain-text table (columns padded, numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.rjust(widths[i]) if n and _numeric(c) else c.ljust(widths[i])
                             for i, c in enumerate(r)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _numeric(s):
    try:
        float(s.rstrip("%").replace(",", ""))
        return True
    except ValueError:
        return False


def fmt_ms(v):
    """SIPp 3.6.1 reports response times in whole ms ("<1" for 0)."""
    if v is None:
        return "-"
    return "<1" if v < 0.5 else "%.0f" % v


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=str)
