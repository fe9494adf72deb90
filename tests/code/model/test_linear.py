"""The `linear` family as a first-class model: fitted, saved as a Heara model folder, loaded through the
same `Predictor.load` the service, the gate and the pyfunc use, smoke-tested and served by the same
Classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.inference import Classifier
from training.config import LinearConfig, PreprocessConfig
from training.errors import NotServableError
from training.model.linear import PIPELINE_FILE, LinearPredictor, fit_pipeline, ordered_proba, save_linear_dir
from training.model.predictor import Predictor
from training.registry.servable import smoke_test
from training.trainer.linear import train_linear

LABELS = ["normal", "emergency", "confusion", "distress"]
TEXTS = {
    "normal": ["오늘 날씨 좋네", "밥 맛있게 먹었어", "산책 다녀왔어요", "텔레비전 보고 있어"],
    "emergency": [
        "넘어져서 못 일어나겠어",
        "가슴이 너무 아파 숨이 차",
        "살려줘 피가 나",
        "119 불러줘 쓰러졌어",
    ],
    "confusion": [
        "여기가 어디야 집에 갈래",
        "내 안경 누가 가져갔어",
        "오늘이 무슨 요일이지",
        "우리 엄마 어디 갔어",
    ],
    "distress": ["너무 외롭고 슬퍼", "살기 싫어 다 귀찮아", "아무도 나를 안 찾아", "눈물만 나고 힘들어"],
}


def frame(aug: bool = False) -> pd.DataFrame:
    rows = [(t, lab, "original") for lab, ts in TEXTS.items() for t in ts]
    if aug:  # an augmented row that would change the fit if used
        rows += [("오늘 날씨 좋네 살려줘", "emergency", "aeda")] * 20
    return pd.DataFrame(rows, columns=["text", "label", "aug_method"])


@pytest.fixture(scope="module")
def linear_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    df = frame()
    pipe = fit_pipeline(LinearConfig(), df["text"].tolist(), df["label"].tolist())
    return save_linear_dir(
        pipe,
        tmp_path_factory.mktemp("linear") / "model",
        task="danger",
        labels=LABELS,
        preprocess=PreprocessConfig(spacing="none"),
        cfg=LinearConfig(),
        max_length=64,
    )


def test_probabilities_follow_the_label_order_not_sklearns() -> None:
    df = frame()
    pipe = fit_pipeline(LinearConfig(), df["text"].tolist(), df["label"].tolist())
    assert list(pipe.classes_) == sorted(LABELS)  # scikit-learn sorts: our order differs
    probs = ordered_proba(pipe, ["넘어져서 못 일어나겠어"], LABELS)
    assert probs.shape == (1, 4) and np.isclose(probs.sum(), 1.0)
    assert LABELS[int(probs.argmax())] == "emergency"
    assert ordered_proba(pipe, ["x"], [*LABELS, "unseen"])[0, 4] == 0.0


def test_the_folder_loads_through_the_one_predictor_entry(linear_dir: Path) -> None:
    predictor = Predictor.load(linear_dir)
    assert isinstance(predictor, LinearPredictor) and predictor.labels == LABELS
    assert predictor.family == "linear" and predictor.n_outputs() == 4 and predictor.size_bytes() > 0
    [pred] = predictor.predict(["가슴이 너무 아파 숨이 차"])
    assert pred.label == "emergency" and set(pred.scores) == set(LABELS)
    assert predictor.predict_proba([]).shape == (0, 4)
    assert predictor.latency_ms(["오늘 날씨 좋네"] * 3, n=3)["p95"] > 0


def test_the_service_classifier_runs_it_with_scikit_learn(linear_dir: Path) -> None:
    clf = Classifier.load(linear_dir, max_tokens_per_batch=64, device="cpu", int8=True)  # int8 ignored
    assert clf.runtime == "sklearn" and clf.runtime_info()["runtime"] == "sklearn"
    [answer] = clf.predict(["살기 싫어 다 귀찮아"])
    assert answer["label"] == "distress" and abs(sum(answer["scores"].values()) - 1) < 1e-5


def test_the_service_classifier_logs_the_tfidf_projection(linear_dir: Path, tmp_path: Path) -> None:
    """Monitoring features of the linear family: the TF-IDF row projected (transformed once, for the
    probabilities too), the re-spaced text; no tokenizer, so no piece counts."""
    import shutil

    from serving.schemas import FEATURES_KEY
    from training.config import Params
    from training.evaluation.monitoring import build_reference
    from training.model.projection import from_text, project

    folder = Path(shutil.copytree(linear_dir, tmp_path / "model"))
    predictor = Predictor.load(folder)
    texts = [t for ts in TEXTS.values() for t in ts]
    cfg = Params().override({"monitor": {"projection_dims": 4}}).monitor
    ref = build_reference(predictor, train_texts=texts, val_texts=texts, val_labels=frame()["label"], cfg=cfg)
    ref.save(folder)
    clf = Classifier.load(folder, max_tokens_per_batch=64, device="cpu", log_features=True)
    asked = ["살기 싫어 다 귀찮아", "넘어져서 못 일어나겠어 010-1234-5678"]
    out = clf.predict(asked)
    features = [o[FEATURES_KEY] for o in out]
    got, found = from_text([f["projection"] for f in features], 4)
    expected = project(predictor.embed(asked), ref.components)
    assert found.all() and np.allclose(got, expected, rtol=2e-3, atol=2e-3)
    assert [(f["pieces"], f["unk"], f["truncated"]) for f in features] == [(None, None, None)] * 2
    assert "[PHONE]" in features[1]["respaced"]
    probs = np.array([[o["scores"][lab] for lab in LABELS] for o in out])
    np.testing.assert_allclose(probs, predictor.predict_proba(asked), atol=1e-6)


def test_the_smoke_test_checks_the_pipeline_file(linear_dir: Path, tmp_path: Path) -> None:
    import shutil

    assert smoke_test(linear_dir, "heara-danger", 1).label in LABELS
    broken = Path(shutil.copytree(linear_dir, tmp_path / "m"))
    (broken / PIPELINE_FILE).unlink()
    with pytest.raises(NotServableError, match="no linear.joblib"):
        smoke_test(broken, "heara-danger", 2)


def test_training_fits_original_rows_unless_told_and_reports_one_epoch() -> None:
    df, records = frame(aug=True), []
    _, plain = train_linear(df, frame(), LABELS, LinearConfig(), on_epoch=lambda e, r: records.append((e, r)))
    _, with_aug = train_linear(df, frame(), LABELS, LinearConfig(augmented_rows=True))
    assert plain.extra["train_rows"] == 16 and with_aug.extra["train_rows"] == 36
    assert plain.epochs_run == 1 and records[0][0] == 1
    assert set(records[0][1]) == {"epoch", "train_loss", "val_loss", "val_macro_f1"}
    assert plain.best_val_macro_f1 == records[0][1]["val_macro_f1"] > 0.9  # val = the train texts here


def test_ngram_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="ngram_min 5 > linear.ngram_max 2"):
        LinearConfig(ngram_min=5, ngram_max=2)
