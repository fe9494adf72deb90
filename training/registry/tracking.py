"""MLflow set-up and logging helpers. Nothing is contacted at import time.

Tracking URI: `MLFLOW_TRACKING_URI` when set (a server, Postgres), else a SQLite database in the
state folder with artifacts beside it. One experiment per task, named `heara-<task>`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from training.paths import PROJECT_ROOT, state


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{state().mlflow_db}"


def experiment_name(task: str) -> str:
    return f"heara-{task}"


def setup(task: str) -> str:
    """Point MLflow at the tracking store and return the task's experiment id (created if needed)."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    name = experiment_name(task)
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    # Without a server, a SQLite store would put artifacts in ./mlruns of whatever the cwd is.
    location = None if uri.startswith(("http://", "https://")) else state().mlflow_artifacts.as_uri()
    return mlflow.create_experiment(name, artifact_location=location, tags={"heara.task": task})


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}; lists become their string form (MLflow params)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v) if isinstance(v, (list, tuple, dict)) else v
    return out
