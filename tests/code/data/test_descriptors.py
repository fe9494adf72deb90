"""Korean text descriptors (training/data/descriptors.py): each column on small hand-checked texts."""

from __future__ import annotations

import random
import time

import numpy as np
import pandas as pd
import pytest

from training.data.descriptors import DESCRIPTORS, describe
from training.pii import PLACEHOLDERS


def one(text: str, **kwargs) -> pd.Series:
    return describe([text], **kwargs).iloc[0]


def test_one_float_row_per_text_in_the_declared_column_order():
    frame = describe(["안녕하세요", "배송 언제 와요?", ""])
    assert list(frame.columns) == list(DESCRIPTORS)
    assert len(frame) == 3
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert describe([]).shape == (0, len(DESCRIPTORS))


def test_chars_and_eojeols():
    row = one("  배송  언제\t와요? ")
    assert row["chars"] == len("  배송  언제\t와요? ")
    assert row["eojeols"] == 3
    assert one("")["eojeols"] == 0


def test_pure_hangul_is_all_hangul_unlike_an_ascii_only_descriptor():
    row = one("배송이 너무 늦어요 ㅠㅠ")
    assert row["hangul_ratio"] == 1.0
    assert row[["latin_ratio", "digit_ratio", "other_ratio"]].sum() == 0.0


def test_character_class_ratios_sum_to_one_and_to_zero_for_an_empty_text():
    row = one("OK 12시에 와요!")  # non-space: O K 1 2 시 에 와 요 ! = 9
    assert row["latin_ratio"] == pytest.approx(2 / 9)
    assert row["digit_ratio"] == pytest.approx(2 / 9)
    assert row["hangul_ratio"] == pytest.approx(4 / 9)
    assert row["other_ratio"] == pytest.approx(1 / 9)
    frame = describe(["OK 12시에 와요!", "café ×2 漢字 😀", "   ", ""])
    sums = frame[["hangul_ratio", "latin_ratio", "digit_ratio", "other_ratio"]].sum(axis=1)
    assert sums.tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0])
    assert frame.loc[1, "latin_ratio"] == pytest.approx(4 / 9)  # é is Latin, × is not


def test_jamo_only_eojeols_mark_chat_text():
    assert one("ㅋㅋㅋ 진짜 웃겨 ㅎㅎ")["jamo_token_rate"] == pytest.approx(2 / 4)
    # Jamo glued to a word or to punctuation is not a jamo-only eojeol.
    assert one("ㅋㅋ웃겨 ㅠㅠ!")["jamo_token_rate"] == 0.0
    assert one("ㅠㅠ")["jamo_token_rate"] == 1.0
    assert one("")["jamo_token_rate"] == 0.0


def test_emoji_per_character_ignoring_variation_selectors():
    assert one("좋아요😀")["emoji_rate"] == pytest.approx(1 / 4)
    assert one("❤️")["emoji_rate"] == 1.0  # U+2764 with U+FE0F: one emoji in one character
    assert one("🀄 ☀ ✅")["emoji_rate"] == pytest.approx(3 / 5)  # the three blocks; spaces are characters
    assert one("좋아요 :)")["emoji_rate"] == 0.0


def test_pii_placeholders_per_eojeol_use_the_maskers_tokens():
    phone, email = "[PHONE]", "[EMAIL]"
    assert {phone, email} <= set(PLACEHOLDERS)
    row = one(f"{phone}으로 연락 주세요 {email}")
    assert row["pii_rate"] == pytest.approx(2 / 4)
    # A placeholder is one "other" character, not five Latin letters.
    assert row["latin_ratio"] == 0.0
    assert row["other_ratio"] == pytest.approx(2 / 9)
    assert one("PHONE 연락")["pii_rate"] == 0.0


def test_tokenizer_descriptors_need_pieces():
    texts = ["배송 조회", "얼죽아 먹고싶다"]
    pieces = [["배송", "조회"], ["[UNK]", "먹", "##고", "##싶", "##다"]]
    frame = describe(texts, pieces=pieces, max_length=6)
    assert frame["unk_rate"].tolist() == pytest.approx([0.0, 1 / 5])
    assert frame["pieces_per_eojeol"].tolist() == pytest.approx([1.0, 5 / 2])
    assert frame["truncated"].tolist() == [0.0, 1.0]  # 5 pieces + [CLS] + [SEP] > 6
    assert describe(texts, pieces=pieces, unk_token="<unk>")["unk_rate"].tolist() == [0.0, 0.0]
    assert describe(texts, pieces=pieces)["truncated"].isna().all()  # no max_length
    without = describe(texts)
    assert without[["unk_rate", "pieces_per_eojeol", "truncated"]].isna().all().all()
    assert describe([""], pieces=[[]], max_length=2).iloc[0][["unk_rate", "truncated"]].tolist() == [0, 0]


def test_piece_counts_give_what_the_pieces_give():
    """The service logs counts, not pieces (serving.inference): the same numbers for the same pieces."""
    texts = ["배송 조회", "얼죽아 먹고싶다", "", "ㅋㅋ"]
    pieces = [["배송", "조회"], ["[UNK]", "먹", "##고", "##싶", "##다"], [], ["[UNK]"]]
    with_pieces = describe(texts, respaced=texts, pieces=pieces, max_length=6)
    counted = describe(
        texts,
        respaced=texts,
        piece_counts=[len(p) for p in pieces],
        unk_counts=[p.count("[UNK]") for p in pieces],
        max_length=6,
    )
    pd.testing.assert_frame_equal(counted, with_pieces)
    # The caller's own truncation flags (the service knows them from its encoding): max_length not needed.
    flagged = describe(texts, piece_counts=[2, 5, 0, 1], unk_counts=[0, 1, 0, 1], truncated=[0, 1, 0, 0])
    assert flagged["truncated"].tolist() == [0.0, 1.0, 0.0, 0.0]
    # Counts without unknown counts: pieces per eojeol only.
    only = describe(texts, piece_counts=[2, 5, 0, 1])
    assert only["unk_rate"].isna().all() and only["pieces_per_eojeol"].tolist() == [1.0, 2.5, 0.0, 1.0]
    with pytest.raises(ValueError, match="not both"):
        describe(texts, pieces=pieces, piece_counts=[2, 5, 0, 1])
    with pytest.raises(ValueError, match="unk_counts needs piece_counts"):
        describe(texts, unk_counts=[0, 0, 0, 0])
    with pytest.raises(ValueError, match="truncated has 1 entries for 4 texts"):
        describe(texts, truncated=[True])


def test_spacing_against_the_respaced_text():
    texts = ["나는학교에간다", "나는 학교에 간다", "  나는   학교에\t간다 ", "나 는학교에 간다", "가", ""]
    spaced = ["나는 학교에 간다"] * 4 + ["가", ""]
    frame = describe(texts, respaced=spaced)
    # STT output without spaces: 2 of its 6 gaps differ; whitespace runs and ends do not count.
    assert frame["spacing_anomaly"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert frame["spacing_edit_rate"].tolist() == pytest.approx([2 / 6, 0.0, 0.0, 2 / 6, 0.0, 0.0])
    assert describe(texts)[["spacing_anomaly", "spacing_edit_rate"]].isna().all().all()


def test_characters_changed_by_preprocessing_are_not_spacing_errors():
    # The preprocessor squeezes ㅋㅋㅋㅋ to ㅋㅋ and rewrites rules: only matched text is compared.
    frame = describe(
        ["ㅋㅋㅋㅋ 너무 웃겨요", "ㅋㅋㅋㅋ너무 웃겨요", "배송 언제와요"],
        respaced=["ㅋㅋ 너무 웃겨요", "ㅋㅋ 너무 웃겨요", "택배 언제 와요"],
    )
    assert frame["spacing_anomaly"].tolist() == [0.0, 1.0, 1.0]
    assert frame["spacing_edit_rate"].tolist() == pytest.approx([0.0, 1 / 8, 1 / 5])


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="respaced has 1 entries for 2 texts"):
        describe(["가", "나"], respaced=["가"])
    with pytest.raises(ValueError, match="pieces"):
        describe(["가"], pieces=[])


def test_ten_thousand_texts_in_one_call():
    """The column is described at once (regular expressions over the Series, numpy sums); on a laptop
    core 10,000 texts take well under a second. Printed, not asserted: timings are not behaviour."""
    rng = random.Random(0)
    words = ["배송", "언제", "와요?", "ㅋㅋ", "환불", "해주세요", "OK", "123", "😀", "[PHONE]으로", "ㅠㅠ"]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 20))) for _ in range(10_000)]
    respaced = [t.replace(" ", "", 1) if i % 3 == 0 else t for i, t in enumerate(texts)]
    started = time.perf_counter()
    frame = describe(texts, respaced=respaced, pieces=[t.split() for t in texts], max_length=16)
    print(f"\ndescribe: 10,000 texts in {time.perf_counter() - started:.3f} s")
    assert len(frame) == 10_000
    assert frame["spacing_anomaly"].sum() == sum(1 for i, t in enumerate(texts) if i % 3 == 0 and " " in t)
    assert not frame.isna().any().any()
