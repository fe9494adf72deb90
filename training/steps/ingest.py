"""Step `ingest`: the configured source plus new labeled files from the incoming folder -> one raw table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from training.config import DataConfig
from training.data.readers import Ledger, ingest_incoming, load_batches, read_source, sha256_file
from training.data.reports import (
    write_json,
    write_quarantine,
    write_table,
)
from training.data.validate import QUARANTINE_COLUMNS
from training.paths import PROJECT_ROOT, StatePaths, display_path

log = logging.getLogger("heara.data")


def resolve_source(source: str | Path) -> Path:
    p = Path(source)
    return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p


def run_ingest(
    data: DataConfig,
    out: Path,
    quarantine_dir: Path,
    report_path: Path,
    *,
    source: Path | None = None,
    state: StatePaths | None = None,
    header: bool = True,
) -> dict:
    """Read the configured source plus every new file in the incoming folder into one raw table.

    header=False: CSV/TSV files without a header row (columns named "0", "1", ... by position)."""
    src = resolve_source(source or data.source)
    kwargs = dict(
        text_col=data.text_col,
        label_col=data.label_col,
        id_col=data.id_col,
        encoding=data.encoding,
        header=header,
    )
    result = read_source(src, fmt=data.format, sheet=data.sheet, **kwargs)
    tables, rejects = [result.rows], [result.rejects]
    report: dict = {
        "sources": [
            {
                "file": display_path(src),
                "sha256": sha256_file(src),
                "encoding": result.encoding,
                "rows": int(len(result.rows)),
                "unparseable": int(len(result.rejects)),
                "notes": result.notes,
            }
        ]
    }
    if state is not None:
        ledger = Ledger(state.ledger)
        new = ingest_incoming(state.incoming, state.batches, ledger, fmt=data.format, **kwargs)
        batch_rows, batch_rejects = load_batches(ledger)
        tables.append(batch_rows)
        rejects.append(batch_rejects)
        report["incoming"] = {
            "folder": display_path(state.incoming),
            "new_files": new,
            "files_total": len(ledger.entries()),
            "rows": int(len(batch_rows)),
        }
    raw = pd.concat([t for t in tables if len(t)], ignore_index=True)
    rej = (
        pd.concat([r for r in rejects if len(r)], ignore_index=True)
        if any(len(r) for r in rejects)
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    rej = rej.assign(stage="ingest")
    report["rows_read"] = int(len(raw) + len(rej))
    report["rows"] = int(len(raw))
    report["unparseable"] = int(len(rej))
    write_table(raw, out)
    write_quarantine(rej, quarantine_dir, "ingest")
    write_json(report_path, report)
    log.info("ingest: %d rows from %s (%d unparseable)", len(raw), src.name, len(rej))
    return report
