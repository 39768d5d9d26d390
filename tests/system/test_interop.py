"""System tests of interoperability with other vendors' network elements and UEs, and of what
must not leak out of the home network (issue 10). The whole core on loopback (lab.py); a hand-made
P-CSCF (raw UDP socket) in front of the I-CSCF, hand-made UEs (lab.RawUe) and SIPp UEs.

What is asserted, per behaviour:
- a quoted-string P-Visited-Network-ID (RFC 7315 4.3: token or quoted-string; Kamailio sends
  `"ims.lab"`) from a P-CSCF reaches the HSS unquoted in the UAR's Visited-Network-Identifier:
  the REGISTER is challenged (401), not refused as roaming not allowed (403); a quoted network
  the subscriber may not roam in is still refused (403), a token one still accepted;
- credentials of the home realm never leave the home network (RFC 3261 22): the Authorization
  and Proxy-Authorization for realm ims.lab that a UE attaches to INVITE, ACK, BYE and MESSAGE
  (Linphone re-sends its REGISTER credentials) do not reach the callee; the Proxy-Authorization
  for realm other.example does (22.3: a proxy must not remove other realms' credentials). Through
  the whole core (the P-CSCF removes them) and straight into the S-CSCF's terminating side (the
  S-CSCF removes them too: defence in depth for a P-CSCF that does not);
- Path in the 200 to REGISTER (RFC 3327 5.3): echoed to a UE that listed path in Supported,
  left out for one that did not; never Require: path in the 200. The same at the S-CSCF for a
  P-CSCF of another vendor that sends Path with or without Supported: path.
(reginfo's expires="0" on terminated contacts is asserted in test_registration.py's
test_network_initiated_deregistration.)

Each new assertion fails against the code before issue 10 (checked by hand when written).
"""

import re

import lab
from lab import check, first_line, status_of
from test_sessions import Ua, call, callee, passed, subscribers, wait_uas


# --- a UE / P-CSCF made by hand with header control ---------------------------------------------

class HandUe(lab.RawUe):
    """lab.RawUe whose REGISTERs carry extra headers (a dict, None values drop a header) on top of
    lab.register_request's: e.g. {"Supported": None} for a UE that does not list path."""

    def __init__(self, core, user, headers=None, **kw):
        super().__init__(core, user, **kw)
        self.headers = dict(headers or {})

    def register(self, authorization=None, expires="600", timeout=5.0):
        self.cseq += 1
        auth = authorization or ('Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""' %
                                 (self.impi, self.domain, self.domain))
        headers = {"Authorization": auth}
        headers.update({n: v for n, v in self.headers.items() if v is not None})
        drop = tuple(n for n, v in self.headers.items() if v is None)
        req = lab.register_request(self.port, self.target, user=self.user, domain=self.domain,
                                   call_id=self.call_id, cseq=self.cseq, expires=str(expires),
                                   headers=headers, drop=drop)
        for m in self.udp.exchange(self.target, req, timeout=timeout):
            if m.status and m.status >= 200:
                return m
        return None

    def register_ok(self, password=None):
        """REGISTER -> 401 -> answer -> 200; returns the 200."""
        ch = self.register()
        check(status_of(ch) == 401, "%s: first REGISTER: 401 expected, got %s" % (self.impi, first_line(ch)))
        ok = self.register(self.answer(ch, password=password))
        check(status_of(ok) == 200, "%s: answered REGISTER: 200 expected, got %s\n%s" %
              (self.impi, first_line(ok), ok.text if ok is not None else ""))
        return ok


def as_pcscf(ue, visited='"ims.lab"', supported="path"):
    """Headers a P-CSCF of another vendor puts on the REGISTER it sends to our I-CSCF (TS 24.229
    5.2.2.1): its Path, Require: path, P-Visited-Network-ID (here quoted, as Kamailio's)."""
    return {"Path": "<sip:term@127.0.0.1:%d;lr>" % ue.port, "Require": "path", "Supported": supported,
            "P-Visited-Network-ID": visited}


# --- 1. P-Visited-Network-ID as a quoted-string -------------------------------------------------

def test_quoted_visited_network_id(tmp):
    with lab.Lab(tmp) as core:
        for visited, want in (('"ims.lab"', 401), ('"ims.lab";lab-param=1', 401), ("ims.lab", 401),
                              ('"roam.example"', 403)):
            with HandUe(core, "alice", port=core.icscf_sip) as ue:
                ue.headers = as_pcscf(ue, visited)
                resp = ue.register()
                check(status_of(resp) == want, "P-Visited-Network-ID: %s -> %d expected, got %s" %
                      (visited, want, first_line(resp)))
        log = core.icscf.log()
        check("visited ims.lab:" in log and 'visited "ims.lab"' not in log,
              "the I-CSCF must send the network unquoted in the UAR (its debug line 'visited ims.lab')")


# --- 2. home realm credentials do not leave the home network ------------------------------------

HOME = re.compile(r'realm\s*=\s*"?ims\.lab"?', re.I)
OTHER = re.compile(r'realm\s*=\s*"?other\.example"?', re.I)


def credentials(m):
    return m.all("Authorization") + m.all("Proxy-Authorization")


def check_credentials(m, what, other_expected=True):
    creds = credentials(m)
    leaked = [c for c in creds if HOME.search(c) or "alice@ims.lab" in c]
    check(not leaked, "%s: the callee received the home realm's credentials (RFC 3261 22): %r" % (what, leaked))
    if other_expected:
        kept = [c for v in m.all("Proxy-Authorization") for c in [v] if OTHER.search(c)]
        check(kept, "%s: the Proxy-Authorization for realm other.example must reach the callee (RFC 3261 "
                    "22.3): %r" % (what, creds))


def test_home_credentials_removed(tmp):
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")

        # MESSAGE through the whole core
        b = callee(core, bob, "message_uas.xml")
        passed(call(core, alice, "message_uac_creds.xml"))
        wait_uas(b)
        check_credentials(b.received(method="MESSAGE")[0], "MESSAGE")

        # INVITE, ACK and BYE (in the dialog) through the whole core
        b = callee(core, bob, "callee_answer_short.xml")
        passed(call(core, alice, "call_uac_creds.xml"))
        wait_uas(b)
        for method in ("INVITE", "BYE"):
            check_credentials(b.received(method=method)[0], method)
        check_credentials(b.received(method="ACK")[0], "ACK", other_expected=False)
        check("credential header(s) for our realm removed" not in core.scscf.log(),
              "the P-CSCF removed them already: the S-CSCF must not have seen any")
        check("credential header(s) for home realm ims.lab removed" in core.pcscf.log(),
              "the P-CSCF logs what it removed")

        # Straight into the S-CSCF's terminating side (as from an I-CSCF), past our P-CSCF's
        # originating side: the S-CSCF removes them itself.
        b = callee(core, bob, "message_uas.xml")
        with lab.RawUdp() as raw:
            msg = ("MESSAGE sip:bob@ims.lab SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-iop-term-1\r\n"
                   "Max-Forwards: 70\r\n"
                   "Route: <sip:127.0.0.1:%d;lr>\r\n"
                   "From: <sip:alice@ims.lab>;tag=iop1\r\n"
                   "To: <sip:bob@ims.lab>\r\n"
                   "Call-ID: iop-term-%d@test\r\n"
                   "CSeq: 1 MESSAGE\r\n"
                   "P-Asserted-Identity: <sip:alice@ims.lab>\r\n"
                   'Authorization: Digest username="alice@ims.lab", realm="ims.lab", nonce="bm9uY2U", '
                   'uri="sip:ims.lab", response="6629fae49393a05397450978507c4ef1"\r\n'
                   'Proxy-Authorization: Digest username="alice", realm="other.example", nonce="b3RoZXI", '
                   'uri="sip:bob@ims.lab", response="c0ffee00c0ffee00c0ffee00c0ffee00"\r\n'
                   "Content-Type: text/plain\r\n"
                   "Content-Length: 37\r\n\r\n"
                   "hello from alice through the IMS core") % (raw.port, core.scscf_sip, raw.port)
            got = raw.exchange(core.scscf_sip, msg, timeout=8)
            check(got and got[-1].status == 200, "MESSAGE to the S-CSCF: 200 expected, got %r" % got)
        wait_uas(b)
        check_credentials(b.received(method="MESSAGE")[0], "MESSAGE via the S-CSCF's terminating side")
        check("credential header(s) for our realm removed" in core.scscf.log(),
              "the S-CSCF logs what it removed")


# --- 3. Path in the 200 to REGISTER ---------------------------------------------------------------

def path_uris(resp):
    return [u for v in resp.all("Path") for u in re.findall(r"<([^>]+)>", v)]


def require_tags(resp):
    return [t.strip().lower() for v in resp.all("Require") for t in v.split(",")]


def test_path_only_when_supported(tmp):
    with lab.Lab(tmp) as core:
        # Through our P-CSCF: alice lists path in Supported, bob (digest) does not.
        with HandUe(core, "alice") as alice, HandUe(core, "bob", password="bobpass",
                                                    headers={"Supported": None}) as bob:
            ok = alice.register_ok()
            check(any("sip:term@127.0.0.1:%d" % core.pcscf_sip in u for u in path_uris(ok)),
                  "UE with Supported: path: the 200 must echo the P-CSCF's Path (RFC 3327 5.3):\n" + ok.text)
            check("path" not in require_tags(ok), "no Require: path in a 200 to REGISTER:\n" + ok.text)
            ok = bob.register_ok()
            check(not ok.all("Path"), "UE without Supported: path: no Path in the 200 (RFC 3327 5.3):\n" + ok.text)
            check("path" not in require_tags(ok), "no Require: path in a 200 to REGISTER:\n" + ok.text)
            check(ok.all("Service-Route"), "the rest of the 200 is intact:\n" + ok.text)

        # A P-CSCF of another vendor straight at the I-CSCF: with and without Supported: path.
        for user, password, supported in (("alice", None, "path"), ("bob", "bobpass", None)):
            with HandUe(core, user, password=password, port=core.icscf_sip) as ue:
                ue.headers = as_pcscf(ue, supported=supported)
                ok = ue.register_ok()
                mine = "sip:term@127.0.0.1:%d" % ue.port
                if supported:
                    check(any(mine in u for u in path_uris(ok)),
                          "S-CSCF, REGISTER with Supported: path: Path echoed (RFC 3327 5.3):\n" + ok.text)
                else:
                    check(not ok.all("Path"), "S-CSCF, REGISTER without Supported: path: no Path:\n" + ok.text)
                check("path" not in require_tags(ok), "S-CSCF: no Require: path in the 200:\n" + ok.text)


if __name__ == "__main__":
    lab.main()
