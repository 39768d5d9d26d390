"""Input hardening of the shared SIP layer (common/ims_sip_transport.c), on the whole core (lab.py):

- a Max-Forwards that is not an integer 0..255 gets 400 "Invalid Max-Forwards" at every CSCF
  (RFC 3261 §20.22; sofia-sip alone lets it through as if absent, and the proxy reset it to 70);
- a TCP request whose body is shorter than its Content-Length when the client closes the
  connection is discarded: no response, nothing forwarded, counted (RFC 3261 §18.3);
- idle TCP connections are closed after sip.tcp_idle_timeout (CRLF keep-alives keep one open),
  and connections per address are bounded by sip.tcp_max_per_address, both counted in /metrics.
"""

import re
import socket
import time

import lab
from lab import check

BAD_MAX_FORWARDS = ("-5x", "abc", "99999999999", "1.5", "", "256", "4294967296", "7 7")


def metric(nf, name, **labels):
    return nf.metric(name, **labels) or 0


def register_total(nf, name):
    """Sum of every series of `name` (all results): did the NF process any REGISTER?"""
    return sum(v for (n, _), v in nf.metrics().items() if n == name)


def test_invalid_max_forwards(tmp):
    with lab.Lab(tmp) as core:
        problems = []
        with lab.RawUdp() as u:
            for nf, port in ((core.pcscf, core.pcscf_sip), (core.icscf, core.icscf_sip),
                             (core.scscf, core.scscf_sip)):
                for value in BAD_MAX_FORWARDS:
                    req = lab.register_request(u.port, port, headers={"Max-Forwards": value})
                    got = [m for m in u.exchange(port, req, timeout=3) if m.status and m.status >= 200]
                    if not got or got[-1].status != 400 or "Invalid Max-Forwards" not in got[-1].first:
                        problems.append("%s, Max-Forwards %r: expected 400 Invalid Max-Forwards, got %s" % (
                            nf.name, value, [m.first for m in got] or "no answer"))
                count = metric(nf, "sip_invalid_max_forwards_total")
                if count != len(BAD_MAX_FORWARDS):
                    problems.append("%s: sip_invalid_max_forwards_total %s, expected %d" % (
                        nf.name, count, len(BAD_MAX_FORWARDS)))
                if "Max-Forwards is not an integer 0..255" not in nf.log():
                    problems.append("%s: no warning naming the problem in its log" % nf.name)
            # None of them reached the registrar: the check comes before any processing.
            if register_total(core.icscf, "icscf_register_total"):
                problems.append("the I-CSCF processed a REGISTER with an invalid Max-Forwards")
            # 0 is valid and still gets 483; a valid value still works.
            got = [m.status for m in u.exchange(core.pcscf_sip, lab.register_request(
                u.port, core.pcscf_sip, headers={"Max-Forwards": "0"}), timeout=3) if m.status]
            if not got or got[-1] != 483:
                problems.append("Max-Forwards 0: expected 483, got %s" % got)
            got = [m.status for m in u.exchange(core.pcscf_sip, lab.register_request(
                u.port, core.pcscf_sip, headers={"Max-Forwards": "255"}), timeout=5) if m.status]
            if not got or got[-1] != 401:
                problems.append("Max-Forwards 255: expected the 401 challenge, got %s" % got)
        core.alive()
        check(not problems, "; ".join(problems))


def send_and_close(port, data, timeout=3.0):
    """Sends data on a new TCP connection, half-closes it and returns what came back until the
    server closed its side or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        s.sendall(data)
        time.sleep(0.2)
        s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65535)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    return got


def test_truncated_tcp_body(tmp):
    with lab.Lab(tmp) as core:
        port = core.pcscf_sip
        problems = []
        head = lab.register_request(40000, port, transport="TCP").replace(
            "Content-Length: 0", "Content-Type: text/plain\r\nContent-Length: 100").encode()
        # Headers complete, no body at all, then the client closes: sofia-sip hands this over
        # as a request with an empty body; it must be discarded without any answer.
        got = send_and_close(port, head)
        if got:
            problems.append("no body: expected no answer at all, got %r" % got[:80])
        # Part of the body: sofia-sip answers 400 itself and never hands it over.
        got = send_and_close(port, head + b"x" * 10)
        codes = [int(c) for c in re.findall(rb"^SIP/2.0 (\d{3})", got, re.M)]
        if any(c != 400 for c in codes):
            problems.append("10 of 100 body bytes: expected nothing or 400, got %s" % codes)
        time.sleep(0.5)
        count = metric(core.pcscf, "sip_truncated_discarded_total")
        if count != 1:
            problems.append("sip_truncated_discarded_total %s, expected 1" % count)
        if register_total(core.icscf, "icscf_register_total"):
            problems.append("a truncated REGISTER was forwarded to the I-CSCF")
        if "Content-Length 100" not in core.pcscf.log():
            problems.append("no warning about the truncated request in the P-CSCF log")
        # The core still works over TCP: a complete REGISTER gets its challenge.
        got = lab.tcp_exchange(port, lab.register_request(40001, port, transport="TCP"), timeout=5)
        codes = [int(c) for c in re.findall(rb"^SIP/2.0 (\d{3})", got, re.M)]
        if 401 not in codes:
            problems.append("complete REGISTER over TCP afterwards: expected 401, got %s" % (codes or got[:80]))
        core.alive()
        check(not problems, "; ".join(problems))


def closed_by_server(sock, timeout):
    """True when the server closes the connection within timeout (EOF or reset)."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_tcp_idle_timeout(tmp):
    over = {"pcscf": {"sip": {"tcp_idle_timeout": 2}}}
    with lab.Lab(tmp, overrides=over) as core:
        port = core.pcscf_sip
        problems = []
        idle = socket.create_connection(("127.0.0.1", port))
        alive = socket.create_connection(("127.0.0.1", port))
        t0 = time.monotonic()
        # `alive` sends RFC 5626 CRLF keep-alives every 0.5 s: it must stay open.
        closed_at = None
        while time.monotonic() - t0 < 6:
            alive.sendall(b"\r\n\r\n")
            if closed_at is None and closed_by_server(idle, 0.5):
                closed_at = time.monotonic() - t0
        if closed_at is None:
            problems.append("an idle TCP connection was still open after 6 s (tcp_idle_timeout 2 s)")
        elif closed_at < 1.5:
            problems.append("the idle connection was closed after %.1f s, before tcp_idle_timeout" % closed_at)
        alive.setblocking(False)
        try:
            data = alive.recv(4096)
            if data == b"":
                problems.append("a connection with CRLF keep-alives was closed as idle")
        except (BlockingIOError, socket.timeout):
            pass
        except ConnectionResetError:
            problems.append("a connection with CRLF keep-alives was reset")
        count = metric(core.pcscf, "sip_tcp_idle_closed_total")
        if count != 1:
            problems.append("sip_tcp_idle_closed_total %s, expected 1" % count)
        if "sip.tcp_idle_timeout 2 s" not in core.pcscf.log():
            problems.append("no warning about the idle connection in the P-CSCF log")
        idle.close()
        alive.close()
        core.alive()
        check(not problems, "; ".join(problems))


def test_tcp_limit_per_address(tmp):
    limit = 3
    over = {"pcscf": {"sip": {"tcp_max_per_address": limit}}}
    with lab.Lab(tmp, overrides=over) as core:
        port = core.pcscf_sip
        problems = []
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(limit + 2)]
        time.sleep(2.5)     # the connections are looked at once a second
        closed = [i for i, c in enumerate(conns) if closed_by_server(c, 0.2)]
        if len(closed) != 2:
            problems.append("%d TCP connections from one address with tcp_max_per_address %d: "
                            "expected 2 closed, got %d (%s)" % (len(conns), limit, len(closed), closed))
        if closed and closed != [limit, limit + 1]:
            problems.append("the oldest connections must stay, the newest go: closed %s" % closed)
        count = metric(core.pcscf, "sip_tcp_refused_total")
        if count != 2:
            problems.append("sip_tcp_refused_total %s, expected 2" % count)
        if "refused: 127.0.0.1 already has" not in core.pcscf.log():
            problems.append("no warning naming the address in the P-CSCF log")
        # The ones kept still work: a REGISTER on the first gets its challenge.
        c = conns[0]
        c.settimeout(5)
        c.sendall(lab.register_request(40002, port, transport="TCP").encode())
        got = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not re.search(rb"^SIP/2.0 [2-6]\d\d", got, re.M):
            try:
                chunk = c.recv(65535)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        if not re.search(rb"^SIP/2.0 401", got, re.M):
            problems.append("REGISTER on a connection within the limit: expected 401, got %r" % got[:80])
        for c in conns:
            c.close()
        # Once they are gone, the address may connect again.
        time.sleep(1.5)
        again = socket.create_connection(("127.0.0.1", port))
        if closed_by_server(again, 2.0):
            problems.append("a new connection after the others closed was refused")
        again.close()
        core.alive()
        check(not problems, "; ".join(problems))


if __name__ == "__main__":
    lab.main()
