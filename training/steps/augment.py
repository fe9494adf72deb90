"""Step `augment`: EDA and AEDA on the train split only."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from training.config import Params
from training.data.augment import augment_frame
from training.data.reports import (
    write_json,
    write_table,
)

log = logging.getLogger("heara.data")


def run_augment(params: Params, train_path: Path, out: Path, report_path: Path) -> dict:
    train = pd.read_parquet(train_path)
    augmented, report = augment_frame(train, params.augment)
    write_table(augmented, out)
    write_json(report_path, report)
    log.info("augment: %d -> %d train rows", len(train), len(augmented))
    return report
