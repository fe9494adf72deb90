"""The retrain DAG run through Airflow (`airflow dags test` on SQLite) on the tiny profile.

One sequence, because each step needs the state the previous one left:
1. a run from the trigger form promotes the first champion: the MLflow run (tagged with the DAG run,
   holding the resolved params and the validation report), the registered version, the champion alias,
   and the service told to reload (a stand-in HTTP server records the POST /reload);
2. a fault: the training process is killed after its first epoch -> the run fails, FAILED.md names
   `train`, no new version is registered and the champion alias has not moved;
3. the next run with the same form succeeds, and its training resumes from the killed run's checkpoint;
4. `heara_rollback` moves the champion alias, `heara_batch_predict` scores a file with the champion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import psutil
import pytest
import yaml

pytestmark = pytest.mark.slow

# Fast settings for a 2-core CI box: few epochs, a small bootstrap, a generous latency budget, no baseline
# floor (a 2-epoch tiny model is below the TF-IDF baseline; the DAG's wiring is under test, not the model).
FAST = {
    "promote.min_f1": 0.0,
    "promote.require_beat_baseline": False,
    "promote.latency_budget_ms": 100000,
    "promote.bootstrap_samples": 200,
    "evaluate.latency_samples": 20,
    "augment.multipliers": {},
}


class ReloadRecorder(BaseHTTPRequestHandler):
    calls: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        ReloadRecorder.calls.append(self.path)
        body = json.dumps({"reloaded": True, "version": "stand-in"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory, repo_root):
    """HEARA_PARAMS without retries (a failure fails at once) and a stand-in service for POST /reload."""
    server = HTTPServer(("127.0.0.1", 0), ReloadRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    params = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    params["orchestrate"]["retries"] = 0
    path = tmp_path_factory.mktemp("airflow") / "params.yaml"
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    env = {
        **os.environ,
        "HEARA_PARAMS": str(path),
        "HEARA_SERVE_URL": f"http://127.0.0.1:{server.server_port}",
    }
    yield env
    server.shutdown()


def _trainers(pid: int) -> list[psutil.Process]:
    """The `heara train` subprocesses under `pid` (processes that end while being looked at are skipped)."""
    found = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if "training.cli" in cmd and "train" in cmd:
            found.append(p)
    return found


def dags_test(
    env: dict, conf: dict, *, kill_training_after_epoch: int | None = None, dag_id: str = "heara_retrain"
) -> subprocess.CompletedProcess:
    """`heara airflow test heara_retrain --conf ...`; optionally kill the training subprocess once its
    checkpoint of `kill_training_after_epoch` exists (a crash: OOM killer, preempted node)."""
    cmd = [sys.executable, "-m", "training.cli", "airflow", "test", dag_id, "--conf", json.dumps(conf)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    killed = False
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if kill_training_after_epoch and not killed:
            done = any(f"epoch {kill_training_after_epoch}/" in line for line in list(out))
            trainer = _trainers(proc.pid)
            if done and trainer:  # the epoch's checkpoint is saved before its log line
                for p in trainer:
                    p.send_signal(signal.SIGKILL)
                killed = True
        time.sleep(0.1 if kill_training_after_epoch and not killed else 0.5)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    reader.join(10)
    result = subprocess.CompletedProcess(cmd, proc.returncode, "".join(out), "")
    if kill_training_after_epoch:
        assert killed, "the training process was never seen:\n" + result.stdout[-3000:]
    return result


def champion(task: str = "danger") -> tuple[str | None, list[int]]:
    from mlflow import MlflowClient

    from training.registry import tracking
    from training.registry.aliases import CHAMPION, alias_version, model_name

    tracking.setup(task)
    client = MlflowClient()
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{model_name(task)}'"))
    return alias_version(client, model_name(task), CHAMPION), versions


# The longest test (about 7 minutes on 2 cores): `make test-heavy`, CI's second step, not `make test`.
@pytest.mark.heavy
def test_retrain_dag_end_to_end_with_fault_and_resume(airflow_env):
    from mlflow import MlflowClient

    from training.paths import state
    from training.registry import tracking
    from training.steps.workspace import read_candidate

    # 1. A run from the trigger form promotes the first champion.
    first = dags_test(airflow_env, {"epochs": 2, "learning_rate": 0.003, "overrides": FAST})
    assert first.returncode == 0, first.stdout[-4000:]
    cand = read_candidate("danger")
    tracking.setup("danger")
    run = MlflowClient().get_run(cand["run_id"])
    assert run.data.tags["heara.airflow.dag_id"] == "heara_retrain"
    assert run.data.tags["heara.airflow.run_id"].startswith("manual__")
    assert run.data.tags["heara.airflow.trigger"] == "manual"
    assert run.data.params["train.epochs"] == "2" and float(run.data.params["train.lr"]) == 0.003
    assert "test_macro_f1" in run.data.metrics
    artifacts = {a.path for a in MlflowClient().list_artifacts(cand["run_id"], "data")}
    assert "data/validate.json" in artifacts  # the validation report travels with the run
    assert champion() == (1, [1])
    assert ReloadRecorder.calls == ["/reload"]  # promoted -> serving told to reload
    run_dirs = list((state().airflow / "runs").iterdir())
    assert yaml.safe_load((run_dirs[0] / "params.yaml").read_text())["train"]["epochs"] == 2

    # 2. Training crashes after its first epoch: the run fails, the champion stays.
    # Enough epochs that the kill lands mid-training (a tiny-model epoch takes well under a second).
    form = {"epochs": 40, "learning_rate": 0.003, "overrides": {**FAST, "train.early_stopping_patience": 40}}
    crashed = dags_test(airflow_env, form, kill_training_after_epoch=1)
    assert crashed.returncode != 0
    failed = [d / "FAILED.md" for d in (state().airflow / "runs").iterdir() if (d / "FAILED.md").exists()]
    assert len(failed) == 1 and "failed in `train`" in failed[0].read_text()
    assert "champion is unchanged" in failed[0].read_text()
    assert champion() == (1, [1])  # nothing registered, alias not moved
    assert ReloadRecorder.calls == ["/reload"]

    # 3. The next run succeeds; its training continues from the crashed run's checkpoint.
    again = dags_test(airflow_env, form)
    assert again.returncode == 0, again.stdout[-4000:]
    trainer_lines = "\n".join(
        line[-160:] for line in (crashed.stdout + again.stdout).splitlines() if "train |" in line
    )
    assert "resuming from" in again.stdout, trainer_lines[-6000:]
    assert read_candidate("danger")["resumed_from_epoch"] >= 1
    current, versions = champion()
    assert versions == [1, 2] and current in (1, 2)  # the gate decided; either way the run succeeded
    decision = json.loads((state().home / "models" / "danger" / "promote" / "decision.json").read_text())
    assert decision["champion_after"] == current
    assert len(ReloadRecorder.calls) == (2 if current == 2 else 1)

    # 4. The other two DAGs on the same registry: a rollback, then a batch scoring with the champion.
    target = 1 if current == 2 else 2
    rolled = dags_test(airflow_env, {"version": target}, dag_id="heara_rollback")
    assert rolled.returncode == 0, rolled.stdout[-4000:]
    assert champion()[0] == target
    entry = json.loads((state().home / "audit" / "promotions.jsonl").read_text().splitlines()[-1])
    assert entry["action"] == "rollback" and entry["to_version"] == target
    texts = state().home / "to-score.csv"
    texts.write_text("text\n넘어져서 못 일어나겠어요\n오늘 날씨가 좋네요\n", encoding="utf-8")
    out = state().home / "scored.csv"
    scored = dags_test(airflow_env, {"input": str(texts), "output": str(out)}, dag_id="heara_batch_predict")
    assert scored.returncode == 0, scored.stdout[-4000:]
    import pandas as pd

    table = pd.read_csv(out)
    assert len(table) == 2 and {"pred_label", "pred_score", "danger", "model_version"} <= set(table.columns)
    assert set(table["model_version"].astype(str)) == {str(target)}


def test_validation_failure_stops_before_training(airflow_env, tmp_path):
    """Too few rows for a class: the run fails in `validate` (no retry), with the report in FAILED.md,
    and training never starts."""
    thin = tmp_path / "thin.csv"
    thin.write_text(
        "id,text,label\n"
        + "".join(f"t{i},안녕하세요 오늘 {i}번째 이야기,normal\n" for i in range(40))
        + "e1,도와주세요,emergency\n",
        encoding="utf-8",
    )
    env = {**airflow_env, "HEARA_HOME": str(tmp_path / "home")}
    result = dags_test(env, {"overrides": {"data.source": str(thin)}})
    assert result.returncode != 0
    assert "training.cli train" not in result.stdout
    summary = next((tmp_path / "home" / "airflow" / "runs").glob("*/FAILED.md")).read_text()
    assert "failed in `validate`" in summary and "too few rows" in summary
    assert '"per_class"' in summary  # the validation report itself is attached
