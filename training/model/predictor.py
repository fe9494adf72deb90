"""The trained model as one self-contained folder, and the `Predictor` that serves it.

Training saves the folder, MLflow stores it inside the pyfunc model, and serving, batch prediction
and the promotion gate load it through `Predictor.load`: preprocessing, tokenizer and label map
are never written twice.

Folder layout: the Hugging Face model files (config.json, weights), the tokenizer files, and
`heara.json` = {"task", "family", "labels", "max_length", "preprocess", "base_model", "task_type"} and,
for a multi-label model, "thresholds" (one per label, tuned on the validation split).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from training.config import PreprocessConfig
from training.model.base import META_FILE, BasePredictor, Prediction, read_meta, to_proba

__all__ = [
    "META_FILE",
    "BasePredictor",
    "Prediction",
    "Predictor",
    "pick_device",
    "read_meta",
    "save_model_dir",
]


def pick_device(requested: str = "auto") -> str:
    """'cuda' when asked for or available (auto), else 'cpu'."""
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but no CUDA GPU is available")
        return "cuda"
    return "cpu"


def save_model_dir(
    model: Any,
    tokenizer: Any,
    out_dir: Path,
    *,
    task: str,
    family: str,
    labels: list[str],
    max_length: int,
    preprocess: PreprocessConfig,
    base_model: str,
    task_type: str = "multiclass",
    extra: dict | None = None,
) -> Path:
    """Write everything needed to predict from raw text into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    from training.model.build import transformers_quiet

    with transformers_quiet():  # no "Writing model shards" progress bar in every training log
        model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    meta = {
        "task": task,
        "family": family,
        "labels": list(labels),
        "max_length": max_length,
        "preprocess": json.loads(preprocess.model_dump_json()),
        "base_model": base_model,
        "task_type": task_type,
        **(extra or {}),
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out_dir


class Predictor(BasePredictor):
    """Raw texts -> label probabilities, on the GPU in bf16 when there is one, else on the CPU.

    `Predictor.load` opens a folder of any family: a `linear` folder gives a
    training.model.linear.LinearPredictor (same interface, no torch model)."""

    def __init__(self, model: Any, tokenizer: Any, meta: dict, device: str = "cpu") -> None:
        import torch

        super().__init__(meta)
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.model.to(device=device, dtype=self.dtype).eval()

    @classmethod
    def load(cls, model_dir: Path | str, device: str = "auto") -> "BasePredictor":
        model_dir = Path(model_dir)
        meta = read_meta(model_dir)
        if meta.get("family") == "linear":
            from training.model.linear import LinearPredictor

            return LinearPredictor.load_dir(model_dir, meta)
        from transformers import AutoModelForSequenceClassification

        from training.model.tokenizer import load_tokenizer

        model = AutoModelForSequenceClassification.from_pretrained(model_dir)
        tokenizer = load_tokenizer(model_dir, meta["family"])
        return cls(model, tokenizer, meta, pick_device(device))

    def _length_batches(self, clean: list[str], batch_size: int):
        """(row indices, tokenised batch) over `clean`, sorted by length so that each batch pads to a
        similar length; callers put each batch's rows back at their indices (input order)."""
        order = np.argsort([len(t) for t in clean], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [clean[i] for i in idx],
                max_length=self.max_length,
                padding=True,
                truncation=True,
                return_tensors="pt",
            )
            yield idx, enc

    def embed(self, texts: list[str], *, preprocessed: bool = False, batch_size: int = 64) -> np.ndarray:
        """The pooled representation the classification head reads ([CLS] of the last layer), float32
        [len(texts), hidden]: what monitoring projects to watch the inputs drift (training/evaluation/
        monitoring.py). Input order kept."""
        import torch

        clean = list(texts) if preprocessed else self.preprocessor(list(texts))
        width = int(getattr(self.model.config, "hidden_size", 0) or getattr(self.model.config, "dim", 0))
        out = np.zeros((len(clean), width), dtype=np.float32)
        with torch.inference_mode():
            for idx, enc in self._length_batches(clean, batch_size):
                inputs = {k: v.to(self.device) for k, v in enc.items()}
                hidden = self.model(**inputs, output_hidden_states=True).hidden_states[-1]
                out[idx] = hidden[:, 0].float().cpu().numpy()
        return out

    def n_outputs(self) -> int:
        """How many scores the model itself produces (its label map must have as many labels)."""
        return int(getattr(self.model.config, "num_labels", len(self.labels)))

    def size_bytes(self) -> int:
        """Bytes of the weights in memory (model size in leaderboards)."""
        return int(sum(p.numel() * p.element_size() for p in self.model.parameters()))

    def predict_proba(
        self,
        texts: list[str],
        *,
        preprocessed: bool = False,
        batch_size: int = 64,
        logits: Callable[[Mapping[str, Any]], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Probabilities [len(texts), len(labels)] in `labels` order (rows sum to 1; for a multi-label
        model each label's own probability).

        Texts are sorted by length before batching so that each batch pads to a similar length;
        the result is returned in the input order. `logits`: what turns a tokenised batch into logits
        instead of the torch model (the int8 ONNX runner, training/model/onnx_runtime.py).
        """
        import torch

        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        clean = list(texts) if preprocessed else self.preprocessor(list(texts))
        out = np.zeros((len(clean), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for idx, enc in self._length_batches(clean, batch_size):
                if logits is not None:
                    scores = torch.from_numpy(logits(enc))
                else:
                    scores = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits.float()
                out[idx] = to_proba(scores, self.multilabel).cpu().numpy()
        return out
