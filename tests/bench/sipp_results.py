"""What a SIPp load run measured, from the files it wrote in its directory:
  *_logs.log   one line per call that got a final answer, from the scenario's <log> actions
               (OK / FAIL <code> / REJ <code>, see scenarios/*.xml)
  *_rtt.csv    one line per completed response-time measure (-trace_rtt -rtt_freq 1)
  *_.csv       SIPp's statistics (-trace_stat), of which the last line is used
  *_errors.log SIPp's own account of aborted calls (-trace_err)
The outcome of a call is taken from the scenario's log line; a call created by SIPp without a log
line got no final answer in -recv_timeout (a timeout). A 403 to an AKA response SIPp 3.6.1
computed wrongly is counted apart (sipp_aka_quirk).

Python 3 standard library only.
"""

import base64
import csv
import re

from bench_users import AKA_K, AKA_OP
from figures import percentile
from system_lab import lab


def sipp_aka_quirk(nonce):
    """True when the RES of a refused AKA nonce holds a 0x00 byte: SIPp 3.6.1 then computes a wrong
    response (~3 % of challenges, docs/pitfalls.md) and the S-CSCF rightly answers 403. RES is
    recomputed from the nonce with the benchmark subscribers' K and OP (lab.aka_res_of_nonce)."""
    try:
        return 0 in lab.aka_res_of_nonce(nonce, AKA_K, AKA_OP)
    except (ValueError, base64.binascii.Error):
        return False


def last_stats(path):
    """The integer counters of the last line of a SIPp -trace_stat file ({} when it has none):
    {"TotalCallCreated": n, "SuccessfulCall(C)": n, ...}."""
    rows = open(path, encoding="utf-8", errors="replace").read().splitlines()
    if len(rows) < 2:
        return {}
    out = {}
    for k, v in zip(rows[0].split(";"), rows[-1].split(";")):
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


class Result:
    """What one Load measured."""

    def __init__(self, load, aka_check=True):
        self.load = load
        self.ok = 0
        self.codes = {}             # final code -> count (failures and rejections)
        self.rej503 = 0             # 503 answers (first or second request)
        self.rej503_retry_after = 0
        self.quirk = 0              # 403 to a RES with a 0x00 byte: SIPp 3.6.1's fault
        self.failed_users = []      # users whose call failed (any reason but the quirk's users too)
        self.ok_users = []
        self.service_route = None
        lines = []
        for logf, _ in load.files("*_logs.log"):
            lines += open(logf, encoding="utf-8", errors="replace").read().splitlines()
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "OK":
                self.ok += 1
                if len(parts) > 1:
                    self.ok_users.append(parts[1])
                if len(parts) > 2 and self.service_route is None:
                    self.service_route = " ".join(parts[2:])
                continue
            if parts[0] not in ("FAIL", "REJ") or len(parts) < 3:
                continue
            code, user = parts[1], parts[2]
            rest = parts[3:]
            self.failed_users.append(user)
            self.codes[code] = self.codes.get(code, 0) + 1
            if code == "503":
                self.rej503 += 1
                if rest and rest[0].isdigit():
                    self.rej503_retry_after += 1
            nonce = next((r for r in rest if len(r) > 30), None)
            if aka_check and code == "403" and nonce and sipp_aka_quirk(nonce):
                self.quirk += 1
        stats = self._stats()
        self.created = int(stats.get("TotalCallCreated", 0) or 0)
        self.sipp_ok = int(stats.get("SuccessfulCall(C)", 0) or 0)
        self.sipp_failed = int(stats.get("FailedCall(C)", 0) or 0)
        self.retrans = int(stats.get("Retransmissions(C)", 0) or 0)
        # Calls still in progress when SIPp stopped (only when it stopped mid-run on its own key
        # parsing, MIDRUN_ABORTS): their outcome is unknown, they count nowhere.
        self.cut = int(stats.get("CurrentCall", 0) or 0)
        answered = self.ok + sum(self.codes.values())
        self.timeouts = max(0, self.created - answered - self.cut)
        self.failed = self.created - self.ok - self.cut          # everything that did not succeed
        self.failed_core = self.failed - self.quirk              # not SIPp's own fault
        self.rtt = {}
        stamps = []
        for rttf, offset in load.files("*_rtt.csv"):
            with open(rttf) as f:
                for row in csv.reader(f, delimiter=";"):
                    if len(row) >= 3 and row[0] != "Date_ms":
                        try:
                            self.rtt.setdefault(row[2], []).append(float(row[1]))
                            stamps.append(float(row[0]) + offset)
                        except ValueError:
                            pass
        for v in self.rtt.values():
            v.sort()
        # Successful calls completed per second: from the completion times of the response-time
        # measures (first to last), which leaves out the hold and the drain at the end. When the
        # core cannot keep up, requests queue and this stays below the offered rate even if they
        # all succeed in the end.
        if len(stamps) >= 10 and max(stamps) > min(stamps):
            span = (max(stamps) - min(stamps)) / 1000.0
            self.achieved = (len(stamps) - 1) / span
        else:
            self.achieved = self.ok / load.elapsed if load.elapsed else 0.0

    def _stats(self):
        """The counters of SIPp's last statistics line, summed over the run's SIPp processes."""
        total = {}
        for f, _ in self.load.files("*_.csv"):
            for k, v in last_stats(f).items():
                total[k] = total.get(k, 0) + v
        return total

    def fail_ratio(self):
        """Failures that are the core's (SIPp's AKA quirk excluded), over the calls made."""
        judged = self.created - self.cut
        return self.failed_core / judged if judged > 0 else 1.0

    def pct(self, rtd, p):
        return percentile(self.rtt.get(rtd, []), p)

    def summary(self):
        codes = ",".join("%s:%d" % kv for kv in sorted(self.codes.items())) or "-"
        return ("made %d ok %d failed %d (core %d, SIPp quirk %d) timeouts %d codes %s%s" %
                (self.created, self.ok, self.failed, self.failed_core, self.quirk, self.timeouts, codes,
                 " (%d cut by SIPp stopping)" % self.cut if self.cut else ""))


def scenario_waits(path):
    """{element index: what a <recv> there waits for} as SIPp numbers a scenario's elements
    (labels and Reference left out): "the INVITE (send #1)"; None for the <recv response="999">
    our scenarios use to end a failed call."""
    import xml.etree.ElementTree as ET
    out, last, sends = {}, "?", 0
    try:
        elements = [e for e in ET.parse(path).getroot() if e.tag not in ("label", "Reference")]
    except (OSError, ET.ParseError):
        return out
    for i, e in enumerate(elements):
        if e.tag == "send":
            sends += 1
            first = (e.text or "").strip().split(None, 1)
            last = "the %s (send #%d)" % (first[0] if first else "?", sends)
        elif e.tag == "recv":
            out[i] = None if e.get("response") == "999" else last
    return out


def sipp_errors_summary(load):
    """SIPp's aborted calls by reason, from its -trace_err file: e.g. "receive timeout at
    scenario element 2: 583" (the element index is the position in the scenario file, 0-based)."""
    text = "".join(open(f, encoding="utf-8", errors="replace").read() for f, _ in load.files("*_errors.log"))
    if not text:
        return ""
    counts = {}
    waits = scenario_waits(load.scenario)
    for m in re.finditer(r"receive timeout on message [^:]*:(\d+)", text):
        what = waits.get(int(m.group(1)), "element %s" % m.group(1))
        if what is None:
            continue            # the scenario's own end of a failed call (already logged)
        k = "no answer to " + what
        counts[k] = counts.get(k, 0) + 1
    for what in ("Aborting call on unexpected message", "Dead call", "Max Retrans",  # Dead call: a late answer
                 "Unable to send", "Syntax error"):
        c = text.count(what)
        if c:
            counts[what] = c
    return ", ".join("%s: %d" % kv for kv in sorted(counts.items(), key=lambda kv: -kv[1])) or "(none)"
