"""Drift monitoring replayed on the tiny model trained on the sample (conftest.py): windows drawn like the
validation data raise no alarm, and three kinds of drift do. For each kind, the windows until the
persistent alarm and the estimated vs the true macro-F1 are printed (`pytest -s`) for docs/monitoring.md.

Windows are drawn (with replacement) from the test split's rows as they were written, which the model
never trained on and the reference (the validation split) does not contain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from training.config import MonitorConfig
from training.evaluation import monitoring
from training.steps.register import sent_texts
from training.steps.workspace import DataFiles

pytestmark = pytest.mark.slow
WINDOW = 100
CFG = MonitorConfig(window=WINDOW, min_texts=50, mmd_permutations=100)
CALM_WINDOWS = 20


@pytest.fixture(scope="module")
def setting(trained):
    files = DataFiles.from_dir(trained.data_dir)
    splits = files.load()
    train = splits["train"]
    ref = monitoring.build_reference(
        trained.predictor,
        train_texts=train["text"].tolist(),
        val_texts=splits["val"]["text"].tolist(),
        val_labels=splits["val"]["label"].tolist(),
        val_sent_texts=sent_texts(files, splits["val"]),
        cfg=CFG,
    )
    test = splits["test"].assign(sent=sent_texts(files, splits["test"]))
    return trained.predictor, ref, test


def _replay(predictor, ref, windows: list[pd.DataFrame]) -> list[dict]:
    """Each window judged in turn; the persistent alarm after each."""
    out, flags = [], []
    for i, w in enumerate(windows):
        obs = monitoring.observe(predictor, ref, w["sent"].tolist())
        result = monitoring.window_signals(ref, **obs, cfg=CFG, seed=i)
        flags.append(result["alarm"])
        true_f1 = (
            f1_score(w["label"], [ref.labels[j] for j in obs["probs"].argmax(1)], average="macro")
            if "label" in w
            else None
        )
        out.append({**result, "persistent": monitoring.persistence(flags, CFG), "true_macro_f1": true_f1})
    return out


def _draw(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return rows.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)


def _summary(name: str, results: list[dict]) -> dict:
    first = next((i + 1 for i, r in enumerate(results) if r["persistent"]), None)
    est = np.mean([r["signals"]["estimated_macro_f1"] for r in results])
    true = [r["true_macro_f1"] for r in results if r["true_macro_f1"] is not None]
    line = {
        "replay": name,
        "windows": len(results),
        "window_alarms": int(sum(r["alarm"] for r in results)),
        "windows_until_alarm": first,
        "estimated_macro_f1": round(float(est), 4),
        "true_macro_f1": round(float(np.mean(true)), 4) if true else None,
        "reasons_first_alarm": results[first - 1]["reasons"][:3] if first else [],
        "alarmed_windows_reasons": [r["reasons"][:2] for r in results if r["alarm"]][:3],
    }
    print(line)
    return line


def test_windows_like_the_validation_data_raise_no_alarm(setting):
    predictor, ref, test = setting
    results = _replay(predictor, ref, [_draw(test, WINDOW, s) for s in range(CALM_WINDOWS)])
    line = _summary("calm", results)
    assert not any(r["persistent"] for r in results), [r["reasons"] for r in results if r["alarm"]]
    # The measured per-window false-alarm rate within the configured one (alpha), allowing the one
    # window in twenty that a rate of 0.01 can produce by chance (P ~ 0.18).
    assert line["window_alarms"] <= 1, [r["reasons"] for r in results if r["alarm"]]
    assert abs(line["estimated_macro_f1"] - line["true_macro_f1"]) < 0.15


def test_spaces_removed_by_a_new_speech_to_text_engine_raise_an_alarm(setting):
    predictor, ref, test = setting
    windows = [_draw(test, WINDOW, 100 + s) for s in range(8)]
    squashed = [w.assign(sent=w["sent"].str.replace(" ", "", regex=False)) for w in windows]
    line = _summary("spaces removed", _replay(predictor, ref, squashed))
    assert line["windows_until_alarm"] is not None and line["windows_until_alarm"] <= CFG.persistence_m


@pytest.mark.realdata
def test_a_new_topic_raises_an_alarm(setting, chatbot_csv):
    predictor, ref, _ = setting
    questions = pd.read_csv(chatbot_csv)["Q"].astype(str)
    windows = [
        pd.DataFrame({"sent": questions.sample(WINDOW, random_state=200 + s).tolist()}) for s in range(8)
    ]
    line = _summary("new topic (ChatbotData questions)", _replay(predictor, ref, windows))
    assert line["windows_until_alarm"] is not None and line["windows_until_alarm"] <= CFG.persistence_m


def test_label_shift_to_70_percent_emergency_raises_an_alarm(setting):
    predictor, ref, test = setting
    emergency, rest = test[test["label"] == "emergency"], test[test["label"] != "emergency"]
    windows = [
        pd.concat([_draw(emergency, 70, 300 + s), _draw(rest, 30, 400 + s)], ignore_index=True)
        for s in range(8)
    ]
    line = _summary("label shift (70 % emergency)", _replay(predictor, ref, windows))
    assert line["windows_until_alarm"] is not None and line["windows_until_alarm"] <= CFG.persistence_m
