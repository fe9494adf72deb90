"""The review steps on a tiny model with a monitoring reference: picking from a logged window, the export
the ingest step reads, the production holdout's report; then `heara review` end to end on a SQLite
prediction log, and the heara_monitor DAG's review task body."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import test_monitor
from typer.testing import CliRunner

from serving.predlog import PredictionLog, make_records
from serving.review_queue import ReviewQueue
from training.config import Params
from training.data.readers import read_source
from training.model.predictor import Predictor
from training.steps.review import NOT_ENOUGH, export_step, holdout_report, select_step, write_holdout

model, sample = test_monitor.model, test_monitor.sample  # fixtures: the tiny model with its reference
REVIEW = {"review": {"budget": 20, "holdout_min_rows": 10, "holdout_bootstrap": 200}}


def logged_window(folder: Path, texts: list[str], db: str, danger_every: int = 10) -> list[dict]:
    from training.registry.champion import from_dir

    predictor = Predictor.load(folder, device="cpu")
    version = from_dir(folder).version_label  # what the service logs and `heara review select` reads
    flags = [i % danger_every == 0 for i in range(len(texts))]
    with PredictionLog(db) as log:
        log.log(
            make_records(
                "a" * 16, texts, predictor.predict(texts), "heara-danger", version, 3.0, danger_flags=flags
            )
        )
        assert log.flush(10)
        return log.window(500)


def test_select_picks_strata_with_novelty_and_leaves_out_what_is_queued(model, sample, tmp_path):
    rows = pd.DataFrame(
        logged_window(model, sample["text"].iloc[120:220].tolist(), f"sqlite:///{tmp_path}/p.db")
    )
    params = Params().override(REVIEW)
    result = select_step(params, rows, model_dir=model)
    picks, summary = result["picks"], result["summary"]
    assert summary["novelty"] and summary["window"] == 100
    overlap = sum(1 for p in picks if p["stratum"] == "random" and p["danger"])  # drawn first, from all
    # budget 20: random 0.2, novel 0.2, uncertain the rest (danger_policy all: every flagged row, beyond it)
    assert summary["picked"] == {"danger": 10 - overlap, "uncertain": 12, "novel": 4, "random": 4}
    assert all(p["danger"] for p in picks if p["stratum"] == "danger")
    assert {"id", "masked_text", "scores", "stratum"} <= set(picks[0])
    again = select_step(params, rows, model_dir=model)
    assert [p["id"] for p in again["picks"]] == [p["id"] for p in picks]  # the same window, the same picks
    taken = {p["id"] for p in picks}
    later = select_step(params, rows, model_dir=model, exclude_ids=taken)
    assert not taken & {p["id"] for p in later["picks"]}
    assert select_step(params, rows.iloc[:0])["picks"] == []


def test_novelty_reads_the_projections_the_service_logged(model, sample, tmp_path):
    """A window the service logged with monitoring features: the novel stratum's scores come from the
    logged projections (no model loaded), the same as from projections computed again."""
    from training.evaluation.monitoring import Logged, Reference
    from training.evaluation.review import novelty

    rows = test_monitor.logged_window(model, sample["text"].iloc[120:220].tolist(), tmp_path / "p.db")
    assert rows["projection"].notna().all()
    ref, texts = Reference.load(model), rows["masked_text"].tolist()
    logged = Logged.from_rows(rows["projection"].tolist(), None, len(rows), len(ref.components))
    from_log = novelty(None, ref, texts, logged=logged)
    computed = novelty(Predictor.load(model, device="cpu"), ref, texts)
    assert abs(from_log - computed).max() < 0.05
    result = select_step(Params().override(REVIEW), rows, model_dir=model)
    assert result["summary"]["novelty"] and result["summary"]["picked"]["novel"] == 4


def reviewed(n: int, status: str = "labeled", stratum: str = "uncertain") -> list[dict]:
    return [
        {
            "id": i + 1,
            "prediction_id": 100 + i,
            "masked_text": f"전화번호 <PHONE> 알려 주세요 {i}",
            "raw_text": f"전화번호 010-1234-{i:04d} 알려 주세요 {i}",
            "label": "normal" if i % 2 else "emergency",
            "suggested_label": "normal",
            "status": status,
            "reviewer": "kim",
            "ts_reviewed": f"2026-11-28T09:{i:02d}:00+00:00",
            "stratum": stratum,
            "model_version": "1",
        }
        for i in range(n)
    ]


def test_export_writes_what_ingest_reads_masked_unless_raw_is_stored(tmp_path):
    params = Params()
    items = reviewed(3) + reviewed(2, "skipped") + reviewed(1, "unsure") + reviewed(2, stratum="random")
    result = export_step(params, items, out_dir=tmp_path, export_id="20261128T090000Z-abc123")
    assert result["rows"] == 3 and result["ids"] == [1, 2, 3]
    path = Path(result["path"])
    assert path.name == "review-20261128T090000Z-abc123.csv" and not list(tmp_path.glob(".*"))
    frame = pd.read_csv(path)
    assert list(frame.columns) == [
        "id",
        "text",
        "label",
        "reviewer",
        "reviewed_at",
        "stratum",
        "model_version",
    ]
    assert frame["id"].tolist() == ["review-100", "review-101", "review-102"]
    assert not frame["text"].str.contains("010-1234").any()  # masked
    read = read_source(path, id_col="id")  # what the ingest step does with an incoming file
    assert len(read.rows) == 3 and read.rejects.empty
    raw = export_step(params, items, out_dir=tmp_path / "raw", store_raw=True)
    assert pd.read_csv(raw["path"])["text"].str.contains("010-1234").all()
    assert export_step(params, reviewed(2, "skipped"), out_dir=tmp_path)["path"] is None


def test_holdout_report_needs_enough_rows(tmp_path, monkeypatch):
    params = Params().override(REVIEW)
    path = write_holdout(params, reviewed(6, stratum="random"))
    assert path.name == "holdout.parquet" and len(pd.read_parquet(path)) == 6
    few = holdout_report(params, lambda texts: ["normal"] * len(texts))
    assert few == {"rows": 6, "enough": False, "note": f"{NOT_ENOUGH} (6 < review.holdout_min_rows)"}
    write_holdout(params, reviewed(20, stratum="random"))
    report = holdout_report(params, lambda texts: ["normal"] * len(texts), labels=["normal", "emergency"])
    assert report["enough"] and report["rows"] == 20
    assert report["ci_low"] <= report["macro_f1"] <= report["ci_high"]
    assert "production macro-F1" in report["note"]


def test_heara_review_select_label_export_status(model, sample, tmp_path, monkeypatch):
    from training.cli import app
    from training.orchestration import tasks

    db = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    logged_window(model, sample["text"].iloc[120:200].tolist(), db)
    env = {"HEARA_MODEL_DIR": str(model), "HEARA_PREDICTION_DB": db}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sets = ["--set", "review.budget=10", "--set", "review.holdout_min_rows=10"]
    result = CliRunner().invoke(app, ["review", "select", *sets])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["window"] == 80 and line["queued"] == line["waiting"] >= 10 and line["novelty"]
    again = json.loads(CliRunner().invoke(app, ["review", "select", *sets]).stdout.strip().splitlines()[-1])
    assert again["already_queued"] == line["queued"] and again["waiting"] == line["queued"] + again["queued"]

    result = CliRunner().invoke(app, ["review", "export", "--out", str(tmp_path / "in")])
    assert result.exit_code == 0 and "nothing to export" in result.output
    queue = ReviewQueue(db)
    items = [i for i in queue.items(limit=100) if i["stratum"] != "random"]  # random: the holdout
    queue.record(items[0]["id"], "labeled", label="normal", reviewer="kim")
    queue.record(items[1]["id"], "skipped", reviewer="kim")
    holdout = [i for i in queue.items(limit=100) if i["stratum"] == "random"][0]
    queue.record(holdout["id"], "labeled", label="emergency", reviewer="lee")
    result = CliRunner().invoke(app, ["review", "export", "--out", str(tmp_path / "in")])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout.strip().splitlines()[-1])
    assert exported["rows"] == 1 and Path(exported["path"]).parent == tmp_path / "in"
    from training.steps.review import read_holdout

    assert read_holdout(Params()).shape[0] == 1  # the export refreshed the holdout file
    assert queue.get(items[0]["id"])["export_id"] == exported["export_id"]
    result = CliRunner().invoke(app, ["review", "status"])
    status = json.loads(result.stdout.strip().splitlines()[-1])
    assert status["status"]["labeled"] == 2 and status["status"]["skipped"] == 1 and status["unexported"] == 0
    assert status["holdout_rows"] == 1 and queue.get(holdout["id"])["export_id"] is None
    assert "production holdout" in result.output

    # The heara_monitor DAG's review task does the same from a params file (its wiring: test_dags.py).
    params_file = Params().override({"review": {"budget": 5}}).save(tmp_path / "params.yaml")
    done = tasks.review_window(str(params_file))
    assert done["already_queued"] >= 10 and "masked_text" not in json.dumps(done)


def test_the_review_task_skips_when_nothing_is_served(tmp_path, monkeypatch, registry_home):
    from training.orchestration import tasks

    monkeypatch.delenv("HEARA_MODEL_DIR", raising=False)
    monkeypatch.setenv("HEARA_PREDICTION_DB", f"sqlite:///{tmp_path / 'p.sqlite'}")
    assert "skipped" in tasks.review_window(None)


def test_with_raw_storage_on_reviewers_and_the_export_get_the_raw_text(model, sample, tmp_path, monkeypatch):
    from serving.predlog import PredictionLog as Log
    from training.orchestration.review import export_reviewed, fill_queue

    db = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    predictor = Predictor.load(model, device="cpu")
    from training.registry.champion import from_dir

    texts = [f"{t} 010-2345-6789" for t in sample["text"].iloc[300:340]]
    with Log(db, store_raw=True) as log:
        log.log(
            make_records(
                "b" * 16,
                texts,
                predictor.predict(texts),
                "m",
                from_dir(model).version_label,
                1.0,
                store_raw=True,
            )
        )
        assert log.flush(10)
    for key, value in {
        "HEARA_MODEL_DIR": str(model),
        "HEARA_PREDICTION_DB": db,
        "HEARA_STORE_RAW_TEXT": "1",
    }.items():
        monkeypatch.setenv(key, value)
    params = Params().override({"review": {"budget": 5, "novel_share": 0.0, "uncertain_share": 0.6}})
    assert fill_queue(params)["queued"] >= 5
    queue = ReviewQueue(db)
    item = [i for i in queue.items() if i["stratum"] != "random"][0]
    assert "010-2345-6789" in item["raw_text"] and "010-2345-6789" not in item["masked_text"]
    queue.record(item["id"], "labeled", label="normal")
    written = export_reviewed(params, out_dir=tmp_path / "in")
    assert pd.read_csv(written["path"])["text"].str.contains("010-2345-6789").all()
    monkeypatch.setenv("HEARA_STORE_RAW_TEXT", "0")  # switched off: the export is masked again
    queue.enqueue([{**item, "prediction_id": 10**6, "stratum": "uncertain"}])
    added = [i for i in queue.items() if i["prediction_id"] == 10**6][0]
    queue.record(added["id"], "labeled", label="normal")
    written = export_reviewed(params, out_dir=tmp_path / "in2")
    assert not pd.read_csv(written["path"])["text"].str.contains("010-2345-6789").any()
