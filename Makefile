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

.PHONY: install browser demo test test-fast test-heavy lint format lock clean-state help airflow airflow-down \
	gpu-check gpu-check-dry
help:
	@echo "make demo    install and run the pipeline end to end on the sample data"
	@echo "make test    install and run the tests"
	@echo "make airflow Airflow UI on :8080 with the project's DAGs (make airflow-down stops it)"
	@echo "make lint    ruff check and ruff format --check (make format fixes)"
	@echo "make test-fast  the unit tier (tests/code) only"
	@echo "make lock    re-resolve requirements.lock from pyproject.toml"
	@echo "make gpu-check  on a CUDA machine: GPU tests and benchmarks in 8 minutes, figures as JSON (ARGS=--dry-run: on a CPU)"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	# With the local CPU build of torch, torch's CUDA libraries (several GB) are not needed.
	$(if $(FIND_LINKS),grep -Ev '^(nvidia-(c|nccl|nvjit|nvshmem|nvtx)|cuda-|triton==)' requirements.lock > $(VENV)/requirements.txt,cp requirements.lock $(VENV)/requirements.txt)
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python $(FIND_LINKS) -r $(VENV)/requirements.txt
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python --no-deps -e .
	touch $@

install: $(STAMP)

demo: install
	bash scripts/demo.sh

# The DVC pipeline in $(HEARA_HOME): DVC's vars file from HEARA_HOME first (README, DVC section).
.PHONY: repro
repro: install
	$(BIN)/python -m training.orchestration.dvc_state
	$(BIN)/dvc repro

# Airflow on this machine (standalone, SQLite, the project's DAGs); prints the UI's URL and password.
airflow: install
	$(BIN)/heara airflow up

airflow-down: install
	$(BIN)/heara airflow down

# Debian's Chromium for the browser test of the try-it page (tests/system/test_try_page.py): Playwright
# drives /usr/bin/chromium and never downloads a browser of its own. If it cannot be installed here,
# the rest of the suite still runs and that test fails saying why (HEARA_SKIP_BROWSER=1 skips it).
browser:
	@if [ -x /usr/bin/chromium ] || [ "$${HEARA_SKIP_BROWSER:-}" = 1 ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "warning: no apt-get: install Chromium as /usr/bin/chromium"; exit 0; fi; \
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-nanum \
	  || echo "warning: could not install Debian's chromium (the browser test will fail)"

# docker-compose (v1, Debian's package) validates docker-compose.yml in tests/system/test_compose.py;
# `config` needs no Docker engine. Without it that test fails saying why (HEARA_SKIP_COMPOSE=1 skips it).
.PHONY: compose-tool
compose-tool:
	@command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
	  || [ "$${HEARA_SKIP_COMPOSE:-}" = 1 ] || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
	  || { export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends docker-compose; } \
	  || echo "warning: could not install docker-compose (the compose test will fail)"

# wrk (Debian's package, 4.1) is the load tool of `heara bench serve` and its test
# (tests/system/test_bench_serve.py); without it the benchmark stops at once and names this target.
.PHONY: load-tool
load-tool:
	@command -v wrk >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -q --no-install-recommends wrk \
	    || { apt-get update -q && apt-get install -y -q --no-install-recommends wrk; }; } && exit 0; \
	fi; \
	echo "warning: wrk is not installed (as root: apt-get install wrk); heara bench serve and its test will fail"

# Every test but those marked heavy (the Airflow end-to-end run with a fault and a resume, ~7 min; the
# serving benchmark's three servers, ~4 min; the sweep DAG with two parallel workers, ~2 min; the GPU
# check's dry run, ~1.5 min), which `make test-heavy` runs; CI runs both.
# Two pytest-xdist workers. Work units (tests/conftest.py `pytest_xdist_make_scheduler`): every test on the shared live
# servers is one unit, so that one worker starts each serve.topology's pair of servers once; every other
# module is a unit (its fixtures built once). Units are queued longest first (tests/system, tests/model,
# then the unit tier), not by test count (--no-loadscope-reorder). Most system tests wait on servers,
# subprocesses and Airflow, so two workers share the 2 CPU cores well. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: install browser compose-tool load-tool
	$(VENV)/bin/python -m pytest -q --timeout=900 -m "not heavy and not evidence" \
	  $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder) $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc; }

test-heavy: install load-tool
	$(VENV)/bin/python -m pytest -q --timeout=1200 -m "heavy and not evidence" \
	  $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder) $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc; }

# The compose topology without containers: MLflow and Airflow (LocalExecutor) on the local PostgreSQL,
# a DAG run through Airflow's REST API, the service with its prediction log on PostgreSQL (docs/deploy.md).
.PHONY: stack-test
stack-test: install
	$(BIN)/python scripts/stack_test.py $(STACK_TEST_ARGS)

# The unit tier only (tests/code, nothing marked slow): seconds to a few minutes.
test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not slow" tests/code $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc; }

# ruff's rules (pyproject.toml: errors, pyflakes, imports, line length) and its formatter, as CI runs them.
lint: install
	$(VENV)/bin/ruff check training serving dags tests scripts
	$(VENV)/bin/ruff format --check training serving dags tests scripts

format: install
	$(VENV)/bin/ruff check --fix training serving dags tests scripts
	$(VENV)/bin/ruff format training serving dags tests scripts

# Re-pin every dependency. torch's local "+cpu" label is dropped so that a GPU host resolves the
# same version from PyPI (a CUDA build) while CPU machines take the local wheel.
lock:
	[ -x $(VENV)/bin/uv ] || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip install -q uv==$(UV_VERSION); }
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 $(FIND_LINKS) -o requirements.lock
	sed -i 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' requirements.lock

# The prepared GPU check (scripts/gpu_check.py; docs/benchmarks.md, "GPU check"): make install, nvidia-smi, torch's
# CUDA status, the gpu-marked tests, bench train and bench serve on the GPU in 8 minutes at most, every figure as
# JSON in $(HEARA_HOME)/gpu-check/<UTC time>/ (ARGS="--out DIR ..."). gpu-check-dry (or ARGS=--dry-run): the same
# steps with CPU-cheap commands, about a minute. Started by $(PYTHON), not the .venv: its first step is
# `make install`, and when that fails (a machine without a package registry) the check goes on and says so.
gpu-check:
	$(PYTHON) scripts/gpu_check.py $(ARGS)

gpu-check-dry:
	$(PYTHON) scripts/gpu_check.py --dry-run $(ARGS)

clean-state:
	rm -rf $(HEARA_HOME)
