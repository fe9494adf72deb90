"""How far to trust the explanations (training/evaluation/explanations.py): faithfulness against a random
ranking, the HTML page, the test split's report on the tiny model, and the gate's faithfulness part
(training/registry/gate.py: `decide(..., explanations=...)`, `promote.min_comprehensiveness`)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.config import ExplainConfig, PromoteConfig
from training.evaluation.explanations import (
    AGAINST,
    TOWARD,
    explain_test_split,
    faithfulness,
    highlight,
    sample_indices,
    write_page,
)
from training.model.explain import Explainer, Explanation, Unit, word_spans
from training.model.predictor import Predictor
from training.registry.gate import ModelScore, decide

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"
LABELS = ["normal", "emergency"]
KEYWORD = "불이야"
FILLER = "오늘 우리 집 부엌 에서 갑자기 연기 가 많이 나고 눈 이 따가워"
KS = (10, 20, 50)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def keyword_proba(texts) -> np.ndarray:
    """p(emergency) is 0.9 with the keyword in the text, 0.1 without: only the keyword matters."""
    p = np.array([0.9 if KEYWORD in t else 0.1 for t in texts])
    return np.stack([1 - p, p], axis=1)


def explanation(text: str, scores: list[float], target: str = "emergency") -> Explanation:
    probs = keyword_proba([text])[0]
    units = [Unit(text[s:e], s, e, sc) for (s, e, _), sc in zip(word_spans(text), scores, strict=True)]
    top = int(probs.argmax())
    return Explanation(
        text=text,
        label=LABELS[top],
        score=float(probs[top]),
        scores=dict(zip(LABELS, probs.tolist())),
        target=target,
        method="test",
        granularity="word",
        units=units,
    )


def keyword_texts(n: int = 20, seed: int = 0) -> list[str]:
    """Texts of 10 words with the keyword at a random place."""
    rng = np.random.default_rng(seed)
    words = FILLER.split()
    out = []
    for _ in range(n):
        chosen = rng.choice(words, size=9, replace=False).tolist()
        chosen.insert(int(rng.integers(0, 10)), KEYWORD)
        out.append(" ".join(chosen))
    return out


# --- faithfulness ------------------------------------------------------------------------------------


def test_an_explanation_that_ranks_the_keyword_first_beats_a_random_ranking() -> None:
    texts = keyword_texts()
    exps = [
        explanation(t, [1.0 if w == KEYWORD else 0.01 * i for i, w in enumerate(t.split())]) for t in texts
    ]
    out = faithfulness(exps, keyword_proba, LABELS, KS, seed=0)
    for k in KS:
        for kind in ("comprehensiveness", "sufficiency"):
            assert f"explain_{kind}_{k}" in out and f"explain_{kind}_{k}_random" in out
        # removing the keyword (ranked first) always costs 0.8; keeping it alone costs nothing
        assert out[f"explain_comprehensiveness_{k}"] == pytest.approx(0.8)
        assert out[f"explain_sufficiency_{k}"] == pytest.approx(0.0)
        assert out[f"explain_comprehensiveness_{k}"] > out[f"explain_comprehensiveness_{k}_random"]
        assert out[f"explain_sufficiency_{k}"] < out[f"explain_sufficiency_{k}_random"]
    # random: the keyword is among the top m words of 10 about m / 10 of the time
    assert out["explain_comprehensiveness_10_random"] < out["explain_comprehensiveness_50_random"]
    for kind in ("comprehensiveness", "sufficiency"):
        for name in ("", "_random"):
            want = np.mean([out[f"explain_{kind}_{k}{name}"] for k in KS])
            assert out[f"explain_aopc_{kind}{name}"] == pytest.approx(want)
    assert out["explain_texts"] == 20.0
    assert set(out) == {
        *(
            f"explain_{kind}_{k}{name}"
            for kind in ("comprehensiveness", "sufficiency")
            for k in KS
            for name in ("", "_random")
        ),
        *(
            f"explain_aopc_{kind}{name}"
            for kind in ("comprehensiveness", "sufficiency")
            for name in ("", "_random")
        ),
        "explain_texts",
    }


def test_an_explanation_that_ranks_the_keyword_last_does_worse_than_random() -> None:
    texts = keyword_texts(200, seed=5)
    exps = [explanation(t, [-1.0 if w == KEYWORD else 0.5 for w in t.split()]) for t in texts]
    out = faithfulness(exps, keyword_proba, LABELS, KS, seed=0)
    for k in KS:
        assert out[f"explain_comprehensiveness_{k}"] == pytest.approx(0.0)  # the keyword is never removed
        assert out[f"explain_comprehensiveness_{k}"] < out[f"explain_comprehensiveness_{k}_random"]
        assert out[f"explain_sufficiency_{k}"] == pytest.approx(0.8)  # nor kept
        # a random top k % of 10 words holds the keyword k % of the time: 0.8 * k / 100 on average
        assert out[f"explain_comprehensiveness_{k}_random"] == pytest.approx(0.8 * k / 100, abs=0.08)
        assert out[f"explain_sufficiency_{k}_random"] == pytest.approx(0.8 - 0.8 * k / 100, abs=0.08)
    assert out["explain_aopc_comprehensiveness"] < out["explain_aopc_comprehensiveness_random"]
    assert out["explain_aopc_sufficiency"] > out["explain_aopc_sufficiency_random"]


def test_faithfulness_is_seeded_and_skips_empty_explanations() -> None:
    texts = keyword_texts()
    exps = [explanation(t, [1.0 if w == KEYWORD else 0.0 for w in t.split()]) for t in texts]
    a = faithfulness(exps, keyword_proba, LABELS, KS, seed=3)
    assert a == faithfulness(exps, keyword_proba, LABELS, KS, seed=3)
    b = faithfulness(exps, keyword_proba, LABELS, KS, seed=4)
    assert any(a[k] != b[k] for k in a if k.endswith("_random"))
    assert faithfulness([], keyword_proba, LABELS, KS) == {"explain_texts": 0.0}
    empty = explanation("", [])
    assert faithfulness([empty], keyword_proba, LABELS, KS) == {"explain_texts": 0.0}
    assert faithfulness([empty, *exps], keyword_proba, LABELS, KS, seed=3) == a


def test_faithfulness_measures_the_explained_label() -> None:
    """Explaining "normal": removing the keyword raises p(normal), comprehensiveness is negative."""
    texts = keyword_texts(5)
    exps = [explanation(t, [1.0 if w == KEYWORD else 0.0 for w in t.split()], target="normal") for t in texts]
    out = faithfulness(exps, keyword_proba, LABELS, (20,))
    assert out["explain_comprehensiveness_20"] == pytest.approx(-0.8)


def test_sample_indices() -> None:
    assert sample_indices(5, 10, 0).tolist() == [0, 1, 2, 3, 4]
    assert sample_indices(5, 5, 0).tolist() == [0, 1, 2, 3, 4]
    idx = sample_indices(100, 10, 0)
    assert len(idx) == 10 and len(set(idx.tolist())) == 10 and idx.tolist() == sorted(idx.tolist())
    assert all(0 <= i < 100 for i in idx)
    assert idx.tolist() == sample_indices(100, 10, 0).tolist()
    assert idx.tolist() != sample_indices(100, 10, 1).tolist()
    assert sample_indices(0, 10, 0).tolist() == []


# --- the page ----------------------------------------------------------------------------------------

SPAN = re.compile(
    r'<span class="u" title="([^"]+)" style="background:rgba\((\d+),(\d+),(\d+),([\d.]+)\)">(.*?)</span>'
)


def test_highlight_escapes_and_colours_by_score() -> None:
    text = "엄마 <script>alert(1)</script> 불이야 도와줘"
    words = text.split()
    e = explanation(text, [0.1, -0.2, 0.5, -0.05])
    out = highlight(e)
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    spans = SPAN.findall(out)
    assert [html_text for *_, html_text in spans] == [
        "엄마",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "불이야",
        "도와줘",
    ]
    assert len(spans) == len(words)
    alphas = [float(a) for *_, a, _ in spans]
    assert alphas[2] == max(alphas) == 0.85  # the largest |score|
    assert alphas[1] > alphas[0] > alphas[3]  # |score| order
    colours = [tuple(int(c) for c in (r, g, b)) for _, r, g, b, _, _ in spans]
    assert colours == [TOWARD, AGAINST, TOWARD, AGAINST]
    assert [t for t, *_ in spans] == ["+0.1000", "-0.2000", "+0.5000", "-0.0500"]
    # the spaces between the units are kept
    assert re.sub(r"<[^>]+>", "", out).replace("&lt;", "<").replace("&gt;", ">") == text


def test_highlight_keeps_text_outside_units_and_handles_zero_scores() -> None:
    text = "  가 & 나  "
    e = Explanation(
        text,
        "normal",
        0.5,
        {"normal": 0.5},
        "normal",
        "test",
        "word",
        [Unit("가", 2, 3, 0.0), Unit("나", 6, 7, 0.0)],
    )
    out = highlight(e)
    assert out.startswith("  <span") and out.endswith("</span>  ") and " &amp; " in out
    assert [float(a) for *_, a, _ in SPAN.findall(out)] == [0.0, 0.0]  # no division by zero
    assert highlight(Explanation("", "normal", 0.5, {}, "normal", "test", "word", [])) == ""


def test_write_page_has_the_sections_and_figures(tmp_path: Path) -> None:
    e = explanation("엄마 불이야 <b>", [0.1, 0.9, -0.3])
    page = write_page(
        tmp_path / "deep" / "explanations.html",
        title="Heara <test>",
        sections=[("Misclassified test texts", [(e, "normal")]), ("Danger predictions (sample)", [])],
        metrics={"explain_comprehensiveness_20": 0.3125, "explain_texts": 4.0},
    )
    assert page == tmp_path / "deep" / "explanations.html" and page.is_file()
    html = page.read_text(encoding="utf-8")
    assert "<title>Heara &lt;test&gt;</title>" in html and "<h1>Heara &lt;test&gt;</h1>" in html
    assert "<h2>Misclassified test texts (1)</h2>" in html
    assert "<h2>Danger predictions (sample) (0)</h2><p>none</p>" in html
    assert "<h2>Faithfulness (frozen test split)</h2>" in html
    assert "<td>comprehensiveness_20</td><td>0.3125</td>" in html and "<td>texts</td><td>4.0000</td>" in html
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "<td>normal</td><td>emergency (0.90)</td><td>test</td>" in html


# --- the test split on the tiny model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_explainer(tiny_model_folder: Path) -> Explainer:
    return Explainer(Predictor.load(tiny_model_folder, device="cpu"), ExplainConfig(n_steps=8))


def test_explain_test_split_writes_the_page_and_measures(tiny_explainer: Explainer, tmp_path: Path) -> None:
    texts = pd.read_csv(SAMPLE)["text"].head(6).tolist()
    y_true = ["normal"] * 6
    y_pred = ["normal", "emergency", "normal", "distress", "emergency", "normal"]
    metrics, page = explain_test_split(
        tiny_explainer,
        texts,
        y_true,
        y_pred,
        danger_labels=("emergency", "distress"),
        out_dir=tmp_path / "report",
        ks=(20, 50),
        max_texts=50,
        examples=2,
        seed=0,
    )
    assert page == tmp_path / "report" / "explanations.html" and page.is_file()
    assert metrics["explain_texts"] == 6.0
    for key in (
        "explain_comprehensiveness_20",
        "explain_sufficiency_50_random",
        "explain_aopc_comprehensiveness",
    ):
        assert np.isfinite(metrics[key])
    html = page.read_text(encoding="utf-8")
    assert "<h2>Misclassified test texts (2)</h2>" in html  # 3 wrong, `examples` 2
    assert "<h2>Danger predictions (sample) (2)</h2>" in html
    assert html.count("<td>integrated_gradients</td>") == 4
    assert "<td>comprehensiveness_20</td>" in html

    fewer, _ = explain_test_split(
        tiny_explainer,
        texts,
        y_true,
        y_pred,
        danger_labels=("emergency",),
        out_dir=tmp_path / "fewer",
        ks=(20,),
        max_texts=4,
        examples=1,
        seed=0,
    )
    assert fewer["explain_texts"] == 4.0 and "explain_comprehensiveness_50" not in fewer

    none, page = explain_test_split(
        tiny_explainer,
        texts,
        y_true,
        y_true,
        danger_labels=("emergency",),
        out_dir=tmp_path / "none",
        ks=(20,),
        max_texts=4,
        examples=2,
        seed=0,
        measure=False,
    )
    assert none == {}
    html = page.read_text(encoding="utf-8")
    assert "<h2>Misclassified test texts (0)</h2><p>none</p>" in html
    assert "<h2>Danger predictions (sample) (0)</h2><p>none</p>" in html


# --- the gate ----------------------------------------------------------------------------------------

Y = np.array(["normal", "emergency", "confusion", "distress"] * 5)
FAITH = {"explain_comprehensiveness_20": 0.3, "explain_comprehensiveness_20_random": 0.1}


def challenger(version: int = 2, f1: float = 0.8) -> ModelScore:
    return ModelScore(
        version, f1, dict.fromkeys(["normal", "emergency", "confusion", "distress"], f1), 10.0, Y.copy()
    )


def test_the_gate_shows_faithfulness_without_blocking_by_default() -> None:
    cfg = PromoteConfig()
    assert cfg.min_comprehensiveness is None
    d = decide(cfg, challenger(), None, Y, explanations=FAITH)
    assert d.promote and "faithful" not in d.checks
    assert d.metrics["challenger_comprehensiveness_20"] == 0.3
    assert d.metrics["challenger_comprehensiveness_20_random"] == 0.1
    assert "explanations: comprehensiveness@20% 0.300 vs random 0.100 (not blocking)" in d.reason
    plain = decide(cfg, challenger(), None, Y)
    assert "faithful" not in plain.checks and "explanations" not in plain.reason
    assert "challenger_comprehensiveness_20" not in plain.metrics
    half = decide(cfg, challenger(), None, Y, explanations={"explain_comprehensiveness_20": 0.3})
    assert "explanations" not in half.reason and half.promote


def test_the_gate_refuses_an_unfaithful_challenger_when_asked() -> None:
    d = decide(PromoteConfig(min_comprehensiveness=0.3), challenger(), None, Y, explanations=FAITH)
    assert d.checks["faithful"] is False and not d.promote
    assert d.reason.startswith("refused: faithful failed;")
    assert "(margin < 0.3)" in d.reason
    ok = decide(PromoteConfig(min_comprehensiveness=0.1), challenger(), None, Y, explanations=FAITH)
    assert ok.checks["faithful"] is True and ok.promote and "(margin >= 0.1)" in ok.reason
    # a margin of exactly the minimum passes (0.3 - 0.1 is 0.19999999999999998 in floats)
    edge = decide(PromoteConfig(min_comprehensiveness=0.2), challenger(), None, Y, explanations=FAITH)
    assert edge.checks["faithful"] is True


def test_the_gate_refuses_unmeasured_explanations_when_a_minimum_is_set() -> None:
    cfg = PromoteConfig(min_comprehensiveness=0.1)
    for explanations in (None, {}, {"explain_comprehensiveness_20": 0.9}):
        d = decide(cfg, challenger(), None, Y, explanations=explanations)
        assert d.checks["faithful"] is False and not d.promote
        assert "explanations' faithfulness not measured" in d.reason
    forced = decide(cfg, challenger(), None, Y, explanations=None, force=True)
    assert forced.promote and forced.forced and forced.reason.startswith("FORCED")


def test_the_gate_checks_faithfulness_against_a_champion_too() -> None:
    def bootstrap(y, a, b, n, level, seed):
        return 0.1, 0.05, 0.15

    champion = challenger(1, 0.7)
    cfg = PromoteConfig(min_comprehensiveness=0.3)
    d = decide(cfg, challenger(), champion, Y, bootstrap=bootstrap, explanations=FAITH)
    assert d.checks == {
        "min_delta": True,
        "ci_above_zero": True,
        "class_drop": True,
        "faithful": False,
        "latency": True,
    }
    assert not d.promote and d.reason.startswith("refused: faithful failed;")
    assert d.metrics["challenger_comprehensiveness_20"] == 0.3
    good = {"explain_comprehensiveness_20": 0.5, "explain_comprehensiveness_20_random": 0.1}
    assert decide(cfg, challenger(), champion, Y, bootstrap=bootstrap, explanations=good).promote
