"""The frozen split of multi-label rows: iterative stratification, every label in test, deterministic."""

import numpy as np
import pandas as pd

from training.config import SplitConfig
from training.data.labels import LABEL_JOIN, label_counts
from training.data.split import split_frame

LABELS = ["기쁨", "슬픔", "분노", "불안", "외로움", "피로"]


def _rows(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weights = np.array([0.4, 0.25, 0.15, 0.1, 0.07, 0.03])
    rows = []
    for i in range(n):
        k = rng.integers(1, 4)
        picked = sorted(rng.choice(len(LABELS), size=k, replace=False, p=weights), key=int)
        rows.append(
            {"id": f"r{i:04d}", "text": f"문장 {i}", "label": LABEL_JOIN.join(LABELS[j] for j in picked)}
        )
    # A label on exactly three rows still reaches the test split.
    for i in range(3):
        rows.append({"id": f"rare{i}", "text": f"드문 문장 {i}", "label": f"기쁨{LABEL_JOIN}놀람"})
    return pd.DataFrame(rows)


def test_every_label_keeps_its_share_in_each_split_and_rare_labels_reach_test():
    df = _rows()
    splits, report = split_frame(df, SplitConfig(), multilabel=True)
    assert sum(len(p) for p in splits.values()) == len(df)
    assert not set(splits["test"]["id"]) & set(splits["train"]["id"])
    total = label_counts(df["label"], True)
    test = label_counts(splits["test"]["label"], True)
    for lab, n in total.items():
        assert test[lab] >= 1, lab
        if n >= 40:  # frequent labels: within a few rows of 15 %
            assert abs(test[lab] - 0.15 * n) <= max(2, 0.05 * n), (lab, test[lab], n)
    assert report["test"]["per_class"]["놀람"] >= 1
    assert set(report["train"]["per_class"]) == set(total)
    # Every row keeps all of its labels.
    merged = pd.concat(splits.values()).set_index("id")["label"]
    assert (merged.loc[df["id"]].to_numpy() == df["label"].to_numpy()).all()


def test_the_split_depends_on_content_and_seed_only_and_the_test_split_stays_frozen():
    df = _rows()
    a, _ = split_frame(df, SplitConfig(), multilabel=True)
    b, _ = split_frame(df.sample(frac=1, random_state=3), SplitConfig(), multilabel=True)
    assert all(a[k]["id"].tolist() == b[k]["id"].tolist() for k in a)
    c, _ = split_frame(df, SplitConfig(seed=7), multilabel=True)
    assert c["test"]["id"].tolist() != a["test"]["id"].tolist()
    # Re-running with the frozen test split and new rows keeps the test rows and adds none to it.
    more = pd.concat(
        [df, _rows(40, seed=9).assign(id=lambda d: "new" + d["id"], text=lambda d: "새 " + d["text"])]
    )
    d, report = split_frame(more, SplitConfig(), frozen_test=a["test"], multilabel=True)
    assert report["test_frozen"] and d["test"]["id"].tolist() == a["test"]["id"].tolist()
    assert len(d["train"]) + len(d["val"]) == len(more) - len(a["test"])
