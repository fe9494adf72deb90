"""The DAGs' trigger forms, one table each (FIELDS: heara_retrain; SWEEP_FIELDS: heara_sweep): each field,
the params.yaml key it overrides, its title and help, and the mapping from a submitted form to overrides.

A field that overrides a params.yaml key takes its default from params.yaml and its JSON-schema type, bounds
and choices from training/config.py (so `train.epochs >= 1` is written once); the table adds only what is
particular to the form (a title, a tighter upper bound). dags/heara_retrain.py and dags/heara_sweep.py build
their `params=` from `form_params()`; this module imports nothing from Airflow, so it stays cheap to import at
DAG parse time.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel

from training.config import Params, set_dotted
from training.errors import ConfigError
from training.paths import PROJECT_ROOT


@dataclass(frozen=True)
class FormField:
    """One trigger-form field. `key`: the params.yaml key it overrides (None: a run option of its own)."""

    title: str
    key: str | None = None
    description: str | None = None  # None: config.py's help of `key`
    schema: dict[str, Any] = field(default_factory=dict)  # JSON schema beyond config.py's (or all of it)
    default: Any = None  # only for fields without a key (the others take params.yaml's value)


FIELDS: dict[str, FormField] = {
    "task": FormField(
        "Task",
        "task",
        schema={"minLength": 1},
        description="One MLflow experiment and registered model (heara-<task>) per task.",
    ),
    "overlay": FormField(
        "Params overlay",
        description="A file of only the keys that differ from params.yaml, applied before the fields below; "
        "e.g. params.full.yaml for a real fine-tune. Empty: none.",
        schema={"type": "string"},
        default="",
    ),
    "model_family": FormField("Model family", "model.family"),
    "model_name": FormField(
        "Model name",
        "model.name",
        schema={"minLength": 1},
        description="Hub id or local folder, e.g. skt/kobert-base-v1 (used by the full profile).",
    ),
    "model_profile": FormField(
        "Model profile",
        "model.profile",
        description="tiny: a small model built offline (CPU demo); full: the pretrained model.",
    ),
    "epochs": FormField("Epochs", "train.epochs", schema={"maximum": 200}),
    "learning_rate": FormField("Learning rate", "train.lr", schema={"maximum": 1}),
    "dropout": FormField("Dropout", "model.dropout"),
    "augment": FormField(
        "Augmentation", "augment.enabled", description="EDA/AEDA on the train split (params.yaml augment.*)."
    ),
    "force_promote": FormField(
        "Force promote",
        description="Make the new model champion even if the gate refuses it (logged as forced).",
        schema={"type": "boolean"},
        default=False,
    ),
    "overrides": FormField(
        "Other params.yaml keys",
        description='For this run only, e.g. {"train.batch_size": 16, "promote.min_delta": 0.01}.',
        schema={"type": "object"},
        default={},
    ),
}

# heara_sweep's form: the search's family and budgets; the storage is a run option (not written to the run's
# params), so that a URL given here wins over HEARA_SWEEP_STORAGE as `heara sweep --storage` does.
SWEEP_FIELDS: dict[str, FormField] = {
    "family": FormField(
        "Model family",
        description="kobert-tiny: the tiny transformer trained from scratch; linear: TF-IDF + logistic "
        "regression. The search spaces are params.yaml's sweep.kobert_tiny and sweep.linear.",
        schema={"type": "string", "enum": ["kobert-tiny", "linear"]},
        default="kobert-tiny",
    ),
    "trials": FormField("Trial budget", "sweep.trials", schema={"maximum": 1000}),
    "workers": FormField(
        "Parallel workers",
        "sweep.workers",
        schema={"maximum": 32},
        description="Mapped worker tasks on one study (each takes a slot of the gpu pool). More than 1 needs "
        "a PostgreSQL storage.",
    ),
    "timeout_min": FormField(
        "Time budget (minutes)",
        "sweep.timeout_min",
        description="No trial starts after this many minutes; empty: none.",
    ),
    "storage": FormField(
        "Optuna storage",
        description="postgresql://user@host/db for parallel workers. Empty: HEARA_SWEEP_STORAGE, then "
        "sweep.storage, else a SQLite file in the state folder (one worker).",
        schema={"type": "string"},
        default="",
    ),
    "data_dir": FormField(
        "Prepared data folder",
        description="A `heara data prepare --out` folder (its dataset.json sets task and labels). Empty: "
        "the pipeline's data in the state folder (what heara_retrain prepared).",
        schema={"type": "string"},
        default="",
    ),
    "compare_default": FormField(
        "Compare with the configuration as set",
        description="Also score params.yaml's configuration of the family on the test split (once).",
        schema={"type": "boolean"},
        default=True,
    ),
    "overlay": FIELDS["overlay"],
    "overrides": FIELDS["overrides"],
}

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}
_BOUNDS = {
    annotated_types.Ge: ("minimum", "ge"),
    annotated_types.Gt: ("exclusiveMinimum", "gt"),
    annotated_types.Le: ("maximum", "le"),
    annotated_types.Lt: ("exclusiveMaximum", "lt"),
}


def _field_info(key: str):
    model: type[BaseModel] = Params
    *parents, leaf = key.split(".")
    for part in parents:
        model = next(f.annotation for n, f in model.model_fields.items() if (f.alias or n) == part)
    return next(f for n, f in model.model_fields.items() if (f.alias or n) == leaf)


def key_schema(key: str) -> dict[str, Any]:
    """JSON schema of a params.yaml leaf key, from its declaration in training/config.py."""
    info = _field_info(key)
    ann, schema = info.annotation, {}
    if typing.get_origin(ann) is Literal:
        choices = list(typing.get_args(ann))
        schema = {"type": _JSON_TYPES[type(choices[0])], "enum": choices}
    elif typing.get_origin(ann) in (typing.Union, types.UnionType):
        schema = {"type": [_JSON_TYPES.get(a, "null") for a in typing.get_args(ann)]}
    else:
        schema = {"type": _JSON_TYPES[ann]}
    for meta in info.metadata:
        if type(meta) in _BOUNDS:
            name, attr = _BOUNDS[type(meta)]
            schema[name] = getattr(meta, attr)
    return schema


def overlay_files() -> list[str]:
    """Overlay files shipped beside params.yaml (params.<name>.yaml), proposed by the form's `overlay`."""
    return sorted(p.name for p in PROJECT_ROOT.glob("params.*.yaml"))


def form_params(params: Params, fields: dict[str, FormField] = FIELDS) -> dict[str, dict[str, Any]]:
    """Keyword arguments of an Airflow `Param` per field: `default`, `title`, `description` and the JSON
    schema (type, bounds, choices). Defaults come from `params` (the DAG passes params.yaml's)."""
    values = params.to_dict()
    out = {}
    for name, f in fields.items():
        spec: dict[str, Any] = {"title": f.title}
        if f.key:
            default: Any = values
            for part in f.key.split("."):
                default = default[part]
            spec |= {"default": default, **key_schema(f.key)}
            description = f.description or _field_info(f.key).description
        else:
            spec["default"] = f.default
            description = f.description
        spec |= f.schema
        if description:
            spec["description"] = description
        out[name] = spec
    if "overlay" in out:
        out["overlay"]["examples"] = ["", *overlay_files()]
    return out


FORM_KEYS = {name: f.key for name, f in FIELDS.items() if f.key}  # field -> params.yaml key
SWEEP_FORM_KEYS = {name: f.key for name, f in SWEEP_FIELDS.items() if f.key}


def form_overlays(form: dict[str, Any]) -> list[Path]:
    """The form's overlay file, resolved against the repository root (where params.yaml lives)."""
    value = str(form.get("overlay") or "").strip()
    if not value:
        return []
    path = Path(value).expanduser()
    return [path if path.is_absolute() else PROJECT_ROOT / path]


def form_overrides(
    form: dict[str, Any], *, defaults: Params | None = None, fields: dict[str, FormField] = FIELDS
) -> dict[str, Any]:
    """Trigger-form values -> nested params.yaml overrides. Empty values keep params.yaml's; with
    `defaults` (the values the form was shown with) a field left unchanged is not an override either, so
    that an overlay's value (e.g. params.full.yaml's epochs) is not undone by the form's default. The
    form's `overrides` (a mapping of dotted keys, e.g. {"train.batch_size": 16}) reaches any other key."""
    shown = form_params(defaults, fields) if defaults is not None else {}
    out: dict[str, Any] = {}
    for name, key in ((n, f.key) for n, f in fields.items() if f.key):
        value = form.get(name)
        if value is None or value == "" or (name in shown and value == shown[name]["default"]):
            continue
        set_dotted(out, key, value)
    extra = form.get("overrides") or {}
    if not isinstance(extra, dict):
        raise ConfigError(
            f"trigger form: 'overrides' must be a mapping of params.yaml keys, got {type(extra).__name__}"
        )
    for key, value in extra.items():
        set_dotted(out, str(key), value)
    return out
