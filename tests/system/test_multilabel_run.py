"""A multi-label file end to end: the project's sample (data/sample/feelings_multilabel.csv, 8 labels,
mostly 2-3 per row) through `heara run --multilabel --label-sep ,`, both families scored with micro- and
macro-F1, and the champion served by a real `bentoml serve` that answers with several labels."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from training.bench.serve import start_service, stop, wait_ready
from training.cli import app
from training.config import Params
from training.paths import StatePaths

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "feelings_multilabel.csv"
QUICK = [
    "train.epochs=12",
    "train.batch_size=16",
    "preprocess.spacing=none",
    "augment.enabled=false",
    "promote.latency_budget_ms=1000",
    "promote.bootstrap_samples=200",
    "evaluate.latency_samples=10",
    "explain.faithfulness_max_texts=20",
]
# Utterances written for this test (not in the sample): each says two feelings.
TWO_FEELINGS = [
    "허리가 너무 아파서 밤새 한숨도 못 잤어",
    "손주가 찾아와서 정말 고맙고 기뻤어",
    "아무도 연락이 없어서 외롭고 서러워",
]


def _invoke(args: list[str]) -> dict:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_multi_label_file_trains_both_families_and_is_served_with_several_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HEARA_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = ["run", "--source", str(SAMPLE), "--label-col", "labels", "--multilabel", "--label-sep", ","]
    args += ["--task", "feelings"]
    for pair in QUICK:
        args += ["--set", pair]
    summary = _invoke(args)

    data_dir = home / "datasets" / "feelings"
    task = StatePaths(home).task_dir("feelings")
    info = json.loads((data_dir / "dataset.json").read_text(encoding="utf-8"))
    assert info["task_type"] == "multilabel" and len(info["labels"]) == 8
    report = json.loads((data_dir / "report.json").read_text(encoding="utf-8"))
    assert report["task_type"] == "multilabel"
    assert report["validate"]["labels_per_row"]["mean"] > 1.5
    assert all(n >= 1 for n in report["split"]["test"]["per_class"].values())  # every label is tested
    assert report["accounting"]["balanced"]

    # Both families on the same frozen split, each with micro- and macro-F1 (and samples-F1).
    figures = {summary["family"]: summary}
    if summary["fallback"]:  # below the baseline with no champion: the run trained `linear` itself
        figures["linear"] = summary["fallback"]
    else:
        for command in ("train", "evaluate"):
            CliRunner().invoke(app, [command, "--data-dir", str(data_dir), "--set", "model.family=linear"])
        metrics = json.loads((task / "eval" / "metrics.json").read_text())
        figures["linear"] = metrics
    for family, fig in figures.items():
        assert 0 < fig["test_macro_f1"] <= 1 and 0 < fig["test_micro_f1"] <= 1, family
        print(f"{family}: macro-F1 {fig['test_macro_f1']:.4f} micro-F1 {fig['test_micro_f1']:.4f}")
    assert figures["linear"]["test_micro_f1"] > 0.6  # the sample is learnable

    # The champion over real HTTP (the candidate is the champion the run promoted last).
    assert summary["champion"] is not None
    candidate = json.loads((task / "candidate.json").read_text(encoding="utf-8"))
    model_dir = Path(candidate["model_dir"])
    meta = json.loads((model_dir / "heara.json").read_text(encoding="utf-8"))
    tree = Params().to_dict() | {"task": "feelings", "labels": info["labels"], "task_type": "multilabel"}
    tree["augment"]["multipliers"] = {}
    tree["serve"]["danger_labels"] = ["통증"]
    params_file = Params.model_validate(tree).save(tmp_path / "params.yaml")
    server = start_service(model_dir, tmp_path / "serve-home", {"HEARA_PARAMS": str(params_file)})
    try:
        wait_ready(server, 240)
        r = httpx.post(f"{server.url}/classify", json={"texts": TWO_FEELINGS}, timeout=30)
        assert r.status_code == 200, r.text
        predictions = r.json()["predictions"]
    finally:
        stop(server)
    thresholds = dict(zip(meta["labels"], meta["thresholds"]))
    for text, p in zip(TWO_FEELINGS, predictions):
        print(text, "->", [(x["label"], round(x["score"], 3)) for x in p["labels"]], "danger", p["danger"])
    for p in predictions:
        names = [x["label"] for x in p["labels"]]
        assert all(x["score"] >= thresholds[x["label"]] for x in p["labels"])
        assert [x["score"] for x in p["labels"]] == sorted((x["score"] for x in p["labels"]), reverse=True)
        assert p["danger"] == ("통증" in names)
        assert not abs(sum(p["scores"].values()) - 1) < 1e-6 or len(names) <= 1  # sigmoids, not a softmax
    assert max(len(p["labels"]) for p in predictions) >= 2, predictions
    assert "통증" in [x["label"] for x in predictions[0]["labels"]] and predictions[0]["danger"]
