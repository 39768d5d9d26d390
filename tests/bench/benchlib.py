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
    facts = {"nproc": os.cpu_count(), "cpu": model, "memory": mem, "loadavg at start": load,
             "kernel": platform.release(), "sipp": sipp, "build": lab.BUILD_DIR}
    for name in NET_SYSCTLS:
        facts[name] = sysctl(name)
    return facts


def sysctl(name):
    """A sysctl's value as text from /proc/sys ("?" when unreadable): net.core.rmem_max -> "4194304"."""
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return " ".join(f.read().split())
    except OSError:
        return "?"


NET_SYSCTLS = ("net.core.rmem_max", "net.core.wmem_max", "net.core.rmem_default", "net.core.wmem_default",
               "net.core.netdev_max_backlog")


def machine_line(facts):
    """One line for the top of the output: CPU model, cores, kernel, socket buffer limits."""
    return "machine: %s, %s cores, kernel %s, rmem_max %s, wmem_max %s (rmem_default %s)" % (
        facts.get("cpu"), facts.get("nproc"), facts.get("kernel"), facts.get("net.core.rmem_max"),
        facts.get("net.core.wmem_max"), facts.get("net.core.rmem_default"))


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


# --- the kernel's UDP counters ------------------------------------------------------------

def parse_proc_net_udp(text):
    """The sockets of /proc/net/udp or /proc/net/udp6 text: [{"port", "addr" (hex as printed),
    "inode", "tx_queue", "rx_queue", "drops"}]. drops (the last column) counts the datagrams the
    kernel threw away at that socket (receive buffer full, mostly); rx_queue the bytes waiting."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 13 or ":" not in f[1]:
            continue
        addr, _, port = f[1].rpartition(":")
        tx, _, rx = f[4].partition(":")
        try:
            out.append({"addr": addr, "port": int(port, 16), "tx_queue": int(tx, 16), "rx_queue": int(rx, 16),
                        "inode": int(f[9]), "drops": int(f[-1])})
        except ValueError:
            continue
    return out


def parse_snmp_udp(text):
    """The Udp: counters of /proc/net/snmp text ({"InErrors": n, "RcvbufErrors": n, ...}): a header
    line of names and a line of values, both starting with "Udp:"."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2:
        return {}
    out = {}
    for k, v in zip(rows[0], rows[1]):
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def read_udp_sockets():
    out = []
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                out += parse_proc_net_udp(f.read())
        except OSError:
            pass
    return out


def read_snmp_udp():
    try:
        with open("/proc/net/snmp") as f:
            return parse_snmp_udp(f.read())
    except OSError:
        return {}


SNMP_KEYS = ("InErrors", "RcvbufErrors", "SndbufErrors")


class UdpWatch:
    """Per-socket drops of the UDP sockets bound to some ports, and the system UDP counters, over
    one step; optionally VmRSS of some processes.

    groups: {name: [port, ...]} (e.g. pcscf, icscf, scscf: the NFs' SIP ports; sipp: the load
    generator's). A socket that exists at start counts from its drops then; one that appears
    later (a SIPp process started for the step) from 0. /proc/net/udp is sampled every
    `interval` seconds in a thread, because a SIPp socket is gone once SIPp exits: its figure is
    the last sample before (a lower bound by at most `interval`). The NFs' sockets outlive the
    step: their figure is exact (read again at stop). /proc/net/snmp's Udp counters are the
    whole machine's (other processes too)."""

    def __init__(self, groups, interval=0.25, rss=None, rss_interval=1.0):
        import threading
        self.groups = {g: set(ports) for g, ports in groups.items()}
        self.interval, self.rss_pids, self.rss_interval = interval, dict(rss or {}), rss_interval
        self.base, self.last, self.group_of, self.rxq_max = {}, {}, {}, {}
        self.rss = []            # [(seconds since start, {name: KiB})]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()
        self.snmp0 = read_snmp_udp()
        self.snmp1 = None
        self.seconds = 0.0
        self._sample(first=True)
        self._sample_rss()
        self._thread.start()

    def _group(self, port):
        for g, ports in self.groups.items():
            if port in ports:
                return g
        return None

    def _sample(self, first=False):
        for s in read_udp_sockets():
            g = self._group(s["port"])
            if g is None:
                continue
            key = s["inode"]
            if first:
                self.base[key] = s["drops"]
            self.group_of[key] = g
            self.last[key] = s["drops"]
            self.rxq_max[g] = max(self.rxq_max.get(g, 0), s["rx_queue"])

    def _sample_rss(self):
        if not self.rss_pids:
            return
        row = {}
        for name, pid in self.rss_pids.items():
            try:
                row[name] = rss_kib(pid)
            except (OSError, RuntimeError, ValueError):
                pass
        self.rss.append((time.monotonic() - self.t0, row))

    def _run(self):
        next_rss = time.monotonic() + self.rss_interval
        while not self._stop.wait(self.interval):
            self._sample()
            if time.monotonic() >= next_rss:
                self._sample_rss()
                next_rss += self.rss_interval

    def stop(self):
        """Ends the sampling; returns the step's figures (see result)."""
        self._stop.set()
        self._thread.join()
        self._sample()
        self._sample_rss()
        self.snmp1 = read_snmp_udp()
        self.seconds = time.monotonic() - self.t0
        return self.result()

    def result(self):
        drops = {g: 0 for g in self.groups}
        for key, v in self.last.items():
            drops[self.group_of[key]] += max(0, v - self.base.get(key, 0))
        snmp = {k: self.snmp1.get(k, 0) - self.snmp0.get(k, 0) for k in SNMP_KEYS
                if k in self.snmp0 and self.snmp1 and k in self.snmp1}
        return {"drops": drops, "rx_queue_max": {g: self.rxq_max.get(g, 0) for g in self.groups},
                "udp": snmp, "rss": self.rss, "seconds": round(self.seconds, 2)}


def steady_rss(samples, name, tail=0.5):
    """The median VmRSS (KiB) of name over the last `tail` part of a UdpWatch's samples (the
    steady state of a step: the first part still grows with the transactions Timer J keeps)."""
    if not samples:
        return None
    end = samples[-1][0]
    vals = sorted(r[name] for t, r in samples if t >= end * (1 - tail) and name in r)
    return vals[len(vals) // 2] if vals else None


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


def write_injection(path, users, peers=None, auth=True):
    """SIPp injection file, one line per user: user;domain;impi;[authentication ...] and, with
    peers, the callee as field4. SIPp 3.6.1 takes no [fieldN] inside the scenario's
    [authentication] keyword, but a whole [authentication ...] from the injection file works,
    so the username (IMPI) follows the user. auth=False: no [authentication] (plain REGISTER,
    the Kamailio reference; SIPp then never parses AKA keys)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for n, u in enumerate(users):
            impi = "%s@%s" % (u, DOMAIN)
            line = "%s;%s;%s;[authentication username=%s aka_K=0x%s aka_OP=0x%s aka_AMF=0x%s]" % (
                u, DOMAIN, impi, impi, AKA_K, AKA_OP, AKA_AMF) if auth else "%s;%s;%s;-" % (u, DOMAIN, impi)
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


# --- the Kamailio reference ------------------------------------------------------------------

KAMAILIO_HINT = "apt-get install kamailio (Debian's package; the benchmark never installs it)"

KAMAILIO_CFG = """#!KAMAILIO
# Written by tests/bench/bench_sip.py: the one-hop reference it measures with the same SIPp
# scenarios as the IMS core. Proxy + registrar, usrloc in memory, no authentication, UDP only,
# %(children)d SIP worker(s). REGISTER: save(). INVITE: from a registered caller (From) to a
# registered callee (lookup of the Request-URI), record-routed, t_relay(). In-dialog: loose_route().
debug=-1
log_stderror=yes
children=%(children)d
listen=udp:127.0.0.1:%(port)d
disable_tcp=yes
auto_aliases=no
alias="%(domain)s"
dns=no
rev_dns=no
use_dns_cache=off
server_signature=no
mpath="%(mpath)s"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"

modparam("usrloc", "db_mode", 0)
modparam("usrloc", "hash_size", 14)
modparam("registrar", "max_expires", 7200)

request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK")) {
            if (t_check_trans()) {
                t_relay();
            }
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }
    t_check_trans();
    if (is_method("REGISTER")) {
        if (!save("location")) {
            sl_reply_error();
        }
        exit;
    }
    if (is_method("INVITE")) {
        if (!registered("location", "$fu")) {
            sl_send_reply("403", "Caller Not Registered");
            exit;
        }
        remove_hf("Route");
        record_route();
        if (!lookup("location")) {
            sl_send_reply("404", "Not Found");
            exit;
        }
        t_relay();
        exit;
    }
    sl_send_reply("405", "Method Not Allowed");
}
"""


def kamailio_binary():
    return shutil.which("kamailio")


def kamailio_version(binary):
    try:
        out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("version:")), "?")


def kamailio_modules(binary):
    """The module directory of a Debian-packaged (or /usr/local) Kamailio."""
    for d in glob.glob("/usr/lib/*/kamailio/modules") + ["/usr/lib/kamailio/modules", "/usr/local/lib64/kamailio/modules",
                                                           "/usr/local/lib/kamailio/modules"]:
        if os.path.exists(os.path.join(d, "registrar.so")):
            return d
    return None


def child_pids(pid):
    """pid and all its descendants (from /proc/*/stat)."""
    parent = {}
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parent[int(st.split("/")[2])] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [pid], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


class Kamailio:
    """A Kamailio proxy + registrar on 127.0.0.1:<free port> from a generated kamailio.cfg in
    workdir (KAMAILIO_CFG), in the foreground (-DD -E), until stop()."""

    def __init__(self, workdir, children=1, binary=None, shm_mb=1024, pkg_mb=32):
        self.dir = workdir
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.binary = binary or kamailio_binary()
        self.children = children
        self.port = lab.free_port()
        mpath = kamailio_modules(self.binary)
        if not mpath:
            raise lab.TestFailure("kamailio: no module directory with registrar.so found")
        self.cfg = os.path.join(workdir, "kamailio.cfg")
        with open(self.cfg, "w") as f:
            f.write(KAMAILIO_CFG % {"children": children, "port": self.port, "domain": DOMAIN, "mpath": mpath})
        check = subprocess.run([self.binary, "-c", "-f", self.cfg], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise lab.TestFailure("kamailio -c -f %s failed: %s" % (self.cfg, (check.stderr or check.stdout)[-1500:]))
        self.log_path = os.path.join(workdir, "kamailio.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "-f", self.cfg, "-DD", "-E", "-m", str(shm_mb), "-M", str(pkg_mb),
                                      "-Y", workdir, "-P", os.path.join(workdir, "kamailio.pid")],
                                     cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise lab.TestFailure("kamailio exited at start (%s): %s" % (self.proc.returncode, self.log()[-1500:]))
            if any(s["port"] == self.port for s in read_udp_sockets()):
                # the workers are forked after the socket is bound
                time.sleep(0.5)
                return
            time.sleep(0.1)
        self.stop()
        raise lab.TestFailure("kamailio did not bind 127.0.0.1:%d in 20 s: %s" % (self.port, self.log()[-1500:]))

    def log(self):
        try:
            return open(self.log_path, encoding="utf-8", errors="replace").read()
        except OSError:
            return ""

    def pids(self):
        return child_pids(self.proc.pid)

    def cpu(self):
        total = 0.0
        for p in self.pids():
            try:
                total += cpu_seconds(p)
            except (OSError, IndexError, ValueError):
                pass
        return total

    def alive(self):
        if self.proc.poll() is not None:
            raise lab.TestFailure("kamailio exited (%s): %s" % (self.proc.returncode, self.log()[-1500:]))

    def stop(self):
        """Stops Kamailio; returns None or what went wrong (it had died)."""
        problem = None
        if self.proc.poll() is not None:
            problem = "kamailio had exited (%s)" % self.proc.returncode
        else:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                for p in self.pids():
                    try:
                        os.kill(p, 9)
                    except OSError:
                        pass
                self.proc.wait()
                problem = "kamailio did not stop on SIGTERM in 15 s (killed)"
        return problem


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
        self.local_port = local_port or lab.free_port()
        cmd += ["-p", str(self.local_port)]
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


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def spread(values, fmt="%.0f"):
    """"median (min-max)" of the runs' values ("-" when none; the median alone for one run or
    when they are all equal)."""
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    m = fmt % median(v)
    if len(v) == 1 or min(v) == max(v):
        return m
    return "%s (%s-%s)" % (m, fmt % min(v), fmt % max(v))


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=str)


# --- self-test of the parsers (python3 tests/bench/benchlib.py) ------------------------------

PROC_NET_UDP_SAMPLE = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 3100: 0100007F:8B37 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2032661 2 000000005cbb1217 0
 3792: 0100007F:13C4 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 2031942 2 0000000000fc151a 1234
"""
PROC_NET_UDP6_SAMPLE = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  507: 00000000000000000000000001000000:13C5 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 7
"""
SNMP_SAMPLE = """\
Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 1328535 5884 13127 1351124 13126 1 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
"""


def selftest():
    socks = parse_proc_net_udp(PROC_NET_UDP_SAMPLE)
    assert [(s["port"], s["inode"], s["drops"], s["rx_queue"]) for s in socks] == \
        [(0x8B37, 2032661, 0, 0), (5060, 2031942, 1234, 0x34000)], socks
    s6 = parse_proc_net_udp(PROC_NET_UDP6_SAMPLE)
    assert [(s["port"], s["inode"], s["drops"]) for s in s6] == [(5061, 99, 7)], s6
    snmp = parse_snmp_udp(SNMP_SAMPLE)
    assert (snmp["InErrors"], snmp["RcvbufErrors"], snmp["SndbufErrors"], snmp["InDatagrams"]) == \
        (13127, 13126, 1, 1328535), snmp          # the Udp: lines, not UdpLite:
    assert parse_snmp_udp("") == {} and parse_proc_net_udp("") == []
    assert median([3, 1, 2]) == 2 and median([1, 2, 3, 4]) == 2.5 and median([None]) is None
    assert spread([10, 30, 20]) == "20 (10-30)" and spread([5]) == "5" and spread([]) == "-"
    # The live files parse, and a socket of ours shows up with its drops counter.
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        w = UdpWatch({"me": [port]}, interval=0.05)
        time.sleep(0.1)
        assert w.result()["drops"] == {"me": 0}
        # A full receive buffer: what the kernel then throws away is counted at the socket.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(200):
                tx.sendto(b"x" * 1000, ("127.0.0.1", port))
        r = w.stop()
        assert r["drops"]["me"] > 0 and r["rx_queue_max"]["me"] > 0, r
        assert any(s["port"] == port for s in read_udp_sockets())
        assert "RcvbufErrors" in read_snmp_udp()
    print("benchlib self-test: ok")


if __name__ == "__main__":
    selftest()
