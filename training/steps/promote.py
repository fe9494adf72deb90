"""Step `promote`: check that the challenger can be served at all (training/registry/servable.py: fetched
as the service fetches it, loaded, one smoke prediction), score champion and challenger on the frozen
test split in the same run, apply the gate (training/registry/gate.py) and move the `champion` alias
only if it passes; every decision is logged (MLflow run, version tags, audit ledger).

The baseline floor (`promote.require_beat_baseline`) needs the train split beside the test split: the
linear baseline is fitted on its original rows (or read from its cache, training/evaluation/
baseline_cache.py) and the challenger must score at least as well on the same test rows.

`--force` overrides the gate's checks, never the servability check: a version the service cannot load
is refused, recorded as refused, and raised as NotServableError (the CLI's exit code 2)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.labels import indicator, label_counts
from training.data.reports import write_json
from training.data.validate import require_known_labels
from training.errors import NotFoundError, NotServableError
from training.registry.gate import Decision, decide, decision_record, score

log = logging.getLogger("heara.pipeline")


def _load_version(name: str, version: int):
    """The version's Predictor, through the real pyfunc loading path."""
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model().predictor


def _not_servable(refusal: NotServableError, champion_v: int | None, *, force: bool) -> Decision:
    """The refusal of a version the service could not load or that answered wrong."""
    unforced = " (--force does not override this)" if force else ""
    return Decision(
        False,
        f"refused: not servable{unforced}: {refusal.reason}",
        False,
        int(refusal.version),
        champion_v,
        {"servable": False},
        {},
    )


def _train_split(train_path: Path | None, test_path: Path | None) -> Path:
    """The train split that goes with the test split the gate scores: the one given; else, for a test
    split given as a file, the `train.parquet` beside it (a `--data-dir` folder, DataFiles.from_dir);
    else the DVC pipeline's (DataFiles.default). A train split from another dataset than the test
    split would give a baseline figure that means nothing, so no other place is searched."""
    from training.steps.workspace import DataFiles

    if train_path is not None:
        return Path(train_path)
    if test_path is not None:
        return Path(test_path).with_name("train.parquet")
    return DataFiles.default().train


def _require_train_split(train_path: Path) -> None:
    """A missing train split stops the promotion with one line rather than skipping the check: the
    gate exists to keep worse models out, and one that opened whenever a file went missing would let
    through exactly the model nobody checked. Turning the check off is one explicit setting."""
    if not train_path.exists():
        raise NotFoundError(
            f"train split not found at {train_path}: the gate fits the baseline on it "
            "(promote.require_beat_baseline); run the data pipeline, pass the --data-dir the model was "
            "trained on, or set promote.require_beat_baseline=false"
        )


def _baseline_macro_f1(train_path: Path, test: pd.DataFrame, multilabel: bool = False) -> dict:
    """The linear baseline on this split, fitted once and then read from the cache."""
    from training.evaluation.baseline_cache import cached_baseline
    from training.paths import state

    val_path = train_path.with_name("val.parquet")  # a multi-label baseline tunes its thresholds on it
    val = pd.read_parquet(val_path) if multilabel and val_path.exists() else None
    return cached_baseline(
        pd.read_parquet(train_path), test, state().baseline_cache, multilabel=multilabel, val=val
    )


def _gate(
    params,
    name: str,
    challenger_v: int,
    champion_v: int | None,
    test: pd.DataFrame,
    labels: list[str],
    *,
    force: bool,
    test_path,
    train_path: Path,
) -> tuple[Decision, dict | None]:
    """Score challenger, champion and (when required) the baseline on the test split and apply the
    gate's rule. Returns the decision and the baseline's result (None when the check is off)."""
    from training.steps.workspace import DataFiles

    predictor = _load_version(name, challenger_v)
    require_known_labels(
        test,
        predictor.labels,
        file=str(test_path or DataFiles.default().test),
        hint=f"version {challenger_v} of {name} was trained on other labels; promote with the "
        "--data-dir it was trained on",
        multilabel=predictor.multilabel,
    )
    baseline = (
        _baseline_macro_f1(train_path, test, predictor.multilabel)
        if params.promote.require_beat_baseline
        else None
    )
    budget = params.promote.latency_budget_ms
    challenger = score(predictor, challenger_v, test, labels, latency_budget_ms=budget)
    champion_predictor = _load_version(name, champion_v) if champion_v else None
    champion = (
        score(champion_predictor, champion_v, test, labels, latency_budget_ms=budget)
        if champion_predictor is not None
        else None
    )
    decision = decide(
        params.promote,
        challenger,
        champion,
        indicator(test["label"], labels).astype(np.int8)
        if predictor.multilabel
        else test["label"].to_numpy(),
        force=force,
        baseline_macro_f1=baseline["test_macro_f1"] if baseline else None,
        explanations=_explanation_metrics(name, challenger_v),
        production=_production(params, predictor, champion_predictor),
        production_blocking=params.review.holdout_blocking,
    )
    return decision, baseline


def _production(params, challenger, champion) -> dict | None:
    """Both versions on the production holdout (training/steps/review.py), single-label models only."""
    from training.steps.review import holdout_report, read_holdout

    if challenger.multilabel:
        return None
    holdout = read_holdout(params)
    reports = {}
    for role, predictor in (("challenger", challenger), ("champion", champion)):
        if predictor is not None:
            reports[role] = holdout_report(
                params,
                lambda texts, p=predictor: [r.label for r in p.predict(texts)],
                holdout,
                labels=predictor.labels,
            )
    return reports


def _explanation_metrics(name: str, version: int) -> dict[str, float]:
    """The version's explanation figures, as `heara evaluate` logged them to its training run."""
    from mlflow import MlflowClient

    client = MlflowClient()
    run_id = client.get_model_version(name, str(version)).run_id
    if not run_id:
        return {}
    metrics = client.get_run(run_id).data.metrics
    return {k: float(v) for k, v in metrics.items() if k.startswith("explain_")}


def promote_step(
    params, version: int | None = None, *, force: bool = False, test_path=None, train_path=None
) -> dict:
    """Run the gate for `version` (default: the current candidate) and move `champion` if it passes.

    `test_path`: the frozen test split (default: the DVC pipeline's); `train_path`: the train split
    the baseline is fitted on (default: beside `test_path`, see `_train_split`)."""
    import json

    import mlflow
    from mlflow import MlflowClient

    from training.registry import tracking
    from training.registry.aliases import CHALLENGER, CHAMPION, alias_version, model_name
    from training.registry.audit import AuditLedger
    from training.registry.champion import check_servable
    from training.steps.workspace import DataFiles, registered_version, task_dir

    exp_id = tracking.setup(params.task)
    client, name = MlflowClient(), model_name(params.task)
    challenger_v = version or registered_version(params.task) or alias_version(client, name, CHALLENGER)
    if challenger_v is None:
        raise NotFoundError(f"no version to promote: register one first (`heara register`) for {name}")
    challenger_v = int(challenger_v)
    champion_v = alias_version(client, name, CHAMPION)
    test = pd.read_parquet(test_path or DataFiles.default().test)
    labels = list(params.labels) or sorted(label_counts(test["label"], params.task_type == "multilabel"))
    smoke = refusal = baseline = None
    if champion_v == challenger_v:
        decision = Decision(
            False,
            f"version {challenger_v} is already the champion",
            False,
            challenger_v,
            champion_v,
            {"not_already_champion": False},
            {},
        )
    else:
        train = _train_split(train_path, test_path)
        if params.promote.require_beat_baseline:
            _require_train_split(train)  # before the version is fetched: a missing file fails at once
        try:  # first: a version the service cannot load is refused before anything scores it
            smoke = check_servable(name, challenger_v)
        except NotServableError as exc:
            refusal = exc
        if refusal:
            decision = _not_servable(refusal, champion_v, force=force)
        else:
            decision, baseline = _gate(
                params,
                name,
                challenger_v,
                champion_v,
                test,
                labels,
                force=force,
                test_path=test_path,
                train_path=train,
            )
        if smoke:
            decision.metrics["smoke_seconds"] = smoke.seconds
    with mlflow.start_run(experiment_id=exp_id, run_name=f"promote-v{challenger_v}") as run:
        mlflow.log_params({f"promote.{k}": v for k, v in params.promote.model_dump().items()})
        mlflow.log_metrics(decision.metrics)
        mlflow.set_tags(
            {
                "heara.kind": "promotion",
                "heara.decision": "promoted" if decision.promote else "refused",
                "heara.forced": str(decision.forced),
                "heara.challenger_version": str(challenger_v),
                "heara.champion_version_before": str(champion_v),
                "mlflow.note.content": decision.reason,
            }
        )
        if baseline:
            mlflow.set_tags(
                {
                    "heara.baseline": baseline["baseline"],
                    "heara.baseline.cached": str(baseline["cached"]),
                    "heara.data.train.sha256": baseline["train_sha256"],
                    "heara.data.test.sha256": baseline["test_sha256"],
                }
            )
        mlflow.log_text(json.dumps(decision_record(decision), ensure_ascii=False, indent=2), "decision.json")
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, str(challenger_v))  # one call: atomic switch
    tags = {
        "heara.gate.decision": "promoted" if decision.promote else "refused",
        "heara.gate.reason": decision.reason[:5000],
        "heara.gate.run_id": run.info.run_id,
        "heara.gate.forced": str(decision.forced),
    }
    for k, v in tags.items():
        client.set_model_version_tag(name, str(challenger_v), k, v)
    entry = AuditLedger().append(
        {
            "model": name,
            "action": "force" if decision.forced or (force and refusal is not None) else "promote",
            "from_version": champion_v,
            "to_version": challenger_v,
            "champion_changed": decision.promote,
            "reason": decision.reason,
            "metrics": decision.metrics,
            "smoke": smoke.to_dict() if smoke else None,
            "mlflow_run_id": run.info.run_id,
        }
    )
    record = {
        **decision_record(decision),
        "model": name,
        "mlflow_run_id": run.info.run_id,
        "champion_after": challenger_v if decision.promote else champion_v,
        "smoke": entry["smoke"],
        "baseline": baseline,
        "at": entry["at"],
    }
    write_json(task_dir(params.task) / "promote" / "decision.json", record)
    if refusal is not None:
        raise refusal  # recorded above; the CLI prints it as one line, Airflow fails the task
    return record
