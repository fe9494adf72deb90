"""What int8 costs: the quantized model scored on the same frozen test split as the full-precision one.

The service serves the int8 ONNX model on a CPU only when this measurement exists and the macro-F1 drop
is within `serve.max_quantization_drop` (serving.inference.quantization_refusal), so the figures are
logged to the candidate's run, where the registry hands them to the service with the model.

Only the plain test split is scored: the slices and latency of `evaluate` describe the model, and the
question here is only how far int8 moves its predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score

from training.model.onnx_runtime import INT8_MACRO_F1, INT8_MACRO_F1_DROP, Int8Runner

INT8_AGREEMENT = "test_int8_agreement"  # share of test rows where int8 predicts fp32's label


def int8_metrics(
    y_true: Sequence[str], pred_fp32: Sequence[str], pred_int8: Sequence[str], fp32_macro_f1: float
) -> dict[str, float]:
    """int8's test macro-F1 (sklearn's macro average, as `evaluate` computes fp32's), the drop from
    `fp32_macro_f1` (positive: int8 is worse) and the agreement between the two models' labels."""
    y_true, a, b = (np.asarray(x, dtype=str) for x in (y_true, pred_fp32, pred_int8))
    if not (len(y_true) == len(a) == len(b)) or len(y_true) == 0:
        raise ValueError("y_true, pred_fp32 and pred_int8 must be non-empty and of equal length")
    macro_f1 = float(f1_score(y_true, b, average="macro", zero_division=0))
    return {
        INT8_MACRO_F1: macro_f1,
        INT8_MACRO_F1_DROP: float(fp32_macro_f1) - macro_f1,
        INT8_AGREEMENT: float(np.mean(a == b)),
    }


def int8_labels(predictor, model_dir, texts: Sequence[str]) -> np.ndarray:
    """The label the int8 ONNX model of `model_dir` predicts for each text (exported on first use and
    cached beside the model, training/model/onnx_runtime.py), through the predictor's own preprocessing,
    tokenizer and batching: only the forward pass differs from fp32."""
    runner = Int8Runner.load(model_dir, model=predictor.model)
    probs = predictor.predict_proba(list(texts), logits=runner)
    return np.asarray(predictor.labels, dtype=str)[probs.argmax(axis=1)]
