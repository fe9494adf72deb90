"""The trainer on a CUDA GPU (training/trainer/runtime.py, training/trainer/loop.py): the runtime picks
bf16 autocast, bf16 steps of the tiny profile lower the loss, and `train` runs end to end on the GPU.

The CPU behaviour of the same functions is tested in tests/code/trainer/test_loop.py; here only what
differs on a GPU: the device, autocast to bf16 with fp32 weights, the fused AdamW kernel on CUDA.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from training.config import ModelConfig, TrainConfig
from training.model.build import build_model
from training.model.encoding import collate, encode
from training.trainer.ddp_smoke import toy_frame
from training.trainer.loop import train
from training.trainer.runtime import (
    Runtime,
    forward_loss,
    make_optimizer,
    optimizer_step,
    resolve_runtime,
    to_device,
    warmup_linear_schedule,
)

LABELS = ["emergency", "normal"]
MODEL = ModelConfig(max_length=32, tiny_vocab_size=100, dropout=0.1)


def fit_one_batch(runtime: Runtime, work: Path, steps: int = 20) -> tuple[list[float], str, torch.nn.Module]:
    """`steps` optimizer steps on one batch of 32 toy rows with the trainer's step functions: the losses,
    the AdamW implementation and the model. A model that fits one batch has working gradients."""
    df = toy_frame(32, seed=0)
    model, tokenizer, _ = build_model(MODEL, LABELS, df["text"].tolist(), work, seed=0)
    model.to(runtime.device).train()
    data = encode(tokenizer, df["text"].tolist(), df["label"].tolist(), LABELS, MODEL.max_length)
    batch = to_device(collate(data, np.arange(len(df)), multiple_of=runtime.pad_multiple), runtime.device)
    optimizer, impl = make_optimizer(model, 2e-3, 0.01, runtime.device)
    scheduler = warmup_linear_schedule(optimizer, 0, 10 * steps)  # nearly constant LR over these steps
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        loss = forward_loss(model, batch, loss_fn, runtime)
        loss.backward()
        optimizer_step(model, optimizer, scheduler)
        losses.append(float(loss.item()))
    return losses, impl, model


def test_runtime_on_cuda_is_bf16_autocast_with_tf32() -> None:
    runtime = resolve_runtime("auto", "auto")
    assert runtime.device.type == "cuda" and runtime.pad_multiple == 8
    assert torch.cuda.is_bf16_supported(), f"{torch.cuda.get_device_name()} has no bf16 (pre-Ampere?)"
    assert runtime.precision == "bf16" and torch.get_float32_matmul_precision() == "high"


def test_bf16_steps_lower_the_loss_with_fp32_weights(tmp_path: Path) -> None:
    runtime = resolve_runtime("cuda", "bf16")
    losses, impl, model = fit_one_batch(runtime, tmp_path)
    assert all(math.isfinite(x) for x in losses), losses
    assert losses[-1] < 0.5 * losses[0], losses
    assert impl == "fused"  # AdamW's fused CUDA kernel, not the fallback
    # autocast computes in bf16 but keeps the weights (and the optimizer's state) in fp32
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert next(model.parameters()).device.type == "cuda"
    ids = torch.tensor([[2, 10, 11, 3]], device=runtime.device)
    with torch.no_grad(), runtime.autocast():
        assert model(input_ids=ids).logits.dtype == torch.bfloat16


def test_train_runs_on_cuda_in_bf16(tmp_path: Path) -> None:
    train_df, val_df = toy_frame(96, seed=0), toy_frame(32, seed=1)
    model, tokenizer, _ = build_model(MODEL, LABELS, train_df["text"].tolist(), tmp_path / "base", seed=3)
    cfg = TrainConfig(seed=3, epochs=2, batch_size=16, lr=2e-3, warmup_ratio=0.1, device="cuda")
    result = train(model, tokenizer, train_df, val_df, LABELS, MODEL, cfg, tmp_path / "run")
    assert result.device.startswith("cuda") and result.precision == "bf16" and result.optimizer == "fused"
    assert result.epochs_run == 2 and result.samples_per_s > 0
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in result.history)
    assert 0 <= result.best_val_macro_f1 <= 1
