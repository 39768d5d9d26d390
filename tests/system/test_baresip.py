"""System test with a real softphone: baresip (Debian package baresip-core) registers through the
P-CSCF with SIP digest, headless (no audio device: aufile source, aubridge sink), driven and
observed through its ctrl_tcp module (netstring JSON: {"command": "reginfo", ...}).

The account is dave, a digest-only subscriber (lab.default_subscribers): baresip sends its first
REGISTER without Authorization, the S-CSCF then asks the HSS for the IMPI's default scheme
(MAR "Unknown"), and a subscriber whose default is AKA (alice) would be challenged with
AKAv1-MD5, which baresip 1.0 cannot answer.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import wave

import lab
from lab import check, wait_for

BARESIP = shutil.which("baresip") or "/usr/bin/baresip"
MODULES = "/usr/lib/baresip/modules"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sip_port_pair():
    """baresip listens for SIP on P (UDP+TCP) and for SIP/TLS on P+1: both must be free."""
    for _ in range(50):
        port = lab.free_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise lab.TestFailure("no free port pair for baresip")


class Baresip:
    def __init__(self, core, user="dave", password="davepass", regint=60, dirname="baresip",
                 wav_seconds=1, extra_config=(), account_params=""):
        """extra_config: more lines for baresip's config; account_params: appended to the
        account line (e.g. "answermode=auto;audio_codecs=PCMU")."""
        check(os.access(BARESIP, os.X_OK), "baresip is not installed (Debian package baresip-core)")
        for m in ("account", "aufile", "aubridge", "ctrl_tcp", "menu", "g711"):
            check(os.path.exists(os.path.join(MODULES, m + ".so")), "baresip module %s.so missing" % m)
        self.dir = os.path.join(core.tmp, dirname)
        os.makedirs(self.dir, exist_ok=True)
        self.sip_port = sip_port_pair()
        self.ctrl_port = lab.free_port()
        self.aor = "sip:%s@%s" % (user, lab.DOMAIN)
        wav = os.path.join(self.dir, "tone.wav")
        with wave.open(wav, "wb") as w:      # 8 kHz mono: aufile as the audio source
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"".join(struct.pack("<h", (i % 16) * 512 - 4096)
                                   for i in range(8000 * wav_seconds)))
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write("\n".join([
                "poll_method epoll",
                "sip_listen 127.0.0.1:%d" % self.sip_port,
                "net_interface 127.0.0.1",
                "audio_player aubridge,nil",
                "audio_source aufile,%s" % wav,
                "audio_alert aubridge,nil",
                "module_path %s" % MODULES,
                "module g711.so",
                "module aufile.so",
                "module aubridge.so",
                "module_tmp account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                "ctrl_tcp_listen 127.0.0.1:%d" % self.ctrl_port]
                + list(extra_config) + [""]))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write('<%s>;auth_user=%s@%s;auth_pass=%s;outbound="sip:127.0.0.1:%d";regint=%d%s\n' %
                    (self.aor, user, lab.DOMAIN, password, core.pcscf_sip, regint,
                     ";" + account_params if account_params else ""))
        self.logfile = os.path.join(self.dir, "baresip.log")
        log = open(self.logfile, "wb")
        # -s: SIP trace in the log (kept with the test's files when it fails)
        self.proc = subprocess.Popen([BARESIP, "-f", self.dir, "-s"], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        log.close()
        self.sock = None

    def log(self):
        with open(self.logfile, encoding="utf-8", errors="replace") as f:
            return f.read()

    def _connect(self):
        if self.sock is None:
            self.sock = wait_for(self._try_connect, 10, what="baresip ctrl_tcp on port %d" % self.ctrl_port)
        return self.sock

    def _try_connect(self):
        check(self.proc.poll() is None, "baresip exited (%s):\n%s" % (self.proc.returncode, lab.tail(self.log())))
        try:
            return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=2)
        except OSError:
            return None

    def command(self, cmd, params=""):
        """Sends one ctrl_tcp command; returns its response object (events are skipped)."""
        s = self._connect()
        token = "t%d" % int(time.monotonic() * 1e6)
        d = json.dumps({"command": cmd, "params": params, "token": token}).encode()
        s.sendall(b"%d:%s," % (len(d), d))
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            while True:   # whole netstrings in buf
                m = re.match(rb"(\d+):", buf)
                if not m or len(buf) < m.end() + int(m.group(1)) + 1:
                    break
                n = int(m.group(1))
                obj = json.loads(buf[m.end():m.end() + n])
                buf = buf[m.end() + n + 1:]
                if obj.get("response") and obj.get("token") == token:
                    return obj
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
        raise lab.TestFailure("no ctrl_tcp answer to %s" % cmd)

    def reginfo(self):
        return ANSI.sub("", self.command("reginfo").get("data", ""))

    def registered(self):
        info = self.reginfo()
        line = next((l for l in info.splitlines() if self.aor in l), "")
        return " OK " in line + " "

    def stop(self):
        if self.sock:
            self.sock.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_baresip_registers_with_digest(tmp):
    with lab.Lab(tmp) as core:
        phone = Baresip(core)
        try:
            try:
                wait_for(phone.registered, 15, interval=0.3, what="baresip registered (ctrl_tcp reginfo)")
            except lab.TestFailure as e:
                raise lab.TestFailure("%s\nreginfo: %s\nbaresip log tail:\n%s" % (
                    e, phone.reginfo() if phone.proc.poll() is None else "-", lab.tail(phone.log(), 60)))
            states = core.reg_states("dave")
            check(states.get("sip:dave@ims.lab") == "registered", "HSS reg_state: %r" % states)
            check((core.scscf.metric("scscf_registrations") or 0) >= 1, "scscf_registrations")
            check((core.scscf.metric("scscf_register_total", result="200") or 0) >= 1, "scscf_register_total{200}")
            check((core.pcscf.metric("pcscf_bindings") or 0) == 1, "pcscf_bindings")
            log = phone.log()
            check("401 Unauthorized" in log or "SIP/2.0 401" in log, "baresip must have been challenged")
            check(re.search(r'algorithm="?MD5', log), "digest (MD5) challenge expected in baresip's trace")
        finally:
            phone.stop()


def test_baresip_unregisters_on_quit(tmp):
    with lab.Lab(tmp) as core:
        phone = Baresip(core)
        try:
            wait_for(phone.registered, 15, interval=0.3, what="baresip registered")
            check(core.reg_states("dave").get("sip:dave@ims.lab") == "registered", core.reg_states("dave"))
            # "quit": baresip de-registers (REGISTER Expires 0, answering the challenge) then exits.
            try:
                phone.command("quit")
            except (lab.TestFailure, OSError, ValueError):
                pass
            try:
                phone.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            wait_for(lambda: core.reg_states("dave").get("sip:dave@ims.lab") == "not_registered", 8,
                     what="HSS reg_state not_registered after baresip quit\n" + lab.tail(phone.log(), 40))
            wait_for(lambda: (core.pcscf.metric("pcscf_bindings") or 0) == 0, 5, what="P-CSCF binding gone")
        finally:
            phone.stop()


if __name__ == "__main__":
    lab.main()
