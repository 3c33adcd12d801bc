# mqttpush: push notifications and RPC between agents over MQTT 5.
#
# Two modes, chosen automatically (override with MODE=local or MODE=compose):
#   compose  when a Docker engine answers: broker and agents in containers (docker-compose.yml)
#   local    otherwise: broker and agents as background processes, pids and logs in .run/

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Security profile: open (anonymous, 127.0.0.1 only, port 1883) or secure (TLS,
# per-identity credentials, ACL, port 8883); docs/security.md. `make start PROFILE=secure`.
RUN_DIR ?= .run
SECURE_DIR ?= $(RUN_DIR)/secure
# The running stack's record (scripts/stack.sh: mode, profile, port, pids): unless given,
# MODE, PROFILE and PORT are the running stack's, so `make run`, `status`, `watch` and
# `stop` act on what runs; `make start` refuses to start a second stack over it.
STACK := $(RUN_DIR)/stack
stack_field = $(shell sed -n 's/^$(1)=//p' $(STACK) 2>/dev/null)
ifeq ($(origin PROFILE), undefined)
PROFILE := $(or $(call stack_field,profile),open)
endif
ifeq ($(origin PORT), undefined)
PORT := $(or $(if $(filter $(PROFILE),$(call stack_field,profile)),$(call stack_field,port)),$(if $(filter secure,$(PROFILE)),8883,1883))
endif
ifeq ($(origin MODE), undefined)
MODE := $(or $(call stack_field,mode),$(shell docker info >/dev/null 2>&1 && echo compose || echo local))
endif
WATCH_TOPIC := mqttpush/v1/+/+/push/\#
# `make bench BENCH_ARGS="--set repeat=1"`: options of the suite (docs/benchmarks.md).
BENCH_ARGS ?=
# `make run RECEIVERS=3`: one sender task broadcast to 3 endpoints (and two filtered ones).
RECEIVERS ?=
RUN_ARGS := $(if $(RECEIVERS),--receivers $(RECEIVERS))

export MQTTPUSH_BROKER__PORT ?= $(PORT)
# Nodes of one broker cluster, e.g. BROKERS=127.0.0.1:1883,127.0.0.1:1884 (docs/scaling.md).
ifdef BROKERS
export MQTTPUSH_BROKER__SERVERS := $(BROKERS)
endif
export MQTTPUSH_PROFILE := $(PROFILE)
export PY RUN_DIR SECURE_DIR

.DEFAULT_GOAL := help
.PHONY: help install build start run run-verbose stop status logs logs-sender logs-receiver \
	logs-broker watch test test-deps test-fast test-cluster lint bench bench-overload bench-soak \
	bench-record bench-scale certs clean images-offline

help: ## list the targets
	@echo "mode: $(MODE) (override with MODE=local or MODE=compose)"
	@test ! -f $(STACK) || echo "running: the $(PROFILE) profile on port $(PORT), $(MODE) mode ($(STACK))"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install mqttpush with its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

build: build-$(MODE) ## build what 'start' runs (the image, or .venv)
start: start-$(MODE) ## start the broker and both agents
run: run-$(MODE) ## run the client: prints the nine notifications as JSON
run-verbose: run-verbose-$(MODE) ## the same, also printing every message's envelope to stderr
stop: stop-$(MODE) ## stop exactly what 'start' started
status: status-$(MODE) ## show what is running
logs: logs-$(MODE) ## the logs of the broker and both agents
logs-sender: logs-sender-$(MODE) ## the sender's log
logs-receiver: logs-receiver-$(MODE) ## the receiver's log
logs-broker: logs-broker-$(MODE) ## the broker's log
watch: watch-$(MODE) ## follow every notification with mosquitto_sub -v (Ctrl-C to stop)
clean: clean-$(MODE) ## stop, then remove .venv, .run and caches (and the compose volumes and image)
	rm -rf $(VENV) $(RUN_DIR) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
images-offline: ## no registry? build eclipse-mosquitto:2 and python:3.11-slim from Debian packages
	scripts/images-offline.sh

lint: install ## ruff, mypy (strict, tests too) and the import contracts (layers, no cycles)
	$(PY) -m ruff check mqttpush tests
	$(PY) -m ruff format --check mqttpush tests
	$(PY) -m mypy mqttpush tests
	$(VENV)/bin/lint-imports --no-cache

# The whole suite runs on the native MQTT client (the default); the messaging tests run
# again on the aiomqtt client, so both implementations behind the transport seam stay true.
AIOMQTT_TESTS := tests/test_rpc.py tests/test_push.py tests/test_broker_loss.py tests/test_reliability.py

test-fast: install ## the unit tests only: no broker, no processes (seconds)
	$(PY) -m pytest -q -m "not broker"

test-deps: ## install what the tests need from the OS when missing (Debian, as root)
	@scripts/test-deps.sh

test: lint test-deps ## lint, then the whole test suite against a real Mosquitto (not the cluster tests)
	$(PY) -m pytest -m "not cluster"
	MQTTPUSH_TEST_CLIENT=aiomqtt $(PY) -m pytest -q $(AIOMQTT_TESTS)

test-cluster: install ## broker-cluster tests on a two-node ejabberd they start (apt-get install ejabberd)
	$(PY) -m pytest -m cluster

certs: install ## create the secure profile's CA, certificates, passwords and ACL (.run/secure)
	$(PY) -m mqttpush secure init --dir $(SECURE_DIR)

bench: $(VENV)/.bench ## benchmark suite, raw baselines on every client, same run (about ten minutes)
	$(PY) -m mqttpush bench $(BENCH_ARGS) --json $(RUN_DIR)/bench/results.json --chart $(RUN_DIR)/bench/chart.png

bench-overload: $(VENV)/.bench ## overload mode: 1,000 endpoints x 101 notifications with RPCs
	$(PY) -m mqttpush bench --overload $(BENCH_ARGS) --json $(RUN_DIR)/bench/overload.json

bench-soak: $(VENV)/.bench ## soak mode: 10 rounds of 200,000 notifications, RSS, idle CPU
	$(PY) -m mqttpush bench --soak $(BENCH_ARGS) --json $(RUN_DIR)/bench/soak.json --chart $(RUN_DIR)/bench/soak.png

# The run docs/benchmarks.md records: the default suite, then both modes, written to docs/.
# On a quiet machine: `make bench-record`; smaller modes: BENCH_MODE_ARGS="--set soak_rounds=3".
BENCH_MODE_ARGS ?=
bench-record: $(VENV)/.bench ## re-record docs/benchmarks.{json,png} and the modes' results
	$(PY) -m mqttpush bench $(BENCH_ARGS) --json docs/benchmarks.json --chart docs/benchmarks.png
	$(PY) -m mqttpush bench --overload $(BENCH_MODE_ARGS) --json docs/benchmarks-overload.json
	$(PY) -m mqttpush bench --soak $(BENCH_MODE_ARGS) --json docs/benchmarks-soak.json \
		--chart docs/benchmarks-soak.png

# Opt-in parts: they start a private PostgreSQL (unless MQTTPUSH_BENCH_STORE_URL names one)
# and a two-node ejabberd cluster with haproxy in front (root; apt-get install ejabberd haproxy).
bench-scale: $(VENV)/.bench ## scale-out figures: pool throughput and failover, broker node failover
	$(PY) -m mqttpush bench --only pool --only pool-failover --only cluster-failover \
		--json $(RUN_DIR)/bench/scale.json

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $@

# ---- local mode -------------------------------------------------------------------------
.PHONY: build-local start-local run-local run-verbose-local stop-local status-local logs-local \
	logs-sender-local logs-receiver-local logs-broker-local watch-local clean-local
build-local: install
start-local: install
	@scripts/local.sh start
run-local: install
	@scripts/local.sh check
	@scripts/local.sh as client $(PY) -m mqttpush run $(RUN_ARGS)
run-verbose-local: install
	@scripts/local.sh check
	@scripts/local.sh as client $(PY) -m mqttpush run --envelopes
stop-local:
	@scripts/local.sh stop
status-local:
	@scripts/local.sh status
logs-local:
	@scripts/local.sh logs broker sender receiver
logs-sender-local:
	@scripts/local.sh logs sender
logs-receiver-local:
	@scripts/local.sh logs receiver
logs-broker-local:
	@scripts/local.sh logs broker
watch-local:
	@scripts/local.sh check
	@scripts/local.sh watch '$(WATCH_TOPIC)'
clean-local: stop-local

# ---- compose mode -----------------------------------------------------------------------
# scripts/compose.sh runs `docker compose` (v2) or `docker-compose` (v1), whichever exists.
.PHONY: build-compose start-compose run-compose run-verbose-compose stop-compose status-compose \
	logs-compose logs-sender-compose logs-receiver-compose logs-broker-compose watch-compose \
	clean-compose
build-compose:
	@scripts/compose.sh build
start-compose: $(if $(filter secure,$(PROFILE)),install)
	@scripts/compose.sh start
run-compose:
	@scripts/compose.sh run run $(RUN_ARGS)
run-verbose-compose:
	@scripts/compose.sh run run --envelopes
stop-compose:
	@scripts/compose.sh stop
status-compose:
	@scripts/compose.sh status
logs-compose:
	@scripts/compose.sh logs
logs-sender-compose:
	@scripts/compose.sh logs push-sender
logs-receiver-compose:
	@scripts/compose.sh logs push-receiver
logs-broker-compose:
	@scripts/compose.sh logs mosquitto
watch-compose:
	@scripts/compose.sh watch '$(WATCH_TOPIC)'
clean-compose:
	@scripts/compose.sh clean
