"""Step `rollback`: give the champion alias back to the previous champion (or a given version); audited."""

from __future__ import annotations

from training.errors import NotFoundError


def rollback_step(task: str, to_version: int | None = None) -> dict:
    """Give `champion` back to `to_version`, or to the champion before the current one."""
    import mlflow
    from mlflow import MlflowClient

    from training.registry import tracking
    from training.registry.aliases import CHAMPION, alias_version, model_name
    from training.registry.audit import AuditLedger

    exp_id = tracking.setup(task)
    client, name, ledger = MlflowClient(), model_name(task), AuditLedger()
    current = alias_version(client, name, CHAMPION)
    if to_version is None:
        history = [v for v in ledger.champion_history(name) if v != current]
        if not history:
            raise NotFoundError(f"{name}: no previous champion to roll back to (pass --to VERSION)")
        to_version = history[-1]
    client.get_model_version(name, str(to_version))  # raises if the version does not exist
    with mlflow.start_run(experiment_id=exp_id, run_name=f"rollback-v{to_version}") as run:
        mlflow.set_tags(
            {
                "heara.kind": "rollback",
                "heara.from_version": str(current),
                "heara.to_version": str(to_version),
            }
        )
    client.set_registered_model_alias(name, CHAMPION, str(to_version))
    client.set_model_version_tag(name, str(to_version), "heara.rollback.run_id", run.info.run_id)
    return ledger.append(
        {
            "model": name,
            "action": "rollback",
            "from_version": current,
            "to_version": int(to_version),
            "champion_changed": True,
            "reason": f"rollback from {current} to {to_version}",
            "mlflow_run_id": run.info.run_id,
        }
    )
