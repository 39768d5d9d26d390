"""The state of one bench_sip.py run (Bench: the settings from the command line, the shared HSS
database, the results and notes every phase adds) and the limits a step is judged by.

Python 3 standard library only.
"""

import os
import time

from bench_core import Core, bench_overrides
from bench_users import user_name
from kamailio_ref import kamailio_binary

FAIL_LIMIT = 0.001        # a step passes with under 0.1 % failures (the core's, not SIPp's quirk)
KEEP_UP = 0.85            # ... and when the core completed at least 85 % of the offered rate per second
                          # (below that requests queue: a longer step would turn them into timeouts;
                          # ~3 % of registrations are SIPp's quirk and do not complete)
NFS = ("pcscf", "icscf", "scscf", "hss")
RSS_NFS = ("pcscf", "scscf")
IDLE_S = 38               # mem: idle after the registrations (Timer J 32 s + the NFs' 5 s heap housekeeping)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Bench:
    """One run of the benchmark: its settings (from the command line, or the --quick and full
    defaults), the HSS database every phase starts from, the next users to hand out, and the
    results and notes the phases add for the report."""

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.out = args.out or "/tmp/ims-bench-%s" % time.strftime("%Y%m%d-%H%M%S")
        os.makedirs(self.out, exist_ok=True)
        self.n_users = args.users or (1000 if self.quick else 100000)
        self.step_s = args.step or (4 if self.quick else 12)
        self.runs = max(1, args.runs or (1 if self.quick else 3))
        self.reg_rates = args.reg_rates or ([100, 200] if self.quick else [100, 200, 400, 600, 800, 1000, 1200, 1500, 2000])
        self.call_rates = args.call_rates or ([50, 100] if self.quick else [50, 100, 200, 300, 500, 700, 1000])
        self.hold_ms = 500 if self.quick else 1000
        self.pairs = max(10, min(self.n_users // 2, args.pairs or (200 if self.quick else 2000)))
        self.kamailio = None if args.no_kamailio else kamailio_binary()
        self.kam_children = args.kamailio_children or ([1] if self.quick else [1, 2])
        self.kam_extend = args.kamailio_extend if args.kamailio_extend is not None else (0 if self.quick else 4)
        self.best_reg = None
        self.results = {}
        self.notes = []
        self.seed_db = None
        self.cursor = 0          # next user for the registration steps (distinct users, cycling)
        self.overrides, self.config_notes = bench_overrides(args.set or ())

    def core(self, name, max_expires=7200):
        log("starting hss, scscf, icscf, pcscf for '%s'" % name)
        return Core(os.path.join(self.out, name, "core"), self.seed_db, self.overrides, max_expires=max_expires)

    def users(self, count):
        """count users from the pool, continuing after the last ones handed out (cycling)."""
        out = [user_name((self.cursor + i) % self.n_users) for i in range(count)]
        self.cursor = (self.cursor + count) % self.n_users
        return out
