"""The configurations of bench_store.py (issue 14): where the CSCFs keep their state (memory or
one Redis shared by the S-CSCF and the P-CSCF) and where the HSS keeps its subscribers (SQLite or
PostgreSQL), and the core of one run on such a configuration: a fresh redis-server and a fresh
PostgreSQL database (copied from the seeded template) per core, the NFs' store metrics and Redis
memory read just before the core stops.

Python 3 standard library only.
"""

import itertools
import os
import time

from bench_core import Core
from sip_bench import Bench, log
from system_lab import lab
import lab_redis  # noqa: E402  (tests/system, on the path through system_lab)

# name -> (CSCFs on Redis, HSS on PostgreSQL); the order of the report
CONFIGS = {
    "memory+sqlite": (False, False),
    "redis+sqlite": (True, False),
    "memory+postgresql": (False, True),
    "redis+postgresql": (True, True),
}
SEED_DB = "seed"          # the PostgreSQL database the subscribers are imported into once
_db_numbers = itertools.count(1)   # every core's database its own name on the one server


def redis_info(redis, section):
    """One section of Redis's INFO as {field: text}."""
    return dict(line.split(":", 1) for line in redis.cli("INFO", section).splitlines() if ":" in line)


def used_memory(redis):
    """Redis INFO memory used_memory in bytes."""
    v = redis_info(redis, "memory").get("used_memory")
    return int(v) if v is not None else None


def redis_cpu(redis):
    """Redis's CPU seconds (INFO cpu used_cpu_sys + used_cpu_user)."""
    info = redis_info(redis, "cpu")
    return sum(float(info.get(k, 0.0)) for k in ("used_cpu_sys", "used_cpu_user"))


def histogram(metrics, name, **labels):
    """A Prometheus histogram from lab.parse_metrics' dict, summed over the series whose labels
    include `labels` (e.g. every op): (count, sum seconds, [(le, cumulative count)] sorted)."""
    buckets, count, total = {}, 0.0, 0.0
    for (n, ls), v in metrics.items():
        d = dict(ls)
        if any(d.get(k) != str(val) for k, val in labels.items()):
            continue
        if n == name + "_bucket":
            le = float("inf") if d["le"] == "+Inf" else float(d["le"])
            buckets[le] = buckets.get(le, 0.0) + v
        elif n == name + "_count":
            count += v
        elif n == name + "_sum":
            total += v
    return count, total, sorted(buckets.items())


def quantile(q, count, buckets):
    """The q-quantile in seconds estimated from cumulative buckets as Prometheus'
    histogram_quantile does (linear within the bucket); None without observations; the last
    finite bound when it falls in +Inf."""
    if not count:
        return None
    rank, lower, below = q * count, 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if le == float("inf"):
                return lower
            inside = cum - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, cum
    return lower


def latency_row(metrics, name, **labels):
    """{count, mean, p50, p99} (seconds) of a histogram; None when it has no observations."""
    count, total, buckets = histogram(metrics, name, **labels)
    if not count:
        return None
    return {"count": int(count), "mean": total / count,
            "p50": quantile(0.50, count, buckets), "p99": quantile(0.99, count, buckets)}


def counter_sum(metrics, name):
    return int(sum(v for (n, _), v in metrics.items() if n == name))


def store_figures(core):
    """The store metrics of the NFs that have them: per CSCF and op the state store's request
    latency (store_request_seconds{backend,op}, request to completion) and errors; the HSS's
    hss_store_operation_seconds and hss_store_errors_total."""
    out = {}
    for nf in ("scscf", "pcscf"):
        m = core.lab.nfs[nf].metrics()
        ops = sorted({dict(ls).get("op") for (n, ls), _ in m.items() if n == "store_request_seconds_count"})
        out[nf] = {"ops": {op: latency_row(m, "store_request_seconds", op=op) for op in ops},
                   "errors": counter_sum(m, "store_errors_total"),
                   "backend": next((dict(ls).get("backend") for (n, ls), _ in m.items() if n == "store_up"), None)}
    m = core.lab.hss.metrics()
    out["hss"] = {"ops": {"all": latency_row(m, "hss_store_operation_seconds")},
                  "errors": counter_sum(m, "hss_store_errors_total")}
    return out


class StoreCore(Core):
    """Core on one configuration: for Redis, a redis-server of its own (no persistence) that
    both CSCFs write to (store.backend redis, the P-CSCF with pcscf.key_file); for PostgreSQL,
    a database of its own copied from the seeded one (CREATE DATABASE ... TEMPLATE) on the
    benchmark's server. stop() records the store figures into bench.store_runs first."""

    def __init__(self, bench, name, max_expires=7200):
        self.bench, self.name = bench, name
        base = os.path.join(bench.out, name)
        over = bench.overrides
        self.redis = self.dbname = None
        try:
            if bench.on_redis:
                self.redis = lab_redis.RedisServer(base, "redis").start()
                store = {"backend": "redis", "redis": self.redis.address}
                over = lab.merge(over, {"scscf": {"store": store},
                                        "pcscf": {"store": store,
                                                  "pcscf": {"key_file": os.path.join(base, "pcscf.key")}}})
            if bench.pg:
                self.dbname = "core%d" % next(_db_numbers)
                bench.pg.psql("postgres", 'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.dbname, SEED_DB))
                over = lab.merge(over, {"hss": {"hss": {"store": {
                    "backend": "postgresql", "conninfo": bench.pg.conninfo(self.dbname)}}}})
            self.mem0 = used_memory(self.redis) if self.redis else None
            Core.__init__(self, os.path.join(base, "core"), bench.seed_db, over, max_expires=max_expires)
        except Exception:
            self._release()
            raise

    def figures(self):
        """What the run left: store latency per NF, registrations, and Redis memory per user."""
        fig = {"core": self.name, "load": os.getloadavg()[0]}
        try:
            fig["store"] = store_figures(self)
            fig["registered"] = self.metric("scscf", "scscf_registrations")
            fig["bindings"] = self.metric("pcscf", "pcscf_bindings")
            if self.redis:
                time.sleep(1.0)     # the last write-throughs are answered
                fig["redis_keys"] = int(self.redis.cli("DBSIZE"))
                fig["redis_bytes"] = used_memory(self.redis) - self.mem0
                fig["redis_cpu_s"] = redis_cpu(self.redis)
                if fig["registered"]:
                    fig["redis_bytes_per_user"] = fig["redis_bytes"] / fig["registered"]
        except (lab.TestFailure, OSError, ValueError) as e:
            fig["error"] = str(e)[:300]
        return fig

    def stop(self):
        fig = self.figures()
        self.bench.store_runs.append(fig)
        if fig.get("redis_bytes_per_user"):
            log("%s: Redis %d keys, used_memory +%d bytes, %d registered: %.0f bytes per registered user" % (
                self.name, fig["redis_keys"], fig["redis_bytes"], fig["registered"], fig["redis_bytes_per_user"]))
        try:
            return Core.stop(self)
        finally:
            self._release()

    def _release(self):
        if self.redis:
            self.redis.stop()
            self.redis = None
        if self.dbname:
            self.bench.pg.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % self.dbname, check=False)
            self.dbname = None


class StoreBench(Bench):
    """bench_sip's Bench for one configuration: its own output directory, the shared subscriber
    database (SQLite file, or the seeded PostgreSQL server), and the store figures of its cores."""

    def __init__(self, args, config, seed_db, pg):
        Bench.__init__(self, args)
        self.config = config
        self.out = os.path.join(args.out, config)
        os.makedirs(self.out, exist_ok=True)
        self.on_redis, on_pg = CONFIGS[config]
        self.pg = pg if on_pg else None
        self.seed_db = seed_db
        self.store_runs = []

    def core(self, name, max_expires=7200):
        log("%s: starting hss, scscf, icscf, pcscf for '%s'" % (self.config, name))
        return StoreCore(self, name, max_expires=max_expires)
