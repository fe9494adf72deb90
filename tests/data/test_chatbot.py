"""`heara data prepare` on the real, third-party ChatbotData.csv (read from ../shared, never copied)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def prepared(chatbot_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chat")
    result = CliRunner().invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(chatbot_csv),
            "--text-col",
            "Q",
            "--label-col",
            "label",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_report_counts_what_the_data_card_of_the_source_describes(prepared: Path) -> None:
    report = json.loads((prepared / "report.json").read_text(encoding="utf-8"))
    v = report["validate"]
    assert report["ingest"]["rows_read"] == 11823
    assert v["labels_trimmed"]["rows"] == 1
    assert (
        v["labels_trimmed"]["examples"][0]["from"] == "2   "
        and v["labels_trimmed"]["examples"][0]["to"] == "2"
    )
    assert v["label_set"] == {"labels": ["0", "1", "2"], "inferred": True}
    assert v["conflicts"]["texts"] == 81
    assert v["conflicts"]["quarantined_rows"] == v["conflicts"]["rows"] > 81
    assert report["preprocess"]["duplicates_removed"] > 0
    aug = report["augment"]
    assert aug["per_class_before"] != aug["per_class_after"]
    assert report["accounting"]["balanced"] is True


def test_conflicting_rows_are_in_quarantine_with_reasons(prepared: Path) -> None:
    q = pd.read_parquet(prepared / "quarantine.parquet")
    conflicts = q[q["reason"].str.startswith("conflicting labels for the same text")]
    assert conflicts["text"].str.strip().nunique() == 81


def test_no_test_text_leaks_into_train_or_val(prepared: Path) -> None:
    test = set(pd.read_parquet(prepared / "test.parquet")["text"])
    train = pd.read_parquet(prepared / "train.parquet")
    val = set(pd.read_parquet(prepared / "val.parquet")["text"])
    assert not test & val
    assert not test & set(train["text"])
    assert (train.loc[train["aug_method"] != "original", "source_id"].isin(train["id"])).all()
