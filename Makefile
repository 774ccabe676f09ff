# creditrisk — two commands: `make demo` and `make test`.
# Everything installs into .venv from requirements.lock (pinned); the venv is reused
# until the lock changes.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(BIN)/uv
UV_VERSION := 0.13.9
export CREDITRISK_HOME ?= $(CURDIR)/.creditrisk
export DAGSTER_HOME ?= $(CREDITRISK_HOME)/dagster_home

.PHONY: install demo test test-unit test-integration dev bench lint typecheck lock clean dbt-parse browser postgres

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@echo "installing pinned dependencies from requirements.lock into $(VENV) ..."
	@# bytecode compiled at install: PYTHONDONTWRITEBYTECODE=1 (set on this machine and in CI) would otherwise
	@# make every process recompile the whole stack (the Definitions took 34 s to import without .pyc)
	@$(UV) pip sync --python $(BIN)/python --compile-bytecode requirements.lock
	@$(UV) pip install --python $(BIN)/python --no-deps -e .
	@$(BIN)/python -m compileall -q creditrisk_assets serving >/dev/null
	@$(MAKE) --no-print-directory dbt-parse
	@touch $(STAMP)

dbt-parse:
	@cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . >/dev/null

lock:
	@$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -o requirements.lock

demo: install
	@$(BIN)/python -m creditrisk_assets.demo

test: install browser postgres
	@$(BIN)/ruff check creditrisk_assets serving tests bench
	@$(BIN)/mypy creditrisk_assets serving bench
	@# two pytest processes side by side: the Ray tests (one cluster) with the modules marked `beside_ray` (so both
	@# take about as long), and everything else; the suite waits on servers about half the time, so on 2 cores
	@# this takes ~2/3 of one sequential run
	@mkdir -p $(CREDITRISK_HOME); log=$(CREDITRISK_HOME)/test-ray.log; \
	  $(BIN)/python -m pytest -q -p no:cacheprovider -m "ray or beside_ray" --durations=8 tests > $$log 2>&1 & ray=$$!; \
	  $(BIN)/python -m pytest -q -m "not ray and not beside_ray" --durations=15 tests; rest=$$?; \
	  wait $$ray; status=$$?; echo "---- Ray tests (run beside the others; log $$log)"; cat $$log; \
	  test $$rest -eq 0 && test $$status -eq 0

# tests/integration/test_ui_browser.py drives Debian's chromium with Playwright (which downloads no browser)
browser:
	@command -v chromium >/dev/null || { echo "the browser test needs chromium: installing the Debian package"; \
	  log=$$(mktemp); (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >$$log 2>&1 \
	  || { cat $$log; echo "could not install chromium (run as root, or apt-get install chromium)" >&2; exit 1; }; rm -f $$log; }

# tests/integration/test_postgres.py starts a throwaway PostgreSQL from Debian's server binaries (as user postgres)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "the Postgres test needs PostgreSQL: installing the Debian package"; \
	  log=$$(mktemp); (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >$$log 2>&1 \
	  || { cat $$log; echo "could not install postgresql (run as root, or apt-get install postgresql)" >&2; exit 1; }; rm -f $$log; }

test-unit: install
	@$(BIN)/python -m pytest -q tests/unit

test-integration: install browser postgres
	@$(BIN)/python -m pytest -q tests/integration

dev: install
	@mkdir -p $(DAGSTER_HOME)
	@$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install
	@command -v wrk >/dev/null || { echo "bench/serving.py needs wrk: installing the Debian package"; \
	  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || echo "could not install wrk (run as root?)"; }
	@$(BIN)/python -m bench

lint: install
	@$(BIN)/ruff check creditrisk_assets serving tests bench

typecheck: install
	@$(BIN)/mypy creditrisk_assets serving bench

clean:
	rm -rf .creditrisk
