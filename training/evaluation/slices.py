"""Text perturbations for robustness slices: spaces removed, and STT/typing-style typos.

Deterministic for a given seed, so a slice is the same set of texts for every model it scores.
"""

from __future__ import annotations

import re

import numpy as np

_WS = re.compile(r"\s+")


def remove_spaces(text: str) -> str:
    return _WS.sub("", text)


def _is_syllable(ch: str) -> bool:
    return 0xAC00 <= ord(ch) <= 0xD7A3


# Final-consonant (받침) indices grouped by how they are pronounced at the end of a syllable, so a
# swap inside a group is the spelling mistake people actually make (있어요 -> 잇어요, 같이 -> 갇이).
_FINAL_GROUPS = [
    (1, 2, 3, 9, 24),
    (4, 5, 6),
    (7, 19, 20, 22, 23, 25, 27),
    (8, 11, 12, 13, 15),
    (10, 16),
    (14, 17, 18, 26),
]
_SIMILAR_FINAL = {f: tuple(x for x in g if x != f) for g in _FINAL_GROUPS for f in g}


def _final(ch: str) -> int:
    return (ord(ch) - 0xAC00) % 28


def _one_typo(chars: list[str], rng: np.random.Generator) -> list[str]:
    """Apply one random edit that is possible on `chars` (drop, duplicate, swap, 받침)."""
    solid = [i for i, c in enumerate(chars) if not c.isspace()]
    ops: dict[str, list[int]] = {
        "drop": solid if len(solid) > 1 else [],  # never empty a text
        "dup": solid,
        "swap": [
            i
            for i in range(len(chars) - 1)
            if _is_syllable(chars[i]) and _is_syllable(chars[i + 1]) and chars[i] != chars[i + 1]
        ],
        "final": [i for i in solid if _is_syllable(chars[i]) and _final(chars[i]) in _SIMILAR_FINAL],
    }
    names = [k for k, where in ops.items() if where]
    if not names:
        return chars
    op = names[rng.integers(len(names))]
    i = ops[op][rng.integers(len(ops[op]))]
    out = list(chars)
    if op == "drop":
        del out[i]
    elif op == "dup":
        out.insert(i, chars[i])
    elif op == "swap":
        out[i], out[i + 1] = chars[i + 1], chars[i]
    else:
        alt = _SIMILAR_FINAL[_final(chars[i])]
        out[i] = chr(ord(chars[i]) - _final(chars[i]) + alt[rng.integers(len(alt))])
    return out


def add_typos(texts: list[str], rate: float, seed: int) -> list[str]:
    """Character-level noise: round(rate * non-space chars) edits per text, at least one when rate > 0.

    Deterministic for a given (texts, rate, seed).
    """
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        chars = list(text)
        n_solid = sum(not c.isspace() for c in chars)
        n_edits = max(1, round(rate * n_solid)) if rate > 0 and n_solid else 0
        for _ in range(n_edits):
            chars = _one_typo(chars, rng)
        out.append("".join(chars))
    return out


# ---------------------------------------------------------------- metrics
