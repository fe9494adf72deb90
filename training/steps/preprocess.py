"""Step `preprocess`: NFC, whitespace, PII masking, repeats, regex rules, spacing, dedup."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from training.config import Params
from training.data.preprocess import Preprocessor, preprocess_frame
from training.data.reports import (
    write_json,
    write_quarantine,
    write_table,
)

log = logging.getLogger("heara.data")


def run_preprocess(
    params: Params,
    valid_path: Path,
    out: Path,
    quarantine_dir: Path,
    report_path: Path,
    preprocessor: Preprocessor | None = None,
) -> dict:
    valid = pd.read_parquet(valid_path)
    pre = preprocessor or Preprocessor(params.preprocess)
    clean, quarantined, report = preprocess_frame(valid, pre, dedup=params.preprocess.dedup)
    write_table(clean, out)
    write_quarantine(quarantined, quarantine_dir, "preprocess")
    write_json(report_path, report)
    log.info("preprocess: %d rows, %d duplicates removed", len(clean), report["duplicates_removed"])
    return report
