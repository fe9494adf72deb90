"""Picking predictions for review (training/evaluation/review.py): the strata's sizes, which rows each
takes, the seeded random slice, and the holdout's macro-F1 with its bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import Params, ReviewConfig
from training.evaluation.review import (
    holdout_macro_f1,
    margins,
    select_for_review,
    stratum_sizes,
)

CFG = ReviewConfig(budget=10, uncertain_share=0.4, danger_share=0.2, novel_share=0.2, random_share=0.2)


def window(n: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(3), size=n)


def test_margins_are_top1_minus_top2():
    assert margins([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2]]).tolist() == pytest.approx([0.2, 0.0])
    assert margins(np.ones((2, 1))).tolist() == [1.0, 1.0]


def test_sizes_follow_the_shares_and_short_strata_feed_the_uncertain_one():
    share = CFG.model_copy(update={"danger_policy": "share"})
    assert stratum_sizes(10, share, has_novelty=True) == {
        "random": 2,
        "danger": 2,
        "novel": 2,
        "uncertain": 4,
    }
    assert stratum_sizes(10, share, has_novelty=False) == {
        "random": 2,
        "danger": 2,
        "novel": 0,
        "uncertain": 6,
    }
    assert stratum_sizes(10, CFG, has_novelty=True)["danger"] == 0  # all: beyond the budget
    sizes = stratum_sizes(
        3,
        ReviewConfig(
            budget=3,
            uncertain_share=0.1,
            danger_share=0.3,
            novel_share=0.3,
            random_share=0.3,
            danger_policy="share",
        ),
        has_novelty=True,
    )
    assert sum(sizes.values()) == 3 and min(sizes.values()) >= 0


def test_each_stratum_takes_its_rows_once():
    probs = window()
    danger = np.zeros(100, bool)
    danger[[5, 17, 42]] = True
    novelty = np.linspace(0, 1, 100)  # the last rows are the most novel
    picks = select_for_review(probs, danger, CFG, novelty=novelty, seed=1)
    rows = [i for i, _ in picks]
    assert len(rows) == len(set(rows)) == 10 + 3 - sum(1 for i, s in picks if s == "random" and danger[i])
    by = {s: [i for i, t in picks if t == s] for s in ("random", "danger", "novel", "uncertain")}
    assert len(by["random"]) == 2 and set(by["danger"]) | {i for i in by["random"] if danger[i]} == {
        5,
        17,
        42,
    }
    rest = sorted(set(range(100)) - set(by["random"]) - set(by["danger"]))
    assert set(by["novel"]) == set(sorted(rest, key=lambda i: -novelty[i])[:2])
    left = [i for i in rest if i not in by["novel"]]
    m = margins(probs)
    assert set(by["uncertain"]) == set(sorted(left, key=lambda i: m[i])[:6])  # with the danger share


def test_the_random_slice_is_seeded_and_uniform():
    probs, danger = window(), np.zeros(100, bool)
    cfg = CFG.model_copy(
        update={"random_share": 1.0, "uncertain_share": 0.0, "danger_share": 0.0, "novel_share": 0.0}
    )
    first = select_for_review(probs, danger, cfg, seed=3)
    assert first == select_for_review(probs, danger, cfg, seed=3)
    assert first != select_for_review(probs, danger, cfg, seed=4)
    # Over many seeds every row is about equally likely: the random slice ignores the margins.
    hits = np.zeros(100)
    for seed in range(400):
        for i, _ in select_for_review(probs, danger, cfg, seed=seed):
            hits[i] += 1
    assert hits.min() > 10 and hits.max() < 75  # expected 40 per row


def test_danger_share_caps_the_flagged_rows_and_lends_what_it_does_not_use():
    probs = window()
    danger = np.zeros(100, bool)
    danger[:30] = True
    share = CFG.model_copy(update={"danger_policy": "share"})
    picks = select_for_review(probs, danger, share, seed=0)
    assert len(picks) == 10 and sum(s == "danger" for _, s in picks) == 2
    few = np.zeros(100, bool)
    picks = select_for_review(probs, few, share, seed=0)  # no danger rows: uncertain gets their places
    assert len(picks) == 10 and sum(s == "uncertain" for _, s in picks) == 8


def test_a_small_window_and_a_zero_budget():
    assert len(select_for_review(window(4), np.zeros(4, bool), CFG, seed=0)) == 4
    zero = CFG.model_copy(update={"budget": 0})
    flagged = np.array([True, False, False, False])
    assert select_for_review(window(4), flagged, zero, seed=0) == [(0, "danger")]  # all: beyond the budget
    with pytest.raises(ValueError, match="danger flags"):
        select_for_review(window(4), [True], CFG)


def test_shares_must_sum_to_one():
    with pytest.raises(Exception, match="sum to 1"):
        Params().override({"review": {"random_share": 0.5}})


def test_holdout_macro_f1_and_its_interval():
    truth = ["a"] * 50 + ["b"] * 50
    assert holdout_macro_f1(truth, truth, resamples=200)["macro_f1"] == 1.0
    pred = ["a"] * 40 + ["b"] * 10 + ["b"] * 40 + ["a"] * 10
    result = holdout_macro_f1(truth, pred, resamples=500, seed=0)
    assert result["n"] == 100 and result["macro_f1"] == pytest.approx(0.8)
    assert 0.65 < result["ci_low"] < 0.8 < result["ci_high"] < 0.92
    small = holdout_macro_f1(truth[::10], pred[::10], resamples=500, seed=0)
    assert small["ci_high"] - small["ci_low"] > result["ci_high"] - result["ci_low"]  # fewer rows, wider
    assert np.isnan(holdout_macro_f1([], [])["macro_f1"])
