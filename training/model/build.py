"""The classifier and its tokenizer, for both model families.

- family "kobert": BertForSequenceClassification + KoBertTokenizer (SentencePiece in BERT layout),
  from `model.name` (skt/kobert-base-v1) or, with profile "tiny", from a tiny KoBERT-format folder
  built offline from the training texts. Both go through the same loading code.
- family "hf": AutoTokenizer + AutoModelForSequenceClassification for any encoder (klue/bert-base,
  monologg/koelectra-base-v3-discriminator, a local folder, ...).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from training.config import ModelConfig
from training.errors import ConfigError
from training.model.tokenizer import load_tokenizer

log = logging.getLogger("heara.train")

TINY_SEED = 0  # the tiny "pretrained" body is fixed; the training seed only drives the head and SGD
TINY_BASE_MODEL = "tiny-kobert"

# Where each architecture reads the dropout in front of its classification head.
_DROPOUT_ATTR = {
    "distilbert": "seq_classif_dropout",
    "deberta": "cls_dropout",
    "deberta-v2": "cls_dropout",
    "albert": "classifier_dropout_prob",
}


def tiny_kobert_dir(
    train_texts: Sequence[str], work_dir: Path, vocab_size: int, hidden_size: int = 64, layers: int = 2
) -> Path:
    """A tiny KoBERT-format folder for these texts under work_dir, built once and reused.

    The folder name is a hash of the texts and the model's sizes, so a resumed run or a second
    process (torchrun) finds the same tokenizer instead of training another one. Each builder writes
    to a private folder and renames it into place; a loser of that race uses the winner's folder.
    """
    from training.model.tiny import build_tiny_kobert

    # The default shape keeps the name it had before the shape could be chosen (existing runs resume).
    shape = "" if (hidden_size, layers) == (64, 2) else f"{hidden_size}x{layers}\0"
    digest = hashlib.sha256(f"{vocab_size}\0{TINY_SEED}\0{shape}".encode())
    for text in train_texts:
        digest.update(text.encode("utf-8") + b"\0")
    final = Path(work_dir) / f"{TINY_BASE_MODEL}-{digest.hexdigest()[:12]}"
    if (final / "config.json").is_file():
        return final
    tmp = Path(work_dir) / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny_kobert(
        list(train_texts), tmp, vocab_size=vocab_size, seed=TINY_SEED, hidden_size=hidden_size, layers=layers
    )
    try:
        os.rename(tmp, final)
    except OSError:  # another process got there first: its folder is the same model
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("tiny KoBERT model at %s", final)
    return final


def set_classifier_dropout(config, dropout: float) -> str:
    """Set the classification-head dropout on a transformers config; returns the attribute used."""
    attr = _DROPOUT_ATTR.get(getattr(config, "model_type", ""), "classifier_dropout")
    setattr(config, attr, dropout)
    return attr


@contextmanager
def transformers_quiet() -> Iterator[None]:
    """Silence transformers' warnings and progress bars for one call (restoring both after it)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _log_loading(source: str | Path, info: dict, labels: Sequence[str]) -> None:
    """One line for the expected outcome of putting a classifier on a base model (a new, randomly
    initialised head), a warning for anything else missing from the checkpoint.

    transformers prints a "LOAD REPORT" table of the missing `classifier.*` weights as a warning on
    every such load; that is the point of fine-tuning, so it is silenced and summarised here instead.
    """
    missing = list(info.get("missing_keys", ()))
    head = [k for k in missing if k.startswith("classifier.")]
    body = [k for k in missing if k not in head]
    log.info(
        "new classification head initialised for %d labels on %s, as expected (%s)",
        len(labels),
        Path(str(source)).name,
        ", ".join(head) or "no head weights missing",
    )
    if body or info.get("mismatched_keys"):
        log.warning(
            "%s: weights missing from the checkpoint (randomly initialised): %s%s",
            source,
            ", ".join(map(str, body[:10])) or "-",
            f"; size mismatches: {info['mismatched_keys']}" if info.get("mismatched_keys") else "",
        )
    if info.get("unexpected_keys"):
        log.debug("%s: checkpoint weights not used: %s", source, ", ".join(map(str, info["unexpected_keys"])))


def load_classifier(
    source: str | Path,
    family: str,
    labels: Sequence[str],
    dropout: float,
    seed: int | None = None,
    multilabel: bool = False,
):
    """A sequence classifier from a model folder or hub id with the label maps and head dropout set
    (`multilabel`: the config says multi_label_classification, a sigmoid per label).

    The head is new (randomly initialised); `seed` fixes that initialisation. A source that cannot be
    loaded (a wrong model.name, no network for a hub id) raises ConfigError.
    """
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        BertConfig,
        BertForSequenceClassification,
    )

    config_cls, model_cls = (
        (BertConfig, BertForSequenceClassification)
        if family == "kobert"
        else (AutoConfig, AutoModelForSequenceClassification)
    )
    try:
        config = config_cls.from_pretrained(
            str(source),
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            problem_type="multi_label_classification" if multilabel else "single_label_classification",
        )
    except OSError as e:
        raise ConfigError(
            f"model.name '{source}': cannot load its config ({str(e).splitlines()[0]})"
        ) from None
    set_classifier_dropout(config, dropout)
    if seed is not None:
        torch.manual_seed(seed)
    with transformers_quiet():
        model, info = model_cls.from_pretrained(str(source), config=config, output_loading_info=True)
    _log_loading(source, info, labels)
    return model


def build_model(
    model_cfg: ModelConfig,
    labels: Sequence[str],
    train_texts: Sequence[str],
    work_dir: Path,
    *,
    seed: int = 0,
    multilabel: bool = False,
):
    """(model, tokenizer, base_model) ready for `train`.

    model_cfg.profile "tiny" (family kobert only) builds a tiny KoBERT-format model from
    `train_texts` under `work_dir`; "full" loads `model_cfg.name` (hub id or local folder).
    base_model is what the model directory records as its origin. `seed` fixes the randomly
    initialised head (pass train.seed, so that another seed also draws another head).
    Raises ConfigError for a combination that cannot work (tiny hf, max_length beyond the model).
    """
    labels = list(labels)
    if len(labels) < 2:
        raise ConfigError(f"a classifier needs at least two labels, got {labels}")
    if model_cfg.family == "kobert" and model_cfg.profile == "tiny":
        source: str | Path = tiny_kobert_dir(
            train_texts,
            Path(work_dir),
            model_cfg.tiny_vocab_size,
            model_cfg.tiny_hidden_size,
            model_cfg.tiny_layers,
        )
        base_model = TINY_BASE_MODEL
    elif model_cfg.profile == "tiny":
        raise ConfigError(
            "model.profile 'tiny' builds a KoBERT-format model; with model.family 'hf' set "
            "model.profile to 'full' and model.name to a hub id or a local model folder"
        )
    else:
        source = base_model = model_cfg.name
    try:
        tokenizer = load_tokenizer(source, model_cfg.family)
    except (OSError, ValueError) as e:  # ValueError: the tokenizer does not fit model.family (tokenizer.py)
        raise ConfigError(
            f"model.name '{source}' (model.family {model_cfg.family}): cannot load its tokenizer "
            f"({str(e).splitlines()[0]})"
        ) from None
    model = load_classifier(
        source, model_cfg.family, labels, model_cfg.dropout, seed=seed, multilabel=multilabel
    )
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and model_cfg.max_length > limit:
        raise ConfigError(
            f"model.max_length {model_cfg.max_length} exceeds the {limit} positions of {base_model}"
        )
    inner = getattr(tokenizer, "tokenizer", tokenizer)  # HFTokenizer wraps a transformers tokenizer
    vocab = len(inner) if hasattr(type(inner), "__len__") else inner.vocab_size  # len counts added tokens
    if vocab > model.config.vocab_size:
        raise ConfigError(
            f"the tokenizer of {base_model} has {vocab} ids but the model only "
            f"{model.config.vocab_size} embeddings"
        )
    return model, tokenizer, base_model
