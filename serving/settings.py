"""The environment variables the service reads, in one place (the state folder comes from
`training.paths`). Read when a service starts, never at import time.

- HEARA_MODEL_DIR: serve this model folder instead of the registry's champion (an offline bento).
- HEARA_API_KEY: when set, every request except health, readiness, metrics and the docs needs
  `Authorization: Bearer <key>`.
- HEARA_PREDICTION_DB: the prediction log's store (default: SQLite in the state folder).
"""

from __future__ import annotations

import os
from pathlib import Path

from training.paths import state

MODEL_DIR_ENV = "HEARA_MODEL_DIR"
API_KEY_ENV = "HEARA_API_KEY"
PREDICTION_DB_ENV = "HEARA_PREDICTION_DB"


def model_dir() -> Path | None:
    value = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def api_key() -> str | None:
    return os.environ.get(API_KEY_ENV, "").strip() or None


def prediction_db() -> str | None:
    return os.environ.get(PREDICTION_DB_ENV, "").strip() or None


def model_cache() -> Path:
    """Registry models downloaded for serving, one folder per version."""
    return state().home / "serving" / "models"
