#!/usr/bin/env bash
# `make demo`: the main job end to end on embedded defaults (SQLite, local files, a local DVC
# remote, CPU, the tiny model profile). Called by the Makefile, which sets PATH and HEARA_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HEARA_HOME:=$PWD/.heara}"
export HEARA_HOME

step() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }

step "1/4 the retrain DAG through Airflow (airflow dags test on SQLite): ingest -> validate -> preprocess -> split -> augment -> train -> evaluate -> register -> promote"
mkdir -p "$HEARA_HOME/incoming" "$HEARA_HOME/logs"
# The same DAG the Airflow UI triggers (`make airflow`), run once in this process without a scheduler.
# Twice: the configured family (the tiny KoBERT-format model), then the linear family (TF-IDF + logistic
# regression) on the same frozen split. The gate decides: a model below the linear baseline is never
# champion (promote.require_beat_baseline), and the second model must beat the first to replace it.
dag_run() {
  local label="$1" conf="$2" log="$HEARA_HOME/logs/demo-airflow-$1.log" rc
  set +e
  heara airflow test heara_retrain ${conf:+--conf "$conf"} 2>&1 | tee "$log" \
    | grep -E --line-buffered "\[heara\.|DagRun Finished" | sed -u -E 's/ +\[heara\.[a-z]+\] loc=[^ ]+//; s/^[0-9T:.-]+Z //'
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || { echo "the DAG run ($label) failed (exit $rc); see $log"; exit 1; }
  python - "$label" <<'PY'
import json, os, sys
from pathlib import Path
home = Path(os.environ["HEARA_HOME"])
d = json.loads((home / "models/danger/promote/decision.json").read_text())
print(f"gate, {sys.argv[1]} model: " + ("PROMOTED" if d["promote"] else "REFUSED") + f" version {d['challenger']}: {d['reason']}")
PY
}
dag_run kobert-tiny ""
step "1b/4 the same DAG with the linear family: the gate keeps whichever model it prefers"
dag_run linear '{"model_family": "linear"}'

step "2/4 what the data steps did"
heara data report

step "3/4 the model registry"
heara audit
python - <<'PY'
import json, os
from pathlib import Path
home = Path(os.environ["HEARA_HOME"])
decision = json.loads((home / "models/danger/promote/decision.json").read_text())
metrics = json.loads((home / "models/danger/eval/metrics.json").read_text())
print(f"last model: test macro-F1 {metrics['test_macro_f1']:.4f}, accuracy {metrics['test_accuracy']:.4f}, "
      f"space invariance {metrics['space_invariance_rate']:.3f}")
print(f"champion of {decision['model']}: version {decision['champion_after']} "
      f"(linear baseline on the same split: {decision['metrics'].get('baseline_macro_f1', float('nan')):.4f})")
PY

step "4/4 serve the champion (BentoML) and call it over HTTP"
PORT="${HEARA_DEMO_PORT:-3000}"
LOG="$HEARA_HOME/logs/demo-serve.log"
mkdir -p "$(dirname "$LOG")"
# Its own process group, so that stopping it stops BentoML's worker processes too.
setsid heara serve --port "$PORT" > "$LOG" 2>&1 &
SERVER=$!
stop_server() { kill -TERM -- "-$SERVER" 2>/dev/null || true; for _ in $(seq 20); do kill -0 "$SERVER" 2>/dev/null || return 0; sleep 0.5; done; kill -KILL -- "-$SERVER" 2>/dev/null || true; }
trap stop_server EXIT
python - "$PORT" <<'PY'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(240):
    try:
        if urllib.request.urlopen(base + "/readyz", timeout=2).status == 200:
            break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the service did not become ready; see " + "$HEARA_HOME/logs/demo-serve.log")
texts = ["아이고 화장실에서 넘어졌는데 못 일어나겠어 도와줘", "오늘 점심은 뭐 먹을까 국수 먹고 싶네",
         "여기가 어디야 우리 집에 가야 되는데 길을 모르겠어", "요즘은 그냥 다 귀찮고 살기 싫어"]
req = urllib.request.Request(base + "/classify", data=json.dumps({"texts": texts}).encode(),
                             headers={"Content-Type": "application/json"})
body = json.loads(urllib.request.urlopen(req, timeout=30).read())
print("POST /classify ->")
for text, p in zip(texts, body["predictions"]):
    print(f"  {p['label']:<10} {p['score']:.2f} danger={str(p['danger']):<5} v{p['model_version']}  {text}")
req = urllib.request.Request(base + "/explain", data=json.dumps({"text": texts[0]}).encode(),
                             headers={"Content-Type": "application/json"})
ex = json.loads(urllib.request.urlopen(req, timeout=60).read())
words = ", ".join(f"{a['text']} {a['score']:+.3f}" for a in sorted(ex["attributions"], key=lambda a: -a["score"]))
print(f"POST /explain -> why {ex['explained_label']} ({ex['method']}): {words}")
info = json.loads(urllib.request.urlopen(base + "/model").read())
print(f"GET /model -> {info['name']} version {info['version']} on {info['device']}, runtime {info['runtime']}, "
      f"topology {info['topology']}; test macro-F1 {info['metrics'].get('test_macro_f1', float('nan')):.4f}"
      + (f", int8 {info['metrics']['test_macro_f1_int8']:.4f}" if "test_macro_f1_int8" in info["metrics"] else ""))
PY
stop_server
trap - EXIT
echo
echo "Browse runs, plots and the registry (champion alias):  .venv/bin/heara mlflow-ui   -> http://127.0.0.1:5000"
echo "Serve the champion yourself:                          .venv/bin/heara serve        -> http://127.0.0.1:3000/try (try-it page, words highlighted)"
echo "Airflow UI with the retrain DAG:                      make airflow                 -> http://127.0.0.1:8080"
