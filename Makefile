# Heara. Two commands do all the set-up on a fresh machine:
#   make demo   install, then run the main job end to end on embedded defaults
#   make test   install, then run the test suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
UV_VERSION := 0.13.8
# A local CPU build of torch, when the machine has one (pip/uv would otherwise fetch a CUDA build).
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

export HEARA_HOME ?= $(CURDIR)/.heara
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := True
export PYTHONUNBUFFERED := 1

STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint lock clean-state help
help:
	@echo "make demo    install and run the pipeline end to end on the sample data"
	@echo "make test    install and run the tests"
	@echo "make lint    ruff"
	@echo "make lock    re-resolve requirements.lock from pyproject.toml"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python $(FIND_LINKS) -r requirements.lock
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python --no-deps -e .
	touch $@

install: $(STAMP)

demo: install
	bash scripts/demo.sh

test: install
	$(VENV)/bin/python -m pytest -q --timeout=900 $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc; }

test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check training serving dags tests

# Re-pin every dependency. torch's local "+cpu" label is dropped so that a GPU host resolves the
# same version from PyPI (a CUDA build) while CPU machines take the local wheel.
lock:
	[ -x $(VENV)/bin/uv ] || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip install -q uv==$(UV_VERSION); }
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 $(FIND_LINKS) -o requirements.lock
	sed -i 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' requirements.lock

clean-state:
	rm -rf $(HEARA_HOME)
