"""`heara run`'s rule for training the linear family after a refusal (the whole loop runs in
tests/system/test_run.py)."""

from __future__ import annotations

import pytest

from training.config import Params
from training.errors import ConfigError
from training.steps.run import needs_linear_fallback, with_family


def decision(promote: bool, beats: bool | None, champion_after: int | None) -> dict:
    checks = {"min_f1": True} | ({} if beats is None else {"beats_baseline": beats})
    return {"promote": promote, "checks": checks, "champion_after": champion_after, "model": "heara-x"}


@pytest.mark.parametrize(
    ("family", "d", "expected"),
    [
        ("kobert", decision(False, False, None), True),  # below the baseline, nothing to serve
        ("kobert", decision(False, False, 3), False),  # refused, but the champion keeps serving
        ("kobert", decision(False, None, None), False),  # refused for another reason (check off)
        ("kobert", decision(False, True, None), False),  # at the baseline, refused by min_f1 say
        ("kobert", decision(True, True, 1), False),
        ("linear", decision(False, False, None), False),  # the linear family itself: nothing to fall to
    ],
)
def test_the_linear_family_is_trained_only_below_the_baseline_without_a_champion(family, d, expected):
    assert needs_linear_fallback(Params().override({"model": {"family": family}}), d) is expected


def test_with_family_changes_only_the_family() -> None:
    p = Params().override({"train": {"epochs": 3}})
    linear = with_family(p, "linear")
    assert linear.model.family == "linear" and linear.train.epochs == 3 and linear.task == p.task
    with pytest.raises(ConfigError, match="model.family"):
        with_family(p, "cnn")
