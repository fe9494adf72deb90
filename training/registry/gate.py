"""The promotion gate's rule, pure: scores in, a decision out (the registry calls are in steps/promote.py).

Champion and challenger are scored on the same frozen test set in the same run. The challenger
becomes champion only if macro-F1 improves by at least `min_delta`, the lower bound of a paired
bootstrap CI of the difference is above 0 (when `require_ci`), no class's F1 drops by more than
`max_class_drop` among the classes with at least `min_class_support` test rows, and its p95 latency
stays within `latency_budget_ms`. (The F1 of a class with one or two test rows jumps by 0.5 or 1 on a
single row, which says nothing about the model; at seed 001's 359 categories most classes are that
small. The decision says how many classes the guard left out.) With no champion yet, the first
version reaching `min_f1` becomes champion. Either way, with `require_beat_baseline`, its
macro-F1 must also be at least the linear baseline's (TF-IDF + logistic regression) on the same test
split: a neural model that a linear one beats is not worth serving. Beside the test split, the production
holdout (the review queue's labeled random stratum, training/steps/review.py) is reported for both when it
has review.holdout_min_rows rows; with review.holdout_blocking it is a check: refused when the champion's
production macro-F1 lies above the challenger's whole 95 % interval (first champion: its production
macro-F1 must reach min_f1). Every decision is logged as an
MLflow run, as tags on the version and in the audit ledger; a refused or failed run never touches the
champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from training.config import PromoteConfig
from training.evaluation.explanations import GATE_METRIC


@dataclass
class ModelScore:
    version: int
    macro_f1: float
    per_class_f1: dict[str, float]
    latency_p95_ms: float
    predictions: np.ndarray = field(repr=False)


@dataclass
class Decision:
    promote: bool
    reason: str
    forced: bool
    challenger: int
    champion_before: int | None
    checks: dict[str, bool]
    metrics: dict[str, float]


def score(
    predictor,
    version: int,
    test: pd.DataFrame,
    labels: list[str],
    latency_n: int = 100,
    *,
    latency_budget_ms: float | None = None,
    latency_tries: int = 3,
) -> ModelScore:
    """Score one model version on the test split (texts are already preprocessed).

    Latency is the p95 of single-text predictions. Over `latency_budget_ms` it is measured again, up to
    `latency_tries` times, and the best p95 counts: a slow model is slow every time, while a machine
    that was busy for a moment (another job on a shared CPU) is not, and must not refuse a model."""
    probs = predictor.predict_proba(test["text"].tolist(), preprocessed=True)
    if getattr(predictor, "multilabel", False):  # each label at its threshold: predictions [rows, labels]
        from training.data.labels import decide, indicator

        pred = decide(
            probs[:, [predictor.labels.index(lab) for lab in labels]],
            [predictor.thresholds[predictor.labels.index(lab)] for lab in labels],
        )
        from training.evaluation.multilabel import macro_f1

        truth = indicator(test["label"], labels).astype(np.int8)
        per_class = f1_score(truth, pred, average=None, zero_division=0)
        macro = macro_f1(truth, pred)
    else:
        pred = np.array([predictor.labels[i] for i in probs.argmax(axis=1)])
        per_class = f1_score(test["label"], pred, labels=labels, average=None, zero_division=0)
        # Over the labels present in the test rows or the predictions, as `heara evaluate`, the baseline
        # and the bootstrap count it: a class with no test rows (a rare class kept for training) is not 0.
        macro = float(f1_score(test["label"], pred, average="macro", zero_division=0))
    p95 = predictor.latency_ms(test["text"].tolist(), n=latency_n)["p95"]
    for _ in range(latency_tries - 1):
        if latency_budget_ms is None or p95 <= latency_budget_ms:
            break
        p95 = min(p95, predictor.latency_ms(test["text"].tolist(), n=latency_n)["p95"])
    return ModelScore(
        version,
        macro,
        {lab: float(f) for lab, f in zip(labels, per_class)},
        p95,
        pred,
    )


def decide(
    cfg: PromoteConfig,
    challenger: ModelScore,
    champion: ModelScore | None,
    y_true: np.ndarray,
    *,
    force: bool = False,
    bootstrap=None,
    baseline_macro_f1: float | None = None,
    explanations: dict[str, float] | None = None,
    production: dict[str, dict] | None = None,
    production_blocking: bool = False,
) -> Decision:
    """Apply the gate. `bootstrap(y, pred_a, pred_b, n, level, seed) -> (delta, lo, hi)`.

    `baseline_macro_f1`: the linear baseline's macro-F1 on the same test split. With
    `cfg.require_beat_baseline` the challenger must reach it (check `beats_baseline`), first champion
    or not; None means it was not scored (the step scores it whenever the check is on), and then there
    is no such check.

    `explanations`: the challenger's faithfulness from `heara evaluate` (comprehensiveness at 20 % for its
    explanations and for a random ranking). Shown in the decision; a check (`faithful`) only with
    `cfg.min_comprehensiveness`, which then also refuses a version whose explanations were not measured.

    `production`: {"challenger": report, "champion": report or None}, each `holdout_report()`'s (rows,
    enough, macro_f1, ci_low, ci_high, note) on the production holdout; a check (`production_holdout`) only
    with `production_blocking` and enough rows."""
    metrics = {
        "challenger_macro_f1": challenger.macro_f1,
        "challenger_latency_p95_ms": challenger.latency_p95_ms,
    }
    floor, floor_text = {}, ""
    if baseline_macro_f1 is not None:
        metrics["baseline_macro_f1"] = baseline_macro_f1
    if baseline_macro_f1 is not None and cfg.require_beat_baseline:
        # "at least": a tie passes; compared as rounded as the decision records both figures
        beats = round(float(challenger.macro_f1), 6) >= round(float(baseline_macro_f1), 6)
        floor = {"beats_baseline": beats}
        floor_text = (
            f"; challenger macro-F1 {challenger.macro_f1:.4f} {'>=' if beats else '<'} "
            f"baseline {baseline_macro_f1:.4f}"
        )
    faith, faith_text = _faithfulness(cfg, explanations, metrics)
    prod, prod_text = _production(production, production_blocking, cfg.min_f1, metrics)
    floor = {**floor, **faith, **prod}
    floor_text += faith_text + prod_text
    if champion is None:
        checks = {
            "min_f1": challenger.macro_f1 >= cfg.min_f1,
            **floor,
            "latency": challenger.latency_p95_ms <= cfg.latency_budget_ms,
        }
        reason = (
            f"no champion yet; macro-F1 {challenger.macro_f1:.4f} "
            f"{'>=' if checks['min_f1'] else '<'} min_f1 {cfg.min_f1}{floor_text}"
        )
    else:
        if bootstrap is None and np.ndim(y_true) == 2:  # multi-label: 0/1 [rows, labels], rows resampled
            from training.evaluation.multilabel import paired_bootstrap_macro_f1 as bootstrap
        elif bootstrap is None:
            from training.evaluation.metrics import paired_bootstrap_macro_f1 as bootstrap
        delta, lo, hi = bootstrap(
            y_true,
            champion.predictions,
            challenger.predictions,
            n=cfg.bootstrap_samples,
            level=cfg.ci_level,
            seed=0,
        )
        # Rounded as the decision records them, so a drop of exactly max_class_drop (0.8 - 0.75 is
        # 0.05000000000000004 in floats) or a delta of exactly min_delta passes as documented.
        delta = round(float(delta), 6)
        metrics.update(
            champion_macro_f1=champion.macro_f1,
            delta_macro_f1=float(delta),
            ci_low=float(lo),
            ci_high=float(hi),
        )
        drops, guard_text = _class_drops(cfg, challenger, champion, y_true, metrics)
        worst = max(drops, key=drops.get) if drops else None
        if worst is not None:
            metrics["max_class_drop"] = float(drops[worst])
            guard_text = f"worst class drop {worst} {drops[worst]:+.4f}{guard_text}"
        checks = {
            "min_delta": delta >= cfg.min_delta,
            "ci_above_zero": (lo > 0) or not cfg.require_ci,
            "class_drop": worst is None or drops[worst] <= cfg.max_class_drop,
            **floor,
            "latency": challenger.latency_p95_ms <= cfg.latency_budget_ms,
        }
        failed = [k for k, ok in checks.items() if not ok]
        reason = (
            f"macro-F1 {champion.macro_f1:.4f} -> {challenger.macro_f1:.4f} (delta {delta:+.4f}, "
            f"{cfg.ci_level:.0%} CI [{lo:+.4f}, {hi:+.4f}]); {guard_text}"
            f"{floor_text}; p95 {challenger.latency_p95_ms:.1f} ms"
        )
        reason = (f"refused: {', '.join(failed)} failed; " if failed else "all checks passed; ") + reason
    if champion is None:
        failed = [k for k, ok in checks.items() if not ok]
        reason = (f"refused: {', '.join(failed)} failed; " if failed else "first champion; ") + reason
    ok = all(checks.values())
    if force and not ok:
        reason = f"FORCED despite failed checks ({reason})"
    return Decision(
        promote=ok or force,
        reason=reason,
        forced=force and not ok,
        challenger=challenger.version,
        champion_before=champion.version if champion else None,
        checks=checks,
        metrics={k: round(float(v), 6) for k, v in metrics.items()},
    )


def _class_drops(
    cfg: PromoteConfig,
    challenger: ModelScore,
    champion: ModelScore,
    y_true: np.ndarray,
    metrics: dict[str, float],
) -> tuple[dict[str, float], str]:
    """Each guarded class's F1 drop (champion - challenger, rounded as recorded), and what the reason says
    of the classes left out: those with fewer than `cfg.min_class_support` rows in `y_true`. The counts go
    into `metrics` (class_guard_classes, class_guard_ignored)."""
    if np.ndim(y_true) == 2:  # multi-label: a label's support is the rows that carry it
        support = dict(zip(champion.per_class_f1, np.asarray(y_true).sum(axis=0).tolist()))
    else:
        labels, counts = np.unique(np.asarray(y_true).astype(str), return_counts=True)
        support = dict(zip(labels.tolist(), counts.tolist()))
    guarded = [lab for lab in champion.per_class_f1 if support.get(lab, 0) >= cfg.min_class_support]
    total = len(champion.per_class_f1)
    ignored = total - len(guarded)
    metrics["class_guard_classes"] = len(guarded)
    metrics["class_guard_ignored"] = ignored
    drops = {
        lab: round(champion.per_class_f1[lab] - challenger.per_class_f1.get(lab, 0.0), 6) for lab in guarded
    }
    rows = f"< {cfg.min_class_support} test rows"
    if not guarded:
        return drops, f"no per-class guard: all {total} classes have {rows} (promote.min_class_support)"
    if ignored:
        return (
            drops,
            f" (per-class guard over {len(guarded)} of {total} classes; {ignored} with {rows} ignored)",
        )
    return drops, ""


COMPREHENSIVENESS = GATE_METRIC


def _faithfulness(
    cfg: PromoteConfig, explanations: dict[str, float] | None, metrics: dict[str, float]
) -> tuple[dict[str, bool], str]:
    """The explanations' figures into the decision's metrics and reason, and the optional check."""
    ours = (explanations or {}).get(COMPREHENSIVENESS)
    rand = (explanations or {}).get(COMPREHENSIVENESS + "_random")
    if ours is None or rand is None:
        if cfg.min_comprehensiveness is None:
            return {}, ""
        return {"faithful": False}, "; explanations' faithfulness not measured (heara evaluate)"
    metrics["challenger_comprehensiveness_20"] = ours
    metrics["challenger_comprehensiveness_20_random"] = rand
    text = f"; explanations: comprehensiveness@20% {ours:.3f} vs random {rand:.3f}"
    if cfg.min_comprehensiveness is None:
        return {}, text + " (not blocking)"
    ok = round(ours - rand, 6) >= cfg.min_comprehensiveness
    return {"faithful": ok}, text + f" (margin {'>=' if ok else '<'} {cfg.min_comprehensiveness})"


def _production(
    production: dict[str, dict] | None, blocking: bool, min_f1: float, metrics: dict[str, float]
) -> tuple[dict[str, bool], str]:
    """The production holdout's figures into the decision's metrics and reason, and the optional check."""
    ours = (production or {}).get("challenger")
    if not ours:
        return {}, ""
    if not ours.get("enough"):
        return {}, f"; production holdout: {ours['note']}"
    theirs = (production or {}).get("champion") or {}
    metrics.update(
        challenger_production_macro_f1=ours["macro_f1"],
        challenger_production_ci_low=ours["ci_low"],
        challenger_production_ci_high=ours["ci_high"],
        production_rows=ours["rows"],
    )
    text = f"; challenger {ours['note']}"
    if theirs.get("enough"):
        metrics["champion_production_macro_f1"] = theirs["macro_f1"]
        text += f", champion {theirs['macro_f1']:.3f}"
    if not blocking:
        return {}, text + " (not blocking)"
    ok = ours["ci_high"] >= theirs["macro_f1"] if theirs.get("enough") else ours["macro_f1"] >= min_f1
    return {"production_holdout": bool(ok)}, text


def decision_record(d: Decision) -> dict:
    return asdict(d)
