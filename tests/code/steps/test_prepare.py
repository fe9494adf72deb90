"""`prepare` end to end on a small file: rare classes handled as validate.rare_classes says, and the label
set in dataset.json (what every later stage and the saved model use) follows the policy."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from training.config import Params
from training.data.dataset_info import DatasetInfo, apply_dataset_info, read_dataset_info
from training.errors import DataError
from training.steps.prepare import prepare

STEMS = {"기쁨": "손주가 와서 좋다", "슬픔": "영감 생각이 난다", "불안": "밤에 혼자 무섭다"}
RARE = {"분노": 3, "당황": 2}  # below min_rows_per_class=5


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HEARA_HOME", str(tmp_path / "home"))
    rows = [(f"{stem} {i}번째", lab) for lab, stem in STEMS.items() for i in range(8)]
    rows += [(f"{lab} 드문 이야기 {i}번째", lab) for lab, n in RARE.items() for i in range(n)]
    path = tmp_path / "emotions.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def params(labels: tuple[str, ...], **validate) -> Params:
    """params.yaml's values with this file's task and label set (as `heara data prepare` makes them)."""
    base = Params().override(
        {
            "data": {"id_col": None},
            "validate": {"min_rows_per_class": 5, **validate},
            "preprocess": {"spacing": "none"},
            "augment": {"enabled": False},
        }
    )
    return apply_dataset_info(base, DatasetInfo(task="emotions", labels=labels), note=False)


def prepared(out: Path) -> tuple[dict, set[str], tuple[str, ...]]:
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    seen = set().union(
        *(set(pd.read_parquet(out / f"{s}.parquet")["label"]) for s in ("train", "val", "test"))
    )
    assert report["accounting"]["balanced"] is True
    return report, seen, read_dataset_info(out).labels


def test_fail_stops_prepare_naming_the_rare_classes(source: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'당황' has 2, '분노' has 3.*validate\.rare_classes"):
        prepare(params(()), source, tmp_path / "out")


def test_quarantine_sets_rare_rows_aside_and_drops_the_classes(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare(params(("기쁨", "슬픔", "불안", "분노", "당황"), rare_classes="quarantine"), source, out)
    report, seen, labels = prepared(out)
    rare = report["validate"]["rare_classes"]
    assert rare["classes"] == {"당황": 2, "분노": 3} and rare["rows_quarantined"] == 5
    assert report["quarantine"]["by_reason"] == {"rare class": 5}
    assert labels == ("기쁨", "슬픔", "불안") and seen == set(labels)
    assert report["split"]["classes_not_in_test"] == {}


def test_merge_relabels_rare_rows_and_the_target_joins_the_label_set(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare(params(("기쁨", "슬픔", "불안", "분노", "당황"), rare_classes="merge"), source, out)
    report, seen, labels = prepared(out)
    rare = report["validate"]["rare_classes"]
    assert (rare["rows_merged"], rare["merge_into"], rare["merge_into_rows"]) == (5, "기타", 5)
    assert report["quarantine"]["rows"] == 0
    assert labels == ("기쁨", "슬픔", "불안", "기타") and seen == set(labels)
    assert report["split"]["test"]["per_class"]["기타"] >= 1


def test_a_low_minimum_keeps_tiny_classes_out_of_test_and_says_so(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare(params((), min_rows_per_class=1), source, out)
    report, seen, labels = prepared(out)
    assert report["validate"]["rare_classes"]["classes"] == {}
    assert set(labels) == seen == set(STEMS) | set(RARE)
    assert list(report["split"]["classes_not_in_test"]) == ["당황"]  # 2 rows: train and val
    assert report["split"]["test"]["per_class"]["분노"] == 1  # 3 rows: one in each split
