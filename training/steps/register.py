"""Step `register`: log the candidate as a pyfunc model and register it as `heara-<task>` (alias
challenger)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from training.config import Params
from training.data.reports import write_json
from training.steps.workspace import DataFiles, read_candidate, registered_file

log = logging.getLogger("heara.pipeline")


def sent_texts(files: DataFiles, rows: pd.DataFrame) -> list[str] | None:
    """`rows`' texts as they were written (before preprocessing re-spaced them), from the ingested raw
    table beside the splits (`heara data prepare`'s .work folder, or the DVC pipeline's); None when it
    is not there or lacks a row."""
    from training.paths import state

    for raw in (files.val.parent / ".work" / "raw.parquet", state().raw):
        if raw.is_file():
            table = pd.read_parquet(raw, columns=["id", "text"]).drop_duplicates("id").set_index("id")["text"]
            found = rows["id"].map(table)
            if found.notna().all():
                return found.astype(str).tolist()
    return None


def write_reference(params: Params, model_dir: Path, files: DataFiles) -> None:
    """The monitoring reference (training/evaluation/monitoring.py) saved into the model folder, so it
    is logged, registered and served with the version. Multi-label models are not monitored yet."""
    from training.evaluation.monitoring import build_reference
    from training.model.predictor import Predictor

    predictor = Predictor.load(model_dir, device="cpu")
    if predictor.multilabel:
        log.info("register: no monitoring reference for a multi-label model (not supported yet)")
        return
    splits = files.load()
    val = splits["val"]
    train = splits["train"]
    train = train[train["aug_method"] == "original"] if "aug_method" in train else train
    ref = build_reference(
        predictor,
        train_texts=train["text"].astype(str).tolist(),
        val_texts=val["text"].astype(str).tolist(),
        val_labels=val["label"].astype(str).tolist(),
        val_sent_texts=sent_texts(files, val),
        cfg=params.monitor,
        seed=params.split.seed,
    )
    folder = ref.save(model_dir)
    log.info(
        "register: monitoring reference of %d validation rows (temperature %.2f) in %s",
        len(ref.probs),
        ref.temperature,
        folder,
    )


def register_step(params: Params, files: DataFiles | None = None) -> int:
    """Log the candidate as a pyfunc model and register it as `heara-<task>` (alias challenger); three
    texts of the test split (`files`, default the pipeline's) become the model's input example."""
    import mlflow
    from mlflow import MlflowClient

    from training.model.pyfunc import log_pyfunc
    from training.registry import tracking
    from training.registry.aliases import model_name, register

    cand = read_candidate(params.task)
    tracking.setup(params.task)
    client = MlflowClient()
    run = client.get_run(cand["run_id"])
    if "heara.model_uri" not in run.data.tags:
        try:  # monitoring is secondary: a reference that cannot be built must not stop the registration
            write_reference(params, Path(cand["model_dir"]), files or DataFiles.default())
        except Exception:
            log.warning(
                "register: no monitoring reference could be built (heara monitor will say so)", exc_info=True
            )
        test = (files or DataFiles.default()).test
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
    write_json(
        registered_file(params.task), {"run_id": cand["run_id"], "version": version, "model_uri": model_uri}
    )
    log.info("register: %s version %d (alias challenger)", name, version)
    return version
