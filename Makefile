# returns-portal. The README's two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(CURDIR)/data
SCREENSHOT_DIR ?= $(CURDIR)/docs/screenshots

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

unit: install
	SCREENSHOT_DIR=$(SCREENSHOT_DIR) $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## make bench: benchmarks that print figures (see tests/perf/).
bench: install
	@for script in tests/perf/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

## make screenshots: browser journey writing PNGs to $(SCREENSHOT_DIR).
screenshots: install
	SCREENSHOT_DIR=$(SCREENSHOT_DIR) $(PY) -m pytest -q -p no:cacheprovider -m browser tests

clean:
	rm -rf $(VENV) data/test
