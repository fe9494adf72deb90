"""Step `split`: stratified train/val/test with a frozen test split."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from training.config import Params
from training.data.reports import (
    write_json,
    write_table,
)
from training.data.split import read_frozen_test, split_frame

log = logging.getLogger("heara.data")


def run_split(params: Params, clean_path: Path, out_dir: Path, report_path: Path) -> dict:
    """Write out_dir/{train,val,test}.parquet; an existing out_dir/test.parquet is the frozen test set."""
    clean = pd.read_parquet(clean_path)
    frozen = read_frozen_test(out_dir / "test.parquet")
    splits, report = split_frame(clean, params.split, frozen, multilabel=params.task_type == "multilabel")
    for name, part in splits.items():
        write_table(part, out_dir / f"{name}.parquet")
    write_json(report_path, report)
    log.info("split: %s", {k: len(v) for k, v in splits.items()})
    for lab, why in report["classes_not_in_test"].items():
        log.warning("split: class '%s' has no test rows: %s", lab, why)
    return report
