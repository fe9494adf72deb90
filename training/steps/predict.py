"""Batch prediction (`heara predict --input FILE --output FILE`) with the same model as the service:
the champion from the registry, or the folder in HEARA_MODEL_DIR."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from training.config import ServeConfig
from training.data.readers import decode_bytes, detect_format
from training.errors import DataError


def read_texts(path: Path, text_col: str) -> pd.DataFrame:
    """Any file `heara data` reads (CSV, TSV, JSONL, Excel), labels not required."""
    kind = detect_format(path)
    if kind == "excel":
        df = pd.read_excel(path, dtype=str, keep_default_na=False)
    else:
        text, _ = decode_bytes(path.read_bytes(), path)
        if kind == "jsonl":
            df = pd.DataFrame([json.loads(line) for line in text.splitlines() if line.strip()])
        elif kind in ("csv", "tsv"):
            df = pd.read_csv(io.StringIO(text), sep="," if kind == "csv" else "\t", dtype=str, keep_default_na=False)
        else:
            raise DataError("batch prediction reads CSV, TSV, JSONL or Excel", file=str(path))
    if text_col not in df.columns:
        raise DataError(f"missing text column '{text_col}' (columns: {', '.join(map(str, df.columns))})",
                        file=str(path), field=text_col)
    return df


def predict_file(input_path: Path, output_path: Path, *, task: str, serve: ServeConfig, text_col: str = "text",
                 batch_size: int = 256) -> dict:
    """Score every row of `input_path`; write its columns plus label, score, prob_<label>, danger, model_version."""
    from training.model.predictor import Predictor
    from training.registry.champion import resolve_model

    df = read_texts(input_path, text_col)
    source = resolve_model(task)
    predictor = Predictor.load(source.model_dir)
    texts = df[text_col].fillna("").astype(str).tolist()
    probs = np.zeros((len(texts), len(predictor.labels)), dtype=np.float32)
    columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task("predict", total=len(texts))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            probs[start:start + len(chunk)] = predictor.predict_proba(chunk)
            progress.advance(bar, len(chunk))
    out = df.copy()
    top = probs.argmax(axis=1)
    out["label"] = [predictor.labels[i] for i in top]
    out["score"] = probs.max(axis=1).round(6)
    for j, lab in enumerate(predictor.labels):
        out[f"prob_{lab}"] = probs[:, j].round(6)
    out["danger"] = out["label"].isin(serve.danger_labels) & (out["score"] >= serve.danger_threshold)
    out["model_version"] = source.version_label
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() in (".jsonl", ".ndjson"):
        out.to_json(output_path, orient="records", lines=True, force_ascii=False)
    else:
        out.to_csv(output_path, index=False, encoding="utf-8-sig")
    return {"input": str(input_path), "output": str(output_path), "rows": int(len(out)),
            "model": source.name, "model_version": source.version_label,
            "per_label": {k: int(v) for k, v in out["label"].value_counts().items()},
            "danger": int(out["danger"].sum())}


def predict_job(input_path: str, output_path: str | None, *, task: str, text_col: str, run_id: str) -> dict:
    """The batch-predict DAG's step: `predict_file` with the champion; the default output goes under
    $HEARA_HOME/predictions/<input stem>.<run id>.csv."""
    import re

    from training.config import load_params
    from training.errors import NotFoundError
    from training.paths import state

    src = Path(input_path).expanduser()
    if not src.is_file():
        raise NotFoundError(f"input file not found: {src}")
    out = Path(output_path) if output_path else \
        state().predictions / f"{src.stem}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)}.csv"
    params = load_params(overrides={"task": task})
    return predict_file(src, out, task=params.task, serve=params.serve, text_col=text_col)
