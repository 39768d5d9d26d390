#!/usr/bin/env python3
"""CPU milliseconds per AKA registration, per NF (issue 16). A command run by hand, not a test.

    IMS_BUILD_DIR=build python3 tests/bench/cpu_per_reg.py [--runs 3] [--rate 300] [--count 6000]
                                                           [--users 20000] [--perf] [--stat]

bench_sip.py prints cpu% per NF rounded to whole percent over a wall time it does not store, which
is too coarse to compare builds. This script starts a fresh core (bench_core.Core, same overrides as
bench_sip: the failed-authentication limiters off) for each run, registers COUNT distinct users
once each at RATE/s with the same SIPp scenario (reg_aka_load.xml: REGISTER, 401, REGISTER, 200,
i.e. UAR, MAR, UAR, SAR and the P-CSCF's reg-event SUBSCRIBE/NOTIFY), and divides each NF's
utime+stime delta (/proc/PID/stat) by the registrations SIPp created. It prints every run, the
per-thread split of each NF, and the median over the runs.

IMS_LAB_PIN="pcscf=0,icscf=0,scscf=1,hss=1" in the environment starts each named NF on that one
CPU (tests/system/lab.py; what `taskset -c N` does): the threads of one NF then hand messages to
each other on one CPU instead of waking each other across CPUs.

--perf records `perf record -g` of each NF during the load (perf-<nf>.data in the run directory);
--stat records `perf stat` (task-clock, context switches, migrations, page faults, syscalls).
Both add overhead: compare builds with runs made without them. The machine may be shared: run the
builds to compare alternately (A, B, A, B, ...) rather than one after the other.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_core import Core, bench_overrides, seed_database  # noqa: E402
from bench_users import user_name, write_injection  # noqa: E402
from figures import dump_json  # noqa: E402
from machine import cpu_seconds, raise_nofile  # noqa: E402
from sipp_run import Load  # noqa: E402
from system_lab import lab  # noqa: E402

NFS = ("pcscf", "icscf", "scscf", "hss")


def threads(pid):
    """{tid: (name, cpu seconds)} of a process's threads."""
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            raw = open("/proc/%d/task/%s/stat" % (pid, t)).read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        f = raw.rsplit(")", 1)[1].split()
        out[t] = (name, (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def attach(cmds, core, d, what):
    procs = []
    for n in NFS:
        procs.append(subprocess.Popen(cmds(n, core.pid(n), d), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    return procs


def detach(procs):
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        p.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20000, help="subscribers imported (default 20000)")
    p.add_argument("--rate", type=int, default=300, help="registrations per second (default 300)")
    p.add_argument("--count", type=int, default=6000, help="registrations per run (default 6000)")
    p.add_argument("--runs", type=int, default=3, help="runs, each on a fresh core (default 3)")
    p.add_argument("--seed", help="an HSS database made by an earlier run (seed/seed.db) to reuse")
    p.add_argument("--perf", action="store_true", help="perf record -g each NF during the load")
    p.add_argument("--stat", action="store_true", help="perf stat each NF during the load")
    p.add_argument("--out", help="output directory (default /tmp/ims-cpu-<time>)")
    a = p.parse_args()

    out = a.out or "/tmp/ims-cpu-%s" % time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(out, exist_ok=True)
    raise_nofile()
    seed = a.seed or seed_database(os.path.join(out, "seed"), a.users)[0]
    print("build %s, output %s, seed %s" % (lab.BUILD_DIR, out, seed), flush=True)
    rows = []
    for r in range(a.runs):
        core = Core(os.path.join(out, "core%d" % r), seed, bench_overrides(())[0])
        try:
            users = [user_name((r * a.count + i) % a.users) for i in range(a.count)]
            d = os.path.join(out, "r%d" % r)
            os.makedirs(d, exist_ok=True)
            inj = write_injection(os.path.join(d, "users.csv"), users)
            time.sleep(1)
            extra = []
            if a.perf:
                extra += attach(lambda n, pid, d: ["perf", "record", "-g", "-F", "999", "-o",
                                                   os.path.join(d, "perf-%s.data" % n), "-p", str(pid)],
                                core, d, "perf")
            if a.stat:
                extra += attach(lambda n, pid, d: ["perf", "stat", "-e", "task-clock,context-switches,"
                                                   "cpu-migrations,page-faults,raw_syscalls:sys_enter",
                                                   "-o", os.path.join(d, "stat-%s.txt" % n), "-p", str(pid)],
                                core, d, "stat")
            if extra:
                time.sleep(0.5)
            c0 = {n: cpu_seconds(core.pid(n)) for n in NFS}
            t0 = {n: threads(core.pid(n)) for n in NFS}
            load = Load(os.path.join(d, "sipp"), "reg_aka_load.xml", "127.0.0.1:%d" % core.lab.pcscf_sip,
                        inj, a.rate, a.count, keys={"expires": 3600})
            load.wait(a.count / a.rate + 90)
            c1 = {n: cpu_seconds(core.pid(n)) for n in NFS}
            t1 = {n: threads(core.pid(n)) for n in NFS}
            detach(extra)
            res = load.result()
            ms = {n: 1000.0 * (c1[n] - c0[n]) / res.created for n in NFS}
            ms["total"] = sum(ms.values())
            row = {"run": r, "created": res.created, "ok": res.ok, "failed_core": res.failed_core,
                   "quirk": res.quirk, "timeouts": res.timeouts, "p50_ms": res.pct("reg", 50),
                   "p99_ms": res.pct("reg", 99), "ms_per_reg": {k: round(v, 3) for k, v in ms.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
            for n in NFS:
                per = sorted(((t1[n][t][1] - t0[n].get(t, (None, 0.0))[1]) * 1000.0 / res.created, t)
                             for t in t1[n])
                print("  %-5s threads, ms/reg: %s" % (n, ", ".join("%s=%.3f" % (tid, v) for v, tid in reversed(per)
                                                                   if v >= 0.005)), flush=True)
        finally:
            core.stop()
    med = {}
    for n in NFS + ("total",):
        v = sorted(x["ms_per_reg"][n] for x in rows)
        med[n] = v[len(v) // 2]
    print("median CPU ms per registration over %d run(s): %s" % (len(rows), json.dumps(med)), flush=True)
    dump_json(os.path.join(out, "cpu.json"), {"rows": rows, "median": med, "rate": a.rate, "count": a.count})
    return 0


if __name__ == "__main__":
    sys.exit(main())
