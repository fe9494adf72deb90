"""The review queue's adapter work, the same for `heara review` and the heara_monitor DAG's `review` task:
read the newest window from the prediction log, pick (training/steps/review.py), enqueue
(serving/review_queue.py); export what people labeled; and keep the production holdout file
(`<task>/review/holdout.parquet`) in step with the queue, so that the evaluate step and the gate read a
file and never the prediction database.

The store is the one HEARA_PREDICTION_DB names (SQLite in the state folder by default), the served
version the registry's champion (or HEARA_MODEL_DIR), as for `heara monitor`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from training.config import Params

log = logging.getLogger("heara.flow")

# PredictionLog.window's keys; projection and descriptors: the monitoring features the service logged
WINDOW_COLUMNS = [
    "id",
    "ts",
    "model_version",
    "label",
    "masked_text",
    "scores",
    "danger",
    "projection",
    "descriptors",
]


def open_queue():
    from serving.review_queue import ReviewQueue
    from training import env

    return ReviewQueue(env.prediction_db(), store_raw=env.store_raw_text())


def refresh_holdout(params: Params, queue=None) -> dict[str, Any]:
    """Rewrite <task>/review/holdout.parquet from the queue's labeled random-stratum rows."""
    from training import env
    from training.steps.review import write_holdout

    queue = queue or open_queue()
    rows = queue.holdout(params.review.holdout_max_rows)
    path = write_holdout(params, rows, store_raw=env.store_raw_text())
    return {"path": str(path), "rows": len(rows)}


def served_window(params: Params, *, window: int | None = None, hours: float | None = None):
    """(the served model's source, its newest window of logged predictions as a DataFrame): the newest
    `window` (default monitor.window) predictions of the served version, of the last `hours` (default
    monitor.window_hours) when set; masked text only, and the monitoring features the service logged.
    What `heara monitor`, `heara review select` and the heara_monitor DAG's tasks read. Raises
    NoChampionError when nothing is served."""
    import pandas as pd

    from serving.predlog import PredictionLog
    from training import env
    from training.registry.champion import resolve_model

    source = resolve_model(params.task)
    span = hours if hours is not None else params.monitor.window_hours
    since = datetime.now(UTC) - timedelta(hours=span) if span else None
    predlog = PredictionLog(env.prediction_db())
    try:
        rows = predlog.window(
            window or params.monitor.window, since=since, model_version=source.version_label
        )
    finally:
        predlog.close()
    return source, pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def fill_queue(params: Params, *, window: int | None = None, hours: float | None = None) -> dict[str, Any]:
    """Queue the picks of the newest window of the served version (monitor.window / window_hours unless
    given). Raises NoChampionError when nothing is served."""
    from serving.predlog import PredictionLog
    from training import env
    from training.steps.review import select_step

    source, frame = served_window(params, window=window, hours=hours)
    queue = open_queue()
    known = queue.queued_among(frame["id"].tolist()) if len(frame) else set()
    result = select_step(params, frame, model_dir=source.model_dir, exclude_ids=known)
    if env.store_raw_text():  # reviewers then see what was said; the window itself is masked only
        with PredictionLog(env.prediction_db()) as predlog:
            raw = predlog.raw_texts([p["id"] for p in result["picks"]])
        result["picks"] = [{**p, "raw_text": raw.get(int(p["id"]))} for p in result["picks"]]
    added = queue.enqueue(result["picks"])
    holdout = refresh_holdout(params, queue)
    counts = queue.counts()
    log.info("review: %d predictions queued (%d waiting for review)", added, counts["status"]["queued"])
    return {
        "task": params.task,
        "model_version": source.version_label,
        "window": result["summary"]["window"],
        "already_queued": len(known),
        "picked": result["summary"].get("picked", {}),
        "novelty": result["summary"]["novelty"],
        "queued": added,
        "waiting": counts["status"]["queued"],
        "holdout_rows": holdout["rows"],
    }


def export_reviewed(params: Params, *, out_dir: Path | None = None) -> dict[str, Any]:
    """Write the labeled, unexported rows to the incoming folder (or `out_dir`) and mark them exported.
    {path: None, rows: 0} when there is nothing to export."""
    from training import env
    from training.steps.review import export_step

    queue = open_queue()
    result = export_step(params, queue.reviewed_unexported(), out_dir=out_dir, store_raw=env.store_raw_text())
    if result["path"]:
        # After the file exists: a crash in between exports the rows again next time (the same ids, which
        # validation drops as duplicates), never loses them.
        queue.mark_exported(result["ids"], result["export_id"])
    refresh_holdout(params, queue)
    return {k: v for k, v in result.items() if k != "ids"}


def status(params: Params) -> dict[str, Any]:
    """The queue's counts, and whether the holdout is big enough to be reported."""
    queue = open_queue()
    counts = queue.counts()
    holdout = len(queue.holdout(params.review.holdout_max_rows))
    return {
        **counts,
        "holdout_rows": holdout,
        "holdout_min_rows": params.review.holdout_min_rows,
        "min_new_reviews": params.review.min_new_reviews,
    }
