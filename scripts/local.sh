#!/usr/bin/env bash
# Local mode: the broker and both agents as background processes, no Docker needed.
# The stack's record ($RUN_DIR/stack: profile, port, pids; scripts/stack.sh) and the logs
# live in $RUN_DIR (.run/). `stop` stops exactly the pids `start` recorded.
#   scripts/local.sh start|stop|status|check|logs NAME...|as IDENTITY CMD...|watch TOPIC
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/stack.sh
stack_settings local
export MQTTPUSH_BROKER__PORT=$PORT MQTTPUSH_PROFILE=$PROFILE

pid_of() { stack_get "$1"; }

running() {  # running NAME: the record names a live process of ours
  [ "$(stack_get mode)" = local ] && pid_alive "$(pid_of "$1")"
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
  # Appended, never truncated: the previous runs' lines stay, after a dated marker.
  echo "==== mqttpush: $name started $(date -u +%Y-%m-%dT%H:%M:%SZ) ($PROFILE profile, port $PORT)" >>"$RUN_DIR/$name.log"
  nohup "$@" >>"$RUN_DIR/$name.log" 2>&1 &
  stack_set "$name" $!
}

start() {
  ensure_mosquitto
  stack_claim
  if running broker; then
    say "broker already running (pid $(pid_of broker))"
  else
    if port_open; then
      say "port $PORT is in use by another program; stop it or choose another port: make start PORT=1884"
      exit 1
    fi
    ensure_material
    [ -f "$STACK" ] || stack_write
    if [ "$PROFILE" = secure ]; then
      spawn broker "$PY" -m mqttpush dev-broker --config mosquitto-secure.conf --secure-dir "$SECURE_DIR" --port "$PORT" --run-dir "$RUN_DIR"
    else
      spawn broker "$PY" -m mqttpush dev-broker --config mosquitto.conf --port "$PORT" --run-dir "$RUN_DIR"
    fi
    for _ in $(seq 100); do port_open && break; sleep 0.1; done
    port_open || { say "the broker did not start; see $RUN_DIR/broker.log"; tail -5 "$RUN_DIR/broker.log" >&2; exit 1; }
    say "broker ($PROFILE profile) listening on 127.0.0.1:$PORT (pid $(pid_of broker))"
  fi
  for agent in sender receiver; do
    if running "$agent"; then
      say "$agent already running (pid $(pid_of "$agent"))"
    else
      MQTTPUSH_AGENT__STORE_PATH="$RUN_DIR/$agent.db" spawn "$agent" "$0" as "$agent" "$PY" -m mqttpush serve "$agent"
      say "$agent started (pid $(pid_of "$agent"))"
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

stop_all() {  # SIGTERM to the agents, then the broker; SIGKILL what outlives 10 s
  local name pid
  for group in "receiver sender" broker; do
    local pids=()
    for name in $group; do
      if running "$name"; then pid=$(pid_of "$name"); kill -TERM "$pid"; pids+=("$pid:$name"); fi
    done
    for entry in "${pids[@]}"; do
      pid=${entry%%:*}
      for _ in $(seq 200); do pid_running "$pid" || break; sleep 0.05; done
      if pid_running "$pid"; then kill -KILL "$pid"; fi
      say "${entry#*:} stopped (pid $pid)"
    done
  done
  stack_clear
}

check() {  # all three up, or say what to do
  stack_check
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
      tail -n 200 "$RUN_DIR/$name.log" | stack_log_filter | tail -n 50
    else
      say "no $name log yet: run 'make start'"
    fi
  done
}

status() {
  [ -f "$STACK" ] && stack_describe
  for name in broker sender receiver; do
    if running "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop_all ;;
  status) status ;;
  check) check ;;
  logs) shift; logs "$@" ;;
  as) shift; as "$@" ;;
  watch) shift; watch "$@" ;;
  *) echo "usage: $0 start|stop|status|check|logs NAME...|as IDENTITY CMD...|watch TOPIC" >&2; exit 2 ;;
esac
