"""Model registry operations: MLflow aliases, never the deprecated stages.

`champion` is what serving loads (`models:/heara-<task>@champion`); each new version gets
`challenger`. Moving an alias is one registry call, so the champion switches atomically.
Every change of champion is recorded in the audit ledger (registry/audit.py).
"""

from __future__ import annotations

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
