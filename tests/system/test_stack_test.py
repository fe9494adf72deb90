"""The pure helpers of scripts/stack_test.py (`make stack-test`; the stack itself runs in CI's second
step)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from training.config import load_params
from training.orchestration.form import form_overrides
from training.paths import PROJECT_ROOT


@pytest.fixture(scope="module")
def st():
    spec = importlib.util.spec_from_file_location("stack_test", PROJECT_ROOT / "scripts" / "stack_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["stack_test"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("stack_test", None)


def test_databases_are_per_run_and_urls_pick_the_driver(st):
    names = st.database_names("0101120000ab12")
    assert names == {
        "airflow": "heara_stack_airflow_0101120000ab12",
        "mlflow": "heara_stack_mlflow_0101120000ab12",
        "predictions": "heara_stack_predictions_0101120000ab12",
    }
    server = "postgresql://postgres@127.0.0.1:5432/"
    assert st.database_url(server, "db") == "postgresql+psycopg://postgres@127.0.0.1:5432/db"
    assert st.database_url(server, "db", driver="") == "postgresql://postgres@127.0.0.1:5432/db"


def test_stack_params_turn_off_retries_and_schedule_only(st, tmp_path):
    dest = st.stack_params(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    params, original = load_params(dest), load_params(PROJECT_ROOT / "params.yaml")
    assert params.orchestrate.retries == 0 and params.orchestrate.schedule is None
    assert params.model_dump(exclude={"orchestrate"}) == original.model_dump(exclude={"orchestrate"})


def test_trigger_form_is_valid_for_the_dag(st):
    params = load_params(overrides=form_overrides(st.CONF))
    assert params.train.epochs == st.CONF["epochs"] and params.promote.min_f1 == 0.0
    assert params.promote.require_beat_baseline is False  # a gate any trained model passes


def test_clean_env_drops_the_callers_stack_settings(st):
    base = {
        "PATH": "/bin",
        "HEARA_MODEL_DIR": "/m",
        "MLFLOW_TRACKING_URI": "http://elsewhere",
        "AIRFLOW_HOME": "/a",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "BENTOML_HOME": "/b",
    }
    env = st.clean_env(base, HEARA_HOME="/h")
    assert env["PATH"] == "/bin" and env["HEARA_HOME"] == "/h" and env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert (
        not {
            "HEARA_MODEL_DIR",
            "MLFLOW_TRACKING_URI",
            "AIRFLOW_HOME",
            "AIRFLOW__CORE__EXECUTOR",
            "BENTOML_HOME",
        }
        & env.keys()
    )


def test_unhealthy_names_every_component_not_reported_healthy(st):
    healthy = {k: {"status": "healthy"} for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")}
    assert st.unhealthy(healthy) == []
    assert st.unhealthy({**healthy, "triggerer": {"status": "unhealthy"}}) == ["triggerer"]
    assert st.unhealthy({"metadatabase": {"status": "healthy"}}) == [
        "scheduler",
        "triggerer",
        "dag_processor",
    ]
    assert len(st.unhealthy(None)) == 4


def test_log_lines_reads_structured_and_plain_task_logs(st):
    structured = {
        "content": [
            {"timestamp": "t1", "level": "info", "event": "starting"},
            {"event": "boom", "level": "error", "error_detail": ["x"]},
            "plain\nline",
        ]
    }
    assert st.log_lines(structured) == [
        "t1 info starting",
        "error boom {'error_detail': ['x']}",
        "plain",
        "line",
    ]
    assert st.log_lines({"content": "a\nb"}) == ["a", "b"]
    assert st.task_states(
        [{"task_id": "train", "state": None}, {"task_id": "ingest", "state": "success"}]
    ) == {"train": "none", "ingest": "success"}
