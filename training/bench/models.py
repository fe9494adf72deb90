"""The model folder `heara bench serve` serves: tiny (a given folder or the champion) or base size.

- tiny: the folder given with `--model-dir`, else the registry's champion (downloaded into the
  serving cache), whatever its size: with `make demo`'s champion, the tiny profile.
- base: the shape the project serves in production, BERT-base (12 layers, 768 hidden, 12 heads,
  3072 intermediate; the same shape as `heara bench train --model-size base`) with KoBERT's vocabulary
  size of 8,002, randomly initialised: no hub is reachable, and speed does not depend on the weights.
  Its tokenizer is a SentencePiece model in KoBERT's layout ([UNK] 0, [PAD] 1, [CLS] 2, [SEP] 3)
  trained on the benchmark's text pool; SentencePiece stops short of 8,002 pieces on that pool
  (about 2,800), which changes no cost: the embedding matrix has KoBERT's 8,002 rows all the same.
  It is saved as a Heara model folder (task, labels, max_length and preprocessing from params.yaml)
  under `$HEARA_HOME/bench/` and reused while its recipe is unchanged (a hash names the folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from training.config import Params
from training.errors import ConfigError

MODEL_SIZES = ("tiny", "base")
BASE_SEED = 0
BASE_MODEL_NAME = "bench-bert-base-random"  # what heara.json records as the base model


def serving_model(model_size: str, model_dir: Path | None, params: Params) -> Path:
    """The model folder to benchmark; ConfigError for an unknown size or a folder given with "base"."""
    if model_size not in MODEL_SIZES:
        raise ConfigError(f"--model-size '{model_size}': use one of {', '.join(MODEL_SIZES)}")
    if model_size == "base":
        if model_dir is not None:
            raise ConfigError("--model-dir serves that folder: leave it out with --model-size base")
        return base_model_dir(params)
    if model_dir is not None:
        return Path(model_dir).resolve()
    from training.registry.champion import resolve_model

    return resolve_model(params.task).model_dir  # the champion (downloaded once into the cache)


def _recipe(params: Params, texts: list[str]) -> dict:
    """Everything the base folder is made from: a change to any of it builds another folder."""
    from training.bench.train import KOBERT_VOCAB, SHAPES

    return {
        "shape": SHAPES["base"],
        "vocab_size": KOBERT_VOCAB,
        "seed": BASE_SEED,
        "task": params.task,
        "labels": list(params.labels),
        "max_length": params.model.max_length,
        "preprocess": json.loads(params.preprocess.model_dump_json()),
        "texts": hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest(),
    }


def base_model_dir(params: Params) -> Path:
    """The base-size model folder for params' task and labels, built once (about 30 s, 350 MB) and
    reused. Built in a private folder and renamed into place, so an interrupted build leaves nothing
    that looks finished."""
    from training.bench.pool import build_pool
    from training.model.predictor import META_FILE
    from training.paths import state

    texts = build_pool()
    recipe = _recipe(params, texts)
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    final = state().bench / f"serve-base-{params.task}-{digest}"
    if (final / META_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _build_base(params, texts, recipe, tmp)
        os.rename(tmp, final)
    except OSError:
        if not (final / META_FILE).is_file():
            raise
        # another run finished the same folder first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _build_base(params: Params, texts: list[str], recipe: dict, out: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from training.model.predictor import save_model_dir
    from training.model.tiny import train_kobert_spiece
    from training.model.tokenizer import SPIECE_FILE, KoBertTokenizer

    labels = list(params.labels)
    spiece = out / "tokenizer-build" / SPIECE_FILE
    spiece.parent.mkdir(parents=True)
    spiece.write_bytes(train_kobert_spiece(texts, vocab_size=recipe["vocab_size"], seed=BASE_SEED))
    tokenizer = KoBertTokenizer(spiece)
    config = BertConfig(
        vocab_size=recipe["vocab_size"],
        pad_token_id=tokenizer.pad_token_id,
        type_vocab_size=2,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **recipe["shape"],
    )
    torch.manual_seed(BASE_SEED)
    model = BertForSequenceClassification(config).eval()
    save_model_dir(
        model,
        tokenizer,
        out,
        task=params.task,
        family="kobert",
        labels=labels,
        max_length=params.model.max_length,
        preprocess=params.preprocess,
        base_model=BASE_MODEL_NAME,
        extra={"bench_recipe": {k: v for k, v in recipe.items() if k != "preprocess"}},
    )
    shutil.rmtree(spiece.parent)
