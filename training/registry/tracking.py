"""MLflow set-up and logging helpers. Nothing is contacted at import time.

Tracking URI: `MLFLOW_TRACKING_URI` when set (a server, Postgres), else a SQLite database in the
state folder with artifacts beside it. One experiment per task, named `heara-<task>`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def using_store(uri: str) -> Iterator[None]:
    """MLflow's tracking and registry URIs set to `uri` for the block, then put back as they were
    (the variables child processes inherit included): for work on a second store, such as a
    throw-away registry, inside a process that has its own. Both URIs, because serving the champion
    sets the registry URI of the process (registry/champion.py) and registering follows it."""
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        # Unset, MLflow falls back to its default for the tracking URI and to the tracking URI for
        # the registry's ("" rather than None: set_registry_uri keeps a None from the environment).
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"] or "")
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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


def log_params(params: dict[str, Any]) -> None:
    """A resolved configuration (`Params.to_dict()`) as flat MLflow params of the active run."""
    import mlflow

    items = list(flatten(params).items())
    for start in range(0, len(items), 90):  # MLflow caps one batch at 100 params
        mlflow.log_params(dict(items[start : start + 90]))


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
