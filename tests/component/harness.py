"""Component-test harness: runs the real hss binary and drives it over HTTP.

Python 3 standard library only. Used by every tests/component/test_*.py:

    import harness
    def test_something(tmp):            # tmp: a fresh temporary directory per test
        with harness.Hss(tmp) as hss:
            status, body = hss.api("GET", "/api/v1/subscribers")
            harness.check(status == 200, body)
    if __name__ == "__main__":
        harness.main()

IMS_BUILD_DIR / IMS_SOURCE_DIR come from the environment (ctest sets them); the defaults suit a
build in /work/main/build.
"""

import inspect
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

BUILD_DIR = os.environ.get("IMS_BUILD_DIR", "/work/main/build")
SOURCE_DIR = os.environ.get("IMS_SOURCE_DIR", "/work/main")
HSS_BIN = os.path.join(BUILD_DIR, "hss", "hss")
IMSCTL_BIN = os.path.join(BUILD_DIR, "hss", "imsctl")


class TestFailure(Exception):
    pass


def check(cond, msg="check failed"):
    """assert that survives python -O and carries a readable reason."""
    if not cond:
        raise TestFailure(msg if isinstance(msg, str) else repr(msg))


_given_ports = set()


def _below_ephemeral():
    """(low, high) of the ports below the kernel's ephemeral range, or None when that range starts
    too low to leave room. A port the OS picks (bind to port 0) lies inside that range, where any
    process's next outgoing connection may take it between our probe and the server's own bind
    ("Address already in use", seen in the system tests on a busy machine); below it the kernel
    hands out nothing by itself."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (max(1024, low - 12000), low - 1) if low - 1024 >= 4000 else None


def _probe(port, kind):
    """port if nothing holds it on 127.0.0.1 for kind now (the OS's pick when port is 0), else None."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]


def free_port(kind=socket.SOCK_STREAM):
    """A port that was free a moment ago on 127.0.0.1, below the kernel's ephemeral range when
    there is room (_below_ephemeral), never one this process was given before: the kernel may hand
    the same port out twice in a row once the probing socket is closed, and two servers of one
    test then collide (seen: HSS HTTP and Diameter)."""
    span = _below_ephemeral()
    for _ in range(200):
        port = _probe(random.randint(*span), kind) if span else _probe(0, kind)
        if port and port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError("no fresh free port on 127.0.0.1 after 200 tries")


def free_port_tcp_udp():
    """A port free a moment ago for both TCP and UDP on 127.0.0.1 (SIP listens on both; a UDP
    port the OS picks may be some TCP connection's local port)."""
    for _ in range(50):
        port = free_port()
        if _probe(port, socket.SOCK_DGRAM):
            return port
    raise TestFailure("no free TCP+UDP port")


def http(method, url, body=None, timeout=10, headers=None):
    """One HTTP request -> (status, parsed JSON or text, headers). body: dict/list (JSON) or str/bytes."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, rh = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, rh = e.code, e.read(), e.headers
    text = raw.decode("utf-8", "replace")
    try:
        payload = json.loads(text) if text else None
    except ValueError:
        payload = text
    return status, payload, rh


class Hss:
    """One hss process with its own config, database and log in `tmpdir`.

    extra_yaml is appended to the generated hss.yaml, after the "hss:" section: indented lines
    ("  scscf_names: [...]") extend that section, unindented ones add new top-level sections.
    start=False builds the config without starting (then spawn() + wait() for start-up failures).
    database: the SQLite file (default tmpdir/hss.db).
    conninfo: a PostgreSQL conninfo: the HSS uses store.backend postgresql on it instead.
    With IMS_TEST_HSS_STORE=postgresql in the environment every Hss without a database or
    conninfo of its own gets a fresh database on one PostgreSQL server per test process
    (pgserver.py): the same tests then run on the PostgreSQL backend.
    """

    def __init__(self, tmpdir, import_file=None, extra_yaml=None, diameter_port=None,
                 http_port=None, start=True, identity="hss.ims.lab", realm="ims.lab",
                 log_level="info", database=None, conninfo=None):
        self.tmpdir = tmpdir
        self.http_port = http_port or free_port()
        self.diameter_port = diameter_port or free_port()
        self.db = database or os.path.join(tmpdir, "hss.db")
        self.config = os.path.join(tmpdir, "hss.yaml")
        self.logfile = os.path.join(tmpdir, "hss.log")
        self.proc = None
        self.returncode = None
        self.base = "http://127.0.0.1:%d" % self.http_port
        lines = [
            "log: {level: %s}" % log_level,
            "http: {listen: 127.0.0.1, port: %d}" % self.http_port,
            "diameter: {identity: %s, realm: %s, listen: 127.0.0.1, port: %d, conf_dir: %s}"
            % (identity, realm, self.diameter_port, tmpdir),
            "hss:",
            "  database: %s" % self.db,
        ]
        if conninfo is None and database is None and \
                os.environ.get("IMS_TEST_HSS_STORE") == "postgresql":
            conninfo = shared_pg_database()
        self.conninfo = conninfo
        if conninfo:
            lines.append("  store: {backend: postgresql, conninfo: \"%s\"}" % conninfo)
        if import_file:
            lines.append("  import: %s" % import_file)
        text = "\n".join(lines) + "\n"
        if extra_yaml:
            text += extra_yaml if extra_yaml.endswith("\n") else extra_yaml + "\n"
        with open(self.config, "w") as f:
            f.write(text)
        if start:
            self.start()

    # --- process control -------------------------------------------------------------------

    def spawn(self):
        """Starts hss without waiting for it (tests of start-up failures use this + wait())."""
        check(os.access(HSS_BIN, os.X_OK), "no hss binary at %s (build first)" % HSS_BIN)
        log = open(self.logfile, "ab")
        self.log_offset = log.tell()     # start() reads only what this run writes
        self.proc = subprocess.Popen([HSS_BIN, "-c", self.config], stdout=log, stderr=log,
                                     cwd=self.tmpdir)
        log.close()
        self.returncode = None
        return self.proc

    def start(self, timeout=10.0):
        """Starts hss and waits until GET /healthz answers 200."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise TestFailure("hss exited with %d during start-up; log:\n%s" % (rc, self.log()))
            try:
                status, _, _ = http("GET", self.base + "/healthz", timeout=1)
                # Another process may own the port (free_port races): only our hss's own
                # "ready" log line proves the answer came from it.
                if status == 200 and " ready (Cx on " in self.log()[self.log_offset:]:
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        self.stop()
        raise TestFailure("hss not healthy after %.0f s; log:\n%s" % (timeout, self.log()))

    def wait(self, timeout=10.0):
        """Waits for the process to exit by itself; returns its exit code."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            raise TestFailure("hss still running after %.0f s" % timeout)
        return self.returncode

    def kill(self, sig=signal.SIGKILL):
        """Sends `sig`; for SIGKILL also reaps the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig == signal.SIGKILL:
                self.returncode = self.proc.wait()

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit code (None if never started)."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        return self.returncode

    def restart(self):
        self.stop()
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        # A sanitizer build (IMS_SANITIZE=ON) reports on stderr, which lands in the log: make
        # such reports fail the test even when every request looked fine.
        if exc_type is None:
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                check(marker not in self.log(), "sanitizer report in hss.log:\n%s" % self.log()[-4000:])

    # --- API ---------------------------------------------------------------------------------

    def api(self, method, path, body=None):
        """(status, JSON body or text) of one request to this hss."""
        status, payload, _ = http(method, self.base + path, body)
        return status, payload

    def api_full(self, method, path, body=None):
        """(status, JSON body or text, headers)."""
        return http(method, self.base + path, body)

    def imsctl(self, *args, stdin=None, env=None):
        """Runs imsctl against this hss -> CompletedProcess (text)."""
        e = dict(os.environ)
        e["IMS_API"] = self.base
        if env:
            e.update(env)
        return subprocess.run([IMSCTL_BIN] + list(args), input=stdin, capture_output=True, text=True,
                              env=e, timeout=30)


_shared_pg = None
_shared_pg_n = 0


def shared_pg_database():
    """A fresh database on this process's PostgreSQL server (started at the first call, stopped
    at exit)."""
    global _shared_pg, _shared_pg_n
    import atexit
    import pgserver
    if _shared_pg is None:
        _shared_pg = pgserver.PgServer()
        atexit.register(_shared_pg.close)
    _shared_pg_n += 1
    return _shared_pg.createdb("hss_%d" % _shared_pg_n)


# --- tiny test runner ------------------------------------------------------------------------

def main():
    """Runs the calling module's test_* functions in file order and exits 1 if any failed.

    A test taking one argument gets a fresh temporary directory (kept on failure, for the logs)."""
    caller = sys.modules.get("__main__")
    tests = [(name, fn) for name, fn in vars(caller).items()
             if name.startswith("test_") and inspect.isfunction(fn) and fn.__module__ == caller.__name__]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    only = sys.argv[1:]
    passed = failed = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        tmp = tempfile.mkdtemp(prefix="ims-%s-" % name)
        t0 = time.monotonic()
        try:
            if fn.__code__.co_argcount >= 1:
                fn(tmp)
            else:
                fn()
        except Exception as e:  # the runner reports every failure and carries on
            failed += 1
            reason = str(e) if isinstance(e, TestFailure) else "".join(
                traceback.format_exception_only(type(e), e)).strip()
            where = traceback.extract_tb(e.__traceback__)
            line = next((f.lineno for f in reversed(where) if f.filename == caller.__file__), None)
            print("FAIL %s: %s%s (files in %s)" % (name, reason,
                                                     " [line %d]" % line if line else "", tmp))
            sys.stdout.flush()
            continue
        passed += 1
        shutil.rmtree(tmp, ignore_errors=True)
        print("ok   %s (%.1f s)" % (name, time.monotonic() - t0))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo ("?" when unknown), for benchmark headers."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"
