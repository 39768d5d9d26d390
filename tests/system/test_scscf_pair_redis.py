"""System test: two S-CSCFs, each with its own name (HSS Server-Name) and its own namespace, sharing
one real redis-server (store.backend: redis, store.prefix = scscf.name); the I-CSCF knows both
(icscf.scscfs, icscf.selection: hash) and the HSS offers both (hss.scscf_names).

Behaviour asserted (README "State store", "Several S-CSCFs"):
- first registrations are spread over both S-CSCFs by the I-CSCF's rendezvous hash of the public
  identity (tests/unit/test_icscf_scscf.c pins the hash that hash_of() below recomputes); each
  S-CSCF writes only under its own prefix;
- scscf-a killed (kill -9):
  (1) a user registered at scscf-a registers again: the UAA names scscf-a, which does not answer,
      so the I-CSCF asks again with UAR type 2 and forwards to scscf-b; the MAR from scscf-b moves
      the HSS's assignment (TS 29.228 §8.1) and scscf-b's SAR is accepted; a new user the hash
      would give to scscf-a lands on scscf-b too;
  (2) a call to a user still registered at scscf-a gets 480 Temporarily Unavailable with
      Retry-After from the I-CSCF (the LIA names scscf-a, which cannot be reached), promptly;
  (3) the replacement scscf-a (same name, same prefix) loads its records and serves them: calls
      to and from its users work without a new registration; the user that moved to scscf-b is
      still reached at scscf-b (the HSS refuses SARs from scscf-a for it);
- prefix isolation: scscf-b, restarted as well, loads exactly the records under its own prefix
  and never serves scscf-a's users (its registration count excludes them; its log never names
  them).
"""

import json
import os
import time

import lab
import lab_redis
from lab import check, metric, wait_for
from test_faults import readyz
from test_sessions import Ua, call, callee, final_code, passed, wait_uas

M64 = (1 << 64) - 1
SEED = 0xcbf29ce484222325


def hash64(s, h):
    """common/ims_map.c ims_hash64: FNV-1a then the splitmix64 finaliser."""
    for c in s.encode():
        h = ((h ^ c) * 0x100000001b3) & M64
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & M64
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & M64
    return h ^ (h >> 31)


def hash_of(impu, names):
    """The S-CSCF the I-CSCF's icscf.selection: hash picks for impu among equally ranked names."""
    seed = hash64(impu, SEED)
    return max(names, key=lambda n: hash64(n, seed))


def aka_user(name):
    return {"id": name,
            "impis": [{"impi": "%s@%s" % (name, lab.DOMAIN), "auth_schemes": ["aka"], "default_scheme": "aka",
                       "k": lab.AKA_K, "op": lab.AKA_OP, "amf": lab.AKA_AMF}],
            "impus": [{"impu": "sip:%s@%s" % (name, lab.DOMAIN), "service_profile": "default"}],
            "service_profiles": [{"name": "default"}]}


class Pair:
    """lab.Lab with a second S-CSCF (scscf-b) beside the lab's (renamed scscf-a), one Redis."""

    def __init__(self, tmp, redis):
        core = lab.Lab(tmp, start=False, subscribers={"subscribers": []})
        self.core = core
        p = core.ports
        self.b_sip, self.b_diameter, self.b_http = p.get(), p.get(), p.get()
        self.a_name = "sip:scscf-a.ims.lab:%d" % core.scscf_sip
        self.b_name = "sip:scscf-b.ims.lab:%d" % self.b_sip
        names = [self.a_name, self.b_name]

        # Users named by where the hash puts them: on_a* on scscf-a, on_b* on scscf-b.
        self.users = {"a": [], "b": []}
        i = 0
        while len(self.users["a"]) < 4 or len(self.users["b"]) < 1:
            u = "u%d" % i
            side = "a" if hash_of("sip:%s@%s" % (u, lab.DOMAIN), names) == self.a_name else "b"
            self.users[side].append(u)
            i += 1
        subs = {"subscribers": [aka_user(u) for u in self.users["a"][:4] + self.users["b"][:1]]}
        core.subscribers = subs
        with open(os.path.join(tmp, "hss", "subscribers.json"), "w") as f:
            json.dump(subs, f)

        hosts = core.scscf.config["sip"]["hosts"] + ["scscf-a.ims.lab=127.0.0.1", "scscf-b.ims.lab=127.0.0.1"]
        store = {"backend": "redis", "redis": redis.address, "timeout_ms": 300}
        core.hss.config = lab.merge(core.hss.config, {"hss": {"scscf_names": names}})
        core.icscf.config = lab.merge(core.icscf.config, {
            "sip": {"hosts": hosts},
            "icscf": {"scscfs": [{"name": n} for n in names], "selection": "hash", "scscf_timeout_ms": 1000}})
        core.pcscf.config = lab.merge(core.pcscf.config, {"sip": {"hosts": hosts}})
        # Originating requests to home users not served here go through the I-CSCF (LIR).
        core.scscf.config = lab.merge(core.scscf.config, {
            "sip": {"hosts": hosts, "hostname": "scscf-a.ims.lab"}, "store": store,
            "scscf": {"name": self.a_name, "icscf": core.icscf_uri}})
        b_dir = os.path.join(tmp, "scscf-b")
        b_cfg = lab.merge(core.scscf.config, {
            "http": {"port": self.b_http},
            "diameter": {"identity": "scscf-b.ims.lab", "port": self.b_diameter, "conf_dir": b_dir},
            "sip": {"port": self.b_sip, "hostname": "scscf-b.ims.lab"},
            "scscf": {"name": self.b_name}})
        self.b = lab.Nf("scscf", core.scscf.binary, b_dir, b_cfg, self.b_http)
        core.nfs["scscf-b"] = self.b
        core.NFS = ("hss", "scscf", "scscf-b", "icscf", "pcscf")   # stopped in reverse order
        for nf in (core.hss, core.icscf, core.pcscf, core.scscf):
            nf.write_config()
        self.a = core.scscf

    def start(self):
        self.core.start()
        self.b.spawn()
        self.core._wait(self.b, "/readyz", 20)
        return self.core

    def assigned(self, user):
        status, body = self.core.api("GET", "/api/v1/subscribers/%s" % user)
        check(status == 200, body)
        return (body.get("registration") or {}).get("scscf_name")


def message_to(user, scscf_name, port):
    """A MESSAGE to sip:<user>@ims.lab routed to the S-CSCF named scscf_name (terminating case),
    from 127.0.0.1 (the trust domain), as the I-CSCF would send it after an LIR."""
    return ("MESSAGE sip:%s@ims.lab SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-iso-%d\r\n"
            "Route: <%s;lr>\r\nMax-Forwards: 70\r\n"
            "From: <sip:mallory@ims.lab>;tag=iso\r\nTo: <sip:%s@ims.lab>\r\n"
            "Call-ID: iso-%d@127.0.0.1\r\nCSeq: 1 MESSAGE\r\n"
            "P-Asserted-Identity: <sip:mallory@ims.lab>\r\n"
            "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi" % (user, port, port, scscf_name, user, port))


def restart(nf):
    nf.kill()                                            # SIGKILL: nothing is written at exit
    nf.spawn()
    wait_for(lambda: readyz(nf)[0] == 200, 20, what="%s ready after its restart" % nf.name)


def test_pair_kill_and_replace(tmp):
    t0 = time.monotonic()
    with lab_redis.RedisServer(tmp) as redis:
        pair = Pair(tmp, redis)
        a1, a2, a3, a_new = pair.users["a"][:4]
        b1 = pair.users["b"][0]
        with pair.start() as core:
            # --- spread over both S-CSCFs, each writing under its own prefix ---------------------------
            ua = {u: Ua(core, u) for u in (a1, a2, a3, b1)}
            for u in (a1, a2, a3):
                check(pair.assigned(u) == pair.a_name, "%s: the hash gives scscf-a, HSS says %s" % (u, pair.assigned(u)))
            check(pair.assigned(b1) == pair.b_name, "%s: the hash gives scscf-b, HSS says %s" % (b1, pair.assigned(b1)))
            wait_for(lambda: len(redis.keys(pair.a_name + ":reg:*")) == 3 and
                     len(redis.keys(pair.b_name + ":reg:*")) == 1, 5, what="3 records under a's prefix, 1 under b's")
            check(metric(pair.a, "scscf_registrations") == 3 and metric(pair.b, "scscf_registrations") == 1,
                  "registrations: a %s, b %s" % (metric(pair.a, "scscf_registrations"),
                                                 metric(pair.b, "scscf_registrations")))

            # --- scscf-a dies --------------------------------------------------------------------------
            pair.a.kill()
            # (1) a3 registers again: UAA names scscf-a, no answer, UAR type 2, scscf-b
            ua[a3] = Ua(core, a3)
            check(pair.assigned(a3) == pair.b_name, "%s must have moved to scscf-b: %s" % (a3, pair.assigned(a3)))
            check(metric(core.icscf, "icscf_register_total", result="reselection") >= 1, "re-selection counted")
            hlog = core.hss.log()
            check("MAR %s@ims.lab from %s" % (a3, pair.b_name) in hlog and "assignment moved from %s" % pair.a_name
                  in hlog, "the HSS must log the move of %s (TS 29.228 §8.1)" % a3)
            # a new user whose hash says scscf-a lands on scscf-b
            ua[a_new] = Ua(core, a_new)
            check(pair.assigned(a_new) == pair.b_name, "new user %s: %s" % (a_new, pair.assigned(a_new)))
            wait_for(lambda: len(redis.keys(pair.b_name + ":reg:*")) == 3, 5, what="b's records for a3 and a_new")

            # (2) a call to a1, still registered at the dead scscf-a: 480 + Retry-After, promptly
            t = time.monotonic()
            run = call(core, ua[b1], "call_rejected.xml", to=a1, route=", " + ua[b1].route)
            took = time.monotonic() - t
            check(run.rc == 0 and final_code(run) == 480, "480 for a callee at a dead S-CSCF:\n" + run.failure())
            fin = [m for m in run.received() if m.status == 480][-1]
            check(fin.get("Retry-After"), "the 480 must carry Retry-After:\n" + fin.text)
            check("S-CSCF Not Reachable" in fin.first, fin.first)
            check(took < 5, "the 480 must come promptly, not after SIP timers: %.1f s" % took)
            check(metric(core.icscf, "icscf_requests_total", result="scscf_unreachable") >= 1,
                  "icscf_requests_total{result=scscf_unreachable}")

            # (3) the replacement scscf-a: same name, same prefix; its users without a new registration
            pair.a.spawn()
            wait_for(lambda: readyz(pair.a)[0] == 200, 20, what="the replacement scscf-a ready")
            check("loaded 3 registration(s)" in pair.a.log(), lab.tail(pair.a.log(), 15))
            # its copy of a3 is stale (a3 moved to scscf-b): the HSS says so, the copy goes, silently
            wait_for(lambda: "checked 3 reloaded registration(s) with the HSS: 1 dropped" in pair.a.log(), 10,
                     what="scscf-a's check of its reloaded registrations")
            check("reloaded registration of sip:%s@ims.lab (%s@ims.lab) dropped" % (a3, a3) in pair.a.log(),
                  lab.tail(pair.a.log(), 10))
            wait_for(lambda: len(redis.keys(pair.a_name + ":reg:*")) == 2, 5, what="a3's stale record deleted")
            check(metric(pair.a, "scscf_registrations") == 2, "scscf-a serves a1 and a2")
            b_run = callee(core, ua[b1], "callee_answer.xml")
            passed(call(core, ua[a1], "call_uac.xml", to=b1))          # from a1 (orig at scscf-a)
            wait_uas(b_run)
            a_run = callee(core, ua[a2], "callee_answer.xml")
            passed(call(core, ua[b1], "call_uac.xml", to=a2))          # to a2 (term at scscf-a)
            wait_uas(a_run)
            # the user that moved: its stale copy at scscf-a does not capture calls to it
            m_run = callee(core, ua[a3], "callee_answer.xml")
            passed(call(core, ua[a1], "call_uac.xml", to=a3))
            wait_uas(m_run)
            check(pair.assigned(a3) == pair.b_name, "a3 still at scscf-b: %s" % pair.assigned(a3))

            # --- prefix isolation: scscf-b restarted loads only its own records --------------------------
            restart(pair.b)
            check("loaded 3 registration(s) from redis store %s (0 record(s) skipped)" % pair.b_name in pair.b.log(),
                  "scscf-b must load its 3 records and not even look at scscf-a's:\n" + lab.tail(pair.b.log(), 15))
            check(metric(pair.b, "scscf_registrations") == 3, "b serves b1, a3, a_new only")
            # a request for a1 that reaches scscf-b (not via the LIR) is not delivered from a1's
            # record in the shared Redis: scscf-b treats a1 as not registered here, the HSS refuses
            # (a1 is assigned to scscf-a), and nothing goes to a1
            with lab.RawUdp() as raw:
                r = raw.exchange(pair.b_sip, message_to(a1, pair.b_name, raw.port), timeout=5)
                final = [m for m in r if m.status and m.status >= 200]
                check(final and final[-1].status >= 400, "MESSAGE for %s at scscf-b: %r" % (a1, [m.first for m in r]))
                print("  MESSAGE for %s sent to scscf-b: %s" % (a1, final[-1].first))
            b_run = callee(core, ua[b1], "callee_answer.xml")
            passed(call(core, ua[a2], "call_uac.xml", to=b1))
            wait_uas(b_run)
    print("  took %.1f s" % (time.monotonic() - t0))


def test_name_must_be_own(tmp):
    """An S-CSCF whose scscf.name it would not recognise as its own (here: scscf-b's name with the
    sip.hostname of scscf-a) refuses to start: the I-CSCF routes terminating requests to that
    name, which would loop until 483 (what this test file found first)."""
    with lab_redis.RedisServer(tmp) as redis:
        pair = Pair(tmp, redis)
        pair.b.config = lab.merge(pair.b.config, {"sip": {"hostname": "scscf-a.ims.lab"}})
        pair.b.write_config()
        pair.b.spawn()
        try:
            rc = pair.b.proc.wait(10)
        except Exception:
            pair.b.kill()
            raise
        check(rc != 0, "scscf-b must refuse to start")
        check("scscf.name %s is not an address of this S-CSCF" % pair.b_name in pair.b.log(),
              lab.tail(pair.b.log(), 10))


if __name__ == "__main__":
    lab.main()
