"""Multi-label training through `fit_model`: the tiny transformer's sigmoid head with binary
cross-entropy, the linear family's one-vs-rest, thresholds tuned on the validation split and stored with
the model, and predictions that name several labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.config import Params
from training.data.labels import LABEL_JOIN, indicator
from training.model.predictor import Predictor
from training.steps.train import fit_model

LABELS = ["기쁨", "슬픔", "분노", "불안", "피로", "통증"]
WORDS = {
    "기쁨": ["신나", "기뻐", "좋아", "행복해", "웃었어"],
    "슬픔": ["슬퍼", "눈물나", "서러워", "울었어", "허전해"],
    "분노": ["화나", "짜증나", "열받아", "억울해", "분해"],
    "불안": ["걱정돼", "불안해", "초조해", "무서워", "떨려"],
    "피로": ["피곤해", "졸려", "지쳤어", "못잤어", "기운없어"],
    "통증": ["아파", "쑤셔", "결려", "욱신거려", "저려"],
}


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        picked = sorted(rng.choice(len(LABELS), size=int(rng.integers(1, 4)), replace=False))
        words = [str(rng.choice(WORDS[LABELS[j]])) for j in picked]
        rng.shuffle(words)
        rows.append(
            {
                "id": f"s{seed}-{i}",
                "text": "오늘은 " + " 그리고 ".join(words),
                "label": LABEL_JOIN.join(LABELS[j] for j in picked),
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def splits():
    return {"train": frame(240, 0), "val": frame(60, 1), "test": frame(60, 2)}


def _params(family: str) -> Params:
    tree = Params().to_dict()
    tree["augment"]["multipliers"] = {}
    tree["serve"]["danger_labels"] = []
    return Params.model_validate(tree).override(
        {
            "task": "feelings",
            "labels": LABELS,
            "task_type": "multilabel",
            "model": {"family": family, "max_length": 24, "tiny_vocab_size": 200},
            "train": {
                "epochs": 8,
                "batch_size": 16,
                "lr": 5e-3,
                "device": "cpu",
                "early_stopping_patience": 8,
            },
        }
    )


@pytest.mark.parametrize("family", ["linear", "kobert"])
def test_a_multi_label_model_names_every_label_of_a_text(family, splits, tmp_path, one_torch_thread):
    model_dir, result = fit_model(_params(family), splits, LABELS, tmp_path)
    meta = json.loads((model_dir / "heara.json").read_text(encoding="utf-8"))
    assert meta["task_type"] == "multilabel"
    assert len(meta["thresholds"]) == len(LABELS) and all(0 < t < 1 for t in meta["thresholds"])
    assert set(result.extra["thresholds"]) == set(LABELS)

    predictor = Predictor.load(model_dir, device="cpu")
    assert predictor.multilabel
    test = splits["test"]
    probs = predictor.predict_proba(test["text"].tolist(), preprocessed=True)
    # One probability per label, not a distribution over labels.
    assert probs.shape == (len(test), len(LABELS)) and not np.allclose(probs.sum(1), 1.0)
    truth = indicator(test["label"], LABELS)
    decided = probs >= np.array(meta["thresholds"])
    tp = (decided & (truth > 0)).sum(0)
    f1 = 2 * tp / np.maximum(decided.sum(0) + truth.sum(0), 1)
    assert f1.mean() > (0.8 if family == "linear" else 0.6), f1

    two = next(i for i, lab in enumerate(test["label"]) if lab.count(LABEL_JOIN) == 1)
    pred = predictor.predict([test["text"].iloc[two]], preprocessed=True)[0]
    assert pred.labels is not None and len(pred.labels) >= 2
    assert set(pred.labels) >= set(test["label"].iloc[two].split(LABEL_JOIN)) or f1.mean() < 0.9
    # Most probable first, each at or above its own threshold.
    scores = [pred.scores[lab] for lab in pred.labels]
    assert scores == sorted(scores, reverse=True)
    assert all(pred.scores[lab] >= predictor.thresholds[LABELS.index(lab)] for lab in pred.labels)

    # The service's classifier (its own batching and encoding) answers the same labels and sigmoids.
    from serving.inference import Classifier

    served = Classifier(predictor, max_tokens_per_batch=512).predict([test["text"].iloc[two]])[0]
    assert served["labels"] == pred.labels
    assert all(abs(served["scores"][lab] - pred.scores[lab]) < 1e-5 for lab in LABELS)


def test_a_one_vs_rest_labels_contributions_add_up_to_its_own_logit(splits, tmp_path):
    from training.model.explain import LinearContributions

    model_dir, _ = fit_model(_params("linear"), splits, LABELS, tmp_path)
    predictor = Predictor.load(model_dir, device="cpu")
    explainer = LinearContributions(predictor)
    ovr = predictor.pipe.named_steps["logreg"]
    text = "오늘은 아파 그리고 졸려"
    x = predictor.pipe.named_steps["tfidf"].transform([text])
    for target in (LABELS.index("통증"), LABELS.index("피로"), LABELS.index("기쁨")):
        scores, _ = explainer.char_scores(text, target)
        est = ovr.estimators_[target]
        logit = float(est.decision_function(x)[0])
        assert abs(scores.sum() - (logit - float(est.intercept_[0]))) < 1e-9
    # The words of the labels a text carries push toward them.
    pain, _ = explainer.char_scores(text, LABELS.index("통증"))
    assert pain[text.index("아파") : text.index("아파") + 2].sum() > 0
