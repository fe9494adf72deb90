"""The heara_sweep DAG's task bodies (training/orchestration/sweep.py; the file is named apart from
tests/code/steps/test_sweep.py, as pytest needs): the form becomes a study and one job per worker;
parallel workers without PostgreSQL fail the set-up at once; the asset event's extra."""

from __future__ import annotations

import pytest

from training.errors import ConfigError
from training.orchestration import sweep as flow


def test_set_up_starts_the_study_and_returns_one_job_per_worker(registry_home):
    from training.config import load_params
    from training.steps.sweep import load_sweep, storage_url

    form = {"family": "linear", "trials": 3, "workers": 1, "timeout_min": 30, "storage": "", "data_dir": ""}
    jobs = flow.set_up(form, "manual__2026-11-27T10:00:00+00:00")
    assert [j["worker"] for j in jobs] == [0]
    job = jobs[0]
    assert job["study"] == "danger-linear-manual__2026-11-27T10_00_00_00_00" and job["trials"] == 3
    assert job["storage"] is None and job["compare_default"] is True  # the URL itself never goes to XCom
    study, sweep = load_sweep(job["study"], storage_url(load_params()))
    assert (
        sweep.family == "linear"
        and sweep.deadline is not None
        and sweep.parent_run_id == job["parent_run_id"]
    )
    # A re-run of the task continues the same study rather than starting another.
    assert flow.set_up(form, "manual__2026-11-27T10:00:00+00:00")[0]["study"] == job["study"]


def test_parallel_workers_without_postgresql_fail_the_set_up(registry_home):
    with pytest.raises(ConfigError, match="2 parallel workers need a PostgreSQL storage"):
        flow.set_up({"family": "linear", "workers": 2}, "manual__x")
    with pytest.raises(ConfigError, match="trigger form: .*sweep.trials"):
        flow.set_up({"family": "linear", "trials": 0}, "manual__y")
    with pytest.raises(ConfigError, match="kobert-tiny, linear"):
        flow.set_up({"family": "svm"}, "manual__z")


def test_the_asset_event_carries_the_overlay():
    summary = {"study": "s", "family": "linear", "overlay": "/x/best.yaml", "best_value": 0.9, "trials": {}}
    assert flow.asset_extra(summary) == {
        "study": "s",
        "family": "linear",
        "overlay": "/x/best.yaml",
        "best_value": 0.9,
    }
