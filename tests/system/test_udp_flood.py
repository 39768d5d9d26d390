"""No silent UDP drops (common/ims_sip_udp.c): a CSCF flooded over UDP beyond what it can process

- answers new requests 503 with Retry-After while its SIP UDP receive queue is above
  sip.udp_shed_percent of the buffer (counted in sip_udp_queue_rejected_total);
- exports the datagrams the kernel dropped at its socket (sip_udp_socket_drops_total, the same
  figure as the `drops` column of /proc/net/udp for that socket), its queue and its buffer;
- warns about the drops and the shedding in its log, naming the socket and what to do;
- stays alive and answers normally once the flood is over.

The receive buffer is made small (sip.udp_rcvbuf) so that a Python sender on a loaded 2-core
machine overflows it for sure; the flood stops as soon as both drops and 503s were seen (or
after FLOOD_MAX datagrams), so nothing here depends on how fast either side is. The flood is
OPTIONS to the NF itself (answered 200 locally: cheap for the NF, no other NF involved), each
a new transaction; replies go to the sending sockets, read only after the flood.
Flooded: the P-CSCF (UEs' side) and the S-CSCF from a trusted address (the core's side).
"""

import os
import re
import socket
import time

import lab
from lab import check, wait_for

RCVBUF = 65536              # the kernel keeps twice that: ~60 datagrams of OPTIONS
RETRY_AFTER = 3
SENDERS = 4
FLOOD_MAX = 60000           # bounded: nta keeps each answered transaction 32 s (Timer J)
CHUNK = 1000


def proc_udp(port):
    """(rx_queue, drops) summed over the rows of /proc/net/udp{,6} whose local port is `port`
    (only the NF binds it), or None when there is none."""
    found = None
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            c = row.split()
            if len(c) < 13 or int(c[1].rsplit(":", 1)[1], 16) != port:
                continue
            rxq = int(c[4].split(":")[1], 16)
            drops = int(c[12])
            found = (found[0] + rxq, found[1] + drops) if found else (rxq, drops)
    return found


def options(port, sender_port, n):
    return ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-fl%d\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:flood@ims.lab>;tag=f%d\r\nTo: <sip:127.0.0.1:%d>\r\n"
            "Call-ID: flood-%d-%d@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" %
            (port, sender_port, n, n, port, os.getpid(), n)).encode()


def metric(nf, name, **labels):
    return nf.metric(name, **labels) or 0


def flood(nf, port):
    """Floods `port` until the kernel dropped datagrams there and the NF answered 503, or
    FLOOD_MAX. Returns (sent, the sending sockets, still unread)."""
    socks = []
    for _ in range(SENDERS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:    # keep every reply for counting afterwards (root: beyond net.core.rmem_max)
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)    # SO_RCVBUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    sent = 0
    deadline = time.monotonic() + 30
    while sent < FLOOD_MAX and time.monotonic() < deadline:
        for i in range(CHUNK):
            k = (sent + i) % SENDERS
            try:
                socks[k].sendto(options(port, ports[k], sent + i), ("127.0.0.1", port))
            except BlockingIOError:
                pass
        sent += CHUNK
        drops = (proc_udp(port) or (0, 0))[1]
        if drops > 0 and sent % (CHUNK * 5) == 0 and metric(nf, "sip_udp_queue_rejected_total") > 0:
            break
    return sent, socks


def replies(socks):
    """Status codes of every reply waiting on the sockets, and one 503 (or None)."""
    codes, a503 = {}, None
    for s in socks:
        while True:
            try:
                raw = s.recv(65535)
            except (BlockingIOError, OSError):
                break
            m = lab.SipMessage(raw.decode("utf-8", "replace"))
            if m.status:
                codes[m.status] = codes.get(m.status, 0) + 1
                if m.status == 503 and a503 is None:
                    a503 = m
        s.close()
    return codes, a503


def check_flooded(core, nf, port):
    sock = "127.0.0.1:%d" % port
    before = proc_udp(port)
    check(before is not None, "%s: no row for port %d in /proc/net/udp" % (nf.name, port))
    check(metric(nf, "sip_udp_rcvbuf_bytes", socket=sock) == 2 * RCVBUF,
          "%s: sip_udp_rcvbuf_bytes{socket=%s} should be %d (twice sip.udp_rcvbuf), got %r" %
          (nf.name, sock, 2 * RCVBUF, nf.metric("sip_udp_rcvbuf_bytes", socket=sock)))
    check(nf.metric("sip_udp_rx_queue_bytes", socket=sock) is not None,
          "%s: sip_udp_rx_queue_bytes{socket=%s} not exported" % (nf.name, sock))
    check(metric(nf, "sip_udp_socket_drops_total", socket=sock) == before[1],
          "%s: drops before the flood: metric %r, /proc/net/udp %d" %
          (nf.name, nf.metric("sip_udp_socket_drops_total", socket=sock), before[1]))

    sent, socks = flood(nf, port)
    # The queue drains and the NF stops shedding on its own once the flood is over.
    wait_for(lambda: metric(nf, "sip_udp_queue_shedding") == 0, timeout=30,
             what="%s to stop shedding after the flood" % nf.name)
    nf.check_alive(" after the UDP flood")
    codes, a503 = replies(socks)

    after = proc_udp(port)
    check(after[1] > before[1], "%s: %d datagrams sent, but the kernel dropped none at port %d: "
          "the test did not overflow the receive buffer" % (nf.name, sent, port))
    # The NF looks every 50 ms; once the flood is over both figures stay put and must agree.
    wait_for(lambda: metric(nf, "sip_udp_socket_drops_total", socket=sock) == proc_udp(port)[1], timeout=5,
             what="%s: sip_udp_socket_drops_total{socket=%s} == /proc/net/udp drops (%d)" %
             (nf.name, sock, proc_udp(port)[1]))

    rejected = metric(nf, "sip_udp_queue_rejected_total")
    check(rejected > 0, "%s: sip_udp_queue_rejected_total is 0 after %d datagrams; replies %s" %
          (nf.name, sent, codes))
    check(a503 is not None, "%s: no 503 among the replies to the flood: %s" % (nf.name, codes))
    check(a503.get("Retry-After", "").split(";")[0].strip() == str(RETRY_AFTER),
          "%s: the 503 must carry Retry-After: %d:\n%s" % (nf.name, RETRY_AFTER, a503.text))

    log = nf.log()
    check(re.search(r"WARN .*UDP socket %s: the kernel dropped \d+ SIP datagrams.*sip\.udp_rcvbuf" %
                    re.escape(sock), log),
          "%s: no WARN about the kernel's drops at %s naming sip.udp_rcvbuf" % (nf.name, sock))
    check(re.search(r"WARN .*overload: UDP receive queue of %s .*503 Retry-After %d" %
                    (re.escape(sock), RETRY_AFTER), log),
          "%s: no WARN about shedding on the UDP receive queue" % nf.name)
    check("receive queues below" in log, "%s: the end of the shedding is not logged" % nf.name)
    print("%s: %d sent, %d dropped by the kernel, %d answered 503, replies %s" %
          (nf.name, sent, after[1] - before[1], rejected, codes))

    # Normal service again.
    with lab.RawUdp() as u:
        got = [m for m in u.exchange(port, options(port, u.port, 1 << 30), timeout=5) if m.status]
        check(got and got[-1].status == 200, "%s: OPTIONS after the flood: %s" %
              (nf.name, [m.first for m in got]))


def test_udp_flood(tmp):
    sip = {"udp_rcvbuf": RCVBUF, "retry_after": RETRY_AFTER}
    overrides = {"pcscf": {"sip": sip}, "scscf": {"sip": sip}}
    with lab.Lab(tmp, overrides=overrides, log_level="info") as core:
        check_flooded(core, core.pcscf, core.pcscf_sip)
        # The P-CSCF serves a whole registration again (through the I-CSCF and S-CSCF).
        with lab.RawUdp() as u:
            got = [m for m in u.exchange(core.pcscf_sip, lab.register_request(u.port, core.pcscf_sip),
                                         timeout=5) if m.status]
            check(got and got[-1].status == 401, "REGISTER at the P-CSCF after the flood: %s" %
                  [m.first for m in got])
        check_flooded(core, core.scscf, core.scscf_sip)
        core.alive()


if __name__ == "__main__":
    lab.main()
