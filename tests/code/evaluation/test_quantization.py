"""int8's figures beside fp32's: macro-F1 as `evaluate` computes it, the drop and the agreement."""

from __future__ import annotations

import pytest

from training.evaluation.quantization import INT8_AGREEMENT, int8_metrics
from training.model.onnx_runtime import INT8_MACRO_F1, INT8_MACRO_F1_DROP


def test_int8_metrics() -> None:
    y_true = ["a", "a", "b", "b"]
    fp32 = ["a", "a", "b", "b"]  # macro-F1 1.0
    int8 = ["a", "b", "b", "b"]  # a: P 1, R 0.5 -> 2/3; b: P 2/3, R 1 -> 0.8
    m = int8_metrics(y_true, fp32, int8, fp32_macro_f1=1.0)
    assert m[INT8_MACRO_F1] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m[INT8_MACRO_F1_DROP] == pytest.approx(1.0 - m[INT8_MACRO_F1])
    assert m[INT8_AGREEMENT] == 0.75


def test_int8_metrics_reject_unequal_lengths() -> None:
    with pytest.raises(ValueError):
        int8_metrics(["a"], ["a", "b"], ["a"], 1.0)
