"""Step `monitor` (`heara monitor`): one window of served predictions against the reference stored with
the served version (training/evaluation/monitoring.py), the alarm after persistence, and the report.

The caller (the CLI, the monitor DAG's task) reads the window from the prediction log and passes its
rows in: `ts`, `masked_text` and `scores` ({label: probability} as the service answered), and where the
service logged them `projection` and `descriptors` (serving.predlog). Nothing here needs the raw
utterances: a row without logged descriptors gets them from its masked text, and the model re-reads that
text only for a row without a logged projection (a model that logged both for every row is not loaded).
The report says how many rows used logged features and how many were computed (`features`).

Every window is appended to `<task>/monitoring/history.jsonl`; the newest report is
`<task>/monitoring/report.json` and `report.html` (plots), and the run is logged to MLflow in the task's
experiment (tag heara.kind=monitor).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import Params
from training.errors import DataError, NotFoundError
from training.evaluation.monitoring import Logged, Reference, observe, persistence, window_signals
from training.paths import state

log = logging.getLogger("heara.pipeline")


def monitoring_dir(task: str) -> Path:
    return state().monitoring(task)


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def window_probs(rows: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """The logged probabilities in the reference's label order; DataError when the window was served
    by a model with other labels."""
    missing = sorted({lab for scores in rows["scores"] for lab in labels if lab not in scores})
    if missing:
        raise DataError(f"the window's predictions have no score for labels {missing}: another model's rows")
    return np.array([[float(s[lab]) for lab in labels] for s in rows["scores"]], dtype=np.float32)


def monitor_step(
    params: Params,
    rows: pd.DataFrame,
    *,
    model_dir: Path,
    version: str,
    out_dir: Path | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    """Judge the window `rows` against the reference in `model_dir`; returns the window's record
    (also appended to the history, written as report.json / report.html and logged to MLflow)."""
    from training.model.predictor import Predictor

    ref = Reference.load(model_dir)
    if ref is None:
        raise NotFoundError(
            f"model version {version} has no monitoring reference ({model_dir}/monitoring): it was "
            "registered before monitoring existed; register a newly trained version"
        )
    cfg = params.monitor
    probs = window_probs(rows, ref.labels) if len(rows) else np.zeros((0, len(ref.labels)), np.float32)
    logged = Logged.from_rows(
        rows["projection"].tolist() if "projection" in rows else None,
        rows["descriptors"].tolist() if "descriptors" in rows else None,
        len(rows),
        ref.components.shape[0],
    )
    judged = len(rows) >= cfg.min_texts
    if judged:
        predictor = None if logged.complete else Predictor.load(model_dir, device="cpu")
        obs = observe(predictor, ref, rows["masked_text"].astype(str).tolist(), probs=probs, logged=logged)
        result = window_signals(ref, **obs, cfg=cfg)
    else:
        result = window_signals(ref, probs=probs, descriptors=pd.DataFrame(), projection=probs, cfg=cfg)
    features = logged.counts(computed=judged)
    out_dir = out_dir or monitoring_dir(params.task)
    out_dir.mkdir(parents=True, exist_ok=True)
    history_path = out_dir / "history.jsonl"
    history = read_history(history_path)
    flags = [bool(h["alarm"]) for h in history] + [result["alarm"]]
    record = {
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": params.task,
        "model_version": str(version),
        "window": {
            "n": result["n"],
            "from": str(rows["ts"].min()) if len(rows) else None,
            "to": str(rows["ts"].max()) if len(rows) else None,
        },
        "enough": result["enough"],
        "window_alarm": result["alarm"],
        "alarm": result["alarm"],
        "persistent_alarm": persistence(flags, cfg),
        "persistence": f"{cfg.persistence_k} of the last {cfg.persistence_m} windows",
        "reasons": result["reasons"],
        "tests": result.get("tests", {}),
        "bonferroni_cut": result.get("bonferroni_cut"),
        "signals": result.get("signals", {}),
        "features": features,  # per feature: rows whose logged value was used, rows computed here
    }
    with history_path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    partial = out_dir / ".report.json.tmp"  # whole or not at all: serving/drift_gauges.py reads it
    partial.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", "utf-8")
    partial.replace(out_dir / "report.json")
    page = write_page(record, [*history, record], ref, out_dir)
    if log_to_mlflow:
        _log_run(params.task, record, [out_dir / "report.json", page])
    log.info(
        "monitor: %s version %s, %d predictions (features logged / computed: projection %d / %d, "
        "descriptors %d / %d): %s%s",
        params.task,
        version,
        result["n"],
        features["projection"]["logged"],
        features["projection"]["computed"],
        features["descriptors"]["logged"],
        features["descriptors"]["computed"],
        "ALARM (persistent)" if record["persistent_alarm"] else "window alarmed" if result["alarm"] else "ok",
        "; " + "; ".join(result["reasons"]) if result["reasons"] else "",
    )
    return record


def _log_run(task: str, record: dict[str, Any], artifacts: list[Path]) -> None:
    import mlflow

    from training.registry import tracking

    exp_id = tracking.setup(task)
    s = record["signals"]
    metrics = {
        "monitor_n": record["window"]["n"],
        "monitor_window_alarm": float(record["window_alarm"]),
        "monitor_persistent_alarm": float(record["persistent_alarm"]),
    }
    for key in ("label_js", "domain_auc", "embedding_mmd2", "estimated_macro_f1", "confidence_mean"):
        if key in s:
            metrics[f"monitor_{key}"] = float(s[key])
    with mlflow.start_run(experiment_id=exp_id, run_name=f"monitor-{datetime.now():%Y%m%d-%H%M%S}"):
        mlflow.set_tags({"heara.kind": "monitor", "heara.model_version": record["model_version"]})
        mlflow.log_metrics(metrics)
        for path in artifacts:
            mlflow.log_artifact(str(path), "monitoring")


def write_page(record: dict[str, Any], history: list[dict[str, Any]], ref: Reference, out_dir: Path) -> Path:
    """report.html: the verdict, the reasons, and drift.png (label shares and drift scores per window,
    each descriptor's shift in the newest window)."""
    import html

    from training.evaluation.plots import drift_png

    png = drift_png(history, ref.labels, out_dir / "drift.png")
    s = record["signals"]
    verdict = (
        "ALARM: drift in " + record["persistence"]
        if record["persistent_alarm"]
        else "this window alarmed (not yet persistent)"
        if record["window_alarm"]
        else "no drift"
        if record["enough"]
        else "too few predictions to judge"
    )
    rows = "".join(f"<li>{html.escape(r)}</li>" for r in record["reasons"]) or "<li>none</li>"
    figures = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in s.items() if isinstance(v, float)
    )
    body = (
        f"<h1>Heara monitoring: {html.escape(record['task'])} "
        f"version {html.escape(record['model_version'])}</h1>"
        f"<p><b>{html.escape(verdict)}</b> ({record['window']['n']} predictions, "
        f"{html.escape(str(record['window']['from']))} to {html.escape(str(record['window']['to']))})</p>"
        f"<h2>Why</h2><ul>{rows}</ul><h2>Figures</h2><table>{figures}</table>"
        f'<h2>Over time</h2><img src="{png.name}" alt="drift over windows" style="max-width:100%">'
    )
    page = out_dir / "report.html"
    page.write_text(
        f'<!doctype html><html lang="ko"><meta charset="utf-8"><title>Heara monitoring</title>'
        f"<body style='font-family:sans-serif;max-width:60em;margin:auto'>{body}</body></html>\n",
        encoding="utf-8",
    )
    return page
