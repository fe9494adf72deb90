"""Data-triggered retraining through a running Airflow (`heara airflow up`: standalone, SQLite).

A labeled file dropped into the incoming folder -> the watcher DAG emits an Asset event -> the
scheduler creates an asset-triggered `heara_retrain` run, whose `resolve_run` records the file.
The run is stopped there (training is covered by test_airflow_dag.py). Airflow runs here without
the time schedule (airflow_with), so every retrain run a test sees was caused by the test.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, port: int, password: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        body = json.dumps({"username": "admin", "password": password}).encode()
        req = urllib.request.Request(
            self.base + "/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        self.token = json.loads(urllib.request.urlopen(req, timeout=30).read())["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(
            self.base + "/api/v2" + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(req, timeout=30).read() or b"{}")

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]


def wait_for(what: str, check, timeout_s: float = 240.0, every_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


def _unscheduled_params(folder: Path) -> Path:
    """The params in use (HEARA_PARAMS, else params.yaml) with `orchestrate.schedule: null`, as a file.

    heara_retrain's weekly CronTriggerTimetable runs at once when a DAG is first switched on within a tenth
    of a period of its last tick (Airflow's run_immediately=False still does this): a test that starts
    Airflow on a Sunday before 16:48 UTC would get a scheduled full retrain beside the runs it triggers.
    """
    from training.config import load_params

    unscheduled = load_params().override({"orchestrate": {"schedule": None}})
    return unscheduled.save(folder / "params.yaml", header="tests: Airflow without the time schedule")


@contextmanager
def airflow_with(*dag_ids: str) -> Iterator[Api]:
    """`heara airflow up` (standalone) on a free port, until `dag_ids` are parsed; stopped afterwards.
    Without a time schedule: only the runs a test triggers or its assets cause (_unscheduled_params)."""
    from training.orchestration import airflow_local

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="heara-airflow-params-") as folder:
        # The Airflow processes take their copy of the environment at start; the test keeps its own.
        with mock.patch.dict(os.environ, {"HEARA_PARAMS": str(_unscheduled_params(Path(folder)))}):
            info = airflow_local.up(port=port, timeout_s=300)
        try:
            api = Api(port, info["password"])
            wait_for(
                "the DAGs to be parsed",
                lambda: {d["dag_id"] for d in api.call("GET", "/dags")["dags"]} >= set(dag_ids),
            )
            yield api
        finally:
            airflow_local.down(grace_s=10)


def asset_triggered_retrain(api: Api) -> tuple[str, dict]:
    """The asset-triggered heara_retrain run once its `resolve_run` succeeded, stopped there (training is
    test_airflow_dag.py's): (its run id, its run record)."""
    from training.orchestration import tasks as flow

    run = wait_for(
        "an asset-triggered retrain run",
        lambda: next((r for r in api.runs("heara_retrain") if r["run_type"] == "asset_triggered"), None),
    )
    run_id = run["dag_run_id"]
    ti = wait_for(
        "resolve_run to finish",
        lambda: (lambda t: t if t["state"] in ("success", "failed") else None)(
            api.call("GET", f"/dags/heara_retrain/dagRuns/{run_id}/taskInstances/resolve_run")
        ),
    )
    api.call("PATCH", f"/dags/heara_retrain/dagRuns/{run_id}", {"state": "failed"})  # stop before training
    assert ti["state"] == "success", ti
    return run_id, json.loads((flow.run_dir(run_id) / "run.json").read_text(encoding="utf-8"))


def test_new_labeled_file_triggers_a_retrain_run(tmp_path, monkeypatch, repo_root):
    from training.paths import state

    monkeypatch.setenv("HEARA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home" / "airflow" / "home"))
    with airflow_with("heara_retrain", "heara_incoming_watch") as api:
        # Nothing new yet: the watcher's first run sends no event, so no retrain starts.
        wait_for(
            "the watcher's first run",
            lambda: any(r["state"] == "success" for r in api.runs("heara_incoming_watch")),
        )
        assert api.runs("heara_retrain") == []  # the watcher's first run caused none

        st = state()
        st.incoming.mkdir(parents=True, exist_ok=True)
        batch = st.incoming / "labels-2026-11-21.csv"
        batch.write_text(
            "id,text,label\nnb-1,계단에서 넘어져서 못 일어나겠어요,emergency\n"
            "nb-2,손주가 다음 주에 온대요,normal\n",
            encoding="utf-8",
        )
        old = time.time() - 60  # a finished copy, not one still being written
        os.utime(batch, (old, old))
        api.call("POST", "/dags/heara_incoming_watch/dagRuns", {"logical_date": None})

        _, record = asset_triggered_retrain(api)
        assert record["trigger"] == "asset"
        assert [f["name"] for f in record["trigger_files"]] == [batch.name]
