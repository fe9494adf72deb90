"""Many classes, measured (issue #16): a generated task of 359 counselling categories (seed 001 had 359
wellness categories, most with a handful of examples) through `heara run` on the tiny profile, then its
champion served and asked for its top-k labels over real HTTP.

What it checks is what stays readable at hundreds of classes: the data report (rows per class), the
metrics (macro-F1 the headline, weighted-F1, top-k accuracy), the most-confused-pairs plot instead of a
359 x 359 grid (the full matrix beside it as CSV), the gate's per-class guard leaving out the classes
with too few test rows (and saying so), and `/classify` with `top_k`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from training.bench.serve import start_service, stop, wait_ready
from training.cli import app

TOPICS = (
    "가족", "친구", "직장", "학교", "건강", "수면", "식사", "돈", "연애", "결혼",
    "이웃", "반려동물", "운동", "날씨", "여행", "이사", "시험", "병원", "취업", "노후",
)  # fmt: skip
FEELINGS = (
    "걱정", "불안", "슬픔", "분노", "외로움", "후회", "기쁨", "감사", "피로",
    "무기력", "두려움", "질투", "수치심", "그리움", "답답함", "혼란", "기대", "실망",
)  # fmt: skip
OPENERS = ("요즘", "오늘은", "어제부터", "며칠째", "솔직히", "사실", "그냥", "자꾸", "밤마다", "아침부터")


def _has_final(word: str) -> bool:
    """The last syllable ends in a consonant (받침): it picks the particle (이/가, 을/를, 은/는)."""
    return (ord(word[-1]) - 0xAC00) % 28 != 0


def _particle(word: str, with_final: str, without: str) -> str:
    return word + (with_final if _has_final(word) else without)


def many_class_csv(path: Path, n_classes: int = 359, rows: tuple[int, int] = (12, 15), seed: int = 0) -> Path:
    """A Korean CSV (columns 발화, 상담주제) of `n_classes` categories "<topic>-<feeling>" ("/" would
    read as a multi-label cell) with `rows` (inclusive range) utterances each, from templates: each text
    names its topic and its feeling, so the classes are learnable from a dozen rows, as seed 001's were
    from a handful."""
    if n_classes > len(TOPICS) * len(FEELINGS):
        raise ValueError(f"at most {len(TOPICS) * len(FEELINGS)} categories")
    rng = random.Random(seed)
    out = []
    for c in range(n_classes):
        topic, feeling = TOPICS[c // len(FEELINGS)], FEELINGS[c % len(FEELINGS)]
        topic_frames = (f"{topic} 문제로", f"{topic} 때문에", f"{topic} 일로", f"{topic} 생각만 하면")
        feeling_frames = (
            f"{_particle(feeling, '이', '가')} 커요",
            f"{_particle(feeling, '을', '를')} 느껴요",
            f"{feeling}뿐이에요",
            f"{_particle(feeling, '이', '가')} 밀려와요",
            f"{feeling} 때문에 힘들어요",
        )
        combos = [(o, t, f) for o in OPENERS for t in topic_frames for f in feeling_frames]
        for o, t, f in rng.sample(combos, rng.randint(*rows)):
            out.append({"발화": f"{o} {t} {f}", "상담주제": f"{topic}-{feeling}"})
    pd.DataFrame(out).sample(frac=1, random_state=seed).to_csv(path, index=False)
    return path


def test_generator_writes_359_categories_of_12_to_15_distinct_rows(tmp_path: Path) -> None:
    df = pd.read_csv(many_class_csv(tmp_path / "wellness.csv"))
    counts = df["상담주제"].value_counts()
    assert len(counts) == 359 and counts.between(12, 15).all()
    assert df["발화"].is_unique and "가족-걱정" in counts and "노후-기대" in counts
    assert "걱정이 커요" in " ".join(df["발화"]) and "기대가 커요" in " ".join(df["발화"])  # particles agree


# Small and affordable on 2 cores: short training, no Kiwi spacing, no augmentation, no explanation
# faithfulness pass (IG on 300 texts), a gate that does not time a loaded CI machine.
QUICK = [
    "train.epochs=6",
    "train.batch_size=32",
    "preprocess.spacing=none",
    "augment.enabled=false",
    "explain.faithfulness=false",
    "evaluate.latency_samples=10",
    "promote.bootstrap_samples=200",
    "promote.latency_budget_ms=1000",
]


@pytest.mark.slow  # about 90 s on 2 busy cores (the tiny model, the linear fallback, one server start)
def test_359_classes_through_the_whole_loop_and_top_k_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HEARA_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    src = many_class_csv(tmp_path / "wellness.csv")
    args = [
        "run",
        "--source",
        str(src),
        "--text-col",
        "발화",
        "--label-col",
        "상담주제",
        "--task",
        "wellness",
    ]
    for pair in QUICK:
        args += ["--set", pair]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    data_dir = home / "datasets" / "wellness"

    # --- the data report: every category and its rows ---------------------------------------------
    report = json.loads((data_dir / "report.json").read_text(encoding="utf-8"))
    assert len(json.loads((data_dir / "dataset.json").read_text(encoding="utf-8"))["labels"]) == 359
    text = json.dumps(report, ensure_ascii=False)
    assert "가족-걱정" in text and "노후-기대" in text
    test = pd.read_parquet(data_dir / "test.parquet")
    assert test["label"].nunique() == 359  # at least one test row per category (12+ rows each)

    # --- the metrics: macro-F1 the headline, weighted-F1, top-k accuracy ----------------------------
    eval_dir = home / "models" / "wellness" / "eval"
    metrics = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
    for key in ("test_macro_f1", "test_weighted_f1", "test_top3_accuracy", "test_top5_accuracy"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["test_accuracy"] <= metrics["test_top3_accuracy"] <= metrics["test_top5_accuracy"]
    per_class = pd.read_csv(eval_dir / "per_class.csv", keep_default_na=False)
    assert len(per_class) == 359 and per_class["support"].sum() == len(test)
    assert (per_class["support"] >= 1).all()

    # --- the confusion plot: the most confused pairs, the full matrix as CSV ------------------------
    from PIL import Image

    with Image.open(eval_dir / "confusion_matrix.png") as png:
        assert png.size[0] < 1500 and png.size[1] < 1200  # bars, not a 359 x 359 grid (tens of thousands px)
    assert pd.read_csv(eval_dir / "confusion_matrix.csv", index_col="true").shape == (359, 359)
    pairs = pd.read_csv(eval_dir / "confused_pairs.csv")
    assert list(pairs.columns) == ["true", "predicted", "count", "share"]
    assert pairs["count"].is_monotonic_decreasing

    # --- the gate: its per-class guard leaves out the categories with too few test rows -------------
    champion = summary["champion"]
    assert champion == (summary["fallback"] or summary)["version"], result.output
    other = summary["version"] if summary["fallback"] else None  # the tiny model, refused at first
    if other is not None:  # offered again, now against a champion: the per-class guard has work to do
        args = ["promote", "--version", str(other), "--data-dir", str(data_dir)]
        for pair in QUICK:
            args += ["--set", pair]
        promoted = CliRunner().invoke(app, args)
        assert promoted.exit_code == 0, promoted.output
        decision = json.loads((home / "models" / "wellness" / "promote" / "decision.json").read_text())
        assert decision["champion_before"] == champion and "class_drop" in decision["checks"]
        ignored = decision["metrics"]["class_guard_ignored"]
        assert ignored + decision["metrics"]["class_guard_classes"] == 359 and ignored > 300
        assert "test rows" in decision["reason"] and "per-class guard" in decision["reason"]

    # --- the champion over real HTTP: top-k labels ---------------------------------------------------
    from training.config import load_params
    from training.data.dataset_info import apply_dataset_info, read_dataset_info

    params = apply_dataset_info(load_params(), read_dataset_info(data_dir), note=False)
    params_file = params.save(tmp_path / "serve-params.yaml")
    server = start_service(None, home, {"HEARA_PARAMS": str(params_file)})
    try:
        wait_ready(server, 240)
        texts = ["요즘 가족 문제로 걱정이 커요", "밤마다 노후 생각만 하면 기대가 밀려와요"]
        r = httpx.post(f"{server.url}/classify", json={"texts": texts, "top_k": 5}, timeout=30)
        assert r.status_code == 200, r.text
        answers = r.json()["predictions"]
        for p in answers:
            assert len(p["scores"]) == 359 and len(p["top"]) == 5
            assert [t["score"] for t in p["top"]] == sorted((t["score"] for t in p["top"]), reverse=True)
            assert p["top"][0]["label"] == p["label"]
            assert p["model_version"] == str(champion)
        for p, want in zip(answers, ["가족-걱정", "노후-기대"]):
            assert want in [t["label"] for t in p["top"]], p["top"]
        too_many = httpx.post(f"{server.url}/classify", json={"texts": texts, "top_k": 11}, timeout=30)
        assert too_many.status_code == 400 and too_many.json()["detail"][0]["loc"] == ["top_k"]
    finally:
        stop(server)
