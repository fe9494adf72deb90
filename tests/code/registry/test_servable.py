"""The smoke test a model folder passes before the champion alias may move to it: the files the model
needs, a load through the Predictor the service uses, one well-formed prediction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.errors import NotServableError
from training.registry.servable import brief, output_problem, smoke_test

LABELS = ["normal", "emergency", "confusion", "distress"]


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "model"))


@pytest.mark.parametrize(
    ("probs", "labels", "problem"),
    [
        (np.array([[0.1, 0.2, 0.3, 0.4]]), LABELS, None),
        (np.array([[0.1, np.nan, 0.3, 0.4]]), LABELS, "not finite"),
        (np.array([[0.5, 0.5, 0.5, 0.5]]), LABELS, "sum to 2.0000"),
        (np.array([[1.5, -0.5, 0.0, 0.0]]), LABELS, "not probabilities"),
        (np.array([[0.5, 0.5]]), LABELS, "shape (1, 2)"),
        (np.array([[0.5, 0.5]]), ["a", "a"], "repeats a label"),
        (np.zeros((1, 0)), [], "empty"),
    ],
)
def test_output_problem(probs: np.ndarray, labels: list[str], problem: str | None) -> None:
    found = output_problem(probs, labels)
    assert found is None if problem is None else problem in found


def test_brief_is_one_short_masked_line() -> None:
    text = brief(OSError("cannot reach http://10.0.0.7:5000/api\n  call 010-1234-5678 " + "x" * 500))
    assert "\n" not in text and len(text) <= 300 and text.startswith("OSError: cannot reach [URL]")
    assert "010-1234-5678" not in text and text.endswith("…")


def test_a_good_folder_answers(tiny_model_folder: Path) -> None:
    result = smoke_test(tiny_model_folder, "heara-danger", 3)
    assert result.version == "3" and result.label in LABELS and result.seconds > 0


def test_a_folder_without_weights_is_refused(tiny_model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_folder, tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(
        NotServableError, match=r"heara-danger version 7 .*no weights file \(model\.safetensors"
    ):
        smoke_test(folder, "heara-danger", 7)


def test_a_folder_without_its_label_map_is_refused(tiny_model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_folder, tmp_path)
    (folder / "heara.json").unlink()
    with pytest.raises(NotServableError, match="version 7 .*no heara.json"):
        smoke_test(folder, "heara-danger", 7)


def test_a_label_map_that_does_not_fit_the_model_is_refused(tiny_model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_folder, tmp_path)
    meta = json.loads((folder / "heara.json").read_text(encoding="utf-8"))
    (folder / "heara.json").write_text(json.dumps({**meta, "labels": [*LABELS, "extra"]}), encoding="utf-8")
    with pytest.raises(NotServableError, match="label map has 5 labels, the model 4 outputs"):
        smoke_test(folder, "heara-danger", 7)


def test_weights_that_load_but_answer_nan_are_refused(tiny_model_folder: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = _copy(tiny_model_folder, tmp_path)
    weights = load_file(folder / "model.safetensors")
    bias = next(k for k in weights if k.endswith("classifier.bias"))
    weights[bias] = weights[bias].fill_(float("nan"))
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(NotServableError, match="smoke prediction is malformed: a score is not finite"):
        smoke_test(folder, "heara-danger", 7)


def test_a_corrupt_weights_file_is_a_load_error(tiny_model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_folder, tmp_path)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(NotServableError, match="version 7 .*the model does not load: "):
        smoke_test(folder, "heara-danger", 7)
