# mqttpush: push notifications and RPC between agents over MQTT 5.
# Local mode (no Docker): the broker and agents run as background processes (.run/).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 1883
export MQTTPUSH_BROKER__PORT ?= $(PORT)
export PY

.DEFAULT_GOAL := help
.PHONY: help install start run stop status logs logs-sender logs-receiver logs-broker test lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install mqttpush with its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

start: install ## start the broker and both agents (installs mosquitto if missing)
	@scripts/local.sh start

run: start ## run the client: prints the nine notifications as JSON
	@$(PY) -m mqttpush run

stop: ## stop exactly the processes 'make start' started
	@scripts/local.sh stop

status: ## show which local processes are running
	@scripts/local.sh status

logs: ## show the logs of the broker and both agents
	@tail -n 50 .run/broker.log .run/sender.log .run/receiver.log 2>/dev/null || echo "no logs yet: run 'make start'"

logs-sender: ## show the sender's log
	@tail -n 50 .run/sender.log 2>/dev/null || echo "no log yet: run 'make start'"

logs-receiver: ## show the receiver's log
	@tail -n 50 .run/receiver.log 2>/dev/null || echo "no log yet: run 'make start'"

logs-broker: ## show the broker's log
	@tail -n 50 .run/broker.log 2>/dev/null || echo "no log yet: run 'make start'"

lint: install ## ruff and mypy (strict)
	$(PY) -m ruff check mqttpush tests
	$(PY) -m ruff format --check mqttpush tests
	$(PY) -m mypy mqttpush

test: lint ## lint, then the whole test suite against a real Mosquitto
	$(PY) -m pytest

clean: stop ## stop everything and remove .venv and .run
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache *.egg-info
