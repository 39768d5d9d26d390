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

from bench_core import seed_database  # noqa: E402
from kamailio_ref import KAMAILIO_HINT, kamailio_version  # noqa: E402
from machine import machine_facts, machine_line, raise_nofile  # noqa: E402
from sip_anchor import anchor_unsupported  # noqa: E402
from sip_bench import Bench, log  # noqa: E402
import sip_phases  # noqa: E402
from sip_report import report  # noqa: E402
from sip_series import run_series  # noqa: E402
from system_lab import lab  # noqa: E402

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
    p.add_argument("--anchor", action="store_true",
                   help="add the series 'call-anchored': the calls with the P-CSCF anchoring media in a real rtpengine "
                        "started by the benchmark (pcscf.media.anchor), beside 'call' in the same run; rtpengine's "
                        "sessions/errors per step. Refused when the P-CSCF build has no pcscf.media")
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

    if args.anchor:
        why = anchor_unsupported()
        if why:
            print(why, file=sys.stderr)
            return 2
    started = time.monotonic()
    nofile = raise_nofile()
    bench = Bench(args)
    facts = machine_facts()
    facts["open files"] = nofile
    if bench.kamailio:
        facts["kamailio"] = "%s (%s)" % (kamailio_version(bench.kamailio), bench.kamailio)
    else:
        facts["kamailio"] = "not measured (%s)" % ("--no-kamailio" if args.no_kamailio else
                                                   "not on PATH: " + KAMAILIO_HINT)
    log(machine_line(facts))
    log("build %s, output %s, %d run(s) per stepped series" % (lab.BUILD_DIR, bench.out, bench.runs))
    if not bench.kamailio and not args.no_kamailio:
        log("kamailio is not on PATH: the Kamailio comparison is skipped (to get it: %s)" % KAMAILIO_HINT)
    log("importing %d subscribers into a fresh HSS database" % bench.n_users)
    bench.seed_db, seed_s = seed_database(os.path.join(bench.out, "seed"), bench.n_users)
    log("imported in %.1f s" % seed_s)
    # 'steady' runs when --steady gives its length (with --only, when 'steady' is listed too)
    phases = [p for p in (args.only or PHASES) if p != "steady" or args.steady]
    if args.only and "steady" in args.only and not args.steady:
        bench.notes.append("steady: not run (give --steady MIN)")
    failed = run_series(bench, phases)
    for name, phase in (("steady", sip_phases.steady), ("mem", sip_phases.mem), ("overload", sip_phases.overload)):
        if name not in phases:
            continue
        try:
            phase(bench)
        except lab.TestFailure as e:
            failed = True
            bench.notes.append("%s: could not be measured: %s" % (name, str(e)[:1500]))
            log("%s FAILED: %s" % (name, str(e)[:1500]))
    report(bench, facts, seed_s, started)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
