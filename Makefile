# Two commands: `make dev` (UI with the loop running) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install dev test lint format docs clean

install: $(VENV)/.installed

# Re-installs when the project's dependencies change. uv resolves in seconds; --override forces
# the antlr runtime Dagster's selection parser needs (see overrides.txt).
$(VENV)/.installed: pyproject.toml overrides.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "uv>=0.5,<1"
	$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode --override overrides.txt -e '.[dev,prod]'
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/retrain-assets dev

test: install
	$(PY) -m pytest -n 2 --dist loadfile

lint: install
	$(VENV)/bin/ruff check retrain_assets tests
	$(VENV)/bin/ruff format --check retrain_assets tests
	$(VENV)/bin/mypy retrain_assets

format: install
	$(VENV)/bin/ruff check --fix retrain_assets tests
	$(VENV)/bin/ruff format retrain_assets tests

# The README's configuration reference, regenerated from the pydantic models in config.py.
docs: install
	$(PY) -m retrain_assets.config_doc --write README.md

clean:
	rm -rf .dagster_home demo/.retrain
