# The record of the running stack, shared by scripts/local.sh and scripts/compose.sh:
# one file, $RUN_DIR/stack, written by `make start` and removed by `make stop`, with one
# `key=value` per line: mode, profile, port, and the pids (local mode) or the compose
# project (compose mode). The Makefile reads it too, so `make run`, `make status`,
# `make watch` and `make stop` act on the stack that runs, whatever its profile and port,
# and `make start` refuses to start a second one over it. Sourced, not run.

PY=${PY:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-.run}
SECURE_DIR=${SECURE_DIR:-$RUN_DIR/secure}
STACK=$RUN_DIR/stack

say() { echo "mqttpush: $*" >&2; }

stack_settings() {  # stack_settings MODE: the profile and port asked for (make passes them)
  MODE=$1
  PROFILE=${MQTTPUSH_PROFILE:-open}
  if [ "$PROFILE" = secure ]; then PORT=${MQTTPUSH_BROKER__PORT:-8883}; else PORT=${MQTTPUSH_BROKER__PORT:-1883}; fi
  mkdir -p "$RUN_DIR"
}

stack_get() { [ -f "$STACK" ] && sed -n "s/^$1=//p" "$STACK" | head -1; }

stack_set() {  # stack_set KEY VALUE: add or replace one line
  local rest=""
  [ -f "$STACK" ] && rest=$(grep -v "^$1=" "$STACK" || true)
  { [ -n "$rest" ] && printf '%s\n' "$rest"; printf '%s=%s\n' "$1" "$2"; } >"$STACK.new"
  mv "$STACK.new" "$STACK"
}

stack_write() {  # stack_write KEY=VALUE...: a new record for the stack being started
  { printf 'mode=%s\nprofile=%s\nport=%s\n' "$MODE" "$PROFILE" "$PORT"; [ $# = 0 ] || printf '%s\n' "$@"; } >"$STACK.new"
  mv "$STACK.new" "$STACK"
}

stack_clear() { rm -f "$STACK" "$STACK.new"; }

stack_project() {  # the compose project: one per checkout, so checkouts never collide
  local base
  base=$(basename "$PWD" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_\n-' '-')
  case "$base" in mqttpush*) echo "$base" ;; *) echo "mqttpush-$base" ;; esac
}

pid_running() {  # pid_running PID: it exists and is not a zombie waiting to be reaped
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  # An exited process whose parent has not reaped it yet still answers kill -0.
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

pid_alive() {  # pid_alive PID: a live process that is ours (guards against recycled pids)
  pid_running "$1" || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -Eq 'mosquitto|mqttpush' || return 1
}

stack_alive() {  # whether the recorded stack still has something running
  [ -f "$STACK" ] || return 1
  case "$(stack_get mode)" in
    local)
      local name
      for name in broker sender receiver; do pid_alive "$(stack_get "$name")" && return 0; done
      return 1 ;;
    compose)
      [ -n "$(docker ps -q --filter "label=com.docker.compose.project=$(stack_get project)" 2>/dev/null)" ] ;;
    *) return 1 ;;
  esac
}

stack_describe() { echo "stack: $(stack_get mode) mode, $(stack_get profile) profile, port $(stack_get port)"; }

stack_other() {  # whether the record is of another stack than the one asked for
  [ "$(stack_get mode)" != "$MODE" ] || [ "$(stack_get profile)" != "$PROFILE" ] || [ "$(stack_get port)" != "$PORT" ]
}

stack_claim() {  # before starting: refuse to start over another running stack
  if stack_alive && stack_other; then
    say "another stack runs here ($(stack_get mode) mode, $(stack_get profile) profile, port $(stack_get port)): 'make stop' first"
    exit 1
  fi
  stack_alive || stack_clear
}

stack_check() {  # before run, watch...: a stack runs, and it is the one asked for
  if ! stack_alive; then
    say "nothing is running: run 'make start' first (then 'make run')"
    exit 1
  fi
  if stack_other; then
    say "the running stack is the $(stack_get profile) profile on port $(stack_get port) ($(stack_get mode) mode), not the $PROFILE profile on port $PORT: leave PROFILE and PORT out, or 'make stop' first"
    exit 1
  fi
}

# Mosquitto writes its database every second (autosave_interval 1, for what a crash
# loses) and logs each save: the log views leave those lines out.
stack_log_filter() { grep -v 'Saving in-memory database' || true; }
