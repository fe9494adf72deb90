"""The data steps as file-to-file functions: ingest -> validate -> preprocess -> split -> augment.

The CLI commands, the DVC stages and the Airflow tasks all call these, so each step has one
implementation. Every step writes its output table(s), its quarantined rows and a JSON report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from training.data.augment import augment_frame
from training.config import DataConfig, Params
from training.errors import DataError
from training.data.readers import Ledger, ingest_incoming, load_batches, read_source, sha256_file
from training.paths import PROJECT_ROOT, StatePaths, display_path
from training.pii import mask_pii
from training.data.preprocess import Preprocessor, preprocess_frame
from training.data.split import read_frozen_test, split_frame
from training.data.validate import QUARANTINE_COLUMNS, validate

log = logging.getLogger("heara.data")
STEPS = ("ingest", "validate", "preprocess", "split", "augment")


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def _write_table(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


def _write_quarantine(df: pd.DataFrame, quarantine_dir: Path, stage: str) -> Path:
    path = quarantine_dir / f"{stage}.parquet"
    _write_table(df.reindex(columns=QUARANTINE_COLUMNS), path)
    return path


def _masked(examples: list[str]) -> list[str]:
    return [mask_pii(e) for e in examples]


def resolve_source(source: str | Path) -> Path:
    p = Path(source)
    return p if p.is_absolute() or p.exists() else PROJECT_ROOT / p


def run_ingest(data: DataConfig, out: Path, quarantine_dir: Path, report_path: Path, *,
               source: Path | None = None, state: StatePaths | None = None) -> dict:
    """Read the configured source plus every new file in the incoming folder into one raw table."""
    src = resolve_source(source or data.source)
    kwargs = dict(text_col=data.text_col, label_col=data.label_col, id_col=data.id_col,
                  encoding=data.encoding)
    result = read_source(src, fmt=data.format, sheet=data.sheet, **kwargs)
    tables, rejects = [result.rows], [result.rejects]
    report: dict = {"sources": [{"file": display_path(src), "sha256": sha256_file(src), "encoding": result.encoding,
                                 "rows": int(len(result.rows)), "unparseable": int(len(result.rejects)),
                                 "notes": result.notes}]}
    if state is not None:
        ledger = Ledger(state.ledger)
        new = ingest_incoming(state.incoming, state.batches, ledger, fmt=data.format, **kwargs)
        batch_rows, batch_rejects = load_batches(ledger)
        tables.append(batch_rows)
        rejects.append(batch_rejects)
        report["incoming"] = {"folder": display_path(state.incoming), "new_files": new,
                              "files_total": len(ledger.entries()), "rows": int(len(batch_rows))}
    raw = pd.concat([t for t in tables if len(t)], ignore_index=True)
    rej = pd.concat([r for r in rejects if len(r)], ignore_index=True) if any(len(r) for r in rejects) \
        else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    rej = rej.assign(stage="ingest")
    report["rows_read"] = int(len(raw) + len(rej))
    report["rows"] = int(len(raw))
    report["unparseable"] = int(len(rej))
    _write_table(raw, out)
    _write_quarantine(rej, quarantine_dir, "ingest")
    _write_json(report_path, report)
    log.info("ingest: %d rows from %s (%d unparseable)", len(raw), src.name, len(rej))
    return report


def run_validate(params: Params, raw_path: Path, out: Path, quarantine_dir: Path, report_path: Path) -> dict:
    raw = pd.read_parquet(raw_path)
    try:
        valid, quarantined, report = validate(raw, params.labels, params.validate_, source=display_path(raw_path))
    except DataError as e:
        if e.report is not None:  # the run stops here, but its report and quarantine are kept for the reader
            report = {k: v for k, v in e.report.items() if k != "quarantined"}
            report["conflicts"]["examples"] = _masked(report["conflicts"]["examples"])
            _write_quarantine(e.report["quarantined"], quarantine_dir, "validate")
            _write_json(report_path, {**report, "failed": str(e)})
            e.report = report
        raise
    report["conflicts"]["examples"] = _masked(report["conflicts"]["examples"])
    _write_table(valid, out)
    _write_quarantine(quarantined, quarantine_dir, "validate")
    _write_json(report_path, report)
    log.info("validate: %d valid, %d quarantined", len(valid), len(quarantined))
    return report


def run_preprocess(params: Params, valid_path: Path, out: Path, quarantine_dir: Path, report_path: Path,
                   preprocessor: Preprocessor | None = None) -> dict:
    valid = pd.read_parquet(valid_path)
    pre = preprocessor or Preprocessor(params.preprocess)
    clean, quarantined, report = preprocess_frame(valid, pre, dedup=params.preprocess.dedup)
    _write_table(clean, out)
    _write_quarantine(quarantined, quarantine_dir, "preprocess")
    _write_json(report_path, report)
    log.info("preprocess: %d rows, %d duplicates removed", len(clean), report["duplicates_removed"])
    return report


def run_split(params: Params, clean_path: Path, out_dir: Path, report_path: Path) -> dict:
    """Write out_dir/{train,val,test}.parquet; an existing out_dir/test.parquet is the frozen test set."""
    clean = pd.read_parquet(clean_path)
    frozen = read_frozen_test(out_dir / "test.parquet")
    splits, report = split_frame(clean, params.split, frozen)
    for name, part in splits.items():
        _write_table(part, out_dir / f"{name}.parquet")
    _write_json(report_path, report)
    log.info("split: %s", {k: len(v) for k, v in splits.items()})
    return report


def run_augment(params: Params, train_path: Path, out: Path, report_path: Path) -> dict:
    train = pd.read_parquet(train_path)
    augmented, report = augment_frame(train, params.augment)
    _write_table(augmented, out)
    _write_json(report_path, report)
    log.info("augment: %d -> %d train rows", len(train), len(augmented))
    return report


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
    _write_json(out_dir / "report.json", combined)
    return combined


def combine_reports(reports_dir: Path, quarantine_dir: Path, **header) -> dict:
    """One report from the per-step reports and quarantine files (what `report.json` holds)."""
    report: dict = dict(header)
    for step in STEPS:
        path = reports_dir / f"{step}.json"
        if not path.exists():
            raise FileNotFoundError(f"{display_path(path)} is missing: run the '{step}' step first")
        report[step] = json.loads(path.read_text(encoding="utf-8"))
    quarantine = collect_quarantine(quarantine_dir)
    report["quarantine"] = {"rows": int(len(quarantine)),
                            "by_stage": {k: int(v) for k, v in quarantine["stage"].value_counts().items()},
                            "by_reason": _reason_counts(quarantine)}
    report["accounting"] = account(report, quarantine)
    return report


def _reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    # "conflicting labels ...: ['0', '1']" and "duplicate of X" vary per row; count by their stem.
    stems = quarantine["reason"].astype(str).str.replace(r"(:| of ).*$", "", regex=True)
    return {k: int(v) for k, v in stems.value_counts().items()}


def collect_quarantine(quarantine_dir: Path) -> pd.DataFrame:
    parts = [pd.read_parquet(quarantine_dir / f"{s}.parquet") for s in STEPS
             if (quarantine_dir / f"{s}.parquet").exists()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=QUARANTINE_COLUMNS)


def account(report: dict, quarantine: pd.DataFrame) -> dict:
    """Every input row is either in a split or in quarantine: the check that nothing was lost."""
    split = report["split"]
    kept = split["train"]["rows"] + split["val"]["rows"] + (0 if split.get("test_frozen") else split["test"]["rows"])
    read = report["ingest"]["rows_read"]
    held = split.get("rows_held_out_as_test_duplicates", 0)
    return {"rows_read": read, "rows_in_splits": kept, "rows_quarantined": int(len(quarantine)),
            "rows_matching_frozen_test": held, "balanced": read == kept + len(quarantine) + held}
