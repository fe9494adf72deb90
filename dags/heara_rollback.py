"""
### heara_rollback: give the champion alias back to an earlier version

Trigger it with a **version** (empty: the champion before the current one, from the audit ledger).
The version must still load and answer a smoke prediction, or the run fails and the champion stays
(the refusal is in the audit ledger). The alias moves in one call; the rollback is recorded in MLflow
and in the audit ledger (`heara audit`), and the service is told to reload (it also polls the registry).
Same as `heara rollback [--to VERSION]`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, chain, dag, task
from heara_common import call, default_args

from training.config import load_params

PARAMS = load_params()


@dag(
    dag_id="heara_rollback",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**default_args(PARAMS.orchestrate), "retries": 0},  # moving an alias twice helps nobody
    params={
        "task": Param(PARAMS.task, type="string", minLength=1, title="Task"),
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Version",
            description="Registry version to make champion; empty: the previous champion.",
        ),
    },
    tags=["heara", "registry"],
    doc_md=__doc__,
)
def heara_rollback():
    @task
    def rollback(**context) -> dict:
        from training.steps.rollback import rollback_step

        p = context["params"]
        return call(rollback_step, p["task"], p["version"])

    @task(retries=1)
    def reload_serving() -> dict:
        from training.orchestration import tasks

        return call(tasks.notify_serving)

    chain(rollback(), reload_serving())


heara_rollback()
