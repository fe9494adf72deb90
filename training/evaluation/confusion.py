"""The confusion matrix read at many classes: its off-diagonal cells ranked, most rows first.

At seed 001's 359 categories a 359 x 359 grid holds 128,881 cells, nearly all empty; what a reader can
take in is the list of (true -> predicted) pairs that hold rows. `heara evaluate` writes it whole
(confused_pairs.csv) and plots its head (evaluation/plots.py) above `plots.MAX_GRID_LABELS` labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confused_pairs(cm: np.ndarray, labels: list[str], top: int | None = None) -> list[dict[str, Any]]:
    """The off-diagonal cells of a confusion matrix (rows: true, columns: predicted) that hold rows, most
    rows first (then the larger share of the true class, then label order): `true`, `predicted`, `count`
    and `share` (count / test rows of the true class); the first `top` of them, or all."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.nonzero(off)
    share = off[i, j] / rows[i]
    order = np.lexsort((j, i, -share, -off[i, j]))  # the last key sorts first
    if top is not None:
        order = order[:top]
    return [
        {
            "true": labels[i[o]],
            "predicted": labels[j[o]],
            "count": int(off[i[o], j[o]]),
            "share": float(share[o]),
        }
        for o in order
    ]
