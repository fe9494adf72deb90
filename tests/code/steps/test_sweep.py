"""`heara sweep` (training/steps/sweep.py): the search space is conditional on the family; a linear sweep on
tiny inline data records every trial in Optuna and as an MLflow child of one parent run, writes an overlay
of only the keys that differ, and opens the test split once, after the search; a lagging per-epoch curve
is pruned; parallel workers are refused on SQLite; on PostgreSQL a trial whose heartbeat stopped is
failed by the clean-up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from training.config import load_params
from training.errors import ConfigError
from training.steps import sweep as sw
from training.steps.workspace import DataFiles

LABELS = ["normal", "emergency", "confusion", "distress"]
STEMS = {
    "normal": [
        "오늘 날씨 좋네",
        "밥 맛있게 먹었어",
        "산책 다녀왔어요",
        "텔레비전 보고 있어",
        "손주가 놀러 왔어",
    ],
    "emergency": [
        "넘어져서 못 일어나겠어",
        "가슴이 너무 아파",
        "피가 나요 살려줘",
        "119 불러줘",
        "숨이 안 쉬어져",
    ],
    "confusion": [
        "여기가 어디야",
        "내 안경 누가 가져갔어",
        "오늘이 무슨 요일이지",
        "집에 어떻게 가",
        "너 누구야",
    ],
    "distress": ["너무 외롭고 슬퍼", "살기 싫어", "아무도 나를 안 찾아", "눈물만 나", "다 귀찮고 힘들어"],
}


def _rows(split: str, n: int) -> list[dict]:
    return [
        {"id": f"{split}-{lab}-{i}", "text": f"{STEMS[lab][i % 5]} {split} {i}", "label": lab}
        for lab in LABELS
        for i in range(n)
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """train (10 per class, the first two augmented twice), val and test (4 per class each)."""
    out = tmp_path / "data"
    out.mkdir()
    train = pd.DataFrame(_rows("train", 10))
    train["source_id"], train["aug_method"] = train["id"], "original"
    aug = [
        {
            **r,
            "id": f"{r['id']}#aug{k}",
            "text": f"{r['text']} !{k}",
            "source_id": r["id"],
            "aug_method": "aeda",
        }
        for r in train.to_dict("records")
        if r["id"].endswith(("-0", "-1"))
        for k in range(2)
    ]
    pd.concat([train, pd.DataFrame(aug)], ignore_index=True).to_parquet(out / "train.parquet")
    for split in ("val", "test"):
        pd.DataFrame(_rows(split, 4)).to_parquet(out / f"{split}.parquet")
    return out


def _params(**sweep):
    return load_params(overrides={"preprocess": {"spacing": "none"}, "sweep": {"startup_trials": 2, **sweep}})


# --------------------------------------------------------------------------- the space


def test_the_space_depends_on_the_family():
    params = _params()
    linear = {d.name: d for d in sw.dimensions(sw.family_params(params, "linear"), "linear")}
    assert set(linear) == {"C", "ngram_max", "analyzer", "min_df", "class_weight"}
    assert linear["C"].log and linear["C"].key == "linear.C" and not linear["C"].integer
    assert linear["ngram_max"].integer and linear["analyzer"].kind == "choice"
    tiny = {d.name: d for d in sw.dimensions(sw.family_params(params, "kobert-tiny"), "kobert-tiny")}
    assert {"lr", "epochs", "dropout", "batch_size", "warmup_ratio", "augment_scale", "max_length"} <= set(
        tiny
    )
    assert {"tiny_vocab_size", "tiny_hidden_size", "tiny_layers"} <= set(tiny)
    assert tiny["lr"].log and tiny["lr"].key == "train.lr" and tiny["epochs"].integer
    assert tiny["tiny_hidden_size"].key == "model.tiny_hidden_size"
    # No multipliers to scale: augment_scale is not searched.
    off = load_params(overrides={"augment": {"enabled": False}})
    assert "augment_scale" not in {d.name for d in sw.dimensions(off, "kobert-tiny")}
    with pytest.raises(ConfigError, match="kobert-tiny, linear"):
        sw.family_params(params, "gpt")


def test_a_trial_s_values_land_on_their_params_keys():
    base = sw.family_params(_params(), "kobert-tiny")
    dims = sw.dimensions(base, "kobert-tiny")
    p = sw.apply_values(
        base, {"lr": 3e-4, "tiny_layers": 3, "tiny_hidden_size": 128, "augment_scale": 0.7}, dims
    )
    assert (p.train.lr, p.model.tiny_layers, p.model.tiny_hidden_size) == (3e-4, 3, 128)
    assert p.model.family == "kobert" and p.model.profile == "tiny"
    assert p.augment.multipliers == {"emergency": 1.4, "confusion": 1.4, "distress": 1.4}
    # The enqueued first trial is the configuration as set.
    assert sw.default_values(base, dims)["lr"] == base.train.lr
    assert sw.default_values(base, dims)["augment_scale"] == 1.0


@pytest.mark.parametrize(
    "space, match",
    [
        ({"linear": {"C": [10.0, 1.0]}}, "low 10.0 is above high 1.0"),
        ({"linear": {"C": [0.0, 1.0]}}, "log-scale range must start above 0"),
        ({"kobert_tiny": {"augment_scale": [0.5, 2.0]}}, r"augment_scale \[0.5, 2.0\]"),
        ({"linear": {"analyzer": []}}, "no values to choose from"),
        ({"linear": {"analyzer": ["bpe"]}}, "sweep.linear.analyzer"),
        ({"linear": {"penalty": [1, 2]}}, "unknown key 'sweep.linear.penalty'"),
    ],
)
def test_a_bad_space_is_a_config_error_naming_the_key(space, match):
    with pytest.raises(ConfigError, match=match):
        load_params(overrides={"sweep": space})


# --------------------------------------------------------------------------- a linear sweep, end to end


def test_a_linear_sweep_end_to_end(registry_home, data_dir, monkeypatch):
    """6 trials on SQLite: Optuna's states, MLflow's parent and children, the overlay, and the test split
    read once, after the search."""
    from mlflow import MlflowClient

    reads: list[tuple[str, str]] = []
    phase = {"now": "search"}
    real_read = pd.read_parquet

    def spy(path, *args, **kwargs):
        reads.append((phase["now"], Path(path).name))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_parquet", spy)
    files = DataFiles.from_dir(data_dir)
    params = _params()
    sweep, url = sw.start_sweep(params, "linear", trials=6)
    assert url == f"sqlite:///{registry_home / 'sweeps.sqlite'}"
    sw.run_workers(sweep.study, url, files, 1)
    assert sw.clean_up(sweep.study, url) == {"stale_failed": [], "still_running": []}
    phase["now"] = "finish"
    summary = sw.finish_sweep(sweep.study, url, files, compare_default=True)

    # The search read train and val only; the finalists were scored after it, reading test once.
    assert {name for when, name in reads if when == "search"} == {"train.parquet", "val.parquet"}
    assert [name for when, name in reads if name == "test.parquet"] == ["test.parquet"]

    study, _ = sw.load_sweep(sweep.study, url)
    states = [t.state.name for t in study.trials]
    assert len(states) == 6 and set(states) == {"COMPLETE"}  # linear: one "epoch", never pruned
    assert summary["trials"] == {"complete": 6, "pruned": 0, "failed": 0, "running": 0, "over_budget": 0}
    assert summary["best_value"] == max(t.value for t in study.trials)
    assert study.trials[0].user_attrs["heara.default"] is True  # the configuration as set comes first
    assert 0 <= summary["final_test_macro_f1"] <= 1 and 0 <= summary["default_test_macro_f1"] <= 1

    client = MlflowClient()
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["heara.sweep"] == "parent"
    assert parent.data.metrics["final_test_macro_f1"] == pytest.approx(summary["final_test_macro_f1"])
    assert "default_test_macro_f1" in parent.data.metrics and parent.data.params["model.family"] == "linear"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"best.yaml", "leaderboard.csv"}
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(int(r.data.tags["heara.trial"]) for r in children) == list(range(6))
    for r in children:
        assert r.data.tags["heara.study"] == sweep.study and r.data.tags["heara.family"] == "linear"
        assert r.data.tags["heara.trial_state"] == "COMPLETE" and r.info.status == "FINISHED"
        assert r.info.run_name == f"trial-{r.data.tags['heara.trial']}-complete"
        assert "linear.C" in r.data.params
        history = client.get_metric_history(r.info.run_id, "val_macro_f1")
        assert [m.step for m in history] == [1]

    # The overlay: only what differs from params.yaml, and it reproduces the best trial.
    overlay = yaml.safe_load(Path(summary["overlay"]).read_text(encoding="utf-8"))
    assert overlay["model"] == {"family": "linear"} and "sweep" not in overlay
    assert overlay["preprocess"] == {"spacing": "none"}  # this test's own override, as the trials had it
    assert set(overlay) <= {"model", "linear", "preprocess"}
    reference = load_params().linear.model_dump()
    assert all(reference[k] != v for k, v in overlay.get("linear", {}).items())
    best = load_params(overlays=[summary["overlay"]])
    for name, value in summary["best_params"].items():
        assert getattr(best.linear, name) == value
    board = pd.read_csv(Path(summary["overlay"]).with_name("leaderboard.csv"))
    assert board["trial"].iloc[0] == summary["best_trial"] and len(board) == 6


def test_the_search_runs_without_a_test_split(registry_home, data_dir):
    (data_dir / "test.parquet").unlink()
    sweep, url = sw.start_sweep(_params(), "linear", trials=2)
    assert sw.run_worker(sweep.study, url, DataFiles.from_dir(data_dir)) == {
        "worker": 0,
        "complete": 2,
        "pruned": 0,
        "failed": 0,
        "running": 0,
        "over_budget": 0,
    }


def test_a_trial_started_after_the_budget_was_spent_stops_untrained(registry_home, data_dir):
    """Two workers can both pass MaxTrialsCallback's check when one trial is left; the second one's trial
    (its number at or past the budget) stops before training and counts nowhere."""
    sweep, url = sw.start_sweep(_params(enqueue_default=False), "linear", trials=1)
    study, _ = sw.load_sweep(sweep.study, url)
    objective = sw._Objective(study, sweep, sw.search_splits(DataFiles.from_dir(data_dir)), 0)
    study.optimize(objective, n_trials=3)  # no MaxTrialsCallback: as if another worker raced this one
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]  # the study stopped itself
    over = study.trials[1]
    assert over.user_attrs["heara.over_budget"] and "heara.mlflow_run_id" not in over.user_attrs
    assert sw._counts(study.trials) == {
        "complete": 1,
        "pruned": 0,
        "failed": 0,
        "running": 0,
        "over_budget": 1,
    }
    assert list(sw.leaderboard(study, sweep)["trial"]) == [0]


def test_the_cli_prints_progress_and_ends_with_a_json_line(registry_home, data_dir):
    from training.cli import app

    result = CliRunner().invoke(
        app, ["sweep", "--family", "linear", "--trials", "2", "--data-dir", str(data_dir), "--study", "cli"]
    )
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["study"] == "cli" and last["trials"]["complete"] == 2
    assert Path(last["overlay"]).is_file() and "final_test_macro_f1" in last
    # The same study continues with a larger budget.
    again = CliRunner().invoke(
        app, ["sweep", "--family", "linear", "--trials", "3", "--data-dir", str(data_dir), "--study", "cli"]
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["trials"]["complete"] == 3
    other = CliRunner().invoke(
        app, ["sweep", "--family", "kobert-tiny", "--data-dir", str(data_dir), "--study", "cli"]
    )
    assert other.exit_code == 2 and "searches the linear family" in other.output


def test_parallel_workers_on_sqlite_are_refused_in_one_line(registry_home, data_dir):
    from training.cli import app

    with pytest.raises(ConfigError, match="2 parallel workers need a PostgreSQL storage"):
        sw.start_sweep(_params(), "linear", workers=2)
    result = CliRunner().invoke(
        app, ["sweep", "--family", "linear", "--workers", "3", "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "3 parallel workers need a PostgreSQL storage" in message and "Traceback" not in result.output


# --------------------------------------------------------------------------- pruning


def test_a_lagging_epoch_curve_is_pruned(registry_home, data_dir, monkeypatch):
    """kobert-tiny with a stand-in fit: each trial's per-epoch curve rises to a ceiling set by its learning
    rate; the median pruner stops those below the running median, and their MLflow runs say so."""
    import math

    from mlflow import MlflowClient

    from training.steps import train as train_step
    from training.trainer.loop import TrainResult

    def fake_fit(params, splits, labels, work, *, on_epoch=None, resume=True):
        assert set(splits) == {"train", "val"}
        ceiling = max(0.05, 1 - abs(math.log10(params.train.lr) + 3) / 2)  # best at lr 1e-3
        history = []
        for epoch in range(1, params.train.epochs + 1):
            record = {"epoch": epoch, "train_loss": 1.0 / epoch, "val_macro_f1": ceiling * (1 - 0.5**epoch)}
            history.append(record)
            on_epoch(epoch, record)
        (work / "model").mkdir(parents=True, exist_ok=True)
        best = history[-1]["val_macro_f1"]
        return work / "model", TrainResult(
            best, history, len(history), len(history), False, "cpu", "fp32", 1.0
        )

    monkeypatch.setattr(train_step, "fit_model", fake_fit)
    params = _params(warmup_epochs=2, kobert_tiny={"epochs": [4, 5]})
    sweep, url = sw.start_sweep(params, "kobert-tiny", trials=8)
    sw.run_workers(sweep.study, url, DataFiles.from_dir(data_dir), 1)
    study, _ = sw.load_sweep(sweep.study, url)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned, [(t.number, t.state.name, t.params.get("lr")) for t in study.trials]
    for t in pruned:
        # stopped after its warm-up (2 epochs) and before its last epoch; its reported curve is kept
        assert 2 <= max(t.intermediate_values) < t.params["epochs"]
    client = MlflowClient()
    run = client.get_run(pruned[0].user_attrs["heara.mlflow_run_id"])
    assert run.data.tags["heara.trial_state"] == "PRUNED" and run.info.status == "KILLED"
    assert run.info.run_name.endswith("-pruned")
    assert len(client.get_metric_history(run.info.run_id, "val_macro_f1")) == max(
        pruned[0].intermediate_values
    )


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_whose_heartbeat_stopped_is_failed_by_the_clean_up(registry_home, data_dir, pg_storage):
    """A worker killed mid-trial leaves it RUNNING; once its heartbeat is older than twice the interval,
    the clean-up marks the trial FAIL and ends its MLflow run as FAILED. A live one is left alone."""
    from mlflow import MlflowClient

    sweep, url = sw.start_sweep(_params(heartbeat_s=1, enqueue_default=False), "linear", storage=pg_storage)
    assert url.startswith("postgresql+psycopg://")
    study, _ = sw.load_sweep(sweep.study, url)
    client = MlflowClient()

    def dead_worker_trial() -> int:
        trial = study.ask()
        run = client.create_run(sweep.experiment_id, tags={"mlflow.parentRunId": sweep.parent_run_id})
        trial.set_user_attr("heara.mlflow_run_id", run.info.run_id)
        study._storage.record_heartbeat(trial._trial_id)  # one beat, then the worker "dies"
        return trial.number

    first = dead_worker_trial()
    assert sw.clean_up(sweep.study, url, wait=False)["still_running"] == [first]  # still within its grace
    time.sleep(2.5)
    second = dead_worker_trial()
    result = sw.clean_up(sweep.study, url, wait=False)
    assert result == {"stale_failed": [first], "still_running": [second]}
    assert study.trials[first].state.name == "FAIL" and study.trials[second].state.name == "RUNNING"
    run = client.get_run(study.trials[first].user_attrs["heara.mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["heara.trial_state"] == "FAIL"
    # All workers done: the clean-up waits out the grace period of the last one.
    assert sw.clean_up(sweep.study, url) == {"stale_failed": [second], "still_running": []}


@pytest.mark.slow
def test_two_worker_processes_share_one_budget_on_postgresql(registry_home, data_dir, pg_storage):
    """`heara sweep --workers 2`: two processes, one study, 6 trials in all, each trial one MLflow child."""
    from mlflow import MlflowClient

    summary = sw.sweep_step(
        _params(), "linear", DataFiles.from_dir(data_dir), trials=6, workers=2, storage=pg_storage
    )
    n = summary["trials"]
    assert n["complete"] + n["pruned"] + n["failed"] == 6 and n["running"] == 0
    study, _ = sw.load_sweep(summary["study"], sw.storage_url(_params(), pg_storage))
    workers = {
        t.user_attrs.get("heara.worker") for t in study.trials if not t.user_attrs.get("heara.over_budget")
    }
    assert workers == {0, 1}
    children = MlflowClient().search_runs(
        [MlflowClient().get_run(summary["parent_run_id"]).info.experiment_id],
        f"tags.mlflow.parentRunId = '{summary['parent_run_id']}'",
    )
    assert len(children) == 6
