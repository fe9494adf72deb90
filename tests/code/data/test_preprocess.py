"""The Korean preprocessor: each step alone, PII masking, spacing, and frame-level dedup."""

from __future__ import annotations

import importlib.util
import unicodedata

import pandas as pd
import pytest

from training.config import PreprocessConfig, RegexRule
from training.data.preprocess import (
    Preprocessor,
    Spacer,
    clean_whitespace,
    make_squeezer,
    normalize_nfc,
    preprocess_frame,
)
from training.data.validate import QUARANTINE_COLUMNS
from training.pii import mask_pii

ALL_OFF = {
    "nfc": False,
    "clean_whitespace": False,
    "mask_pii": False,
    "squeeze_repeats": False,
    "regex_rules": (),
    "spacing": "none",
}


def only(**steps) -> Preprocessor:
    """A preprocessor with every step off except the ones given."""
    return Preprocessor(PreprocessConfig(**{**ALL_OFF, **steps}))


def one(pre: Preprocessor, text: str) -> str:
    return pre([text])[0]


# --- the steps, each alone -----------------------------------------------------------------


def test_all_steps_off_is_the_identity():
    pre = only()
    assert pre.step_names == []
    text = unicodedata.normalize("NFD", "  할머니  010-1234-5678 ㅋㅋㅋㅋ ")
    assert pre([text]) == [text]


def test_step_order_follows_the_config():
    pre = Preprocessor(PreprocessConfig(spacing="none", regex_rules=(RegexRule(pattern="x"),)))
    assert pre.step_names == ["nfc", "whitespace", "mask_pii", "squeeze_repeats", "regex_rules"]


def test_nfc_alone_composes_hangul():
    nfd = unicodedata.normalize("NFD", "할머니가  넘어지셨어요")
    assert len(nfd) > len("할머니가  넘어지셨어요")
    pre = only(nfc=True)
    assert pre.step_names == ["nfc"]
    assert one(pre, nfd) == "할머니가  넘어지셨어요"  # spaces untouched: whitespace is its own step
    assert normalize_nfc(nfd) == "할머니가  넘어지셨어요"


def test_whitespace_alone_drops_control_and_zero_width_characters():
    pre = only(clean_whitespace=True)
    assert pre.step_names == ["whitespace"]
    messy = "  살려\u200b주세요\t\n 제발\x07\u00a0 빨리\u2028와\ufeff요\r\n"
    assert one(pre, messy) == "살려주세요 제발 빨리 와요"
    assert clean_whitespace("\u200d\u2060") == ""
    assert one(pre, "ㅋㅋㅋㅋㅋ 010-1234-5678") == "ㅋㅋㅋㅋㅋ 010-1234-5678"


@pytest.mark.parametrize(
    "text, masked",
    [
        ("010-1234-5678로 전화 주세요", "[PHONE]로 전화 주세요"),
        ("번호는 01012345678 이에요", "번호는 [PHONE] 이에요"),
        ("010 1234 5678", "[PHONE]"),
        ("010.1234.5678", "[PHONE]"),
        ("집 전화 02-123-4567", "집 전화 [PHONE]"),
        ("031-1234-5678 으로", "[PHONE] 으로"),
        ("+82-10-1234-5678", "[PHONE]"),
        ("+82 10 1234 5678", "[PHONE]"),
        ("+821012345678", "[PHONE]"),
        ("고객센터 1588-1234", "고객센터 [PHONE]"),
        ("주민번호 900101-1234567", "주민번호 [RRN]"),
        ("주민번호 9001012234567", "주민번호 [RRN]"),
        ("메일은 hong.gildong+test@example.co.kr 입니다", "메일은 [EMAIL] 입니다"),
        ("https://example.com/a?b=1 보세요", "[URL] 보세요"),
        ("www.naver.com 에서", "[URL] 에서"),
    ],
)
def test_mask_pii_masks_phones_rrn_emails_urls(text, masked):
    assert mask_pii(text) == masked
    pre = only(mask_pii=True)
    assert pre.step_names == ["mask_pii"]
    assert one(pre, text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "1000원만 빌려줘",
        "3,000,000원이 들었어요",
        "2024-05-01에 만나요",
        "2024.05.01",
        "20240501",
        "10:30에 약 먹어요",
        "버스 9707번",
        "12345678901",
        "방 번호 1203호",
        "혈압이 140에 90이래요",
    ],
)
def test_mask_pii_leaves_ordinary_numbers_and_dates(text):
    assert mask_pii(text) == text


@pytest.mark.parametrize(
    "text, masked",
    [
        # Speech-to-text often glues words and particles to the personal data; only the data is masked.
        ("제번호는010-1234-5678이고", "제번호는[PHONE]이고"),
        ("메일은abc@test.com이에요", "메일은[EMAIL]이에요"),
        ("www.naver.com에서봤어요", "[URL]에서봤어요"),
        ("주민번호는9001011234567이에요", "주민번호는[RRN]이에요"),
    ],
)
def test_mask_pii_keeps_glued_korean_text(text, masked):
    assert mask_pii(text) == masked


def test_squeeze_alone_shortens_repeats_but_not_digits():
    pre = only(squeeze_repeats=True, max_repeat=2)
    assert pre.step_names == ["squeeze_repeats"]
    assert one(pre, "ㅋㅋㅋㅋㅋ 진짜 웃겨!!!!!") == "ㅋㅋ 진짜 웃겨!!"
    assert one(pre, "ㅠㅠㅠ 1000000원 ???") == "ㅠㅠ 1000000원 ??"
    assert one(pre, "ㅋㅋ 그래!!") == "ㅋㅋ 그래!!"
    assert make_squeezer(3)("ㅋㅋㅋㅋㅋ!!!!") == "ㅋㅋㅋ!!!"
    assert make_squeezer(1)("ㅋㅋㅋ 11") == "ㅋ 11"


def test_regex_rules_alone_apply_in_order_and_tidy_spaces():
    rules = (RegexRule(pattern=r"\(웃음\)", replace=""), RegexRule(pattern=r"선생님", replace="쌤"))
    pre = only(regex_rules=rules)
    assert pre.step_names == ["regex_rules"]
    assert one(pre, "선생님 (웃음) 오늘  뭐 해요") == "쌤 오늘 뭐 해요"


def test_spacing_kiwi_fixes_glued_text(kiwi_preprocessor):
    assert kiwi_preprocessor.step_names[-1] == "spacing_kiwi"
    out = kiwi_preprocessor(["아이고허리야넘어졌어", "할머니가넘어지셨어요빨리와주세요"])
    assert out[0] == "아이고 허리야 넘어졌어"
    assert out[1].count(" ") >= 3 and out[1].replace(" ", "") == "할머니가넘어지셨어요빨리와주세요"
    # One text and a batch take different code paths in Spacer; they must agree.
    assert kiwi_preprocessor(["아이고허리야넘어졌어"]) == [out[0]]


def test_spacing_none_leaves_spaces_as_they_are():
    pre = only(spacing="none")
    assert pre.step_names == []
    assert one(pre, "아이고허리야넘어졌어") == "아이고허리야넘어졌어"
    assert one(pre, "아이 고 허 리야") == "아이 고 허 리야"
    assert Spacer("none")(["아이 고 허 리야"]) == ["아이 고 허 리야"]


def test_placeholders_survive_spacing(kiwi_preprocessor):
    out = kiwi_preprocessor(
        [
            "제번호는010-1234-5678이고메일은abc@test.com이에요",
            "주민번호900101-1234567알려드릴게요",
            "www.example.com에들어가봐",
        ]
    )
    assert "[PHONE]" in out[0] and "[EMAIL]" in out[0]
    assert "[RRN]" in out[1] and "[URL]" in out[2]
    assert not any(c.isdigit() for c in "".join(out))
    assert "abc" not in out[0] and "example" not in out[2]
    # Korean around the placeholders is kept (and spaced).
    assert "메일은" in out[0] and "알려" in out[1]


def test_unknown_spacing_backend_is_rejected():
    with pytest.raises(ValueError, match="unknown spacing backend 'hanspell'"):
        Spacer("hanspell")


@pytest.mark.skipif(importlib.util.find_spec("pykospacing") is not None, reason="pykospacing is installed")
def test_pykospacing_missing_is_a_runtime_error_with_an_install_hint():
    with pytest.raises(RuntimeError, match=r"pip install git\+https://github.com/haven-jeon/PyKoSpacing"):
        Preprocessor(PreprocessConfig(spacing="pykospacing"))


def test_run_timed_matches_call():
    pre = Preprocessor(PreprocessConfig(spacing="none"))
    texts = ["  ㅋㅋㅋㅋ 010-1234-5678 ", "안녕"]
    out, timings = pre.run_timed(texts)
    assert out == pre(texts) == ["ㅋㅋ [PHONE]", "안녕"]
    assert list(timings) == pre.step_names and all(t >= 0 for t in timings.values())
    assert pre([]) == []


# --- preprocess_frame --------------------------------------------------------------------


def frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["id", "text", "label"])
    return df.assign(source_file="valid.parquet", source_row=range(1, len(df) + 1))


@pytest.fixture(scope="module")
def fast_pre() -> Preprocessor:
    """All per-text steps, no spacing model: exact and fast for frame-level tests."""
    return Preprocessor(PreprocessConfig(spacing="none"))


def check_accounting(df, clean, quarantined):
    assert len(clean) + len(quarantined) == len(df)
    assert sorted([*clean["id"], *quarantined["id"]]) == sorted(df["id"])
    assert list(quarantined.columns) == QUARANTINE_COLUMNS
    assert (quarantined["stage"] == "preprocess").all()


def test_frame_dedup_keeps_the_first_and_quarantines_repeats(fast_pre):
    df = frame(
        [
            ("a1", "살려 주세요", "emergency"),
            ("a2", "살려\u200b 주세요!!!!", "emergency"),
            ("a3", "살려  주세요", "emergency"),
            ("a4", "살려 주세요!!", "emergency"),
            ("b1", "괜찮아요", "normal"),
        ]
    )
    clean, quarantined, report = preprocess_frame(df, fast_pre)
    check_accounting(df, clean, quarantined)
    assert clean["id"].tolist() == ["a1", "a2", "b1"]
    assert clean["text"].tolist() == ["살려 주세요", "살려 주세요!!", "괜찮아요"]
    assert dict(zip(quarantined["id"], quarantined["reason"])) == {
        "a3": "duplicate of a1 after normalisation",
        "a4": "duplicate of a2 after normalisation",
    }
    # The quarantine shows the text as it was read, so a labeler can find it.
    assert quarantined.set_index("id").loc["a3", "text"] == "살려  주세요"
    assert report["duplicates_removed"] == 2 and report["rows_in"] == 5 and report["rows_out"] == 3
    assert "original_text" not in clean.columns


def test_frame_conflicts_after_normalisation_are_all_quarantined(fast_pre):
    df = frame(
        [
            ("p1", "010-1234-5678로 전화해", "normal"),
            ("p2", "010-9876-5432로 전화해", "emergency"),
            ("k1", "ㅋㅋㅋㅋ 웃겨", "normal"),
            ("k2", "ㅋㅋㅋ 웃겨", "normal"),
            ("x1", "배고파요", "normal"),
        ]
    )
    clean, quarantined, report = preprocess_frame(df, fast_pre)
    check_accounting(df, clean, quarantined)
    reasons = dict(zip(quarantined["id"], quarantined["reason"]))
    assert reasons["p1"].startswith("conflicting labels once normalised")
    assert reasons["p2"].startswith("conflicting labels once normalised")
    assert reasons["k2"] == "duplicate of k1 after normalisation"
    assert clean["id"].tolist() == ["k1", "x1"]
    assert report["conflicts_after_normalisation"] == 2
    assert report["masked_pii"] == 2 and report["texts_changed"] == 4


def test_frame_texts_that_become_empty_are_quarantined(fast_pre):
    pre = Preprocessor(PreprocessConfig(spacing="none", regex_rules=(RegexRule(pattern=r"\(웃음\)"),)))
    df = frame([("z1", "\u200b\u200b", "normal"), ("z2", "(웃음)", "normal"), ("ok", "네 (웃음)", "normal")])
    clean, quarantined, report = preprocess_frame(df, pre)
    check_accounting(df, clean, quarantined)
    assert clean["text"].tolist() == ["네"]
    assert set(quarantined["reason"]) == {"empty after preprocessing"}
    assert quarantined["text"].tolist() == ["\u200b\u200b", "(웃음)"]
    assert report["empty_after_preprocessing"] == 2


def test_frame_without_dedup_keeps_repeats_and_conflicts(fast_pre):
    df = frame(
        [
            ("a1", "살려 주세요", "emergency"),
            ("a2", "살려  주세요", "emergency"),
            ("p1", "010-1234-5678", "normal"),
            ("p2", "010-9876-5432", "emergency"),
        ]
    )
    clean, quarantined, report = preprocess_frame(df, fast_pre, dedup=False)
    assert quarantined.empty and len(clean) == 4
    assert report["duplicates_removed"] == 0 and report["conflicts_after_normalisation"] == 0


def test_frame_with_kiwi_spacing_dedups_texts_equal_after_spacing(kiwi_preprocessor):
    df = frame(
        [
            ("s1", "아이고허리야넘어졌어", "distress"),
            ("s2", "아이고 허리야 넘어졌어", "distress"),
            ("s3", "아이고 허리야넘어 졌어", "distress"),
        ]
    )
    clean, quarantined, report = preprocess_frame(df, kiwi_preprocessor)
    check_accounting(df, clean, quarantined)
    assert clean["text"].tolist() == ["아이고 허리야 넘어졌어"]
    assert report["steps"][-1] == "spacing_kiwi"
