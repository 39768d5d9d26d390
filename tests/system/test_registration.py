"""System tests of registration: hss, scscf, icscf and pcscf as separate processes on loopback
with generated configs (lab.py), driven by the SIPp scenarios in scenarios/ and by raw sockets.

Each test starts its own core. What is asserted: SIPp's exit code (0 = the scenario's messages
and regexp checks passed), the headers of the messages SIPp exchanged (its -trace_msg file),
the HSS registration state through its API, and the S-CSCF / P-CSCF /metrics.

References: TS 24.229 5.1.1 (UE), 5.2.2 (P-CSCF), 5.3.1 (I-CSCF), 5.4.1 (S-CSCF registration),
5.4.2 (reg event); TS 29.228 (Cx); RFC 3261 10 (REGISTER), RFC 3327 (Path), RFC 3608
(Service-Route), RFC 7315 (P-Associated-URI), RFC 3680 (reg event package).
"""

import os
import re
import time

import lab
from lab import check, wait_for

ALICE_IMPUS = ("sip:alice@ims.lab", "tel:+15550001")


# --- helpers ------------------------------------------------------------------------------------

def passed(run):
    check(run.rc == 0, run.failure())
    return run


def final_200(run, method="REGISTER"):
    oks = run.received(status=200, cseq_method=method)
    check(oks, "no 200 to %s in the trace:\n%s" % (method, run.failure()))
    return oks[-1]


def uris(value):
    """The <...> URIs of a header value (comma-separated list)."""
    return re.findall(r"<([^>]+)>", value or "")


def check_registered_200(core, run, ue, impus):
    """The 200 OK of a registration, as the UE sees it."""
    ok = final_200(run)
    sr = ok.all("Service-Route")
    # The S-CSCF advertises its listen address (sip.advertise default), not its lab name, which
    # a UE could not resolve.
    check(sr and any("sip:orig@127.0.0.1:%d" % core.scscf_sip in u for v in sr for u in uris(v)),
          "Service-Route must name the S-CSCF (sip:orig@127.0.0.1:%d;lr): %r" % (core.scscf_sip, sr))
    check(all(";lr" in u for v in sr for u in uris(v)), "Service-Route entries must be loose routes: %r" % sr)
    pau = [u for v in ok.all("P-Associated-URI") for u in uris(v)]
    for impu in impus:
        check(impu in pau, "P-Associated-URI lacks %s: %r" % (impu, pau))
    check(pau and pau[0] == ue.impu, "the registered IMPU must come first in P-Associated-URI: %r" % pau)
    path = [u for v in ok.all("Path") for u in uris(v)]
    check(any("sip:term@127.0.0.1:%d" % core.pcscf_sip in u for u in path),
          "the 200 must echo the P-CSCF's Path (RFC 3327 5.3): %r" % path)
    contacts = ok.all("Contact")
    mine = [c for c in contacts if "@127.0.0.1:" in c and "expires=" in c]
    check(mine, "the 200 must list our contact with an expires parameter: %r" % contacts)
    return ok


def service_route(run):
    """Route set for the UE's requests: the Service-Route of the last 200 (in order)."""
    ok = final_200(run)
    return ", ".join("<%s>" % u for v in ok.all("Service-Route") for u in uris(v))


def challenge_of(run):
    c = run.received(status=401)
    check(c, "no 401 in the trace:\n%s" % run.failure())
    return c[-1].get("WWW-Authenticate", "")


def metric(nf, name, **labels):
    v = nf.metric(name, **labels)
    return 0 if v is None else v


def register_aka(core, ue, port, call_id, base_cseq=1, expires=600, label=None):
    return core.sipp_aka("register_aka.xml", ue, keys={"expires": expires}, local_port=port, call_id=call_id,
                         base_cseq=base_cseq, label=label)


# --- the Must-show items --------------------------------------------------------------------------

def test_aka_registration(tmp):
    with lab.Lab(tmp) as core:
        ue = core.ue("alice")
        run = passed(register_aka(core, ue, lab.free_port(), "aka-alice@test"))
        # The P-CSCF removes CK and IK from the challenge (TS 24.229 5.2.2.1, TS 33.203).
        www = challenge_of(run)
        check("AKAv1-MD5" in www, "AKA challenge expected: %s" % www)
        check(not re.search(r"\b(ck|ik)=", www, re.I), "CK/IK leaked to the UE: %s" % www)
        check_registered_200(core, run, ue, ALICE_IMPUS)
        states = core.reg_states("alice")
        check(all(states.get(i) == "registered" for i in ALICE_IMPUS), "HSS reg_state: %r" % states)
        # Both identities of the implicit registration set are registered at the S-CSCF.
        check(metric(core.scscf, "scscf_registrations") >= 2, core.scscf.metric_names())
        check(metric(core.scscf, "scscf_contacts") >= 1, "scscf_contacts")
        challenges = sum(len(r.received(status=401)) for r in core.sipp_runs)   # 2 after a SIPp retry
        check(metric(core.scscf, "scscf_register_total", result="200") == 1,
              "scscf_register_total{result=200}: %s" % metric(core.scscf, "scscf_register_total", result="200"))
        check(metric(core.scscf, "scscf_register_total", result="401") == challenges, "scscf_register_total{401}")
        check(metric(core.pcscf, "pcscf_register_total", result="registered") == 1, "pcscf registered")
        check(metric(core.pcscf, "pcscf_register_total", result="challenged") == challenges, "pcscf challenged")
        check(metric(core.pcscf, "pcscf_bindings") >= 1, "pcscf_bindings")


def test_digest_registration(tmp):
    with lab.Lab(tmp) as core:
        ue = core.ue("bob")
        run = passed(core.sipp("register_digest.xml", ue, local_port=lab.free_port()))
        www = challenge_of(run)
        check(re.search(r'algorithm="?MD5\b', www) and "AKAv1" not in www, "MD5 challenge expected: %s" % www)
        check(re.search(r'qop="?auth', www), "qop=auth expected (HSS digest_qop): %s" % www)
        check('realm="ims.lab"' in www, "realm ims.lab expected: %s" % www)
        auth = run.sent("REGISTER")[-1].get("Authorization", "")
        check('uri="sip:ims.lab"' in auth, "the digest uri is the Request-URI (-auth_uri): %s" % auth)
        check_registered_200(core, run, ue, ("sip:bob@ims.lab", "tel:+15550002"))
        states = core.reg_states("bob")
        check(set(states.values()) == {"registered"}, "HSS reg_state: %r" % states)
        check(metric(core.scscf, "scscf_registrations") >= 2, "scscf_registrations")


def test_digest_registration_chosen_by_algorithm(tmp):
    """alice's default scheme is AKA; an Authorization with algorithm=MD5 asks for digest."""
    with lab.Lab(tmp) as core:
        ue = core.ue("alice")
        # register_digest.xml sends no Authorization: alice gets AKA and the digest UE fails...
        run = core.sipp("register_digest.xml", ue, local_port=lab.free_port(), label="no-hint")
        check(run.rc != 0 and "AKAv1-MD5" in challenge_of(run),
              "alice (default AKA) without a hint must be challenged with AKA:\n" + run.failure())
        # ...and with algorithm=MD5 in the initial Authorization she is challenged with digest.
        run = passed(core.sipp("register_digest_hint.xml", ue, local_port=lab.free_port(), label="md5-hint"))
        check("AKAv1" not in challenge_of(run), challenge_of(run))
        check_registered_200(core, run, ue, ALICE_IMPUS)
        check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered", core.reg_states("alice"))


def test_reregistration(tmp):
    with lab.Lab(tmp) as core:
        ue = core.ue("alice")
        port = lab.free_port()
        first = passed(register_aka(core, ue, port, "rereg-alice@test", label="register"))
        # Same Call-ID, same contact, CSeq continuing: a second REGISTER/401/REGISTER/200.
        next_cseq = int(first.sent("REGISTER")[-1].get("CSeq").split()[0]) + 1
        again = passed(register_aka(core, ue, port, "rereg-alice@test", base_cseq=next_cseq, expires=300,
                                    label="reregister"))
        cseqs = [int(m.get("CSeq").split()[0]) for m in again.sent("REGISTER")]
        first_cseq = int(first.sent("REGISTER")[-1].get("CSeq").split()[0])
        check(len(cseqs) == 2 and cseqs[0] > first_cseq and cseqs[1] == cseqs[0] + 1,
              "re-registration: a REGISTER pair with CSeqs above %d expected: %r" % (first_cseq, cseqs))
        check(final_200(again).get("Call-ID") == final_200(first).get("Call-ID") == "rereg-alice@test",
              "same Call-ID expected")
        ok = check_registered_200(core, again, ue, ALICE_IMPUS)
        mine = [c for c in ok.all("Contact") if ":%d" % port in c]
        check(mine, "our contact in the 200: %r" % ok.all("Contact"))
        m = re.search(r"expires=(\d+)", mine[0])
        check(m and 0 < int(m.group(1)) <= 300, "the re-registration's expiry (asked 300): %s" % mine[0])
        states = core.reg_states("alice")
        check(all(states.get(i) == "registered" for i in ALICE_IMPUS), "HSS reg_state: %r" % states)
        check(metric(core.scscf, "scscf_contacts") == 1, "still one contact at the S-CSCF: %s" %
              metric(core.scscf, "scscf_contacts"))
        check(metric(core.pcscf, "pcscf_bindings") == 1, "still one binding at the P-CSCF: %s" %
              metric(core.pcscf, "pcscf_bindings"))
        check(metric(core.scscf, "scscf_register_total", result="200") == 2, "two 200s")


def test_deregistration(tmp):
    with lab.Lab(tmp) as core:
        ue = core.ue("alice")
        port = lab.free_port()
        reg = passed(register_aka(core, ue, port, "dereg-alice@test", label="register"))
        check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered", core.reg_states("alice"))
        next_cseq = int(reg.sent("REGISTER")[-1].get("CSeq").split()[0]) + 1
        run = passed(core.sipp_aka("deregister.xml", ue, local_port=port, call_id="dereg-alice@test",
                                   base_cseq=next_cseq))
        check(run.sent("REGISTER")[0].get("Expires") == "0", "Expires: 0")
        wait_for(lambda: set(core.reg_states("alice").values()) == {"not_registered"}, 5,
                 what="HSS reg_state not_registered after de-registration")
        wait_for(lambda: metric(core.scscf, "scscf_contacts") == 0 and
                 metric(core.scscf, "scscf_registrations") == 0, 5, what="S-CSCF registrations gone")
        wait_for(lambda: metric(core.pcscf, "pcscf_bindings") == 0, 5, what="P-CSCF bindings gone")
        check(metric(core.pcscf, "pcscf_register_total", result="deregistered") == 1, "pcscf deregistered")
        for nf in (core.pcscf, core.icscf, core.scscf):
            warns = lab.warnings(nf)
            check(not warns, "a normal registration and de-registration logs no WARN: %r" % warns)


def test_wrong_password(tmp):
    with lab.Lab(tmp) as core:
        ue = core.ue("bob")
        run = passed(core.sipp("register_wrong_password.xml", ue, password="not-bobs-password",
                               local_port=lab.free_port()))
        check(run.received(status=403), run.failure())
        check(set(core.reg_states("bob").values()) == {"not_registered"}, core.reg_states("bob"))
        check(metric(core.scscf, "scscf_auth_failures_total") >= 1, "scscf_auth_failures_total")
        check(metric(core.scscf, "scscf_registrations") == 0, "nothing registered")
        check(metric(core.pcscf, "pcscf_bindings") == 0, "no binding at the P-CSCF")


def test_unknown_user(tmp):
    with lab.Lab(tmp) as core:
        ue = lab.Ue("nobody", password="x")
        run = passed(core.sipp("register_rejected.xml", ue, local_port=lab.free_port()))
        check(not run.received(status=401), "an unknown user must not be challenged:\n" + run.failure())
        check(metric(core.scscf, "scscf_register_total", result="401") == 0,
              "the REGISTER of an unknown user must not reach the S-CSCF")
        check(metric(core.pcscf, "pcscf_bindings") == 0, "no binding at the P-CSCF")


def test_reg_event(tmp):
    with lab.Lab(tmp) as core:
        ue = core.ue("alice")
        port = lab.free_port()
        reg = passed(register_aka(core, ue, port, "regevent-alice@test", label="register"))
        route = service_route(reg)
        sub = passed(core.sipp("subscribe_reg.xml", ue, local_port=port, call_id="regevent-sub@test",
                               keys={"route": route, "sub_expires": 600}))
        ok = final_200(sub, "SUBSCRIBE")
        check(ok.get("Record-Route") or ok.get("Contact"), "SUBSCRIBE 200 without Contact: %s" % ok.text)
        notify = sub.received(method="NOTIFY")[0]
        body = notify.body
        check('aor="sip:alice@ims.lab"' in body, "reginfo must describe sip:alice@ims.lab:\n" + body)
        check("127.0.0.1:%d" % port in body, "reginfo must list our contact:\n" + body)
        check(re.search(r'<reginfo[^>]*state="full"', body), "first NOTIFY carries full state:\n" + body)
        check(re.search(r'<reginfo[^>]*version="0"', body), "first NOTIFY has version 0:\n" + body)
        # The UE's subscription (and the P-CSCF's own) are held at the S-CSCF.
        check(metric(core.scscf, "scscf_reg_subscriptions") >= 1, "scscf_reg_subscriptions")


def wait_registered_and_subscribed(core, ue, port, tag, expires=600, recv_timeout=20000):
    reg = passed(register_aka(core, ue, port, "%s-alice@test" % tag, expires=expires, label="register"))
    ready = os.path.join(core.tmp, "%s.ready" % tag)
    sub = core.sipp("subscribe_reg_wait.xml", ue, local_port=port, call_id="%s-sub@test" % tag,
                    keys={"route": service_route(reg), "sub_expires": 600, "ready": ready},
                    recv_timeout=recv_timeout, wait=False, label="subscribe-wait")
    wait_for(lambda: os.path.exists(ready) or not sub.running(), 10, what="the first NOTIFY")
    check(os.path.exists(ready), "no active NOTIFY after the SUBSCRIBE:\n" + sub.failure())
    return reg, sub


def last_notify(sub):
    n = sub.received(method="NOTIFY")
    check(n, sub.failure())
    return n[-1]


def test_network_initiated_deregistration(tmp):
    with lab.Lab(tmp) as core:
        ue = core.ue("alice")
        port = lab.free_port()
        _, sub = wait_registered_and_subscribed(core, ue, port, "rtr")
        status, body = core.api("POST", "/api/v1/subscribers/alice/deregister", {"reason_code": 0})
        check(status == 202, "POST deregister: %s %r" % (status, body))
        sub.wait(30)
        check(sub.rc == 0, "no terminating NOTIFY after the HSS's RTR:\n" + sub.failure())
        n = last_notify(sub)
        check(re.search(r'<registration [^>]*state="terminated"', n.body),
              "registration state terminated expected:\n" + n.body)
        check(re.search(r'event="(deactivated|rejected|unregistered)"', n.body),
              "contact event deactivated/rejected expected (TS 24.229 5.4.1.5):\n" + n.body)
        # An explicit expires="0" on terminated contacts (RFC 3680 allows leaving it out, but
        # common P-CSCFs then keep the binding).
        terminated = [c for c in re.findall(r"<contact\b[^>]*>", n.body) if 'state="terminated"' in c]
        check(terminated and all(re.search(r'\bexpires="0"', c) for c in terminated),
              'terminated contacts must carry expires="0":\n' + n.body)
        wait_for(lambda: set(core.reg_states("alice").values()) == {"not_registered"}, 5,
                 what="HSS reg_state not_registered after RTR")
        wait_for(lambda: metric(core.scscf, "scscf_registrations") == 0, 5, what="S-CSCF registrations gone")
        wait_for(lambda: metric(core.pcscf, "pcscf_bindings") == 0, 5,
                 what="P-CSCF binding removed (its own reg subscription)")


def test_reg_event_over_tcp(tmp):
    """The same over TCP: registration, reg subscription, NOTIFYs back on the UE's connection
    through the P-CSCF, network-initiated de-registration."""
    with lab.Lab(tmp) as core:
        ue = core.ue("alice")
        port = lab.free_port()
        reg = passed(core.sipp_aka("register_aka.xml", ue, local_port=port, call_id="tcp-alice@test",
                                   transport="t1", label="register-tcp"))
        check(final_200(reg).get("Via", "").startswith("SIP/2.0/TCP"), final_200(reg).text)
        ready = os.path.join(core.tmp, "tcp.ready")
        sub = core.sipp("subscribe_reg_wait.xml", ue, local_port=port, call_id="tcp-sub@test", transport="t1",
                        keys={"route": service_route(reg), "sub_expires": 600, "ready": ready},
                        recv_timeout=20000, wait=False, label="subscribe-tcp")
        wait_for(lambda: os.path.exists(ready) or not sub.running(), 10, what="the first NOTIFY over TCP")
        check(os.path.exists(ready), "no active NOTIFY over TCP:\n" + sub.failure())
        status, body = core.api("POST", "/api/v1/subscribers/alice/deregister", {"reason_code": 0})
        check(status == 202, "POST deregister: %s %r" % (status, body))
        sub.wait(30)
        check(sub.rc == 0, "no terminating NOTIFY over TCP:\n" + sub.failure())
        wait_for(lambda: set(core.reg_states("alice").values()) == {"not_registered"}, 5,
                 what="HSS reg_state not_registered")


def test_registration_expiry(tmp):
    with lab.Lab(tmp, min_expires=5) as core:
        ue = core.ue("alice")
        port = lab.free_port()
        t0 = time.monotonic()
        reg, sub = wait_registered_and_subscribed(core, ue, port, "expiry", expires=5, recv_timeout=20000)
        ok = final_200(reg)
        mine = [c for c in ok.all("Contact") if ":%d" % port in c]
        check(mine and re.search(r"expires=5\b", mine[0]), "5 s granted (min_expires 5): %r" % mine)
        sub.wait(30)
        check(sub.rc == 0, "no NOTIFY when the registration expired:\n" + sub.failure())
        elapsed = time.monotonic() - t0
        n = last_notify(sub)
        check(re.search(r'event="expired"', n.body), "contact event expired expected (RFC 3680):\n" + n.body)
        check(4 <= elapsed <= 15, "expired after %.1f s (registered for 5 s)" % elapsed)
        wait_for(lambda: set(core.reg_states("alice").values()) == {"not_registered"}, 5,
                 what="HSS reg_state not_registered after expiry")
        wait_for(lambda: metric(core.scscf, "scscf_contacts") == 0, 5, what="S-CSCF contact gone")
        wait_for(lambda: metric(core.pcscf, "pcscf_bindings") == 0, 5, what="P-CSCF binding gone")


def test_third_party_register(tmp):
    with lab.Lab(tmp) as core:
        uas = core.as_uas()
        ue = core.ue("carol")
        passed(core.sipp("register_digest.xml", ue, local_port=lab.free_port()))
        uas.wait(15)
        check(uas.rc == 0, "the AS got no third-party REGISTER:\n" + uas.failure())
        reg = uas.received(method="REGISTER")[0]
        check(reg.first.startswith("REGISTER %s" % core.as_uri), "Request-URI = the AS: %s" % reg.first)
        check("sip:carol@ims.lab" in reg.get("To", ""), "To = the registered IMPU: %s" % reg.get("To"))
        check("scscf.ims.lab" in reg.get("From", ""), "From = the S-CSCF: %s" % reg.get("From"))
        check("scscf.ims.lab" in reg.get("Contact", ""), "Contact = the S-CSCF: %s" % reg.get("Contact"))
        check(reg.get("Expires", "0").isdigit() and int(reg.get("Expires")) > 0, "Expires: %s" % reg.get("Expires"))


def test_interval_too_brief(tmp):
    """Expires below scscf.min_expires: 423 Interval Too Brief with Min-Expires (RFC 3261 10.3
    step 7), relayed by the I-CSCF and the P-CSCF, before any challenge."""
    with lab.Lab(tmp, min_expires=30) as core:
        with lab.RawUdp() as u:
            got = u.exchange(core.pcscf_sip, lab.register_request(u.port, core.pcscf_sip, expires="10"), timeout=4)
        finals = [m for m in got if m.status and m.status >= 200]
        check(finals and finals[-1].status == 423, "expected 423, got %s" % [m.first for m in got])
        check(finals[-1].get("Min-Expires") == "30", "Min-Expires: 30 expected:\n" + finals[-1].text)
        check(metric(core.scscf, "scscf_register_total", result="401") == 0, "no challenge before the 423")


# --- malformed REGISTERs straight to the P-CSCF ----------------------------------------------------------

def statuses(msgs):
    return [m.status for m in msgs if m.status]


def test_malformed_register(tmp):
    with lab.Lab(tmp) as core:
        port = core.pcscf_sip
        problems = []
        with lab.RawUdp() as u:
            def send(text, what, ok_statuses, allow_silence=False):
                got = statuses(u.exchange(port, text, timeout=4))
                finals = [s for s in got if s >= 200]
                if not finals and allow_silence:
                    return None
                if not finals or finals[-1] not in ok_statuses:
                    problems.append("%s: expected %s, got %s" % (what, ok_statuses, got or "no answer"))
                return finals[-1] if finals else None

            rr = lambda **kw: lab.register_request(u.port, port, **kw)   # noqa: E731
            # A REGISTER without Contact is a query (RFC 3261 10.2.3): answered, not a crash.
            send(rr(drop=("Contact",)), "missing Contact", (200, 401))
            send(rr(headers={"Expires": "soon"}), "Expires: soon", (400,))
            send(rr(headers={"Expires": "-5"}), "Expires: -5", (400,))
            send(rr(headers={"Contact": "<sip:alice@127.0.0.1:%d>;expires=abc" % u.port}),
                 "Contact expires=abc", (400,))
            send(rr(drop=("From",)), "no From", (400,))
            send(rr(drop=("To",)), "no To", (400,))
            send(rr(headers={"CSeq": "x REGISTER"}), "bad CSeq", (400,), allow_silence=True)
            send(rr(headers={"Contact": "<sip:alice@127.0.0.1:%d" % u.port}), "unterminated Contact <", (400,))
            send(rr(headers={"Contact": "*"}), "Contact: * with Expires 600", (400,))
            # More Contacts than a binding holds: 403 as at the S-CSCF (TS 24.229 §5.4.1.2.1; the
            # P-CSCF answered 400 before, common/ims_register.c)
            send(rr(headers={"Contact": ", ".join("<sip:alice@127.0.0.1:%d>" % (20000 + i) for i in range(17))}),
                 "17 Contacts", (403,))
            send(rr(headers={"Max-Forwards": "0"}), "Max-Forwards: 0", (483,))
            send(rr(domain="other.net"), "REGISTER for a domain not served", (403,))
            # Garbage: no answer, or 400 (a STUN-looking datagram may get a STUN error: not SIP).
            for what, data in (("binary garbage", bytes(range(256)) * 4),
                               ("binary garbage 2", bytes(range(255, -1, -1)) * 4),
                               ("text garbage", b"HELLO WORLD\r\n\r\n"),
                               ("truncated request", rr().encode()[:60]),
                               ("empty datagram", b"\r\n\r\n"),
                               ("NUL bytes in a header", rr(headers={"Subject": "a\x00b"}).encode())):
                got = statuses(u.exchange(port, data, timeout=0.7))
                if got and any(s != 400 for s in got if s >= 200):
                    problems.append("%s: expected no answer or 400, got %s" % (what, got))
                if not core.pcscf.running():
                    problems.append("P-CSCF died on %s" % what)
                    break
            # Oversized but well-formed (60 kB over UDP): any answer, as long as it survives.
            u.exchange(port, rr(headers={"X-Big": "a" * 60000}).encode(), timeout=1.0)
            if not core.pcscf.running():
                problems.append("P-CSCF died on a 60 kB REGISTER")
            # Still serving: a valid REGISTER gets its challenge.
            if core.pcscf.running():
                send(rr(), "valid REGISTER after the malformed ones", (401,))
        check(core.pcscf.running(), "the P-CSCF died:\n" + lab.tail(core.pcscf.log(), 40))
        check(core.pcscf.probe("/healthz") == 200, "P-CSCF /healthz")
        core.alive()
        check(not problems, "; ".join(problems))
        check(metric(core.pcscf, "pcscf_register_total", result="bad_request") >= 2,
              "pcscf_register_total{bad_request}: %s" % metric(core.pcscf, "pcscf_register_total",
                                                            result="bad_request"))


def test_malformed_register_tcp(tmp):
    with lab.Lab(tmp) as core:
        port = core.pcscf_sip
        problems = []
        for what, data in (("garbage", bytes(range(256)) * 8),
                           ("no From", lab.register_request(40000, port, transport="TCP", drop=("From",))),
                           ("bad Content-Length", lab.register_request(40000, port, transport="TCP").replace(
                               "Content-Length: 0", "Content-Length: 99999"))):
            try:
                got = lab.tcp_exchange(port, data, timeout=1.0)
            except OSError as e:
                problems.append("%s: TCP connect/send failed: %s" % (what, e))
                continue
            codes = [int(c) for c in re.findall(rb"^SIP/2.0 (\d{3})", got, re.M)]
            if what == "no From" and codes != [400]:
                problems.append("TCP REGISTER without From: expected 400, got %s" % (codes or "nothing"))
            elif what != "no From" and any(c != 400 for c in codes):
                problems.append("TCP %s: expected nothing or 400, got %s" % (what, codes))
            if not core.pcscf.running():
                problems.append("P-CSCF died on TCP %s" % what)
                break
        if core.pcscf.running():
            # A real UE over TCP still registers.
            run = core.sipp("register_digest.xml", core.ue("bob"), transport="t1", local_port=lab.free_port())
            if run.rc != 0:
                problems.append("digest registration over TCP after the garbage failed:\n" + run.failure())
        core.alive()
        check(not problems, "; ".join(problems))


if __name__ == "__main__":
    lab.main()
