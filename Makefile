# dspex: set-up-and-go targets. Each creates .venv if missing and installs what it needs
# with uv (from PyPI, into .venv): `make demo` only what the demo needs, `make test` the
# test extras, `make bench` the benchmarks' too.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(VENV)/uv/bin/uv
INSTALL := $(UV) pip install --quiet --python $(BIN)/python

.PHONY: demo test test-dspy check bench system-deps clean

# The virtualenv without pip (ensurepip is the slowest step of a set-up); uv, from PyPI,
# lives in .venv/uv and installs everything else.
$(BIN)/python:
	$(PYTHON) -m venv --without-pip $(VENV)

$(UV): | $(BIN)/python
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(VENV)/uv uv

# One stamp per set of extras; each is redone when pyproject.toml changes.
$(VENV)/.installed-demo: pyproject.toml | $(UV)
	$(INSTALL) -e ".[demo]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(UV)
	$(INSTALL) -e ".[test,dev]"
	touch $@ $(VENV)/.installed-demo

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(INSTALL) -e ".[test,dev,bench]"
	touch $@

## system-deps: Debian packages the tests use (Chromium, PostgreSQL's binaries).
system-deps:
	bash scripts/system-deps.sh

## demo: the main job, a baseline and a SIMBA optimization recorded to ./dspex_results.
demo: $(VENV)/.installed-demo
	$(BIN)/dspex demo

## test: the whole test suite, PostgreSQL (a throwaway cluster) and browser tests included.
test: $(VENV)/.installed-test system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

## test-dspy: the capture, optimizer and contract tests against DSPy 3.2, 3.3 and 3.4
## (the latest patch release of each, one uv venv each under .venv-dspy/). DSPY_LINES="3.2 3.3"
## runs some lines; TEST_DSPY_TESTS="tests/capture tests/contract" a subset of the tests.
test-dspy: | $(UV)
	PATH="$(CURDIR)/$(VENV)/uv/bin:$$PATH" bash scripts/test-dspy.sh $(DSPY_LINES)

## check: lint, type-check, and the import contracts (layers, no cycles inside a package).
check: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## bench: benchmarks, side by side with MLflow; prints tables.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .venv-dspy .pytest_cache .mypy_cache .ruff_cache test-artifacts
