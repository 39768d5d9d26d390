#!/usr/bin/env python3
"""SIP load benchmark of the IMS core: registrations/s, calls/s, memory per registered user and
per call/s, behaviour beyond capacity, and a Kamailio reference on the same machine. A command
run by hand (not a ctest); it prints figures, it asserts nothing about speed.

    python3 tests/bench/bench_sip.py [--quick] [--only reg|call|kamailio|steady|mem|overload]
                                     [--users N] [--runs N] [--steady MIN]
    env IMS_BUILD_DIR (default /work/main/build; use a Release or RelWithDebInfo build)

The four real NFs (hss, scscf, icscf, pcscf) run on 127.0.0.1 through tests/system/lab.py with
log level "error" (logging is not the bottleneck), SIPp 3.6.1 drives them over UDP. The HSS
imports N subscribers alice0..alice<N-1> (AKA + digest, AKA by default) once; every phase, and
every run of a stepped series, then starts a fresh core from a copy of that database.

Phases (issues 6 and 16):
  reg       SIPp AKA registrations (REGISTER -> 401 -> REGISTER with the AKA response -> 200:
            UAR, MAR, UAR, SAR) from distinct users at stepped rates; the highest rate that
            passes, and the registration time (first REGISTER to 200) p50/p99.
  call      registered callers (SIPp UAC) call registered callees (one SIPp UAS every callee
            registered from): INVITE/180/200/ACK/hold/BYE/200 through P-CSCF -> S-CSCF (orig) ->
            S-CSCF (term) -> P-CSCF; the highest calls/s that passes, setup time p50/p99, and
            VmRSS of pcscf and scscf sampled every second (steady state and KiB per call/s).
            The P-CSCF knows a UE by its flow (UDP source address and port it registered from,
            TS 24.229 5.2.3), so every SIPp process of a side is bound to that side's one port:
            the callers register and call from the UAC port, the callees register from the UAS
            port and the UAS listens on it. A step with any P-CSCF refusal (pcscf_refused_total,
            e.g. 403 "Forbidden - Not Registered" from another flow) fails.
  kamailio  the reference (when `kamailio` is on PATH; never installed by the benchmark): a
            one-hop Kamailio proxy + registrar (kamailio.cfg generated into the output
            directory: usrloc in memory, save() without authentication, lookup() + t_relay()
            for INVITEs between registered users, record_route) with 1 SIP worker (children=1,
            the per-core comparison) and 2, driven by the same steps: plain REGISTER -> 200
            (scenarios/reg_plain_load.xml) and the same call scenarios. Our figures are printed
            as a ratio to Kamailio's.
  steady    (--steady MIN, off by default) calls at --steady-rate for MIN minutes on a fresh
            core: VmRSS of pcscf and scscf every 5 s, its growth and RSS per call/s.
  mem       RSS (VmRSS) of scscf and pcscf before and after registering N distinct users (A),
            against a control core (B) taking the same number of registrations for 100 users;
            (A - B) / N per user. scscf_registrations must show the N users.
  overload  registrations at ~2.5x the highest sustainable rate for a while, then a low rate:
            how many got 503 (with Retry-After or not), how many timed out, and whether the low
            rate succeeds again.

Repeats (--runs N, default 3, --quick 1): each stepped series (reg, call, and Kamailio's) runs N
times, each run on a fresh core and stopping at its first failing step, interleaved (run 1 of
every series, then run 2, ...: a slow minute of the shared machine hits one run of each series,
not every run of one); the tables give per step the median and the spread (min-max) over the
runs, and the highest passing rate as a median and min-max over the runs.

A step passes when the core's failures are under 0.1 %, it completed at least 85 % of the offered
rate per second, the P-CSCF refused nothing, and the kernel dropped no datagram at OUR SIP sockets:
the `drops` column of /proc/net/udp(6) for the P-CSCF's, I-CSCF's and S-CSCF's SIP ports (a full
receive buffer; otherwise only visible later as SIPp timeouts) is read before and after every
step. SIPp's own sockets are counted apart (drops there are the load generator's problem, they do
not fail the step but are noted), and so are the machine's UDP counters (/proc/net/snmp:
InErrors, RcvbufErrors, SndbufErrors; the whole machine, other processes included).

SIPp 3.6.1's own faults are counted apart, never hidden: it computes a wrong AKA response when
RES holds a 0x00 byte (~3 % of challenges; the S-CSCF rightly answers 403). The benchmark
recomputes RES from each refused nonce (lab.aka_res_of_nonce) and reports those as "SIPp quirk";
the failure rate that decides a step excludes them. The machine is shared: absolute figures
depend on what else runs; the output starts with the machine (CPU, cores, kernel, socket buffer
limits) and the load average.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
from benchlib import Core, Load, fmt_ms, lab, median, spread, table  # noqa: E402

FAIL_LIMIT = 0.001        # a step passes with under 0.1 % failures (the core's, not SIPp's quirk)
KEEP_UP = 0.85            # ... and when the core completed at least 85 % of the offered rate per second
                          # (below that requests queue: a longer step would turn them into timeouts;
                          # ~3 % of registrations are SIPp's quirk and do not complete)
NFS = ("pcscf", "icscf", "scscf", "hss")
RSS_NFS = ("pcscf", "scscf")
IDLE_S = 38               # mem: idle after the registrations (Timer J 32 s + the NFs' 5 s heap housekeeping)


def fmt_n(v):
    return "?" if v is None else "%d" % v


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def per_run(values, fmt="%d"):
    """The runs' values side by side ("0" when all are 0): for counts that must be 0."""
    if not any(values):
        return "0"
    return ",".join(fmt % v for v in values)


class Ours:
    """The IMS core (hss, scscf, icscf, pcscf) as the target of a series."""
    kind = "ims"
    reg_scenario, aka = "reg_aka_load.xml", True
    cpu_names = NFS
    sock_names = ("pcscf", "icscf", "scscf")
    rss_names = RSS_NFS

    def __init__(self, bench, name):
        self.core = bench.core(name)
        self.lab = self.core.lab
        self.sip = "127.0.0.1:%d" % self.lab.pcscf_sip
        self.ports = self.lab.ports

    def sockets(self):
        return {"pcscf": [self.lab.pcscf_sip], "icscf": [self.lab.icscf_sip], "scscf": [self.lab.scscf_sip]}

    def rss_pids(self):
        return {n: self.core.pid(n) for n in RSS_NFS}

    def cpu(self):
        return {n: benchlib.cpu_seconds(self.core.pid(n)) for n in NFS}

    def alive(self):
        self.lab.alive()

    @staticmethod
    def route(reg_results):
        return next((r.service_route for r in reg_results if r.service_route), None)

    def refused(self):
        return Bench.refused(self.core)

    def stop(self, bench, phase):
        bench.stop_core(self.core, phase)


class Kam:
    """The Kamailio reference (benchlib.Kamailio) as the target of a series."""
    kind = "kamailio"
    reg_scenario, aka = "reg_plain_load.xml", False
    cpu_names = ("kamailio",)
    sock_names = ("kamailio",)
    rss_names = ()

    def __init__(self, bench, name, children):
        log("starting kamailio (children=%d) for '%s'" % (children, name))
        self.k = benchlib.Kamailio(os.path.join(bench.out, name, "kamailio"), children=children)
        self.sip = "127.0.0.1:%d" % self.k.port
        self.ports = lab.Ports()

    def sockets(self):
        return {"kamailio": [self.k.port]}

    def rss_pids(self):
        return {}

    def cpu(self):
        return {"kamailio": self.k.cpu()}

    def alive(self):
        self.k.alive()

    def route(self, reg_results):
        # the call scenario's second Route entry: Kamailio itself (removed for initial requests)
        return "<sip:127.0.0.1:%d;lr>" % self.k.port

    def refused(self):
        return {}

    def stop(self, bench, phase):
        problem = self.k.stop()
        if problem:
            bench.notes.append("%s: %s (see %s)" % (phase, problem, self.k.log_path))


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.out = args.out or "/tmp/ims-bench-%s" % time.strftime("%Y%m%d-%H%M%S")
        os.makedirs(self.out, exist_ok=True)
        self.n_users = args.users or (1000 if self.quick else 100000)
        self.step_s = args.step or (4 if self.quick else 12)
        self.runs = max(1, args.runs or (1 if self.quick else 3))
        self.reg_rates = args.reg_rates or ([100, 200] if self.quick else [100, 200, 400, 600, 800, 1000, 1200, 1500, 2000])
        self.call_rates = args.call_rates or ([50, 100] if self.quick else [50, 100, 200, 300, 500, 700, 1000])
        self.hold_ms = 500 if self.quick else 1000
        self.pairs = max(10, min(self.n_users // 2, args.pairs or (200 if self.quick else 2000)))
        self.kamailio = None if args.no_kamailio else benchlib.kamailio_binary()
        self.kam_children = args.kamailio_children or ([1] if self.quick else [1, 2])
        self.kam_extend = args.kamailio_extend if args.kamailio_extend is not None else (0 if self.quick else 4)
        self.best_reg = None
        self.results = {}
        self.notes = []
        self.seed_db = None
        self.cursor = 0          # next user for the registration steps (distinct users, cycling)
        self.overrides, self.config_notes = benchlib.bench_overrides(args.set or ())

    # --- helpers ------------------------------------------------------------------------------

    def core(self, name, max_expires=7200):
        log("starting hss, scscf, icscf, pcscf for '%s'" % name)
        return Core(os.path.join(self.out, name, "core"), self.seed_db, self.overrides, max_expires=max_expires)

    def users(self, count):
        """count users from the pool, continuing after the last ones handed out (cycling)."""
        out = [benchlib.user_name((self.cursor + i) % self.n_users) for i in range(count)]
        self.cursor = (self.cursor + count) % self.n_users
        return out

    @staticmethod
    def refused(core):
        """{reason: count} of the P-CSCF's identity/routing refusals (pcscf_refused_total{reason},
        issue 10: not_registered, other_flow, ...); {} when there were none."""
        out = {}
        try:
            for (name, labels), v in core.lab.pcscf.metrics().items():
                if name == "pcscf_refused_total" and v:
                    reason = dict(labels).get("reason", "?")
                    out[reason] = out.get(reason, 0) + int(v)
        except (lab.TestFailure, OSError):
            pass
        return out

    @staticmethod
    def fmt_refused(refused):
        return ",".join("%s:%d" % kv for kv in sorted(refused.items())) or "none"

    LIMITERS = (("pcscf", "pcscf_register_blocked_total"), ("pcscf", "pcscf_auth_lockouts_total"),
                ("scscf", "scscf_auth_lockouts_total"), ("scscf", "scscf_register_locked_total"))

    def stop_core(self, core, phase):
        """Notes the brute-force limiters that fired (they would turn load into 403s) and what
        lab.Lab found wrong at stop."""
        try:
            fired = ["%s=%d" % (m, v) for nf, m in self.LIMITERS for v in [core.metric(nf, m)] if v]
        except (lab.TestFailure, OSError):
            fired = []
        if fired:
            self.notes.append("%s: authentication limiters fired: %s" % (phase, ", ".join(fired)))
        refused = self.refused(core)
        if refused:
            self.notes.append("%s: the P-CSCF refused requests (pcscf_refused_total): %s" %
                              (phase, self.fmt_refused(refused)))
        problem = core.stop()
        if problem:
            self.notes.append("%s core at stop: %s" % (phase, problem[:500]))

    @staticmethod
    def other_codes(res):
        """Final codes of failed registrations other than 503 and SIPp's quirk 403s."""
        codes = dict(res.codes)
        codes.pop("503", None)
        codes["403"] = codes.get("403", 0) - res.quirk
        return ",".join("%s:%d" % kv for kv in sorted(codes.items()) if kv[1] > 0) or "-"

    @staticmethod
    def reasons(res, rate, drops, refused):
        """Why a step fails ([] when it passes): failures, queueing, refused, drops (the kernel
        dropped datagrams at one of the target's SIP sockets)."""
        out = []
        if res.fail_ratio() >= FAIL_LIMIT:
            out.append("failures")
        if res.achieved < KEEP_UP * rate:
            out.append("queueing")
        if refused:
            out.append("refused")
        if any(drops.values()):
            out.append("drops")
        return out

    @staticmethod
    def heap(core, nf):
        """process_heap_inuse_bytes of an NF in KiB (None when it does not export it)."""
        try:
            v = core.metric(nf, "process_heap_inuse_bytes")
        except (lab.TestFailure, OSError):
            return None
        return None if v is None else v / 1024.0

    def cpu(self, core):
        c = {n: benchlib.cpu_seconds(core.pid(n)) for n in NFS}
        c["sipp"] = benchlib.children_cpu()
        return c

    @staticmethod
    def cpu_pct(before, after, seconds):
        return "/".join("%.0f" % (100.0 * (after[n] - before[n]) / seconds) for n in NFS + ("sipp",)) if seconds else "-"

    @staticmethod
    def target_cpu(target, uas=None):
        c = target.cpu()
        c["sipp"] = benchlib.children_cpu()
        if uas is not None:
            try:
                c["sipp"] += benchlib.cpu_seconds(uas.pid)
            except (OSError, IndexError, ValueError):
                pass
        return c

    def register(self, sip, users, rate, d, local_port=None, expires=3600, rounds=4,
                 scenario="reg_aka_load.xml", aka=True):
        """Registers users (AKA, or plain with scenario reg_plain_load.xml and aka=False) from
        local_port at sip ("127.0.0.1:port"); users that failed are tried again (SIPp's RES quirk
        hits ~3 % of challenges). Returns (set of registered users, [Result per round])."""
        done, results, todo = set(), [], list(users)
        # Every round from the same port: a UE tries again from its own address (a new port
        # would leave the P-CSCF a second binding for a user whose late 200 did register it).
        local_port = local_port or lab.free_port()
        for r in range(rounds):
            if not todo:
                break
            inj = benchlib.write_injection(os.path.join(d, "users-%d.csv" % r), todo, auth=aka)
            r_rate = max(20, rate >> r)     # retries at half the rate each round
            load = Load(os.path.join(d, "round%d" % r), scenario, sip,
                        inj, r_rate, len(todo), local_port=local_port, keys={"expires": expires})
            res = load.wait(len(todo) / r_rate + 60).result(aka_check=aka)
            results.append(res)
            done.update(res.ok_users)
            todo = [u for u in todo if u not in done]
        return done, results

    def measure(self, target, make_load, timeout, sipp_ports, uas=None, rss=False):
        """Runs one step: the load make_load() starts, with the kernel's UDP counters of the
        target's sockets and SIPp's (and VmRSS of the target's rss_pids when rss) watched around
        it. Returns (Load, Result, UdpWatch figures, cpu% {name: pct})."""
        groups = dict(target.sockets())
        groups["sipp"] = list(sipp_ports)
        watch = benchlib.UdpWatch(groups, rss=target.rss_pids() if rss else None)
        c0 = self.target_cpu(target, uas)
        try:
            load = make_load()
            load.wait(timeout)
        finally:
            udp = watch.stop()
        c1 = self.target_cpu(target, uas)
        res = load.result(aka_check=target.aka)
        target.alive()
        secs = load.elapsed or 0
        cpu = {n: (100.0 * (c1[n] - c0[n]) / secs if secs else None) for n in c1}
        return load, res, udp, cpu

    def step_record(self, rate, res, udp, cpu, rtd, refused=None):
        drops_ours = {g: v for g, v in udp["drops"].items() if g != "sipp"}
        why = self.reasons(res, rate, drops_ours, refused)
        return {"rate": rate, "achieved": res.achieved, "made": res.created, "ok": res.ok, "failed": res.failed,
                "failed_core": res.failed_core, "quirk": res.quirk, "timeouts": res.timeouts, "rej503": res.rej503,
                "codes": dict(res.codes), "other": self.other_codes(res), "fail_ratio": res.fail_ratio(),
                "p50": res.pct(rtd, 50), "p99": res.pct(rtd, 99), "cpu": cpu,
                "drops": drops_ours, "sipp_drops": udp["drops"].get("sipp", 0), "rx_queue_max": udp["rx_queue_max"],
                "udp": udp["udp"], "refused": refused or {}, "reasons": why, "pass": not why}

    def step_note(self, series, st, load):
        if not st["pass"]:
            self.notes.append("%s %d/s: failed (%s); SIPp's aborted calls: %s" % (
                series, st["rate"], ",".join(st["reasons"]), benchlib.sipp_errors_summary(load)))
        if st["drops"] and any(st["drops"].values()):
            self.notes.append("%s %d/s: the kernel dropped datagrams at the target's SIP sockets (/proc/net/udp drops): %s" % (
                series, st["rate"], ", ".join("%s %d" % kv for kv in st["drops"].items() if kv[1])))
        if st["sipp_drops"]:
            self.notes.append("%s %d/s: the kernel dropped %d datagrams at SIPp's sockets: the load generator did not "
                              "keep up (its figures at this step are suspect)" % (series, st["rate"], st["sipp_drops"]))

    def stepped_rates(self, rates, extend):
        """The configured rates, then (extend > 0, the reference) up to extend more at x1.5 each
        while the run still passes (a reference that passes every step gives no ratio)."""
        for r in rates:
            yield r
        last = rates[-1] if rates else 100
        for _ in range(extend):
            last = int(round(last * 1.5 / 50.0) * 50)
            yield last

    @staticmethod
    def summarise(runs):
        """The highest passing rate over the runs: median, min, max, per run; capped when a run
        passed its last step (its figure is a lower bound)."""
        bests = [r["best"] or 0 for r in runs]
        capped = any(r["steps"] and r["steps"][-1]["pass"] for r in runs)
        return {"median": median(bests) if runs else None, "min": min(bests) if runs else None,
                "max": max(bests) if runs else None, "per_run": [r["best"] for r in runs], "capped": capped}

    # --- 1. registrations ---------------------------------------------------------------------

    def reg_run(self, make_target, series, run, extend=0):
        """One run of the stepped registration series on a fresh target: {"steps": [...], "best": rate}."""
        self.cursor = 0
        target = make_target(run)
        steps, best = [], None
        try:
            for rate in self.stepped_rates(self.reg_rates, extend):
                n = rate * self.step_s
                d = os.path.join(self.out, series, "run%d" % (run + 1), "r%d" % rate)
                os.makedirs(d, exist_ok=True)
                inj = benchlib.write_injection(os.path.join(d, "users.csv"), self.users(n), auth=target.aka)
                log("%s run %d/%d: %d/s for %d s (%d registrations)" % (series, run + 1, self.runs, rate, self.step_s, n))
                port = lab.free_port()
                load, res, udp, cpu = self.measure(
                    target, lambda: Load(os.path.join(d, "sipp"), target.reg_scenario, target.sip, inj, rate, n,
                                         local_port=port, keys={"expires": 3600}),
                    self.step_s + 90, [port])
                st = self.step_record(rate, res, udp, cpu, "reg")
                steps.append(st)
                log("%s %d/s: %s; drops %s, SIPp %d, RcvbufErrors %s" % (
                    series, rate, res.summary(), st["drops"], st["sipp_drops"], st["udp"].get("RcvbufErrors")))
                self.step_note("%s (run %d)" % (series, run + 1), st, load)
                if not st["pass"]:
                    break
                best = rate
        finally:
            target.stop(self, "%s run %d" % (series, run + 1))
        return {"steps": steps, "best": best}

    # --- 2. calls -----------------------------------------------------------------------------

    def call_setup(self, target, base):
        """Registers the callee and caller pairs and starts the SIPp UAS; returns
        (uac_port, uas_port, uas Popen, injection file, route)."""
        callers = [benchlib.user_name(i) for i in range(self.pairs)]
        callees = [benchlib.user_name(self.pairs + i) for i in range(self.pairs)]
        # One flow per side (the P-CSCF binds an identity to the exact UDP address:port it
        # registered from): the callers register and call from uac_port, the callees register
        # from uas_port, where the UAS then answers (the P-CSCF sends to that flow).
        uac_port, uas_port = target.ports.get(), target.ports.get()
        log("call: registering %d callees from the UAS port %d and %d callers from the UAC port %d "
            "(the port they call from)" % (self.pairs, uas_port, self.pairs, uac_port))
        kw = {"scenario": target.reg_scenario, "aka": target.aka}
        got_b, _ = self.register(target.sip, callees, 200, os.path.join(base, "reg-callees"), local_port=uas_port, **kw)
        got_a, res_a = self.register(target.sip, callers, 200, os.path.join(base, "reg-callers"), local_port=uac_port, **kw)
        if len(got_a) < self.pairs or len(got_b) < self.pairs:
            raise lab.TestFailure("call: only %d/%d callers and %d/%d callees registered" %
                                  (len(got_a), self.pairs, len(got_b), self.pairs))
        route = target.route(res_a)
        if not route:
            raise lab.TestFailure("call: no Service-Route in the callers' 200 (see %s)" % base)
        inj = benchlib.write_injection(os.path.join(base, "pairs.csv"), callers, peers=callees, auth=target.aka)
        os.makedirs(os.path.join(base, "uas"), exist_ok=True)
        uas_out = open(os.path.join(base, "uas", "sipp.out"), "wb")
        uas = lab.subprocess.Popen([benchlib.SIPP, "-sf", os.path.join(benchlib.SCENARIOS, "call_uas_load.xml"),
                                    "-i", "127.0.0.1", "-p", str(uas_port), "-nostdin", "-trace_err",
                                    "-default_behaviors", "all,-bye", "-l", "100000"],
                                   cwd=os.path.join(base, "uas"), stdout=uas_out, stderr=lab.subprocess.STDOUT,
                                   stdin=lab.subprocess.DEVNULL)
        uas_out.close()
        time.sleep(0.5)
        return uac_port, uas_port, uas, inj, route

    def call_load(self, target, d, inj, rate, n, uac_port, route):
        return Load(d, "call_uac_load.xml", target.sip, inj, rate, n, local_port=uac_port, keys={"route": route},
                    extra=["-d", str(self.hold_ms)])

    @staticmethod
    def rss_now(target):
        out = {}
        for name, pid in target.rss_pids().items():
            try:
                out[name] = benchlib.rss_kib(pid)
            except (OSError, RuntimeError):
                pass
        return out

    def call_run(self, make_target, series, run, extend=0):
        """One run of the stepped call series on a fresh target: {"steps": [...], "best": rate,
        "refused": {reason: count}}."""
        refused_total = {}
        target = make_target(run)
        base = os.path.join(self.out, series, "run%d" % (run + 1))
        uas = None
        steps, best = [], None
        try:
            uac_port, uas_port, uas, inj, route = self.call_setup(target, base)
            rss0 = self.rss_now(target)
            for rate in self.stepped_rates(self.call_rates, extend):
                n = rate * self.step_s
                log("%s run %d/%d: %d/s for %d s (%d calls, hold %d ms)" % (
                    series, run + 1, self.runs, rate, self.step_s, n, self.hold_ms))
                if uas.poll() is not None:
                    raise lab.TestFailure("call: the SIPp UAS exited (%s), see %s" % (uas.returncode, base))
                refused0 = target.refused()
                load, res, udp, cpu = self.measure(
                    target, lambda: self.call_load(target, os.path.join(base, "r%d" % rate), inj, rate, n,
                                                   uac_port, route),
                    self.step_s + self.hold_ms / 1000.0 + 90, [uac_port, uas_port], uas=uas, rss=True)
                refused1 = target.refused()
                step_refused = {k: v - refused0.get(k, 0) for k, v in refused1.items() if v > refused0.get(k, 0)}
                for k, v in step_refused.items():
                    refused_total[k] = refused_total.get(k, 0) + v
                st = self.step_record(rate, res, udp, cpu, "setup", step_refused)
                st["rss_start"] = rss0
                st["rss_samples"] = udp["rss"]
                st["rss"] = {nf: benchlib.steady_rss(udp["rss"], nf) for nf in target.rss_names}
                st["rss_per_cps"] = {nf: (st["rss"][nf] - rss0[nf]) / float(rate)
                                     for nf in target.rss_names if st["rss"].get(nf) and nf in rss0}
                steps.append(st)
                log("%s %d/s: %s; P-CSCF refusals: %s; drops %s, SIPp %d, RcvbufErrors %s; RSS %s KiB" % (
                    series, rate, res.summary(), self.fmt_refused(step_refused), st["drops"], st["sipp_drops"],
                    st["udp"].get("RcvbufErrors"), st["rss"]))
                self.step_note("%s (run %d)" % (series, run + 1), st, load)
                if not st["pass"]:
                    break
                best = rate
        finally:
            if uas is not None and uas.poll() is None:
                uas.kill()
                uas.wait()
            target.stop(self, "%s run %d" % (series, run + 1))
        return {"steps": steps, "best": best, "refused": refused_total}

    # --- the stepped series, interleaved ------------------------------------------------------

    def phase_stepped(self, phases):
        """The stepped series (ours: reg, call; the Kamailio reference: reg and call per worker
        count), run after run: run 1 of every series, then run 2, ... On a shared machine a
        slow minute then hits one run of each series, not every run of one of them."""
        plan = []
        if "reg" in phases:
            plan.append(("reg", "reg", lambda run: Ours(self, "reg/run%d" % (run + 1)), 0))
        if "call" in phases:
            plan.append(("call", "call", lambda run: Ours(self, "call/run%d" % (run + 1)), 0))
        if "kamailio" in phases:
            if not self.kamailio:
                why = "--no-kamailio" if self.args.no_kamailio else "kamailio is not on PATH"
                self.results["kamailio"] = {"skipped": why}
                log("kamailio comparison skipped (%s)" % why)
            else:
                self.results["kamailio"] = {"binary": self.kamailio, "version": benchlib.kamailio_version(self.kamailio),
                                            "series": {}}
                # --only kamailio: both series; with --only reg or --only call too: only those
                kinds = [k for k in ("reg", "call") if k in (self.args.only or ())] or ["reg", "call"]
                for children in self.kam_children:
                    for kind in kinds:
                        series = "kamailio%d-%s" % (children, kind)
                        plan.append((series, kind, (lambda run, s=series, c=children: Kam(self, "%s/run%d" % (s, run + 1), c)),
                                     self.kam_extend))
        runs = {series: [] for series, _, _, _ in plan}
        failed = False
        for run in range(self.runs):
            for series, kind, make, extend in plan:
                try:
                    if kind == "reg":
                        runs[series].append(self.reg_run(make, series, run, extend))
                    else:
                        runs[series].append(self.call_run(make, series, run, extend))
                except lab.TestFailure as e:
                    failed = True
                    self.notes.append("%s run %d: could not be measured: %s" % (series, run + 1, str(e)[:1000]))
                    log("%s run %d FAILED: %s" % (series, run + 1, str(e)[:1000]))
        for series, kind, _, _ in plan:
            r = {"runs": runs[series], "best": self.summarise(runs[series])}
            if kind == "call":
                r["pairs"] = self.pairs
                r["refused"] = {}
                for one in runs[series]:
                    for k, v in one["refused"].items():
                        r["refused"][k] = r["refused"].get(k, 0) + v
            if series in ("reg", "call"):
                self.results[series] = r
            else:
                r["children"] = int(series[len("kamailio"):].split("-")[0])
                self.results["kamailio"]["series"][series] = r
        if "reg" in self.results and self.results["reg"]["best"]["median"]:
            self.best_reg = int(self.results["reg"]["best"]["median"])
        return failed

    # --- steady call load (memory per call/s) -------------------------------------------------

    def phase_steady(self):
        minutes = self.args.steady
        call = self.results.get("call")
        rate = self.args.steady_rate or (
            int(call["best"]["median"] * 0.5) if call and call["best"]["median"] else 100)
        secs = int(minutes * 60)
        target = Ours(self, "steady")
        base = os.path.join(self.out, "steady")
        uas = None
        try:
            uac_port, uas_port, uas, inj, route = self.call_setup(target, base)
            rss0 = self.rss_now(target)
            log("steady: %d calls/s for %d s (hold %d ms), VmRSS of %s every 5 s" %
                (rate, secs, self.hold_ms, "/".join(RSS_NFS)))
            groups = dict(target.sockets())
            groups["sipp"] = [uac_port, uas_port]
            watch = benchlib.UdpWatch(groups, rss=target.rss_pids(), rss_interval=5.0)
            try:
                load = self.call_load(target, os.path.join(base, "load"), inj, rate, rate * secs, uac_port, route)
                load.wait(secs + self.hold_ms / 1000.0 + 120)
            finally:
                udp = watch.stop()
            res = load.result(aka_check=False)
            target.alive()
            samples = udp["rss"]
            steady = {nf: benchlib.steady_rss(samples, nf) for nf in RSS_NFS}
            # growth over the second half (KiB/min): ~0 at a steady state; a leak keeps growing
            growth = {}
            half = [(t, r) for t, r in samples if t >= samples[-1][0] / 2] if samples else []
            for nf in RSS_NFS:
                pts = [(t, r[nf]) for t, r in half if nf in r]
                if len(pts) >= 2 and pts[-1][0] > pts[0][0]:
                    growth[nf] = (pts[-1][1] - pts[0][1]) / ((pts[-1][0] - pts[0][0]) / 60.0)
            timeline = []
            next_t = 0.0
            for t, r in samples:
                if t >= next_t:
                    timeline.append((round(t), r))
                    next_t += 60.0 if secs >= 180 else 15.0
            if samples and timeline[-1][0] != round(samples[-1][0]):
                timeline.append((round(samples[-1][0]), samples[-1][1]))
            self.results["steady"] = {
                "rate": rate, "seconds": secs, "made": res.created, "ok": res.ok, "failed": res.failed,
                "fail_ratio": res.fail_ratio(), "achieved": res.achieved,
                "p99": res.pct("setup", 99), "rss_start": rss0, "rss_steady": steady, "growth_kib_per_min": growth,
                "rss_per_cps": {nf: (steady[nf] - rss0[nf]) / float(rate) for nf in RSS_NFS
                                if steady.get(nf) and nf in rss0},
                "timeline": timeline, "drops": {g: v for g, v in udp["drops"].items() if g != "sipp"},
                "sipp_drops": udp["drops"].get("sipp", 0), "udp": udp["udp"], "samples": samples,
                "reasons": self.reasons(res, rate, {g: v for g, v in udp["drops"].items() if g != "sipp"}, None)}
            log("steady: %s; RSS %s KiB" % (res.summary(), steady))
        finally:
            if uas is not None and uas.poll() is None:
                uas.kill()
                uas.wait()
            target.stop(self, "steady")

    # --- 3. memory ----------------------------------------------------------------------------

    def phase_mem(self):
        """Memory per registered user as an A/B measurement on two fresh cores at the same rate:
        A registers n distinct users, B makes the same number of registrations cycling over 100
        users (same transactions, Cx and reg-event traffic; no new registration state). RSS is a
        high-water mark of the heap: sofia-sip keeps every finished transaction for Timer J (32 s,
        RFC 3261 17.2.2), which at a few hundred/s costs hundreds of MB that glibc keeps after it
        is freed, so A's growth alone overstates the cost of a user. (A - B) / users is the
        state; A / users is printed too (an upper bound)."""
        n = self.n_users
        rate = self.args.mem_rate or (int(self.best_reg * 0.5) if self.best_reg else (200 if self.quick else 300))
        expires = int(2 * n / rate) + 3600
        out = {"users": n, "rate": rate}
        for kind in ("distinct", "control"):
            core = self.core("mem-" + kind, max_expires=14400)
            try:
                # The heap gauges appear with the NFs' first housekeeping pass (every 5 s).
                deadline = time.monotonic() + 7.0
                while time.monotonic() < deadline and self.heap(core, "scscf") is None:
                    time.sleep(0.5)
                before = {nf: core.rss(nf) for nf in NFS}
                heap_before = {nf: self.heap(core, nf) for nf in NFS}
                t0 = time.monotonic()
                d = os.path.join(self.out, "mem", kind)
                if kind == "distinct":
                    log("mem A: registering %d distinct users at %d/s" % (n, rate))
                    users = [benchlib.user_name(i) for i in range(n)]
                    done, results = self.register("127.0.0.1:%d" % core.lab.pcscf_sip, users, rate, d,
                                                  expires=expires)
                    registered = len(done)
                else:
                    log("mem B (control): %d registrations of 100 users at %d/s" % (n, rate))
                    users = [benchlib.user_name(i % min(100, n)) for i in range(n)]
                    inj = benchlib.write_injection(os.path.join(d, "users.csv"), users)
                    load = Load(os.path.join(d, "sipp"), "reg_aka_load.xml", "127.0.0.1:%d" % core.lab.pcscf_sip,
                                inj, rate, n, keys={"expires": expires})
                    results = [load.wait(n / rate + 90).result()]
                    registered = results[0].ok
                took = time.monotonic() - t0
                time.sleep(1.0)
                after = {nf: core.rss(nf) for nf in NFS}
                # Then idle past Timer J (32 s) and the NFs' heap housekeeping (5 s): what is
                # left in use is the state (process_heap_inuse_bytes, where the NF exports it).
                idle = None
                if not self.quick:
                    log("mem %s: idle %d s (finished transactions freed)" % (kind, IDLE_S))
                    time.sleep(IDLE_S)
                    idle = {nf: {"rss": core.rss(nf), "heap": self.heap(core, nf)} for nf in NFS}
                gauge = core.metric("scscf", "scscf_registrations")
                bindings = core.metric("pcscf", "pcscf_bindings")
                r0 = results[0]
                out[kind] = {"registrations_ok": registered, "scscf_registrations": gauge, "pcscf_bindings": bindings,
                             "seconds": took, "before": before, "after": after,
                             "heap_before": heap_before, "idle": idle,
                             "quirk": sum(r.quirk for r in results), "first_pass_failed": r0.failed_core,
                             "first_pass_done_per_s": r0.achieved}
                log("mem %s: %d ok in %.0f s, scscf_registrations %s, RSS scscf %d -> %d KiB, pcscf %d -> %d KiB" %
                    (kind, registered, took, gauge, before["scscf"], after["scscf"], before["pcscf"], after["pcscf"]))
                if kind == "distinct":
                    if gauge is None or int(gauge) != registered:
                        self.notes.append("mem: scscf_registrations=%s but SIPp saw %d users registered (a 200 "
                                          "after SIPp's timeout still registers)" % (gauge, registered))
                    if registered < n:
                        self.notes.append("mem: %d of %d users could not be registered after retries" %
                                          (n - registered, n))
                if r0.failed_core > FAIL_LIMIT * n:
                    self.notes.append("mem %s: %d of %d failed in the first pass at %d/s (the core did not keep up: "
                                      "the A/B comparison is weaker; try --mem-rate lower)" %
                                      (kind, r0.failed_core, n, rate))
            finally:
                self.stop_core(core, "mem-" + kind)
        self.results["mem"] = out

    # --- 4. overload --------------------------------------------------------------------------

    def phase_overload(self):
        base = self.best_reg or self.args.base_rate or (200 if self.quick else 400)
        high, low = int(base * 2.5), max(20, int(base * 0.25))
        t_high = 5 if self.quick else 10
        t_low = 3 if self.quick else 5
        core = self.core("overload")
        d = os.path.join(self.out, "overload")
        pcscf = "127.0.0.1:%d" % core.lab.pcscf_sip
        rows = []
        try:
            log("overload: %d/s for %d s (2.5x %d/s), then %d/s for 2x%d s" % (high, t_high, base, low, t_low))
            c0 = self.cpu(core)
            watch = benchlib.UdpWatch({"pcscf": [core.lab.pcscf_sip], "icscf": [core.lab.icscf_sip],
                                       "scscf": [core.lab.scscf_sip]})
            inj = benchlib.write_injection(os.path.join(d, "high.csv"), self.users(high * t_high))
            a = Load(os.path.join(d, "high"), "reg_aka_load.xml", pcscf, inj, high, high * t_high,
                     keys={"expires": 3600}, resume=False)
            # The low rate starts when the high one has sent its last call (A drains meanwhile).
            a.check_start()
            time.sleep(max(0.0, t_high - (time.monotonic() - a.started)))
            phases = [("overload %d/s" % high, a)]
            for i in (1, 2):
                inj = benchlib.write_injection(os.path.join(d, "low%d.csv" % i), self.users(low * t_low))
                b = Load(os.path.join(d, "low%d" % i), "reg_aka_load.xml", pcscf, inj, low, low * t_low,
                         keys={"expires": 3600})
                b.wait(t_low + 60)
                phases.append(("then %d/s, %s %d s" % (low, "first" if i == 1 else "next", t_low), b))
            a.wait(120)
            udp = watch.stop()
            c1 = self.cpu(core)
            core.lab.alive()
            for label, load in phases:
                r = load.result()
                other = {c: v for c, v in r.codes.items() if c != "503"}
                rows.append([label, r.created, r.ok, r.rej503, r.rej503_retry_after, r.timeouts,
                             ",".join("%s:%d" % kv for kv in sorted(other.items())) or "-", r.quirk,
                             "%.2f%%" % (100 * r.fail_ratio()), fmt_ms(r.pct("reg", 50)), fmt_ms(r.pct("reg", 99))])
                log("%s: %s" % (label, r.summary()))
            last = phases[-1][1].result()
            recovered = last.created > 0 and last.fail_ratio() < 0.01
            first = phases[0][1].result()
            self.results["overload"] = {"rows": rows, "high": high, "low": low, "base": base,
                                        "high_fail_ratio": first.fail_ratio(),
                                        "recovered": recovered, "drops": udp["drops"], "udp": udp["udp"],
                                        "cpu": self.cpu_pct(c0, c1, time.monotonic() - a.started)}
        finally:
            self.stop_core(core, "overload")


    # --- report -------------------------------------------------------------------------------

    def series_table(self, r, kind, call):
        """One row per rate over the runs of a stepped series: median (min-max) of done/s,
        failures and p99; per-run values of the counters that must be 0."""
        runs = r["runs"]
        n_runs = len(runs)
        rates = []
        for run in runs:
            for st in run["steps"]:
                if st["rate"] not in rates:
                    rates.append(st["rate"])
        ours = kind == "ims"
        socks = Ours.sock_names if ours else Kam.sock_names
        cpus = (Ours.cpu_names if ours else Kam.cpu_names) + ("sipp",)
        headers = ["rate/s", "done/s", "failed", "timeouts"]
        if not call:
            headers += ["SIPp quirk", "503"] if ours else []
            headers += ["other codes"]
        else:
            headers += ["codes"]
        headers += ["fail%", "p50 ms", "p99 ms",
                    "drops " + ("p/i/s" if ours else "kam"), "drops sipp", "RcvbufErr",
                    "cpu% " + ("p/i/s/h/sipp" if ours else "kam/sipp")]
        if call and ours:
            headers += ["RSS MiB p/s", "KiB per call/s p/s"]
        headers += ["step"]
        rows = []
        for rate in rates:
            sts = [st for run in runs for st in run["steps"] if st["rate"] == rate]
            codes = {}
            for st in sts:
                for c, v in st["codes"].items():
                    codes[c] = codes.get(c, 0) + v
                if not call and ours:
                    codes["403"] = codes.get("403", 0) - st["quirk"]
            if not call:
                codes.pop("503", None) if ours else None
            codes_s = ",".join("%s:%d" % kv for kv in sorted(codes.items()) if kv[1] > 0) or "-"
            row = [rate, spread([st["achieved"] for st in sts]), spread([st["failed_core"] for st in sts], "%d"),
                   spread([st["timeouts"] for st in sts], "%d")]
            if not call and ours:
                row += [spread([st["quirk"] for st in sts], "%d"), spread([st["rej503"] for st in sts], "%d")]
            row += [codes_s, spread([100 * st["fail_ratio"] for st in sts], "%.2f%%"),
                    fmt_ms(median([st["p50"] for st in sts])), self.spread_ms([st["p99"] for st in sts])]
            drops = ["/".join("%d" % st["drops"].get(s, 0) for s in socks) for st in sts]
            row += ["0" if all(set(d) <= set("0/") for d in drops) else ",".join(drops),
                    per_run([st["sipp_drops"] for st in sts]),
                    per_run([st["udp"].get("RcvbufErrors", 0) for st in sts]),
                    "/".join(self.fmt_pct(median([st["cpu"].get(c) for st in sts])) for c in cpus)]
            if call and ours:
                row += ["/".join(self.fmt_mib(median([st["rss"].get(nf) for st in sts])) for nf in RSS_NFS),
                        "/".join(self.fmt_num(median([st["rss_per_cps"].get(nf) for st in sts])) for nf in RSS_NFS)]
            passed = sum(1 for st in sts if st["pass"])
            why = {}
            for st in sts:
                for w in st["reasons"]:
                    why[w] = why.get(w, 0) + 1
            reasons = ",".join(w if n_runs == 1 else "%s %d" % (w, c) for w, c in why.items())
            if n_runs == 1:
                verdict = "pass" if passed else "FAIL: " + reasons
            else:
                verdict = ("pass %d/%d" % (passed, len(sts))) if passed == len(sts) else \
                    "FAIL %d/%d: %s" % (len(sts) - passed, len(sts), reasons)
            row.append(verdict)
            rows.append(row)
        return headers, rows

    @staticmethod
    def spread_ms(values):
        v = [x for x in values if x is not None]
        if not v:
            return "-"
        m = fmt_ms(median(v))
        if len(v) == 1 or fmt_ms(min(v)) == fmt_ms(max(v)):
            return m
        return "%s (%s-%s)" % (m, fmt_ms(min(v)), fmt_ms(max(v)))

    @staticmethod
    def fmt_pct(v):
        return "-" if v is None else "%.0f" % v

    @staticmethod
    def fmt_mib(kib):
        return "-" if kib is None else "%.0f" % (kib / 1024.0)

    @staticmethod
    def fmt_num(v):
        return "-" if v is None else "%.1f" % v

    def best_line(self, r, rtd_name, unit):
        """=> highest rate passed: median (min-max) over the runs, per run, and p50/p99 at each
        run's highest passing step."""
        b = r["best"]
        runs = r["runs"]
        at_best = [next(st for st in run["steps"] if st["rate"] == run["best"]) for run in runs if run["best"]]
        if not at_best:
            return "   => highest rate passed: none (the first step failed in every run)"
        if len(runs) == 1:
            fmt_best = "%.0f %s" % (b["median"], unit)
        elif b["min"] == b["max"]:
            fmt_best = "%.0f %s in all %d runs" % (b["median"], unit, len(runs))
        else:
            fmt_best = "%.0f %s median over %d runs (min %d, max %d; per run %s)" % (
                b["median"], unit, len(runs), b["min"], b["max"], ", ".join(str(x or 0) for x in b["per_run"]))
        return ("   => highest rate passed: %s; %s p50 %s ms, p99 %s ms at it%s" % (
            fmt_best, rtd_name,
            fmt_ms(median([st["p50"] for st in at_best])), self.spread_ms([st["p99"] for st in at_best]),
            "\n      (a run passed its last step: the highest rate is a lower bound)" if b["capped"] else ""))

    @staticmethod
    def ratio(ours, kam, what_scale=1.0):
        """ours/kamailio of the median highest passing rates; '>=' / '<=' when a side passed every
        step (its figure is a lower bound)."""
        if not ours or not kam or not ours["median"] or not kam["median"]:
            return "-"
        v = ours["median"] * what_scale / kam["median"]
        if ours["capped"] and kam["capped"]:
            return "? (both passed every step)"
        if kam["capped"]:
            return "<= %.2f" % v
        if ours["capped"]:
            return ">= %.2f" % v
        return "%.2f" % v

    @staticmethod
    def fmt_best(b, scale=1):
        if not b or b["median"] is None:
            return "-"
        s = "%.0f" % (b["median"] * scale)
        if b["min"] != b["max"]:
            s += " (%d-%d)" % (b["min"] * scale, b["max"] * scale)
        return s + ("+" if b["capped"] else "")

    def report_kamailio(self):
        k = self.results["kamailio"]
        print("\n3. Reference: %s, one hop (proxy + registrar, usrloc in memory, no authentication; "
              "kamailio.cfg in the output directory), same SIPp steps" % k["version"])
        for name, r in k["series"].items():
            call = name.endswith("-call")
            print("\n   %s: %s, children=%d" % (name, "calls (same call scenarios, one hop)" if call else
                                             "plain registrations (REGISTER -> 200)", r["children"]))
            headers, rows = self.series_table(r, "kamailio", call)
            r["table"] = {"headers": headers, "rows": rows}
            print(table(headers, rows))
            print(self.best_line(r, "setup time" if call else "registration time", "calls/s" if call else "registrations/s"))
        ours_reg = self.results.get("reg", {}).get("best")
        ours_call = self.results.get("call", {}).get("best")
        headers = ["highest passing rate (median (min-max))", "ours"]
        rows = [["registrations/s (ours AKA: 2 REGISTERs each)", self.fmt_best(ours_reg)],
                ["REGISTER requests/s", self.fmt_best(ours_reg, 2)],
                ["calls/s", self.fmt_best(ours_call)]]
        for c in self.kam_children:
            kr = k["series"].get("kamailio%d-reg" % c, {}).get("best")
            kc = k["series"].get("kamailio%d-call" % c, {}).get("best")
            headers += ["kamailio children=%d" % c, "ours/kamailio"]
            rows[0] += [self.fmt_best(kr), self.ratio(ours_reg, kr)]
            rows[1] += [self.fmt_best(kr), self.ratio(ours_reg, kr, 2.0)]
            rows[2] += [self.fmt_best(kc), self.ratio(ours_call, kc)]
            k.setdefault("ratios", {})["children=%d" % c] = {
                "registrations": rows[0][-1], "register_requests": rows[1][-1], "calls": rows[2][-1]}
        print("\n   Comparison (ours: P-CSCF -> I-CSCF -> S-CSCF + HSS over Cx, AKA; Kamailio: one process, one hop, no auth):")
        print(table(headers, rows))
        print("   + = a run passed its last step (a lower bound, the ratio then '<=' or '>='); %s" % (
            "the reference continues x1.5 up to %d steps past the configured rates while it passes." % self.kam_extend
            if self.kam_extend else "no extra reference steps (--kamailio-extend 0): a ratio needs a failing step."))

    def report_steady(self):
        s = self.results["steady"]
        print("\n4. Steady call load: %d calls/s for %d s (hold %d ms): made %d, failed %d (%.2f%%), done/s %.0f, "
              "setup p99 %s ms" % (s["rate"], s["seconds"], self.hold_ms, s["made"], s["failed"], 100 * s["fail_ratio"],
                                   s["achieved"], fmt_ms(s["p99"])))
        rows = [[t] + [self.fmt_mib(r.get(nf)) for nf in RSS_NFS] for t, r in s["timeline"]]
        print(table(["t s"] + ["%s RSS MiB" % nf for nf in RSS_NFS], rows))
        print("   steady RSS (median of the second half) %s MiB; growth over the second half %s KiB/min; RSS per call/s"
              " (steady - before the calls) / rate: %s KiB" % (
                  "/".join(self.fmt_mib(s["rss_steady"].get(nf)) for nf in RSS_NFS),
                  "/".join(self.fmt_num(s["growth_kib_per_min"].get(nf)) for nf in RSS_NFS),
                  "/".join(self.fmt_num(s["rss_per_cps"].get(nf)) for nf in RSS_NFS)) + " (pcscf/scscf)")
        print("   kernel drops at our SIP sockets p/i/s: %s, at SIPp's: %d, RcvbufErrors (machine): %s; %s" % (
            "/".join("%d" % s["drops"].get(n, 0) for n in Ours.sock_names), s["sipp_drops"],
            s["udp"].get("RcvbufErrors", "?"),
            "FAIL: " + ",".join(s["reasons"]) if s["reasons"] else "pass (same rule as a step)"))

    def report(self, facts, seed_s, started):
        """Prints the tables (and writes results.json in the output directory)."""
        print()
        print("=" * 100)
        print("IMS core SIP benchmark (tests/bench/bench_sip.py%s)" % (" --quick" if self.quick else ""))
        print(benchlib.machine_line(facts))
        for k, v in facts.items():
            print("  %-22s %s" % (k + ":", v))
        print("  %-22s %s" % ("subscribers:", "%d (HSS import %.1f s = %.0f/s)" % (self.n_users, seed_s, self.n_users / seed_s)))
        print("  %-22s %s" % ("runs per series:", "%d (each on a fresh core; %d s per step)" % (self.runs, self.step_s)))
        print("  %-22s %s" % ("output:", self.out))
        print("  %-22s %s" % ("config changes:", "; ".join(self.config_notes) or "none (log level error)"))
        print("  NOTE: the machine is shared with other jobs; absolute figures depend on its load.")
        if "reg" in self.results:
            r = self.results["reg"]
            print("\n1. AKA registrations (REGISTER/401/REGISTER/200 via P-CSCF, I-CSCF, S-CSCF + HSS; %d s per step, "
                  "%d run(s))" % (self.step_s, len(r["runs"])))
            headers, rows = self.series_table(r, "ims", False)
            r["table"] = {"headers": headers, "rows": rows}
            print(table(headers, rows))
            print(self.best_line(r, "registration time", "registrations/s"))
        if "call" in self.results:
            r = self.results["call"]
            print("\n2. Calls (INVITE/180/200/ACK, %d ms hold, BYE/200; orig + term S-CSCF; %d caller/callee pairs; "
                  "%d run(s))" % (self.hold_ms, r["pairs"], len(r["runs"])))
            headers, rows = self.series_table(r, "ims", True)
            r["table"] = {"headers": headers, "rows": rows}
            print(table(headers, rows))
            print(self.best_line(r, "setup time (INVITE->200)", "calls/s"))
            print("   P-CSCF refusals during the calls (pcscf_refused_total; callers call from the UDP port they"
                  " registered from): %s" % self.fmt_refused(r["refused"]))
        k = self.results.get("kamailio")
        if k and k.get("skipped"):
            print("\n3. Kamailio comparison: skipped (%s); to get it: %s" % (k["skipped"], benchlib.KAMAILIO_HINT))
        elif k:
            self.report_kamailio()
        if "steady" in self.results:
            self.report_steady()
        if "mem" in self.results:
            r = self.results["mem"]
            a, b = r.get("distinct"), r.get("control")
            if a and b:
                # Per user: the S-CSCF's own count of registrations (a 200 that reached SIPp after
                # its timeout still registered the user), else what SIPp saw.
                n = max(1, int(a["scscf_registrations"] or a["registrations_ok"]))
                print("\n5. Memory per registered user (A: %d distinct users registered at %d/s in %.0f s, "
                      "scscf_registrations = %s, pcscf_bindings = %s;" % (a["registrations_ok"], r["rate"], a["seconds"],
                                                                         fmt_n(a["scscf_registrations"]),
                                                                         fmt_n(a["pcscf_bindings"])))
                print("   B (control): the same number of registrations cycling over 100 users, scscf_registrations = %s)"
                      % fmt_n(b["scscf_registrations"]))
                rows = []
                for nf in ("scscf", "pcscf", "icscf", "hss"):
                    da = a["after"][nf] - a["before"][nf]
                    db = b["after"][nf] - b["before"][nf]
                    rows.append([nf, a["before"][nf], a["after"][nf], da, b["after"][nf], db,
                                 "%.2f" % (da / n), "%.2f" % ((da - db) / n)])
                print(table(["NF", "RSS before KiB", "A after KiB", "A growth KiB", "B after KiB", "B growth KiB",
                             "A/user KiB", "(A-B)/user KiB"], rows))
                print("   (A-B)/user = the registration state per user; A/user also holds the transactions sofia-sip")
                print("   keeps 32 s (Timer J) and the heap glibc keeps after freeing them: an upper bound. RSS is")
                print("   a high-water mark; the I-CSCF (no per-user state) shows what the traffic alone leaves.")
                if a["idle"] and b["idle"]:
                    print("   After %d s idle (finished transactions freed): live heap (process_heap_inuse_bytes, glibc"
                          " mallinfo2) and RSS" % IDLE_S)
                    rows = []
                    for nf in ("scscf", "pcscf", "icscf", "hss"):
                        ha, hb = a["idle"][nf]["heap"], b["idle"][nf]["heap"]
                        ha0, hb0 = a["heap_before"][nf], b["heap_before"][nf]
                        per = "-" if None in (ha, ha0) else "%.2f" % ((ha - ha0) / n)
                        per_ab = "-" if None in (ha, ha0, hb, hb0) else "%.2f" % (((ha - ha0) - (hb - hb0)) / n)
                        rows.append([nf, "-" if ha is None else "%.0f" % ha, "-" if hb is None else "%.0f" % hb,
                                     a["idle"][nf]["rss"], b["idle"][nf]["rss"], per, per_ab])
                    print(table(["NF", "A heap KiB", "B heap KiB", "A RSS KiB", "B RSS KiB", "A heap/user KiB",
                                 "(A-B) heap/user KiB"], rows))
                elif self.quick:
                    print("   (--quick: no idle wait, so no live-heap figure)")
                if a["quirk"]:
                    print("   (%d registrations were answered wrongly by SIPp (RES with 0x00) and done again)" % a["quirk"])
        if "overload" in self.results:
            r = self.results["overload"]
            print("\n6. Overload: registrations at 2.5x %d/s, then %d/s" % (r["base"], r["low"]))
            print(table(["phase", "made", "ok", "503", "503+Retry-After", "timeouts", "other codes", "SIPp quirk",
                         "fail%", "p50 ms", "p99 ms"], r["rows"]))
            high = r["rows"][0]
            if not high[3] and not high[5] and r["high_fail_ratio"] < FAIL_LIMIT:
                print("   => the core was NOT overloaded at %d/s (no 503, no timeout): the base rate is below capacity"
                      % r["high"])
            print("   => after the high rate the low rate %s (last low-rate window: < 1%% failures: %s)" %
                  ("succeeds again (recovered)" if r["recovered"] else "still FAILS (not recovered)",
                   "yes" if r["recovered"] else "no"))
            print("   CPU %% (%s) over the whole overload test: %s" % ("/".join(NFS + ("sipp",)), r["cpu"]))
            print("   kernel drops at our SIP sockets during it (p/i/s): %s; machine UDP RcvbufErrors: %s" % (
                "/".join("%d" % r["drops"].get(n, 0) for n in Ours.sock_names), r["udp"].get("RcvbufErrors", "?")))
        print("\nSIPp quirk = a 403 to an AKA response SIPp 3.6.1 computed wrongly (RES with a 0x00 byte, checked by")
        print("recomputing RES from the refused nonce); counted apart and not in fail%. failed = the calls that did")
        print("not succeed (the quirk's excluded); timeouts = no final answer within SIPp's -recv_timeout (5 s).")
        print("done/s = successful calls completed per second (first to last completion). A step passes with")
        print("fail%% < 0.1, done/s >= %d%% of the rate (else requests were queueing), no P-CSCF refusal and no" % (KEEP_UP * 100))
        print("kernel drop at the target's SIP sockets (drops p/i/s: /proc/net/udp drops of the P-CSCF, I-CSCF and")
        print("S-CSCF SIP sockets during the step; drops sipp: SIPp's sockets, the load generator's problem, not a")
        print("failure; RcvbufErr: /proc/net/snmp Udp RcvbufErrors of the whole machine). With several runs a cell")
        print("is the median (min-max) over the runs that reached the step, counters that must be 0 are listed")
        print("per run (a,b,c), and a run stops at its first failing step. The series run interleaved (run 1 of")
        print("each, then run 2, ...). Highest rate passed per run: 0 = that run failed its first step.")
        print("cpu% = CPU time during the step over its duration (100 = one core); p/i/s/h = pcscf/icscf/scscf/hss.")
        print("RSS p/s = median VmRSS of pcscf/scscf over the second half of the step (sampled every second);")
        print("KiB per call/s = (that RSS - RSS after the registrations) / the step's rate. A step shorter than")
        print("Timer J (32 s, the BYE transactions kept) still sees RSS rising: --steady MIN gives the steady state.")
        print("Times are SIPp's -trace_rtt values: whole ms, advancing in steps of SIPp's event loop (a few ms).")
        if benchlib.FAILED_STARTS:
            print("SIPp 3.6.1 failed to load its AKA keys at %d start(s) (\"invalid [keyword]\", its key parsing):" %
                  len(benchlib.FAILED_STARTS))
            print("those runs were started again (nothing had reached the core but at most one request).")
        for d, made in benchlib.MIDRUN_ABORTS:
            print("note: SIPp 3.6.1 stopped after %d calls (\"invalid [keyword]\", its AKA key parsing) in %s;%s" %
                  (made, d, " the overload phase reports what it made" if "/overload/" in d else
                   " the remaining calls were made by a new SIPp process"))
        for note in self.notes:
            print("note: " + note)
        print("total run time: %.0f s" % (time.monotonic() - started))
        benchlib.dump_json(os.path.join(self.out, "results.json"),
                           {"facts": facts, "machine": benchlib.machine_line(facts), "args": vars(self.args),
                            "runs": self.runs, "step_s": self.step_s, "results": self.results, "notes": self.notes})



PHASES = ("reg", "call", "kamailio", "steady", "mem", "overload")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1,000 users, two short steps per phase, 1 run, Kamailio with 1 worker only")
    p.add_argument("--only", choices=list(PHASES), action="append",
                   help="run only this phase (repeatable; 'kamailio' with 'reg' or 'call': only that Kamailio series)")
    p.add_argument("--users", type=int, help="subscribers imported and registered by 'mem' (default 100000, quick 1000)")
    p.add_argument("--step", type=int, help="seconds per rate step (default 12, quick 4)")
    p.add_argument("--runs", type=int, help="runs of each stepped series, each on a fresh core (default 3, quick 1)")
    rates = lambda s: [int(x) for x in s.split(",") if x.strip()]  # noqa: E731
    p.add_argument("--reg-rates", type=rates, metavar="R1,R2,..", help="registration rate steps (per second)")
    p.add_argument("--call-rates", type=rates, metavar="R1,R2,..", help="call rate steps (per second)")
    p.add_argument("--pairs", type=int, help="caller/callee pairs of 'call' (default 2000, quick 200; at most users/2)")
    p.add_argument("--no-kamailio", action="store_true", help="skip the Kamailio reference even when kamailio is on PATH")
    p.add_argument("--kamailio-children", type=rates, metavar="N1,N2",
                   help="Kamailio SIP worker counts to measure (default 1,2; quick 1)")
    p.add_argument("--kamailio-extend", type=int, metavar="N",
                   help="extra x1.5 steps for Kamailio past the configured rates while it passes (default 4, quick 0)")
    p.add_argument("--steady", type=float, metavar="MIN",
                   help="add the 'steady' phase: calls at --steady-rate for MIN minutes, VmRSS every 5 s (default off)")
    p.add_argument("--steady-rate", type=int, help="calls/s of 'steady' (default half the median best call rate, else 100)")
    p.add_argument("--mem-rate", type=int, help="registration rate of 'mem' (default half the best 'reg' rate, else 300/s)")
    p.add_argument("--base-rate", type=int, help="sustainable rate 'overload' multiplies when 'reg' did not run")
    p.add_argument("--set", action="append", metavar="NF.SECTION.KEY=VALUE",
                   help="config override for every core, e.g. --set scscf.log.level=warn (repeatable)")
    p.add_argument("--out", help="directory for configs, logs and SIPp files (default /tmp/ims-bench-<time>)")
    args = p.parse_args()

    started = time.monotonic()
    nofile = benchlib.raise_nofile()
    bench = Bench(args)
    facts = benchlib.machine_facts()
    facts["open files"] = nofile
    if bench.kamailio:
        facts["kamailio"] = "%s (%s)" % (benchlib.kamailio_version(bench.kamailio), bench.kamailio)
    else:
        facts["kamailio"] = "not measured (%s)" % ("--no-kamailio" if args.no_kamailio else
                                                   "not on PATH: " + benchlib.KAMAILIO_HINT)
    log(benchlib.machine_line(facts))
    log("build %s, output %s, %d run(s) per stepped series" % (lab.BUILD_DIR, bench.out, bench.runs))
    if not bench.kamailio and not args.no_kamailio:
        log("kamailio is not on PATH: the Kamailio comparison is skipped (to get it: %s)" % benchlib.KAMAILIO_HINT)
    log("importing %d subscribers into a fresh HSS database" % bench.n_users)
    bench.seed_db, seed_s = benchlib.seed_database(os.path.join(bench.out, "seed"), bench.n_users)
    log("imported in %.1f s" % seed_s)
    # 'steady' runs when --steady gives its length (with --only, when 'steady' is listed too)
    phases = [p for p in (args.only or PHASES) if p != "steady" or args.steady]
    if args.only and "steady" in args.only and not args.steady:
        bench.notes.append("steady: not run (give --steady MIN)")
    failed = bench.phase_stepped(phases)
    for name in ("steady", "mem", "overload"):
        if name not in phases:
            continue
        try:
            getattr(bench, "phase_" + name)()
        except lab.TestFailure as e:
            failed = True
            bench.notes.append("%s: could not be measured: %s" % (name, str(e)[:1500]))
            log("%s FAILED: %s" % (name, str(e)[:1500]))
    bench.report(facts, seed_s, started)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
