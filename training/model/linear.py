"""The `linear` model family: character n-gram TF-IDF + logistic regression (scikit-learn).

A first-class family beside the transformers: trained by `heara train` (model.family: linear), evaluated
with the same metrics, slices and calibration, logged as the same pyfunc, gated and served by the same
service. It fits in seconds on a CPU, and with the `linear:` defaults it is also the baseline every
challenger has to beat (training/evaluation/baseline.py, `promote.require_beat_baseline`).

Folder layout: `linear.joblib` (the fitted scikit-learn pipeline) and `heara.json` (family "linear",
labels, preprocessing, the `linear` settings). joblib is a pickle: load only folders from your own
registry, as for any MLflow model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.config import LinearConfig, PreprocessConfig
from training.model.base import META_FILE, BasePredictor

PIPELINE_FILE = "linear.joblib"
LINEAR_BASE_MODEL = "linear:tfidf+logreg"


def describe(cfg: LinearConfig) -> str:
    """One line naming the configuration, e.g. tfidf-char_wb(1-4)+logreg(C=5)."""
    return f"tfidf-{cfg.analyzer}({cfg.ngram_min}-{cfg.ngram_max})+logreg(C={cfg.C:g})"


def build_pipeline(cfg: LinearConfig, n_texts: int, seed: int = 0, multilabel: bool = False):
    """An unfitted scikit-learn pipeline for `n_texts` train texts.

    With very few texts min_df=2 may keep no n-gram at all: below 50 texts every n-gram seen once counts.
    `multilabel`: one binary logistic regression per label (one-vs-rest), each label's own probability.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline

    logreg = LogisticRegression(
        C=cfg.C,
        class_weight=None if cfg.class_weight == "none" else cfg.class_weight,
        max_iter=cfg.max_iter,
        random_state=seed,
    )

    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    analyzer=cfg.analyzer,
                    ngram_range=(cfg.ngram_min, cfg.ngram_max),
                    min_df=cfg.min_df if n_texts >= 50 else 1,
                    max_features=cfg.max_features,
                    sublinear_tf=cfg.sublinear_tf,
                ),
            ),
            ("logreg", OneVsRestClassifier(logreg) if multilabel else logreg),
        ]
    )


def fit_pipeline(
    cfg: LinearConfig,
    texts: Sequence[str],
    labels: Sequence[str],
    seed: int = 0,
    *,
    label_names: Sequence[str] | None = None,
    multilabel: bool = False,
):
    """Fit on preprocessed `texts` with their `labels` (a multi-label task's label sets, scored against
    `label_names`, whose order the pipeline remembers as `heara_labels_`)."""
    pipe = build_pipeline(cfg, len(texts), seed, multilabel)
    if multilabel:
        from training.data.labels import indicator

        names = list(label_names or [])
        with warnings.catch_warnings():  # a label on every or no train row: scikit-learn predicts it constant
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
            pipe.fit(list(texts), indicator(labels, names).astype(np.int64))
        pipe.heara_labels_ = names
        return pipe
    pipe.fit(list(texts), list(labels))
    return pipe


def ordered_proba(pipe, texts: Sequence[str], labels: Sequence[str], transformed=None) -> np.ndarray:
    """Probabilities [len(texts), len(labels)] in `labels` order (scikit-learn sorts its classes);
    a label the pipeline never saw gets probability 0. `transformed`: the texts' TF-IDF rows, when the
    caller has them already (the service's monitoring projects them too): not transformed again."""
    classes = getattr(pipe, "heara_labels_", None) or list(pipe.classes_)  # multi-label: fit order
    if not len(texts):
        raw = np.zeros((0, len(classes)))
    elif transformed is not None:
        raw = pipe[-1].predict_proba(transformed)
    else:
        raw = pipe.predict_proba(list(texts))
    out = np.zeros((len(texts), len(labels)), dtype=np.float32)
    col = {str(c): j for j, c in enumerate(classes)}
    for i, lab in enumerate(labels):
        if lab in col:
            out[:, i] = raw[:, col[lab]]
    return out


def save_linear_dir(
    pipe,
    out_dir: Path,
    *,
    task: str,
    labels: list[str],
    preprocess: PreprocessConfig,
    cfg: LinearConfig,
    max_length: int,
    task_type: str = "multiclass",
) -> Path:
    """Write the fitted pipeline and heara.json into `out_dir` (the same metadata as a transformer's)."""
    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipe, out_dir / PIPELINE_FILE)
    meta = {
        "task": task,
        "family": "linear",
        "labels": list(labels),
        "max_length": max_length,
        "preprocess": json.loads(preprocess.model_dump_json()),
        "base_model": f"{LINEAR_BASE_MODEL}:{describe(cfg)}",
        "linear": json.loads(cfg.model_dump_json()),
        "task_type": task_type,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out_dir


class LinearPredictor(BasePredictor):
    """Raw texts -> label probabilities with the fitted pipeline (always on the CPU)."""

    device = "cpu"
    dtype = None
    runtime = "sklearn"

    def __init__(self, pipe, meta: dict) -> None:
        super().__init__(meta)
        self.pipe = pipe

    @classmethod
    def load_dir(cls, model_dir: Path, meta: dict) -> "LinearPredictor":
        import joblib

        return cls(joblib.load(model_dir / PIPELINE_FILE), meta)

    def predict_proba(
        self, texts: list[str], *, preprocessed: bool = False, batch_size: int = 0, transformed=None
    ) -> np.ndarray:
        """Probabilities [len(texts), len(labels)] in `labels` order (`batch_size` is ignored;
        `transformed`: the texts' `embed` rows, already computed)."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        clean = list(texts) if preprocessed else self.preprocessor(list(texts))
        return ordered_proba(self.pipe, clean, self.labels, transformed)

    def embed(self, texts: list[str], *, preprocessed: bool = False, batch_size: int = 0):
        """The TF-IDF vectors the logistic regression reads (sparse [len(texts), n-grams]): the linear
        family's representation for monitoring's projection."""
        clean = list(texts) if preprocessed else self.preprocessor(list(texts))
        return self.pipe.named_steps["tfidf"].transform(clean)

    def n_outputs(self) -> int:
        """How many classes the fitted pipeline scores."""
        return len(self.pipe.classes_)

    def size_bytes(self) -> int:
        """Bytes of the fitted pipeline as saved (model size in leaderboards)."""
        import pickle

        return len(pickle.dumps(self.pipe))
