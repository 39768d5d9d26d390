"""deploy/k8s: every manifest valid for its kind (kubernetes-models, offline), the references
between them sound (tests/deploy/validate-k8s.mjs), and broken copies rejected.

Needs node and the npm packages kubernetes-models + yaml in $K8S_VALIDATE_MODULES/node_modules
(ctest runs tests/deploy/setup.sh first: fixture k8s_modules)."""

import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "component"))

import harness  # noqa: E402
from harness import TestFailure, check  # noqa: E402

SOURCE_DIR = harness.SOURCE_DIR
K8S = os.path.join(SOURCE_DIR, "deploy", "k8s")
SUBSCRIBERS = os.path.join(SOURCE_DIR, "deploy", "config", "subscribers.yaml")
VALIDATOR = os.path.join(HERE, "validate-k8s.mjs")
MODULES = os.environ.get("K8S_VALIDATE_MODULES") or os.path.join(harness.BUILD_DIR, "tests", "deploy", "k8s-validate")


def validate(directory, subscribers=SUBSCRIBERS):
    node = shutil.which("node")
    if not node:
        raise TestFailure("node not found (Debian package nodejs)")
    cmd = [node, VALIDATOR, "--modules", MODULES]
    if subscribers:
        cmd += ["--subscribers", subscribers]
    r = subprocess.run(cmd + [directory], capture_output=True, text=True, timeout=60)
    if r.returncode == 2:
        raise TestFailure("validate-k8s.mjs could not run (tests/deploy/setup.sh %s first?):\n%s%s" %
                          (MODULES, r.stdout, r.stderr))
    return r.returncode, r.stdout + r.stderr


def test_manifests_valid():
    rc, out = validate(K8S)
    print(out.strip().splitlines()[-1])
    check(rc == 0, "deploy/k8s is not valid:\n%s" % out)
    kinds = re.findall(r"^ok \S+ (\w+)/(\S+)", out, re.M)
    want = {("Namespace", "ims"), ("ConfigMap", "ims-config"), ("ConfigMap", "ims-subscribers"),
            ("StatefulSet", "hss"), ("Deployment", "icscf"), ("Deployment", "scscf"), ("Deployment", "pcscf"),
            ("Service", "hss"), ("Service", "icscf"), ("Service", "scscf"), ("Service", "pcscf")}
    check(want <= set(kinds), "missing objects: %s" % sorted(want - set(kinds)))


def test_manifest_contents():
    """What the schema cannot say: probes, PVC, SIP on UDP and TCP, Diameter port, non-root."""
    def read(name):
        with open(os.path.join(K8S, name)) as f:
            return f.read()
    hss = read("hss.yaml")
    check("kind: StatefulSet" in hss and "volumeClaimTemplates:" in hss, "HSS: StatefulSet with a volumeClaimTemplate")
    check("mountPath: /var/lib/ims" in hss, "HSS: the PVC must be mounted at /var/lib/ims (hss.database)")
    for nf in ("hss", "icscf", "scscf", "pcscf"):
        text = read("%s.yaml" % nf)
        check(re.search(r"readinessProbe:.*\n\s+httpGet: \{path: /readyz", text), "%s: readiness probe on /readyz" % nf)
        check(re.search(r"livenessProbe:\n\s+httpGet: \{path: /healthz", text), "%s: liveness probe on /healthz" % nf)
        check(re.search(r"requests: \{cpu: \S+, memory: \S+\}", text), "%s: resource requests" % nf)
        check("runAsUser: 10001" in text and "runAsNonRoot: true" in text, "%s: runs as uid 10001" % nf)
        if nf != "hss":
            for proto in ("UDP", "TCP"):
                check(re.search(r"port: 5060, targetPort: sip-%s, protocol: %s" % (proto.lower(), proto), text),
                      "%s Service: SIP 5060/%s" % (nf, proto))
            check("fieldPath: status.podIP" in text and "IMS_%s_SIP_LISTEN" % nf.upper() in text,
                  "%s: sip.listen from the pod IP" % nf)
        if nf in ("hss", "icscf", "scscf"):
            check(re.search(r"port: 3868, targetPort: diameter, protocol: TCP", text), "%s Service: Diameter 3868/TCP" % nf)
    cfg = read("configmap-nf.yaml")
    check(cfg.count("address: hss.ims.svc.cluster.local") == 2,
          "the CSCFs' Diameter peer must be the hss Service's DNS name")


def broken_copy(tmp, label, filename, transform):
    d = os.path.join(tmp, label)
    shutil.copytree(K8S, d)
    path = os.path.join(d, filename)
    with open(path) as f:
        text = f.read()
    new = transform(text)
    check(new != text, "%s: the change did not apply to %s (manifest changed?)" % (label, filename))
    with open(path, "w") as f:
        f.write(new)
    return d


BROKEN = [
    # (label, file, transform, expected message)
    ("replicas-two", "icscf.yaml", lambda t: t.replace("  replicas: 1\n", '  replicas: "two"\n'),
     "/spec/replicas must be integer"),
    ("container-without-name", "scscf.yaml",
     lambda t: t.replace("        - name: scscf\n          image: imscore:latest\n", "        - image: imscore:latest\n"),
     "must have required property name"),
    ("container-without-image", "pcscf.yaml", lambda t: t.replace("          image: imscore:latest\n", ""),
     "container pcscf: no image"),
    ("service-port-not-a-number", "hss.yaml", lambda t: t.replace("port: 3868, targetPort", "port: diameter, targetPort", 1),
     "must be integer"),
    ("probe-on-unknown-port", "hss.yaml", lambda t: t.replace("httpGet: {path: /readyz, port: http}",
                                                              "httpGet: {path: /readyz, port: htp}"),
     "readinessProbe port htp is not a named port"),
    ("configmap-key-missing", "configmap-nf.yaml", lambda t: t.replace("  scscf.yaml: |\n", "  scscf-typo.yaml: |\n"),
     "has no key scscf.yaml"),
    ("file-not-in-kustomization", "kustomization.yaml", lambda t: t.replace("  - pcscf.yaml\n", ""),
     "pcscf.yaml is not in resources"),
    ("subscribers-drift", "configmap-subscribers.yaml", lambda t: t.replace("alicepass", "alicepass2"),
     "differs from"),
    ("scscf-name-mismatch", "configmap-nf.yaml",
     lambda t: t.replace('scscf_names: ["sip:scscf.ims.svc.cluster.local:5060"]', 'scscf_names: ["sip:other:5060"]'),
     "hss.scscf_names does not hold"),
]


def test_broken_copies_rejected(tmp):
    for label, filename, transform, expect in BROKEN:
        d = broken_copy(tmp, label, filename, transform)
        rc, out = validate(d)
        check(rc == 1, "%s: not rejected (rc %s):\n%s" % (label, rc, out))
        check(expect in out, "%s: rejected, but not for %r:\n%s" % (label, expect, out))
        print("rejected as expected (%s): %s" % (label, next(line for line in out.splitlines() if expect in line)))


if __name__ == "__main__":
    harness.main()
