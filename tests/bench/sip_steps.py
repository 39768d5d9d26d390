"""One step of a bench_sip.py series and its verdict: registering users (with retries for SIPp's
AKA quirk), running a load with the kernel's UDP counters, CPU and VmRSS watched around it, the
step's record and why it fails, the notes it leaves, the rates a series steps through and the
highest rate its runs passed.

Python 3 standard library only.
"""

import os

from bench_users import write_injection
from figures import median
from machine import children_cpu, cpu_seconds, host_cpu_seconds, rss_kib
from sip_bench import FAIL_LIMIT, KEEP_UP, NFS
from sipp_results import sipp_errors_summary
from sipp_run import Load
from system_lab import lab
from udp_counters import UdpWatch


def other_codes(res):
    """Final codes of failed registrations other than 503 and SIPp's quirk 403s."""
    codes = dict(res.codes)
    codes.pop("503", None)
    codes["403"] = codes.get("403", 0) - res.quirk
    return ",".join("%s:%d" % kv for kv in sorted(codes.items()) if kv[1] > 0) or "-"


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


def heap(core, nf):
    """process_heap_inuse_bytes of an NF in KiB (None when it does not export it)."""
    try:
        v = core.metric(nf, "process_heap_inuse_bytes")
    except (lab.TestFailure, OSError):
        return None
    return None if v is None else v / 1024.0


def core_cpu(core):
    c = {n: cpu_seconds(core.pid(n)) for n in NFS}
    c["sipp"] = children_cpu()
    return c


def cpu_pct(before, after, seconds):
    return "/".join("%.0f" % (100.0 * (after[n] - before[n]) / seconds) for n in NFS + ("sipp",)) if seconds else "-"


def target_cpu(target, uas=None):
    """CPU seconds so far of the target's processes, of SIPp, and of the whole machine ("host":
    busy, "steal": taken by the hypervisor), so that a step's cpu% shows all of them."""
    c = target.cpu()
    c["sipp"] = children_cpu()
    c["host"], c["steal"] = host_cpu_seconds()
    if uas is not None:
        try:
            c["sipp"] += cpu_seconds(uas.pid)
        except (OSError, IndexError, ValueError):
            pass
    return c


def register(sip, users, rate, d, local_port=None, expires=3600, rounds=4,
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
        inj = write_injection(os.path.join(d, "users-%d.csv" % r), todo, auth=aka)
        r_rate = max(20, rate >> r)     # retries at half the rate each round
        load = Load(os.path.join(d, "round%d" % r), scenario, sip,
                    inj, r_rate, len(todo), local_port=local_port, keys={"expires": expires})
        res = load.wait(len(todo) / r_rate + 60).result(aka_check=aka)
        results.append(res)
        done.update(res.ok_users)
        todo = [u for u in todo if u not in done]
    return done, results


def measure(target, make_load, timeout, sipp_ports, uas=None, rss=False):
    """Runs one step: the load make_load() starts, with the kernel's UDP counters of the
    target's sockets and SIPp's (and VmRSS of the target's rss_pids when rss) watched around
    it. Returns (Load, Result, UdpWatch figures, cpu% {name: pct})."""
    groups = dict(target.sockets())
    groups["sipp"] = list(sipp_ports)
    watch = UdpWatch(groups, rss=target.rss_pids() if rss else None)
    c0 = target_cpu(target, uas)
    try:
        load = make_load()
        load.wait(timeout)
    finally:
        udp = watch.stop()
    c1 = target_cpu(target, uas)
    res = load.result(aka_check=target.aka)
    target.alive()
    secs = load.elapsed or 0
    cpu = {n: (100.0 * (c1[n] - c0[n]) / secs if secs else None) for n in c1}
    return load, res, udp, cpu


def step_record(rate, res, udp, cpu, rtd, refused=None):
    drops_ours = {g: v for g, v in udp["drops"].items() if g != "sipp"}
    why = reasons(res, rate, drops_ours, refused)
    return {"rate": rate, "achieved": res.achieved, "made": res.created, "ok": res.ok, "failed": res.failed,
            "failed_core": res.failed_core, "quirk": res.quirk, "timeouts": res.timeouts, "rej503": res.rej503,
            "codes": dict(res.codes), "other": other_codes(res), "fail_ratio": res.fail_ratio(),
            "p50": res.pct(rtd, 50), "p99": res.pct(rtd, 99), "cpu": cpu,
            "drops": drops_ours, "sipp_drops": udp["drops"].get("sipp", 0), "rx_queue_max": udp["rx_queue_max"],
            "udp": udp["udp"], "refused": refused or {}, "reasons": why, "pass": not why}


# Steal (% of one core) from which a step gets a note: a few % is scheduling noise.
STEAL_NOTE_PCT = 5


def step_note(bench, series, st, load):
    if not st["pass"]:
        bench.notes.append("%s %d/s: failed (%s); SIPp's aborted calls: %s" % (
            series, st["rate"], ",".join(st["reasons"]), sipp_errors_summary(load)))
    if st["drops"] and any(st["drops"].values()):
        bench.notes.append("%s %d/s: the kernel dropped datagrams at the target's SIP sockets (/proc/net/udp drops): %s" % (
            series, st["rate"], ", ".join("%s %d" % kv for kv in st["drops"].items() if kv[1])))
    steal = (st.get("cpu") or {}).get("steal")
    if steal is not None and steal >= STEAL_NOTE_PCT:
        bench.notes.append("%s %d/s: the hypervisor took %.0f%% of a core from this machine (steal, /proc/stat) "
                           "during the step: its figures understate the software measured" % (series, st["rate"], steal))
    if st["sipp_drops"]:
        bench.notes.append("%s %d/s: the kernel dropped %d datagrams at SIPp's sockets: the load generator did not "
                           "keep up (its figures at this step are suspect)" % (series, st["rate"], st["sipp_drops"]))


def stepped_rates(rates, extend):
    """The configured rates, then (extend > 0, the reference) up to extend more at x1.5 each
    while the run still passes (a reference that passes every step gives no ratio)."""
    for r in rates:
        yield r
    last = rates[-1] if rates else 100
    for _ in range(extend):
        last = int(round(last * 1.5 / 50.0) * 50)
        yield last


def summarise(runs):
    """The highest passing rate over the runs: median, min, max, per run; capped when a run
    passed its last step (its figure is a lower bound)."""
    bests = [r["best"] or 0 for r in runs]
    capped = any(r["steps"] and r["steps"][-1]["pass"] for r in runs)
    return {"median": median(bests) if runs else None, "min": min(bests) if runs else None,
            "max": max(bests) if runs else None, "per_run": [r["best"] for r in runs], "capped": capped}


def rss_now(target):
    out = {}
    for name, pid in target.rss_pids().items():
        try:
            out[name] = rss_kib(pid)
        except (OSError, RuntimeError):
            pass
    return out
