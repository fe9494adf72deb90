"""Every filesystem location Heara reads or writes, in one place (environment variables: training/env.py).

`StatePaths` names every location under the state folder ($HEARA_HOME): each file and folder directly
under it and each component's folder (a component may name the files inside the folder it is given, as
MLflow or Airflow do in theirs). No other module joins a path onto the state folder itself
(tests/code/test_paths.py checks this), so moving a location is one edit here.

Nothing here touches the disk at import time: callers ask for a `StatePaths` and call
`ensure()` when they are about to write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from training import env

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PARAMS = PROJECT_ROOT / "params.yaml"
FULL_OVERLAY = PROJECT_ROOT / "params.full.yaml"  # the overlay for a real fine-tune of a pretrained encoder


def display_path(path: Path | str) -> str:
    """A path as reports and tables record it: relative to the repository when inside it, so that
    outputs (and the hashes DVC keeps of them) do not depend on where the checkout lives."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(p)


def heara_home() -> Path:
    """The single git-ignored folder that holds all local state (`HEARA_HOME`, default `.heara/`)."""
    return env.home(PROJECT_ROOT / ".heara")


def params_path() -> Path:
    """`HEARA_PARAMS` when set (a per-environment copy), else the repository's params.yaml."""
    return env.params_file(DEFAULT_PARAMS)


@dataclass(frozen=True)
class StatePaths:
    """Locations under the state folder. Data paths match the outs declared in dvc.yaml."""

    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def raw(self) -> Path:
        return self.data / "raw.parquet"

    @property
    def valid(self) -> Path:
        return self.data / "valid.parquet"

    @property
    def clean(self) -> Path:
        return self.data / "clean.parquet"

    @property
    def split_dir(self) -> Path:
        return self.data / "split"

    @property
    def prepared(self) -> Path:
        """Final train (augmented) / val / test parquet files, the input of training."""
        return self.data / "prepared"

    @property
    def quarantine(self) -> Path:
        return self.data / "quarantine"

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def incoming(self) -> Path:
        """Labelers drop new labeled batches here; each file is ingested once."""
        return env.incoming(self.home / "incoming")

    @property
    def batches(self) -> Path:
        return self.data / "batches"

    @property
    def ledger(self) -> Path:
        """Which incoming files were ingested (name, hash, rows, time)."""
        return self.home / "ledger.sqlite"

    @property
    def announced(self) -> Path:
        """Incoming files the watcher DAG has announced (each triggers one retrain run)."""
        return self.airflow / "announced.json"

    @property
    def reviews_announced(self) -> Path:
        """Until when reviewed labels were counted into the last heara://review/labels event."""
        return self.airflow / "reviews_announced.json"

    @property
    def models(self) -> Path:
        return self.home / "models"

    def task_dir(self, task: str) -> Path:
        """What the training-side steps hand each other for one task: candidate.json, registered.json,
        train/, eval/, promote/ (paths the DVC stages declare as outs)."""
        return self.models / task

    def monitoring(self, task: str) -> Path:
        """`heara monitor`'s files for one task: history.jsonl, report.json (read by the service's drift
        gauges on /metrics), report.html, drift.png."""
        return self.task_dir(task) / "monitoring"

    def training_runs(self, task: str) -> Path:
        """Working folders of training runs (checkpoints, the tiny base model), one per run key."""
        return self.home / "runs" / task

    def training_run(self, task: str, key: str) -> Path:
        return self.training_runs(task) / key

    @property
    def sweep_db(self) -> Path:
        """`heara sweep`'s Optuna studies when no storage is configured (SQLite: one worker process)."""
        return self.home / "sweeps.sqlite"

    @property
    def audit_ledger(self) -> Path:
        """Every promotion decision, forced promotion and rollback (JSON lines)."""
        return self.home / "audit" / "promotions.jsonl"

    @property
    def baseline_cache(self) -> Path:
        """The promotion gate's baseline macro-F1, one entry per (train, test, baseline settings) hash
        (training/evaluation/baseline_cache.py)."""
        return self.home / "baselines.json"

    def review(self, task: str) -> Path:
        """`heara review`'s files for one task: holdout.parquet, the production holdout (labeled rows of the
        review queue's random stratum) that the evaluate step and the gate score models on."""
        return self.task_dir(task) / "review"

    @property
    def predictions(self) -> Path:
        """Batch predictions (`heara predict`, the batch-predict DAG) without an explicit output."""
        return self.home / "predictions"

    @property
    def prediction_log(self) -> Path:
        """The service's prediction log when HEARA_PREDICTION_DB is not set (SQLite)."""
        return self.home / "predictions.sqlite"

    @property
    def prediction_journal(self) -> Path:
        """`serve.predlog_durability: durable`: the prediction log's journals, one folder per store and
        process (serving/journal.py)."""
        return self.home / "predlog-journal"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def mlflow(self) -> Path:
        return self.home / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        """The local tracking store when MLFLOW_TRACKING_URI is not set."""
        return self.mlflow / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow / "artifacts"

    @property
    def airflow(self) -> Path:
        return self.home / "airflow"

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME of `heara airflow ...` (metadata database, logs, generated password)."""
        return self.airflow / "home"

    def airflow_run(self, run_id: str) -> Path:
        """One DAG run's resolved params, record and FAILED.md (the run id made safe as a folder name)."""
        return self.airflow / "runs" / re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)

    @property
    def bentoml(self) -> Path:
        return self.home / "bentoml"

    @property
    def serving_instances(self) -> Path:
        """One private folder per running `heara serve` (serving.supervisor): its metrics files and the
        files its secrets were moved into."""
        return self.home / "serving" / "instances"

    @property
    def serving_models(self) -> Path:
        """Registry models downloaded for serving, one folder per version."""
        return self.home / "serving" / "models"

    @property
    def onnx_cache(self) -> Path:
        """int8 ONNX exports of model folders that cannot hold their own (read-only), one per stamp."""
        return self.home / "onnx"

    def serving_params(self, task: str) -> Path:
        """The resolved params `heara serve` hands the service (HEARA_PARAMS) for one task."""
        return self.home / "serving" / f"params.{task}.yaml"

    @property
    def bench(self) -> Path:
        """What `heara bench` builds once and reuses between runs (the base-size serving model)."""
        return self.home / "bench"

    def dataset(self, task: str) -> Path:
        """Where `heara run` prepares a task's data when no --out is given (a `--data-dir` folder)."""
        return self.home / "datasets" / task

    @property
    def gpu_checks(self) -> Path:
        """`make gpu-check` runs (scripts/gpu_check.py), one folder per run named by its UTC start time."""
        return self.home / "gpu-check"

    @property
    def dvc_cache(self) -> Path:
        return self.home / "dvc-cache"

    @property
    def dvc_remote(self) -> Path:
        return self.home / "dvc-remote"

    @property
    def dvc_site_cache(self) -> Path:
        return self.home / "dvc-site-cache"

    def ensure(self, *dirs: Path) -> None:
        for d in dirs or (self.home, self.data, self.incoming, self.logs):
            d.mkdir(parents=True, exist_ok=True)


def state() -> StatePaths:
    return StatePaths(heara_home())
