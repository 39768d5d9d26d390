"""The compose HA variant for real in the container lab: tests/deploy/container_lab.sh with
IMS_CONTAINER_LAB_HA=1 brings up deploy/docker-compose.yml + docker-compose.ha.yml through podman
(Redis and PostgreSQL from the Debian-based images deploy/redis and deploy/postgres, built locally
in place of the public redis:7 and postgres:15; two HSS on the one database, two S-CSCFs sharing
Redis). From this host, through the published P-CSCF port (see test_compose_run.py for how UEs on
the host are reached):

  - alice and bob register with IMS AKA; the HSS API (published, the HSS hss) names the S-CSCF
    each is assigned to, and the second HSS (hss2, asked inside the network) says the same;
  - the container of every S-CSCF serving them is killed (SIGKILL) and started again (the
    container's restart: what `restart: unless-stopped` or an operator does): its /readyz is 200
    again once it has reloaded its registrations from Redis;
  - alice calls bob with the route set of her registration before the restart; nobody registers
    again; the call is answered, re-INVITEd and ended.

`container_lab.sh down` runs whatever happens; no container, network or volume may be left.

Skipped (ctest 77) when not root. When the image's S-CSCF has no state store (scscf
--config-reference without store.backend) the lab is not started and the test says so.
Wall time: ~1.5 min when the images are built (test_compose_run builds the NF image first in a
ctest run; the redis and postgres images are cached by podman after their first build, ~1 min)."""

import json
import os
import shutil
import subprocess
import sys
import time

import test_compose_run as cr  # noqa: E402  (puts tests/system and tests/component on sys.path)
import harness  # noqa: E402
import lab  # noqa: E402
from harness import check  # noqa: E402
from test_netns_ha import call_without_registering, served_by  # noqa: E402
from test_sessions import Ua  # noqa: E402

SCSCF_SERVICE = {"sip:scscf.ims.lab:5060": ("scscf", "172.22.0.12"), "sip:scscf2.ims.lab:5060": ("scscf2", "172.22.0.15")}
HSS2 = "172.22.0.16"


def image_has_store():
    runtime = os.environ.get("IMS_CONTAINER_LAB_RUNTIME") or ("runc" if shutil.which("runc") else None)
    r = cr.run("podman", *(["--runtime", runtime] if runtime else []), "run", "--rm", "--pull=never", "--network=none",
               "imscore:latest", "scscf", "--config-reference", timeout=60)
    check(r.returncode == 0 and "`scscf.name`" in r.stdout,
          "scscf --config-reference in the image failed: rc %s %s" % (r.returncode, r.stderr[-2000:]))
    return "`store.backend`" in r.stdout


def registration(base, subscriber):
    status, body, _ = harness.http("GET", "%s/api/v1/subscribers/%s" % (base, subscriber), timeout=5)
    check(status == 200, "GET %s subscriber %s: %s %r" % (base, subscriber, status, body))
    doc = body if isinstance(body, dict) else json.loads(body)
    return ({u["impu"]: u.get("reg_state") for u in doc.get("impus", [])},
            (doc.get("registration") or {}).get("scscf_name"))


def readyz(ip):
    try:
        status, _, _ = harness.http("GET", "http://%s:9090/readyz" % ip, timeout=3)
    except Exception:  # noqa: BLE001 (connection refused while it starts)
        return False
    return status == 200


def kill_and_start(service, ip):
    c = cr.container_of(service)
    t0 = time.monotonic()
    r = cr.run("podman", "kill", "--signal", "KILL", c, timeout=30)
    check(r.returncode == 0, "podman kill %s: %s" % (service, r.stderr))
    # podman may apply the restart policy itself; otherwise start it as an operator would.
    time.sleep(1)
    state = cr.run("podman", "inspect", "--format", "{{.State.Status}}", c).stdout.strip()
    if state != "running":
        r = cr.run("podman", "start", c, timeout=60)
        check(r.returncode == 0, "podman start %s: %s" % (service, r.stderr))
    lab.wait_for(lambda: readyz(ip), 60, interval=0.5, what="%s /readyz 200 after the restart" % service)
    print("%s: container killed (SIGKILL, was %s) and running again, ready in %.1f s" % (service, state, time.monotonic() - t0))


def test_ha_compose_lab_keeps_registrations_over_an_scscf_restart(tmp):
    cr.check_ports_free()
    t0 = time.monotonic()
    rc, out = cr.lab_script("build", os.path.join(tmp, "build.out"), cr.UP_TIMEOUT,
                            dict(os.environ, IMS_CONTAINER_LAB_HA="1"))
    print(out.rstrip())
    check(rc == 0, "container_lab.sh build failed (rc %s):\n%s" % (rc, lab.tail(out, 40)))
    if not image_has_store():
        print("SKIP the HA compose lab: the image's S-CSCF has no state store (scscf --config-reference has no "
              "store.backend), registrations could not survive a restart")
        return
    ues = cr.HostUes(tmp)
    ok = False
    env = dict(os.environ, IMS_CONTAINER_LAB_HA="1")
    try:
        rc, out = cr.lab_script("up", os.path.join(tmp, "up.out"), max(120, cr.UP_TIMEOUT - (time.monotonic() - t0)), env)
        print(out.rstrip())
        check(rc == 0, "container_lab.sh up (HA) failed (rc %s):\n%s" % (rc, lab.tail(out, 40)))
        alice, bob = Ua(ues, "alice"), Ua(ues, "bob")
        served = served_by({who: (registration(cr.HSS_API, who), registration("http://%s:9090" % HSS2, who))
                            for who in ("alice", "bob")}, SCSCF_SERVICE)
        print("registered: %r" % {w: s[0] for w, s in served.items()})
        for service, ip in sorted(set(served.values())):
            kill_and_start(service, ip)

        call_without_registering(ues, alice, bob)
        print("alice called bob after the S-CSCF container restart, without registering again (%.0f s)" %
              (time.monotonic() - t0))
        ok = True
    finally:
        ues.stop()
        if not ok:
            cr.dump_containers()
        cr.lab_down(tmp, ok, env)
    print("total %.0f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root (rootful podman); CI runs as root")
        sys.exit(77)
    harness.main()
