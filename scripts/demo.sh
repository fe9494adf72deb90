#!/usr/bin/env bash
# `make demo`: the main job end to end on embedded defaults (SQLite, local files, a local DVC
# remote, CPU, the tiny model profile). Called by the Makefile, which sets PATH and HEARA_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HEARA_HOME:=$PWD/.heara}"
export HEARA_HOME

step() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

step "1/2 data pipeline: dvc repro (ingest -> validate -> preprocess -> split -> augment)"
mkdir -p "$HEARA_HOME/incoming"
dvc repro
dvc push -q

step "2/2 what the pipeline did"
heara data report
