#!/usr/bin/env bash
# The docker-compose lab (deploy/docker-compose.yml) run for real on a machine without a Docker
# engine and without access to a container registry:
#   - podman (Debian package) is the container engine; docker-compose (Debian's 1.29) talks to
#     podman's Docker-compatible API socket /run/podman/podman.sock;
#   - the base image debian:12-slim is made locally with debootstrap (--variant=minbase) from the
#     apt mirror this machine already uses, and imported into podman under the name the
#     Dockerfile asks for (docker.io/library/debian:12-slim), so no registry is ever contacted;
#   - the OCI runtime is runc when installed: crun 1.8 (podman's default in Debian 12) refuses a
#     hybrid cgroup hierarchy (v1 controllers plus a v2 one, as on these machines: "cgroups in
#     hybrid mode not supported, drop all controllers from cgroupv2"); runc 1.1 takes it. The
#     choice is per command (podman --runtime), the machine's podman configuration is not changed;
#   - deploy/Dockerfile is built with `podman build --network host` (apt inside the build reaches
#     the mirror the way the host does); so is deploy/rtpengine/Dockerfile (Debian's
#     rtpengine-daemon), as imscore-rtpengine:latest, which takes the place of the compose file's
#     public rtpengine image through IMS_RTPENGINE_IMAGE (exported here for every compose command);
#   - podman runs container healthchecks from systemd timers; without systemd nothing runs them,
#     and `depends_on: condition: service_healthy` would wait for ever. A bounded background loop
#     runs `podman healthcheck run` on the lab's containers instead.
#
#   tests/deploy/container_lab.sh up       prepare, build, start; returns when every NF's /readyz
#                                          answers 200 and rtpengine an ng ping (exit 0), or names
#                                          the step that failed
#   tests/deploy/container_lab.sh build    prepare and build the images only (no container runs)
#   tests/deploy/container_lab.sh down     remove the lab's containers, network and volume, stop
#                                          the healthcheck loop and the podman API service this
#                                          script started; always safe to run
#   tests/deploy/container_lab.sh status   what runs now
#
# Needs root. Installs nothing: scripts/install-deps.sh provides podman, debootstrap, curl and
# docker-compose. Writes /etc/containers/containers.conf only when there is none (lower default
# ulimits: the OCI runtime cannot raise RLIMIT_NOFILE/NPROC above this machine's hard limits,
# "error setting rlimit type 7: operation not permitted").
# Binds the host ports of the compose file (5060 UDP/TCP, 127.0.0.1:9090, RTP 30000-30199/udp):
# one lab at a time.
#
# Environment:
#   IMS_SOURCE_DIR            the repository (default: two levels above this script)
#   IMS_CONTAINER_LAB_STATE   state directory (default /run/ims-container-lab): pid files, logs
#   IMS_CONTAINER_LAB_READY   seconds to wait for the NFs' /readyz (default 120)
#   IMS_CONTAINER_LAB_HC      seconds the healthcheck loop runs before it stops (default 3600)
#   IMS_CONTAINER_LAB_BUILD_TIMEOUT  seconds the image build may take (default 1500)
#   IMS_CONTAINER_LAB_RUNTIME OCI runtime for podman (default: runc when installed, else podman's)
#   IMS_CONTAINER_LAB_MEDIA   1: up with the overlay deploy/docker-compose.media.yml too (the
#                             P-CSCF anchors media in rtpengine); default 0
#   IMS_CONTAINER_LAB_HA      1: up with the overlay deploy/docker-compose.ha.yml too (Redis,
#                             PostgreSQL, hss2, scscf2); `build` and `up` then also build
#                             deploy/redis and deploy/postgres (Debian's servers) as
#                             imscore-redis:latest and imscore-postgres:latest, which take the
#                             place of the public redis/postgres images (IMS_REDIS_IMAGE,
#                             IMS_POSTGRES_IMAGE); default 0
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="${IMS_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}"
STATE="${IMS_CONTAINER_LAB_STATE:-/run/ims-container-lab}"
READY_TIMEOUT="${IMS_CONTAINER_LAB_READY:-120}"
HC_SECONDS="${IMS_CONTAINER_LAB_HC:-3600}"
BUILD_TIMEOUT="${IMS_CONTAINER_LAB_BUILD_TIMEOUT:-1500}"

COMPOSE_FILE="$REPO/deploy/docker-compose.yml"
COMPOSE_ARGS=(-f "$COMPOSE_FILE")
# docker-compose 1.29 cannot `up` a changed service set on a network podman created ("needs to be
# recreated - IPAM option driver has changed"): the overlay is chosen here, for the whole lab.
[ "${IMS_CONTAINER_LAB_MEDIA:-0}" = 1 ] && COMPOSE_ARGS+=(-f "$REPO/deploy/docker-compose.media.yml")
HA="${IMS_CONTAINER_LAB_HA:-0}"
[ "$HA" = 1 ] && COMPOSE_ARGS+=(-f "$REPO/deploy/docker-compose.ha.yml")
DOCKERFILE="$REPO/deploy/Dockerfile"
IMAGE="imscore:latest"                        # the compose file's image: (podman: localhost/imscore)
RTPE_DOCKERFILE="$REPO/deploy/rtpengine/Dockerfile"
RTPE_IMAGE="imscore-rtpengine:latest"         # local stand-in for the public rtpengine image
export IMS_RTPENGINE_IMAGE="$RTPE_IMAGE"
# Local stand-ins for the public redis and postgres images of the HA overlay (deploy/redis, deploy/postgres).
export IMS_REDIS_IMAGE="imscore-redis:latest" IMS_POSTGRES_IMAGE="imscore-postgres:latest"
BASE="docker.io/library/debian:12-slim"       # what "FROM debian:12-slim" resolves to
SOCK_DIR=/run/podman
SOCK="$SOCK_DIR/podman.sock"
NFS=(hss icscf scscf pcscf)
STORES=()                                     # the HA variant's redis and postgres (healthchecks)
if [ "$HA" = 1 ]; then NFS+=(hss2 scscf2); STORES=(redis postgres); fi
VOLUMES=(hss-data pg-data redis-data)         # every named volume of the compose files
# docker-compose 1.29 names the project after the compose file's directory: deploy_<service>_1,
# network deploy_ims, volume deploy_hss-data. Fixed here so that `down` finds them even when the
# API socket is gone.
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-deploy}"
PROJECT="$COMPOSE_PROJECT_NAME"
export DOCKER_HOST="unix://$SOCK"
export COMPOSE_HTTP_TIMEOUT=300
RUNTIME="${IMS_CONTAINER_LAB_RUNTIME:-$(command -v runc >/dev/null 2>&1 && echo runc || true)}"
PODMAN=(podman)
[ -z "$RUNTIME" ] || PODMAN+=(--runtime "$RUNTIME")

step() { echo "container-lab: $*"; }
fail() { # fail <step> <message...>: the step that failed, and how to clean up
  local s=$1
  shift
  if grep -qs "cgroups in hybrid mode not supported" "$STATE"/*.log; then
    echo "container-lab: hint: crun cannot run containers on this hybrid cgroup hierarchy; install runc" \
         "(scripts/install-deps.sh) or set IMS_CONTAINER_LAB_RUNTIME=runc" >&2
  fi
  echo "container-lab: FAILED at step '$s': $*" >&2
  echo "container-lab: (tests/deploy/container_lab.sh down removes what was started)" >&2
  exit 1
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$STATE/$1.pid" ] && cat "$STATE/$1.pid" || true; }
api_up() { curl -s -f -m 3 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }

need() {
  [ "$(id -u)" -eq 0 ] || fail prerequisites "needs root (rootful podman, /run/podman, /etc/containers)"
  local c missing=""
  for c in podman debootstrap docker-compose curl tar; do
    command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
  done
  [ -z "$missing" ] || fail prerequisites "not installed:$missing (bash scripts/install-deps.sh installs them)"
  [ -f "$COMPOSE_FILE" ] && [ -f "$DOCKERFILE" ] || fail prerequisites "no $COMPOSE_FILE or $DOCKERFILE"
}

# --- up, step by step ---------------------------------------------------------------------------

ulimits() {
  if [ -e /etc/containers/containers.conf ]; then
    step "ulimits: /etc/containers/containers.conf exists, left as it is"
    return
  fi
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<'EOF'
# Written by the IMS core's tests/deploy/container_lab.sh: default ulimits below this machine's
# hard limits (the OCI runtime cannot raise them: "error setting rlimit type 7").
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]
EOF
  step "ulimits: wrote /etc/containers/containers.conf (default_ulimits nofile=10000, nproc=4096)"
}

apt_mirror() { # the Debian mirror apt uses (deb822 sources first, then sources.list)
  local f=/etc/apt/sources.list.d/debian.sources m=""
  if [ -f "$f" ]; then
    # The URIs of the first stanza whose Suites name bookworm itself (not bookworm-security).
    m=$(awk '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i=="bookworm"){print u; exit}} /^$/{u=""}' "$f")
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

base_image() {
  if podman image exists "$BASE"; then
    step "base image: $BASE present"
    return
  fi
  local mirror root t0=$SECONDS
  mirror=$(apt_mirror)
  step "base image: debootstrap --variant=minbase bookworm from $mirror (no registry)"
  mkdir -p "$STATE"
  root=$(mktemp -d /var/tmp/ims-debootstrap.XXXXXX)
  if ! timeout 900 debootstrap --variant=minbase bookworm "$root/rootfs" "$mirror" > "$STATE/debootstrap.log" 2>&1; then
    tail -n 20 "$STATE/debootstrap.log" >&2
    rm -rf "$root"
    fail base-image "debootstrap from $mirror failed (log: $STATE/debootstrap.log)"
  fi
  rm -rf "$root"/rootfs/var/cache/apt/archives/*.deb "$root"/rootfs/var/lib/apt/lists/*
  if ! tar -C "$root/rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE" >/dev/null; then
    rm -rf "$root"
    fail base-image "podman import of the debootstrap tree as $BASE failed"
  fi
  rm -rf "$root"
  step "base image: $BASE imported ($((SECONDS - t0)) s)"
}

api_service() {
  if [ -n "$(pid_of podman-service)" ] && [ "$(cat "$STATE/podman-service.runtime" 2>/dev/null)" != "$RUNTIME" ]; then
    step "podman API: the service this script started runs another OCI runtime, restarting it"
    stop_pid podman-service
    rm -f "$SOCK"
  fi
  if api_up; then
    step "podman API: $SOCK answers (a service this script did not start: its OCI runtime is its own)"
    return
  fi
  mkdir -p "$SOCK_DIR" "$STATE"
  rm -f "$SOCK"   # a socket left by a service that is gone
  # setsid: its own session, so that a terminal's or ctest's signals to this script do not end it;
  # `down` stops it (only when this script started it: the pid file).
  # Containers created through the API (docker-compose) get the service's runtime.
  setsid "${PODMAN[@]}" system service --time=0 "unix://$SOCK" > "$STATE/podman-service.log" 2>&1 < /dev/null &
  echo $! > "$STATE/podman-service.pid"
  echo "$RUNTIME" > "$STATE/podman-service.runtime"
  for _ in $(seq 1 100); do
    api_up && { step "podman API: started podman system service on $SOCK (pid $!, runtime ${RUNTIME:-default})"; return; }
    alive "$!" || break
    sleep 0.2
  done
  tail -n 20 "$STATE/podman-service.log" >&2 || true
  fail podman-api "podman system service did not answer on $SOCK (log: $STATE/podman-service.log)"
}

local_image() { # local_image <deploy/ subdirectory> <image>: a stand-in for a public image
  local name=$1 image=$2 old new t0=$SECONDS
  old=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  step "build: podman build --network host -t $image deploy/$name (log: $STATE/build-$name.log)"
  if ! timeout "$BUILD_TIMEOUT" "${PODMAN[@]}" build --network host --pull=never --layers \
          -f "$REPO/deploy/$name/Dockerfile" -t "$image" "$REPO/deploy/$name" > "$STATE/build-$name.log" 2>&1; then
    tail -n 30 "$STATE/build-$name.log" >&2
    fail "build-$name" "podman build of deploy/$name/Dockerfile failed (log: $STATE/build-$name.log)"
  fi
  new=$(podman image inspect --format '{{.Id}}' "$image")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    podman rmi "$old" >/dev/null 2>&1 || true
  fi
  step "build: $image ${new:0:12} ($((SECONDS - t0)) s)"
}

rtpengine_image() { local_image rtpengine "$RTPE_IMAGE"; }

store_images() { # the HA overlay's redis and postgres, when it is used
  [ "$HA" = 1 ] || return 0
  local_image redis "$IMS_REDIS_IMAGE"
  local_image postgres "$IMS_POSTGRES_IMAGE"
}

build_image() {
  local old new t0=$SECONDS ignore=()
  old=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  # deploy/Dockerfile.dockerignore is the Dockerfile's own ignore file (BuildKit); podman 4.3 takes
  # it only when named.
  [ -f "$DOCKERFILE.dockerignore" ] && ignore=(--ignorefile "$DOCKERFILE.dockerignore")
  step "build: podman build --network host -f deploy/Dockerfile -t $IMAGE (log: $STATE/build.log)"
  mkdir -p "$STATE"
  # --pull=never: FROM debian:12-slim is the local image; nothing is fetched from a registry.
  # --layers (podman's default) keeps the package layers cached across source changes.
  if ! (cd "$REPO" && timeout "$BUILD_TIMEOUT" "${PODMAN[@]}" build --network host --pull=never --layers "${ignore[@]}" \
          -f "$DOCKERFILE" -t "$IMAGE" .) > "$STATE/build.log" 2>&1; then
    tail -n 30 "$STATE/build.log" >&2
    fail build "podman build of deploy/Dockerfile failed or took over $BUILD_TIMEOUT s (log: $STATE/build.log)"
  fi
  new=$(podman image inspect --format '{{.Id}}' "$IMAGE")
  # The image this build replaced is now untagged: remove it (when nothing uses it) so that
  # repeated runs do not fill the disk; the cached build layers stay.
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    podman rmi "$old" >/dev/null 2>&1 || true
  fi
  step "build: $IMAGE ${new:0:12} ($((SECONDS - t0)) s)"
}

lab_containers() { # ids of the lab's containers, running or not
  podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true
}

healthcheck_loop() {
  local pid
  pid=$(pid_of healthcheck)
  if alive "$pid"; then
    step "healthchecks: loop already running (pid $pid)"
    return
  fi
  mkdir -p "$STATE"
  # Runs the containers' own healthcheck commands (podman records the result, which is what
  # docker-compose's service_healthy waits for), every 2 s, for at most HC_SECONDS.
  setsid bash -c '
    end=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$end" ]; do
      for c in $(podman ps -q --filter "label=com.docker.compose.project=$2" 2>/dev/null); do
        timeout 10 podman healthcheck run "$c" >/dev/null 2>&1 || true
      done
      sleep 2
    done' healthcheck-loop "$HC_SECONDS" "$PROJECT" > /dev/null 2>&1 < /dev/null &
  echo $! > "$STATE/healthcheck.pid"
  step "healthchecks: loop started (pid $!, at most $HC_SECONDS s)"
}

compose_up() {
  step "compose: docker-compose down (a network left by an earlier run must be recreated)"
  (cd "$REPO" && docker-compose "${COMPOSE_ARGS[@]}" down -v --remove-orphans) > "$STATE/compose-down.log" 2>&1 || true
  step "compose: docker-compose ${COMPOSE_ARGS[*]#$REPO/} up -d --no-build"
  if ! (cd "$REPO" && timeout 300 docker-compose "${COMPOSE_ARGS[@]}" up -d --no-build) > "$STATE/compose-up.log" 2>&1; then
    cat "$STATE/compose-up.log" >&2
    podman ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}} {{.Status}}' >&2 || true
    fail compose-up "docker-compose up -d --no-build failed (log: $STATE/compose-up.log)"
  fi
}

container_of() { # the container id of a compose service
  podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT" \
                  --filter "label=com.docker.compose.service=$1" | head -n 1
}

readyz() { # readyz <container>: /readyz answers 200 inside it (the image has bash but no curl)
  timeout 10 podman exec "$1" bash -c \
    "exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n 1 <&3 | grep -q ' 200 '" \
    >/dev/null 2>&1
}

rtpengine_ping() { # rtpengine_ping <container>: its own healthcheck, an ng ping on its control address
  timeout 10 podman healthcheck run "$1" >/dev/null 2>&1
}

wait_ready() {
  local end=$((SECONDS + READY_TIMEOUT)) nf c pending
  while :; do
    pending=""
    for nf in "${NFS[@]}"; do
      c=$(container_of "$nf")
      [ -n "$c" ] && readyz "$c" || pending="$pending $nf"
    done
    c=$(container_of rtpengine)
    [ -n "$c" ] && rtpengine_ping "$c" || pending="$pending rtpengine"
    for nf in "${STORES[@]}"; do   # their own healthchecks: redis-cli ping, pg_isready
      c=$(container_of "$nf")
      [ -n "$c" ] && timeout 10 podman healthcheck run "$c" >/dev/null 2>&1 || pending="$pending $nf"
    done

    if [ -z "$pending" ]; then
      step "ready: every NF (${NFS[*]}) answers /readyz 200, rtpengine an ng ping${STORES:+, ${STORES[*]} healthy}"
      podman ps --filter "label=com.docker.compose.project=$PROJECT" --format '  {{.Names}}  {{.Status}}  {{.Ports}}'
      return
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      for nf in $pending; do
        c=$(container_of "$nf")
        echo "---- $nf (${c:-no container}):" >&2
        [ -n "$c" ] && { podman ps -a --filter "id=$c" --format '{{.Status}}' >&2; podman logs --tail 20 "$c" >&2 2>&1; }
      done
      fail ready "no /readyz 200 within $READY_TIMEOUT s from:$pending"
    fi
    sleep 1
  done
}

# --- down -----------------------------------------------------------------------------------------

stop_pid() { # stop_pid <name>: TERM (then KILL) the process of $STATE/<name>.pid
  local pid
  pid=$(pid_of "$1")
  rm -f "$STATE/$1.pid"
  alive "$pid" || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$pid" || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

down() {
  [ "$(id -u)" -eq 0 ] || fail down "needs root"
  local rc=0 left=()
  # First the loop, so that it runs no healthcheck on a container being removed.
  stop_pid healthcheck
  if command -v docker-compose >/dev/null 2>&1 && api_up; then
    (cd "$REPO" && timeout 120 docker-compose -f "$COMPOSE_FILE" down -v --remove-orphans -t 10) || \
      echo "container-lab: docker-compose down failed; removing with podman" >&2
  fi
  if command -v podman >/dev/null 2>&1; then
    # Whatever compose left (or when the API is gone): by the project's label and names.
    mapfile -t left < <(lab_containers)
    [ "${#left[@]}" -eq 0 ] || podman rm -f -t 5 "${left[@]}" >/dev/null 2>&1 || true
    podman network exists "${PROJECT}_ims" 2>/dev/null && { podman network rm -f "${PROJECT}_ims" >/dev/null || rc=1; }
    local v
    for v in "${VOLUMES[@]}"; do
      podman volume exists "${PROJECT}_$v" 2>/dev/null && { podman volume rm -f "${PROJECT}_$v" >/dev/null || rc=1; }
    done
    [ -z "$(lab_containers)" ] || { echo "container-lab: containers left: $(lab_containers)" >&2; rc=1; }
  fi
  # The API service only when this script started it.
  if [ -n "$(pid_of podman-service)" ]; then
    stop_pid podman-service
    rm -f "$SOCK" "$STATE/podman-service.runtime"
    step "down: stopped the podman API service it had started"
  fi
  [ "$rc" -eq 0 ] && step "down: no container, network or volume of project $PROJECT left" \
                  || echo "container-lab: down: something could not be removed (see above)" >&2
  return "$rc"
}

status() {
  local pid
  echo "podman API ($SOCK): $(api_up && echo answers || echo 'not answering')"
  pid=$(pid_of podman-service); [ -n "$pid" ] && echo "  started by this script: pid $pid ($(alive "$pid" && echo running || echo gone))"
  pid=$(pid_of healthcheck); echo "healthcheck loop: ${pid:-none}${pid:+ ($(alive "$pid" && echo running || echo gone))}"
  echo "base image $BASE: $(podman image exists "$BASE" && echo present || echo absent)"
  echo "image $IMAGE: $(podman image inspect --format '{{.Id}} {{.Created}}' "$IMAGE" 2>/dev/null || echo absent)"
  echo "image $RTPE_IMAGE: $(podman image inspect --format '{{.Id}} {{.Created}}' "$RTPE_IMAGE" 2>/dev/null || echo absent)"
  echo "images $IMS_REDIS_IMAGE, $IMS_POSTGRES_IMAGE (HA): $(podman image exists "$IMS_REDIS_IMAGE" && echo present || echo absent)," \
       "$(podman image exists "$IMS_POSTGRES_IMAGE" && echo present || echo absent)"
  echo "containers of project $PROJECT:"
  podman ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '  {{.Names}}  {{.Status}}  {{.Ports}}'
  echo "network ${PROJECT}_ims: $(podman network exists "${PROJECT}_ims" && echo present || echo absent)"
  for v in "${VOLUMES[@]}"; do
    echo "volume ${PROJECT}_$v: $(podman volume exists "${PROJECT}_$v" && echo present || echo absent)"
  done
}

case "${1:-}" in
up)
  t0=$SECONDS
  need
  mkdir -p "$STATE"
  rm -f "$STATE"/*.log   # this run's logs only (fail's hints read them)
  ulimits
  base_image
  api_service
  build_image
  rtpengine_image
  store_images
  healthcheck_loop
  compose_up
  wait_ready
  step "up in $((SECONDS - t0)) s: SIP on the host's port 5060 (UDP/TCP), HSS API http://127.0.0.1:9090, RTP 30000-30199/udp"
  ;;
build)
  t0=$SECONDS
  need
  mkdir -p "$STATE"
  rm -f "$STATE"/*.log
  ulimits
  base_image
  build_image
  rtpengine_image
  store_images
  step "build in $((SECONDS - t0)) s"
  ;;
down) down ;;
status) status ;;
*) echo "usage: $0 up|build|down|status" >&2; exit 2 ;;
esac
