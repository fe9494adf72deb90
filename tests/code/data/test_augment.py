"""Train-split augmentation: EDA over Kiwi morphemes and AEDA, deterministic and traceable."""

from __future__ import annotations

import importlib.util
import random

import pandas as pd
import pytest

from training.config import AugmentConfig
from training.data.augment import AEDA_PUNCT, Augmenter, augment_frame, load_synonyms, plan_targets
from training.data.split import text_hash

# A small synonym table keeps the tests exact and independent of the WordNet that koeda ships.
SYNONYMS = {"할머니": ("할미",), "친구": ("벗",), "병원": ("의원",), "물": ("음료",), "약": ("약품",)}
METHODS = ("eda_sr", "eda_ri", "eda_rs", "eda_rd", "aeda")
CFG = AugmentConfig(seed=13, methods=METHODS, multipliers={"emergency": 2.0, "distress": 3.0})


@pytest.fixture(scope="module")
def augmenter() -> Augmenter:
    return Augmenter(CFG, synonyms=SYNONYMS)


def train_frame() -> pd.DataFrame:
    normal = [
        "오늘 점심은 뭐 먹을까",
        "텔레비전 소리 좀 줄여 줘",
        "내일 친구가 놀러 온대",
        "창문 좀 열어 줄래",
        "저녁에 산책 가자",
        "날씨가 정말 좋네",
    ]
    emergency = [
        "할머니가 쓰러지셨어요 빨리 와 주세요",
        "불이 났어요 도와주세요",
        "친구가 숨을 안 쉬어요",
        "병원에 빨리 가야 해요",
    ]
    distress = ["허리가 너무 아파서 못 일어나겠어", "약을 먹었는데 계속 어지러워요"]
    rows = (
        [(f"n{k}", t, "normal") for k, t in enumerate(normal)]
        + [(f"e{k}", t, "emergency") for k, t in enumerate(emergency)]
        + [(f"d{k}", t, "distress") for k, t in enumerate(distress)]
    )
    df = pd.DataFrame(rows, columns=["id", "text", "label"])
    return df.assign(
        source_file="train.parquet", source_row=range(1, len(df) + 1), text_hash=df["text"].map(text_hash)
    )


def added(result: pd.DataFrame) -> pd.DataFrame:
    return result[result["aug_method"] != "original"]


# --- plan ----------------------------------------------------------------------------------


def test_plan_targets_from_multipliers():
    counts = {"normal": 6, "emergency": 4, "distress": 3}
    assert plan_targets(counts, CFG) == {"normal": 6, "emergency": 8, "distress": 9}
    assert plan_targets(counts, AugmentConfig(multipliers={"distress": 1.5})) == {
        "normal": 6,
        "emergency": 4,
        "distress": 4,
    }  # round(4.5) -> 4: banker's rounding


def test_plan_targets_from_target_balance():
    counts = {"normal": 10, "emergency": 4, "distress": 9}
    cfg = AugmentConfig(target_balance=0.8, multipliers={"emergency": 5.0})  # balance wins
    assert plan_targets(counts, cfg) == {"normal": 10, "emergency": 8, "distress": 9}
    assert plan_targets(counts, AugmentConfig(target_balance=1.0)) == dict.fromkeys(counts, 10)


# --- augment_frame ------------------------------------------------------------------------


def test_multipliers_reach_the_planned_targets(augmenter):
    train = train_frame()
    result, report = augment_frame(train, CFG, augmenter)
    counts = result["label"].value_counts().to_dict()
    assert counts == {"normal": 6, "emergency": 8, "distress": 6}
    assert report["targets"] == {"distress": 6, "emergency": 8, "normal": 6}
    assert report["per_class_after"] == {"distress": 6, "emergency": 8, "normal": 6}
    assert report["added"] == len(added(result)) == 8 and report["could_not_augment"] == 0
    assert sum(report["by_method"].values()) == 8


def test_target_balance_raises_small_classes(augmenter):
    cfg = CFG.model_copy(update={"target_balance": 1.0, "multipliers": {}})
    result, report = augment_frame(train_frame(), cfg, augmenter)
    assert result["label"].value_counts().to_dict() == {"normal": 6, "emergency": 6, "distress": 6}
    assert report["added"] == 6


def test_augmentation_is_deterministic_given_the_seed(augmenter):
    a, ra = augment_frame(train_frame(), CFG, augmenter)
    b, rb = augment_frame(train_frame().sample(frac=1, random_state=5), CFG, augmenter)
    key = ["id", "text", "label", "source_id", "aug_method"]
    pd.testing.assert_frame_equal(
        added(a)[key].sort_values("id").reset_index(drop=True),
        added(b)[key].sort_values("id").reset_index(drop=True),
    )
    assert ra == rb
    c, _ = augment_frame(train_frame(), CFG.model_copy(update={"seed": 99}), augmenter)
    assert set(added(c)["text"]) != set(added(a)["text"])


def test_augmented_rows_are_traceable_and_new(augmenter):
    train = train_frame()
    result, _ = augment_frame(train, CFG, augmenter)
    originals = result[result["aug_method"] == "original"]
    pd.testing.assert_frame_equal(originals[train.columns].reset_index(drop=True), train)
    assert (originals["source_id"] == originals["id"]).all()
    new = added(result)
    by_id = train.set_index("id")
    for row in new.itertuples():
        assert row.source_id in by_id.index  # points to a real train row
        assert row.label == by_id.loc[row.source_id, "label"]  # and keeps its label
        assert row.aug_method in CFG.methods
        assert row.id.startswith(f"{row.source_id}#aug")
        assert row.text_hash == text_hash(row.text)  # recomputed, not copied
    assert not set(new["text"]) & set(train["text"])  # no copy of an original
    assert not new["text"].duplicated().any()
    assert not result["id"].duplicated().any()


def test_only_the_configured_methods_are_used(augmenter):
    cfg = CFG.model_copy(update={"methods": ("aeda",)})
    result, report = augment_frame(train_frame(), cfg, augmenter)
    assert set(added(result)["aug_method"]) == {"aeda"}
    assert report["by_method"] == {"aeda": 8}


def test_disabled_augmentation_is_a_no_op(augmenter):
    train = train_frame()
    result, report = augment_frame(train, CFG.model_copy(update={"enabled": False}), augmenter)
    pd.testing.assert_frame_equal(result[train.columns], train)
    assert (result["aug_method"] == "original").all() and (result["source_id"] == result["id"]).all()
    assert report["added"] == 0 and report["per_class_after"] == report["per_class_before"]


def test_without_synonyms_sr_and_ri_are_skipped_and_reported():
    no_wordnet = Augmenter.__new__(Augmenter)  # no Kiwi needed: SR and RI must not be called
    no_wordnet.cfg, no_wordnet.synonyms = CFG, {}
    result, report = augment_frame(train_frame(), CFG, no_wordnet)
    assert set(added(result)["aug_method"]) <= {"eda_rs", "eda_rd", "aeda"}
    assert "eda_sr" in report["skipped_methods"] and "eda_ri" in report["skipped_methods"]
    assert report["added"] == 8


# --- the operations -----------------------------------------------------------------------


def test_eda_sr_replaces_a_noun_and_fixes_its_particle(augmenter, monkeypatch):
    # Kiwi rebuilds the word, so the particle agrees with the new noun: 친구가 -> 벗이, 물을 -> 음료를.
    monkeypatch.setattr(augmenter, "synonyms", {"친구": ("벗",), "물": ("음료",)})
    assert augmenter.eda_sr("친구가 병원에 갔어요", random.Random(1)) == "벗이 병원에 갔어요"
    assert (
        augmenter.eda_sr("할머니가 물을 달라고 하세요", random.Random(1)) == "할머니가 음료를 달라고 하세요"
    )
    assert augmenter.eda_sr("정말 고마워요", random.Random(1)) == "정말 고마워요"  # no candidate noun


def test_eda_ri_inserts_a_synonym_as_a_new_word(augmenter):
    text = "친구가 병원에 갔어요"
    out = augmenter.eda_ri(text, random.Random(2))
    words = out.split()
    assert len(words) == len(text.split()) + 1
    inserted = [w for w in words if w not in text.split()]
    assert len(inserted) == 1 and inserted[0] in {"벗", "의원"}
    assert [w for w in words if w != inserted[0]] == text.split()  # originals keep their order


def test_eda_rs_swaps_words(augmenter):
    text = "할머니가 쓰러지셨어요 빨리 와 주세요"
    out = augmenter.eda_rs(text, random.Random(3))
    assert out != text and sorted(out.split()) == sorted(text.split())
    assert augmenter.eda_rs("살려줘", random.Random(3)) == "살려줘"


def test_eda_rd_deletes_at_least_one_word(augmenter):
    text = "할머니가 쓰러지셨어요 빨리 와 주세요"
    out = augmenter.eda_rd(text, random.Random(4)).split()
    words = text.split()
    assert 1 <= len(out) < len(words)
    it = iter(words)
    assert all(w in it for w in out)  # a subsequence: order kept
    assert augmenter.eda_rd("살려줘", random.Random(4)) == "살려줘"


def test_aeda_inserts_punctuation_only(augmenter):
    text = "할머니가 쓰러지셨어요 빨리 와 주세요"
    for seed in range(5):
        out = augmenter.aeda(text, random.Random(seed)).split()
        marks = [w for w in out if w in AEDA_PUNCT]
        assert 1 <= len(marks) <= len(text.split()) // 3 + 1
        assert [w for w in out if w not in AEDA_PUNCT] == text.split()


def test_augment_dispatches_by_method_name(augmenter):
    text = "친구가 병원에 갔어요"
    for method in METHODS:
        assert augmenter.augment(text, method, random.Random(7)) == getattr(augmenter, method)(
            text, random.Random(7)
        )


@pytest.mark.skipif(
    importlib.util.find_spec("koeda") is None, reason="koeda (Korean WordNet) is not installed"
)
def test_synonyms_load_from_the_korean_wordnet():
    table = load_synonyms()
    assert "할머니" in table and "조모" in table["할머니"]
    assert all(" " not in s and "_" not in s for syns in table.values() for s in syns)


# --- never a val or test text ----------------------------------------------------------------


class ScriptedAugmenter:
    """Returns the scripted candidates in order, whatever the method: the collision is then exact."""

    synonyms = SYNONYMS

    def __init__(self, candidates: list[str]) -> None:
        self.candidates = iter(candidates)

    def augment(self, text, method, rng):
        return next(self.candidates, text)  # the source text itself once the script runs out: a copy


def one_row_to_augment() -> pd.DataFrame:
    return train_frame().query("id == 'e0'")  # one emergency row, multiplier 2: one augmented row wanted


def test_an_augmented_text_never_equals_a_val_or_test_text():
    train = one_row_to_augment()
    held_out = ["쓰러지셨어요 빨리 와 주세요", "오늘 점심은 뭐 먹을까"]
    # the first candidate is the first held-out text spaced differently; the second is new
    scripted = ScriptedAugmenter(["쓰러지셨어요  빨리와 주세요", "할머니가 쓰러지셨어요 와 주세요"])
    result, report = augment_frame(train, CFG, scripted, held_out=held_out)
    assert added(result)["text"].tolist() == ["할머니가 쓰러지셨어요 와 주세요"]
    assert report["rejected_as_held_out"] == 1 and report["held_out_texts"] == 2
    assert report["could_not_augment"] == 0


def test_a_row_whose_every_candidate_is_held_out_is_not_augmented():
    train = one_row_to_augment()
    scripted = ScriptedAugmenter(["빨리 와 주세요"] * len(METHODS))
    result, report = augment_frame(train, CFG, scripted, held_out=["빨리 와주세요"])
    assert added(result).empty
    assert report["rejected_as_held_out"] == len(METHODS) and report["could_not_augment"] == 1


def test_held_out_texts_are_compared_ignoring_spaces_case_and_composition():
    from training.data.augment import same_text_key

    decomposed = "\u1112\u1161\u11ab"  # 한 as conjoining jamo (NFD)
    assert same_text_key(f" {decomposed}국어  OK ") == same_text_key("한 국어 ok")
    assert same_text_key("와 주세요") != same_text_key("와 주세요.")  # punctuation is content


def test_real_augmentation_avoids_held_out_texts(augmenter):
    train = train_frame()
    first, _ = augment_frame(train, CFG, augmenter)
    # Pretend every text augmentation produced is a val/test sentence (spaced differently).
    held_out = ["".join(t.split()) for t in added(first)["text"]]
    result, report = augment_frame(train, CFG, augmenter, held_out=held_out)
    from training.data.augment import same_text_key

    keys = {same_text_key(t) for t in held_out}
    assert not any(same_text_key(t) in keys for t in added(result)["text"])
    assert report["rejected_as_held_out"] >= len(held_out)  # each was produced again and refused
    assert report["added"] + report["could_not_augment"] == 8


def test_run_augment_reads_val_and_test_beside_the_train_file(tmp_path, monkeypatch, caplog):
    import training.steps.augment as step
    from training.config import load_params

    split = tmp_path / "split"
    split.mkdir()
    train = train_frame()
    train.to_parquet(split / "train.parquet")
    pd.DataFrame({"id": ["v1"], "text": ["val 문장"], "label": ["normal"]}).to_parquet(split / "val.parquet")
    pd.DataFrame({"id": ["t1", "t2"], "text": ["test 문장", "또 하나"], "label": ["normal"] * 2}).to_parquet(
        split / "test.parquet"
    )
    seen = {}

    def fake_augment_frame(df, cfg, augmenter=None, held_out=(), multilabel=False):
        seen["held_out"] = list(held_out)
        return df, {"added": 0}

    monkeypatch.setattr(step, "augment_frame", fake_augment_frame)
    report = step.run_augment(
        load_params(), split / "train.parquet", tmp_path / "out.parquet", tmp_path / "augment.json"
    )
    assert seen["held_out"] == ["val 문장", "test 문장", "또 하나"]
    assert report["held_out_splits"] == ["val", "test"]

    (split / "test.parquet").unlink()
    with caplog.at_level("WARNING", logger="heara.data"):
        report = step.run_augment(
            load_params(), split / "train.parquet", tmp_path / "out.parquet", tmp_path / "augment.json"
        )
    assert seen["held_out"] == ["val 문장"] and report["held_out_splits"] == ["val"]
    assert "no test split beside" in caplog.text


def test_fewer_augmented_rows_are_the_ones_a_smaller_multiplier_makes():
    """What a sweep trial trains on when it samples smaller multipliers: the rows augmentation with those
    multipliers makes, picked from a frame augmented with larger ones (no Kiwi in the trial)."""
    from training.data.augment import fewer_augmented

    class Suffix:  # a stand-in augmenter: deterministic, no Kiwi
        synonyms: dict = {}

        def augment(self, text, method, rng):
            return f"{text} {method} {rng.random():.6f}"

    train = train_frame()
    big, _ = augment_frame(
        train, AugmentConfig(multipliers={"emergency": 3.0, "distress": 2.0}), augmenter=Suffix()
    )
    small, _ = augment_frame(
        train, AugmentConfig(multipliers={"emergency": 1.7, "distress": 1.4}), augmenter=Suffix()
    )
    picked = fewer_augmented(big, AugmentConfig(multipliers={"emergency": 1.7, "distress": 1.4}))
    assert sorted(picked["id"]) == sorted(small["id"])
    assert sorted(picked["text"]) == sorted(small["text"])
    assert len(fewer_augmented(big, AugmentConfig(multipliers={"emergency": 9.0, "distress": 9.0}))) == len(
        big
    )  # all it has
