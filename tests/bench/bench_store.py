#!/usr/bin/env python3
"""State-store benchmark of the S-CSCF (store.backend: memory vs redis): AKA registrations/s
through the whole core at stepped rates with each backend, and the Redis memory each registered
user costs (INFO memory used_memory before and after, per record). A command run by hand (not a
ctest); it prints figures and asserts nothing about speed.

    python3 tests/bench/bench_store.py [--quick] [--users N] [--rates R1,R2,..] [--step S]
    env IMS_BUILD_DIR (use a Release or RelWithDebInfo build; tests/bench/run.sh makes one)

Each backend gets a fresh core (tests/bench/bench_core.Core: hss, scscf, icscf, pcscf on
127.0.0.1, log level error, the same seeded HSS database) and, for redis, a fresh redis-server
on a free port (tests/system/lab_redis.py, no persistence: the figure is the client side and
Redis's memory, not the disk). Each step registers rate x step distinct users (SIPp AKA,
reg_aka_load.xml, the bench_sip 'reg' scenario); a step passes under the same rules as bench_sip
(core failures under 0.1 %, at least 85 % of the offered rate completed). SIPp's AKA quirk
(~3 % of challenges) is counted apart, as in bench_sip.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_core import Core, bench_overrides, seed_database  # noqa: E402
from bench_users import user_name  # noqa: E402
from machine import machine_facts, machine_line, raise_nofile  # noqa: E402
from sip_bench import FAIL_LIMIT, KEEP_UP, log  # noqa: E402
from sip_steps import register  # noqa: E402
from system_lab import lab  # noqa: E402
import lab_redis  # noqa: E402  (tests/system, on the path through system_lab)


def used_memory(redis):
    info = redis.cli("INFO", "memory")
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return None


def run_backend(args, out, seed_db, backend):
    overrides, _ = bench_overrides()
    redis = None
    if backend == "redis":
        redis = lab_redis.RedisServer(out, "redis-%d" % int(time.time())).start()
        overrides = lab.merge(overrides, {"scscf": {"store": {"backend": "redis", "redis": redis.address}}})
    core = Core(os.path.join(out, backend, "core"), seed_db, overrides)
    rows, cursor = [], 0
    mem0 = used_memory(redis) if redis else None
    try:
        for rate in args.rates:
            n = rate * args.step
            if cursor + n > args.users:
                log("%s: not enough users left for %d/s (--users)" % (backend, rate))
                break
            users = [user_name(i) for i in range(cursor, cursor + n)]
            cursor += n
            d = os.path.join(out, backend, "step-%d" % rate)
            log("%s: %d registrations at %d/s" % (backend, n, rate))
            done, results = register("127.0.0.1:%d" % core.lab.pcscf_sip, users, rate, d, expires=3600, rounds=2)
            r0 = results[0]
            judged = max(1, r0.created - r0.quirk)
            ok = r0.failed_core <= FAIL_LIMIT * judged and r0.achieved >= KEEP_UP * rate
            rows.append((rate, r0.achieved, r0.failed_core, r0.quirk, ok))
            log("%s: %d/s offered, %.0f/s done, %d core failures, %d SIPp quirk: %s" %
                (backend, rate, r0.achieved, r0.failed_core, r0.quirk, "pass" if ok else "FAIL"))
            if not ok:
                break
        regs = core.metric("scscf", "scscf_registrations")
        per_user = None
        if redis:
            time.sleep(1.0)   # the last writes flushed
            keys = int(redis.cli("DBSIZE"))
            mem1 = used_memory(redis)
            per_user = (mem1 - mem0) / keys if keys else None
            log("redis: %d records, used_memory %d -> %d bytes: %.0f bytes per registered user" %
                (keys, mem0, mem1, per_user or 0))
        return {"rows": rows, "identities": regs, "redis_bytes_per_user": per_user}
    finally:
        problem = core.stop()
        if problem:
            log("%s core: %s" % (backend, problem[:500]))
        if redis:
            redis.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 users, steps 100,200/s of 4 s")
    p.add_argument("--users", type=int, help="subscribers (default 60000, quick 2000)")
    p.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",") if x], help="rate steps per second")
    p.add_argument("--step", type=int, help="seconds per step (default 10, quick 4)")
    p.add_argument("--out", help="output directory (default /tmp/ims-bench-store-<time>)")
    args = p.parse_args()
    args.users = args.users or (2000 if args.quick else 60000)
    args.rates = args.rates or ([100, 200] if args.quick else [200, 400, 600, 800, 1000, 1200])
    args.step = args.step or (4 if args.quick else 10)
    out = args.out or "/tmp/ims-bench-store-%s" % time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(out, exist_ok=True)
    raise_nofile()
    log(machine_line(machine_facts()))
    log("importing %d subscribers" % args.users)
    seed_db, _ = seed_database(os.path.join(out, "seed"), args.users)
    res = {b: run_backend(args, out, seed_db, b) for b in ("memory", "redis")}

    print("\nAKA registrations/s through the core, S-CSCF store backend memory vs redis "
          "(step %d s; done/s of the first pass, core failures, SIPp quirk)" % args.step)
    print("%-8s %-8s %-24s %-24s" % ("rate", "", "memory", "redis"))
    rates = sorted({r[0] for b in res.values() for r in b["rows"]})
    for rate in rates:
        cells = []
        for b in ("memory", "redis"):
            row = next((r for r in res[b]["rows"] if r[0] == rate), None)
            cells.append("-" if row is None else "%.0f/s %d fail %s" % (row[1], row[2], "ok" if row[4] else "FAIL"))
        print("%-8d %-8s %-24s %-24s" % (rate, "", cells[0], cells[1]))
    for b in ("memory", "redis"):
        best = max((r[0] for r in res[b]["rows"] if r[4]), default=None)
        print("%s: highest passing step %s/s" % (b, best))
    bpu = res["redis"]["redis_bytes_per_user"]
    print("Redis memory per registered user (1 contact, reg-event subscription of the P-CSCF): %s bytes"
          % ("%.0f" % bpu if bpu else "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
