"""The retrain DAG's trigger form: its fields, the params.yaml key each one overrides, and the mapping
from a submitted form to overrides."""

from __future__ import annotations

from typing import Any

from training.config import set_dotted
from training.errors import ConfigError

# The trigger form's fields (Airflow Params) and the params.yaml key each one overrides.
FORM_KEYS = {
    "task": "task",
    "model_family": "model.family",
    "model_name": "model.name",
    "model_profile": "model.profile",
    "epochs": "train.epochs",
    "learning_rate": "train.lr",
    "dropout": "model.dropout",
    "augment": "augment.enabled",
}


def form_overrides(form: dict[str, Any]) -> dict[str, Any]:
    """Trigger-form values -> nested params.yaml overrides. Empty values keep params.yaml's; the form's
    `overrides` (a mapping of dotted keys, e.g. {"train.batch_size": 16}) reaches any other key."""
    out: dict[str, Any] = {}
    for field, key in FORM_KEYS.items():
        value = form.get(field)
        if value is not None and value != "":
            set_dotted(out, key, value)
    extra = form.get("overrides") or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"trigger form: 'overrides' must be a mapping of params.yaml keys, got {type(extra).__name__}")
    for key, value in extra.items():
        set_dotted(out, str(key), value)
    return out
