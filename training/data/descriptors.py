"""Korean text descriptors: one row of numbers per text, for watching what the model is sent drift.

Drift monitors built for English miss what changes in Korean traffic (Evidently's out-of-vocabulary
descriptor strips non-ASCII characters, so pure Hangul scores 0 %), so these are measured here, over
the whole column at once (pandas string methods and compiled regular expressions, numpy for the
sums). 10,000 texts take a fraction of a second (tests/code/data/test_descriptors.py prints it with
`-s`). Every column is a float; the ones that need an input that was not given are NaN.

  chars              characters (code points) of the text as sent
  eojeols            어절: whitespace-separated words
  hangul_ratio       Hangul syllables (U+AC00-U+D7A3) and compatibility jamo (U+3131-U+318E) over the
                     non-space characters;
  latin_ratio        Latin letters (ASCII and the Latin-1 / Latin Extended-A and B letters),
  digit_ratio        decimal digits (any script's),
  other_ratio        the rest (punctuation, emoji, Hanja, ...): the four ratios sum to 1 for a text
                     with any non-space character and are all 0 for an empty one. A text that switches
                     to English, numbers or symbols moves these first. A personal-data placeholder
                     counts as one "other" character ([PHONE] is not English the caller wrote).
  jamo_token_rate    the share of eojeols made only of compatibility jamo (ㅋㅋ, ㅠㅠ, ㅎㅎ): chat
                     text; an eojeol with anything else in it ("ㅋㅋ!", "ㅋㅋ웃겨") does not count.
  emoji_rate         emoji per character (U+1F300-U+1FAFF, U+2600-U+27BF, U+1F000-U+1F2FF), another
                     mark of chat text; variation selectors (U+FE00-U+FE0F, the "show as emoji" hint
                     after ❤) are neither emoji nor characters here, so "❤️" is one emoji in one
                     character. A ZWJ sequence (👨‍👩‍👧) counts each of its emoji.
  pii_rate           personal-data placeholders (training/pii.py's PLACEHOLDERS: [PHONE], [EMAIL], ...)
                     per eojeol: texts are masked before anyone sees them, so a surge of placeholders
                     is how a change in what callers paste (phone numbers, links) shows.
  unk_rate           (with `pieces`, or `piece_counts` and `unk_counts`) the tokenizer's unknown pieces
                     over its pieces, and
  pieces_per_eojeol  (with `pieces` or `piece_counts`) pieces per eojeol: both rise when the vocabulary
                     meets words it does not know (new slang, a new product's names, another language): the
                     word is cut into many short pieces or lost as unknown.
  spacing_anomaly    (with `respaced`) 1.0 if the text's spacing differs from the re-spaced text's
                     (Kiwi's, which Heara's preprocessing computes anyway), else 0.0. Speech-to-text
                     engines often drop or misplace spaces (띄어쓰기), and a new STT engine upstream
                     shows as a jump here before it shows anywhere else.
  spacing_edit_rate  (with `respaced`) the share of the positions between two non-space characters
                     whose space / no space differs from the re-spaced text (over non-space
                     characters - 1; 0 for a text of one character or none).
  truncated          (with `pieces` or `piece_counts`, and `max_length`; or the caller's own flags,
                     `truncated`) 1.0 if the pieces and the two special tokens do not fit in `max_length`,
                     so the model never read the end of the text.

Pieces come one of two ways. `pieces`: each text's pieces (strings), counted here, unknown ones by
`unk_token`. `piece_counts` and `unk_counts`: the counts themselves, as the service takes them from the
token ids it computed anyway (training.model.encoding.token_counts; the prediction log stores them per
prediction, off the request path). Both give the same numbers for the same pieces: the counts are of the
whole text, never of what was left after truncation.

Spacing is compared on the non-space characters: whitespace runs and the ends do not matter, only
where the spaces fall. Preprocessing may also change characters (NFC, ㅋㅋㅋㅋ squeezed to ㅋㅋ, regex
rules); for those texts (usually few) the two are aligned (difflib's longest matching blocks) and only
positions inside a matched block are compared, so a squeezed laugh is not taken for a spacing error.
That alignment is the one per-text Python loop here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from itertools import chain

import numpy as np
import pandas as pd

from training.pii import PLACEHOLDERS

DESCRIPTORS: tuple[str, ...] = (
    "chars",
    "eojeols",
    "hangul_ratio",
    "latin_ratio",
    "digit_ratio",
    "other_ratio",
    "jamo_token_rate",
    "emoji_rate",
    "pii_rate",
    "unk_rate",
    "pieces_per_eojeol",
    "spacing_anomaly",
    "spacing_edit_rate",
    "truncated",
)

_JAMO = "\u3131-\u318e"  # Hangul compatibility jamo: ㄱ ... ㅎ, ㅏ ... ㅣ and the archaic ones
_HANGUL = re.compile(f"[\uac00-\ud7a3{_JAMO}]")
# Latin-1 and Latin Extended-A/B letters, without × (U+00D7) and ÷ (U+00F7).
_LATIN = re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s")
_EOJEOL = re.compile(r"\S+")
_JAMO_EOJEOL = re.compile(f"(?:^|(?<=\\s))[{_JAMO}]+(?!\\S)")
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\U0001f000-\U0001f2ff]")
_SELECTOR = re.compile("[\ufe00-\ufe0f]")
_PLACEHOLDER = re.compile("|".join(map(re.escape, PLACEHOLDERS)))
_PLACEHOLDER_MARK = "\ue000"  # a private-use character: what a placeholder counts as in the ratios


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (an empty text has no share of anything)."""
    out = np.zeros_like(num, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of `values` with the given lengths (empty segments sum to 0)."""
    ends = np.cumsum(lengths)
    running = np.concatenate([[0], np.cumsum(values, dtype=float)])
    return running[ends] - running[ends - lengths]


def _boundaries(s: pd.Series) -> pd.Series:
    """Each text -> one character per position between two non-space characters: "1" where a space
    falls there, "0" where none does ("나는 학교에" -> "01000")."""
    marks = s.str.strip().str.replace(r"\S", "0", regex=True).str.replace(r"\s+0", "1", regex=True)
    return marks.str[1:]


def _spacing_edits(texts: pd.Series, respaced: pd.Series) -> np.ndarray:
    """Per text, the positions between non-space characters where the space differs from `respaced`."""
    a_bits, b_bits = _boundaries(texts), _boundaries(respaced)
    a_chars = texts.str.replace(r"\s+", "", regex=True)
    b_chars = respaced.str.replace(r"\s+", "", regex=True)
    same = (a_chars == b_chars).to_numpy()
    edits = np.zeros(len(texts))
    if same.any():
        # Same characters: the two mark strings line up; compare them all in one array.
        a = np.frombuffer("".join(a_bits[same]).encode("ascii"), dtype=np.uint8)
        b = np.frombuffer("".join(b_bits[same]).encode("ascii"), dtype=np.uint8)
        edits[same] = _segment_sums(a != b, a_bits[same].str.len().to_numpy())
    for i in np.flatnonzero(~same):
        x, y = a_chars.iat[i], b_chars.iat[i]
        xb, yb = a_bits.iat[i], b_bits.iat[i]
        blocks = difflib.SequenceMatcher(None, x, y, autojunk=False).get_matching_blocks()
        # Inside a block of `size` matched characters lie size - 1 comparable positions.
        edits[i] = sum(
            sum(p != q for p, q in zip(xb[j : j + size - 1], yb[k : k + size - 1])) for j, k, size in blocks
        )
    return edits


def describe(
    texts: Sequence[str],
    *,
    respaced: Sequence[str] | None = None,
    pieces: Sequence[Sequence[str]] | None = None,
    unk_token: str = "[UNK]",
    max_length: int | None = None,
    piece_counts: Sequence[int] | np.ndarray | None = None,
    unk_counts: Sequence[int] | np.ndarray | None = None,
    truncated: Sequence[bool] | np.ndarray | None = None,
) -> pd.DataFrame:
    """The descriptors of `texts` (the module docstring says what each means), one row per text.

    `respaced`: the same texts after spacing correction (same order); `pieces`: the tokenizer's pieces
    of each text, without special tokens; `unk_token`: its unknown piece; `max_length`: the model's
    input length in tokens, special tokens included. Instead of `pieces`: `piece_counts` (pieces per
    text, special tokens left out) and `unk_counts` (unknown pieces per text). `truncated`: whether each
    text was cut, when the caller knows it (then `max_length` is not needed).
    """
    s = pd.Series(list(texts), dtype=object).fillna("").astype(str)
    n = len(s)
    if pieces is not None and (piece_counts is not None or unk_counts is not None):
        raise ValueError("give pieces, or piece_counts and unk_counts, not both")
    if unk_counts is not None and piece_counts is None:
        raise ValueError("unk_counts needs piece_counts")
    given = (
        ("respaced", respaced),
        ("pieces", pieces),
        ("piece_counts", piece_counts),
        ("unk_counts", unk_counts),
        ("truncated", truncated),
    )
    for name, other in given:
        if other is not None and len(other) != n:
            raise ValueError(f"{name} has {len(other)} entries for {n} texts")
    nan = np.full(n, np.nan)

    chars = s.str.len().to_numpy(dtype=float)
    eojeols = s.str.count(_EOJEOL).to_numpy(dtype=float)
    non_space = chars - s.str.count(_SPACE).to_numpy(dtype=float)
    selectors = s.str.count(_SELECTOR).to_numpy(dtype=float)
    placeholders = s.str.count(_PLACEHOLDER).to_numpy(dtype=float)
    # The character classes are counted with each placeholder folded into one "other" character.
    folded = s.str.replace(_PLACEHOLDER, _PLACEHOLDER_MARK, regex=True)
    visible = non_space - selectors - (chars - folded.str.len().to_numpy(dtype=float))
    hangul = folded.str.count(_HANGUL).to_numpy(dtype=float)
    latin = folded.str.count(_LATIN).to_numpy(dtype=float)
    digit = folded.str.count(_DIGIT).to_numpy(dtype=float)
    out = {
        "chars": chars,
        "eojeols": eojeols,
        "hangul_ratio": _ratio(hangul, visible),
        "latin_ratio": _ratio(latin, visible),
        "digit_ratio": _ratio(digit, visible),
        "other_ratio": _ratio(visible - hangul - latin - digit, visible),
        "jamo_token_rate": _ratio(s.str.count(_JAMO_EOJEOL).to_numpy(dtype=float), eojeols),
        "emoji_rate": _ratio(s.str.count(_EMOJI).to_numpy(dtype=float), chars - selectors),
        "pii_rate": _ratio(placeholders, eojeols),
        "unk_rate": nan,
        "pieces_per_eojeol": nan,
        "spacing_anomaly": nan,
        "spacing_edit_rate": nan,
        "truncated": nan,
    }
    lengths, unknown = None, None
    if pieces is not None:
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=n)
        flat = np.array(list(chain.from_iterable(pieces)), dtype=object)
        unknown = _segment_sums(flat == unk_token, lengths)
    elif piece_counts is not None:
        lengths = np.asarray(piece_counts, dtype=np.int64).reshape(n)
        unknown = None if unk_counts is None else np.asarray(unk_counts, dtype=float).reshape(n)
    if lengths is not None:
        if unknown is not None:
            out["unk_rate"] = _ratio(unknown, lengths.astype(float))
        out["pieces_per_eojeol"] = _ratio(lengths.astype(float), eojeols)
        if max_length is not None:
            out["truncated"] = (lengths + 2 > max_length).astype(float)  # + [CLS] and [SEP]
    if truncated is not None:
        out["truncated"] = np.asarray(truncated, dtype=bool).reshape(n).astype(float)
    if respaced is not None:
        r = pd.Series(list(respaced), dtype=object).fillna("").astype(str)
        edits = _spacing_edits(s, r)
        out["spacing_anomaly"] = (edits > 0).astype(float)
        out["spacing_edit_rate"] = _ratio(edits, non_space - 1)
    return pd.DataFrame(out, columns=list(DESCRIPTORS))
