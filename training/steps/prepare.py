"""The data steps as file-to-file functions: ingest -> validate -> preprocess -> split -> augment.

The CLI commands, the DVC stages and the Airflow tasks all call these, so each step has one
implementation. Every step writes its output table(s), its quarantined rows and a JSON report.
"""

from __future__ import annotations

import logging
from pathlib import Path

from training.config import Params
from training.data.reports import (
    collect_quarantine,
    combine_reports,
    write_json,
)
from training.paths import StatePaths, display_path
from training.steps.augment import run_augment
from training.steps.ingest import run_ingest
from training.steps.preprocess import run_preprocess
from training.steps.split import run_split
from training.steps.validate import run_validate

log = logging.getLogger("heara.data")


def prepare(params: Params, source: Path, out_dir: Path, *, state: StatePaths | None = None,
            work_dir: Path | None = None) -> dict:
    """Ingest through augmentation on one file; writes out_dir/{train,val,test}.parquet,
    out_dir/quarantine.{parquet,csv} and out_dir/report.json. Returns the combined report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = work_dir or out_dir / ".work"
    qdir, rdir = work / "quarantine", work / "reports"
    report: dict = {}
    report["ingest"] = run_ingest(params.data, work / "raw.parquet", qdir, rdir / "ingest.json",
                                  source=source, state=state)
    report["validate"] = run_validate(params, work / "raw.parquet", work / "valid.parquet", qdir,
                                      rdir / "validate.json")
    report["preprocess"] = run_preprocess(params, work / "valid.parquet", work / "clean.parquet", qdir,
                                          rdir / "preprocess.json")
    # The frozen test set lives in out_dir, so re-running prepare keeps it.
    split_dir = work / "split"
    split_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / "test.parquet").exists():
        (split_dir / "test.parquet").write_bytes((out_dir / "test.parquet").read_bytes())
    report["split"] = run_split(params, work / "clean.parquet", split_dir, rdir / "split.json")
    report["augment"] = run_augment(params, split_dir / "train.parquet", out_dir / "train.parquet",
                                    rdir / "augment.json")
    for name in ("val", "test"):
        (out_dir / f"{name}.parquet").write_bytes((split_dir / f"{name}.parquet").read_bytes())
    combined = combine_reports(rdir, qdir, task=params.task, source=display_path(source))
    quarantine = collect_quarantine(qdir)
    quarantine.to_parquet(out_dir / "quarantine.parquet", index=False)
    quarantine.to_csv(out_dir / "quarantine.csv", index=False, encoding="utf-8-sig")
    write_json(out_dir / "report.json", combined)
    return combined


