"""A few data-parallel training steps of the tiny profile on toy data: proof that the torchrun path works.

    torchrun --standalone --nproc_per_node 2 -m training.trainer.ddp_smoke --out /tmp/ddp-smoke

Runs on CPU (gloo) or GPUs (nccl). Every rank writes rank<r>.json with a checksum of its final
weights (DDP must keep them identical); rank 0 also writes result.json with the TrainResult.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

TOY_WORDS = {
    "emergency": [
        "불이야",
        "살려줘",
        "숨이",
        "안 쉬어져",
        "쓰러졌어",
        "피가",
        "119",
        "가슴이",
        "아파",
        "빨리",
    ],
    "normal": ["오늘", "날씨가", "좋네", "밥", "먹었어", "산책", "가자", "텔레비전", "보고", "싶어"],
}


def toy_frame(n: int, seed: int = 0, labels: tuple[str, ...] = ("emergency", "normal")) -> pd.DataFrame:
    """n rows (columns text, label) that a tiny model separates easily: each label has its own words."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = TOY_WORDS[label]
        rows.append({"text": " ".join(rng.choice(words, size=int(rng.integers(2, 7)))), "label": label})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    import torch

    from training.config import ModelConfig, TrainConfig
    from training.model.build import build_model
    from training.trainer.distributed import barrier, init_distributed, shutdown
    from training.trainer.loop import train

    parser = argparse.ArgumentParser(description="DDP smoke test of the trainer")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)

    model_cfg = ModelConfig(max_length=32, tiny_vocab_size=100)
    train_cfg = TrainConfig(seed=1, epochs=2, batch_size=8, lr=1e-3, max_steps=args.steps, device=args.device)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    info = init_distributed("cuda" if use_cuda else "cpu")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        labels = ["emergency", "normal"]
        train_df, val_df = toy_frame(96, seed=0), toy_frame(32, seed=1)
        work = args.out / "work"
        # Rank 0 builds the tiny model folder; the others then find it instead of building their own.
        if not info.is_main:
            barrier(info)
        model, tokenizer, _ = build_model(
            model_cfg, labels, train_df["text"].tolist(), work, seed=train_cfg.seed
        )
        if info.is_main:
            barrier(info)
        result = train(
            model, tokenizer, train_df, val_df, labels, model_cfg, train_cfg, args.out / "run", resume=False
        )
        checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
        (args.out / f"rank{info.rank}.json").write_text(
            json.dumps(
                {
                    "rank": info.rank,
                    "world_size": info.world_size,
                    "checksum": checksum,
                    "steps": result.steps,
                }
            )
        )
        if info.is_main:
            (args.out / "result.json").write_text(json.dumps(asdict(result), default=str))
    finally:
        shutdown(info)


if __name__ == "__main__":
    main()
