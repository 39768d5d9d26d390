"""System tests of the S-CSCF's registrations in Redis (store.backend: redis; scscf_regsync.c):
the whole core on loopback (lab.py) and a real redis-server (lab_redis.py) on a free port.

Behaviour asserted (README "State store"):
- kill -9 of the S-CSCF and a restart on the same store: registered users stay reachable without
  registering again (INVITE calls both ways, SIPp UEs), the reg-event dialog survives (an
  in-dialog SUBSCRIBE refresh is accepted and its NOTIFY carries the next version and a higher
  CSeq), and a registration's expiry still fires after the restart (SAR TIMEOUT_DEREGISTRATION:
  the HSS shows the user unregistered, the record leaves Redis). Records carry Redis TTLs.
- Redis killed mid-run: the S-CSCF keeps serving from memory (new registrations, requests),
  /readyz turns 503 naming the store, changes are counted as pending; Redis back (empty): every
  registration is written again, /readyz 200, and a later S-CSCF restart finds all of them.
- Hostile records: only our prefix is read; a record under another user's key, a record whose
  profile claims another record's identity, and garbage are skipped with a warning (counted in
  scscf_store_skipped_total); the victim's calls still reach the victim, never the attacker.
"""

import json
import re
import socket
import time

import lab
import lab_redis
from lab import check, first_line, metric, status_of, wait_for
from test_faults import answer_200, readyz, receive, register_ok, send_message
from test_sessions import Ua, call, callee, passed, subscribers, wait_uas


def redis_lab(tmp, redis, **kw):
    over = {"scscf": {"store": {"backend": "redis", "redis": redis.address, "timeout_ms": 300}}}
    return lab.Lab(tmp, overrides=over, **kw)


def restart_scscf(core):
    core.scscf.kill()                                   # SIGKILL: nothing is written at exit
    core.scscf.spawn()
    wait_for(lambda: readyz(core.scscf)[0] == 200, 20, what="scscf ready after its restart")


def key(core, impu):
    return "%s:reg:%s" % (core.scscf_name, impu)


# --- a reg-event subscriber of our own (it may: it asserts the user's identity from the trust domain) ---

class Watcher:
    """A UDP socket subscribed to alice's reg event directly at the S-CSCF."""

    def __init__(self, core, aor="sip:alice@ims.lab"):
        self.core, self.aor = core, aor
        self.udp = lab.RawUdp()
        self.port = self.udp.port
        self.call_id = "watch-%d@127.0.0.1" % self.udp.port
        self.cseq = 0
        self.to_tag = None

    def subscribe(self, expires=600):
        self.cseq += 1
        to = "<%s>" % self.aor + (";tag=%s" % self.to_tag if self.to_tag else "")
        req = ("SUBSCRIBE %s SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-w%d-%d\r\n"
               "Max-Forwards: 70\r\nFrom: <%s>;tag=watch\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d SUBSCRIBE\r\n"
               "P-Asserted-Identity: <%s>\r\nEvent: reg\r\nAccept: application/reginfo+xml\r\n"
               "Contact: <sip:watch@127.0.0.1:%d>\r\nExpires: %d\r\nContent-Length: 0\r\n\r\n" %
               (self.aor, self.udp.port, self.udp.port, self.cseq, self.aor, to, self.call_id, self.cseq, self.aor,
                self.udp.port, expires))
        self.udp.sock.sendto(req.encode(), ("127.0.0.1", self.core.scscf_sip))
        ok = notify = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (ok and notify):
            m = receive(self, timeout=deadline - time.monotonic())
            if m is None:
                break
            if m.status:
                ok = m
            elif m.method == "NOTIFY":
                answer_200(self, m)
                notify = m
        check(status_of(ok) == 200, "SUBSCRIBE %s: 200 expected, got %s" % (self.aor, first_line(ok)))
        check(notify is not None, "no NOTIFY after the SUBSCRIBE's 200")
        self.to_tag = re.search(r"tag=([^;>\s]+)", ok.get("To")).group(1)
        version = int(re.search(r'<reginfo[^>]* version="(\d+)"', notify.body).group(1))
        return version, int(notify.get("CSeq").split()[0]), notify


def record(redis, k):
    text = redis.cli("GET", k)
    check(text, "no record %s in Redis" % k)
    return json.loads(text)


# --- the tests -----------------------------------------------------------------------------------

def test_kill9_keeps_registrations(tmp):
    with lab_redis.RedisServer(tmp) as redis, \
            redis_lab(tmp, redis, subscribers=subscribers("sip:as.ims.lab:1")) as core, \
            lab.RawUe(core, "dave", password="davepass") as dave:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")
        ch = dave.register()
        ok = dave.register(dave.answer(ch), expires="8")        # a short one: it expires after the restart
        check(status_of(ok) == 200, "dave: %s" % first_line(ok))
        wait_for(lambda: metric(core.scscf, "scscf_reg_subscriptions") >= 3, 5, what="the P-CSCF's subscriptions")
        w = Watcher(core)
        v0, cseq0, _ = w.subscribe()

        # write-through: one record per registration under our name, with a TTL beyond its expiry
        wait_for(lambda: len(redis.keys(core.scscf_name + ":reg:*")) == 3, 5, what="3 records in Redis")
        rec = record(redis, key(core, "sip:alice@ims.lab"))
        check(rec["v"] == 1 and rec["impi"] == "alice@ims.lab" and rec["contacts"], rec)
        ttl = int(redis.cli("TTL", key(core, "sip:alice@ims.lab")))
        check(600 < ttl <= 600 + 600, "alice's record TTL: contact expiry + grace, got %d" % ttl)
        wait_for(lambda: any(s["ver"] == v0 + 1 for s in record(redis, key(core, "sip:alice@ims.lab"))["subs"]), 5,
                 what="the watcher's next NOTIFY version in the record")

        restart_scscf(core)
        check("loaded 3 registration(s)" in core.scscf.log(), lab.tail(core.scscf.log(), 15))
        check(metric(core.scscf, "scscf_registrations") == 5, "5 identities (alice 2, bob 2, dave 1) after the reload")
        check(metric(core.scscf, "scscf_reg_subscriptions") >= 4, "subscriptions reloaded")

        # calls both ways without registering again
        b = callee(core, bob, "callee_answer.xml")
        passed(call(core, alice, "call_uac.xml"))
        wait_uas(b)
        a = callee(core, alice, "callee_answer.xml")
        passed(call(core, bob, "call_uac.xml", to="alice"))
        wait_uas(a)

        # the reg-event dialog survived: a refresh in it, and the NOTIFY goes on counting
        v1, cseq1, _ = w.subscribe()
        check(v1 == v0 + 1, "NOTIFY version after the restart: %d expected, got %d" % (v0 + 1, v1))
        check(cseq1 > cseq0, "NOTIFY CSeq after the restart: above %d, got %d" % (cseq0, cseq1))

        # dave's registration (8 s) expires after the restart: SAR, record deleted
        wait_for(lambda: core.reg_states("dave")["sip:dave@ims.lab"] != "registered", 20,
                 what="dave's expiry after the restart (SAR TIMEOUT_DEREGISTRATION)")
        wait_for(lambda: key(core, "sip:dave@ims.lab") not in redis.keys(), 5, what="dave's record deleted")
        check("registration of sip:dave@ims.lab (dave@ims.lab) expired" in core.scscf.log(), "expiry logged")
        w.subscribe(expires=0)
        w.udp.close()


def test_redis_down_and_back(tmp):
    with lab_redis.RedisServer(tmp) as redis, redis_lab(tmp, redis) as core, \
            lab.RawUe(core, "alice") as alice, lab.RawUe(core, "bob", password="bobpass") as bob:
        register_ok(alice)
        wait_for(lambda: len(redis.keys(core.scscf_name + ":reg:*")) == 1, 5, what="alice's record")
        redis.kill()
        wait_for(lambda: readyz(core.scscf)[0] == 503, 5, what="/readyz 503 without the store")
        check("state store unreachable" in readyz(core.scscf)[1], readyz(core.scscf))

        # serving from memory: a new registration and requests both ways
        register_ok(bob)
        # the 200 reaches bob before the S-CSCF's loop has marked the registration: wait for it
        wait_for(lambda: (metric(core.scscf, "scscf_store_pending") or 0) >= 1, 5, what="bob's record pending")
        send_message(bob, "alice", "during")
        got = receive(alice)
        check(got is not None and got.method == "MESSAGE", "alice must receive bob's MESSAGE: %r" % got)
        answer_200(alice, got)
        check(status_of(receive(bob, final=True)) == 200, "MESSAGE during the outage")
        core.alive()

        redis.start()                                   # back, empty: everything is written again
        wait_for(lambda: readyz(core.scscf)[0] == 200, 10, what="/readyz 200 with the store back")
        wait_for(lambda: len(redis.keys(core.scscf_name + ":reg:*")) == 2, 5, what="both records re-written")
        wait_for(lambda: metric(core.scscf, "scscf_store_pending") == 0, 5, what="nothing pending")
        check("store reachable again" in core.scscf.log(), lab.tail(core.scscf.log(), 10))

        restart_scscf(core)
        send_message(alice, "bob", "after")
        got = receive(bob)
        check(got is not None and got.method == "MESSAGE" and "after" in got.body,
              "bob (registered during the outage) reachable after a restart: %r" % got)
        answer_200(bob, got)
        check(status_of(receive(alice, final=True)) == 200, "MESSAGE after the restart")


def test_hostile_records(tmp):
    with lab_redis.RedisServer(tmp) as redis, redis_lab(tmp, redis) as core, \
            lab.RawUe(core, "alice") as alice, lab.RawUe(core, "bob", password="bobpass") as bob, \
            lab.RawUdp() as mallory:
        register_ok(alice)
        register_ok(bob)
        wait_for(lambda: len(redis.keys(core.scscf_name + ":reg:*")) == 2, 5, what="two records")
        good = record(redis, key(core, "sip:alice@ims.lab"))
        evil_contact = "sip:mallory@127.0.0.1:%d" % mallory.port

        def forged(impu, extra_identity=None):
            r = json.loads(json.dumps(good))
            r["impu"] = impu
            if extra_identity:
                r["profile"] = r["profile"].replace(
                    "<PublicIdentity>", "<PublicIdentity><Identity>%s</Identity></PublicIdentity><PublicIdentity>" %
                    extra_identity, 1)
            for c in r["contacts"]:
                c["uri"] = evil_contact
                c.pop("path", None)
            return json.dumps(r)

        # 1. another user's identity under a key of its own: the key must name the record's identity
        redis.cli("SET", key(core, "sip:mallory@ims.lab"), forged("sip:alice@ims.lab"))
        # 2. a record of its own (mallory's) whose profile also claims sip:alice, another record's identity
        redis.cli("SET", key(core, "sip:eve@ims.lab"), forged("sip:eve@ims.lab", "sip:eve@ims.lab"))
        # 3. garbage, and a record of a version we do not know
        redis.cli("SET", key(core, "sip:x@ims.lab"), "{not json")
        redis.cli("SET", key(core, "sip:y@ims.lab"), json.dumps({"v": 99}))
        # 4. another S-CSCF's namespace is not ours to read
        redis.cli("SET", "sip:scscf9.ims.lab:5060:reg:sip:alice@ims.lab", forged("sip:alice@ims.lab"))

        restart_scscf(core)
        log = core.scscf.log()
        check(re.search(r"WARN .*record .*reg:sip:mallory@ims.lab skipped: key does not name", log),
              "foreign key refused:\n" + lab.tail(log, 20))
        check("belongs to another record" in log, "conflicting record refused:\n" + lab.tail(log, 20))
        check(metric(core.scscf, "scscf_store_skipped_total") >= 4, "skipped records counted")
        check("loaded 2 registration(s)" in log, lab.tail(log, 10))

        send_message(bob, "alice", "for-alice")
        got = receive(alice)
        check(got is not None and got.method == "MESSAGE", "alice must still receive her MESSAGE: %r" % got)
        answer_200(alice, got)
        check(status_of(receive(bob, final=True)) == 200, "MESSAGE to alice")
        mallory.sock.settimeout(0.5)
        try:
            leaked = mallory.sock.recvfrom(65535)[0]
        except socket.timeout:
            leaked = None
        check(leaked is None, "the attacker's contact received: %r" % leaked)


if __name__ == "__main__":
    lab.main()
