"""The Kubernetes configuration for real, without a cluster: the NF configs of the ConfigMap in
deploy/k8s/configmap-nf.yaml (Service DNS names for SIP next hops and the Diameter peer) and the
demo subscribers of configmap-subscribers.yaml run in network namespaces that stand in for pods
(10.244.0.10-13), with the environment the Deployments set (IMS_<NF>_SIP_LISTEN = pod IP) and a
small DNS server (10.244.0.53) answering <nf>.ims.svc.cluster.local like cluster DNS would
(/etc/resolv.conf of each NF bind-mounted in a private mount namespace). A UE namespace
(10.244.0.100) registers alice with SIPp AKA; the HSS must show her registered, and the names
must have been asked of the DNS server (the CSCFs use no static hosts table here).

Needs root, iproute2, util-linux unshare, curl, SIPp, node + the k8s_modules fixture (yaml);
exit 77 (skipped) when not root. Run as a DNS server: test_k8s_netns.py --dns ADDR HOSTS_FILE."""

import json
import os
import socket
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
sys.path.insert(0, os.path.join(HERE, "..", "component"))

import harness  # noqa: E402
import lab  # noqa: E402
from harness import TestFailure, check  # noqa: E402

SOURCE_DIR = harness.SOURCE_DIR
BUILD_DIR = harness.BUILD_DIR
K8S = os.path.join(SOURCE_DIR, "deploy", "k8s")
MODULES = os.environ.get("K8S_VALIDATE_MODULES") or os.path.join(BUILD_DIR, "tests", "deploy", "k8s-validate")
PREFIX = "ims-k8s-"
NFS = ("hss", "scscf", "icscf", "pcscf")
POD_IP = {"hss": "10.244.0.10", "icscf": "10.244.0.11", "scscf": "10.244.0.12", "pcscf": "10.244.0.13",
          "ue": "10.244.0.100"}
DNS_IP = "10.244.0.53"   # a second address in the ue namespace
SERVICE = "%s.ims.svc.cluster.local"


def dns_server(addr, hosts_file):
    """A-record-only authoritative DNS over UDP (one line per query on stdout)."""
    hosts = {}
    with open(hosts_file) as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                hosts.update({n.lower().rstrip("."): p[0] for n in p[1:]})
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    print("dns: serving %d names on %s" % (len(hosts), addr), flush=True)
    while True:
        data, peer = s.recvfrom(1500)
        try:
            tid = struct.unpack("!H", data[:2])[0]
            i, labels = 12, []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
            question = data[12:i + 5]
        except (IndexError, struct.error):
            continue
        name = ".".join(labels).lower()
        ip = hosts.get(name)
        if ip and qtype == 1:
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton(ip)
            resp = struct.pack("!HHHHHH", tid, 0x8580, 1, 1, 0, 0) + question + answer
        else:   # known name, other type: no data; unknown name: NXDOMAIN
            resp = struct.pack("!HHHHHH", tid, 0x8580 if ip else 0x8583, 1, 0, 0, 0) + question
        print("query %s type %d -> %s" % (name, qtype, ip or "NXDOMAIN"), flush=True)
        s.sendto(resp, peer)


def namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(PREFIX)]


def sh(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "%s: rc %d %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r.stdout


def configmap_files(dest):
    """The data keys of the ConfigMaps in deploy/k8s written to dest/<key> (parsed with yaml)."""
    script = """
const {createRequire} = require("node:module");
const r = createRequire(process.argv[1] + "/node_modules/x.js");
const YAML = r("yaml"), fs = require("fs");
for (const f of ["configmap-nf.yaml", "configmap-subscribers.yaml"]) {
  const cm = YAML.parse(fs.readFileSync(process.argv[2] + "/" + f, "utf8"));
  for (const [k, v] of Object.entries(cm.data)) fs.writeFileSync(process.argv[3] + "/" + k, v);
}"""
    r = subprocess.run(["node", "-e", script, MODULES, K8S, dest], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "extracting the ConfigMaps (yaml in %s/node_modules? tests/deploy/setup.sh): %s" %
          (MODULES, r.stderr))


class Pods:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = {}

    def network(self):
        br = PREFIX + "br"
        sh("ip", "netns", "add", br)
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        for h, ip in POD_IP.items():
            ns = PREFIX + h
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", br, "link", "add", "v-" + h, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", br, "link", "set", "v-" + h, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", PREFIX + "ue", "addr", "add", DNS_IP + "/24", "dev", "eth0")

    def spawn(self, name, ns, argv, log):
        out = open(os.path.join(self.tmp, log), "wb")
        self.procs[name] = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.tmp)
        out.close()

    def start(self):
        cfg = os.path.join(self.tmp, "cfg")
        os.makedirs(cfg)
        configmap_files(cfg)
        hosts = os.path.join(self.tmp, "dns-hosts")
        with open(hosts, "w") as f:
            for nf in NFS:
                f.write("%s %s\n" % (POD_IP[nf], SERVICE % nf))   # stands for the Service's ClusterIP
        resolv = os.path.join(self.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver %s\nsearch ims.svc.cluster.local svc.cluster.local cluster.local\n" % DNS_IP)
        self.network()
        self.spawn("dns", PREFIX + "ue", [sys.executable, os.path.abspath(__file__), "--dns", DNS_IP, hosts], "dns.log")
        lab.wait_for(lambda: "dns: serving" in self.log("dns"), 10, what="the DNS server")
        for nf in NFS:
            env = ["IMS_%s_LOG_LEVEL=debug" % nf.upper()]
            if nf == "hss":
                env += ["IMS_HSS_DATABASE=%s/hss.db" % self.tmp, "IMS_HSS_IMPORT=%s/subscribers.yaml" % cfg,
                        "IMS_HSS_DIAMETER_CONF_DIR=%s" % self.tmp]
            else:
                env += ["IMS_%s_SIP_LISTEN=%s" % (nf.upper(), POD_IP[nf])]   # the Deployment's fieldRef status.podIP
                if nf != "pcscf":
                    env += ["IMS_%s_DIAMETER_CONF_DIR=%s" % (nf.upper(), self.tmp)]
            binary = os.path.join(BUILD_DIR, nf, nf)
            script = 'mount --bind "$0" /etc/resolv.conf && exec env "$@"'
            self.spawn(nf, PREFIX + nf, ["unshare", "-m", "sh", "-c", script, resolv] + env +
                       [binary, "-c", os.path.join(cfg, "%s.yaml" % nf)], "%s.log" % nf)
        for nf in NFS:
            lab.wait_for(lambda: self.ready(nf), 30, what="%s /readyz" % nf)

    def ready(self, nf):
        p = self.procs[nf]
        if p.poll() is not None:
            raise TestFailure("%s exited with %s; log tail:\n%s" % (nf, p.returncode, lab.tail(self.log(nf), 20)))
        r = subprocess.run(["ip", "netns", "exec", PREFIX + nf, "curl", "-s", "-o", "/dev/null", "-m", "1", "-w",
                            "%{http_code}", "http://%s:9090/readyz" % POD_IP[nf]], capture_output=True, text=True)
        return r.stdout == "200"

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, "%s.log" % name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        codes = {}
        for name in ("pcscf", "icscf", "scscf", "hss", "dns"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p:
                codes[name] = p.returncode
        for ns in namespaces():
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        return codes

    def dump(self):
        for name in ("dns",) + NFS:
            print("---- %s.log tail:\n%s" % (name, lab.tail(self.log(name), 20)))
        sys.stdout.flush()


def test_k8s_configs_register_through_service_names(tmp):
    for nf in NFS:
        path = os.path.join(BUILD_DIR, nf, nf)
        check(os.access(path, os.X_OK), "no %s binary at %s (IMS_BUILD_DIR=%s)" % (nf, path, BUILD_DIR))
    check(not namespaces(), "namespaces %s exist already (a previous run killed?): ip netns del them" % namespaces())
    pods = Pods(tmp)
    ok = False
    try:
        pods.start()
        ue = lab.Ue("alice", password="alicepass")
        d = os.path.join(tmp, "sipp")
        os.makedirs(d)
        csv = os.path.join(d, "ue.csv")
        with open(csv, "w") as f:
            f.write("SEQUENTIAL\nalice;ims.lab;alice@ims.lab;\n")
        run = None
        base_cseq = 1
        for attempt in range(6):   # the SIPp 3.6.1 work-arounds of tests/system/lab.py
            msgfile, errfile, outfile = (os.path.join(d, "%s-%d" % (n, attempt)) for n in ("messages", "errors", "out"))
            cmd = ["ip", "netns", "exec", PREFIX + "ue", lab.SIPP, POD_IP["pcscf"] + ":5060",
                   "-sf", os.path.join(lab.SCENARIOS, "register_aka.xml"), "-m", "1", "-nostdin",
                   "-i", POD_IP["ue"], "-t", "u1", "-recv_timeout", "10000", "-default_behaviors", "all,-bye",
                   "-trace_msg", "-message_file", msgfile, "-trace_err", "-error_file", errfile,
                   "-auth_uri", "ims.lab", "-cid_str", "k8s-netns-%d@%s" % (os.getpid(), POD_IP["ue"]),
                   "-base_cseq", str(base_cseq), "-inf", csv, "-au", ue.impi, "-ap", ue.password,
                   "-key", "expires", "600"]
            run = lab.SippRun(cmd, d, "register-%d" % attempt, msgfile, errfile, outfile)
            run.wait(40)
            if run.rc == 0:
                break
            if not run.messages() and "invalid [keyword]" in run.errors():
                continue
            if lab.sipp_aka_quirk(run, ue):
                base_cseq += len(run.sent("REGISTER"))
                continue
            break
        check(run.rc == 0, run.failure())
        r = subprocess.run(["ip", "netns", "exec", PREFIX + "hss", "curl", "-s", "-m", "5",
                            "http://%s:9090/api/v1/subscribers/alice" % POD_IP["hss"]], capture_output=True, text=True)
        states = {u["impu"]: u.get("reg_state") for u in json.loads(r.stdout).get("impus", [])}
        check(states.get("sip:alice@ims.lab") == "registered", "HSS reg_state of alice: %r" % states)
        dns = pods.log("dns")
        for nf in ("hss", "icscf", "scscf"):
            check("query %s type 1 -> %s" % (SERVICE % nf, POD_IP[nf]) in dns,
                  "%s was never resolved through DNS:\n%s" % (SERVICE % nf, dns))
        print("alice registered with the Kubernetes configs; DNS queries:\n%s" %
              "\n".join(sorted(set(line for line in dns.splitlines() if line.startswith("query")))))
        ok = True
    finally:
        if not ok:
            pods.dump()
        codes = pods.stop()
        left = namespaces()
    check(not left, "namespaces left: %s" % left)
    for nf in NFS:
        check(codes.get(nf) == 0, "%s did not exit 0 on SIGTERM (%s)" % (nf, codes.get(nf)))
        text = pods.log(nf)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(marker not in text, "sanitizer report in %s.log:\n%s" % (nf, text[text.find(marker):][:3000]))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--dns":
        dns_server(sys.argv[2], sys.argv[3])
        sys.exit(0)
    if os.geteuid() != 0:
        print("SKIP: needs root (ip netns add); CI runs as root")
        sys.exit(77)
    harness.main()
