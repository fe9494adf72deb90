"""
### heara_incoming_watch: new labeled files -> a retrain run

Every `orchestrate.watch_every_min` minutes it looks in `$HEARA_HOME/incoming/` for files that were
neither ingested nor announced before (by content hash). When it finds some, it emits an event on the
Asset `heara_incoming_labeled_data` listing them, which triggers `heara_retrain`; that run records
the files (its `resolve_run` log, its run folder's run.json and the MLflow tag
`heara.airflow.trigger_files`). With nothing new, `announce` is skipped and no event is sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from heara_common import INCOMING, default_args

from training.config import load_params

ORCH = load_params().orchestrate


@dag(
    dag_id="heara_incoming_watch",
    schedule=timedelta(minutes=ORCH.watch_every_min),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**default_args(ORCH), "retries": 1},
    tags=["heara", "data"],
    doc_md=__doc__,
)
def heara_incoming_watch():
    @task
    def look() -> list[dict]:
        from training.data.incoming import new_files

        return new_files()

    @task(outlets=[INCOMING])
    def announce(files: list[dict], **context) -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        from training.data.incoming import mark_announced

        if not files:
            raise AirflowSkipException("no new labeled files")
        context["outlet_events"][INCOMING].extra = {"files": files}
        mark_announced(files, context["run_id"])
        return [f["name"] for f in files]

    announce(look())


heara_incoming_watch()
