"""A real redis-server (Debian `redis-server`) for the state-store tests and benchmarks: on a
free loopback port, its files in a directory of the test's tmp, no persistence unless asked;
stopped at the end. cli() runs redis-cli against it."""

import os
import subprocess
import time

from lab import check, free_port


class RedisServer:
    def __init__(self, tmp, name="redis", port=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.proc = None
        self.logfile = os.path.join(self.dir, "redis.log")

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--logfile", self.logfile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "redis-server exited: see %s" % self.logfile)
            try:
                if self.cli("PING") == "PONG":
                    return self
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server on %d does not answer" % self.port)

    def kill(self):
        """SIGKILL (a crash: nothing is saved)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--raw"] + list(args),
                             check=True, capture_output=True, text=True, timeout=10)
        return out.stdout.rstrip("\n")

    def keys(self, pattern="*"):
        text = self.cli("--scan", "--pattern", pattern)
        return sorted(k for k in text.split("\n") if k)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()
