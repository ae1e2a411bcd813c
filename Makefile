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

.PHONY: install chromium dev test test-policy test-fleet lint format docs clean

# What pip cannot install comes from Debian's packages: installed here when running as root with
# apt-get (CI, a fresh container); otherwise make stops at once with the command to run.
define apt_install
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $(1); \
	else \
	    echo "$(2); install it with:  sudo apt-get install -y $(1)" >&2; exit 1; \
	fi
endef

install: $(VENV)/.installed

# Re-installs when the project's dependencies change. uv resolves in seconds; --override forces
# the antlr runtime Dagster's selection parser needs (see overrides.txt).
$(VENV)/.installed: pyproject.toml overrides.txt
	@test -x $(PY) || $(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	    $(call apt_install,python$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_python_version())')-venv,$(PYTHON) cannot create a virtual environment (no ensurepip)); }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	$(PY) -m pip install --quiet --upgrade pip "uv>=0.5,<1"
	$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode --override overrides.txt -e '.[dev,prod]'
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# The UI test (tests/e2e/test_daemon.py) drives Debian's headless Chromium through Playwright.
chromium:
	@test -x /usr/bin/chromium || { \
	    $(call apt_install,chromium chromium-driver,make test needs Chromium at /usr/bin/chromium for the UI test); }

# `dg dev` (webserver + daemon) runs in $(DAGSTER_HOME), so the template above is not taken for a
# misplaced instance config.
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/retrain-assets dev

test: install chromium
	$(PY) -m pytest -n 2 --dist loadfile

# The default policy's decision-quality targets on 90-day simulations (tests/policy): each kind of
# drift replayed through the real definitions, minutes each. CI runs it after `make test`.
test-policy: install
	$(PY) -m pytest -n 2 -m policy tests/policy

# A fleet of three models (and a broken file) through the real `dg dev` daemon, its overview and
# its alerts (tests/e2e/test_fleet_daemon.py), and four models on the production profile
# (Postgres, celery on Redis, MLflow server: tests/prod/test_fleet_replay.py); minutes each.
# CI runs it after `make test`.
test-fleet: install chromium
	$(PY) -m pytest -m fleet tests/e2e/test_fleet_daemon.py tests/prod/test_fleet_replay.py

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
