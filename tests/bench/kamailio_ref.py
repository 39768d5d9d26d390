"""The Kamailio reference of the SIP benchmark: a one-hop Kamailio proxy + registrar (when
`kamailio` is on PATH; the benchmark never installs it) from a generated kamailio.cfg, measured
with the same SIPp scenarios as the IMS core.

Python 3 standard library only.
"""

import glob
import os
import shutil
import subprocess
import time

from bench_users import DOMAIN
from machine import child_pids, cpu_seconds
from system_lab import lab
from udp_counters import read_udp_sockets


KAMAILIO_HINT = "apt-get install kamailio (Debian's package; the benchmark never installs it)"

KAMAILIO_CFG = """#!KAMAILIO
# Written by tests/bench/bench_sip.py: the one-hop reference it measures with the same SIPp
# scenarios as the IMS core. Proxy + registrar, usrloc in memory, no authentication, UDP only,
# %(children)d SIP worker(s). REGISTER: save(). INVITE: from a registered caller (From) to a
# registered callee (lookup of the Request-URI), record-routed, t_relay(). In-dialog: loose_route().
debug=-1
log_stderror=yes
children=%(children)d
listen=udp:127.0.0.1:%(port)d
disable_tcp=yes
auto_aliases=no
alias="%(domain)s"
dns=no
rev_dns=no
use_dns_cache=off
server_signature=no
mpath="%(mpath)s"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"

modparam("usrloc", "db_mode", 0)
modparam("usrloc", "hash_size", 14)
modparam("registrar", "max_expires", 7200)

request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK")) {
            if (t_check_trans()) {
                t_relay();
            }
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }
    t_check_trans();
    if (is_method("REGISTER")) {
        if (!save("location")) {
            sl_reply_error();
        }
        exit;
    }
    if (is_method("INVITE")) {
        if (!registered("location", "$fu")) {
            sl_send_reply("403", "Caller Not Registered");
            exit;
        }
        remove_hf("Route");
        record_route();
        if (!lookup("location")) {
            sl_send_reply("404", "Not Found");
            exit;
        }
        t_relay();
        exit;
    }
    sl_send_reply("405", "Method Not Allowed");
}
"""


def kamailio_binary():
    return shutil.which("kamailio")


def kamailio_version(binary):
    try:
        out = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("version:")), "?")


def kamailio_modules(binary):
    """The module directory of a Debian-packaged (or /usr/local) Kamailio."""
    for d in glob.glob("/usr/lib/*/kamailio/modules") + ["/usr/lib/kamailio/modules", "/usr/local/lib64/kamailio/modules",
                                                           "/usr/local/lib/kamailio/modules"]:
        if os.path.exists(os.path.join(d, "registrar.so")):
            return d
    return None


class Kamailio:
    """A Kamailio proxy + registrar on 127.0.0.1:<free port> from a generated kamailio.cfg in
    workdir (KAMAILIO_CFG), in the foreground (-DD -E), until stop()."""

    def __init__(self, workdir, children=1, binary=None, shm_mb=1024, pkg_mb=32):
        self.dir = workdir
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.binary = binary or kamailio_binary()
        self.children = children
        self.port = lab.free_port()
        mpath = kamailio_modules(self.binary)
        if not mpath:
            raise lab.TestFailure("kamailio: no module directory with registrar.so found")
        self.cfg = os.path.join(workdir, "kamailio.cfg")
        with open(self.cfg, "w") as f:
            f.write(KAMAILIO_CFG % {"children": children, "port": self.port, "domain": DOMAIN, "mpath": mpath})
        check = subprocess.run([self.binary, "-c", "-f", self.cfg], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise lab.TestFailure("kamailio -c -f %s failed: %s" % (self.cfg, (check.stderr or check.stdout)[-1500:]))
        self.log_path = os.path.join(workdir, "kamailio.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "-f", self.cfg, "-DD", "-E", "-m", str(shm_mb), "-M", str(pkg_mb),
                                      "-Y", workdir, "-P", os.path.join(workdir, "kamailio.pid")],
                                     cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise lab.TestFailure("kamailio exited at start (%s): %s" % (self.proc.returncode, self.log()[-1500:]))
            if any(s["port"] == self.port for s in read_udp_sockets()):
                # the workers are forked after the socket is bound
                time.sleep(0.5)
                return
            time.sleep(0.1)
        self.stop()
        raise lab.TestFailure("kamailio did not bind 127.0.0.1:%d in 20 s: %s" % (self.port, self.log()[-1500:]))

    def log(self):
        try:
            return open(self.log_path, encoding="utf-8", errors="replace").read()
        except OSError:
            return ""

    def pids(self):
        return child_pids(self.proc.pid)

    def cpu(self):
        total = 0.0
        for p in self.pids():
            try:
                total += cpu_seconds(p)
            except (OSError, IndexError, ValueError):
                pass
        return total

    def alive(self):
        if self.proc.poll() is not None:
            raise lab.TestFailure("kamailio exited (%s): %s" % (self.proc.returncode, self.log()[-1500:]))

    def stop(self):
        """Stops Kamailio; returns None or what went wrong (it had died)."""
        problem = None
        if self.proc.poll() is not None:
            problem = "kamailio had exited (%s)" % self.proc.returncode
        else:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                for p in self.pids():
                    try:
                        os.kill(p, 9)
                    except OSError:
                        pass
                self.proc.wait()
                problem = "kamailio did not stop on SIGTERM in 15 s (killed)"
        return problem
