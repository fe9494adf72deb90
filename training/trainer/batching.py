"""Batches for training: tokenise once, group by length, pad each batch only to its longest row.

Why: utterances are short (median ~14-18 tokens) but a few run to max_length. Padding every batch to
max_length, as the seed notebooks did, spends most of the compute on [PAD]. Sorting by length inside
shuffled mega-chunks keeps batches random enough for SGD while rows in a batch have similar lengths.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np
import torch

from training.model.encoding import Encoded, collate

MEGA_CHUNK_BATCHES = 50  # rows sorted by length within chunks of this many batches


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, mega_chunk: int = MEGA_CHUNK_BATCHES
) -> list[np.ndarray]:
    """Every index exactly once, in batches of similar length, in random batch order.

    Indices are shuffled, cut into chunks of `mega_chunk * batch_size`, sorted by length inside each
    chunk (so the grouping never sees the whole data set's order), cut into batches, and the batch
    order is shuffled again so that long and short batches alternate across the epoch.
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * mega_chunk
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Every index exactly once in shuffled batches, no grouping (the reference behaviour)."""
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def epoch_batches(data: Encoded, batch_size: int, seed: int, epoch: int, grouped: bool) -> list[np.ndarray]:
    """The batches of one epoch. The order depends only on (seed, epoch), so a resumed run sees the
    same batches as an uninterrupted one."""
    rng = np.random.default_rng([seed, epoch])
    if grouped:
        return length_grouped_batches(data.lengths, batch_size, rng)
    return random_batches(len(data), batch_size, rng)


def shard(batches: list[np.ndarray], rank: int, world_size: int) -> list[np.ndarray]:
    """This rank's share of the batches. Every rank gets the same count (DDP steps in lockstep), so
    up to world_size - 1 batches are left out of the epoch; they differ from epoch to epoch."""
    if world_size <= 1:
        return batches
    usable = len(batches) - len(batches) % world_size
    return batches[rank:usable:world_size]


class _Rows(torch.utils.data.Dataset):
    """Row indices: the DataLoader hands a batch's indices to `_collate_rows` in a worker."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _collate_rows(data: Encoded, multiple_of: int, rows: list[int]) -> dict[str, torch.Tensor]:
    return collate(data, np.asarray(rows, dtype=np.int64), multiple_of=multiple_of)


def batch_iterator(
    data: Encoded,
    batches: list[np.ndarray],
    multiple_of: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """The collated batches, in order. With num_workers > 0 collation runs in DataLoader workers
    (worth it only when the accelerator waits for the CPU); with 0 it runs inline."""
    if num_workers == 0:
        return (collate(data, b, multiple_of=multiple_of) for b in batches)
    loader = torch.utils.data.DataLoader(
        _Rows(len(data)),
        batch_sampler=[b.tolist() for b in batches],
        num_workers=num_workers,
        collate_fn=partial(_collate_rows, data, multiple_of),
        pin_memory=pin_memory,
    )
    return iter(loader)


def padding_share(
    data: Encoded, batches: list[np.ndarray], pad_to: int | None = None, multiple: int = 1
) -> float:
    """Share of [PAD] positions over all positions fed to the model (padded as `collate` pads)."""
    lengths = data.lengths
    real = sum(int(lengths[b].sum()) for b in batches)
    total = sum(len(b) * (pad_to or -(-int(lengths[b].max()) // multiple) * multiple) for b in batches)
    return 1.0 - real / total if total else 0.0


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights n / (k * n_c), the "balanced" heuristic.

    Normalised so that the average weight over the training rows is 1: the loss keeps the scale of
    an unweighted loss and the learning rate means the same with or without weights. A class with
    no training rows gets weight 0 (it never appears as a target).
    """
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes, dtype=np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


MAX_POSITIVE_WEIGHT = 10.0  # a label on 1 % of the rows would otherwise weigh 99 times a negative


def positive_weights(targets: np.ndarray) -> torch.Tensor:
    """A multi-label task's weight of each label's positive rows in the binary cross-entropy:
    negatives / positives (each label balanced on its own), capped at MAX_POSITIVE_WEIGHT; 1 for a label
    without positive rows. The per-label thresholds, tuned on the validation split afterwards, correct
    what the weighting shifts."""
    pos = targets.sum(axis=0).astype(np.float64)
    neg = len(targets) - pos
    weights = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    return torch.tensor(np.clip(weights, 1.0, MAX_POSITIVE_WEIGHT), dtype=torch.float32)
