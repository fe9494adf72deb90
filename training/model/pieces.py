"""SentencePiece piece rules shared by the KoBERT tokenizer and its Rust fast path (one home, no import
cycle)."""

from __future__ import annotations


def is_digit_comma_piece(piece: str) -> bool:
    """True for pieces such as "▁1," and "0,", which XLNet re-splits into digits and a comma."""
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()
