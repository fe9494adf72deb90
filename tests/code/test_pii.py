"""Personal-data masking (training/pii.py): card, account and parenthesised phone numbers.

The phone, resident registration, email and URL cases, and ordinary numbers that must stay, are in
tests/code/data/test_preprocess.py (they also run through the preprocessor there); this file adds
the newer patterns and how they sit beside the older ones.
"""

from __future__ import annotations

import re

import pytest

from training.pii import PII_PATTERNS, PLACEHOLDERS, mask_pii


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # a parenthesised area code goes with the number, parentheses and all
        ("집 전화 (02)123-4567 이에요", "집 전화 [PHONE] 이에요"),
        ("(031) 123-4567로 걸어 주세요", "[PHONE]로 걸어 주세요"),
        ("(02) 1234-5678", "[PHONE]"),
        ("(064)123-4567", "[PHONE]"),
        ("02)123-4567", "[PHONE]"),
        # brackets around a whole number are not part of it
        ("보호자(010-1234-5678)에게", "보호자([PHONE])에게"),
        ("고객센터(1588-1234)", "고객센터([PHONE])"),
    ],
)
def test_phone_numbers_with_parenthesised_area_codes(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "(3)번 문제가 어려워요",
        "(02)",
        "(1234)",
        "엄마(70)가 아파요",
        "(2024)년",
        "방 (1203)호",
    ],
)
def test_unrelated_parentheses_are_left_alone(text: str) -> None:
    assert mask_pii(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("카드 번호 1234-5678-9012-3456 이에요", "카드 번호 [CARD] 이에요"),
        ("1234 5678 9012 3456", "[CARD]"),
        ("1234.5678.9012.3456", "[CARD]"),
        ("카드번호는1234567890123456이에요", "카드번호는[CARD]이에요"),
        ("3782-822463-10005", "[CARD]"),  # Amex 4-6-5
        ("1588-1234-5678-9012", "[CARD]"),  # not "[PHONE]-5678-9012"
    ],
)
def test_card_numbers(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("계좌 110-123-456789로 보내 주세요", "계좌 [ACCOUNT]로 보내 주세요"),  # 3-3-6
        ("123-45-678901", "[ACCOUNT]"),  # 3-2-6
        ("3333-01-1234567", "[ACCOUNT]"),  # 4-2-7
        ("1002-123-456789", "[ACCOUNT]"),  # 4-3-6
        ("123456-12-123456", "[ACCOUNT]"),  # 6-2-6, not a resident registration number
        ("123-456789-12345", "[ACCOUNT]"),  # 3-6-5
        ("302-1234-5678-91", "[ACCOUNT]"),  # 3-4-4-2
        ("123-456789-01-234", "[ACCOUNT]"),  # 3-6-2-3
        ("1000-1234-5678", "[ACCOUNT]"),  # 4-4-4
        ("계좌는110-123-456789이고", "계좌는[ACCOUNT]이고"),  # glued speech-to-text output
    ],
)
def test_bank_account_numbers(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("010-1234-5678", "[PHONE]"),
        ("0505-1234-5678", "[PHONE]"),  # 4-4-4 but a phone number: starts with 0
        ("031-123-4567", "[PHONE]"),
        ("850505-2345678", "[RRN]"),
        ("8505052345678", "[RRN]"),
        (
            "제 번호 010-1234-5678, 주민번호 850505-2345678, 카드 1234-5678-9012-3456, 계좌 110-123-456789",
            "제 번호 [PHONE], 주민번호 [RRN], 카드 [CARD], 계좌 [ACCOUNT]",
        ),
    ],
)
def test_phone_and_resident_numbers_are_unchanged_by_the_new_patterns(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01에 만나요",
        "2024-05-01-123456",
        "12345678901",
        "123-45-67890",  # business number 3-2-5
        "1234-5678",
        "110-123-4567",
        "1234-5678-9012-3456-7",
        "12-34-56",
        "3,000,000원",
        "010-1234",
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_placeholders_list_every_pattern_once_and_look_like_placeholders() -> None:
    assert PLACEHOLDERS == tuple(token for token, _ in PII_PATTERNS)
    assert set(PLACEHOLDERS) == {"[URL]", "[EMAIL]", "[RRN]", "[CARD]", "[ACCOUNT]", "[PHONE]"}
    assert all(re.fullmatch(r"\[[A-Z]+\]", token) for token in PLACEHOLDERS)


def test_the_quick_check_never_skips_what_a_pattern_masks() -> None:
    r"""mask_pii skips the patterns for a text without a digit, "@", "://" or "www." (_MAY_HOLD_PII): every
    match of every pattern holds one, on the sample's utterances and on seeded random texts glued from
    personal data, its look-alikes and noise (fullwidth digits too: `\d` matches them)."""
    import random
    from collections import Counter

    from training.paths import PROJECT_ROOT
    from training.pii import _MAY_HOLD_PII

    sample = (PROJECT_ROOT / "data" / "sample" / "utterances.csv").read_text(encoding="utf-8").splitlines()
    pieces = [
        *("010-1234-5678", "(02)123-4567", "+82 10 1234 5678", "1588-1234", "０１０-１２３４-５６７８"),
        *("900101-1234567", "1234-5678-9012-3456", "3782 822463 10005", "110-123-456789", "3333-01-1234567"),
        *("a@b.co", "x.y+z@mail.example.kr", "www.x.kr", "HTTPS://A.B/c?d", "http://x.y:80/z"),
        *("전화", "주세요", "번호는", "-", ".", " ", "(", ")", "@", ":", "/", "www", "12", "ㅋㅋ", "abc"),
    ]
    rng = random.Random(0)
    texts = [*sample, *("".join(rng.choices(pieces, k=rng.randint(1, 6))) for _ in range(5000))]
    matched: Counter[str] = Counter()
    for text in texts:
        for token, pattern in PII_PATTERNS:
            for match in pattern.finditer(text):
                matched[token] += 1
                assert _MAY_HOLD_PII.search(match.group(0)), (text, match.group(0))
        if _MAY_HOLD_PII.search(text) is None:
            assert mask_pii(text) == text
    assert set(matched) == set(PLACEHOLDERS) and min(matched.values()) > 50, matched


def test_masking_is_idempotent() -> None:
    text = "연락처 (02)123-4567, 카드 1234-5678-9012-3456, 계좌 110-123-456789, a@b.co, www.x.kr"
    once = mask_pii(text)
    assert mask_pii(once) == once
    assert not re.search(r"\d{3}", once)


def test_the_preprocessor_keeps_the_new_placeholders_whole(kiwi_preprocessor) -> None:
    out = kiwi_preprocessor(
        ["카드번호는1234-5678-9012-3456이에요", "계좌 110-123-456789로 보내줘", "집 전화 (02)123-4567 이에요"]
    )
    assert "[CARD]" in out[0] and "[ACCOUNT]" in out[1] and "[PHONE]" in out[2]
    assert "(" not in out[2] and not any(ch.isdigit() for t in out for ch in t)
