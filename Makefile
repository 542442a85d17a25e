# One task runner for developers and CI. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/carewall demo

lint: install
	$(BIN)/ruff check carewall tests benchmarks
	$(BIN)/ruff format --check carewall tests benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q -n 2 --dist loadgroup

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/decide.py
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/service.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache carewall.db* carewall-demo.db*
