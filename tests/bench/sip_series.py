"""The stepped series of bench_sip.py (phases reg, call and kamailio): one run of registrations or
calls at increasing rates on a fresh target until a step fails, the callers and callees a call run
registers first, and the runs of every series interleaved (run 1 of each, then run 2, ...).

Python 3 standard library only.
"""

import os
import subprocess
import time

from bench_users import user_name, write_injection
from kamailio_ref import kamailio_version
from sip_anchor import OursAnchored, media_line
from sip_bench import log
from sip_steps import measure, register, rss_now, step_note, step_record, stepped_rates, summarise
from sip_targets import Kam, Ours, fmt_refused
from sipp_run import SCENARIOS, SIPP, Load
from system_lab import lab
from udp_counters import steady_rss


def reg_run(bench, make_target, series, run, extend=0):
    """One run of the stepped registration series on a fresh target: {"steps": [...], "best": rate}."""
    bench.cursor = 0
    target = make_target(run)
    steps, best = [], None
    try:
        for rate in stepped_rates(bench.reg_rates, extend):
            n = rate * bench.step_s
            d = os.path.join(bench.out, series, "run%d" % (run + 1), "r%d" % rate)
            os.makedirs(d, exist_ok=True)
            inj = write_injection(os.path.join(d, "users.csv"), bench.users(n), auth=target.aka)
            log("%s run %d/%d: %d/s for %d s (%d registrations)" % (series, run + 1, bench.runs, rate, bench.step_s, n))
            port = lab.free_port()
            load, res, udp, cpu = measure(
                target, lambda: Load(os.path.join(d, "sipp"), target.reg_scenario, target.sip, inj, rate, n,
                                     local_port=port, keys={"expires": 3600}),
                bench.step_s + 90, [port])
            st = step_record(rate, res, udp, cpu, "reg")
            steps.append(st)
            log("%s %d/s: %s; drops %s, SIPp %d, RcvbufErrors %s" % (
                series, rate, res.summary(), st["drops"], st["sipp_drops"], st["udp"].get("RcvbufErrors")))
            step_note(bench, "%s (run %d)" % (series, run + 1), st, load)
            if not st["pass"]:
                break
            best = rate
    finally:
        target.stop(bench, "%s run %d" % (series, run + 1))
    return {"steps": steps, "best": best}


def call_setup(bench, target, base):
    """Registers the callee and caller pairs and starts the SIPp UAS; returns
    (uac_port, uas_port, uas Popen, injection file, route)."""
    callers = [user_name(i) for i in range(bench.pairs)]
    callees = [user_name(bench.pairs + i) for i in range(bench.pairs)]
    # One flow per side (the P-CSCF binds an identity to the exact UDP address:port it
    # registered from): the callers register and call from uac_port, the callees register
    # from uas_port, where the UAS then answers (the P-CSCF sends to that flow).
    uac_port, uas_port = target.ports.get(), target.ports.get()
    log("call: registering %d callees from the UAS port %d and %d callers from the UAC port %d "
        "(the port they call from)" % (bench.pairs, uas_port, bench.pairs, uac_port))
    kw = {"scenario": target.reg_scenario, "aka": target.aka}
    got_b, _ = register(target.sip, callees, 200, os.path.join(base, "reg-callees"), local_port=uas_port, **kw)
    got_a, res_a = register(target.sip, callers, 200, os.path.join(base, "reg-callers"), local_port=uac_port, **kw)
    if len(got_a) < bench.pairs or len(got_b) < bench.pairs:
        raise lab.TestFailure("call: only %d/%d callers and %d/%d callees registered" %
                              (len(got_a), bench.pairs, len(got_b), bench.pairs))
    route = target.route(res_a)
    if not route:
        raise lab.TestFailure("call: no Service-Route in the callers' 200 (see %s)" % base)
    inj = write_injection(os.path.join(base, "pairs.csv"), callers, peers=callees, auth=target.aka)
    os.makedirs(os.path.join(base, "uas"), exist_ok=True)
    uas_out = open(os.path.join(base, "uas", "sipp.out"), "wb")
    uas = subprocess.Popen([SIPP, "-sf", os.path.join(SCENARIOS, "call_uas_load.xml"),
                            "-i", "127.0.0.1", "-p", str(uas_port), "-nostdin", "-trace_err",
                            "-default_behaviors", "all,-bye", "-l", "100000"],
                           cwd=os.path.join(base, "uas"), stdout=uas_out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    uas_out.close()
    time.sleep(0.5)
    return uac_port, uas_port, uas, inj, route


def call_load(bench, target, d, inj, rate, n, uac_port, route):
    return Load(d, "call_uac_load.xml", target.sip, inj, rate, n, local_port=uac_port, keys={"route": route},
                extra=["-d", str(bench.hold_ms)])


def call_run(bench, make_target, series, run, extend=0):
    """One run of the stepped call series on a fresh target: {"steps": [...], "best": rate,
    "refused": {reason: count}}."""
    refused_total = {}
    target = make_target(run)
    base = os.path.join(bench.out, series, "run%d" % (run + 1))
    uas = None
    steps, best = [], None
    try:
        uac_port, uas_port, uas, inj, route = call_setup(bench, target, base)
        rss0 = rss_now(target)
        for rate in stepped_rates(bench.call_rates, extend):
            n = rate * bench.step_s
            log("%s run %d/%d: %d/s for %d s (%d calls, hold %d ms)" % (
                series, run + 1, bench.runs, rate, bench.step_s, n, bench.hold_ms))
            if uas.poll() is not None:
                raise lab.TestFailure("call: the SIPp UAS exited (%s), see %s" % (uas.returncode, base))
            refused0 = target.refused()
            media0 = target.media_mark() if hasattr(target, "media_mark") else None
            load, res, udp, cpu = measure(
                target, lambda: call_load(bench, target, os.path.join(base, "r%d" % rate), inj, rate, n,
                                          uac_port, route),
                bench.step_s + bench.hold_ms / 1000.0 + 90, [uac_port, uas_port], uas=uas, rss=True)
            refused1 = target.refused()
            step_refused = {k: v - refused0.get(k, 0) for k, v in refused1.items() if v > refused0.get(k, 0)}
            for k, v in step_refused.items():
                refused_total[k] = refused_total.get(k, 0) + v
            st = step_record(rate, res, udp, cpu, "setup", step_refused)
            st["rss_start"] = rss0
            st["rss_samples"] = udp["rss"]
            st["rss"] = {nf: steady_rss(udp["rss"], nf) for nf in target.rss_names}
            st["rss_per_cps"] = {nf: (st["rss"][nf] - rss0[nf]) / float(rate)
                                 for nf in target.rss_names if st["rss"].get(nf) and nf in rss0}
            if media0 is not None:      # --anchor: rtpengine's and the P-CSCF's media figures
                st["media"] = target.media_step(media0)
                if st["media"]["problems"]:
                    st["reasons"].append("media")
                    st["pass"] = False
            steps.append(st)
            log("%s %d/s: %s; P-CSCF refusals: %s; drops %s, SIPp %d, RcvbufErrors %s; RSS %s KiB" % (
                series, rate, res.summary(), fmt_refused(step_refused), st["drops"], st["sipp_drops"],
                st["udp"].get("RcvbufErrors"), st["rss"]))
            if media0 is not None:
                log("%s %d/s: %s" % (series, rate, media_line(st)))
            step_note(bench, "%s (run %d)" % (series, run + 1), st, load)
            if not st["pass"]:
                break
            best = rate
    finally:
        if uas is not None and uas.poll() is None:
            uas.kill()
            uas.wait()
        target.stop(bench, "%s run %d" % (series, run + 1))
    return {"steps": steps, "best": best, "refused": refused_total}


def run_series(bench, phases):
    """The stepped series (ours: reg, call; the Kamailio reference: reg and call per worker
    count), run after run: run 1 of every series, then run 2, ... On a shared machine a
    slow minute then hits one run of each series, not every run of one of them."""
    plan = []
    if "reg" in phases:
        plan.append(("reg", "reg", lambda run: Ours(bench, "reg/run%d" % (run + 1)), 0))
    if "call" in phases:
        plan.append(("call", "call", lambda run: Ours(bench, "call/run%d" % (run + 1)), 0))
    if getattr(bench.args, "anchor", False):    # beside "call", run for run: the same calls, media anchored in rtpengine
        plan.append(("call-anchored", "call", lambda run: OursAnchored(bench, "call-anchored/run%d" % (run + 1)), 0))
    if "kamailio" in phases:
        if not bench.kamailio:
            why = "--no-kamailio" if bench.args.no_kamailio else "kamailio is not on PATH"
            bench.results["kamailio"] = {"skipped": why}
            log("kamailio comparison skipped (%s)" % why)
        else:
            bench.results["kamailio"] = {"binary": bench.kamailio, "version": kamailio_version(bench.kamailio),
                                         "series": {}}
            # --only kamailio: both series; with --only reg or --only call too: only those
            kinds = [k for k in ("reg", "call") if k in (bench.args.only or ())] or ["reg", "call"]
            for children in bench.kam_children:
                for kind in kinds:
                    series = "kamailio%d-%s" % (children, kind)
                    plan.append((series, kind, (lambda run, s=series, c=children: Kam(bench, "%s/run%d" % (s, run + 1), c)),
                                 bench.kam_extend))
    runs = {series: [] for series, _, _, _ in plan}
    failed = False
    for run in range(bench.runs):
        for series, kind, make, extend in plan:
            try:
                if kind == "reg":
                    runs[series].append(reg_run(bench, make, series, run, extend))
                else:
                    runs[series].append(call_run(bench, make, series, run, extend))
            except lab.TestFailure as e:
                failed = True
                bench.notes.append("%s run %d: could not be measured: %s" % (series, run + 1, str(e)[:1000]))
                log("%s run %d FAILED: %s" % (series, run + 1, str(e)[:1000]))
    for series, kind, _, _ in plan:
        r = {"runs": runs[series], "best": summarise(runs[series])}
        if kind == "call":
            r["pairs"] = bench.pairs
            r["refused"] = {}
            for one in runs[series]:
                for k, v in one["refused"].items():
                    r["refused"][k] = r["refused"].get(k, 0) + v
        if series in ("reg", "call", "call-anchored"):
            bench.results[series] = r
        else:
            r["children"] = int(series[len("kamailio"):].split("-")[0])
            bench.results["kamailio"]["series"][series] = r
    if "reg" in bench.results and bench.results["reg"]["best"]["median"]:
        bench.best_reg = int(bench.results["reg"]["best"]["median"])
    return failed
