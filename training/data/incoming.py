"""New labeled files in the incoming folder, for the data-triggered retrain.

Labelers drop files into `$HEARA_HOME/incoming/`. The watcher DAG asks `new_files()` for files that
neither the ingest ledger (already trained on) nor an earlier announcement knows, announces them as an
Airflow Asset event (which triggers the retrain DAG) and records them with `mark_announced`, so that a
file triggers exactly one run. Files are told apart by content hash, as the ledger does.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from training.data.readers import Ledger, sha256_file
from training.paths import state


def _announced_path() -> Path:
    return state().announced


def _announced() -> dict[str, dict]:
    path = _announced_path()
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def new_files(min_age_s: float = 5.0) -> list[dict]:
    """Files in the incoming folder not ingested and not announced yet: [{name, sha256, bytes}].
    A file modified in the last `min_age_s` seconds is left for the next look (it may still be copying)."""
    st = state()
    if not st.incoming.exists():
        return []
    ledger = Ledger(st.ledger) if st.ledger.exists() else None
    announced = _announced()
    found = []
    for path in sorted(p for p in st.incoming.iterdir() if p.is_file() and not p.name.startswith(".")):
        if time.time() - path.stat().st_mtime < min_age_s:
            continue
        digest = sha256_file(path)
        if digest in announced or (ledger is not None and ledger.known(digest)):
            continue
        found.append({"name": path.name, "sha256": digest, "bytes": path.stat().st_size})
    return found


def mark_announced(files: list[dict], run_hint: str = "") -> None:
    """Remember that these files were announced (they will not trigger another run)."""
    path = _announced_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    seen = _announced()
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for f in files:
        seen[f["sha256"]] = {"name": f["name"], "announced_at": at, "by": run_hint}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(seen, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)
