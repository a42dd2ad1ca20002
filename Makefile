# Every target creates .venv from python3 when it is missing, so a fresh clone needs only
# `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench reliability clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The editable install puts the checkout on sys.path with a .pth file ("compat" mode): the
# default mode for a flat layout adds an import finder that costs every hook start about
# 10 ms, which an installed copy never pays. Where setuptools no longer offers the mode, the
# default is used.
EXTRAS := test,lint,server,keyring,tls
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]' --config-settings editable_mode=compat 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/datachonk-hook demo

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check datachonk_hooks tests bench
	$(BIN)/ruff format --check datachonk_hooks tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix datachonk_hooks tests bench
	$(BIN)/ruff format datachonk_hooks tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench.py

# The reliability suite (fault injection, races, crashes, bad input, secrets), then
# RELIABILITY.md from what it counted; `make test` runs the same tests without the report.
reliability: $(STAMP)
	$(BIN)/python -m tests.reliability_report

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
