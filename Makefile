# Two entry points, each working on a fresh machine with only Python 3.10-3.12:
#   make demo  - create the virtual environment if missing, install, run the whole chain
#   make test  - create the virtual environment if missing, install, run the tests
PYTHON ?= python3
VENV ?= .venv
# Optional: a package index to take torch==2.13.0 from first (e.g. PyTorch's CPU-only index on a
# machine without a local CPU wheel, where PyPI's Linux wheel is the multi-GB CUDA build).
TORCH_INDEX ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp

.PHONY: demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
ifneq ($(TORCH_INDEX),)
	$(BIN)/python -m pip install --quiet torch==2.13.0 --index-url $(TORCH_INDEX)
endif
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/clv run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/bandit -q -c pyproject.toml -r clv_models scripts feature_repo
	$(BIN)/python -m pytest
