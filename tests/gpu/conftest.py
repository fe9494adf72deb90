"""What the tests on a CUDA GPU share: a tiny model trained on toy data, saved as a Heara model folder.

Every test in this folder is marked `gpu` by tests/conftest.py and skipped, with the reason, where torch
sees no CUDA device; `make gpu-check` (scripts/gpu_check.py) runs them with `pytest -m gpu` and records
the outcome. They live in a folder of their own rather than beside the CPU tests of each module because
they are one tier, defined by the hardware they need, run together on a lent GPU machine.

The model is trained on the CPU in fp32 (a few seconds), so that the GPU's side of each comparison is
the only thing on the GPU: a trained model gives decisive probabilities, which a broken GPU path moves
far more than bf16 rounding does (an untrained one answers about 0.5 everywhere, whatever the path).
Its preprocessing has no Kiwi spacing (the toy texts are spaced already): kiwipiepy's model is the largest
download of the stack, and nothing on the GPU's side depends on spacing. (The service test serves a model
of params.yaml's task instead, the root conftest's `tiny_model_factory`, also without spacing: the service
refuses a model whose labels lack serve.danger_labels.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

TOY_LABELS = ["emergency", "normal"]


@pytest.fixture(scope="session")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny KoBERT-format profile trained 4 epochs on toy data (validation macro-F1 about 0.97 on CPU)."""
    from training.config import ModelConfig, PreprocessConfig, TrainConfig
    from training.model.build import build_model
    from training.model.predictor import save_model_dir
    from training.trainer.ddp_smoke import toy_frame
    from training.trainer.loop import train

    work = tmp_path_factory.mktemp("gpu-toy-model")
    train_df, val_df = toy_frame(96, seed=0), toy_frame(32, seed=1)
    model_cfg = ModelConfig(max_length=32, tiny_vocab_size=100, dropout=0.1)
    train_cfg = TrainConfig(
        seed=3, epochs=4, early_stopping_patience=4, batch_size=16, lr=2e-3, warmup_ratio=0.1, device="cpu"
    )
    model, tokenizer, base = build_model(model_cfg, TOY_LABELS, train_df["text"].tolist(), work, seed=3)
    train(model, tokenizer, train_df, val_df, TOY_LABELS, model_cfg, train_cfg, work / "run")
    return save_model_dir(
        model,
        tokenizer,
        work / "model",
        task="toy",
        family="kobert",
        labels=TOY_LABELS,
        max_length=model_cfg.max_length,
        preprocess=PreprocessConfig(spacing="none"),  # the texts are already spaced; no Kiwi start-up
        base_model=base,
    )
