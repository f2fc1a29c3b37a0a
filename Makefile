# monstack: `make up` brings the stack up, `make test` runs every test. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MONSTACK := $(BIN)/monstack
INVENTORY ?= services.yaml
EXAMPLES := $(sort $(wildcard examples/*/services.yaml))
# Debian/Ubuntu packages the native runner and the checkers use (redis-server and postgresql are the
# throwaway databases the postgres/redis exporters of the demo inventory watch; victoria-metrics is
# its long-term store).
APT_PACKAGES := prometheus prometheus-alertmanager prometheus-node-exporter prometheus-blackbox-exporter python3-venv \
  prometheus-postgres-exporter prometheus-redis-exporter prometheus-pushgateway redis-server postgresql victoria-metrics
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps venv render schema validate check lint test test-fast golden up down status test-alerts bench clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install the Debian packages (Prometheus, Alertmanager, exporters) and the Python environment
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null; then echo "installing Debian packages: $(APT_PACKAGES)"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	  else echo "install these (or their equivalents) first: $(APT_PACKAGES)" >&2; exit 3; fi; \
	fi
	@$(MAKE) --no-print-directory venv

venv: $(MONSTACK) ## Create .venv with monstack and its test tools

$(MONSTACK): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

render: venv ## Render configs from services.yaml (compose and kubernetes/) and every example inventory (checked by promtool/amtool)
	$(MONSTACK) render --inventory $(INVENTORY) --target all
	$(MONSTACK) schema --write services.schema.json
	@for inv in $(EXAMPLES); do $(MONSTACK) render --inventory $$inv --out $$(dirname $$inv) || exit $$?; done

schema: venv ## Write services.schema.json (JSON Schema for editors)
	$(MONSTACK) schema --write services.schema.json

validate: deps ## promtool/amtool checks plus the generated rule and routing tests, for every inventory
	$(MONSTACK) validate --inventory $(INVENTORY) --target all
	@for inv in $(EXAMPLES); do $(MONSTACK) validate --inventory $$inv || exit $$?; done

check: venv ## Fail when committed generated files drift from their inventory
	$(MONSTACK) check --inventory $(INVENTORY)
	@for inv in $(EXAMPLES); do $(MONSTACK) check --inventory $$inv --out $$(dirname $$inv) || exit $$?; done

lint: venv ## ruff and mypy on generator/
	$(BIN)/ruff check generator
	$(BIN)/mypy

test: deps ## Run every test: drift check, validation, lint, type check, unit, integration and end-to-end tests
	$(MAKE) --no-print-directory check validate lint
	$(BIN)/pytest -q

test-fast: venv ## Unit tier: no process, no socket, no npm (seconds, not minutes)
	@start=$$(date +%s); $(BIN)/pytest -q -m "not integration" && echo "test-fast: $$(( $$(date +%s) - start ))s"

golden: venv ## Rewrite tests/golden/*/expected after an intended change (review the diff)
	MONSTACK_UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/test_golden.py

up: deps ## Bring the stack up (docker compose when it works, native processes otherwise)
	$(MONSTACK) up --inventory $(INVENTORY)

down: venv ## Stop the stack
	$(MONSTACK) down

status: venv ## Components, targets and firing alerts
	$(MONSTACK) status

test-alerts: venv ## Fire a synthetic alert per severity and report which receivers got it (SERVICE=name, FAULT=1)
	$(MONSTACK) test-alerts $(if $(SERVICE),--service $(SERVICE)) $(if $(FAULT),--fault)

bench: deps ## Benchmarks (ONLY=render,validate,dashboards,rules,outage,quality SIZES=100,1000,10000): prints tables, merges bench/results.json
	$(BIN)/python -m generator.bench $(if $(ONLY),--only $(ONLY)) $(if $(SIZES),--sizes $(SIZES))

clean: ## Remove the virtualenv, runtime state and caches (not generated configs)
	rm -rf $(VENV) .monstack .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
