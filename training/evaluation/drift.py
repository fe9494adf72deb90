"""Drift statistics: has what the model is sent, or what it answers, moved away from its reference?

Pure functions on numpy arrays, deterministic given a seed; training/evaluation/monitoring.py decides
which to run on what and when a window alarms. Written here rather than taken from a drift library:
Evidently's text descriptors do not read Hangul and Alibi Detect is no longer open source (BSL).

- One number per row (a confidence, a text descriptor):
  `psi`: the population stability index (credit scoring's classic, e.g. Siddiqi 2006, *Credit Risk
  Scorecards*) on the reference's quantile bins: an effect size that does not grow with the sample;
  `ks`: the two-sample Kolmogorov-Smirnov test (scipy): a p-value for "same distribution".
- Predicted labels: `label_shift`: a chi-squared test of the two count vectors and the Jensen-Shannon
  distance of the shares (Lin 1991), bounded in [0, 1] so one threshold fits any label set.
- Many numbers per row (the embeddings' projection):
  `mmd_permutation`: the kernel two-sample test of Gretton et al. 2012 (*A Kernel Two-Sample Test*,
  JMLR), unbiased MMD² with an RBF kernel at the median heuristic's bandwidth, p-value by permutation;
  `domain_classifier_auc`: a classifier told to tell the reference from the window (the "classifier
  two-sample test", Lopez-Paz & Oquab 2017); its ROC AUC is 0.5 when it cannot, and its out-of-fold
  probabilities rank the window's rows by how new they look (the review queue reads them).
- Performance without labels: `fit_temperature` / `apply_temperature`, temperature scaling (Guo et al.
  2017, *On Calibration of Modern Neural Networks*), so that probabilities mean what they say;
  `estimated_macro_f1`, confidence-based performance estimation (NannyML's CBPE idea, here for
  multiclass macro-F1): with calibrated probabilities, the expected confusion counts give the F1 that
  labels would show.
- Persistence: `persistent_alarm` / `alarm_runs`, k of the last m windows (the "k-out-of-m" rule of
  control charts), so one noisy window does not page anybody.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import jensenshannon
from scipy.special import log_softmax, softmax

PSI_EPSILON = 1e-4  # the share an empty bin counts as: ln(0) would make any PSI infinite
PROB_FLOOR = 1e-12  # probabilities are clipped to this before taking their log
TEMPERATURE_BOUNDS = (0.05, 20.0)  # wide: a temperature near a bound means the logits tell little


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


# ---------------------------------------------------------------- one number per row
def psi(reference, current, bins: int = 10) -> float:
    """Population stability index of `current` against `reference`: sum of (c - r) ln(c / r) over the
    reference's quantile bins, r and c being the two shares (an empty bin counts as PSI_EPSILON).

    Rule of thumb: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a large one. Tied quantiles
    (a discrete or constant descriptor) merge into one bin; values above the reference's largest get a
    bin of their own when the top bin would otherwise hold a single value (a constant reference then
    still tells values below, at and above it apart); the outer bins are open, so values outside the
    reference's range are counted. NaNs are dropped; 0.0 when either side is empty.
    """
    ref, cur = _finite(reference), _finite(current)
    if len(ref) == 0 or len(cur) == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    if len(edges) == 0 or edges[-1] == ref.max():
        edges = np.append(edges, np.nextafter(ref.max(), np.inf))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    r, c = np.maximum(r, PSI_EPSILON), np.maximum(c, PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def ks(reference, current) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov (statistic, p-value); NaNs dropped; (0.0, 1.0) if a side is empty."""
    ref, cur = _finite(reference), _finite(current)
    if len(ref) == 0 or len(cur) == 0:
        return 0.0, 1.0
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


# ---------------------------------------------------------------- predicted labels
def label_shift(ref_counts, cur_counts) -> dict[str, float]:
    """Two label count vectors (same label order) -> {chi2, p_value, js}.

    chi2 / p_value: scipy's chi-squared test of independence on the 2 x k table (labels neither side
    has dropped; Yates' correction when two labels remain, scipy's default); js: the Jensen-Shannon
    distance (base 2, in [0, 1]) of the two label shares. No test (chi2 0, p 1) with fewer than two
    labels in use or an empty side.
    """
    table = np.vstack([np.asarray(ref_counts, dtype=float), np.asarray(cur_counts, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return {"chi2": 0.0, "p_value": 1.0, "js": 0.0}
    chi2, p_value, _, _ = stats.chi2_contingency(table)
    js = jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2)
    return {"chi2": float(chi2), "p_value": float(p_value), "js": float(js)}


# ---------------------------------------------------------------- many numbers per row
def _rows(values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def mmd_permutation(
    ref, cur, *, n_permutations: int = 200, seed: int = 0, max_rows: int = 1000
) -> dict[str, float]:
    """Kernel two-sample test (Gretton et al. 2012): {mmd2, p_value, bandwidth}.

    Each side is subsampled (seeded) to `max_rows`; the kernel is exp(-d² / (2 bandwidth²)) with the
    bandwidth the median pairwise distance of the pooled rows (the median heuristic). mmd2 is the
    unbiased estimate (0 on average under no drift; it can be slightly negative). The p-value is
    (1 + permutations with an MMD² at least the observed) / (1 + n_permutations): the pooled rows'
    reference/current labels are shuffled, the kernel matrix computed once, and every permutation's
    three block sums read from one matrix product. Fewer than two rows on a side: no test (0, 1, NaN).
    Cost: (2 max_rows)² kernel entries and a (2 max_rows)² x n_permutations product.
    """
    rng = np.random.default_rng(seed)
    x, y = _rows(ref), _rows(cur)
    if len(x) < 2 or len(y) < 2:
        return {"mmd2": 0.0, "p_value": 1.0, "bandwidth": float("nan")}
    x = x[np.sort(rng.permutation(len(x))[:max_rows])]
    y = y[np.sort(rng.permutation(len(y))[:max_rows])]
    n, m = len(x), len(y)
    z = np.vstack([x, y])
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    np.fill_diagonal(d2, 0.0)
    bandwidth = float(np.median(np.sqrt(d2[np.triu_indices(n + m, k=1)])))
    if bandwidth == 0.0:  # every row the same point: nothing can differ
        bandwidth = 1.0
    kernel = np.exp(-d2 / (2.0 * bandwidth**2))
    total = kernel.sum()

    # Column 0 is the observed split; the rest are permutations of it. An indicator matrix of the
    # reference rows (a) gives sum K_xx = a'Ka and sum K_xy = a'K(1 - a); sum K_yy follows from the total.
    is_ref = np.zeros((n + m, n_permutations + 1))
    is_ref[:n, 0] = 1.0
    for j in range(1, n_permutations + 1):
        is_ref[rng.permutation(n + m)[:n], j] = 1.0
    k_ref = kernel @ is_ref
    s_xx = np.einsum("ij,ij->j", is_ref, k_ref)
    s_xy = k_ref.sum(axis=0) - s_xx
    s_yy = total - s_xx - 2.0 * s_xy
    # The kernel's diagonal is 1: n of sum K_xx and m of sum K_yy are the pairs of a row with itself.
    mmd2 = (s_xx - n) / (n * (n - 1)) + (s_yy - m) / (m * (m - 1)) - 2.0 * s_xy / (n * m)
    p_value = (1 + np.sum(mmd2[1:] >= mmd2[0])) / (1 + n_permutations)
    return {"mmd2": float(mmd2[0]), "p_value": float(p_value), "bandwidth": bandwidth}


def domain_classifier_auc(ref, cur, *, seed: int = 0, folds: int = 5) -> dict[str, object]:
    """A classifier two-sample test: {auc, novelty}.

    Logistic regression on standardised features learns to tell reference rows (0) from current ones
    (1); `auc` is the ROC AUC of its out-of-fold probabilities (cross_val_predict over a seeded,
    shuffled StratifiedKFold), 0.5 when the two cannot be told apart. Classes are balanced with
    class_weight="balanced", not by subsampling, so every current row gets an out-of-fold probability:
    `novelty`, in current-row order, how much that row looks like the window and unlike the reference.
    With fewer than two rows on a side no classifier is fitted: auc 0.5, novelty 0.5 everywhere.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _rows(ref), _rows(cur)
    if len(x) < 2 or len(y) < 2:
        return {"auc": 0.5, "novelty": np.full(len(y), 0.5)}
    features = np.vstack([x, y])
    target = np.r_[np.zeros(len(x), dtype=int), np.ones(len(y), dtype=int)]
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    cv = StratifiedKFold(n_splits=min(folds, len(x), len(y)), shuffle=True, random_state=seed)
    proba = cross_val_predict(model, features, target, cv=cv, method="predict_proba")[:, 1]
    return {"auc": float(roc_auc_score(target, proba)), "novelty": proba[len(x) :]}


# ---------------------------------------------------------------- performance without labels
def logits_from_probs(p) -> np.ndarray:
    """Probabilities -> logits that give them back under softmax: log(clip(p)) (a model that serves only
    probabilities, such as the linear family, can then be temperature-scaled too)."""
    return np.log(np.clip(np.asarray(p, dtype=float), PROB_FLOOR, 1.0))


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """softmax(logits / T) over the last axis: T > 1 softens over-confident probabilities."""
    return softmax(np.asarray(logits, dtype=float) / temperature, axis=-1)


def fit_temperature(logits, y) -> float:
    """Temperature scaling (Guo et al. 2017): the T in TEMPERATURE_BOUNDS minimising the mean negative
    log-likelihood of softmax(logits / T) for the true classes `y` (class indices) of held-out rows.
    One parameter: argmax, and so accuracy, never change."""
    z = np.asarray(logits, dtype=float)
    y = np.asarray(y, dtype=int)
    rows = np.arange(len(y))

    def nll(t: float) -> float:
        return float(-np.mean(log_softmax(z / t, axis=1)[rows, y]))

    return float(minimize_scalar(nll, bounds=TEMPERATURE_BOUNDS, method="bounded").x)


def estimated_macro_f1(probs) -> dict[str, object]:
    """Macro-F1 expected from calibrated probabilities alone (CBPE's idea, multiclass): {macro_f1,
    per_class}.

    The prediction is the argmax; a row predicted c is a true positive of c with probability p_c and a
    false positive otherwise, and a row predicted something else is a false negative of c with
    probability p_c. F1_c = 2 TP / (2 TP + FP + FN) on those expected counts; per_class is NaN for a
    class with no expected mass at all, and the macro average skips it. Only as good as the
    calibration: over-confident probabilities over-estimate (so fit_temperature first).
    """
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or len(p) == 0:
        return {"macro_f1": float("nan"), "per_class": np.full(p.shape[-1] if p.ndim == 2 else 0, np.nan)}
    predicted = np.zeros_like(p)
    predicted[np.arange(len(p)), p.argmax(axis=1)] = 1.0
    tp = (predicted * p).sum(axis=0)
    fp = predicted.sum(axis=0) - tp
    fn = p.sum(axis=0) - tp
    denominator = 2 * tp + fp + fn
    per_class = np.full(p.shape[1], np.nan)
    np.divide(2 * tp, denominator, out=per_class, where=denominator > 0)
    macro = float(np.nanmean(per_class)) if (denominator > 0).any() else float("nan")
    return {"macro_f1": macro, "per_class": per_class}


# ---------------------------------------------------------------- persistence
def _check_k_of_m(k: int, m: int) -> None:
    if not 1 <= k <= m:
        raise ValueError(f"persistence needs 1 <= k <= m, got k={k}, m={m}")


def persistent_alarm(flags: Sequence[bool], k: int, m: int) -> bool:
    """True when at least `k` of the last `m` windows alarmed (fewer than m windows: of those there)."""
    _check_k_of_m(k, m)
    return int(np.sum(np.asarray(flags, dtype=bool)[-m:])) >= k


def alarm_runs(flags: Sequence[bool], k: int, m: int) -> list[bool]:
    """The persistent-alarm state after each window: `persistent_alarm(flags[: i + 1], k, m)` for all i."""
    _check_k_of_m(k, m)
    running = np.concatenate([[0], np.cumsum(np.asarray(flags, dtype=int))])
    ends = np.arange(1, len(running))
    in_window = running[ends] - running[np.maximum(ends - m, 0)]
    return [bool(v) for v in in_window >= k]
