"""Model registry operations (MLflow aliases, never the deprecated stages) and the audit ledger.

`champion` is what serving loads (`models:/heara-<task>@champion`); each new version gets
`challenger`. Moving an alias is one registry call, so the champion switches atomically.
The audit ledger records every change of champion: who, when, from which version to which.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from training.paths import state

CHAMPION, CHALLENGER = "champion", "challenger"


def model_name(task: str) -> str:
    return f"heara-{task}"


def actor() -> str:
    """Who is acting: HEARA_ACTOR (Airflow sets the DAG run's user), else the OS user."""
    return os.environ.get("HEARA_ACTOR") or getpass.getuser()


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


class AuditLedger:
    """Append-only JSON lines: one entry per promotion decision, forced promotion or rollback."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state().home / "audit" / "promotions.jsonl"

    def append(self, entry: dict) -> dict:
        entry = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "who": actor(), **entry}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def entries(self, model: str | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [r for r in rows if model is None or r.get("model") == model]

    def champion_history(self, model: str) -> list[int]:
        """Champion versions in the order they took the alias (promotions and rollbacks)."""
        return [e["to_version"] for e in self.entries(model) if e.get("champion_changed")]
