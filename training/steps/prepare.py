"""Step `prepare` (`heara data prepare`, bring your own data): the five data steps (steps/ingest ...
steps/augment, each a file-to-file function) run in order on one file into one folder, with the
combined report and dataset.json (task and labels) that every `--data-dir` command reads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from training.config import Params
from training.data.dataset_info import DatasetInfo, keep_multipliers, write_dataset_info
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


def augment_params_for(params: Params, labels: list[str]) -> Params:
    """The augment settings for data with these labels: params.yaml's per-class multipliers belong to
    its own task, so those naming other labels are dropped (with a note); with none left and no
    target balance configured, every class is raised to the largest one (target_balance 1.0)."""
    multipliers = keep_multipliers(dict(params.augment.multipliers), labels)
    # A multi-label task's groups are label sets, often dozens: balancing them all to the largest would
    # multiply the data, so it is augmented only as configured.
    balance = (
        1.0
        if not multipliers and params.augment.target_balance is None and params.task_type == "multiclass"
        else params.augment.target_balance
    )
    augment = params.augment.model_copy(update={"multipliers": multipliers, "target_balance": balance})
    return params.model_copy(update={"augment": augment})


AUTO_MULTILABEL_SHARE = 0.2  # label lists in at least this share of rows: multi-label without asking


def multilabel_from_data(params: Params, raw_path: Path, report: dict) -> Params:
    """`params` as a multi-label task when the raw label column clearly holds label lists: at least
    AUTO_MULTILABEL_SHARE of the labeled rows. Fewer is ambiguous (a label name may contain a comma):
    validation then stops and asks for --multilabel / --single-label."""
    import pandas as pd

    from training.data.validate import detect_multi_label

    labels = pd.read_parquet(raw_path, columns=["label"])["label"].fillna("").astype(str).str.strip()
    found = detect_multi_label(labels, params.labels)
    if not found or found["share"] < AUTO_MULTILABEL_SHARE:
        return params
    log.info(
        "prepare: %d of the labeled rows (%.0f%%) hold label lists separated by '%s' (e.g. %s): preparing a "
        "multi-label task (--single-label to refuse, --label-sep to choose the separator)",
        found["rows"],
        100 * found["share"],
        found["separator"],
        ", ".join(map(repr, found["examples"])),
    )
    report["task_type_detected"] = {"task_type": "multilabel", **found}
    return params.override({"task_type": "multilabel", "data": {"label_sep": found["separator"]}})


def prepare(
    params: Params,
    source: Path,
    out_dir: Path,
    *,
    state: StatePaths | None = None,
    work_dir: Path | None = None,
    header: bool = True,
    detect_multilabel: bool = False,
) -> dict:
    """Ingest through augmentation on one file; writes out_dir/{train,val,test}.parquet,
    out_dir/quarantine.{parquet,csv}, out_dir/report.json and out_dir/dataset.json (task `params.task`
    and the label set, which every `--data-dir out_dir` command reads). Returns the combined report.

    header=False reads a CSV/TSV file without a header row (columns "0", "1", ... by position).
    detect_multilabel: nobody said whether the file is multi-label; a label column that clearly holds
    label lists (`multilabel_from_data`) is then prepared as a multi-label task, and the log says so."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = work_dir or out_dir / ".work"
    qdir, rdir = work / "quarantine", work / "reports"
    report: dict = {}
    report["ingest"] = run_ingest(
        params.data,
        work / "raw.parquet",
        qdir,
        rdir / "ingest.json",
        source=source,
        state=state,
        header=header,
    )
    if detect_multilabel and params.task_type == "multiclass":
        params = multilabel_from_data(params, work / "raw.parquet", report)
    report["validate"] = run_validate(
        params, work / "raw.parquet", work / "valid.parquet", qdir, rdir / "validate.json"
    )
    labels = list(report["validate"]["label_set"]["labels"])
    params = augment_params_for(params, labels)
    report["preprocess"] = run_preprocess(
        params, work / "valid.parquet", work / "clean.parquet", qdir, rdir / "preprocess.json"
    )
    # The frozen test set lives in out_dir, so re-running prepare keeps it.
    split_dir = work / "split"
    split_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / "test.parquet").exists():
        (split_dir / "test.parquet").write_bytes((out_dir / "test.parquet").read_bytes())
    report["split"] = run_split(params, work / "clean.parquet", split_dir, rdir / "split.json")
    report["augment"] = run_augment(
        params, split_dir / "train.parquet", out_dir / "train.parquet", rdir / "augment.json"
    )
    for name in ("val", "test"):
        (out_dir / f"{name}.parquet").write_bytes((split_dir / f"{name}.parquet").read_bytes())
    combined = combine_reports(rdir, qdir, task=params.task, source=display_path(source))
    combined["task_type"] = params.task_type
    if "task_type_detected" in report:
        combined["task_type_detected"] = report["task_type_detected"]
    quarantine = collect_quarantine(qdir)
    quarantine.to_parquet(out_dir / "quarantine.parquet", index=False)
    quarantine.to_csv(out_dir / "quarantine.csv", index=False, encoding="utf-8-sig")
    write_json(out_dir / "report.json", combined)
    write_dataset_info(
        out_dir,
        DatasetInfo(
            task=params.task,
            labels=tuple(labels),
            source=display_path(source),
            task_type=params.task_type,
        ),
    )
    log.info("prepare: task %s, labels %s -> %s", params.task, labels, display_path(out_dir))
    return combined
