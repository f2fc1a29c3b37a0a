# monstack: `make up` brings the stack up, `make test` runs every test. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MONSTACK := $(BIN)/monstack
INVENTORY ?= services.yaml
EXAMPLES := $(sort $(wildcard examples/*/services.yaml))
# Debian/Ubuntu packages: python3-venv for the Python environment; the rest are the native runner's binaries and
# the checkers the tests use (promtool, amtool; redis-server and postgresql are the throwaway databases the
# postgres/redis exporters of the demo inventory watch; victoria-metrics is its long-term store).
# scripts/apt-install installs what is missing and keeps the packages' system services stopped.
APT_BASE := python3-venv
APT_NATIVE := prometheus prometheus-alertmanager prometheus-node-exporter prometheus-blackbox-exporter \
  prometheus-postgres-exporter prometheus-redis-exporter prometheus-pushgateway redis-server postgresql victoria-metrics
# Test files run in parallel (pytest-xdist): most integration tests wait on scrapes and evaluations, not CPU.
TEST_WORKERS ?= 3
APT_INSTALL := sh scripts/apt-install
# make up MODE=native|compose: choose instead of asking Docker.
MODE ?=

.PHONY: help deps up-deps venv render schema validate check lint test test-fast test-faults golden up down status test-alerts bench fuzz clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install every Debian package (the native stack, promtool/amtool) and the Python environment: what `make test` needs
	@$(APT_INSTALL) $(APT_BASE) $(APT_NATIVE)
	@$(MAKE) --no-print-directory venv

# What `make up` needs: the native stack's packages only when the native runner will run it (decided as `monstack up`
# decides); under docker compose their services would hold the ports compose publishes. Prints the mode last.
up-deps:
	@$(APT_INSTALL) $(APT_BASE) >&2
	@$(MAKE) --no-print-directory venv >&2
	@mode=$$($(BIN)/python -m generator.runner.mode $(MODE)) || exit $$?; \
	if [ "$$mode" = native ]; then $(APT_INSTALL) $(APT_NATIVE) >&2 || exit $$?; \
	else echo "docker compose runs the stack: the native stack's Debian packages are not installed" >&2; fi; \
	echo "$$mode"

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
	$(BIN)/pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile

FIGURES := .monstack/fault-figures.json
test-faults: deps ## Every fault scenario, the slow ones included (~25 min); prints the figures table of docs/reliability.md
	@mkdir -p .monstack && rm -f $(FIGURES)
	@start=$$(date +%s); MONSTACK_FAULT_FIGURES=$(CURDIR)/$(FIGURES) $(BIN)/pytest -q -m fault tests/test_faults.py; rc=$$?; \
	  $(BIN)/python tests/tools/faults_table.py $(FIGURES) || rc=$$((rc ? rc : 1)); \
	  echo "test-faults: $$(( $$(date +%s) - start ))s"; exit $$rc

test-fast: venv ## Unit tier: no process, no socket, no npm (seconds, not minutes)
	@start=$$(date +%s); $(BIN)/pytest -q -m "not integration" -n $(TEST_WORKERS) && echo "test-fast: $$(( $$(date +%s) - start ))s"

golden: venv ## Rewrite tests/golden/*/expected after an intended change (review the diff)
	MONSTACK_UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/test_golden.py

up: ## Bring the stack up (docker compose when it works, native processes otherwise; MODE=native|compose to choose)
	@mode=$$($(MAKE) --no-print-directory up-deps) || exit $$?; \
	echo "$(MONSTACK) up --inventory $(INVENTORY) --$$mode"; $(MONSTACK) up --inventory $(INVENTORY) --$$mode

down: venv ## Stop the stack
	$(MONSTACK) down

status: venv ## Components, targets and firing alerts
	$(MONSTACK) status

test-alerts: venv ## Fire a synthetic alert per severity and report which receivers got it (SERVICE=name, FAULT=1)
	$(MONSTACK) test-alerts $(if $(SERVICE),--service $(SERVICE)) $(if $(FAULT),--fault)

bench: deps ## Benchmarks (ONLY=render,validate,dashboards,rules,outage,quality,start SIZES=100,1000,10000 RULES_SIZES=100): prints tables, merges bench/results.json
	$(BIN)/python -m generator.bench $(if $(ONLY),--only $(ONLY)) $(if $(SIZES),--sizes $(SIZES)) $(if $(RULES_SIZES),--rules-sizes $(RULES_SIZES))

fuzz: venv ## Long fuzzing run: 100,000 random inventories, accepted ones rendered and checked (FUZZ_EXAMPLES=n, FUZZ_JOBS=processes); writes .monstack/fuzz/
	$(BIN)/python tests/fuzz.py --examples $(or $(FUZZ_EXAMPLES),100000) --jobs $(or $(FUZZ_JOBS),2) --render-every 5 --check-every 10 --validate-every 5

clean: ## Remove the virtualenv, runtime state and caches (not generated configs)
	rm -rf $(VENV) .monstack .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
