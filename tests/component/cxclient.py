"""Drives hss/imscx, our freeDiameter-based Cx client, against a running hss.

    cx = cxclient.Imscx(hss)                       # hss: harness.Hss
    answers = cx.run("uar alice@ims.lab sip:alice@ims.lab", "mar ...")   # one JSON dict per line
    with cx.session() as s:                        # long-lived client (PPR/RTR tests)
        s.send("sar ... type=1"); a = s.read()
"""

import json
import os
import subprocess
import time

import harness

IMSCX_BIN = os.path.join(harness.BUILD_DIR, "hss", "imscx")


class Imscx:
    def __init__(self, hss, identity="scscf.ims.lab", port=None, timeout_ms=3000):
        self.hss = hss
        self.identity = identity
        self.port = port or harness.free_port()
        self.timeout_ms = timeout_ms

    def argv(self):
        return [IMSCX_BIN, "--peer", "%s@127.0.0.1:%d" % ("hss.ims.lab", self.hss.diameter_port),
                "--identity", self.identity, "--port", str(self.port),
                "--timeout", str(self.timeout_ms), "-"]

    def run(self, *lines, timeout=60):
        """Runs the commands in one client; returns the JSON lines it printed."""
        harness.check(os.access(IMSCX_BIN, os.X_OK), "no imscx at %s" % IMSCX_BIN)
        p = subprocess.run(self.argv(), input="\n".join(lines) + "\n", capture_output=True,
                           text=True, timeout=timeout)
        out = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        if not out and p.returncode != 0:
            raise harness.TestFailure("imscx failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
        return out

    def one(self, line):
        out = self.run(line)
        harness.check(len(out) == 1, "expected one answer to %r, got %r" % (line, out))
        return out[0]

    def session(self):
        return Session(self)


class Session:
    """A long-lived imscx fed line by line, for tests that wait for PPR/RTR."""

    def __init__(self, cx):
        self.proc = subprocess.Popen(cx.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self, timeout=10):
        """The next JSON line (answer or received PPR/RTR)."""
        import select
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.startswith("{"):
                    return json.loads(line)
        raise harness.TestFailure("imscx printed nothing within %.0f s; stderr: %s"
                                  % (timeout, self.proc.stderr.read() if self.proc.poll() is not None else ""))

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
