"""What Heara's DAGs share: the Assets (incoming data, a sweep's best, drift), default task arguments,
the failure callback and the call wrapper that turns a non-retryable step failure into an Airflow failure
without retries.

Wiring only: the work is in `training/` (training.orchestration.tasks), imported inside the tasks.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset

from training.config import OrchestrateConfig

# New labeled files in $HEARA_HOME/incoming/: the watcher DAG emits an event, the retrain DAG runs.
INCOMING = Asset(name="heara_incoming_labeled_data", uri="file:///heara/incoming")
# A finished sweep's best configuration (the event's extra: overlay path, best value, study). heara_retrain
# runs on it, with the overlay, when params.yaml's sweep.retrain_on_best is on.
SWEEP_BEST = Asset(name="heara_sweep_best", uri="heara://sweep/best")
# The served model drifts (a persistent alarm of heara_monitor; the event's extra: the evidence).
# heara_retrain runs on it when params.yaml's monitor.on_drift is retrain.
DRIFT = Asset(name="heara_monitoring_drift", uri="heara://monitoring/drift")
# People labeled at least review.min_new_reviews predictions since the last event (heara_monitor; the
# event's extra: how many, since when). With monitor.on_drift retrain_with_reviews heara_retrain runs on
# DRIFT & REVIEWED: both must have an event since its last run (an Airflow 3 conditional asset expression).
REVIEWED = Asset(name="heara_review_labels", uri="heara://review/labels")


def default_args(orch: OrchestrateConfig) -> dict:
    """Retries with exponential backoff (validation and form errors fail at once: see `call`)."""
    return {
        "owner": "heara",
        "retries": orch.retries,
        "retry_delay": timedelta(seconds=orch.retry_delay_s),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=orch.max_retry_delay_s),
        "on_failure_callback": on_task_failure,
    }


def call(fn, *args, **kwargs):
    """Run a step; a non-retryable `HearaError` (bad data, bad form values) fails the task at once."""
    from airflow.sdk.exceptions import AirflowFailException

    from training.errors import HearaError

    try:
        return fn(*args, **kwargs)
    except HearaError as e:
        if e.retryable:
            raise
        raise AirflowFailException(f"{type(e).__name__}: {e}") from None


def on_task_failure(context) -> None:
    """Write the run's FAILED.md (task, error, what to do next, the validation report when it applies)."""
    from training.orchestration.failures import write_failure_summary

    ti = context["ti"]
    write_failure_summary(
        ti.dag_id,
        context["run_id"],
        ti.task_id,
        context.get("exception"),
        try_number=getattr(ti, "try_number", None),
        log_url=getattr(ti, "log_url", None),
    )
