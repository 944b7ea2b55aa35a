# otwatch: the two commands a new user needs are `make demo` and `make test`.
# Each creates .venv (Python 3.11+) if it is missing and installs into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: demo test lint bench clean help tls-terminator

help:
	@echo "make demo   run the whole pipeline on the simulated plant (DEMO_SECONDS=N, DEMO_SCENARIO=NAME)"
	@echo "make test   install with the dev extras and run the whole suite"
	@echo "make lint   ruff, mypy --strict and the import contracts (lint-imports)"
	@echo "make bench  benchmarks (ratios against the bare libraries, written to \$$BENCH_OUT)"

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "otwatch needs Python 3.11 or newer; set PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[demo]'
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev]'
	@touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(PY) -m simulators.demo

# The TLS tests put the broker behind Debian's stunnel4; install it when we can (root, apt).
tls-terminator:
	@command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 >/dev/null 2>&1)) ; } || \
	  echo "note: stunnel4 is not installed; the TLS tests will be skipped"

test: $(VENV)/.dev-installed tls-terminator
	$(PY) -m pytest -q

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check agent detectors simulators tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(VENV)/.dev-installed
	$(PY) -m tests.bench

clean:
	rm -rf .demo bench-results.json .pytest_cache .mypy_cache .ruff_cache
