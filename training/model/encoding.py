"""Token ids for a model: encode texts once (no padding), then collate rows into right-padded tensors.

Shared by the trainer (training/trainer/) and the service (serving/inference.py), so that a served text
is encoded exactly as the texts the model was trained on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.errors import ConfigError


@dataclass(frozen=True)
class Encoded:
    """Token ids of every row (with [CLS]/[SEP], truncated, unpadded) and label indices."""

    ids: list[list[int]]
    labels: np.ndarray  # int64 [n]; a multi-label task's: float32 0/1 [n, labels]
    pad_id: int
    type_ids: bool  # whether the model takes token_type_ids (BERT does, RoBERTa-style models do not)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(r) for r in self.ids), dtype=np.int64, count=len(self.ids))

    def __len__(self) -> int:
        return len(self.ids)


def encode(
    tokenizer,
    texts: Sequence[str],
    labels: Sequence[str] | None,
    label_names: Sequence[str],
    max_length: int,
    *,
    multilabel: bool = False,
) -> Encoded:
    """Tokenise `texts` once (no padding); labels (strings) become indices into `label_names` (or, for a
    multi-label task, 0/1 rows over `label_names`: training/data/labels.py).

    Raises ConfigError (a ValueError) naming a label that is not in `label_names`: a label set that does
    not fit the data (another task's `labels`).
    """
    enc = tokenizer(list(texts), max_length=max_length, padding=False, truncation=True)
    index = {name: i for i, name in enumerate(label_names)}
    if labels is None:
        y = np.zeros(len(texts), dtype=np.int64)
    elif multilabel:
        from training.data.labels import indicator

        y = indicator(labels, label_names)
    else:
        unknown = sorted({lab for lab in labels if lab not in index})
        if unknown:
            raise ConfigError(
                f"labels {unknown} are not among the model's labels {list(label_names)}: "
                "set `labels` for this data (a prepared folder's dataset.json does)"
            )
        y = np.array([index[lab] for lab in labels], dtype=np.int64)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ConfigError("the tokenizer has no pad token: choose a model.name whose tokenizer defines one")
    return Encoded([list(r) for r in enc["input_ids"]], y, int(pad_id), "token_type_ids" in enc)


def collate(
    data: Encoded, index: np.ndarray, pad_to: int | None = None, multiple_of: int = 1
) -> dict[str, torch.Tensor]:
    """Tensors for the rows `index`: right-padded with data.pad_id to the longest row, rounded up to
    `multiple_of` (or to exactly `pad_to`, the reference padding to max_length).

    The attention mask comes from the row lengths, never from comparing ids with 0: KoBERT's [PAD]
    is 1 and 0 is [UNK], a real token.
    """
    rows = [data.ids[i] for i in index]
    width = pad_to if pad_to is not None else -(-max(len(r) for r in rows) // multiple_of) * multiple_of
    input_ids = torch.full((len(rows), width), data.pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, row in enumerate(rows):
        n = min(len(row), width)
        input_ids[j, :n] = torch.tensor(row[:n], dtype=torch.long)
        attention_mask[j, :n] = 1
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": torch.from_numpy(data.labels[index]),
    }
    if data.type_ids:
        batch["token_type_ids"] = torch.zeros_like(input_ids)  # single sentences: segment 0 throughout
    return batch


@dataclass(frozen=True)
class TokenCounts:
    """What the tokenizer made of each text (the descriptors' unk_rate, pieces_per_eojeol, truncated)."""

    pieces: np.ndarray  # int64 [n]: the text's pieces, special tokens left out, none cut off
    unknown: np.ndarray  # int64 [n]: pieces the vocabulary does not have (the tokenizer's unknown id)
    truncated: np.ndarray  # bool [n]: more pieces than fit in max_length beside the special tokens


def special_tokens(tokenizer) -> int:
    """How many special tokens the tokenizer adds to one text ([CLS] and [SEP]: 2)."""
    return len(tokenizer([""], max_length=8, padding=False, truncation=False)["input_ids"][0])


def token_counts(
    tokenizer,
    texts: Sequence[str],
    max_length: int,
    *,
    encoded: Encoded | None = None,
    specials: int | None = None,
) -> TokenCounts:
    """Per text: its pieces, its unknown pieces and whether it was truncated.

    Unknown pieces are counted by id: KoBertTokenizer.tokenize returns an unknown piece's own characters
    (never the string "[UNK]"), so counting "[UNK]" strings finds none. `encoded`: the texts' ids as
    `encode` made them (cut at max_length): then only the rows that reached max_length are tokenised again,
    without the cut, and the rest is counted from those ids. `specials`: `special_tokens(tokenizer)`
    when the caller has it already.
    """
    specials = special_tokens(tokenizer) if specials is None else specials
    if encoded is None:
        ids = tokenizer(list(texts), max_length=max_length, padding=False, truncation=False)["input_ids"]
    else:
        if len(encoded) != len(texts):
            raise ValueError(f"token_counts: {len(encoded)} encoded rows for {len(texts)} texts")
        ids = encoded.ids
        capped = [i for i, row in enumerate(ids) if len(row) >= max_length]
        if capped:
            whole = [texts[i] for i in capped]
            full = tokenizer(whole, max_length=max_length, padding=False, truncation=False)["input_ids"]
            ids = list(ids)
            for i, row in zip(capped, full):
                ids[i] = row
    # Plain list operations (C loops per row): on the service's batches of a few texts, numpy's fixed cost
    # per call was several times the whole count.
    unk_id = getattr(tokenizer, "unk_token_id", None)
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    unknown = np.array([row.count(unk_id) if unk_id is not None else 0 for row in ids], dtype=np.int64)
    return TokenCounts(np.maximum(lengths - specials, 0), unknown, lengths > max_length)
