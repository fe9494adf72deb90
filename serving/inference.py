"""What the computing process runs on one adaptive batch: training's preprocessing and tokenizer,
one tokenisation of the whole batch, then forward passes on sub-batches under a token cap.

Why the cap: BentoML's `max_batch_size` counts texts, but memory grows with padded tokens
(rows x longest row). Splitting by tokens keeps any mix of requests (many texts, long texts)
within one bounded forward pass each.

Which runtime does the forward passes (`choose_runtime`): on a GPU torch in bf16; on a CPU torch in
fp32, or with `serve.cpu_runtime: onnx` the model quantized to int8 in ONNX Runtime
(training/model/onnx_runtime.py), 2x to 7x faster there (docs/benchmarks.md). int8 is served only
when the model's training run measured what it costs (`heara evaluate` logs the frozen-test macro-F1
drop) and the drop is within `serve.max_quantization_drop`; otherwise fp32 is served and the reason
logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from serving.schemas import Runtime
from training.model.base import to_proba
from training.model.encoding import collate, encode
from training.model.onnx_runtime import INT8_MACRO_F1_DROP, Int8Runner
from training.model.predictor import Predictor

WARM_UP_TEXTS = ("할머니 괜찮으세요? 도와주세요", "오늘 날씨가 좋네요")


def token_capped_batches(lengths: Sequence[int] | np.ndarray, max_tokens: int) -> list[np.ndarray]:
    """Every row index exactly once, in sub-batches whose padded size (rows x longest row) is at
    most `max_tokens`. Rows are taken longest first, so each sub-batch pads to its first row and
    rows of similar length share a sub-batch. A single row longer than the cap runs alone.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        width = max(int(lengths[order[start]]), 1)
        rows = max(1, max_tokens // width)
        batches.append(order[start : start + rows])
        start += rows
    return batches


class RuntimeChoice(NamedTuple):
    runtime: Runtime
    refusal: str | None = None  # why int8 was asked for and not granted (logged as a warning)


def quantization_refusal(metrics: Mapping[str, float], max_drop: float) -> str | None:
    """Why a model with these training-run metrics must not be served in int8, or None when it may.

    The drop (fp32 macro-F1 minus int8 macro-F1 on the frozen test split) must be known and at most
    `max_drop`. A model without the measurement (trained before `heara evaluate` measured it, or a
    bare folder without registry.json) is refused: its int8 accuracy is unknown.
    """
    drop = metrics.get(INT8_MACRO_F1_DROP)
    if drop is None or not math.isfinite(drop):
        return (
            f"the model's run has no {INT8_MACRO_F1_DROP} to hold against serve.max_quantization_drop "
            "(`heara evaluate` measures it; a folder without registry.json has no run metrics)"
        )
    if drop > max_drop:
        return f"int8 loses {drop:.4f} test macro-F1, more than serve.max_quantization_drop={max_drop}"
    return None


def choose_runtime(
    device: str,
    cpu_runtime: Literal["torch", "onnx"],
    metrics: Mapping[str, float],
    max_quantization_drop: float,
) -> RuntimeChoice:
    """The runtime a model is served with: a GPU always runs torch in bf16; a CPU runs int8 ONNX when
    `cpu_runtime` is "onnx" and `quantization_refusal` has no objection, else torch in fp32."""
    if device != "cpu":
        return RuntimeChoice("torch-bf16")
    if cpu_runtime != "onnx":
        return RuntimeChoice("torch-fp32")
    refusal = quantization_refusal(metrics, max_quantization_drop)
    return RuntimeChoice("torch-fp32", refusal) if refusal else RuntimeChoice("onnx-int8")


class Classifier:
    """A `Predictor` (model, tokenizer, label map, preprocessing saved with the model) run with a
    token cap per forward pass: by the Predictor's torch model (bf16 on a GPU, fp32 on a CPU) or, when
    given `int8`, by the int8 ONNX Runtime session of the same folder."""

    def __init__(
        self,
        predictor: Predictor,
        max_tokens_per_batch: int,
        int8: Callable[[Mapping[str, Any]], np.ndarray] | None = None,
    ) -> None:
        self.predictor = predictor
        self.max_tokens = max_tokens_per_batch
        self.labels = predictor.labels
        self.int8 = int8
        self.runtime: Runtime = (
            "sklearn"
            if predictor.family == "linear"
            else "onnx-int8"
            if int8 is not None
            else "torch-bf16"
            if predictor.device == "cuda"
            else "torch-fp32"
        )

    @classmethod
    def load(
        cls, model_dir: Path | str, max_tokens_per_batch: int, device: str = "auto", *, int8: bool = False
    ) -> Classifier:
        """`int8`: run the model quantized to int8 in ONNX Runtime (a CPU only; exported on first use and
        cached with the model, see training/model/onnx_runtime.py)."""
        predictor = Predictor.load(model_dir, device=device)
        if not int8 or predictor.family == "linear":  # a linear model is no neural net to quantize
            return cls(predictor, max_tokens_per_batch)
        if predictor.device != "cpu":
            raise ValueError(
                f"int8 runs on the CPU; this model is on {predictor.device} (torch in bf16 there)"
            )
        return cls(predictor, max_tokens_per_batch, Int8Runner.load(model_dir, model=predictor.model))

    def runtime_info(self) -> dict[str, str]:
        """device, dtype and runtime, as GET /model reports them."""
        if self.runtime == "sklearn":
            return {"device": "cpu", "dtype": "float64", "runtime": self.runtime}
        dtype = "int8" if self.int8 is not None else str(self.predictor.dtype).removeprefix("torch.")
        return {"device": self.predictor.device, "dtype": dtype, "runtime": self.runtime}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [len(texts), len(labels)] in `labels` order, rows in input order."""
        import torch

        p = self.predictor
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self.runtime == "sklearn":
            return p.predict_proba(list(texts))
        enc = encode(p.tokenizer, p.preprocessor(list(texts)), None, self.labels, p.max_length)
        out = np.zeros((len(enc), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for idx in token_capped_batches(enc.lengths, self.max_tokens):
                batch = collate(enc, idx)
                del batch["labels"]
                if self.int8 is not None:
                    logits = torch.from_numpy(self.int8(batch))
                else:
                    logits = p.model(**{k: v.to(p.device) for k, v in batch.items()}).logits.float()
                out[idx] = to_proba(logits, p.multilabel).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text: {"label", "score", "scores": {label: probability}}, and for a multi-label model
        "labels": the labels at or above their thresholds, most probable first."""
        out = []
        for row in self.predict_proba(texts):
            one: dict[str, Any] = {
                "label": self.labels[int(row.argmax())],
                "score": float(row.max()),
                "scores": {lab: float(v) for lab, v in zip(self.labels, row)},
            }
            if self.predictor.multilabel:
                one["labels"] = self.predictor.passing(row)
            out.append(one)
        return out

    def warm_up(self) -> None:
        """One prediction through every stage (loads the spacing model, allocates GPU memory),
        so that the first real request is not the slow one. Readiness waits for this."""
        self.predict(list(WARM_UP_TEXTS))
