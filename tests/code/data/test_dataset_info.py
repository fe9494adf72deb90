"""dataset.json: the task and label set of a prepared folder, and how they replace params.yaml's."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from training.config import Params, load_params
from training.data.dataset_info import (
    DatasetInfo,
    apply_dataset_info,
    check_task,
    read_dataset_info,
    task_from_source,
    write_dataset_info,
)
from training.errors import ConfigError, DataError


@pytest.mark.parametrize(
    "source, task",
    [
        ("/data/ChatbotData.csv", "chatbotdata"),
        ("상담 기록 (2024).xlsx", "2024"),
        ("My File.v2.tsv", "my-file-v2"),
        ("감정.csv", "dataset"),
        ("a__b.csv", "a__b"),
    ],
)
def test_task_from_the_file_name_is_sanitised(source: str, task: str) -> None:
    assert task_from_source(source) == task


def test_an_explicit_task_must_be_a_safe_name() -> None:
    assert check_task("chatbot") == "chatbot"
    with pytest.raises(ConfigError, match="lowercase letters.*'chat-bot'"):
        check_task("Chat Bot")


def test_written_and_read_back(tmp_path: Path) -> None:
    info = DatasetInfo(task="chatbot", labels=("0", "1", "2"), source="ChatbotData.csv")
    write_dataset_info(tmp_path, info)
    assert read_dataset_info(tmp_path) == info
    assert read_dataset_info(tmp_path / "elsewhere") is None  # a folder prepared before dataset.json
    (tmp_path / "dataset.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="dataset.json"):
        read_dataset_info(tmp_path)


def test_task_and_labels_replace_params_and_foreign_multipliers_are_dropped(caplog) -> None:
    params = load_params()  # the repo's: task danger, multipliers for emergency/confusion/distress
    assert params.augment.multipliers
    with caplog.at_level(logging.INFO, logger="heara.data"):
        p = apply_dataset_info(params, DatasetInfo(task="chatbot", labels=("0", "1", "2")))
    assert (p.task, p.labels, dict(p.augment.multipliers)) == ("chatbot", ("0", "1", "2"), {})
    notes = [r.getMessage() for r in caplog.records if "augment.multipliers" in r.getMessage()]
    assert len(notes) == 1 and "emergency" in notes[0]  # one line, not an error


def test_multipliers_of_labels_the_data_has_are_kept() -> None:
    p = apply_dataset_info(load_params(), DatasetInfo(task="t", labels=("normal", "emergency")))
    assert dict(p.augment.multipliers) == {"emergency": 2.0}


def test_an_explicit_set_wins_over_the_folder() -> None:
    # params.yaml's multipliers name the danger task's labels: a params file for labels a, b sets its own
    base = Params.model_validate({"task": "mine", "labels": ["a", "b"], "augment": {"multipliers": {}}})
    p = apply_dataset_info(base, DatasetInfo(task="folder", labels=("a", "b", "c")), explicit={"task"})
    assert p.task == "mine" and p.labels == ("a", "b", "c")


def test_danger_labels_of_another_task_are_dropped_unless_set() -> None:
    # The service refuses a model that lacks a danger label: params.yaml's belong to the danger task.
    info = DatasetInfo(task="chatbot", labels=("0", "1", "2"))
    assert apply_dataset_info(load_params(), info).serve.danger_labels == ()
    kept = apply_dataset_info(load_params(), DatasetInfo(task="t", labels=("normal", "emergency")))
    assert kept.serve.danger_labels == ("emergency",)
    mine = apply_dataset_info(
        load_params(overrides={"serve": {"danger_labels": ["2"]}}), info, explicit={"serve.danger_labels"}
    )
    assert mine.serve.danger_labels == ("2",)
