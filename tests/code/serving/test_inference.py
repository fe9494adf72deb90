"""Which runtime serves a model (the int8 refusal rule as a pure function), and the Classifier and
`load_served` running the runtime chosen: int8 ONNX on a CPU when allowed, torch otherwise. The monitoring
features the Classifier captures for the prediction log (`monitor.log_features`), in each runtime and
across a hot reload."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving import reload, schemas
from serving.inference import Classifier, choose_runtime, quantization_refusal
from serving.schemas import FEATURES_KEY
from training.config import ServeConfig
from training.evaluation.monitoring import Reference
from training.model.encoding import token_counts
from training.model.onnx_runtime import INT8_MACRO_F1_DROP
from training.model.projection import from_text, project
from training.pii import mask_pii
from training.registry.champion import ModelSource

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"
DANGER = ("emergency", "distress")


# --- the rule ------------------------------------------------------------------------------------


def test_a_drop_within_the_limit_is_allowed() -> None:
    assert quantization_refusal({INT8_MACRO_F1_DROP: 0.004}, max_drop=0.01) is None
    assert quantization_refusal({INT8_MACRO_F1_DROP: 0.01}, max_drop=0.01) is None  # the limit is inclusive
    assert quantization_refusal({INT8_MACRO_F1_DROP: -0.002}, max_drop=0.0) is None  # int8 scored higher


def test_a_drop_over_the_limit_is_refused_naming_the_setting() -> None:
    reason = quantization_refusal({INT8_MACRO_F1_DROP: 0.0312}, max_drop=0.01)
    assert reason and "0.0312" in reason and "serve.max_quantization_drop" in reason


@pytest.mark.parametrize("metrics", [{}, {"test_macro_f1": 0.9}, {INT8_MACRO_F1_DROP: float("nan")}])
def test_no_measurement_is_refused(metrics: dict) -> None:
    reason = quantization_refusal(metrics, max_drop=1.0)
    assert reason and INT8_MACRO_F1_DROP in reason and "serve.max_quantization_drop" in reason


def test_runtime_per_device_and_setting() -> None:
    ok, bad = {INT8_MACRO_F1_DROP: 0.0}, {INT8_MACRO_F1_DROP: 0.5}
    assert choose_runtime("cuda", "onnx", ok, 0.01) == ("torch-bf16", None)  # a GPU: always torch bf16
    assert choose_runtime("cpu", "torch", ok, 0.01) == ("torch-fp32", None)
    assert choose_runtime("cpu", "onnx", ok, 0.01) == ("onnx-int8", None)
    runtime, refusal = choose_runtime("cpu", "onnx", bad, 0.01)
    assert runtime == "torch-fp32" and refusal
    runtime, refusal = choose_runtime("cpu", "onnx", {}, 0.01)
    assert runtime == "torch-fp32" and refusal


# --- the Classifier and load_served on the tiny model ---------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Path:
    return tiny_model_factory(tmp_path_factory.mktemp("inference") / "model")


def serve(cpu_runtime: str, max_drop: float) -> ServeConfig:
    return ServeConfig(
        max_tokens_per_batch=256,
        danger_labels=DANGER,
        cpu_runtime=cpu_runtime,
        max_quantization_drop=max_drop,
    )


def source(model_dir: Path, metrics: dict[str, float]) -> ModelSource:
    return ModelSource(model_dir, "heara-danger", "7", "run", "models:/heara-danger/7", metrics)


def test_int8_classifier_matches_the_torch_one(model_dir: Path) -> None:
    torch_clf = Classifier.load(model_dir, max_tokens_per_batch=64, device="cpu")
    int8_clf = Classifier.load(model_dir, max_tokens_per_batch=64, device="cpu", int8=True)
    assert (torch_clf.runtime, int8_clf.runtime) == ("torch-fp32", "onnx-int8")
    texts = pd.read_csv(SAMPLE)["text"].iloc[:30].tolist() + ["할머니 도와주세요 " * 10]
    np.testing.assert_allclose(int8_clf.predict_proba(texts), torch_clf.predict_proba(texts), atol=0.02)
    assert int8_clf.runtime_info() == {"device": "cpu", "dtype": "int8", "runtime": "onnx-int8"}
    assert torch_clf.runtime_info() == {"device": "cpu", "dtype": "float32", "runtime": "torch-fp32"}


def test_load_served_runs_int8_when_the_measured_drop_allows(model_dir: Path, caplog) -> None:
    allowed = source(model_dir, {INT8_MACRO_F1_DROP: 0.002})
    with caplog.at_level(logging.WARNING, logger="heara.serve"):
        served = reload.load_served(allowed, serve("onnx", 0.01))
    assert served.classifier.runtime == "onnx-int8" and not caplog.records


@pytest.mark.parametrize("metrics", [{INT8_MACRO_F1_DROP: 0.05}, {}], ids=["over the limit", "unmeasured"])
def test_load_served_refuses_int8_with_one_warning(model_dir: Path, metrics: dict, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="heara.serve"):
        served = reload.load_served(source(model_dir, metrics), serve("onnx", 0.01))
    assert served.classifier.runtime == "torch-fp32"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "serve.max_quantization_drop" in warnings[0].getMessage()


def test_load_served_with_torch_is_fp32(model_dir: Path, caplog) -> None:
    measured = source(model_dir, {INT8_MACRO_F1_DROP: 0.0})
    with caplog.at_level(logging.WARNING, logger="heara.serve"):
        assert reload.load_served(measured, serve("torch", 0.0)).classifier.runtime == "torch-fp32"
        served = reload.load_served(measured, serve("torch", 0.01))
    assert served.classifier.runtime == "torch-fp32" and not caplog.records


def test_load_served_on_a_gpu_asks_for_torch(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU runs torch in bf16 whatever cpu_runtime says (no GPU here: the load is recorded instead)."""
    asked = {}

    def fake_load(model_dir, max_tokens_per_batch, device="auto", *, int8=False, log_features=False):
        asked.update(device=device, int8=int8)
        raise RuntimeError("recorded")

    monkeypatch.setattr(reload, "pick_device", lambda: "cuda")
    monkeypatch.setattr(reload.Classifier, "load", fake_load)
    with pytest.raises(RuntimeError, match="recorded"):
        reload.load_served(source(model_dir, {INT8_MACRO_F1_DROP: 0.0}), serve("onnx", 0.01))
    assert asked == {"device": "cuda", "int8": False}


def test_model_info_reports_the_runtime(model_dir: Path) -> None:
    clf = Classifier.load(model_dir, max_tokens_per_batch=64, device="cpu", int8=True)
    info = schemas.ModelInfo(
        **source(model_dir, {}).to_dict(),
        labels=clf.labels,
        danger_labels=list(DANGER),
        danger_threshold=0.5,
        topology="single",
        **clf.runtime_info(),
    )
    assert info.runtime == "onnx-int8" and info.dtype == "int8"
    with pytest.raises(ValueError):
        schemas.ModelInfo(**{**info.model_dump(), "runtime": "tensorrt"})


# --- monitoring features ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def referenced_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Path:
    """A tiny model with a monitoring reference, as `heara register` stores one (Kiwi spacing)."""
    return tiny_model_factory(tmp_path_factory.mktemp("inference-ref") / "model", reference=True)


# Personal data, unknown characters, a text the model's 64 tokens cut, spacing Kiwi corrects.
FEATURE_TEXTS = [
    "할머니가 쓰러지셨어요 010-1234-5678로 전화주세요",
    "漢字 😀 emoji",
    " ".join(f"{i}번째 말씀드릴게요" for i in range(40)),
    "오늘날씨가정말좋네요",
]


def test_captured_features_are_what_the_monitor_computes(referenced_dir: Path) -> None:
    """The projection is the monitor's `project(predictor.embed(...))` of the text the model read, from
    the same forward pass (float16 as stored); the counts are `token_counts`; the re-spaced text is masked."""
    clf = Classifier.load(referenced_dir, max_tokens_per_batch=64, device="cpu", log_features=True)
    assert clf.captures and clf.runtime == "torch-fp32"
    out = clf.predict(FEATURE_TEXTS)  # a cap of 64 tokens: the long text runs in a sub-batch of its own
    features = [o[FEATURES_KEY] for o in out]
    p = clf.predictor
    clean = p.preprocessor(FEATURE_TEXTS)
    components = Reference.load(referenced_dir).components
    expected = project(p.embed(clean, preprocessed=True), components)
    got, found = from_text([f["projection"] for f in features], len(components))
    assert found.all()
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)
    counts = token_counts(p.tokenizer, clean, p.max_length)
    assert [f["pieces"] for f in features] == counts.pieces.tolist()
    assert [f["unk"] for f in features] == counts.unknown.tolist() and features[1]["unk"] > 0
    assert [f["truncated"] for f in features] == [False, False, True, False]
    assert [f["respaced"] for f in features] == [mask_pii(t) for t in clean]
    assert features[3]["respaced"] != FEATURE_TEXTS[3]  # re-spaced by Kiwi
    assert "010-1234-5678" not in json.dumps(features, ensure_ascii=False)  # masked where it is made
    probs = np.array([[o["scores"][lab] for lab in clf.labels] for o in out])
    np.testing.assert_allclose(probs, clf.predict_proba(FEATURE_TEXTS), atol=1e-6)  # scores unchanged


def test_int8_captures_counts_but_no_projection(referenced_dir: Path) -> None:
    clf = Classifier.load(referenced_dir, 256, "cpu", int8=True, log_features=True)
    features = [o[FEATURES_KEY] for o in clf.predict(FEATURE_TEXTS)]
    assert clf.runtime == "onnx-int8" and all(f["projection"] is None for f in features)  # no hidden states
    assert [f["truncated"] for f in features] == [False, False, True, False] and features[0]["pieces"] > 0


def test_no_features_without_the_setting_or_a_reference(referenced_dir: Path, model_dir: Path) -> None:
    off = Classifier.load(referenced_dir, max_tokens_per_batch=256, device="cpu")  # log_features off
    without = Classifier.load(model_dir, max_tokens_per_batch=256, device="cpu", log_features=True)
    for clf in (off, without):
        assert not clf.captures and all(FEATURES_KEY not in o for o in clf.predict(FEATURE_TEXTS[:2]))


def test_a_hot_reload_captures_with_the_new_versions_reference(model_dir: Path, referenced_dir: Path) -> None:
    v1, v2 = source(model_dir, {}), ModelSource(referenced_dir, "heara-danger", "8", "run", "models:/x/8")

    def load(model: ModelSource, previous=None) -> reload.Served:  # as serving.model_host.start's
        return reload.load_served(model, serve("torch", 0.0), previous, log_features=True)

    hot = reload.HotModel(load(v1), latest_version=lambda: "8", fetch=lambda: v2, load=load)
    assert not hot.current.classifier.captures  # version 7 has no reference
    assert hot.check()["reloaded"] and hot.current.classifier.captures
    components = Reference.load(referenced_dir).components
    np.testing.assert_array_equal(hot.current.classifier.components, components)
