#!/usr/bin/env bash
# Installs dependencies, builds, and runs the IMS core on this machine with the default configs in
# deploy/config (loopback addresses, embedded SQLite, the demo subscribers of subscribers.yaml).
#
#   scripts/run.sh [--no-install] [--no-build] [--detach]    start; Ctrl-C stops every NF
#   scripts/run.sh --status                                  the table of a running core
#   scripts/run.sh --stop                                    stop a core started with --detach
#
# It waits until every NF answers 200 on /readyz (IMS_READY_TIMEOUT seconds, default 30), then
# prints one table: NF, pid, SIP / Diameter / HTTP addresses (read from deploy/config/<nf>.yaml
# and the IMS_<NF>_<KEY> variables that override them) and "ready", or why not (the last error
# line of its log). When an NF does not come up, the others are stopped and the exit code is 1.
#
#   --no-install  skip scripts/install-deps.sh (packages already there)
#   --no-build    use the binaries as they are (no cmake)
#   --detach      return once the core is ready, leaving it running; stop it with --stop
#
# Logs: var/<nf>.log; pids: var/run.pids. Environment: IMS_BUILD_DIR (default build),
# IMS_VAR_DIR (default var; another directory also moves the HSS database there).
set -euo pipefail
set +m     # no job control: each NF stays in our process group until setsid (below) execs it
cd "$(dirname "$0")/.."

NFS="hss icscf scscf pcscf"      # start order; stopped in reverse
CONFIG_DIR=deploy/config
BUILD_DIR=${IMS_BUILD_DIR:-build}
VAR_DIR=${IMS_VAR_DIR:-var}
PIDFILE=$VAR_DIR/run.pids
READY_TIMEOUT=${IMS_READY_TIMEOUT:-30}

install=1 build=1 detach=0 action=start
for arg in "$@"; do
  case $arg in
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --detach) detach=1 ;;
    --stop) action=stop ;;
    --status) action=status ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

# --- configuration -------------------------------------------------------------------------

# cfg NF SECTION KEY: the value of SECTION.KEY in deploy/config/NF.yaml (block style, as shipped),
# or of its environment override IMS_<NF>_<SECTION>_<KEY> (the NF's own section name dropped).
cfg() {
  local nf=$1 sec=$2 key=$3 var
  if [ "$sec" = "$nf" ]; then var="IMS_${nf^^}_${key^^}"; else var="IMS_${nf^^}_${sec^^}_${key^^}"; fi
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  awk -v s="$sec" -v k="$key" '
    /^[A-Za-z_][A-Za-z0-9_]*:/ { sec = $1; sub(/:.*/, "", sec); next }
    sec == s && $1 == k ":" { v = $2; sub(/#.*/, "", v); gsub(/["\047]/, "", v); print v; exit }
  ' "$CONFIG_DIR/$nf.yaml"
}

# addr NF SECTION: "listen:port" of SECTION (sip, diameter, http), "-" when the NF has none.
addr() {
  local port listen
  port=$(cfg "$1" "$2" port)
  [ -n "$port" ] || { echo "-"; return; }
  listen=$(cfg "$1" "$2" listen)
  echo "${listen:-0.0.0.0}:$port"
}

# The address to reach a listener at (a wildcard listen address is reached on loopback).
reach() {
  local a=$1
  case ${a%:*} in 0.0.0.0|::|"[::]"|"") echo "127.0.0.1:${a##*:}" ;; *) echo "$a" ;; esac
}

http_status() {   # http_status NF PATH -> HTTP status code (000 when nothing answers)
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$(reach "$(addr "$1" http)")$2" 2>/dev/null || true
}

# The last error line of an NF's log (else its last line): why it did not come up.
last_error() {
  local log=$VAR_DIR/$1.log line
  [ -s "$log" ] || { echo "(empty log $log)"; return; }
  line=$(grep -E ' (ERROR|FATAL) |[Ee]rror|[Ff]ailed|cannot|AddressSanitizer' "$log" | tail -n 1 || true)
  [ -n "$line" ] || line=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)
  echo "$line" | cut -c1-200
}

# --- the table -------------------------------------------------------------------------------

declare -A PID STATE
table() {
  printf '%-6s %-8s %-17s %-17s %-17s %s\n' NF PID SIP DIAMETER HTTP STATUS
  for nf in $NFS; do
    printf '%-6s %-8s %-17s %-17s %-17s %s\n' "$nf" "${PID[$nf]:--}" "$(addr "$nf" sip)" \
      "$(addr "$nf" diameter)" "$(addr "$nf" http)" "${STATE[$nf]:-not started}"
  done
}

describe_rc() {   # "code N", or "signal NAME" for 128+N
  if [ "$1" -gt 128 ] && kill -l "$(($1 - 128))" >/dev/null 2>&1; then echo "signal SIG$(kill -l "$(($1 - 128))")"
  else echo "code $1"; fi
}

alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }

read_pidfile() {   # fills PID from var/run.pids; returns 1 when no listed NF is running
  local nf pid any=1
  [ -f "$PIDFILE" ] || return 1
  while read -r nf pid; do
    [ -n "$nf" ] || continue
    # Only a process still running this NF's binary counts (pids are reused).
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "/$nf -c"; then
      PID[$nf]=$pid
      any=0
    fi
  done <"$PIDFILE"
  return $any
}

stop_all() {   # SIGTERM in reverse start order, SIGKILL after 10 s
  local nf pid order="" n
  for nf in $NFS; do order="$nf $order"; done
  for nf in $order; do
    pid=${PID[$nf]:-}
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for n in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: $nf (pid $pid) still running 10 s after SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  rm -f "$PIDFILE"
}

case $action in
  status)
    if ! read_pidfile; then echo "run.sh: no core running (no live pid in $PIDFILE)"; exit 1; fi
    rc=0
    for nf in $NFS; do
      if ! alive "$nf"; then STATE[$nf]="not running: $(last_error "$nf")"; rc=1
      elif [ "$(http_status "$nf" /readyz)" = 200 ]; then STATE[$nf]=ready
      else STATE[$nf]="not ready: $(curl -s --max-time 2 "http://$(reach "$(addr "$nf" http)")/readyz" || true)"; rc=1
      fi
    done
    table
    exit $rc ;;
  stop)
    if ! read_pidfile; then echo "run.sh: no core running (no live pid in $PIDFILE)"; rm -f "$PIDFILE"; exit 0; fi
    stop_all
    echo "run.sh: stopped:$(for nf in $NFS; do [ -n "${PID[$nf]:-}" ] && printf ' %s' "$nf"; done)"
    exit 0 ;;
esac

# --- start -----------------------------------------------------------------------------------

mkdir -p "$VAR_DIR"
if read_pidfile; then
  echo "run.sh: a core started from here is already running (pids in $PIDFILE): scripts/run.sh --stop" >&2
  exit 1
fi
[ "$install" = 0 ] || bash scripts/install-deps.sh
if [ "$build" = 1 ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
fi
command -v curl >/dev/null || { echo "run.sh: curl is needed (scripts/install-deps.sh installs it)" >&2; exit 1; }
for nf in $NFS; do
  [ -x "$BUILD_DIR/$nf/$nf" ] || { echo "run.sh: no $BUILD_DIR/$nf/$nf (build first, or drop --no-build)" >&2; exit 1; }
done
# A TCP port another process already listens on would make an NF fail (or, worse, another
# process answer its /readyz): say which, before starting anything.
busy=""
for nf in $NFS; do
  for sec in sip diameter http; do
    a=$(addr "$nf" "$sec"); [ "$a" != - ] || continue
    r=$(reach "$a")
    if timeout 1 bash -c "exec 3<>/dev/tcp/${r%:*}/${r##*:}" 2>/dev/null; then busy="$busy $nf/$sec=$a"; fi
  done
done
if [ -n "$busy" ]; then
  echo "run.sh: ports already in use:$busy (another core or lab running? scripts/run.sh --stop, docker ps)" >&2
  exit 1
fi
# Another state directory also holds the HSS database (deploy/config/hss.yaml: ./var/hss.db).
[ "$VAR_DIR" = var ] || export IMS_HSS_DATABASE="${IMS_HSS_DATABASE:-$VAR_DIR/hss.db}"

detached=0
on_exit() {
  local rc=$?
  trap - INT TERM HUP EXIT
  if [ "$detached" = 0 ]; then
    echo "stopping..."
    stop_all
  fi
  exit $rc
}
trap on_exit EXIT
trap 'exit 0' INT TERM HUP

start_nf() {
  local nf=$1
  # Its own session: Ctrl-C reaches this script only, which stops the NFs in order.
  setsid "$BUILD_DIR/$nf/$nf" -c "$CONFIG_DIR/$nf.yaml" >"$VAR_DIR/$nf.log" 2>&1 </dev/null &
  PID[$nf]=$!
  STATE[$nf]="starting"
}
write_pidfile() {
  : >"$PIDFILE"
  for nf in $NFS; do [ -z "${PID[$nf]:-}" ] || echo "$nf ${PID[$nf]}" >>"$PIDFILE"; done
}

# The HSS first (the CSCFs' Diameter peer), the CSCFs once it answers HTTP.
start_nf hss
write_pidfile
deadline=$((SECONDS + READY_TIMEOUT))
while alive hss && [ "$(http_status hss /healthz)" != 200 ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
if alive hss; then
  for nf in $NFS; do [ "$nf" = hss ] || start_nf "$nf"; done
  write_pidfile
else
  for nf in $NFS; do [ "$nf" = hss ] || STATE[$nf]="not started (the HSS did not come up)"; done
fi

# Every NF ready (/readyz 200: Diameter peer connected, SIP loop running), or one gone.
failed=0
while :; do
  pending=0
  for nf in $NFS; do
    case ${STATE[$nf]:-} in ready|exited*|"not ready"*|"not started"*) continue ;; esac
    if ! alive "$nf"; then
      rc=0; wait "${PID[$nf]}" 2>/dev/null || rc=$?
      STATE[$nf]="exited ($(describe_rc $rc)): $(last_error "$nf")"; failed=1
    elif [ "$(http_status "$nf" /readyz)" = 200 ]; then
      STATE[$nf]=ready
    elif [ $SECONDS -ge $deadline ]; then
      why=$(curl -s --max-time 2 "http://$(reach "$(addr "$nf" http)")/readyz" 2>/dev/null | head -c 120 || true)
      STATE[$nf]="not ready after ${READY_TIMEOUT}s: ${why:-no HTTP answer}; log: $(last_error "$nf")"; failed=1
    else
      pending=1
    fi
  done
  [ "$pending" = 1 ] || break     # a failed NF does not cut the others' wait: the table shows all
  sleep 0.2
done
# A ready answer may have come from another process on the same port: each NF must still run.
if [ "$failed" = 0 ]; then
  sleep 0.3
  for nf in $NFS; do
    if ! alive "$nf"; then
      rc=0; wait "${PID[$nf]}" 2>/dev/null || rc=$?
      STATE[$nf]="exited ($(describe_rc $rc)): $(last_error "$nf")"; failed=1
    fi
  done
fi

echo
table
echo
if [ "$failed" = 1 ]; then
  echo "run.sh: the core did not start (logs: $VAR_DIR/<nf>.log); stopping the NFs that run" >&2
  exit 1
fi

hss_http=$(reach "$(addr hss http)")
cat <<EOF
IMS core ready. Logs: $VAR_DIR/<nf>.log
  Register a softphone: user carol@ims.lab / carolpass (or dave@ims.lab / davepass), SIP digest,
    domain ims.lab, outbound proxy sip:$(reach "$(addr pcscf sip)") (UDP or TCP)
  SIPp / SIM clients (IMS-AKA): alice@ims.lab, bob@ims.lab (README "Your first hour")
  Subscribers: curl http://$hss_http/api/v1/subscribers
  Proof that calls work: scripts/demo.sh --no-install (two baresip phones call each other)
EOF

if [ "$detach" = 1 ]; then
  detached=1
  echo "Running in the background (pids in $PIDFILE). Stop: scripts/run.sh --stop"
  exit 0
fi

echo "Press Ctrl-C to stop."
# Until Ctrl-C, or until an NF exits on its own (then the others are stopped too).
while :; do
  for nf in $NFS; do
    if ! alive "$nf"; then
      rc=0; wait "${PID[$nf]}" 2>/dev/null || rc=$?
      echo "run.sh: $nf (pid ${PID[$nf]}) exited ($(describe_rc $rc)); last log line: $(last_error "$nf")" >&2
      unset "PID[$nf]"
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
done
