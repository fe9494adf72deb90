"""Units of the orchestration steps (training/orchestration/tasks.py) and the incoming-folder watcher
(training/data/incoming.py): form handling, run records, failure summaries, the reload call."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from training.config import load_params
from training.data import incoming
from training.data.readers import Ledger, sha256_file
from training.errors import ConfigError, DataError
from training.orchestration import tasks as flow
from training.orchestration.failures import write_failure_summary
from training.orchestration.form import FIELDS, FORM_KEYS, form_overrides, form_params
from training.paths import state


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARA_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_form_overrides_map_fields_and_keep_empty_values():
    form = {
        "task": "danger",
        "epochs": 4,
        "learning_rate": 1e-3,
        "dropout": 0.2,
        "augment": False,
        "model_family": "",
        "model_name": None,
        "force_promote": True,
        "overrides": {"train.batch_size": 8, "promote.min_delta": 0.01},
    }
    assert form_overrides(form) == {
        "task": "danger",
        "train": {"epochs": 4, "lr": 1e-3, "batch_size": 8},
        "model": {"dropout": 0.2},
        "augment": {"enabled": False},
        "promote": {"min_delta": 0.01},
    }


def test_resolve_run_writes_params_and_record(home):
    files = [{"name": "batch-7.csv", "sha256": "ab" * 32, "bytes": 10}]
    run = flow.resolve_run(
        {"epochs": 3, "force_promote": True},
        "manual__2026-11-21T01:02:03+00:00",
        trigger="asset",
        trigger_files=files,
    )
    folder = home / "airflow" / "runs" / "manual__2026-11-21T01_02_03_00_00"
    assert run["params_file"] == str(folder / "params.yaml") and run["force_promote"] is True
    assert run["trigger"] == "asset" and run["trigger_files"] == ["batch-7.csv"]
    resolved = yaml.safe_load((folder / "params.yaml").read_text())
    assert resolved["train"]["epochs"] == 3 and resolved["validate"]["min_rows_per_class"] >= 1
    assert json.loads((folder / "run.json").read_text())["trigger_files"] == files
    assert flow._params(run["params_file"]).train.epochs == 3  # the file round-trips through load_params


def test_a_run_started_by_a_drift_alarm_records_the_evidence(home):
    evidence = {
        "task": "danger",
        "model_version": "4",
        "n": 500,
        "from": "2026-11-28T09:00:00+00:00",
        "to": "2026-11-28T10:00:00+00:00",
        "reasons": [
            "descriptor:spacing_anomaly: p=1e-12 < 0.0008",
            "embeddings: domain classifier AUC 0.91 > 0.75",
        ],
        "persistence": "3 of the last 5 windows",
        "domain_auc": 0.91,
    }
    run = flow.resolve_run({}, "asset__drift", trigger="asset", trigger_drift=evidence)
    assert run["trigger_drift"].startswith("version 4, window of 500 predictions to 2026-11-28T10:00:00")
    assert "spacing_anomaly" in run["trigger_drift"] and "AUC 0.91" in run["trigger_drift"]
    record = json.loads((home / "airflow" / "runs" / "asset__drift" / "run.json").read_text())
    assert record["trigger_drift"] == evidence
    assert flow.resolve_run({}, "manual__plain")["trigger_drift"] == ""


def test_reviewed_labels_are_counted_once_per_event(home, monkeypatch):
    """Policy retrain_with_reviews: `reviews_ready` counts labels since the last event, on the queue in the
    prediction database (SQLite here), and is ready at review.min_new_reviews."""
    from serving.review_queue import ReviewQueue

    db = f"sqlite:///{home / 'predictions.sqlite'}"
    monkeypatch.setenv("HEARA_PREDICTION_DB", db)
    overlay = home / "params.yaml"
    load_params(overrides={"review": {"min_new_reviews": 3}}).save(overlay)
    queue = ReviewQueue(db)
    queue.enqueue({"prediction_id": i, "stratum": "uncertain", "label": "normal"} for i in range(1, 6))
    ids = [it["id"] for it in queue.items("queued", limit=10)]
    assert len(ids) == 5
    for item_id in ids[:2]:
        queue.record(item_id, "labeled", "emergency", reviewer="kim")
    queue.record(ids[2], "skipped", reviewer="kim")  # a skip is not a label
    queue.enqueue([{"prediction_id": 99, "stratum": "random", "label": "normal"}])
    held = next(it["id"] for it in queue.items("queued", limit=10) if it["prediction_id"] == 99)
    queue.record(held, "labeled", "normal", reviewer="kim")  # the holdout's: never trains, not counted
    first = flow.new_reviews(str(overlay))
    assert (first["ready"], first["new_reviews"], first["since"]) == (False, 2, None)

    queue.record(ids[3], "labeled", "normal", reviewer="lee")
    ready = flow.new_reviews(str(overlay))
    assert ready["ready"] and ready["new_reviews"] == 3
    flow.mark_reviews_announced(ready)  # the event went out
    again = flow.new_reviews(str(overlay))
    assert (again["ready"], again["new_reviews"], again["since"]) == (False, 0, ready["until"])
    queue.record(ids[4], "labeled", "normal", reviewer="lee")
    assert flow.new_reviews(str(overlay))["new_reviews"] == 1

    run = flow.resolve_run({}, "asset__both", trigger="asset", trigger_reviews=ready)
    record = json.loads((home / "airflow" / "runs" / "asset__both" / "run.json").read_text())
    assert run["trigger"] == "asset" and record["trigger_reviews"]["new_reviews"] == 3


def test_the_monitor_skips_when_nothing_is_served_yet(registry_home):
    verdict = flow.monitor_window()
    assert verdict["skipped"].startswith("no model to serve")
    assert not verdict["persistent_alarm"] and not verdict["enough"]


@pytest.mark.parametrize(
    "form, message",
    [
        ({"epochs": 0}, "train.epochs"),
        ({"overrides": {"train.lr_typo": 1}}, "unknown key 'train.lr_typo'"),
        ({"overrides": "train.lr=1"}, "'overrides' must be a mapping"),
    ],
)
def test_resolve_run_rejects_bad_forms_naming_the_key(home, form, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        flow.resolve_run(form, "manual__x")


def test_resolve_run_applies_the_form_overlay_under_the_fields(home, repo_root):
    # The form shows params.yaml's values; fields left as shown keep the overlay's values.
    shown = {name: spec["default"] for name, spec in form_params(load_params()).items()}
    run = flow.resolve_run({**shown, "overlay": "params.full.yaml"}, "manual__full")
    params = flow._params(run["params_file"])
    assert (
        params.model.profile,
        params.train.lr,
        params.train.epochs,
        params.train.early_stopping_patience,
    ) == ("full", 5.0e-5, 4, 2)
    record = json.loads((home / "airflow" / "runs" / "manual__full" / "run.json").read_text())
    assert record["overlays"] == [str(repo_root / "params.full.yaml")]
    # A field the user changed wins over the overlay.
    run = flow.resolve_run({**shown, "overlay": "params.full.yaml", "epochs": 6}, "manual__full6")
    assert flow._params(run["params_file"]).train.epochs == 6
    assert flow._params(flow.resolve_run(shown, "manual__plain")["params_file"]) == load_params()


def test_resolve_run_names_a_bad_overlay(home, tmp_path):
    with pytest.raises(ConfigError, match="trigger form: .*nope.yaml: file not found"):
        flow.resolve_run({"overlay": "nope.yaml"}, "manual__nope")
    bad = tmp_path / "bad-overlay.yaml"
    bad.write_text("train:\n  epoch: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad-overlay\.yaml: unknown key 'train\.epoch'"):
        flow.resolve_run({"overlay": str(bad)}, "manual__bad")


def test_form_fields_take_types_and_bounds_from_config():
    spec = form_params(load_params())
    assert (
        spec["epochs"].items()
        >= {"type": "integer", "minimum": 1, "maximum": 200, "default": load_params().train.epochs}.items()
    )
    assert spec["learning_rate"]["exclusiveMinimum"] == 0 and spec["dropout"]["exclusiveMaximum"] == 1
    assert spec["model_family"]["enum"] == ["kobert", "hf", "linear"] and spec["model_profile"]["enum"] == [
        "tiny",
        "full",
    ]
    assert "params.full.yaml" in spec["overlay"]["examples"] and spec["overlay"]["default"] == ""
    assert all(spec[name]["description"] for name in FIELDS)
    assert set(FORM_KEYS.values()) <= {k for k in _dotted_keys(load_params().to_dict())}


def _dotted_keys(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in tree.items():
        out |= _dotted_keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}"}
    return out


def test_validation_failure_keeps_report_and_quarantine(home):
    import pandas as pd

    st = state()
    st.raw.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "id": f"n{i}",
            "text": f"오늘은 {i}번째 산책을 했어요",
            "label": "normal",
            "source_file": "f.csv",
            "source_row": i,
        }
        for i in range(30)
    ] + [
        {"id": "e1", "text": "도와주세요", "label": "emergency", "source_file": "f.csv", "source_row": 31},
        {"id": "x1", "text": "", "label": "normal", "source_file": "f.csv", "source_row": 32},
    ]
    pd.DataFrame(rows).to_parquet(st.raw)
    run = flow.resolve_run({}, "manual__v")
    with pytest.raises(DataError, match="too few rows.*report: .*validate.json"):
        flow.validate(run["params_file"])
    report = json.loads((st.reports / "validate.json").read_text())
    assert "too few rows" in report["failed"] and report["per_class"]["emergency"] == 1
    assert len(pd.read_parquet(st.quarantine / "validate.parquet")) == 1  # the empty text, with its reason
    summary = write_failure_summary(
        "heara_retrain", "manual__v", "validate", RuntimeError("boom 010-1234-5678")
    )
    text = summary.read_text()
    assert "failed in `validate`" in text and '"per_class"' in text and "[PHONE]" in text
    assert "010-1234-5678" not in text


class _Reload(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_POST(self):  # noqa: N802
        _Reload.seen.append((self.path, self.headers.get("Authorization")))
        body = b'{"reloaded": true, "version": "3"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_notify_serving_posts_reload_with_the_key(home, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Reload)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HEARA_SERVE_URL", f"http://127.0.0.1:{server.server_port}/")
        monkeypatch.setenv("HEARA_API_KEY", "s3cret")
        answer = flow.notify_serving()
    finally:
        server.shutdown()
    assert answer["reloaded"] is True and answer["version"] == "3"
    assert _Reload.seen == [("/reload", "Bearer s3cret")]


def test_notify_serving_tolerates_a_service_that_is_down(home, monkeypatch):
    monkeypatch.setenv("HEARA_SERVE_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    answer = flow.notify_serving(timeout_s=2)
    assert answer["reloaded"] is False and answer["error"]


def test_incoming_files_are_announced_once_and_ingested_ones_skipped(home):
    st = state()
    st.incoming.mkdir(parents=True)
    a = st.incoming / "batch-a.csv"
    a.write_text("id,text,label\n1,도와줘,emergency\n", encoding="utf-8")
    b = st.incoming / "batch-b.csv"
    b.write_text("id,text,label\n2,배고파,normal\n", encoding="utf-8")
    (st.incoming / ".partial").write_text("ignored")
    old = a.stat().st_mtime - 60
    for p in (a, b):
        os.utime(p, (old, old))
    Ledger(st.ledger).record(sha256_file(b), b.name, 1, 0, st.batches / "b.parquet")  # already trained on
    found = incoming.new_files()
    assert [f["name"] for f in found] == ["batch-a.csv"] and found[0]["sha256"] == sha256_file(a)
    incoming.mark_announced(found, "scheduled__1")
    assert incoming.new_files() == []
    (st.incoming / "copy-of-a.csv").write_bytes(a.read_bytes())  # same content, new name: not new
    os.utime(st.incoming / "copy-of-a.csv", (old, old))
    assert incoming.new_files() == []
    fresh = st.incoming / "batch-c.csv"
    fresh.write_text("id,text,label\n3,어디야,confusion\n", encoding="utf-8")
    assert incoming.new_files() == []  # still being copied (modified just now): next look
    assert [f["name"] for f in incoming.new_files(min_age_s=0)] == ["batch-c.csv"]


def test_airflow_env_and_status_commands(home, monkeypatch):
    """`heara airflow env` prints the project's Airflow settings as exports; `status` exits 1 when
    nothing listens (the README documents both)."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    out = CliRunner().invoke(app, ["airflow", "env"])
    assert out.exit_code == 0
    exports = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())
    assert exports["AIRFLOW_HOME"] == str(home / "airflow" / "home")
    assert exports["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert exports["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    down = CliRunner().invoke(app, ["airflow", "status", "--port", "9"])
    assert down.exit_code == 1 and '"running": false' in down.stdout


def test_training_that_refuses_its_input_is_not_retried(home):
    """`heara train` exits 2 on a HearaError (here: no prepared data); the task raises a non-retryable
    HearaError, so Airflow fails the run at once instead of retrying what a retry cannot mend."""
    from training.errors import HearaError

    run = flow.resolve_run({}, "manual__no_data")
    with pytest.raises(HearaError, match="exit code 2") as info:
        flow.train(run["params_file"])
    assert not info.value.retryable
    assert "split not found" in str(info.value)
