"""DAG integrity: the DagBag imports cleanly, every DAG has tags, retries and docs, no cycles, each
file parses fast, and the wiring matches the pipeline (task order, pool, trigger form, schedule)."""

from __future__ import annotations

import ast

import pytest

from training.config import load_params
from training.orchestration.airflow_local import env
from training.orchestration.form import FIELDS, FORM_KEYS, SWEEP_FIELDS, SWEEP_FORM_KEYS

DAG_IDS = {
    "heara_retrain",
    "heara_rollback",
    "heara_batch_predict",
    "heara_incoming_watch",
    "heara_sweep",
    "heara_monitor",
}


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
    stats = {
        s.file.rsplit("/", 1)[-1]: s.duration.total_seconds()
        if hasattr(s.duration, "total_seconds")
        else float(s.duration)
        for s in dagbag.dagbag_stats
    }
    assert {f"{d}.py" for d in DAG_IDS} <= set(stats)
    for file, seconds in stats.items():
        assert seconds < 2.0, f"{file} took {seconds:.2f} s to parse"


def test_retrain_wiring(dagbag):
    dag = dagbag.dags["heara_retrain"]
    orch = load_params().orchestrate
    chain = [
        "resolve_run",
        "ingest",
        "validate",
        "preprocess",
        "split",
        "augment",
        "train",
        "evaluate",
        "register",
        "promote",
        "promoted",
        "reload_serving",
    ]
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

    # The form is built from training/orchestration/form.py, its defaults from params.yaml.
    params = load_params()
    assert set(dag.params.keys()) == set(FIELDS)
    assert {
        "task",
        "overlay",
        "model_family",
        "model_name",
        "epochs",
        "learning_rate",
        "dropout",
        "augment",
        "force_promote",
        "overrides",
    } <= set(dag.params.keys())
    for name, key in FORM_KEYS.items():
        value = params.to_dict()
        for part in key.split("."):
            value = value[part]
        assert dag.params[name] == value, name
    assert dag.params["epochs"] == params.train.epochs and dag.params["overlay"] == ""
    assert "params.full.yaml" in dag.params.get_param("overlay").schema["examples"]


def test_retrain_tasks_take_no_ordering_only_arguments(repo_root):
    """Order without data is chain()'s job: every argument a retrain task takes is used in its body."""
    tree = ast.parse((repo_root / "dags" / "heara_retrain.py").read_text(encoding="utf-8"))
    tasks = [
        f
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef) and any("task" in ast.unparse(d) for d in f.decorator_list)
    ]
    assert len(tasks) == 12
    for fn in tasks:
        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        unused = [a.arg for a in fn.args.args if a.arg not in used]
        assert not unused, f"{fn.name} takes {unused} only to be ordered: use chain()"
    assert any(isinstance(n, ast.Call) and ast.unparse(n.func) == "chain" for n in ast.walk(tree))


def test_dag_files_import_only_light_modules_at_parse_time(repo_root):
    """DAG files are parsed every 30 s: module-level imports stay within Airflow's SDK, the shared wiring
    and the light core of training (config, env, the form table); the rest is imported inside tasks."""
    allowed = {
        "__future__",
        "datetime",
        "airflow.sdk",
        "heara_common",
        "training.config",
        "training.env",
        "training.orchestration.form",
    }
    for path in (repo_root / "dags").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                assert node.module in allowed, f"{path.name} imports {node.module} at module level"
            elif isinstance(node, ast.Import):
                assert {a.name for a in node.names} <= allowed, f"{path.name}: {ast.unparse(node)}"


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
    for key, bad in (
        ("epochs", 0),
        ("epochs", 201),
        ("learning_rate", -1.0),
        ("learning_rate", 0.0),
        ("dropout", 1.0),
        ("model_family", "gpt"),
        ("model_profile", "huge"),
        ("task", ""),
        ("augment", "yes"),
        ("overrides", "train.lr=1"),
        ("overlay", 3),
    ):
        with pytest.raises(ParamValidationError):
            params.get_param(key).resolve(bad)
    assert params.get_param("epochs").resolve(3) == 3
    assert params.get_param("overlay").resolve("my/own-overlay.yaml") == "my/own-overlay.yaml"  # a free path


def test_sweep_wiring(dagbag):
    """set_up -> trials (mapped over one job per worker, in the gpu pool) -> clean_up (even after a failed
    worker) -> summarize (emits heara_sweep_best); the form from training/orchestration/form.py."""
    from heara_common import SWEEP_BEST

    dag = dagbag.dags["heara_sweep"]
    orch = load_params().orchestrate
    chain = ["set_up", "trials", "clean_up", "summarize"]
    for a, b in zip(chain, chain[1:]):
        assert b in dag.get_task(a).downstream_task_ids, f"{a} -> {b}"
    trials = dag.get_task("trials")
    assert trials.is_mapped and set(trials.op_kwargs_expand_input.value) == {"job"}
    assert trials.partial_kwargs["pool"] == orch.gpu_pool
    assert trials.partial_kwargs["execution_timeout"] is not None
    assert dag.get_task("clean_up").trigger_rule == "all_done"
    assert [o.name for o in dag.get_task("summarize").outlets] == [SWEEP_BEST.name]
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered by hand (or the API) only
    assert dag.max_active_runs == 1

    params = load_params()
    assert set(dag.params.keys()) == set(SWEEP_FIELDS)
    assert {"family", "trials", "workers", "timeout_min", "storage"} <= set(dag.params.keys())
    for name, key in SWEEP_FORM_KEYS.items():
        value = params.to_dict()
        for part in key.split("."):
            value = value[part]
        assert dag.params[name] == value, name
    for key, bad in (("family", "gpt"), ("trials", 0), ("workers", 0), ("timeout_min", -1), ("storage", 3)):
        with pytest.raises(Exception, match="alid"):  # ParamValidationError
            dag.params.get_param(key).resolve(bad)
    assert dag.params.get_param("timeout_min").resolve(None) is None


def test_retrain_runs_on_a_sweep_s_best_only_when_switched_on(tmp_path, monkeypatch, repo_root, dagbag):
    """Off by default (params.yaml sweep.retrain_on_best); on, the retrain DAG also runs on the sweep's."""
    import yaml
    from airflow.dag_processing.dagbag import DagBag
    from heara_common import SWEEP_BEST

    assert SWEEP_BEST.name not in str(dagbag.dags["heara_retrain"].timetable.asset_condition)
    tree = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    tree["sweep"]["retrain_on_best"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("HEARA_PARAMS", str(tmp_path / "params.yaml"))
    folder = env({})["AIRFLOW__CORE__DAGS_FOLDER"]
    switched = DagBag(dag_folder=f"{folder}/heara_retrain.py")
    condition = str(switched.dags["heara_retrain"].timetable.asset_condition)
    assert SWEEP_BEST.name in condition and "heara_incoming_labeled_data" in condition


def test_monitor_wiring_and_the_drift_policy(tmp_path, monkeypatch, repo_root, dagbag):
    """heara_monitor: prune, judge, and the drift event only on a persistent alarm; heara_retrain runs on
    that event with monitor.on_drift retrain (params.yaml's default), not with review."""
    import yaml
    from airflow.dag_processing.dagbag import DagBag
    from heara_common import DRIFT, REVIEWED

    dag = dagbag.dags["heara_monitor"]
    assert "judge" in dag.get_task("prune").downstream_task_ids
    assert {"drifted", "publish_drift"} <= dag.get_task("judge").downstream_task_ids
    assert "publish_drift" in dag.get_task("drifted").downstream_task_ids
    assert dag.get_task("review").upstream_task_ids == {"judge"}  # fills the review queue each run
    assert [o.name for o in dag.get_task("publish_drift").outlets] == [DRIFT.name]
    assert load_params().monitor.schedule == "@hourly" and "Cron" in type(dag.timetable).__name__
    assert DRIFT.name in str(dagbag.dags["heara_retrain"].timetable.asset_condition)

    tree = yaml.safe_load((repo_root / "params.yaml").read_text(encoding="utf-8"))
    tree["monitor"]["on_drift"] = "review"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("HEARA_PARAMS", str(tmp_path / "params.yaml"))
    folder = env({})["AIRFLOW__CORE__DAGS_FOLDER"]
    review = DagBag(dag_folder=f"{folder}/heara_retrain.py")
    condition = str(review.dags["heara_retrain"].timetable.asset_condition)
    assert DRIFT.name not in condition and "heara_incoming_labeled_data" in condition

    # retrain_with_reviews: drift alone does not retrain; drift and new reviewed labels together do.
    assert dag.get_task("reviews_ready").upstream_task_ids == {"review"}
    assert [o.name for o in dag.get_task("publish_reviews").outlets] == [REVIEWED.name]
    tree["monitor"]["on_drift"] = "retrain_with_reviews"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    both = DagBag(dag_folder=f"{folder}/heara_retrain.py").dags["heara_retrain"].timetable.asset_condition
    assert type(both).__name__ == "AssetAny"  # incoming | (drift & reviewed)
    inner = [c for c in both.objects if type(c).__name__ == "AssetAll"]
    assert len(inner) == 1 and {a.name for a in inner[0].objects} == {DRIFT.name, REVIEWED.name}
