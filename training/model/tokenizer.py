"""KoBERT tokenizer: SentencePiece pieces in BERT layout, id for id what SKTBrain's KoBERTTokenizer gives.

Why our own: kobert_tokenizer.KoBERTTokenizer (SKTBrain/KoBERT, kobert_hf) is not on PyPI and
subclasses transformers 4's slow XLNetTokenizer. transformers 5 rebuilt XLNetTokenizer on
`tokenizers`: AutoTokenizer on a KoBERT folder gives XLNet's layout (X <sep> <cls>, left padding,
type ids 2/3) and, on 5.23, [UNK] for most Hangul (see training/model/tokenizer_fast.py for why).
What the original does, and this module repeats:
- raw text is split on the special tokens; every other segment goes through XLNet's
  `preprocess_text` and SentencePiece (no sampling), and a piece ending in digit + comma is re-split;
- layout [CLS] A [SEP] (+ B [SEP]), type ids 0 (1 for B [SEP]), padding on the right with [PAD],
  which is id 1 in KoBERT: attention masks come from lengths, never from `ids != 0`.
Checked id for id against transformers 4.46.3 and 4.30.2 XLNetTokenizer on 55,965 texts x 2 models
(Chatbot corpus, numbers, odd and random strings), and layout, padding and truncation against a
KoBERT-style subclass on 4.46.3; tests/code/model/test_tokenizer.py keeps a transcription as its oracle.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from training.model.pieces import is_digit_comma_piece

UNDERLINE = "▁"
SPIECE_FILE = "spiece.model"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4 in skt/kobert-base-v1
_OPTIONS = {"do_lower_case": False, "remove_space": True, "keep_accents": False}  # KoBERTTokenizer's
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
FAMILIES = ("kobert", "hf")


def preprocess_text(
    text: str, *, remove_space: bool = True, keep_accents: bool = False, do_lower_case: bool = False
) -> str:
    """XLNetTokenizer.preprocess_text: collapse whitespace, `` and '' to ", NFKD without combining marks."""
    out = " ".join(text.strip().split()) if remove_space else text
    out = out.replace("``", '"').replace("''", '"')
    if not keep_accents:
        # NFKD turns every Hangul syllable into jamo; SentencePiece's NFKC charsmap composes them again.
        out = "".join(c for c in unicodedata.normalize("NFKD", out) if not unicodedata.combining(c))
    return out.lower() if do_lower_case else out


def find_in_hf_cache(repo_id: str) -> Path | None:
    """The cached snapshot folder of `repo_id` holding spiece.model, or None (nothing is downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id, SPIECE_FILE)
    return Path(hit).parent if isinstance(hit, str) else None


def resolve_pretrained(path_or_name: str | Path) -> Path:
    """A local folder as is; a hub id from the local Hugging Face cache, else downloaded when possible."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_name)
    if not _HUB_ID.fullmatch(name):
        raise FileNotFoundError(f"no tokenizer folder at {path}")
    cached = find_in_hf_cache(name)
    if cached is not None:
        return cached
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=[SPIECE_FILE, CONFIG_FILE]))
    except Exception as exc:  # offline, unknown repo, gated: all mean the same to the caller
        raise FileNotFoundError(
            f"'{name}' is not a local folder, not in the Hugging Face cache, and could not be downloaded "
            f"({type(exc).__name__}). Download it on a connected machine or pass a local folder."
        ) from exc


class KoBertTokenizer:
    """SKTBrain's KoBERTTokenizer rebuilt on sentencepiece (plus an exact Rust fast path)."""

    padding_side = "right"
    model_input_names = ("input_ids", "token_type_ids", "attention_mask")

    def __init__(
        self,
        vocab_file: str | Path,
        *,
        do_lower_case: bool = False,
        remove_space: bool = True,
        keep_accents: bool = False,
        fast: bool | None = False,
    ) -> None:
        """Load `vocab_file` (a spiece.model).

        fast: True encodes batches with the Rust twin (error if it cannot be exact for this model),
        None where it can be, False (default) never: on 2 CPU cores sentencepiece was 1.5-2x faster.
        """
        self.vocab_file = Path(vocab_file)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.vocab_file))
        self.options = {
            "do_lower_case": do_lower_case,
            "remove_space": remove_space,
            "keep_accents": keep_accents,
        }
        self.special_ids = {t: self.sp.piece_to_id(t) for t in SPECIAL_TOKENS}
        missing = [t for t, i in self.special_ids.items() if t != "[UNK]" and i == self.sp.unk_id()]
        if missing:
            raise ValueError(f"{self.vocab_file}: special tokens {missing} missing from the vocabulary")
        self.unk_token_id, self.pad_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = (
            self.special_ids[t] for t in SPECIAL_TOKENS
        )
        self._digit_comma_ids = frozenset(
            i for i in range(self.vocab_size) if is_digit_comma_piece(self.sp.id_to_piece(i))
        )
        self._fast = self._build_fast(fast)

    def _build_fast(self, wanted: bool | None):
        if wanted is False:
            return None
        from training.model.tokenizer_fast import make_fast_encoder

        unusual = [f"{k}={v}" for k, v in self.options.items() if v != _OPTIONS[k]]
        return make_fast_encoder(
            self.model_proto(), self.special_ids, unusual, required=bool(wanted), name=str(self.vocab_file)
        )

    @property
    def fast(self) -> bool:
        """Whether batches go through the Rust tokenizer."""
        return self._fast is not None

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def model_proto(self):
        """The parsed SentencePiece ModelProto (vocabulary, scores, normaliser spec)."""
        from sentencepiece import sentencepiece_model_pb2 as spm_pb

        return spm_pb.ModelProto.FromString(self.sp.serialized_model_proto())

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path, **overrides: Any) -> KoBertTokenizer:
        """Load a folder with spiece.model (+ tokenizer_config.json) or a hub id like skt/kobert-base-v1."""
        folder = resolve_pretrained(path_or_name)
        if not (folder / SPIECE_FILE).is_file():
            raise FileNotFoundError(f"{folder} has no {SPIECE_FILE} (is it a KoBERT-style model folder?)")
        config_path = folder / CONFIG_FILE
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        options = {k: config.get(k, default) for k, default in _OPTIONS.items()}
        return cls(folder / SPIECE_FILE, **{**options, **overrides})

    def save_pretrained(self, out_dir: str | Path) -> list[Path]:
        """Write spiece.model and a tokenizer_config.json that records the class and the layout."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / SPIECE_FILE).write_bytes(self.sp.serialized_model_proto())
        config = {
            "tokenizer_class": "KoBertTokenizer",
            **self.options,
            "unk_token": "[UNK]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
            "special_token_ids": self.special_ids,
            "vocab_size": self.vocab_size,
            "padding_side": self.padding_side,
            "pad_token_type_id": 0,
            "layout": {
                "single": "[CLS] A [SEP]",
                "pair": "[CLS] A [SEP] B [SEP]",
                "token_type_ids": "0 for [CLS] A [SEP], 1 for B [SEP]",
            },
        }
        (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return [out / SPIECE_FILE, out / CONFIG_FILE]

    def _split_special(self, text: str) -> list[tuple[str, bool]]:
        """Segments of `text` and whether each is a special token, as transformers' tokens trie splits it."""
        parts = _SPECIAL_SPLIT.split(text)
        for i in range(1, len(parts), 2):
            if parts[i] == "[MASK]":  # AddedToken(lstrip=True): it eats the whitespace on its left
                parts[i - 1] = parts[i - 1].rstrip()
        return [(p, i % 2 == 1) for i, p in enumerate(parts) if p]

    def _segment_pieces(self, segment: str) -> list[str]:
        """KoBERTTokenizer._tokenize for text without special tokens."""
        pieces = self.sp.encode(preprocess_text(segment, **self.options), out_type=str)
        out: list[str] = []
        for piece in pieces:
            if not is_digit_comma_piece(piece):
                out.append(piece)
                continue
            parts = self.sp.encode(piece[:-1].replace(UNDERLINE, ""), out_type=str)
            if piece[0] != UNDERLINE and parts[0][0] == UNDERLINE:
                parts = parts[1:] if len(parts[0]) == 1 else [parts[0][1:], *parts[1:]]
            out.extend([*parts, piece[-1]])
        return out

    def _segment_ids(self, segment: str) -> list[int]:
        ids = self.sp.encode(preprocess_text(segment, **self.options))
        # Ids equal piece_to_id(piece) except for unknowns (their surface could spell a vocab piece)
        # and digit+comma pieces: those take the literal route.
        if self.unk_token_id in ids or not self._digit_comma_ids.isdisjoint(ids):
            return [self.sp.piece_to_id(p) for p in self._segment_pieces(segment)]
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Pieces of `text` without [CLS]/[SEP]; special tokens written in the text stay whole."""
        out: list[str] = []
        for part, special in self._split_special(text):
            out.extend([part] if special else self._segment_pieces(part))
        return out

    def _ids_slow(self, text: str) -> list[int]:
        out: list[int] = []
        for part, special in self._split_special(text):
            out.extend([self.special_ids[part]] if special else self._segment_ids(part))
        return out

    def piece_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of each text without special tokens (Rust where exact, sentencepiece otherwise)."""
        if self._fast is None:
            return [self._ids_slow(t) for t in texts]
        fast = self._fast.encode(list(texts))
        return [ids if ids is not None else self._ids_slow(t) for t, ids in zip(texts, fast, strict=True)]

    def build_inputs(self, a: list[int], b: list[int] | None = None) -> tuple[list[int], list[int]]:
        """[CLS] A [SEP] (+ B [SEP]) and its token type ids (0 for the first part, 1 for B [SEP])."""
        ids = [self.cls_token_id, *a, self.sep_token_id]
        types = [0] * len(ids)
        if b is not None:
            ids += [*b, self.sep_token_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def encode(self, text: str, text_pair: str | None = None) -> list[int]:
        """Ids with [CLS]/[SEP], not truncated (as KoBERTTokenizer.encode)."""
        b = None if text_pair is None else self.piece_ids([text_pair])[0]
        return self.build_inputs(self.piece_ids([text])[0], b)[0]

    def __call__(
        self,
        texts: Sequence[str],
        max_length: int = 128,
        padding: bool | str = True,
        truncation: bool = True,
        return_tensors: str | None = None,
        *,
        text_pair: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Batch encode: input_ids, token_type_ids, attention_mask (lists, or torch tensors with "pt").

        padding: True/"longest" pads to the longest row, "max_length" to max_length, False not at all.
        truncation keeps [SEP] last (pairs: longest first, as transformers does).
        """
        a_rows, b_rows = _check_texts(texts, text_pair)
        a_ids = self.piece_ids(a_rows)
        b_ids = self.piece_ids(b_rows) if b_rows is not None else [None] * len(a_ids)
        rows = [
            self.build_inputs(*(_truncate(a, b, max_length) if truncation else (a, b)))
            for a, b in zip(a_ids, b_ids, strict=True)
        ]
        return pad_batch(
            [r[0] for r in rows],
            [r[1] for r in rows],
            pad_id=self.pad_token_id,
            padding=padding,
            max_length=max_length,
            return_tensors=return_tensors,
        )

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Vocabulary pieces of ids (an int gives a str)."""
        if isinstance(ids, int):
            return self.sp.id_to_piece(ids)
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ids as transformers 4 decodes them (no spaces around special tokens, no clean-up)."""
        specials = set(self.special_ids.values())
        out, run = [], []
        for i in (int(i) for i in ids):
            if i not in specials:
                run.append(self.sp.id_to_piece(i))
                continue
            if run:
                out.append("".join(run).replace(UNDERLINE, " ").strip())
                run = []
            if not skip_special_tokens:
                out.append(self.sp.id_to_piece(i))
        if run:
            out.append("".join(run).replace(UNDERLINE, " ").strip())
        return "".join(out)


def _check_texts(texts: Sequence[str], text_pair: Sequence[str] | None) -> tuple[list[str], list[str] | None]:
    if isinstance(texts, str) or isinstance(text_pair, str):
        raise TypeError("pass a list of texts (a single str would be ambiguous: wrap it in a list)")
    if text_pair is not None and len(text_pair) != len(texts):
        raise ValueError(f"text_pair has {len(text_pair)} items for {len(texts)} texts")
    return list(texts), None if text_pair is None else list(text_pair)


def _truncate(a: list[int], b: list[int] | None, max_length: int) -> tuple[list[int], list[int] | None]:
    """Cut content so that it fits max_length with its special tokens; pairs lose from the longer side."""
    if max_length < 3:  # transformers then silently skips truncation; no text fits anyway
        raise ValueError(f"max_length={max_length} leaves no room for text between [CLS] and [SEP]")
    budget = max_length - (2 if b is None else 3)
    if b is None:
        return a[:budget], None
    keep_a, keep_b = len(a), len(b)
    while keep_a + keep_b > budget:  # transformers' longest_first: ties cut the second text
        if keep_a > keep_b:
            keep_a -= 1
        else:
            keep_b -= 1
    return a[:keep_a], b[:keep_b]


def pad_batch(
    ids: list[list[int]],
    types: list[list[int]],
    *,
    pad_id: int,
    padding: bool | str,
    max_length: int,
    return_tensors: str | None,
) -> dict[str, Any]:
    """Right-pad rows with pad_id (type id 0); the attention mask is 1 exactly on the real tokens."""
    if padding in (True, "longest"):
        width = max((len(r) for r in ids), default=0)
    elif padding == "max_length":
        width = max_length
    elif padding in (False, "do_not_pad"):
        width = 0
    else:
        raise ValueError(f"padding={padding!r}: use True, 'longest', 'max_length' or False")
    out = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    for row, row_types in zip(ids, types, strict=True):
        fill = max(width - len(row), 0)
        out["input_ids"].append(row + [pad_id] * fill)
        out["token_type_ids"].append(row_types + [0] * fill)
        out["attention_mask"].append([1] * len(row) + [0] * fill)
    if return_tensors is None:
        return out
    if return_tensors != "pt":
        raise ValueError(f"return_tensors={return_tensors!r}: only 'pt' or None")
    if len({len(r) for r in out["input_ids"]}) > 1:
        raise ValueError("rows differ in length: use padding=True or 'max_length' with return_tensors='pt'")
    import torch

    return {k: torch.tensor(v, dtype=torch.long).reshape(len(v), -1) for k, v in out.items()}


class HFTokenizer:
    """A transformers AutoTokenizer behind KoBertTokenizer's call signature (family "hf").

    Other attributes (encode, decode, convert_ids_to_tokens, pad_token_id, save_pretrained, ...)
    are the wrapped tokenizer's own.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __getattr__(self, name: str) -> Any:
        if name == "tokenizer":  # not set yet (unpickling): avoid endless recursion
            raise AttributeError(name)
        return getattr(self.tokenizer, name)

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path) -> HFTokenizer:
        """AutoTokenizer.from_pretrained, refusing the KoBERT trap (XLNet layout on a [CLS] vocabulary)."""
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(path_or_name))
        if type(tok).__name__.startswith("XLNet") and tok.cls_token == "[CLS]":
            raise ValueError(
                f"{path_or_name} is a KoBERT-style model: AutoTokenizer gives XLNet's layout "
                "(X <sep> <cls>, left padding); use family 'kobert'"
            )
        return cls(tok)

    def __call__(
        self,
        texts: Sequence[str],
        max_length: int = 128,
        padding: bool | str = True,
        truncation: bool = True,
        return_tensors: str | None = None,
        *,
        text_pair: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Same contract as KoBertTokenizer.__call__ (token_type_ids only where the model has them)."""
        texts, pairs = _check_texts(texts, text_pair)
        return dict(
            self.tokenizer(
                texts,
                text_pair=pairs,
                max_length=max_length,
                padding=padding,
                truncation=truncation,
                return_tensors=return_tensors,
            )
        )


def load_tokenizer(path_or_name: str | Path, family: str) -> KoBertTokenizer | HFTokenizer:
    """The tokenizer of a model folder or hub id: family "kobert" (SentencePiece, BERT layout) or "hf"."""
    if family == "kobert":
        return KoBertTokenizer.from_pretrained(path_or_name)
    if family == "hf":
        return HFTokenizer.from_pretrained(path_or_name)
    raise ValueError(f"unknown tokenizer family '{family}': use one of {', '.join(FAMILIES)}")
