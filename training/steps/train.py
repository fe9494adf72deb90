"""Training-side steps as functions with small inputs and outputs (paths, ids, metrics):
train -> evaluate -> register -> promote, and rollback. The CLI, the DVC stages and the Airflow
tasks call these; each step logs to the same MLflow run and can be re-run after a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from training.config import Params
from training.paths import PROJECT_ROOT, run_tags, state
from training.data.split import content_hash

log = logging.getLogger("heara.pipeline")


@dataclass(frozen=True)
class DataFiles:
    train: Path
    val: Path
    test: Path

    @classmethod
    def default(cls) -> "DataFiles":
        st = state()
        return cls(st.prepared / "train.parquet", st.split_dir / "val.parquet", st.split_dir / "test.parquet")

    @classmethod
    def from_dir(cls, folder: Path) -> "DataFiles":
        """A `heara data prepare --out` folder."""
        return cls(folder / "train.parquet", folder / "val.parquet", folder / "test.parquet")

    def load(self) -> dict[str, pd.DataFrame]:
        for name, path in (("train", self.train), ("val", self.val), ("test", self.test)):
            if not path.exists():
                raise FileNotFoundError(f"{name} split not found at {path}: run the data pipeline first "
                                        "(`dvc repro` or `heara data prepare`)")
        return {"train": pd.read_parquet(self.train), "val": pd.read_parquet(self.val),
                "test": pd.read_parquet(self.test)}


def task_dir(task: str) -> Path:
    return state().home / "models" / task


def candidate_file(task: str) -> Path:
    return task_dir(task) / "candidate.json"


def registered_file(task: str) -> Path:
    return task_dir(task) / "registered.json"


def registered_version(task: str) -> int | None:
    """The registry version of the current candidate, if `heara register` has run for it."""
    path, cand = registered_file(task), read_candidate(task)
    if not path.exists():
        return None
    reg = json.loads(path.read_text(encoding="utf-8"))
    return int(reg["version"]) if reg.get("run_id") == cand["run_id"] else None


def read_candidate(task: str) -> dict:
    path = candidate_file(task)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `heara train` first")
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def run_key(params: Params, splits: dict[str, pd.DataFrame]) -> str:
    """Identity of a training attempt: resolved config + data. A crashed attempt with the same key
    resumes from its checkpoint; a finished one is not resumed (a new run starts)."""
    h = hashlib.sha256(json.dumps(params.to_dict(), sort_keys=True).encode())
    for name in ("train", "val"):
        h.update(content_hash(splits[name]).encode())
    return h.hexdigest()[:12]


def train_step(params: Params, files: DataFiles | None = None) -> dict:
    """Train a model, log it to MLflow, save the model folder and record it as the candidate."""
    import mlflow

    from training.evaluation import plots

    from training.registry import tracking
    from training.trainer.distributed import is_main_process
    from training.model.build import build_model
    from training.model.predictor import save_model_dir
    from training.trainer.loop import train

    splits = (files or DataFiles.default()).load()
    labels = list(params.labels) or sorted(splits["train"]["label"].unique())
    key = run_key(params, splits)
    if not is_main_process():
        # Under torchrun every rank trains; only rank 0 talks to MLflow and writes files.
        model, tokenizer, _ = build_model(params.model, labels, splits["train"]["text"].tolist(),
                                          state().home / "runs" / params.task / key / "base", seed=params.train.seed)
        train(model, tokenizer, splits["train"], splits["val"], labels, params.model, params.train,
              state().home / "runs" / params.task / key, resume=True)
        return {}
    exp_id = tracking.setup(params.task)
    work = state().home / "runs" / params.task / key
    attempt = work / "attempt.json"
    if (work / "DONE").exists():
        shutil.rmtree(work)
    resume_run = json.loads(attempt.read_text())["run_id"] if attempt.exists() else None

    with mlflow.start_run(experiment_id=exp_id, run_id=resume_run,
                          run_name=None if resume_run else f"train-{datetime.now():%Y%m%d-%H%M%S}") as run:
        _write_json(attempt, {"run_id": run.info.run_id, "key": key})
        if not resume_run:
            _log_run_inputs(params, splits, labels)
        mlflow.set_tags(run_tags())  # e.g. the Airflow DAG run and the files that triggered it
        model, tokenizer, base_model = build_model(params.model, labels, splits["train"]["text"].tolist(),
                                                   work / "base", seed=params.train.seed)
        result = train(model, tokenizer, splits["train"], splits["val"], labels, params.model, params.train,
                       work, on_epoch=lambda epoch, m: mlflow.log_metrics(m, step=epoch), resume=True)
        model_dir = save_model_dir(model, tokenizer, work / "model", task=params.task, family=params.model.family,
                                   labels=labels, max_length=params.model.max_length,
                                   preprocess=params.preprocess, base_model=base_model)
        curves = plots.training_curves_png(result.history, work / "training_curves.png")
        mlflow.log_artifact(str(curves), "plots")
        summary = {"best_val_macro_f1": result.best_val_macro_f1, "epochs_run": result.epochs_run,
                   "steps": result.steps, "train_samples_per_s": result.samples_per_s,
                   "resumed_from_epoch": result.resumed_from_epoch}
        mlflow.log_metrics(summary)
        mlflow.set_tags({"heara.device": result.device, "heara.precision": result.precision,
                         "heara.stopped_early": str(result.stopped_early)})
        (work / "DONE").write_text(run.info.run_id)
    candidate = {"task": params.task, "run_id": run.info.run_id, "model_dir": str(model_dir), "labels": labels,
                 "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **summary,
                 "history": result.history}
    _write_json(candidate_file(params.task), candidate)
    _write_json(task_dir(params.task) / "train" / "history.json", {"history": result.history})
    log.info("train: run %s, best val macro-F1 %.4f", run.info.run_id, result.best_val_macro_f1)
    return candidate


def _log_run_inputs(params: Params, splits: dict[str, pd.DataFrame], labels: list[str]) -> None:
    """Parameters, tags (commit, data hashes, base model), datasets and data artifacts of a run."""
    import mlflow

    from training.evaluation import plots

    from training.registry import tracking

    flat = tracking.flatten(params.to_dict())
    for start in range(0, len(flat), 90):  # MLflow caps one batch at 100 params
        mlflow.log_params(dict(list(flat.items())[start:start + 90]))
    tags = {"heara.task": params.task, "heara.git_commit": tracking.git_commit() or "unknown",
            "heara.base_model": params.model.name if params.model.profile == "full" else f"tiny:{params.model.family}",
            "heara.model_family": params.model.family}
    for name, df in splits.items():
        tags[f"heara.data.{name}.sha256"] = content_hash(df)
        tags[f"heara.data.{name}.rows"] = str(len(df))
        # Only ids, labels and hashes: the dataset record never carries raw utterances.
        ds = mlflow.data.from_pandas(df[["id", "label", "text_hash"]] if "text_hash" in df else df[["id", "label"]],
                                     name=f"{params.task}-{name}", targets="label")
        mlflow.log_input(ds, context={"train": "training", "val": "validation", "test": "testing"}[name])
    mlflow.set_tags(tags)
    counts = {name: df["label"].value_counts().to_dict() for name, df in splits.items()}
    work = state().home / "runs" / params.task
    mlflow.log_artifact(str(plots.label_distribution_png(counts, work / "label_distribution.png")), "plots")
    for report in (state().reports / "validate.json", state().reports / "report.json", PROJECT_ROOT / "dvc.lock"):
        if report.exists():
            mlflow.log_artifact(str(report), "data")


def evaluate_step(params: Params, files: DataFiles | None = None, out_dir: Path | None = None) -> dict:
    """Score the candidate on the frozen test split; log metrics and plots to its MLflow run."""
    import mlflow

    from training.registry import tracking
    from training.evaluation.metrics import evaluate, flat_metrics, write_artifacts
    from training.model.predictor import Predictor

    cand = read_candidate(params.task)
    test = (files or DataFiles.default()).load()["test"]
    predictor = Predictor.load(cand["model_dir"])
    result = evaluate(predictor.predict_proba, test, predictor.labels, params.evaluate)
    out = out_dir or task_dir(params.task) / "eval"
    artifacts = write_artifacts(result, out, texts=test["text"].tolist())
    metrics = flat_metrics(result)
    tracking.setup(params.task)
    with mlflow.start_run(run_id=cand["run_id"]):
        mlflow.log_metrics(metrics)
        for path in artifacts:
            mlflow.log_artifact(str(path), "evaluation")
    _write_json(out / "metrics.json", metrics)
    log.info("evaluate: test macro-F1 %.4f", metrics.get("test_macro_f1", float("nan")))
    return metrics


def register_step(params: Params) -> int:
    """Log the candidate as a pyfunc model and register it as `heara-<task>` (alias challenger)."""
    import mlflow
    from mlflow import MlflowClient

    from training.registry import tracking
    from training.model.pyfunc import log_pyfunc
    from training.registry.aliases import model_name, register

    cand = read_candidate(params.task)
    tracking.setup(params.task)
    client = MlflowClient()
    run = client.get_run(cand["run_id"])
    if "heara.model_uri" not in run.data.tags:
        test = DataFiles.default().test
        examples = pd.read_parquet(test)["text"].head(3).tolist() if test.exists() else ["안녕하세요"]
        with mlflow.start_run(run_id=cand["run_id"]):
            info = log_pyfunc(Path(cand["model_dir"]), cand["labels"], examples)
            mlflow.set_tag("heara.model_uri", info.model_uri)
        model_uri = info.model_uri
    else:
        model_uri = run.data.tags["heara.model_uri"]
    name = model_name(params.task)
    version = register(client, name, cand["run_id"], model_uri)
    metrics = client.get_run(cand["run_id"]).data.metrics
    for key in ("test_macro_f1", "test_accuracy", "best_val_macro_f1"):
        if key in metrics:
            client.set_model_version_tag(name, str(version), f"heara.{key}", f"{metrics[key]:.4f}")
    for key, value in run.data.tags.items():
        if key.startswith("heara.data.") or key in ("heara.git_commit", "heara.base_model"):
            client.set_model_version_tag(name, str(version), key, value)
    # Its own file: candidate.json is the train stage's output and must not change after training.
    _write_json(registered_file(params.task), {"run_id": cand["run_id"], "version": version, "model_uri": model_uri})
    log.info("register: %s version %d (alias challenger)", name, version)
    return version
