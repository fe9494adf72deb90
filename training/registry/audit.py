"""The audit ledger (`$HEARA_HOME/audit/promotions.jsonl`): every promotion decision, forced promotion and
rollback, who and when, from which version to which."""

from __future__ import annotations

import getpass
import json
from datetime import datetime, timezone
from pathlib import Path

from training import env
from training.paths import state


def actor() -> str:
    """Who is acting: HEARA_ACTOR (Airflow sets the DAG run's user), else the OS user."""
    return env.actor() or getpass.getuser()


class AuditLedger:
    """Append-only JSON lines: one entry per promotion decision, forced promotion or rollback."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state().audit_ledger

    def append(self, entry: dict) -> dict:
        entry = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "who": actor(), **entry}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def entries(self, model: str | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        rows = [
            json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        return [r for r in rows if model is None or r.get("model") == model]

    def champion_history(self, model: str) -> list[int]:
        """Champion versions in the order they took the alias (promotions and rollbacks)."""
        return [e["to_version"] for e in self.entries(model) if e.get("champion_changed")]
