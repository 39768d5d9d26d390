"""System tests of faults: the HSS restarted under registration load, the S-CSCF restarted, the
HSS unreachable when the CSCFs start. The whole core on loopback (lab.py); UEs are lab.RawUe
(REGISTERs with IMS AKA / digest answers computed here) so that every response is seen and
every AKA challenge's SQN can be decoded (AUTN = SQN xor AK || AMF || MAC, AK from K/OP).

Behaviour asserted (README "Faults"):
- HSS killed (SIGKILL) and started again during registrations: the I-CSCF's and S-CSCF's
  /readyz turn 503 naming the HSS peer, then 200 again once the Diameter connection is back
  (tc_timer 1 s in the lab); every REGISTER meanwhile gets a final response (no hang): 5xx
  from the core; registrations succeed again afterwards; the SQNs the UEs see strictly increase
  across the restart (the HSS commits each SQN before it answers).
- S-CSCF killed and started again: registrations were in memory and are gone; the HSS still
  names the S-CSCF, so the UE's next REGISTER comes back to it (UAR 2002) and is an initial
  registration there (full AKA, SAR); until then an originating request of the UE gets 403
  (not registered here) and a request to it gets the unregistered-user handling (SAR
  UNREGISTERED_USER, no unregistered iFC: 480); after re-registering, requests flow again.
- HSS down when the CSCFs start: they run (no crash), /readyz 503 naming the peer, a REGISTER
  gets a prompt 480 with Retry-After; when the HSS starts they connect on their own and a registration works.
"""

import socket
import threading
import time

import lab
from lab import check, first_line, metric, status_of, wait_for


def readyz(nf):
    try:
        status, body, _ = nf.get("/readyz", timeout=1)
        return status, body if isinstance(body, str) else str(body)
    except OSError:
        return None, ""


def register_ok(ue, hint=None):
    ch = ue.register(hint)
    check(status_of(ch) == 401, "%s: first REGISTER: 401 expected, got %s" % (ue.impi, first_line(ch)))
    ok = ue.register(ue.answer(ch))
    check(status_of(ok) == 200, "%s: answered REGISTER: 200 expected, got %s" % (ue.impi, first_line(ok)))
    return ch, ok


AKA_HINT = 'Digest username="%s", realm="ims.lab", uri="sip:ims.lab", nonce="", response="", algorithm=AKAv1-MD5'


# --- HSS restarted under registration load ---------------------------------------------------------------

class Registrar(threading.Thread):
    """Registers one user with AKA in a loop (REGISTER -> 401 -> REGISTER -> 200) and records each
    final response with its time, and the SQN of each challenge."""

    def __init__(self, core, user):
        super().__init__(daemon=True)
        self.ue = lab.RawUe(core, user)
        self.hint = AKA_HINT % self.ue.impi
        self.stop = threading.Event()
        self.results = []   # (monotonic time, status or None)
        self.sqns = []      # (monotonic time, SQN) in the order issued to this IMPI
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                t = time.monotonic()
                ch = self.ue.register(self.hint, timeout=8)
                self.results.append((t, status_of(ch)))
                if status_of(ch) != 401:
                    time.sleep(0.05)
                    continue
                nonce = lab.RawUe.challenge(ch).get("nonce", "")
                self.sqns.append((t, lab.aka_sqn_of_nonce(nonce, self.ue.k, self.ue.op)))
                t = time.monotonic()
                self.results.append((t, status_of(self.ue.register(self.ue.answer(ch), timeout=8))))
        except Exception as e:   # reported by the test
            self.error = e


def test_hss_restart_during_registrations(tmp):
    with lab.Lab(tmp) as core:
        workers = [Registrar(core, u) for u in ("alice", "bob")]
        for w in workers:
            w.start()
        try:
            wait_for(lambda: all(any(s == 200 for _, s in w.results) for w in workers), 10,
                     what="registrations before the restart")
            t_kill = time.monotonic()
            core.hss.kill()                                             # SIGKILL: no goodbye on Diameter
            for nf in (core.icscf, core.scscf):
                st, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(readyz(nf)), 10,
                                    what="%s /readyz 503 after the HSS died" % nf.name)
                check("hss.ims.lab" in body, "%s /readyz must name the HSS peer: %r" % (nf.name, body))
            time.sleep(1.0)                                             # registrations fail meanwhile
            core.hss.spawn()
            wait_for(lambda: core.hss.probe("/readyz") == 200, 15, what="hss ready again")
            for nf in (core.icscf, core.scscf):
                wait_for(lambda: readyz(nf)[0] == 200, 15, what="%s /readyz 200 after the HSS came back" % nf.name)
            t_ready = time.monotonic()
            wait_for(lambda: all(any(t > t_ready and s == 200 for t, s in w.results) for w in workers), 15,
                     what="registrations after the restart")
        finally:
            for w in workers:
                w.stop.set()
            for w in workers:
                w.join(20)
                w.ue.close()
        core.alive()
        for w in workers:
            check(w.error is None, "%s: %r" % (w.ue.impi, w.error))
            hung = [t for t, s in w.results if s is None]
            check(not hung, "%s: %d REGISTER(s) got no final response within 8 s" % (w.ue.impi, len(hung)))
            failures = [(t, s) for t, s in w.results if s not in (200, 401)]
            outside = [(round(t - t_kill, 2), s) for t, s in failures if not (t_kill - 1 <= t <= t_ready + 2)]
            check(not outside, "%s: failures outside the outage (s after the kill, status): %r" %
                  (w.ue.impi, outside))
            # 480 (Retry-After) from the I-CSCF (UAR failed) or the S-CSCF (MAR/SAR failed): one
            # answer for an unreachable HSS (common/ims_register.c; it was 504 at the I-CSCF and 503
            # at the S-CSCF). 600 too: when the HSS is back for the I-CSCF but not yet for the
            # S-CSCF, the S-CSCF answers 480 and the I-CSCF, with no other S-CSCF to try, answers 600
            # (TS 24.229 §5.3.1.3: no S-CSCF). 5xx when the I-CSCF gives up on a slow S-CSCF.
            check(all(s == 480 or 500 <= s <= 600 for _, s in failures),
                  "%s: failures during the outage must be 480/5xx/600: %r" %
                  (w.ue.impi, sorted(set(s for _, s in failures))))
            sqns = [q for _, q in w.sqns]
            check(all(b > a for a, b in zip(sqns, sqns[1:])), "%s: SQN re-used or going back: %r" % (w.ue.impi, sqns))
            check(any(t < t_kill for t, _ in w.sqns) and any(t > t_ready for t, _ in w.sqns),
                  "%s: SQNs from before and after the restart expected" % w.ue.impi)
            print("  %s: %d REGISTERs, %d failed during the outage (%s), %d challenges, SQN %d..%d" % (
                w.ue.impi, len(w.results), len(failures), ",".join(sorted(set(str(s) for _, s in failures))),
                len(sqns), sqns[0], sqns[-1]))
        # The outage is visible in the I-CSCF's Cx metrics (the first Cx hop of every REGISTER):
        # UARs that found no HSS (timeout / DIAMETER_UNABLE_TO_DELIVER).
        failed = {dict(ls).get("result"): v for (n, ls), v in core.icscf.metrics().items()
                  if n == "icscf_cx_requests_total" and (dict(ls).get("result") == "timeout" or
                                                         "UNABLE" in dict(ls).get("result", ""))}
        check(sum(failed.values()) >= 1, "icscf_cx_requests_total must count the UARs of the outage")
        print("  icscf UARs without an HSS: %r" % failed)
        for user in ("alice", "bob"):
            check(core.reg_states(user)["sip:%s@ims.lab" % user] == "registered", core.reg_states(user))


# --- S-CSCF restarted -------------------------------------------------------------------------------------

def send_message(frm, to_user, text="hello"):
    """A MESSAGE from the registered RawUe frm to sip:<to_user>@ims.lab through the P-CSCF (it
    routes it along frm's Service-Route). Returns nothing; read the answer with final_on(frm)."""
    frm.cseq += 1
    body = text
    req = ("MESSAGE sip:%s@ims.lab SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK-msg-%d-%d\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:%s@ims.lab>;tag=msg%d\r\n"
           "To: <sip:%s@ims.lab>\r\n"
           "Call-ID: msg-%d-%d@127.0.0.1\r\n"
           "CSeq: %d MESSAGE\r\n"
           "Content-Type: text/plain\r\n"
           "Content-Length: %d\r\n\r\n%s" % (to_user, frm.host, frm.port, frm.port, frm.cseq, frm.user, frm.cseq,
                                            to_user, frm.port, frm.cseq, frm.cseq, len(body), body))
    frm.udp.sock.sendto(req.encode(), ("127.0.0.1", frm.target))


def receive(ue, timeout=5.0, final=False):
    """The next SIP message on ue's socket (a final response when final=True), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ue.udp.sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            raw, addr = ue.udp.sock.recvfrom(65535)
        except socket.timeout:
            return None
        m = lab.SipMessage(raw.decode("utf-8", "replace"))
        if final and not (m.status and m.status >= 200):
            continue
        m.addr = addr
        return m
    return None


def answer_200(ue, req):
    """200 OK to a request received on ue's socket (RFC 3261 §8.2.6: Via, From, To + tag, Call-ID, CSeq)."""
    lines = ["SIP/2.0 200 OK"]
    lines += ["Via: %s" % v for v in req.all("Via")]
    lines += ["From: %s" % req.get("From"), "To: %s;tag=ue%d" % (req.get("To"), ue.port),
              "Call-ID: %s" % req.get("Call-ID"), "CSeq: %s" % req.get("CSeq"), "Content-Length: 0", "", ""]
    ue.udp.sock.sendto("\r\n".join(lines).encode(), req.addr)


def test_scscf_restart(tmp):
    with lab.Lab(tmp) as core, lab.RawUe(core, "alice") as alice, lab.RawUe(core, "bob", password="bobpass") as bob:
        register_ok(alice)
        register_ok(bob)
        wait_for(lambda: metric(core.scscf, "scscf_reg_subscriptions") >= 2, 5,
                 what="the P-CSCF's reg event subscriptions")
        # A MESSAGE alice -> bob works before the restart.
        send_message(alice, "bob", "before")
        got = receive(bob)
        check(got is not None and got.method == "MESSAGE", "bob must receive alice's MESSAGE: %r" % got)
        answer_200(bob, got)
        r = receive(alice, final=True)
        check(status_of(r) == 200, "MESSAGE before the restart: %s" % first_line(r))

        core.scscf.kill()                                               # crash: nothing is told to anyone
        core.scscf.spawn()
        wait_for(lambda: readyz(core.scscf)[0] == 200, 15, what="scscf ready after its restart")
        check(metric(core.scscf, "scscf_registrations") == 0, "registrations are in memory: none after a restart")
        check(metric(core.scscf, "scscf_reg_subscriptions") == 0, "subscriptions are in memory too")
        # The HSS still has them registered at this S-CSCF.
        check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered", core.reg_states("alice"))

        # alice's originating request before she re-registers: 403 from the S-CSCF, promptly.
        send_message(alice, "bob", "orphan")
        r = receive(alice, final=True)
        check(status_of(r) == 403, "originating request of a user the S-CSCF no longer knows: 403 expected, got %s"
              % first_line(r))

        # bob re-registers: back to the same S-CSCF (the HSS names it: UAR 2002), initial there.
        register_ok(bob)
        check("SUBSEQUENT" in core.icscf.log() or "2002" in core.icscf.log(),
              "the I-CSCF's UAR answer names the assigned S-CSCF (2002):\n" + lab.tail(core.icscf.log(), 10))
        check(metric(core.scscf, "scscf_registrations") >= 1, "bob registered again at the S-CSCF")
        # bob -> alice (registered at the HSS, unknown here): unregistered handling -> 480.
        send_message(bob, "alice", "to-the-void")
        r = receive(bob, final=True)
        check(status_of(r) == 480, "request to a user the S-CSCF no longer knows: 480 expected, got %s" %
              first_line(r))
        # alice re-registers and is reachable again.
        register_ok(alice)
        send_message(bob, "alice", "after")
        got = receive(alice)
        check(got is not None and got.method == "MESSAGE" and "after" in got.body,
              "alice must receive bob's MESSAGE after re-registering: %r" % got)
        answer_200(alice, got)
        r = receive(bob, final=True)
        check(status_of(r) == 200, "MESSAGE after the restart: %s" % first_line(r))
        for user in ("alice", "bob"):
            check(core.reg_states(user)["sip:%s@ims.lab" % user] == "registered", core.reg_states(user))


# --- HSS unreachable at start ----------------------------------------------------------------------------

def test_hss_unreachable_at_start(tmp):
    core = lab.Lab(tmp, start=False)
    with core:
        for name in ("scscf", "icscf", "pcscf"):
            core.nfs[name].spawn()
        for name in ("scscf", "icscf", "pcscf"):
            wait_for(lambda: core.nfs[name].probe("/healthz") == 200, 15, what="%s /healthz" % name)
        time.sleep(1.5)   # several connection attempts (tc_timer 1 s)
        for nf in (core.scscf, core.icscf):
            st, body = readyz(nf)
            check(st == 503 and "hss.ims.lab" in body, "%s /readyz without the HSS: 503 naming the peer expected, "
                  "got %s %r" % (nf.name, st, body))
        check(core.pcscf.probe("/readyz") == 200, "the P-CSCF has no Diameter peer: ready")
        # A REGISTER meanwhile: a prompt error, not a hang.
        with lab.RawUe(core, "alice") as ue:
            t0 = time.monotonic()
            r = ue.register(timeout=10)
            took = time.monotonic() - t0
            # TS 24.229 §5.3.1.3: the query cannot be completed -> 480, with Retry-After
            # (common/ims_register.c; the I-CSCF answered 504 before, the S-CSCF 503).
            check(r is not None and r.status == 480, "REGISTER without the HSS: 480 expected, got %s" %
                  first_line(r))
            check(r is not None and r.get("Retry-After", "").strip() == "30",
                  "the 480 must carry Retry-After: 30:\n%s" % (r.text if r is not None else None))
            check(took < 5, "the error must come promptly: %.1f s" % took)
        core.alive()
        # The HSS starts: the CSCFs connect on their own.
        core.hss.spawn()
        t0 = time.monotonic()
        wait_for(lambda: core.hss.probe("/readyz") == 200, 15, what="hss ready")
        for nf in (core.scscf, core.icscf):
            wait_for(lambda: readyz(nf)[0] == 200, 15, what="%s ready once the HSS runs" % nf.name)
        print("  CSCFs ready %.1f s after the HSS started" % (time.monotonic() - t0))
        with lab.RawUe(core, "alice") as ue:
            register_ok(ue)
        check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered", core.reg_states("alice"))


if __name__ == "__main__":
    lab.main()
