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
