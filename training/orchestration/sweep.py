"""The heara_sweep DAG's task bodies (dags/heara_sweep.py wires them; the search is training/steps/sweep.py).

`set_up` validates the trigger form and starts the study and its MLflow parent run; each mapped `trials`
task runs one `heara sweep-worker` subprocess on the shared study (so a long search cannot starve the task's
heartbeat, and a killed task stops its worker); `clean_up` fails the trials of workers that died;
`summarize` writes the leaderboard and the overlay and scores the best configuration on the test split.

Every task returns a small JSON-able dict for XCom. The storage URL is never passed by XCom (it may hold a
password): each task resolves it again from the form's value (visible in the run's conf anyway),
HEARA_SWEEP_STORAGE or params.yaml, as `heara sweep` does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from training.config import Params, load_params
from training.errors import ConfigError
from training.orchestration.form import SWEEP_FIELDS, form_overlays, form_overrides
from training.paths import state

log = logging.getLogger("heara.flow")


def _files(data_dir: str | None):
    from training.steps.workspace import DataFiles

    return DataFiles.from_dir(Path(data_dir)) if data_dir else DataFiles.default()


def _url(storage: str | None) -> str:
    from training.steps.sweep import storage_url

    return storage_url(load_params(), storage)


def _form_params(form: dict[str, Any]) -> Params:
    """params.yaml + the form's overlay and values (+ the data folder's task and labels)."""
    from training.data.dataset_info import apply_dataset_info, read_dataset_info

    try:
        params = load_params(
            overrides=form_overrides(form, defaults=load_params(), fields=SWEEP_FIELDS),
            overlays=form_overlays(form),
        )
    except ConfigError as e:
        raise ConfigError(f"trigger form: {e}") from None
    data_dir = str(form.get("data_dir") or "").strip()
    if data_dir:
        info = read_dataset_info(Path(data_dir))
        if info is not None:
            params = apply_dataset_info(params, info)
    return params


def set_up(form: dict[str, Any], run_id: str) -> list[dict]:
    """Start the study (named after the task, family and DAG run, so a re-run task continues it) and its
    MLflow parent run. Returns one job per worker (the list the `trials` task is mapped over): what every
    later task needs, and the worker's index."""
    from training.steps.sweep import start_sweep

    params = _form_params(form)
    family = str(form.get("family") or "")
    storage = str(form.get("storage") or "").strip() or None
    data_dir = str(form.get("data_dir") or "").strip() or None
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    sweep, url = start_sweep(
        params,
        family,
        trials=params.sweep.trials,
        timeout_min=params.sweep.timeout_min,
        workers=params.sweep.workers,
        study_name=f"{params.task}-{family}-{safe_run}",
        storage=storage,
    )
    job = {
        "study": sweep.study,
        "family": family,
        "task": sweep.task,
        "storage": storage,
        "data_dir": data_dir,
        "workers": sweep.workers,
        "trials": sweep.trials,
        "parent_run_id": sweep.parent_run_id,
        "folder": str(sweep.folder),
        "compare_default": bool(form.get("compare_default", True)),
    }
    return [{**job, "worker": i} for i in range(sweep.workers)]


def run_worker(sweep: dict) -> dict:
    """`heara sweep-worker` in a subprocess, its output in this task's log; returns the worker's counts."""
    from training.orchestration.tasks import run_streamed

    worker = int(sweep["worker"])
    cmd = [
        sys.executable,
        "-m",
        "training.cli",
        "sweep-worker",
        "--study",
        sweep["study"],
        "--worker",
        str(worker),
    ]
    if sweep.get("data_dir"):
        cmd += ["--data-dir", sweep["data_dir"]]
    env = {
        **os.environ,
        "HEARA_HOME": str(state().home),
        "PYTHONUNBUFFERED": "1",
        "TERM": "dumb",
        "COLUMNS": "240",
    }
    if sweep.get("storage"):  # the form's storage wins, as --storage does
        env["HEARA_SWEEP_STORAGE"] = sweep["storage"]
    log.info("sweep worker %d: %s", worker, " ".join(cmd))
    tail = run_streamed(cmd, env, f"worker {worker}", what=f"sweep worker {worker}")
    counts = json.loads(next(line for line in reversed(tail) if line.startswith("{")))
    log.info("sweep worker %d: %s", worker, counts)
    return counts


def clean_up(sweep: dict) -> dict:
    """Fail the trials left RUNNING by workers that died (their heartbeat stopped), and their MLflow runs."""
    from training.steps.sweep import clean_up as clean

    return clean(sweep["study"], _url(sweep.get("storage")))


def summarize(sweep: dict) -> dict:
    """Leaderboard, overlay, the test split's one scoring; the summary (and the asset event's extra)."""
    from training.steps.sweep import finish_sweep

    summary = finish_sweep(
        sweep["study"],
        _url(sweep.get("storage")),
        _files(sweep.get("data_dir")),
        compare_default=sweep.get("compare_default", True),
    )
    log.info(
        "sweep %s: best trial %s, val macro-F1 %.4f, test macro-F1 %.4f; overlay %s",
        summary["study"],
        summary["best_trial"],
        summary["best_value"],
        summary["final_test_macro_f1"],
        summary["overlay"],
    )
    return summary


def asset_extra(summary: dict) -> dict:
    """What the `heara_sweep_best` asset event carries: enough for heara_retrain to train the best."""
    keys = ("study", "family", "overlay", "best_value", "best_trial", "final_test_macro_f1", "parent_run_id")
    return {k: summary[k] for k in keys if k in summary}
