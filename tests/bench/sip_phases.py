"""The phases of bench_sip.py that are not stepped series: steady (calls at one rate for minutes,
VmRSS every 5 s), mem (memory per registered user, A/B against a control core) and overload
(registrations at 2.5x the sustainable rate, then a low rate).

Python 3 standard library only.
"""

import os
import time

from bench_users import user_name, write_injection
from figures import fmt_ms
from sip_bench import FAIL_LIMIT, IDLE_S, NFS, RSS_NFS, log
from sip_series import call_load, call_setup
from sip_steps import core_cpu, cpu_pct, heap, reasons, register, rss_now
from sip_targets import Ours, stop_core
from sipp_run import Load
from udp_counters import UdpWatch, steady_rss


def steady(bench):
    minutes = bench.args.steady
    call = bench.results.get("call")
    rate = bench.args.steady_rate or (
        int(call["best"]["median"] * 0.5) if call and call["best"]["median"] else 100)
    secs = int(minutes * 60)
    target = Ours(bench, "steady")
    base = os.path.join(bench.out, "steady")
    uas = None
    try:
        uac_port, uas_port, uas, inj, route = call_setup(bench, target, base)
        rss0 = rss_now(target)
        log("steady: %d calls/s for %d s (hold %d ms), VmRSS of %s every 5 s" %
            (rate, secs, bench.hold_ms, "/".join(RSS_NFS)))
        groups = dict(target.sockets())
        groups["sipp"] = [uac_port, uas_port]
        watch = UdpWatch(groups, rss=target.rss_pids(), rss_interval=5.0)
        try:
            load = call_load(bench, target, os.path.join(base, "load"), inj, rate, rate * secs, uac_port, route)
            load.wait(secs + bench.hold_ms / 1000.0 + 120)
        finally:
            udp = watch.stop()
        res = load.result(aka_check=False)
        target.alive()
        samples = udp["rss"]
        steady = {nf: steady_rss(samples, nf) for nf in RSS_NFS}
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
        bench.results["steady"] = {
            "rate": rate, "seconds": secs, "made": res.created, "ok": res.ok, "failed": res.failed,
            "fail_ratio": res.fail_ratio(), "achieved": res.achieved,
            "p99": res.pct("setup", 99), "rss_start": rss0, "rss_steady": steady, "growth_kib_per_min": growth,
            "rss_per_cps": {nf: (steady[nf] - rss0[nf]) / float(rate) for nf in RSS_NFS
                            if steady.get(nf) and nf in rss0},
            "timeline": timeline, "drops": {g: v for g, v in udp["drops"].items() if g != "sipp"},
            "sipp_drops": udp["drops"].get("sipp", 0), "udp": udp["udp"], "samples": samples,
            "reasons": reasons(res, rate, {g: v for g, v in udp["drops"].items() if g != "sipp"}, None)}
        log("steady: %s; RSS %s KiB" % (res.summary(), steady))
    finally:
        if uas is not None and uas.poll() is None:
            uas.kill()
            uas.wait()
        target.stop(bench, "steady")


def mem(bench):
    """Memory per registered user as an A/B measurement on two fresh cores at the same rate:
    A registers n distinct users, B makes the same number of registrations cycling over 100
    users (same transactions, Cx and reg-event traffic; no new registration state). RSS is a
    high-water mark of the heap: sofia-sip keeps every finished transaction for Timer J (32 s,
    RFC 3261 17.2.2), which at a few hundred/s costs hundreds of MB that glibc keeps after it
    is freed, so A's growth alone overstates the cost of a user. (A - B) / users is the
    state; A / users is printed too (an upper bound)."""
    n = bench.n_users
    rate = bench.args.mem_rate or (int(bench.best_reg * 0.5) if bench.best_reg else (200 if bench.quick else 300))
    expires = int(2 * n / rate) + 3600
    out = {"users": n, "rate": rate}
    for kind in ("distinct", "control"):
        core = bench.core("mem-" + kind, max_expires=14400)
        try:
            # The heap gauges appear with the NFs' first housekeeping pass (every 5 s).
            deadline = time.monotonic() + 7.0
            while time.monotonic() < deadline and heap(core, "scscf") is None:
                time.sleep(0.5)
            before = {nf: core.rss(nf) for nf in NFS}
            heap_before = {nf: heap(core, nf) for nf in NFS}
            t0 = time.monotonic()
            d = os.path.join(bench.out, "mem", kind)
            if kind == "distinct":
                log("mem A: registering %d distinct users at %d/s" % (n, rate))
                users = [user_name(i) for i in range(n)]
                done, results = register("127.0.0.1:%d" % core.lab.pcscf_sip, users, rate, d,
                                         expires=expires)
                registered = len(done)
            else:
                log("mem B (control): %d registrations of 100 users at %d/s" % (n, rate))
                users = [user_name(i % min(100, n)) for i in range(n)]
                inj = write_injection(os.path.join(d, "users.csv"), users)
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
            if not bench.quick:
                log("mem %s: idle %d s (finished transactions freed)" % (kind, IDLE_S))
                time.sleep(IDLE_S)
                idle = {nf: {"rss": core.rss(nf), "heap": heap(core, nf)} for nf in NFS}
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
                    bench.notes.append("mem: scscf_registrations=%s but SIPp saw %d users registered (a 200 "
                                       "after SIPp's timeout still registers)" % (gauge, registered))
                if registered < n:
                    bench.notes.append("mem: %d of %d users could not be registered after retries" %
                                       (n - registered, n))
            if r0.failed_core > FAIL_LIMIT * n:
                bench.notes.append("mem %s: %d of %d failed in the first pass at %d/s (the core did not keep up: "
                                   "the A/B comparison is weaker; try --mem-rate lower)" %
                                   (kind, r0.failed_core, n, rate))
        finally:
            stop_core(bench, core, "mem-" + kind)
    bench.results["mem"] = out


def overload(bench):
    base = bench.best_reg or bench.args.base_rate or (200 if bench.quick else 400)
    high, low = int(base * 2.5), max(20, int(base * 0.25))
    t_high = 5 if bench.quick else 10
    t_low = 3 if bench.quick else 5
    core = bench.core("overload")
    d = os.path.join(bench.out, "overload")
    pcscf = "127.0.0.1:%d" % core.lab.pcscf_sip
    rows = []
    try:
        log("overload: %d/s for %d s (2.5x %d/s), then %d/s for 2x%d s" % (high, t_high, base, low, t_low))
        c0 = core_cpu(core)
        watch = UdpWatch({"pcscf": [core.lab.pcscf_sip], "icscf": [core.lab.icscf_sip],
                          "scscf": [core.lab.scscf_sip]})
        inj = write_injection(os.path.join(d, "high.csv"), bench.users(high * t_high))
        a = Load(os.path.join(d, "high"), "reg_aka_load.xml", pcscf, inj, high, high * t_high,
                 keys={"expires": 3600}, resume=False)
        # The low rate starts when the high one has sent its last call (A drains meanwhile).
        a.check_start()
        time.sleep(max(0.0, t_high - (time.monotonic() - a.started)))
        phases = [("overload %d/s" % high, a)]
        for i in (1, 2):
            inj = write_injection(os.path.join(d, "low%d.csv" % i), bench.users(low * t_low))
            b = Load(os.path.join(d, "low%d" % i), "reg_aka_load.xml", pcscf, inj, low, low * t_low,
                     keys={"expires": 3600})
            b.wait(t_low + 60)
            phases.append(("then %d/s, %s %d s" % (low, "first" if i == 1 else "next", t_low), b))
        a.wait(120)
        udp = watch.stop()
        c1 = core_cpu(core)
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
        bench.results["overload"] = {"rows": rows, "high": high, "low": low, "base": base,
                                     "high_fail_ratio": first.fail_ratio(),
                                     "recovered": recovered, "drops": udp["drops"], "udp": udp["udp"],
                                     "cpu": cpu_pct(c0, c1, time.monotonic() - a.started)}
    finally:
        stop_core(bench, core, "overload")
