"""System test of identity comparison across the core (common/ims_identity): a public identity's
scheme and host are case-insensitive and its user part is not (RFC 3261 19.1.4), the same way at
the P-CSCF, the I-CSCF, the S-CSCF and the HSS.

- bob registers as sip:bob@IMS.LAB (host in capitals): he is bob, registered once (one P-CSCF
  binding, the HSS's sip:bob@ims.lab registered, P-Associated-URI naming the canonical identity);
  re-registering as sip:bob@ims.lab refreshes the same binding and contact.
- sip:BOB@ims.lab is another identity, which the HSS does not know: 403 without a challenge
  through the P-CSCF (the I-CSCF's UAR) and when sent to the S-CSCF itself (its MAR), and the HSS
  API finds sip:bob@IMS.LAB but not sip:BOB@ims.lab. (Before, the P-CSCF lower-cased the whole
  identity, so there sip:BOB@ and sip:bob@ were one binding and at the S-CSCF two.)

- bob's UE asking (P-Preferred-Identity) to be sip:BOB@ims.lab is asserted as its registered
  identity sip:bob@ims.lab, not as the other one (the old P-CSCF compared case-insensitively and
  asserted sip:BOB@ims.lab).

REGISTERs are made by hand (lab.RawUe: SIP digest computed here), so that To, Request-URI and
the digest username are each what the test says.
"""

import re

import lab
from lab import check, first_line, metric, status_of
from test_trust import Endpoint, register as register_sipp, request


def register(ue, what):
    """A digest registration: REGISTER, 401, REGISTER with the answer; returns the final response."""
    ch = ue.register()
    check(status_of(ch) == 401, "%s: a 401 challenge expected, got %s" % (what, first_line(ch)))
    return ue.register(ue.answer(ch))


def identity_owner(core, identity):
    status, body = core.api("GET", "/api/v1/identities/%s" % identity)
    return body.get("subscriber") if status == 200 and isinstance(body, dict) else None


def test_host_case_same_identity_user_case_another(tmp):
    with lab.Lab(tmp) as core:
        alice_port = register_sipp(core, "alice")   # the receiver of bob's MESSAGE below
        # The HSS: lookups normalise the host, never the user part.
        check(identity_owner(core, "sip:bob@IMS.LAB") == "bob", "the HSS must find sip:bob@IMS.LAB")
        check(identity_owner(core, "SIP:bob@ims.lab;user=phone") == "bob", "scheme case and parameters")
        check(identity_owner(core, "sip:BOB@ims.lab") is None, "sip:BOB@ims.lab is not bob's identity")

        with lab.RawUe(core, "bob", impi="bob@ims.lab", password="bobpass", domain="IMS.LAB") as ue:
            ok = register(ue, "sip:bob@IMS.LAB")
            check(status_of(ok) == 200, "sip:bob@IMS.LAB must register as bob: %s" % first_line(ok))
            pau = re.findall(r"<([^>]+)>", ",".join(ok.all("P-Associated-URI")))
            check(pau and pau[0] == "sip:bob@ims.lab",
                  "the registered identity, canonical, comes first in P-Associated-URI: %r" % pau)
            check(core.reg_states("bob").get("sip:bob@ims.lab") == "registered", core.reg_states("bob"))
            check(metric(core.pcscf, "pcscf_bindings") == 2, "alice's and bob's P-CSCF bindings")
            check(metric(core.scscf, "scscf_contacts") == 2, "alice's and bob's S-CSCF contacts")

            # the same UE again with the host in lower case: the same identity, binding and contact
            ue.domain = "ims.lab"
            again = register(ue, "sip:bob@ims.lab")
            check(status_of(again) == 200, "re-registration as sip:bob@ims.lab: %s" % first_line(again))
            check(metric(core.pcscf, "pcscf_bindings") == 2,
                  "still one P-CSCF binding for bob: %s" % metric(core.pcscf, "pcscf_bindings"))
            check(metric(core.scscf, "scscf_contacts") == 2,
                  "still one S-CSCF contact for bob: %s" % metric(core.scscf, "scscf_contacts"))

            # bob prefers to be sip:BOB@ims.lab: not his identity, so the P-CSCF asserts his own
            with Endpoint(port=alice_port) as alice:
                msg = request("MESSAGE", "sip:alice@ims.lab", ue, [
                    ("Route", "<sip:orig@127.0.0.1:%d;lr>" % core.scscf_sip),
                    ("From", "<sip:BOB@ims.lab>;tag=idcase"), ("To", "<sip:alice@ims.lab>"),
                    ("Call-ID", "idcase-%d@127.0.0.1" % ue.port), ("CSeq", "1 MESSAGE"),
                    ("P-Preferred-Identity", "<sip:BOB@ims.lab>"), ("Content-Type", "text/plain")], "hi")
                ue.udp.sock.sendto(msg.encode(), ("127.0.0.1", core.pcscf_sip))
                got = [m for m in alice.collect(3.0) if m.method == "MESSAGE"]
                check(got, "alice received no MESSAGE from bob")
                pai = got[0].get("P-Asserted-Identity", "")
                check("sip:bob@ims.lab" in pai and "BOB" not in pai,
                      "the P-CSCF must assert bob's registered identity, not sip:BOB@ims.lab: %r" % pai)

        challenged = metric(core.scscf, "scscf_register_total", result="401")
        # Another user part is another identity, unknown to the HSS: refused, never challenged.
        with lab.RawUe(core, "BOB", impi="bob@ims.lab", password="bobpass") as other:
            r = other.register()
            check(status_of(r) == 403, "sip:BOB@ims.lab through the P-CSCF: 403 expected, got %s" % first_line(r))
        check(metric(core.scscf, "scscf_register_total", result="401") == challenged,
              "the I-CSCF's UAR refuses sip:BOB@ims.lab before the S-CSCF")
        # The S-CSCF asked directly (we are in its trust domain): its MAR finds no such identity.
        with lab.RawUe(core, "BOB", impi="bob@ims.lab", password="bobpass", port=core.scscf_sip) as other:
            r = other.register()
            check(status_of(r) in (403, 404), "sip:BOB@ims.lab at the S-CSCF: 403/404 expected, got %s"
                  % first_line(r))
        check(metric(core.pcscf, "pcscf_bindings") == 2, "no binding for sip:BOB@ims.lab")
        check(core.reg_states("bob").get("sip:bob@ims.lab") == "registered", core.reg_states("bob"))


if __name__ == "__main__":
    lab.main()
