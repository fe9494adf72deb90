"""The promotion gate (`heara promote`) and `heara rollback`.

Champion and challenger are scored on the same frozen test set in the same run. The challenger
becomes champion only if macro-F1 improves by at least `min_delta`, the lower bound of a paired
bootstrap CI of the difference is above 0 (when `require_ci`), no class's F1 drops by more than
`max_class_drop`, and its p95 latency stays within `latency_budget_ms`. With no champion yet, the
first version reaching `min_f1` becomes champion. Every decision is logged as an MLflow run, as tags
on the version and in the audit ledger; a refused or failed run never touches the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from training.config import PromoteConfig


@dataclass
class ModelScore:
    version: int
    macro_f1: float
    per_class_f1: dict[str, float]
    latency_p95_ms: float
    predictions: np.ndarray = field(repr=False)


@dataclass
class Decision:
    promote: bool
    reason: str
    forced: bool
    challenger: int
    champion_before: int | None
    checks: dict[str, bool]
    metrics: dict[str, float]


def score(predictor, version: int, test: pd.DataFrame, labels: list[str], latency_n: int = 100) -> ModelScore:
    """Score one model version on the test split (texts are already preprocessed)."""
    probs = predictor.predict_proba(test["text"].tolist(), preprocessed=True)
    pred = np.array([predictor.labels[i] for i in probs.argmax(axis=1)])
    per_class = f1_score(test["label"], pred, labels=labels, average=None, zero_division=0)
    latency = predictor.latency_ms(test["text"].tolist(), n=latency_n)
    return ModelScore(version, float(f1_score(test["label"], pred, labels=labels, average="macro", zero_division=0)),
                      {lab: float(f) for lab, f in zip(labels, per_class)}, latency["p95"], pred)


def decide(cfg: PromoteConfig, challenger: ModelScore, champion: ModelScore | None, y_true: np.ndarray,
           *, force: bool = False, bootstrap=None) -> Decision:
    """Apply the gate. `bootstrap(y, pred_a, pred_b, n, level, seed) -> (delta, lo, hi)`."""
    metrics = {"challenger_macro_f1": challenger.macro_f1, "challenger_latency_p95_ms": challenger.latency_p95_ms}
    if champion is None:
        checks = {"min_f1": challenger.macro_f1 >= cfg.min_f1,
                  "latency": challenger.latency_p95_ms <= cfg.latency_budget_ms}
        reason = (f"no champion yet; macro-F1 {challenger.macro_f1:.4f} "
                  f"{'>=' if checks['min_f1'] else '<'} min_f1 {cfg.min_f1}")
    else:
        if bootstrap is None:
            from training.evaluation.metrics import paired_bootstrap_macro_f1 as bootstrap
        delta, lo, hi = bootstrap(y_true, champion.predictions, challenger.predictions,
                                  n=cfg.bootstrap_samples, level=cfg.ci_level, seed=0)
        drops = {lab: champion.per_class_f1[lab] - challenger.per_class_f1.get(lab, 0.0)
                 for lab in champion.per_class_f1}
        worst = max(drops, key=drops.get)
        metrics.update(champion_macro_f1=champion.macro_f1, delta_macro_f1=float(delta), ci_low=float(lo),
                       ci_high=float(hi), max_class_drop=float(drops[worst]))
        checks = {"min_delta": delta >= cfg.min_delta, "ci_above_zero": (lo > 0) or not cfg.require_ci,
                  "class_drop": drops[worst] <= cfg.max_class_drop,
                  "latency": challenger.latency_p95_ms <= cfg.latency_budget_ms}
        failed = [k for k, ok in checks.items() if not ok]
        reason = (f"macro-F1 {champion.macro_f1:.4f} -> {challenger.macro_f1:.4f} (delta {delta:+.4f}, "
                  f"{cfg.ci_level:.0%} CI [{lo:+.4f}, {hi:+.4f}]); worst class drop {worst} {drops[worst]:+.4f}; "
                  f"p95 {challenger.latency_p95_ms:.1f} ms")
        reason = (f"refused: {', '.join(failed)} failed; " if failed else "all checks passed; ") + reason
    if champion is None:
        failed = [k for k, ok in checks.items() if not ok]
        reason = (f"refused: {', '.join(failed)} failed; " if failed else "first champion; ") + reason
    ok = all(checks.values())
    if force and not ok:
        reason = f"FORCED despite failed checks ({reason})"
    return Decision(promote=ok or force, reason=reason, forced=force and not ok, challenger=challenger.version,
                    champion_before=champion.version if champion else None, checks=checks,
                    metrics={k: round(float(v), 6) for k, v in metrics.items()})


def decision_record(d: Decision) -> dict:
    return asdict(d)


# --- against the registry --------------------------------------------------------------------------

def _load_version(name: str, version: int):
    """The version's Predictor, through the real pyfunc loading path."""
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model().predictor


def promote_step(params, version: int | None = None, *, force: bool = False, test_path=None) -> dict:
    """Run the gate for `version` (default: the current candidate) and move `champion` if it passes."""
    import json

    import mlflow
    from mlflow import MlflowClient

    from training.registry import tracking
    from training.steps.train import DataFiles, _write_json, registered_version, task_dir
    from training.registry.aliases import CHALLENGER, CHAMPION, AuditLedger, alias_version, model_name

    exp_id = tracking.setup(params.task)
    client, name = MlflowClient(), model_name(params.task)
    challenger_v = version or registered_version(params.task) or alias_version(client, name, CHALLENGER)
    if challenger_v is None:
        raise ValueError(f"no version to promote: register one first (`heara register`) for {name}")
    challenger_v = int(challenger_v)
    champion_v = alias_version(client, name, CHAMPION)
    test = pd.read_parquet(test_path or DataFiles.default().test)
    labels = list(params.labels) or sorted(test["label"].unique())
    if champion_v == challenger_v:
        decision = Decision(False, f"version {challenger_v} is already the champion", False, challenger_v,
                            champion_v, {"not_already_champion": False}, {})
    else:
        challenger = score(_load_version(name, challenger_v), challenger_v, test, labels)
        champion = score(_load_version(name, champion_v), champion_v, test, labels) if champion_v else None
        decision = decide(params.promote, challenger, champion, test["label"].to_numpy(), force=force)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"promote-v{challenger_v}") as run:
        mlflow.log_params({f"promote.{k}": v for k, v in params.promote.model_dump().items()})
        mlflow.log_metrics(decision.metrics)
        mlflow.set_tags({"heara.kind": "promotion", "heara.decision": "promoted" if decision.promote else "refused",
                         "heara.forced": str(decision.forced), "heara.challenger_version": str(challenger_v),
                         "heara.champion_version_before": str(champion_v), "mlflow.note.content": decision.reason})
        mlflow.log_text(json.dumps(decision_record(decision), ensure_ascii=False, indent=2), "decision.json")
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, str(challenger_v))  # one call: atomic switch
    tags = {"heara.gate.decision": "promoted" if decision.promote else "refused", "heara.gate.reason": decision.reason[:5000],
            "heara.gate.run_id": run.info.run_id, "heara.gate.forced": str(decision.forced)}
    for k, v in tags.items():
        client.set_model_version_tag(name, str(challenger_v), k, v)
    entry = AuditLedger().append({"model": name, "action": "force" if decision.forced else "promote",
                                  "from_version": champion_v, "to_version": challenger_v,
                                  "champion_changed": decision.promote, "reason": decision.reason,
                                  "metrics": decision.metrics, "mlflow_run_id": run.info.run_id})
    record = {**decision_record(decision), "model": name, "mlflow_run_id": run.info.run_id,
              "champion_after": challenger_v if decision.promote else champion_v, "at": entry["at"]}
    _write_json(task_dir(params.task) / "promote" / "decision.json", record)
    return record


def rollback_step(task: str, to_version: int | None = None) -> dict:
    """Give `champion` back to `to_version`, or to the champion before the current one."""
    import mlflow
    from mlflow import MlflowClient

    from training.registry import tracking
    from training.registry.aliases import CHAMPION, AuditLedger, alias_version, model_name

    exp_id = tracking.setup(task)
    client, name, ledger = MlflowClient(), model_name(task), AuditLedger()
    current = alias_version(client, name, CHAMPION)
    if to_version is None:
        history = [v for v in ledger.champion_history(name) if v != current]
        if not history:
            raise ValueError(f"{name}: no previous champion to roll back to (pass --to VERSION)")
        to_version = history[-1]
    client.get_model_version(name, str(to_version))  # raises if the version does not exist
    with mlflow.start_run(experiment_id=exp_id, run_name=f"rollback-v{to_version}") as run:
        mlflow.set_tags({"heara.kind": "rollback", "heara.from_version": str(current),
                         "heara.to_version": str(to_version)})
    client.set_registered_model_alias(name, CHAMPION, str(to_version))
    client.set_model_version_tag(name, str(to_version), "heara.rollback.run_id", run.info.run_id)
    return ledger.append({"model": name, "action": "rollback", "from_version": current, "to_version": int(to_version),
                          "champion_changed": True, "reason": f"rollback from {current} to {to_version}",
                          "mlflow_run_id": run.info.run_id})
