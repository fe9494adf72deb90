"""Step `review` (`heara review`): which served predictions people label, where their labels go, and
the production holdout those labels make.

- `select_step`: a window of the prediction log (rows as `PredictionLog.window()` gives them: id, ts,
  model_version, label, masked_text, scores, danger) -> the rows to queue, each with its stratum
  (training/evaluation/review.py), and a summary. The caller enqueues them (serving/review_queue.py).
- `export_step`: the labeled, not yet exported rows of the queue -> `$HEARA_HOME/incoming/review-<id>.csv`
  in the columns the ingest step reads (data.id_col, data.text_col, data.label_col) plus reviewer,
  reviewed_at, stratum and model_version. The incoming watcher then triggers heara_retrain on it. Row ids
  start with `review-` (split.PRODUCTION_ID_PREFIX): the split never draws them into the test split.
  The random stratum is not exported: its labeled rows are the production holdout, and a model trained
  on them would be scored on its own training rows.
- The production holdout: the caller (CLI, DAG task) writes the queue's labeled random-stratum rows to
  `<task>/review/holdout.parquet` (`write_holdout`); evaluate and promote read that file
  (`holdout_report`), so no step reads the prediction database itself.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import Params
from training.data.split import PRODUCTION_ID_PREFIX
from training.evaluation.review import STRATA, holdout_macro_f1, select_for_review
from training.paths import state

log = logging.getLogger("heara.pipeline")

HOLDOUT_COLUMNS = ["prediction_id", "text", "label", "served_label", "model_version", "reviewed_at"]
NOT_ENOUGH = "not enough reviewed rows"
HOLDOUT_STRATUM = "random"  # its labeled rows are the production holdout, never exported for training


# Selection --------------------------------------------------------------------------------------


def _probs(rows: pd.DataFrame, labels: list[str]) -> np.ndarray:
    return np.array([[float(s.get(lab, 0.0)) for lab in labels] for s in rows["scores"]], dtype=float)


def select_step(
    params: Params,
    rows: pd.DataFrame,
    *,
    model_dir: Path | None = None,
    exclude_ids: Iterable[int] = (),
) -> dict[str, Any]:
    """Pick the window's rows to review: {"picks": [row + stratum], "summary": {...}}.

    `model_dir`: the served version's folder; with its monitoring reference (and review.novel_share > 0)
    the novel stratum is scored by the domain classifier, else its share goes to `uncertain`.
    `exclude_ids`: prediction ids already queued (overlapping windows): never picked again."""
    cfg = params.review
    rows = rows.reset_index(drop=True)
    summary: dict[str, Any] = {"window": int(len(rows)), "budget": cfg.budget, "novelty": False}
    if rows.empty:
        return {"picks": [], "summary": {**summary, "candidates": 0, "picked": {}}}
    labels = sorted({lab for s in rows["scores"] for lab in s})
    scores_novelty = None
    if model_dir is not None and cfg.novel_share > 0 and len(rows) >= 2:
        scores_novelty = _novelty(model_dir, rows)
    keep = ~rows["id"].isin(set(int(i) for i in exclude_ids))
    candidates = rows[keep].reset_index(drop=True)
    novelty = None if scores_novelty is None else scores_novelty[keep.to_numpy()]
    summary["novelty"] = novelty is not None
    first_id = int(rows["id"].iloc[0])  # another window, another random draw; the same window, the same
    seed = int(np.random.SeedSequence([cfg.seed, first_id]).generate_state(1)[0])
    picked = select_for_review(
        _probs(candidates, labels),
        candidates["danger"].astype(bool).tolist() if "danger" in candidates else [False] * len(candidates),
        cfg,
        novelty=novelty,
        seed=seed,
    )
    picks = []
    for index, stratum in picked:
        row = candidates.iloc[index].to_dict()
        if novelty is not None:
            row["novelty"] = float(novelty[index])
        picks.append({**row, "stratum": stratum})
    counts = {s: sum(1 for p in picks if p["stratum"] == s) for s in STRATA}
    summary.update(candidates=int(len(candidates)), picked=counts)
    log.info("review: %d of %d predictions picked for review: %s", len(picks), len(candidates), counts)
    return {"picks": picks, "summary": summary}


def _novelty(model_dir: Path, rows: pd.DataFrame) -> np.ndarray | None:
    """The domain classifier's novelty per row, or None without a reference (an older version). Rows
    with the projection the service logged are not embedded again (the model is loaded only for the rest)."""
    from training.evaluation.monitoring import Logged, Reference
    from training.evaluation.review import novelty
    from training.model.predictor import Predictor

    ref = Reference.load(model_dir)
    if ref is None:
        log.warning("review: %s has no monitoring reference: no novel stratum", model_dir)
        return None
    projections = rows["projection"].tolist() if "projection" in rows else None
    logged = Logged.from_rows(projections, None, len(rows), len(ref.components))
    predictor = None if logged.has_projection.all() else Predictor.load(model_dir, device="cpu")
    return novelty(predictor, ref, rows["masked_text"].astype(str).tolist(), logged=logged)


# Export -----------------------------------------------------------------------------------------


def new_export_id(now: datetime | None = None) -> str:
    """`20261128T093000Z-1a2b3c`: sortable by time, unique across simultaneous exports."""
    return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _exportable(item: Mapping[str, Any]) -> bool:
    """Labeled, and not the production holdout (the random stratum): a model is never scored on rows it
    was trained on. (ReviewQueue.reviewed_unexported() leaves those out already.)"""
    labeled = item.get("status", "labeled") == "labeled" and bool(item.get("label"))
    return labeled and item.get("stratum") != HOLDOUT_STRATUM


def export_frame(
    params: Params, items: Sequence[Mapping[str, Any]], *, store_raw: bool = False
) -> pd.DataFrame:
    """The labeled items as training rows in the ingest step's columns (params.data); skipped and unsure
    items are left out. The text is the masked one unless raw text is stored (and the item has it)."""
    data = params.data
    rows = []
    for item in items:
        if not _exportable(item):
            continue
        text = item.get("raw_text") if store_raw and item.get("raw_text") else item.get("masked_text")
        rows.append(
            {
                data.id_col or "id": f"{PRODUCTION_ID_PREFIX}{item['prediction_id']}",
                data.text_col: text,
                data.label_col: item["label"],
                "reviewer": item.get("reviewer"),
                "reviewed_at": item.get("ts_reviewed"),
                "stratum": item.get("stratum"),
                "model_version": item.get("model_version"),
            }
        )
    columns = [data.id_col or "id", data.text_col, data.label_col, "reviewer", "reviewed_at", "stratum"]
    return pd.DataFrame(rows, columns=[*columns, "model_version"])


def export_step(
    params: Params,
    items: Sequence[Mapping[str, Any]],
    *,
    out_dir: Path | None = None,
    export_id: str | None = None,
    store_raw: bool = False,
) -> dict[str, Any]:
    """Write the reviewed batch to `<out_dir>/review-<export_id>.csv` (default: the incoming folder).
    Returns {path (None when nothing to export), export_id, rows, ids (review item ids written), labels}.
    The file appears whole (written aside, then renamed): the watcher never reads half of it."""
    frame = export_frame(params, items, store_raw=store_raw)
    written = [int(i["id"]) for i in items if _exportable(i)]
    export_id = export_id or new_export_id()
    if frame.empty:
        return {"path": None, "export_id": None, "rows": 0, "ids": [], "labels": {}}
    folder = Path(out_dir) if out_dir is not None else state().incoming
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"review-{export_id}.csv"
    partial = folder / f".{path.name}.tmp"  # dot files are not the watcher's
    frame.to_csv(partial, index=False, encoding="utf-8")
    os.replace(partial, path)
    labels = frame[params.data.label_col].value_counts().to_dict()
    log.info("review: exported %d reviewed rows to %s", len(frame), path)
    return {
        "path": str(path),
        "export_id": export_id,
        "rows": int(len(frame)),
        "ids": written,
        "labels": {str(k): int(v) for k, v in labels.items()},
    }


# The production holdout -------------------------------------------------------------------------


def holdout_path(task: str) -> Path:
    return state().review(task) / "holdout.parquet"


def write_holdout(params: Params, items: Sequence[Mapping[str, Any]], *, store_raw: bool = False) -> Path:
    """Write the queue's holdout rows (`ReviewQueue.holdout()`) to <task>/review/holdout.parquet."""
    frame = pd.DataFrame(
        [
            {
                "prediction_id": int(i["prediction_id"]),
                "text": i.get("raw_text") if store_raw and i.get("raw_text") else i.get("masked_text"),
                "label": i["label"],
                "served_label": i.get("suggested_label"),
                "model_version": i.get("model_version"),
                "reviewed_at": i.get("ts_reviewed"),
            }
            for i in items
        ],
        columns=HOLDOUT_COLUMNS,
    )
    path = holdout_path(params.task)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(".holdout.parquet.tmp")
    frame.to_parquet(partial, index=False)
    os.replace(partial, path)
    return path


def read_holdout(params: Params, path: Path | None = None) -> pd.DataFrame:
    """The production holdout (newest review.holdout_max_rows rows); empty when none was written."""
    path = path or holdout_path(params.task)
    if not path.exists():
        return pd.DataFrame(columns=HOLDOUT_COLUMNS)
    frame = pd.read_parquet(path)
    return frame.sort_values("reviewed_at", ascending=False).head(params.review.holdout_max_rows)


def holdout_report(
    params: Params, predict_labels, holdout: pd.DataFrame | None = None, *, labels: Sequence[str] = ()
) -> dict[str, Any]:
    """A model's production macro-F1 on the holdout: {rows, enough, macro_f1, ci_low, ci_high, note}.

    predict_labels: texts -> predicted labels (the model being evaluated). `labels`: the model's label
    set; holdout rows labeled outside it are left out. Below review.holdout_min_rows: enough False and
    the note says "not enough reviewed rows"."""
    cfg = params.review
    frame = read_holdout(params) if holdout is None else holdout
    if len(labels):
        frame = frame[frame["label"].isin(set(labels))]
    n = int(len(frame))
    if n < cfg.holdout_min_rows:
        return {"rows": n, "enough": False, "note": f"{NOT_ENOUGH} ({n} < review.holdout_min_rows)"}
    predicted = [str(p) for p in predict_labels(frame["text"].astype(str).tolist())]
    result = holdout_macro_f1(frame["label"].astype(str).tolist(), predicted, resamples=cfg.holdout_bootstrap)
    note = (
        f"production macro-F1 {result['macro_f1']:.3f} (95 % CI {result['ci_low']:.3f} to "
        f"{result['ci_high']:.3f}), {n} reviewed rows"
    )
    return {"rows": n, "enough": True, "note": note, **result}


def holdout_metrics(report: Mapping[str, Any], prefix: str = "production") -> dict[str, float]:
    """The report as MLflow metrics: <prefix>_rows and, when enough, _macro_f1, _ci_low, _ci_high."""
    metrics = {f"{prefix}_rows": float(report["rows"])}
    if report.get("enough"):
        metrics.update({f"{prefix}_{k}": float(report[k]) for k in ("macro_f1", "ci_low", "ci_high")})
    return metrics
