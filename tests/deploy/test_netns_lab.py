"""The compose topology for real, without Docker: deploy/lab puts hss, icscf, scscf and pcscf in
network namespaces with the compose addresses (172.22.0.10-13) and configs (deploy/compose);
a UE namespace ims-ue (172.22.0.100) runs SIPp's AKA registration of alice to the P-CSCF at
172.22.0.13:5060, and the HSS API (inside ims-hss) must show alice registered. The namespaces
are removed whatever happens (the lab's own trap, then `deploy/lab down`).

Needs root (ip netns), iproute2, curl, SIPp (sip-tester); exit 77 (ctest: skipped) when not root."""

import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
sys.path.insert(0, os.path.join(HERE, "..", "component"))

import harness  # noqa: E402
import lab  # noqa: E402  (tests/system/lab.py: SippRun, Ue, the SIPp 3.6.1 work-arounds)
from harness import TestFailure, check  # noqa: E402

SOURCE_DIR = harness.SOURCE_DIR
BUILD_DIR = harness.BUILD_DIR
LAB = os.path.join(SOURCE_DIR, "deploy", "lab")
COMPOSE = os.path.join(SOURCE_DIR, "deploy", "docker-compose.yml")
NAMESPACES = ["ims-br", "ims-hss", "ims-icscf", "ims-scscf", "ims-pcscf", "ims-rtpengine", "ims-ue"]
HA_NAMESPACES = ["ims-scscf2", "ims-hss2", "ims-redis", "ims-postgres"]   # deploy/lab with IMS_LAB_HA=1
HSS_API = "http://172.22.0.10:9090"
PCSCF = "172.22.0.13:5060"
UE_IP = "172.22.0.100"


def namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0] in NAMESPACES + HA_NAMESPACES]


def netns(ns, *cmd, timeout=20):
    return subprocess.run(["ip", "netns", "exec", ns] + list(cmd), capture_output=True, text=True, timeout=timeout)


class RunningLab:
    """deploy/lab up in the background; stop() = SIGTERM (the lab's trap) then deploy/lab down."""

    def __init__(self, tmp, env=None):
        check(not namespaces(), "lab namespaces exist already: %s (a lab running? deploy/lab down)" % namespaces())
        self.dir = os.path.join(tmp, "lab")
        self.out_path = os.path.join(tmp, "lab.out")
        env = dict(os.environ, IMS_BUILD_DIR=BUILD_DIR, IMS_LAB_DIR=self.dir, IMS_LAB_LOG_LEVEL="debug", **(env or {}))
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(["bash", LAB, "up"], stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def output(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "lab ready" in self.output():
                return
            if self.proc.poll() is not None:
                raise TestFailure("deploy/lab up exited with %s before it was ready:\n%s" %
                                  (self.proc.returncode, self.output()))
            time.sleep(0.2)
        raise TestFailure("deploy/lab up not ready after %d s:\n%s" % (timeout, self.output()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        # Whatever the lab's trap did, `down` leaves no namespace behind.
        down = subprocess.run(["bash", LAB, "down"], capture_output=True, text=True, timeout=60)
        left = namespaces()
        check(not left, "namespaces left after deploy/lab down: %s\n%s%s" % (left, down.stdout, down.stderr))
        return self.proc.returncode

    def dump(self):
        print("---- deploy/lab output:\n%s" % lab.tail(self.output(), 30))
        for nf in ("hss", "hss2", "icscf", "scscf", "scscf2", "pcscf", "redis", "postgres"):
            path = os.path.join(self.dir, "%s.log" % nf)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    print("---- %s.log tail:\n%s" % (nf, lab.tail(f.read(), 20)))
        sys.stdout.flush()


def sipp_register_aka(tmp, ue, attempts=3):
    """SIPp register_aka.xml from ims-ue to the P-CSCF, with lab.py's work-arounds for SIPp 3.6.1:
    a start that failed to load the scenario ("invalid [keyword]") and a RES with a 0x00 byte
    are run again (same Call-ID, CSeq continuing)."""
    base_cseq = 1
    run = None
    for attempt in range(attempts * 2):
        d = os.path.join(tmp, "sipp", "register-%d" % attempt)
        os.makedirs(d, exist_ok=True)
        csv = os.path.join(d, "ue.csv")
        with open(csv, "w") as f:
            f.write("SEQUENTIAL\n%s;%s;%s;\n" % (ue.user, ue.domain, ue.impi))
        msgfile, errfile, outfile = (os.path.join(d, n) for n in ("messages.log", "errors.log", "sipp.out"))
        cmd = ["ip", "netns", "exec", "ims-ue", lab.SIPP, PCSCF,
               "-sf", os.path.join(lab.SCENARIOS, "register_aka.xml"), "-m", "1", "-nostdin",
               "-i", UE_IP, "-t", "u1", "-recv_timeout", "10000", "-default_behaviors", "all,-bye",
               "-trace_msg", "-message_file", msgfile, "-trace_err", "-error_file", errfile,
               "-auth_uri", lab.DOMAIN, "-cid_str", "netns-lab-%d@%s" % (os.getpid(), UE_IP),
               "-base_cseq", str(base_cseq), "-inf", csv, "-au", ue.impi, "-ap", ue.password,
               "-key", "expires", "600"]
        run = lab.SippRun(cmd, d, "register-%d" % attempt, msgfile, errfile, outfile)
        run.wait(40)
        if run.rc == 0:
            return run
        if not run.messages() and "invalid [keyword]" in run.errors():
            print("note: SIPp failed to load the scenario (3.6.1 key parsing), started again")
            continue
        if lab.sipp_aka_quirk(run, ue):
            print("note: RES with a 0x00 byte (SIPp 3.6.1 cannot answer it), run again")
            base_cseq += len(run.sent("REGISTER"))
            continue
        return run
    return run


def running_pid(pid):
    """True while pid exists and is not a zombie (orphans are reaped by whoever adopts them)."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def compose_healthcheck(probe="/dev/tcp/"):
    """The healthcheck command of deploy/docker-compose.yml (bash -c SCRIPT) that uses probe
    (/dev/tcp/: the NFs' HTTP one; /dev/udp/: rtpengine's ng ping), unescaped."""
    with open(COMPOSE) as f:
        found = [json.loads(m) for m in re.findall(r'test: \["CMD", "bash", "-c", (".*")\]', f.read())]
    found = [c for c in found if probe in c]
    check(found, "no bash healthcheck with %s in deploy/docker-compose.yml" % probe)
    return found[0]


def check_rtpengine():
    """rtpengine in ims-rtpengine: the compose file's own healthcheck (an ng ping) passes in its
    namespace, the P-CSCF's namespace gets an answer, the UE's none (the lab's nft filter: the ng
    protocol has no authentication, a UE must not control the media relay)."""
    r = netns("ims-rtpengine", "bash", "-c", compose_healthcheck("/dev/udp/"))
    check(r.returncode == 0, "compose healthcheck of rtpengine fails in ims-rtpengine: %s%s" % (r.stdout, r.stderr))
    ping = ("exec 3<>/dev/udp/172.22.0.14/2223 && printf 't1 d7:command4:pinge' >&3 && "
            "timeout 2 dd bs=512 count=1 status=none <&3")
    r = netns("ims-pcscf", "bash", "-c", ping)
    check(r.stdout.strip() == "t1 d6:result4:ponge", "ng ping from ims-pcscf: %r %r" % (r.stdout, r.stderr))
    r = netns("ims-ue", "bash", "-c", ping)
    check("pong" not in r.stdout, "rtpengine answered an ng ping from the UE namespace: %r" % r.stdout)


def check_clean_stop(running, rc):
    """After `deploy/lab up` got SIGTERM: every NF exited 0, the script 143, no sanitizer report."""
    out = running.output()
    check("exit codes: pcscf=0 scscf=0 icscf=0 hss=0 rtpengine=0" in out, "an NF did not exit 0 on SIGTERM:\n%s" % lab.tail(out, 10))
    check(rc == 143, "deploy/lab up exited %s on SIGTERM (expected 143)" % rc)
    for nf in ("hss", "icscf", "scscf", "pcscf"):
        with open(os.path.join(running.dir, "%s.log" % nf), errors="replace") as f:
            text = f.read()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(marker not in text, "sanitizer report in %s.log:\n%s" % (nf, text[text.find(marker):][:3000]))


def test_aka_registration_through_the_namespace_lab(tmp):
    for b in ("hss", "icscf", "scscf", "pcscf"):
        path = os.path.join(BUILD_DIR, b, b)
        check(os.access(path, os.X_OK), "no %s binary at %s (build first; IMS_BUILD_DIR=%s)" % (b, path, BUILD_DIR))
    running = RunningLab(tmp)
    ok = False
    try:
        running.wait_ready()
        check(sorted(namespaces()) == sorted(NAMESPACES), "namespaces %s" % namespaces())
        # Nothing of the lab in the host's namespace: no 172.22.0.0/24 address, no veth end.
        host = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        check("172.22.0." not in host, "a lab address leaked into the host namespace:\n%s" % host)
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        check(not re.search(r"\bv-(hss|icscf|scscf|pcscf|rtpengine|ue)\b", links), "a veth end is in the host namespace")

        # The docker-compose healthcheck (bash /dev/tcp, no curl in the image) works against each NF.
        probe = compose_healthcheck()
        for nf in ("hss", "icscf", "scscf", "pcscf"):
            r = netns("ims-%s" % nf, "bash", "-c", probe)
            check(r.returncode == 0, "compose healthcheck fails against %s: %s%s" % (nf, r.stdout, r.stderr))
        check_rtpengine()

        ue = lab.Ue("alice", password="alicepass")
        run = sipp_register_aka(tmp, ue)
        check(run.rc == 0, run.failure())
        ok200 = [m for m in run.received(status=200) if m.cseq_method() == "REGISTER"]
        check(ok200, "no 200 to REGISTER:\n%s" % run.failure())
        path = ok200[-1].get("Path", "")
        check("sip:term@172.22.0.13:5060;lr" in path,
              "Path of the 200 is %r, expected the P-CSCF's advertised address (its listen address)" % path)

        r = netns("ims-hss", "curl", "-s", "-m", "5", "%s/api/v1/subscribers/alice" % HSS_API)
        check(r.returncode == 0, "HSS API from ims-hss: curl rc %d %s" % (r.returncode, r.stderr))
        body = json.loads(r.stdout)
        states = {u["impu"]: u.get("reg_state") for u in body.get("impus", [])}
        check(states.get("sip:alice@ims.lab") == "registered", "HSS reg_state of alice: %r" % states)
        print("alice registered through 172.22.0.13; HSS: %s" % states)
        ok = True
    finally:
        if not ok:
            running.dump()
        rc = running.stop()
    check_clean_stop(running, rc)


def test_down_cleans_up_after_a_killed_lab(tmp):
    """SIGKILL the lab script (no trap runs): its NFs keep running in the namespaces;
    `deploy/lab down` must stop them and delete every namespace."""
    running = RunningLab(tmp)
    try:
        running.wait_ready()
        nf_pids = []
        for ns in NAMESPACES:
            nf_pids += subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        check(len(nf_pids) >= 4, "expected the 4 NFs inside the namespaces, found pids %s" % nf_pids)
        running.proc.kill()   # the script only: its NFs stay behind, orphaned
        running.proc.wait()
        check(namespaces(), "namespaces vanished without deploy/lab down?")
        down = subprocess.run(["bash", LAB, "down"], capture_output=True, text=True, timeout=60)
        check(down.returncode == 0, "deploy/lab down: rc %d %s%s" % (down.returncode, down.stdout, down.stderr))
        check(not namespaces(), "namespaces left: %s" % namespaces())
        lab.wait_for(lambda: not [p for p in nf_pids if running_pid(p)], 5,
                     what="the orphaned NFs to be gone after down")
    finally:
        running.stop()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root (ip netns add); CI runs as root")
        sys.exit(77)
    harness.main()
