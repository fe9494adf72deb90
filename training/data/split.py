"""Stratified train/val/test split with a frozen test set.

The test split is created once. Later runs keep it as it is (the same rows, identified by the
content hash of their preprocessed text) and split only the remaining rows into train and val,
so that every model version, champion and challenger alike, is scored on the same test set.
Rows whose text is already in the frozen test set never reach train or val.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import SplitConfig
from training.errors import DataError


def text_hash(text: str) -> str:
    """Content hash of one preprocessed text (the row's identity for the frozen test set)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def content_hash(df: pd.DataFrame) -> str:
    """Order-independent hash of a split's (text, label) content; logged with every model."""
    h = hashlib.sha256()
    for line in sorted(f"{t}\t{lab}" for t, lab in zip(df["text"], df["label"])):
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _stratified_take(df: pd.DataFrame, ratio: float, rng: np.random.Generator) -> pd.Series:
    """Boolean mask choosing round(ratio * n) rows of each class (at least 1 per class)."""
    take = pd.Series(False, index=df.index)
    for _, idx in df.groupby("label").groups.items():
        idx = np.array(sorted(idx))
        n = max(1, int(round(len(idx) * ratio)))
        if n >= len(idx):
            raise DataError(
                f"class '{df.loc[idx[0], 'label']}' has only {len(idx)} rows; cannot split it", field="label"
            )
        take[rng.permutation(idx)[:n]] = True
    return take


def split_frame(
    df: pd.DataFrame,
    cfg: SplitConfig,
    frozen_test: pd.DataFrame | None = None,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Preprocessed rows -> {"train", "val", "test"} and a report.

    `frozen_test`: an existing test split; when given (and cfg.resplit is false) it is kept as it is.
    """
    df = df.copy()
    df["text_hash"] = df["text"].map(text_hash)
    # Sort by hash first: the split then depends only on content and seed, not on row order.
    # The id breaks ties between repeated texts (possible with preprocess.dedup=false).
    df = df.sort_values(["label", "text_hash", "id"]).reset_index(drop=True)
    rng = np.random.default_rng(cfg.seed)
    report: dict = {"seed": cfg.seed, "val_ratio": cfg.val_ratio, "test_ratio": cfg.test_ratio}

    if frozen_test is not None and not cfg.resplit:
        test = frozen_test.copy()
        if "text_hash" not in test:
            test["text_hash"] = test["text"].map(text_hash)
        unknown = sorted(set(test["label"]) - set(df["label"]))
        if unknown:
            raise DataError(
                f"the frozen test split has labels {unknown} that the data no longer has; "
                "re-split explicitly (split.resplit=true / --resplit)",
                field="label",
            )
        # Draw (and drop) the test selection anyway, so that the generator reaches the val draw in the
        # same state as on the first run: unchanged data then gives the same train/val split again.
        _stratified_take(df, cfg.test_ratio, rng)
        in_test = df["text_hash"].isin(set(test["text_hash"]))
        report["test_frozen"] = True
        report["rows_held_out_as_test_duplicates"] = int(in_test.sum())
        rest = df[~in_test]
        val_ratio = cfg.val_ratio / (1 - cfg.test_ratio)
    else:
        take_test = _stratified_take(df, cfg.test_ratio, rng)
        test, rest = df[take_test], df[~take_test]
        report["test_frozen"] = False
        val_ratio = cfg.val_ratio / (1 - cfg.test_ratio)
    take_val = _stratified_take(rest, val_ratio, rng)
    splits = {"train": rest[~take_val], "val": rest[take_val], "test": test}
    splits = {k: v.sort_values("id").reset_index(drop=True) for k, v in splits.items()}
    labels = sorted(df["label"].unique())
    for name, part in splits.items():
        counts = part["label"].value_counts()
        report[name] = {
            "rows": int(len(part)),
            "sha256": content_hash(part),
            "per_class": {lab: int(counts.get(lab, 0)) for lab in labels},
        }
    return splits, report


def read_frozen_test(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None
