"""`heara monitor` on a tiny model: the reference saved with the folder, one window judged and appended to
the history, the persistence rule, the report, a folder without a reference, and the command over a real
SQLite prediction log. (Whether the signals catch real drift: tests/model/test_monitoring.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from serving.drift_gauges import DriftGauges
from training.config import Params
from training.errors import NotFoundError
from training.evaluation.monitoring import REFERENCE_DIR, Reference, build_reference
from training.model.predictor import Predictor
from training.steps.monitor import monitor_step

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"
QUICK = {
    "monitor": {"window": 60, "min_texts": 40, "mmd_permutations": 50, "persistence_k": 2, "persistence_m": 3}
}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


@pytest.fixture
def model(tiny_model_folder: Path, tmp_path: Path, sample: pd.DataFrame, one_torch_thread) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_folder, folder)
    predictor = Predictor.load(folder, device="cpu")
    val = sample.iloc[:120]
    ref = build_reference(
        predictor,
        train_texts=sample["text"].iloc[300:600].tolist(),
        val_texts=predictor.preprocessor(val["text"].tolist()),
        val_labels=val["label"].tolist(),
        val_sent_texts=val["text"].tolist(),
        cfg=Params().override(QUICK).monitor,
    )
    ref.save(folder)
    return folder


def _window(predictor: Predictor, texts: list[str]) -> pd.DataFrame:
    scored = predictor.predict(texts)
    return pd.DataFrame(
        {
            "ts": [f"2026-11-28T10:{i // 60:02d}:{i % 60:02d}+00:00" for i in range(len(texts))],
            "masked_text": texts,
            "scores": [p.scores for p in scored],
        }
    )


def test_the_reference_travels_with_the_folder(model: Path) -> None:
    ref = Reference.load(model)
    assert ref is not None and (model / REFERENCE_DIR / "reference.json").is_file()
    assert ref.probs.shape == (120, 4) and ref.projection.shape[0] == 120
    assert ref.components.shape[0] == ref.projection.shape[1] <= 64
    assert 0.05 <= ref.temperature <= 20 and set(ref.descriptors.columns) >= {
        "hangul_ratio",
        "spacing_anomaly",
    }


def test_a_window_is_judged_recorded_and_drawn(model: Path, sample: pd.DataFrame, tmp_path: Path) -> None:
    params = Params().override(QUICK)
    predictor = Predictor.load(model, device="cpu")
    calm = _window(predictor, sample["text"].iloc[120:180].tolist())
    record = monitor_step(
        params, calm, model_dir=model, version="3", out_dir=tmp_path / "m", log_to_mlflow=False
    )
    assert record["enough"] and record["model_version"] == "3" and record["window"]["n"] == 60
    assert record["window"]["from"].startswith("2026-11-28T10:00:00")
    assert {"label_js", "domain_auc", "estimated_macro_f1", "descriptors"} <= set(record["signals"])
    assert all(0 <= p <= 1 for p in record["tests"].values())
    for name in ("report.json", "report.html", "drift.png", "history.jsonl"):
        assert (tmp_path / "m" / name).is_file(), name
    page = (tmp_path / "m" / "report.html").read_text(encoding="utf-8")
    assert "version 3" in page and "drift.png" in page

    # Spaces removed by a new speech-to-text engine: every window alarms; the alarm needs 2 of the last 3.
    squashed = _window(predictor, [t.replace(" ", "") for t in sample["text"].iloc[200:260]])
    first = monitor_step(
        params, squashed, model_dir=model, version="3", out_dir=tmp_path / "m", log_to_mlflow=False
    )
    assert first["window_alarm"] and any("spacing" in r or "eojeols" in r for r in first["reasons"])
    assert not first["persistent_alarm"] or record["window_alarm"]
    second = monitor_step(
        params, squashed, model_dir=model, version="3", out_dir=tmp_path / "m", log_to_mlflow=False
    )
    assert second["persistent_alarm"]
    history = (tmp_path / "m" / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(history) == 3 and json.loads(history[-1])["persistent_alarm"]

    # The service's drift gauges (/metrics) read the report this wrote: the same figures.
    gauges = DriftGauges(tmp_path / "m" / "report.json")
    assert gauges.refresh() and not gauges.refresh()  # read once; unchanged: not read again
    assert gauge("heara_drift_alarm", kind="persistent") == 1.0
    assert gauge("heara_drift_window_texts") == 60
    assert gauge("heara_drift_estimated_macro_f1", which="window") == pytest.approx(
        second["signals"]["estimated_macro_f1"]
    )
    assert gauge("heara_drift_domain_auc") == pytest.approx(second["signals"]["domain_auc"])
    for test, p in second["tests"].items():
        assert gauge("heara_drift_p_value", test=test) == pytest.approx(p)

    # Too few predictions: said, never an alarm.
    few = monitor_step(
        params, calm.head(10), model_dir=model, version="3", out_dir=tmp_path / "m", log_to_mlflow=False
    )
    assert not few["enough"] and not few["window_alarm"] and "too few" in few["reasons"][0]


def gauge(name: str, **labels: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels)


def test_drift_gauges_skip_a_missing_or_broken_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    gauges = DriftGauges(report)
    assert not gauges.refresh()  # nothing judged yet
    report.write_text('{"alarm": true, "persistent_alarm": true, "window": {"n": 7}}', "utf-8")
    assert gauges.refresh() and gauge("heara_drift_window_texts") == 7
    report.write_text("{not json", "utf-8")
    assert not gauges.refresh() and gauge("heara_drift_window_texts") == 7  # kept as it was


def logged_window(model: Path, texts: list[str], db: Path) -> pd.DataFrame:
    """A window as the service logs it: the real Classifier capturing monitoring features, the prediction
    log's writer computing the descriptors, read back as `heara monitor` reads it."""
    from serving.inference import Classifier
    from serving.predlog import PredictionLog, make_records
    from serving.schemas import pop_features

    clf = Classifier.load(model, max_tokens_per_batch=256, device="cpu", log_features=True)
    answered = clf.predict(texts)
    features = pop_features(answered)
    with PredictionLog(f"sqlite:///{db}") as log:
        log.log(make_records("0" * 16, texts, answered, "heara-danger", "3", 1.0, features=features))
        assert log.flush(10)
        return pd.DataFrame(log.window(len(texts)))


def test_the_monitor_uses_what_the_service_logged(model: Path, sample: pd.DataFrame, tmp_path: Path) -> None:
    """Every row logged: nothing computed (the model is not even loaded); the same figures as computing
    them all from the masked text. Rows without them (a gap, another version's components) are computed."""
    from training.evaluation.monitoring import Logged, observe

    params = Params().override(QUICK)
    frame = logged_window(model, sample["text"].iloc[120:180].tolist(), tmp_path / "p.sqlite")
    assert frame["projection"].notna().all() and frame["descriptors"].notna().all()
    record = monitor_step(
        params, frame, model_dir=model, version="3", out_dir=tmp_path / "a", log_to_mlflow=False
    )
    assert record["features"] == {
        "projection": {"logged": 60, "computed": 0},
        "descriptors": {"logged": 60, "computed": 0},
    }
    bare = frame.drop(columns=["projection", "descriptors"])  # a log written before the features
    again = monitor_step(
        params, bare, model_dir=model, version="3", out_dir=tmp_path / "b", log_to_mlflow=False
    )
    assert (
        again["features"]["projection"] == again["features"]["descriptors"] == {"logged": 0, "computed": 60}
    )
    assert again["signals"]["domain_auc"] == pytest.approx(record["signals"]["domain_auc"], abs=0.05)
    assert again["tests"].keys() == record["tests"].keys()

    # Logged and computed features agree row by row (float16 aside): the same model read the same text.
    ref, predictor = Reference.load(model), Predictor.load(model, device="cpu")
    texts = frame["masked_text"].tolist()
    n, dims = len(frame), ref.components.shape[0]
    logged = Logged.from_rows(frame["projection"].tolist(), frame["descriptors"].tolist(), n, dims)
    computed = observe(predictor, ref, texts, probs=np.zeros((n, 4)))
    np.testing.assert_allclose(logged.projection, computed["projection"], rtol=2e-3, atol=2e-3)
    pd.testing.assert_frame_equal(logged.descriptors, computed["descriptors"], atol=1e-5)

    # A gap: half the rows without descriptors, a third with another version's projection (other dims).
    mixed = frame.copy()
    mixed.loc[::2, "descriptors"] = None
    mixed.loc[::3, "projection"] = mixed["projection"].iloc[0][:-4]  # 2 dimensions fewer
    part = monitor_step(
        params, mixed, model_dir=model, version="3", out_dir=tmp_path / "c", log_to_mlflow=False
    )
    assert part["features"] == {
        "projection": {"logged": 40, "computed": 20},
        "descriptors": {"logged": 30, "computed": 30},
    }
    assert part["tests"].keys() == record["tests"].keys()


def test_an_older_reference_is_not_compared_on_unk_rate(model: Path, sample: pd.DataFrame) -> None:
    """References made before unknown pieces were counted by id hold an unk_rate of zeros (KoBERT's
    tokenize() never returns "[UNK]"): a window's real unk_rate is not tested against them."""
    import dataclasses

    from training.evaluation.monitoring import UNK_BY_ID, observe, window_signals

    ref = Reference.load(model)
    assert ref.extra[UNK_BY_ID] and (ref.descriptors["unk_rate"] > 0).any()  # counted by id
    obs = observe(Predictor.load(model, device="cpu"), ref, sample["text"].iloc[120:180].tolist())
    cfg = Params().override(QUICK).monitor
    assert "descriptor:unk_rate" in window_signals(ref, **obs, cfg=cfg)["tests"]
    older = dataclasses.replace(ref, extra={k: v for k, v in ref.extra.items() if k != UNK_BY_ID})
    assert "descriptor:unk_rate" not in window_signals(older, **obs, cfg=cfg)["tests"]


def test_a_version_without_a_reference_is_named(tiny_model_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="version 7 has no monitoring reference"):
        monitor_step(Params(), pd.DataFrame(), model_dir=tiny_model_folder, version="7", out_dir=tmp_path)


def test_heara_monitor_reads_the_prediction_log(
    model: Path, sample: pd.DataFrame, tmp_path, registry_home
) -> None:
    from serving.predlog import PredictionLog, make_records
    from training.cli import app
    from training.registry.champion import from_dir

    predictor = Predictor.load(model, device="cpu")
    texts = sample["text"].iloc[120:200].tolist()
    version = from_dir(model).version_label
    db = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    with PredictionLog(db) as log:
        log.log(make_records("0" * 16, texts, predictor.predict(texts), "heara-danger", version, 3.0))
        assert log.flush(10)
    env = {"HEARA_MODEL_DIR": str(model), "HEARA_PREDICTION_DB": db}
    overrides = [f"monitor.{k}={v}" for k, v in QUICK["monitor"].items()]
    args = ["monitor", "--out", str(tmp_path / "report")] + [x for o in overrides for x in ("--set", o)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["n"] == 60 and line["model_version"] == version  # the newest monitor.window rows
    assert (tmp_path / "report" / "report.html").is_file()

    # Retention: `heara monitor prune --older-than N` deletes what is older (nothing here is a day old).
    result = CliRunner().invoke(app, ["monitor", "prune", "--older-than", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["deleted"] == 0
    result = CliRunner().invoke(app, ["monitor", "prune", "--older-than", "0"], env=env)
    assert json.loads(result.stdout.strip().splitlines()[-1])["deleted"] == 80

    # The monitor DAG's task bodies do the same from params.yaml (the DAG's wiring: test_dags.py).
    from training.orchestration import tasks

    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with PredictionLog(db) as log:
            log.log(make_records("1" * 16, texts, predictor.predict(texts), "heara-danger", version, 3.0))
            assert log.flush(10)
        params_file = Params().override(QUICK).save(tmp_path / "params.yaml")
        verdict = tasks.monitor_window(str(params_file))
        assert verdict["enough"] and verdict["evidence"]["model_version"] == version
        assert verdict["evidence"]["n"] == 60 and "masked_text" not in json.dumps(verdict)
        assert tasks.prune_predictions(str(params_file)) == {"deleted": 0, "retention_days": 90}
