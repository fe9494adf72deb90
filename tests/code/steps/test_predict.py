"""`heara predict`: batch prediction with the served model (here a model folder via HEARA_MODEL_DIR)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Path:
    return tiny_model_factory(tmp_path_factory.mktemp("batch") / "model")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_predict_scores_every_row(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setenv("HEARA_MODEL_DIR", str(model_dir))
    src = tmp_path / "in.csv"
    pd.DataFrame(
        {"uid": ["a", "b", "c"], "발화": ["넘어졌어 도와줘", "밥 먹었어", "내 번호 010-1234-5678"]}
    ).to_csv(src, index=False, encoding="cp949")
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(
        app, ["predict", "--input", str(src), "--output", str(out), "--text-col", "발화"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["rows"] == 3 and summary["model_version"] == "local"
    scored = pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_csv(out, encoding="utf-8-sig")
    assert scored["uid"].tolist() == ["a", "b", "c"] and scored["발화"].tolist()[1] == "밥 먹었어"
    probs = scored[[c for c in scored.columns if c.startswith("prob_")]]
    assert probs.shape[1] == 4 and (probs.sum(axis=1) - 1).abs().max() < 1e-4
    assert set(scored["pred_label"]) <= {"normal", "emergency", "confusion", "distress"}
    assert (scored["pred_score"] - probs.max(axis=1)).abs().max() < 1e-5
    assert scored["danger"].dtype == bool and set(scored["model_version"].astype(str)) == {"local"}
    assert "accuracy" not in summary  # no label column, nothing to score against


def test_predict_keeps_a_label_column_and_scores_against_it(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARA_MODEL_DIR", str(model_dir))
    src = tmp_path / "gold.csv"
    gold = pd.DataFrame(
        {
            "text": ["넘어졌어 도와줘", "밥 먹었어", "여기가 어디야", "너무 외로워"],
            "label": ["emergency", "normal", "confusion", "distress"],
            "note": ["", "x", "", "y"],
        }
    )
    gold.to_csv(src, index=False)
    out = tmp_path / "scored.csv"
    result = CliRunner().invoke(app, ["predict", "--input", str(src), "--output", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    scored = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False)
    assert scored["label"].tolist() == gold["label"].tolist()  # the input's labels, not overwritten
    assert scored["note"].tolist() == gold["note"].tolist()
    accuracy = float((scored["pred_label"] == scored["label"]).mean())
    assert summary["label_col"] == "label" and summary["labeled_rows"] == 4
    assert summary["accuracy"] == pytest.approx(accuracy, abs=1e-4) and 0 <= summary["macro_f1"] <= 1
    assert f"accuracy {accuracy:.4f}" in result.stderr and "macro-F1" in result.stderr


def test_predict_skips_metrics_for_labels_the_model_does_not_know(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARA_MODEL_DIR", str(model_dir))
    src = tmp_path / "chatbot.tsv"
    pd.DataFrame({"Q": ["안녕", "슬퍼"], "정답": ["0", "1"]}).to_csv(src, index=False, sep="\t", header=False)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--no-header",
            "--text-col",
            "0",
            "--label-col",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 2 and "accuracy" not in summary
    assert "not among the model's labels" in summary["metrics_skipped"]


def test_predict_names_a_missing_text_column(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARA_MODEL_DIR", str(model_dir))
    src = tmp_path / "in.csv"
    pd.DataFrame({"other": ["x"]}).to_csv(src, index=False)
    result = CliRunner().invoke(app, ["predict", "--input", str(src), "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "missing text column 'text'" in result.output
