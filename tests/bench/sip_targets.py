"""The targets a stepped series of bench_sip.py runs against: Ours (the IMS core, hss + scscf +
icscf + pcscf) and Kam (the Kamailio reference), with the same interface (SIP address, sockets,
processes to sample, CPU, liveness, stop); and how a stopped core's refusals and fired limiters
become notes.

Python 3 standard library only.
"""

import os

from kamailio_ref import Kamailio
from machine import cpu_seconds
from sip_bench import NFS, RSS_NFS, log
from system_lab import lab


class Ours:
    """The IMS core (hss, scscf, icscf, pcscf) as the target of a series."""
    kind = "ims"
    reg_scenario, aka = "reg_aka_load.xml", True
    cpu_names = NFS
    sock_names = ("pcscf", "icscf", "scscf")
    rss_names = RSS_NFS

    def __init__(self, bench, name):
        self.core = bench.core(name)
        self.lab = self.core.lab
        self.sip = "127.0.0.1:%d" % self.lab.pcscf_sip
        self.ports = self.lab.ports

    def sockets(self):
        return {"pcscf": [self.lab.pcscf_sip], "icscf": [self.lab.icscf_sip], "scscf": [self.lab.scscf_sip]}

    def rss_pids(self):
        return {n: self.core.pid(n) for n in RSS_NFS}

    def cpu(self):
        return {n: cpu_seconds(self.core.pid(n)) for n in NFS}

    def alive(self):
        self.lab.alive()

    @staticmethod
    def route(reg_results):
        return next((r.service_route for r in reg_results if r.service_route), None)

    def refused(self):
        return pcscf_refused(self.core)

    def stop(self, bench, phase):
        stop_core(bench, self.core, phase)


class Kam:
    """The Kamailio reference (kamailio_ref.Kamailio) as the target of a series."""
    kind = "kamailio"
    reg_scenario, aka = "reg_plain_load.xml", False
    cpu_names = ("kamailio",)
    sock_names = ("kamailio",)
    rss_names = ()

    def __init__(self, bench, name, children):
        log("starting kamailio (children=%d) for '%s'" % (children, name))
        self.k = Kamailio(os.path.join(bench.out, name, "kamailio"), children=children)
        self.sip = "127.0.0.1:%d" % self.k.port
        self.ports = lab.Ports()

    def sockets(self):
        return {"kamailio": [self.k.port]}

    def rss_pids(self):
        return {}

    def cpu(self):
        return {"kamailio": self.k.cpu()}

    def alive(self):
        self.k.alive()

    def route(self, reg_results):
        # the call scenario's second Route entry: Kamailio itself (removed for initial requests)
        return "<sip:127.0.0.1:%d;lr>" % self.k.port

    def refused(self):
        return {}

    def stop(self, bench, phase):
        problem = self.k.stop()
        if problem:
            bench.notes.append("%s: %s (see %s)" % (phase, problem, self.k.log_path))


LIMITERS = (("pcscf", "pcscf_register_blocked_total"), ("pcscf", "pcscf_auth_lockouts_total"),
            ("scscf", "scscf_auth_lockouts_total"), ("scscf", "scscf_register_locked_total"))


def pcscf_refused(core):
    """{reason: count} of the P-CSCF's identity/routing refusals (pcscf_refused_total{reason},
    issue 10: not_registered, other_flow, ...); {} when there were none."""
    out = {}
    try:
        for (name, labels), v in core.lab.pcscf.metrics().items():
            if name == "pcscf_refused_total" and v:
                reason = dict(labels).get("reason", "?")
                out[reason] = out.get(reason, 0) + int(v)
    except (lab.TestFailure, OSError):
        pass
    return out


def fmt_refused(refused):
    return ",".join("%s:%d" % kv for kv in sorted(refused.items())) or "none"


def stop_core(bench, core, phase):
    """Notes the brute-force limiters that fired (they would turn load into 403s) and what
    lab.Lab found wrong at stop."""
    try:
        fired = ["%s=%d" % (m, v) for nf, m in LIMITERS for v in [core.metric(nf, m)] if v]
    except (lab.TestFailure, OSError):
        fired = []
    if fired:
        bench.notes.append("%s: authentication limiters fired: %s" % (phase, ", ".join(fired)))
    refused = pcscf_refused(core)
    if refused:
        bench.notes.append("%s: the P-CSCF refused requests (pcscf_refused_total): %s" %
                           (phase, fmt_refused(refused)))
    problem = core.stop()
    if problem:
        bench.notes.append("%s core at stop: %s" % (phase, problem[:500]))
