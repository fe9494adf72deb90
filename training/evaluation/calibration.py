"""Calibration: how far a model's confidence matches its accuracy (ECE and reliability bins)."""

from __future__ import annotations

import numpy as np

ECE_BINS = 15


# ---------------------------------------------------------------- calibration
def calibration_bins(
    conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-label confidences and hits -> per-bin (count, mean confidence, accuracy).

    Equal-width bins (k/bins, (k+1)/bins]; empty bins have NaN confidence and accuracy.
    """
    conf = np.asarray(conf, dtype=float)
    hit = np.asarray(correct, dtype=float)
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=bins) / count
        acc = np.bincount(idx, weights=hit, minlength=bins) / count
    return count, mean_conf, acc


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over the equal-width bins."""
    count, mean_conf, acc = calibration_bins(conf, correct, bins)
    if count.sum() == 0:
        return 0.0
    filled = count > 0
    return float(np.sum(count[filled] * np.abs(acc[filled] - mean_conf[filled])) / count.sum())
