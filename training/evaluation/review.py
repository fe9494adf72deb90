"""Which served predictions a person should label, and what the labeled ones say about a model.

Selection (`select_for_review`): a window's predictions are split into strata, each with a share of the
review budget (params.yaml `review:`):
- `random`: a uniform sample of the window, drawn first from every row, so nothing else decides which
  rows it holds. Its labeled rows are the production holdout: the only rows whose macro-F1 estimates
  the model's on real traffic without bias (the other strata over-sample the hard cases on purpose).
- `danger`: predictions the service flagged (serve.danger_labels); `danger_policy: all` queues every one
  beyond the budget (a missed emergency costs more than a reviewer's minute), `share` at most its share.
- `novel`: the rows the domain classifier (training/evaluation/drift.py) finds least like the model's
  reference: new topics, new ways of writing.
- `uncertain`: the smallest margin between the top two probabilities (uncertainty sampling, Lewis &
  Gale 1994); it also takes what a short stratum leaves (few danger rows, no novelty scores).

Holdout (`holdout_macro_f1`): a model's macro-F1 on the labeled random rows with a percentile
bootstrap 95 % interval (Efron & Tibshirani 1993), so that a small holdout reads as uncertain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.config import ReviewConfig

STRATA = ("danger", "uncertain", "novel", "random")  # the review queue's strata (serving/review_queue.py)


def margins(probs) -> np.ndarray:
    """Top-1 minus top-2 probability of each row: 0 is a coin toss, 1 certainty (1 with one label)."""
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0:
        return np.zeros(len(p), dtype=float)
    if p.shape[1] < 2:
        return np.ones(len(p), dtype=float)
    top2 = np.sort(p, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def stratum_sizes(budget: int, cfg: ReviewConfig, *, has_novelty: bool) -> dict[str, int]:
    """The budget split by shares (rounded; what rounding leaves goes to `uncertain`). Without novelty
    scores the novel share goes to `uncertain`; with danger_policy all the danger share does, since
    every danger row is queued beyond the budget."""
    sizes = {
        "random": int(round(budget * cfg.random_share)),
        "danger": int(round(budget * cfg.danger_share)) if cfg.danger_policy == "share" else 0,
        "novel": int(round(budget * cfg.novel_share)) if has_novelty else 0,
    }
    overflow = sum(sizes.values()) - budget
    for name in ("novel", "danger", "random"):  # rounding up three shares can exceed the budget
        cut = min(max(overflow, 0), sizes[name])
        sizes[name] -= cut
        overflow -= cut
    sizes["uncertain"] = budget - sum(sizes.values())
    return sizes


def select_for_review(
    probs,
    danger: Sequence[bool],
    cfg: ReviewConfig,
    *,
    novelty: Sequence[float] | None = None,
    seed: int = 0,
) -> list[tuple[int, str]]:
    """(row index, stratum) of the rows to queue, in stratum order: random, danger, novel, uncertain.

    probs: [n, labels] served probabilities; danger: the service's flag per row; novelty: the domain
    classifier's score per row (higher: less like the reference), or None. A row is picked once; a
    stratum short of candidates leaves its places to `uncertain`, the last to fill."""
    p = np.asarray(probs, dtype=float)
    n = len(p)
    flags = np.asarray(danger, dtype=bool)
    if len(flags) != n or (novelty is not None and len(novelty) != n):
        raise ValueError(
            f"select_for_review: {n} rows, {len(flags)} danger flags and novelty of other length"
        )
    budget = min(cfg.budget, n)
    sizes = stratum_sizes(budget, cfg, has_novelty=novelty is not None)
    taken = np.zeros(n, dtype=bool)
    picks: list[tuple[int, str]] = []
    margin = margins(p)

    def take(order: np.ndarray, count: int, stratum: str) -> int:
        chosen = [int(i) for i in order if not taken[i]][: max(count, 0)]
        taken[chosen] = True
        picks.extend((i, stratum) for i in chosen)
        return len(chosen)

    rng = np.random.default_rng(seed)
    take(rng.permutation(n), sizes["random"], "random")  # first, from all rows: the unbiased sample
    danger_rows = np.flatnonzero(flags)
    danger_rows = danger_rows[np.argsort(margin[danger_rows], kind="stable")]  # least certain first
    wanted = len(danger_rows) if cfg.danger_policy == "all" else sizes["danger"]
    got = take(danger_rows, wanted, "danger")
    short = sizes["danger"] - got if cfg.danger_policy == "share" else 0
    if novelty is not None:
        order = np.argsort(-np.asarray(novelty, dtype=float), kind="stable")
        short += sizes["novel"] - take(order, sizes["novel"], "novel")
    take(np.argsort(margin, kind="stable"), sizes["uncertain"] + max(short, 0), "uncertain")
    return picks


def _macro_f1(confusion: np.ndarray) -> float:
    """Macro-F1 over the classes that occur (as truth or prediction) in this confusion matrix."""
    tp = np.diag(confusion).astype(float)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    present = (support + predicted) > 0
    if not present.any():
        return float("nan")
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return float(f1.mean())


def holdout_macro_f1(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float | int]:
    """{n, macro_f1, ci_low, ci_high}: macro-F1 (classes seen in truth or prediction) and its percentile
    bootstrap 95 % interval over `resamples` resamples of the rows."""
    labels = sorted(set(map(str, y_true)) | set(map(str, y_pred)))
    index = {lab: i for i, lab in enumerate(labels)}
    t = np.array([index[str(v)] for v in y_true], dtype=int)
    p = np.array([index[str(v)] for v in y_pred], dtype=int)
    n, k = len(t), len(labels)
    if n == 0:
        return {"n": 0, "macro_f1": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    codes = t * k + p

    def score(rows: np.ndarray) -> float:
        return _macro_f1(np.bincount(codes[rows], minlength=k * k).reshape(k, k))

    rng = np.random.default_rng(seed)
    boot = np.array([score(rng.integers(0, n, n)) for _ in range(resamples)])
    low, high = np.nanpercentile(boot, [2.5, 97.5])
    return {"n": int(n), "macro_f1": score(np.arange(n)), "ci_low": float(low), "ci_high": float(high)}


def novelty(predictor, ref, texts: list[str], *, seed: int = 0, logged=None) -> np.ndarray:
    """Per row of `texts` (masked, as logged), how new it looks: the out-of-fold probability of the
    domain classifier telling the window's embedding projection from the reference's (drift.py).
    `logged`: the window's monitoring features (monitoring.Logged): only rows without a logged projection
    are embedded, and `predictor` may be None when none is missing."""
    from training.evaluation import drift
    from training.evaluation.monitoring import Logged, project
    from training.model.projection import as_stored

    logged = logged or Logged.from_rows(None, None, len(texts), len(ref.components))
    projection = logged.projection.copy()
    missing = np.flatnonzero(~logged.has_projection)
    if len(missing):
        clean = predictor.preprocessor([texts[i] for i in missing])
        projection[missing] = project(predictor.embed(clean, preprocessed=True), ref.components)
    domain = drift.domain_classifier_auc(as_stored(ref.projection), as_stored(projection), seed=seed)
    return np.asarray(domain["novelty"], float)
