# returns-portal. The README's two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(CURDIR)/data
SCREENSHOT_DIR ?= $(CURDIR)/docs/screenshots
# `make test` keeps its pictures out of the committed docs/screenshots.
TEST_SCREENSHOT_DIR ?= $(CURDIR)/data/test/screenshots

.PHONY: install demo seed run test lint unit bench screenshots check-deploy clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

## make demo: install, migrate, seed the demo tenant, run web + worker + beat on the embedded default.
demo: install
	DATA_DIR=$(DATA_DIR) VENV=$(VENV) scripts/demo.sh

## make test: lint, layer contracts, deploy checks and the test suite (SQLite unless DATABASE_URL is set).
test: install lint unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DEBUG=1 $(VENV)/bin/mypy

unit: install
	SCREENSHOT_DIR=$(TEST_SCREENSHOT_DIR) $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## make bench: benchmarks that print figures (tests/perf/). The PostgreSQL ones make
## their own scratch databases (rp_bench_detect, rp_bench_ingest) on BENCH_PG's server.
BENCH_PG ?= postgres://postgres@127.0.0.1:5432/postgres
bench: install
	@echo "== normalization: ours vs karrio's parsers (same payloads)"
	$(PY) tests/perf/bench_normalize.py
	@echo "== Shopify import, 20,000 orders (SQLite scratch database)"
	env -u DATABASE_URL $(PY) tests/perf/bench_import.py --orders 20000
	@echo "== exception detection over 1,000,000 open returns (PostgreSQL)"
	DATABASE_URL=$(BENCH_PG) $(PY) tests/perf/bench_detect.py
	@echo "== webhook ingest through gunicorn + a Celery worker (PostgreSQL, Redis)"
	$(PY) tests/perf/bench_ingest.py

## make screenshots: browser journey writing PNGs to $(SCREENSHOT_DIR).
screenshots: install
	SCREENSHOT_DIR=$(SCREENSHOT_DIR) $(PY) -m pytest -q -p no:cacheprovider -m browser tests

clean:
	rm -rf $(VENV) data/test
