"""Building the classifier: configuration mistakes are ConfigErrors, and putting a new head on a base
model is one log line, not transformers' LOAD REPORT table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from training.config import ModelConfig
from training.errors import ConfigError
from training.model.build import build_model

TEXTS = ["할머니가 넘어지셨어요", "오늘 날씨가 좋네요", "여기가 어디예요", "너무 외로워요"] * 5


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_new_head_is_one_line_not_a_load_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    hf = logging.getLogger("transformers")  # transformers logs to its own handler, not to the root's
    records = _Records()
    hf.addHandler(records)
    try:
        with caplog.at_level(logging.INFO, logger="heara.train"):
            model, _, _ = build_model(ModelConfig(tiny_vocab_size=200), ["a", "b"], TEXTS, tmp_path)
    finally:
        hf.removeHandler(records)
    assert model.config.num_labels == 2
    assert not [m for m in records.messages if "LOAD REPORT" in m or "MISSING" in m]
    heads = [r.getMessage() for r in caplog.records if "classification head initialised" in r.getMessage()]
    assert len(heads) == 1 and "classifier.weight" in heads[0]


@pytest.mark.parametrize(
    "cfg, labels, match",
    [
        (ModelConfig(), ["only"], "at least two labels"),
        (ModelConfig(family="hf"), ["a", "b"], "model.profile 'tiny'"),
        (ModelConfig(max_length=512, tiny_vocab_size=200), ["a", "b"], "exceeds the 128 positions"),
        (
            ModelConfig(profile="full", name="/nonexistent/model"),
            ["a", "b"],
            "model.name '/nonexistent/model'",
        ),
    ],
)
def test_configuration_mistakes_are_config_errors(
    tmp_path: Path, cfg: ModelConfig, labels: list[str], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        build_model(cfg, labels, TEXTS, tmp_path)


def test_the_tiny_model_size_is_configurable(tmp_path):
    """model.tiny_hidden_size and model.tiny_layers shape the tiny model (a sweep searches them)."""
    from training.config import load_params

    model, _, _ = build_model(
        ModelConfig(tiny_vocab_size=150, tiny_hidden_size=96, tiny_layers=1), ["a", "b"], TEXTS, tmp_path
    )
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (
        96,
        1,
        3,
    )
    with pytest.raises(ConfigError, match="multiple of 32"):
        load_params(overrides={"model": {"tiny_hidden_size": 100}})
