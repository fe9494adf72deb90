"""`heara rollback` moves the champion alias only to a version the service can load and that answers
a smoke prediction; a refusal is recorded (MLflow run, audit ledger) and the champion stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.errors import NotServableError


def _champion() -> int | None:
    from mlflow import MlflowClient

    from training.registry.aliases import CHAMPION, alias_version
    from training.registry.tracking import tracking_uri

    return alias_version(MlflowClient(tracking_uri()), "heara-danger", CHAMPION)


def test_rollback_to_a_version_without_weights_is_refused(registry_home: Path, register_tiny) -> None:
    from mlflow import MlflowClient

    from training.registry.audit import AuditLedger
    from training.steps.rollback import rollback_step

    good, weightless, other = (
        register_tiny(champion=True),
        register_tiny(without=("model.safetensors",)),
        register_tiny(),
    )
    with pytest.raises(NotServableError, match=rf"version {weightless} .*model\.safetensors") as refused:
        rollback_step("danger", to_version=weightless)
    assert _champion() == good
    entry = AuditLedger().entries("heara-danger")[-1]
    assert entry["action"] == "rollback" and entry["to_version"] == weightless
    assert entry["champion_changed"] is False and entry["reason"].startswith("refused")
    assert refused.value.reason in entry["reason"] and entry["smoke"] is None
    run = MlflowClient().get_run(entry["mlflow_run_id"])
    assert run.data.tags["heara.decision"] == "refused"
    assert "model.safetensors" in run.data.tags["mlflow.note.content"]

    # A good version still rolls back, and the check's time is on the record.
    done = rollback_step("danger", to_version=other)
    assert _champion() == other and done["champion_changed"] is True
    assert done["smoke"]["seconds"] > 0 and done["smoke"]["version"] == str(other)
    assert MlflowClient().get_run(done["mlflow_run_id"]).data.metrics["smoke_seconds"] > 0


def test_the_previous_champion_is_checked_too(registry_home: Path, register_tiny) -> None:
    """A version made champion before the check existed is not given the alias back by default."""
    from training.registry.audit import AuditLedger
    from training.steps.rollback import rollback_step

    weightless, good = register_tiny(without=("model.safetensors",)), register_tiny(champion=True)
    ledger = AuditLedger()
    for version in (weightless, good):  # the history as the ledger had it
        ledger.append(
            {"model": "heara-danger", "action": "rollback", "to_version": version, "champion_changed": True}
        )
    with pytest.raises(NotServableError, match=f"version {weightless} "):
        rollback_step("danger")
    assert _champion() == good
    assert AuditLedger().champion_history("heara-danger") == [weightless, good]  # a refusal is no change
