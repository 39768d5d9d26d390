"""deploy/Dockerfile without Docker: its package steps are scripts/install-deps.sh (one source of
truth), the build is the release build with -Werror, the runtime image runs as uid 10001 with
every binary, and the runtime package list covers every shared library the binaries need; and
deploy/rtpengine/Dockerfile (the Debian-package rtpengine the container lab runs in place of the
public image) is a userspace, non-root rtpengine run the way docker-compose.yml runs it."""

import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "component"))

import harness  # noqa: E402
from harness import check  # noqa: E402

SOURCE_DIR = harness.SOURCE_DIR
BUILD_DIR = harness.BUILD_DIR
DOCKERFILE = os.path.join(SOURCE_DIR, "deploy", "Dockerfile")
INSTALL_DEPS = os.path.join(SOURCE_DIR, "scripts", "install-deps.sh")
BINARIES = ["hss/hss", "icscf/icscf", "scscf/scscf", "pcscf/pcscf", "hss/imsctl", "hss/imscx"]


def instructions(path=DOCKERFILE):
    """[(stage index, INSTRUCTION, arguments)] with continuation lines joined, comments dropped."""
    with open(path) as f:
        text = f.read()
    lines, cur = [], ""
    for raw in text.splitlines():
        if not cur and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1] + " "
            continue
        lines.append(cur + raw)
        cur = ""
    out, stage = [], -1
    for line in lines:
        word, _, args = line.strip().partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, " ".join(args.split())))
    return out


def test_stages_are_debian_12_slim():
    froms = [a for _, w, a in instructions() if w == "FROM"]
    check(len(froms) == 2, "expected two stages (build, runtime), got %r" % froms)
    for a in froms:
        check(a.split()[0] == "debian:12-slim", "stage %r is not debian:12-slim" % a)
    check(froms[0].endswith(" AS build"), "the first stage should be named build: %r" % froms[0])


def test_packages_only_from_install_deps():
    ins = instructions()
    runs = [(s, a) for s, w, a in ins if w == "RUN"]
    # No package manager anywhere but through the script.
    for s, a in runs:
        check(not re.search(r"\b(apt-get|apt|dpkg|aptitude)\s+(install|-i)\b", a),
              "stage %d installs packages itself (use scripts/install-deps.sh): RUN %s" % (s, a))
    build_runs = [a for s, a in runs if s == 0]
    runtime_runs = [a for s, a in runs if s == 1]
    i_deps = next((i for i, a in enumerate(build_runs) if re.search(r"\bbash scripts/install-deps\.sh(\s|&|$)", a)
                   and "install-deps.sh runtime" not in a), None)
    i_cmake = next((i for i, a in enumerate(build_runs) if "cmake " in a), None)
    check(i_deps is not None, "build stage: no 'RUN bash scripts/install-deps.sh' (full package list)")
    check(i_cmake is not None and i_deps < i_cmake, "build stage: install-deps.sh must run before cmake")
    check(any(re.search(r"\bbash \S*install-deps\.sh runtime\b", a) for a in runtime_runs),
          "runtime stage: no 'RUN bash .../install-deps.sh runtime'")
    copies = [a for s, w, a in ins if w == "COPY"]
    check(any("scripts/install-deps.sh" in a for a in copies), "the script is not copied into the image")
    with open(INSTALL_DEPS) as f:
        script = f.read()
    check('"${1:-}" = "runtime"' in script, "scripts/install-deps.sh no longer takes the 'runtime' argument")


def test_build_and_runtime_image():
    ins = instructions()
    build = " ".join(a for s, w, a in ins if s == 0 and w == "RUN")
    check("-DCMAKE_BUILD_TYPE=Release" in build and "-DIMS_WERROR=ON" in build,
          "the build must be Release with -DIMS_WERROR=ON")
    for b in BINARIES:
        check("/build/%s" % b in build, "the build stage does not collect %s" % b)
    runtime = [(w, a) for s, w, a in ins if s == 1]
    check(("USER", "10001:10001") in runtime or ("USER", "10001") in runtime, "the runtime image must run as uid 10001")
    check(any(w == "RUN" and "--uid 10001" in a for w, a in runtime), "no user with uid 10001 is created")
    check(any(w == "COPY" and a.startswith("--from=build ") for w, a in runtime), "binaries not copied from the build stage")
    cmd = [a for w, a in runtime if w == "CMD"]
    check(cmd == ['["hss", "-c", "/etc/ims/hss.yaml"]'], "CMD %r" % cmd)
    # Every file the Dockerfile copies from the context exists.
    for w, a in runtime + [(w, a) for s, w, a in ins if s == 0]:
        if w != "COPY" or a.startswith("--from"):
            continue
        for src in a.split()[:-1]:
            if src != ".":
                check(os.path.exists(os.path.join(SOURCE_DIR, src)), "COPY %s: no such file in the repository" % src)


def runtime_packages():
    with open(INSTALL_DEPS) as f:
        m = re.search(r'^RUNTIME_PKGS="([^"]*)"', f.read(), re.M)
    check(m, "no RUNTIME_PKGS in scripts/install-deps.sh")
    return set(m.group(1).split())


def test_runtime_packages_cover_the_binaries():
    """NEEDED libraries of the built binaries -> their Debian packages, all in RUNTIME_PKGS (libc6
    is in every image); and the freeDiameter dictionaries the NFs load."""
    pkgs = runtime_packages()
    needed = set()
    for b in BINARIES:
        path = os.path.join(BUILD_DIR, b)
        check(os.access(path, os.X_OK), "no binary %s (build first; IMS_BUILD_DIR=%s)" % (path, BUILD_DIR))
        out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    check(needed, "no NEEDED entries found")
    # A sanitizer build (scripts/test.sh's second pass) links the sanitizer runtimes; the image's
    # Release build does not.
    needed = {lib for lib in needed if not re.match(r"lib(a|ub|l|t)san\.so", lib)}
    missing = []
    for lib in sorted(needed):
        r = subprocess.run(["dpkg", "-S", "*/%s" % lib], capture_output=True, text=True)
        owners = {line.split(":")[0] for line in r.stdout.splitlines() if ":" in line}
        if not owners:
            missing.append("%s (no package owns it)" % lib)
        elif not owners & (pkgs | {"libc6"}):
            missing.append("%s (from %s)" % (lib, ", ".join(sorted(owners))))
        else:
            print("%s <- %s" % (lib, ", ".join(sorted(owners & (pkgs | {"libc6"})))))
    check(not missing, "runtime packages miss: %s" % "; ".join(missing))
    r = subprocess.run(["dpkg", "-S", "/usr/lib/freeDiameter/dict_dcca_3gpp.fdx"], capture_output=True, text=True)
    owner = r.stdout.split(":")[0] if r.returncode == 0 else None
    check(owner in pkgs, "dict_dcca_3gpp.fdx comes from %r, not in RUNTIME_PKGS" % owner)
    check(shutil.which("readelf"), "readelf not found")



def test_rtpengine_image():
    ins = instructions(os.path.join(SOURCE_DIR, "deploy", "rtpengine", "Dockerfile"))
    words = {w: [a for _, x, a in ins if x == w] for w in ("FROM", "RUN", "USER", "ENTRYPOINT", "CMD", "EXPOSE")}
    check(words["FROM"] == ["debian:12-slim"], "rtpengine image: FROM debian:12-slim (the container lab's local "
          "base), got %r" % words["FROM"])
    run = " ".join(words["RUN"])
    check(re.search(r"apt-get install -y --no-install-recommends rtpengine-daemon\b", run),
          "rtpengine image: Debian's rtpengine-daemon")
    check("dkms" not in run and "kernel" not in run, "rtpengine image: userspace only, no kernel module package")
    check("policy-rc.d" in run, "rtpengine image: the postinst must not start the daemon in the build")
    check(words["USER"] and words["USER"][-1] not in ("root", "0"), "rtpengine image: runs as non-root")
    check(words["ENTRYPOINT"] == ['["rtpengine"]'], "rtpengine image: entrypoint rtpengine, as docker-compose.yml "
          "sets it for any image: %r" % words["ENTRYPOINT"])
    with open(os.path.join(SOURCE_DIR, "deploy", "compose", "rtpengine.conf")) as f:
        conf = dict(re.findall(r"^([a-z-]+) = (.*)$", f.read(), re.M))
    expose = " ".join(words["EXPOSE"])
    check("%s/udp" % conf["listen-ng"].rsplit(":", 1)[1] in expose and
          "%s-%s/udp" % (conf["port-min"], conf["port-max"]) in expose,
          "rtpengine image: EXPOSE the ng port and the RTP range of rtpengine.conf: %r" % expose)


def test_redis_and_postgres_images():
    """deploy/redis and deploy/postgres: the Debian-package servers the container lab runs in place
    of the public redis:7 / postgres:15 of docker-compose.ha.yml, run the same way (the compose
    command and healthchecks, the POSTGRES_* variables), non-root with the public images' uid 999
    (deploy/k8s-ha runs them as 999); bash -n accepts the postgres entrypoint."""
    for name, package, port in (("redis", "redis-server", "6379/tcp"), ("postgres", "postgresql-15", "5432/tcp")):
        ins = instructions(os.path.join(SOURCE_DIR, "deploy", name, "Dockerfile"))
        words = {w: [a for _, x, a in ins if x == w] for w in ("FROM", "RUN", "USER", "EXPOSE", "VOLUME")}
        check(words["FROM"] == ["debian:12-slim"], "%s image: FROM debian:12-slim, got %r" % (name, words["FROM"]))
        run = " ".join(words["RUN"])
        check(re.search(r"apt-get install -y --no-install-recommends %s\b" % package, run), "%s image: Debian's %s" % (name, package))
        check("policy-rc.d" in run, "%s image: the postinst must not start the server in the build" % name)
        check("useradd -r -u 999 -g %s" % name in run and "groupadd -r -g 999 %s" % name in run,
              "%s image: user %s with uid/gid 999 (as the public image and deploy/k8s-ha)" % (name, name))
        check(words["USER"] == [name], "%s image: runs as %s: %r" % (name, name, words["USER"]))
        check(words["EXPOSE"] == [port], "%s image: EXPOSE %s" % (name, port))
    ins = instructions(os.path.join(SOURCE_DIR, "deploy", "postgres", "Dockerfile"))
    check(("ENV" in [w for _, w, _ in ins]) and any("PGDATA=/var/lib/postgresql/data" in a for _, w, a in ins if w == "ENV"),
          "postgres image: PGDATA=/var/lib/postgresql/data as the public image")
    entry = os.path.join(SOURCE_DIR, "deploy", "postgres", "docker-entrypoint.sh")
    check(os.access(entry, os.X_OK), "deploy/postgres/docker-entrypoint.sh must be executable")
    check(subprocess.run(["bash", "-n", entry]).returncode == 0, "docker-entrypoint.sh: bash -n failed")
    with open(entry) as f:
        text = f.read()
    for var in ("POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "scram-sha-256"):
        check(var in text, "docker-entrypoint.sh: no %s" % var)


if __name__ == "__main__":
    harness.main()
