"""Batch prediction (`heara predict --input FILE --output FILE`) with the same model as the service:
the champion from the registry, or the folder in HEARA_MODEL_DIR."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from training.config import ServeConfig
from training.data.readers import decode_bytes, detect_format
from training.errors import DataError, NotFoundError

log = logging.getLogger("heara.predict")


PREDICTION_COLUMNS = ("pred_label", "pred_score", "pred_labels", "danger", "model_version")  # + prob_<label>


def read_texts(path: Path, text_col: str, *, header: bool = True) -> pd.DataFrame:
    """Any file `heara data` reads (CSV, TSV, JSONL, Excel), labels not required; every column as text.

    header=False: a CSV/TSV file without a header row, columns named "0", "1", ... by position."""
    if not path.is_file():
        raise NotFoundError(f"input file not found: {path}")
    kind = detect_format(path)
    if not header and kind not in ("csv", "tsv"):
        raise DataError(f"--no-header applies to CSV and TSV files, not {kind}", file=str(path))
    if kind == "excel":
        try:
            df = pd.read_excel(path, dtype=str, keep_default_na=False)
        except Exception as e:  # openpyxl raises many types for corrupt files (as in readers._read_excel)
            raise DataError(f"cannot read as an Excel workbook: {e}", file=str(path)) from None
    else:
        text, _ = decode_bytes(path.read_bytes(), path)
        if kind == "jsonl":
            try:
                df = pd.DataFrame([json.loads(line) for line in text.splitlines() if line.strip()])
            except json.JSONDecodeError as e:
                raise DataError(f"invalid JSON line: {e.msg}", file=str(path), row=e.lineno) from None
        elif kind in ("csv", "tsv"):
            try:
                df = pd.read_csv(
                    io.StringIO(text),
                    sep="," if kind == "csv" else "\t",
                    dtype=str,
                    keep_default_na=False,
                    header=0 if header else None,
                )
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
                raise DataError(f"cannot parse as {kind.upper()}: {str(e).strip()}", file=str(path)) from None
            df.columns = [str(c) for c in df.columns]
        else:
            raise DataError("batch prediction reads CSV, TSV, JSONL or Excel", file=str(path))
    if text_col not in df.columns:
        raise DataError(
            f"missing text column '{text_col}' (columns: {', '.join(map(str, df.columns))})",
            file=str(path),
            field=text_col,
        )
    return df


def score_against_labels(truth: pd.Series, predicted: pd.Series, labels: list[str]) -> dict:
    """Accuracy and macro-F1 of the predictions against a label column, on its non-empty rows.

    Macro-F1 as in evaluation: sklearn's mean over the labels that occur in truth or predictions.
    Skipped (with the reason) when the column holds labels the model does not know."""
    from sklearn.metrics import accuracy_score, f1_score

    truth = truth.fillna("").astype(str).str.strip()
    rows = truth != ""
    unknown = sorted(set(truth[rows]) - set(labels))
    if not rows.any():
        return {"skipped": "the label column is empty"}
    if unknown:
        return {"skipped": f"labels {unknown[:10]} are not among the model's labels {labels}"}
    y, p = truth[rows].to_numpy(), predicted[rows].to_numpy()
    return {
        "rows": int(rows.sum()),
        "accuracy": round(float(accuracy_score(y, p)), 4),
        "macro_f1": round(float(f1_score(y, p, average="macro", zero_division=0)), 4),
    }


def predict_file(
    input_path: Path,
    output_path: Path,
    *,
    task: str,
    serve: ServeConfig,
    text_col: str = "text",
    label_col: str | None = None,
    header: bool = True,
    batch_size: int = 256,
) -> dict:
    """Score every row of `input_path`; write all its columns plus pred_label, pred_score, prob_<label>,
    danger and model_version (a multi-label model: also pred_labels, its labels past their thresholds).
    When a label column is there (`label_col`, default "label" if present) and its values are the
    model's labels, the result also holds accuracy and macro-F1 against it."""
    from training.model.predictor import Predictor
    from training.registry.champion import resolve_model

    df = read_texts(input_path, text_col, header=header)
    if label_col is not None and label_col not in df.columns:
        raise DataError(
            f"missing label column '{label_col}' (columns: {', '.join(map(str, df.columns))})",
            file=str(input_path),
            field=label_col,
        )
    truth_col = label_col or ("label" if "label" in df.columns else None)
    source = resolve_model(task)
    predictor = Predictor.load(source.model_dir)
    texts = df[text_col].fillna("").astype(str).tolist()
    probs = np.zeros((len(texts), len(predictor.labels)), dtype=np.float32)
    columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task("predict", total=len(texts))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            probs[start : start + len(chunk)] = predictor.predict_proba(chunk)
            progress.advance(bar, len(chunk))
    ours = list(PREDICTION_COLUMNS) + [f"prob_{lab}" for lab in predictor.labels]
    clash = [c for c in df.columns if c in ours]
    if clash:  # e.g. a previous prediction file scored again: its old predictions are replaced
        log.info("predict: input columns %s replaced by this run's predictions", clash)
    out = df.drop(columns=clash)
    top = probs.argmax(axis=1)
    out["pred_label"] = [predictor.labels[i] for i in top]
    out["pred_score"] = probs.max(axis=1).round(6)
    for j, lab in enumerate(predictor.labels):
        out[f"prob_{lab}"] = probs[:, j].round(6)
    if predictor.multilabel:  # every label at or above its threshold; a danger when any is a danger label
        passing = [predictor.passing(p) for p in probs]
        out["pred_labels"] = [",".join(p) for p in passing]
        out["danger"] = [any(lab in serve.danger_labels for lab in p) for p in passing]
    else:
        out["danger"] = out["pred_label"].isin(serve.danger_labels) & (
            out["pred_score"] >= serve.danger_threshold
        )
    out["model_version"] = source.version_label
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() in (".jsonl", ".ndjson"):
        out.to_json(output_path, orient="records", lines=True, force_ascii=False)
    else:
        out.to_csv(output_path, index=False, encoding="utf-8-sig")
    result = {
        "input": str(input_path),
        "output": str(output_path),
        "rows": int(len(out)),
        "model": source.name,
        "model_version": source.version_label,
        "per_label": {k: int(v) for k, v in out["pred_label"].value_counts().items()},
        "danger": int(out["danger"].sum()),
    }
    if truth_col is not None and truth_col not in clash:
        scores = (
            {"skipped": "a multi-label model: score a prepared test split with heara evaluate"}
            if predictor.multilabel
            else score_against_labels(df[truth_col], out["pred_label"], list(predictor.labels))
        )
        result.update(
            {
                "label_col": truth_col,
                **(
                    {"metrics_skipped": scores["skipped"]}
                    if "skipped" in scores
                    else {
                        "labeled_rows": scores["rows"],
                        "accuracy": scores["accuracy"],
                        "macro_f1": scores["macro_f1"],
                    }
                ),
            }
        )
    return result


def predict_job(input_path: str, output_path: str | None, *, task: str, text_col: str, run_id: str) -> dict:
    """The batch-predict DAG's step: `predict_file` with the champion; the default output goes under
    $HEARA_HOME/predictions/<input stem>.<run id>.csv."""
    import re

    from training.config import load_params
    from training.paths import state

    src = Path(input_path).expanduser()
    if not src.is_file():
        raise NotFoundError(f"input file not found: {src}")
    out = (
        Path(output_path)
        if output_path
        else state().predictions / f"{src.stem}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)}.csv"
    )
    params = load_params(overrides={"task": task})
    return predict_file(src, out, task=params.task, serve=params.serve, text_col=text_col)
