"""SIPp load runs of the benchmarks: one SIPp client process (Load) at a fixed rate for a number
of calls, in its own directory, started again when SIPp 3.6.1's AKA key parsing fails at start and
resumed when it stops mid-run; what it measured is a sipp_results.Result.

Python 3 standard library only.
"""

import glob
import os
import shutil
import subprocess
import time

from bench_users import DOMAIN
from sipp_results import Result, last_stats
from system_lab import lab

SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
SIPP = lab.SIPP

FAILED_STARTS = []    # SIPp runs started again after SIPp 3.6.1's key-parsing failure (Load._failed_start)
MIDRUN_ABORTS = []    # (directory, calls made) of SIPp processes the same failure stopped mid-run


class Load:
    """One SIPp client process at a fixed rate (calls/s) for a number of calls."""

    def __init__(self, workdir, scenario, remote, injection, rate, calls, local_port=None,
                 recv_timeout_ms=5000, keys=None, extra=(), resume=True):
        self.dir = workdir
        self.seg_dir = workdir      # the current SIPp process's directory (see wait: resume)
        self.segments = [(workdir, 0.0)]
        self.resume = resume
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.rate, self.calls = rate, calls
        self.scenario = os.path.join(SCENARIOS, scenario)
        cmd = [SIPP, remote, "-sf", self.scenario, "-inf", injection, "-i", "127.0.0.1",
               "-r", str(rate), "-rp", "1000", "-m", str(calls), "-nostdin",
               "-recv_timeout", str(recv_timeout_ms), "-default_behaviors", "all,-bye",
               "-trace_logs", "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1",
               "-trace_err", "-auth_uri", DOMAIN,
               # Enough simultaneous calls for the rate and the timeouts (the default limit is
               # derived from the rate and the scenario's pauses).
               "-l", str(max(1000, int(rate * (recv_timeout_ms / 1000.0 + 2))))]
        # Always an explicit free port: SIPp's default 5060 may be anyone's on a shared machine.
        self.local_port = local_port or lab.free_port()
        cmd += ["-p", str(self.local_port)]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, str(v)]
        cmd += list(extra)
        self.cmd = cmd
        self.restarts = 0
        self.t0 = time.monotonic()
        self.rc = None
        self.elapsed = None
        self._spawn()

    def _spawn(self):
        self.started = time.monotonic()
        out = open(os.path.join(self.seg_dir, "sipp.out"), "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=self.seg_dir, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out.close()

    def _failed_start(self):
        """SIPp 3.6.1 turns aka_K/aka_OP into bytes without a terminator and parses them again:
        now and then (about 1 start in 50) the memory after them holds a '[' and SIPp stops at
        its first call with "Syntax error or invalid [keyword]" (lab.py does the same check)."""
        return self._key_parse_abort() and self._created(self.seg_dir) <= 1

    def _key_parse_abort(self):
        if self.proc.poll() is None or self.proc.returncode == 0:
            return False
        found = glob.glob(os.path.join(self.seg_dir, "*_errors.log"))
        text = open(found[0], encoding="utf-8", errors="replace").read() if found else ""
        return "invalid [keyword]" in text

    @staticmethod
    def _created(d):
        found = glob.glob(os.path.join(d, "*_.csv"))
        return last_stats(found[0]).get("TotalCallCreated", 0) if found else 0

    def check_start(self, settle=1.0):
        """Waits settle seconds; a start that failed on SIPp's key parsing is made again (up to
        3 times; nothing of it reached the core but at most one request)."""
        time.sleep(settle)
        while self.restarts < 3 and self._failed_start():
            self._restart()
            time.sleep(settle)
        return self

    def _restart(self):
        self.restarts += 1
        old = os.path.join(self.seg_dir, "failed-start-%d" % self.restarts)
        os.makedirs(old)
        for f in glob.glob(os.path.join(self.seg_dir, "*")):
            if os.path.isfile(f):
                shutil.move(f, old)
        FAILED_STARTS.append(self.seg_dir)
        self._spawn()

    def wait(self, timeout):
        while True:
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.rc = "killed"
            if self.restarts < 3 and self._failed_start():
                self._restart()
                continue
            # The same key parsing can stop SIPp in the middle of a run (it parses the
            # [authentication] of the injection file for every message): the calls not made yet
            # are made by a new SIPp process in a sub-directory (resume=False: just reported).
            made = sum(self._created(d) for d, _ in self.segments)
            if self._key_parse_abort() and made < self.calls:
                MIDRUN_ABORTS.append((self.seg_dir, made))
                if self.resume and len(self.segments) < 6:
                    self.seg_dir = os.path.join(self.dir, "resumed-%d" % len(self.segments))
                    os.makedirs(self.seg_dir)
                    i = self.cmd.index("-m")
                    self.cmd[i + 1] = str(self.calls - made)
                    self.segments.append((self.seg_dir, (time.monotonic() - self.t0) * 1000.0))
                    self._spawn()
                    continue
            break
        self.elapsed = time.monotonic() - self.started
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def files(self, pattern):
        """[(path, ms offset of its SIPp process from the first)] over the run's SIPp processes."""
        out = []
        for d, offset in self.segments:
            found = glob.glob(os.path.join(d, pattern))
            if found:
                out.append((found[0], offset))
        return out

    def result(self, aka_check=True):
        return Result(self, aka_check)
