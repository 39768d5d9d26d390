"""System tests of authentication abuse at the S-CSCF and the P-CSCF: the whole core on loopback
(lab.py), REGISTERs made by hand (lab.RawUe: digest and IMS AKA answers computed here, so each
test sets nonce, nc, username and To as an attacker would).

What is asserted, per behaviour (scscf_register_auth.c / pcscf_register.c document the choices):
- a replayed Authorization (same nonce, same nc) after its success -> 401 with a fresh nonce,
  never 200 (the nonce is consumed by the REGISTER it authenticated; RFC 7616 §3.4, TS 33.203);
- nc 00000000 (not above the last) -> 401 with a fresh nonce; nc going backwards on a used nonce
  -> 401 with a fresh nonce; a malformed nc -> 400; none of these counts as a wrong password;
- brute force on one IMPI: scscf.auth_max_failures wrong answers within auth_failure_window lock
  it: 403 + Retry-After without a challenge or MAR, a warning naming the IMPI and the UE address,
  scscf_auth_lockouts_total / scscf_register_locked_total; another user registers meanwhile;
  the lock ends after scscf.auth_lockout seconds;
- brute force from one address: pcscf.auth_max_failures 403s to REGISTERs from one UE IP block
  that address at the P-CSCF (403 from the P-CSCF itself, nothing reaches the I-CSCF), logged and
  counted; another address registers meanwhile; the block ends after pcscf.auth_lockout;
- your own IMPI with someone else's IMPU -> 403 (HSS 5002 IDENTITIES_DONT_MATCH, by UAR at the
  I-CSCF, and by MAR when the REGISTER goes straight to the S-CSCF), never a challenge.
"""

import re
import time

import lab
from lab import check, first_line, metric, status_of, wait_for


def register_ok(ue, **kw):
    """REGISTER -> 401 -> answer -> 200; returns (challenge, authorization, 200)."""
    ch = ue.register()
    check(status_of(ch) == 401, "%s: first REGISTER: 401 expected, got %s" % (ue.impi, first_line(ch)))
    auth = ue.answer(ch, **kw)
    ok = ue.register(auth)
    check(status_of(ok) == 200, "%s: answered REGISTER: 200 expected, got %s\n%s" %
          (ue.impi, first_line(ok), ok.text if ok is not None else ""))
    return ch, auth, ok


def nonce_of(resp):
    return lab.RawUe.challenge(resp).get("nonce")


def mars(core):
    return metric(core.scscf, "scscf_cx_requests_total", cmd="MAR")


# --- replayed nonces, nonce-counts -------------------------------------------------------------------

def test_replayed_nonce_and_nc(tmp):
    with lab.Lab(tmp) as core:
        for name, password in (("alice", None), ("bob", "bobpass")):   # alice: AKA, bob: digest
            with lab.RawUe(core, name, password=password) as ue:
                ch, auth, ok = register_ok(ue)
                old = nonce_of(ch)
                # The same Authorization again (same nonce, same nc): the nonce was consumed.
                again = ue.register(auth)
                check(status_of(again) == 401, "%s: replayed Authorization: 401 expected, got %s" %
                      (name, first_line(again)))
                fresh = nonce_of(again)
                check(fresh and fresh != old, "%s: the replay must get a fresh nonce (%s / %s)" % (name, old, fresh))
                # nc going backwards on the used nonce (nc 1 after a success with nc 2).
                ch2 = again
                ok2 = ue.register(ue.answer(ch2, nc=2))
                check(status_of(ok2) == 200, "%s: nc=2: 200 expected, got %s" % (name, first_line(ok2)))
                back = ue.register(ue.answer(ch2, nc=1))
                check(status_of(back) == 401 and nonce_of(back) not in (None, nonce_of(ch2)),
                      "%s: nc going backwards: 401 with a fresh nonce expected, got %s" % (name, first_line(back)))
                # nc 00000000 on a fresh nonce (not above the last, 0): a replay, new challenge.
                zero = ue.register(ue.answer(back, nc=0))
                check(status_of(zero) == 401 and nonce_of(zero) not in (None, nonce_of(back)),
                      "%s: nc=00000000: 401 with a fresh nonce expected, got %s" % (name, first_line(zero)))
                # A malformed nc: 400.
                bad = ue.register(ue.answer(zero).replace("nc=00000001", "nc=zz"))
                check(status_of(bad) == 400, "%s: nc=zz: 400 expected, got %s" % (name, first_line(bad)))
                # Still registered, and the right answer to a fresh challenge still works.
                register_ok(ue)
        check(metric(core.scscf, "scscf_auth_failures_total") == 0,
              "replays are not wrong passwords: scscf_auth_failures_total = %s" %
              metric(core.scscf, "scscf_auth_failures_total"))
        check(metric(core.scscf, "scscf_auth_lockouts_total") == 0, "no lockout")
        check(set(core.reg_states("alice").values()) == {"registered"}, core.reg_states("alice"))
        check(set(core.reg_states("bob").values()) == {"registered"}, core.reg_states("bob"))


# --- brute force on one private identity (S-CSCF) -------------------------------------------------------

def test_brute_force_impi_lockout(tmp):
    lockout = 4
    over = {"scscf": {"scscf": {"auth_max_failures": 3, "auth_failure_window": 60, "auth_lockout": lockout}},
            "pcscf": {"pcscf": {"auth_max_failures": 0}}}
    with lab.Lab(tmp, overrides=over) as core:
        with lab.RawUe(core, "bob", password="bobpass") as bob:
            for i in range(3):
                ch = bob.register()
                check(status_of(ch) == 401, "attempt %d: 401 expected, got %s" % (i + 1, first_line(ch)))
                no = bob.register(bob.answer(ch, password="guess%d" % i))
                check(status_of(no) == 403, "wrong password %d: 403 expected, got %s" % (i + 1, first_line(no)))
            check(metric(core.scscf, "scscf_auth_lockouts_total") == 1,
                  "scscf_auth_lockouts_total after 3 failures: %s" % metric(core.scscf, "scscf_auth_lockouts_total"))
            log = core.scscf.log()
            src = "UDP 127.0.0.1:%d" % bob.port
            check(re.search(r"bob@ims\.lab locked for %d s after 3 failed authentications.*%s" % (lockout, src), log),
                  "the S-CSCF must log the lock naming the IMPI and the UE address (%s):\n%s" %
                  (src, lab.tail(log, 15)))
            check("via <sip:term@127.0.0.1:%d>" % core.pcscf_sip in log, "the log names the P-CSCF (Path)")
            # Locked: 403 with Retry-After, no challenge, no MAR -- even for the right password.
            before = mars(core)
            locked = bob.register()
            check(status_of(locked) == 403 and "Too Many Failed Authentications" in locked.first,
                  "locked IMPI: 403 expected, got %s" % first_line(locked))
            ra = int(locked.get("Retry-After", "0").split()[0] or 0)
            check(0 < ra <= lockout, "Retry-After within the lockout: %r" % locked.get("Retry-After"))
            stale = bob.register(bob.answer(ch, password="bobpass"))
            check(status_of(stale) == 403, "locked IMPI, right password: 403 expected, got %s" % first_line(stale))
            check(mars(core) == before, "no MAR for a locked IMPI (%s -> %s)" % (before, mars(core)))
            check(metric(core.scscf, "scscf_register_locked_total") >= 2, "scscf_register_locked_total")
            # Another user registers meanwhile.
            with lab.RawUe(core, "alice") as alice:
                register_ok(alice)
            check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered", core.reg_states("alice"))
            # The lock ends.
            time.sleep(lockout + 1.2)
            register_ok(bob)
            check(core.reg_states("bob")["sip:bob@ims.lab"] == "registered", core.reg_states("bob"))
            check(metric(core.scscf, "scscf_auth_failures_total") == 3, "three failures counted")


# --- brute force from one address (P-CSCF) ----------------------------------------------------------------

def test_brute_force_source_blocked_at_pcscf(tmp):
    lockout = 4
    over = {"scscf": {"scscf": {"auth_max_failures": 0}},
            "pcscf": {"pcscf": {"auth_max_failures": 3, "auth_failure_window": 60, "auth_lockout": lockout}}}
    with lab.Lab(tmp, overrides=over) as core:
        attacker_host = "127.0.0.2"
        with lab.RawUe(core, "bob", password="bobpass", host=attacker_host) as bob:
            # Two wrong passwords for bob and one unknown user (403 from the I-CSCF) from one address.
            for i in range(2):
                ch = bob.register()
                check(status_of(ch) == 401, "401 expected, got %s" % first_line(ch))
                no = bob.register(bob.answer(ch, password="guess%d" % i))
                check(status_of(no) == 403, "wrong password: 403 expected, got %s" % first_line(no))
            with lab.RawUe(core, "nobody", password="x", host=attacker_host) as nobody:
                r = nobody.register()
                check(status_of(r) == 403, "unknown user: 403 expected, got %s" % first_line(r))
            check(metric(core.pcscf, "pcscf_auth_lockouts_total") == 1, "pcscf_auth_lockouts_total")
            log = core.pcscf.log()
            check(re.search(r"UE address %s blocked for %d s: 3 failed REGISTERs" % (re.escape(attacker_host), lockout),
                            log), "the P-CSCF must log the block naming the address:\n" + lab.tail(log, 10))
            # Blocked: the P-CSCF answers itself, the I-CSCF sees nothing, for any identity.
            icscf_before = metric(core.icscf, "icscf_register_total")
            with lab.RawUe(core, "alice", host=attacker_host) as alice_there:
                r = alice_there.register()
                check(status_of(r) == 403 and "Too Many Failed Registrations" in r.first,
                      "blocked address: 403 from the P-CSCF expected, got %s" % first_line(r))
                check(0 < int(r.get("Retry-After", "0").split()[0] or 0) <= lockout, "Retry-After: %r" %
                      r.get("Retry-After"))
            check(metric(core.icscf, "icscf_register_total") == icscf_before,
                  "nothing reaches the I-CSCF from a blocked address")
            check(metric(core.pcscf, "pcscf_register_blocked_total") == 1, "pcscf_register_blocked_total")
            # Another address registers meanwhile (the S-CSCF's per-IMPI limit is off here).
            with lab.RawUe(core, "bob", password="bobpass", host="127.0.0.3") as bob_elsewhere:
                register_ok(bob_elsewhere)
            # The block ends.
            time.sleep(lockout + 1.2)
            with lab.RawUe(core, "alice", host=attacker_host) as alice_there:
                register_ok(alice_there)
            check(core.reg_states("alice")["sip:alice@ims.lab"] == "registered", core.reg_states("alice"))


def test_defaults_tolerate_a_few_failures(tmp):
    """With the default limits (S-CSCF 5 per IMPI, P-CSCF 20 per address, 60 s) a user who
    mistypes a few times still registers."""
    with lab.Lab(tmp) as core:
        with lab.RawUe(core, "bob", password="bobpass") as bob:
            for i in range(4):
                ch = bob.register()
                no = bob.register(bob.answer(ch, password="typo%d" % i))
                check(status_of(no) == 403, "wrong password: 403 expected, got %s" % first_line(no))
            register_ok(bob)
        check(metric(core.scscf, "scscf_auth_lockouts_total") == 0, "no lockout under the default limit")
        check(metric(core.pcscf, "pcscf_auth_lockouts_total") == 0, "no block under the default limit")


# --- someone else's public identity ----------------------------------------------------------------------

def test_other_users_impu_with_own_impi(tmp):
    with lab.Lab(tmp) as core:
        # Through the P-CSCF: the I-CSCF's UAR gets 5002 IDENTITIES_DONT_MATCH -> 403.
        with lab.RawUe(core, "bob", impi="alice@ims.lab") as ue:
            r = ue.register()
            check(status_of(r) == 403, "alice's IMPI with bob's IMPU (UAR): 403 expected, got %s" % first_line(r))
        check(metric(core.icscf, "icscf_cx_requests_total", cmd="UAR") >= 1, "the I-CSCF asked the HSS")
        # Straight to the S-CSCF (no I-CSCF): its MAR gets 5002 -> 403, never a challenge.
        with lab.RawUe(core, "bob", impi="alice@ims.lab", port=core.scscf_sip) as ue:
            r = ue.register()
            check(status_of(r) == 403, "alice's IMPI with bob's IMPU (MAR): 403 expected, got %s" % first_line(r))
        check(metric(core.scscf, "scscf_cx_requests_total", cmd="MAR") >= 1, "the S-CSCF asked the HSS")
        check("IDENTITIES_DONT_MATCH" in core.scscf.log() or "5002" in core.scscf.log(),
              "the S-CSCF log names the HSS's answer:\n" + lab.tail(core.scscf.log(), 10))
        # An answered challenge of alice's own with bob's IMPU in To: UAR first -> 403.
        with lab.RawUe(core, "alice") as alice:
            ch = alice.register()
            check(status_of(ch) == 401, first_line(ch))
            auth = alice.answer(ch)
            alice.user = "bob"
            r = alice.register(auth)
            check(status_of(r) == 403, "alice's answer with To bob: 403 expected, got %s" % first_line(r))
        check(set(core.reg_states("bob").values()) == {"not_registered"}, core.reg_states("bob"))
        check(set(core.reg_states("alice").values()) == {"not_registered"}, core.reg_states("alice"))
        wait_for(lambda: metric(core.scscf, "scscf_registrations") == 0, 2, what="nothing registered")


if __name__ == "__main__":
    lab.main()
