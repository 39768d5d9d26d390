#!/usr/bin/env python3
"""State-store benchmark (issue 14): AKA registrations/s and calls/s through the whole core with
the CSCFs' state in memory or in Redis and the HSS's subscribers in SQLite or PostgreSQL, side by
side in one run, the Redis memory each registered user costs with both CSCFs writing, and the
NFs' store latency. A command run by hand (not a ctest); it prints figures and asserts nothing
about speed.

    python3 tests/bench/bench_store.py [--quick] [--configs NAME,..] [--only reg|call] [--runs N]
        [--users N] [--reg-rates R1,..] [--call-rates R1,..] [--step S] [--pairs N] [--set ..]
    env IMS_BUILD_DIR (use a Release or RelWithDebInfo build; tests/bench/run.sh makes one)

Configurations (--configs, default all four, in this order):
  memory+sqlite       the baseline: CSCF state in memory, the HSS on its SQLite file
  redis+sqlite        the S-CSCF and the P-CSCF on one Redis (store.backend redis, the P-CSCF
                      with pcscf.key_file), the HSS on SQLite
  memory+postgresql   CSCF state in memory, the HSS on PostgreSQL (hss.store.backend postgresql)
  redis+postgresql    both

The series are bench_sip.py's (sip_series.reg_run and call_run: the same SIPp scenarios, steps,
pass rules, kernel drop counters and report table, sip_report.series_table): each run of a series
starts a fresh core; for Redis a fresh redis-server on a free port (tests/system/lab_redis.py, no
persistence: the figure is the client side and Redis's memory, not its disk), for PostgreSQL a
fresh database copied (CREATE DATABASE ... TEMPLATE) from the one the subscribers were imported
into once, on one server of our own for the whole benchmark (tests/component/pgserver.py: loopback,
fsync on, as in production). The runs are interleaved (run 1 of every configuration's series,
then run 2, ...) so that a slow minute of the shared machine hits one run of each.

Before a core stops, its figures are read: per CSCF and op the store's request latency
(store_request_seconds{backend,op}: p50/p99 estimated from the histogram buckets as Prometheus'
histogram_quantile does, and the exact mean) and store_errors_total; the HSS's
hss_store_operation_seconds and hss_store_errors_total; for Redis, INFO memory used_memory growth
since the core started over scscf_registrations (bytes per registered user: the S-CSCF's
registration record and the P-CSCF's binding, both CSCFs writing), DBSIZE and Redis's CPU seconds.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_core import seed_database  # noqa: E402
from figures import dump_json, median, spread, table  # noqa: E402
from machine import machine_facts, machine_line, raise_nofile  # noqa: E402
from sip_bench import log  # noqa: E402
from sip_report import best_line, fmt_best, series_table  # noqa: E402
from sip_series import call_run, reg_run  # noqa: E402
from sip_steps import summarise  # noqa: E402
from sip_targets import Ours  # noqa: E402
from store_core import CONFIGS, SEED_DB, StoreBench  # noqa: E402
from system_lab import lab  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    rates = lambda s: [int(x) for x in s.split(",") if x.strip()]  # noqa: E731
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1,000 users, steps 100,200/s (calls 50,100/s) of 4 s, 200 pairs, 1 run")
    p.add_argument("--configs", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   metavar="NAME,..", help="configurations to run (default all: %s)" % ",".join(CONFIGS))
    p.add_argument("--only", choices=("reg", "call"), action="append", help="only this series (repeatable)")
    p.add_argument("--runs", type=int, help="runs of each series, each on a fresh core (default 2, quick 1)")
    p.add_argument("--users", type=int, help="subscribers (default 20000, quick 1000)")
    p.add_argument("--step", type=int, help="seconds per rate step (default 8, quick 4)")
    p.add_argument("--reg-rates", type=rates, metavar="R1,R2,..", help="registration rate steps (per second; default 300,600,900,1200, quick 100,200)")
    p.add_argument("--call-rates", type=rates, metavar="R1,R2,..", help="call rate steps (per second; default 400,800,1200,1600, quick 50,100)")
    p.add_argument("--pairs", type=int, help="caller/callee pairs of the call series (default 2000, quick 200)")
    p.add_argument("--set", action="append", metavar="NF.SECTION.KEY=VALUE",
                   help="config override for every core (repeatable)")
    p.add_argument("--out", help="output directory (default /tmp/ims-bench-store-<time>)")
    # what sip_bench.Bench reads and this benchmark does not offer: no Kamailio reference here
    p.set_defaults(no_kamailio=True, kamailio_children=None, kamailio_extend=0, anchor=False)
    args = p.parse_args()
    args.configs = args.configs or list(CONFIGS)
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error("unknown configuration(s) %s (known: %s)" % (",".join(unknown), ",".join(CONFIGS)))
    args.runs = args.runs or (1 if args.quick else 2)
    args.users = args.users or (1000 if args.quick else 20000)
    args.step = args.step or (4 if args.quick else 8)
    if not args.quick:
        # up to and past the baseline's limits on the 2-core machine (README: 1,000 registrations/s,
        # 1,400 calls/s), from a rate a busy machine still passes
        args.reg_rates = args.reg_rates or [300, 600, 900, 1200]
        args.call_rates = args.call_rates or [400, 800, 1200, 1600]
    args.out = args.out or "/tmp/ims-bench-store-%s" % time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(args.out, exist_ok=True)
    return args


def seed(args, n_users):
    """The subscribers, imported once: into an SQLite file when a configuration uses SQLite, and
    into the database SEED_DB of a PostgreSQL server started here when one uses PostgreSQL.
    Returns (sqlite path or None, PgServer or None, {backend: import seconds})."""
    db, pg, took = None, None, {}
    if any(not CONFIGS[c][1] for c in args.configs):
        log("importing %d subscribers into SQLite" % n_users)
        db, took["sqlite"] = seed_database(os.path.join(args.out, "seed"), n_users)
    if any(CONFIGS[c][1] for c in args.configs):
        import pgserver  # noqa: E402  (tests/component, on the path through system_lab)
        pg = pgserver.PgServer()
        log("PostgreSQL %s on 127.0.0.1:%d; importing %d subscribers into it" % (pg.bindir, pg.port, n_users))
        try:
            _, took["postgresql"] = seed_database(os.path.join(args.out, "seed-pg"), n_users, hss_store={
                "backend": "postgresql", "conninfo": pg.createdb(SEED_DB)})
        except BaseException:
            pg.close()      # a server of our own: never left running
            raise
    return db, pg, took


def run_all(args, benches):
    """Run after run, every configuration's reg then call series on fresh cores."""
    kinds = [k for k in ("reg", "call") if k in (args.only or ("reg", "call"))]
    runs = {(c, k): [] for c in benches for k in kinds}
    for run in range(args.runs):
        for config, bench in benches.items():
            for kind in kinds:
                series = "%s-%s" % (config, kind)
                make = (lambda r, b=bench, s=series: Ours(b, "%s/run%d" % (s, r + 1)))
                log("%s run %d/%d (load average %.1f)" % (series, run + 1, args.runs, os.getloadavg()[0]))
                try:
                    runs[(config, kind)].append((reg_run if kind == "reg" else call_run)(bench, make, series, run))
                except lab.TestFailure as e:
                    bench.notes.append("%s run %d: could not be measured: %s" % (series, run + 1, str(e)[:1000]))
                    log("%s run %d FAILED: %s" % (series, run + 1, str(e)[:1000]))
    return {key: {"runs": r, "best": summarise(r)} for key, r in runs.items()}


def fmt_int(v):
    return "-" if v is None else "%d" % v


def ms(v):
    return "-" if v is None else ("%.2f" % (v * 1000.0))


def store_rows(bench):
    """One row per series, NF and store op: requests, mean/p50/p99 ms (median over the series'
    runs, each a core of its own), errors per run."""
    rows = []
    series = []
    for f in bench.store_runs:
        name = f["core"].split("/run")[0]
        if "store" in f and name not in series:
            series.append(name)
    for name in series:
        figs = [f for f in bench.store_runs if "store" in f and f["core"].split("/run")[0] == name]
        keys = []
        for f in figs:
            for nf, s in f["store"].items():
                keys += [(nf, op) for op, row in s["ops"].items() if row and (nf, op) not in keys]
        for nf, op in keys:
            got = [g for g in (f["store"][nf]["ops"].get(op) for f in figs) if g]
            backend = next((f["store"][nf].get("backend") for f in figs if f["store"][nf].get("backend")), None)
            where = "hss (%s)" % ("postgresql" if bench.pg else "sqlite") if nf == "hss" else "%s (%s)" % (nf, backend)
            rows.append([name, where, op, spread([g["count"] for g in got], "%d"),
                         ms(median([g["mean"] for g in got])), ms(median([g["p50"] for g in got])),
                         ms(median([g["p99"] for g in got])),
                         ",".join(str(f["store"][nf]["errors"]) for f in figs)])
    return rows


def report(args, facts, benches, results, took, started):
    print()
    print("=" * 100)
    print("State-store benchmark (tests/bench/bench_store.py %s)" % " ".join(sys.argv[1:]))
    print(machine_line(facts))
    first = next(iter(benches.values()))
    print("  subscribers: %d (import %s); %d run(s) per series, %d s per step; output %s" % (
        first.n_users, ", ".join("%s %.1f s" % kv for kv in took.items()), args.runs, first.step_s, args.out))
    print("  config changes: %s" % ("; ".join(first.config_notes) or "none (log level error)"))
    print("  NOTE: the machine is shared with other jobs; absolute figures depend on its load "
          "(load average at each series' start: in the log lines above and results.json).")
    n = 0
    for config, bench in benches.items():
        for kind, what, rtd, unit in (("reg", "AKA registrations", "registration time", "registrations/s"),
                                      ("call", "calls (%d ms hold, %d pairs)" % (bench.hold_ms, bench.pairs),
                                       "setup time (INVITE->200)", "calls/s")):
            r = results.get((config, kind))
            if r is None:
                continue
            n += 1
            print("\n%d. %s: %s (%d run(s))" % (n, config, what, len(r["runs"])))
            headers, rows = series_table(r, "ims", kind == "call")
            print(table(headers, rows))
            print(best_line(r, rtd, unit))
    print("\nHighest passing rate, median (min-max) over the runs ('+': a run passed its last step)")
    rows = []
    for config, bench in benches.items():
        per_user = [f["redis_bytes_per_user"] for f in bench.store_runs if f.get("redis_bytes_per_user")]
        rows.append([config, fmt_best(results.get((config, "reg"), {}).get("best")),
                     fmt_best(results.get((config, "call"), {}).get("best")),
                     spread(per_user) if per_user else "-"])
    print(table(["configuration", "AKA registrations/s", "calls/s", "Redis bytes per registered user"], rows))
    print("\nRedis per core (both CSCFs writing): used_memory growth since the core started / scscf_registrations")
    rows = [[b.config, f["core"], fmt_int(f.get("registered")), fmt_int(f.get("bindings")), f.get("redis_keys"),
             f.get("redis_bytes"),
             "%.0f" % f["redis_bytes_per_user"] if f.get("redis_bytes_per_user") else "-",
             "%.1f" % f["redis_cpu_s"] if "redis_cpu_s" in f else "-"]
            for b in benches.values() if b.on_redis for f in b.store_runs]
    if rows:
        print(table(["configuration", "core", "registered", "pcscf bindings", "keys", "bytes", "bytes/user",
                     "redis CPU s"], rows))
    print("\nStore latency per series (median over its runs, each a core of its own, from start to stop; p50/p99")
    print("estimated from the histogram buckets 0.5/1/2.5/5/10/25 ms ..., the mean is exact; errors per run). The")
    print("CSCFs' store_request_seconds (request to completion on the SIP loop) exists with Redis only: with the")
    print("memory backend they keep their state in their own tables. hss: hss_store_operation_seconds.")
    rows = [row for b in benches.values() for row in store_rows(b)]
    print(table(["series", "NF (backend)", "op", "requests", "mean ms", "p50 ms", "p99 ms", "errors"], rows))
    print("\nA step passes with fail% < 0.1 (SIPp's AKA quirk counted apart), done/s >= 85% of the rate, no P-CSCF")
    print("refusal and no kernel drop at the CSCFs' SIP sockets (drops p/i/s); columns as in bench_sip.py.")
    for b in benches.values():
        for note in b.notes:
            print("note: %s: %s" % (b.config, note))
    loads = [f["load"] for b in benches.values() for f in b.store_runs]
    if loads:
        print("load average (1 min) when each core stopped: min %.1f, median %.1f, max %.1f (2 cores)" % (
            min(loads), median(loads), max(loads)))
    print("total run time: %.0f s" % (time.monotonic() - started))
    dump_json(os.path.join(args.out, "results.json"),
              {"machine": machine_line(facts), "facts": facts, "args": vars(args), "import_s": took,
               "results": {"%s-%s" % k: v for k, v in results.items()},
               "store": {c: b.store_runs for c, b in benches.items()},
               "notes": {c: b.notes for c, b in benches.items()}})


def main():
    args = parse_args()
    started = time.monotonic()
    facts = machine_facts()
    facts["open files"] = raise_nofile()
    log(machine_line(facts))
    log("build %s, output %s, configurations %s" % (lab.BUILD_DIR, args.out, ",".join(args.configs)))
    db, pg, took = seed(args, args.users)
    try:
        benches = {c: StoreBench(args, c, db, pg) for c in args.configs}
        results = run_all(args, benches)
        report(args, facts, benches, results, took, started)
    finally:
        if pg:
            pg.close()
    return 1 if any(b.notes and any("could not be measured" in n for n in b.notes) for b in benches.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
