"""The embedding projection a model version is monitored with, as the service and the monitor share it.

At registration `heara register` stores a monitoring reference in the model folder (`monitoring/`,
training/evaluation/monitoring.py), among it the components of a truncated SVD fitted on the train
split's pooled embeddings ([dims, width]; projection = embedding @ components.T). The service loads
only those components (`load_components`) and projects the [CLS] vector of each text it classifies;
the prediction log stores the projection as text (`to_text`: base64 of little-endian float16, 172
characters for 64 dimensions) and the monitor reads it back (`from_text`).

It lives with the model, not with the monitoring code, because serving may import the model's surface
only (tests/code/test_layers.py).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REFERENCE_DIR = "monitoring"  # inside the model folder: the reference that travels with the version
REFERENCE_ARRAYS = "reference.npz"  # its arrays: probs, projection, components
_STORED = np.dtype("<f2")  # float16, little-endian: 2 bytes a dimension, about 3 significant digits


def load_components(model_dir: Path | str) -> np.ndarray | None:
    """The projection's components [dims, width] (float32) stored with the model folder, or None when it
    was registered without a monitoring reference. Reads that one array, not the whole reference."""
    path = Path(model_dir) / REFERENCE_DIR / REFERENCE_ARRAYS
    if not path.is_file():
        return None
    with np.load(path) as arrays:
        return np.asarray(arrays["components"], dtype=np.float32) if "components" in arrays else None


def project(embeddings, components: np.ndarray) -> np.ndarray:
    """Embeddings (dense, or the linear family's sparse TF-IDF rows) -> their projection [n, dims]."""
    out = embeddings @ np.asarray(components, dtype=np.float32).T
    return np.asarray(out, dtype=np.float32)


def as_stored(projection: np.ndarray) -> np.ndarray:
    """The projection rounded as the prediction log stores it (float16), back in float32. Whatever is
    compared with a logged projection is rounded so too: a domain classifier would otherwise learn the
    rounding itself (an untrained model's nearly constant dimensions differ only in it)."""
    return np.asarray(projection, dtype=np.float32).astype(_STORED).astype(np.float32)


def to_text(projection: np.ndarray) -> list[str]:
    """Each row of a projection [n, dims] as the prediction log stores it: base64 of float16 (LE)."""
    rows = np.ascontiguousarray(np.asarray(projection, dtype=np.float32).astype(_STORED))
    if rows.ndim != 2:
        raise ValueError(f"a projection is [rows, dims], got shape {rows.shape}")
    raw, width = rows.tobytes(), rows.shape[1] * _STORED.itemsize
    return [base64.b64encode(raw[i : i + width]).decode("ascii") for i in range(0, len(raw), width)]


def from_text(values: Sequence[str | None], dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored projections -> (float32 [n, dims], which rows had one of `dims` dimensions). A missing,
    unreadable or other-sized value (another version's components) leaves its row zero and unmarked."""
    out = np.zeros((len(values), dims), dtype=np.float32)
    found = np.zeros(len(values), dtype=bool)
    width = dims * _STORED.itemsize
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value:
            continue
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            continue
        if len(raw) == width:
            out[i] = np.frombuffer(raw, dtype=_STORED)
            found[i] = True
    return out, found
