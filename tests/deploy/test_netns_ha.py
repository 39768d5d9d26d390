"""The HA variant of the compose topology for real, in network namespaces (deploy/lab with
IMS_LAB_HA=1, the configs of deploy/compose/ha like docker-compose.ha.yml): redis-server and
PostgreSQL (Debian's, each in its namespace), two HSS (hss, hss2) on the one database, the I-CSCF
knowing two S-CSCFs (scscf, scscf2) that share Redis, the P-CSCF. In the UE namespace:

  - from the UE namespace, as an attacker would, Redis and PostgreSQL do not answer (the lab's
    nft rules); from the S-CSCFs' and the HSS' namespaces they do;
  - alice and bob register with IMS AKA through the P-CSCF (172.22.0.13:5060);
  - both HSS answer the same registration state for them (one database), naming the S-CSCF
    each was assigned; Redis holds each registration under that S-CSCF's name;
  - every S-CSCF that serves alice or bob is killed with SIGKILL; the lab starts it again (its
    restart policy) and it reloads its registrations from Redis (its /readyz back at 200,
    scscf_store_loaded_total counting them);
  - alice calls bob with the route set of her registration before the kill, and nobody registers
    again: the call is answered, re-INVITEd and ended (the S-CSCFs found both users in what they
    reloaded).

Needs root (ip netns), iproute2, curl, SIPp, redis-server, PostgreSQL; exit 77 (ctest: skipped)
when not root, or when the S-CSCF built here has no state store (`scscf --config-reference`
without store.backend), with a message saying which."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import test_netns_lab as netlab  # noqa: E402  (RunningLab, netns; puts tests/system on sys.path)
import harness  # noqa: E402
import lab  # noqa: E402
from harness import TestFailure, check  # noqa: E402
from test_netns_call import UeNamespace  # noqa: E402
from test_sessions import Ua, call, callee, passed, wait_uas  # noqa: E402

BUILD_DIR = harness.BUILD_DIR
NF_IP = {"hss": "172.22.0.10", "hss2": "172.22.0.16", "icscf": "172.22.0.11", "scscf": "172.22.0.12",
         "scscf2": "172.22.0.15", "pcscf": "172.22.0.13"}
SCSCF_BY_NAME = {"sip:scscf.ims.lab:5060": "scscf", "sip:scscf2.ims.lab:5060": "scscf2"}
REDIS = "172.22.0.20"
POSTGRES = "172.22.0.21"


def http_get(nf, path):
    """(status, body) of GET http://<nf>:9090<path>, asked from inside the NF's namespace."""
    r = netlab.netns("ims-" + nf, "curl", "-s", "-m", "5", "-w", "\n%{http_code}", "http://%s:9090%s" % (NF_IP[nf], path))
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def registration(hss, subscriber):
    status, body = http_get(hss, "/api/v1/subscribers/%s" % subscriber)
    check(status == 200, "%s: GET subscriber %s: %s %s" % (hss, subscriber, status, body[:300]))
    doc = json.loads(body)
    states = {u["impu"]: u.get("reg_state") for u in doc.get("impus", [])}
    return states, (doc.get("registration") or {}).get("scscf_name")


def metric(nf, name):
    status, body = http_get(nf, "/metrics")
    check(status == 200, "%s /metrics: %s" % (nf, status))
    return sum(v for (n, _), v in lab.parse_metrics(body).items() if n == name)


def kill_and_wait_restart(running, nf):
    """SIGKILL the NF (the one process of its namespace), then wait for the lab to start it again
    and for its /readyz 200 (its registrations are loaded)."""
    out = subprocess.run(["ip", "netns", "pids", "ims-" + nf], capture_output=True, text=True).stdout.split()
    check(len(out) == 1, "expected one process in ims-%s, found %r" % (nf, out))
    pid = int(out[0])
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    lab.wait_for(lambda: "lab: %s (pid %d) exited with 137; starting it again" % (nf, pid) in running.output(), 10,
                 interval=0.2, what="deploy/lab restarts %s after the SIGKILL" % nf)
    lab.wait_for(lambda: http_get(nf, "/readyz")[0] == 200, 30, interval=0.3, what="%s /readyz 200 after the restart" % nf)
    print("%s: killed (pid %d), started again and ready in %.1f s" % (nf, pid, time.monotonic() - t0))


def fenced_from_ues():
    """As an attacker in the UE namespace: Redis (no password; a write there is a registration)
    and PostgreSQL (the subscribers' keys) do not answer; from their clients' namespaces they do."""
    r = netlab.netns("ims-ue", "timeout", "3", "redis-cli", "-h", REDIS, "ping")
    check("PONG" not in r.stdout, "a UE reaches Redis: %r" % r.stdout)
    r = netlab.netns("ims-ue", "bash", "-c", "timeout 3 bash -c 'exec 3<>/dev/tcp/%s/5432' && echo open" % POSTGRES)
    check("open" not in r.stdout, "a UE reaches PostgreSQL's port: %r" % r.stdout)
    for ns in ("ims-scscf", "ims-scscf2"):
        r = netlab.netns(ns, "timeout", "3", "redis-cli", "-h", REDIS, "ping")
        check("PONG" in r.stdout, "%s cannot reach Redis: %r %r" % (ns, r.stdout, r.stderr))
    for ns in ("ims-hss", "ims-hss2"):
        r = netlab.netns(ns, "bash", "-c", "timeout 3 bash -c 'exec 3<>/dev/tcp/%s/5432' && echo open" % POSTGRES)
        check("open" in r.stdout, "%s cannot reach PostgreSQL: %r %r" % (ns, r.stdout, r.stderr))
    print("Redis and PostgreSQL: closed to the UE namespace, open to the S-CSCFs and the HSS processes")


def served_by(answers, scscfs):
    """answers: {user: (registration from one HSS, from the other)}, each (reg states, scscf name).
    Both HSS (one database) must say the same, the user registered, assigned to one of scscfs
    ({name: what}); returns {user: what}."""
    served = {}
    for who, (first, second) in answers.items():
        impu = "sip:%s@ims.lab" % who
        check(first[0].get(impu) == "registered" and first == second,
              "%s: the two HSS (one database) disagree or not registered: %r / %r" % (who, first, second))
        check(first[1] in scscfs, "%s: assigned to %r, not one of %s" % (who, first[1], sorted(scscfs)))
        served[who] = scscfs[first[1]]
    return served


def call_without_registering(ues, alice, bob):
    """alice calls bob (INVITE, re-INVITE, BYE) with the route set and contact of their earlier
    registrations; neither SIPp run sends a REGISTER."""
    b = callee(ues, bob, "callee_answer.xml")
    a = passed(call(ues, alice, "call_uac.xml"))
    wait_uas(b)
    check(len(b.received(method="INVITE")) == 2 and b.received(method="BYE"),
          "bob got the INVITE, the re-INVITE and the BYE after the S-CSCF restart:\n" + b.failure())
    check(not a.sent("REGISTER") and not b.sent("REGISTER"), "a UE registered again")


def test_ha_lab_registrations_survive_an_scscf_kill(tmp):
    ues = UeNamespace(tmp)
    running = netlab.RunningLab(tmp, env={"IMS_LAB_HA": "1"})
    ok = False
    try:
        running.wait_ready(timeout=120)
        out = running.output()
        for nf in ("hss2", "scscf2"):
            check("lab: started %s " % nf in out, "the HA lab did not start %s:\n%s" % (nf, lab.tail(out, 20)))

        alice, bob = Ua(ues, "alice"), Ua(ues, "bob")
        fenced_from_ues()
        answers = {who: (registration("hss", who), registration("hss2", who)) for who in ("alice", "bob")}
        served = served_by(answers, SCSCF_BY_NAME)
        for who, (first, _) in answers.items():
            impu, n1 = "sip:%s@ims.lab" % who, first[1]
            keys = netlab.netns("ims-redis", "redis-cli", "-h", REDIS, "--scan", "--pattern", "*%s*" % who).stdout.split()
            check("%s:reg:%s" % (n1, impu) in keys, "%s: no record %s:reg:%s in Redis; keys %r" % (who, n1, impu, keys))
        print("registered: %r (both HSS agree; records in Redis under the S-CSCF's name)" % served)

        for nf in sorted(set(served.values())):
            kill_and_wait_restart(running, nf)
            loaded = metric(nf, "scscf_store_loaded_total")
            want = sum(1 for s in served.values() if s == nf)
            check(loaded >= want, "%s reloaded %s registrations from Redis, expected at least %d" % (nf, loaded, want))

        # No REGISTER from here on: alice's route set and bob's contact are those of before the kill.
        call_without_registering(ues, alice, bob)
        for who in ("alice", "bob"):
            states, _ = registration("hss2", who)
            check(states.get("sip:%s@ims.lab" % who) == "registered", "%s no longer registered: %r" % (who, states))
        print("alice called bob after SIGKILL and restart of %s, without registering again" %
              " and ".join(sorted(set(served.values()))))
        ok = True
    finally:
        ues.stop()
        if not ok:
            running.dump()
        rc = running.stop()
    out = running.output()
    check(re.search(r"exit codes: pcscf=0 scscf=0 scscf2=0 icscf=0 hss=0 hss2=0 rtpengine=0 redis=0 postgres=0", out),
          "an NF, Redis or PostgreSQL did not exit 0 on SIGTERM:\n%s" % lab.tail(out, 10))
    check(rc == 143, "deploy/lab up exited %s on SIGTERM (expected 143)" % rc)


def scscf_has_store():
    r = subprocess.run([os.path.join(BUILD_DIR, "scscf", "scscf"), "--config-reference"], capture_output=True,
                       text=True, timeout=30)
    return "`store.backend`" in r.stdout


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root (ip netns add); CI runs as root")
        sys.exit(77)
    for b in ("hss", "icscf", "scscf", "pcscf"):
        if not os.access(os.path.join(BUILD_DIR, b, b), os.X_OK):
            raise SystemExit("no %s binary in %s (build first)" % (b, BUILD_DIR))
    if not scscf_has_store():
        print("SKIP: this S-CSCF has no state store (scscf --config-reference has no store.backend): the HA lab "
              "needs registrations in Redis (README \"State store\")")
        sys.exit(77)
    harness.main()
