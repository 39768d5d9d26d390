"""The printed report of bench_sip.py: the machine, one table per stepped series (median
(min-max) over the runs per rate), the highest passing rates, the Kamailio comparison, the steady,
mem and overload figures, the legend and the notes; and results.json in the output directory.

Python 3 standard library only.
"""

import os
import time

import sipp_run
from figures import dump_json, fmt_ms, median, spread, spread_ms, table
from kamailio_ref import KAMAILIO_HINT
from machine import machine_line
from sip_bench import FAIL_LIMIT, IDLE_S, KEEP_UP, NFS, RSS_NFS
from sip_anchor import report_anchor
from sip_targets import Kam, Ours, fmt_refused


def fmt_n(v):
    return "?" if v is None else "%d" % v


def per_run(values, fmt="%d"):
    """The runs' values side by side ("0" when all are 0): for counts that must be 0."""
    if not any(values):
        return "0"
    return ",".join(fmt % v for v in values)


def series_table(r, kind, call):
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
                "cpu% " + ("p/i/s/h/sipp" if ours else "kam/sipp"), "host% busy/steal"]
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
                fmt_ms(median([st["p50"] for st in sts])), spread_ms([st["p99"] for st in sts])]
        drops = ["/".join("%d" % st["drops"].get(s, 0) for s in socks) for st in sts]
        row += ["0" if all(set(d) <= set("0/") for d in drops) else ",".join(drops),
                per_run([st["sipp_drops"] for st in sts]),
                per_run([st["udp"].get("RcvbufErrors", 0) for st in sts]),
                cpu_cells(sts, cpus), cpu_cells(sts, ("host", "steal"))]
        if call and ours:
            row += ["/".join(fmt_mib(median([st["rss"].get(nf) for st in sts])) for nf in RSS_NFS),
                    "/".join(fmt_num(median([st["rss_per_cps"].get(nf) for st in sts])) for nf in RSS_NFS)]
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


def cpu_cells(sts, names):
    """The median cpu% of each of names over the steps sts, joined with '/'."""
    return "/".join(fmt_pct(median([st["cpu"].get(c) for st in sts])) for c in names)


def fmt_pct(v):
    return "-" if v is None else "%.0f" % v


def fmt_mib(kib):
    return "-" if kib is None else "%.0f" % (kib / 1024.0)


def fmt_num(v):
    return "-" if v is None else "%.1f" % v


def best_line(r, rtd_name, unit):
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
        fmt_ms(median([st["p50"] for st in at_best])), spread_ms([st["p99"] for st in at_best]),
        "\n      (a run passed its last step: the highest rate is a lower bound)" if b["capped"] else ""))


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


def fmt_best(b, scale=1):
    if not b or b["median"] is None:
        return "-"
    s = "%.0f" % (b["median"] * scale)
    if b["min"] != b["max"]:
        s += " (%d-%d)" % (b["min"] * scale, b["max"] * scale)
    return s + ("+" if b["capped"] else "")


def report_kamailio(bench):
    k = bench.results["kamailio"]
    print("\n3. Reference: %s, one hop (proxy + registrar, usrloc in memory, no authentication; "
          "kamailio.cfg in the output directory), same SIPp steps" % k["version"])
    for name, r in k["series"].items():
        call = name.endswith("-call")
        print("\n   %s: %s, children=%d" % (name, "calls (same call scenarios, one hop)" if call else
                                         "plain registrations (REGISTER -> 200)", r["children"]))
        headers, rows = series_table(r, "kamailio", call)
        r["table"] = {"headers": headers, "rows": rows}
        print(table(headers, rows))
        print(best_line(r, "setup time" if call else "registration time", "calls/s" if call else "registrations/s"))
    ours_reg = bench.results.get("reg", {}).get("best")
    ours_call = bench.results.get("call", {}).get("best")
    headers = ["highest passing rate (median (min-max))", "ours"]
    rows = [["registrations/s (ours AKA: 2 REGISTERs each)", fmt_best(ours_reg)],
            ["REGISTER requests/s", fmt_best(ours_reg, 2)],
            ["calls/s", fmt_best(ours_call)]]
    for c in bench.kam_children:
        kr = k["series"].get("kamailio%d-reg" % c, {}).get("best")
        kc = k["series"].get("kamailio%d-call" % c, {}).get("best")
        headers += ["kamailio children=%d" % c, "ours/kamailio"]
        rows[0] += [fmt_best(kr), ratio(ours_reg, kr)]
        rows[1] += [fmt_best(kr), ratio(ours_reg, kr, 2.0)]
        rows[2] += [fmt_best(kc), ratio(ours_call, kc)]
        k.setdefault("ratios", {})["children=%d" % c] = {
            "registrations": rows[0][-1], "register_requests": rows[1][-1], "calls": rows[2][-1]}
    print("\n   Comparison (ours: P-CSCF -> I-CSCF -> S-CSCF + HSS over Cx, AKA; Kamailio: one process, one hop, no auth):")
    print(table(headers, rows))
    print("   + = a run passed its last step (a lower bound, the ratio then '<=' or '>='); %s" % (
        "the reference continues x1.5 up to %d steps past the configured rates while it passes." % bench.kam_extend
        if bench.kam_extend else "no extra reference steps (--kamailio-extend 0): a ratio needs a failing step."))


def report_steady(bench):
    s = bench.results["steady"]
    print("\n4. Steady call load: %d calls/s for %d s (hold %d ms): made %d, failed %d (%.2f%%), done/s %.0f, "
          "setup p99 %s ms" % (s["rate"], s["seconds"], bench.hold_ms, s["made"], s["failed"], 100 * s["fail_ratio"],
                               s["achieved"], fmt_ms(s["p99"])))
    rows = [[t] + [fmt_mib(r.get(nf)) for nf in RSS_NFS] for t, r in s["timeline"]]
    print(table(["t s"] + ["%s RSS MiB" % nf for nf in RSS_NFS], rows))
    print("   steady RSS (median of the second half) %s MiB; growth over the second half %s KiB/min; RSS per call/s"
          " (steady - before the calls) / rate: %s KiB" % (
              "/".join(fmt_mib(s["rss_steady"].get(nf)) for nf in RSS_NFS),
              "/".join(fmt_num(s["growth_kib_per_min"].get(nf)) for nf in RSS_NFS),
              "/".join(fmt_num(s["rss_per_cps"].get(nf)) for nf in RSS_NFS)) + " (pcscf/scscf)")
    print("   kernel drops at our SIP sockets p/i/s: %s, at SIPp's: %d, RcvbufErrors (machine): %s; %s" % (
        "/".join("%d" % s["drops"].get(n, 0) for n in Ours.sock_names), s["sipp_drops"],
        s["udp"].get("RcvbufErrors", "?"),
        "FAIL: " + ",".join(s["reasons"]) if s["reasons"] else "pass (same rule as a step)"))


def report(bench, facts, seed_s, started):
    """Prints the tables (and writes results.json in the output directory)."""
    print()
    print("=" * 100)
    print("IMS core SIP benchmark (tests/bench/bench_sip.py%s)" % (" --quick" if bench.quick else ""))
    print(machine_line(facts))
    for k, v in facts.items():
        print("  %-22s %s" % (k + ":", v))
    print("  %-22s %s" % ("subscribers:", "%d (HSS import %.1f s = %.0f/s)" % (bench.n_users, seed_s, bench.n_users / seed_s)))
    print("  %-22s %s" % ("runs per series:", "%d (each on a fresh core; %d s per step)" % (bench.runs, bench.step_s)))
    print("  %-22s %s" % ("output:", bench.out))
    print("  %-22s %s" % ("config changes:", "; ".join(bench.config_notes) or "none (log level error)"))
    print("  NOTE: the machine is shared with other jobs; absolute figures depend on its load.")
    if "reg" in bench.results:
        r = bench.results["reg"]
        print("\n1. AKA registrations (REGISTER/401/REGISTER/200 via P-CSCF, I-CSCF, S-CSCF + HSS; %d s per step, "
              "%d run(s))" % (bench.step_s, len(r["runs"])))
        headers, rows = series_table(r, "ims", False)
        r["table"] = {"headers": headers, "rows": rows}
        print(table(headers, rows))
        print(best_line(r, "registration time", "registrations/s"))
    if "call" in bench.results:
        r = bench.results["call"]
        print("\n2. Calls (INVITE/180/200/ACK, %d ms hold, BYE/200; orig + term S-CSCF; %d caller/callee pairs; "
              "%d run(s))" % (bench.hold_ms, r["pairs"], len(r["runs"])))
        headers, rows = series_table(r, "ims", True)
        r["table"] = {"headers": headers, "rows": rows}
        print(table(headers, rows))
        print(best_line(r, "setup time (INVITE->200)", "calls/s"))
        print("   P-CSCF refusals during the calls (pcscf_refused_total; callers call from the UDP port they"
              " registered from): %s" % fmt_refused(r["refused"]))
    report_anchor(bench, series_table, table, best_line, fmt_best)
    k = bench.results.get("kamailio")
    if k and k.get("skipped"):
        print("\n3. Kamailio comparison: skipped (%s); to get it: %s" % (k["skipped"], KAMAILIO_HINT))
    elif k:
        report_kamailio(bench)
    if "steady" in bench.results:
        report_steady(bench)
    if "mem" in bench.results:
        r = bench.results["mem"]
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
            elif bench.quick:
                print("   (--quick: no idle wait, so no live-heap figure)")
            if a["quirk"]:
                print("   (%d registrations were answered wrongly by SIPp (RES with 0x00) and done again)" % a["quirk"])
    if "overload" in bench.results:
        r = bench.results["overload"]
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
    print("host% = the whole machine's busy CPU and its steal (/proc/stat), same unit: busy near 100 x cores")
    print("means the cores were saturated; steal is time a hypervisor gave to another guest.")
    print("RSS p/s = median VmRSS of pcscf/scscf over the second half of the step (sampled every second);")
    print("KiB per call/s = (that RSS - RSS after the registrations) / the step's rate. A step shorter than")
    print("Timer J (32 s, the BYE transactions kept) still sees RSS rising: --steady MIN gives the steady state.")
    print("Times are SIPp's -trace_rtt values: whole ms, advancing in steps of SIPp's event loop (a few ms).")
    if sipp_run.FAILED_STARTS:
        print("SIPp 3.6.1 failed to load its AKA keys at %d start(s) (\"invalid [keyword]\", its key parsing):" %
              len(sipp_run.FAILED_STARTS))
        print("those runs were started again (nothing had reached the core but at most one request).")
    for d, made in sipp_run.MIDRUN_ABORTS:
        print("note: SIPp 3.6.1 stopped after %d calls (\"invalid [keyword]\", its AKA key parsing) in %s;%s" %
              (made, d, " the overload phase reports what it made" if "/overload/" in d else
               " the remaining calls were made by a new SIPp process"))
    for note in bench.notes:
        print("note: " + note)
    print("total run time: %.0f s" % (time.monotonic() - started))
    dump_json(os.path.join(bench.out, "results.json"),
              {"facts": facts, "machine": machine_line(facts), "args": vars(bench.args),
               "runs": bench.runs, "step_s": bench.step_s, "results": bench.results, "notes": bench.notes})
