"""What the inference service runs on one adaptive batch: training's preprocessing and tokenizer,
one tokenisation of the whole batch, then forward passes on sub-batches under a token cap.

Why the cap: BentoML's `max_batch_size` counts texts, but memory grows with padded tokens
(rows x longest row). Splitting by tokens keeps any mix of requests (many texts, long texts)
within one bounded forward pass each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.model.encoding import collate, encode
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


class Classifier:
    """A `Predictor` (model, tokenizer, label map, preprocessing saved with the model) run with a
    token cap per forward pass. On a GPU the Predictor holds the model in bf16."""

    def __init__(self, predictor: Predictor, max_tokens_per_batch: int) -> None:
        self.predictor = predictor
        self.max_tokens = max_tokens_per_batch
        self.labels = predictor.labels

    @property
    def runtime(self) -> str:
        """What computes the forward pass: torch-fp32 (CPU), torch-bf16 (GPU)."""
        names = {"float32": "fp32", "bfloat16": "bf16"}
        dtype = str(self.predictor.dtype).removeprefix("torch.")
        return f"torch-{names.get(dtype, dtype)}"

    @classmethod
    def load(cls, model_dir: Path | str, max_tokens_per_batch: int, device: str = "auto") -> Classifier:
        return cls(Predictor.load(model_dir, device=device), max_tokens_per_batch)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [len(texts), len(labels)] in `labels` order, rows in input order."""
        import torch

        p = self.predictor
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        enc = encode(p.tokenizer, p.preprocessor(list(texts)), None, self.labels, p.max_length)
        out = np.zeros((len(enc), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for idx in token_capped_batches(enc.lengths, self.max_tokens):
                batch = collate(enc, idx)
                del batch["labels"]
                logits = p.model(**{k: v.to(p.device) for k, v in batch.items()}).logits.float()
                out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text: {"label", "score", "scores": {label: probability}}."""
        return [
            {
                "label": self.labels[int(row.argmax())],
                "score": float(row.max()),
                "scores": {lab: float(v) for lab, v in zip(self.labels, row)},
            }
            for row in self.predict_proba(texts)
        ]

    def warm_up(self) -> None:
        """One prediction through every stage (loads the spacing model, allocates GPU memory),
        so that the first real request is not the slow one. Readiness waits for this."""
        self.predict(list(WARM_UP_TEXTS))
