"""The `heara` CLI: commands run the real steps and turn fatal data problems into exit code 2
with a message that names the file, row and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


def _last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def _small_csv(path: Path, n_per_class: int = 14) -> Path:
    rows = []
    for label, stem in (
        ("기쁨", "오늘 손주가 와서 너무 좋다"),
        ("슬픔", "영감 생각나서 눈물이 난다"),
        ("불안", "밤에 혼자 있으면 무서워"),
    ):
        rows += [{"문장": f"{stem} {i}번째 이야기", "감정": label} for i in range(n_per_class)]
    rows.append({"문장": "  ", "감정": "기쁨"})  # empty text -> quarantined
    rows.append({"문장": "라벨이 이상한 문장", "감정": "분노"})  # unknown label -> quarantined
    rows.append({"문장": "같은 문장인데 라벨이 달라", "감정": "기쁨"})
    rows.append({"문장": "같은 문장인데 라벨이 달라", "감정": "슬픔 "})  # conflict (after trimming)
    pd.DataFrame(rows).to_csv(path, index=False, encoding="cp949")
    return path


def test_prepare_runs_every_step_and_loses_nothing(tmp_path: Path) -> None:
    src = _small_csv(tmp_path / "counselling.csv")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(src),
            "--text-col",
            "문장",
            "--label-col",
            "감정",
            "--labels",
            "기쁨,슬픔,불안",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = _last_json(result.output)
    assert summary["rows_read"] == 46 and summary["balanced"] is True
    for name in (
        "train.parquet",
        "val.parquet",
        "test.parquet",
        "quarantine.parquet",
        "quarantine.csv",
        "report.json",
    ):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["ingest"]["sources"][0]["encoding"] == "cp949"
    assert report["validate"]["unknown_labels"] == {"분노": 1}
    assert report["validate"]["conflicts"]["texts"] == 1
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    assert len(quarantine) == 4 and quarantine["reason"].str.len().gt(0).all()
    train = pd.read_parquet(out / "train.parquet")
    assert {"source_id", "aug_method"} <= set(train.columns)
    assert set(train["label"]) == {"기쁨", "슬픔", "불안"}


def test_prepare_keeps_the_test_split_frozen(tmp_path: Path) -> None:
    src = _small_csv(tmp_path / "a.csv")
    out = tmp_path / "out"
    args = [
        "data",
        "prepare",
        "--source",
        str(src),
        "--text-col",
        "문장",
        "--label-col",
        "감정",
        "--labels",
        "기쁨,슬픔,불안",
        "--out",
        str(out),
    ]
    assert runner.invoke(app, args).exit_code == 0
    first = pd.read_parquet(out / "test.parquet")
    assert runner.invoke(app, args + ["--set", "split.seed=999"]).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "test.parquet"), first)
    assert runner.invoke(app, args + ["--set", "split.seed=999", "--resplit"]).exit_code == 0
    assert set(pd.read_parquet(out / "test.parquet")["text"]) != set(first["text"])


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("text,other\n안녕,1\n".encode(), "missing label column 'label'"),
    ],
)
def test_fatal_problems_exit_2_naming_the_file(tmp_path: Path, content: bytes, expected: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    result = runner.invoke(app, ["data", "prepare", "--source", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert expected in result.output and "bad.csv" in result.output


def test_too_few_rows_for_a_class_names_the_class(tmp_path: Path) -> None:
    src = _small_csv(tmp_path / "few.csv", n_per_class=3)
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--source",
            str(src),
            "--text-col",
            "문장",
            "--label-col",
            "감정",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "too few rows" in result.output and "field 'label'" in result.output


def test_unknown_config_key_is_rejected_by_name() -> None:
    result = runner.invoke(app, ["config", "show", "--set", "preprocess.spacng=none"])
    assert result.exit_code == 2
    assert "unknown key 'preprocess.spacng'" in result.output


def test_help_lists_every_step() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "training.cli", "data", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("ingest", "validate", "preprocess", "split", "augment", "prepare", "report", "card"):
        assert command in out


def test_bench_preprocess_prints_json_last(tmp_path: Path) -> None:
    src = _small_csv(tmp_path / "b.csv")
    result = runner.invoke(
        app,
        [
            "bench",
            "preprocess",
            "--source",
            str(src),
            "--text-col",
            "문장",
            "--label-col",
            "감정",
            "--repeat",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["sentences"] == 46 and figures["sentences_per_s"] > 0
    assert set(figures["per_step_seconds"]) == set(figures["steps"]) and "spacing_kiwi" in figures["steps"]


def test_ledger_and_audit_commands_show_what_was_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.data.readers import Ledger
    from training.registry.audit import AuditLedger

    monkeypatch.setenv("HEARA_HOME", str(tmp_path / "home"))
    Ledger(tmp_path / "home" / "ledger.sqlite").record(
        "ab" * 32, "batch-007.csv", 12, 1, tmp_path / "b.parquet"
    )
    AuditLedger().append(
        {
            "model": "heara-danger",
            "action": "rollback",
            "from_version": 3,
            "to_version": 2,
            "champion_changed": True,
            "reason": "rollback from 3 to 2",
        }
    )
    ledger = runner.invoke(app, ["data", "ledger"])
    assert ledger.exit_code == 0 and "batch-007.csv" in ledger.output and "abababababab" in ledger.output
    audit = runner.invoke(app, ["audit"], env={"COLUMNS": "200"})
    assert audit.exit_code == 0 and "rollback" in audit.output and "rollback from 3 to 2" in audit.output
