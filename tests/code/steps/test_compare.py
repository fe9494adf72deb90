"""`heara compare`: family specs, one study of linear + kobert-tiny (+ a family that cannot load) with two
seeds against a throw-away MLflow store: parent and child runs, tags, artifacts, the test split used for
scoring only, and a child's logged configuration re-training to the same test macro-F1."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from training.config import Params, load_params, parse_overrides
from training.errors import ConfigError
from training.paths import FULL_OVERLAY
from training.steps.compare import FamilySpec, check_overrides, parse_families

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"
FAST = [
    "preprocess.spacing=none",  # no Kiwi: seconds, not a minute
    "train.max_steps=2",
    "train.epochs=1",
    "model.tiny_vocab_size=300",
    "evaluate.latency_samples=3",
    "promote.bootstrap_samples=100",
]


# ---------------------------------------------------------------- family specs
def test_specs_map_to_params_keys() -> None:
    linear, tiny, kobert, local, hf = parse_families(
        "linear, kobert-tiny,kobert,kobert:/models/kobert,hf:klue/bert-base"
    )
    assert linear == FamilySpec("linear", {"model.family": "linear"}) and linear.overlays == ()
    assert tiny.overrides == {"model.family": "kobert", "model.profile": "tiny"} and not tiny.full
    assert kobert.overrides == {
        "model.family": "kobert",
        "model.profile": "full",
        "model.name": "skt/kobert-base-v1",
    }
    assert local.overrides["model.name"] == "/models/kobert" and local.overlays == (FULL_OVERLAY,)
    assert hf.name == "hf:klue/bert-base" and hf.overrides["model.family"] == "hf" and hf.full


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("linear,bert", "unknown model family 'bert' in --families: use linear, kobert-tiny"),
        ("hf:", "unknown model family 'hf:'"),
        (" , ", "--families is empty"),
        ("linear,linear", "--families names linear twice"),
    ],
)
def test_bad_specs_are_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_families(text)
    assert "\n" not in str(err.value)


def test_set_may_not_decide_the_model() -> None:
    check_overrides({"train.lr", "train.seed"})
    with pytest.raises(ConfigError, match="--set model.name is decided per family"):
        check_overrides({"model.name", "train.lr"})


# ---------------------------------------------------------------- one study
def _family_params(specs: str) -> dict[str, Params]:
    """What the CLI builds: params.yaml, the family's overlay, (--overlay), --set, the family's keys."""
    out = {}
    for spec in parse_families(specs):
        pairs = [*FAST, *(f"{k}={v}" for k, v in spec.overrides.items())]
        out[spec.name] = load_params(overrides=parse_overrides(pairs), overlays=spec.overlays)
    return out


def _data(folder: Path) -> Path:
    rows = pd.read_csv(SAMPLE).sample(frac=1.0, random_state=0)
    parts = {
        "train": rows.groupby("label").head(30),
        "val": rows.groupby("label").nth(range(30, 38)),
        "test": rows.groupby("label").nth(range(38, 48)),
    }
    folder.mkdir(parents=True)
    for name, df in parts.items():
        df[["id", "text", "label"]].to_parquet(folder / f"{name}.parquet")
    return folder


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One study (a fresh HEARA_HOME and MLflow store), with every fit_model call recorded."""
    from training.registry.tracking import tracking_uri, using_store
    from training.steps import compare
    from training.steps.workspace import DataFiles

    tmp = tmp_path_factory.mktemp("compare")
    fits: list[dict[str, pd.DataFrame]] = []
    real_fit = compare.fit_model

    def spy(params, splits, *args, **kwargs):
        fits.append(splits)
        return real_fit(params, splits, *args, **kwargs)

    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("heara.pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEARA_HOME", str(tmp / "home"))
        mp.setattr(logger, "level", logging.INFO)
        mp.setattr(logger, "handlers", [handler])
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setattr(compare, "fit_model", spy)
        files = DataFiles.from_dir(_data(tmp / "data"))
        with using_store(tracking_uri()):
            result = compare.compare_step(
                _family_params("linear,kobert-tiny,hf:/no/such/model"), files, seeds=2
            )
            # this study's fits and progress lines only
            yield {"result": result, "files": files, "fits": list(fits), "log": list(lines)}


def _runs(study: dict):
    from mlflow import MlflowClient

    result = study["result"]
    client = MlflowClient()
    parent = client.get_run(result["parent_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.heara.study = '{result['study']}' and tags.heara.kind = 'compare-run'",
        order_by=["attributes.start_time ASC"],
    )
    return client, parent, sorted(children, key=lambda r: int(r.data.tags["heara.trial"]))


def test_the_leaderboard_ranks_the_families_and_keeps_the_failure_as_a_row(study: dict) -> None:
    result = study["result"]
    rows = {r.family: r for r in result["rows"]}
    assert [r.family for r in result["rows"]][-1] == "hf:/no/such/model"
    assert rows["linear"].seeds == [42, 43] and rows["kobert-tiny"].seeds == [42, 43]
    for name in ("linear", "kobert-tiny"):
        r = rows[name]
        assert 0 <= r.ci_low <= r.macro_f1 <= r.ci_high <= 1
        assert set(r.per_class_f1) == {"normal", "emergency", "confusion", "distress"}
        assert r.latency_p95_ms > 0 and r.size_bytes > 0 and r.train_seconds > 0
        assert set(r.slices) == {"short", "no_spaces", "typos"}
    assert rows["linear"].seed_sd == 0.0  # the seed is only the solver's random_state
    failed = rows["hf:/no/such/model"]
    assert not failed.ok and "ConfigError" in failed.error and failed.runs == 2
    out = Path(result["out_dir"])
    assert out.parent.name == "compare" and out.parent.parent.name == "danger"  # the task's folder
    for name in ("leaderboard.md", "leaderboard.html", "leaderboard.png", "leaderboard.json"):
        assert (out / name).is_file()
    assert "| 1 |" in (out / "leaderboard.md").read_text(encoding="utf-8")


def test_each_run_reports_one_progress_line_as_it_finishes(study: dict) -> None:
    progress = [line for line in study["log"] if line.startswith("compare [")]
    assert [line.split(": ")[0] for line in progress] == [
        "compare [1/6] linear seed 42",
        "compare [2/6] linear seed 43",
        "compare [3/6] kobert-tiny seed 42",
        "compare [4/6] kobert-tiny seed 43",
        "compare [5/6] hf:/no/such/model seed 42 failed",
    ]
    assert "test macro-F1 0." in progress[0] and " s" in progress[0]
    assert "its other seeds are skipped" in progress[4]


def test_parent_and_children_are_linked_by_explicit_tags(study: dict) -> None:
    client, parent, children = _runs(study)
    assert parent.info.run_name.startswith("compare-")
    assert parent.data.tags["heara.kind"] == "compare"
    assert parent.data.tags["heara.study"] == study["result"]["study"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.md", "leaderboard.html", "leaderboard.png", "leaderboard.json"} <= artifacts
    assert parent.data.metrics["linear.test_macro_f1_mean"] == pytest.approx(
        next(r.macro_f1 for r in study["result"]["rows"] if r.family == "linear")
    )
    # linear x2, kobert-tiny x2, the failed hf (its second seed is not run: it would fail alike)
    assert [(c.data.tags["heara.family"], c.data.tags["heara.seed"]) for c in children] == [
        ("linear", "42"),
        ("linear", "43"),
        ("kobert-tiny", "42"),
        ("kobert-tiny", "43"),
        ("hf:/no/such/model", "42"),
    ]
    for trial, child in enumerate(children, 1):
        tags = child.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["heara.study"] == study["result"]["study"] and tags["heara.trial"] == str(trial)
        assert child.data.params["train.seed"] == tags["heara.seed"]
        assert child.data.params["model.family"] == tags["heara.model_family"]
        assert "params.yaml" in {a.path for a in client.list_artifacts(child.info.run_id)}
    ok, failed = children[:4], children[4]
    assert all(c.info.status == "FINISHED" and "test_macro_f1" in c.data.metrics for c in ok)
    assert {"cpu_latency_p95_ms", "model_size_bytes", "train_seconds", "slice_typos_macro_f1"} <= set(
        ok[0].data.metrics
    )
    assert failed.info.status == "FAILED" and "cannot load" in failed.data.tags["heara.error"]


def test_training_never_sees_the_test_split(study: dict) -> None:
    test_ids = set(pd.read_parquet(study["files"].test)["id"])
    assert len(study["fits"]) == 5
    for splits in study["fits"]:
        assert set(splits) == {"train", "val"}
        assert not test_ids & (set(splits["train"]["id"]) | set(splits["val"]["id"]))


def test_a_childs_logged_configuration_reproduces_its_test_macro_f1(study: dict) -> None:
    """The documented reproduction, `heara train --params <child's params.yaml>` then `heara evaluate`,
    on the linear family (deterministic)."""
    import mlflow

    from training.steps.evaluate import evaluate_step
    from training.steps.train import train_step

    _, _, children = _runs(study)
    child = children[1]  # linear, seed 43
    path = mlflow.artifacts.download_artifacts(run_id=child.info.run_id, artifact_path="params.yaml")
    params = load_params(path)
    assert params.model.family == "linear" and params.train.seed == 43
    train_step(params, study["files"])
    metrics = evaluate_step(params, study["files"])
    assert metrics["test_macro_f1"] == pytest.approx(child.data.metrics["test_macro_f1"], abs=1e-12)


def test_the_command_prints_the_leaderboard_then_a_json_line(study: dict) -> None:
    """`heara compare` end to end (linear only, one seed, in the study's store: seconds)."""
    from typer.testing import CliRunner

    from training.cli import app

    args = ["compare", "--families", "linear", "--seeds", "1", "--data-dir", str(study["files"].test.parent)]
    result = CliRunner().invoke(app, [*args, *(x for pair in FAST for x in ("--set", pair))])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["best"] == "linear" and summary["families"][0]["seeds"] == [42]
    assert summary["study"] != study["result"]["study"] and Path(summary["leaderboard"]).is_file()
    assert "macro-F1" in result.stdout and "per-class F1" in result.stdout
