"""
### heara_retrain: retrain, evaluate and (maybe) promote the classifier

`resolve_run -> ingest -> validate -> preprocess -> split -> augment -> train -> evaluate -> register
-> promote -> promoted? -> reload_serving`

**When it runs**: on the schedule in `params.yaml` (`orchestrate.schedule`, weekly by default), when the
watcher DAG (`heara_incoming_watch`) sees new labeled files in `$HEARA_HOME/incoming/` (an Asset event;
the run records which files), when `heara_sweep` publishes a best configuration and `sweep.retrain_on_best`
is on (the run then uses the sweep's overlay), when `heara_monitor` raises a persistent drift alarm and
`monitor.on_drift` is `retrain` (the run records the evidence: run.json and the MLflow tag
`heara.airflow.trigger_drift`) or is `retrain_with_reviews` and people have also reviewed
`review.min_new_reviews` new labels (the Asset expression `drift & reviewed`; run.json records both), or
when you press **Trigger** and fill in the form.

**The form** overrides `params.yaml` for this run only: task, a params **overlay** (`params.full.yaml`
for a real fine-tune of the pretrained model: its learning rate, epochs and patience), model
family/name/profile, epochs, learning rate, dropout, augmentation on/off, force promote, and `overrides`
for any other key (`{"train.batch_size": 16}`). A field left at its default keeps the overlay's value.
The resolved values are written to the run's folder (`$HEARA_HOME/airflow/runs/<run id>/params.yaml`)
and logged to MLflow with the training run.

**What to expect**: a validation failure stops the run before training (the report is in the
`validate` log and in the run's `FAILED.md`); training runs in the `gpu` pool as a subprocess and a
re-run resumes from its checkpoint; the champion alias only moves in `promote`, in one call, so a
failed run never replaces it. The MLflow run id is in the `train` task's return value and the run
carries the tag `heara.airflow.run_id`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, chain, dag, task
from heara_common import DRIFT, INCOMING, REVIEWED, SWEEP_BEST, call, default_args

from training.config import load_params
from training.env import train_queue
from training.orchestration.form import form_params

PARAMS = load_params()
ORCH = PARAMS.orchestrate
# New labeled data; a sweep's best configuration when params.yaml's sweep.retrain_on_best is on; the
# monitor's drift alarm when monitor.on_drift is retrain, or the alarm and new reviewed labels together
# when it is retrain_with_reviews.
ASSETS = INCOMING
if PARAMS.sweep.retrain_on_best:
    ASSETS = ASSETS | SWEEP_BEST
if PARAMS.monitor.on_drift == "retrain":
    ASSETS = ASSETS | DRIFT
elif PARAMS.monitor.on_drift == "retrain_with_reviews":
    ASSETS = ASSETS | (DRIFT & REVIEWED)
SCHEDULE = (
    AssetOrTimeSchedule(timetable=CronTriggerTimetable(ORCH.schedule, timezone="UTC"), assets=ASSETS)
    if ORCH.schedule
    else ASSETS
)
# The trigger form: fields, params.yaml keys, help and bounds are in training/orchestration/form.py.
FORM = {name: Param(spec.pop("default"), **spec) for name, spec in form_params(PARAMS).items()}


@dag(
    dag_id="heara_retrain",
    schedule=SCHEDULE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(ORCH),
    params=FORM,
    tags=["heara", "training"],
    doc_md=__doc__,
)
def heara_retrain():
    @task(retries=0)
    def resolve_run(**context) -> dict:
        """Validate the form, write the run's params file; record what triggered the run."""
        from training.orchestration import tasks

        events = [e for group in (context.get("triggering_asset_events") or {}).values() for e in group]
        files = [f for event in events for f in (event.extra or {}).get("files", [])]
        overlays = [(event.extra or {})["overlay"] for event in events if (event.extra or {}).get("overlay")]
        run_type = str(getattr(context["dag_run"], "run_type", "manual")).lower()
        trigger = (
            "asset"
            if events or "asset" in run_type
            else ("scheduled" if "scheduled" in run_type else "manual")
        )
        drift = [(event.extra or {})["drift"] for event in events if (event.extra or {}).get("drift")]
        reviews = [(event.extra or {})["reviews"] for event in events if (event.extra or {}).get("reviews")]
        form = dict(context["params"])
        if overlays and not form.get("overlay"):  # a sweep's best configuration (the latest event's)
            form["overlay"] = overlays[-1]
        return call(
            tasks.resolve_run,
            form,
            context["run_id"],
            trigger=trigger,
            trigger_files=files,
            trigger_drift=drift[-1] if drift else None,
            trigger_reviews=reviews[-1] if reviews else None,
        )

    @task
    def ingest(run: dict) -> dict:
        from training.orchestration import tasks

        return call(tasks.ingest, run["params_file"])

    @task(retries=0)  # a validation failure is about the data: retrying cannot help
    def validate(run: dict) -> dict:
        from training.orchestration import tasks

        return call(tasks.validate, run["params_file"])

    @task
    def preprocess(run: dict) -> dict:
        from training.orchestration import tasks

        return call(tasks.preprocess, run["params_file"])

    @task
    def split(run: dict) -> dict:
        from training.orchestration import tasks

        return call(tasks.split, run["params_file"])

    @task
    def augment(run: dict) -> dict:
        from training.orchestration import tasks

        return call(tasks.augment, run["params_file"])

    @task(
        pool=ORCH.gpu_pool,
        queue=train_queue(ORCH.train_queue),
        execution_timeout=timedelta(minutes=ORCH.train_timeout_min),
    )
    def train(run: dict, **context) -> dict:
        """`heara train` in a subprocess (one GPU-pool slot); a retry resumes from the checkpoint."""
        from training.orchestration import tasks

        tags = {
            "heara.airflow.dag_id": context["dag"].dag_id,
            "heara.airflow.run_id": context["run_id"],
            "heara.airflow.trigger": run["trigger"],
        }
        if run["trigger_files"]:
            tags["heara.airflow.trigger_files"] = ", ".join(run["trigger_files"])
        if run.get("trigger_drift"):  # the monitor's evidence, when a drift alarm started this run
            tags["heara.airflow.trigger_drift"] = run["trigger_drift"]
        return call(tasks.train, run["params_file"], tags)

    @task
    def evaluate(run: dict, trained: dict) -> dict:
        from training.orchestration import tasks

        return {**call(tasks.evaluate, run["params_file"]), "run_id": trained["run_id"]}

    @task
    def register(run: dict) -> int:
        from training.orchestration import tasks

        return call(tasks.register, run["params_file"])

    @task(retries=0)  # the gate decides once per version; re-run it by clearing the task
    def promote(run: dict, version: int) -> dict:
        from training.orchestration import tasks

        return call(tasks.promote, run["params_file"], version, force=run["force_promote"])

    @task.short_circuit
    def promoted(decision: dict) -> bool:
        """Only a promotion tells serving to reload."""
        return bool(decision["promote"])

    @task(retries=1)
    def reload_serving(run: dict) -> dict:
        from training.orchestration import tasks

        return call(tasks.notify_serving, run["params_file"])

    # Data flows by XCom where a task reads another's result (the run's params file, the MLflow run, the
    # registered version, the gate's decision); chain() orders the rest, in stage order.
    run = resolve_run()
    trained = train(run)
    version = register(run)
    decision = promote(run, version)
    chain(
        run,
        ingest(run),
        validate(run),
        preprocess(run),
        split(run),
        augment(run),  # data
        trained,
        evaluate(run, trained),  # model
        version,
        decision,
        promoted(decision),
        reload_serving(run),  # registry, then serving
    )


heara_retrain()
