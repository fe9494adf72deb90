"""Behaviour of a trained model (CheckList style): minimum functionality, invariance, direction.

The model is the tiny profile trained on the ~1,100 sample utterances (tests/model/conftest.py): weak
(held-out macro-F1 about 0.5 to 0.6), so each check here was chosen to hold for it, and was checked
on models trained with three different seeds (42, the one used here, 1 and 7), not only this one:

- invariances the preprocessing guarantees (a phone number for another, spacing, ㅋㅋㅋㅋ squeezed):
  the model sees the same text, so they hold for any model; asserted as equal probabilities;
- an invariance the model has to learn: swapping a family member (할아버지 <-> 할머니, 엄마 <-> 아빠)
  keeps the label of clear sentences;
- minimum functionality: clear sentences of each class get their class;
- direction: appending "도와줘 살려줘" raises the emergency probability.

Checks a model this small does NOT pass reliably, left out on purpose (each failed for one of the
three seeds): a final "." or "!" or a leading "저기" keeping the label of distress and confusion
sentences, and "살려줘 누가 좀 와 줘" being emergency. Worth adding once the model is bigger.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

pytestmark = pytest.mark.slow  # the session fixture trains a model (30-60 s on two cores)

CLEAR = {
    "emergency": [
        "가슴이 너무 아파 숨을 못 쉬겠어",
        "피가 안 멈춰 119 불러 줘",
        "할아버지가 쓰러지셨어 숨을 안 쉬어",
    ],
    "normal": ["오늘 점심은 국수 먹자", "라디오 좀 켜 줘", "손주가 전화해서 반가웠어", "날씨가 참 좋네"],
    "distress": [
        "사는 게 재미가 하나도 없어",
        "아무도 나를 찾아오지 않아 외로워",
        "밤마다 무서워서 잠을 못 자",
    ],
    "confusion": [
        "여기가 어디야 우리 집이 아니잖아",
        "오늘이 무슨 요일이지 모르겠어",
        "우리 엄마 어디 갔어 아까 여기 있었는데",
    ],
}
EVERYDAY = [
    "오늘 저녁은 불고기 구워 먹자",
    "내일 경로당에 놀러 간다",
    "날씨가 좋아서 산책 다녀왔어",
    "손주가 용돈을 보내 줬어",
    "텔레비전 소리 좀 키워 줘",
    "딸이 사 온 딸기가 맛있네",
    "타이머 십 분 맞춰 줘",
    "친구랑 화투 쳤는데 내가 이겼어",
]


def labels_of(predictor, texts: list[str]) -> list[str]:
    return [p.label for p in predictor.predict(texts)]


# --- minimum functionality ------------------------------------------------------------------------


def test_the_model_learned_something(trained) -> None:
    predictor, test = trained.predictor, trained.test
    probs = predictor.predict_proba(test["text"].tolist(), preprocessed=True)
    predicted = [predictor.labels[i] for i in probs.argmax(axis=1)]
    # chance is 0.25 for four classes; the three seeds tried gave 0.50-0.58
    assert f1_score(test["label"], predicted, average="macro") > 0.4
    assert trained.best_val_macro_f1 > 0.5


@pytest.mark.parametrize("label", sorted(CLEAR))
def test_clear_sentences_get_their_class(trained, label: str) -> None:
    assert labels_of(trained.predictor, CLEAR[label]) == [label] * len(CLEAR[label])


# --- invariance -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variant"),
    [
        # another number, same placeholder ([PHONE], [CARD], [ACCOUNT], [RRN])
        ("할머니가 010-1234-5678로 전화하래", "할머니가 010-9876-5432로 전화하래"),
        ("집 전화 (02)123-4567로 걸어 줘", "집 전화 (031) 987-6543로 걸어 줘"),
        ("카드 1234-5678-9012-3456 잃어버렸어", "카드 9876-5432-1098-7654 잃어버렸어"),
        ("아들 계좌 110-123-456789로 보내 줘", "아들 계좌 3333-01-1234567로 보내 줘"),
        ("주민번호가 850505-2345678 맞나", "주민번호가 470101-1234567 맞나"),
        # spacing: the preprocessor re-spaces from scratch (speech-to-text spaces are unreliable)
        ("숨쉬기가 너무 힘들어 산소 좀", "숨쉬기가너무힘들어산소좀"),
        ("숨쉬기가 너무 힘들어 산소 좀", "숨 쉬 기 가  너 무   힘들어 산소 좀"),
        ("우리 엄마 어디 갔어 아까 여기 있었는데", "우리엄마어디갔어 아까여기있었는데"),
        # repeats squeezed to two
        ("ㅋㅋㅋㅋㅋㅋㅋ 손주가 재롱 부리네", "ㅋㅋ 손주가 재롱 부리네"),
        ("아파 아파!!!!!! 너무 아파ㅠㅠㅠㅠㅠ", "아파 아파!! 너무 아파ㅠㅠ"),
    ],
)
def test_what_preprocessing_removes_changes_nothing(trained, text: str, variant: str) -> None:
    predictor = trained.predictor
    assert predictor.preprocessor([text]) == predictor.preprocessor([variant])  # why it holds
    probs = predictor.predict_proba([text, variant])
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)


@pytest.mark.parametrize(("old", "new"), [("할아버지", "할머니"), ("엄마", "아빠"), ("손주", "손녀")])
def test_another_family_member_keeps_the_label(trained, old: str, new: str) -> None:
    texts = [t for ts in CLEAR.values() for t in ts if old in t]
    assert texts, f"no clear sentence mentions {old}"
    assert labels_of(trained.predictor, [t.replace(old, new) for t in texts]) == labels_of(
        trained.predictor, texts
    )


# --- direction ------------------------------------------------------------------------------------


def test_a_cry_for_help_raises_the_emergency_probability(trained) -> None:
    predictor = trained.predictor
    emergency = predictor.labels.index("emergency")
    before = predictor.predict_proba(EVERYDAY)[:, emergency]
    after = predictor.predict_proba([f"{t} 도와줘 살려줘" for t in EVERYDAY])[:, emergency]
    rises = {t: (round(float(b), 3), round(float(a), 3)) for t, b, a in zip(EVERYDAY, before, after)}
    assert (after > before).all(), f"P(emergency) before, after: {rises}"
    assert after.mean() > before.mean() + 0.05, f"P(emergency) before, after: {rises}"
