# Entry points, each working on a fresh machine with only Python 3.10-3.12:
#   make demo       - create the virtual environment if missing, install the runtime, run the chain
#   make test       - the same with the developer tools, then lint and run every test
#   make test-fast  - the tests that need neither a dbt build nor Feast nor a server (a minute)
PYTHON ?= python3
VENV ?= .venv
# Optional: a package index to take torch==2.13.0 from first (e.g. PyTorch's CPU-only index on a
# machine without a local CPU wheel, where PyPI's Linux wheel is the multi-GB CUDA build).
TORCH_INDEX ?=
# Test processes: one per core (a module and its fixtures stay in one process).
TEST_WORKERS ?= auto
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime.stamp
DEV := $(VENV)/.dev.stamp
PIP := $(BIN)/python -m pip install --progress-bar on --disable-pip-version-check

.PHONY: demo test test-fast

$(BIN)/python:
	@echo "== creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(RUNTIME): pyproject.toml setup.py | $(BIN)/python
	@echo "== installing the runtime dependencies (dbt, DuckDB, Feast, XGBoost, PyTorch CPU): first time a few minutes"
ifneq ($(TORCH_INDEX),)
	$(PIP) torch==2.13.0 --index-url $(TORCH_INDEX)
endif
	$(PIP) -e .
	touch $(RUNTIME)

# One resolver pass for the runtime and the developer tools together.
$(DEV): pyproject.toml setup.py | $(BIN)/python
	@echo "== installing the runtime and the developer tools (pytest, ruff, bandit, Redis client, fuzzers): first time a few minutes"
ifneq ($(TORCH_INDEX),)
	$(PIP) torch==2.13.0 --index-url $(TORCH_INDEX)
endif
	$(PIP) -e '.[dev]'
	touch $(RUNTIME) $(DEV)

demo: $(RUNTIME)
	$(BIN)/clv run

test: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/bandit -q -c pyproject.toml -r clv_models scripts feature_repo setup.py
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

test-fast: $(DEV)
	$(BIN)/python -m pytest -m "not e2e"
