#!/usr/bin/env bash
# `make demo`: the main job end to end on embedded defaults (SQLite, local files, a local DVC
# remote, CPU, the tiny model profile). Called by the Makefile, which sets PATH and HEARA_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HEARA_HOME:=$PWD/.heara}"
export HEARA_HOME

step() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

step "1/3 pipeline: dvc repro (ingest -> validate -> preprocess -> split -> augment -> train -> evaluate -> promote)"
mkdir -p "$HEARA_HOME/incoming"
dvc repro
dvc push -q

step "2/3 what the data steps did"
heara data report

step "3/3 the model registry"
heara audit
python - <<'PY'
import json, os
from pathlib import Path
home = Path(os.environ["HEARA_HOME"])
decision = json.loads((home / "models/danger/promote/decision.json").read_text())
metrics = json.loads((home / "models/danger/eval/metrics.json").read_text())
print(f"test macro-F1 {metrics['test_macro_f1']:.4f}, accuracy {metrics['test_accuracy']:.4f}, "
      f"space invariance {metrics['space_invariance_rate']:.3f}")
print(("PROMOTED" if decision["promote"] else "REFUSED") + ": " + decision["reason"])
print(f"champion of {decision['model']}: version {decision['champion_after']}")
PY
echo
echo "Browse runs, plots and the registry (champion alias):  .venv/bin/heara mlflow-ui   -> http://127.0.0.1:5000"
