"""The validator: every row read is either valid or quarantined with a reason."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from training.config import ValidateConfig
from training.data.validate import QUARANTINE_COLUMNS, comparison_key, validate
from training.errors import DataError

LABELS = ("normal", "emergency")
CFG = ValidateConfig(min_rows_per_class=3)


def raw(rows: list[tuple]) -> pd.DataFrame:
    """(id, text, label) tuples -> the raw table as ingest writes it."""
    df = pd.DataFrame(rows, columns=["id", "text", "label"])
    return df.assign(source_file="batch.csv", source_row=range(1, len(df) + 1))


def base_rows() -> list[tuple]:
    """Three clean rows per label, enough to pass min_rows_per_class=3."""
    texts = {
        "normal": ["오늘 점심 뭐 먹을까", "날씨가 좋네요", "텔레비전 좀 켜 줘"],
        "emergency": ["할머니가 쓰러지셨어요", "불이 났어요 도와주세요", "숨을 못 쉬겠어요"],
    }
    return [(f"{lab[0]}{k}", t, lab) for lab in LABELS for k, t in enumerate(texts[lab])]


def run(rows: list[tuple], labels=LABELS, cfg: ValidateConfig = CFG):
    df = raw(rows)
    valid, quarantined, report = validate(df, labels, cfg)
    # The invariant every test relies on: nothing is dropped silently.
    assert len(valid) + len(quarantined) == len(df) == report["rows_read"]
    assert report["rows_valid"] == len(valid) and report["rows_quarantined"] == len(quarantined)
    assert list(quarantined.columns) == QUARANTINE_COLUMNS
    # ... and each row lands exactly once (source_row is unique in these inputs).
    assert sorted([*valid["source_row"], *quarantined["source_row"]]) == list(range(1, len(df) + 1))
    assert (quarantined["stage"] == "validate").all()
    assert quarantined["reason"].map(lambda r: isinstance(r, str) and r != "").all()
    return valid, quarantined, report


def reasons(quarantined: pd.DataFrame) -> dict[str, str]:
    return dict(zip(quarantined["id"], quarantined["reason"]))


def test_clean_input_passes_unchanged():
    valid, quarantined, report = run(base_rows())
    assert quarantined.empty
    assert list(zip(valid["id"], valid["text"], valid["label"])) == base_rows()
    assert report["per_class"] == {"normal": 3, "emergency": 3}
    assert report["label_set"] == {"labels": list(LABELS), "inferred": False}


def test_labels_are_trimmed_and_the_change_is_reported():
    rows = base_rows()
    rows[0] = (rows[0][0], rows[0][1], "normal   ")
    rows[3] = (rows[3][0], rows[3][1], "\temergency")
    valid, quarantined, report = run(rows)
    assert quarantined.empty
    assert set(valid["label"]) == set(LABELS)
    assert report["labels_trimmed"]["rows"] == 2
    assert report["labels_trimmed"]["examples"][0] == {"id": "n0", "from": "normal   ", "to": "normal"}


def test_numeric_label_with_trailing_spaces_is_trimmed():
    rows = [(f"r{k}", f"문장 {k}", lab) for k, lab in enumerate(["0", "0", "0", "2   ", "2", "2"])]
    valid, _, report = run(rows, labels=("0", "2"))
    assert valid["label"].tolist() == ["0", "0", "0", "2", "2", "2"]
    assert report["labels_trimmed"]["examples"] == [{"id": "r3", "from": "2   ", "to": "2"}]


def test_nfd_labels_match_the_nfc_label_set():
    # Labels exported on macOS can arrive decomposed; they must not become unknown (or a new class).
    rows = [
        (f"r{k}", f"문장 {k}", unicodedata.normalize("NFD" if k % 2 else "NFC", lab))
        for k, lab in enumerate(["분노"] * 3 + ["기쁨"] * 3)
    ]
    valid, quarantined, _ = run(rows, labels=("분노", "기쁨"))
    assert quarantined.empty
    assert valid["label"].tolist() == ["분노"] * 3 + ["기쁨"] * 3
    _, _, inferred = run(rows, labels=None)
    assert inferred["label_set"]["labels"] == ["기쁨", "분노"]


def test_empty_texts_and_labels_are_quarantined():
    rows = base_rows() + [
        ("e1", "", "normal"),
        ("e2", "   \n", "normal"),
        ("e3", None, "emergency"),
        ("e4", "라벨이 없어요", ""),
        ("e5", "라벨이 공백", "   "),
        ("e6", "라벨이 None", None),
    ]
    valid, quarantined, report = run(rows)
    assert len(valid) == 6
    r = reasons(quarantined)
    assert {k: r[k] for k in ("e1", "e2", "e3")} == dict.fromkeys(
        ("e1", "e2", "e3"), "empty or whitespace-only text"
    )
    assert {k: r[k] for k in ("e4", "e5", "e6")} == dict.fromkeys(("e4", "e5", "e6"), "empty label")
    assert report["empty_texts"] == 3 and report["empty_labels"] == 3


def test_row_with_empty_text_and_empty_label_is_quarantined_once():
    _, quarantined, report = run(base_rows() + [("e1", " ", " ")])
    assert quarantined["id"].tolist() == ["e1"]
    assert report["empty_texts"] == 1 and report["empty_labels"] == 0


def test_unknown_labels_are_quarantined_with_the_label_named():
    rows = base_rows() + [
        ("u1", "뭔가 이상해요", "weird"),
        ("u2", "또 이상해요", "weird"),
        ("u3", "모름", "Normal"),
    ]
    _, quarantined, report = run(rows)
    r = reasons(quarantined)
    assert "'weird'" in r["u1"] and "'Normal'" in r["u3"] and "normal" in r["u3"]
    assert report["unknown_labels"] == {"weird": 2, "Normal": 1}


def test_too_long_texts_are_quarantined():
    cfg = ValidateConfig(min_rows_per_class=3, max_chars=20)
    rows = base_rows() + [("long", "가" * 21, "normal"), ("edge", "나" * 20, "normal")]
    valid, quarantined, report = run(rows, cfg=cfg)
    assert quarantined["id"].tolist() == ["long"]
    assert "max_chars=20" in quarantined["reason"].iloc[0]
    assert "edge" in set(valid["id"]) and report["too_long"] == 1


def test_duplicate_ids_keep_the_first_row():
    rows = base_rows() + [("n0", "같은 아이디 다른 문장", "normal")]
    valid, quarantined, report = run(rows)
    assert valid.loc[valid["id"] == "n0", "text"].tolist() == ["오늘 점심 뭐 먹을까"]
    assert quarantined["text"].tolist() == ["같은 아이디 다른 문장"]
    assert "duplicate id" in quarantined["reason"].iloc[0]
    assert report["duplicate_ids"] == 1


def test_comparison_key_ignores_composition_and_spacing():
    assert comparison_key(unicodedata.normalize("NFD", " 살려  주세요\t")) == "살려 주세요"


CONFLICTS = [
    ("a1", "도와주세요", "emergency"),
    ("a2", " 도와주세요 ", "emergency"),
    ("a3", "도와주세요", "normal"),
    ("b1", "괜찮아요", "normal"),
    ("b2", "괜찮아요", "emergency"),
    ("c1", "물 주세요", "normal"),
    ("c2", "물 주세요", "normal"),  # a repeat, not a conflict
]


def test_conflicts_quarantine_policy_quarantines_every_row_of_the_text():
    valid, quarantined, report = run(base_rows() + CONFLICTS)
    assert sorted(quarantined["id"]) == ["a1", "a2", "a3", "b1", "b2"]
    assert all(
        "conflicting labels" in r and "'emergency'" in r and "'normal'" in r for r in quarantined["reason"]
    )
    assert {"c1", "c2"} <= set(valid["id"])  # exact repeats are the preprocessor's to dedupe
    conf = report["conflicts"]
    assert (conf["texts"], conf["rows"], conf["quarantined_rows"], conf["kept_rows"]) == (2, 5, 5, 0)


def test_conflicts_majority_policy_quarantines_the_outvoted_and_ties():
    cfg = ValidateConfig(min_rows_per_class=3, conflicts="majority")
    valid, quarantined, report = run(base_rows() + CONFLICTS, cfg=cfg)
    r = reasons(quarantined)
    assert set(r) == {"a3", "b1", "b2"}
    assert "outvoted" in r["a3"]
    assert "no majority" in r["b1"] and "no majority" in r["b2"]
    assert {"a1", "a2"} <= set(valid["id"])
    assert set(valid.loc[valid["id"].isin(["a1", "a2"]), "label"]) == {"emergency"}
    conf = report["conflicts"]
    assert (conf["rows"], conf["quarantined_rows"], conf["kept_rows"], conf["policy"]) == (
        5,
        3,
        2,
        "majority",
    )


def test_majority_with_a_tie_at_the_top_and_a_third_label_quarantines_all():
    cfg = ValidateConfig(min_rows_per_class=3, conflicts="majority")
    rows = (
        base_rows()
        + [
            ("t1", "어지러워요", "normal"),
            ("t2", "어지러워요", "normal"),
            ("t3", "어지러워요", "emergency"),
            ("t4", "어지러워요", "emergency"),
            ("t5", "어지러워요", "confused"),
        ]
        + [(f"c{k}", f"여기가 어디지 {k}", "confused") for k in range(3)]
    )
    _, quarantined, _ = run(rows, labels=None, cfg=cfg)
    assert sorted(quarantined["id"]) == ["t1", "t2", "t3", "t4", "t5"]
    assert set(quarantined["reason"]) == {"conflicting labels, no majority"}


def test_length_outliers_are_reported_but_kept():
    rows = (
        [(f"n{k}", f"짧은 문장 {k}", "normal") for k in range(8)]
        + [(f"e{k}", f"급해요 {k}", "emergency") for k in range(8)]
        + [("long", "아주 " * 60 + "긴 문장", "normal")]
    )
    valid, quarantined, report = run(rows, cfg=ValidateConfig(min_rows_per_class=3, outlier_iqr_k=3.0))
    assert quarantined.empty and "long" in set(valid["id"])
    assert report["length"]["outliers"] == 1
    assert report["length"]["outlier_ids"] == ["long"]
    assert report["length"]["max"] == len(rows[-1][1])


def test_too_few_rows_in_a_class_is_a_data_error_naming_the_class():
    rows = base_rows()[:5]  # emergency keeps 2
    with pytest.raises(DataError) as err:
        validate(raw(rows), LABELS, CFG, source="batch.csv")
    assert "'emergency' has 2" in str(err.value)
    assert "min_rows_per_class=3" in str(err.value)
    assert err.value.file == "batch.csv" and err.value.field == "label"


def test_a_configured_class_without_rows_is_a_data_error():
    with pytest.raises(DataError, match="'distress' has 0"):
        validate(raw(base_rows()), LABELS + ("distress",), CFG)


def test_quarantining_a_class_below_the_minimum_is_a_data_error():
    rows = base_rows() + [("x", "불이야", "emergency ")]
    rows[3] = ("e0", "", "emergency")  # emergency: 2 valid + 1 trimmed = 3
    assert len(run(rows)[0]) == 6
    rows[4] = ("e1", "   ", "emergency")
    with pytest.raises(DataError, match="'emergency' has 2"):
        validate(raw(rows), LABELS, CFG)


def rare_rows() -> list[tuple]:
    """base_rows (3 normal, 3 emergency) + 2 'distress' and 1 'confusion' rows: two rare classes at
    min_rows_per_class=3."""
    extra = [
        ("d0", "배가 아파요", "distress"),
        ("d1", "머리가 아파요", "distress"),
        ("c0", "여기가 어디야", "confusion"),
    ]
    return base_rows() + extra


ALL = LABELS + ("distress", "confusion")


def test_rare_classes_fail_names_the_classes_counts_and_what_to_do():
    with pytest.raises(DataError) as err:
        validate(raw(rare_rows()), ALL, CFG)
    msg = str(err.value)
    assert "'confusion' has 1, 'distress' has 2" in msg  # rarest first
    assert "validate.min_rows_per_class=3" in msg
    assert "validate.rare_classes=quarantine" in msg and "merge" in msg and "validate.merge_into" in msg
    assert "lower validate.min_rows_per_class" in msg
    assert err.value.report["rare_classes"]["classes"] == {"confusion": 1, "distress": 2}


def test_rare_classes_fail_lists_at_most_ten_classes():
    rows = base_rows() + [(f"r{k}", f"드문 발화 {k}", f"rare{k:02d}") for k in range(13)]
    with pytest.raises(DataError) as err:
        validate(raw(rows), (), CFG)
    assert "too few rows in 13 classes" in str(err.value)
    assert "'rare09' has 1 and 3 more" in str(err.value) and "rare10" not in str(err.value)


def test_rare_classes_quarantine_sets_their_rows_aside_with_a_reason():
    cfg = ValidateConfig(min_rows_per_class=3, rare_classes="quarantine")
    valid, quarantined, report = run(rare_rows(), labels=ALL, cfg=cfg)
    assert set(valid["label"]) == set(LABELS)
    assert reasons(quarantined) == {
        "d0": "rare class: 'distress' has 2 rows, fewer than validate.min_rows_per_class=3 "
        "(validate.rare_classes=quarantine)",
        "d1": "rare class: 'distress' has 2 rows, fewer than validate.min_rows_per_class=3 "
        "(validate.rare_classes=quarantine)",
        "c0": "rare class: 'confusion' has 1 row, fewer than validate.min_rows_per_class=3 "
        "(validate.rare_classes=quarantine)",
    }
    assert report["rare_classes"] == {
        "policy": "quarantine",
        "min_rows": 3,
        "classes": {"confusion": 1, "distress": 2},
        "rows_quarantined": 3,
        "rows_merged": 0,
        "merge_into": None,
    }
    assert report["label_set"] == {"labels": list(LABELS), "inferred": False}  # the rare ones left it
    assert report["per_class"] == {"normal": 3, "emergency": 3}
    assert report["quarantine_reasons"] == {"rare class": 3}


def test_rare_classes_quarantine_leaving_one_class_is_a_data_error():
    cfg = ValidateConfig(min_rows_per_class=4, rare_classes="quarantine")
    rows = base_rows() + [(f"n{k}", f"평범한 말 {k}", "normal") for k in range(3, 5)]  # normal 5, emergency 3
    with pytest.raises(DataError, match=r"set aside 1 rare class and left 1 \('normal'\); a classifier"):
        validate(raw(rows), LABELS, cfg)


def test_rare_classes_merge_relabels_their_rows_into_a_new_class():
    cfg = ValidateConfig(min_rows_per_class=3, rare_classes="merge", merge_into="기타")
    valid, quarantined, report = run(rare_rows(), labels=ALL, cfg=cfg)
    assert quarantined.empty
    assert dict(zip(valid["id"], valid["label"]))["c0"] == "기타"
    assert (valid["label"] == "기타").sum() == 3
    # A configured label set: the rare classes leave it, the target is appended.
    assert report["label_set"] == {"labels": ["normal", "emergency", "기타"], "inferred": False}
    assert report["per_class"] == {"normal": 3, "emergency": 3, "기타": 3}
    assert report["rare_classes"]["rows_merged"] == 3
    assert report["rare_classes"]["merge_into"] == "기타"
    assert report["rare_classes"]["merge_into_rows"] == 3


def test_rare_classes_merge_into_an_existing_class_grows_it():
    cfg = ValidateConfig(min_rows_per_class=3, rare_classes="merge", merge_into="normal")
    valid, _, report = run(rare_rows(), labels=(), cfg=cfg)  # inferred label set
    assert report["label_set"] == {"labels": ["emergency", "normal"], "inferred": True}
    assert report["per_class"] == {"emergency": 3, "normal": 6}
    assert report["rare_classes"]["rows_merged"] == 3 and report["rare_classes"]["merge_into_rows"] == 6


def test_rare_classes_merge_target_joins_an_inferred_label_set_in_sorted_place():
    cfg = ValidateConfig(min_rows_per_class=3, rare_classes="merge", merge_into="etc")
    _, _, report = run(rare_rows(), labels=(), cfg=cfg)
    assert report["label_set"]["labels"] == ["emergency", "etc", "normal"]


def test_rare_classes_merge_still_below_the_minimum_is_a_data_error_naming_it():
    cfg = ValidateConfig(min_rows_per_class=4, rare_classes="merge", merge_into="기타")
    rows = base_rows() + [(f"n{k}", f"평범한 말 {k}", "normal") for k in range(3, 5)]  # normal 5 rows
    rows += [(f"e{k}", f"급한 말 {k}", "emergency") for k in range(3, 5)] + rare_rows()[6:]
    with pytest.raises(DataError) as err:
        validate(raw(rows), (), cfg)
    msg = str(err.value)
    assert "'기타' (validate.merge_into) has only 3 rows" in msg
    assert "'confusion' (1), 'distress' (2)" in msg and "validate.rare_classes=quarantine" in msg


def test_without_rare_classes_the_policy_changes_nothing():
    for policy in ("fail", "quarantine", "merge"):
        cfg = ValidateConfig(min_rows_per_class=3, rare_classes=policy)
        valid, quarantined, report = run(base_rows(), cfg=cfg)
        assert quarantined.empty and report["label_set"]["labels"] == list(LABELS)
        assert report["rare_classes"]["classes"] == {} and report["rare_classes"]["rows_merged"] == 0


def test_no_valid_rows_is_a_data_error():
    with pytest.raises(DataError, match="no valid rows"):
        validate(raw([("a", "", "normal"), ("b", "x", "")]), LABELS, CFG)


def test_label_set_is_inferred_when_none_is_given():
    rows = base_rows() + [(f"d{k}", f"배가 아파요 {k}", "distress") for k in range(3)]
    _, quarantined, report = run(rows, labels=())
    assert quarantined.empty
    assert report["label_set"] == {"labels": ["distress", "emergency", "normal"], "inferred": True}
    assert report["per_class"] == {"distress": 3, "emergency": 3, "normal": 3}
    assert report["unknown_labels"] == {}


def test_quarantine_keeps_the_source_location():
    _, quarantined, _ = run(base_rows() + [("bad", "", "normal")])
    row = quarantined.iloc[0]
    assert (row["source_file"], row["source_row"]) == ("batch.csv", 7)


# --- multi-label files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "multi, sep", [(["0,6,10,22", "3,6", "0,22"], ","), (["기쁨;슬픔", "불안;슬픔"], ";")]
)
def test_multi_label_cells_in_a_single_label_task_stop_the_run_saying_how_to_train_them(
    multi: list[str], sep: str
) -> None:
    singles = ["0", "6", "22", "3"] if sep == "," else ["기쁨", "슬픔", "불안"]
    labels = [multi[i % len(multi)] for i in range(30)] + [singles[i % len(singles)] for i in range(70)]
    rows = [(f"r{i}", f"문장 {i}번", lab) for i, lab in enumerate(labels)]
    with pytest.raises(DataError) as err:
        validate(raw(rows), None, CFG)
    message = str(err.value)
    assert "this looks like multi-label data" in message and f"--multilabel --label-sep '{sep}'" in message
    assert "30 of 100 labeled rows" in message and f"separated by '{sep}'" in message
    assert "batch.csv" in message and "too few rows" not in message


def test_a_configured_label_with_a_separator_is_a_label() -> None:
    rows = base_rows() + [(f"x{i}", f"그냥 문장 {i}", "normal/other") for i in range(3)]
    valid, _, _ = validate(raw(rows), list(LABELS) + ["normal/other"], CFG)
    assert len(valid) == 9 and "normal/other" in set(valid["label"])


def test_prose_in_the_label_column_is_not_a_label_list() -> None:
    free_text = [(f"t{i}", f"문장 {i}", "좋아요, 정말 고마워요" if i % 2 else "normal") for i in range(20)]
    valid, _, report = validate(raw(free_text), None, CFG)  # prose is not a label list: no multi-label error
    assert report["label_set"]["labels"] == ["normal", "좋아요, 정말 고마워요"]
