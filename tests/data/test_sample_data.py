"""Expectations on the project's own sample dataset, and on its data card staying true."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from training.config import load_params
from training.data.card import dataset_card

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE / "utterances.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def card(sample: pd.DataFrame) -> dict:
    return dataset_card(sample)


def test_size_and_class_balance(sample: pd.DataFrame) -> None:
    counts = sample["label"].value_counts()
    assert len(sample) >= 1000
    assert set(counts.index) == set(load_params().labels)
    assert all(counts[lab] >= 150 for lab in ("emergency", "confusion", "distress"))
    assert counts.idxmax() == "normal"


def test_ids_are_stable_and_unique(sample: pd.DataFrame) -> None:
    assert sample["id"].is_unique
    assert sample["id"].str.fullmatch(r"dng-\d{4}").all()


def test_texts_are_distinct_and_nonempty(sample: pd.DataFrame, card: dict) -> None:
    assert (sample["text"].str.strip() != "").all()
    assert card["exact_duplicate_texts"] == 0
    assert card["near_duplicate_pairs"] <= len(sample) // 100


def test_card_states_the_measured_figures(sample: pd.DataFrame, card: dict) -> None:
    text = (SAMPLE / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"near-duplicate pairs at similarity >= 0\.7 \| (\d+) \|", text)
    assert stated and int(stated.group(1)) == card["near_duplicate_pairs"]
    assert f"{len(sample):,} Korean utterances" in text
    for label, n in card["per_class"].items():
        assert re.search(rf"\| `{label}` \|.*\| {n} \|", text), f"card row for {label} should say {n}"


def test_spoken_style(sample: pd.DataFrame) -> None:
    # STT output mostly lacks final punctuation, and utterances are short.
    no_final_punct = (~sample["text"].str.contains(r"[.?!]$")).mean()
    assert no_final_punct > 0.8
    assert sample["text"].str.len().median() < 30
