"""DAG integrity: the DagBag imports cleanly, every DAG has tags, retries and docs, no cycles, each
file parses fast, and the wiring matches the pipeline (task order, pool, trigger form, schedule)."""

from __future__ import annotations

import pytest

from training.config import load_params
from training.orchestration.airflow_local import env

DAG_IDS = {"heara_retrain", "heara_rollback", "heara_batch_predict", "heara_incoming_watch"}


@pytest.fixture(scope="module")
def dagbag():
    import sys

    from airflow.dag_processing.dagbag import DagBag

    folder = env({})["AIRFLOW__CORE__DAGS_FOLDER"]
    if folder not in sys.path:  # as Airflow's DAG processor does: DAG files import heara_common
        sys.path.insert(0, folder)
    return DagBag(dag_folder=folder)


def test_dagbag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS


def test_every_dag_has_tags_retries_and_docs(dagbag):
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        assert "heara" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert "retries" in dag.default_args, dag_id
        for t in dag.tasks:
            assert t.retries is not None, (dag_id, t.task_id)
            assert t.on_failure_callback, (dag_id, t.task_id)


def test_no_cycles_and_each_file_parses_fast(dagbag):
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        order = dag.topological_sort()  # raises on a cycle
        assert len(order) == len(dag.tasks)
    stats = {s.file.rsplit("/", 1)[-1]: s.duration.total_seconds() if hasattr(s.duration, "total_seconds")
             else float(s.duration) for s in dagbag.dagbag_stats}
    assert {f"{d}.py" for d in DAG_IDS} <= set(stats)
    for file, seconds in stats.items():
        assert seconds < 2.0, f"{file} took {seconds:.2f} s to parse"


def test_retrain_wiring(dagbag):
    dag = dagbag.dags["heara_retrain"]
    orch = load_params().orchestrate
    chain = ["resolve_run", "ingest", "validate", "preprocess", "split", "augment", "train", "evaluate",
             "register", "promote", "promoted", "reload_serving"]
    for a, b in zip(chain, chain[1:]):
        assert b in dag.get_task(a).downstream_task_ids, f"{a} -> {b}"
    assert dag.max_active_runs == 1
    train = dag.get_task("train")
    assert train.pool == orch.gpu_pool and train.execution_timeout is not None
    assert train.retries == orch.retries and train.retry_exponential_backoff
    # No retry where it cannot help: the form, the data's validation, the promotion gate.
    for task_id in ("resolve_run", "validate", "promote"):
        assert dag.get_task(task_id).retries == 0, task_id
    assert type(dag.get_task("promoted")).__name__.startswith("_ShortCircuit")
    assert {"task", "model_family", "model_name", "epochs", "learning_rate", "dropout", "augment",
            "force_promote"} <= set(dag.params.keys())
    assert dag.params["epochs"] == load_params().train.epochs


def test_retrain_is_scheduled_and_asset_triggered(dagbag):
    from heara_common import INCOMING

    dag = dagbag.dags["heara_retrain"]
    timetable = dag.timetable
    assert "Asset" in type(timetable).__name__  # AssetOrTimeSchedule: weekly or new data, whichever first
    assert INCOMING.name in str(timetable.asset_condition)
    watch = dagbag.dags["heara_incoming_watch"]
    assert [o.name for o in watch.get_task("announce").outlets] == [INCOMING.name]


def test_trigger_form_is_validated(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    params = dagbag.dags["heara_retrain"].params
    for key, bad in (("epochs", 0), ("learning_rate", -1.0), ("dropout", 1.0), ("model_family", "gpt"),
                     ("augment", "yes"), ("overrides", "train.lr=1")):
        with pytest.raises(ParamValidationError):
            params.get_param(key).resolve(bad)
    assert params.get_param("epochs").resolve(3) == 3
