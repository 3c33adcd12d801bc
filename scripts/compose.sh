#!/usr/bin/env bash
# Compose mode: the broker and both agents in containers (docker-compose.yml, plus
# docker-compose.secure.yml for PROFILE=secure). Works with Compose v2 (`docker compose`)
# and v1 (`docker-compose` 1.29, the one Debian 12 packages): no top-level `name:` and no
# `up --wait`, which v1 lacks; this script waits for readiness itself.
# The running stack is recorded in $RUN_DIR/stack (scripts/stack.sh) for every target.
#   scripts/compose.sh start|stop|status|check|run ARGS...|logs SERVICE...|watch TOPIC|build|clean
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/stack.sh
stack_settings compose
export MQTTPUSH_BROKER__PORT=$PORT MQTTPUSH_PROFILE=$PROFILE
# The broker's port inside its container, for docker-compose.yml's port mapping only.
LISTENER_PORT=$([ "$PROFILE" = secure ] && echo 8883 || echo 1883)
WS_LISTENER_PORT=$([ "$PROFILE" = secure ] && echo 8884 || echo 9001)  # the web console's WebSockets
PROJECT=${COMPOSE_PROJECT_NAME:-$(stack_project)}

compose() {
  local files=(-f docker-compose.yml)
  [ "$PROFILE" = secure ] && files+=(-f docker-compose.secure.yml)
  if [ -z "${COMPOSE_COMMAND:-}" ]; then
    if docker compose version >/dev/null 2>&1; then
      COMPOSE_COMMAND="docker compose"
    elif command -v docker-compose >/dev/null; then
      COMPOSE_COMMAND=docker-compose
    else
      say "neither 'docker compose' (Compose v2) nor 'docker-compose' (v1) is installed"
      exit 1
    fi
  fi
  MQTTPUSH_LISTENER_PORT=$LISTENER_PORT MQTTPUSH_WS_LISTENER_PORT=$WS_LISTENER_PORT \
    $COMPOSE_COMMAND -p "$PROJECT" "${files[@]}" "$@"
}

container() { compose ps -q "$1" 2>/dev/null | head -1; }

is_running() {  # is_running SERVICE
  local id
  id=$(container "$1")
  [ -n "$id" ] && [ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ]
}

wait_ready() {  # the broker healthy, then each agent's "serving" line since it started
  local id health started deadline=$((SECONDS + 90))
  id=$(container mosquitto)
  while :; do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || echo gone)
    [ "$health" = healthy ] && break
    if [ "$health" = gone ] || [ $SECONDS -ge $deadline ]; then
      say "the broker is not healthy ($health); its last lines:"
      compose logs --tail 10 mosquitto >&2
      exit 1
    fi
    sleep 0.5
  done
  for service in push-sender push-receiver; do
    while :; do
      id=$(container "$service")
      if [ -n "$id" ]; then
        started=$(docker inspect -f '{{.State.StartedAt}}' "$id")
        docker logs --since "$started" "$id" 2>&1 | grep -q "serving " && break
      fi
      if [ $SECONDS -ge $deadline ]; then
        say "$service is not serving; its last lines:"
        compose logs --tail 10 "$service" >&2
        exit 1
      fi
      sleep 0.5
    done
  done
}

start() {
  stack_claim
  if [ "$PROFILE" = secure ]; then
    # Idempotent: keeps every secret, adds what is missing, renews certificates near expiry.
    "$PY" -m mqttpush secure init --dir "$SECURE_DIR" >&2
  fi
  stack_write project="$PROJECT"
  compose up -d --build
  wait_ready
  say "broker ($PROFILE profile) on 127.0.0.1:$PORT and both agents serving (compose project $PROJECT)"
}

check() {
  stack_check
  for service in mosquitto push-sender push-receiver; do
    is_running "$service" || { say "$service is not running: run 'make start' first (then 'make run')"; exit 1; }
  done
}

stop() {
  compose down --remove-orphans --timeout 5
  stack_clear
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) [ ! -f "$STACK" ] || stack_describe; compose ps ;;
  check) check ;;
  run) shift; check; compose run --rm --no-deps push-client "$@" ;;
  logs) shift; compose logs --no-color --tail 100 "$@" | stack_log_filter ;;
  watch)
    shift; check
    if [ "$PROFILE" = secure ]; then
      compose exec mosquitto sh -c 'mosquitto_sub -V mqttv5 -h localhost -p 8883 -q 1 \
        --cafile /mosquitto/watch/ca.crt --cert /mosquitto/watch/watch.crt \
        --key /mosquitto/watch/watch.key -u watch -P "$(cat /mosquitto/watch/watch.password)" \
        -t "$1" -v' sh "$1"
    else
      compose exec mosquitto mosquitto_sub -V mqttv5 -q 1 -t "$1" -v
    fi ;;
  build) compose build ;;
  clean) compose down --remove-orphans --volumes --rmi local --timeout 5; stack_clear ;;
  *) echo "usage: $0 start|stop|status|check|run ARGS...|logs SERVICE...|watch TOPIC|build|clean" >&2; exit 2 ;;
esac
