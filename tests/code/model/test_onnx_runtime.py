"""The int8 ONNX path on the tiny model: agreement with torch fp32, the export cache and its stamp."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from training.model import onnx_runtime as ort_model
from training.model.encoding import collate, encode
from training.model.predictor import Predictor
from training.paths import StatePaths

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"
WEIGHT_STD = 0.1
# Measured on the model below: int8 moves a probability by at most ~0.007 (mean 0.002) and a padded row's
# logits by ~0.008, while dropping the attention mask moves them by ~0.15.
PROB_ATOL = 0.02
LOGIT_ATOL = 0.03
MIN_ARGMAX_AGREEMENT = 0.8  # over all texts, near ties included; wherever fp32's margin > PROB_ATOL: all


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Path:
    """The tiny model with its weight matrices redrawn (std 0.1, seeded).

    Freshly initialised (std 0.02) it answers almost uniformly (logits within +-0.06) and hardly
    depends on the attention mask, so a broken export would still pass; the redrawn weights make every
    input, and the mask, move the output.
    """
    folder = tiny_model_factory(tmp_path_factory.mktemp("onnx") / "model")
    model = Predictor.load(folder, device="cpu").model
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() >= 2:
                weight.copy_(torch.randn(weight.shape, generator=generator) * WEIGHT_STD)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return pd.read_csv(SAMPLE)["text"].iloc[:120].tolist() + ["ㅋ", "할머니 도와주세요 " * 15]


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Counts the exports (the ONNX files written), still running the real one."""
    calls: list[Path] = []
    real = ort_model.export_fp32

    def counted(model, out: Path, *, type_ids: bool) -> Path:
        calls.append(out)
        return real(model, out, type_ids=type_ids)

    monkeypatch.setattr(ort_model, "export_fp32", counted)
    return calls


def test_int8_agrees_with_torch_fp32(model_dir: Path, texts: list[str]) -> None:
    predictor = Predictor.load(model_dir, device="cpu")
    runner = ort_model.Int8Runner.load(model_dir, model=predictor.model)
    fp32 = predictor.predict_proba(texts, batch_size=16)  # length-sorted batches: many widths, padding
    int8 = predictor.predict_proba(texts, batch_size=16, logits=runner)
    assert int8.shape == fp32.shape
    np.testing.assert_allclose(int8, fp32, atol=PROB_ATOL)
    same = int8.argmax(axis=1) == fp32.argmax(axis=1)
    top2 = np.sort(fp32, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > PROB_ATOL
    assert same.mean() >= MIN_ARGMAX_AGREEMENT and same[clear].all()
    assert len(set(fp32.argmax(axis=1))) > 1  # the texts are not all given one label


def test_padding_does_not_change_a_row(model_dir: Path, texts: list[str]) -> None:
    """A row's logits are the same alone and padded in a batch of longer rows: the mask reached the graph
    (the trace was taken on a padded example). Ignoring the mask would move them by far more."""
    predictor = Predictor.load(model_dir, device="cpu")
    runner = ort_model.Int8Runner.load(model_dir)
    enc = encode(predictor.tokenizer, texts[:20], None, predictor.labels, predictor.max_length)
    short = int(np.argmin(enc.lengths))
    batch = collate(enc, np.arange(20))
    assert enc.lengths.max() > enc.lengths[short] + 5
    np.testing.assert_allclose(
        runner(batch)[short], runner(collate(enc, np.array([short])))[0], atol=LOGIT_ATOL
    )
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        masked = predictor.model(**inputs).logits[short]
        unmasked = predictor.model(**{**inputs, "attention_mask": torch.ones_like(batch["attention_mask"])})
    assert (masked - unmasked.logits[short]).abs().max() > 3 * LOGIT_ATOL  # the check can see a lost mask


def test_export_is_cached_and_redone_when_the_weights_change(
    tmp_path: Path, tiny_model_factory, exports: list[Path]
) -> None:
    folder = tiny_model_factory(tmp_path / "model")
    first = ort_model.int8_model(folder)
    assert first.is_file() and first.parent.parent == folder / ort_model.CACHE_DIR
    stamp = json.loads((first.parent / ort_model.STAMP_FILE).read_text(encoding="utf-8"))
    assert stamp["weights_sha256"] == ort_model.weights_digest(folder)
    assert {"torch", "transformers", "onnx", "onnxruntime"} <= set(stamp)
    mtime = first.stat().st_mtime_ns

    assert ort_model.int8_model(folder) == first  # cached: no second export
    assert len(exports) == 1 and first.stat().st_mtime_ns == mtime

    model = Predictor.load(folder, device="cpu").model
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    model.save_pretrained(folder)  # a model saved over the folder: new weights
    second = ort_model.int8_model(folder)
    assert len(exports) == 2 and second != first and second.is_file()
    assert not first.parent.exists()  # the stale export of the old weights is gone


def test_stamp_follows_tool_versions_but_not_local_build_labels(model_dir: Path) -> None:
    tools = {"torch": "2.13.0+cpu", "transformers": "5.0", "onnx": "1.23.2", "onnxruntime": "1.32.0"}
    key = ort_model.stamp_key(ort_model.export_stamp(model_dir, tools))
    gpu_build = ort_model.stamp_key(ort_model.export_stamp(model_dir, {**tools, "torch": "2.13.0+cu128"}))
    upgraded = ort_model.stamp_key(ort_model.export_stamp(model_dir, {**tools, "onnxruntime": "1.33.0"}))
    assert key == gpu_build
    assert key != upgraded


def test_read_only_model_folder_caches_under_the_state_folder(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns(ort_model.CACHE_DIR))
    paths = StatePaths(tmp_path / "home")
    key = ort_model.stamp_key(ort_model.export_stamp(folder))
    # The tests run as root, for whom every folder is writable: a read-only folder is simulated.
    monkeypatch.setattr(ort_model, "_writable", lambda folder: False)
    path = ort_model.int8_model(folder, paths=paths)
    assert path == paths.onnx_cache / key / ort_model.MODEL_FILE and path.is_file()
    assert not (folder / ort_model.CACHE_DIR).exists()
    assert ort_model.int8_model(folder, paths=paths) == path


def test_a_concurrent_export_that_lost_the_race_keeps_the_winner(tmp_path: Path, model_dir: Path) -> None:
    """Two processes exporting at once: the second rename finds the first one's folder and keeps it."""
    stamp = ort_model.export_stamp(model_dir)
    target = tmp_path / "onnx" / ort_model.stamp_key(stamp)
    target.mkdir(parents=True)
    (target / ort_model.MODEL_FILE).write_bytes(b"the winner")
    ort_model._export_into(model_dir, target, stamp, None)
    assert (target / ort_model.MODEL_FILE).read_bytes() == b"the winner"
    assert os.listdir(target.parent) == [target.name]  # the loser's temporary folder is removed


def test_model_without_token_type_ids(tmp_path: Path, model_dir: Path) -> None:
    """A RoBERTa-style graph takes input_ids and attention_mask only; the runner ignores extra inputs."""
    predictor = Predictor.load(model_dir, device="cpu")
    fp32 = ort_model.export_fp32(predictor.model, tmp_path / "m.onnx", type_ids=False)
    runner = ort_model.Int8Runner(ort_model.quantize_int8(fp32, tmp_path / "m.int8.onnx"))
    assert runner.input_names == ["input_ids", "attention_mask"]
    enc = encode(predictor.tokenizer, ["할머니 괜찮으세요", "도와주세요"], None, predictor.labels, 64)
    batch = collate(enc, np.arange(2))  # carries token_type_ids and labels too
    with torch.no_grad():
        ref = predictor.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # int8 rounding of a randomly initialised tiny model: one of these 8 logits measured 0.036 off on a
    # 2-core CPU whose int8 kernels differ from the CI machine's, where it stayed under LOGIT_ATOL
    np.testing.assert_allclose(runner(batch), ref.numpy(), atol=0.05)


def test_runner_names_a_missing_input(model_dir: Path) -> None:
    runner = ort_model.Int8Runner.load(model_dir)
    with pytest.raises(ValueError, match="token_type_ids"):
        runner({"input_ids": np.ones((1, 3), np.int64), "attention_mask": np.ones((1, 3), np.int64)})


def test_threads_follow_torch() -> None:
    assert ort_model.intra_op_threads() == torch.get_num_threads()
