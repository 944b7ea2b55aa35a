# otwatch: the two commands a new user needs are `make demo` and `make test`.
# Each creates .venv (Python 3.11+) if it is missing and installs into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: demo test test-fast lint bench soak audit clean help system-tools tls-terminator interop-peers

help:
	@echo "make demo   run the whole pipeline on the simulated plant (DEMO_SECONDS=N, DEMO_SCENARIO=NAME)"
	@echo "make test   install with the dev extras and run the whole suite (xdist: TEST_WORKERS=auto)"
	@echo "make test-fast  the pure tests only (no broker, PostgreSQL, simulated PLC, subprocess)"
	@echo "make lint   ruff, mypy --strict and the import contracts (lint-imports)"
	@echo "make bench  benchmarks (ratios against the bare libraries, written to \$$BENCH_OUT)"
	@echo "make soak   the whole pipeline for SOAK_SECONDS (default 1800) with the outage scenario cycling"
	@echo "make audit  pip-audit of the installed dependencies (allowlist: .ci/pip-audit-allowlist.txt)"

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

# Debian packages the tests drive (FIELD-NOTES): chromium (the browser test, through Playwright;
# never `playwright install`), slapd + ldap-utils (directory sign-in), stunnel4 (the broker's
# TLS), prometheus (promtool), systemd (systemd-analyze verify of deploy/systemd), rsyslog,
# socat and the fonts/libraries of PDF rendering. Installed in one
# apt-get line when we are root; elsewhere the tests that need one skip and say why.
SYSTEM_PACKAGES := chromium prometheus slapd ldap-utils rsyslog rsyslog-gnutls socat \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core stunnel4 systemd
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	-o DPkg::Lock::Timeout=300

system-tools:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages:$$missing"; \
	  $(APT_INSTALL) $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -qq -o DPkg::Lock::Timeout=300 >/dev/null 2>&1 && \
	    $(APT_INSTALL) $(SYSTEM_PACKAGES) >/dev/null 2>&1; } || \
	  echo "note: apt-get could not install$$missing; the tests that need them will skip"; \
	else echo "note: not root (or no apt-get): missing$$missing; the tests that need them skip"; fi

# The interoperability tests' peers: OPC UA and Modbus servers otwatch did not write (node-opcua,
# jsmodbus), pinned in tests/interop/package-lock.json. Installed with npm ci when npm exists and
# the lock file changed since the last install; without them the tests skip and say why.
INTEROP := tests/interop
interop-peers:
	@if [ -f $(INTEROP)/node_modules/.otwatch-installed ] && \
	   [ $(INTEROP)/node_modules/.otwatch-installed -nt $(INTEROP)/package-lock.json ]; then exit 0; fi; \
	if ! command -v npm >/dev/null 2>&1; then \
	  echo "note: no npm: the interop tests (tests/interop) will skip"; exit 0; fi; \
	echo "installing the interop peers: npm ci --prefix $(INTEROP)"; \
	if npm ci --prefix $(INTEROP) --no-audit --no-fund --loglevel=error >/dev/null 2>&1; then \
	  touch $(INTEROP)/node_modules/.otwatch-installed; \
	else echo "note: npm ci --prefix $(INTEROP) failed: the interop tests will skip"; fi

# Kept for habit: the broker TLS tests' stunnel4 now comes with system-tools.
tls-terminator: system-tools

# pytest-xdist: one worker per core (TEST_WORKERS=auto; TEST_WORKERS=0 runs in this process).
# --dist loadscope keeps each module's tests on one worker, so a module-scoped fixture (the
# simulated plant, the shared pipeline) starts once. Markers: README "Tests".
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadscope

test: $(VENV)/.dev-installed system-tools interop-peers
	$(PY) -m pytest -q -rs $(XDIST)

# The pure tests: nothing outside the pytest process (tests/support/markers.py enforces it).
test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -q -rs $(XDIST) -m "not integration and not e2e"

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check agent detectors simulators tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(VENV)/.dev-installed
	$(PY) -m tests.bench

# pip-audit against PyPI's advisories (osv.dev is not reachable from here); a finding fails
# unless .ci/pip-audit-allowlist.txt says why it does not apply; no network: one line, exit 0.
audit: $(VENV)/.dev-installed
	$(PY) -m tests.audit

# Not in `make test`: 30 minutes by default (SOAK_SECONDS=120 make soak for a short run).
soak: $(VENV)/.dev-installed
	$(PY) -m tests.soak

clean:
	rm -rf .demo .soak bench-results.json .pytest_cache .mypy_cache .ruff_cache
