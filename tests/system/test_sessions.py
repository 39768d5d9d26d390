"""System tests of sessions through the four real executables (hss, scscf, icscf, pcscf as
processes, lab.py): two AKA-registered SIPp UEs call each other through P-CSCF -> S-CSCF
(originating) -> S-CSCF (terminating) -> P-CSCF.

Each UE first registers with register_aka.xml from its own port (Lab.sipp_aka, which works
around SIPp 3.6.1's AKA quirks); its call scenario then runs from the same address and port
(the registered contact), the caller with Route = the P-CSCF + the Service-Route of its 200
(-key route), the callee as a SIPp UAS started before the caller.

What is asserted: SIPp's exit codes (flows and regexp checks of the scenarios), headers of the
messages exchanged (P-Asserted-Identity at the callee, Record-Route of the P-CSCF and S-CSCF
on the caller's side), the final code of rejected INVITEs, the reference AS (ref_as.py) seeing
the INVITE with the S-CSCF's ODI route, a dead AS (ICMP unreachable) and a silent one
(scscf.as_timeout_ms) under both DefaultHandling values, the S-CSCF's session counters
(scscf_sessions_total, scscf_as_requests_total), the I-CSCF's LIRs, and, after every test
(lab.Lab), no SIP transaction left in any CSCF; here also no dialog/session left in any CSCF's
session gauges, if they publish one (none does yet: the check is ready for it).

References: TS 24.229 5.1.2A, 5.1.3 (UE), 5.2.6 (P-CSCF), 5.3.2 (I-CSCF), 5.4.3 (S-CSCF), 5.7.4
(AS as proxy); TS 23.218 6.4 (iFC, ODI), 6.6 (default handling); RFC 3261 (9, 12-17), RFC 3262
(PRACK), RFC 3311 (UPDATE), RFC 3428 (MESSAGE).
"""

import copy
import re
import socket
import time

import lab
import ref_as
from lab import check, wait_for


# --- subscribers and helpers --------------------------------------------------------------------

def subscribers(core_as_uri, alice_ifc=None):
    """lab.default_subscribers with bob on AKA by default (two AKA UEs), and alice's service
    profile carrying alice_ifc (a list of iFC) when given."""
    subs = copy.deepcopy(lab.default_subscribers(core_as_uri))
    for s in subs["subscribers"]:
        if s["id"] == "bob":
            s["impis"][0]["default_scheme"] = "aka"
        if s["id"] == "alice" and alice_ifc is not None:
            s["service_profiles"] = [{"name": "default", "ifc": alice_ifc}]
    return subs


def ifc_invite_originating(server_name, default_handling="session_continued"):
    """Originating INVITEs to server_name (TS 29.228 Annex B: CNF, (method) AND (session case 0))."""
    return [{"priority": 1,
             "trigger_point": {"cnf": True, "spt": [{"group": 0, "method": "INVITE"},
                                                     {"group": 1, "session_case": 0}]},
             "application_server": {"server_name": server_name, "default_handling": default_handling}}]


def passed(run):
    check(run.rc == 0, run.failure())
    return run


class Ua:
    """A registered SIPp UE: its Ue, port and the route set for its initial requests."""

    def __init__(self, core, name):
        self.ue = core.ue(name)
        self.port = lab.free_port()
        self.call_id = "reg-%s-%d@test" % (name, self.port)
        run = passed(core.sipp_aka("register_aka.xml", self.ue, local_port=self.port, call_id=self.call_id,
                                   label="register-" + name))
        ok = run.received(status=200, cseq_method="REGISTER")[-1]
        self.route = ", ".join("<%s>" % u for v in ok.all("Service-Route") for u in re.findall(r"<([^>]+)>", v))
        check(self.route, "no Service-Route in the 200:\n" + ok.text)
        self.next_cseq = int(run.sent("REGISTER")[-1].get("CSeq").split()[0]) + 1


def callee(core, ua, scenario):
    """A SIPp UAS on the callee's registered port (background)."""
    run = core.sipp(scenario, ua.ue, local_port=ua.port, wait=False, recv_timeout=15000,
                    label="callee-" + scenario.split(".")[0])
    time.sleep(0.3)    # SIPp bound its port
    return run


def call(core, caller, scenario, to="bob", route=None, **kw):
    keys = {"route": caller.route if route is None else route, "callee": to}
    return core.sipp(scenario, caller.ue, local_port=caller.port, keys=keys,
                     label="caller-" + scenario.split(".")[0], **kw)


def wait_uas(run, timeout=20):
    run.wait(timeout)
    return passed(run)


def final_code(run):
    finals = [m.status for m in run.received() if m.status and m.status >= 200 and m.cseq_method() == "INVITE"]
    return finals[-1] if finals else None


GAUGE = re.compile(r"(dialogs?|sessions?|calls?|forks?|pending)(_active)?$")


def check_no_sessions(core):
    """Every CSCF gauge that counts dialogs, sessions, forks or pending work (icscf_pending: LIRs
    in flight) is back to 0; a gauge the S-CSCF adds later under such a name (e.g.
    scscf_sessions_active) is checked without a change here. The transactions are checked by
    lab.Lab on exit."""
    for nf in (core.pcscf, core.icscf, core.scscf):
        def leftovers():
            return {n: v for (n, _), v in nf.metrics().items()
                    if GAUGE.search(n) and not n.endswith(("_total", "_sum", "_count", "_bucket")) and v}
        try:
            wait_for(lambda: not leftovers(), 5, what="%s session gauges at 0" % nf.name)
        except lab.TestFailure:
            raise lab.TestFailure("%s still counts sessions/dialogs after the test: %r" % (nf.name, leftovers()))


def count(nf, name, **labels):
    return nf.metric(name, **labels) or 0


def check_counted(nf, name, **labels):
    """A counter of the S-CSCF's session routing (README: Metrics) moved."""
    check(count(nf, name, **labels) >= 1, "%s %s{%s} not counted; its series: %r" % (
        nf.name, name, ",".join("%s=%s" % kv for kv in labels.items()),
        {tuple(sorted(ls)): v for (n, ls), v in nf.metrics().items() if n == name}))


def check_call_headers(core, caller_run, callee_run, caller="alice"):
    inv = callee_run.received(method="INVITE")
    check(inv, "the callee got no INVITE:\n" + callee_run.failure())
    pai = " ".join(inv[0].all("P-Asserted-Identity"))
    check("sip:%s@ims.lab" % caller in pai or "tel:" in pai,
          "the callee's INVITE must assert the caller (TS 24.229 5.2.6.3.3): %r" % pai)
    ok = [m for m in caller_run.received(status=200) if m.cseq_method() == "INVITE"]
    rr = " ".join(ok[0].all("Record-Route")) if ok else ""
    # Each CSCF Record-Routes with the address it advertises (sip.advertise: by default the
    # address it listens on), which the UEs can reach without the lab's names.
    check("sip:%s:%d;lr" % (core.pcscf_host, core.pcscf_sip) in rr, "the P-CSCF must Record-Route (5.2.6.3): %r" % rr)
    check("sip:%s:%d;lr" % (core.scscf_host, core.scscf_sip) in rr, "the S-CSCF must Record-Route (5.4.3.2): %r" % rr)


# --- the tests --------------------------------------------------------------------------------

def test_call_reinvite_bye(tmp):
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")
        b = callee(core, bob, "callee_answer.xml")
        a = passed(call(core, alice, "call_uac.xml"))
        wait_uas(b)
        check_call_headers(core, a, b)
        check(a.received(status=180), "a 180 reached the caller:\n" + a.failure())
        check(len(b.received(method="INVITE")) == 2 and b.received(method="BYE"), b.failure())
        check_counted(core.scscf, "scscf_sessions_total", case="orig", result="200")
        check_counted(core.scscf, "scscf_sessions_total", case="term", result="200")
        check_no_sessions(core)
        # One info line for the set-up and one for the tear-down (the call passes the S-CSCF once
        # as a whole: bob is registered here).
        log = core.scscf.log()
        setup = re.findall(r"INFO  scscf\.call session sip:alice@ims\.lab -> sip:bob@ims\.lab: 200 OK after \d+ ms", log)
        check(len(setup) == 1, "one set-up line at the S-CSCF: %r\n%s" % (setup, lab.tail(log, 20)))
        bye = re.findall(r"INFO  scscf\.call session sip:alice@ims\.lab -> sip:bob@ims\.lab: ended by BYE from "
                         r"sip:alice@ims\.lab after \d+\.\d s", log)
        check(len(bye) == 1, "one tear-down line at the S-CSCF: %r\n%s" % (bye, lab.tail(log, 20)))
        warns = lab.warnings(core.scscf) + lab.warnings(core.pcscf)
        check(not warns, "no WARN on a normal call: %r" % warns)


def test_callee_hangs_up(tmp):
    """BYE from the callee: an in-dialog request from the core to the caller's P-CSCF, which
    delivers it to the caller's registered contact (TS 24.229 5.2.7)."""
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")
        b = callee(core, bob, "callee_answer_bye.xml")
        a = passed(call(core, alice, "call_uac_callee_bye.xml"))
        wait_uas(b)
        bye = a.received(method="BYE")
        check(bye and bye[0].first.startswith("BYE sip:alice@127.0.0.1:%d" % alice.port),
              "the BYE reached the caller's contact: %r" % (bye[0].first if bye else None))
        check_no_sessions(core)


def test_forking_to_two_contacts(tmp):
    """bob registered from two contacts: the S-CSCF forks the INVITE to both (TS 24.229
    5.4.3.3, RFC 3261 16.7); one answers, the other rings and gets a CANCEL (16.7 step 10)."""
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice, bob1, bob2 = Ua(core, "alice"), Ua(core, "bob"), Ua(core, "bob")
        check(count(core.scscf, "scscf_contacts") >= 2, "two contacts for bob at the S-CSCF")
        answering = callee(core, bob1, "callee_answer.xml")
        ringing = core.sipp("callee_cancel.xml", bob2.ue, local_port=bob2.port, wait=False, recv_timeout=15000,
                            label="callee-ringing")
        time.sleep(0.3)
        a = passed(call(core, alice, "call_uac.xml"))
        wait_uas(answering)
        wait_uas(ringing)
        check(ringing.received(method="CANCEL"), "the other branch was CANCELled:\n" + ringing.failure())
        check_call_headers(core, a, answering)
        check_no_sessions(core)


def test_cancel_before_answer(tmp):
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")
        b = callee(core, bob, "callee_cancel.xml")
        a = passed(call(core, alice, "call_cancel.xml"))
        wait_uas(b)
        check(final_code(a) == 487, "487 to the cancelled INVITE:\n" + a.failure())
        check(b.received(method="CANCEL"), "the CANCEL reached the callee")
        check_no_sessions(core)


def test_prack_update(tmp):
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")
        b = callee(core, bob, "callee_prack.xml")
        a = passed(call(core, alice, "call_prack.xml"))
        wait_uas(b)
        check(b.received(method="PRACK") and b.received(method="UPDATE"), b.failure())
        check_no_sessions(core)


def test_message(tmp):
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")
        b = callee(core, bob, "message_uas.xml")
        passed(call(core, alice, "message_uac.xml"))
        wait_uas(b)
        m = b.received(method="MESSAGE")[0]
        check("hello from alice" in m.body, "the text arrived: %r" % m.body)
        check_no_sessions(core)


def test_rejected_invites(tmp):
    """403 caller not registered (P-CSCF), 404 unknown callee (LIR 5001), 480 callee provisioned
    but never registered and without unregistered services (LIR 5003), 480 callee registered then
    de-registered."""
    core = lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1"), start=False)
    # The originating S-CSCF asks the I-CSCF (LIR) for home users it does not serve (TS 24.229
    # 5.4.3.2: the request goes to the I-CSCF of the terminating home network).
    core.scscf.config["scscf"]["icscf"] = core.icscf_uri
    core.scscf.write_config()
    with core.start():
        # Caller not registered: straight to the P-CSCF, no Service-Route.
        carol = core.ue("carol")
        run = core.sipp("call_rejected.xml", carol, local_port=lab.free_port(), keys={"route": "", "callee": "bob"},
                        label="unregistered-caller")
        check(run.rc == 0 and final_code(run) == 403, "403 for an unregistered caller:\n" + run.failure())

        alice = Ua(core, "alice")
        for callee_user, code, what in (("nobody", 404, "unknown callee"),
                                         ("dave", 480, "callee never registered")):
            run = call(core, alice, "call_rejected.xml", to=callee_user, route=", " + alice.route)
            check(run.rc == 0 and final_code(run) == code, "%d for the %s:\n%s" % (code, what, run.failure()))

        bob = Ua(core, "bob")
        passed(core.sipp_aka("deregister.xml", bob.ue, local_port=bob.port, call_id=bob.call_id,
                             base_cseq=bob.next_cseq, label="deregister-bob"))
        core.wait_reg_state("bob", "sip:bob@ims.lab", "not_registered", 5)
        run = call(core, alice, "call_rejected.xml", to="bob", route=", " + alice.route)
        check(run.rc == 0 and final_code(run) == 480, "480 for a de-registered callee:\n" + run.failure())
        log = core.scscf.log()
        for callee_user, code in (("nobody", 404), ("dave", 480), ("bob", 480)):
            check(re.search(r"scscf\.call session sip:alice@ims\.lab -> sip:%s@ims\.lab: failed %d " % (callee_user, code), log),
                  "the S-CSCF logs the failed session to %s (%d):\n%s" % (callee_user, code, lab.tail(log, 20)))
        lirs = {tuple(sorted(ls)): v for (n, ls), v in core.icscf.metrics().items() if n == "icscf_cx_requests_total"}
        check(count(core.icscf, "icscf_cx_requests_total", cmd="LIR") >= 3,
              "the I-CSCF answered the three INVITEs after an LIR each: %r" % lirs)
        check_no_sessions(core)


def test_icscf_lir_for_invites(tmp):
    """The I-CSCF on its own (TS 24.229 5.3.2.1, TS 29.228 6.1.4): an INVITE to a home user,
    as an originating S-CSCF (or another network) hands it over, gets an LIR: 5001 -> 404,
    5003 (provisioned, not registered, no unregistered services) -> 480."""
    with lab.Lab(tmp, subscribers=subscribers("sip:as.ims.lab:1")) as core:
        alice = core.ue("alice")
        for to, code in (("nobody", 404), ("dave", 480)):
            run = core.sipp("call_rejected.xml", alice, local_port=lab.free_port(), remote="127.0.0.1:%d" % core.icscf_sip,
                            keys={"route": "", "callee": to}, label="icscf-" + to)
            check(run.rc == 0 and final_code(run) == code, "%d from the I-CSCF for %s:\n%s" % (code, to, run.failure()))
        check((core.icscf.metric("icscf_cx_requests_total", cmd="LIR") or 0) >= 2,
              "two LIRs: %r" % [n for n in core.icscf.metric_names() if "cx" in n])
        check_no_sessions(core)


def test_ifc_as_returns_request(tmp):
    """iFC (INVITE, originating) to the reference AS: the S-CSCF sends the INVITE to the AS with
    Route = the AS, then its own URI with an ODI; the AS proxies it back; the call completes."""
    as_port = lab.free_port()
    as_uri = "sip:as.ims.lab:%d" % as_port
    with lab.Lab(tmp, subscribers=subscribers(as_uri, ifc_invite_originating(as_uri))) as core:
        app = ref_as.RefAs(as_port, hosts={"as.ims.lab": "127.0.0.1", "scscf.ims.lab": "127.0.0.1"})
        try:
            alice, bob = Ua(core, "alice"), Ua(core, "bob")
            b = callee(core, bob, "callee_answer.xml")
            a = passed(call(core, alice, "call_uac.xml"))
            wait_uas(b)
            invites = [r for r in app.requests if r[0] == "INVITE"]
            check(invites, "the AS got no INVITE (requests: %r, errors: %r)" % (app.requests, app.errors))
            routes = invites[0][2]
            check(len(routes) >= 2 and ":%d" % as_port in routes[0] and
                  "127.0.0.1:%d" % core.scscf_sip in routes[1],
                  "Route to the AS then back to the S-CSCF (with its ODI) expected: %r" % routes)
            check(not app.errors, "AS errors: %r" % app.errors)
            check(len(invites) == 1 or all(r[1] == invites[0][1] for r in invites),
                  "only the initial INVITE goes to the AS (no Record-Route by the AS)")
            check_call_headers(core, a, b)
            check_counted(core.scscf, "scscf_as_requests_total", result="sent")
            check_counted(core.scscf, "scscf_as_requests_total", result="returned")
            check_no_sessions(core)
        finally:
            app.stop()


def dead_as_case(tmp, default_handling, silent=False):
    """A dead AS: nothing listens on its port (ICMP port unreachable: the S-CSCF learns it at
    once), or, silent, a socket that never answers (scscf.as_timeout_ms, lowered to 1 s here)."""
    dead_port = lab.free_port()      # nothing listens there
    dead = "sip:as.ims.lab:%d" % dead_port
    hole = None
    if silent:
        hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        hole.bind(("127.0.0.1", dead_port))
    overrides = {"scscf": {"scscf": {"as_timeout_ms": 1000}}} if silent else None
    try:
        _dead_as_call(tmp, dead, default_handling, overrides)
    finally:
        if hole:
            hole.close()


def _dead_as_call(tmp, dead, default_handling, overrides):
    with lab.Lab(tmp, subscribers=subscribers(dead, ifc_invite_originating(dead, default_handling)),
                 overrides=overrides) as core:
        alice, bob = Ua(core, "alice"), Ua(core, "bob")
        if default_handling == "session_continued":
            b = callee(core, bob, "callee_answer.xml")
            a = passed(call(core, alice, "call_uac.xml", timeout=60))
            wait_uas(b)
            check_call_headers(core, a, b)
        else:
            a = call(core, alice, "call_rejected.xml", route=", " + alice.route, timeout=60,
                     recv_timeout=45000)
            code = final_code(a)
            check(a.rc == 0 and code and 400 <= code < 600,
                  "SESSION_TERMINATED: the caller gets an error (4xx/5xx):\n" + a.failure())
        check_counted(core.scscf, "scscf_as_requests_total",
                      result="continued" if default_handling == "session_continued" else "terminated")
        check_no_sessions(core)


def test_dead_as_session_continued(tmp):
    dead_as_case(tmp, "session_continued")


def test_dead_as_session_terminated(tmp):
    dead_as_case(tmp, "session_terminated")


def test_silent_as_session_continued(tmp):
    dead_as_case(tmp, "session_continued", silent=True)


def test_silent_as_session_terminated(tmp):
    dead_as_case(tmp, "session_terminated", silent=True)


if __name__ == "__main__":
    lab.main()
