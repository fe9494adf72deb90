"""heara_sweep through a running Airflow (`heara airflow up`: standalone, LocalExecutor) with two parallel
mapped workers on a PostgreSQL study: family linear, 8 trials on tiny data.

Checks: both mapped `trials` tasks ran, at the same time (the gpu pool has 2 slots here), and their
trials add up to the budget; the study holds the 8 trials, none left RUNNING; MLflow has the parent run
(with the test score) and 8 child runs naming it; the `heara_sweep_best` asset event carries the overlay;
and, with sweep.retrain_on_best switched on, that event starts an asset-triggered heara_retrain run whose
resolved params take the overlay (the run is stopped there: training is test_airflow_dag.py's).
"""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml
from test_airflow_asset import airflow_with, asset_triggered_retrain, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # about 3-4 minutes on 2 cores

LABELS = ["normal", "emergency", "confusion", "distress"]
STEMS = {
    "normal": ["오늘 날씨 좋네", "밥 맛있게 먹었어", "산책 다녀왔어요", "텔레비전 보고 있어"],
    "emergency": ["넘어져서 못 일어나겠어", "가슴이 너무 아파", "피가 나요 살려줘", "119 불러줘"],
    "confusion": ["여기가 어디야", "내 안경 누가 가져갔어", "오늘이 무슨 요일이지", "집에 어떻게 가"],
    "distress": ["너무 외롭고 슬퍼", "살기 싫어", "아무도 나를 안 찾아", "눈물만 나"],
}


def _prepared(folder, per_class: dict[str, int]) -> None:
    folder.mkdir(parents=True)
    for split, n in per_class.items():
        rows = [
            {"id": f"{split}-{lab}-{i}", "text": f"{STEMS[lab][i % 4]} {split} {i}", "label": lab}
            for lab in LABELS
            for i in range(n)
        ]
        df = pd.DataFrame(rows)
        if split == "train":
            df["source_id"], df["aug_method"] = df["id"], "original"
        df.to_parquet(folder / f"{split}.parquet")


def test_sweep_dag_runs_two_parallel_workers_and_publishes_the_best(
    tmp_path, monkeypatch, repo_root, pg_storage
):
    from mlflow import MlflowClient

    from training.orchestration import tasks as flow
    from training.registry import tracking

    home = tmp_path / "home"
    monkeypatch.setenv("HEARA_HOME", str(home))
    monkeypatch.setenv("AIRFLOW_HOME", str(home / "airflow" / "home"))
    monkeypatch.setenv("HEARA_GPU_SLOTS", "2")  # two worker tasks at once
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    params["orchestrate"]["retries"] = 0
    params["preprocess"]["spacing"] = "none"  # tiny inline data: no Kiwi in the test scoring
    params["sweep"]["retrain_on_best"] = True
    params["sweep"]["startup_trials"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("HEARA_PARAMS", str(tmp_path / "params.yaml"))
    data = tmp_path / "data"
    _prepared(data, {"train": 10, "val": 4, "test": 4})

    with airflow_with("heara_sweep", "heara_retrain") as api:
        conf = {"family": "linear", "trials": 8, "workers": 2, "storage": pg_storage, "data_dir": str(data)}
        run_id = api.call("POST", "/dags/heara_sweep/dagRuns", {"logical_date": None, "conf": conf})[
            "dag_run_id"
        ]
        run = wait_for(
            "the sweep run to finish",
            lambda: (lambda r: r if r["state"] in ("success", "failed") else None)(
                api.call("GET", f"/dags/heara_sweep/dagRuns/{run_id}")
            ),
            timeout_s=420,
            every_s=3,
        )
        tis = api.call("GET", f"/dags/heara_sweep/dagRuns/{run_id}/taskInstances")["task_instances"]
        states = {(t["task_id"], t["map_index"]): t["state"] for t in tis}
        assert run["state"] == "success", states
        assert states[("trials", 0)] == states[("trials", 1)] == "success", states
        mapped = [t for t in tis if t["task_id"] == "trials"]
        starts, ends = sorted(t["start_date"] for t in mapped), sorted(t["end_date"] for t in mapped)
        assert starts[1] < ends[0], f"the two workers did not overlap: {mapped}"  # they ran in parallel

        # The study: 8 trials in all, none left running, shared by the two workers (how many each ran
        # depends on which started first: a linear trial on this data takes a fraction of a second).
        study, sweep = _study(run_id, pg_storage)
        finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
        over = [t for t in finished if t.user_attrs.get("heara.over_budget")]
        assert len(finished) - len(over) == 8 and not [t for t in study.trials if t.state.name == "RUNNING"]
        xcom = f"/dags/heara_sweep/dagRuns/{run_id}/taskInstances/trials/xcomEntries/return_value"
        counts = [api.call("GET", f"{xcom}?map_index={i}&deserialize=true")["value"] for i in (0, 1)]
        assert [c["worker"] for c in counts] == [0, 1]
        assert sum(c["complete"] + c["pruned"] + c["failed"] for c in counts) == 8, counts
        print(f"trials per worker: {[c['complete'] + c['pruned'] + c['failed'] for c in counts]}")

        # MLflow: one parent, eight children naming it.
        tracking.setup("danger")
        client = MlflowClient()
        parent = client.get_run(sweep.parent_run_id)
        assert parent.info.status == "FINISHED" and "final_test_macro_f1" in parent.data.metrics
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{sweep.parent_run_id}'"
        )
        assert len(children) == 8 and {c.data.tags["heara.study"] for c in children} == {sweep.study}

        # The asset event carries the overlay.
        events = api.call("GET", "/assets/events?source_dag_id=heara_sweep")["asset_events"]
        assert len(events) == 1 and events[0]["name"] == "heara_sweep_best", events
        extra = events[0]["extra"]
        assert extra["study"] == sweep.study and os.path.isfile(extra["overlay"])
        assert yaml.safe_load(open(extra["overlay"], encoding="utf-8"))["model"] == {"family": "linear"}

        # sweep.retrain_on_best: the event started heara_retrain, which takes the overlay.
        retrain_id, record = asset_triggered_retrain(api)
        assert record["trigger"] == "asset" and record["overlays"] == [extra["overlay"]]
        resolved = yaml.safe_load((flow.run_dir(retrain_id) / "params.yaml").read_text())
        assert resolved["model"]["family"] == "linear"


def _study(run_id: str, storage: str):
    """The study set_up named after the DAG run (training/orchestration/sweep.py)."""
    import re

    from training.config import load_params
    from training.steps.sweep import load_sweep, storage_url

    name = "danger-linear-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return load_sweep(name, storage_url(load_params(), storage))
