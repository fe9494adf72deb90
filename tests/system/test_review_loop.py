"""The monitoring loop end to end, on real parts: a real `bentoml serve` answers traffic -> `heara monitor`
judges the window -> `heara review select` queues predictions -> a person labels 20 of them on GET /review
in headless Chromium, from the keyboard -> `heara review export` writes the batch to incoming/ -> the
Airflow watcher (a running `heara airflow up`) announces it -> an asset-triggered `heara_retrain` run whose
run record names the export. The run is stopped after `resolve_run` (training through Airflow is
test_airflow_dag.py's). Heavy: a service and Airflow start here (~4 minutes on 2 cores)."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from live_service import API_KEY, AUTH
from review_browser import label_items_in_browser
from test_airflow_asset import airflow_with, asset_triggered_retrain, wait_for
from typer.testing import CliRunner

from training.bench.serve import start_service, stop, wait_ready
from training.pii import mask_pii

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "utterances.csv"
TRAFFIC = 160  # above monitor.min_texts (100): the window is judged


def with_reference(model: Path, sample: pd.DataFrame) -> Path:
    """The monitoring reference `heara register` stores with every version, built on the sample."""
    from training.config import load_params
    from training.evaluation.monitoring import build_reference
    from training.model.predictor import Predictor

    predictor = Predictor.load(model, device="cpu")
    val = sample.iloc[:120]
    build_reference(
        predictor,
        train_texts=sample["text"].iloc[300:600].tolist(),
        val_texts=predictor.preprocessor(val["text"].tolist()),
        val_labels=val["label"].tolist(),
        val_sent_texts=val["text"].tolist(),
        cfg=load_params().monitor,
    ).save(model)
    return model


def heara(*args: str) -> dict:
    """A `heara` command in this process; its last output line (JSON)."""
    from training.cli import app

    result = CliRunner().invoke(app, list(args), env=dict(os.environ))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_served_traffic_comes_back_as_reviewed_labels_and_a_retrain(
    tmp_path, monkeypatch, tiny_model_factory
) -> None:
    from training.paths import state

    home = tmp_path / "home"
    monkeypatch.setenv("HEARA_HOME", str(home))
    monkeypatch.setenv("AIRFLOW_HOME", str(home / "airflow" / "home"))
    sample = pd.read_csv(SAMPLE)
    model = with_reference(tiny_model_factory(tmp_path / "model"), sample)
    monkeypatch.setenv("HEARA_MODEL_DIR", str(model))  # what `heara monitor` and `review select` judge

    # serve -> traffic
    server = start_service(model, home, {"HEARA_API_KEY": API_KEY})
    try:
        wait_ready(server, 240)
        traffic = sample.iloc[200 : 200 + TRAFFIC]
        for start in range(0, TRAFFIC, 16):
            texts = traffic["text"].iloc[start : start + 16].tolist()
            body = {"texts": texts, "speaker_id": f"ward-3-bed-{start // 16}"}
            r = httpx.post(f"{server.url}/classify", json=body, headers=AUTH, timeout=30)
            assert r.status_code == 200, r.text
        db = home / "predictions.sqlite"
        wait_for(
            "the prediction log to hold the traffic",
            lambda: (
                db.exists()
                and sqlite3.connect(db).execute("SELECT COUNT(*) FROM predictions").fetchone()[0] >= TRAFFIC
            ),
            timeout_s=30,
            every_s=0.3,
        )

        # -> monitor -> queue
        verdict = heara("monitor")
        assert verdict["n"] == TRAFFIC and "persistent_alarm" in verdict
        queued = heara("review", "select")
        assert queued["queued"] >= 20 and queued["waiting"] == queued["queued"], queued
        assert queued["picked"].get("random", 0) > 0  # the stratum that makes the production holdout

        # -> 20 items labeled by a person on /review: the label the sample's author gave the utterance
        truth = {mask_pii(t): lab for t, lab in zip(sample["text"], sample["label"])}
        labels = httpx.get(f"{server.url}/model", headers=AUTH, timeout=30).json()["labels"]
        done = label_items_in_browser(
            server.url,
            API_KEY,
            "간호사 김",
            20,
            lambda item: str(labels.index(truth[item["masked_text"]]) + 1),
        )
        assert len({d["id"] for d in done}) == 20
    finally:
        stop(server)

    # -> export -> incoming/: the labeled rows, except the random stratum's (the production holdout: a
    # model is never scored on rows it was trained on)
    with sqlite3.connect(home / "predictions.sqlite") as con:
        strata = dict(
            con.execute(
                "SELECT stratum = 'random', COUNT(*) FROM review_queue WHERE status = 'labeled' GROUP BY 1"
            ).fetchall()
        )
    held, trainable = strata.get(1, 0), strata.get(0, 0)
    assert held + trainable == 20 and trainable > 0, strata
    exported = heara("review", "export")
    path = Path(exported["path"])
    assert exported["rows"] == trainable and path.parent == state().incoming
    assert path.name.startswith("review-")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == trainable and {r["reviewer"] for r in rows} == {"간호사 김"}
    assert all(truth[r["text"]] == r["label"] for r in rows)  # what the person chose, masked text only
    assert "random" not in {r["stratum"] for r in rows}
    assert heara("review", "status")["holdout_rows"] == held
    assert heara("review", "export")["rows"] == 0  # exported once
    old = time.time() - 60  # a finished file for the watcher (it skips files still being written)
    os.utime(path, (old, old))

    # -> the watcher's Asset event -> an asset-triggered heara_retrain run that names the export
    with airflow_with("heara_retrain", "heara_incoming_watch") as api:
        api.call("POST", "/dags/heara_incoming_watch/dagRuns", {"logical_date": None})
        _, record = asset_triggered_retrain(api)
    assert record["trigger"] == "asset"
    assert [f["name"] for f in record["trigger_files"]] == [path.name]  # the run names the export
