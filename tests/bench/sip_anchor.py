"""Calls with media anchoring (bench_sip.py --anchor): the series "call-anchored" runs the call
scenarios (INVITE with an SDP offer, 200 with the answer, BYE) through a core whose P-CSCF anchors
every SDP in a real rtpengine (pcscf.media.anchor: rtpengine), beside the plain "call" series of
the same run; each step also reports rtpengine's own counters and the P-CSCF's media metrics.

  - anchor_unsupported(): why --anchor cannot run (the P-CSCF build has no pcscf.media.anchor,
    rtpengine is not installed), or None;
  - OursAnchored: the target: rtpengine-daemon started on free ports (tests/system/lab_rtpengine)
    for every run, then the core with pcscf.media pointing at it; media_mark()/media_step()
    around each step: sessions created (rtpengine's managed sessions), rejected, timed out, relay
    errors, sessions still held once the step's calls are over (a leak), the P-CSCF's media
    counters; a step with rejections, P-CSCF media failures or held sessions fails ("media");
  - report_anchor(): the anchored table, its best calls/s beside the plain one, and the per-step
    media figures.

SIPp sends no RTP here: the figure is the signalling cost of anchoring (two ng round trips per call
set-up and one per BYE at the P-CSCF) and rtpengine's session handling, not media forwarding.
Python 3 standard library only.
"""

import os
import time

from bench_core import Core, config_keys
from figures import median
from machine import cpu_seconds
from sip_bench import log
from sip_targets import Ours
from system_lab import lab

import lab_rtpengine  # noqa: E402  (tests/system, on sys.path through system_lab)

RTPE_PORTS = 16000         # RTP ports of the bench's rtpengine: 8 per call in progress (two rtpengine calls per call, ;orig and ;term, each RTP+RTCP on both sides); 4000 ran out at 600 calls/s


def anchor_unsupported():
    """None when --anchor can run; else why not (a message for the user)."""
    pcscf = os.path.join(lab.BUILD_DIR, "pcscf", "pcscf")
    if "pcscf.media.anchor" not in config_keys(pcscf):
        return ("--anchor: the P-CSCF at %s has no media anchoring (pcscf.media.anchor is not in its "
                "--config-reference): build a tree that has it, or run without --anchor" % pcscf)
    if not os.path.exists(lab_rtpengine.RTPENGINE):
        return "--anchor: rtpengine is not installed (%s)" % lab_rtpengine.HINT
    return None


def media_overrides(ng_uri):
    return {"pcscf": {"pcscf": {"media": {"anchor": "rtpengine", "rtpengine": [ng_uri],
                                          "access_interface": "access", "core_interface": "core",
                                          "on_failure": "reject"}}}}


def media_metrics(core):
    """The P-CSCF's metrics about media: {name{labels}: value} of every series whose name has
    "media" or "rtpengine" in it ({} when it exports none)."""
    out = {}
    try:
        for (name, labels), v in core.lab.pcscf.metrics().items():
            if "media" in name or "rtpengine" in name:
                key = name + ("{%s}" % ",".join("%s=%s" % kv for kv in sorted(labels)) if labels else "")
                out[key] = v
    except (lab.TestFailure, OSError):
        pass
    return out


class OursAnchored(Ours):
    """The IMS core with its P-CSCF anchoring media in a real rtpengine started for this run."""

    def __init__(self, bench, name):   # noqa: super().__init__ would start a core without media
        d = os.path.join(bench.out, name)
        log("starting rtpengine for '%s'" % name)
        self.rtpe = lab_rtpengine.Rtpengine(os.path.join(d, "rtpengine"), ports=RTPE_PORTS)
        try:
            log("starting hss, scscf, icscf, pcscf for '%s' (pcscf.media: rtpengine %s)" % (name, self.rtpe.ng_uri))
            self.core = Core(os.path.join(d, "core"), bench.seed_db,
                             lab.merge(bench.overrides, media_overrides(self.rtpe.ng_uri)))
        except BaseException:
            self.rtpe.stop()
            raise
        self.lab = self.core.lab
        self.sip = "127.0.0.1:%d" % self.lab.pcscf_sip
        self.ports = self.lab.ports

    def sockets(self):
        s = super().sockets()
        s["rtpengine"] = [self.rtpe.ng_addr[1]]     # its ng socket: a drop there is an ng retransmission
        return s

    def cpu(self):
        c = super().cpu()
        c["rtpengine"] = cpu_seconds(self.rtpe.proc.pid)
        return c

    def alive(self):
        super().alive()
        if not self.rtpe.alive():
            raise lab.TestFailure("rtpengine exited (%s): %s" % (self.rtpe.proc.returncode, self.rtpe.log_tail()))

    def media_mark(self):
        return {"rtpe": self.rtpe.stats(), "pcscf": media_metrics(self.core)}

    def media_step(self, mark):
        """The step's media figures and what is wrong with them (problems: [] when nothing)."""
        # The last BYEs' deletes may still be on their way: held sessions are read once they
        # had a moment (a session still held after 3 s is a leak).
        deadline = time.monotonic() + 3.0
        while True:
            now = self.rtpe.stats()
            if now["sessions"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        was = mark["rtpe"]
        rtpe = {k: now[k] - was[k] for k in ("managed", "rejected", "timeout", "errors")}
        rtpe["held"] = now["sessions"]
        pc_now = media_metrics(self.core)
        pcscf = {k: v - mark["pcscf"].get(k, 0) if "_total" in k else v
                 for k, v in pc_now.items() if v != mark["pcscf"].get(k, 0) or "_total" not in k}
        problems = []
        if rtpe["rejected"]:
            problems.append("rtpengine rejected %d sessions" % rtpe["rejected"])
        if rtpe["held"]:
            problems.append("rtpengine still holds %d sessions after the step" % rtpe["held"])
        # failures, unanchored passes, ng requests whose result is not ok (timeouts, errors)
        failed = {k: v for k, v in pcscf.items() if "_total" in k and v and
                  ("fail" in k or "unanchored" in k or ("result=" in k and "result=ok" not in k))}
        if failed:
            problems.append("P-CSCF media failures: %s" % ", ".join("%s %d" % kv for kv in sorted(failed.items())))
        return {"rtpengine": rtpe, "pcscf": pcscf, "problems": problems}

    def stop(self, bench, phase):
        try:
            super().stop(bench, phase)
        finally:
            rc = self.rtpe.stop()
            if rc not in (0, None):
                bench.notes.append("%s: rtpengine exited %s at stop (see %s)" % (phase, rc, self.rtpe.log_path))


def media_line(st):
    """One log line of a step's media figures."""
    m = st.get("media")
    if not m:
        return ""
    r = m["rtpengine"]
    pc = ", ".join("%s %s" % kv for kv in sorted(m["pcscf"].items())) or "no media metrics"
    return ("rtpengine: %d sessions created, %d rejected, %d timed out, %d relay errors, %d held after the step; "
            "P-CSCF: %s%s" % (r["managed"], r["rejected"], r["timeout"], r["errors"], r["held"], pc,
                              "; PROBLEM: " + "; ".join(m["problems"]) if m["problems"] else ""))


def report_anchor(bench, series_table, table, best_line, fmt_best):
    """The anchored call table, its best rate beside the plain one, the media figures per step."""
    r = bench.results.get("call-anchored")
    if not r:
        return
    print("\n2b. Calls with media anchoring (pcscf.media.anchor: rtpengine; the same calls, the P-CSCF sends "
          "every SDP offer/answer through a real rtpengine, %s, over ng; %d run(s))" % (
              lab_rtpengine.RTPENGINE, len(r["runs"])))
    headers, rows = series_table(r, "ims", True)
    r["table"] = {"headers": headers, "rows": rows}
    print(table(headers, rows))
    print(best_line(r, "setup time (INVITE->200)", "calls/s"))
    plain = bench.results.get("call", {}).get("best")
    print("   best calls/s, same run: without anchoring %s, with anchoring %s" % (
        fmt_best(plain) if plain else "not measured (call not run)", fmt_best(r["best"])))
    rows = []
    rates = sorted({st["rate"] for run in r["runs"] for st in run["steps"]})
    for rate in rates:
        sts = [st for run in r["runs"] for st in run["steps"] if st["rate"] == rate and st.get("media")]
        if not sts:
            continue
        med = lambda k: median([st["media"]["rtpengine"][k] for st in sts])  # noqa: E731
        rows.append([rate, "%.0f" % med("managed"), "%.0f" % med("rejected"), "%.0f" % med("timeout"),
                     "%.0f" % med("errors"), ",".join("%d" % st["media"]["rtpengine"]["held"] for st in sts),
                     "%.0f" % median([st["cpu"].get("rtpengine") or 0 for st in sts]),
                     "; ".join(sorted({p for st in sts for p in st["media"]["problems"]})) or "-"])
    if rows:
        print("   rtpengine per step (its own ng statistics; medians over the runs): sessions created, rejected,"
              " timed out, relay errors, sessions held after the step (per run), its cpu%")
        print(table(["rate/s", "created", "rejected", "timeout", "relay err", "held", "cpu%", "problems"], rows))
