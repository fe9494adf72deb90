"""Stratified split with a frozen test set."""

from __future__ import annotations

import pandas as pd
import pytest

from training.config import SplitConfig
from training.data.split import content_hash, read_frozen_test, split_frame, text_hash
from training.errors import DataError

CFG = SplitConfig(seed=42, val_ratio=0.1, test_ratio=0.15)
SIZES = {"normal": 60, "emergency": 30, "distress": 20, "confusion": 7}


def clean(sizes: dict[str, int] = SIZES, prefix: str = "") -> pd.DataFrame:
    rows = [
        (f"{prefix}{lab}-{k:03d}", f"{prefix}{lab} 발화 {k}번", lab)
        for lab, n in sizes.items()
        for k in range(n)
    ]
    return pd.DataFrame(rows, columns=["id", "text", "label"])


def texts(part: pd.DataFrame) -> set[str]:
    return set(part["text"])


def assert_partition(df: pd.DataFrame, splits: dict[str, pd.DataFrame]) -> None:
    ids = [i for part in splits.values() for i in part["id"]]
    assert sorted(ids) == sorted(df["id"])  # every row in exactly one split
    assert not texts(splits["train"]) & texts(splits["test"])
    assert not texts(splits["val"]) & texts(splits["test"])
    assert not texts(splits["train"]) & texts(splits["val"])


def test_split_is_stratified_per_class():
    df = clean()
    splits, report = split_frame(df, CFG)
    assert_partition(df, splits)
    for lab, n in SIZES.items():
        n_test = max(1, round(n * CFG.test_ratio))
        n_val = max(1, round((n - n_test) * CFG.val_ratio / (1 - CFG.test_ratio)))
        assert report["test"]["per_class"][lab] == n_test == (splits["test"]["label"] == lab).sum()
        assert report["val"]["per_class"][lab] == n_val == (splits["val"]["label"] == lab).sum()
        assert report["train"]["per_class"][lab] == n - n_test - n_val
    assert report["test_frozen"] is False
    assert report["test"]["rows"] == len(splits["test"])
    assert report["train"]["sha256"] == content_hash(splits["train"])


def test_split_is_deterministic_given_the_seed_and_independent_of_row_order():
    df = clean()
    a, ra = split_frame(df, CFG)
    b, rb = split_frame(df.sample(frac=1, random_state=7).reset_index(drop=True), CFG)
    c, _ = split_frame(df.iloc[::-1], CFG)
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(a[name], b[name])
        pd.testing.assert_frame_equal(a[name], c[name])
        assert ra[name]["sha256"] == rb[name]["sha256"]
    other, _ = split_frame(df, SplitConfig(seed=7))
    assert texts(other["test"]) != texts(a["test"])


def test_split_is_order_independent_with_repeated_texts():
    # With preprocess.dedup=false the same text can appear under several ids.
    df = clean()
    df = pd.concat([df, df.assign(id=df["id"] + "-again")], ignore_index=True)
    a, _ = split_frame(df, CFG)
    b, _ = split_frame(df.sample(frac=1, random_state=3), CFG)
    for name in ("train", "val", "test"):
        assert a[name]["id"].tolist() == b[name]["id"].tolist()


def test_the_frozen_test_set_stays_when_new_rows_arrive(tmp_path):
    df = clean()
    first, _ = split_frame(df, CFG)
    path = tmp_path / "test.parquet"
    first["test"].to_parquet(path, index=False)
    frozen = read_frozen_test(path)

    new_rows = clean({"normal": 10, "emergency": 5}, prefix="new-")
    leaked = first["test"].iloc[:2][["text", "label"]].assign(id=["dup-1", "dup-2"])
    relabeled = first["test"].iloc[2:3][["text"]].assign(id="dup-3", label="confusion")
    grown = pd.concat([df, new_rows, leaked, relabeled], ignore_index=True)

    second, report = split_frame(grown, CFG, frozen)
    pd.testing.assert_frame_equal(second["test"], first["test"])
    assert report["test_frozen"] is True
    assert report["test"]["sha256"] == content_hash(first["test"])
    # Test texts (the old rows and the new copies, whatever their label) never reach train or val.
    trainval = pd.concat([second["train"], second["val"]])
    assert not texts(trainval) & texts(first["test"])
    assert not {"dup-1", "dup-2", "dup-3"} & set(trainval["id"])
    assert report["rows_held_out_as_test_duplicates"] == len(first["test"]) + 3
    # The new rows are all used.
    assert set(new_rows["id"]) <= set(trainval["id"])
    assert len(trainval) == len(grown) - report["rows_held_out_as_test_duplicates"]


def test_frozen_test_without_text_hash_is_matched_by_content():
    df = clean()
    first, _ = split_frame(df, CFG)
    frozen = first["test"].drop(columns=["text_hash"])
    second, _ = split_frame(df, CFG, frozen)
    assert texts(second["test"]) == texts(first["test"])
    assert not texts(second["train"]) & texts(first["test"])


def test_frozen_test_with_a_label_the_data_lost_is_a_data_error():
    first, _ = split_frame(clean(), CFG)
    with pytest.raises(DataError, match="resplit"):
        split_frame(clean({k: v for k, v in SIZES.items() if k != "confusion"}), CFG, first["test"])


def test_resplit_redraws_the_test_set():
    df = clean()
    old, _ = split_frame(df, SplitConfig(seed=1))
    fresh, _ = split_frame(df, CFG)
    redrawn, report = split_frame(df, CFG.model_copy(update={"resplit": True}), old["test"])
    assert report["test_frozen"] is False
    pd.testing.assert_frame_equal(redrawn["test"], fresh["test"])
    assert texts(redrawn["test"]) != texts(old["test"])
    assert_partition(df, redrawn)


def test_content_hash_is_order_independent_and_sees_labels():
    df = clean({"normal": 5, "emergency": 5})
    assert content_hash(df) == content_hash(df.iloc[::-1]) == content_hash(df.sample(frac=1, random_state=1))
    changed = df.copy()
    changed.loc[0, "label"] = "emergency"
    assert content_hash(changed) != content_hash(df)
    edited = df.copy()
    edited.loc[0, "text"] = edited.loc[0, "text"] + "!"
    assert content_hash(edited) != content_hash(df)
    # The id is not content: re-numbering rows keeps the hash.
    assert content_hash(df.assign(id=[f"x{i}" for i in range(len(df))])) == content_hash(df)


def test_text_hash_is_stable():
    assert text_hash("살려 주세요") == text_hash("살려 주세요") != text_hash("살려주세요")
    assert len(text_hash("a")) == 16


@pytest.mark.parametrize("n, in_val", [(1, 0), (2, 1)])
def test_a_class_with_one_or_two_rows_trains_and_is_reported_not_in_test(n, in_val):
    df = clean({"normal": 30, "confusion": n})
    splits, report = split_frame(df, CFG)
    assert_partition(df, splits)
    counts = {name: report[name]["per_class"]["confusion"] for name in splits}
    assert counts == {"train": n - in_val, "val": in_val, "test": 0}
    assert list(report["classes_not_in_test"]) == ["confusion"]
    assert f"{n} rows" in report["classes_not_in_test"]["confusion"]
    assert list(report["classes_not_in_val"]) == (["confusion"] if n == 1 else [])


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_every_class_of_three_rows_or_more_reaches_test_val_and_train(seed):
    sizes = {"normal": 40, "a": 3, "b": 4, "c": 5, "d": 7, "e": 2, "f": 1}
    df = clean(sizes)
    cfg = SplitConfig(seed=seed, val_ratio=0.1, test_ratio=0.15)
    splits, report = split_frame(df, cfg)
    assert_partition(df, splits)
    for lab, n in sizes.items():
        got = {name: report[name]["per_class"][lab] for name in splits}
        if n >= 3:
            assert min(got.values()) >= 1, (lab, got)
        assert sum(got.values()) == n
    assert sorted(report["classes_not_in_test"]) == ["e", "f"]
    again, report2 = split_frame(df.sample(frac=1, random_state=seed), cfg)  # same data, other order
    assert report2 == report
    for name in splits:
        assert again[name]["id"].tolist() == splits[name]["id"].tolist()


def test_small_classes_keep_the_frozen_rerun_identical():
    df = clean({"normal": 30, "a": 3, "b": 2, "c": 1})
    first, _ = split_frame(df, CFG)
    again, report = split_frame(df, CFG, frozen_test=first["test"])
    for name in ("train", "val", "test"):
        assert content_hash(again[name]) == content_hash(first[name]), name
    assert sorted(report["classes_not_in_test"]) == ["b", "c"]
    assert "frozen" in report["classes_not_in_test"]["b"]


def test_a_class_new_since_the_test_split_was_frozen_is_reported_until_a_resplit():
    first, _ = split_frame(clean({"normal": 30, "distress": 10}), CFG)
    grown = clean({"normal": 30, "distress": 10, "confusion": 12})
    splits, report = split_frame(grown, CFG, frozen_test=first["test"])
    assert report["test"]["per_class"]["confusion"] == 0
    assert report["train"]["per_class"]["confusion"] >= 1 and report["val"]["per_class"]["confusion"] >= 1
    assert "--resplit" in report["classes_not_in_test"]["confusion"]
    _, fresh = split_frame(grown, CFG.model_copy(update={"resplit": True}), frozen_test=first["test"])
    assert fresh["classes_not_in_test"] == {} and fresh["test"]["per_class"]["confusion"] >= 1


def test_three_rows_per_class_is_enough():
    splits, report = split_frame(clean({"normal": 30, "confusion": 3}), CFG)
    assert {name: report[name]["per_class"]["confusion"] for name in splits} == {
        "train": 1,
        "val": 1,
        "test": 1,
    }


def test_read_frozen_test_is_none_when_absent(tmp_path):
    assert read_frozen_test(tmp_path / "test.parquet") is None


def test_rerun_with_its_own_frozen_test_reproduces_train_and_val():
    """A retrain on unchanged data (the test split now frozen) trains on the same rows as before."""
    df = clean()
    first, _ = split_frame(df, CFG)
    again, report = split_frame(df, CFG, frozen_test=first["test"])
    assert report["test_frozen"] is True
    for name in ("train", "val", "test"):
        assert content_hash(again[name]) == content_hash(first[name]), name


def test_rows_reviewed_from_production_never_enter_the_test_split():
    """`heara review export` rows (ids `review-...`): with a frozen test split they go to train and val
    only; a first split or a re-split leaves them out of its test draw, and the rest splits as before."""
    from training.data.split import PRODUCTION_ID_PREFIX

    base = clean()
    first, _ = split_frame(base, CFG)
    reviewed = clean({"normal": 30, "emergency": 20}, prefix="운영 ")
    reviewed["id"] = [f"{PRODUCTION_ID_PREFIX}{i}" for i in range(len(reviewed))]
    grown = pd.concat([base, reviewed], ignore_index=True)
    later, report = split_frame(grown, CFG, frozen_test=first["test"])
    assert report["test_frozen"] and later["test"]["id"].tolist() == first["test"]["id"].tolist()
    assert set(reviewed["id"]) <= set(later["train"]["id"]) | set(later["val"]["id"])
    for cfg in (CFG, CFG.model_copy(update={"resplit": True})):
        fresh, _ = split_frame(grown, cfg, frozen_test=first["test"])
        assert not fresh["test"]["id"].str.startswith(PRODUCTION_ID_PREFIX).any()
        assert_partition(grown, fresh)
    assert split_frame(base, CFG)[0]["test"]["id"].tolist() == first["test"]["id"].tolist()  # unchanged
