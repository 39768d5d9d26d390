"""deploy/docker-compose.yml: accepted by Debian's docker-compose 1.29 (`config -q`, offline), broken
copies rejected, and consistent with the NF configs it mounts (deploy/compose/<nf>.yaml); the
rtpengine service consistent with its config (deploy/compose/rtpengine.conf), the media overlay
docker-compose.media.yml accepted and its P-CSCF config the plain one plus pcscf.media only; the
HA overlay docker-compose.ha.yml (Redis, PostgreSQL, two HSS, two S-CSCFs) accepted alone and with
the media overlay, consistent with its configs (deploy/compose/ha) and with deploy/lab's IMS_LAB_HA
variant, no password in any config file, Redis and PostgreSQL not published.

Needs docker-compose (Debian package docker-compose); no Docker engine."""

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
DEPLOY = os.path.join(SOURCE_DIR, "deploy")
COMPOSE = os.path.join(DEPLOY, "docker-compose.yml")
COMPOSE_MEDIA = os.path.join(DEPLOY, "docker-compose.media.yml")
COMPOSE_HA = os.path.join(DEPLOY, "docker-compose.ha.yml")
HA_ADDRESSES = {"scscf2": "172.22.0.15", "hss2": "172.22.0.16", "redis": "172.22.0.20", "postgres": "172.22.0.21"}
RTPENGINE = "172.22.0.14"
ADDRESSES = {"hss": "172.22.0.10", "icscf": "172.22.0.11", "scscf": "172.22.0.12", "pcscf": "172.22.0.13"}


def docker_compose():
    exe = shutil.which("docker-compose")
    if not exe:
        raise TestFailure("docker-compose not found (Debian package docker-compose; 1.29 is the version checked)")
    return exe


def compose_config(path, *overlays):
    files = [a for f in (path,) + overlays for a in ("-f", f)]
    r = subprocess.run([docker_compose()] + files + ["config", "-q"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, COMPOSE_INTERACTIVE_NO_CLI="1"))
    return r.returncode, r.stdout + r.stderr


def read(path):
    with open(path) as f:
        return f.read()


def copy_deploy(tmp):
    """deploy/ copied into tmp (the compose file's relative paths keep their meaning)."""
    d = os.path.join(tmp, "deploy")
    shutil.copytree(DEPLOY, d, ignore=shutil.ignore_patterns("k8s"))
    return os.path.join(d, "docker-compose.yml")


def test_version_is_1_29():
    out = subprocess.run([docker_compose(), "version", "--short"], capture_output=True, text=True, timeout=30).stdout
    print("docker-compose %s" % out.strip())
    check(out.strip().startswith("1."), "expected docker-compose 1.x (Debian 12: 1.29.2), got %r" % out)


def test_compose_file_valid():
    rc, out = compose_config(COMPOSE)
    check(rc == 0, "docker-compose config -q rejected %s:\n%s" % (COMPOSE, out))
    check(out.strip() == "", "docker-compose config -q printed warnings:\n%s" % out)


BROKEN = [
    # (what, transform(text) -> text, part of the expected message)
    ("unknown service key", lambda t: t.replace("    hostname: icscf\n", "    hostname: icscf\n    hostnme: x\n"),
     "hostnme"),
    ("top-level name (compose v2 only)", lambda t: "name: ims\n" + t, "name"),
    ("depends_on.required (compose v2 only)",
     lambda t: t.replace("        condition: service_healthy\n    networks:\n      ims:\n        ipv4_address: 172.22.0.11",
                         "        condition: service_healthy\n        required: true\n    networks:\n      ims:\n"
                         "        ipv4_address: 172.22.0.11"), "required"),
    ("port as a list of numbers", lambda t: t.replace('      - "5060:5060/udp"\n', "      - [5060, 5060]\n"), "ports"),
    ("healthcheck retries not a number", lambda t: t.replace("    retries: 3\n", "    retries: three\n"), "retries"),
]


def test_broken_copies_rejected(tmp):
    original = read(COMPOSE)
    for what, transform, expect in BROKEN:
        broken = transform(original)
        check(broken != original, "%s: the transformation did not apply (compose file changed?)" % what)
        path = copy_deploy(os.path.join(tmp, re.sub(r"\W+", "-", what)))
        with open(path, "w") as f:
            f.write(broken)
        rc, out = compose_config(path)
        check(rc != 0, "%s: docker-compose config -q accepted the broken copy %s" % (what, path))
        check(expect in out, "%s: rejected, but the message does not name %r:\n%s" % (what, expect, out))
        print("rejected as expected (%s): %s" % (what, out.strip().splitlines()[-1]))
    # The copy itself, unbroken, is accepted: the rejections come from the changes.
    path = copy_deploy(os.path.join(tmp, "unchanged"))
    rc, out = compose_config(path)
    check(rc == 0, "an unchanged copy of deploy/ is rejected:\n%s" % out)


def services(text):
    """{service: block text} of the top-level services: section (2-space indented names)."""
    m = re.search(r"^services:\n(.*?)(?=^\S)", text, re.M | re.S)
    check(m, "no services: section")
    out = {}
    for sm in re.finditer(r"^  (\w[\w-]*):\n((?:^(?:    .*|\s*)\n)*)", m.group(1), re.M):
        out[sm.group(1)] = sm.group(2)
    return out


def test_services_match_nf_configs():
    text = read(COMPOSE)
    check(not re.search(r"^name:", text, re.M), "top-level name: is not accepted by docker-compose 1.29")
    svcs = services(text)
    check(sorted(svcs) == sorted(list(ADDRESSES) + ["rtpengine"]),
          "services %s, expected %s and rtpengine" % (sorted(svcs), sorted(ADDRESSES)))
    check(re.search(r"subnet: 172\.22\.0\.0/24", text), "network ims must have subnet 172.22.0.0/24")
    hosts_expected = sorted("%s.ims.lab=%s" % (n, a) for n, a in ADDRESSES.items())
    for nf, addr in ADDRESSES.items():
        block = svcs[nf]
        check("ipv4_address: %s" % addr in block, "%s: ipv4_address %s expected" % (nf, addr))
        check('command: ["%s", "-c", "/etc/ims/%s.yaml"]' % (nf, nf) in block, "%s: command should run %s" % (nf, nf))
        check("./compose/%s.yaml:/etc/ims/%s.yaml:ro" % (nf, nf) in block, "%s: config mount missing" % nf)
        cfg = read(os.path.join(DEPLOY, "compose", "%s.yaml" % nf))
        listens = re.findall(r"^  listen: (\S+)", cfg, re.M)
        for value in listens:
            check(value in (addr, "0.0.0.0"), "compose/%s.yaml: listen %s, expected %s or 0.0.0.0" % (nf, value, addr))
        check(re.search(r"^http:\n(?:  .*\n)*?  listen: 0\.0\.0\.0\n(?:  .*\n)*?  port: 9090", cfg, re.M),
              "compose/%s.yaml: http must listen on 0.0.0.0:9090 (the healthcheck probes it)" % nf)
        if nf != "hss":
            hosts = re.search(r"^  hosts: \[(.*)\]", cfg, re.M)
            check(hosts, "compose/%s.yaml: no sip.hosts" % nf)
            got = sorted(h.strip().strip('"') for h in hosts.group(1).split(","))
            check(got == hosts_expected, "compose/%s.yaml: sip.hosts %s, expected %s" % (nf, got, hosts_expected))
        for peer in re.findall(r"address: ([0-9.]+)", cfg):
            check(peer == ADDRESSES["hss"], "compose/%s.yaml: Diameter peer %s is not the HSS" % (nf, peer))
    # HSS: database on the named volume, subscribers mounted and imported.
    hss = svcs["hss"]
    check("hss-data:/var/lib/ims" in hss and re.search(r"^volumes:\n  hss-data:", text, re.M),
          "the HSS database needs the named volume hss-data at /var/lib/ims")
    check("./config/subscribers.yaml:/etc/ims/subscribers.yaml:ro" in hss, "subscribers.yaml not mounted")
    hss_cfg = read(os.path.join(DEPLOY, "compose", "hss.yaml"))
    check("database: /var/lib/ims/hss.db" in hss_cfg and "import: /etc/ims/subscribers.yaml" in hss_cfg,
          "compose/hss.yaml: database/import paths do not match the mounts")
    # The S-CSCF name agrees everywhere.
    name = re.search(r"^  name: (\S+)", read(os.path.join(DEPLOY, "compose", "scscf.yaml")), re.M).group(1)
    check('"%s"' % name in hss_cfg, "hss.scscf_names does not offer %s" % name)
    check(name in read(os.path.join(DEPLOY, "compose", "icscf.yaml")), "icscf.scscfs does not hold %s" % name)
    # P-CSCF: SIP published on UDP and TCP.
    for proto in ("udp", "tcp"):
        check('"5060:5060/%s"' % proto in svcs["pcscf"], "pcscf: 5060/%s not published" % proto)
    # Every bind-mounted file exists.
    for src in re.findall(r"- (\./[^:]+):", text):
        check(os.path.exists(os.path.join(DEPLOY, src)), "mounted %s does not exist" % src)



def test_rtpengine_service():
    """rtpengine: at its fixed address, its config file mounted, the address it listens on for ng
    is its own (and the healthcheck pings that), ng is not published (no authentication), the
    published RTP range is the config's, userspace forwarding; the image a user can pull by
    default, another through IMS_RTPENGINE_IMAGE."""
    text = read(COMPOSE)
    block = services(text)["rtpengine"]
    conf = read(os.path.join(DEPLOY, "compose", "rtpengine.conf"))
    opts = dict(re.findall(r"^([a-z-]+) = (.*)$", conf, re.M))
    check("ipv4_address: %s" % RTPENGINE in block, "rtpengine: ipv4_address %s expected" % RTPENGINE)
    check("./compose/rtpengine.conf:/etc/rtpengine/ims.conf:ro" in block, "rtpengine: config mount missing")
    check('entrypoint: ["rtpengine"]' in block and '"--config-file=/etc/rtpengine/ims.conf"' in block,
          "rtpengine: entrypoint rtpengine with the mounted config file (the same for every image)")
    check(re.search(r"image: \$\{IMS_RTPENGINE_IMAGE:-drachtio/rtpengine:\S+\}", block),
          "rtpengine: the public image by default, IMS_RTPENGINE_IMAGE to override")
    check(opts.get("table") == "-1", "rtpengine.conf: userspace forwarding (table = -1)")
    check(opts.get("listen-ng") == "%s:2223" % RTPENGINE, "rtpengine.conf: listen-ng %r, expected %s:2223" %
          (opts.get("listen-ng"), RTPENGINE))
    check(opts.get("interface") == "access/%s;core/%s" % (RTPENGINE, RTPENGINE),
          "rtpengine.conf: interfaces access and core on %s: %r" % (RTPENGINE, opts.get("interface")))
    check("/dev/udp/%s/2223" % RTPENGINE in block, "rtpengine: the healthcheck must ping its ng address")
    published = re.findall(r'- "([^"]+)"', block.split("ports:")[1].split("networks:")[0])
    rng = "%s-%s" % (opts["port-min"], opts["port-max"])
    check(published == ["%s:%s/udp" % (rng, rng)], "rtpengine: publish exactly the RTP range %s/udp: %r" %
          (rng, published))
    check("2223" not in " ".join(published), "rtpengine: the ng port must not be published")


def test_media_overlay(tmp):
    """docker-compose.media.yml with the base file: accepted; it mounts compose/pcscf-media.yaml,
    which is compose/pcscf.yaml plus pcscf.media (pointing at the rtpengine service's ng address)
    and nothing else."""
    rc, out = compose_config(COMPOSE, COMPOSE_MEDIA)
    check(rc == 0 and out.strip() == "", "docker-compose config -q with the media overlay:\n%s" % out)
    overlay = read(COMPOSE_MEDIA)
    check("./compose/pcscf-media.yaml:/etc/ims/pcscf.yaml:ro" in overlay, "the overlay must mount pcscf-media.yaml")
    plain, media = (read(os.path.join(DEPLOY, "compose", f)) for f in ("pcscf.yaml", "pcscf-media.yaml"))
    m = re.search(r"^  media:.*\n((?:    .*\n)*)", media, re.M)
    check(m, "pcscf-media.yaml: no pcscf.media section")
    strip = lambda t: [line for line in t.splitlines() if not line.startswith("#")]  # noqa: E731 (header comments)
    check(strip(media.replace(m.group(0), "")) == strip(plain),
          "compose/pcscf-media.yaml differs from compose/pcscf.yaml in more than pcscf.media")
    check('rtpengine: ["%s:2223"]' % RTPENGINE in m.group(1) and "anchor: rtpengine" in m.group(1),
          "pcscf.media must anchor in %s:2223: %r" % (RTPENGINE, m.group(1)))
    # A broken overlay is rejected too (the file is parsed, not just present).
    check_broken_overlay(tmp, "docker-compose.media.yml",
                         overlay.replace("        condition: service_healthy", "        condition: service_happy"),
                         "service_happy")


def check_broken_overlay(tmp, name, text, expect):
    """The overlay `name` of a copy of deploy/, replaced by text, is rejected naming expect."""
    path = copy_deploy(os.path.join(tmp, name))
    bad = os.path.join(os.path.dirname(path), name)
    with open(bad, "w") as f:
        f.write(text)
    rc, out = compose_config(path, bad)
    check(rc != 0 and expect in out, "a broken %s was accepted:\n%s" % (name, out))


def lab_env(nf):
    """The environment deploy/lab gives an NF in its HA variant (start_nf's case), {name: value}."""
    text = read(os.path.join(DEPLOY, "lab"))
    text = text[text.index("start_nf() {"):]
    m = re.search(r"^    %s\) (.*?);;" % re.escape(nf), text, re.M | re.S)
    check(m, "deploy/lab: no environment for %s in start_nf" % nf)
    pairs = re.findall(r'"(IMS_[A-Z_]+)=([^"]*)"', m.group(1))
    return {k: re.sub(r"\$\{ADDR\[(\w+)\]\}", lambda a: ({**ADDRESSES, **HA_ADDRESSES})[a.group(1)], v) for k, v in pairs}


def compose_env(block):
    """The environment: mapping of a service block, {name: value} (quotes removed)."""
    m = re.search(r"^    environment:\n((?:      .*\n)*)", block, re.M)
    return {k: v.strip().strip('"') for k, v in re.findall(r"^      (\w+): (.*)$", m.group(1), re.M)} if m else {}


def test_ha_overlay(tmp):
    """docker-compose.ha.yml: accepted with the base file, and with the media overlay too; the new
    services at their addresses; the public redis/postgres images by default (IMS_REDIS_IMAGE /
    IMS_POSTGRES_IMAGE for the container lab's local ones); neither published on the host; the
    database password only from IMS_DB_PASSWORD (never in a config file); the second HSS and
    S-CSCF are the first's config with the same environment deploy/lab IMS_LAB_HA=1 gives them;
    the S-CSCF names agree with hss.scscf_names and icscf.scscfs; a broken overlay is rejected."""
    for files in ((COMPOSE, COMPOSE_HA), (COMPOSE, COMPOSE_HA, COMPOSE_MEDIA)):
        rc, out = compose_config(*files)
        check(rc == 0 and out.strip() == "", "docker-compose config -q %s:\n%s" % (" ".join(map(os.path.basename, files)), out))
    text = read(COMPOSE_HA)
    svcs = services(text)
    for nf, addr in HA_ADDRESSES.items():
        check(nf in svcs and "ipv4_address: %s" % addr in svcs[nf], "ha: %s at %s expected" % (nf, addr))
    check(re.search(r"image: \$\{IMS_REDIS_IMAGE:-redis:7\}", svcs["redis"]) and
          re.search(r"image: \$\{IMS_POSTGRES_IMAGE:-postgres:15\}", svcs["postgres"]),
          "ha: the public redis:7 / postgres:15 images by default, IMS_REDIS_IMAGE / IMS_POSTGRES_IMAGE to override")
    for nf in ("redis", "postgres"):
        check("ports:" not in svcs[nf], "ha: %s must not be published on the host" % nf)
    # The password: from IMS_DB_PASSWORD into POSTGRES_PASSWORD and the HSS' PGPASSWORD, nowhere else.
    for nf, var in (("postgres", "POSTGRES_PASSWORD"), ("hss", "PGPASSWORD"), ("hss2", "PGPASSWORD")):
        check(compose_env(svcs[nf]).get(var, "").startswith("${IMS_DB_PASSWORD"), "ha: %s %s from IMS_DB_PASSWORD" % (nf, var))
    ha_dir = os.path.join(DEPLOY, "compose", "ha")
    for f in sorted(os.listdir(ha_dir)):
        cfg = read(os.path.join(ha_dir, f))
        check(not re.search(r"password\s*=|^\s*password:", cfg, re.M), "compose/ha/%s holds a password" % f)
    hss = read(os.path.join(ha_dir, "hss.yaml"))
    check("backend: postgresql" in hss and "host=%s port=5432" % HA_ADDRESSES["postgres"] in hss,
          "compose/ha/hss.yaml: PostgreSQL at the service postgres")
    scscf = read(os.path.join(ha_dir, "scscf.yaml"))
    check(re.search(r"^store:.*\n  backend: redis\n  redis: %s:6379" % re.escape(HA_ADDRESSES["redis"]), scscf, re.M),
          "compose/ha/scscf.yaml: store in the service redis")
    # The second instances: compose and deploy/lab give them the same environment.
    for nf in ("hss2", "scscf2", "pcscf"):
        env = compose_env(svcs[nf])
        env.pop("PGPASSWORD", None)
        check(env == lab_env(nf), "the environment of %s differs between docker-compose.ha.yml and deploy/lab:\n%r\n%r" %
              (nf, env, lab_env(nf)))
    names = ["sip:scscf.ims.lab:5060", compose_env(svcs["scscf2"])["IMS_SCSCF_NAME"]]
    check(re.search(r"^  name: %s " % re.escape(names[0]), scscf, re.M), "compose/ha/scscf.yaml: scscf.name %s" % names[0])
    icscf = read(os.path.join(ha_dir, "icscf.yaml"))
    check(re.findall(r'- name: "(\S+)"', icscf) == names, "icscf.scscfs must be exactly %r" % names)
    check('scscf_names: ["%s", "%s"]' % tuple(names) in hss, "hss.scscf_names must be exactly %r" % names)
    # The P-CSCF's hosts/trust (environment) and the CSCF configs' know the same six NFs.
    hosts = sorted("%s.ims.lab=%s" % (n, a) for n, a in {**ADDRESSES, "scscf2": "172.22.0.15", "hss2": "172.22.0.16"}.items())
    check(sorted(compose_env(svcs["pcscf"])["IMS_PCSCF_SIP_HOSTS"].split(",")) == hosts, "pcscf: sip.hosts of the HA variant")
    for f in ("icscf.yaml", "scscf.yaml"):
        got = sorted(h.strip().strip('"') for h in re.search(r"^  hosts: \[(.*?)\]", read(os.path.join(ha_dir, f)),
                                                              re.M | re.S).group(1).replace("\n", " ").split(","))
        check(got == hosts, "compose/ha/%s: sip.hosts %s, expected %s" % (f, got, hosts))
    for src in re.findall(r"- (\./[^:]+):", text):
        check(os.path.exists(os.path.join(DEPLOY, src)), "mounted %s does not exist" % src)
    check_broken_overlay(tmp, "docker-compose.ha.yml", text.replace("      POSTGRES_DB: hss\n", "      POSTGRES_DB: [hss]\n"),
                         "POSTGRES_DB")


if __name__ == "__main__":
    harness.main()
