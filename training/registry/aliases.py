"""Model registry operations: MLflow aliases, never the deprecated stages.

`champion` is what serving loads (`models:/heara-<task>@champion`); each new version gets
`challenger`. Moving an alias is one registry call, so the champion switches atomically.
Every change of champion is recorded in the audit ledger (registry/audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CHAMPION, CHALLENGER = "champion", "challenger"


def model_name(task: str) -> str:
    return f"heara-{task}"


def alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def register(client: MlflowClient, name: str, run_id: str, model_uri: str) -> int:
    """Register the run's model (once: a re-run returns the existing version) and mark it challenger."""
    import mlflow

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Heara classifier; serving loads @champion.")
    existing = [v for v in client.search_model_versions(f"name = '{name}'") if v.run_id == run_id]
    version = int(existing[0].version) if existing else int(mlflow.register_model(model_uri, name).version)
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    return version


def register_folder(
    model_dir: Path,
    tracking_uri: str,
    artifacts: Path,
    *,
    metrics: Mapping[str, float] | None = None,
    champion: bool = True,
) -> tuple[int, str]:
    """(version, run id): a Heara model folder logged as the pyfunc model of a new run in its task's
    experiment of the store at `tracking_uri`, registered as the next version of `heara-<task>`
    (task and labels from the folder's heara.json) and, with `champion`, given the champion alias once
    the folder passes the smoke test (registry/servable.py; NotServableError otherwise). The folder
    itself is tested, not a download of it: the serving cache of this process's $HEARA_HOME is no
    place for a throw-away store's versions.

    For throw-away stores (tests, `heara bench serve`): nothing is written to the audit ledger and the
    process's own MLflow URIs are left as they were. A trained model takes the pipeline's way
    (steps/register.py, then the promotion gate), which also tags the version with its data.
    """
    import mlflow

    from training.model.predictor import META_FILE
    from training.model.pyfunc import log_pyfunc
    from training.registry.servable import smoke_test
    from training.registry.tracking import experiment_name, using_store

    meta = json.loads((Path(model_dir) / META_FILE).read_text(encoding="utf-8"))
    task, name = meta["task"], model_name(meta["task"])
    with using_store(tracking_uri):
        exp = mlflow.get_experiment_by_name(experiment_name(task))
        exp_id = (
            exp.experiment_id
            if exp is not None
            else mlflow.create_experiment(
                experiment_name(task), artifact_location=Path(artifacts).as_uri(), tags={"heara.task": task}
            )
        )
        with mlflow.start_run(experiment_id=exp_id) as run:
            if metrics:
                mlflow.log_metrics(dict(metrics))
            info = log_pyfunc(Path(model_dir), meta["labels"], ["안녕하세요"])
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        version = register(client, name, run.info.run_id, info.model_uri)
        if champion:
            smoke_test(Path(model_dir), name, version)
            client.set_registered_model_alias(name, CHAMPION, str(version))
    return version, run.info.run_id
