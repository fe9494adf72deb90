"""Training-side steps as functions with small inputs and outputs (paths, ids, metrics):
train -> evaluate -> register -> promote, and rollback. The CLI, the DVC stages and the Airflow
tasks call these; each step logs to the same MLflow run and can be re-run after a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from training.config import Params
from training.data.labels import label_counts
from training.data.reports import write_json
from training.data.split import content_hash
from training.env import run_tags
from training.errors import ConfigError, DataError
from training.paths import PROJECT_ROOT, state
from training.steps.workspace import DataFiles, candidate_file, task_dir

if TYPE_CHECKING:
    from training.trainer.loop import EpochCallback, TrainResult

log = logging.getLogger("heara.pipeline")


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

    files = files or DataFiles.default()
    splits = files.load()
    labels = list(params.labels) or sorted(
        label_counts(splits["train"]["label"], params.task_type == "multilabel")
    )
    check_inputs(params, splits, labels, files)
    key = run_key(params, splits)
    if not is_main_process():
        # Under torchrun every rank trains; only rank 0 talks to MLflow and writes files.
        fit_transformer(params, splits, labels, state().training_run(params.task, key))
        return {}
    exp_id = tracking.setup(params.task)
    work = state().training_run(params.task, key)
    attempt = work / "attempt.json"
    if (work / "DONE").exists():
        shutil.rmtree(work)
    resume_run = json.loads(attempt.read_text())["run_id"] if attempt.exists() else None

    with mlflow.start_run(
        experiment_id=exp_id,
        run_id=resume_run,
        run_name=None if resume_run else f"train-{datetime.now():%Y%m%d-%H%M%S}",
    ) as run:
        write_json(attempt, {"run_id": run.info.run_id, "key": key})
        if not resume_run:
            _log_run_inputs(params, splits, labels)
        mlflow.set_tags(run_tags())  # e.g. the Airflow DAG run and the files that triggered it
        model_dir, result = fit_model(
            params,
            splits,
            labels,
            work,
            on_epoch=lambda epoch, m: mlflow.log_metrics(m, step=epoch),
        )
        curves = plots.training_curves_png(result.history, work / "training_curves.png")
        mlflow.log_artifact(str(curves), "plots")
        summary = {
            "best_val_macro_f1": result.best_val_macro_f1,
            "epochs_run": result.epochs_run,
            "steps": result.steps,
            "train_samples_per_s": result.samples_per_s,
            "resumed_from_epoch": result.resumed_from_epoch,
        }
        mlflow.log_metrics(summary)
        if "thresholds" in result.extra:  # multi-label: each label's tuned cut and its validation F1
            mlflow.log_dict(result.extra["thresholds"], "thresholds.json")
        mlflow.set_tags(
            {
                "heara.device": result.device,
                "heara.precision": result.precision,
                "heara.stopped_early": str(result.stopped_early),
            }
        )
        (work / "DONE").write_text(run.info.run_id)
    candidate = {
        "task": params.task,
        "run_id": run.info.run_id,
        "model_dir": str(model_dir),
        "labels": labels,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **summary,
        "history": result.history,
    }
    write_json(candidate_file(params.task), candidate)
    write_json(task_dir(params.task) / "train" / "history.json", {"history": result.history})
    log.info("train: run %s, best val macro-F1 %.4f", run.info.run_id, result.best_val_macro_f1)
    return candidate


def fit_model(
    params: Params,
    splits: dict[str, pd.DataFrame],
    labels: list[str],
    work: Path,
    *,
    on_epoch: EpochCallback | None = None,
    resume: bool = True,
    base_dir: Path | None = None,
) -> tuple[Path, TrainResult]:
    """Train the family `params.model.family` on the train split, select on val, save the model folder
    as `work/model`: (model folder, TrainResult). No MLflow calls and no test split: the train step, the
    sweep's trials and the comparison's runs all fit through here. `on_epoch(epoch, record)` may raise
    (a pruned sweep trial) to stop the fit. `base_dir` (default `work/base`): where the tiny profile's base
    model is built, once per train split and vocabulary size; runs on one split may share it."""
    from training.model.predictor import save_model_dir

    multilabel = params.task_type == "multilabel"
    if params.model.family == "linear":
        from training.model.linear import save_linear_dir
        from training.trainer.linear import train_linear

        pipe, result = train_linear(
            splits["train"],
            splits["val"],
            labels,
            params.linear,
            seed=params.train.seed,
            on_epoch=on_epoch,
            multilabel=multilabel,
        )
        model_dir = save_linear_dir(
            pipe,
            work / "model",
            task=params.task,
            labels=labels,
            preprocess=params.preprocess,
            cfg=params.linear,
            max_length=params.model.max_length,
            task_type=params.task_type,
        )
        if multilabel:
            result.extra["thresholds"] = store_thresholds(model_dir, splits["val"], labels)
        return model_dir, result

    model, tokenizer, base_model, result = fit_transformer(
        params, splits, labels, work, on_epoch=on_epoch, resume=resume, base_dir=base_dir
    )
    model_dir = save_model_dir(
        model,
        tokenizer,
        work / "model",
        task=params.task,
        family=params.model.family,
        labels=labels,
        max_length=params.model.max_length,
        preprocess=params.preprocess,
        base_model=base_model,
        task_type=params.task_type,
    )
    if multilabel:
        result.extra["thresholds"] = store_thresholds(model_dir, splits["val"], labels, params.train.device)
    return model_dir, result


def store_thresholds(model_dir: Path, val: pd.DataFrame, labels: list[str], device: str = "cpu") -> dict:
    """A multi-label model's per-label decision thresholds, tuned on the validation split (each label's
    F1 at its best cut) and written into the folder's heara.json, which every consumer of the folder
    (evaluation, the gate, the service) reads. Returns {label: {"threshold", "val_f1"}}."""
    from training.data.labels import indicator, tune_thresholds
    from training.model.base import META_FILE, read_meta
    from training.model.predictor import Predictor

    predictor = Predictor.load(model_dir, device=device)
    probs = predictor.predict_proba(val["text"].tolist(), preprocessed=True)
    thresholds, f1s = tune_thresholds(probs, indicator(val["label"], labels))
    meta = read_meta(model_dir)
    meta["thresholds"] = thresholds
    (model_dir / META_FILE).write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    tuned = {lab: {"threshold": t, "val_f1": round(f, 4)} for lab, t, f in zip(labels, thresholds, f1s)}
    log.info("thresholds tuned on the validation split: %s", {k: v["threshold"] for k, v in tuned.items()})
    return tuned


def fit_transformer(
    params: Params,
    splits: dict[str, pd.DataFrame],
    labels: list[str],
    work: Path,
    *,
    on_epoch: EpochCallback | None = None,
    resume: bool = True,
    base_dir: Path | None = None,
):
    """Build and train a transformer family (every torchrun rank calls this): (model, tokenizer,
    base_model, TrainResult); `fit_model` saves the folder on rank 0."""
    from training.model.build import build_model
    from training.trainer.loop import train

    multilabel = params.task_type == "multilabel"
    model, tokenizer, base_model = build_model(
        params.model,
        labels,
        splits["train"]["text"].tolist(),
        base_dir or work / "base",
        seed=params.train.seed,
        multilabel=multilabel,
    )
    result = train(
        model,
        tokenizer,
        splits["train"],
        splits["val"],
        labels,
        params.model,
        params.train,
        work,
        on_epoch=on_epoch,
        resume=resume,
        multilabel=multilabel,
    )
    return model, tokenizer, base_model, result


def base_model_tag(params: Params) -> str:
    """What a run records as the model's origin (the `heara.base_model` tag)."""
    if params.model.family == "linear":
        from training.model.linear import LINEAR_BASE_MODEL, describe

        return f"{LINEAR_BASE_MODEL}:{describe(params.linear)}"
    return params.model.name if params.model.profile == "full" else f"tiny:{params.model.family}"


def check_inputs(
    params: Params, splits: dict[str, pd.DataFrame], labels: list[str], files: DataFiles
) -> None:
    """The mistakes that would otherwise surface deep in the trainer as a traceback: data whose labels
    the label set lacks (another task's params), an empty split, a device this machine does not have."""
    from training.data.validate import require_known_labels

    for name in ("train", "val", "test"):
        require_known_labels(
            splits[name],
            labels,
            file=str(getattr(files, name)),
            hint="train with --data-dir of the folder `heara data prepare` wrote (its dataset.json "
            "names its task and labels) or --set labels=[...]",
            multilabel=params.task_type == "multilabel",
        )
        if splits[name].empty:
            raise DataError(
                f"the {name} split is empty: prepare the data again", file=str(getattr(files, name))
            )
    if len(labels) < 2:
        raise ConfigError(f"a classifier needs at least two labels, got {labels}")
    if params.train.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("train.device is 'cuda' but no CUDA device is available (use auto or cpu)")


def _log_run_inputs(params: Params, splits: dict[str, pd.DataFrame], labels: list[str]) -> None:
    """Parameters, tags (commit, data hashes, base model), datasets and data artifacts of a run."""
    import mlflow

    from training.evaluation import plots
    from training.registry import tracking

    tracking.log_params(params.to_dict())
    tags = {
        "heara.task": params.task,
        "heara.git_commit": tracking.git_commit() or "unknown",
        "heara.base_model": base_model_tag(params),
        "heara.model_family": params.model.family,
    }
    for name, df in splits.items():
        tags[f"heara.data.{name}.sha256"] = content_hash(df)
        tags[f"heara.data.{name}.rows"] = str(len(df))
        # Only ids, labels and hashes: the dataset record never carries raw utterances.
        ds = mlflow.data.from_pandas(
            df[["id", "label", "text_hash"]] if "text_hash" in df else df[["id", "label"]],
            name=f"{params.task}-{name}",
            targets="label",
        )
        mlflow.log_input(ds, context={"train": "training", "val": "validation", "test": "testing"}[name])
    mlflow.set_tags(tags)
    counts = {
        name: dict(label_counts(df["label"], params.task_type == "multilabel")) for name, df in splits.items()
    }
    work = state().training_runs(params.task)
    mlflow.log_artifact(str(plots.label_distribution_png(counts, work / "label_distribution.png")), "plots")
    for report in (
        state().reports / "validate.json",
        state().reports / "report.json",
        PROJECT_ROOT / "dvc.lock",
    ):
        if report.exists():
            mlflow.log_artifact(str(report), "data")
