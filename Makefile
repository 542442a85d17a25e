# One task runner for developers and CI. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NPM_STAMP := node_modules/.installed-stamp
PORT ?= 8000
# Debian's Chromium, for the browser tests (never a browser a test tool downloads).
CHROMIUM ?= /usr/bin/chromium

.PHONY: install run test lint typecheck pytest bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# GOV.UK Frontend (served by the pages) and axe-core (used by the browser tests), pinned in
# package-lock.json and installed from the npm registry, never copied into the repository.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	  || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null); \
	else \
	  echo "Chromium is missing: run 'sudo apt-get install chromium' (the browser tests need it)"; exit 1; \
	fi

install: $(STAMP) $(NPM_STAMP)

run: install
	$(BIN)/carewall demo --port $(PORT)

lint: install
	$(BIN)/ruff check carewall tests benchmarks
	$(BIN)/ruff format --check carewall tests benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install $(CHROMIUM)
	$(BIN)/pytest -q -n 2 --dist loadgroup

test: lint typecheck pytest

# Every benchmark, each beside its ceiling in one run; their detailed tables go to
# build/bench/<name>.txt and `make bench` prints one table of the headline figures.
BENCHES := startup decide submit service large_request demo ledger audit release egress scan witness
BENCH_OUT := build/bench
bench: install
	@rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT)
	@for b in $(BENCHES); do \
	  echo "benchmarks/$$b.py (details: $(BENCH_OUT)/$$b.txt)" >&2; \
	  CAREWALL_BENCH_SUMMARY=$(CURDIR)/$(BENCH_OUT)/summary.jsonl \
	    $(BIN)/python benchmarks/$$b.py > $(BENCH_OUT)/$$b.txt || exit 1; \
	done
	@$(BIN)/python benchmarks/summary.py $(BENCH_OUT)/summary.jsonl

# The README's screenshots, taken by the browser tests from the pages as they are now.
screenshots: install $(CHROMIUM)
	CAREWALL_SCREENS=$(CURDIR)/docs/screens $(BIN)/pytest -q -n 2 tests/integration/test_web_*.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache carewall.db* carewall-demo.db*
