# Two commands a new user types (README): `make quickstart` and `make test`.
# Each creates .venv if needed, installs torch==2.13.0 FIRST (so pip never resolves a CUDA
# build), then the package with its pinned dependencies, then does its job.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install quickstart test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(BIN)/reasondistill run recipes/quickstart.yaml

test: $(STAMP)
	$(BIN)/ruff check reasondistill tests bench
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/train_overhead.py

clean:
	rm -rf $(VENV) runs
