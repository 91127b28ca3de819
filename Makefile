# Two entry points, each working on a fresh machine with only Python 3.10-3.12:
#   make demo  - create the virtual environment if missing, install, run the whole chain
#   make test  - create the virtual environment if missing, install, run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp

.PHONY: demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/clv run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
