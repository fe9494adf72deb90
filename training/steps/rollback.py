"""Step `rollback`: give the champion alias back to the previous champion (or a given version); audited.

The version must still be servable (training/registry/servable.py: fetched as the service fetches it,
loaded, one smoke prediction): a version whose artifacts lost their weights would be refused by a
running service and leave a restart or a new replica with nothing to serve. A refused rollback is
recorded (MLflow run, audit ledger) and raised as NotServableError; the champion stays where it is."""

from __future__ import annotations

from training.errors import NotFoundError, NotServableError


def rollback_step(task: str, to_version: int | None = None) -> dict:
    """Give `champion` back to `to_version`, or to the champion before the current one."""
    import mlflow
    from mlflow import MlflowClient

    from training.registry import tracking
    from training.registry.aliases import CHAMPION, alias_version, model_name
    from training.registry.audit import AuditLedger
    from training.registry.champion import check_servable

    exp_id = tracking.setup(task)
    client, name, ledger = MlflowClient(), model_name(task), AuditLedger()
    current = alias_version(client, name, CHAMPION)
    if to_version is None:
        history = [v for v in ledger.champion_history(name) if v != current]
        if not history:
            raise NotFoundError(f"{name}: no previous champion to roll back to (pass --to VERSION)")
        to_version = history[-1]
    smoke = refusal = None
    try:  # raises NotFoundError, unrecorded, when the version does not exist
        smoke = check_servable(name, to_version)
    except NotServableError as exc:
        refusal = exc
    reason = (
        f"rollback from {current} to {to_version}"
        if refusal is None
        else f"refused: rollback from {current} to {to_version}: not servable: {refusal.reason}"
    )
    with mlflow.start_run(experiment_id=exp_id, run_name=f"rollback-v{to_version}") as run:
        mlflow.set_tags(
            {
                "heara.kind": "rollback",
                "heara.decision": "rolled back" if refusal is None else "refused",
                "heara.from_version": str(current),
                "heara.to_version": str(to_version),
                "mlflow.note.content": reason,
            }
        )
        if smoke:
            mlflow.log_metric("smoke_seconds", smoke.seconds)
    if refusal is None:
        client.set_registered_model_alias(name, CHAMPION, str(to_version))
        client.set_model_version_tag(name, str(to_version), "heara.rollback.run_id", run.info.run_id)
    entry = ledger.append(
        {
            "model": name,
            "action": "rollback",
            "from_version": current,
            "to_version": int(to_version),
            "champion_changed": refusal is None,
            "reason": reason,
            "smoke": smoke.to_dict() if smoke else None,
            "mlflow_run_id": run.info.run_id,
        }
    )
    if refusal is not None:
        raise refusal
    return entry
