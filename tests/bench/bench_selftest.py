#!/usr/bin/env python3
"""Self-test of the benchmark's parsers and counters: /proc/net/udp(6) and /proc/net/snmp parsing
on sample text, median and spread, and a UdpWatch that sees the drops of a full receive buffer on
a live socket of its own. Run by hand: python3 tests/bench/bench_selftest.py

Python 3 standard library only.
"""

import socket
import time

from figures import median, spread
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
    assert median([3, 1, 2]) == 2 and median([1, 2, 3, 4]) == 2.5 and median([None]) is None
    assert spread([10, 30, 20]) == "20 (10-30)" and spread([5]) == "5" and spread([]) == "-"
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
