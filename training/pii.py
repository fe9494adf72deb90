"""Personal-data masking (phone numbers, resident registration numbers, emails, URLs).

Kept free of heavy imports: logging filters, the preprocessor and the prediction log all use it.
"""

from __future__ import annotations

import re

# Order matters: URLs before emails, resident registration numbers before phone numbers.
# Host names and email addresses are matched in ASCII only: `\w` would also match Hangul, and
# speech-to-text output often glues a particle or the previous word to them ("메일은abc@x.com이에요"),
# which the pattern would then swallow. A URL's path (after / ? #) may still hold any character.
PII_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("[URL]", re.compile(r"(?:https?://|www\.)[A-Za-z0-9.-]+(?::\d+)?(?:[/?#][^\s<>\"']*)?", re.IGNORECASE)),
    ("[EMAIL]", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")),
    ("[RRN]", re.compile(r"(?<!\d)\d{6}\s?-?\s?[1-8]\d{6}(?!\d)")),
    ("[PHONE]", re.compile(
        r"(?<![\d+])(?:\+82[-.\s]?0?|0)(?:1[016789]|2|[3-6][1-5]|70|50\d)[-.\s)]?\d{3,4}[-.\s]?\d{4}(?!\d)"
        r"|(?<!\d)1[5-9]\d{2}-\d{4}(?!\d)")),
]
PLACEHOLDERS = tuple(tok for tok, _ in PII_PATTERNS)


def mask_pii(text: str) -> str:
    """Replace URLs, emails, resident registration and phone numbers with placeholder tokens."""
    for token, pattern in PII_PATTERNS:
        text = pattern.sub(token, text)
    return text
