"""Media anchoring at the P-CSCF (pcscf/pcscf_media*.c): the dialog cases beyond a plain call,
with the real rtpengine daemon (lab_rtpengine) and raw UEs (test_media helpers), so that each
test controls every message and its timing.

- test_media_expiry: a call whose BYE never comes. With media.max_session_s 3 the P-CSCF
  deletes both legs at rtpengine ("expired"); a call that keeps sending in-dialog requests
  (re-INVITE) is not deleted meanwhile. With max_session_s 0 and media.check_s 1, rtpengine's
  own timeout (--timeout 2: no RTP) removes the call and the P-CSCF's query finds it gone
  ("rtpengine_timeout").
- test_media_fork: bob has two registered contacts; the S-CSCF forks alice's INVITE to both;
  each answers 183 with SDP (rtpengine holds the orig leg and one term leg per branch), the
  second one answers 200, the first 487 to the CANCEL: rtpengine holds the orig leg and the
  winner's term leg only (the loser's 487 must not delete the winner's media), and nothing after
  the BYE.
- test_media_prack_update: 183 with SDP (reliable, RFC 3262), a PRACK carrying a new offer and
  its 200 the answer, an UPDATE offer (RFC 3311) and the answer in its 200: every SDP each side
  receives names rtpengine.
- test_media_2xx_replaced: rtpengine stops (SIGSTOP) before bob's 200: the P-CSCF answers alice
  503 instead (on_failure reject; the S-CSCF passes it on as 500, RFC 3261 §16.7), a
  retransmission of the 200 meanwhile does not reach alice, and bob's dialog is ended (ACK, then
  BYE from the P-CSCF).
- test_media_cancel_crosses_200: alice CANCELs while bob's 200 waits for rtpengine's answer:
  the CANCEL changes nothing (the P-CSCF waits for the callee's final): alice gets the anchored
  200, ends the call, and rtpengine holds nothing afterwards.
"""

import contextlib
import os
import re
import signal
import time

import lab
import lab_rtpengine
from lab import check, wait_for
from test_media import SDP, invite, media_active, media_overrides, register_raw, respond, sdp_port, wait_msg
from test_trust import Endpoint, request


def rtpengine(tmp, extra=()):
    return lab_rtpengine.Rtpengine(os.path.join(tmp, "rtpengine"), ports=200, port_range=(40000, 60000),
                                   extra=extra)


def overrides(rtpe, **media):
    o = media_overrides(rtpe)
    o["pcscf"]["pcscf"]["media"].update(media)
    return o


@contextlib.contextmanager
def alice_and_bob(tmp, rtpe_extra=(), **media):
    """rtpengine, the core anchoring in it (media keys as given) and the raw UEs alice and bob,
    registered: yields (core, rtpe, alice, bob)."""
    rtpe = rtpengine(tmp, extra=rtpe_extra)
    try:
        with lab.Lab(tmp, overrides=overrides(rtpe, **media)) as core:
            alice_port = register_raw(core, "alice", "alicepass")
            bob_port = register_raw(core, "bob", "bobpass")
            with Endpoint(port=alice_port) as alice, Endpoint(port=bob_port) as bob:
                yield core, rtpe, alice, bob
    finally:
        rtpe.stop()


def deleted(core, reason):
    return core.pcscf.metric("pcscf_media_sessions_deleted_total", reason=reason) or 0


def route_of(msg, reverse=True):
    """The route set a UAC builds from msg's Record-Route (reversed for the caller)."""
    rr = re.findall(r"<([^>]+)>", ",".join(msg.all("Record-Route")))
    return ", ".join("<%s>" % u for u in (reversed(rr) if reverse else rr))


def in_dialog(method, ep, target_port, route, call_id, from_tag, to, cseq, body="", user="alice", extra=()):
    headers = [("Route", route), ("From", "<sip:%s@%s>;tag=%s" % (user, lab.DOMAIN, from_tag)), ("To", to),
               ("Call-ID", call_id), ("CSeq", "%d %s" % (cseq, method))] + list(extra)
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return request(method, "sip:bob@127.0.0.1:%d" % target_port, ep, headers, body=body)


def cancel_of(invite_text):
    """The CANCEL of a raw INVITE (same Via branch, Call-ID, From, To, CSeq number, Route)."""
    head = invite_text.partition("\r\n\r\n")[0].split("\r\n")
    keep = [l for l in head[1:] if l.split(":")[0] in ("Via", "Route", "From", "To", "Call-ID", "Max-Forwards")]
    cseq = [l for l in head if l.startswith("CSeq:")][0].replace("INVITE", "CANCEL")
    return "\r\n".join(["CANCEL " + head[0].split(" ")[1] + " SIP/2.0"] + keep + [cseq, "Content-Length: 0", "", ""])


def established_call(core, alice, bob, call_id, tag):
    """alice -> bob with SDP, 200, ACK: returns (the 200 at alice, the INVITE at bob)."""
    alice.send(core.pcscf_sip, invite(core, alice, call_id, tag, 30100))
    inv = wait_msg(bob, lambda m: m.method == "INVITE" and m.get("Call-ID") == call_id, "the INVITE at bob")
    respond(bob, inv, core.pcscf_sip, to_tag="b-" + tag, media_port=30110)
    ok = wait_msg(alice, lambda m: m.status == 200 and m.get("Call-ID") == call_id, "the 200 at alice")
    alice.send(core.pcscf_sip, in_dialog("ACK", alice, bob.port, route_of(inv), call_id, tag, ok.get("To"), 1))
    wait_msg(bob, lambda m: m.method == "ACK" and m.get("Call-ID") == call_id, "the ACK at bob")
    return ok, inv


def test_media_expiry(tmp):
    with alice_and_bob(tmp, max_session_s=3, check_s=0) as (core, rtpe, alice, bob):
        # 1: a call kept alive by in-dialog requests (re-INVITE every 1.5 s) outlives 3 s
        ok, inv = established_call(core, alice, bob, "live-1@127.0.0.1", "k1")
        for n in range(2, 5):
            time.sleep(1.5)
            alice.send(core.pcscf_sip, in_dialog("INVITE", alice, bob.port, route_of(inv), "live-1@127.0.0.1",
                                                 "k1", ok.get("To"), n, body=SDP % 30100))
            re_inv = wait_msg(bob, lambda m: m.method == "INVITE" and m.get("CSeq").startswith("%d " % n),
                              "re-INVITE %d at bob" % n)
            respond(bob, re_inv, core.pcscf_sip, media_port=30110)
            wait_msg(alice, lambda m: m.status == 200 and m.get("CSeq") == "%d INVITE" % n, "200 (re-INVITE)")
            alice.send(core.pcscf_sip, in_dialog("ACK", alice, bob.port, route_of(inv), "live-1@127.0.0.1",
                                                 "k1", ok.get("To"), n))
        check(len(rtpe.calls()) == 2 and deleted(core, "expired") == 0,
              "a refreshed call is kept after 4.5 s: rtpengine %r, expired %d" % (rtpe.calls(),
                                                                               deleted(core, "expired")))
        # 2: no request any more: both legs go about 3 s after the last one
        t0 = time.monotonic()
        wait_for(lambda: rtpe.calls() == [], 8, what="rtpengine holds no call once expired: %r" % rtpe.calls())
        took = time.monotonic() - t0
        check(2.0 <= took <= 6.0, "expired %.1f s after the last request (max_session_s 3)" % took)
        check(deleted(core, "expired") == 2 and media_active(core) == 0,
              "expired %d, active %s" % (deleted(core, "expired"), media_active(core)))

    # rtpengine's own timeout (no media for 2 s) reported back through the query
    tmp2 = os.path.join(tmp, "own-timeout")
    os.makedirs(tmp2)
    with alice_and_bob(tmp2, rtpe_extra=["--timeout=2"], max_session_s=0, check_s=1) as (core, rtpe, alice, bob):
        established_call(core, alice, bob, "silent-1@127.0.0.1", "s1")
        check(media_active(core) == 2, "two legs while the call is new")
        wait_for(lambda: media_active(core) == 0, 15, what="the P-CSCF drops the legs rtpengine timed out")
        check(deleted(core, "rtpengine_timeout") == 2, "rtpengine_timeout %d" % deleted(core, "rtpengine_timeout"))
        check(rtpe.calls() == [], "rtpengine %r" % rtpe.calls())


def test_media_fork(tmp):
    rtpe = rtpengine(tmp)
    try:
        with lab.Lab(tmp, overrides=media_overrides(rtpe)) as core:
            alice_port = register_raw(core, "alice", "alicepass")
            bob1_port = register_raw(core, "bob", "bobpass")
            bob2_port = register_raw(core, "bob", "bobpass")
            with Endpoint(port=alice_port) as alice, Endpoint(port=bob1_port) as bob1, \
                    Endpoint(port=bob2_port) as bob2:
                call_id = "fork-1@127.0.0.1"
                alice.send(core.pcscf_sip, invite(core, alice, call_id, "f1", 30200))
                inv1 = wait_msg(bob1, lambda m: m.method == "INVITE", "the INVITE at bob's first contact")
                inv2 = wait_msg(bob2, lambda m: m.method == "INVITE", "the INVITE at bob's second contact")
                for inv in (inv1, inv2):
                    check(rtpe.in_range(sdp_port(inv) or 0), "the branch's SDP names rtpengine: %r" % inv.body)
                respond(bob1, inv1, core.pcscf_sip, "183 Session Progress", to_tag="t1", media_port=30210)
                respond(bob2, inv2, core.pcscf_sip, "183 Session Progress", to_tag="t2", media_port=30220)
                got = []
                wait_for(lambda: got.extend(m for m in alice.collect(0.2) if m.status == 183) or len(got) >= 2, 10,
                         what="both 183 at alice")
                check(all(rtpe.in_range(sdp_port(m) or 0) for m in got), "183s name rtpengine: %r" %
                      [m.body for m in got])
                early = sorted(rtpe.calls())
                check(early == sorted([call_id + ";orig", call_id + ";term", call_id + ";term~2"]),
                      "early: orig leg and one term leg per branch: %r" % early)
                # the second contact answers; the S-CSCF cancels the first, which answers 487
                to = respond(bob2, inv2, core.pcscf_sip, to_tag="t2", media_port=30220)
                ok = wait_msg(alice, lambda m: m.status == 200 and m.get("CSeq") == "1 INVITE", "the 200 at alice")
                check("tag=t2" in ok.get("To"), "the winner's 200: %r" % ok.get("To"))
                cancel = wait_msg(bob1, lambda m: m.method == "CANCEL", "the CANCEL at the losing contact")
                respond(bob1, cancel, core.pcscf_sip, contact=False)
                respond(bob1, inv1, core.pcscf_sip, "487 Request Terminated", to_tag="t1", contact=False)
                wait_msg(bob1, lambda m: m.method == "ACK", "the ACK of the 487")
                winner = [c for c in early if c.endswith(";term~2") or c.endswith(";term")]
                wait_for(lambda: len(rtpe.calls()) == 2, 5, what="the loser's leg deleted: %r" % rtpe.calls())
                time.sleep(0.5)
                calls = sorted(rtpe.calls())
                check(call_id + ";orig" in calls and len(calls) == 2 and calls[1] in winner,
                      "after the 487 rtpengine holds the orig leg and the winner's term leg: %r" % calls)
                q = rtpe.query(calls[1])
                tags = sorted((q or {}).get("tags", {}).keys())
                check("t2" in tags and "t1" not in tags, "the winner's term leg is bob2's dialog: tags %r" % tags)
                # rtpengine 10.5 keeps a deleted branch's tag, without ports: the caller's side
                # forwards to the winner only and the loser holds no port
                tags = (rtpe.query(call_id + ";orig") or {}).get("tags", {})
                subs = [x.get("tag") for x in tags.get("f1", {}).get("subscribers", [])]
                loser_ports = [st.get("local port") for md in tags.get("t1", {}).get("medias", [])
                               for st in md.get("streams", []) if st.get("local port")]
                check(subs == ["t2"] and not loser_ports,
                      "the orig leg after the fork: alice's media goes to %r (expected the winner t2 only), "
                      "the loser t1 still holds ports %r" % (subs, loser_ports))
                check(deleted(core, "fork_lost") >= 1, "fork_lost %d" % deleted(core, "fork_lost"))
                # alice's ACK and BYE reach the winner; then nothing is left
                alice.send(core.pcscf_sip, in_dialog("ACK", alice, bob2.port, route_of(ok, reverse=True),
                                                     call_id, "f1", to, 1))
                alice.send(core.pcscf_sip, in_dialog("BYE", alice, bob2.port, route_of(ok, reverse=True),
                                                     call_id, "f1", to, 2))
                bye = wait_msg(bob2, lambda m: m.method == "BYE", "alice's BYE at the winner")
                respond(bob2, bye, core.pcscf_sip, contact=False)
                wait_msg(alice, lambda m: m.status == 200 and m.get("CSeq") == "2 BYE", "the 200 (BYE) at alice")
                wait_for(lambda: rtpe.calls() == [], 5, what="no rtpengine call after the BYE: %r" % rtpe.calls())
                check(media_active(core) == 0, "no media session left")
    finally:
        rtpe.stop()


def test_media_prack_update(tmp):
    with alice_and_bob(tmp) as (core, rtpe, alice, bob):
        call_id = "prack-1@127.0.0.1"
        alice.send(core.pcscf_sip, invite(core, alice, call_id, "p1", 30300).replace(
            "CSeq: 1 INVITE", "CSeq: 1 INVITE\r\nSupported: 100rel"))
        inv = wait_msg(bob, lambda m: m.method == "INVITE", "the INVITE at bob")
        seen = {"INVITE at bob": inv}
        to = respond(bob, inv, core.pcscf_sip, "183 Session Progress", to_tag="q1", media_port=30310,
                     extra=["Require: 100rel", "RSeq: 1"])
        p183 = seen["183 at alice"] = wait_msg(alice, lambda m: m.status == 183, "the 183 at alice")
        route = route_of(p183)
        # PRACK with a new offer, its 200 with the answer
        alice.send(core.pcscf_sip, in_dialog("PRACK", alice, bob.port, route, call_id, "p1", to, 2,
                                             body=SDP % 30302, extra=[("RAck", "1 1 INVITE")]))
        prack = seen["PRACK at bob"] = wait_msg(bob, lambda m: m.method == "PRACK", "the PRACK at bob")
        respond(bob, prack, core.pcscf_sip, media_port=30312, contact=False)
        seen["200 (PRACK) at alice"] = wait_msg(alice, lambda m: m.status == 200 and
                                                m.get("CSeq") == "2 PRACK", "the 200 (PRACK) at alice")
        # UPDATE offer in the early dialog, answer in its 200
        alice.send(core.pcscf_sip, in_dialog("UPDATE", alice, bob.port, route, call_id, "p1", to, 3,
                                             body=SDP % 30304))
        upd = seen["UPDATE at bob"] = wait_msg(bob, lambda m: m.method == "UPDATE", "the UPDATE at bob")
        respond(bob, upd, core.pcscf_sip, media_port=30314)
        seen["200 (UPDATE) at alice"] = wait_msg(alice, lambda m: m.status == 200 and
                                                 m.get("CSeq") == "3 UPDATE", "the 200 (UPDATE) at alice")
        bad = {k: sdp_port(m) for k, m in seen.items() if not rtpe.in_range(sdp_port(m) or 0)}
        check(not bad, "SDP not anchored (port outside rtpengine's %d-%d): %r" % (
            rtpe.port_min, rtpe.port_max, bad))
        check(sorted(rtpe.calls()) == sorted([call_id + ";orig", call_id + ";term"]), rtpe.calls())
        check((core.pcscf.metric("pcscf_media_sessions_failed_total") or 0) == 0, "no failed offer/answer")
        # the call completes and ends
        respond(bob, inv, core.pcscf_sip, to_tag="q1", media_port=30314)
        ok = wait_msg(alice, lambda m: m.status == 200 and m.get("CSeq") == "1 INVITE", "the 200 at alice")
        alice.send(core.pcscf_sip, in_dialog("ACK", alice, bob.port, route, call_id, "p1", ok.get("To"), 1))
        alice.send(core.pcscf_sip, in_dialog("BYE", alice, bob.port, route, call_id, "p1", ok.get("To"), 4))
        bye = wait_msg(bob, lambda m: m.method == "BYE", "the BYE at bob")
        respond(bob, bye, core.pcscf_sip, contact=False)
        wait_for(lambda: rtpe.calls() == [], 5, what="no rtpengine call after the BYE: %r" % rtpe.calls())


def callee_ended(bob, call_id):
    """bob (the callee) gets the P-CSCF's ACK of its 200 and a BYE; it answers the BYE."""
    wait_msg(bob, lambda m: m.method == "ACK" and m.get("Call-ID") == call_id, "the P-CSCF's ACK at bob")
    bye = wait_msg(bob, lambda m: m.method == "BYE" and m.get("Call-ID") == call_id, "the P-CSCF's BYE at bob")
    return bye


def test_media_2xx_replaced(tmp):
    with alice_and_bob(tmp) as (core, rtpe, alice, bob):
        call_id = "lost-1@127.0.0.1"
        alice.send(core.pcscf_sip, invite(core, alice, call_id, "r1", 30400))
        inv = wait_msg(bob, lambda m: m.method == "INVITE", "the INVITE at bob")
        rtpe.proc.send_signal(signal.SIGSTOP)
        try:
            respond(bob, inv, core.pcscf_sip, to_tag="r2", media_port=30410)
            time.sleep(0.2)
            respond(bob, inv, core.pcscf_sip, to_tag="r2", media_port=30410)   # retransmission
            wait_msg(alice, lambda m: m.status in (500, 503), "the 500/503 at alice", timeout=10)
            bye = callee_ended(bob, call_id)
        finally:
            rtpe.proc.send_signal(signal.SIGCONT)
        respond(bob, bye, core.pcscf_sip, contact=False)
        check(not any(m.status == 200 and "INVITE" in m.get("CSeq") for m in alice.got),
              "a 200 reached alice after all: %r" % [m.first for m in alice.got])
        wait_for(lambda: media_active(core) == 0, 5, what="no media session at the P-CSCF")
        check(deleted(core, "error") >= 1, "deleted{error} %d" % deleted(core, "error"))
        check("ACK and BYE to end the callee's dialog" in core.pcscf.log(), "the P-CSCF logs the end")


def test_media_cancel_crosses_200(tmp):
    """A CANCEL that crosses a 200 held for rtpengine has no effect on the INVITE (RFC 3261 §9.1,
    §16.10: the P-CSCF waits for the callee's final, NTATAG_CANCEL_487(0)): alice gets the
    anchored 200 once rtpengine answers, no 487, and ends the call with ACK and BYE."""
    with alice_and_bob(tmp, timeout_ms=1000, retries=2) as (core, rtpe, alice, bob):
        call_id = "cross-1@127.0.0.1"
        text = invite(core, alice, call_id, "c1", 30500)
        alice.send(core.pcscf_sip, text)
        inv = wait_msg(bob, lambda m: m.method == "INVITE", "the INVITE at bob")
        respond(bob, inv, core.pcscf_sip, "180 Ringing", to_tag="c2", contact=False)
        wait_msg(alice, lambda m: m.status == 180, "the 180 at alice")
        rtpe.proc.send_signal(signal.SIGSTOP)
        try:
            respond(bob, inv, core.pcscf_sip, to_tag="c2", media_port=30510)
            time.sleep(0.3)     # the 200 waits at the P-CSCF for rtpengine
            alice.send(core.pcscf_sip, cancel_of(text))
            wait_msg(alice, lambda m: m.status == 200 and m.get("CSeq") == "1 CANCEL", "the 200 (CANCEL)")
        finally:
            rtpe.proc.send_signal(signal.SIGCONT)   # its answer comes within the retries
        ok = wait_msg(alice, lambda m: m.status == 200 and m.get("CSeq") == "1 INVITE", "the 200 at alice")
        check(rtpe.in_range(sdp_port(ok) or 0), "the 200 after the CANCEL is anchored: %r" % ok.body)
        check(not any(m.status == 487 for m in alice.got), "a 487 besides the 200")
        check(not any(m.method == "CANCEL" for m in bob.collect(0.3)), "a CANCEL reached bob after his 200")
        route = route_of(inv)
        alice.send(core.pcscf_sip, in_dialog("ACK", alice, bob.port, route, call_id, "c1", ok.get("To"), 1))
        alice.send(core.pcscf_sip, in_dialog("BYE", alice, bob.port, route, call_id, "c1", ok.get("To"), 2))
        bye = wait_msg(bob, lambda m: m.method == "BYE", "alice's BYE at bob")
        respond(bob, bye, core.pcscf_sip, contact=False)
        wait_for(lambda: rtpe.calls() == [], 8, what="no rtpengine call after the BYE: %r" % rtpe.calls())
        check(media_active(core) == 0, "no media session at the P-CSCF")


if __name__ == "__main__":
    lab.main()
