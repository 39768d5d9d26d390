"""deploy/k8s and its HA overlay deploy/k8s-ha: every manifest valid for its kind
(kubernetes-models, offline), the references between them sound (tests/deploy/validate-k8s.mjs,
which renders the overlay itself: a kustomize subset), and broken copies rejected. Where kubectl
is installed, its own `kubectl kustomize deploy/k8s-ha` must render the same objects.

Needs node and the npm packages kubernetes-models + yaml in $K8S_VALIDATE_MODULES/node_modules
(ctest runs tests/deploy/setup.sh first: fixture k8s_modules)."""

import json
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
K8S_HA = os.path.join(SOURCE_DIR, "deploy", "k8s-ha")
SUBSCRIBERS = os.path.join(SOURCE_DIR, "deploy", "config", "subscribers.yaml")
VALIDATOR = os.path.join(HERE, "validate-k8s.mjs")
MODULES = os.environ.get("K8S_VALIDATE_MODULES") or os.path.join(harness.BUILD_DIR, "tests", "deploy", "k8s-validate")


def validate(directory, subscribers=SUBSCRIBERS, extra=()):
    node = shutil.which("node")
    if not node:
        raise TestFailure("node not found (Debian package nodejs)")
    cmd = [node, VALIDATOR, "--modules", MODULES] + list(extra)
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
            ("Service", "hss"), ("Service", "icscf"), ("Service", "scscf"), ("Service", "pcscf"),
            ("Deployment", "rtpengine"), ("Service", "rtpengine"), ("NetworkPolicy", "rtpengine")}
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


def configmap_value(text, key):
    """The text of a ConfigMap data key (a `key: |` block, 4-space indented), unindented."""
    m = re.search(r"^  %s: \|\n((?:(?:    .*)?\n)*)" % re.escape(key), text, re.M)
    check(m, "configmap-nf.yaml: no key %s" % key)
    return "\n".join(line[4:] for line in m.group(1).splitlines()) + "\n"


def test_rtpengine():
    """rtpengine: the P-CSCF's media config points at its Service; ng control (no authentication)
    is open to the P-CSCF's pods only; the RTP range is the same in the daemon's config and the
    NetworkPolicy; the daemon runs in userspace as non-root; pcscf-media.yaml is pcscf.yaml plus
    pcscf.media and nothing else (no drift between the two P-CSCF configs)."""
    with open(os.path.join(K8S, "rtpengine.yaml")) as f:
        rtpe = f.read()
    with open(os.path.join(K8S, "configmap-nf.yaml")) as f:
        cfg = f.read()
    plain, media = configmap_value(cfg, "pcscf.yaml"), configmap_value(cfg, "pcscf-media.yaml")
    m = re.search(r"^  media:.*\n((?:    .*\n)*)", media, re.M)
    check(m, "pcscf-media.yaml: no pcscf.media section")
    check(media.replace(m.group(0), "") == plain,
          "pcscf-media.yaml differs from pcscf.yaml in more than pcscf.media:\n%s" % media.replace(m.group(0), ""))
    section = m.group(1)
    check("anchor: rtpengine" in section, "pcscf.media.anchor must be rtpengine")
    check('rtpengine: ["rtpengine.ims.svc.cluster.local:2223"]' in section,
          "pcscf.media.rtpengine must be the rtpengine Service's ng port: %r" % section)
    for iface in ("access", "core"):
        check("%s_interface: %s" % (iface, iface) in section, "pcscf.media.%s_interface" % iface)
        check('"--interface=%s/$(POD_IP)"' % iface in rtpe, "rtpengine: no interface %s on the pod IP" % iface)
    check('"--listen-ng=$(POD_IP):2223"' in rtpe and "fieldPath: status.podIP" in rtpe, "rtpengine: ng on the pod IP")
    check(re.search(r"port: 2223, targetPort: ng, protocol: UDP", rtpe), "rtpengine Service: ng 2223/UDP")
    conf = configmap_value(cfg, "rtpengine.conf")
    check("table = -1" in conf, "rtpengine.conf: userspace forwarding (table = -1)")
    lo, hi = (int(re.search(r"^port-%s = (\d+)" % k, conf, re.M).group(1)) for k in ("min", "max"))
    check("{protocol: UDP, port: %d, endPort: %d}" % (lo, hi) in rtpe,
          "NetworkPolicy: the RTP range %d-%d of rtpengine.conf" % (lo, hi))
    pol = rtpe[rtpe.index("kind: NetworkPolicy"):]
    ng_rule = re.search(r"- from:\n\s+- podSelector:\n\s+matchLabels: \{app.kubernetes.io/name: pcscf\}\n"
                        r"\s+ports:\n\s+- \{protocol: UDP, port: 2223\}", pol)
    check(ng_rule and pol.count("port: 2223") == 1, "NetworkPolicy: 2223/UDP from the P-CSCF's pods only")
    check("runAsNonRoot: true" in rtpe and 'drop: ["ALL"]' in rtpe and "allowPrivilegeEscalation: false" in rtpe,
          "rtpengine runs non-root without capabilities")
    # The same daemon options as the compose lab, apart from the addresses.
    with open(os.path.join(SOURCE_DIR, "deploy", "compose", "rtpengine.conf")) as f:
        compose = [line for line in f.read().splitlines()
                   if line and not line.startswith("#") and not line.startswith(("interface", "listen-ng"))]
    check(compose == [line for line in conf.splitlines() if line],
          "rtpengine.conf of the ConfigMap and deploy/compose/rtpengine.conf differ:\n%s\n%s" % (compose, conf))


def broken_copy(tmp, label, filename, transform, ha=False):
    """A copy of deploy/k8s (with ha: of deploy/k8s and deploy/k8s-ha side by side, the overlay's
    ../k8s intact) with transform applied to filename; the directory to validate."""
    d = os.path.join(tmp, ("ha-" if ha else "") + label)
    shutil.copytree(K8S, os.path.join(d, "k8s") if ha else d)
    if ha:
        shutil.copytree(K8S_HA, os.path.join(d, "k8s-ha"))
        d = os.path.join(d, "k8s-ha")
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
    ("rtpengine-service-port", "rtpengine.yaml", lambda t: t.replace("{name: ng, port: 2223,", "{name: ng, port: 2224,"),
     "Service rtpengine has no UDP port 2223"),
    ("rtpengine-service-name", "configmap-nf.yaml", lambda t: t.replace('["rtpengine.ims.svc.cluster.local:2223"]',
                                                                         '["rtpe.ims.svc.cluster.local:2223"]'),
     "no Service rtpe in namespace ims"),
    ("networkpolicy-selects-nothing", "rtpengine.yaml",
     lambda t: t.replace("  podSelector:\n    matchLabels: {app.kubernetes.io/name: rtpengine}",
                         "  podSelector:\n    matchLabels: {app.kubernetes.io/name: rtpengin}"),
     "podSelector selects no Deployment"),
]


def check_rejected(tmp, cases, ha=False):
    for label, filename, transform, expect in cases:
        d = broken_copy(tmp, label, filename, transform, ha)
        rc, out = validate(d)
        check(rc == 1, "%s: not rejected (rc %s):\n%s" % (label, rc, out))
        check(expect in out, "%s: rejected, but not for %r:\n%s" % (label, expect, out))
        print("rejected as expected (%s): %s" % (label, next(line for line in out.splitlines() if expect in line)))


def test_broken_copies_rejected(tmp):
    check_rejected(tmp, BROKEN)


def test_ha_overlay_valid():
    """deploy/k8s-ha rendered over deploy/k8s: the S-CSCF a StatefulSet of 2 (the Deployment gone),
    the HSS a Deployment of 2 (the SQLite StatefulSet and its headless Service gone), Redis and
    PostgreSQL StatefulSets with PVCs behind NetworkPolicies, the Secret ims-db; the validator's
    cross-checks (names per pod, Secret references, Service addresses) pass."""
    rc, out = validate(K8S_HA)
    print(out.strip().splitlines()[-1])
    check(rc == 0, "deploy/k8s-ha is not valid:\n%s" % out)
    kinds = set(re.findall(r"^ok \S+ (\w+)/(\S+)", out, re.M))
    want = {("StatefulSet", "scscf"), ("Deployment", "hss"), ("StatefulSet", "redis"), ("StatefulSet", "postgres"),
            ("Service", "redis"), ("Service", "postgres"), ("Service", "scscf"), ("Service", "hss"),
            ("NetworkPolicy", "redis"), ("NetworkPolicy", "postgres"), ("Secret", "ims-db"),
            ("Deployment", "icscf"), ("Deployment", "pcscf"), ("Deployment", "rtpengine")}
    check(want <= kinds, "missing objects: %s" % sorted(want - kinds))
    gone = {("Deployment", "scscf"), ("StatefulSet", "hss"), ("Service", "hss-headless")}
    check(not (gone & kinds), "the overlay must remove %s" % sorted(gone & kinds))
    objs = rendered(K8S_HA)
    get = lambda kind, name: next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)  # noqa: E731
    scscf = get("StatefulSet", "scscf")
    check(scscf["spec"]["replicas"] == 2 and scscf["spec"]["serviceName"] == "scscf", "S-CSCF: 2 replicas, service scscf")
    check(get("Service", "scscf")["spec"].get("clusterIP") == "None", "Service scscf must be headless")
    check(get("Deployment", "hss")["spec"]["replicas"] == 2, "HSS: 2 replicas")
    for name, mount in (("redis", "/data"), ("postgres", "/var/lib/postgresql/data")):
        ss = get("StatefulSet", name)
        check(ss["spec"].get("volumeClaimTemplates"), "%s: a volumeClaimTemplate" % name)
        mounts = ss["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        check({"name": "data", "mountPath": mount} in mounts, "%s: the PVC at %s" % (name, mount))
        pol = get("NetworkPolicy", name)["spec"]["ingress"]
        peer = {"redis": "scscf", "postgres": "hss"}[name]
        check(len(pol) == 1 and pol[0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": peer}}}],
              "NetworkPolicy %s: only the %s pods may connect: %r" % (name, peer, pol))
    cfg = get("ConfigMap", "ims-config")["data"]
    check("password" not in cfg["hss.yaml"].split("conninfo:")[1].splitlines()[0], "no password in hss.store.conninfo")
    check(cfg["pcscf.yaml"] == configmap_value(open(os.path.join(K8S, "configmap-nf.yaml")).read(), "pcscf.yaml"),
          "the overlay must leave the base's pcscf.yaml as it is")


def rendered(directory):
    rc, out = validate(directory, extra=["--print"])
    check(rc == 0, "validate-k8s.mjs --print %s failed:\n%s" % (directory, out))
    return json.loads(out)


def test_ha_overlay_as_kubectl_renders_it():
    """The validator's rendering is kustomize's: `kubectl kustomize deploy/k8s-ha` (kubectl is not
    a Debian package: skipped, with a message, where it is not installed) gives the same objects,
    field for field."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("SKIP the comparison with kubectl kustomize: kubectl not installed (the validator's own "
              "rendering is checked by the other tests)")
        return
    import yaml
    r = subprocess.run([kubectl, "kustomize", K8S_HA], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "kubectl kustomize %s: %s" % (K8S_HA, r.stderr))
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    theirs = {key(o): o for o in yaml.safe_load_all(r.stdout) if o}
    ours = {key(o): o for o in rendered(K8S_HA)}
    check(sorted(theirs) == sorted(ours), "objects differ: kubectl %s, validator %s" % (sorted(theirs), sorted(ours)))
    for k in ours:
        a, b = json.dumps(ours[k], sort_keys=True), json.dumps(theirs[k], sort_keys=True)
        check(a == b, "%s/%s differs:\nvalidator %s\nkubectl   %s" % (k + (a, b)))
    print("kubectl kustomize and the validator render the same %d objects" % len(ours))


BROKEN_HA = [
    ("scscf-three-replicas", "scscf.yaml", lambda t: t.replace("  replicas: 2\n", "  replicas: 3\n"),
     "are not the S-CSCF pods' names"),
    ("scscf-name-not-per-pod", "scscf.yaml",
     lambda t: t.replace('value: "sip:$(POD_NAME).scscf.ims.svc.cluster.local:5060"', 'value: "sip:scscf.ims.lab:5060"'),
     "is the same for every pod"),
    ("scscf-shared-diameter-identity", "scscf.yaml",
     lambda t: t.replace('value: "$(POD_NAME).ims.lab"', 'value: "scscf.ims.lab"'), "its own Diameter identity"),
    ("env-reference-undefined", "scscf.yaml",
     lambda t: t.replace('value: "$(POD_NAME).scscf.ims.svc.cluster.local"}', 'value: "$(POD).scscf.ims.svc.cluster.local"}'),
     "uses $(POD), not defined before it"),
    ("password-in-configmap", "configmap-ha.yaml", lambda t: t.replace("user=hss connect_timeout=5", "user=hss password=x"),
     "a password in a connection string"),
    ("secret-key-missing", "hss.yaml", lambda t: t.replace("key: password}", "key: passwd}"),
     "Secret ims-db has no key passwd"),
    ("secret-value-in-configmap", "configmap-ha.yaml",
     lambda t: t.replace("      max_auth_items: 5\n", "      max_auth_items: 5\n      # change-me-before-apply\n"),
     "holds the value of Secret ims-db"),
    ("redis-service-name", "configmap-ha.yaml", lambda t: t.replace("redis: redis.ims.svc", "redis: rediss.ims.svc"),
     "no Service rediss in namespace ims"),
    ("postgres-port", "configmap-ha.yaml", lambda t: t.replace("port=5432 dbname", "port=5433 dbname"),
     "Service postgres has no TCP port 5433"),
    ("hss-replicas-on-sqlite", "configmap-ha.yaml", lambda t: t.replace("backend: postgresql", "backend: sqlite"),
     "HSS replicas on SQLite"),
    ("scscf-memory-store", "configmap-ha.yaml", lambda t: t.replace("backend: redis", "backend: memory"),
     "without store.backend redis"),
    ("patch-target-missing", "delete-scscf-deployment.yaml", lambda t: t.replace("name: scscf\n", "name: scscf-x\n"),
     "no apps/v1 Deployment/scscf-x to patch"),
    ("not-ready-pods-unnamed", "scscf-service-headless.yaml",
     lambda t: t.replace("publishNotReadyAddresses: true", "publishNotReadyAddresses: false"),
     "publishNotReadyAddresses must be true"),
    ("overlay-file-not-listed", "kustomization.yaml", lambda t: t.replace("  - redis.yaml\n", ""),
     "redis.yaml is not in resources"),
    ("unrendered-kustomize-feature", "kustomization.yaml", lambda t: t + "replicas:\n  - {name: hss, count: 3}\n",
     "replicas: not a kustomize feature this validator renders"),
]


def test_ha_broken_copies_rejected(tmp):
    check_rejected(tmp, BROKEN_HA, ha=True)
    # The copy itself, unchanged, is accepted: the rejections come from the changes.
    d = broken_copy(tmp, "unchanged", "kustomization.yaml", lambda t: t + "\n", ha=True)
    rc, out = validate(d)
    check(rc == 0, "an unchanged copy of deploy/k8s-ha is rejected:\n%s" % out)


if __name__ == "__main__":
    harness.main()
