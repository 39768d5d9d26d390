"""A call through the compose topology in network namespaces (deploy/lab, see test_netns_lab.py):
hss, icscf, scscf and pcscf at 172.22.0.10-13 with the configs of deploy/compose; in the UE
namespace ims-ue (172.22.0.100) two SIPp UEs, each from its own port, register with AKA (the
demo subscribers alice and bob of deploy/config/subscribers.yaml) through the P-CSCF at
172.22.0.13:5060; bob then waits as a UAS (callee_answer.xml) and alice calls sip:bob@ims.lab
(call_uac.xml: INVITE/180/200/ACK, re-INVITE, BYE). Both SIPp runs must exit 0, the S-CSCF's
scscf_sessions_total must grow (orig and term answered 200), and afterwards every CSCF's
sip_transactions_active must be back to 0. The namespaces are removed whatever happens.

The SIPp side is tests/system's, unchanged: lab.Lab.sipp / sipp_aka (argument set and the SIPp
3.6.1 work-arounds) and test_sessions' Ua / callee / call helpers, run by UeNamespace, a Lab
without NFs whose SIPp runs inside ims-ue, from 172.22.0.100, towards 172.22.0.13:5060.

Needs root (ip netns), iproute2, curl, SIPp (sip-tester); exit 77 (ctest: skipped) when not root."""

import os
import sys
import time

import test_netns_lab as netlab  # noqa: E402  (tests/deploy: RunningLab, netns; puts tests/system on sys.path)
import harness  # noqa: E402
import lab  # noqa: E402
from harness import check  # noqa: E402
from test_sessions import Ua, call, callee, check_call_headers, passed, wait_uas  # noqa: E402

BUILD_DIR = harness.BUILD_DIR
CSCFS = {"pcscf": "172.22.0.13", "icscf": "172.22.0.11", "scscf": "172.22.0.12"}


class UeNamespace(lab.Lab):
    """The SIPp half of lab.Lab, for UEs in ims-ue: no NF is started (deploy/lab runs them);
    every SIPp run goes through a wrapper `ip netns exec ims-ue sipp`, binds 172.22.0.100 (a
    second -i, after Lab.sipp's 127.0.0.1: SIPp keeps the last) and targets the P-CSCF of the
    compose network unless told otherwise."""

    def __init__(self, tmp):  # noqa: super().__init__ would generate and start a loopback core
        self.tmp = tmp
        self.sipp_runs = []
        self.nfs = {}
        self.pcscf_sip = self.scscf_sip = self.icscf_sip = 5060
        self.pcscf_host, self.scscf_host = CSCFS["pcscf"], CSCFS["scscf"]
        self.wrapper = os.path.join(tmp, "sipp-in-ims-ue")
        with open(self.wrapper, "w") as f:
            f.write('#!/bin/sh\nexec ip netns exec ims-ue %s "$@"\n' % lab.SIPP)
        os.chmod(self.wrapper, 0o755)

    def sipp(self, scenario, ue=None, remote=None, extra=(), **kw):
        real = lab.SIPP
        lab.SIPP = self.wrapper   # Lab.sipp puts lab.SIPP first on the command line
        try:
            return super().sipp(scenario, ue, remote=remote or netlab.PCSCF,
                                extra=["-i", netlab.UE_IP] + list(extra), **kw)
        finally:
            lab.SIPP = real

    def stop(self):
        for r in self.sipp_runs:
            r.stop()


def metrics(nf):
    """The /metrics of a CSCF, fetched inside its namespace (lab.parse_metrics form)."""
    r = netlab.netns("ims-%s" % nf, "curl", "-s", "-f", "-m", "5", "http://%s:9090/metrics" % CSCFS[nf])
    check(r.returncode == 0, "%s /metrics from ims-%s: curl rc %d %s" % (nf, nf, r.returncode, r.stderr))
    return lab.parse_metrics(r.stdout)


def metric(values, name, **labels):
    """Sum of the series `name` whose labels include `labels` (0 when there is none)."""
    return sum(v for (n, ls), v in values.items()
               if n == name and all((k, str(val)) in ls for k, val in labels.items()))


def sessions(values):
    return {tuple(sorted(ls)): v for (n, ls), v in values.items() if n == "scscf_sessions_total"}


def transactions_drained(nf, timeout=5.0):
    """sip_transactions_active of a CSCF reaches 0 within timeout. The gauge appears with the
    first transaction counted (common/ims_sip_proxy.c): the P-CSCF and S-CSCF proxied the call
    and must publish it; the I-CSCF only forwarded REGISTERs, on client transactions of its own
    (icscf_register.c) that the gauge does not count, so there it may be absent (= 0, as
    lab.Lab's own check takes it)."""
    deadline = time.monotonic() + timeout
    while True:
        values = metrics(nf)
        if not any(n == "sip_transactions_active" for n, _ in values):
            check(nf == "icscf", "%s publishes no sip_transactions_active after proxying the call" % nf)
            print("note: %s publishes no sip_transactions_active (counted no transaction)" % nf)
            return
        active = metric(values, "sip_transactions_active")
        if active == 0:
            return
        check(time.monotonic() < deadline, "%s still has %s SIP transaction(s) active %.0f s after the call" %
              (nf, active, timeout))
        time.sleep(0.2)


def test_aka_call_through_the_namespace_lab(tmp):
    for b in ("hss", "icscf", "scscf", "pcscf"):
        path = os.path.join(BUILD_DIR, b, b)
        check(os.access(path, os.X_OK), "no %s binary at %s (build first; IMS_BUILD_DIR=%s)" % (b, path, BUILD_DIR))
    ues = UeNamespace(tmp)
    running = netlab.RunningLab(tmp)
    ok = False
    try:
        running.wait_ready()
        before = metrics("scscf")

        alice, bob = Ua(ues, "alice"), Ua(ues, "bob")
        b = callee(ues, bob, "callee_answer.xml")
        a = passed(call(ues, alice, "call_uac.xml"))
        wait_uas(b)
        check(a.received(status=180), "a 180 reached the caller:\n" + a.failure())
        check(len(b.received(method="INVITE")) == 2 and b.received(method="BYE"), b.failure())
        check_call_headers(ues, a, b)
        bye_ok = [m for m in a.received(status=200) if m.cseq_method() == "BYE"]
        check(bye_ok, "no 200 to the BYE:\n" + a.failure())

        after = metrics("scscf")
        for case in ("orig", "term"):
            was, now = (metric(m, "scscf_sessions_total", case=case, result="200") for m in (before, after))
            check(now > was, "scscf_sessions_total{case=%s,result=200} did not grow: %s -> %s (series %r)" %
                  (case, was, now, sessions(after)))
        check(metric(after, "scscf_sessions_total") > metric(before, "scscf_sessions_total"),
              "scscf_sessions_total did not grow: %r -> %r" % (sessions(before), sessions(after)))

        ues.stop()
        for nf in ("pcscf", "icscf", "scscf"):
            transactions_drained(nf)
        print("alice called bob through 172.22.0.13; S-CSCF sessions: %r -> %r" % (sessions(before), sessions(after)))
        ok = True
    finally:
        ues.stop()
        if not ok:
            running.dump()
        rc = running.stop()
    netlab.check_clean_stop(running, rc)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root (ip netns add); CI runs as root")
        sys.exit(77)
    harness.main()
