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

from serving.schemas import FEATURES_KEY, Runtime
from training.model.base import to_proba
from training.model.encoding import collate, encode, special_tokens, token_counts
from training.model.onnx_runtime import INT8_MACRO_F1_DROP, Int8Runner
from training.model.predictor import Predictor
from training.model.projection import load_components, project, to_text
from training.pii import mask_pii

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
    given `int8`, by the int8 ONNX Runtime session of the same folder.

    `components`: the monitoring reference's projection components [dims, width]; with them every
    prediction carries its monitoring features under FEATURES_KEY (the module docstring)."""

    def __init__(
        self,
        predictor: Predictor,
        max_tokens_per_batch: int,
        int8: Callable[[Mapping[str, Any]], np.ndarray] | None = None,
        components: np.ndarray | None = None,
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
        self.components = None if components is None else np.asarray(components, dtype=np.float32)
        self._components_t = None  # torch's copy, [width, dims] on the model's device (torch runtimes)
        self._specials = 0  # special tokens per text ([CLS], [SEP])
        if self.components is not None and self.runtime != "sklearn":
            import torch

            self._specials = special_tokens(predictor.tokenizer)
            if int8 is None:
                self._components_t = torch.from_numpy(self.components.T.copy()).to(predictor.device)

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        max_tokens_per_batch: int,
        device: str = "auto",
        *,
        int8: bool = False,
        log_features: bool = False,
    ) -> Classifier:
        """`int8`: run the model quantized to int8 in ONNX Runtime (a CPU only; exported on first use and
        cached with the model, see training/model/onnx_runtime.py). `log_features`: capture monitoring
        features when the folder has a monitoring reference (only its components are read)."""
        predictor = Predictor.load(model_dir, device=device)
        components = load_components(model_dir) if log_features else None
        if not int8 or predictor.family == "linear":  # a linear model is no neural net to quantize
            return cls(predictor, max_tokens_per_batch, components=components)
        if predictor.device != "cpu":
            raise ValueError(
                f"int8 runs on the CPU; this model is on {predictor.device} (torch in bf16 there)"
            )
        runner = Int8Runner.load(model_dir, model=predictor.model)
        return cls(predictor, max_tokens_per_batch, runner, components=components)

    @property
    def captures(self) -> bool:
        """Whether predictions carry monitoring features (logging on, and the folder has a reference)."""
        return self.components is not None

    def runtime_info(self) -> dict[str, str]:
        """device, dtype and runtime, as GET /model reports them."""
        if self.runtime == "sklearn":
            return {"device": "cpu", "dtype": "float64", "runtime": self.runtime}
        dtype = "int8" if self.int8 is not None else str(self.predictor.dtype).removeprefix("torch.")
        return {"device": self.predictor.device, "dtype": dtype, "runtime": self.runtime}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [len(texts), len(labels)] in `labels` order, rows in input order."""
        return self._score(texts, capture=False)[0]

    def _score(self, texts: Sequence[str], capture: bool) -> tuple[np.ndarray, list[dict] | None]:
        """(probabilities, each text's monitoring features, or None without `capture`)."""
        import torch

        p = self.predictor
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32), [] if capture else None
        if self.runtime == "sklearn":
            if not capture:
                return p.predict_proba(list(texts)), None
            clean = p.preprocessor(list(texts))
            tfidf = p.embed(clean, preprocessed=True)  # what the pipeline reads, transformed once
            probs = p.predict_proba(clean, preprocessed=True, transformed=tfidf)
            return probs, self._features(clean, project(tfidf, self.components), None)
        clean = p.preprocessor(list(texts))
        enc = encode(p.tokenizer, clean, None, self.labels, p.max_length)
        out = np.zeros((len(enc), len(self.labels)), dtype=np.float32)
        hidden = capture and self._components_t is not None
        projection = np.zeros((len(enc), len(self.components)), np.float32) if hidden else None
        with torch.inference_mode():
            for idx in token_capped_batches(enc.lengths, self.max_tokens):
                batch = collate(enc, idx)
                del batch["labels"]
                if self.int8 is not None:
                    logits = torch.from_numpy(self.int8(batch))
                else:
                    inputs = {k: v.to(p.device) for k, v in batch.items()}
                    result = p.model(**inputs, output_hidden_states=hidden)
                    logits = result.logits.float()
                    if hidden:  # what Predictor.embed reads: [CLS] of the last layer
                        cls = result.hidden_states[-1][:, 0].float()
                        projection[idx] = (cls @ self._components_t).cpu().numpy()
                out[idx] = to_proba(logits, p.multilabel).cpu().numpy()
        if not capture:
            return out, None
        counts = token_counts(p.tokenizer, clean, p.max_length, encoded=enc, specials=self._specials)
        return out, self._features(clean, projection, counts)

    @staticmethod
    def _features(clean: list[str], projection: np.ndarray | None, counts) -> list[dict]:
        """Per text: {"projection": base64 float16 or None, "respaced": the text as the model read it with
        personal data masked (the unmasked one never leaves here), "pieces", "unk", "truncated" (None
        without a tokenizer)}, in plain JSON types: they cross the split topology's socket."""
        stored = to_text(projection) if projection is not None else [None] * len(clean)
        respaced = [mask_pii(t) for t in clean]
        if counts is None:
            return [
                {"projection": v, "respaced": r, "pieces": None, "unk": None, "truncated": None}
                for v, r in zip(stored, respaced)
            ]
        pieces, unknown, truncated = (x.tolist() for x in (counts.pieces, counts.unknown, counts.truncated))
        return [
            {"projection": v, "respaced": r, "pieces": k, "unk": u, "truncated": t}
            for v, r, k, u, t in zip(stored, respaced, pieces, unknown, truncated)
        ]

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text: {"label", "score", "scores": {label: probability}}, and for a multi-label model
        "labels": the labels at or above their thresholds, most probable first; when capturing, its
        monitoring features under FEATURES_KEY (the service removes them before answering)."""
        probs, features = self._score(texts, capture=self.captures)
        out = []
        for i, row in enumerate(probs):
            one: dict[str, Any] = {
                "label": self.labels[int(row.argmax())],
                "score": float(row.max()),
                "scores": {lab: float(v) for lab, v in zip(self.labels, row)},
            }
            if self.predictor.multilabel:
                one["labels"] = self.predictor.passing(row)
            if features is not None:
                one[FEATURES_KEY] = features[i]
            out.append(one)
        return out

    def warm_up(self) -> None:
        """One prediction through every stage (loads the spacing model, allocates GPU memory),
        so that the first real request is not the slow one. Readiness waits for this."""
        self.predict(list(WARM_UP_TEXTS))
