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


# Each field: type, bounds and a one-line help. Its default is params.yaml's value, repeated only so that
# a partial file (a test's, an environment's copy) means "params.yaml with these keys changed";
# tests/code/test_config.py fails when the two disagree. Change a value in params.yaml and here together.


class DataConfig(_Section):
    """Where the labeled data comes from and which columns hold what."""

    source: str = Field(
        "data/sample/utterances.csv", description="labeled file to ingest (path from the repository root)"
    )
    format: Literal["auto", "csv", "tsv", "jsonl", "excel", "aihub"] = Field(
        "auto", description="file format; auto: from the extension"
    )
    text_col: str = Field("text", description="column holding the utterance")
    label_col: str = Field("label", description="column holding the label")
    id_col: str | None = Field(
        "id", description="column holding a row id; null: ids become <file stem>-<row>"
    )
    encoding: str = Field(
        "auto", description="text encoding; auto detects UTF-8, UTF-8 with BOM, CP949/EUC-KR"
    )
    sheet: str | int | None = Field(None, description="Excel sheet name or index; null: the first sheet")
    label_sep: str = Field(
        ",", min_length=1, max_length=3, description="multi-label tasks: what separates a cell's labels"
    )


class ValidateConfig(_Section):
    """Which rows are quarantined before preprocessing, and when the data is too thin to train on."""

    conflicts: Literal["quarantine", "majority"] = Field(
        "quarantine",
        description="the same text with different labels: quarantine every row, or keep the majority",
    )
    max_chars: int = Field(500, gt=0, description="longer texts are quarantined (characters)")
    outlier_iqr_k: float = Field(3.0, gt=0, description="length outliers (reported, kept): beyond Q3 + k*IQR")
    min_rows_per_class: int = Field(
        10,
        ge=1,
        description="a class with fewer valid rows is rare (rare_classes says what happens to it); the split "
        "gives a class a test row only from 3 rows on",
    )
    rare_classes: Literal["fail", "quarantine", "merge"] = Field(
        "fail",
        description="classes below min_rows_per_class: fail stops the run naming them; quarantine sets their "
        "rows aside (the classes leave the label set); merge relabels their rows as merge_into",
    )
    merge_into: str = Field(
        "기타",
        min_length=1,
        description="rare_classes=merge: the class rare classes' rows join (an existing class or a new one)",
    )

    @field_validator("merge_into", mode="before")
    @classmethod
    def _label_as_text(cls, v: Any) -> Any:
        # `merge_into: 0` (--set validate.merge_into=0) reads as an integer; labels are text everywhere.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class RegexRule(_Section):
    """One text substitution applied during preprocessing."""

    pattern: str = Field(description="Python regular expression")
    replace: str = Field("", description="replacement text")


class PreprocessConfig(_Section):
    """Text normalisation; every step can be switched off."""

    nfc: bool = Field(True, description="compose decomposed Hangul (NFC)")
    clean_whitespace: bool = Field(True, description="collapse whitespace, drop control characters")
    mask_pii: bool = Field(
        True, description="URLs, emails, phone and resident registration numbers -> placeholders"
    )
    squeeze_repeats: bool = Field(True, description="shorten runs of a repeated character (ㅋㅋㅋㅋ -> ㅋㅋ)")
    max_repeat: int = Field(2, ge=1, description="longest run kept by squeeze_repeats")
    regex_rules: tuple[RegexRule, ...] = Field((), description="extra substitutions, applied in order")
    spacing: Literal["kiwi", "pykospacing", "none"] = Field("kiwi", description="spacing-correction backend")
    spacing_reset: bool = Field(True, description="re-space from scratch (STT output often has wrong spaces)")
    dedup: bool = Field(True, description="drop exact duplicates after normalisation")


class SplitConfig(_Section):
    """Stratified train/val/test split; the test split is frozen once drawn."""

    seed: int = Field(42, description="random seed of the split")
    val_ratio: float = Field(0.1, gt=0, lt=0.5, description="share of rows for validation")
    test_ratio: float = Field(0.15, gt=0, lt=0.5, description="share of rows for the frozen test split")
    resplit: bool = Field(False, description="re-draw the frozen test split")


class EdaConfig(_Section):
    """EDA strengths: the share of a text's morphemes each operation touches."""

    alpha_sr: float = Field(0.15, ge=0, le=1, description="synonym replacement")
    alpha_ri: float = Field(0.1, ge=0, le=1, description="random insertion")
    alpha_rs: float = Field(0.1, ge=0, le=1, description="random swap")
    p_rd: float = Field(0.1, ge=0, le=1, description="probability of deleting each morpheme")


class AugmentConfig(_Section):
    """EDA/AEDA augmentation of the train split (val and test are never augmented)."""

    enabled: bool = Field(True, description="augment the train split")
    seed: int = Field(13, description="random seed of augmentation")
    methods: tuple[Literal["eda_sr", "eda_ri", "eda_rs", "eda_rd", "aeda"], ...] = Field(
        ("eda_sr", "eda_ri", "eda_rs", "eda_rd", "aeda"), description="augmenters to draw from"
    )
    multipliers: dict[str, float] = Field(
        default_factory=lambda: {"emergency": 2.0, "confusion": 2.0, "distress": 2.0},
        description="per label: final rows = original rows x multiplier (>= 1)",
    )
    target_balance: float | None = Field(
        None, gt=0, le=1, description="raise every class to this share of the largest (wins over multipliers)"
    )
    eda: EdaConfig = Field(default_factory=EdaConfig, description="EDA strengths")

    @model_validator(mode="after")
    def _check(self) -> "AugmentConfig":
        for label, m in self.multipliers.items():
            if m < 1:
                raise ValueError(f"augment.multipliers.{label} is {m}; a multiplier must be >= 1")
        return self


class ModelConfig(_Section):
    """Which encoder is fine-tuned, and how big the offline tiny model is."""

    family: Literal["kobert", "hf", "linear"] = Field(
        "kobert",
        description="kobert: skt/kobert-base-v1 layout; hf: any encoder via the Auto classes; linear: "
        "character n-gram TF-IDF + logistic regression (the `linear:` section, no GPU)",
    )
    name: str = Field("skt/kobert-base-v1", description="hub id or local folder (the full profile)")
    profile: Literal["tiny", "full"] = Field(
        "tiny", description="tiny: a small model built offline from the train split; full: `name`"
    )
    max_length: int = Field(64, ge=8, le=512, description="tokens per text (longer texts are truncated)")
    dropout: float = Field(0.1, ge=0, lt=1, description="classifier dropout")
    tiny_vocab_size: int = Field(1000, ge=100, description="SentencePiece vocabulary of the tiny profile")
    tiny_hidden_size: int = Field(
        64,
        ge=32,
        le=768,
        description="tiny profile: hidden width (a multiple of 32, one attention head each)",
    )
    tiny_layers: int = Field(2, ge=1, le=12, description="tiny profile: transformer layers")

    @field_validator("tiny_hidden_size")
    @classmethod
    def _whole_heads(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"model.tiny_hidden_size {v} is not a multiple of 32 (heads of 32 dimensions)")
        return v


class LinearConfig(_Section):
    """The `linear` family (scikit-learn): TF-IDF over character n-grams, then logistic regression.

    Its defaults are the baseline every challenger must beat (`promote.require_beat_baseline`)."""

    analyzer: Literal["char_wb", "char", "word"] = Field(
        "char_wb", description="n-grams of characters within words (char_wb), across words (char) or words"
    )
    ngram_min: int = Field(1, ge=1, le=10, description="shortest n-gram")
    ngram_max: int = Field(4, ge=1, le=10, description="longest n-gram")
    min_df: int = Field(2, ge=1, description="n-grams in fewer train texts are dropped (1 below 50 texts)")
    max_features: int | None = Field(None, ge=100, description="keep the most frequent n-grams; null: all")
    sublinear_tf: bool = Field(True, description="1 + log(tf) instead of raw counts")
    C: float = Field(5.0, gt=0, description="inverse regularisation strength of the logistic regression")
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="balanced: weights inverse to class frequency"
    )
    max_iter: int = Field(2000, ge=10, description="solver iterations at most")
    augmented_rows: bool = Field(
        False, description="also fit on the augmented train rows (false: the original rows only)"
    )

    @model_validator(mode="after")
    def _ngrams(self) -> "LinearConfig":
        if self.ngram_min > self.ngram_max:
            raise ValueError(f"linear.ngram_min {self.ngram_min} > linear.ngram_max {self.ngram_max}")
        return self


class TrainConfig(_Section):
    """The training loop. params.yaml holds the tiny profile's values; params.full.yaml a real fine-tune's."""

    seed: int = Field(42, description="random seed of initialisation and batching")
    epochs: int = Field(15, ge=1, description="passes over the train split at most")
    batch_size: int = Field(32, ge=1, description="texts per optimizer step (before grad_accum)")
    lr: float = Field(2.0e-3, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps with a linear warm-up")
    grad_accum: int = Field(1, ge=1, description="batches accumulated per optimizer step")
    class_weights: bool = Field(True, description="inverse-frequency class weights in the loss")
    early_stopping_patience: int = Field(4, ge=1, description="epochs without a better validation macro-F1")
    compile: bool = Field(False, description="torch.compile the model (GPU)")
    length_grouping: bool = Field(True, description="batch texts of similar length (less padding)")
    max_steps: int | None = Field(
        None, ge=1, description="stop after this many optimizer steps; null: no cap"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 on CUDA, fp32 on CPU")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    log_every: int = Field(10, ge=1, description="log the training loss every this many steps")


class EvaluateConfig(_Section):
    """Scoring on the frozen test split: slices and latency."""

    short_max_chars: int = Field(8, ge=1, description="texts up to this length form the 'short texts' slice")
    typo_rate: float = Field(0.15, ge=0, le=1, description="'typos' slice: share of syllables perturbed")
    latency_samples: int = Field(200, ge=1, description="texts timed one by one for the latency figures")
    seed: int = Field(0, description="random seed of the perturbed slices")


class ExplainConfig(_Section):
    """Explanations: which words drove a prediction (POST /explain, the pages, `heara evaluate`)."""

    method: Literal["auto", "integrated_gradients", "occlusion"] = Field(
        "auto",
        description="auto: exact coefficient x TF-IDF contributions for the linear family, Layer Integrated "
        "Gradients on the embeddings for transformers; occlusion: the model-agnostic fallback for any model",
    )
    n_steps: int = Field(32, ge=2, le=512, description="Integrated Gradients: interpolation steps")
    baseline: Literal["pad", "mask"] = Field(
        "pad",
        description="IG: the reference input, every piece replaced by [PAD] or [MASK]",
    )
    max_tokens_per_pass: int = Field(
        4096,
        ge=64,
        description="IG: padded tokens per forward/backward pass (steps batched)",
    )
    occlusion_budget: int = Field(
        64, ge=2, description="occlusion: forward passes per text (leave-one-out when the morphemes fit)"
    )
    seed: int = Field(0, description="occlusion's random masks and faithfulness's random ranking")
    granularity: Literal["word", "morpheme"] = Field(
        "word", description="default unit of an explanation: eojeol (words) or Kiwi morphemes"
    )
    max_concurrency: int = Field(
        1, ge=1, description="explanations computed at once by the service (outside the /classify batches)"
    )
    torch_threads: int = Field(
        1, ge=1, description="CPU threads one explanation uses in the service (the rest stay for /classify)"
    )
    max_waiting: int = Field(
        2,
        ge=0,
        description="explanations waiting for a slot; beyond it /explain answers 503 + Retry-After",
    )
    faithfulness: bool = Field(True, description="heara evaluate measures comprehensiveness, sufficiency")
    faithfulness_ks: tuple[int, ...] = Field(
        (10, 20, 50), description="percentages of words removed (comprehensiveness) or kept (sufficiency)"
    )
    faithfulness_max_texts: int = Field(
        300,
        ge=1,
        description="test texts explained for faithfulness (a fixed sample of more)",
    )
    report_examples: int = Field(
        30,
        ge=0,
        description="misclassified texts and danger predictions in explanations.html",
    )

    @field_validator("faithfulness_ks")
    @classmethod
    def _ks(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(not 0 < k < 100 for k in v):
            raise ValueError("faithfulness_ks: percentages between 1 and 99")
        return tuple(sorted(set(v)))


class PromoteConfig(_Section):
    """The champion/challenger gate."""

    min_delta: float = Field(0.005, ge=0, description="macro-F1 must improve by at least this much")
    min_f1: float = Field(0.5, ge=0, le=1, description="the first champion must reach this macro-F1")
    require_ci: bool = Field(True, description="the bootstrap CI of the difference must lie above 0")
    ci_level: float = Field(0.95, gt=0, lt=1, description="confidence level of that interval")
    bootstrap_samples: int = Field(1000, ge=100, description="paired bootstrap resamples")
    max_class_drop: float = Field(0.05, ge=0, le=1, description="no class's F1 may drop by more than this")
    min_class_support: int = Field(
        5, ge=0, description="... among classes with at least this many test rows (the rest are ignored)"
    )
    latency_budget_ms: float = Field(50.0, gt=0, description="p95 latency per sample of the challenger (ms)")
    require_beat_baseline: bool = Field(
        True,
        description="the challenger's macro-F1 must be at least the TF-IDF + logistic regression baseline's "
        "on the same frozen test split (fitted on the original train rows; cached per split)",
    )
    min_comprehensiveness: float | None = Field(
        None,
        description="when set, the challenger's explanation comprehensiveness at 20 % (heara evaluate) must "
        "exceed a random ranking's by at least this; null: shown in the decision, not blocking",
    )


class ServeConfig(_Section):
    """The BentoML service (serving/): danger flag, input limits, adaptive batching, hot reload, replies."""

    danger_labels: tuple[str, ...] = Field(
        ("emergency", "distress"), description="danger = the top label is one of these"
    )
    danger_threshold: float = Field(0.5, ge=0, le=1, description="... with at least this probability")
    max_texts: int = Field(64, ge=1, description="texts per /classify request (more: HTTP 400)")
    max_chars: int = Field(500, ge=1, description="characters per text (more: HTTP 400)")
    max_top_k: int = Field(
        10, ge=1, le=1000, description="largest `top_k` a /classify request may ask for (more: HTTP 400)"
    )
    max_batch_size: int = Field(
        64, ge=2, description="adaptive batching: texts per batch (BentoML requires > 1)"
    )
    max_latency_ms: int = Field(
        5000, ge=1, description="longer expected wait: HTTP 503 + Retry-After (load shedding)"
    )
    max_tokens_per_batch: int = Field(8192, ge=8, description="padded tokens per forward pass (memory cap)")
    concurrency: int = Field(
        32, ge=1, description="traffic.concurrency: concurrent requests a deployment is sized for"
    )
    workers: int = Field(1, ge=1, description="inference processes, each with its own model copy")
    topology: Literal["single", "split"] = Field(
        "single",
        description="single: one process validates, batches and predicts; split: an HTTP front and an "
        "inference service (BentoML's GPU pattern)",
    )
    cpu_runtime: Literal["torch", "onnx"] = Field(
        "onnx", description="on a CPU: torch in fp32, or ONNX Runtime with the model quantized to int8"
    )
    access_log: bool = Field(False, description="BentoML's access-log line per request")
    predlog_durability: Literal["async", "durable"] = Field(
        "durable",
        description="prediction log: durable = synced to a local journal before the answer leaves; "
        "async = queued in memory (a crash loses the last ~0.5 s)",
    )
    shutdown_grace_s: int = Field(
        3, ge=1, description="on SIGTERM, requests in flight get this long to finish (seconds)"
    )
    max_quantization_drop: float = Field(
        0.01, ge=0, le=1, description="int8 is refused when its test macro-F1 is lower than fp32's by more"
    )
    timeout_s: float = Field(30.0, gt=0, description="per-request timeout (seconds)")
    header_timeout_s: float = Field(
        10.0, gt=0, description="a request's head must arrive within this (else 408, connection closed)"
    )
    body_timeout_s: float = Field(
        15.0, gt=0, description="a request's body must arrive within this (else 408)"
    )
    max_header_bytes: int = Field(
        32768, ge=1024, description="largest request head (request line + headers; larger: 431)"
    )
    reload_poll_s: float = Field(
        30.0,
        ge=0,
        description="seconds between checks of the registry's champion (0: never; never with "
        "HEARA_MODEL_DIR)",
    )
    responses: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="reply candidates per label (one is chosen from the text's hash)"
    )


class MonitorConfig(_Section):
    """`heara monitor`: windows of served predictions against the reference stored with the model."""

    schedule: str | None = Field("@hourly", description="the heara_monitor DAG's schedule; null: none")
    on_drift: Literal["retrain", "review", "retrain_with_reviews"] = Field(
        "retrain",
        description="a persistent alarm's Asset event triggers heara_retrain (retrain), not (review), or "
        "only once review.min_new_reviews new labels were also reviewed (retrain_with_reviews)",
    )
    retention_days: float | None = Field(
        90, gt=0, description="the monitor DAG deletes logged predictions older than this; null: keep all"
    )
    window: int = Field(500, ge=10, description="predictions per window (the newest)")
    window_hours: float | None = Field(
        None, gt=0, description="a window is the last this-many hours instead (window caps the count)"
    )
    min_texts: int = Field(100, ge=10, description="fewer predictions: too few to judge, never an alarm")
    alpha: float = Field(0.01, gt=0, lt=1, description="family-wise false-alarm rate of one window's tests")
    js_threshold: float = Field(0.2, gt=0, le=1, description="label shares' Jensen-Shannon distance alarm")
    auc_threshold: float = Field(0.75, gt=0.5, le=1, description="domain classifier ROC AUC alarm")
    f1_drop: float = Field(0.1, gt=0, le=1, description="estimated macro-F1 below the reference's by this")
    persistence_k: int = Field(3, ge=1, description="an alarm needs k alarmed windows ...")
    persistence_m: int = Field(5, ge=1, description="... among the last m")
    projection_dims: int = Field(64, ge=2, le=512, description="embedding projection stored with the model")
    log_features: bool = Field(
        True,
        description="the service logs each prediction's embedding projection and descriptor inputs when the "
        "served version has a monitoring reference; heara monitor then recomputes only what is missing",
    )
    mmd_permutations: int = Field(200, ge=20, description="permutations of the MMD test")
    max_reference_rows: int = Field(2000, ge=50, description="validation rows kept as the reference")

    @model_validator(mode="after")
    def _k_of_m(self) -> "MonitorConfig":
        if self.persistence_k > self.persistence_m:
            raise ValueError(f"persistence_k {self.persistence_k} exceeds persistence_m {self.persistence_m}")
        return self


class ReviewConfig(_Section):
    """`heara review`: which served predictions people label, and the production holdout they form."""

    budget: int = Field(50, ge=0, le=100000, description="predictions queued for review per window")
    uncertain_share: float = Field(
        0.4, ge=0, le=1, description="budget share: smallest margin between the top two probabilities"
    )
    danger_share: float = Field(0.2, ge=0, le=1, description="budget share: danger-flagged predictions")
    novel_share: float = Field(0.2, ge=0, le=1, description="budget share: most novel (domain classifier)")
    random_share: float = Field(
        0.2, ge=0, le=1, description="budget share: a uniform random sample (the production holdout)"
    )
    danger_policy: Literal["all", "share"] = Field(
        "all", description="all: every danger-flagged prediction, beyond the budget; share: danger_share"
    )
    seed: int = Field(0, description="seed of the random stratum (mixed with the window's first row id)")
    min_new_reviews: int = Field(
        200, ge=1, description="labeled reviews not yet trained on that make retraining on them worth it"
    )
    holdout_min_rows: int = Field(
        100, ge=10, description="labeled random-stratum rows needed before the holdout's macro-F1 is reported"
    )
    holdout_max_rows: int = Field(2000, ge=10, description="the rolling holdout: the newest this-many rows")
    holdout_bootstrap: int = Field(1000, ge=100, le=100000, description="bootstrap resamples of the 95 % CI")
    holdout_blocking: bool = Field(
        False, description="the gate refuses a challenger worse than the champion on the holdout"
    )

    @model_validator(mode="after")
    def _shares(self) -> "ReviewConfig":
        total = self.uncertain_share + self.danger_share + self.novel_share + self.random_share
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"review: the shares (uncertain, danger, novel, random) must sum to 1, got {total:g}"
            )
        return self


class EscalationConfig(_Section):
    """The escalation rule: `danger_count` danger predictions of one speaker within `within_minutes`."""

    danger_count: int = Field(3, ge=1, le=1000, description="danger predictions that make an escalation ...")
    within_minutes: float = Field(
        10.0, gt=0, le=10080, description="... within this many minutes (a window ending at the last of them)"
    )


class TimelineConfig(_Section):
    """Speakers and sessions: the ids /classify accepts, GET /timeline and the escalation rule."""

    max_id_chars: int = Field(
        64, ge=8, le=256, description="longest speaker_id / session_id / device_id (more: HTTP 400)"
    )
    max_entries: int = Field(1000, ge=1, le=100000, description="most predictions one GET /timeline answers")
    max_speakers: int = Field(
        10000, ge=1, description="speakers whose recent danger times are kept in memory (LRU; per worker)"
    )
    escalation: EscalationConfig = Field(default_factory=EscalationConfig, description="the escalation rule")


class OrchestrateConfig(_Section):
    """The Airflow DAGs (dags/): schedule, retries, where training runs, whom to tell after a promotion."""

    schedule: str | None = Field(
        "@weekly", description="retraining schedule (cron or preset); null: no schedule"
    )
    retries: int = Field(2, ge=0, description="retries of a task where a retry can help")
    retry_delay_s: float = Field(60.0, ge=0, description="first retry's delay; it doubles each time")
    max_retry_delay_s: float = Field(900.0, ge=0, description="longest retry delay")
    train_timeout_min: float = Field(360.0, gt=0, description="the training task's time limit (minutes)")
    gpu_pool: str = Field("gpu", description="Airflow pool training takes a slot of (slots = GPUs)")
    train_queue: str = Field(
        "default", description="Celery queue of the training task (HEARA_TRAIN_QUEUE overrides)"
    )
    serve_url: str | None = Field(
        "http://127.0.0.1:3000", description="POST /reload here after a promotion (HEARA_SERVE_URL overrides)"
    )
    watch_every_min: float = Field(5.0, gt=0, description="the incoming-folder watcher's period (minutes)")


# `heara sweep` (Optuna): one search space per family. Each field names the params.yaml key it sets; a
# range is [low, high] (`log`: sampled on a log scale), a choice lists the values to pick from.


def _range(default: tuple, key: str, *, log: bool = False, note: str = "") -> Any:
    scale = "log-uniform" if log else "uniform"
    return Field(
        default,
        description=f"{key}: [low, high], {scale}{'; ' + note if note else ''}",
        json_schema_extra={"sets": key, "kind": "range", "log": log},
    )


def _choice(default: tuple, key: str, note: str = "") -> Any:
    return Field(
        default,
        description=f"{key}: the values to choose from{'; ' + note if note else ''}",
        json_schema_extra={"sets": key, "kind": "choice"},
    )


class _Space(_Section):
    """A search space: ranges hold low <= high (and low > 0 on a log scale); choices are not empty."""

    @model_validator(mode="after")
    def _check(self) -> "_Space":
        for name, info in type(self).model_fields.items():
            value, extra = getattr(self, name), info.json_schema_extra or {}
            if extra.get("kind") == "range":
                low, high = value
                if low > high:
                    raise ValueError(f"{name}: low {low} is above high {high}")
                if extra.get("log") and low <= 0:
                    raise ValueError(f"{name}: a log-scale range must start above 0, got {low}")
            elif not value:
                raise ValueError(f"{name}: no values to choose from")
        return self


class KobertTinySpace(_Space):
    """kobert-tiny: the tiny KoBERT-format transformer trained from scratch (model.profile tiny)."""

    lr: tuple[float, float] = _range((1.0e-4, 1.0e-2), "train.lr", log=True)
    epochs: tuple[int, int] = _range((5, 20), "train.epochs")
    dropout: tuple[float, float] = _range((0.0, 0.5), "model.dropout")
    batch_size: tuple[int, ...] = _choice((16, 32, 64), "train.batch_size")
    warmup_ratio: tuple[float, float] = _range((0.0, 0.2), "train.warmup_ratio")
    augment_scale: tuple[float, float] = _range(
        (0.5, 1.0), "augment.multipliers", note="each multiplier x this (at least 1), at most 1 (see docs)"
    )
    max_length: tuple[int, ...] = _choice((32, 64, 128), "model.max_length", note="at most 128 (tiny)")
    tiny_vocab_size: tuple[int, int] = _range((500, 2000), "model.tiny_vocab_size", log=True)
    tiny_hidden_size: tuple[int, ...] = _choice((32, 64, 128), "model.tiny_hidden_size")
    tiny_layers: tuple[int, int] = _range((1, 4), "model.tiny_layers")

    @field_validator("augment_scale")
    @classmethod
    def _at_most_prepared(cls, v: tuple[float, float]) -> tuple[float, float]:
        # Augmentation runs at `prepare` time: a trial can train on fewer of the prepared augmented rows,
        # never on more (prepare with larger multipliers to search above them).
        if not 0 < v[0] <= v[1] <= 1:
            raise ValueError(f"augment_scale {list(v)}: both ends must lie in (0, 1]")
        return v


class LinearSpace(_Space):
    """linear: character n-gram TF-IDF + logistic regression (the `linear:` section)."""

    C: tuple[float, float] = _range((0.1, 100.0), "linear.C", log=True)
    ngram_max: tuple[int, int] = _range((2, 6), "linear.ngram_max")
    analyzer: tuple[Literal["char_wb", "char", "word"], ...] = _choice(("char_wb", "char"), "linear.analyzer")
    min_df: tuple[int, int] = _range((1, 3), "linear.min_df")
    class_weight: tuple[Literal["balanced", "none"], ...] = _choice(
        ("balanced", "none"), "linear.class_weight"
    )


class SweepConfig(_Section):
    """`heara sweep`: budgets, sampler, pruner and storage of the Optuna study, and each family's space."""

    trials: int = Field(20, ge=1, description="trials in all, shared by every worker of the study")
    timeout_min: float | None = Field(
        None, gt=0, description="no trial starts after this many minutes; null: no wall-clock budget"
    )
    workers: int = Field(1, ge=1, description="parallel worker processes (more than 1 needs PostgreSQL)")
    pruner: Literal["median", "hyperband"] = Field(
        "median", description="stops a trial whose per-epoch validation macro-F1 lags the others'"
    )
    warmup_epochs: int = Field(2, ge=0, description="no trial is pruned before it has run this many epochs")
    startup_trials: int = Field(
        5, ge=0, description="trials sampled at random before TPE models the results (and before pruning)"
    )
    seed: int = Field(0, description="seed of the TPE sampler")
    storage: str | None = Field(
        None,
        description="Optuna storage URL (postgresql://... for parallel workers; HEARA_SWEEP_STORAGE "
        "overrides); null: a SQLite file in the state folder",
    )
    heartbeat_s: int = Field(
        30, ge=1, description="PostgreSQL: a running trial beats this often; silent for twice as long: FAIL"
    )
    enqueue_default: bool = Field(
        True, description="the first trial of a new study tries the family's configuration as configured"
    )
    retrain_on_best: bool = Field(
        False, description="heara_retrain also runs on the heara_sweep_best asset, with the sweep's overlay"
    )
    kobert_tiny: KobertTinySpace = Field(default_factory=KobertTinySpace, description="kobert-tiny's space")
    linear: LinearSpace = Field(default_factory=LinearSpace, description="the linear family's space")


class Params(_Section):
    """params.yaml: one section per step."""

    task: str = Field(
        "danger", description="one MLflow experiment and registered model (heara-<task>) per task"
    )
    labels: tuple[str, ...] = Field(
        ("normal", "emergency", "confusion", "distress"),
        description="the label set; other labels are quarantined",
    )
    task_type: Literal["multiclass", "multilabel"] = Field(
        "multiclass",
        description="multiclass: one label per row (softmax); multilabel: any number per row (a sigmoid "
        "per label, thresholds tuned on the validation split)",
    )
    data: DataConfig = Field(default_factory=DataConfig, description="the labeled source")
    validate_: ValidateConfig = Field(
        default_factory=ValidateConfig, alias="validate", description="data validation"
    )
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig, description="text normalisation")
    split: SplitConfig = Field(default_factory=SplitConfig, description="train/val/test split")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="train-split augmentation")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the encoder")
    linear: LinearConfig = Field(default_factory=LinearConfig, description="the linear family")
    train: TrainConfig = Field(default_factory=TrainConfig, description="the training loop")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="test-split evaluation")
    explain: ExplainConfig = Field(default_factory=ExplainConfig, description="explanations")
    promote: PromoteConfig = Field(default_factory=PromoteConfig, description="the promotion gate")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="the BentoML service")
    monitor: MonitorConfig = Field(default_factory=MonitorConfig, description="drift monitoring")
    review: ReviewConfig = Field(default_factory=ReviewConfig, description="the review queue and holdout")
    timeline: TimelineConfig = Field(
        default_factory=TimelineConfig, description="speakers, sessions and escalations"
    )
    orchestrate: OrchestrateConfig = Field(default_factory=OrchestrateConfig, description="the Airflow DAGs")
    sweep: SweepConfig = Field(default_factory=SweepConfig, description="hyperparameter sweeps (Optuna)")

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

    def override(self, overrides: dict[str, Any]) -> "Params":
        """A copy with nested `overrides` applied (e.g. {"model": {"family": "linear"}}), validated."""
        try:
            return Params.model_validate(_deep_merge(self.to_dict(), overrides))
        except ValidationError as e:
            raise ConfigError(_format_error(e, "overrides")) from None

    def save(self, path: Path | str, header: str = "") -> Path:
        """Write the resolved configuration as a params file (`HEARA_PARAMS` can point at it);
        `header`: a comment line saying who wrote it."""
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)
        path.write_text((f"# {header}\n" if header else "") + text, encoding="utf-8")
        return path


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


def unknown_keys(tree: dict[str, Any], model: type[BaseModel] = Params, prefix: str = "") -> list[str]:
    """Dotted keys of `tree` that `model` has no field for (sections are descended into, free-form
    mappings such as `augment.multipliers` are not)."""
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    out = []
    for key, value in tree.items():
        field = fields.get(key)
        if field is None:
            out.append(f"{prefix}{key}")
        elif (
            isinstance(value, dict)
            and isinstance(field.annotation, type)
            and issubclass(field.annotation, BaseModel)
        ):
            out += unknown_keys(value, field.annotation, f"{prefix}{key}.")
    return out


def load_params(
    path: Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    overlays: Sequence[Path | str] = (),
) -> Params:
    """Read params.yaml (default: `paths.params_path()`), apply overlay files (each holds only the keys
    that differ, e.g. params.full.yaml), then overrides; validate strictly."""
    p = Path(path) if path else params_path()
    merged = _read_yaml(p)
    origin = str(p)
    for overlay in overlays:
        layer = _read_yaml(Path(overlay))
        unknown = unknown_keys(layer)
        if unknown:  # named here, so the message points at the overlay rather than the merged whole
            raise ConfigError("\n".join(f"{overlay}: unknown key '{k}'" for k in unknown))
        merged = _deep_merge(merged, layer)
        origin += f" + {overlay}"
    merged = _deep_merge(merged, overrides or {})
    try:
        return Params.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_error(e, origin)) from None
