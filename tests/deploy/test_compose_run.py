"""The docker-compose lab for real: tests/deploy/container_lab.sh builds the image from
deploy/Dockerfile with podman (base debian:12-slim made locally with debootstrap, no registry),
brings deploy/docker-compose.yml up through docker-compose talking to podman's API socket and
waits for every NF's /readyz. Then, from this host, as a user of the lab would:

  - two SIPp UEs on 127.0.0.1, each from its own port, register with IMS AKA (the demo
    subscribers alice and bob of deploy/config/subscribers.yaml) through the P-CSCF's published
    port 127.0.0.1:5060;
  - the HSS's provisioning API on the published 127.0.0.1:9090 shows both registered;
  - bob waits as a UAS (callee_answer.xml) and alice calls sip:bob@ims.lab (call_uac.xml:
    INVITE/180/200/ACK, re-INVITE, BYE): both SIPp runs exit 0, bob receives the BYE, and the
    S-CSCF's scscf_sessions_total{case=orig|term,result=200} grow; the P-CSCF's and S-CSCF's
    sip_transactions_active are back at 0;
  - rtpengine (the service rtpengine, the image deploy/rtpengine builds from Debian's
    rtpengine-daemon in place of the public one): it answers an ng ping sent from inside the
    P-CSCF's container (the P-CSCF's network); its ng control port is not published on the host
    (an ng ping to 127.0.0.1:2223 gets no answer); a session made over ng relays RTP both ways
    between two sockets on the host that send to the PUBLISHED RTP ports (127.0.0.1:<port>), its
    own statistics count the packets, and after the delete it holds no session;
  - media anchoring, when the image's P-CSCF knows pcscf.media.anchor (`container_lab.sh build`
    first, then `pcscf --config-reference` in the image): the lab comes up with the overlay
    docker-compose.media.yml (the P-CSCF's config compose/pcscf-media.yaml) and the call above
    is anchored: the SDP of bob's INVITE and of alice's 200 points at rtpengine (c=IN IP4
    172.22.0.14, not the UEs' 127.0.0.1), rtpengine's statistics saw the sessions, and after the
    BYE it holds none. Without it the lab runs the plain compose file and this step is skipped
    with a message saying why;
  - `docker-compose stop`: every NF and rtpengine exit 0 on SIGTERM.

`container_lab.sh down` runs whatever happens; afterwards no container, network or volume of the
lab may be left.

How the UEs on the host are reached through podman's port publishing: the UE sends from
127.0.0.1:<port> to 127.0.0.1:5060; netavark's DNAT (OUTPUT chain, route_localnet on the bridge)
sends it to the P-CSCF at 172.22.0.13:5060, and because a loopback source cannot leave the host,
it also masquerades it: the P-CSCF sees the request coming from the bridge gateway 172.22.0.1
(same port while no other flow holds it). The P-CSCF answers, and later sends bob's terminating
INVITE, to the address it registered from (172.22.0.1:<port>, pcscf_route.c); the kernel's
connection tracking entry of the UE's UDP flow maps those packets back to 127.0.0.1:<port>. So a
UE on the host is reachable for as long as its flow's conntrack entry lives (UDP: 30 s after the
last packet, 120 s once both directions were seen): the callee here registers shortly before the
call, as a real UE would keep its flow alive with re-registrations or keep-alives.

The metrics of the S-CSCF are read from the host through the bridge (172.22.0.12:9090, the
compose file's fixed address; only the P-CSCF's SIP and the HSS API are published).

The SIPp side is tests/system's, unchanged: lab.Lab.sipp / sipp_aka (SIPp 3.6.1 work-arounds)
and test_sessions' Ua / callee / call helpers, run by HostUes, a Lab without NFs aimed at the
published port.

Needs root (podman), podman, runc, debootstrap, docker-compose, curl, SIPp (sip-tester): exit 77
(ctest: skipped) only when not root; anything else that fails is a failure naming the step. It
binds the host ports 5060 and 9090 (fails when they are taken). Wall time on 2 cores: ~3.5 min
on a machine without the images (debootstrap ~1 min, build ~2.5 min), ~1 min after a source
change (the package layers stay cached), ~20 s when nothing changed."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
sys.path.insert(0, os.path.join(HERE, "..", "component"))

import harness  # noqa: E402
import lab  # noqa: E402
import lab_rtpengine  # noqa: E402
from harness import TestFailure, check  # noqa: E402
from test_netns_call import CSCFS, metric, sessions  # noqa: E402  (the compose addresses; metric helpers)
from test_sessions import Ua, call, callee, passed, wait_uas  # noqa: E402

SCRIPT = os.path.join(HERE, "container_lab.sh")
COMPOSE = os.path.join(harness.SOURCE_DIR, "deploy", "docker-compose.yml")
PROJECT = "deploy"                   # container_lab.sh's compose project: deploy_<nf>_1, deploy_ims
HSS_API = "http://127.0.0.1:9090"    # published by the compose file (127.0.0.1 only)
SIP_PORT = 5060                      # the P-CSCF's published SIP port
UP_TIMEOUT = 780                     # build (~3-4 min) + debootstrap when needed + start
RTPE = "172.22.0.14"                 # the service rtpengine (deploy/compose/rtpengine.conf)
NG_PORT = 2223                       # its ng control port (network ims only)
RTP_PORTS = (30000, 30199)           # its RTP range, published on the host
RTPE_IMAGE = "imscore-rtpengine:latest"   # what container_lab.sh builds (IMS_RTPENGINE_IMAGE)
COMPOSE_ENV = dict(os.environ, DOCKER_HOST="unix:///run/podman/podman.sock", COMPOSE_PROJECT_NAME=PROJECT,
                   IMS_RTPENGINE_IMAGE=RTPE_IMAGE)


class HostUes(lab.Lab):
    """The SIPp half of lab.Lab for UEs on this host: no NF is started (the compose lab runs
    them); Lab.sipp's default target 127.0.0.1:<pcscf_sip> is the published P-CSCF port, and
    reg_states()/wait_reg_state() ask the published HSS API."""

    def __init__(self, tmp):  # noqa: super().__init__ would generate and start a loopback core
        self.tmp = tmp
        self.sipp_runs = []
        self.nfs = {}
        self.pcscf_sip = self.scscf_sip = self.icscf_sip = SIP_PORT
        self.hss = types.SimpleNamespace(base=HSS_API)

    def stop(self):
        for r in self.sipp_runs:
            r.stop()


def run(*cmd, timeout=60):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def lab_script(action, out_path, timeout, env=None):
    """container_lab.sh <action>, its output in out_path; (rc, output)."""
    with open(out_path, "wb") as out:
        # Its own process group, so that a timeout also ends what it runs (podman build, compose);
        # the API service and the healthcheck loop it starts have their own sessions and stay for
        # `down`.
        proc = subprocess.Popen(["bash", SCRIPT, action], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            rc = "killed after %d s" % timeout
    with open(out_path, encoding="utf-8", errors="replace") as f:
        return rc, f.read()


def check_ports_free():
    """The compose file publishes 5060 (UDP, TCP) and 127.0.0.1:9090: someone else holding them
    (the loopback demo, a lab left running) is a failure that says so, not a confusing SIP one."""
    for kind, addr in ((socket.SOCK_DGRAM, ("0.0.0.0", SIP_PORT)), (socket.SOCK_STREAM, ("0.0.0.0", SIP_PORT)),
                       (socket.SOCK_STREAM, ("127.0.0.1", 9090)),
                       (socket.SOCK_DGRAM, ("0.0.0.0", RTP_PORTS[0])), (socket.SOCK_DGRAM, ("0.0.0.0", RTP_PORTS[1]))):
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:   # connections of a lab that just stopped linger in TIME_WAIT
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise TestFailure("host port %s/%s is taken (%s): another lab running? (tests/deploy/container_lab.sh "
                              "down, or stop the loopback demo)" % (addr[1], "udp" if kind == socket.SOCK_DGRAM
                                                                    else "tcp", e))
        finally:
            s.close()


def leftovers():
    """What of the lab podman still has: containers, network, volume."""
    left = []
    ps = run("podman", "ps", "-a", "--filter", "label=com.docker.compose.project=%s" % PROJECT,
             "--format", "{{.Names}}")
    left += ["container " + n for n in ps.stdout.split()]
    nets = run("podman", "network", "ls", "--format", "{{.Name}}").stdout.split()
    left += ["network " + n for n in nets if n.startswith(PROJECT + "_")]
    vols = run("podman", "volume", "ls", "--format", "{{.Name}}").stdout.split()
    left += ["volume " + v for v in vols if v.startswith(PROJECT + "_")]
    return left


def dump_containers():
    ps = run("podman", "ps", "-a", "--filter", "label=com.docker.compose.project=%s" % PROJECT,
             "--format", "{{.Names}} {{.Status}}")
    print("---- containers:\n%s" % ps.stdout)
    for name in [line.split()[0] for line in ps.stdout.splitlines() if line.split()]:
        logs = run("podman", "logs", "--tail", "25", name)
        print("---- %s log tail:\n%s%s" % (name, logs.stdout, logs.stderr))
    sys.stdout.flush()


def scscf_metrics():
    """The S-CSCF's /metrics from the host, through the bridge (lab.parse_metrics form)."""
    status, body, _ = harness.http("GET", "http://%s:9090/metrics" % CSCFS["scscf"], timeout=5)
    check(status == 200, "S-CSCF /metrics through the bridge: %s %r" % (status, body))
    return lab.parse_metrics(body)


def cscf_transactions_drained(timeout=5.0):
    """sip_transactions_active of the P-CSCF and S-CSCF (both proxied the call) back at 0."""
    for nf in ("pcscf", "scscf"):
        def active():
            status, body, _ = harness.http("GET", "http://%s:9090/metrics" % CSCFS[nf], timeout=5)
            check(status == 200, "%s /metrics through the bridge: %s" % (nf, status))
            return metric(lab.parse_metrics(body), "sip_transactions_active")
        try:
            lab.wait_for(lambda: active() == 0, timeout, interval=0.2, what="%s transactions drained" % nf)
        except TestFailure:
            raise TestFailure("%s still has %s SIP transaction(s) active %.0f s after the call" %
                              (nf, active(), timeout))


def container_of(service):
    ps = run("podman", "ps", "-q", "--filter", "label=com.docker.compose.project=%s" % PROJECT,
             "--filter", "label=com.docker.compose.service=%s" % service)
    ids = ps.stdout.split()
    check(ids, "no running container of the service %s" % service)
    return ids[0]


def rtpengine_stats():
    """rtpengine's own counters (lab_rtpengine.stats_summary), over ng through the bridge."""
    return lab_rtpengine.stats_summary(lab_rtpengine.ng((RTPE, NG_PORT), {"command": "statistics"}))


def ng_ping_from_pcscf():
    """An ng ping from inside the P-CSCF's container: bash's /dev/udp (the image has no other
    client), dd reads exactly the one answer datagram."""
    r = run("podman", "exec", container_of("pcscf"), "bash", "-c",
            "exec 3<>/dev/udp/%s/%d && printf 'pcscf1 d7:command4:pinge' >&3 && "
            "timeout 3 dd bs=512 count=1 status=none <&3" % (RTPE, NG_PORT), timeout=30)
    check(r.stdout.strip() == "pcscf1 d6:result4:ponge",
          "ng ping from the P-CSCF's container to %s:%d: rc %s, answer %r %r" % (RTPE, NG_PORT, r.returncode,
                                                                                 r.stdout, r.stderr))


def ng_not_published():
    """The ng control port has no authentication: podman publishes only the RTP range, and an ng
    ping to the host's 127.0.0.1:2223 gets no answer (as an attacker on the host would try)."""
    ports = run("podman", "port", container_of("rtpengine")).stdout
    check("%d/udp" % RTP_PORTS[0] in ports and "%d/udp" % RTP_PORTS[1] in ports,
          "rtpengine's RTP range %d-%d/udp is not published: %r" % (RTP_PORTS + (ports,)))
    check("%d/" % NG_PORT not in ports, "rtpengine's ng port %d is published on the host: %r" % (NG_PORT, ports))
    try:
        answer = lab_rtpengine.ng(("127.0.0.1", NG_PORT), {"command": "ping"}, timeout=1.5)
    except lab_rtpengine.NgError:
        return
    raise TestFailure("an ng ping to 127.0.0.1:%d was answered (%r): rtpengine's control port must not be "
                      "reachable from the host's addresses" % (NG_PORT, answer))


def sdp(port):
    # The host as the containers see it: the bridge gateway (published ports masquerade to it).
    return ("v=0\r\no=- 1 1 IN IP4 172.22.0.1\r\ns=-\r\nc=IN IP4 172.22.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % port)


def sdp_port(text):
    m = re.search(r"^m=audio (\d+) ", text, re.M)
    check(m, "no m=audio line in rtpengine's SDP:\n%s" % text)
    return int(m.group(1))


def rtp_through_published_ports():
    """Two 'UEs' on the host (UDP sockets): an ng offer/answer gives each rtpengine's port to
    send to; each sends RTP to that port on 127.0.0.1 (the published range: podman's DNAT to
    172.22.0.14), rtpengine relays it to the other side's SDP address. Both receive, rtpengine's
    statistics count the packets, and the delete leaves no session."""
    before = rtpengine_stats()
    a, b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    call_id = "compose-rtp-%d@test" % os.getpid()
    try:
        for s in (a, b):
            s.bind(("0.0.0.0", 0))
            s.settimeout(0.3)
        pa, pb = a.getsockname()[1], b.getsockname()[1]
        offer = lab_rtpengine.ng((RTPE, NG_PORT), {"command": "offer", "call-id": call_id, "from-tag": "a",
                                                   "sdp": sdp(pa), "direction": ["access", "core"]})
        check(offer.get("result") == "ok", "ng offer: %r" % offer)
        answer = lab_rtpengine.ng((RTPE, NG_PORT), {"command": "answer", "call-id": call_id, "from-tag": "a",
                                                    "to-tag": "b", "sdp": sdp(pb)})
        check(answer.get("result") == "ok", "ng answer: %r" % answer)
        to_b, to_a = sdp_port(offer["sdp"]), sdp_port(answer["sdp"])   # where B sends, where A sends
        for port in (to_a, to_b):
            check(RTP_PORTS[0] <= port <= RTP_PORTS[1], "rtpengine gave port %d, outside its range %r" %
                  (port, RTP_PORTS))
        check("c=IN IP4 %s" % RTPE in offer["sdp"], "rtpengine's SDP does not carry its address:\n%s" % offer["sdp"])
        got = {"a": 0, "b": 0}
        for seq in range(1, 21):
            rtp = bytes([0x80, 0, 0, seq, 0, 0, 0, seq, 0, 0, 0, 7]) + b"\xff" * 160
            a.sendto(rtp, ("127.0.0.1", to_a))
            b.sendto(rtp, ("127.0.0.1", to_b))
            for name, s in (("a", a), ("b", b)):
                try:
                    while True:
                        s.settimeout(0.05)
                        s.recv(2048)
                        got[name] += 1
                except socket.timeout:
                    pass
        check(got["a"] > 0 and got["b"] > 0,
              "RTP through the published ports %d (A->) and %d (B->): A received %d, B received %d packets" %
              (to_a, to_b, got["a"], got["b"]))
        during = rtpengine_stats()
        check(during["sessions"] >= 1 and during["packets"] > before["packets"],
              "rtpengine's statistics: %r -> %r" % (before, during))
    finally:
        a.close()
        b.close()
        lab_rtpengine.ng((RTPE, NG_PORT), {"command": "delete", "call-id": call_id, "from-tag": "a"})
    lab.wait_for(lambda: rtpengine_stats()["sessions"] == 0, 5, interval=0.2, what="rtpengine: no session left")
    print("RTP through the published ports: A received %d, B received %d; rtpengine %r -> %r" %
          (got["a"], got["b"], before, during))


def anchoring_supported():
    """True when the image's P-CSCF knows pcscf.media.anchor (its --config-reference table), asked
    of the image itself (a throw-away container without network, the lab's OCI runtime)."""
    runtime = os.environ.get("IMS_CONTAINER_LAB_RUNTIME") or ("runc" if shutil.which("runc") else None)
    r = run("podman", *(["--runtime", runtime] if runtime else []), "run", "--rm", "--pull=never", "--network=none",
            "imscore:latest", "pcscf", "--config-reference", timeout=60)
    check(r.returncode == 0 and "`pcscf.icscf`" in r.stdout,
          "pcscf --config-reference in the image failed: rc %s %s" % (r.returncode, r.stderr[-2000:]))
    return "`pcscf.media.anchor`" in r.stdout


def check_anchored(a, b, before):
    """The call of alice (a) and bob (b) went through rtpengine: the SDP each received points at
    it, rtpengine's statistics saw the sessions, and after the BYE it holds none."""
    invite = b.received(method="INVITE")
    ok200 = [m for m in a.received(status=200) if m.cseq_method() == "INVITE"]
    for who, m in (("bob's INVITE", invite[0]), ("alice's 200", ok200[0])):
        check("c=IN IP4 %s" % RTPE in m.body, "%s: the SDP does not point at rtpengine %s:\n%s" % (who, RTPE, m.body))
        check("127.0.0.1" not in m.body, "%s: the SDP still carries the other UE's address:\n%s" % (who, m.body))
    lab.wait_for(lambda: rtpengine_stats()["sessions"] == 0, 10, interval=0.2,
                 what="rtpengine holds no session after the BYE")
    after = rtpengine_stats()
    check(after["managed"] > before["managed"], "rtpengine's statistics did not see the call: %r -> %r" % (before, after))
    print("anchored call: the SDP bob and alice received points at %s; rtpengine %r -> %r" % (RTPE, before, after))


def stop_and_check_exit_codes():
    """`docker-compose stop` (what a user of the lab runs: dependents first, pcscf, then icscf
    and scscf, then hss, each with SIGTERM, the image's STOPSIGNAL): every NF exits 0 within
    the 10 s grace period (137 = killed after it).
    (Stopping all four at the same moment, `podman stop` on every container, leaves now and
    then (~1 run in 8) the I-CSCF or the S-CSCF hanging in freeDiameter's shutdown while the HSS
    shuts down too: a finding about the Diameter clients' shutdown, not what this test is about.)"""
    ps = run("podman", "ps", "-q", "--filter", "label=com.docker.compose.project=%s" % PROJECT)
    ids = ps.stdout.split()
    check(len(ids) == 5, "5 lab containers (4 NFs, rtpengine) running before the stop, found %r" % ids)
    stop = subprocess.run(["docker-compose", "-f", COMPOSE, "stop", "-t", "10"], capture_output=True,
                          text=True, timeout=120, env=COMPOSE_ENV)
    check(stop.returncode == 0, "docker-compose stop: %s%s" % (stop.stdout, stop.stderr))
    codes = run("podman", "inspect", "--format", "{{.Name}} {{.State.ExitCode}}", *ids).stdout.split("\n")
    bad = [c for c in codes if c.strip() and not c.strip().endswith(" 0")]
    check(not bad, "NFs that did not exit 0 on SIGTERM (docker-compose stop): %r" % bad)


def test_aka_call_through_the_compose_lab(tmp):
    check_ports_free()
    ues = HostUes(tmp)
    ok = False
    t0 = time.monotonic()
    try:
        rc, out = lab_script("build", os.path.join(tmp, "build.out"), UP_TIMEOUT)
        print(out.rstrip())
        check(rc == 0, "container_lab.sh build failed (rc %s):\n%s" % (rc, lab.tail(out, 40)))
        anchoring = anchoring_supported()
        env = dict(os.environ, IMS_CONTAINER_LAB_MEDIA="1" if anchoring else "0")
        rc, out = lab_script("up", os.path.join(tmp, "up.out"), max(120, UP_TIMEOUT - (time.monotonic() - t0)), env)
        print(out.rstrip())
        check(rc == 0, "container_lab.sh up failed (rc %s):\n%s" % (rc, lab.tail(out, 40)))
        t_up = time.monotonic() - t0
        before = scscf_metrics()
        rtpe_before = rtpengine_stats()

        # Registration: 401 (AKA challenge) then 200 with Service-Route, through 127.0.0.1:5060.
        alice, bob = Ua(ues, "alice"), Ua(ues, "bob")
        for who in ("alice", "bob"):
            ues.wait_reg_state(who, "sip:%s@ims.lab" % who, "registered", timeout=10)

        # The call: bob's SIPp answers on his registered port, alice's calls him.
        b = callee(ues, bob, "callee_answer.xml")
        a = passed(call(ues, alice, "call_uac.xml"))
        wait_uas(b)
        check(a.received(status=180), "a 180 reached the caller:\n" + a.failure())
        invites = b.received(method="INVITE")
        check(len(invites) == 2 and b.received(method="BYE"),
              "bob got the INVITE, the re-INVITE and the BYE:\n" + b.failure())
        pai = " ".join(invites[0].all("P-Asserted-Identity"))
        check("sip:alice@ims.lab" in pai or "tel:+15550001" in pai, "bob's INVITE asserts alice: %r" % pai)
        ok200 = [m for m in a.received(status=200) if m.cseq_method() == "INVITE"]
        rr = " ".join(ok200[0].all("Record-Route")) if ok200 else ""
        check(rr.count("<sip:") >= 2, "the P-CSCF and the S-CSCF Record-Route the dialog: %r" % rr)
        check([m for m in a.received(status=200) if m.cseq_method() == "BYE"], "no 200 to the BYE:\n" + a.failure())

        after = scscf_metrics()
        for case in ("orig", "term"):
            was, now = (metric(m, "scscf_sessions_total", case=case, result="200") for m in (before, after))
            check(now > was, "scscf_sessions_total{case=%s,result=200} did not grow: %s -> %s (series %r)" %
                  (case, was, now, sessions(after)))
        cscf_transactions_drained()
        if anchoring:
            check_anchored(a, b, rtpe_before)
        else:
            print("SKIP anchored call: the image's P-CSCF has no pcscf.media.anchor (pcscf --config-reference): "
                  "media anchoring is not in this build; the lab ran without docker-compose.media.yml")

        # rtpengine: reachable from the P-CSCF's network, control not from the host, RTP published.
        ng_ping_from_pcscf()
        ng_not_published()
        rtp_through_published_ports()
        ues.stop()
        stop_and_check_exit_codes()
        print("up in %.0f s; alice and bob registered through 127.0.0.1:%d, alice called bob; "
              "S-CSCF sessions %r -> %r" % (t_up, SIP_PORT, sessions(before), sessions(after)))
        ok = True
    finally:
        ues.stop()
        if not ok:
            dump_containers()
        lab_down(tmp, ok)
    print("total %.0f s" % (time.monotonic() - t0))


def lab_down(tmp, ok, env=None):
    """container_lab.sh down; after a passing test it must succeed and leave nothing (after a
    failure, which stays the reported one, what it says is printed only)."""
    rc, out = lab_script("down", os.path.join(tmp, "down.out"), 180, env)
    left = leftovers()
    if ok:
        check(rc == 0, "container_lab.sh down failed (rc %s):\n%s" % (rc, lab.tail(out, 20)))
        check(not left, "left after container_lab.sh down: %s\n%s" % (left, lab.tail(out, 20)))
    elif rc != 0 or left:
        print("container_lab.sh down: rc %s, left: %s\n%s" % (rc, left, lab.tail(out, 20)))


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root (rootful podman); CI runs as root")
        sys.exit(77)
    harness.main()
