"""Multi-process data parallelism (torchrun sets RANK, LOCAL_RANK, WORLD_SIZE; nothing to do otherwise).

One process per GPU (or CPU process for the smoke test). Every rank builds the same batches from the
same seed and takes its own share; DistributedDataParallel averages gradients; rank 0 alone
evaluates, saves and logs, and broadcasts what the others need to stop together.
See docs/multi_gpu.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialised_here: bool = False  # we created the process group, so we destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) as torchrun exports them; (0, 0, 1) in a plain process."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
    )


def is_main_process() -> bool:
    """True outside torchrun and on rank 0: callers save models and log to MLflow only there."""
    return world_from_env()[0] == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group when launched with WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU).

    Idempotent: a caller that already initialised the group (e.g. to build the tokenizer on rank 0
    first) keeps ownership of it.
    """
    rank, local_rank, world = world_from_env()
    if world <= 1:
        return DistInfo()
    if dist.is_initialized():
        return DistInfo(rank, local_rank, world, initialised_here=False)
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(rank, local_rank, world, initialised_here=True)


def broadcast(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank (identity without a process group)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(value: float, info: DistInfo) -> float:
    """Sum of a float over ranks (e.g. samples processed)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item())


def shutdown(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()
