"""`heara serve` and `heara mlflow-ui`: which task is served, and which mlflow runs the UI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from training.cli import app
from training.cli.serve import mlflow_command
from training.data.dataset_info import DatasetInfo, write_dataset_info


def test_mlflow_ui_runs_the_mlflow_of_this_environment_not_the_one_on_path() -> None:
    cmd = mlflow_command()
    beside = Path(sys.executable).with_name("mlflow")
    assert cmd == ([str(beside)] if beside.is_file() else [sys.executable, "-m", "mlflow"])


def test_serve_with_a_prepared_folder_serves_its_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARA_HOME", str(tmp_path / "home"))
    from training.paths import DEFAULT_PARAMS

    monkeypatch.setenv("HEARA_PARAMS", str(DEFAULT_PARAMS))  # serve sets it: restored after the test
    seen = {}

    def fake_serve(port: int, host: str) -> None:  # serving.run.serve would exec bentoml
        from training.config import load_params

        seen.update(task=load_params().task, labels=load_params().labels, port=port)

    monkeypatch.setattr("serving.run.serve", fake_serve)
    write_dataset_info(tmp_path / "chatbot", DatasetInfo(task="chatbot", labels=("0", "1", "2")))
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path / "chatbot"), "--port", "3100"])
    assert result.exit_code == 0, result.output
    assert seen == {"task": "chatbot", "labels": ("0", "1", "2"), "port": 3100}
    written = yaml.safe_load(
        (tmp_path / "home" / "serving" / "params.chatbot.yaml").read_text(encoding="utf-8")
    )
    assert written["task"] == "chatbot" and written["augment"]["multipliers"] == {}
    assert written["serve"]["danger_labels"] == []  # the service would refuse emergency/distress
