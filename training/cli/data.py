"""`heara data ...`: the data steps one by one, `prepare` (all of them on any file), the report, card
and ledger."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from training.cli.common import (
    OverlayOpt,
    ParamsOpt,
    SetOpt,
    explicit_keys,
    load_params_cli,
    print_json,
)
from training.paths import state

app = typer.Typer(
    help="Data steps: ingest -> validate -> preprocess -> split -> augment.", no_args_is_help=True
)


def _labels_arg(labels: Optional[str]) -> list[str] | None:
    if labels is None:
        return None
    return [x for x in re.split(r"[,\s]+", labels.strip()) if x]


@app.command("ingest")
def data_ingest(
    source: Annotated[
        Optional[Path], typer.Option(help="Labeled file (default: params data.source).")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Raw table (parquet) (default: $HEARA_HOME/data/raw.parquet).")
    ] = None,
    incoming: Annotated[bool, typer.Option(help="Also ingest new files from the incoming folder.")] = True,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Read the source file and every new labeled batch in the incoming folder into one raw table."""
    from training.steps.ingest import run_ingest

    st = state()
    p = load_params_cli(params_file, overrides, overlays=overlays)
    report = run_ingest(
        p.data,
        out or st.raw,
        st.quarantine,
        st.reports / "ingest.json",
        source=source,
        state=st if incoming else None,
    )
    print_json(report, keys=("rows_read", "rows", "unparseable"))


@app.command("validate")
def data_validate(
    raw: Annotated[
        Optional[Path],
        typer.Option(help="Raw table from `heara data ingest` (default: $HEARA_HOME/data/raw.parquet)."),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Valid rows (parquet) (default: $HEARA_HOME/data/valid.parquet).")
    ] = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Trim labels, quarantine empty/unknown/conflicting/too-long rows, write a report."""
    from training.steps.validate import run_validate

    st = state()
    report = run_validate(
        load_params_cli(params_file, overrides, overlays=overlays),
        raw or st.raw,
        out or st.valid,
        st.quarantine,
        st.reports / "validate.json",
    )
    print_json(
        report, keys=("rows_read", "rows_valid", "rows_quarantined", "quarantine_reasons", "per_class")
    )


@app.command("preprocess")
def data_preprocess(
    valid: Annotated[
        Optional[Path],
        typer.Option(help="Valid rows from `heara data validate` (default: $HEARA_HOME/data/valid.parquet)."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            help="Preprocessed, deduplicated rows (parquet) (default: $HEARA_HOME/data/clean.parquet)."
        ),
    ] = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """NFC, whitespace, personal-data masking, repeats, regex rules, spacing correction, dedup."""
    from training.steps.preprocess import run_preprocess

    st = state()
    report = run_preprocess(
        load_params_cli(params_file, overrides, overlays=overlays),
        valid or st.valid,
        out or st.clean,
        st.quarantine,
        st.reports / "preprocess.json",
    )
    print_json(report)


@app.command("split")
def data_split(
    clean: Annotated[
        Optional[Path], typer.Option(help="Preprocessed rows (default: $HEARA_HOME/data/clean.parquet).")
    ] = None,
    out_dir: Annotated[
        Optional[Path],
        typer.Option(help="Folder for train/val/test parquet (default: $HEARA_HOME/data/split)."),
    ] = None,
    resplit: Annotated[bool, typer.Option(help="Re-draw the frozen test split.")] = False,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Stratified train/val/test; an existing test split stays frozen unless --resplit."""
    from training.steps.split import run_split

    p = load_params_cli(
        params_file, overrides, {"split.resplit": True} if resplit else None, overlays=overlays
    )
    st = state()
    report = run_split(p, clean or st.clean, out_dir or st.split_dir, st.reports / "split.json")
    print_json({k: v for k, v in report.items() if k in ("train", "val", "test", "test_frozen")})


@app.command("augment")
def data_augment(
    train: Annotated[
        Optional[Path], typer.Option(help="Train split (default: $HEARA_HOME/data/split/train.parquet).")
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="Augmented train split (default: $HEARA_HOME/data/prepared/train.parquet)."),
    ] = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """EDA and AEDA on the train split only, with per-class multipliers; deterministic."""
    from training.steps.augment import run_augment

    st = state()
    report = run_augment(
        load_params_cli(params_file, overrides, overlays=overlays),
        train or st.split_dir / "train.parquet",
        out or st.prepared / "train.parquet",
        st.reports / "augment.json",
    )
    print_json(report, keys=("per_class_before", "per_class_after", "added", "by_method"))


# Options that `heara data prepare` and `heara run` share: one declaration each (type, default, help).
SourceOpt = Annotated[Path, typer.Option(help="Labeled file: CSV, TSV, JSONL, Excel or AI Hub JSON.")]
TextColOpt = Annotated[
    Optional[str], typer.Option(help="Text column (a position, 0, 1, ..., with --no-header).")
]
LabelColOpt = Annotated[Optional[str], typer.Option(help="Label column (a position with --no-header).")]
IdColOpt = Annotated[str, typer.Option(help="Id column ('' numbers the rows).")]
LabelsOpt = Annotated[
    Optional[str], typer.Option(help="Allowed labels, comma-separated (default: inferred from the data).")
]
TaskOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Task name: the MLflow experiment and the model heara-<task> "
        "(default: --set task=..., else the file name, ChatbotData.csv -> chatbotdata)."
    ),
]
HeaderOpt = Annotated[
    bool,
    typer.Option(
        "--header/--no-header",
        help="--no-header: a CSV/TSV file without a header row; name columns by position "
        "(--text-col 0 --label-col 1).",
    ),
]
FormatOpt = Annotated[str, typer.Option("--format", help="auto, csv, tsv, jsonl, excel, aihub.")]
MultilabelOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--multilabel/--single-label",
        help="Several labels per row (a cell like '기쁨,놀람'), or one. Default: params task_type, and a "
        "label column that clearly holds label lists is trained as multi-label (said in the log).",
    ),
]
LabelSepOpt = Annotated[
    Optional[str],
    typer.Option(
        "--label-sep", help="Multi-label: what separates a cell's labels (default: data.label_sep)."
    ),
]


def detect_task_type(multilabel: Optional[bool], label_sep: Optional[str], overrides) -> bool:
    """Whether `prepare` may decide multi-label from the data: nobody said which kind the file is."""
    return multilabel is None and label_sep is None and "task_type" not in explicit_keys(overrides)


@app.command("prepare")
def data_prepare(
    source: SourceOpt,
    out: Annotated[
        Path,
        typer.Option(
            help="Output folder: train/val/test parquet, quarantine, report.json, "
            "dataset.json (task and labels, read by every --data-dir command)."
        ),
    ],
    text_col: TextColOpt = None,
    label_col: LabelColOpt = None,
    id_col: IdColOpt = "",
    labels: LabelsOpt = None,
    task: TaskOpt = None,
    header: HeaderOpt = True,
    fmt: FormatOpt = "auto",
    multilabel: MultilabelOpt = None,
    label_sep: LabelSepOpt = None,
    resplit: Annotated[bool, typer.Option(help="Re-draw the frozen test split in OUT.")] = False,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Bring your own data: run ingest through augmentation on any file in one command."""
    from training.cli.progress import step_progress
    from training.steps.prepare import prepare

    p = prepare_params(
        source,
        task=task,
        labels=labels,
        fmt=fmt,
        text_col=text_col,
        label_col=label_col,
        id_col=id_col,
        resplit=resplit,
        multilabel=multilabel,
        label_sep=label_sep,
        params_file=params_file,
        overlays=overlays,
        overrides=overrides,
    )
    detect = detect_task_type(multilabel, label_sep, overrides)
    with step_progress("data prepare") as progress:
        report = progress.wrap(prepare)(p, source, out, header=header, detect_multilabel=detect)
    print_summary(report)
    print(json.dumps(prepare_summary(report, out), ensure_ascii=False))


def prepare_params(
    source: Path,
    *,
    task: Optional[str],
    labels: Optional[str],
    fmt: str,
    text_col: Optional[str],
    label_col: Optional[str],
    id_col: str = "",
    resplit: bool = False,
    multilabel: Optional[bool] = None,
    label_sep: Optional[str] = None,
    params_file: Optional[Path] = None,
    overlays: Optional[list[Path]] = None,
    overrides: Optional[list[str]] = None,
):
    """The params of `heara data prepare` (and `heara run`): the file's columns, task and label set.

    Task: --task, else an explicit --set task=..., else the file name. Labels: --labels, else the AI Hub
    label set for AI Hub JSON, else inferred from the data."""
    from training.data.dataset_info import DatasetInfo, apply_dataset_info, check_task, task_from_source
    from training.data.readers import AIHUB_LABELS

    label_list = _labels_arg(labels)
    if label_list is None:
        label_list = list(AIHUB_LABELS) if fmt == "aihub" or source.suffix.lower() == ".json" else []
    extra = {"data.format": fmt, "data.id_col": id_col or None, "split.resplit": resplit}
    if text_col:
        extra["data.text_col"] = text_col
    if label_col:
        extra["data.label_col"] = label_col
    if label_sep is not None:
        extra["data.label_sep"] = label_sep
    if multilabel is not None or label_sep is not None:  # a separator only means something for label lists
        extra["task_type"] = "multilabel" if multilabel is not False else "multiclass"
    base = load_params_cli(params_file, overrides, extra, overlays=overlays)
    explicit = explicit_keys(overrides)
    name = check_task(task) if task else base.task if "task" in explicit else task_from_source(source)
    return apply_dataset_info(
        base,
        DatasetInfo(task=name, labels=tuple(label_list), task_type=base.task_type),
        explicit=explicit - {"task", "labels"},
    )


def prepare_summary(report: dict, out: Path) -> dict:
    """The JSON line `heara data prepare` prints last."""
    return {
        "out": str(out),
        "task": report.get("task"),
        "rows_read": report["ingest"]["rows_read"],
        "train": report["split"]["train"]["rows"],
        "train_augmented": report["augment"].get(
            "rows_after", sum(report["augment"]["per_class_after"].values())
        ),
        "val": report["split"]["val"]["rows"],
        "test": report["split"]["test"]["rows"],
        "quarantined": report["quarantine"]["rows"],
        "balanced": report["accounting"]["balanced"],
    }


@app.command("report")
def data_report(
    out: Annotated[Optional[Path], typer.Option(help="Also write the combined report here (JSON).")] = None,
) -> None:
    """Summarise the last pipeline run in the state folder (the reports of every step)."""
    from training.data.reports import combine_reports

    st = state()
    report = combine_reports(
        st.reports, st.quarantine, task=load_params_cli(None, None).task, source="state folder"
    )
    print_summary(report)
    target = out or st.reports / "report.json"
    target.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"report": str(target), "balanced": report["accounting"]["balanced"]}))


@app.command("card")
def data_card(
    source: Annotated[Path, typer.Option(help="Labeled file.")] = Path("data/sample/utterances.csv"),
    text_col: Annotated[str, typer.Option(help="Text column.")] = "text",
    label_col: Annotated[str, typer.Option(help="Label column.")] = "label",
    id_col: Annotated[str, typer.Option(help="Id column.")] = "id",
    threshold: Annotated[
        float, typer.Option(help="Near-duplicate: character 3-gram Jaccard at or above.")
    ] = 0.7,
) -> None:
    """Figures for a dataset card: rows, classes, lengths, exact and near duplicates."""
    from training.data.card import dataset_card
    from training.data.readers import read_source

    rows = read_source(source, text_col=text_col, label_col=label_col, id_col=id_col or None).rows
    print(json.dumps(dataset_card(rows, threshold), ensure_ascii=False))


@app.command("ledger")
def data_ledger() -> None:
    """List the incoming files already ingested (name, hash, rows, time)."""
    from training.data.readers import Ledger

    entries = Ledger(state().ledger).entries()
    table = Table("ingested at", "name", "rows", "rejected", "sha256")
    for e in entries:
        table.add_row(e["ingested_at"], e["name"], str(e["rows"]), str(e["rejected"]), e["sha256"][:12])
    Console().print(table)


def print_summary(report: dict) -> None:
    """A readable summary of a `prepare` report on the console."""
    c = Console(stderr=True)
    v, pre, aug, sp = report["validate"], report["preprocess"], report["augment"], report["split"]
    t = Table(title=f"Heara data report: {report.get('task', '')} <- {report['source']}", show_header=False)
    t.add_row("rows read", str(report["ingest"]["rows_read"]))
    t.add_row(
        "labels", f"{v['label_set']['labels']} ({'inferred' if v['label_set']['inferred'] else 'configured'})"
    )
    t.add_row(
        "labels trimmed",
        str(v["labels_trimmed"]["rows"])
        + "".join(f"  {e['from']!r} -> {e['to']!r}" for e in v["labels_trimmed"]["examples"][:3]),
    )
    t.add_row("empty texts / labels", f"{v['empty_texts']} / {v['empty_labels']}")
    t.add_row("unknown labels", json.dumps(v["unknown_labels"], ensure_ascii=False))
    t.add_row(
        "conflicting texts",
        f"{v['conflicts']['texts']} texts, {v['conflicts']['rows']} rows "
        f"-> {v['conflicts']['quarantined_rows']} quarantined ({v['conflicts']['policy']})",
    )
    t.add_row(
        "length outliers (kept)", f"{v['length']['outliers']} above {v['length']['outlier_threshold']} chars"
    )
    rare = v.get("rare_classes")  # absent from reports written before the policy existed
    if rare and rare["classes"]:
        shown = ", ".join(f"'{lab}': {n}" for lab, n in list(rare["classes"].items())[:10])
        more = f" and {len(rare['classes']) - 10} more" if len(rare["classes"]) > 10 else ""
        done = (
            f"{rare['rows_quarantined']} rows quarantined"
            if rare["policy"] == "quarantine"
            else f"{rare['rows_merged']} rows merged into '{rare['merge_into']}'"
        )
        t.add_row(f"rare classes (< {rare['min_rows']} rows)", f"{shown}{more} -> {done} ({rare['policy']})")
    t.add_row("duplicates removed", str(pre["duplicates_removed"]))
    t.add_row(
        "split",
        f"train {sp['train']['rows']}, val {sp['val']['rows']}, test {sp['test']['rows']}"
        f"{' (frozen)' if sp.get('test_frozen') else ''}",
    )
    if sp.get("classes_not_in_test"):
        t.add_row(
            "no test rows", "; ".join(f"'{lab}': {why}" for lab, why in sp["classes_not_in_test"].items())
        )
    t.add_row("per class before aug", json.dumps(aug["per_class_before"], ensure_ascii=False))
    t.add_row("per class after aug", json.dumps(aug["per_class_after"], ensure_ascii=False))
    t.add_row("quarantined", f"{report['quarantine']['rows']} {report['quarantine']['by_stage']}")
    for reason, n in report["quarantine"].get("by_reason", {}).items():
        t.add_row("  reason", f"{n:>6}  {reason}")
    t.add_row("nothing lost", str(report["accounting"]["balanced"]))
    c.print(t)
