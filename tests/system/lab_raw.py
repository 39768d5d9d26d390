"""Raw SIP over sockets for the system tests: malformed input (RawUdp, tcp_exchange), a REGISTER
made by hand, and a UE made by hand (RawUe) for the fault and abuse tests."""

import os
import re
import socket
import time

import harness  # tests/component, on sys.path through lab
from lab_aka import AKA_K, AKA_OP, aka_res_of_nonce, digest_ha1, digest_response  # noqa: F401
from lab_sip import SipMessage

DOMAIN = "ims.lab"

# --- raw SIP over sockets (malformed input) ------------------------------------------------------

class RawUdp:
    """A UDP socket of our own on 127.0.0.1 for hand-made SIP (port: its local port). The port is
    free for TCP too: tests listen on a registered UE's port for both later (Endpoint)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", harness.free_port_tcp_udp()))
        self.port = self.sock.getsockname()[1]

    def exchange(self, port, data, timeout=3.0, host="127.0.0.1"):
        """Sends one datagram; returns the SipMessages received until a final response or timeout."""
        self.sock.sendto(data if isinstance(data, bytes) else data.encode(), (host, port))
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                raw, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            m = SipMessage(raw.decode("utf-8", "replace"))
            out.append(m)
            if m.status and m.status >= 200:
                break
        return out

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def tcp_exchange(port, data, timeout=3.0, host="127.0.0.1"):
    """Sends bytes on a new TCP connection; returns (raw bytes received until close/timeout)."""
    s = socket.create_connection((host, port), timeout=timeout)
    got = b""
    try:
        s.sendall(data if isinstance(data, bytes) else data.encode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65535)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got and re.search(rb"^SIP/2.0 [2-6]\d\d", got, re.M):
                break
    finally:
        s.close()
    return got


def register_request(port_local, pcscf_port, user="alice", domain=DOMAIN, call_id=None, cseq=1,
                     transport="UDP", headers=None, drop=(), expires="600"):
    """A REGISTER as text. headers: extra/replacement {name: value}; drop: header names left out."""
    call_id = call_id or "raw-%d-%d@127.0.0.1" % (os.getpid(), int(time.monotonic() * 1e6))
    h = [
        ("Via", "SIP/2.0/%s 127.0.0.1:%d;rport;branch=z9hG4bK-%x" % (transport, port_local,
                                                                    int(time.monotonic() * 1e9) & 0xffffffff)),
        ("Max-Forwards", "70"),
        ("From", "<sip:%s@%s>;tag=raw%d" % (user, domain, cseq)),
        ("To", "<sip:%s@%s>" % (user, domain)),
        ("Call-ID", call_id),
        ("CSeq", "%d REGISTER" % cseq),
        ("Contact", "<sip:%s@127.0.0.1:%d;transport=%s>" % (user, port_local, transport.lower())),
        ("Expires", expires),
        ("Authorization", 'Digest username="%s@%s", realm="%s", uri="sip:%s", nonce="", response=""' %
         (user, domain, domain, domain)),
        ("Supported", "path"),
    ]
    headers = dict(headers or {})
    out = []
    for n, v in h:
        if n in drop:
            continue
        if n in headers:
            v = headers.pop(n)
        out.append("%s: %s" % (n, v))
    for n, v in headers.items():
        out.append("%s: %s" % (n, v))
    out.append("Content-Length: 0")
    return "REGISTER sip:%s SIP/2.0\r\n%s\r\n\r\n" % (domain, "\r\n".join(out))


class RawUe:
    """A UE made by hand on its own UDP socket: REGISTERs through the P-CSCF with Authorization
    headers computed here (SIP digest from a password, IMS AKA from K/OP), so a test controls
    every parameter (nonce, nc, username vs To). user: the public identity's user part (To/From);
    impi: the private identity (digest username)."""

    def __init__(self, core, user, impi=None, password=None, k=AKA_K, op=AKA_OP, domain=DOMAIN, port=None,
                 host="127.0.0.1"):
        self.core = core
        self.user, self.domain = user, domain
        self.impi = impi or "%s@%s" % (user, domain)
        self.password, self.k, self.op = password, k, op
        self.host = host
        self.udp = RawUdp()
        if host != "127.0.0.1":   # another loopback address: another UE host as the P-CSCF sees it
            self.udp.sock.close()
            self.udp.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.sock.bind((host, 0))
            self.udp.port = self.udp.sock.getsockname()[1]
        self.port = self.udp.port
        self.target = port or core.pcscf_sip
        self.call_id = "rawue-%s-%d-%d@127.0.0.1" % (user, os.getpid(), self.port)
        self.cseq = 0

    def register(self, authorization=None, expires="600", timeout=5.0):
        """Sends one REGISTER (authorization: the header value, None = the empty one a 3GPP UE
        sends first); returns its final response (SipMessage) or None."""
        self.cseq += 1
        auth = authorization or ('Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""' %
                                 (self.impi, self.domain, self.domain))
        req = register_request(self.port, self.target, user=self.user, domain=self.domain, call_id=self.call_id,
                               cseq=self.cseq, expires=str(expires), headers={"Authorization": auth})
        req = req.replace("127.0.0.1:%d" % self.port, "%s:%d" % (self.host, self.port))
        for m in self.udp.exchange(self.target, req, timeout=timeout):
            if m.status and m.status >= 200:
                return m
        return None

    @staticmethod
    def challenge(resp):
        """{param: value} of a 401's WWW-Authenticate."""
        www = resp.get("WWW-Authenticate", "") if resp is not None else ""
        return dict((a.lower(), b if b else c) for a, b, c in
                    re.findall(r'([A-Za-z0-9_-]+)=(?:"([^"]*)"|([^\s,]+))', www))

    def answer(self, resp, password=None, nc=1, cnonce="0a4f113b", uri=None, username=None):
        """The Authorization answering the 401 resp: AKA (RES from K/OP and the nonce's RAND)
        when the challenge says AKAv1-MD5, else digest with password (default self.password)."""
        ch = self.challenge(resp)
        nonce, realm = ch.get("nonce", ""), ch.get("realm", self.domain)
        username = username or self.impi
        uri = uri or "sip:%s" % self.domain
        if "AKAv1" in ch.get("algorithm", ""):
            secret = aka_res_of_nonce(nonce, self.k, self.op) if password is None else password
            alg = "AKAv1-MD5"
        else:
            secret = password if password is not None else self.password
            alg = "MD5"
        ha1 = digest_ha1(username, realm, secret)
        ncs = "%08x" % nc
        qop = "auth" if "qop" in ch else None
        resp_hex = digest_response(ha1, nonce, "REGISTER", uri, ncs, cnonce, qop)
        value = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s' % (
            username, realm, nonce, uri, resp_hex, alg)
        if qop:
            value += ', qop=auth, nc=%s, cnonce="%s"' % (ncs, cnonce)
        return value

    def close(self):
        self.udp.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --- small helpers of the tests that drive RawUe ---------------------------------------------------

def metric(nf, name, **labels):
    """nf's metric value, 0 when it has not been exported yet."""
    v = nf.metric(name, **labels)
    return 0 if v is None else v


def status_of(resp):
    return resp.status if resp is not None else None


def first_line(resp):
    return resp.first if resp is not None else "(no final response)"
