#!/usr/bin/env python3
"""SIP load benchmark of the IMS core: registrations/s, calls/s, memory per registered user and
behaviour beyond capacity. A command run by hand (not a ctest); it prints figures, it asserts
nothing about speed.

    python3 tests/bench/bench_sip.py [--quick] [--only reg|call|mem|overload] [--users N]
    env IMS_BUILD_DIR (default /work/main/build; use a Release or RelWithDebInfo build)

The four real NFs (hss, scscf, icscf, pcscf) run on 127.0.0.1 through tests/system/lab.py with
log level "error" (logging is not the bottleneck), SIPp 3.6.1 drives them over UDP. The HSS
imports N subscribers alice0..alice<N-1> (AKA + digest, AKA by default) once; every phase then
starts a fresh core from a copy of that database.

Phases (issue 6):
  reg       SIPp AKA registrations (REGISTER -> 401 -> REGISTER with the AKA response -> 200:
            UAR, MAR, UAR, SAR) from distinct users at stepped rates; the highest rate with under
            0.1 % failures, and the registration time (first REGISTER to 200) p50/p99.
  call      registered callers (SIPp UAC) call registered callees (one SIPp UAS every callee
            registered from): INVITE/180/200/ACK/hold/BYE/200 through P-CSCF -> S-CSCF (orig) ->
            S-CSCF (term) -> P-CSCF; highest calls/s under 0.1 % failures, setup time p50/p99.
            The P-CSCF knows a UE by its flow (UDP source address and port it registered from,
            TS 24.229 5.2.3), so every SIPp process of a side is bound to that side's one port:
            the callers register and call from the UAC port, the callees register from the UAS
            port and the UAS listens on it. A step with any P-CSCF refusal (pcscf_refused_total,
            e.g. 403 "Forbidden - Not Registered" from another flow) fails.
  mem       RSS (VmRSS) of scscf and pcscf before and after registering N distinct users (A),
            against a control core (B) taking the same number of registrations for 100 users;
            (A - B) / N per user. scscf_registrations must show the N users.
  overload  registrations at ~2.5x the highest sustainable rate for a while, then a low rate:
            how many got 503 (with Retry-After or not), how many timed out, and whether the low
            rate succeeds again.

SIPp 3.6.1's own faults are counted apart, never hidden: it computes a wrong AKA response when
RES holds a 0x00 byte (~3 % of challenges; the S-CSCF rightly answers 403). The benchmark
recomputes RES from each refused nonce (lab.aka_res_of_nonce) and reports those as "SIPp quirk";
the failure rate that decides a step excludes them. The machine is shared: absolute figures
depend on what else runs; the output prints nproc, the CPU model and the load average.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
from benchlib import Core, Load, fmt_ms, lab, table  # noqa: E402

FAIL_LIMIT = 0.001        # a step passes with under 0.1 % failures (the core's, not SIPp's quirk)
KEEP_UP = 0.85            # ... and when the core completed at least 85 % of the offered rate per second
                          # (below that requests queue: a longer step would turn them into timeouts;
                          # ~3 % of registrations are SIPp's quirk and do not complete)
NFS = ("pcscf", "icscf", "scscf", "hss")
IDLE_S = 38               # mem: idle after the registrations (Timer J 32 s + the NFs' 5 s heap housekeeping)


def fmt_n(v):
    return "?" if v is None else "%d" % v


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.out = args.out or "/tmp/ims-bench-%s" % time.strftime("%Y%m%d-%H%M%S")
        os.makedirs(self.out, exist_ok=True)
        self.n_users = args.users or (1000 if self.quick else 100000)
        self.step_s = args.step or (4 if self.quick else 12)
        self.reg_rates = args.reg_rates or ([100, 200] if self.quick else [100, 200, 400, 600, 800, 1000, 1200, 1500, 2000])
        self.call_rates = args.call_rates or ([50, 100] if self.quick else [50, 100, 200, 300, 500, 700, 1000])
        self.hold_ms = 500 if self.quick else 1000
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
    def verdict(res, rate):
        if res.fail_ratio() >= FAIL_LIMIT:
            return False, "FAIL: failures"
        if res.achieved < KEEP_UP * rate:
            return False, "FAIL: queueing"
        return True, "pass"

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

    def register(self, core, users, rate, d, local_port=None, expires=3600, rounds=4):
        """Registers users (AKA) from local_port; users that failed are tried again (SIPp's RES
        quirk hits ~3 % of challenges). Returns (set of registered users, [Result per round])."""
        done, results, todo = set(), [], list(users)
        # Every round from the same port: a UE tries again from its own address (a new port
        # would leave the P-CSCF a second binding for a user whose late 200 did register it).
        local_port = local_port or lab.free_port()
        for r in range(rounds):
            if not todo:
                break
            inj = benchlib.write_injection(os.path.join(d, "users-%d.csv" % r), todo)
            r_rate = max(20, rate >> r)     # retries at half the rate each round
            load = Load(os.path.join(d, "round%d" % r), "reg_aka_load.xml", "127.0.0.1:%d" % core.lab.pcscf_sip,
                        inj, r_rate, len(todo), local_port=local_port, keys={"expires": expires})
            res = load.wait(len(todo) / r_rate + 60).result()
            results.append(res)
            done.update(res.ok_users)
            todo = [u for u in todo if u not in done]
        return done, results

    # --- 1. registrations ---------------------------------------------------------------------

    def phase_reg(self):
        core = self.core("reg")
        rows, best, best_res = [], None, None
        try:
            for rate in self.reg_rates:
                n = rate * self.step_s
                d = os.path.join(self.out, "reg", "r%d" % rate)
                os.makedirs(d, exist_ok=True)
                inj = benchlib.write_injection(os.path.join(d, "users.csv"), self.users(n))
                log("reg: %d/s for %d s (%d registrations)" % (rate, self.step_s, n))
                c0 = self.cpu(core)
                load = Load(os.path.join(d, "sipp"), "reg_aka_load.xml", "127.0.0.1:%d" % core.lab.pcscf_sip,
                            inj, rate, n, keys={"expires": 3600})
                load.wait(self.step_s + 90)
                c1 = self.cpu(core)
                res = load.result()
                core.lab.alive()
                ok, verdict = self.verdict(res, rate)
                rows.append([rate, "%.0f" % res.achieved, res.created, res.ok, res.failed_core, res.quirk,
                             res.timeouts, res.rej503,
                             self.other_codes(res), "%.2f%%" % (100 * res.fail_ratio()),
                             fmt_ms(res.pct("reg", 50)), fmt_ms(res.pct("reg", 99)),
                             self.cpu_pct(c0, c1, load.elapsed), verdict])
                log("reg %d/s: %s" % (rate, res.summary()))
                if not ok:
                    self.notes.append("reg %d/s: SIPp's aborted calls: %s" % (rate, benchlib.sipp_errors_summary(load)))
                    break
                best, best_res = rate, res
        finally:
            self.stop_core(core, "reg")
        self.best_reg = best
        self.results["reg"] = {"rows": rows, "best": best,
                               "p50": best_res.pct("reg", 50) if best_res else None,
                               "p99": best_res.pct("reg", 99) if best_res else None}

    # --- 2. calls -----------------------------------------------------------------------------

    def phase_call(self):
        pairs = max(10, min(self.n_users // 2, self.args.pairs or (200 if self.quick else 2000)))
        callers = [benchlib.user_name(i) for i in range(pairs)]
        callees = [benchlib.user_name(pairs + i) for i in range(pairs)]
        core = self.core("call")
        uas = None
        rows, best, best_res = [], None, None
        refused_total = {}
        base = os.path.join(self.out, "call")
        try:
            # One flow per side (the P-CSCF binds an identity to the exact UDP address:port it
            # registered from): the callers register and call from uac_port, the callees register
            # from uas_port, where the UAS then answers (the P-CSCF sends to that flow).
            uac_port, uas_port = core.lab.ports.get(), core.lab.ports.get()
            log("call: registering %d callees from the UAS port %d and %d callers from the UAC port %d "
                "(the port they call from)" % (pairs, uas_port, pairs, uac_port))
            got_b, _ = self.register(core, callees, 200, os.path.join(base, "reg-callees"), local_port=uas_port)
            got_a, res_a = self.register(core, callers, 200, os.path.join(base, "reg-callers"), local_port=uac_port)
            if len(got_a) < pairs or len(got_b) < pairs:
                raise lab.TestFailure("call: only %d/%d callers and %d/%d callees registered" %
                                      (len(got_a), pairs, len(got_b), pairs))
            route = next((r.service_route for r in res_a if r.service_route), None)
            if not route:
                raise lab.TestFailure("call: no Service-Route in the callers' 200 (see %s)" % base)
            inj = benchlib.write_injection(os.path.join(base, "pairs.csv"), callers, peers=callees)
            os.makedirs(os.path.join(base, "uas"), exist_ok=True)
            uas_out = open(os.path.join(base, "uas", "sipp.out"), "wb")
            uas = lab.subprocess.Popen([benchlib.SIPP, "-sf", os.path.join(benchlib.SCENARIOS, "call_uas_load.xml"),
                                        "-i", "127.0.0.1", "-p", str(uas_port), "-nostdin", "-trace_err",
                                        "-default_behaviors", "all,-bye", "-l", "100000"],
                                       cwd=os.path.join(base, "uas"), stdout=uas_out, stderr=lab.subprocess.STDOUT,
                                       stdin=lab.subprocess.DEVNULL)
            uas_out.close()
            time.sleep(0.5)
            for rate in self.call_rates:
                n = rate * self.step_s
                log("call: %d/s for %d s (%d calls, hold %d ms)" % (rate, self.step_s, n, self.hold_ms))
                if uas.poll() is not None:
                    raise lab.TestFailure("call: the SIPp UAS exited (%s), see %s" % (uas.returncode, base))
                c0 = self.cpu(core)
                refused0 = self.refused(core)
                load = Load(os.path.join(base, "r%d" % rate), "call_uac_load.xml", "127.0.0.1:%d" % core.lab.pcscf_sip,
                            inj, rate, n, local_port=uac_port, keys={"route": route},
                            extra=["-d", str(self.hold_ms)])
                load.wait(self.step_s + self.hold_ms / 1000.0 + 90)
                c1 = self.cpu(core)
                res = load.result(aka_check=False)
                core.lab.alive()
                refused1 = self.refused(core)
                step_refused = {k: v - refused0.get(k, 0) for k, v in refused1.items() if v > refused0.get(k, 0)}
                for k, v in step_refused.items():
                    refused_total[k] = refused_total.get(k, 0) + v
                ok, verdict = self.verdict(res, rate)
                if ok and step_refused:
                    # not a capacity limit: the callers did not call from the flow they registered from
                    ok, verdict = False, "FAIL: refused"
                rows.append([rate, "%.0f" % res.achieved, res.created, res.ok, res.failed, res.timeouts,
                             ",".join("%s:%d" % kv for kv in sorted(res.codes.items())) or "-",
                             "%.2f%%" % (100 * res.fail_ratio()),
                             fmt_ms(res.pct("setup", 50)), fmt_ms(res.pct("setup", 99)),
                             self.cpu_pct(c0, c1, load.elapsed), verdict])
                log("call %d/s: %s; P-CSCF refusals (pcscf_refused_total): %s" %
                    (rate, res.summary(), self.fmt_refused(step_refused)))
                if not ok:
                    self.notes.append("call %d/s: SIPp's aborted calls: %s" % (rate, benchlib.sipp_errors_summary(load)))
                    break
                best, best_res = rate, res
        finally:
            if uas is not None and uas.poll() is None:
                uas.kill()
                uas.wait()
            self.stop_core(core, "call")
        self.results["call"] = {"rows": rows, "best": best, "pairs": pairs, "refused": refused_total,
                                "p50": best_res.pct("setup", 50) if best_res else None,
                                "p99": best_res.pct("setup", 99) if best_res else None}

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
                    done, results = self.register(core, users, rate, d, expires=expires)
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
                                        "recovered": recovered,
                                        "cpu": self.cpu_pct(c0, c1, time.monotonic() - a.started)}
        finally:
            self.stop_core(core, "overload")

    # --- report -------------------------------------------------------------------------------

    def report(self, facts, seed_s, started):
        """Prints the tables (and writes results.json in the output directory)."""
        print()
        print("=" * 100)
        print("IMS core SIP benchmark (tests/bench/bench_sip.py%s)" % (" --quick" if self.quick else ""))
        for k, v in facts.items():
            print("  %-17s %s" % (k + ":", v))
        print("  %-17s %s" % ("subscribers:", "%d (HSS import %.1f s = %.0f/s)" % (self.n_users, seed_s, self.n_users / seed_s)))
        print("  %-17s %s" % ("output:", self.out))
        print("  %-17s %s" % ("config changes:", "; ".join(self.config_notes) or "none (log level error)"))
        print("  NOTE: the machine is shared with other jobs; absolute figures depend on its load.")
        cpu_hdr = "cpu% p/i/s/h/sipp"
        if "reg" in self.results:
            r = self.results["reg"]
            print("\n1. AKA registrations (REGISTER/401/REGISTER/200 via P-CSCF, I-CSCF, S-CSCF + HSS; %d s per step)" % self.step_s)
            print(table(["rate/s", "done/s", "made", "ok", "failed", "SIPp quirk", "timeouts", "503", "other", "fail%",
                         "p50 ms", "p99 ms", cpu_hdr, "step"], r["rows"]))
            print("   => highest rate passed: %s registrations/s, registration time p50 %s ms, p99 %s ms" %
                  (r["best"] if r["best"] else "none", fmt_ms(r["p50"]), fmt_ms(r["p99"])))
        if "call" in self.results:
            r = self.results["call"]
            print("\n2. Calls (INVITE/180/200/ACK, %d ms hold, BYE/200; orig + term S-CSCF; %d caller/callee pairs)" %
                  (self.hold_ms, r["pairs"]))
            print(table(["rate/s", "done/s", "made", "ok", "failed", "timeouts", "codes", "fail%",
                         "setup p50 ms", "setup p99 ms", cpu_hdr, "step"], r["rows"]))
            print("   => highest rate passed: %s calls/s, setup time (INVITE->200) p50 %s ms, p99 %s ms" %
                  (r["best"] if r["best"] else "none", fmt_ms(r["p50"]), fmt_ms(r["p99"])))
            print("   P-CSCF refusals during the calls (pcscf_refused_total; callers call from the UDP port they"
                  " registered from): %s" % self.fmt_refused(r["refused"]))
        if "mem" in self.results:
            r = self.results["mem"]
            a, b = r.get("distinct"), r.get("control")
            if a and b:
                # Per user: the S-CSCF's own count of registrations (a 200 that reached SIPp after
                # its timeout still registered the user), else what SIPp saw.
                n = max(1, int(a["scscf_registrations"] or a["registrations_ok"]))
                print("\n3. Memory per registered user (A: %d distinct users registered at %d/s in %.0f s, "
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
            print("\n4. Overload: registrations at 2.5x %d/s, then %d/s" % (r["base"], r["low"]))
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
        print("\nSIPp quirk = a 403 to an AKA response SIPp 3.6.1 computed wrongly (RES with a 0x00 byte, checked by")
        print("recomputing RES from the refused nonce); counted apart and not in fail%. failed = every call that")
        print("did not succeed (incl. quirk); timeouts = no final answer within SIPp's -recv_timeout (5 s).")
        print("done/s = successful calls completed per second (first to last completion); a step passes with")
        print("fail%% < 0.1 and done/s >= %d%% of the rate (else requests were queueing)." % (KEEP_UP * 100))
        print("cpu% = CPU time of pcscf/icscf/scscf/hss/SIPp during the step over its duration (100 = one core).")
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
                           {"facts": facts, "results": self.results, "notes": self.notes})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 1,000 users, two short steps per phase (< ~90 s)")
    p.add_argument("--only", choices=["reg", "call", "mem", "overload"], action="append",
                   help="run only this phase (repeatable)")
    p.add_argument("--users", type=int, help="subscribers imported and registered by 'mem' (default 100000, quick 1000)")
    p.add_argument("--step", type=int, help="seconds per rate step (default 12, quick 4)")
    rates = lambda s: [int(x) for x in s.split(",") if x.strip()]  # noqa: E731
    p.add_argument("--reg-rates", type=rates, metavar="R1,R2,..", help="registration rate steps (per second)")
    p.add_argument("--call-rates", type=rates, metavar="R1,R2,..", help="call rate steps (per second)")
    p.add_argument("--pairs", type=int, help="caller/callee pairs of 'call' (default 2000, quick 200; at most users/2)")
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
    log("build %s, output %s" % (lab.BUILD_DIR, bench.out))
    log("importing %d subscribers into a fresh HSS database" % bench.n_users)
    bench.seed_db, seed_s = benchlib.seed_database(os.path.join(bench.out, "seed"), bench.n_users)
    log("imported in %.1f s" % seed_s)
    phases = args.only or ["reg", "call", "mem", "overload"]
    failed = False
    for name in ("reg", "call", "mem", "overload"):
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
