"""Step `augment`: EDA and AEDA on the train split only.

The val and test splits are read too, from beside the train file (the split step writes all three
into one folder), so that no augmented text repeats a held-out one (see training/data/augment.py).
"""

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

HELD_OUT_SPLITS = ("val", "test")


def run_augment(params: Params, train_path: Path, out: Path, report_path: Path) -> dict:
    train = pd.read_parquet(train_path)
    held_out: list[str] = []
    found = []
    for name in HELD_OUT_SPLITS:
        path = train_path.with_name(f"{name}.parquet")
        if path.exists():
            held_out += pd.read_parquet(path, columns=["text"])["text"].tolist()
            found.append(name)
        else:  # e.g. `heara data augment --train` on a file of its own: nothing to guard against
            log.warning(
                "augment: no %s split beside %s; augmented texts are not checked against it", name, train_path
            )
    augmented, report = augment_frame(
        train, params.augment, held_out=held_out, multilabel=params.task_type == "multilabel"
    )
    report["held_out_splits"] = found
    write_table(augmented, out)
    write_json(report_path, report)
    log.info("augment: %d -> %d train rows", len(train), len(augmented))
    return report
