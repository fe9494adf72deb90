"""Checkpoints that let an interrupted training run resume where it stopped.

out_dir/checkpoints/last.pt: model, optimizer, scheduler, run_state (epoch, step, best score, history),
RNG states and a fingerprint of the run; written after every epoch. best.pt: the weights of the
best epoch so far. Both are written to a temporary file and renamed, so a kill mid-write leaves the
previous checkpoint intact. They load with `weights_only=True` (no pickled code).
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("heara.train")

FORMAT = 1


@dataclass
class RunState:
    """Where a run stands after its last finished epoch."""

    epoch: int = 0  # last finished epoch (1-based); 0 = nothing done
    step: int = 0  # optimizer steps so far
    best_f1: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the last improvement (early stopping)
    finished: bool = False
    stop_reason: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) generator states, in types that weights_only accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value):
    """random.setstate wants tuples; a checkpoint round trip may return lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the weights (the live tensors keep training)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Checkpoints:
    """The checkpoint folder of one run."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.last = self.folder / "last.pt"
        self.best = self.folder / "best.pt"

    def save_last(
        self, model, optimizer, scheduler, run_state: RunState, fingerprint: dict[str, Any]
    ) -> None:
        _atomic_save(
            {
                "format": FORMAT,
                "model": cpu_state_dict(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "progress": asdict(run_state),
                "rng": rng_state(),
                "fingerprint": fingerprint,
            },
            self.last,
        )

    def save_best(self, state_dict: dict[str, torch.Tensor]) -> None:
        _atomic_save(state_dict, self.best)

    def load_best(self) -> dict[str, torch.Tensor] | None:
        return torch.load(self.best, map_location="cpu", weights_only=True) if self.best.is_file() else None

    def load_last(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        """The last checkpoint when it belongs to a run like this one, else None (and a warning)."""
        if not self.last.is_file():
            return None
        ckpt = torch.load(self.last, map_location="cpu", weights_only=True)
        if ckpt.get("format") != FORMAT:
            log.warning(
                "ignoring %s: checkpoint format %s, expected %s", self.last, ckpt.get("format"), FORMAT
            )
            return None
        theirs = ckpt.get("fingerprint", {})
        changed = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
        if changed:
            # Different data or settings: continuing would mix two runs. Start afresh instead.
            log.warning(
                "ignoring %s: it belongs to a different run (%s changed); starting afresh",
                self.last,
                ", ".join(changed),
            )
            return None
        return ckpt

    @staticmethod
    def run_state_of(ckpt: dict[str, Any]) -> RunState:
        return RunState(**ckpt["progress"])
