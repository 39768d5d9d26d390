"""System tests of the P-CSCF's bindings in Redis (store.backend: redis; pcscf_bindsync.c): the
whole core on loopback (lab.py), both CSCFs on a real redis-server (lab_redis.py) on a free port,
the P-CSCF with pcscf.key_file (the secret of its Record-Route tokens and record MACs).

Behaviour asserted (README "State store"):
- kill -9 of the P-CSCF (and, in a second case, of the P-CSCF and the S-CSCF) and a restart on
  the same store and key file: two calls set up before the kill are torn down afterwards, one by
  its caller and one by its callee (the BYEs carry the Record-Route tokens of the old process and
  pass); new calls both ways between the same users succeed without any REGISTER; the restored
  reg-event subscription still receives the S-CSCF's NOTIFY: an HSS-initiated de-registration
  (RTR) removes bob's binding at the restarted P-CSCF and its record from Redis.
- A UE registered over TCP is not kept (its connection died with the process): no record, 480
  for requests to it after the restart, and it registers again over a new connection.
- Hostile records: garbage, a valid record copied under another flow's key (MAC mismatch), and
  records sealed with the right key but wrong inside (key naming another identity than the
  record, CR/LF in a contact, a TCP flow) are skipped with a warning and counted; none of them
  lets the attacker's address send as alice, and alice still receives her requests.
"""

import hashlib
import hmac
import json
import os
import re
import socket

import lab
import lab_redis
import test_media
from lab import check, metric, wait_for
from test_dialog_transport import Ua, ack_for_2xx, call
from test_faults import readyz


def redis_lab(tmp, redis, extra=None, **kw):
    store = {"backend": "redis", "redis": redis.address, "timeout_ms": 300}
    over = {"scscf": {"store": store},
            "pcscf": {"store": store, "pcscf": {"key_file": os.path.join(tmp, "pcscf.key")}}}
    return lab.Lab(tmp, overrides=lab.merge(over, extra or {}), **kw)


def restart(nf):
    nf.kill()                                           # SIGKILL: nothing is written at exit
    nf.spawn()
    wait_for(lambda: readyz(nf)[0] == 200, 20, what="%s ready after its restart" % nf.name)


def bind_keys(core, redis):
    return redis.keys(core.pcscf_uri + ":bind:*")


def message(core, sender, to_user, text, call_id, receiver=None):
    """A MESSAGE from sender (a registered Ua) through the core, answered 200 by receiver (a Ua,
    when given); returns the final response at the sender."""
    aor_from, aor_to = "sip:%s@%s" % (sender.user, lab.DOMAIN), "sip:%s@%s" % (to_user, lab.DOMAIN)
    route = ["<sip:127.0.0.1:%d;lr>" % core.pcscf_sip] + sender.service_route
    sender.send_to_core("\r\n".join([
        "MESSAGE %s SIP/2.0" % aor_to, "Via: %s" % sender.via(), "Max-Forwards: 70",
        "Route: %s" % ", ".join(route), "From: <%s>;tag=m-%s" % (aor_from, sender.user), "To: <%s>" % aor_to,
        "Call-ID: %s" % call_id, "CSeq: 1 MESSAGE", "Content-Type: text/plain",
        "Content-Length: %d" % len(text), "", text]))
    if receiver:
        receiver.reply(receiver.request_in("MESSAGE", timeout=10), 200, "OK")
    return sender.final_to("MESSAGE", timeout=10).msg


def bye(sender, dialog, receiver):
    sender.send_to_core(dialog.request(sender, "BYE"))
    got = receiver.request_in("BYE", timeout=10)
    receiver.reply(got, 200, "OK")
    resp = sender.final_to("BYE", timeout=10).msg
    check(resp.status == 200, "%s's BYE after the restart: %s" % (sender.user, resp.first))


def kill9_case(tmp, also_scscf):
    with lab_redis.RedisServer(tmp) as redis, redis_lab(tmp, redis) as core:
        alice, bob = Ua(core, "alice", "alicepass"), Ua(core, "bob", "bobpass")
        try:
            alice.register("sip:alice@127.0.0.1:%d" % alice.port)
            bob.register("sip:bob@127.0.0.1:%d" % bob.port)
            # write-through: one sealed record per binding, and the two reg subscriptions
            wait_for(lambda: len(bind_keys(core, redis)) == 2, 5, what="2 binding records")
            wait_for(lambda: len(redis.keys(core.pcscf_uri + ":sub:*")) == 2, 10, what="2 subscription records")
            rec = redis.cli("GET", bind_keys(core, redis)[0])
            check(re.match(r"^[0-9a-f]{32} \{", rec), "a record is '<MAC> <JSON>': %r" % rec[:60])
            body = json.loads(rec[33:])
            check(body["tp"] == "udp" and body["contacts"] and body["routes"], body)
            ttl = int(redis.cli("TTL", bind_keys(core, redis)[0]))
            check(0 < ttl <= 3600 + 60, "record TTL: contact expiry + grace, got %d" % ttl)

            # two calls in progress: alice -> bob, bob -> alice
            a1, b1, _, _ = call(core, alice, bob, "sip:alice@127.0.0.1:%d" % alice.port,
                                "sip:bob@127.0.0.1:%d" % bob.port, "pr-c1@test")
            ack_for_2xx(alice, a1, 1)
            bob.request_in("ACK")
            b2, a2, _, _ = call(core, bob, alice, "sip:bob@127.0.0.1:%d" % bob.port,
                                "sip:alice@127.0.0.1:%d" % alice.port, "pr-c2@test")
            ack_for_2xx(bob, b2, 1)
            alice.request_in("ACK")

            restart(core.pcscf)
            if also_scscf:
                restart(core.scscf)
            log = core.pcscf.log()
            check("restored 2 binding(s) and 2 reg subscription(s)" in log, lab.tail(log, 15))
            check(metric(core.pcscf, "pcscf_bindings") == 2, "2 bindings after the reload")
            check(metric(core.pcscf, "pcscf_store_loaded_total") == 2, "loaded counted")

            # the calls set up before the kill end: caller's BYE (c1), callee's BYE (c2)
            bye(alice, a1, bob)
            bye(alice, a2, bob)

            # new calls both ways, no REGISTER sent
            a3, _, _, _ = call(core, alice, bob, "sip:alice@127.0.0.1:%d" % alice.port,
                               "sip:bob@127.0.0.1:%d" % bob.port, "pr-c3@test")
            ack_for_2xx(alice, a3, 1)
            bob.request_in("ACK")
            bye(alice, a3, bob)
            b4, _, _, _ = call(core, bob, alice, "sip:bob@127.0.0.1:%d" % bob.port,
                               "sip:alice@127.0.0.1:%d" % alice.port, "pr-c4@test")
            ack_for_2xx(bob, b4, 1)
            alice.request_in("ACK")
            bye(bob, b4, alice)
            check(metric(core.pcscf, "pcscf_register_total", result="registered") in (None, 0),
                  "no REGISTER after the restart")

            # network-initiated de-registration: the S-CSCF's NOTIFY reaches the restored subscription
            status, resp = core.api("POST", "/api/v1/subscribers/bob/deregister", {"reason_code": 0})
            check(status == 202, "POST deregister: %s %r" % (status, resp))
            wait_for(lambda: metric(core.pcscf, "pcscf_bindings") == 1, 10,
                     what="bob's binding removed by the reg event NOTIFY")
            check("reg event: registration of sip:bob@ims.lab terminated" in core.pcscf.log(),
                  lab.tail(core.pcscf.log(), 20))
            wait_for(lambda: len(bind_keys(core, redis)) == 1 and "bob" not in bind_keys(core, redis)[0], 5,
                     what="bob's binding record deleted")
            resp = message(core, alice, "bob", "gone", "pr-m1@test")
            check(resp.status in (404, 480), "MESSAGE to de-registered bob: %s" % resp.first)
        finally:
            alice.close()
            bob.close()
        core.alive()


def test_kill9_pcscf_keeps_bindings_and_dialogs(tmp):
    kill9_case(tmp, also_scscf=False)


def test_kill9_pcscf_and_scscf(tmp):
    kill9_case(tmp, also_scscf=True)


def test_media_of_a_call_before_the_restart(tmp):
    """rtpengine keeps an anchored call across a kill -9 of the P-CSCF; the restarted P-CSCF has no
    media leg for it, and the BYE (passing on the old token) still deletes it at rtpengine."""
    rtpe = test_media.RtpEngine(tmp)
    try:
        with lab_redis.RedisServer(tmp) as redis, \
                redis_lab(tmp, redis, extra=test_media.media_overrides(rtpe)) as core:
            alice, bob = Ua(core, "alice", "alicepass"), Ua(core, "bob", "bobpass")
            try:
                alice.register("sip:alice@127.0.0.1:%d" % alice.port)
                bob.register("sip:bob@127.0.0.1:%d" % bob.port)
                a, _, inv, _ = call(core, alice, bob, "sip:alice@127.0.0.1:%d" % alice.port,
                                    "sip:bob@127.0.0.1:%d" % bob.port, "pr-media@test")
                check(rtpe.in_range(test_media.sdp_port(inv.msg) or 0), "anchored: %r" % inv.msg.body)
                ack_for_2xx(alice, a, 1)
                bob.request_in("ACK")
                legs = sorted(["pr-media@test;orig", "pr-media@test;term"])
                check(sorted(rtpe.calls()) == legs, "rtpengine calls: %r" % rtpe.calls())

                restart(core.pcscf)
                check(sorted(rtpe.calls()) == legs, "rtpengine keeps the call: %r" % rtpe.calls())
                bye(alice, a, bob)
                wait_for(lambda: rtpe.calls() == [], 5, what="the call deleted at rtpengine by the BYE")
                check("BYE for Call-ID pr-media@test without a media leg here" in core.pcscf.log(),
                      lab.tail(core.pcscf.log(), 20))
            finally:
                alice.close()
                bob.close()
            core.alive()
    finally:
        rtpe.stop()


def test_tcp_binding_not_kept(tmp):
    with lab_redis.RedisServer(tmp) as redis, redis_lab(tmp, redis) as core:
        alice = Ua(core, "alice", "alicepass")
        bob = Ua(core, "bob", "bobpass", tcp_flow=True)
        bob2 = None
        try:
            alice.register("sip:alice@127.0.0.1:%d" % alice.port)
            bob.register("sip:bob@127.0.0.1:%d;transport=tcp" % bob.port)
            check(metric(core.pcscf, "pcscf_bindings") == 2, "both registered")
            wait_for(lambda: len(bind_keys(core, redis)) == 1, 5, what="alice's record")
            check(":bind:udp:" in bind_keys(core, redis)[0], "only the UDP binding is written: %r" %
                  bind_keys(core, redis))

            restart(core.pcscf)
            check(metric(core.pcscf, "pcscf_bindings") == 1, "only alice's binding restored")
            resp = message(core, alice, "bob", "to-tcp", "pr-m2@test")
            check(resp.status == 480, "MESSAGE to bob (TCP flow gone): 480 expected, got %s" % resp.first)

            # bob registers again over a new connection, then is reachable
            bob2 = Ua(core, "bob", "bobpass", tcp_flow=True)
            bob2.register("sip:bob@127.0.0.1:%d;transport=tcp" % bob2.port)
            resp = message(core, alice, "bob", "again", "pr-m3@test", receiver=bob2)
            check(resp.status == 200, "MESSAGE to re-registered bob: %s" % resp.first)
        finally:
            alice.close()
            bob.close()
            if bob2:
                bob2.close()
        core.alive()


# --- hostile records -----------------------------------------------------------------------------

def record_key(tmp):
    with open(os.path.join(tmp, "pcscf.key")) as f:
        secret = bytes.fromhex(f.read().strip())
    return hmac.new(secret, b"store", hashlib.md5).digest()


def sealed(mac_key, rel_key, obj):
    text = json.dumps(obj, separators=(",", ":"))
    return hmac.new(mac_key, ("%s\n%s" % (rel_key, text)).encode(), hashlib.md5).hexdigest() + " " + text


def test_hostile_records(tmp):
    with lab_redis.RedisServer(tmp) as redis, redis_lab(tmp, redis) as core:
        # the Uas first: each needs its UDP port free on TCP too
        alice, bob = Ua(core, "alice", "alicepass"), Ua(core, "bob", "bobpass")
        mallory = lab.RawUdp()
        try:
            alice.register("sip:alice@127.0.0.1:%d" % alice.port)
            bob.register("sip:bob@127.0.0.1:%d" % bob.port)
            wait_for(lambda: len(bind_keys(core, redis)) == 2, 5, what="two records")
            prefix = core.pcscf_uri + ":"
            akey = [k for k in bind_keys(core, redis) if k.endswith("sip:alice@ims.lab")][0]
            good = redis.cli("GET", akey)
            good_obj = json.loads(good[33:])
            mk = record_key(tmp)
            evil_flow = "bind:udp:127.0.0.1:%d:" % mallory.port

            def evil(**changes):
                o = json.loads(json.dumps(good_obj))
                o.update({"port": mallory.port})
                o["contacts"] = [{"uri": "sip:alice@127.0.0.1:%d" % mallory.port, "exp": good_obj["contacts"][0]["exp"]}]
                o.update(changes)
                return o

            # 1. alice's real record copied under a key naming the attacker's flow: the MAC is for another key
            redis.cli("SET", prefix + evil_flow + "sip:alice@ims.lab", good)
            # 2. sealed with our key (a leaked secret), but the key names another identity than the record
            k2 = evil_flow + "sip:mallory@ims.lab"
            redis.cli("SET", prefix + k2, sealed(mk, k2, evil()))
            # 3. sealed, own key, CR/LF in a contact (header injection)
            k3 = "bind:udp:127.0.0.1:%d:sip:carol@ims.lab" % mallory.port
            o3 = evil(impu="sip:carol@ims.lab")
            o3["contacts"][0]["uri"] = "sip:carol@127.0.0.1\r\nX-Evil: 1"
            redis.cli("SET", prefix + k3, sealed(mk, k3, o3))
            # 4. sealed, a TCP flow (does not survive a restart)
            k4 = "bind:tcp:127.0.0.1:%d:sip:dave@ims.lab" % mallory.port
            redis.cli("SET", prefix + k4, sealed(mk, k4, evil(impu="sip:dave@ims.lab", tp="tcp")))
            # 5. garbage, and an unsealed record
            redis.cli("SET", prefix + evil_flow + "sip:x@ims.lab", "{not json")
            redis.cli("SET", prefix + evil_flow + "sip:y@ims.lab", json.dumps(evil(impu="sip:y@ims.lab")))
            # 6. a subscription record for a user without a binding here
            k6 = "sub:sip:eve@ims.lab"
            redis.cli("SET", prefix + k6, sealed(mk, k6, {
                "v": 1, "impu": "sip:eve@ims.lab", "callid": "x", "ftag": "a", "ttag": "b",
                "target": "sip:127.0.0.1:%d" % mallory.port, "routes": [], "cseq": 1, "exp": 2 ** 40}))

            restart(core.pcscf)
            log = core.pcscf.log()
            for why in ("MAC does not match", "key does not name the record's flow and identity",
                        "holds a control character", "only UDP bindings survive", "not a sealed record",
                        "reg subscription record of sip:eve@ims.lab not restored"):
                check(why in log, "no warning '%s':\n%s" % (why, lab.tail(log, 30)))
            check(metric(core.pcscf, "pcscf_store_skipped_total") >= 7, "skipped records counted")
            check(metric(core.pcscf, "pcscf_bindings") == 2, "only alice's and bob's bindings")

            # the attacker's address is no UE of ours: its MESSAGE as alice is refused
            mallory.sock.sendto(("MESSAGE sip:bob@ims.lab SIP/2.0\r\n"
                                 "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-mal\r\n"
                                 "Max-Forwards: 70\r\nRoute: <sip:127.0.0.1:%d;lr>\r\n"
                                 "From: <sip:alice@ims.lab>;tag=mal\r\nTo: <sip:bob@ims.lab>\r\n"
                                 "Call-ID: mal@test\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n" %
                                 (mallory.port, core.pcscf_sip)).encode(), ("127.0.0.1", core.pcscf_sip))
            mallory.sock.settimeout(5)
            raw = mallory.sock.recvfrom(65535)[0].decode()
            check(raw.startswith("SIP/2.0 403"), "MESSAGE from the attacker's address: %r" % raw[:80])

            # alice still receives her requests, the attacker nothing
            check(message(core, bob, "alice", "for-alice", "pr-m4@test", receiver=alice).status == 200,
                  "MESSAGE to alice")
            mallory.sock.settimeout(0.5)
            try:
                leaked = mallory.sock.recvfrom(65535)[0]
            except socket.timeout:
                leaked = None
            check(leaked is None, "the attacker's address received: %r" % leaked)
        finally:
            alice.close()
            bob.close()
            mallory.sock.close()
        core.alive()


if __name__ == "__main__":
    lab.main()
