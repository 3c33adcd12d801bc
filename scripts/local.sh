#!/usr/bin/env bash
# Local mode: the broker and both agents as background processes, no Docker needed.
# Pid files and logs live in $RUN_DIR (.run/). `stop` stops exactly what `start` started.
#   scripts/local.sh start|stop|status|check|logs NAME...
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-.run}
PROFILE=${MQTTPUSH_PROFILE:-open}
SECURE_DIR=${SECURE_DIR:-$RUN_DIR/secure}
if [ "$PROFILE" = secure ]; then PORT=${MQTTPUSH_BROKER__PORT:-8883}; else PORT=${MQTTPUSH_BROKER__PORT:-1883}; fi
export MQTTPUSH_BROKER__PORT=$PORT MQTTPUSH_PROFILE=$PROFILE
mkdir -p "$RUN_DIR"

say() { echo "mqttpush: $*" >&2; }

running() {  # running NAME: its pid file names a live process that is ours
  local pidfile="$RUN_DIR/$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must be the one we started.
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -Eq 'mosquitto|mqttpush' || return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

ensure_mosquitto() {
  if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing mosquitto from the OS packages"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
  else
    say "mosquitto is not installed. Install it (Debian/Ubuntu: sudo apt-get install mosquitto mosquitto-clients; macOS: brew install mosquitto) and run 'make start' again."
    exit 1
  fi
}

ensure_material() {  # the secure profile's CA, certificates, passwords and ACL
  [ "$PROFILE" = secure ] || return 0
  # Idempotent: keeps every secret, adds what is missing, renews certificates near expiry.
  "$PY" -m mqttpush secure init --dir "$SECURE_DIR" >&2
}

as() {  # as IDENTITY CMD...: run CMD with IDENTITY's credentials (secure profile only)
  local identity=$1; shift
  if [ "$PROFILE" = secure ]; then
    [ -f "$SECURE_DIR/$identity.env" ] || { say "no credentials for $identity: run 'make certs'"; exit 1; }
    set -a; . "$SECURE_DIR/$identity.env"; set +a
  fi
  exec "$@"
}

watch() {  # watch TOPIC: mosquitto_sub -v, as the read-only "watch" identity when secure
  if [ "$PROFILE" = secure ]; then
    # The password goes in mosquitto_sub's options file (0600), not on its command line,
    # where any local user could read it in the process list.
    local options
    options=$(mktemp -d)
    trap 'rm -rf "$options"' EXIT
    (umask 077; printf -- '-P %s\n' "$(cat "$SECURE_DIR/watch.password")" > "$options/mosquitto_sub")
    XDG_CONFIG_HOME="$options" mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$PORT" -q 1 \
      --cafile "$SECURE_DIR/ca.crt" --cert "$SECURE_DIR/watch.crt" --key "$SECURE_DIR/watch.key" \
      -u watch -t "$1" -v
    return
  fi
  exec mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$PORT" -q 1 -t "$1" -v
}

spawn() {  # spawn NAME CMD...: start in the background, record the pid
  local name=$1; shift
  nohup "$@" >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}

start() {
  ensure_mosquitto
  if running broker; then
    say "broker already running (pid $(cat "$RUN_DIR/broker.pid"))"
  else
    if port_open; then
      say "port $PORT is in use by another program; stop it or choose another port: make start PORT=1884"
      exit 1
    fi
    ensure_material
    if [ "$PROFILE" = secure ]; then
      spawn broker "$PY" -m mqttpush dev-broker --config mosquitto-secure.conf --secure-dir "$SECURE_DIR" --port "$PORT" --run-dir "$RUN_DIR"
    else
      spawn broker "$PY" -m mqttpush dev-broker --config mosquitto.conf --port "$PORT" --run-dir "$RUN_DIR"
    fi
    for _ in $(seq 100); do port_open && break; sleep 0.1; done
    port_open || { say "the broker did not start; see $RUN_DIR/broker.log"; tail -5 "$RUN_DIR/broker.log" >&2; exit 1; }
    say "broker ($PROFILE profile) listening on 127.0.0.1:$PORT (pid $(cat "$RUN_DIR/broker.pid"))"
  fi
  for agent in sender receiver; do
    if running "$agent"; then
      say "$agent already running (pid $(cat "$RUN_DIR/$agent.pid"))"
    else
      MQTTPUSH_AGENT__STORE_PATH="$RUN_DIR/$agent.db" spawn "$agent" "$0" as "$agent" "$PY" -m mqttpush serve "$agent"
      say "$agent started (pid $(cat "$RUN_DIR/$agent.pid"))"
    fi
  done
  for agent in sender receiver; do  # ready when it answers a call (a "task not found" error)
    local ok=""
    for _ in $(seq 40); do
      if "$0" as client "$PY" -m mqttpush call "$agent@fame.fabric" get_task_status --params '{"task_id": "ready-probe"}' --timeout 1 >/dev/null 2>&1; [ $? = 5 ]; then ok=1; break; fi
      running "$agent" || break
      sleep 0.25
    done
    [ -n "$ok" ] || { say "$agent is not answering; see $RUN_DIR/$agent.log"; tail -5 "$RUN_DIR/$agent.log" >&2; exit 1; }
  done
}

stop_one() {
  local name=$1 pid
  if running "$name"; then
    pid=$(cat "$RUN_DIR/$name.pid")
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    say "$name stopped (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

check() {  # all three up, or say what to do
  for name in broker sender receiver; do
    if ! running "$name"; then
      say "the $name is not running: run 'make start' first (then 'make run')"
      exit 1
    fi
  done
}

logs() {  # logs NAME...: the last lines of each log
  for name in "$@"; do
    if [ -f "$RUN_DIR/$name.log" ]; then
      [ $# -gt 1 ] && echo "==> $name <=="
      tail -n 50 "$RUN_DIR/$name.log"
    else
      say "no $name log yet: run 'make start'"
    fi
  done
}

status() {
  for name in broker sender receiver; do
    if running "$name"; then echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop_one receiver; stop_one sender; stop_one broker ;;
  status) status ;;
  check) check ;;
  logs) shift; logs "$@" ;;
  as) shift; as "$@" ;;
  watch) shift; watch "$@" ;;
  *) echo "usage: $0 start|stop|status|check|logs NAME...|as IDENTITY CMD...|watch TOPIC" >&2; exit 2 ;;
esac
