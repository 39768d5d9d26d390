#!/usr/bin/env python3
"""Self-test of the benchmark's parsers and counters: /proc/net/udp(6), /proc/net/snmp and
/proc/stat parsing on sample text, median and spread, bench_store's latency quantiles from a
histogram, and a UdpWatch that sees the drops of a full receive buffer on a live socket of its own.
Run by hand: python3 tests/bench/bench_selftest.py

Python 3 standard library only.
"""

import socket
import time

from figures import median, spread
from machine import parse_proc_stat_cpu
from store_core import latency_row, quantile
from udp_counters import UdpWatch, parse_proc_net_udp, parse_snmp_udp, read_snmp_udp, read_udp_sockets

PROC_NET_UDP_SAMPLE = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 3100: 0100007F:8B37 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2032661 2 000000005cbb1217 0
 3792: 0100007F:13C4 00000000:0000 07 00000000:00034000 00:00000000 00000000     0        0 2031942 2 0000000000fc151a 1234
"""
PROC_NET_UDP6_SAMPLE = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  507: 00000000000000000000000001000000:13C5 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 7
"""
SNMP_SAMPLE = """\
Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 1328535 5884 13127 1351124 13126 1 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
"""


def selftest():
    socks = parse_proc_net_udp(PROC_NET_UDP_SAMPLE)
    assert [(s["port"], s["inode"], s["drops"], s["rx_queue"]) for s in socks] == \
        [(0x8B37, 2032661, 0, 0), (5060, 2031942, 1234, 0x34000)], socks
    s6 = parse_proc_net_udp(PROC_NET_UDP6_SAMPLE)
    assert [(s["port"], s["inode"], s["drops"]) for s in s6] == [(5061, 99, 7)], s6
    snmp = parse_snmp_udp(SNMP_SAMPLE)
    assert (snmp["InErrors"], snmp["RcvbufErrors"], snmp["SndbufErrors"], snmp["InDatagrams"]) == \
        (13127, 13126, 1, 1328535), snmp          # the Udp: lines, not UdpLite:
    assert parse_snmp_udp("") == {} and parse_proc_net_udp("") == []
    # /proc/stat: CPUs counted from the cpuN lines; idle + iowait and steal from the all-CPU line
    stat = "cpu  100 2 30 900 40 5 6 70 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\ncpu1 1 1 1 1 1 1 1 1 0 0\nintr 1\n"
    assert parse_proc_stat_cpu(stat) == (2, 940, 70), parse_proc_stat_cpu(stat)
    assert parse_proc_stat_cpu("cpu 1 2 3 4\ncpu0 1 2 3 4\n") == (1, 4, 0) and parse_proc_stat_cpu("") == (0, 0, 0)
    assert median([3, 1, 2]) == 2 and median([1, 2, 3, 4]) == 2.5 and median([None]) is None
    assert spread([10, 30, 20]) == "20 (10-30)" and spread([5]) == "5" and spread([]) == "-"
    # Store latency from a Prometheus histogram (lab.parse_metrics keys), summed over ops:
    # 100 observations, 90 at <= 0.5 ms, 9 in (0.5, 1] ms, 1 in (1, 2.5] ms, sum 0.04 s.
    def series(name, value, **labels):
        return ((name, frozenset(labels.items())), value)
    metrics = dict([series("st_bucket", 50, op="put", le="0.0005"), series("st_bucket", 40, op="get", le="0.0005"),
                    series("st_bucket", 55, op="put", le="0.001"), series("st_bucket", 44, op="get", le="0.001"),
                    series("st_bucket", 56, op="put", le="+Inf"), series("st_bucket", 44, op="get", le="+Inf"),
                    series("st_count", 56, op="put"), series("st_count", 44, op="get"),
                    series("st_sum", 0.03, op="put"), series("st_sum", 0.01, op="get"),
                    series("other_count", 7)])
    row = latency_row(metrics, "st")
    assert row["count"] == 100 and abs(row["mean"] - 0.0004) < 1e-12, row
    assert abs(row["p50"] - 0.0005 * 50 / 90) < 1e-12, row         # within the first bucket
    assert abs(row["p99"] - 0.001) < 1e-12, row                     # the 99th is the last of (0.5, 1]
    assert latency_row(metrics, "st", op="get")["count"] == 44      # one op only
    assert quantile(0.99, 10, [(0.001, 5.0), (float("inf"), 10.0)]) == 0.001   # +Inf: the last bound
    assert latency_row(metrics, "nothing") is None and quantile(0.5, 0, []) is None
    # The live files parse, and a socket of ours shows up with its drops counter.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        w = UdpWatch({"me": [port]}, interval=0.05)
        time.sleep(0.1)
        assert w.result()["drops"] == {"me": 0}
        # A full receive buffer: what the kernel then throws away is counted at the socket.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(200):
                tx.sendto(b"x" * 1000, ("127.0.0.1", port))
        r = w.stop()
        assert r["drops"]["me"] > 0 and r["rx_queue_max"]["me"] > 0, r
        assert any(s["port"] == port for s in read_udp_sockets())
        assert "RcvbufErrors" in read_snmp_udp()
    print("bench self-test: ok")


if __name__ == "__main__":
    selftest()
