"""Typed view of params.yaml, the single source of tunable values.

Every section is a pydantic model with `extra="forbid"`, so a typo such as `preprocess.spacng`
fails loudly with the full dotted key instead of being ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from training.errors import ConfigError
from training.paths import params_path


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    source: str = "data/sample/utterances.csv"
    format: Literal["auto", "csv", "tsv", "jsonl", "excel", "aihub"] = "auto"
    text_col: str = "text"
    label_col: str = "label"
    id_col: str | None = "id"
    encoding: str = "auto"
    sheet: str | int | None = None


class ValidateConfig(_Section):
    conflicts: Literal["quarantine", "majority"] = "quarantine"
    max_chars: int = Field(500, gt=0)
    outlier_iqr_k: float = Field(3.0, gt=0)
    min_rows_per_class: int = Field(10, ge=3)


class RegexRule(_Section):
    pattern: str
    replace: str = ""


class PreprocessConfig(_Section):
    nfc: bool = True
    clean_whitespace: bool = True
    mask_pii: bool = True
    squeeze_repeats: bool = True
    max_repeat: int = Field(2, ge=1)
    regex_rules: tuple[RegexRule, ...] = ()
    spacing: Literal["kiwi", "pykospacing", "none"] = "kiwi"
    spacing_reset: bool = True
    dedup: bool = True


class SplitConfig(_Section):
    seed: int = 42
    val_ratio: float = Field(0.1, gt=0, lt=0.5)
    test_ratio: float = Field(0.15, gt=0, lt=0.5)
    resplit: bool = False


class EdaConfig(_Section):
    alpha_sr: float = Field(0.15, ge=0, le=1)
    alpha_ri: float = Field(0.1, ge=0, le=1)
    alpha_rs: float = Field(0.1, ge=0, le=1)
    p_rd: float = Field(0.1, ge=0, le=1)


class AugmentConfig(_Section):
    enabled: bool = True
    seed: int = 13
    methods: tuple[Literal["eda_sr", "eda_ri", "eda_rs", "eda_rd", "aeda"], ...] = (
        "eda_sr",
        "eda_ri",
        "eda_rs",
        "eda_rd",
        "aeda",
    )
    multipliers: dict[str, float] = Field(default_factory=dict)
    target_balance: float | None = Field(None, gt=0, le=1)
    eda: EdaConfig = EdaConfig()

    @model_validator(mode="after")
    def _check(self) -> "AugmentConfig":
        for label, m in self.multipliers.items():
            if m < 1:
                raise ValueError(f"augment.multipliers.{label} is {m}; a multiplier must be >= 1")
        return self


class ModelConfig(_Section):
    family: Literal["kobert", "hf"] = "kobert"
    name: str = "skt/kobert-base-v1"
    profile: Literal["tiny", "full"] = "tiny"
    max_length: int = Field(64, ge=8, le=512)
    dropout: float = Field(0.1, ge=0, lt=1)
    tiny_vocab_size: int = Field(1000, ge=100)


class TrainConfig(_Section):
    seed: int = 42
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    grad_accum: int = Field(1, ge=1)
    class_weights: bool = True
    early_stopping_patience: int = Field(2, ge=1)
    compile: bool = False
    length_grouping: bool = True
    max_steps: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    num_workers: int = Field(0, ge=0)
    log_every: int = Field(10, ge=1)


class EvaluateConfig(_Section):
    short_max_chars: int = Field(8, ge=1)
    typo_rate: float = Field(0.15, ge=0, le=1)
    latency_samples: int = Field(200, ge=1)
    seed: int = 0


class PromoteConfig(_Section):
    min_delta: float = Field(0.005, ge=0)
    min_f1: float = Field(0.5, ge=0, le=1)
    require_ci: bool = True
    ci_level: float = Field(0.95, gt=0, lt=1)
    bootstrap_samples: int = Field(1000, ge=100)
    max_class_drop: float = Field(0.05, ge=0, le=1)
    latency_budget_ms: float = Field(50.0, gt=0)


class ServeConfig(_Section):
    """The BentoML service (serving/): danger flag, input limits, adaptive batching, hot reload, replies."""

    danger_labels: tuple[str, ...] = ("emergency", "distress")
    danger_threshold: float = Field(0.5, ge=0, le=1)
    max_texts: int = Field(64, ge=1)
    max_chars: int = Field(500, ge=1)
    max_batch_size: int = Field(64, ge=2)  # BentoML requires > 1
    max_latency_ms: int = Field(5000, ge=1)
    max_tokens_per_batch: int = Field(8192, ge=8)
    concurrency: int = Field(32, ge=1)
    workers: int = Field(1, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    # Hot reload: seconds between checks of the registry's champion (0: never; never with HEARA_MODEL_DIR).
    reload_poll_s: float = Field(30.0, ge=0)
    # Reply candidates per label: each prediction gets one, chosen from the text's hash (empty: no replies).
    responses: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class OrchestrateConfig(_Section):
    """The Airflow DAGs (dags/): schedule, retries, where training runs, whom to tell after a promotion."""

    schedule: str | None = "@weekly"  # cron or preset; null: only manual and data-triggered runs
    retries: int = Field(2, ge=0)  # tasks where a retry can help (never after a validation failure)
    retry_delay_s: float = Field(60.0, ge=0)  # the first retry's delay; it doubles each time
    max_retry_delay_s: float = Field(900.0, ge=0)
    train_timeout_min: float = Field(360.0, gt=0)
    gpu_pool: str = "gpu"  # training takes a slot of this pool (slots = GPUs)
    train_queue: str = "default"  # Celery queue of the training task (HEARA_TRAIN_QUEUE overrides)
    serve_url: str | None = "http://127.0.0.1:3000"  # POST /reload here after a promotion (HEARA_SERVE_URL)
    watch_every_min: float = Field(5.0, gt=0)  # the incoming-folder watcher's period


class Params(_Section):
    task: str = "danger"
    labels: tuple[str, ...] = ("normal", "emergency", "confusion", "distress")
    data: DataConfig = DataConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    preprocess: PreprocessConfig = PreprocessConfig()
    split: SplitConfig = SplitConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    promote: PromoteConfig = PromoteConfig()
    serve: ServeConfig = ServeConfig()
    orchestrate: OrchestrateConfig = OrchestrateConfig()

    # "model" would otherwise clash with pydantic's protected "model_" namespace warnings.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, protected_namespaces=())

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, v: Any) -> Any:
        # `labels: [0, 1, 2]` in YAML reads as integers; labels are compared as text everywhere.
        return [str(x) for x in v] if isinstance(v, (list, tuple)) else v

    @model_validator(mode="after")
    def _labels(self) -> "Params":
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels has duplicates: {list(self.labels)}")
        unknown = set(self.augment.multipliers) - set(self.labels)
        if self.labels and unknown:
            raise ValueError(f"augment.multipliers names labels not in `labels`: {sorted(unknown)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration, as logged (and as params.yaml spells it)."""
        return json.loads(self.model_dump_json(by_alias=True))


def _format_error(err: ValidationError, origin: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        key = key.replace("validate_", "validate")
        if e["type"] == "extra_forbidden":
            lines.append(f"{origin}: unknown key '{key}'")
        else:
            lines.append(f"{origin}: '{key}': {e['msg']}")
    return "\n".join(lines)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Overrides change only what they name; an empty mapping clears (`augment.multipliers={}`)."""
    out = dict(base)
    for k, v in override.items():
        merge = isinstance(v, dict) and v and isinstance(out.get(k), dict)
        out[k] = _deep_merge(out[k], v) if merge else v
    return out


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """The one dotted-key setter: `set_dotted(t, "train.lr", 1e-3)` sets t["train"]["lr"]; returns `tree`."""
    *parents, leaf = dotted.strip().split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return tree


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["split.seed=7", "labels=[a,b]"]` -> nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override '{pair}' is not KEY=VALUE")
        key, raw = pair.split("=", 1)
        set_dotted(out, key, yaml.safe_load(raw))
    return out


def _read_yaml(p: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections")
    return raw


def load_params(path: Path | str | None = None, overrides: dict[str, Any] | None = None,
                overlays: Sequence[Path | str] = ()) -> Params:
    """Read params.yaml (default: `paths.params_path()`), apply overlay files (each holds only the keys
    that differ, e.g. params.full.yaml), then overrides; validate strictly."""
    p = Path(path) if path else params_path()
    merged = _read_yaml(p)
    origin = str(p)
    for overlay in overlays:
        merged = _deep_merge(merged, _read_yaml(Path(overlay)))
        origin += f" + {overlay}"
    merged = _deep_merge(merged, overrides or {})
    try:
        return Params.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_error(e, origin)) from None
