"""A model trained in-process once per test session, for the behaviour tests beside this file.

The real path, minus MLflow: `prepare` (ingest, validate, preprocess with Kiwi, split) on the sample
data into a temporary folder, then `build_model` (tiny KoBERT profile), `train`, and the saved model
folder loaded back as a `Predictor`, which is what serving and batch prediction use. The project's
params.yaml is used as it is, seeds included, so the model is the same on every run, except:

- augment.enabled false: augmentation doubles the prepare time and the training rows, and the
  checks in test_behaviour.py hold without it;
- train.device cpu, and torch on one thread while these tests run (`one_torch_thread`): on a small
  shared CPU torch's default, one thread per core, was 30 times slower than one thread for the same
  training steps while other processes held the cores; one thread is also reproducible.

About 30-60 s on two cores, which is why test_behaviour.py is marked slow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CSV = REPO_ROOT / "data" / "sample" / "utterances.csv"


@dataclass(frozen=True)
class TrainedModel:
    predictor: Any  # training.model.predictor.Predictor
    test: pd.DataFrame  # the held-out split (preprocessed), never seen in training
    best_val_macro_f1: float
    data_dir: Path  # the prepared folder (train/val/test parquet, .work/raw.parquet)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Each test here runs torch on one thread; other test modules keep the default."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    from training.config import load_params
    from training.model.build import build_model
    from training.model.predictor import Predictor, save_model_dir
    from training.steps.prepare import prepare
    from training.trainer.loop import train

    work = tmp_path_factory.mktemp("behaviour-model")
    params = load_params(overrides={"augment": {"enabled": False}, "train": {"device": "cpu"}})
    prepare(params, SAMPLE_CSV, work / "data")
    splits = {name: pd.read_parquet(work / "data" / f"{name}.parquet") for name in ("train", "val", "test")}
    labels = list(params.labels)
    with torch_threads(1):
        model, tokenizer, base = build_model(
            params.model, labels, splits["train"]["text"].tolist(), work / "base", seed=params.train.seed
        )
        result = train(
            model, tokenizer, splits["train"], splits["val"], labels, params.model, params.train, work / "run"
        )
    model_dir = save_model_dir(
        model,
        tokenizer,
        work / "model",
        task=params.task,
        family=params.model.family,
        labels=labels,
        max_length=params.model.max_length,
        preprocess=params.preprocess,
        base_model=base,
    )
    return TrainedModel(
        Predictor.load(model_dir, device="cpu"), splits["test"], result.best_val_macro_f1, work / "data"
    )
