"""Media anchoring at the P-CSCF through the real rtpengine (issue 13; pcscf/pcscf_media*.c).

Each test starts the Debian rtpengine daemon (rtpengine-daemon 10.5, userspace forwarding) on a
free ng port and its own RTP port range, and the whole core with pcscf.media.anchor: rtpengine.
rtpengine's own view is read over its ng protocol (`list`, `query`) by tests/system/lab_rtpengine.py.

- test_media_baresip_call: two baresip phones (dave calls erin through P-CSCF -> S-CSCF ->
  P-CSCF). The SDP each phone receives names rtpengine (c= 127.0.0.1, m= port in rtpengine's
  range, never the other phone's port); RTP is counted at both phones (baresip's rtp_stats,
  >= 100 packets both ways), on the wire between each phone and an rtpengine port, and in
  rtpengine's own statistics (query: packets on both legs of the call); a hold re-INVITE carries
  a=sendonly to the held phone and resume a=sendrecv; after BYE rtpengine holds no call (list)
  and the P-CSCF no media session.
- test_media_cancel_and_busy: a call cancelled while ringing, and one rejected with 486 Busy:
  rtpengine holds a call while it rings (so the test can fail), none afterwards.
- test_media_forged_teardown: a call of raw UEs alice -> bob with SDP; a stranger (127.0.0.2)
  sends a BYE with alice's Call-ID and her Record-Route token, another registered UE (dave) a
  BYE with our Record-Route without token and an INVITE with alice's Call-ID: 403 each, and
  rtpengine still holds both legs of the call; alice's real BYE deletes them.
- test_media_rtpengine_down: rtpengine stopped -> INVITE answered 503 with Retry-After
  (on_failure reject), counted, no media session left, /readyz 503; rtpengine back -> /readyz
  200 and a call is anchored again.
- test_media_unanchored_pass: on_failure pass with rtpengine stopped: the INVITE reaches the
  callee with the caller's own SDP, counted as unanchored.
"""

import os
import re
import subprocess
import time

import lab
import lab_rtpengine
import test_baresip
import test_baresip_call
from lab import check, wait_for
from test_baresip import ANSI
from test_trust import Endpoint, request

STRANGER = "127.0.0.2"


def RtpEngine(tmp):
    """The rtpengine daemon (lab_rtpengine: --config-file=none, delete-delay 0) in tmp, its RTP
    ports in 40000-59999 (the baresip phones use 30000-30999)."""
    return lab_rtpengine.Rtpengine(os.path.join(tmp, "rtpengine"), ports=200, port_range=(40000, 60000))


def media_overrides(rtpe, on_failure="reject"):
    return {"pcscf": {"sip": {"hostname": "127.0.0.1"},
                      "pcscf": {"media": {"anchor": "rtpengine", "rtpengine": [rtpe.ng_uri],
                                          "timeout_ms": 300, "retries": 1, "dead_s": 2, "ping_s": 1,
                                          "on_failure": on_failure}}}}


def packets_total(q):
    """RTP packets rtpengine counted in a query answer (totals of the call)."""
    tot = q.get("totals", {}) if q else {}
    rtp = tot.get("RTP", {}) if isinstance(tot, dict) else {}
    return rtp.get("packets", 0) if isinstance(rtp, dict) else 0


def media_active(core):
    return core.pcscf.metric("pcscf_media_sessions_active") or 0


# ---------- baresip ----------

class Phone(test_baresip.Baresip):
    """A baresip phone with RTP statistics, G.711 only and RTP ports outside rtpengine's range."""

    def __init__(self, core, user, password, answermode="manual"):
        super().__init__(core, user, password, dirname="baresip-" + user, wav_seconds=10,
                         extra_config=["rtp_stats yes", "rtp_ports 30000-30999"],
                         account_params="answermode=%s;audio_codecs=PCMU" % answermode)

    def text(self, cmd, params=""):
        return ANSI.sub("", self.command(cmd, params).get("data", ""))

    def clean_log(self):
        return ANSI.sub("", self.log())

    def established(self):
        return re.search(r"call established", self.clean_log(), re.I) is not None

    def ringing(self):
        return re.search(r"Incoming call from", self.clean_log(), re.I) is not None

    def sdp_ports(self):
        """Every m=audio port in the phone's SIP trace (sent and received SDP)."""
        return [int(p) for p in re.findall(r"m=audio (\d+)", self.clean_log())]


def registered(phones):
    for p in phones:
        try:
            wait_for(p.registered, 15, interval=0.3, what="%s registered" % p.aor)
        except lab.TestFailure as e:
            raise lab.TestFailure("%s\nbaresip log tail:\n%s" % (e, lab.tail(p.log(), 60)))


def test_media_baresip_call(tmp):
    rtpe = RtpEngine(tmp)
    try:
        with lab.Lab(tmp, subscribers=test_baresip_call.subscribers(), overrides=media_overrides(rtpe)) as core:
            dave = Phone(core, "dave", "davepass")
            erin = Phone(core, "erin", "erinpass", answermode="auto")
            phones = (dave, erin)
            wire = test_baresip_call.WireRtp()
            try:
                registered(phones)
                dave.command("dial", erin.aor)
                for p in phones:
                    try:
                        wait_for(p.established, 10, interval=0.2, what="%s: call established" % p.aor)
                    except lab.TestFailure as e:
                        raise lab.TestFailure("%s\n%s log tail:\n%s\nrtpengine:\n%s" % (
                            e, p.aor, lab.tail(p.log(), 80), lab.tail(rtpe.log(), 30)))
                # the SDP each phone saw: its own (30000-30999) and rtpengine's, never the other phone's
                for p in phones:
                    ports = p.sdp_ports()
                    theirs = [x for x in ports if not 30000 <= x <= 30999]
                    check(theirs and all(rtpe.in_range(x) for x in theirs),
                          "%s: SDP ports %r: the received SDP must name rtpengine's range %d-%d" %
                          (p.aor, ports, rtpe.port_min, rtpe.port_max))
                    check(not re.search(r"a=candidate", p.clean_log()), "%s: ICE candidates reached the phone" % p.aor)
                calls = rtpe.calls()
                check(len(calls) == 2 and all(c.endswith((";orig", ";term")) for c in calls),
                      "rtpengine calls: %r (expected the orig and the term leg)" % calls)
                check(media_active(core) == 2, "pcscf_media_sessions_active %s" % media_active(core))
                time.sleep(3)
                for c in calls:
                    n = packets_total(rtpe.query(c))
                    print("rtpengine %s: %d RTP packets" % (c, n))
                    check(n >= 200, "rtpengine counted %d RTP packets on %s (expected >= 200: both ways)" % (n, c))

                # hold / resume: the direction attribute reaches the other phone through rtpengine
                dave.command("hold")
                wait_for(lambda: "a=sendonly" in erin.clean_log(), 10, interval=0.2,
                         what="erin receives a=sendonly (hold)\n" + lab.tail(erin.log(), 60))
                before = erin.clean_log().count("a=sendrecv")
                dave.command("resume")
                wait_for(lambda: erin.clean_log().count("a=sendrecv") > before, 10, interval=0.2,
                         what="erin receives a=sendrecv again (resume)")
                check(len(rtpe.calls()) == 2, "hold/resume changed rtpengine's calls: %r" % rtpe.calls())
                time.sleep(1)

                live = {p.aor: p.text("callstat") for p in phones}
                dave.command("hangup")
                for p in phones:
                    wait_for(lambda: test_baresip_call.packets(p.clean_log()), 10, interval=0.2,
                             what="%s: call ended (RTP summary)" % p.aor)
                for p in phones:
                    tx, rx = test_baresip_call.packets(p.clean_log()) or test_baresip_call.packets(live[p.aor])
                    print("RTP %s: sent %d, received %d packets" % (p.aor, tx, rx))
                    check(tx >= 100 and rx >= 100, "%s: RTP tx=%d rx=%d (expected >= 100 both ways)" % (p.aor, tx, rx))
                wire.stop()
                if wire.available:
                    # every busy flow has rtpengine on one end: no phone-to-phone media
                    big = {f: n for f, n in wire.flows.items() if n >= 100}
                    print("RTP on the wire (lo): %r" % big)
                    check(big and all(rtpe.in_range(s) or rtpe.in_range(d) for s, d in big),
                          "RTP flows not through rtpengine: %r" % big)
                    phone_ports = {s for s, d in big if 30000 <= s <= 30999} | {d for s, d in big if 30000 <= d <= 30999}
                    check(len(phone_ports) == 2, "RTP of both phones through rtpengine: %r" % big)
                wait_for(lambda: rtpe.calls() == [], 5, what="rtpengine holds no call after BYE: %r" % rtpe.calls())
                wait_for(lambda: media_active(core) == 0, 5, what="no media session at the P-CSCF")
                check((core.pcscf.metric("pcscf_media_sessions_deleted_total", reason="bye") or 0) == 2,
                      "deleted_total{bye}")
                check((core.pcscf.metric("pcscf_media_sessions_created_total") or 0) == 2, "created_total")
            finally:
                wire.stop()
                for p in phones:
                    p.stop()
    finally:
        rtpe.stop()


def test_media_cancel_and_busy(tmp):
    rtpe = RtpEngine(tmp)
    try:
        with lab.Lab(tmp, subscribers=test_baresip_call.subscribers(), overrides=media_overrides(rtpe)) as core:
            dave = Phone(core, "dave", "davepass")
            erin = Phone(core, "erin", "erinpass")
            phones = (dave, erin)
            try:
                registered(phones)
                # 1: CANCEL while erin rings
                dave.command("dial", erin.aor)
                wait_for(erin.ringing, 10, interval=0.2, what="erin rings\n" + lab.tail(erin.log(), 40))
                wait_for(lambda: len(rtpe.calls()) == 2, 5, what="rtpengine holds the ringing call: %r" % rtpe.calls())
                dave.command("hangup")
                wait_for(lambda: "487" in dave.clean_log(), 10, interval=0.2, what="487 at dave")
                wait_for(lambda: rtpe.calls() == [], 5, what="no rtpengine call after CANCEL: %r" % rtpe.calls())
                wait_for(lambda: media_active(core) == 0, 5, what="no media session after CANCEL")
                # 2: erin rejects (baresip answers a hung-up incoming call with 486)
                rings = erin.clean_log().count("Incoming call from")
                dave.command("dial", erin.aor)
                wait_for(lambda: erin.clean_log().count("Incoming call from") > rings, 10, interval=0.2,
                         what="erin rings again")
                wait_for(lambda: len(rtpe.calls()) == 2, 5, what="rtpengine holds the second call: %r" % rtpe.calls())
                erin.command("hangup")
                wait_for(lambda: re.search(r"\b486\b", dave.clean_log()), 10, interval=0.2,
                         what="486 at dave\n" + lab.tail(dave.log(), 40))
                wait_for(lambda: rtpe.calls() == [], 5, what="no rtpengine call after 486: %r" % rtpe.calls())
                wait_for(lambda: media_active(core) == 0, 5, what="no media session after 486")
                check((core.pcscf.metric("pcscf_media_sessions_deleted_total", reason="call_failed") or 0) == 4,
                      "deleted_total{call_failed}: %s" % core.pcscf.metric("pcscf_media_sessions_deleted_total",
                                                                          reason="call_failed"))
            finally:
                for p in phones:
                    p.stop()
    finally:
        rtpe.stop()


# ---------- raw UEs ----------

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def register_raw(core, user, password):
    """Registers user from a UDP port of its own (digest or AKA, lab.RawUe); returns the port."""
    ue = lab.RawUe(core, user, password=password)
    r = ue.register()
    if r is not None and r.status == 401:
        r = ue.register(ue.answer(r))
    port = ue.port
    ue.close()
    check(r is not None and r.status == 200, "%s: REGISTER: %s" % (user, r.first if r else "no answer"))
    return port


def sdp_port(msg):
    m = re.search(r"m=audio (\d+)", msg.body)
    return int(m.group(1)) if m else None


def respond(ep, req, pcscf_port, status="200 OK", to_tag=None, media_port=None, contact=True, extra=()):
    """The UE at ep answers req (through the P-CSCF at pcscf_port); with media_port an SDP
    answer. Returns the To it sent."""
    to = req.get("To") + (";tag=%s" % to_tag if to_tag and ";tag=" not in req.get("To") else "")
    body = SDP % media_port if media_port else ""
    lines = ["SIP/2.0 %s" % status] + ["Via: %s" % v for v in req.all("Via")]
    lines += ["Record-Route: %s" % v for v in req.all("Record-Route")]
    lines += ["From: %s" % req.get("From"), "To: %s" % to, "Call-ID: %s" % req.get("Call-ID"),
              "CSeq: %s" % req.get("CSeq")]
    if contact:
        lines += ["Contact: <sip:bob@127.0.0.1:%d>" % ep.port]
    lines += list(extra)
    if body:
        lines += ["Content-Type: application/sdp"]
    lines += ["Content-Length: %d" % len(body), "", body]
    ep.send(pcscf_port, "\r\n".join(lines))
    return to


def answer_200(ep, req, to_tag, pcscf_port, media_port):
    return respond(ep, req, pcscf_port, to_tag=to_tag, media_port=media_port)


def invite(core, ep, call_id, tag, media_port, user="alice", callee="bob"):
    body = SDP % media_port
    return request("INVITE", "sip:%s@%s" % (callee, lab.DOMAIN), ep, [
        ("Route", "<sip:orig@127.0.0.1:%d;lr>" % core.scscf_sip),
        ("From", "<sip:%s@%s>;tag=%s" % (user, lab.DOMAIN, tag)), ("To", "<sip:%s@%s>" % (callee, lab.DOMAIN)),
        ("Call-ID", call_id), ("CSeq", "1 INVITE"), ("Contact", "<sip:%s@127.0.0.1:%d>" % (user, ep.port)),
        ("Content-Type", "application/sdp")], body=body)


def wait_msg(ep, pred, what, timeout=10):
    found = []
    wait_for(lambda: found.extend(m for m in ep.collect(0.2) if pred(m)) or found, timeout=timeout, what=what)
    return found[0]


def test_media_forged_teardown(tmp):
    """Only a request that passed the P-CSCF's dialog checks may delete or re-offer a call's media."""
    rtpe = RtpEngine(tmp)
    try:
        with lab.Lab(tmp, overrides=media_overrides(rtpe)) as core:
            alice_port = register_raw(core, "alice", "alicepass")
            bob_port = register_raw(core, "bob", "bobpass")
            dave_port = register_raw(core, "dave", "davepass")
            with Endpoint(port=alice_port) as alice, Endpoint(port=bob_port) as bob, \
                    Endpoint(port=dave_port) as dave, Endpoint(STRANGER) as stranger:
                call_id = "media-%d@127.0.0.1" % alice.port
                alice.send(core.pcscf_sip, invite(core, alice, call_id, "a1", 30010))
                inv = wait_msg(bob, lambda m: m.method == "INVITE", "the INVITE at bob")
                check(rtpe.in_range(sdp_port(inv) or 0), "bob's SDP names rtpengine: %r" % inv.body)
                answer_200(bob, inv, "b1", core.pcscf_sip, 30020)
                ok = wait_msg(alice, lambda m: m.status == 200, "the 200 at alice")
                check(rtpe.in_range(sdp_port(ok) or 0), "alice's SDP names rtpengine: %r" % ok.body)
                raw_body = ok.text.partition("\r\n\r\n")[2].encode()
                check(int(ok.get("Content-Length")) == len(raw_body),
                      "Content-Length %s of a %d-byte body" % (ok.get("Content-Length"), len(raw_body)))
                legs = sorted(rtpe.calls())
                check(legs == sorted([call_id + ";orig", call_id + ";term"]), "rtpengine calls %r" % legs)
                rr = re.findall(r"<([^>]+)>", ",".join(inv.all("Record-Route")))
                token_route = "<%s>" % rr[-1]     # alice's side, with her token
                check(";ue=" in token_route, "alice's Record-Route token: %r" % rr)
                to = ok.get("To")

                def bye(ep, route, n):
                    return request("BYE", "sip:bob@127.0.0.1:%d" % bob.port, ep, [
                        ("Route", route), ("From", "<sip:alice@%s>;tag=a1" % lab.DOMAIN), ("To", to),
                        ("Call-ID", call_id), ("CSeq", "%d BYE" % n)])

                ours = "<sip:127.0.0.1:%d;lr>" % core.pcscf_sip
                problems = []
                for what, ep, text in [
                        ("stranger's BYE with alice's token", stranger, bye(stranger, token_route, 2)),
                        ("dave's BYE with our URI, no token", dave, bye(dave, ours, 3)),
                        ("dave's INVITE with alice's Call-ID", dave,
                         invite(core, dave, call_id, "a1", 30030, user="dave"))]:
                    st = ep.exchange(core.pcscf_sip, text, timeout=5)
                    if st != 403:
                        problems.append("%s: expected 403, got %s" % (what, st))
                    if sorted(rtpe.calls()) != legs:
                        problems.append("after %s rtpengine holds %r" % (what, rtpe.calls()))
                q = rtpe.query(call_id + ";orig")
                if not q or q.get("result") != "ok":
                    problems.append("query of alice's leg: %r" % q)
                if any(m.method == "BYE" for m in bob.collect(0.5)):
                    problems.append("a forged BYE reached bob")
                check((core.pcscf.metric("pcscf_media_refused_total") or 0) == 1, "the foreign INVITE counted")
                check(not problems, "; ".join(problems))

                # alice's real BYE (along the route set) deletes both legs
                alice_route = ", ".join("<%s>" % u for u in reversed(rr))
                alice.send(core.pcscf_sip, bye(alice, alice_route, 4))
                bye_at_bob = wait_msg(bob, lambda m: m.method == "BYE", "alice's BYE at bob")
                respond(bob, bye_at_bob, core.pcscf_sip, contact=False)
                wait_for(lambda: rtpe.calls() == [], 5, what="no rtpengine call after the real BYE")
                check(media_active(core) == 0, "pcscf_media_sessions_active")
    finally:
        rtpe.stop()


def test_media_late_offer(tmp):
    """INVITE without SDP: the offer comes in the 200 (to the caller: rtpengine's address), the
    answer in the ACK (to the callee: rtpengine's address)."""
    rtpe = RtpEngine(tmp)
    try:
        with lab.Lab(tmp, overrides=media_overrides(rtpe)) as core:
            alice_port = register_raw(core, "alice", "alicepass")
            bob_port = register_raw(core, "bob", "bobpass")
            with Endpoint(port=alice_port) as alice, Endpoint(port=bob_port) as bob:
                call_id = "late-%d@127.0.0.1" % alice.port
                text = invite(core, alice, call_id, "l1", 0)
                head = text.partition("\r\n\r\n")[0].replace("Content-Type: application/sdp\r\n", "")
                head = re.sub(r"Content-Length: \d+", "Content-Length: 0", head)
                alice.send(core.pcscf_sip, head + "\r\n\r\n")
                inv = wait_msg(bob, lambda m: m.method == "INVITE", "the INVITE at bob")
                check(not inv.body.strip(), "an SDP appeared in a late-offer INVITE: %r" % inv.body)
                answer_200(bob, inv, "b1", core.pcscf_sip, 30070)
                ok = wait_msg(alice, lambda m: m.status == 200, "the 200 at alice")
                check(rtpe.in_range(sdp_port(ok) or 0), "the offer in the 200 names rtpengine: %r" % ok.body)
                rr = re.findall(r"<([^>]+)>", ",".join(inv.all("Record-Route")))
                body = SDP % 30080
                alice.send(core.pcscf_sip, request("ACK", "sip:bob@127.0.0.1:%d" % bob.port, alice, [
                    ("Route", ", ".join("<%s>" % u for u in reversed(rr))),
                    ("From", "<sip:alice@%s>;tag=l1" % lab.DOMAIN), ("To", ok.get("To")), ("Call-ID", call_id),
                    ("CSeq", "1 ACK"), ("Content-Type", "application/sdp")], body=body))
                ack = wait_msg(bob, lambda m: m.method == "ACK", "the ACK at bob")
                check(rtpe.in_range(sdp_port(ack) or 0), "the answer in the ACK names rtpengine: %r" % ack.body)
                check((core.pcscf.metric("pcscf_media_sessions_failed_total") or 0) == 0, "no failed offer/answer")
    finally:
        rtpe.stop()


def readyz(core):
    return core.pcscf.probe("/readyz")


def test_media_rtpengine_down(tmp):
    rtpe = RtpEngine(tmp)
    try:
        with lab.Lab(tmp, overrides=media_overrides(rtpe)) as core:
            alice_port = register_raw(core, "alice", "alicepass")
            bob_port = register_raw(core, "bob", "bobpass")
            with Endpoint(port=alice_port) as alice, Endpoint(port=bob_port) as bob:
                check(readyz(core) == 200, "readyz with rtpengine up: %s" % readyz(core))
                rtpe.stop()
                alice.got = []
                st = alice.exchange(core.pcscf_sip, invite(core, alice, "down-1@127.0.0.1", "d1", 30040), timeout=8)
                check(st == 503, "INVITE with rtpengine down: %s" % st)
                resp = [m for m in alice.got if m.status == 503][0]
                check(resp.get("Retry-After"), "503 without Retry-After: %s" % resp.text)
                check(not any(m.method == "INVITE" for m in bob.collect(0.5)), "the INVITE reached bob")
                check(media_active(core) == 0, "a media session left after the 503")
                check((core.pcscf.metric("pcscf_media_sessions_failed_total") or 0) >= 1, "failed_total")
                check((core.pcscf.metric("pcscf_media_refused_total") or 0) >= 1, "refused_total")
                wait_for(lambda: readyz(core) == 503, 10, what="readyz 503 without rtpengine")

                rtpe.start()   # same ng port: it comes back
                wait_for(lambda: readyz(core) == 200, 10, what="readyz 200 with rtpengine back")
                call_id = "down-2@127.0.0.1"
                alice.send(core.pcscf_sip, invite(core, alice, call_id, "d2", 30050))
                inv = wait_msg(bob, lambda m: m.method == "INVITE", "the INVITE at bob after recovery")
                check(rtpe.in_range(sdp_port(inv) or 0), "anchored again: %r" % inv.body)
                check(sorted(rtpe.calls()) == sorted([call_id + ";orig", call_id + ";term"]), rtpe.calls())
                respond(bob, inv, core.pcscf_sip, "486 Busy Here", to_tag="b2")
                wait_for(lambda: rtpe.calls() == [], 5, what="no rtpengine call after the 486: %r" % rtpe.calls())
    finally:
        rtpe.stop()


def test_media_unanchored_pass(tmp):
    rtpe = RtpEngine(tmp)
    try:
        with lab.Lab(tmp, overrides=media_overrides(rtpe, on_failure="pass")) as core:
            alice_port = register_raw(core, "alice", "alicepass")
            bob_port = register_raw(core, "bob", "bobpass")
            rtpe.stop()
            with Endpoint(port=alice_port) as alice, Endpoint(port=bob_port) as bob:
                alice.send(core.pcscf_sip, invite(core, alice, "pass-1@127.0.0.1", "p1", 30060))
                inv = wait_msg(bob, lambda m: m.method == "INVITE", "the INVITE at bob (unanchored)")
                check(sdp_port(inv) == 30060, "the caller's own SDP expected: %r" % inv.body)
                respond(bob, inv, core.pcscf_sip, "486 Busy Here", to_tag="p1")
                wait_msg(alice, lambda m: m.status == 486, "the 486 at alice")
                check((core.pcscf.metric("pcscf_media_unanchored_total") or 0) >= 2, "unanchored_total (both legs)")
                check(readyz(core) == 200, "readyz with on_failure pass: %s" % readyz(core))
    finally:
        rtpe.stop()


def test_media_config_errors(tmp):
    """Bad pcscf.media settings stop the P-CSCF with exit code 2 and a message naming the key."""
    binary = os.path.join(os.environ.get("IMS_BUILD_DIR", "build"), "pcscf", "pcscf")
    cases = [
        ("    anchor: rtpengine\n", "pcscf.media.rtpengine lists no address"),
        ("    anchor: rtpengine\n    rtpengine: [localhost]\n", "pcscf.media.rtpengine: 'localhost': not host:port"),
        ("    anchor: relay\n", "pcscf.media.anchor"),
        ("    on_failure: maybe\n", "pcscf.media.on_failure"),
        ("    access_interface: pub\n", "access_interface and core_interface go together"),
        ("    timeout_ms: 0\n", "pcscf.media.timeout_ms"),
    ]
    for i, (media, want) in enumerate(cases):
        path = os.path.join(tmp, "bad-%d.yaml" % i)
        with open(path, "w") as f:
            f.write("pcscf:\n  icscf: sip:127.0.0.1:5062\n  media:\n" + media)
        r = subprocess.run([binary, "-c", path], capture_output=True, text=True, timeout=10)
        check(r.returncode == 2 and want in r.stderr, "%r: rc %s, stderr %r (expected 2 and %r)" %
              (media, r.returncode, r.stderr, want))


if __name__ == "__main__":
    lab.main()
