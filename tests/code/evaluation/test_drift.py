"""Drift statistics (training/evaluation/drift.py): no drift reads as none, a shift reads as one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import f1_score

from training.evaluation import drift


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- PSI and KS
def test_psi_of_a_hand_computed_case():
    reference = np.arange(100.0)  # quartile edges 24.75, 49.5, 74.25: 25 % in each bin
    current = np.r_[np.full(40, 10.0), np.full(30, 30.0), np.full(20, 60.0), np.full(10, 90.0)]
    expected = (
        (0.4 - 0.25) * np.log(0.4 / 0.25)
        + (0.3 - 0.25) * np.log(0.3 / 0.25)
        + (0.2 - 0.25) * np.log(0.2 / 0.25)
        + (0.1 - 0.25) * np.log(0.1 / 0.25)
    )
    assert drift.psi(reference, current, bins=4) == pytest.approx(expected)
    assert drift.psi(reference, reference, bins=4) == 0.0


def test_psi_small_for_the_same_distribution_large_for_a_shift(rng):
    reference = rng.normal(size=5000)
    assert drift.psi(reference, rng.normal(size=5000)) < 0.02
    assert drift.psi(reference, rng.normal(0.5, 1, size=5000)) > 0.2
    # Values beyond the reference's range land in the open outer bins.
    assert drift.psi(reference, np.full(100, 50.0)) > 1.0


def test_psi_handles_ties_constants_nans_and_empty_sides():
    binary = np.r_[np.zeros(70), np.ones(30)]
    assert drift.psi(binary, binary) == 0.0
    assert drift.psi(binary, np.r_[np.zeros(30), np.ones(70)]) > 0.5
    constant = np.full(50, 2.0)
    assert drift.psi(constant, constant) == 0.0
    assert drift.psi(constant, np.full(10, 3.0)) > 1.0  # above a constant reference
    assert drift.psi(constant, np.full(10, 1.0)) > 1.0  # and below it
    assert drift.psi(np.r_[binary, np.nan], np.r_[binary, np.nan, np.nan]) == 0.0
    assert drift.psi([], [1.0]) == 0.0
    assert np.isfinite(drift.psi(binary, np.full(10, 7.0)))  # empty bins take an epsilon, not ln(0)


def test_ks_same_and_shifted(rng):
    reference = rng.normal(size=1000)
    stat, p = drift.ks(reference, rng.normal(size=1000))
    assert stat < 0.1 and p > 0.05
    stat, p = drift.ks(reference, rng.normal(1.0, 1, size=1000))
    assert stat > 0.3 and p < 1e-6
    assert drift.ks([np.nan], [1.0, 2.0]) == (0.0, 1.0)
    assert drift.ks([1.0, np.nan, 2.0], [1.0, 2.0]) == (0.0, 1.0)


# ---------------------------------------------------------------- predicted labels
def test_label_shift_same_shares_and_moved_shares():
    same = drift.label_shift([100, 200, 300], [50, 100, 150])
    assert same["chi2"] == pytest.approx(0.0) and same["p_value"] == pytest.approx(1.0)
    assert same["js"] == pytest.approx(0.0, abs=1e-7)
    moved = drift.label_shift([100, 200, 300], [300, 200, 100])
    assert moved["p_value"] < 1e-10 and moved["js"] > 0.2
    assert drift.label_shift([10, 0], [0, 10])["js"] == pytest.approx(1.0)  # disjoint shares


def test_label_shift_drops_unused_labels_and_needs_two():
    assert drift.label_shift([100, 0, 200], [50, 0, 100]) == pytest.approx(
        drift.label_shift([100, 200], [50, 100])
    )
    assert drift.label_shift([10, 0], [5, 0]) == {"chi2": 0.0, "p_value": 1.0, "js": 0.0}
    assert drift.label_shift([10, 5], [0, 0]) == {"chi2": 0.0, "p_value": 1.0, "js": 0.0}


# ---------------------------------------------------------------- MMD and the domain classifier
def test_mmd_same_distribution_is_not_significant(rng):
    result = drift.mmd_permutation(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)))
    assert result["p_value"] > 0.05
    assert abs(result["mmd2"]) < 0.01
    assert result["bandwidth"] > 0


def test_mmd_a_one_sd_mean_shift_is(rng):
    result = drift.mmd_permutation(rng.normal(size=(300, 8)), rng.normal(1.0, 1, size=(300, 8)))
    assert result["p_value"] < 0.01
    assert result["p_value"] == pytest.approx(1 / 201)  # no permutation reaches the observed
    assert result["mmd2"] > 0.1


def test_mmd_is_deterministic_given_the_seed_and_subsamples(rng):
    x, y = rng.normal(size=(400, 4)), rng.normal(0.2, 1, size=(500, 4))
    assert drift.mmd_permutation(x, y, seed=3) == drift.mmd_permutation(x, y, seed=3)
    small = drift.mmd_permutation(x, y, max_rows=50, n_permutations=20)
    assert small["p_value"] >= 1 / 21
    assert drift.mmd_permutation(np.ones((5, 2)), np.ones((5, 2)))["mmd2"] == pytest.approx(0.0)
    assert drift.mmd_permutation(x, y[:1])["p_value"] == 1.0
    one_column = drift.mmd_permutation(x[:, :1], y[:, :1])
    assert drift.mmd_permutation(x[:, 0], y[:, 0]) == pytest.approx(one_column)  # 1-D: one column


def test_domain_classifier_cannot_tell_the_same_distribution_apart(rng):
    result = drift.domain_classifier_auc(rng.normal(size=(500, 8)), rng.normal(size=(400, 8)))
    assert result["auc"] == pytest.approx(0.5, abs=0.1)
    assert result["novelty"].shape == (400,)


def test_domain_classifier_finds_a_shift_and_ranks_the_new_rows_first(rng):
    reference = rng.normal(size=(500, 8))
    assert drift.domain_classifier_auc(reference, rng.normal(1.0, 1, size=(500, 8)))["auc"] > 0.8
    # Half the window like the reference, half shifted: the shifted half looks newer.
    current = np.vstack([rng.normal(size=(200, 8)), rng.normal(1.5, 1, size=(200, 8))])
    result = drift.domain_classifier_auc(reference, current, seed=1)
    novelty = result["novelty"]
    assert novelty[200:].mean() > novelty[:200].mean() + 0.2
    assert drift.domain_classifier_auc(reference, current, seed=1)["auc"] == result["auc"]


def test_domain_classifier_with_too_few_rows_says_nothing(rng):
    result = drift.domain_classifier_auc(rng.normal(size=(50, 3)), rng.normal(size=(1, 3)))
    assert result["auc"] == 0.5 and result["novelty"].tolist() == [0.5]


# ---------------------------------------------------------------- calibration and estimated F1
def calibrated_sample(rng, n: int = 4000, k: int = 4, scale: float = 2.0):
    """Logits and labels drawn from softmax(logits): probabilities that mean what they say."""
    logits = rng.normal(0, scale, size=(n, k))
    probs = softmax(logits, axis=1)
    y = (probs.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return logits, np.minimum(y, k - 1)


def test_temperature_near_one_when_calibrated_above_one_when_over_confident(rng):
    logits, y = calibrated_sample(rng)
    assert drift.fit_temperature(logits, y) == pytest.approx(1.0, abs=0.15)
    assert drift.fit_temperature(3.0 * logits, y) == pytest.approx(3.0, rel=0.15)
    assert drift.fit_temperature(0.5 * logits, y) < 1.0


def test_temperature_on_probabilities_and_its_application(rng):
    logits, y = calibrated_sample(rng)
    over_confident = softmax(3.0 * logits, axis=1)
    t = drift.fit_temperature(drift.logits_from_probs(over_confident), y)
    assert t > 2.0
    fixed = drift.apply_temperature(drift.logits_from_probs(over_confident), t)
    assert fixed.sum(axis=1) == pytest.approx(np.ones(len(y)))
    assert (fixed.argmax(axis=1) == over_confident.argmax(axis=1)).all()  # accuracy never changes
    assert fixed.max(axis=1).mean() < over_confident.max(axis=1).mean()
    assert drift.apply_temperature(logits, 1.0) == pytest.approx(softmax(logits, axis=1))
    assert np.isfinite(drift.logits_from_probs([[1.0, 0.0]])).all()


def test_estimated_macro_f1_matches_the_realised_one_when_calibrated():
    gaps, over_gaps = [], []
    for seed in range(4):
        logits, y = calibrated_sample(np.random.default_rng(seed))
        probs = softmax(logits, axis=1)
        realised = f1_score(y, probs.argmax(axis=1), average="macro")
        gaps.append(drift.estimated_macro_f1(probs)["macro_f1"] - realised)
        over_gaps.append(drift.estimated_macro_f1(softmax(3.0 * logits, axis=1))["macro_f1"] - realised)
    assert abs(np.mean(gaps)) < 0.03
    assert np.mean(over_gaps) > 0.1  # over-confidence over-estimates: calibrate first


def test_estimated_macro_f1_by_hand():
    probs = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.2, 0.8, 0.0]])
    result = drift.estimated_macro_f1(probs)
    # class 0: TP 1.5, FP 0.5, FN 0.2; class 1: TP 0.8, FP 0.2, FN 0.5; class 2: no mass.
    assert result["per_class"][:2] == pytest.approx([3.0 / 3.7, 1.6 / 2.3])
    assert np.isnan(result["per_class"][2])
    assert result["macro_f1"] == pytest.approx((3.0 / 3.7 + 1.6 / 2.3) / 2)
    assert drift.estimated_macro_f1(np.eye(3))["macro_f1"] == 1.0


# ---------------------------------------------------------------- persistence
def test_persistent_alarm_k_of_m():
    assert drift.persistent_alarm([True, False, True], k=2, m=3)
    assert not drift.persistent_alarm([True, False, False, True], k=2, m=3)  # the first fell out
    assert drift.persistent_alarm([False, True], k=1, m=1)
    assert not drift.persistent_alarm([], k=1, m=3)
    assert drift.persistent_alarm([True, True], k=2, m=5)  # fewer windows than m: of those there
    with pytest.raises(ValueError, match="k=4, m=3"):
        drift.persistent_alarm([True], k=4, m=3)


def test_alarm_runs_is_the_state_after_each_window():
    flags = [True, False, True, True, False, False, False, True]
    runs = drift.alarm_runs(flags, k=2, m=3)
    assert runs == [False, False, True, True, True, False, False, False]
    assert runs == [drift.persistent_alarm(flags[: i + 1], 2, 3) for i in range(len(flags))]
    assert drift.alarm_runs([], 1, 1) == []
