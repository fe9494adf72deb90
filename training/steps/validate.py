"""Step `validate`: labels trimmed; empty, unknown, conflicting and over-long rows quarantined with
reasons."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from training.config import Params
from training.data.reports import (
    masked,
    write_json,
    write_quarantine,
    write_table,
)
from training.data.validate import validate
from training.errors import DataError
from training.paths import display_path

log = logging.getLogger("heara.data")


def run_validate(params: Params, raw_path: Path, out: Path, quarantine_dir: Path, report_path: Path) -> dict:
    raw = pd.read_parquet(raw_path)
    try:
        valid, quarantined, report = validate(
            raw,
            params.labels,
            params.validate_,
            source=display_path(raw_path),
            label_sep=params.data.label_sep if params.task_type == "multilabel" else None,
        )
    except DataError as e:
        if e.report is not None:  # the run stops here, but its report and quarantine are kept for the reader
            report = {k: v for k, v in e.report.items() if k != "quarantined"}
            report["conflicts"]["examples"] = masked(report["conflicts"]["examples"])
            write_quarantine(e.report["quarantined"], quarantine_dir, "validate")
            write_json(report_path, {**report, "failed": str(e)})
            e.report = report
        raise
    report["conflicts"]["examples"] = masked(report["conflicts"]["examples"])
    write_table(valid, out)
    write_quarantine(quarantined, quarantine_dir, "validate")
    write_json(report_path, report)
    log.info("validate: %d valid, %d quarantined", len(valid), len(quarantined))
    rare = report["rare_classes"]
    if rare["classes"]:
        log.info(
            "validate: %d rare classes (< %d rows, validate.rare_classes=%s): %d rows quarantined, "
            "%d merged%s",
            len(rare["classes"]),
            rare["min_rows"],
            rare["policy"],
            rare["rows_quarantined"],
            rare["rows_merged"],
            f" into '{rare['merge_into']}'" if rare["merge_into"] else "",
        )
    return report
