"""Explanations (training/model/explain.py): where KoBERT's pieces lie in the text, word and morpheme units,
Integrated Gradients' completeness on a tiny transformer, the linear family's exact contributions, occlusion
and the fall-back to it.

The shared tiny model is untrained (its probabilities barely move), so the Integrated Gradients tests load
their own copy and give it larger random weights: the path from the reference to the text then curves, and
the midpoint rule's error (the convergence delta) is something to measure."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.config import ExplainConfig, LinearConfig, PreprocessConfig
from training.model import explain
from training.model.explain import (
    Explainer,
    ExplainError,
    Explanation,
    IntegratedGradients,
    LinearContributions,
    Occlusion,
    Unit,
    make_explainer,
    morpheme_spans,
    piece_chars,
    spans_for,
    units_from_chars,
    word_spans,
)
from training.model.linear import fit_pipeline, save_linear_dir
from training.model.predictor import Predictor
from training.model.tiny import train_kobert_spiece
from training.model.tokenizer import KoBertTokenizer

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"
LABELS = ["normal", "emergency", "confusion", "distress"]
FALL = "아이고 화장실에서 넘어졌는데 못 일어나겠어"
ODD = [
    "1,000원 주세요",
    "가격은 1,200,000원, 2,000원 입니다",
    "12, 34,",
    "ㅋㅋ 웃겨",
    "ㅋㅋㅋㅋ ㅎㅎ",
    "hello World 안녕",
    "Hello World! KoBERT's test",
    "① 번호",
    "①②③ 동그라미",
    "café naïve",
    "``인용''",
    "  여러   공백이   있는 문장  ",
    "😀😀 좋아요 👍🏻",
    "119 불러줘 빨리!!",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


@pytest.fixture(scope="module")
def tiny(tiny_model_folder: Path):
    return Predictor.load(tiny_model_folder, device="cpu")


@pytest.fixture(scope="module")
def ig_predictor(tiny_model_folder: Path):
    """A private copy of the tiny model with larger random weights (seeded): probabilities that move."""
    import torch

    p = Predictor.load(tiny_model_folder, device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for prm in p.model.parameters():
            if prm.dim() >= 2:
                prm.copy_(torch.randn(prm.shape, generator=g) * 0.2)
    return p


def _number_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(['가격은', '총', '약'])} {rng.randint(1, 10 ** rng.randint(2, 9)):,}원, "
        f"{rng.randint(1, 99)},{rng.randint(100, 999)}명, {rng.randint(1, 9)}, "
        f"합계{rng.randint(1000, 10**7):,}"
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def number_spiece(tmp_path_factory, sample) -> Path:
    """A SentencePiece model that learnt digit+comma pieces (so XLNet's re-split really runs)."""
    out = tmp_path_factory.mktemp("spiece-explain")
    (out / "spiece.model").write_bytes(
        train_kobert_spiece(sample["text"].tolist() + _number_texts(300), vocab_size=800, seed=0)
    )
    KoBertTokenizer(out / "spiece.model").save_pretrained(out)
    return out


def _reference_proba(p, text: str, target: int, reference_id: int) -> tuple[float, float]:
    """p(text) and p(reference) for `target`, computed here from input ids (not from embeddings)."""
    import torch

    enc = p.tokenizer([text], max_length=p.max_length, truncation=True, return_tensors="pt")
    ids = enc["input_ids"]
    ref = ids.clone()
    ref[0, 1:-1] = reference_id
    both = torch.cat([ids, ref])
    with torch.no_grad():
        logits = p.model(
            input_ids=both, attention_mask=torch.ones_like(both), token_type_ids=torch.zeros_like(both)
        ).logits
    probs = torch.softmax(logits.float(), -1)[:, target].tolist()
    return probs[0], probs[1]


# --- where the pieces lie ------------------------------------------------------------------------------


def _check_piece_chars(tok, text: str) -> tuple[list[int], list[list[int]]]:
    ids, chars = piece_chars(tok, text)
    assert ids == tok.piece_ids([text])[0], text
    assert len(chars) == len(ids), text
    words = word_spans(text)
    for cs in chars:
        assert cs, (text, chars)
        assert all(0 <= c < len(text) and not text[c].isspace() for c in cs), (text, cs)
        assert any(s <= min(cs) and max(cs) < e for s, e, _ in words), f"{text!r}: {cs} crosses a space"
    covered = {c for cs in chars for c in cs}
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered]
    assert not missing, f"{text!r}: characters {missing} belong to no piece"
    return ids, chars


def test_piece_chars_on_the_tiny_kobert_tokenizer(tiny, sample) -> None:
    tok = tiny.tokenizer
    assert isinstance(tok, KoBertTokenizer)
    for text in sample["text"].head(200).tolist() + ODD:
        _check_piece_chars(tok, text)


@pytest.mark.parametrize("fast", [False, True], ids=["slow", "fast"])
def test_piece_chars_with_digit_comma_pieces(number_spiece: Path, sample, fast: bool) -> None:
    tok = KoBertTokenizer.from_pretrained(number_spiece, fast=fast)
    for text in sample["text"].head(200).tolist() + ODD + _number_texts(30, seed=11):
        _check_piece_chars(tok, text)
    ids, chars = piece_chars(tok, "가격은 1,200,000원")
    # the pieces of a plain word are placed character by character; "1,200,000원" (re-split) as a word
    assert [tok.convert_ids_to_tokens(ids[0]), chars[0]] == ["▁가", [0]]
    assert chars[1:3] == [[1], [2]]
    assert "," in tok.convert_ids_to_tokens(ids) and all(cs == list(range(4, 14)) for cs in chars[3:])


def test_piece_chars_places_pieces_exactly_on_plain_korean(tiny, sample) -> None:
    """Where no piece is unknown, each piece's characters spell the piece (its "▁" aside), in order."""
    tok = tiny.tokenizer
    checked = 0
    for text in sample["text"].head(200):
        ids, chars = piece_chars(tok, text)
        pieces = tok.convert_ids_to_tokens(ids)
        if tok.unk_token_id in ids or any(ch.isdigit() for ch in text):
            continue
        last = -1
        for piece, cs in zip(pieces, chars):
            surface = piece.replace("▁", "")
            if not surface:
                continue
            assert "".join(text[c] for c in cs) == surface, (text, piece, cs)
            assert cs == list(range(cs[0], cs[-1] + 1)) and cs[0] > last, (text, piece, cs)
            last = cs[-1]
        checked += 1
    assert checked > 50


def test_piece_chars_refuses_a_slow_hugging_face_tokenizer() -> None:
    class Slow:
        is_fast = False

    with pytest.raises(ExplainError, match="offset mapping"):
        piece_chars(Slow(), "안녕")


# --- units -------------------------------------------------------------------------------------------


def _check_spans(text: str, spans) -> None:
    last = 0
    for s, e, _ in spans:
        assert last <= s < e <= len(text), (text, spans)
        assert text[s:e].strip(), (text, s, e)
        last = e


def test_word_spans_are_the_eojeol(sample) -> None:
    assert word_spans("  두  칸 이야 ") == [(2, 3, None), (5, 6, None), (7, 9, None)]
    assert word_spans("") == [] and word_spans("   ") == []
    for text in sample["text"].head(100).tolist() + ODD:
        spans = word_spans(text)
        _check_spans(text, spans)
        assert [text[s:e] for s, e, _ in spans] == text.split()


def test_morpheme_spans_cover_without_overlap(sample) -> None:
    for text in sample["text"].head(100).tolist() + ODD:
        spans = morpheme_spans(text)
        _check_spans(text, spans)
        covered = {i for s, e, _ in spans for i in range(s, e)}
        assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}, text
        assert all(tag for _, _, tag in spans)


def test_morphemes_sharing_a_syllable_become_one_unit() -> None:
    spans = morpheme_spans(FALL)
    _check_spans(FALL, spans)
    units = [(FALL[s:e], tag) for s, e, tag in spans]
    assert ("넘어졌", "VV+EP") in units  # 넘어지/VV + 었/EP share 졌
    assert units[0] == ("아이고", "IC") and units[1][0] == "화장실"
    # every morpheme lies inside one word
    words = word_spans(FALL)
    assert all(any(ws <= s and e <= we for ws, we, _ in words) for s, e, _ in spans)


def test_units_from_chars_sum_their_characters() -> None:
    chars = np.array([1.0, 2.0, 0.0, 0.5, -4.0])
    units = units_from_chars("ab cd", chars, [(0, 2, None), (3, 5, "NNG")])
    assert units == [Unit("ab", 0, 2, 3.0, None), Unit("cd", 3, 5, -3.5, "NNG")]
    assert spans_for("ab cd", "word") == word_spans("ab cd")
    with pytest.raises(ValueError, match="granularity"):
        spans_for("ab", "sentence")


# --- Integrated Gradients ----------------------------------------------------------------------------


def test_integrated_gradients_is_the_default_for_a_transformer(tiny) -> None:
    assert isinstance(make_explainer(tiny, ExplainConfig()), IntegratedGradients)
    assert isinstance(make_explainer(tiny, ExplainConfig(method="occlusion")), Occlusion)
    assert isinstance(make_explainer(tiny, ExplainConfig(), method="occlusion"), Occlusion)
    assert Explainer(tiny, ExplainConfig()).method == "integrated_gradients"


def test_integrated_gradients_completeness(ig_predictor) -> None:
    deltas = {}
    for n in (4, 64, 128):
        ex = Explainer(ig_predictor, ExplainConfig(n_steps=n)).explain(FALL, preprocessed=True)
        assert ex.method == "integrated_gradients" and not ex.truncated
        assert ex.target == ex.label and ex.score == max(ex.scores.values())
        p_text, p_ref = _reference_proba(
            ig_predictor, FALL, LABELS.index(ex.target), ig_predictor.tokenizer.pad_token_id
        )
        assert abs(p_text - ex.scores[ex.target]) < 1e-5
        assert abs(p_ref - ex.extra["reference_score"]) < 1e-5
        total = sum(u.score for u in ex.units)
        assert abs(total - (p_text - p_ref) - ex.convergence_delta) < 2e-5
        deltas[n] = abs(ex.convergence_delta)
    assert abs(p_text - p_ref) > 0.05  # the model does react to the words
    assert deltas[4] > 1e-3  # the path is not straight: a coarse rule misses
    assert deltas[64] < deltas[4] and deltas[128] <= deltas[64] + 1e-6
    assert deltas[128] < 1e-3


def test_words_and_morphemes_add_up_to_the_same_scores(ig_predictor) -> None:
    ex = Explainer(ig_predictor, ExplainConfig(n_steps=16))
    words = ex.explain(FALL, granularity="word", preprocessed=True)
    morphs = ex.explain(FALL, granularity="morpheme", preprocessed=True)
    assert words.granularity == "word" and morphs.granularity == "morpheme"
    assert [u.text for u in words.units] == FALL.split()
    assert all(u.text == FALL[u.start : u.end] for u in words.units + morphs.units)
    assert all(u.tag is None for u in words.units) and all(u.tag for u in morphs.units)
    assert sum(u.score for u in words.units) == pytest.approx(sum(u.score for u in morphs.units), abs=1e-9)
    for w in words.units:  # each word is the sum of its morphemes
        inside = [m.score for m in morphs.units if w.start <= m.start and m.end <= w.end]
        assert w.score == pytest.approx(sum(inside), abs=1e-9)
    d = words.to_dict()
    assert d["units"][0] == {"text": "아이고", "start": 0, "end": 3, "score": words.units[0].score}
    assert morphs.to_dict()["units"][0]["tag"] == "IC"


@pytest.mark.parametrize("baseline", ["pad", "mask"])
def test_integrated_gradients_explains_the_label_asked_for(ig_predictor, baseline: str) -> None:
    ex = Explainer(ig_predictor, ExplainConfig(n_steps=64, baseline=baseline))
    tok = ig_predictor.tokenizer
    ref_id = tok.pad_token_id if baseline == "pad" else tok.mask_token_id
    by_label = {}
    for label in ("distress", "normal"):
        e = ex.explain(FALL, label=label, preprocessed=True)
        assert e.target == label
        p_text, p_ref = _reference_proba(ig_predictor, FALL, LABELS.index(label), ref_id)
        assert e.extra["reference_score"] == pytest.approx(p_ref, abs=1e-5)
        assert sum(u.score for u in e.units) == pytest.approx(p_text - p_ref, abs=2e-3)
        by_label[label] = [u.score for u in e.units]
    assert not np.allclose(by_label["distress"], by_label["normal"], atol=1e-4)


def test_an_unknown_label_is_refused_by_name(ig_predictor) -> None:
    with pytest.raises(ValueError, match="'nope'"):
        Explainer(ig_predictor, ExplainConfig(n_steps=4)).explain(FALL, label="nope")


def test_a_text_longer_than_max_length_is_truncated_and_its_tail_scores_zero(ig_predictor, sample) -> None:
    text = " ".join(sample["text"].head(12))
    tok = ig_predictor.tokenizer
    ids, chars = piece_chars(tok, text)
    kept = ig_predictor.max_length - 2
    assert len(ids) > kept + 10
    last_char = max(c for cs in chars[:kept] for c in cs)
    e = Explainer(ig_predictor, ExplainConfig(n_steps=32)).explain(text, preprocessed=True)
    assert e.truncated
    tail = [u for u in e.units if u.start > last_char]
    head = [u for u in e.units if u.end <= last_char]
    assert len(tail) >= 5 and all(u.score == 0.0 for u in tail)
    assert any(abs(u.score) > 1e-4 for u in head)
    short = Explainer(ig_predictor, ExplainConfig(n_steps=4)).explain(FALL, preprocessed=True)
    assert not short.truncated


def test_batching_the_steps_does_not_change_the_scores(ig_predictor) -> None:
    small = Explainer(ig_predictor, ExplainConfig(n_steps=32, max_tokens_per_pass=64)).explain(FALL)
    large = Explainer(ig_predictor, ExplainConfig(n_steps=32, max_tokens_per_pass=4096)).explain(FALL)
    assert [u.text for u in small.units] == [u.text for u in large.units]
    np.testing.assert_allclose([u.score for u in small.units], [u.score for u in large.units], atol=1e-5)
    assert small.convergence_delta == pytest.approx(large.convergence_delta, abs=1e-5)


def test_a_text_that_cannot_be_placed_falls_back_to_occlusion(ig_predictor, monkeypatch) -> None:
    def cannot(tokenizer, text):
        raise ExplainError("pieces cannot be placed")

    monkeypatch.setattr(explain, "piece_chars", cannot)
    ex = Explainer(ig_predictor, ExplainConfig(occlusion_budget=64))
    e = ex.explain(FALL, label="normal", preprocessed=True)
    assert ex.method == "integrated_gradients"  # the configured one
    assert e.method == "occlusion" and e.extra["fallback_reason"] == "pieces cannot be placed"
    assert e.target == "normal" and e.convergence_delta is None
    assert e.extra["forward_passes"] == len(morpheme_spans(FALL)) + 1
    # the fallback's scores are occlusion's own
    direct = Occlusion(lambda t: ig_predictor.predict_proba(t, preprocessed=True), ExplainConfig())
    chars, _ = direct.char_scores(FALL, LABELS.index("normal"))
    assert [u.score for u in e.units] == pytest.approx(
        [u.score for u in units_from_chars(FALL, chars, word_spans(FALL))]
    )


def test_other_errors_are_not_swallowed(ig_predictor, monkeypatch) -> None:
    def broken(tokenizer, text):
        raise RuntimeError("bug")

    monkeypatch.setattr(explain, "piece_chars", broken)
    with pytest.raises(RuntimeError, match="bug"):
        Explainer(ig_predictor, ExplainConfig()).explain(FALL)


# --- the linear family: exact ------------------------------------------------------------------------


def _linear(tmp: Path, texts, labels, cfg: LinearConfig, label_order=None):
    pipe = fit_pipeline(cfg, list(texts), list(labels))
    folder = save_linear_dir(
        pipe,
        tmp,
        task="danger",
        labels=label_order or LABELS,
        preprocess=PreprocessConfig(spacing="none"),
        cfg=cfg,
        max_length=64,
    )
    return pipe, Predictor.load(folder)


def _centred_logit_minus_intercept(pipe, text: str, target: str) -> float:
    x = pipe.named_steps["tfidf"].transform([text])
    lr = pipe.named_steps["logreg"]
    logits = np.atleast_1d(lr.decision_function(x)[0]).astype(np.float64)
    bias = np.asarray(lr.intercept_, dtype=np.float64)
    if logits.shape[0] == 1:  # binary: the logits are (0, d)
        logits, bias = np.array([0.0, logits[0]]), np.array([0.0, bias[0]])
    j = [str(c) for c in lr.classes_].index(target)
    return float((logits[j] - logits.mean()) - (bias[j] - bias.mean()))


@pytest.mark.parametrize(
    "cfg",
    [
        LinearConfig(),
        LinearConfig(analyzer="char", ngram_min=2),
        LinearConfig(analyzer="word", ngram_min=1, ngram_max=2),
    ],
    ids=["char_wb", "char-2-4", "word"],
)
def test_linear_contributions_are_exact(tmp_path: Path, sample, cfg: LinearConfig) -> None:
    train, test = sample.iloc[:300], sample.iloc[300:330]
    pipe, p = _linear(tmp_path / "m", train["text"], train["label"], cfg)
    ex = Explainer(p, ExplainConfig())
    assert isinstance(ex.impl, LinearContributions) and ex.method == "linear"
    for text in test["text"]:
        for label in (None, "distress"):
            e = ex.explain(text, label=label)
            assert e.method == "linear" and "fallback_reason" not in e.extra
            want = _centred_logit_minus_intercept(pipe, e.text, e.target)
            assert sum(u.score for u in e.units) == pytest.approx(want, abs=1e-9), (text, e.target)
    # the morphemes add up to the same
    e = ex.explain(FALL, granularity="morpheme")
    assert sum(u.score for u in e.units) == pytest.approx(
        _centred_logit_minus_intercept(pipe, e.text, e.target), abs=1e-9
    )


def test_linear_contributions_are_exact_for_char_unigrams_too(tmp_path: Path, sample) -> None:
    """analyzer "char" with ngram_min 1 counts the space " " as a feature: its contribution has no
    character of its own, but it must not be dropped from the sum."""
    train = sample.iloc[:300]
    pipe, p = _linear(tmp_path / "m", train["text"], train["label"], LinearConfig(analyzer="char"))
    ex = Explainer(p, ExplainConfig())
    e = ex.explain(FALL)
    assert e.method == "linear"
    want = _centred_logit_minus_intercept(pipe, e.text, e.target)
    assert sum(u.score for u in e.units) == pytest.approx(want, abs=1e-9)


SYNTH_EMERGENCY = [
    "불이야 빨리 나와",
    "불이야 연기가 나",
    "부엌에 불이야",
    "저기 불이야 도와줘",
    "불이야 살려줘요",
]
SYNTH_NORMAL = [
    "빨리 나와 밥 먹자",
    "연기가 나는 영화 봤어",
    "부엌에 밥 있어",
    "저기 가서 도와줘",
    "노래 불러줘요",
]


def test_a_keyword_word_scores_highest_and_binary_is_exact(tmp_path: Path) -> None:
    texts = SYNTH_EMERGENCY * 4 + SYNTH_NORMAL * 4
    labels = ["emergency"] * 20 + ["normal"] * 20
    pipe, p = _linear(tmp_path / "m", texts, labels, LinearConfig(), label_order=["normal", "emergency"])
    assert pipe.named_steps["logreg"].coef_.shape[0] == 1  # binary
    ex = Explainer(p, ExplainConfig())
    e = ex.explain("엄마 부엌에 불이야 빨리 와")
    assert e.label == e.target == "emergency"
    top = max(e.units, key=lambda u: u.score)
    assert top.text == "불이야" and top.score > 0
    against = ex.explain("엄마 부엌에 불이야 빨리 와", label="normal")
    assert min(against.units, key=lambda u: u.score).text == "불이야"
    for exp in (e, against):
        want = _centred_logit_minus_intercept(pipe, exp.text, exp.target)
        assert sum(u.score for u in exp.units) == pytest.approx(want, abs=1e-9)
    # the two labels' scores are opposite (binary: centred logits ±d/2)
    np.testing.assert_allclose([u.score for u in e.units], [-u.score for u in against.units], atol=1e-12)


def test_a_label_the_pipeline_never_saw_scores_zero(tmp_path: Path) -> None:
    texts = SYNTH_EMERGENCY * 4 + SYNTH_NORMAL * 4
    labels = ["emergency"] * 20 + ["normal"] * 20
    _, p = _linear(
        tmp_path / "m", texts, labels, LinearConfig(), label_order=["normal", "emergency", "distress"]
    )
    e = Explainer(p, ExplainConfig()).explain("불이야 빨리", label="distress")
    assert e.target == "distress" and e.scores["distress"] == 0.0
    assert [u.score for u in e.units] == [0.0, 0.0]


def test_char_analyzer_falls_back_on_runs_of_whitespace(tmp_path: Path) -> None:
    texts = SYNTH_EMERGENCY * 4 + SYNTH_NORMAL * 4
    labels = ["emergency"] * 20 + ["normal"] * 20
    _, p = _linear(
        tmp_path / "m", texts, labels, LinearConfig(analyzer="char"), label_order=["normal", "emergency"]
    )
    e = Explainer(p, ExplainConfig()).explain("불이야   빨리 나와", preprocessed=True)
    assert e.method == "occlusion" and "runs of whitespace" in e.extra["fallback_reason"]
    assert max(e.units, key=lambda u: u.score).text == "불이야"


# --- occlusion ---------------------------------------------------------------------------------------


class KeywordModel:
    """No torch model: p(emergency) is 0.9 when the keyword is in the text, else 0.2."""

    family = "fake"
    labels = ["normal", "emergency"]
    max_length = 64

    def __init__(self, keyword: str = "불이야") -> None:
        self.keyword = keyword
        self.batches: list[int] = []

    @staticmethod
    def preprocessor(texts):
        return [" ".join(t.split()) for t in texts]

    def predict_proba(self, texts, *, preprocessed: bool = False, batch_size: int = 64) -> np.ndarray:
        self.batches.append(len(texts))
        p = np.array([0.9 if self.keyword in t else 0.2 for t in texts])
        return np.stack([1 - p, p], axis=1)


LONG = "우리 집 부엌에서 갑자기 불이야 연기가 너무 많이 나고 눈이 따가워서 아무것도 안 보여 빨리 와줘"


def test_make_explainer_picks_occlusion_without_a_torch_model() -> None:
    assert isinstance(make_explainer(KeywordModel(), ExplainConfig()), Occlusion)

    class NoEmbeddings(KeywordModel):
        model = object()

    assert isinstance(make_explainer(NoEmbeddings(), ExplainConfig()), Occlusion)
    assert Explainer(KeywordModel(), ExplainConfig()).method == "occlusion"


def test_occlusion_leave_one_out_finds_the_keyword() -> None:
    model = KeywordModel()
    e = Explainer(model, ExplainConfig(occlusion_budget=64)).explain(FALL.replace("아이고", "불이야"))
    n = len(morpheme_spans(e.text))
    assert e.method == "occlusion" and e.target == "emergency" and e.score == pytest.approx(0.9)
    assert e.extra["forward_passes"] == n + 1 and model.batches[-1] == n + 1
    assert e.units[0].text == "불이야" and e.units[0].score == pytest.approx(
        0.7 * len(morpheme_spans("불이야"))
    )
    assert all(u.score == 0.0 for u in e.units[1:])
    # morpheme by morpheme: each morpheme of the keyword dropped alone breaks it
    m = Explainer(model, ExplainConfig(occlusion_budget=64)).explain(e.text, granularity="morpheme")
    assert all(u.score == pytest.approx(0.7) for u in m.units if u.end <= 3)
    assert all(u.score == 0.0 for u in m.units if u.start >= 4)


def test_occlusion_with_random_masks_is_seeded() -> None:
    n = len(morpheme_spans(LONG))
    assert n > 20
    cfg = ExplainConfig(occlusion_budget=12, seed=0)
    a = Explainer(KeywordModel(), cfg).explain(LONG)
    b = Explainer(KeywordModel(), cfg).explain(LONG)
    c = Explainer(KeywordModel(), ExplainConfig(occlusion_budget=12, seed=1)).explain(LONG)
    assert a.extra["forward_passes"] == 12
    assert [u.score for u in a.units] == [u.score for u in b.units]
    assert [u.score for u in a.units] != [u.score for u in c.units]
    # with a larger budget the keyword still stands out
    big = Explainer(KeywordModel(), ExplainConfig(occlusion_budget=n, seed=0)).explain(LONG)
    assert big.extra["forward_passes"] == n
    assert max(big.units, key=lambda u: u.score).text == "불이야"


def test_occlusion_of_an_empty_text_scores_nothing() -> None:
    chars, info = Occlusion(KeywordModel().predict_proba, ExplainConfig()).char_scores("", 1)
    assert chars.shape == (0,) and info == {}


def test_explanation_shape() -> None:
    e = Explanation(
        "가 나", "normal", 0.6, {"normal": 0.6}, "normal", "linear", "word", [Unit("가", 0, 1, 0.1)]
    )
    d = e.to_dict()
    assert d["units"] == [{"text": "가", "start": 0, "end": 1, "score": 0.1}]
    assert d["truncated"] is False and d["convergence_delta"] is None and d["extra"] == {}
