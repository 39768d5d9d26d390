"""Overload control (RFC 3261 21.5.4 / 20.33; common/ims_sip.c shed_load): when a CSCF has
sip.max_transactions requests in progress, a new out-of-dialog request is answered at once with
503 Service Unavailable and Retry-After, in-dialog requests still get through, and once the
work in progress drains the same requests succeed again.

The backlog is made deterministic: the I-CSCF is stopped (SIGSTOP), so REGISTERs the P-CSCF
forwards stay in progress there; SIGCONT lets them finish. The rates at which the real core
starts shedding are measured by tests/bench/bench_sip.py (overload step), not here.
"""

import os
import signal

import lab
from lab import check, wait_for

LIMIT = 2
RETRY_AFTER = 7


def finals(msgs):
    return [m for m in msgs if m.status and m.status >= 200]


def test_overload_answers_503_and_recovers(tmp):
    overrides = {"pcscf": {"sip": {"max_transactions": LIMIT, "retry_after": RETRY_AFTER}}}
    with lab.Lab(tmp, overrides=overrides) as core:
        port = core.pcscf_sip
        os.kill(core.icscf.proc.pid, signal.SIGSTOP)
        try:
            held = [lab.RawUdp() for _ in range(LIMIT)]
            for i, u in enumerate(held):
                # forwarded towards the stopped I-CSCF: each stays in progress at the P-CSCF
                got = u.exchange(port, lab.register_request(u.port, port, call_id="held-%d@127.0.0.1" % i),
                                 timeout=0.5)
                check(not finals(got), "REGISTER %d should be waiting for the I-CSCF, got %s" %
                      (i, [m.first for m in got]))
            wait_for(lambda: core.pcscf.metric("sip_transactions_active") == LIMIT, timeout=5,
                     what="%d transactions in progress at the P-CSCF" % LIMIT)

            with lab.RawUdp() as u:
                got = finals(u.exchange(port, lab.register_request(u.port, port, user="bob"), timeout=2))
                check(got and got[-1].status == 503, "over the limit a REGISTER must get 503 at once, got %s" %
                      [m.first for m in got])
                check(got[-1].get("Retry-After", "").split(";")[0].strip() == str(RETRY_AFTER),
                      "503 must carry Retry-After: %d:\n%s" % (RETRY_AFTER, got[-1].text))

                # An in-dialog request (To tag) is not shed: it ends work instead of adding it.
                bye = ("BYE sip:bob@127.0.0.1:%d SIP/2.0\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=z9hG4bK-ovl-bye\r\n"
                       "Max-Forwards: 70\r\nFrom: <sip:alice@ims.lab>;tag=a1\r\nTo: <sip:bob@ims.lab>;tag=b1\r\n"
                       "Call-ID: ovl-bye@127.0.0.1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n" % (u.port, u.port))
                got = finals(u.exchange(port, bye, timeout=3))
                check(not got or got[-1].status != 503, "an in-dialog BYE must not be shed with 503: %s" %
                      [m.first for m in got])
            check(core.pcscf.metric("sip_overload_rejected_total") == 1,
                  "sip_overload_rejected_total must count the one shed REGISTER, got %r" %
                  core.pcscf.metric("sip_overload_rejected_total"))
            check("overload" in core.pcscf.log() and "Retry-After %d" % RETRY_AFTER in core.pcscf.log(),
                  "the P-CSCF must log the overload for the operator")
        finally:
            os.kill(core.icscf.proc.pid, signal.SIGCONT)

        # Recovery: the held REGISTERs complete (challenged), the backlog drains, and a full AKA
        # registration goes through again.
        for u in held:
            got = []
            wait_for(lambda: got.extend(_recv(u)) or got, timeout=10, what="held REGISTER answered")
            check(got[-1].status == 401, "held REGISTER should be challenged once the I-CSCF runs: %s" % got[-1].first)
            u.close()
        wait_for(lambda: core.pcscf.metric("sip_transactions_active") == 0, timeout=10,
                 what="no transaction left at the P-CSCF")
        run = core.sipp_aka("register_aka.xml", core.ue("alice"))
        check(run.rc == 0, "AKA registration after the overload: %s" % run.failure())


def _recv(u):
    """Responses already waiting on u's socket (non-blocking read of what arrived)."""
    out = []
    u.sock.settimeout(0.2)
    while True:
        try:
            raw, _ = u.sock.recvfrom(65535)
        except OSError:
            return out
        m = lab.SipMessage(raw.decode("utf-8", "replace"))
        if m.status and m.status >= 200:
            out.append(m)


if __name__ == "__main__":
    lab.main()
