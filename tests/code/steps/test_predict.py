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
def test_predict_scores_every_row(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                  suffix: str) -> None:
    monkeypatch.setenv("HEARA_MODEL_DIR", str(model_dir))
    src = tmp_path / "in.csv"
    pd.DataFrame({"uid": ["a", "b", "c"], "발화": ["넘어졌어 도와줘", "밥 먹었어", "내 번호 010-1234-5678"]}).to_csv(
        src, index=False, encoding="cp949")
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(app, ["predict", "--input", str(src), "--output", str(out), "--text-col", "발화"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["rows"] == 3 and summary["model_version"] == "local"
    scored = pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_csv(out, encoding="utf-8-sig")
    assert scored["uid"].tolist() == ["a", "b", "c"]
    probs = scored[[c for c in scored.columns if c.startswith("prob_")]]
    assert probs.shape[1] == 4 and (probs.sum(axis=1) - 1).abs().max() < 1e-4
    assert set(scored["label"]) <= {"normal", "emergency", "confusion", "distress"}
    assert scored["danger"].dtype == bool


def test_predict_names_a_missing_text_column(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARA_MODEL_DIR", str(model_dir))
    src = tmp_path / "in.csv"
    pd.DataFrame({"other": ["x"]}).to_csv(src, index=False)
    result = CliRunner().invoke(app, ["predict", "--input", str(src), "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "missing text column 'text'" in result.output
