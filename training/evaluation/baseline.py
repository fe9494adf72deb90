"""A simple, strong-enough baseline: character n-gram TF-IDF + logistic regression.

Scored on the same frozen test split as the neural models, so a fine-tuned model's macro-F1 can
be read against what a linear model gets from the same data.
"""

from __future__ import annotations

import time

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline

from training.errors import DataError


def tfidf_baseline(
    train: pd.DataFrame, test: pd.DataFrame, *, originals_only: bool = True, seed: int = 0
) -> dict:
    """Fit on train (augmented rows dropped by default: the baseline gets the plain data), score on test."""
    if originals_only and "aug_method" in train:
        train = train[train["aug_method"] == "original"]
    if train["label"].nunique() < 2 or test.empty:
        raise DataError(
            f"the baseline needs train rows of two or more labels and a test split "
            f"(got {len(train)} train rows of {train['label'].nunique()} labels, {len(test)} test rows)"
        )
    # With very few texts, min_df=2 may keep no n-gram at all: then count every n-gram once seen.
    min_df = 2 if len(train) >= 50 else 1
    t0 = time.perf_counter()
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=min_df, sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=5.0, class_weight="balanced", random_state=seed),
    )
    model.fit(train["text"], train["label"])
    pred = model.predict(test["text"])
    return {
        "baseline": "tfidf-char(1-4)+logreg",
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "test_macro_f1": round(float(f1_score(test["label"], pred, average="macro")), 4),
        "test_accuracy": round(float(accuracy_score(test["label"], pred)), 4),
        "fit_seconds": round(time.perf_counter() - t0, 2),
    }
