"""Whether a model folder can be served: the check every move of the champion alias waits for.

The service loads whatever `champion` points at. A running service refuses a version it cannot load
and keeps serving the old one, but a restart or a new replica then has nothing to serve (issue #15,
finding 8: `heara rollback --to V` made a version without weights the champion). So before the alias
moves (promote, `promote --force`, rollback) the version is fetched as the service fetches its
champion, by the same code into the serving cache of $HEARA_HOME (registry/champion.py
`check_servable`; where the service shares that home, the very folder it will load), and `smoke_test`
runs here on that folder: the files the model needs are there, its `Predictor` loads as the service's
classifier loads it, and one prediction comes back as one probability per label. A version that fails
raises `NotServableError` naming the version and the reason; the caller records the refusal and
leaves the champion where it was. `--force` overrides the gate's quality checks, never this one.

Not checked here, since they depend on the service's own settings rather than on the version: the
int8 ONNX path (`serve.cpu_runtime: onnx`) and `serve.danger_labels`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.errors import NotServableError

# One everyday utterance that goes through every stage (preprocessing, tokenizer, model).
SMOKE_TEXT = "할머니 괜찮으세요? 도와주세요"
_REASON_CHARS = 300  # a load error can quote a whole file listing: the reason keeps its start


@dataclass(frozen=True)
class SmokeResult:
    """A version that loaded and answered: its smoke prediction's label and how long the check took
    (fetching the version included, when it was fetched)."""

    version: str
    label: str
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def smoke_test(model_dir: Path, name: str, version: int | str) -> SmokeResult:
    """Load the model folder of version `version` of `name` and predict SMOKE_TEXT. NotServableError
    when the folder lacks a file the model needs, the model does not load, or it answers with anything
    but one probability per label."""
    from transformers.utils import (
        CONFIG_NAME,
        SAFE_WEIGHTS_INDEX_NAME,
        SAFE_WEIGHTS_NAME,
        WEIGHTS_INDEX_NAME,
        WEIGHTS_NAME,
    )

    from training.model.linear import PIPELINE_FILE
    from training.model.predictor import META_FILE, Predictor, read_meta

    start, folder = time.perf_counter(), Path(model_dir)
    if not (folder / META_FILE).is_file():
        raise NotServableError(name, version, f"its model folder has no {META_FILE}")
    try:
        family = read_meta(folder).get("family")
    except ValueError as exc:  # json.JSONDecodeError
        raise NotServableError(name, version, f"its {META_FILE} is not valid JSON: {brief(exc)}") from exc
    if family == "linear":
        if not (folder / PIPELINE_FILE).is_file():
            raise NotServableError(name, version, f"its model folder has no {PIPELINE_FILE}")
    else:
        if not (folder / CONFIG_NAME).is_file():
            raise NotServableError(name, version, f"its model folder has no {CONFIG_NAME}")
        weights = (SAFE_WEIGHTS_NAME, WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME)
        if not any((folder / w).is_file() for w in weights):
            raise NotServableError(
                name, version, f"its model folder has no weights file ({SAFE_WEIGHTS_NAME} or {WEIGHTS_NAME})"
            )
    try:
        predictor = Predictor.load(folder)  # the device the service picks: a GPU when there is one
    except Exception as exc:
        raise NotServableError(name, version, f"the model does not load: {brief(exc)}") from exc
    outputs = predictor.n_outputs()
    if outputs != len(predictor.labels):
        raise NotServableError(
            name, version, f"its label map has {len(predictor.labels)} labels, the model {outputs} outputs"
        )
    try:
        probs = predictor.predict_proba([SMOKE_TEXT])
    except Exception as exc:
        raise NotServableError(name, version, f"the smoke prediction failed: {brief(exc)}") from exc
    problem = output_problem(probs, predictor.labels, predictor.multilabel)
    if problem:
        raise NotServableError(name, version, f"the smoke prediction is malformed: {problem}")
    label = predictor.labels[int(probs[0].argmax())]
    return SmokeResult(str(version), label, round(time.perf_counter() - start, 3))


def output_problem(probs: np.ndarray, labels: list[str], multilabel: bool = False) -> str | None:
    """What is wrong with one text's probabilities (None: one finite probability per distinct label,
    each in [0, 1], summing to 1; a multi-label model's need not sum to 1)."""
    if not labels or len(set(labels)) != len(labels):
        return f"the label map {labels} is empty or repeats a label"
    if probs.shape != (1, len(labels)):
        return f"scores of shape {probs.shape} for one text and {len(labels)} labels"
    if not np.isfinite(probs).all():
        return "a score is not finite (NaN or infinity)"
    total = float(probs.sum())
    if (probs < 0).any() or (probs > 1).any() or not (multilabel or math.isclose(total, 1.0, abs_tol=1e-3)):
        return f"the scores are not probabilities (they sum to {total:.4f})"
    return None


def brief(exc: BaseException) -> str:
    """An exception as one short line with personal data masked: it goes into the audit ledger, MLflow
    tags and the CLI's one-line error."""
    from training.pii import mask_pii

    text = re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}").strip()
    text = mask_pii(text)
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"
