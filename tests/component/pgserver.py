"""A throw-away PostgreSQL server for tests: its own cluster in a temporary directory, on a free
port of 127.0.0.1, stopped (and removed) at the end. No systemd, no shared cluster.

    with pgserver.PgServer() as pg:
        pg.createdb("hss1")
        conninfo = pg.conninfo("hss1")          # "host=127.0.0.1 port=N dbname=hss1 user=postgres"
        pg.stop(); pg.start()                   # the database goes away and comes back

PostgreSQL refuses to run as root, and the tests run as root: the cluster belongs to the
unprivileged user `postgres` (Debian's package creates it) and its commands run through
runuser. Authentication is `trust` on 127.0.0.1 only (a test cluster, on loopback, for the
lifetime of one test). Python 3 standard library only.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import harness


def pg_bindir():
    """The newest /usr/lib/postgresql/<version>/bin (Debian's layout)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    harness.check(dirs, "PostgreSQL is not installed (Debian package postgresql: "
                        "scripts/install-deps.sh)")
    return dirs[-1]


class PgServer:
    def __init__(self, user="postgres"):
        self.bindir = pg_bindir()
        self.user = user
        self.dir = tempfile.mkdtemp(prefix="ims-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        os.mkdir(self.sock)
        shutil.chown(self.dir, user)
        shutil.chown(self.sock, user)
        self.port = harness.free_port()
        self.logfile = os.path.join(self.dir, "postgres.log")
        self.proc = None
        self._as_user(["initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                       "-E", "UTF8", "--locale=C.UTF-8"])
        self.start()

    def _as_user(self, argv, **kw):
        cmd = ["runuser", "-u", self.user, "--", os.path.join(self.bindir, argv[0])] + argv[1:]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=self.dir, **kw)

    def start(self, timeout=30):
        log = open(self.logfile, "ab")
        # fsync stays on (the default): the tests rely on commits being durable, as production.
        self.proc = subprocess.Popen(
            ["runuser", "-u", self.user, "--", os.path.join(self.bindir, "postgres"), "-D", self.data,
             "-p", str(self.port), "-k", self.sock, "-c", "listen_addresses=127.0.0.1",
             "-c", "max_connections=50"],
            stdout=log, stderr=log, cwd=self.dir)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            harness.check(self.proc.poll() is None, "postgres exited: %s" % self.log()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self.psql("postgres", "SELECT 1", check=False).returncode == 0:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise harness.TestFailure("postgres not up after %d s: %s" % (timeout, self.log()[-2000:]))

    def stop(self, timeout=30):
        """Fast shutdown (rolls back open transactions, disconnects clients), through pg_ctl:
        a signal to runuser would not reach the server."""
        if self.proc and self.proc.poll() is None:
            self._as_user(["pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", str(timeout),
                           "stop"], timeout=timeout + 10)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def conninfo(self, dbname):
        return "host=127.0.0.1 port=%d dbname=%s user=postgres" % (self.port, dbname)

    def psql(self, dbname, sql, check=True):
        """Runs sql with psql over TCP; CompletedProcess (text, unaligned, tuples only)."""
        p = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-d", dbname, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if check:
            harness.check(p.returncode == 0, "psql %r: %s" % (sql, p.stderr))
        return p

    def createdb(self, name):
        self.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % name)
        self.psql("postgres", 'CREATE DATABASE "%s"' % name)
        return self.conninfo(name)
