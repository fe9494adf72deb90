"""The environment variables the service reads, in one place (the state folder comes from
`training.paths`). Read when a service starts, never at import time.

- HEARA_MODEL_DIR: serve this model folder instead of the registry's champion (an offline bento).
- HEARA_API_KEY: when set, every request except health, readiness, metrics, the docs and the try-it page needs
  `Authorization: Bearer <key>`.
- HEARA_PREDICTION_DB: the prediction log's store (default: SQLite in the state folder).
- HEARA_RECENT_SIZE: how many recent predictions `GET /recent` and the try-it page keep (default 50).
"""

from __future__ import annotations

import os
from pathlib import Path

from training.paths import api_key, state  # noqa: F401  (api_key: also read by the Airflow DAG)

MODEL_DIR_ENV = "HEARA_MODEL_DIR"
API_KEY_ENV = "HEARA_API_KEY"
PREDICTION_DB_ENV = "HEARA_PREDICTION_DB"
RECENT_SIZE_ENV = "HEARA_RECENT_SIZE"


def model_dir() -> Path | None:
    value = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def prediction_db() -> str | None:
    return os.environ.get(PREDICTION_DB_ENV, "").strip() or None


def model_cache() -> Path:
    """Registry models downloaded for serving, one folder per version."""
    return state().home / "serving" / "models"


def recent_size() -> int:
    """The size of `GET /recent`'s buffer: HEARA_RECENT_SIZE (a positive integer) or 50."""
    from serving.recent import DEFAULT_SIZE

    value = os.environ.get(RECENT_SIZE_ENV, "").strip()
    if not value:
        return DEFAULT_SIZE
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{RECENT_SIZE_ENV} must be a positive integer, got {value!r}")
    return int(value)
