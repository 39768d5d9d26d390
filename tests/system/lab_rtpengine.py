"""The real rtpengine daemon for the tests and benchmarks, and a small ng client to talk to it.

  - bencode()/bdecode(): the ng protocol's encoding (BitTorrent bencode: integers, byte strings,
    lists, dictionaries with sorted keys);
  - ng(addr, command): one ng exchange over UDP ("<cookie> <bencoded dict>", the answer carries
    the same cookie), retransmitted until the timeout, as the rtpengine documentation asks of a
    client (ng protocol: "the cookie is used to match replies to requests");
  - Rtpengine: Debian's rtpengine-daemon (10.5, userspace forwarding: --table=-1, no kernel
    module) started on free ports in a directory of its own, with the interfaces "access" and
    "core" the P-CSCF's media config names (pcscf.media.access_interface / core_interface);
    stats() reads its own counters through the ng "statistics" command, calls() and query() its
    calls ("list", "query").

The deploy tests (test_compose_run) reach an rtpengine in a container through the same client.
Python 3 standard library only.
"""

import os
import random
import shutil
import socket
import subprocess
import time

RTPENGINE = shutil.which("rtpengine") or "/usr/bin/rtpengine"
HINT = "apt-get install rtpengine-daemon (scripts/install-deps.sh test)"


class NgError(Exception):
    pass


# --- bencode ----------------------------------------------------------------------------------------

def bencode(v):
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:%s" % (len(v), bytes(v))
    if isinstance(v, (list, tuple)):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError("cannot bencode %r" % type(v))


def bdecode(data):
    """bytes -> value (byte strings decoded as UTF-8 with replacement); NgError on bad input."""
    def item(i):
        if i >= len(data):
            raise NgError("bencode: truncated")
        c = data[i:i + 1]
        if c == b"i":
            end = data.index(b"e", i)
            return int(data[i + 1:end]), end + 1
        if c in (b"l", b"d"):
            out, i = [], i + 1
            while data[i:i + 1] != b"e":
                x, i = item(i)
                out.append(x)
            if c == b"l":
                return out, i + 1
            if len(out) % 2:
                raise NgError("bencode: dictionary with a key and no value")
            return dict(zip(out[::2], out[1::2])), i + 1
        if c.isdigit():
            colon = data.index(b":", i)
            n = int(data[i:colon])
            s = data[colon + 1:colon + 1 + n]
            if len(s) != n:
                raise NgError("bencode: truncated string")
            return s.decode("utf-8", "replace"), colon + 1 + n
        raise NgError("bencode: unexpected %r at %d" % (c, i))
    try:
        v, end = item(0)
    except (ValueError, IndexError) as e:
        raise NgError("bencode: %s" % e)
    if end != len(data):
        raise NgError("bencode: %d bytes after the value" % (len(data) - end))
    return v


# --- ng client ----------------------------------------------------------------------------------------

def ng(addr, command, timeout=3.0, retransmit=0.5, bind=None):
    """Sends one ng command (a dict with "command") to addr (host, port); returns the answer dict.
    NgError when nothing answers within timeout or the answer does not parse."""
    cookie = "%x_%d" % (random.getrandbits(48), os.getpid())
    msg = cookie.encode() + b" " + bencode(command)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if bind:
            s.bind(bind)
        deadline = time.monotonic() + timeout
        while True:
            s.sendto(msg, addr)
            resend = min(deadline, time.monotonic() + retransmit)
            while time.monotonic() < resend:
                s.settimeout(max(0.01, resend - time.monotonic()))
                try:
                    data, _ = s.recvfrom(65535)
                except socket.timeout:
                    break
                got, _, body = data.partition(b" ")
                if got.decode("ascii", "replace") == cookie:   # an older retransmission's answer: ignored
                    answer = bdecode(body)
                    if not isinstance(answer, dict):
                        raise NgError("ng %s: answer is not a dictionary: %r" % (command.get("command"), answer))
                    return answer
            if time.monotonic() >= deadline:
                raise NgError("ng %s to %s:%d: no answer within %.1f s" % (command.get("command"), addr[0], addr[1],
                                                                         timeout))


def stats_summary(answer):
    """The figures of an ng "statistics" answer a test or a benchmark step reports: sessions now
    (own), managed/rejected/timed-out sessions since start, relayed packets and relay errors."""
    cur = answer.get("statistics", {}).get("currentstatistics", {})
    tot = answer.get("statistics", {}).get("totalstatistics", {})
    return {"sessions": int(cur.get("sessionsown", 0)),
            "managed": int(tot.get("managedsessions", 0)),
            "rejected": int(tot.get("rejectedsessions", 0)),
            "timeout": int(tot.get("timeoutsessions", 0)),
            "packets": int(tot.get("relayedpackets", 0)),
            "errors": int(tot.get("relayedpacketerrors", 0))}


# --- the daemon -------------------------------------------------------------------------------------

def free_udp_range(count, low=20000, high=60000, tries=50):
    """A start port p such that p..p+count-1 are all free for UDP on 127.0.0.1 a moment ago."""
    for _ in range(tries):
        start = random.randrange(low, high - count) & ~1    # RTP on even ports
        socks = []
        try:
            for p in range(start, start + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise NgError("no free range of %d UDP ports" % count)


class Rtpengine:
    """rtpengine-daemon on 127.0.0.1: ng control on a free port, RTP in a free range of `ports`
    ports, interfaces access and core (both 127.0.0.1), logs in workdir/rtpengine.log."""

    def __init__(self, workdir, ports=400, address="127.0.0.1", ng_port=None, log_level=5, extra=(),
                 port_range=(20000, 60000)):
        if not os.path.exists(RTPENGINE):
            raise NgError("rtpengine not found (%s)" % HINT)
        os.makedirs(workdir, exist_ok=True)
        self.dir = workdir
        self.address = address
        self.port_min = free_udp_range(ports, low=port_range[0], high=port_range[1])
        self.port_max = self.port_min + ports - 1
        if ng_port is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((address, 0))
                ng_port = s.getsockname()[1]
        self.ng_addr = (address, ng_port)
        self.log_path = os.path.join(workdir, "rtpengine.log")
        self.cmd = [RTPENGINE, "--config-file=none", "--table=-1", "--foreground", "--log-stderr",
                    "--log-level=%d" % log_level,
                    "--interface=access/%s" % address, "--interface=core/%s" % address,
                    "--listen-ng=%s:%d" % self.ng_addr,
                    "--port-min=%d" % self.port_min, "--port-max=%d" % self.port_max,
                    # a deleted session is gone at once (default: 30 s later), so that a
                    # session count read right after a BYE is the truth
                    "--delete-delay=0",
                    "--pidfile=%s" % os.path.join(workdir, "rtpengine.pid")] + list(extra)
        self.proc = None
        self.start()

    def start(self, timeout=10.0):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise NgError("rtpengine exited at start (%s): %s" % (self.proc.returncode, self.log_tail()))
            try:
                if self.command({"command": "ping"}, timeout=0.5).get("result") == "pong":
                    return self
            except NgError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise NgError("rtpengine did not answer an ng ping within %.0f s: %s" % (timeout, self.log_tail()))

    def command(self, cmd, timeout=3.0):
        return ng(self.ng_addr, cmd, timeout=timeout)

    @property
    def ng_uri(self):
        return "%s:%d" % self.ng_addr

    def stats(self):
        return stats_summary(self.command({"command": "statistics"}))

    def calls(self):
        """The call-ids rtpengine holds now (ng "list")."""
        return list(self.command({"command": "list"}).get("calls", []))

    def query(self, call_id):
        """The ng "query" answer for call_id (result "error" for an unknown call); None when
        rtpengine does not answer."""
        try:
            return self.command({"command": "query", "call-id": call_id})
        except NgError:
            return None

    def in_range(self, port):
        return self.port_min <= port <= self.port_max

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=20):
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self):
        """SIGTERM (then SIGKILL after 5 s); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
