"""The Predictor (training/model/predictor.py) on a CUDA GPU: it loads there in bf16 and answers what the
CPU answers in fp32, within bf16's rounding.

Tolerance: bf16 keeps 8 bits of mantissa (about 0.4 % relative per operation); on the toy model the
probabilities moved by 3e-4 when the CPU ran it in bf16. 0.03 leaves room for the GPU's kernels
while still catching a broken path (wrong padding, mask or dtype), which moves a decisive prediction
by far more. Labels must agree wherever the CPU's answer is not close to a tie.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.model.predictor import Predictor
from training.trainer.ddp_smoke import toy_frame

PROB_ATOL = 0.03
CLEAR_MARGIN = 0.2  # top-two probability gap above which the labels must agree


def test_predictor_loads_on_cuda_in_bf16(toy_model_dir: Path) -> None:
    p = Predictor.load(toy_model_dir)  # auto: CUDA when present
    assert p.device == "cuda" and p.dtype == torch.bfloat16
    assert {(t.device.type, t.dtype) for t in p.model.parameters()} == {("cuda", torch.bfloat16)}


def test_cuda_bf16_agrees_with_cpu_fp32(toy_model_dir: Path) -> None:
    texts = toy_frame(64, seed=7)["text"].tolist() + [
        "오늘 날씨가 좋네요",
        "할머니 괜찮으세요? 도와주세요",
        "불이야 빨리 119",
    ]
    cpu = Predictor.load(toy_model_dir, device="cpu").predict_proba(texts)
    gpu = Predictor.load(toy_model_dir, device="cuda").predict_proba(texts)
    assert cpu.shape == gpu.shape == (len(texts), 2)
    np.testing.assert_allclose(gpu.sum(axis=1), 1.0, atol=1e-4)
    assert float(np.abs(gpu - cpu).max()) <= PROB_ATOL, np.abs(gpu - cpu).max()
    top2 = np.sort(cpu, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > CLEAR_MARGIN
    assert clear.sum() >= len(texts) // 2  # the comparison is not all ties: the model was trained
    assert (cpu.argmax(axis=1) == gpu.argmax(axis=1))[clear].all()
