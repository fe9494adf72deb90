"""Evaluation: metrics, calibration, slices, typo noise, paired bootstrap, plots and artifacts."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from training.evaluation.calibration import calibration_bins, expected_calibration_error
from training.evaluation.metrics import (
    EvaluateConfig,
    add_typos,
    evaluate,
    flat_metrics,
    paired_bootstrap_macro_f1,
    remove_spaces,
    top_k_accuracy,
    write_artifacts,
)
from training.evaluation.plots import label_distribution_png, training_curves_png

LABELS = ["normal", "emergency", "confusion", "distress"]
KEYWORDS = {"살려": "emergency", "불이": "emergency", "어디": "confusion", "아파": "distress"}
CFG = EvaluateConfig(short_max_chars=8, typo_rate=0.15, latency_samples=5, seed=0)


def sample_df() -> pd.DataFrame:
    rows = [
        ("a1", "살려 주세요", "emergency"),
        ("a2", "집에 불이 났어요 빨리 와 주세요", "emergency"),
        ("a3", "여기가 어디예요", "confusion"),
        ("a4", "머리가 너무 아파요", "distress"),
        ("a5", "오늘 날씨가 좋네요", "normal"),
        ("a6", "밥 먹었어요", "normal"),
        ("a7", "숨이 안 쉬어져요 도와줘요", "emergency"),  # no keyword: the rule says normal (wrong)
        ("a8", "제 번호는 010-1234-5678 이에요", "normal"),
    ]
    return pd.DataFrame(rows, columns=["id", "text", "label"])


def one_hot(preds: list[str], conf: float = 1.0) -> np.ndarray:
    rest = (1 - conf) / (len(LABELS) - 1)
    out = np.full((len(preds), len(LABELS)), rest)
    out[np.arange(len(preds)), [LABELS.index(p) for p in preds]] = conf
    return out


def keyword_rule(text: str) -> str:
    return next((lab for kw, lab in KEYWORDS.items() if kw in text), "normal")


def keyword_proba(texts: list[str], conf: float = 1.0) -> np.ndarray:
    """Ignores spaces: the keywords contain none."""
    return one_hot([keyword_rule(t) for t in texts], conf)


def spacing_proba(texts: list[str]) -> np.ndarray:
    """Depends on spaces: a text without any is called an emergency."""
    return one_hot([keyword_rule(t) if " " in t else "emergency" for t in texts])


def test_metrics_match_sklearn_on_known_predictions():
    df = sample_df()
    res = evaluate(keyword_proba, df, LABELS, CFG)
    expected = [keyword_rule(t) for t in df["text"]]
    assert list(res.y_pred) == expected
    assert res.metrics["accuracy"] == pytest.approx(7 / 8) == accuracy_score(df["label"], expected)
    assert res.metrics["macro_f1"] == pytest.approx(f1_score(df["label"], expected, average="macro"))
    p, r, f, s = precision_recall_fscore_support(df["label"], expected, labels=LABELS, zero_division=0)
    for i, lab in enumerate(LABELS):
        pc = res.metrics["per_class"][lab]
        assert (pc["precision"], pc["recall"], pc["f1"], pc["support"]) == pytest.approx(
            (p[i], r[i], f[i], s[i])
        )
    assert res.metrics["per_class"]["emergency"]["recall"] == pytest.approx(2 / 3)
    assert res.confusion[LABELS.index("emergency"), LABELS.index("normal")] == 1
    assert res.confusion.sum() == len(df)


def test_weighted_f1_and_top_k_accuracy():
    df = sample_df()
    res = evaluate(keyword_proba, df, LABELS, CFG)
    expected = [keyword_rule(t) for t in df["text"]]
    assert res.metrics["weighted_f1"] == pytest.approx(f1_score(df["label"], expected, average="weighted"))
    assert set(res.metrics["top_k_accuracy"]) == {3}  # 5 is not below the 4 labels
    # one-hot probabilities: the wrong row's true label ties with two others behind the top label, and a
    # tie is broken as argmax breaks it (label order); emergency is LABELS[1], before confusion, distress
    assert res.metrics["top_k_accuracy"][3] == 1.0
    flat = flat_metrics(res)
    assert flat["test_weighted_f1"] == res.metrics["weighted_f1"] and flat["test_top3_accuracy"] == 1.0
    assert "test_top5_accuracy" not in flat


def test_top_k_accuracy_ranks_ties_as_argmax_does():
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.25, 0.55], [1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]])
    true = np.array([0, 1, 2, 0])
    assert top_k_accuracy(probs, true, 1) == pytest.approx(np.mean(probs.argmax(axis=1) == true)) == 0.25
    assert top_k_accuracy(probs, true, 2) == 0.5  # row 2's true label 2 ties with 0 and 1, which go first
    assert top_k_accuracy(probs, true, 3) == 1.0
    uniform = np.full((4, 3), 1 / 3)  # no credit for a tie: only label 0 is "top-1"
    assert top_k_accuracy(uniform, np.array([0, 1, 2, 2]), 1) == 0.25


def test_top_k_accuracy_on_many_classes_never_falls_as_k_grows():
    rng = np.random.default_rng(0)
    n_labels = 359
    labels = [f"주제{i:03d}" for i in range(n_labels)]
    y = rng.integers(0, n_labels, 500)
    logits = rng.normal(size=(500, n_labels))
    logits[np.arange(500), y] += 2.5  # right often, not always
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    df = pd.DataFrame({"text": [f"문장 {i}" for i in range(500)], "label": [labels[i] for i in y]})
    rows = dict(zip(df["text"], probs))
    res = evaluate(lambda texts: np.array([rows.get(t, probs[0]) for t in texts]), df, labels, CFG)
    top = res.metrics["top_k_accuracy"]
    assert res.metrics["accuracy"] <= top[3] <= top[5] <= 1
    assert top[5] == pytest.approx(np.mean([i in np.argsort(-p)[:5] for i, p in zip(y, probs)]))
    support = {lab: pc["support"] for lab, pc in res.metrics["per_class"].items()}
    assert sum(support.values()) == 500 and support[labels[y[0]]] == int((y == y[0]).sum())


def test_ece_zero_when_calibrated_positive_when_overconfident():
    assert expected_calibration_error(np.ones(10), np.ones(10, dtype=bool)) == 0.0
    hits = np.array([True, False] * 50)
    assert expected_calibration_error(np.full(100, 0.99), hits) == pytest.approx(0.49)
    count, _, acc = calibration_bins(np.array([0.05, 0.95, 1.0]), np.array([False, True, True]))
    assert count.sum() == 3 and count[0] == 1 and count[-1] == 2 and acc[-1] == 1.0
    # Through evaluate: one-hot and right except one row -> only the wrong row is miscalibrated.
    res = evaluate(keyword_proba, sample_df(), LABELS, CFG)
    assert res.metrics["ece"] == pytest.approx(1 / 8)
    overconfident = evaluate(lambda t: keyword_proba(t, conf=0.97), sample_df(), LABELS, CFG)
    assert overconfident.metrics["ece"] > 0.05


def test_space_invariance_rate():
    df = sample_df()
    assert evaluate(keyword_proba, df, LABELS, CFG).metrics["space_invariance_rate"] == 1.0
    res = evaluate(spacing_proba, df, LABELS, CFG)
    assert res.metrics["space_invariance_n"] == 8  # every test text has a space
    assert res.metrics["space_invariance_rate"] == pytest.approx(
        2 / 8
    )  # the 2 texts the rule calls emergency
    assert res.metrics["slices"]["no_spaces"]["accuracy"] == pytest.approx(3 / 8)
    assert remove_spaces(" 살려  주세요\t") == "살려주세요"


def test_slices_and_empty_slice():
    res = evaluate(keyword_proba, sample_df(), LABELS, CFG)
    short = res.metrics["slices"]["short"]
    assert short["n"] == 3  # the texts of at most 8 characters
    assert short["accuracy"] == 1.0
    assert res.metrics["slices"]["typos"]["n"] == 8
    none_short = evaluate(keyword_proba, sample_df(), LABELS, CFG.model_copy(update={"short_max_chars": 1}))
    assert none_short.metrics["slices"]["short"] == {"n": 0, "accuracy": None, "macro_f1": None}
    flat = flat_metrics(none_short)
    assert "slice_short_accuracy" not in flat and flat["slice_short_n"] == 0.0


def test_typo_noise_is_deterministic_and_changes_texts():
    texts = list(sample_df()["text"]) + ["있어요", "같이 가요", "ok"]
    once = add_typos(texts, 0.15, seed=3)
    assert once == add_typos(texts, 0.15, seed=3)
    assert once != add_typos(texts, 0.15, seed=4)
    assert all(new != old for new, old in zip(once, texts))
    assert add_typos(texts, 0.0, seed=3) == texts
    # A 받침 edit keeps the syllable's initial and vowel and swaps the final within its sound group.
    finals = {add_typos(["있"], 1.0, seed=s)[0] for s in range(40)}
    assert {"잇", "있있"} & finals and finals <= {"있있", "읻", "잇", "잊", "잋", "잍", "잏"}


def test_latency_and_shape_checks():
    calls = []

    def counting(texts):
        calls.append(len(texts))
        time.sleep(0.001)
        return keyword_proba(texts)

    res = evaluate(counting, sample_df(), LABELS, CFG)
    m = res.metrics
    assert m["latency_samples"] == 5 and calls.count(1) == 1 + 5  # warm-up + timed single calls
    assert 1.0 <= m["latency_ms_p50"] <= m["latency_ms_p95"]
    assert m["latency_batch_ms_per_sample"] > 0
    with pytest.raises(ValueError, match="shape"):
        evaluate(lambda t: np.ones((len(t), 2)), sample_df(), LABELS, CFG)
    with pytest.raises(ValueError, match="not in the model's labels"):
        evaluate(keyword_proba, sample_df(), LABELS[:3], CFG)


def _noisy(y: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    wrong = rng.random(len(y)) > accuracy
    return np.where(wrong, (y + rng.integers(1, 4, len(y))) % 4, y)


def test_paired_bootstrap():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 2000)
    a, b = _noisy(y, 0.6, rng), _noisy(y, 0.9, rng)
    assert paired_bootstrap_macro_f1(y, a, a, n=200) == (0.0, 0.0, 0.0)
    t0 = time.perf_counter()
    delta, lo, hi = paired_bootstrap_macro_f1(y, a, b, n=1000, seed=1)
    assert time.perf_counter() - t0 < 5
    assert delta == pytest.approx(f1_score(y, b, average="macro") - f1_score(y, a, average="macro"))
    assert 0 < lo < delta < hi
    assert paired_bootstrap_macro_f1(y, b, a, n=1000, seed=1)[2] < 0  # reversed: b is worse
    # Equally good models with different errors: the interval straddles 0.
    c = _noisy(y, 0.6, rng)
    _, lo, hi = paired_bootstrap_macro_f1(y, a, c, n=500)
    assert lo <= 0 <= hi
    # String labels work, and one resample's F1 equals sklearn's on those rows (classes absent skipped).
    labs = np.array(LABELS)
    assert paired_bootstrap_macro_f1(labs[y], labs[a], labs[b], n=50, seed=1)[0] == pytest.approx(delta)
    small_y, small_a = np.array([0, 0, 1]), np.array([0, 1, 1])
    d, _, _ = paired_bootstrap_macro_f1(small_y, np.array([2, 2, 2]), small_a, n=10)
    assert d == pytest.approx(f1_score(small_y, small_a, average="macro") - 0.0)


def _is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_artifacts(tmp_path):
    res = evaluate(keyword_proba, sample_df(), LABELS, CFG)
    paths = write_artifacts(res, tmp_path / "eval")
    names = {p.name for p in paths}
    assert names == {
        "confusion_matrix.png",
        "reliability.png",
        "classification_report.txt",
        "classification_report.json",
        "metrics.json",
        "confusion_matrix.csv",
        "confused_pairs.csv",
        "per_class.csv",
        "predictions.csv",
    }
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert _is_png(tmp_path / "eval" / "confusion_matrix.png") and _is_png(
        tmp_path / "eval" / "reliability.png"
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics == pytest.approx(flat_metrics(res))
    assert metrics["test_accuracy"] == pytest.approx(7 / 8) and "test_f1_emergency" in metrics
    assert all(isinstance(v, float) for v in metrics.values())
    report = json.loads((tmp_path / "eval" / "classification_report.json").read_text())
    assert report["emergency"]["support"] == 3
    cm = pd.read_csv(tmp_path / "eval" / "confusion_matrix.csv", index_col="true")
    assert list(cm.index) == list(cm.columns) == LABELS and cm.loc["emergency", "normal"] == 1
    pairs = pd.read_csv(tmp_path / "eval" / "confused_pairs.csv")
    assert pairs.to_dict("records") == [
        {"true": "emergency", "predicted": "normal", "count": 1, "share": pytest.approx(1 / 3, abs=1e-6)}
    ]
    per_class = pd.read_csv(tmp_path / "eval" / "per_class.csv", keep_default_na=False).set_index("label")
    assert list(per_class.index) == LABELS and per_class.loc["emergency", "support"] == 3
    assert per_class.loc["emergency", "most_confused_with"] == "normal"
    assert per_class.loc["normal", "most_confused_with"] == ""
    preds = pd.read_csv(tmp_path / "eval" / "predictions.csv", dtype=str)
    assert list(preds.columns) == ["id", "label", "predicted", "score", "correct", "text"]
    masked = preds.loc[preds["id"] == "a8", "text"].item()
    assert "[PHONE]" in masked and "5678" not in masked
    with pytest.raises(ValueError, match="rows"):
        write_artifacts(res, tmp_path / "x", texts=["only one"])


def test_plots_with_korean_labels(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 1.2, "val_loss": 1.0, "val_macro_f1": 0.4},
        {"epoch": 2, "train_loss": 0.7, "val_loss": 0.8, "val_macro_f1": 0.6},
    ]
    assert _is_png(training_curves_png(history, tmp_path / "curves.png"))
    assert _is_png(training_curves_png([], tmp_path / "empty.png"))
    counts = {
        "train": {"일상": 50, "응급": 20},
        "val": {"일상": 5, "응급": 2},
        "test": {"일상": 8, "응급": 3},
    }
    assert _is_png(label_distribution_png(counts, tmp_path / "dist.png"))
    from training.evaluation.plots import confusion_matrix_png

    assert _is_png(
        confusion_matrix_png(np.array([[3, 1], [0, 2]]), ["일상", "응급"], tmp_path / "sub" / "cm.png")
    )


def test_many_labels_plot_the_most_confused_pairs_not_a_grid(tmp_path):
    from PIL import Image

    from training.evaluation.plots import MAX_GRID_LABELS, confusion_matrix_png

    rng = np.random.default_rng(0)
    labels = [f"상담 주제 {i:03d}" for i in range(359)]
    cm = np.diag(rng.integers(1, 4, 359))
    for i, j in rng.integers(0, 359, size=(200, 2)):
        cm[i, j] += 1
    many = confusion_matrix_png(cm, labels, tmp_path / "many.png")
    small = confusion_matrix_png(
        cm[:MAX_GRID_LABELS, :MAX_GRID_LABELS], labels[:MAX_GRID_LABELS], tmp_path / "g.png"
    )
    with Image.open(many) as a, Image.open(small) as b:
        # 20 bars in a fixed-width figure, against a 20 x 20 grid that grows with the label count
        assert a.size[0] < 1500 and a.size[1] < 1200 and b.size[0] > a.size[0]
    assert _is_png(confusion_matrix_png(np.eye(30, dtype=int), labels[:30], tmp_path / "none.png"))
