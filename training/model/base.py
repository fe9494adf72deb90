"""What every model family's predictor shares: the model folder's metadata file, one prediction,
and `BasePredictor` (the label map, the preprocessing saved with the model, latency). The torch
families' `Predictor` (predictor.py) and the linear family's `LinearPredictor` (linear.py) build on it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.config import PreprocessConfig
from training.errors import NotFoundError

META_FILE = "heara.json"


@dataclass
class Prediction:
    label: str
    score: float
    scores: dict[str, float]
    labels: list[str] | None = None  # multi-label models: every label at or above its threshold


def to_proba(logits, multilabel: bool):
    """Logits (a torch tensor [n, labels]) -> probabilities: one sigmoid per label for a multi-label
    model (each label on its own), a softmax over the labels otherwise."""
    return logits.sigmoid() if multilabel else logits.softmax(-1)


def task_type_of(meta: dict) -> str:
    """multiclass or multilabel (folders saved before multi-label tasks existed are multiclass)."""
    return str(meta.get("task_type", "multiclass"))


class BasePredictor:
    """What every family's predictor shares: the label map, the preprocessing saved with the model, one
    prediction per text and the latency measure. Subclasses implement `predict_proba`."""

    device: str = "cpu"
    runtime: str = "torch"

    def __init__(self, meta: dict) -> None:
        self.meta = meta
        self.labels: list[str] = list(meta["labels"])
        self.max_length: int = int(meta["max_length"])
        self.family: str = str(meta.get("family", "kobert"))
        self.multilabel: bool = task_type_of(meta) == "multilabel"
        # Multi-label: per-label decision thresholds tuned on the validation split (0.5 until tuned).
        self.thresholds: list[float] = [float(t) for t in meta.get("thresholds") or [0.5] * len(self.labels)]
        self._preprocessor = None

    @property
    def preprocessor(self):
        """Training's preprocessing with the config saved beside the model (built on first use)."""
        if self._preprocessor is None:
            from training.data.preprocess import Preprocessor

            self._preprocessor = Preprocessor(PreprocessConfig(**self.meta["preprocess"]))
        return self._preprocessor

    def predict_proba(
        self, texts: list[str], *, preprocessed: bool = False, batch_size: int = 64
    ) -> np.ndarray:
        raise NotImplementedError

    def predict(self, texts: list[str], *, preprocessed: bool = False) -> list[Prediction]:
        probs = self.predict_proba(texts, preprocessed=preprocessed)
        return [
            Prediction(
                self.labels[int(p.argmax())],
                float(p.max()),
                {lab: float(v) for lab, v in zip(self.labels, p)},
                self.passing(p) if self.multilabel else None,
            )
            for p in probs
        ]

    def passing(self, proba) -> list[str]:
        """A multi-label model's labels for one row of probabilities: those at or above their threshold,
        most probable first."""
        order = np.argsort(-np.asarray(proba), kind="stable")
        return [self.labels[j] for j in order if proba[j] >= self.thresholds[j]]

    def latency_ms(self, texts: list[str], n: int = 100) -> dict[str, float]:
        """Per-request latency of single-text prediction (preprocessing included)."""
        self.predict_proba(texts[:2])  # warm-up
        times = []
        for text in texts[:n]:
            t0 = time.perf_counter()
            self.predict_proba([text])
            times.append((time.perf_counter() - t0) * 1000)
        arr = np.array(times or [0.0])
        return {
            "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)),
            "mean": float(arr.mean()),
        }


def read_meta(model_dir: Path | str) -> dict:
    """heara.json of a model folder; NotFoundError when the folder is not one."""
    meta_path = Path(model_dir) / META_FILE
    if not meta_path.exists():
        raise NotFoundError(f"{model_dir} is not a Heara model folder ({META_FILE} is missing)")
    return json.loads(meta_path.read_text(encoding="utf-8"))
