"""The promotion gate's baseline figure is fitted once per split and read back after
(training/evaluation/baseline_cache.py); a changed split, or changed settings, fit it again."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from training.evaluation.baseline_cache import MAX_ENTRIES, cached_baseline

TRAIN = pd.DataFrame(
    {
        "text": ["도와줘 넘어졌어", "살려줘 아파", "밥 먹자", "날씨 좋네", "도와줘 빨리", "산책 가자"],
        "label": ["emergency", "emergency", "normal", "normal", "emergency", "normal"],
    }
)
TEST = pd.DataFrame({"text": ["도와줘 아파", "밥 좋네"], "label": ["emergency", "normal"]})


class CountingFit:
    """A stand-in for tfidf_baseline that counts its fits."""

    def __init__(self, f1: float = 0.75) -> None:
        self.f1, self.calls = f1, 0

    def __call__(self, train: pd.DataFrame, test: pd.DataFrame) -> dict:
        self.calls += 1
        return {"baseline": "counting", "train_rows": len(train), "test_macro_f1": self.f1}


def test_fitted_once_then_read_from_the_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache, fit = tmp_path / "baselines.json", CountingFit()
    first = cached_baseline(TRAIN, TEST, cache, fit=fit)
    assert (first["test_macro_f1"], first["cached"], fit.calls) == (0.75, False, 1)
    with caplog.at_level(logging.INFO, logger="heara.pipeline"):
        # rows in another order are the same split (content_hash is order-independent)
        again = cached_baseline(TRAIN.iloc[::-1], TEST, cache, fit=fit)
    assert (again["test_macro_f1"], again["cached"], fit.calls) == (0.75, True, 1)
    assert "reusing the cached macro-F1 0.7500" in caplog.text
    assert {k: again[k] for k in ("train_sha256", "test_sha256", "settings_sha256")} == {
        k: first[k] for k in ("train_sha256", "test_sha256", "settings_sha256")
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda tr, te: (tr.assign(label=tr["label"].iloc[::-1].to_numpy()), te),  # train labels changed
        lambda tr, te: (pd.concat([tr, tr.head(1).assign(text="새 문장")]), te),  # a train row added
        lambda tr, te: (tr, te.assign(text=["도와줘 넘어졌어", "밥 먹자"])),  # the test split changed
    ],
    ids=["train-labels", "train-row", "test"],
)
def test_a_changed_split_is_fitted_again(tmp_path: Path, change) -> None:
    cache, fit = tmp_path / "baselines.json", CountingFit()
    cached_baseline(TRAIN, TEST, cache, fit=fit)
    train, test = change(TRAIN, TEST)
    assert cached_baseline(train, test, cache, fit=fit)["cached"] is False and fit.calls == 2
    # both splits stay in the cache: going back to the first reads it
    assert cached_baseline(TRAIN, TEST, cache, fit=fit)["cached"] is True and fit.calls == 2


def test_changed_settings_fit_again(tmp_path: Path) -> None:
    cache, fit = tmp_path / "baselines.json", CountingFit()
    cached_baseline(TRAIN, TEST, cache, fit=fit, settings={"C": 5.0})
    assert cached_baseline(TRAIN, TEST, cache, fit=fit, settings={"C": 1.0})["cached"] is False
    assert fit.calls == 2


def test_the_real_baseline_is_cached(tmp_path: Path) -> None:
    """The default fit is training.evaluation.baseline.tfidf_baseline, through its current signature."""
    cache = tmp_path / "state" / "baselines.json"
    first = cached_baseline(TRAIN, TEST, cache)
    assert first["cached"] is False and 0 <= first["test_macro_f1"] <= 1
    again = cached_baseline(TRAIN, TEST, cache)
    assert again == {**first, "cached": True}
    [entry] = json.loads(cache.read_text(encoding="utf-8")).values()
    assert entry["result"]["test_macro_f1"] == first["test_macro_f1"] and entry["fitted_at"]


def test_an_unreadable_cache_is_fitted_again_and_rewritten(tmp_path: Path) -> None:
    cache, fit = tmp_path / "baselines.json", CountingFit()
    cache.write_text("{not json", encoding="utf-8")
    assert cached_baseline(TRAIN, TEST, cache, fit=fit)["cached"] is False
    assert cached_baseline(TRAIN, TEST, cache, fit=fit)["cached"] is True and fit.calls == 1


def test_the_cache_stays_small(tmp_path: Path) -> None:
    cache, fit = tmp_path / "baselines.json", CountingFit()
    for i in range(MAX_ENTRIES + 3):
        cached_baseline(TRAIN, TEST.assign(text=[f"도와줘 {i}", "밥"]), cache, fit=fit)
    assert len(json.loads(cache.read_text(encoding="utf-8"))) == MAX_ENTRIES
