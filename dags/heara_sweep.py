"""
### heara_sweep: a hyperparameter search (Optuna), its best configuration as a params overlay

`set_up -> trials (mapped: one task per parallel worker) -> clean_up -> summarize`

**What it does**: `set_up` validates the form and creates the study (TPE sampler, median or Hyperband
pruner) and an MLflow parent run. Each mapped `trials` task runs a `heara sweep-worker` subprocess on the
shared study, in the `gpu` pool: trials until the trial budget (a total over all workers) or the time
budget is spent. A trial trains the family's configuration with the sampled values on the train split and is
scored on the validation split only (macro-F1 of its best epoch); the pruner stops trials whose per-epoch
curve lags. Every trial is an MLflow child run of the parent (tags `heara.study`, `heara.trial`,
`heara.trial_state`). `clean_up` marks FAIL the trials of workers that died (their heartbeat stopped).
`summarize` writes the leaderboard and the best configuration as an overlay (only the keys that differ from
params.yaml), scores it once on the frozen test split (beside the configuration as set) and emits an event
on the Asset `heara_sweep_best` carrying the overlay's path and the best value.

**The form**: family (kobert-tiny or linear; the spaces are params.yaml's `sweep:` section), trial budget,
parallel workers, time budget, the Optuna storage, a prepared data folder. **Parallel workers need a
PostgreSQL storage** (`postgresql://...` in the form, HEARA_SWEEP_STORAGE or `sweep.storage`); on the
default SQLite file the run is refused at `set_up`. The gpu pool's slots bound how many workers run at once.

**Afterwards**: train the best with `heara train --overlay <overlay>` or `overlay` in heara_retrain's form;
with `sweep.retrain_on_best: true` in params.yaml, heara_retrain runs on the asset event by itself.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, chain, dag, task
from heara_common import SWEEP_BEST, call, default_args

from training.config import load_params
from training.env import train_queue
from training.orchestration.form import SWEEP_FIELDS, form_params

PARAMS = load_params()
ORCH = PARAMS.orchestrate
# The trigger form: fields, params.yaml keys, help and bounds are in training/orchestration/form.py.
FORM = {name: Param(spec.pop("default"), **spec) for name, spec in form_params(PARAMS, SWEEP_FIELDS).items()}


@dag(
    dag_id="heara_sweep",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(ORCH),
    params=FORM,
    tags=["heara", "training", "sweep"],
    doc_md=__doc__,
)
def heara_sweep():
    @task
    def set_up(**context) -> list[dict]:
        """Validate the form; create the study and the MLflow parent run (a re-run continues them).
        Returns one job per parallel worker."""
        from training.orchestration import sweep

        return call(sweep.set_up, dict(context["params"]), context["run_id"])

    @task(
        pool=ORCH.gpu_pool,
        queue=train_queue(ORCH.train_queue),
        execution_timeout=timedelta(minutes=ORCH.train_timeout_min),
    )
    def trials(job: dict) -> dict:
        """One worker on the shared study (`heara sweep-worker` in a subprocess); a retry rejoins it."""
        from training.orchestration import sweep

        return call(sweep.run_worker, job)

    @task(trigger_rule="all_done")  # also after a worker failed: its RUNNING trial must not stay so
    def clean_up(jobs: list[dict]) -> dict:
        from training.orchestration import sweep

        return call(sweep.clean_up, jobs[0])

    @task(outlets=[SWEEP_BEST])
    def summarize(jobs: list[dict], **context) -> dict:
        """Leaderboard, overlay and the one test scoring; the asset event carries the overlay."""
        from training.orchestration import sweep

        summary = call(sweep.summarize, jobs[0])
        context["outlet_events"][SWEEP_BEST].extra = sweep.asset_extra(summary)
        return summary

    jobs = set_up()
    workers = trials.expand(job=jobs)
    cleaned = clean_up(jobs)
    chain(jobs, workers, cleaned, summarize(jobs))


heara_sweep()
