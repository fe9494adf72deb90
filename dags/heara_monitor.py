"""
### heara_monitor: is the served model drifting?

`prune -> judge -> drifted? -> publish_drift`; `judge -> review -> reviews_ready? -> publish_reviews`

**When it runs**: on `monitor.schedule` in `params.yaml` (hourly by default), or when you press **Trigger**.

**What it does**: `prune` deletes logged predictions older than `monitor.retention_days`. `judge` is
`heara monitor`: the newest `monitor.window` predictions of the served version against the reference
stored with that version (label shares, confidence, Korean text descriptors, embeddings, macro-F1
estimated without labels; docs/monitoring.md). It appends to
`$HEARA_HOME/models/<task>/monitoring/history.jsonl`, writes `report.html` and logs an MLflow run. When
the alarm is persistent (`monitor.persistence_k` of the last `monitor.persistence_m` windows),
`publish_drift` emits an event on the Asset
`heara://monitoring/drift` whose extra carries the evidence: version, window, reasons, the main figures.
No text is included. `review` is `heara review select`: it queues `review.budget` predictions of the same
window for people to label on GET /review (uncertain, novel, random; every danger-flagged one) and
refreshes the production holdout file (docs/monitoring.md, "Review queue and production holdout").
When people have labeled at least `review.min_new_reviews` predictions for training (the random
stratum, the holdout, does not count) since the last time, `publish_reviews` emits an event on
`heara://review/labels` (extra: how many, since when).

**Then**: with `monitor.on_drift: retrain`, `heara_retrain` runs on that event and records the evidence
(its run.json and the MLflow tag `heara.airflow.trigger_drift`). With `review`, nothing runs: the event and
the report are for people to look at first. With `retrain_with_reviews`, `heara_retrain` runs once both
a drift event and a reviewed-labels event have arrived since its last run (`drift & reviewed`).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task
from heara_common import DRIFT, REVIEWED, call, default_args

from training.config import load_params

PARAMS = load_params()


@dag(
    dag_id="heara_monitor",
    schedule=PARAMS.monitor.schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**default_args(PARAMS.orchestrate), "retries": 1},
    tags=["heara", "monitoring"],
    doc_md=__doc__,
)
def heara_monitor():
    @task
    def prune() -> dict:
        from training.orchestration import tasks

        return call(tasks.prune_predictions)

    @task
    def judge() -> dict:
        from training.orchestration import tasks

        return call(tasks.monitor_window)

    @task.short_circuit
    def drifted(verdict: dict) -> bool:
        return bool(verdict["persistent_alarm"])

    @task(outlets=[DRIFT])
    def publish_drift(verdict: dict, **context) -> dict:
        context["outlet_events"][DRIFT].extra = {"drift": verdict["evidence"]}
        return verdict["evidence"]

    @task
    def review() -> dict:
        from training.orchestration import tasks

        return call(tasks.review_window)

    @task.short_circuit
    def reviews_ready() -> dict | bool:
        from training.orchestration import tasks

        reviews = call(tasks.new_reviews)
        return reviews if reviews["ready"] else False

    @task(outlets=[REVIEWED])
    def publish_reviews(reviews: dict, **context) -> dict:
        from training.orchestration import tasks

        context["outlet_events"][REVIEWED].extra = {"reviews": reviews}
        tasks.mark_reviews_announced(reviews)
        return reviews

    verdict = judge()
    prune() >> verdict
    drifted(verdict) >> publish_drift(verdict)
    queued = review()
    verdict >> queued
    ready = reviews_ready()
    queued >> ready
    publish_reviews(ready)


heara_monitor()
