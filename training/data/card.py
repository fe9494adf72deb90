"""Figures for a dataset card: size, classes, lengths and how many near-duplicates remain."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import pandas as pd


def char_ngrams(text: str, n: int = 3) -> frozenset[str]:
    s = text.replace(" ", "")
    return frozenset(s[i : i + n] for i in range(max(1, len(s) - n + 1)))


def near_duplicate_pairs(
    texts: list[str], threshold: float = 0.7, n: int = 3
) -> list[tuple[int, int, float]]:
    """Index pairs whose character n-gram Jaccard similarity (spaces removed) is >= threshold.

    Candidate pairs come from an inverted index over n-grams, so only texts sharing a gram are compared.
    """
    grams = [char_ngrams(t, n) for t in texts]
    index: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(grams):
        for gram in g:
            index[gram].append(i)
    candidates: set[tuple[int, int]] = set()
    for ids in index.values():
        if len(ids) <= 200:  # very common grams carry no signal and would make this quadratic
            candidates.update(combinations(ids, 2))
    pairs = []
    for i, j in candidates:
        a, b = grams[i], grams[j]
        sim = len(a & b) / len(a | b)
        if sim >= threshold:
            pairs.append((i, j, round(sim, 3)))
    return sorted(pairs)


def dataset_card(df: pd.DataFrame, threshold: float = 0.7) -> dict:
    lengths = df["text"].str.len()
    counts = df["label"].value_counts()
    pairs = near_duplicate_pairs(df["text"].tolist(), threshold)
    return {
        "rows": int(len(df)),
        "per_class": {k: int(v) for k, v in counts.items()},
        "unique_ids": bool(df["id"].is_unique) if "id" in df else None,
        "exact_duplicate_texts": int(df["text"].duplicated().sum()),
        "near_duplicate_pairs": len(pairs),
        "near_duplicate_threshold": threshold,
        "near_duplicate_examples": [(df["id"].iloc[i], df["id"].iloc[j], s) for i, j, s in pairs[:10]],
        "length": {
            "mean": round(float(lengths.mean()), 1),
            "median": float(lengths.median()),
            "min": int(lengths.min()),
            "max": int(lengths.max()),
        },
    }
