"""A 3GPP-style test UE for sec-agree (TS 33.203 §7, RFC 3329): IMS AKA computed here (Milenage
f2-f4, TS 35.206, over lab.py's AES), Security-Client ipsec-3gpp, its side of the four SAs installed
with `ip xfrm` in its own network namespace, and SIP over them (UDP; TCP for its own requests).

Only inside the VM (tests/vm/run.sh): it changes the kernel's IPsec state. Each UE lives in a
network namespace with a veth pair to the root namespace, where the P-CSCF runs: XFRM policies do
not apply on loopback. Sockets are created inside the UE's namespace (setns on this thread, then
back), so one test process drives several UEs and the NFs.
"""

import base64
import ctypes
import hashlib
import os
import random
import re
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
import lab  # noqa: E402

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode:
        raise lab.TestFailure("%s: %s%s" % (cmd, r.stdout, r.stderr))
    return r.stdout


class Netns:
    """Creates sockets inside namespace `name` (the thread switches there and back)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/%s" % self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), "setns %s" % self.name)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *a):
        _libc.setns(self.home, CLONE_NEWNET)
        os.close(self.home)


def make_ns(name, ue_ip, root_ip, veth):
    """Namespace `name` with veth pair root `veth` (root_ip/24) <-> ns eth0 (ue_ip/24)."""
    sh("ip netns add %s" % name)
    sh("ip link add %s type veth peer name eth0 netns %s" % (veth, name))
    sh("ip addr add %s/24 dev %s && ip link set %s up" % (root_ip, veth, veth))
    sh("ip -n %s addr add %s/24 dev eth0 && ip -n %s link set eth0 up && ip -n %s link set lo up"
       % (name, ue_ip, name, name))
    sh("ip -n %s route add default via %s" % (name, root_ip))


# --- Milenage f2-f5 (TS 35.206 §4.1) ------------------------------------------------------------

def _rot(b, r):
    r //= 8
    return b[r:] + b[:r]


def milenage(k, op, rand):
    """(RES, CK, IK) of a RAND."""
    enc = lambda x: lab.aes128_encrypt(k, x)  # noqa: E731
    opc = lab.xor(enc(op), op)
    temp = enc(lab.xor(rand, opc))

    def f(r, c):
        cst = bytes(15) + bytes([c])
        return lab.xor(enc(lab.xor(_rot(lab.xor(temp, opc), r), cst)), opc)
    out2, out3, out4 = f(0, 1), f(32, 2), f(64, 4)
    return out2[8:16], out3, out4


def selftest():
    # TS 35.208 test set 1
    res, ck, ik = milenage(bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc"),
                           bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318"),
                           bytes.fromhex("23553cbe9637a89d218ae64dae47bf35"))
    assert res.hex() == "a54211d5e3ba50bf", res.hex()
    assert ck.hex() == "b40ba9a3c58b2a05bbf0d987b21bf8cb", ck.hex()
    assert ik.hex() == "f769bcd751044604127672711c6d3441", ik.hex()


# --- SIP ----------------------------------------------------------------------------------------

def parse(data):
    text = data.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    hdrs = []
    for ln in lines[1:]:
        if ":" in ln:
            n, v = ln.split(":", 1)
            hdrs.append((n.strip().lower(), v.strip()))
    return lines[0], hdrs, body


def hdr(hdrs, name, all_=False):
    vals = [v for n, v in hdrs if n == name.lower()]
    return vals if all_ else (vals[0] if vals else None)


def status_of(first):
    m = re.match(r"SIP/2.0 (\d+)", first)
    return int(m.group(1)) if m else 0


def digest(user, realm, pw, method, uri, nonce, qop, cnonce="0a4f113b", nc="00000001"):
    h = lambda s: hashlib.md5(s if isinstance(s, bytes) else s.encode()).hexdigest()  # noqa: E731
    ha1 = h(b"%s:%s:" % (user.encode(), realm.encode()) + pw)
    ha2 = h("%s:%s" % (method, uri))
    if qop:
        return h("%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2)), cnonce, nc
    return h("%s:%s:%s" % (ha1, nonce, ha2)), None, None


class Ue:
    """One UE: plain socket on 5060 (first REGISTER, softphone mode), protected ports uc/us."""

    def __init__(self, ns, ip, user, pcscf_ip, pcscf_port, k=lab.AKA_K, op=lab.AKA_OP, password=None,
                 domain=lab.DOMAIN, ealg="null", alg="hmac-sha-1-96", base_port=6100):
        self.ns, self.ip, self.user, self.domain = ns, ip, user, domain
        self.pcscf_ip, self.pcscf_port = pcscf_ip, pcscf_port
        self.k, self.op, self.password = bytes.fromhex(k), bytes.fromhex(op), password
        self.alg, self.ealg = alg, ealg
        self.impu = "sip:%s@%s" % (user, domain)
        self.impi = "%s@%s" % (user, domain)
        self.port_uc, self.port_us = base_port, base_port + 1
        self.contact_port = self.port_us   # kept across re-authentications (the registered contact)
        self.spi_uc, self.spi_us = random.randint(0x10000, 0x7fffffff), random.randint(0x10000, 0x7fffffff)
        self.server = None       # the P-CSCF's Security-Server parameters (dict)
        self.server_line = None
        self.cseq = 1
        self.call_id = "%x@%s" % (random.getrandbits(64), ip)
        self.tag = "%x" % random.getrandbits(32)
        self.service_route = []
        with Netns(ns):
            self.plain = self._udp(5060)
            self.uc = self._udp(self.port_uc)
            self.us = self._udp(self.port_us)

    def _udp(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.ip, port))
        s.settimeout(8)
        return s

    def close(self):
        for s in (self.plain, self.uc, self.us):
            s.close()

    # --- SAs (TS 33.203 §7.1, Annex I) ---
    def sa_keys(self, ck, ik):
        auth = ("hmac(sha1)", ik + bytes(4)) if self.alg == "hmac-sha-1-96" else ("hmac(md5)", ik)
        enc = {"null": ("cipher_null", b""), "aes-cbc": ("aes", ck),
               "des-ede3-cbc": ("des3_ede", ck[:8] + ck[8:] + ck[:8])}[self.ealg]
        return auth, enc

    def install_sas(self, ck, ik):
        (aname, akey), (ename, ekey) = self.sa_keys(ck, ik)
        p, s = self.server, self
        enc = "enc '%s' %s" % (ename, "0x" + ekey.hex() if ekey else '""')
        sas = [  # src sport dst dport spi
            (s.ip, s.port_uc, self.pcscf_ip, p["port-s"], p["spi-s"], "out"),
            (self.pcscf_ip, p["port-s"], s.ip, s.port_uc, s.spi_uc, "in"),
            (self.pcscf_ip, p["port-c"], s.ip, s.port_us, s.spi_us, "in"),
            (s.ip, s.port_us, self.pcscf_ip, p["port-c"], p["spi-c"], "out"),
        ]
        for src, sp, dst, dp, spi, d in sas:
            sh("ip -n %s xfrm state add src %s dst %s proto esp spi %d mode transport reqid 77 replay-window 32 "
               "auth-trunc '%s' 0x%s 96 %s sel src %s dst %s sport %d dport %d"
               % (self.ns, src, dst, spi, aname, akey.hex(), enc, src, dst, sp, dp))
            for proto in ("udp", "tcp"):
                sh("ip -n %s xfrm policy add src %s dst %s proto %s sport %d dport %d dir %s "
                   "tmpl src %s dst %s proto esp mode transport reqid 77 level required"
                   % (self.ns, src, dst, proto, sp, dp, d, src, dst))
        self.sas = sas

    def remove_sas(self):
        sh("ip -n %s xfrm state flush; ip -n %s xfrm policy flush" % (self.ns, self.ns), check=False)

    # --- messages ---
    def security_client(self):
        return ("ipsec-3gpp;alg=%s;ealg=%s;spi-c=%d;spi-s=%d;port-c=%d;port-s=%d;prot=esp;mod=trans"
                % (self.alg, self.ealg, self.spi_uc, self.spi_us, self.port_uc, self.port_us))

    def register_msg(self, port, expires=600, auth=None, extra=(), transport="UDP", contact_port=None):
        branch = "z9hG4bK%x" % random.getrandbits(48)
        lines = ["REGISTER sip:%s SIP/2.0" % self.domain,
                 "Via: SIP/2.0/%s %s:%d;branch=%s;rport" % (transport, self.ip, port, branch),
                 "Max-Forwards: 70",
                 "From: <%s>;tag=%s" % (self.impu, self.tag),
                 "To: <%s>" % self.impu,
                 "Call-ID: %s" % self.call_id,
                 "CSeq: %d REGISTER" % self.cseq,
                 "Contact: <sip:%s@%s:%d>;expires=%d" % (self.user, self.ip, contact_port or self.contact_port,
                                                         expires),
                 "Supported: path, sec-agree",
                 "Authorization: %s" % (auth or 'Digest username="%s", realm="%s", uri="sip:%s", nonce="", '
                                        'response=""' % (self.impi, self.domain, self.domain))]
        lines += list(extra)
        self.cseq += 1
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    def recv(self, sock, want=None):
        """Next SIP response (want: its CSeq method) on sock: (status, first line, headers)."""
        while True:
            data, _ = sock.recvfrom(65535)
            first, hdrs, body = parse(data)
            if first.startswith("SIP/2.0"):
                if want and want not in (hdr(hdrs, "cseq") or ""):
                    continue
                st = status_of(first)
                if st < 200:
                    continue
                return st, first, hdrs

    def answer(self, www, method="REGISTER"):
        nonce = re.search(r'nonce="([^"]+)"', www).group(1)
        qop = re.search(r'qop="?([a-z-]+)', www)
        qop = qop.group(1) if qop else None
        realm = re.search(r'realm="([^"]+)"', www).group(1)
        if "AKAv1-MD5" in www:
            rand = base64.b64decode(nonce)[:16]
            res, ck, ik = milenage(self.k, self.op, rand)
            pw = res
        else:
            ck = ik = None
            pw = self.password.encode()
        uri = "sip:%s" % self.domain
        resp, cnonce, nc = digest(self.impi, realm, pw, method, uri, nonce, qop)
        auth = ('Digest username="%s", realm="%s", uri="%s", nonce="%s", response="%s", algorithm=%s'
                % (self.impi, realm, uri, nonce, resp, "AKAv1-MD5" if ck else "MD5"))
        if qop:
            auth += ', qop=%s, cnonce="%s", nc=%s' % (qop, cnonce, nc)
        return auth, ck, ik

    def initial_register(self, sec_agree=True, expires=600):
        """The unprotected first REGISTER and its 401 (returns status, headers, ck, ik)."""
        extra = []
        if sec_agree:
            extra = ["Security-Client: %s" % self.security_client(), "Require: sec-agree",
                     "Proxy-Require: sec-agree"]
        self.plain.sendto(self.register_msg(5060, expires, extra=extra, contact_port=None if sec_agree else 5060),
                          (self.pcscf_ip, self.pcscf_port))
        st, _, hdrs = self.recv(self.plain, "REGISTER")
        return st, hdrs

    def register(self, expires=600, verify=None, protected=True):
        """Full sec-agree registration; returns the final status of the protected REGISTER."""
        st, hdrs = self.initial_register(True, expires)
        if st != 401:
            return st
        www = hdr(hdrs, "www-authenticate")
        self.server_line = hdr(hdrs, "security-server")
        if not self.server_line:
            raise lab.TestFailure("401 without Security-Server: %s" % hdrs)
        self.server = {k: int(v) for k, v in re.findall(r"(spi-c|spi-s|port-c|port-s)=(\d+)", self.server_line)}
        auth, ck, ik = self.answer(www)
        self.install_sas(ck, ik)
        return self.protected_register(auth, expires, verify)

    def protected_register(self, auth, expires, verify=None):
        msg = self.register_msg(self.port_uc, expires, auth=auth, extra=[
            "Security-Client: %s" % self.security_client(), "Security-Verify: %s" % (verify or self.server_line),
            "Require: sec-agree", "Proxy-Require: sec-agree"])
        self.uc.sendto(msg, (self.pcscf_ip, self.server["port-s"]))
        st, _, hdrs = self.recv(self.uc, "REGISTER")
        if st == 200:
            self.service_route = [v for v in hdr(hdrs, "service-route", True)]
        return st

    def reregister_protected(self, expires):
        """Re-REGISTER over the SAs without new credentials (may be challenged: returns status, hdrs)."""
        msg = self.register_msg(self.port_uc, expires, extra=[
            "Security-Client: %s" % self.security_client(), "Security-Verify: %s" % self.server_line,
            "Require: sec-agree", "Proxy-Require: sec-agree"])
        self.uc.sendto(msg, (self.pcscf_ip, self.server["port-s"]))
        st, _, hdrs = self.recv(self.uc, "REGISTER")
        return st, hdrs

    def next_agreement(self):
        """New SPIs and protected ports for a new challenge (TS 33.203 §7.4); returns the old ones."""
        old = dict(uc=self.uc, us=self.us, port_uc=self.port_uc, port_us=self.port_us, spi_uc=self.spi_uc,
                   spi_us=self.spi_us, server=self.server, server_line=self.server_line)
        self.port_uc += 2
        self.port_us += 2
        self.spi_uc, self.spi_us = random.randint(0x10000, 0x7fffffff), random.randint(0x10000, 0x7fffffff)
        with Netns(self.ns):
            self.uc = self._udp(self.port_uc)
            self.us = self._udp(self.port_us)
        return old

    def remove_sas_of(self, old):
        """Its side of an old SA set (states and policies), once the new one is in use."""
        p = old["server"]
        for src, sp, dst, dp, spi, d in [
                (self.ip, old["port_uc"], self.pcscf_ip, p["port-s"], p["spi-s"], "out"),
                (self.pcscf_ip, p["port-s"], self.ip, old["port_uc"], old["spi_uc"], "in"),
                (self.pcscf_ip, p["port-c"], self.ip, old["port_us"], old["spi_us"], "in"),
                (self.ip, old["port_us"], self.pcscf_ip, p["port-c"], p["spi-c"], "out")]:
            sh("ip -n %s xfrm state delete src %s dst %s proto esp spi %d" % (self.ns, src, dst, spi))
            for proto in ("udp", "tcp"):
                sh("ip -n %s xfrm policy delete src %s dst %s proto %s sport %d dport %d dir %s"
                   % (self.ns, src, dst, proto, sp, dp, d))
        old["uc"].close()
        old["us"].close()

    def reauth_start(self, expires):
        """A re-REGISTER over the current SAs offering new ones (new SPIs and ports in
        Security-Client, TS 24.229 §5.1.1.4.1): (status, headers, old agreement)."""
        old = self.next_agreement()
        msg = self.register_msg(old["port_uc"], expires, extra=[
            "Security-Client: %s" % self.security_client(), "Security-Verify: %s" % old["server_line"],
            "Require: sec-agree", "Proxy-Require: sec-agree"])
        old["uc"].sendto(msg, (self.pcscf_ip, old["server"]["port-s"]))
        st, _, hdrs = self.recv(old["uc"], "REGISTER")
        return st, hdrs, old

    def reauth_finish(self, hdrs, expires):
        """After the 401 of reauth_start: the new SAs installed, the REGISTER over them; status."""
        self.server_line = hdr(hdrs, "security-server")
        if not self.server_line:
            raise lab.TestFailure("401 to the re-REGISTER without Security-Server: %s" % hdrs)
        self.server = {k: int(v) for k, v in re.findall(r"(spi-c|spi-s|port-c|port-s)=(\d+)", self.server_line)}
        auth, ck, ik = self.answer(hdr(hdrs, "www-authenticate"))
        self.install_sas(ck, ik)
        return self.protected_register(auth, expires)

    def softphone_register(self, expires=600):
        """A UE without sec-agree (digest), all from its plain port."""
        st, hdrs = self.initial_register(False, expires)
        if st != 401:
            return st
        auth, _, _ = self.answer(hdr(hdrs, "www-authenticate"))
        self.plain.sendto(self.register_msg(5060, expires, auth=auth, contact_port=5060),
                          (self.pcscf_ip, self.pcscf_port))
        st, _, _ = self.recv(self.plain, "REGISTER")
        return st

    def request(self, method, ruri, sock=None, port=None, to=None, extra=(), body=""):
        """A request out of dialog from the protected client port (or sock/port given)."""
        sock = sock or self.uc
        port = self.port_uc if port is None else port
        branch = "z9hG4bK%x" % random.getrandbits(48)
        lines = ["%s %s SIP/2.0" % (method, ruri),
                 "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (self.ip, port, branch),
                 "Max-Forwards: 70", "From: <%s>;tag=%s" % (self.impu, self.tag),
                 "To: <%s>" % (to or ruri), "Call-ID: %x@%s" % (random.getrandbits(64), self.ip),
                 "CSeq: 1 %s" % method, "Contact: <sip:%s@%s:%d>" % (self.user, self.ip, self.port_us)]
        lines += ["Route: %s" % r for r in self.service_route] + list(extra)
        return ("\r\n".join(lines) + "\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode()


def milenage_auts(k, op, rand, sqn_ms):
    """AUTS = SQN_MS xor AK* || MAC-S (TS 33.102 §6.3.3, AMF 0 for MAC-S), f1* and f5* of TS 35.206
    §4.1: OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1=64) xor c1=0) xor OPc, MAC-S = OUT1[8:16];
    OUT5 = E_K(rot(TEMP xor OPc, r5=96) xor c5) xor OPc, c5 = ...08, AK* = OUT5[0:6]."""
    enc = lambda x: lab.aes128_encrypt(k, x)  # noqa: E731
    opc = lab.xor(enc(op), op)
    temp = enc(lab.xor(rand, opc))
    sqn = sqn_ms.to_bytes(6, "big")
    in1 = sqn + bytes(2) + sqn + bytes(2)
    out1 = lab.xor(enc(lab.xor(temp, _rot(lab.xor(in1, opc), 64))), opc)
    out5 = lab.xor(enc(lab.xor(_rot(lab.xor(temp, opc), 96), bytes(15) + b"\x08")), opc)
    return lab.xor(sqn, out5[0:6]) + out1[8:16]
