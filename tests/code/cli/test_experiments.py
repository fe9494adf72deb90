"""`heara compare` on the command line: how each family's params are resolved, and a family spec it does
not know, or a --set that would decide the model for every family, is one `error:` line and exit code 2,
before anything is trained. (The command end to end: tests/code/steps/test_compare.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--families", "linear,bert"], "unknown model family 'bert' in --families: use linear, kobert-tiny"),
        (["--families", "linear", "--set", "model.family=hf"], "--set model.family is decided per family"),
    ],
)
def test_a_bad_family_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_seeds_below_one_are_refused_by_the_option_itself() -> None:
    result = runner.invoke(app, ["compare", "--families", "linear", "--seeds", "0"])
    assert result.exit_code == 2 and "--seeds" in result.stderr


def test_full_profile_families_take_params_full_yaml_under_the_users_overlay_and_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.steps import compare

    seen = {}

    def fake_step(family_params, files, *, seeds, keep_models):
        seen.update(family_params)
        raise compare.ConfigError("stop here")  # nothing trained: only the resolved params matter

    monkeypatch.setattr(compare, "compare_step", fake_step)
    overlay = tmp_path / "params.mine.yaml"
    overlay.write_text("train:\n  epochs: 7\n", encoding="utf-8")
    args = ["--families", "linear,hf:klue/bert-base", "--overlay", str(overlay), "--set", "train.lr=0.001"]
    result = runner.invoke(app, ["compare", *args])
    assert result.exit_code == 2 and "stop here" in result.stderr
    linear, hf = seen["linear"], seen["hf:klue/bert-base"]
    assert (hf.model.family, hf.model.profile, hf.model.name) == ("hf", "full", "klue/bert-base")
    assert hf.train.early_stopping_patience == 2  # params.full.yaml
    assert hf.train.epochs == 7 and hf.train.lr == 0.001  # the user's overlay and --set win over it
    assert linear.model.family == "linear" and linear.model.profile == "tiny"
    assert linear.train.early_stopping_patience == 4 and linear.train.epochs == 7  # no params.full.yaml
