"""Stratified train/val/test split with a frozen test set.

The test split is created once. Later runs keep it as it is (the same rows, identified by the
content hash of their preprocessed text) and split only the remaining rows into train and val,
so that every model version, champion and challenger alike, is scored on the same test set.
Rows whose text is already in the frozen test set never reach train or val. Rows labeled from served
predictions (`heara review export`, ids starting with `review-`) never reach test: once it is frozen new
rows only go to train and val, and a first split or a re-split leaves them out of its test draw.

Small classes: a class gets a test row only from three rows on (one each for train, val and test);
with fewer (possible with a low validate.min_rows_per_class, or after preprocessing removed duplicates)
its rows go to train, and to val when it has two, and the report lists it in `classes_not_in_test`
(and `classes_not_in_val`) with the reason. A class first seen after the test split was frozen has no
test rows until a re-split (split.resplit=true / --resplit); it is listed there too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import SplitConfig
from training.data.labels import indicator, label_counts
from training.errors import DataError

PRODUCTION_ID_PREFIX = "review-"  # ids of rows labeled from served predictions (heara review export)


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


def _stratified_take(
    df: pd.DataFrame, ratio: float, rng: np.random.Generator, *, leave: int = 1
) -> pd.Series:
    """Boolean mask choosing round(ratio * n) rows of each class, at least 1 and at most n - `leave`;
    a class of `leave` rows or fewer gives none (split_frame reports it).

    Every class draws its permutation even when it gives no rows, so that the generator's state after
    the draw depends only on the class sizes (the frozen-test rerun relies on it)."""
    take = pd.Series(False, index=df.index)
    for _, idx in df.groupby("label").groups.items():
        idx = np.array(sorted(idx))
        n = min(max(1, int(round(len(idx) * ratio))), len(idx) - leave)
        order = rng.permutation(idx)
        if n > 0:
            take[order[:n]] = True
    return take


def _stratified_test_take(df: pd.DataFrame, ratio: float, rng: np.random.Generator) -> pd.Series:
    """The test draw: two rows of every class stay behind (one for val, one for train), so a class
    reaches the test split from three rows on."""
    return _stratified_take(df, ratio, rng, leave=2)


def _classes_missing(report: dict, split: str, why: str) -> dict[str, str]:
    """{class: why} for the classes with no rows in `split` (report: split_frame's, per_class filled)."""
    names = ("train", "val", "test")
    return {
        lab: why.format(rows=sum(report[s]["per_class"][lab] for s in names))
        for lab, n in report[split]["per_class"].items()
        if n == 0
    }


def _iterative_take(df: pd.DataFrame, ratio: float, rng: np.random.Generator) -> pd.Series:
    """Boolean mask choosing about `ratio` of the rows of a multi-label table, stratified label by
    label: iterative stratification (Sechidis, Tsoumakas & Vlahavas 2011, "On the stratification of
    multi-label data").

    The rarest label's rows are placed first, each into the side (taken or kept) that still wants the
    most of that label, then of rows; ties are drawn from `rng`. A label with at least three rows is
    wanted at least once on the taken side, so every such label reaches the test split.
    Our own ~30 lines rather than the iterative-stratification package: that package offers k-fold
    splitters over a global random state, and the frozen test split needs one seeded draw whose
    generator the val draw continues (split_frame)."""
    labels = sorted(label_counts(df["label"], True))
    y = indicator(df["label"], labels) > 0
    n = len(y)
    counts = y.sum(0).astype(float)
    taken = np.rint(counts * ratio)
    taken = np.where(counts >= 3, np.maximum(taken, 1), taken)
    demand = np.stack([taken, counts - taken])  # [side, label]: 0 = taken, 1 = kept
    rows_wanted = np.array([round(n * ratio), n - round(n * ratio)], dtype=float)
    side = np.full(n, -1)
    while (side < 0).any():
        left = (y & (side < 0)[:, None]).sum(0)
        live = np.flatnonzero(left > 0)
        label = live[np.argmin(left[live] + rng.random(len(live)) * 0.5)]  # rarest first, ties at random
        for i in rng.permutation(np.flatnonzero(y[:, label] & (side < 0))):
            want = demand[:, label]
            sides = np.flatnonzero(want == want.max())
            if len(sides) > 1:
                sides = sides[rows_wanted[sides] == rows_wanted[sides].max()]
            j = int(sides[0] if len(sides) == 1 else rng.choice(sides))
            side[i] = j
            demand[j, y[i]] -= 1
            rows_wanted[j] -= 1
    return pd.Series(side == 0, index=df.index)


def split_frame(
    df: pd.DataFrame,
    cfg: SplitConfig,
    frozen_test: pd.DataFrame | None = None,
    *,
    multilabel: bool = False,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Preprocessed rows -> {"train", "val", "test"} and a report.

    `frozen_test`: an existing test split; when given (and cfg.resplit is false) it is kept as it is.
    `multilabel`: the label column holds label sets (training/data/labels.py); the splits are drawn by
    iterative stratification instead of class by class.
    """
    take = _iterative_take if multilabel else _stratified_take
    draw_test = _iterative_take if multilabel else _stratified_test_take
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
        unknown = sorted(
            set(label_counts(test["label"], multilabel)) - set(label_counts(df["label"], multilabel))
        )
        if unknown:
            raise DataError(
                f"the frozen test split has labels {unknown} that the data no longer has; "
                "re-split explicitly (split.resplit=true / --resplit)",
                field="label",
            )
        # Draw (and drop) the test selection anyway, so that the generator reaches the val draw in the
        # same state as on the first run: unchanged data then gives the same train/val split again.
        draw_test(df, cfg.test_ratio, rng)
        in_test = df["text_hash"].isin(set(test["text_hash"]))
        report["test_frozen"] = True
        report["rows_held_out_as_test_duplicates"] = int(in_test.sum())
        rest = df[~in_test]
        val_ratio = cfg.val_ratio / (1 - cfg.test_ratio)
    else:
        # Rows reviewed from production stay out of test: the test split is the fixed yardstick every
        # version is compared on, and production's own yardstick is the review holdout. Drawn over all
        # rows first, so the generator's state (and the val draw) does not depend on them.
        take_test = draw_test(df, cfg.test_ratio, rng) & ~df["id"].astype(str).str.startswith(
            PRODUCTION_ID_PREFIX
        )
        test, rest = df[take_test], df[~take_test]
        report["test_frozen"] = False
        val_ratio = cfg.val_ratio / (1 - cfg.test_ratio)
    take_val = take(rest, val_ratio, rng)
    splits = {"train": rest[~take_val], "val": rest[take_val], "test": test}
    splits = {k: v.sort_values("id").reset_index(drop=True) for k, v in splits.items()}
    labels = sorted(label_counts(df["label"], multilabel))
    for name, part in splits.items():
        counts = label_counts(part["label"], multilabel)
        report[name] = {
            "rows": int(len(part)),
            "sha256": content_hash(part),
            "per_class": {lab: int(counts.get(lab, 0)) for lab in labels},
        }
    report["classes_not_in_test"] = _classes_missing(
        report,
        "test",
        "not in the frozen test split (first seen after it was frozen, or too small then): no test rows "
        "until a re-split (split.resplit=true / --resplit)"
        if report["test_frozen"]
        else "{rows} rows: a test row needs 3 (one each for train, val and test)",
    )
    report["classes_not_in_val"] = _classes_missing(
        report, "val", "{rows} rows: a val row needs 2 besides any test rows (one for train)"
    )
    return splits, report


def read_frozen_test(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None
