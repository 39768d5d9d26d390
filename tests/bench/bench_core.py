"""The IMS core under load: hss + scscf + icscf + pcscf on loopback (tests/system/lab.py's Lab
with quiet logs), the config overrides of the benchmark, and the HSS database of benchmark
subscribers imported once and copied for every phase.

Python 3 standard library only.
"""

import os
import shutil
import sqlite3
import subprocess
import time

from bench_users import subscribers
from machine import rss_kib
from system_lab import lab


def config_keys(binary):
    """The config keys an NF binary knows (from its --config-reference table)."""
    try:
        out = subprocess.run([binary, "--config-reference"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.split("`")[1] for line in out.splitlines() if line.startswith("| `")}


def nested(dotted, value):
    """"a.b.c", v -> {"a": {"b": {"c": v}}}"""
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def bench_overrides(extra=()):
    """Config overrides of the benchmark core. Every simulated UE sends from 127.0.0.1, so the
    P-CSCF's failed-REGISTER limiter per UE address (pcscf.auth_max_failures, when the build has
    it; its help says to turn it off for load tests) would block them all after SIPp's AKA quirk
    failures, and the S-CSCF's per-IMPI lockout would lock users SIPp answered wrongly a few
    times (the control run of 'mem' registers 100 users over and over): both are turned off.
    extra: ("nf.section.key=value", ...) from --set."""
    over = {"hss": {"hss": {"import": None}}}
    notes = []
    for nf, why in (("pcscf", "all SIPp UEs share 127.0.0.1"),
                    ("scscf", "SIPp's wrong AKA answers are not an attack")):
        if "%s.auth_max_failures" % nf in config_keys(os.path.join(lab.BUILD_DIR, nf, nf)):
            over = lab.merge(over, {nf: {nf: {"auth_max_failures": 0}}})
            notes.append("%s.auth_max_failures=0 (%s)" % (nf, why))
    for item in extra:
        key, _, value = item.partition("=")
        nf, _, path = key.partition(".")
        if not path or nf not in lab.Lab.NFS:
            raise ValueError("--set wants nf.section.key=value (nf: hss, scscf, icscf, pcscf): %r" % item)
        v = value
        if value.lower() in ("true", "false"):
            v = value.lower() == "true"
        else:
            try:
                v = int(value)
            except ValueError:
                pass
        over = lab.merge(over, {nf: nested(path, v)})
        notes.append("%s=%s" % (key, value))
    return over, notes


class Core:
    """hss + scscf + icscf + pcscf (lab.Lab) with n_users benchmark subscribers.

    The HSS imports the subscribers once per benchmark run (seed_db); every phase then starts
    a fresh core from a copy of that database (no registration state, no import at start)."""

    def __init__(self, workdir, seed_db, overrides, log_level="error", max_expires=7200):
        self.dir = workdir
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.lab = lab.Lab(workdir, subscribers={"subscribers": []}, log_level=log_level, start=False,
                           min_expires=5, max_expires=max_expires,
                           overrides=overrides)
        if seed_db:     # None: the HSS's store is elsewhere (PostgreSQL), already seeded
            shutil.copy(seed_db, self.lab.hss.config["hss"]["database"])
        self.lab.start(timeout=60)

    def pid(self, name):
        return self.lab.nfs[name].proc.pid

    def rss(self, name):
        return rss_kib(self.pid(name))

    def metric(self, nf, name, **labels):
        return getattr(self.lab, nf).metric(name, **labels)

    def stop(self):
        """Stops the core; returns None or what lab.Lab found wrong (an NF died, a transaction
        left, no clean exit on SIGTERM, a sanitizer report)."""
        try:
            self.lab.__exit__(None, None, None)
        except lab.TestFailure as e:
            return str(e)
        return None


PG_IMPORT_CHUNK = 1000


def seed_database(workdir, n_users, log=print, hss_store=None):
    """Imports n_users subscribers into a fresh HSS database once; returns (path, seconds).
    hss_store: the HSS's store section when it is not the SQLite file (PostgreSQL: the
    subscribers land in its database; returns (None, seconds))."""
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    t0 = time.monotonic()
    if hss_store:
        # PostgreSQL: one import of 20,000 subscribers did not finish in 100 s (the server busy
        # in its one transaction) while 1,000 take 1.5 s: worse than linear, probably the
        # identity-count trigger updating one row per identity in one transaction (a growing
        # version chain). Chunks of PG_IMPORT_CHUNK, one HSS start (one transaction) each.
        subs = subscribers(n_users)["subscribers"]
        for first in range(0, n_users, PG_IMPORT_CHUNK):
            core = lab.Lab(os.path.join(workdir, "part%d" % first),
                           subscribers={"subscribers": subs[first:first + PG_IMPORT_CHUNK]},
                           log_level="error", start=False, overrides={"hss": {"hss": {"store": hss_store}}})
            try:
                core.hss.spawn()
                core._wait(core.hss, "/healthz", 60.0)
            finally:
                core.stop()     # never an HSS left running when its import failed
        return None, time.monotonic() - t0
    core = lab.Lab(workdir, subscribers=subscribers(n_users), log_level="error", start=False)
    try:
        core.hss.spawn()
        core._wait(core.hss, "/healthz", max(60.0, n_users / 200.0))
        took = time.monotonic() - t0
    finally:
        core.stop()
    db = core.hss.config["hss"]["database"]
    # One self-contained file (the WAL folded in) to copy for every phase.
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    out = os.path.join(workdir, "seed.db")
    src = sqlite3.connect(db)
    dst = sqlite3.connect(out)
    src.backup(dst)
    dst.close()
    src.close()
    return out, took
