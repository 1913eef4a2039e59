# dspex: set-up-and-go targets. Each creates .venv if missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := postgres,ray,test,dev

.PHONY: demo test test-dspy check bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

## system-deps: Debian packages the tests use (Chromium) and a running PostgreSQL.
system-deps:
	bash scripts/system-deps.sh

## demo: the main job, a baseline and a SIMBA optimization recorded to ./dspex_results.
demo: $(STAMP)
	$(BIN)/dspex demo

## test: the whole test suite, PostgreSQL and browser tests included.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

## test-dspy: the capture, optimizer and contract tests against DSPy 3.2, 3.3 and 3.4
## (the latest patch release of each, one uv venv each under .venv-dspy/).
test-dspy:
	bash scripts/test-dspy.sh

## check: lint and type-check.
check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

## bench: benchmarks, side by side with MLflow; prints tables.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .venv-dspy .pytest_cache .mypy_cache .ruff_cache test-artifacts
