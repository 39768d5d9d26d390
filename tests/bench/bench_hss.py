#!/usr/bin/env python3
"""HSS benchmark: Cx MAR and SAR per second from our Cx client, and the bulk import of many
subscribers. A command that prints figures, not a test (nothing here passes or fails on speed).

    python3 tests/bench/bench_hss.py                  full run (1,000,000 subscribers, ~3-5 min)
    python3 tests/bench/bench_hss.py --quick          smoke run (< 1 min)
    python3 tests/bench/bench_hss.py --subscribers N  import N subscribers for the size figure
    python3 tests/bench/bench_hss.py --backend sqlite     Cx rows on one backend only (default:
                                                          sqlite and postgresql, side by side)

It builds nothing: it runs the hss and imscx of IMS_BUILD_DIR (default /work/main/build), each
from a fresh temporary directory, on loopback, with the default log level (info: one log line
per Cx answer, as deployed). The client (hss/imscx `load-mar` / `load-sar`) keeps `window`
requests in flight; rate = answered requests / wall time; latency = request sent -> answer at
the client. Both processes share the machine, so the figures are for HSS + client together.

Rows:
  MAR, 1 IMPI          the same subscriber over and over (SQNs from the in-memory reservation)
  MAR, N IMPIs (first) every subscriber's first MAR after start: one durable SQN reservation
                       (one commit) per IMPI
  MAR, N IMPIs         the same subscribers again (steady state)
  SAR registration     first registration of each subscriber (one commit each)
  SAR re-registration  same S-CSCF, nothing changes (no write)
The Cx rows run once per store backend: SQLite (a file in the temporary directory) and
PostgreSQL (a server of our own on loopback, tests/component/pgserver.py, fsync on). On
PostgreSQL every MAR commits its SQN (several HSS may share the database), so "MAR, 1 IMPI" is
one commit per MAR there, where SQLite hands SQNs out of its in-memory reservation.
Then: the time to import the subscriber file (JSON lines, streamed) at start and the database
size per subscriber.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "component"))
os.environ.setdefault("IMS_BUILD_DIR", "/work/main/build")

import harness  # noqa: E402  (path set above)
import cxclient  # noqa: E402

K = "465b5ce8b199b49faa5f0a2ee238a6bc"
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
SCSCF = "sip:scscf.ims.lab:6060"


def subscriber_line(i):
    """One subscriber as the provisioning API takes it: AKA + digest, a SIP and a tel IMPU, one
    service profile with one iFC."""
    return ('{"id":"u%d","impis":[{"impi":"u%d@ims.lab","auth_schemes":["aka","digest"],'
            '"default_scheme":"aka","k":"%s","opc":"%s","amf":"8000","password":"pw%d"}],'
            '"impus":[{"impu":"sip:u%d@ims.lab","service_profile":"p"},'
            '{"impu":"tel:+1555%07d","service_profile":"p"}],'
            '"service_profiles":[{"name":"p","ifc":[{"priority":1,"trigger_point":{"cnf":true,'
            '"spt":[{"group":0,"method":"INVITE"}]},"application_server":{"server_name":'
            '"sip:as.ims.lab:5070","default_handling":"session_continued"}}]}]}\n'
            % (i, i, K, OPC, i, i, i))


def write_subscribers(path, n):
    with open(path, "w") as f:
        for start in range(0, n, 10000):
            f.write("".join(subscriber_line(i) for i in range(start, min(n, start + 10000))))


def machine():
    model = harness.cpu_model()
    load = os.getloadavg()
    return ("machine: %s, nproc %d, %s; load average %.2f %.2f %.2f (the CPU may be shared)"
            % (platform.node(), os.cpu_count(), model, load[0], load[1], load[2]))


def run_load(cx, line, timeout=300):
    out = cx.run(line, timeout=timeout)
    loads = [o for o in out if o.get("cmd", "").startswith("load-")]
    harness.check(loads, "imscx printed no summary for %r: %r" % (line, out))
    r = loads[0]
    r.pop("sqns", None)
    return r


def row(name, r):
    return "| %-26s | %7d | %6d | %6d | %9.0f | %7.2f | %7.2f |" % (
        name, r["success"], r["errors"], r["window"], r["rate"], r["p50_ms"], r["p99_ms"])


def bench_cx(tmp, users, count, window, conninfo=None):
    path = os.path.join(tmp, "subscribers.jsonl")
    write_subscribers(path, users)
    hss = harness.Hss(tmp, import_file=path, start=False, conninfo=conninfo,
                      extra_yaml="  scscf_names: [\"%s\"]\n" % SCSCF)
    hss.start(timeout=120)
    rows = []
    try:
        cx = cxclient.Imscx(hss, timeout_ms=10000)
        aka = "scheme=Digest-AKAv1-MD5"
        # Warm-up: connections, first reservation, caches.
        run_load(cx, "load-mar u0@ims.lab sip:u0@ims.lab count=2000 window=%d %s" % (window, aka))
        r = run_load(cx, "load-mar u0@ims.lab sip:u0@ims.lab count=%d window=%d %s"
                     % (count, window, aka))
        rows.append(row("MAR, 1 IMPI", r))
        r = run_load(cx, "load-mar u{i}@ims.lab sip:u{i}@ims.lab count=%d users=%d window=%d %s"
                     % (users, users, window, aka))
        rows.append(row("MAR, %d IMPIs (first)" % users, r))
        r = run_load(cx, "load-mar u{i}@ims.lab sip:u{i}@ims.lab count=%d users=%d window=%d %s"
                     % (count, users, window, aka))
        rows.append(row("MAR, %d IMPIs" % users, r))
        r = run_load(cx, "load-sar u{i}@ims.lab sip:u{i}@ims.lab count=%d users=%d window=%d "
                     "type=1 server=%s" % (users, users, window, SCSCF))
        rows.append(row("SAR registration", r))
        r = run_load(cx, "load-sar u{i}@ims.lab sip:u{i}@ims.lab count=%d users=%d window=%d "
                     "type=2 uda=1 server=%s" % (count, users, window, SCSCF))
        rows.append(row("SAR re-registration", r))
    finally:
        hss.stop()
    return rows


def bench_import(tmp, n):
    path = os.path.join(tmp, "subscribers.jsonl")
    t0 = time.monotonic()
    write_subscribers(path, n)
    gen = time.monotonic() - t0
    hss = harness.Hss(tmp, import_file=path, start=False)
    t0 = time.monotonic()
    hss.start(timeout=1200)
    took = time.monotonic() - t0
    try:
        status, body = hss.api("GET", "/api/v1/subscribers?limit=1")
        harness.check(status == 200, "list after import: %r" % (body,))
        a = cxclient.Imscx(hss).one("mar u%d@ims.lab sip:u%d@ims.lab scheme=Digest-AKAv1-MD5"
                                    % (n - 1, n - 1))
        harness.check(a.get("result_code") == 2001, "MAR for the last imported subscriber: %r" % a)
    finally:
        hss.stop()
    size = sum(os.path.getsize(p) for p in (hss.db, hss.db + "-wal") if os.path.exists(p))
    return {"n": n, "file_bytes": os.path.getsize(path), "generate_s": gen, "import_s": took,
            "db_bytes": size}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small scale, for a smoke run")
    ap.add_argument("--subscribers", type=int, help="subscribers for the import figure")
    ap.add_argument("--users", type=int, help="subscribers the Cx load is spread over")
    ap.add_argument("--count", type=int, help="requests per Cx row")
    ap.add_argument("--window", type=int, default=64, help="requests in flight")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both",
                    help="store backend(s) of the Cx rows")
    args = ap.parse_args()
    n = args.subscribers or (20000 if args.quick else 1000000)
    users = args.users or (1000 if args.quick else 10000)
    count = args.count or (20000 if args.quick else 100000)
    for b in (harness.HSS_BIN, cxclient.IMSCX_BIN):
        if not os.access(b, os.X_OK):
            sys.exit("bench_hss: no %s (build hss_bin and imscx in IMS_BUILD_DIR=%s first)"
                     % (b, harness.BUILD_DIR))

    print(machine())
    print("binaries: %s" % harness.BUILD_DIR)
    tmp = tempfile.mkdtemp(prefix="ims-bench-hss-")
    try:
        rows = []
        for backend in ("sqlite", "postgresql"):
            if args.backend not in (backend, "both"):
                continue
            d = os.path.join(tmp, "cx-" + backend)
            os.mkdir(d)
            if backend == "sqlite":
                rows += [(backend, r) for r in bench_cx(d, users, count, args.window)]
                continue
            import pgserver
            with pgserver.PgServer() as pg:
                rows += [(backend, r) for r in bench_cx(d, users, count, args.window,
                                                        conninfo=pg.createdb("bench"))]
        print()
        print("| %-10s | %-26s | %7s | %6s | %6s | %9s | %7s | %7s |" % (
            "store", "Cx load (imscx -> hss)", "answers", "errors", "window", "per s", "p50 ms",
            "p99 ms"))
        print("|%s|%s|%s|%s|%s|%s|%s|%s|" % ("-" * 12, "-" * 28, "-" * 9, "-" * 8, "-" * 8,
                                             "-" * 11, "-" * 9, "-" * 9))
        for backend, r in rows:
            print("| %-10s %s" % (backend, r))
        sys.stdout.flush()
        os.mkdir(os.path.join(tmp, "import"))
        imp = bench_import(os.path.join(tmp, "import"), n)
        print()
        print("bulk import at start: %d subscribers (JSON lines, %.0f MB) in %.1f s "
              "(%.0f subscribers/s)" % (imp["n"], imp["file_bytes"] / 1e6, imp["import_s"],
                                        imp["n"] / imp["import_s"]))
        print("HSS database: %.1f MB for %d subscribers = %.0f bytes per subscriber "
              "(1 IMPI, 2 IMPUs, 1 service profile with 1 iFC each)"
              % (imp["db_bytes"] / 1e6, imp["n"], imp["db_bytes"] / imp["n"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
