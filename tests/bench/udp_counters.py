"""The kernel's UDP counters around a benchmark step: per-socket drops and receive queues of
/proc/net/udp(6), the machine's Udp: counters of /proc/net/snmp, and UdpWatch, which samples them
(and VmRSS of some processes) over one step. Its self-test is tests/bench/bench_selftest.py.

Python 3 standard library only.
"""

import time

from machine import rss_kib


def parse_proc_net_udp(text):
    """The sockets of /proc/net/udp or /proc/net/udp6 text: [{"port", "addr" (hex as printed),
    "inode", "tx_queue", "rx_queue", "drops"}]. drops (the last column) counts the datagrams the
    kernel threw away at that socket (receive buffer full, mostly); rx_queue the bytes waiting."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 13 or ":" not in f[1]:
            continue
        addr, _, port = f[1].rpartition(":")
        tx, _, rx = f[4].partition(":")
        try:
            out.append({"addr": addr, "port": int(port, 16), "tx_queue": int(tx, 16), "rx_queue": int(rx, 16),
                        "inode": int(f[9]), "drops": int(f[-1])})
        except ValueError:
            continue
    return out


def parse_snmp_udp(text):
    """The Udp: counters of /proc/net/snmp text ({"InErrors": n, "RcvbufErrors": n, ...}): a header
    line of names and a line of values, both starting with "Udp:"."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2:
        return {}
    out = {}
    for k, v in zip(rows[0], rows[1]):
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def read_udp_sockets():
    out = []
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                out += parse_proc_net_udp(f.read())
        except OSError:
            pass
    return out


def read_snmp_udp():
    try:
        with open("/proc/net/snmp") as f:
            return parse_snmp_udp(f.read())
    except OSError:
        return {}


SNMP_KEYS = ("InErrors", "RcvbufErrors", "SndbufErrors")


class UdpWatch:
    """Per-socket drops of the UDP sockets bound to some ports, and the system UDP counters, over
    one step; optionally VmRSS of some processes.

    groups: {name: [port, ...]} (e.g. pcscf, icscf, scscf: the NFs' SIP ports; sipp: the load
    generator's). A socket that exists at start counts from its drops then; one that appears
    later (a SIPp process started for the step) from 0. /proc/net/udp is sampled every
    `interval` seconds in a thread, because a SIPp socket is gone once SIPp exits: its figure is
    the last sample before (a lower bound by at most `interval`). The NFs' sockets outlive the
    step: their figure is exact (read again at stop). /proc/net/snmp's Udp counters are the
    whole machine's (other processes too)."""

    def __init__(self, groups, interval=0.25, rss=None, rss_interval=1.0):
        import threading
        self.groups = {g: set(ports) for g, ports in groups.items()}
        self.interval, self.rss_pids, self.rss_interval = interval, dict(rss or {}), rss_interval
        self.base, self.last, self.group_of, self.rxq_max = {}, {}, {}, {}
        self.rss = []            # [(seconds since start, {name: KiB})]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()
        self.snmp0 = read_snmp_udp()
        self.snmp1 = None
        self.seconds = 0.0
        self._sample(first=True)
        self._sample_rss()
        self._thread.start()

    def _group(self, port):
        for g, ports in self.groups.items():
            if port in ports:
                return g
        return None

    def _sample(self, first=False):
        for s in read_udp_sockets():
            g = self._group(s["port"])
            if g is None:
                continue
            key = s["inode"]
            if first:
                self.base[key] = s["drops"]
            self.group_of[key] = g
            self.last[key] = s["drops"]
            self.rxq_max[g] = max(self.rxq_max.get(g, 0), s["rx_queue"])

    def _sample_rss(self):
        if not self.rss_pids:
            return
        row = {}
        for name, pid in self.rss_pids.items():
            try:
                row[name] = rss_kib(pid)
            except (OSError, RuntimeError, ValueError):
                pass
        self.rss.append((time.monotonic() - self.t0, row))

    def _run(self):
        next_rss = time.monotonic() + self.rss_interval
        while not self._stop.wait(self.interval):
            self._sample()
            if time.monotonic() >= next_rss:
                self._sample_rss()
                next_rss += self.rss_interval

    def stop(self):
        """Ends the sampling; returns the step's figures (see result)."""
        self._stop.set()
        self._thread.join()
        self._sample()
        self._sample_rss()
        self.snmp1 = read_snmp_udp()
        self.seconds = time.monotonic() - self.t0
        return self.result()

    def result(self):
        drops = {g: 0 for g in self.groups}
        for key, v in self.last.items():
            drops[self.group_of[key]] += max(0, v - self.base.get(key, 0))
        snmp = {k: self.snmp1.get(k, 0) - self.snmp0.get(k, 0) for k in SNMP_KEYS
                if k in self.snmp0 and self.snmp1 and k in self.snmp1}
        return {"drops": drops, "rx_queue_max": {g: self.rxq_max.get(g, 0) for g in self.groups},
                "udp": snmp, "rss": self.rss, "seconds": round(self.seconds, 2)}


def steady_rss(samples, name, tail=0.5):
    """The median VmRSS (KiB) of name over the last `tail` part of a UdpWatch's samples (the
    steady state of a step: the first part still grows with the transactions Timer J keeps)."""
    if not samples:
        return None
    end = samples[-1][0]
    vals = sorted(r[name] for t, r in samples if t >= end * (1 - tail) and name in r)
    return vals[len(vals) // 2] if vals else None
