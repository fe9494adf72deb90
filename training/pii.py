"""Personal-data masking: URLs, emails, resident registration, card, bank account and phone numbers.

Kept free of heavy imports: logging filters, the preprocessor and the prediction log all use it.
"""

from __future__ import annotations

import re

# Area codes after the leading 0: mobile 01X, Seoul 02, regions 031-064, internet 070, 050X.
_AREA = r"(?:1[016789]|2|[3-6][1-5]|70|50\d)"

# Bank account layouts (digit groups joined by hyphens), as the banks print them. Hyphens are
# required: without them, or with spaces, these are indistinguishable from counts and amounts.
_ACCOUNT_LAYOUTS = (
    (3, 3, 6),  # 신한 110-123-456789
    (3, 2, 6),  # 국민 (old), 수협
    (4, 2, 7),  # 카카오뱅크 3333-01-1234567
    (4, 3, 6),  # 우리 1002-123-456789
    (6, 2, 6),  # 국민 123456-12-123456
    (3, 6, 5),  # 하나 123-456789-12345
    (3, 4, 4, 2),  # 농협 302-1234-5678-91
    (3, 6, 2, 3),  # 기업 123-456789-01-234
    (4, 4, 4),  # 토스뱅크 1000-1234-5678 (first digit not 0: 050X-XXXX-XXXX is a phone number)
)


def _layout(groups: tuple[int, ...]) -> str:
    first = r"[1-9]\d{%d}" % (groups[0] - 1) if groups == (4, 4, 4) else r"\d{%d}" % groups[0]
    return "-".join([first, *(r"\d{%d}" % n for n in groups[1:])])


# Order matters: URLs before emails; resident registration, card and account numbers before phone
# numbers (a card number starting 1588 would otherwise lose its first eight digits to the
# representative-number pattern, and keep the rest).
# Host names and email addresses are matched in ASCII only: `\w` would also match Hangul, and
# speech-to-text output often glues a particle or the previous word to them ("메일은abc@x.com이에요"),
# which the pattern would then swallow. A URL's path (after / ? #) may still hold any character.
# Digit patterns never start or end inside a longer run of digits ((?<!\d), (?!\d)).
PII_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("[URL]", re.compile(r"(?:https?://|www\.)[A-Za-z0-9.-]+(?::\d+)?(?:[/?#][^\s<>\"']*)?", re.IGNORECASE)),
    ("[EMAIL]", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")),
    ("[RRN]", re.compile(r"(?<!\d)\d{6}\s?-?\s?[1-8]\d{6}(?!\d)")),
    # 4-4-4-4 with one separator throughout (or none: 16 digits in a row), and Amex's 4-6-5.
    (
        "[CARD]",
        re.compile(r"(?<![\d-])(?:\d{4}([-\s.]?)\d{4}\1\d{4}\1\d{4}|\d{4}[-\s]\d{6}[-\s]\d{5})(?![\d]|-\d)"),
    ),
    (
        "[ACCOUNT]",
        re.compile(r"(?<![\d-])(?:" + "|".join(_layout(g) for g in _ACCOUNT_LAYOUTS) + r")(?![\d]|-\d)"),
    ),
    # A parenthesised area code is masked with its parentheses, (02)123-4567 and (031) 123-4567,
    # so no stray "(" is left; a bracket that is not around an area code is never touched.
    (
        "[PHONE]",
        re.compile(
            r"(?<![\d+])(?:\(0" + _AREA + r"\)\s?|(?:\+82[-.\s]?0?|0)" + _AREA + r"(?:[-.\s]|\)\s?)?)"
            r"\d{3,4}[-.\s]?\d{4}(?!\d)"
            r"|(?<!\d)1[5-9]\d{2}-\d{4}(?!\d)"
        ),
    ),
]
PLACEHOLDERS = tuple(tok for tok, _ in PII_PATTERNS)
# What every pattern above needs somewhere in the text: a decimal digit (any script's, as `\d` matches),
# "@", "://" or "www." (any case). A text with none of them has nothing to mask: one search instead of
# six (most utterances; the service masks every text it logs, and what the model read as well).
_MAY_HOLD_PII = re.compile(r"[\d@]|://|www\.", re.IGNORECASE)


def mask_pii(text: str) -> str:
    """Replace URLs, emails, resident registration, card, account and phone numbers with placeholders."""
    if _MAY_HOLD_PII.search(text) is None:
        return text
    for token, pattern in PII_PATTERNS:
        text = pattern.sub(token, text)
    return text
