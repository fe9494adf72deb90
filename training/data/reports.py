"""Step outputs on disk: JSON reports, tables, quarantine files, and the combined data report whose
accounting proves that nothing was lost (rows read = rows in splits + rows quarantined)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from training.data.validate import QUARANTINE_COLUMNS
from training.errors import NotFoundError
from training.paths import display_path
from training.pii import mask_pii

STEPS = ("ingest", "validate", "preprocess", "split", "augment")


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def write_table(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


def write_quarantine(df: pd.DataFrame, quarantine_dir: Path, stage: str) -> Path:
    path = quarantine_dir / f"{stage}.parquet"
    write_table(df.reindex(columns=QUARANTINE_COLUMNS), path)
    return path


def masked(examples: list[str]) -> list[str]:
    return [mask_pii(e) for e in examples]


def combine_reports(reports_dir: Path, quarantine_dir: Path, **header) -> dict:
    """One report from the per-step reports and quarantine files (what `report.json` holds)."""
    report: dict = dict(header)
    for step in STEPS:
        path = reports_dir / f"{step}.json"
        if not path.exists():
            raise NotFoundError(f"{display_path(path)} is missing: run the '{step}' step first")
        report[step] = json.loads(path.read_text(encoding="utf-8"))
    quarantine = collect_quarantine(quarantine_dir)
    report["quarantine"] = {
        "rows": int(len(quarantine)),
        "by_stage": {k: int(v) for k, v in quarantine["stage"].value_counts().items()},
        "by_reason": _reason_counts(quarantine),
    }
    report["accounting"] = account(report, quarantine)
    return report


def _reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    # "conflicting labels ...: ['0', '1']" and "duplicate of X" vary per row; count by their stem.
    stems = quarantine["reason"].astype(str).str.replace(r"(:| of ).*$", "", regex=True)
    return {k: int(v) for k, v in stems.value_counts().items()}


def collect_quarantine(quarantine_dir: Path) -> pd.DataFrame:
    parts = [
        pd.read_parquet(quarantine_dir / f"{s}.parquet")
        for s in STEPS
        if (quarantine_dir / f"{s}.parquet").exists()
    ]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=QUARANTINE_COLUMNS)


def account(report: dict, quarantine: pd.DataFrame) -> dict:
    """Every input row is either in a split or in quarantine: the check that nothing was lost."""
    split = report["split"]
    kept = (
        split["train"]["rows"]
        + split["val"]["rows"]
        + (0 if split.get("test_frozen") else split["test"]["rows"])
    )
    read = report["ingest"]["rows_read"]
    held = split.get("rows_held_out_as_test_duplicates", 0)
    return {
        "rows_read": read,
        "rows_in_splits": kept,
        "rows_quarantined": int(len(quarantine)),
        "rows_matching_frozen_test": held,
        "balanced": read == kept + len(quarantine) + held,
    }
