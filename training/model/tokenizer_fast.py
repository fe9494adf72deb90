"""The Rust (`tokenizers`) twin of the KoBERT SentencePiece path, and the guard that keeps it exact.

`build_fast_tokenizer` turns a KoBERT `spiece.model` into a `tokenizers.Tokenizer`: XLNet's
preprocessing and SentencePiece's normalisation as one normalizer, a Metaspace pre-tokenizer, the
Unigram vocabulary with its scores, the BERT template and right padding with [PAD].

Why not what transformers' converter builds (NFKD, StripAccents, Precompiled):
- Precompiled looks up whole grapheme clusters under 6 bytes and otherwise single characters, so
  the conjoining jamo that NFKD makes of every Hangul syllable (3 x 3 bytes) are never recomposed
  and nearly all Hangul became [UNK]. NFKC before the charsmap recomposes them, as SentencePiece's
  charsmap does with NFKD input.
- StripAccents drops category Mn; XLNet drops what `unicodedata.combining` flags (a combining
  class). They differ on, e.g., the Hangul tone marks U+302E/U+302F and variation selectors, so the
  class is taken from Python's unicodedata, as is Python's `str.split()` whitespace (U+001C..U+001F).

What the Rust side cannot express, `FastEncoder` detects per text and returns as None, and the
caller re-encodes that text with sentencepiece:
- a piece ending in digit + comma ("▁1,"), which XLNet re-splits;
- control, unused and user-defined pieces: SentencePiece never matches the first two in text and
  always prefers the third, Rust treats them as ordinary pieces (score 0); and an unknown run whose
  surface may spell such a piece (KoBERTTokenizer looks surfaces up by string). So an [UNK] in a
  text holding a character that normalises into "[" (or into "," if "," is no piece) goes back;
- two neighbouring pieces that commute ("7"+"77" = "77"+"7"): their scores tie exactly and
  SentencePiece's float32 sums break the tie differently from Rust's float64 (found on "62,777";
  without this check 155-286 of 20,000 texts of repeated characters differed).
With these, fast == slow held on ~660,000 encodings (5 models; Chatbot questions and answers,
repeated characters, numbers, random Unicode). Residual risk, not observed: near-ties between
different segmentations within float32 rounding, and characters that Rust's Unicode tables
normalise differently from Python's (both only in the non-Korean fringe).
Speed: on 2 CPU cores this path was 1.5-2x slower than sentencepiece, which is why it is opt-in.
"""

from __future__ import annotations

import itertools
import logging
import unicodedata
from functools import lru_cache

from sentencepiece import sentencepiece_model_pb2 as spm_pb
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram

from training.model.pieces import is_digit_comma_piece

log = logging.getLogger(__name__)
UNDERLINE = "▁"
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED = 1, 2, 3, 4, 6
# Every code point with a combining class or a compatibility decomposition lies below U+30000
# (planes 2-3 hold only the CJK compatibility ideographs); scanning further only costs start-up time.
_SCAN_LIMIT = 0x30000


@lru_cache(maxsize=1)
def _unicode_tables() -> tuple[str, str, dict[str, str]]:
    """(whitespace class, combining class, char -> NFKD) from Python's unicodedata, as the slow path uses."""
    space, combining, decomposed = [], [], {}
    for cp in range(_SCAN_LIMIT):
        ch = chr(cp)
        if ch.isspace():
            space.append(cp)
        if unicodedata.combining(ch):
            combining.append(cp)
        if unicodedata.decomposition(ch):
            decomposed[ch] = unicodedata.normalize("NFKD", ch)
    return _char_class(space), _char_class(combining), decomposed


def _char_class(cps: list[int]) -> str:
    """An Oniguruma character class of code point ranges."""
    ranges: list[tuple[int, int]] = []
    for cp in sorted(cps):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


def _chars_normalising_into(targets: set[str]) -> set[str]:
    """The targets plus every character whose NFKD contains one of them."""
    _, _, decomposed = _unicode_tables()
    return set(targets) | {ch for ch, nfkd in decomposed.items() if any(t in nfkd for t in targets)}


def fast_path_blockers(proto: spm_pb.ModelProto) -> list[str]:
    """Reasons why `proto` cannot get an exact Rust twin (empty: it can)."""
    spec, norm = proto.trainer_spec, proto.normalizer_spec
    reasons = []
    if spec.model_type != spm_pb.TrainerSpec.UNIGRAM:
        reasons.append("not a unigram model")
    if norm.name not in {"nmt_nfkc", "nfkc"} or not norm.precompiled_charsmap:
        reasons.append(f"normalizer '{norm.name}' (only NFKC-based charsmaps are verified)")
    if not (norm.add_dummy_prefix and norm.remove_extra_whitespaces and norm.escape_whitespaces):
        reasons.append("non-default whitespace handling in the normalizer spec")
    if spec.treat_whitespace_as_suffix or spec.byte_fallback:
        reasons.append("treat_whitespace_as_suffix or byte_fallback")
    if any(UNDERLINE in p.piece[1:] for p in proto.pieces if p.type == _NORMAL):
        reasons.append("pieces spanning a word boundary (Metaspace splits words)")
    return reasons


def build_fast_tokenizer(
    proto: spm_pb.ModelProto, special_ids: dict[str, int], *, padding: bool = True
) -> Tokenizer:
    """A `tokenizers.Tokenizer` for a KoBERT spiece.model (KoBERT defaults: no lowercasing, accents removed).

    `special_ids` maps "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]" to ids. With `padding`, batches
    are padded on the right with [PAD] (type id 0), as KoBERTTokenizer does.
    """
    space, combining, _ = _unicode_tables()
    unk_id = proto.trainer_spec.unk_id
    tok = Tokenizer(Unigram([(p.piece, p.score) for p in proto.pieces], unk_id=unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            # XLNetTokenizer.preprocess_text: " ".join(text.strip().split()), quotes, NFKD, no combining marks
            normalizers.Replace(Regex(space + "+"), " "),
            normalizers.Strip(),
            normalizers.Replace("``", '"'),
            normalizers.Replace("''", '"'),
            normalizers.NFKD(),
            normalizers.Replace(Regex(combining), ""),
            # SentencePiece: charsmap (after NFKC, see module doc), then remove_extra_whitespaces
            normalizers.NFKC(),
            normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
            normalizers.Replace(Regex(" {2,}"), " "),
            normalizers.Strip(),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=UNDERLINE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=UNDERLINE, prepend_scheme="always", split=True)
    # KoBERTTokenizer splits raw text on its special tokens first; [MASK] swallows the space before it.
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False, lstrip=(t == "[MASK]")) for t in special_ids]
    )
    cls, sep = special_ids["[CLS]"], special_ids["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    if padding:
        tok.enable_padding(direction="right", pad_id=special_ids["[PAD]"], pad_type_id=0, pad_token="[PAD]")
    return tok


def make_fast_encoder(
    proto: spm_pb.ModelProto,
    special_ids: dict[str, int],
    unusual_options: list[str],
    *,
    required: bool,
    name: str,
) -> FastEncoder | None:
    """A FastEncoder, or None (with the reason logged) where it cannot be exact; `required` raises instead."""
    blockers = fast_path_blockers(proto) + unusual_options
    if not blockers:
        return FastEncoder(proto, special_ids)
    if required:
        raise ValueError(f"no exact fast path for {name}: {'; '.join(blockers)}")
    log.info("tokenizer %s: sentencepiece path only (%s)", name, "; ".join(blockers))
    return None


class FastEncoder:
    """Encodes batches in Rust and says which texts must be re-encoded by SentencePiece."""

    def __init__(self, proto: spm_pb.ModelProto, special_ids: dict[str, int]) -> None:
        # No padding here: the caller lays out and pads both paths with the same code.
        self.tokenizer = build_fast_tokenizer(proto, special_ids, padding=False)
        self.unk_id = proto.trainer_spec.unk_id
        odd = [p for p in proto.pieces if p.type in (_UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED)]
        self.suspicious_ids = {
            i
            for i, p in enumerate(proto.pieces)
            if (p.type != _NORMAL and p.type != _UNKNOWN)
            or (p.type == _NORMAL and is_digit_comma_piece(p.piece))
        }
        targets = {p.piece[0] for p in odd if p.piece}
        if not any(p.piece == "," and p.type == _NORMAL for p in proto.pieces):
            targets.add(",")  # an unknown run could then end in digit + comma
        self.trigger_chars = frozenset(_chars_normalising_into(targets))
        # User-defined pieces win over everything in SentencePiece, whether or not an [UNK] shows up.
        self.always_check = any(p.type == _USER_DEFINED for p in proto.pieces)
        self.repeat_group = _repeat_groups(proto)

    def encode(self, texts: list[str]) -> list[list[int] | None]:
        """Piece ids without special tokens per text, or None where only the slow path is exact."""
        out: list[list[int] | None] = []
        encodings = self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        for text, enc in zip(texts, encodings, strict=True):
            ids = enc.ids
            if (
                self.suspicious_ids.intersection(ids)
                or self._has_tie(ids)
                or ((self.always_check or self.unk_id in ids) and not self.trigger_chars.isdisjoint(text))
            ):
                out.append(None)
            else:
                out.append(ids)
        return out

    def _has_tie(self, ids: list[int]) -> bool:
        """Two neighbouring pieces that commute ("7" "77" vs "77" "7") score the same in exact arithmetic.

        SentencePiece sums scores in float32 and Rust in float64, so which order wins such a tie
        comes down to rounding and differs between them (seen on "62,777" and runs like ㅋㅋㅋ).
        """
        group = self.repeat_group
        if group.keys().isdisjoint(ids):
            return False
        return any(a != b and group.get(a, -1) == group.get(b, -2) for a, b in itertools.pairwise(ids))


def _repeat_groups(proto: spm_pb.ModelProto) -> dict[int, int]:
    """Piece id -> group id for pieces that are repetitions of one root ("7", "77"), groups of 2 or more.

    Two strings commute (p + q == q + p) exactly when they are powers of the same root.
    """
    by_root: dict[str, list[int]] = {}
    for i, p in enumerate(proto.pieces):
        if p.type == _NORMAL and p.piece:
            by_root.setdefault(_primitive_root(p.piece), []).append(i)
    return {i: ids[0] for ids in by_root.values() if len(ids) > 1 for i in ids}


def _primitive_root(s: str) -> str:
    """The shortest r with s == r * k ("ㅋㅋㅋ" -> "ㅋ", "abab" -> "ab", "abc" -> "abc")."""
    n = len(s)
    return next(s[:k] for k in range(1, n + 1) if n % k == 0 and s[:k] * (n // k) == s)
