"""System test with two real softphones: two baresip instances (Debian baresip-core) register
with SIP digest through the P-CSCF (dave and erin, digest-only subscribers: baresip 1.0 cannot
answer AKA), dave calls erin through P-CSCF -> S-CSCF -> P-CSCF, erin answers on her own
(account answermode=auto), the call is held ~3 s and hung up. RTP must flow both ways: each
phone's stream counters (the `rtp_stats` summary baresip prints at hang-up) show >= 100 packets
sent and received on both sides, and, with CAP_NET_RAW (root), an AF_PACKET socket on lo counts
the PCMU packets on the wire in both directions between the two media ports.

The P-CSCF is named by its address here (sip.hostname 127.0.0.1): its Record-Route entry is the
first hop of the phones' ACK and BYE, and baresip resolves names by DNS, where pcscf.ims.lab does
not exist. Messages above 1300 bytes reach the phones over TCP (RFC 3261 18.1.1, sofia-sip).

Headless audio (docs/pitfalls.md): aufile with an 8 kHz wav written here as the source, aubridge as
the sink; G.711 only. No transaction or session state may be left in any CSCF afterwards
(lab.Lab on exit: sip_transactions_active; here: session/dialog gauges, if published).
"""

import copy
import re
import socket
import struct
import threading
import time

import lab
import test_baresip
from lab import check, wait_for
from test_baresip import ANSI


def subscribers():
    subs = copy.deepcopy(lab.default_subscribers("sip:as.ims.lab:1"))
    dave = next(s for s in subs["subscribers"] if s["id"] == "dave")
    erin = copy.deepcopy(dave)
    erin["id"] = "erin"
    erin["impis"][0].update({"impi": "erin@ims.lab", "password": "erinpass"})
    erin["impus"][0]["impu"] = "sip:erin@ims.lab"
    subs["subscribers"].append(erin)
    return subs


class Phone(test_baresip.Baresip):
    """test_baresip.Baresip in its own directory, with answer mode and RTP statistics."""

    def __init__(self, core, user, password, answermode="manual"):
        super().__init__(core, user, password, dirname="baresip-" + user, wav_seconds=10,
                         extra_config=["rtp_stats yes"],
                         account_params="answermode=%s;audio_codecs=PCMU" % answermode)

    def text(self, cmd, params=""):
        return ANSI.sub("", self.command(cmd, params).get("data", ""))

    def established(self):
        return re.search(r"call established", ANSI.sub("", self.log()), re.I) is not None


class WireRtp:
    """Counts PCMU RTP packets on the loopback interface per (source port, destination port),
    through an AF_PACKET socket: a second witness besides baresip's own counters. Needs
    CAP_NET_RAW (root); without it `available` is False and only baresip's counters are used."""

    def __init__(self):
        self.flows = {}
        self.available = False
        self._stop = False
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
            self.sock.bind(("lo", 0))
            self.sock.settimeout(0.2)
            self.available = True
        except (OSError, AttributeError):
            self.sock = None
            return
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                break
            if addr[2] != socket.PACKET_HOST or len(data) < 20 or data[9] != 17:   # once per packet, UDP
                continue
            ihl = (data[0] & 0x0f) * 4
            udp = data[ihl:]
            if len(udp) < 8 + 12:
                continue
            sport, dport = struct.unpack("!HH", udp[:4])
            rtp = udp[8:]
            if rtp[0] & 0xc0 == 0x80 and rtp[1] & 0x7f == 0:      # RTP v2, payload type 0 (PCMU)
                self.flows[(sport, dport)] = self.flows.get((sport, dport), 0) + 1

    def stop(self):
        self._stop = True
        if self.sock:
            self.thread.join(2)
            self.sock.close()


def packets(text):
    """(tx, rx) audio packets from baresip's stream statistics (callstat or the rtp_stats
    summary: a line "packets:  <tx>  <rx>"); None when absent."""
    m = re.findall(r"packets:\s+(\d+)\s+(\d+)", text)
    return (int(m[-1][0]), int(m[-1][1])) if m else None


def test_baresip_call_with_rtp(tmp):
    # The phones send in-dialog requests (ACK, BYE) along the Record-Route, whose first entry is
    # the P-CSCF's own URI: baresip resolves names by DNS, where pcscf.ims.lab does not exist
    # (the CSCFs use their sip.hosts tables). The P-CSCF names itself by address here, as a
    # deployment whose UEs cannot resolve its FQDN would.
    overrides = {"pcscf": {"sip": {"hostname": "127.0.0.1"}}}
    with lab.Lab(tmp, subscribers=subscribers(), overrides=overrides) as core:
        dave = Phone(core, "dave", "davepass")
        erin = Phone(core, "erin", "erinpass", answermode="auto")
        phones = (dave, erin)
        wire = WireRtp()
        try:
            for p in phones:
                try:
                    wait_for(p.registered, 15, interval=0.3, what="%s registered" % p.aor)
                except lab.TestFailure as e:
                    raise lab.TestFailure("%s\nbaresip log tail:\n%s" % (e, lab.tail(p.log(), 60)))
            dave.command("dial", erin.aor)
            for p in phones:
                try:
                    wait_for(p.established, 10, interval=0.2, what="%s: call established" % p.aor)
                except lab.TestFailure as e:
                    raise lab.TestFailure("%s\n%s log tail:\n%s" % (e, p.aor, lab.tail(p.log(), 80)))
            time.sleep(3)
            live = {p.aor: p.text("callstat") for p in phones}   # kept for the failure message
            dave.command("hangup")
            for p in phones:   # the rtp_stats summary is printed when the call ends
                try:
                    wait_for(lambda: packets(ANSI.sub("", p.log())), 10, interval=0.2,
                             what="%s: call ended (RTP summary in the log)" % p.aor)
                except lab.TestFailure as e:
                    raise lab.TestFailure("%s\n%s log tail:\n%s" % (e, p.aor, lab.tail(p.log(), 60)))
            for p in phones:
                counts = packets(ANSI.sub("", p.log())) or packets(live[p.aor])
                check(counts, "%s: no RTP statistics (callstat: %r)\nlog tail:\n%s" %
                      (p.aor, live[p.aor], lab.tail(p.log(), 40)))
                tx, rx = counts
                print("RTP %s: sent %d, received %d packets" % (p.aor, tx, rx))
                # 3 s of 20 ms G.711 frames = 150 packets; ask for a clear majority both ways.
                check(tx >= 100 and rx >= 100, "%s: RTP packets tx=%d rx=%d (expected >= 100 both ways)" %
                      (p.aor, tx, rx))
            wire.stop()
            if wire.available:
                big = {f: n for f, n in wire.flows.items() if n >= 100}
                pairs = [f for f in big if (f[1], f[0]) in big]
                print("RTP on the wire (lo): %r" % big)
                check(len(pairs) == 2, "RTP (PCMU) both ways between one pair of ports on lo: %r" % wire.flows)
            else:
                print("note: no CAP_NET_RAW: RTP counted by baresip only")
            import test_sessions
            test_sessions.check_no_sessions(core)
        finally:
            wire.stop()
            for p in phones:
                p.stop()


if __name__ == "__main__":
    lab.main()
