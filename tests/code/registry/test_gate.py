"""The promotion gate's rule (training/registry/gate.py) on made-up scores: no MLflow, no model.

The bootstrap is injected, so each test states the CI it wants instead of hoping resampling gives it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config import PromoteConfig
from training.registry.gate import Decision, ModelScore, decide, decision_record, score

LABELS = ["normal", "emergency", "confusion", "distress"]
Y = np.array(["normal", "emergency", "confusion", "distress"] * 5)
CFG = PromoteConfig(
    min_delta=0.01,
    min_f1=0.5,
    require_ci=True,
    ci_level=0.9,
    bootstrap_samples=200,
    max_class_drop=0.05,
    latency_budget_ms=50.0,
)
CHAMPION_CHECKS = {"min_delta", "ci_above_zero", "class_drop", "latency"}


def model(
    version: int, f1: float, *, latency: float = 10.0, per_class: dict[str, float] | None = None
) -> ModelScore:
    return ModelScore(
        version=version,
        macro_f1=f1,
        per_class_f1=per_class or dict.fromkeys(LABELS, f1),
        latency_p95_ms=latency,
        predictions=Y.copy(),
    )


class FakeBootstrap:
    """Returns a fixed (delta, lo, hi) and records how it was called."""

    def __init__(self, delta: float, lo: float, hi: float) -> None:
        self.result = (delta, lo, hi)
        self.calls: list[dict] = []

    def __call__(self, y, pred_a, pred_b, n, level, seed):
        self.calls.append({"y": y, "a": pred_a, "b": pred_b, "n": n, "level": level, "seed": seed})
        return self.result


def never_called(*args, **kwargs):
    raise AssertionError("no champion: the gate must not bootstrap")


# --- no champion yet ------------------------------------------------------------------------------


def test_first_champion_is_promoted_when_it_reaches_min_f1() -> None:
    d = decide(CFG, model(1, 0.5), None, Y, bootstrap=never_called)
    assert (d.promote, d.forced, d.challenger, d.champion_before) == (True, False, 1, None)
    assert d.checks == {"min_f1": True, "latency": True}
    assert d.reason.startswith("first champion; no champion yet; macro-F1 0.5000 >= min_f1 0.5")


def test_first_champion_is_refused_below_min_f1() -> None:
    d = decide(CFG, model(1, 0.49), None, Y, bootstrap=never_called)
    assert not d.promote and not d.forced
    assert d.checks == {"min_f1": False, "latency": True}
    assert d.reason.startswith("refused: min_f1 failed; no champion yet; macro-F1 0.4900 < min_f1 0.5")


def test_first_champion_is_refused_over_the_latency_budget() -> None:
    d = decide(CFG, model(1, 0.9, latency=50.1), None, Y, bootstrap=never_called)
    assert not d.promote
    assert d.checks == {"min_f1": True, "latency": False}
    assert d.reason.startswith("refused: latency failed;")


def test_first_champion_at_exactly_the_latency_budget_passes() -> None:
    assert decide(CFG, model(1, 0.9, latency=50.0), None, Y).promote


# --- against a champion ---------------------------------------------------------------------------


def test_better_challenger_is_promoted_and_every_check_reported() -> None:
    boot = FakeBootstrap(0.1, 0.02, 0.2)
    champion, challenger = model(3, 0.7), model(4, 0.8)
    d = decide(CFG, challenger, champion, Y, bootstrap=boot)
    assert (d.promote, d.forced, d.challenger, d.champion_before) == (True, False, 4, 3)
    assert d.checks == dict.fromkeys(CHAMPION_CHECKS, True)
    assert d.reason.startswith(
        "all checks passed; macro-F1 0.7000 -> 0.8000 (delta +0.1000, 90% CI [+0.0200, +0.2000])"
    )
    # the bootstrap compares champion (a) with challenger (b) on the same rows, with the configured settings
    [call] = boot.calls
    assert call["a"] is champion.predictions and call["b"] is challenger.predictions and call["y"] is Y
    assert (call["n"], call["level"], call["seed"]) == (200, 0.9, 0)


@pytest.mark.parametrize(("delta", "promote"), [(0.0099, False), (0.01, True)])
def test_min_delta(delta: float, promote: bool) -> None:
    d = decide(CFG, model(2, 0.7 + delta), model(1, 0.7), Y, bootstrap=FakeBootstrap(delta, 0.001, 0.05))
    assert d.promote is promote
    assert {k for k, ok in d.checks.items() if not ok} == (set() if promote else {"min_delta"})


@pytest.mark.parametrize(
    ("lo", "require_ci", "promote"),
    [
        (-0.01, True, False),  # the CI reaches below zero: the improvement may be noise
        (0.0, True, False),  # the lower bound must lie above 0, not on it
        (0.001, True, True),
        (-0.01, False, True),  # the CI is reported but not required
    ],
)
def test_ci_lower_bound(lo: float, require_ci: bool, promote: bool) -> None:
    cfg = CFG.model_copy(update={"require_ci": require_ci})
    d = decide(cfg, model(2, 0.8), model(1, 0.7), Y, bootstrap=FakeBootstrap(0.1, lo, 0.2))
    assert d.promote is promote
    assert d.checks["ci_above_zero"] is promote
    assert d.metrics["ci_low"] == lo
    if not promote:
        assert d.reason.startswith("refused: ci_above_zero failed;")


def test_class_drop_names_the_worst_class() -> None:
    champion = model(1, 0.7, per_class={"normal": 0.9, "emergency": 0.8, "confusion": 0.5, "distress": 0.6})
    challenger = model(
        2, 0.8, per_class={"normal": 0.99, "emergency": 0.72, "confusion": 0.9, "distress": 0.58}
    )
    d = decide(CFG, challenger, champion, Y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    assert not d.promote
    assert d.checks == {"min_delta": True, "ci_above_zero": True, "class_drop": False, "latency": True}
    assert "worst class drop emergency +0.0800" in d.reason
    assert d.metrics["max_class_drop"] == pytest.approx(0.08)


def test_class_drop_within_the_limit_passes() -> None:
    champion = model(1, 0.7, per_class={"normal": 0.9, "emergency": 0.8, "confusion": 0.5, "distress": 0.6})
    # 0.76, not 0.75: 0.8 - 0.75 is 0.05000000000000004 in floats, over a 0.05 limit
    challenger = model(
        2, 0.8, per_class={"normal": 0.99, "emergency": 0.76, "confusion": 0.9, "distress": 0.6}
    )
    d = decide(CFG, challenger, champion, Y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    assert d.promote and d.checks["class_drop"]
    assert "worst class drop emergency +0.0400" in d.reason


def test_limits_are_inclusive_despite_float_noise() -> None:
    """A drop of exactly max_class_drop and a gain of exactly min_delta pass (0.8 - 0.75 is
    0.05000000000000004 in floats; the gate compares the rounded figures it records)."""
    champion = model(1, 0.7, per_class={"normal": 0.9, "emergency": 0.8, "confusion": 0.5, "distress": 0.6})
    challenger = model(
        2, 0.8, per_class={"normal": 0.99, "emergency": 0.75, "confusion": 0.9, "distress": 0.6}
    )
    d = decide(CFG, challenger, champion, Y, bootstrap=FakeBootstrap(CFG.min_delta, 0.001, 0.15))
    assert d.checks["class_drop"] and d.checks["min_delta"] and d.promote


def test_a_class_the_challenger_lacks_counts_as_f1_zero() -> None:
    champion = model(1, 0.7)
    challenger = model(2, 0.8, per_class={"normal": 0.9, "emergency": 0.9, "confusion": 0.9})
    d = decide(CFG, challenger, champion, Y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    assert not d.checks["class_drop"] and "worst class drop distress +0.7000" in d.reason


def test_class_drop_ignores_classes_with_few_test_rows_and_says_so() -> None:
    # "normal" has 5 test rows, the others 2: a drop of 0.5 on 2 rows is one row, which is noise
    y = np.array(["normal"] * 5 + ["emergency", "confusion", "distress"] * 2)
    per_class = {"normal": 0.9, "emergency": 0.9, "confusion": 0.9, "distress": 0.9}
    champion = model(1, 0.7, per_class=per_class)
    challenger = model(2, 0.8, per_class={**per_class, "normal": 0.88, "emergency": 0.4})
    cfg = CFG.model_copy(update={"min_class_support": 5})
    d = decide(cfg, challenger, champion, y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    assert d.promote and d.checks["class_drop"]
    assert (
        "worst class drop normal +0.0200 (per-class guard over 1 of 4 classes; 3 with < 5 test rows ignored)"
        in d.reason
    )
    assert (d.metrics["class_guard_classes"], d.metrics["class_guard_ignored"]) == (1.0, 3.0)
    # counted again with every class guarded, the same challenger is refused
    d = decide(
        cfg.model_copy(update={"min_class_support": 2}),
        challenger,
        champion,
        y,
        bootstrap=FakeBootstrap(0.1, 0.05, 0.15),
    )
    assert not d.checks["class_drop"] and "worst class drop emergency +0.5000" in d.reason
    assert "ignored" not in d.reason and d.metrics["class_guard_ignored"] == 0.0


def test_no_class_with_enough_test_rows_means_no_class_guard() -> None:
    y = np.array([f"c{i:03d}" for i in range(359)] * 2)  # seed 001's 359 categories, 2 test rows each
    labels = sorted(set(y))
    champion = model(1, 0.7, per_class=dict.fromkeys(labels, 1.0))
    challenger = model(2, 0.8, per_class=dict.fromkeys(labels, 0.0))
    d = decide(CFG, challenger, champion, y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    assert d.checks["class_drop"] and "max_class_drop" not in d.metrics
    assert "no per-class guard: all 359 classes have < 5 test rows (promote.min_class_support)" in d.reason
    assert (d.metrics["class_guard_classes"], d.metrics["class_guard_ignored"]) == (0.0, 359.0)


def test_latency_budget_against_a_champion() -> None:
    d = decide(CFG, model(2, 0.8, latency=80.0), model(1, 0.7), Y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    assert not d.promote
    assert d.checks == {"min_delta": True, "ci_above_zero": True, "class_drop": True, "latency": False}
    assert d.reason.startswith("refused: latency failed;") and "p95 80.0 ms" in d.reason


def test_all_failed_checks_are_named() -> None:
    d = decide(CFG, model(2, 0.6, latency=99.0), model(1, 0.7), Y, bootstrap=FakeBootstrap(-0.1, -0.2, 0.0))
    assert d.checks == dict.fromkeys(CHAMPION_CHECKS, False)
    assert d.reason.startswith("refused: min_delta, ci_above_zero, class_drop, latency failed;")


# --- the baseline floor (require_beat_baseline) ---------------------------------------------------


def test_first_champion_at_or_above_the_baseline_is_promoted() -> None:
    for baseline in (0.6, 0.7):  # below it, and a tie: "at least" the baseline
        d = decide(CFG, model(1, 0.7), None, Y, bootstrap=never_called, baseline_macro_f1=baseline)
        assert d.promote and not d.forced
        assert d.checks == {"min_f1": True, "beats_baseline": True, "latency": True}
        assert d.metrics["baseline_macro_f1"] == baseline
        assert f"challenger macro-F1 0.7000 >= baseline {baseline:.4f}" in d.reason


def test_first_champion_below_the_baseline_is_refused_with_both_figures() -> None:
    d = decide(CFG, model(1, 0.6), None, Y, bootstrap=never_called, baseline_macro_f1=0.8475)
    assert not d.promote and not d.forced
    assert d.checks == {"min_f1": True, "beats_baseline": False, "latency": True}
    assert d.reason.startswith(
        "refused: beats_baseline failed; no champion yet; macro-F1 0.6000 >= min_f1 0.5"
    )
    assert "challenger macro-F1 0.6000 < baseline 0.8475" in d.reason
    assert d.metrics == {
        "challenger_macro_f1": 0.6,
        "challenger_latency_p95_ms": 10.0,
        "baseline_macro_f1": 0.8475,
    }


def test_challenger_that_beats_the_champion_but_not_the_baseline_is_refused() -> None:
    d = decide(
        CFG, model(2, 0.8), model(1, 0.7), Y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15), baseline_macro_f1=0.85
    )
    assert not d.promote
    assert d.checks == {**dict.fromkeys(CHAMPION_CHECKS, True), "beats_baseline": False}
    assert d.reason.startswith("refused: beats_baseline failed; macro-F1 0.7000 -> 0.8000")
    assert "challenger macro-F1 0.8000 < baseline 0.8500" in d.reason
    assert d.metrics["baseline_macro_f1"] == 0.85 and d.metrics["challenger_macro_f1"] == 0.8


def test_challenger_above_the_baseline_passes_every_check() -> None:
    d = decide(
        CFG, model(2, 0.8), model(1, 0.7), Y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15), baseline_macro_f1=0.8
    )
    assert d.promote and d.checks["beats_baseline"]
    assert (
        d.reason.startswith("all checks passed;")
        and "challenger macro-F1 0.8000 >= baseline 0.8000" in d.reason
    )


def test_the_baseline_floor_can_be_switched_off() -> None:
    off = CFG.model_copy(update={"require_beat_baseline": False})
    first = decide(off, model(1, 0.6), None, Y, baseline_macro_f1=0.9)
    later = decide(off, model(2, 0.8), model(1, 0.7), Y, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    for d in (first, later):
        assert d.promote and "beats_baseline" not in d.checks and "baseline" not in d.reason
    assert first.metrics["baseline_macro_f1"] == 0.9  # a figure given is still recorded, not required


def test_no_baseline_figure_means_no_baseline_check() -> None:
    """The step scores the baseline whenever the check is on; a caller without one gets the other checks."""
    d = decide(CFG, model(1, 0.6), None, Y)
    assert CFG.require_beat_baseline and "beats_baseline" not in d.checks and d.promote


def test_force_overrides_the_baseline_floor_and_keeps_both_figures() -> None:
    d = decide(CFG, model(1, 0.6), None, Y, force=True, baseline_macro_f1=0.8)
    assert d.promote and d.forced and d.checks["beats_baseline"] is False
    assert d.reason.startswith("FORCED despite failed checks (refused: beats_baseline failed;")
    assert "challenger macro-F1 0.6000 < baseline 0.8000" in d.reason


# --- force, metrics, record -----------------------------------------------------------------------


def test_force_promotes_despite_failed_checks_and_records_it() -> None:
    d = decide(CFG, model(2, 0.6), model(1, 0.7), Y, force=True, bootstrap=FakeBootstrap(-0.1, -0.2, 0.0))
    assert d.promote and d.forced
    # the checks still say what failed
    assert d.checks == {"min_delta": False, "ci_above_zero": False, "class_drop": False, "latency": True}
    assert d.reason.startswith(
        "FORCED despite failed checks (refused: min_delta, ci_above_zero, class_drop failed;"
    )


def test_force_on_a_refused_first_champion() -> None:
    d = decide(CFG, model(1, 0.1), None, Y, force=True)
    assert d.promote and d.forced and d.checks["min_f1"] is False


def test_force_when_every_check_passes_is_not_recorded_as_forced() -> None:
    d = decide(CFG, model(2, 0.8), model(1, 0.7), Y, force=True, bootstrap=FakeBootstrap(0.1, 0.05, 0.15))
    assert d.promote and not d.forced
    assert d.reason.startswith("all checks passed;")


def test_metrics_are_rounded_floats() -> None:
    champion = model(1, 0.712345678, per_class=dict.fromkeys(LABELS, 0.7))
    challenger = model(2, 0.8123456789, latency=12.3456789, per_class=dict.fromkeys(LABELS, 0.8))
    d = decide(
        CFG,
        challenger,
        champion,
        Y,
        bootstrap=FakeBootstrap(np.float64(0.1000004999), np.float32(0.0212345678), 0.1987654321),
    )
    assert d.metrics == {
        "challenger_macro_f1": 0.812346,
        "challenger_latency_p95_ms": 12.345679,
        "champion_macro_f1": 0.712346,
        "delta_macro_f1": 0.1,
        "ci_low": 0.021235,
        "ci_high": 0.198765,
        "max_class_drop": -0.1,
        "class_guard_classes": 4.0,
        "class_guard_ignored": 0.0,
    }
    assert all(type(v) is float for v in d.metrics.values())  # JSON and MLflow take them as they are


def test_first_champion_metrics_hold_only_the_challenger() -> None:
    d = decide(CFG, model(1, 0.6666666666, latency=3.33333333), None, Y)
    assert d.metrics == {"challenger_macro_f1": 0.666667, "challenger_latency_p95_ms": 3.333333}


def test_decision_record_is_plain_data() -> None:
    d = decide(CFG, model(1, 0.6), None, Y)
    assert decision_record(d) == {
        "promote": True,
        "reason": d.reason,
        "forced": False,
        "challenger": 1,
        "champion_before": None,
        "checks": {"min_f1": True, "latency": True},
        "metrics": d.metrics,
    }
    assert isinstance(d, Decision)


def test_default_bootstrap_is_the_paired_one() -> None:
    """Without an injected bootstrap the real paired bootstrap runs (fast on 20 rows)."""
    champion = model(1, 0.5)
    champion.predictions = np.array(["normal"] * 20)
    d = decide(CFG.model_copy(update={"bootstrap_samples": 100}), model(2, 1.0), champion, Y)
    assert d.metrics["delta_macro_f1"] > 0 and d.metrics["ci_low"] <= d.metrics["delta_macro_f1"]


# --- score() --------------------------------------------------------------------------------------


class FakePredictor:
    """What `score` needs of a Predictor: labels, predict_proba(texts, preprocessed=True), latency_ms."""

    labels = ["normal", "emergency"]

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def predict_proba(self, texts, *, preprocessed=False):
        self.calls.append(("predict_proba", list(texts), preprocessed))
        # "도와줘" anywhere -> emergency; otherwise normal
        return np.array([[0.1, 0.9] if "도와줘" in t else [0.8, 0.2] for t in texts])

    def latency_ms(self, texts, n=100):
        self.calls.append(("latency_ms", list(texts), n))
        return {"p50": 1.0, "p95": 2.5}


def test_score_with_a_fake_predictor() -> None:
    test = pd.DataFrame(
        {
            "text": ["도와줘", "안녕", "도와줘 빨리", "밥 먹자"],
            "label": ["emergency", "normal", "normal", "normal"],  # the third is a miss
        }
    )
    predictor = FakePredictor()
    s = score(predictor, version=7, test=test, labels=["normal", "emergency"], latency_n=5)
    assert s.version == 7
    assert s.predictions.tolist() == ["emergency", "normal", "emergency", "normal"]
    # normal: precision 1, recall 2/3 -> 0.8; emergency: precision 1/2, recall 1 -> 2/3
    assert s.per_class_f1 == pytest.approx({"normal": 0.8, "emergency": 2 / 3})
    assert s.macro_f1 == pytest.approx((0.8 + 2 / 3) / 2)
    assert s.latency_p95_ms == 2.5
    assert predictor.calls == [
        ("predict_proba", test["text"].tolist(), True),
        ("latency_ms", test["text"].tolist(), 5),
    ]


class BusyMachinePredictor(FakePredictor):
    """Latency p95 per measurement, in order: a busy moment, then the model's real speed."""

    def __init__(self, p95s: list[float]) -> None:
        super().__init__()
        self.p95s = list(p95s)

    def latency_ms(self, texts, n=100):
        self.calls.append(("latency_ms", list(texts), n))
        return {"p50": 1.0, "p95": self.p95s.pop(0)}


def test_score_measures_latency_again_when_over_budget() -> None:
    test = pd.DataFrame({"text": ["안녕", "밥"], "label": ["normal", "normal"]})
    busy_once = BusyMachinePredictor([182.0, 4.0, 99.0])
    assert (
        score(busy_once, 1, test, ["normal", "emergency"], latency_n=2, latency_budget_ms=50).latency_p95_ms
        == 4.0
    )
    assert [c[0] for c in busy_once.calls].count("latency_ms") == 2  # within budget: no third measurement
    slow = BusyMachinePredictor([90.0, 80.0, 85.0, 1.0])
    assert (
        score(slow, 1, test, ["normal", "emergency"], latency_n=2, latency_budget_ms=50).latency_p95_ms
        == 80.0
    )
    assert [c[0] for c in slow.calls].count("latency_ms") == 3  # a slow model stays slow: refused on its best
    fast = BusyMachinePredictor([3.0, 1.0])
    assert (
        score(fast, 1, test, ["normal", "emergency"], latency_n=2, latency_budget_ms=50).latency_p95_ms == 3.0
    )


def test_score_leaves_out_a_label_neither_in_the_test_rows_nor_predicted() -> None:
    # As `heara evaluate` and the baseline count macro-F1: a class without test rows (a rare class kept
    # for training, validate.min_rows_per_class < 3) must not pull the gate's figure below theirs.
    test = pd.DataFrame({"text": ["안녕", "밥"], "label": ["normal", "normal"]})
    s = score(FakePredictor(), 1, test, labels=["normal", "emergency", "distress"], latency_n=1)
    assert s.per_class_f1 == {"normal": 1.0, "emergency": 0.0, "distress": 0.0}
    assert s.macro_f1 == pytest.approx(1.0)


def _holdout(f1: float, lo: float, hi: float, rows: int = 150) -> dict:
    return {
        "rows": rows,
        "enough": True,
        "macro_f1": f1,
        "ci_low": lo,
        "ci_high": hi,
        "note": f"production {f1}",
    }


def test_the_production_holdout_is_reported_and_blocks_only_when_asked() -> None:
    boot = FakeBootstrap(0.1, 0.05, 0.15)
    worse = {"challenger": _holdout(0.6, 0.55, 0.65), "champion": _holdout(0.75, 0.7, 0.8)}
    d = decide(CFG, model(2, 0.8), model(1, 0.7), Y, bootstrap=boot, production=worse)
    assert d.promote and "production_holdout" not in d.checks and "(not blocking)" in d.reason
    assert (
        d.metrics["challenger_production_macro_f1"] == 0.6
        and d.metrics["champion_production_macro_f1"] == 0.75
    )
    d = decide(
        CFG, model(2, 0.8), model(1, 0.7), Y, bootstrap=boot, production=worse, production_blocking=True
    )
    assert not d.promote and d.checks["production_holdout"] is False
    close = {"challenger": _holdout(0.7, 0.64, 0.76), "champion": _holdout(0.75, 0.7, 0.8)}  # within noise
    assert decide(
        CFG, model(2, 0.8), model(1, 0.7), Y, bootstrap=boot, production=close, production_blocking=True
    ).promote
    few = {"challenger": {"rows": 20, "enough": False, "note": "not enough reviewed rows (20 < 100)"}}
    d = decide(CFG, model(2, 0.8), model(1, 0.7), Y, bootstrap=boot, production=few, production_blocking=True)
    assert d.promote and "not enough reviewed rows" in d.reason and "production_rows" not in d.metrics
    first = decide(
        CFG,
        model(1, 0.9),
        None,
        Y,
        production={"challenger": _holdout(0.3, 0.2, 0.4)},
        production_blocking=True,
    )
    assert not first.promote and first.checks["production_holdout"] is False  # below min_f1 in production
