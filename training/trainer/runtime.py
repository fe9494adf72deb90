"""The pieces of one training step, shared by the trainer and its benchmark (training/bench/train.py).

Device and precision: CUDA when present (bf16 autocast, TF32 matmuls), else CPU in fp32.
Optimizer: AdamW with the fused kernel where the device supports it (foreach otherwise), no weight
decay on biases and LayerNorm weights. Schedule: linear warm-up, then linear decay to 0.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass

import numpy as np
import torch

MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class Runtime:
    """Where and how tensors are computed."""

    device: torch.device
    precision: str  # "bf16" | "fp32"

    def autocast(self):
        """bf16 autocast: matmuls in bf16, reductions and the loss stay fp32 (no loss scaling needed)."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def pad_multiple(self) -> int:
        # On a GPU, widths that are multiples of 8 suit the tensor cores and keep the number of
        # distinct shapes (torch.compile graphs) small; on a CPU every saved column counts.
        return 8 if self.device.type == "cuda" else 1


def resolve_runtime(device: str = "auto", precision: str = "auto", local_rank: int = 0) -> Runtime:
    """Pick the device and precision. device: auto|cpu|cuda; precision: auto|fp32|bf16.

    auto precision is bf16 on a GPU that supports it and fp32 on a CPU (CPU bf16 is slower on most
    CPUs without AMX). Raises RuntimeError when cuda is asked for and absent.
    """
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if precision == "auto":
        precision = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and use_cuda and not torch.cuda.is_bf16_supported():
        raise RuntimeError("train.precision is 'bf16' but this GPU does not support bfloat16")
    if use_cuda:
        torch.set_float32_matmul_precision("high")  # TF32 for whatever matmuls autocast leaves in fp32
    return Runtime(dev, precision)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device, fused: bool = True
) -> tuple[torch.optim.Optimizer, str]:
    """AdamW and the implementation used ("fused", "foreach" or "for-loop").

    Weight decay applies to matrices only: decaying biases and LayerNorm gains only hurts.
    fused=False gives the for-loop implementation the seed notebooks used (the benchmark reference).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if not fused:
        return torch.optim.AdamW(groups, lr=lr, foreach=False), "for-loop"
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True), "fused"
    except (RuntimeError, TypeError, ValueError):  # device or dtype without a fused kernel
        return torch.optim.AdamW(groups, lr=lr, foreach=True), "foreach"


def warmup_linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """LR factor rising linearly over warmup_steps, then falling linearly to 0 at total_steps.

    Unlike transformers' get_linear_schedule_with_warmup the first step does not run at LR 0.
    """
    total = max(total_steps, 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total - step) / max(1, total - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_steps_for(total_steps: int, warmup_ratio: float) -> int:
    return math.floor(total_steps * warmup_ratio)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}


def forward_loss(model, batch: dict[str, torch.Tensor], loss_fn, runtime: Runtime) -> torch.Tensor:
    """Mean loss of one batch (already on the device); the loss is computed in fp32."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with runtime.autocast():
        logits = model(**inputs).logits
    return loss_fn(logits.float(), batch["labels"])


def optimizer_step(model, optimizer, scheduler, max_norm: float = MAX_GRAD_NORM) -> torch.Tensor:
    """Clip gradients, step, advance the schedule, clear gradients. Returns the pre-clip norm
    (a device tensor: reading it would synchronise)."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
