"""`heara`: one command-line entry point, a subcommand per step. Commands parse options and call
the step functions in the training/ modules; they hold no logic of their own."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from training.cli.airflow import airflow_app
from training.config import ConfigError, Params, load_params, parse_overrides
from training.errors import DataError
from training.logs import setup_logging
from training.paths import state

app = typer.Typer(help="Heara: Korean utterance classification, from labeled data to a served model.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Data steps: ingest -> validate -> preprocess -> split -> augment.",
                       no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print their figures (a JSON line last).", no_args_is_help=True)
config_app = typer.Typer(help="Show the resolved configuration.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
app.add_typer(config_app, name="config")
app.add_typer(airflow_app, name="airflow")
console = Console(stderr=True)

ParamsOpt = Annotated[Optional[Path], typer.Option("--params", help="params.yaml to use (default: the repo's, or $HEARA_PARAMS).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a value for this run, e.g. --set split.seed=7 (repeatable).")]


def _params(params_file: Optional[Path], overrides: Optional[list[str]], extra: dict | None = None) -> Params:
    merged = parse_overrides(overrides or [])
    for key, value in (extra or {}).items():
        node = merged
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return load_params(params_file, merged)


def _fail(err: Exception) -> None:
    console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (DataError, ConfigError) as e:
        _fail(e)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    setup_logging("DEBUG" if verbose else "INFO")


# --- data ---------------------------------------------------------------------------------------

def _labels_arg(labels: Optional[str]) -> list[str] | None:
    if labels is None:
        return None
    return [x for x in re.split(r"[,\s]+", labels.strip()) if x]


@data_app.command("ingest")
def data_ingest(
    source: Annotated[Optional[Path], typer.Option(help="Labeled file (default: params data.source).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Raw table (parquet). [default: $HEARA_HOME/data/raw.parquet]")] = None,
    incoming: Annotated[bool, typer.Option(help="Also ingest new files from the incoming folder.")] = True,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Read the source file and every new labeled batch in the incoming folder into one raw table."""
    from training.steps.prepare import run_ingest

    st = state()
    p = _params(params_file, overrides)
    report = _run(run_ingest, p.data, out or st.raw, st.quarantine, st.reports / "ingest.json", source=source,
                  state=st if incoming else None)
    _print_json(report, keys=("rows_read", "rows", "unparseable"))


@data_app.command("validate")
def data_validate(
    raw: Annotated[Optional[Path], typer.Option(help="Raw table from `heara data ingest`. [default: $HEARA_HOME/data/raw.parquet]")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Valid rows (parquet). [default: $HEARA_HOME/data/valid.parquet]")] = None,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Trim labels, quarantine empty/unknown/conflicting/too-long rows, write a report."""
    from training.steps.prepare import run_validate

    st = state()
    report = _run(run_validate, _params(params_file, overrides), raw or st.raw, out or st.valid, st.quarantine,
                  st.reports / "validate.json")
    _print_json(report, keys=("rows_read", "rows_valid", "rows_quarantined", "quarantine_reasons", "per_class"))


@data_app.command("preprocess")
def data_preprocess(
    valid: Annotated[Optional[Path], typer.Option(help="Valid rows from `heara data validate`. [default: $HEARA_HOME/data/valid.parquet]")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Preprocessed, deduplicated rows (parquet). [default: $HEARA_HOME/data/clean.parquet]")] = None,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """NFC, whitespace, personal-data masking, repeats, regex rules, spacing correction, dedup."""
    from training.steps.prepare import run_preprocess

    st = state()
    report = _run(run_preprocess, _params(params_file, overrides), valid or st.valid, out or st.clean, st.quarantine,
                  st.reports / "preprocess.json")
    _print_json(report)


@data_app.command("split")
def data_split(
    clean: Annotated[Optional[Path], typer.Option(help="Preprocessed rows. [default: $HEARA_HOME/data/clean.parquet]")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Folder for train/val/test parquet. [default: $HEARA_HOME/data/split]")] = None,
    resplit: Annotated[bool, typer.Option(help="Re-draw the frozen test split.")] = False,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Stratified train/val/test; an existing test split stays frozen unless --resplit."""
    from training.steps.prepare import run_split

    p = _params(params_file, overrides, {"split.resplit": True} if resplit else None)
    st = state()
    report = _run(run_split, p, clean or st.clean, out_dir or st.split_dir, st.reports / "split.json")
    _print_json({k: v for k, v in report.items() if k in ("train", "val", "test", "test_frozen")})


@data_app.command("augment")
def data_augment(
    train: Annotated[Optional[Path], typer.Option(help="Train split. [default: $HEARA_HOME/data/split/train.parquet]")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Augmented train split. [default: $HEARA_HOME/data/prepared/train.parquet]")] = None,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """EDA and AEDA on the train split only, with per-class multipliers; deterministic."""
    from training.steps.prepare import run_augment

    st = state()
    report = _run(run_augment, _params(params_file, overrides), train or st.split_dir / "train.parquet",
                  out or st.prepared / "train.parquet", st.reports / "augment.json")
    _print_json(report, keys=("per_class_before", "per_class_after", "added", "by_method"))


@data_app.command("prepare")
def data_prepare(
    source: Annotated[Path, typer.Option(help="Labeled file: CSV, TSV, JSONL, Excel or AI Hub JSON.")],
    out: Annotated[Path, typer.Option(help="Output folder: train/val/test parquet, quarantine, report.json.")],
    text_col: Annotated[Optional[str], typer.Option(help="Text column.")] = None,
    label_col: Annotated[Optional[str], typer.Option(help="Label column.")] = None,
    id_col: Annotated[str, typer.Option(help="Id column ('' numbers the rows).")] = "",
    labels: Annotated[Optional[str], typer.Option(help="Allowed labels, comma-separated (default: inferred from the data).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv, tsv, jsonl, excel, aihub.")] = "auto",
    resplit: Annotated[bool, typer.Option(help="Re-draw the frozen test split in OUT.")] = False,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Bring your own data: run ingest through augmentation on any file in one command."""
    from training.steps.prepare import prepare
    from training.data.readers import AIHUB_LABELS

    label_list = _labels_arg(labels)
    if label_list is None:
        label_list = list(AIHUB_LABELS) if fmt == "aihub" or source.suffix.lower() == ".json" else []
    base = _params(params_file, overrides)
    # The task's per-class multipliers apply only to labels of this file; without any, balance
    # every class up to the largest one (augment.target_balance=1.0) unless a balance is configured.
    multipliers = {k: v for k, v in base.augment.multipliers.items() if k in label_list} if label_list \
        else {}
    extra = {"labels": label_list, "data.format": fmt, "data.id_col": id_col or None,
             "split.resplit": resplit, "augment.multipliers": multipliers}
    if not multipliers and base.augment.target_balance is None:
        extra["augment.target_balance"] = 1.0
    if text_col:
        extra["data.text_col"] = text_col
    if label_col:
        extra["data.label_col"] = label_col
    p = _params(params_file, overrides, extra)
    from training.cli.progress import step_progress

    with step_progress("data prepare") as progress:
        report = _run(progress.wrap(prepare), p, source, out)
    print_summary(report)
    print(json.dumps({"out": str(out), "rows_read": report["ingest"]["rows_read"],
                      "train": report["split"]["train"]["rows"], "train_augmented": sum(report["augment"]["per_class_after"].values()),
                      "val": report["split"]["val"]["rows"], "test": report["split"]["test"]["rows"],
                      "quarantined": report["quarantine"]["rows"], "balanced": report["accounting"]["balanced"]},
                     ensure_ascii=False))


@data_app.command("report")
def data_report(
    out: Annotated[Optional[Path], typer.Option(help="Also write the combined report here (JSON).")] = None,
) -> None:
    """Summarise the last pipeline run in the state folder (the reports of every step)."""
    from training.steps.prepare import combine_reports

    st = state()
    try:
        report = combine_reports(st.reports, st.quarantine, task=_params(None, None).task, source="state folder")
    except FileNotFoundError as e:
        _fail(e)
    print_summary(report)
    target = out or st.reports / "report.json"
    target.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"report": str(target), "balanced": report["accounting"]["balanced"]}))


@data_app.command("card")
def data_card(
    source: Annotated[Path, typer.Option(help="Labeled file.")] = Path("data/sample/utterances.csv"),
    text_col: Annotated[str, typer.Option(help="Text column.")] = "text",
    label_col: Annotated[str, typer.Option(help="Label column.")] = "label",
    id_col: Annotated[str, typer.Option(help="Id column.")] = "id",
    threshold: Annotated[float, typer.Option(help="Near-duplicate: character 3-gram Jaccard at or above.")] = 0.7,
) -> None:
    """Figures for a dataset card: rows, classes, lengths, exact and near duplicates."""
    from training.data.card import dataset_card
    from training.data.readers import read_source

    rows = _run(read_source, source, text_col=text_col, label_col=label_col, id_col=id_col or None).rows
    print(json.dumps(dataset_card(rows, threshold), ensure_ascii=False))


@data_app.command("ledger")
def data_ledger() -> None:
    """List the incoming files already ingested (name, hash, rows, time)."""
    from training.data.readers import Ledger

    entries = Ledger(state().ledger).entries()
    table = Table("ingested at", "name", "rows", "rejected", "sha256")
    for e in entries:
        table.add_row(e["ingested_at"], e["name"], str(e["rows"]), str(e["rejected"]), e["sha256"][:12])
    Console().print(table)


# --- training, registry, promotion ---------------------------------------------------------------

DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="A `heara data prepare --out` folder (default: the DVC pipeline's outputs in the state folder).")]


def _files(data_dir: Optional[Path]):
    from training.steps.train import DataFiles

    return DataFiles.from_dir(data_dir) if data_dir else DataFiles.default()


def _run_step(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (DataError, ConfigError, FileNotFoundError, ValueError) as e:
        _fail(e)


@app.command("train")
def train_cmd(data_dir: DataDirOpt = None, params_file: ParamsOpt = None, overrides: SetOpt = None) -> None:
    """Fine-tune the configured model (tiny profile by default) and log the run to MLflow."""
    from training.steps.train import train_step

    cand = _run_step(train_step, _params(params_file, overrides), _files(data_dir))
    _print_json({k: v for k, v in cand.items() if k != "history"})


@app.command("evaluate")
def evaluate_cmd(data_dir: DataDirOpt = None, params_file: ParamsOpt = None, overrides: SetOpt = None) -> None:
    """Score the latest trained model on the frozen test split; plots and metrics go to its MLflow run."""
    from training.steps.train import evaluate_step

    _print_json(_run_step(evaluate_step, _params(params_file, overrides), _files(data_dir)))


@app.command("register")
def register_cmd(params_file: ParamsOpt = None, overrides: SetOpt = None) -> None:
    """Register the latest trained model as heara-<task> (alias: challenger)."""
    from training.steps.train import register_step

    print(json.dumps({"version": _run_step(register_step, _params(params_file, overrides))}))


@app.command("promote")
def promote_cmd(
    version: Annotated[Optional[int], typer.Option(help="Version to promote (default: the latest registered).")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses (logged as forced).")] = False,
    data_dir: DataDirOpt = None, params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Champion/challenger gate on the frozen test set; moves the champion alias only if it passes."""
    from training.steps.promote import promote_step

    record = _run_step(promote_step, _params(params_file, overrides), version, force=force,
                       test_path=_files(data_dir).test)
    console.print(("[green]PROMOTED[/] " if record["promote"] else "[yellow]REFUSED[/] ") + escape(record["reason"]),
                  soft_wrap=True)
    _print_json(record)


@app.command("rollback")
def rollback_cmd(
    to: Annotated[Optional[int], typer.Option("--to", help="Version to restore (default: the previous champion).")] = None,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Restore the previous champion (or --to VERSION); recorded in the audit ledger."""
    from training.steps.promote import rollback_step

    _print_json(_run_step(rollback_step, _params(params_file, overrides).task, to))


@app.command("audit")
def audit_cmd(params_file: ParamsOpt = None, overrides: SetOpt = None) -> None:
    """The audit ledger of champion changes: who, when, from which version to which, and why."""
    from training.registry.aliases import AuditLedger, model_name

    table = Table("at", "who", "action", "from", "to", "changed", "reason")
    for e in AuditLedger().entries(model_name(_params(params_file, overrides).task)):
        table.add_row(e["at"], e["who"], e["action"], str(e["from_version"]), str(e["to_version"]),
                      str(e["champion_changed"]), e["reason"][:80])
    Console().print(table)


@app.command("predict")
def predict_cmd(
    input_path: Annotated[Path, typer.Option("--input", help="CSV, TSV, JSONL or Excel file with a text column.")],
    output_path: Annotated[Path, typer.Option("--output", help="Where to write predictions (.csv or .jsonl).")],
    text_col: Annotated[str, typer.Option(help="Text column.")] = "text",
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Batch prediction with the served model (the champion, or HEARA_MODEL_DIR)."""
    from training.steps.predict import predict_file

    p = _params(params_file, overrides)
    try:
        result = predict_file(input_path, output_path, task=p.task, serve=p.serve, text_col=text_col)
    except (DataError, ConfigError, FileNotFoundError, RuntimeError) as e:
        _fail(e)
    _print_json(result)


@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Serve the champion with BentoML (POST /classify, GET /model, /readyz, /metrics, /docs)."""
    from training.registry.champion import NoChampionError
    from serving.run import serve

    try:
        serve(port, host)
    except (NoChampionError, FileNotFoundError, RuntimeError) as e:
        _fail(e)


@app.command("mlflow-ui")
def mlflow_ui(port: Annotated[int, typer.Option(help="Port.")] = 5000,
              host: Annotated[str, typer.Option(help="Interface.")] = "127.0.0.1") -> None:
    """Start the MLflow UI on the local tracking store (runs, plots, the registry and its aliases)."""
    import os

    from training.paths import state
    from training.registry.tracking import tracking_uri

    st = state()
    cmd = ["mlflow", "server", "--backend-store-uri", tracking_uri(), "--host", host, "--port", str(port)]
    if tracking_uri().startswith("sqlite:///"):
        cmd += ["--default-artifact-root", (st.mlflow / "artifacts").as_uri()]
    console.print("running: " + " ".join(cmd), soft_wrap=True)
    os.execvp(cmd[0], cmd)


# --- bench, config --------------------------------------------------------------------------------

@bench_app.command("preprocess")
def bench_preprocess(
    source: Annotated[Path, typer.Option(help="Labeled file to read texts from.")],
    text_col: Annotated[str, typer.Option(help="Text column.")] = "text",
    label_col: Annotated[str, typer.Option(help="Label column.")] = "label",
    repeat: Annotated[int, typer.Option(help="Timed passes (the best is reported).")] = 3,
    params_file: ParamsOpt = None, overrides: SetOpt = None,
) -> None:
    """Sentences per second of the full preprocessing (spacing included) and of each step."""
    from training.bench.preprocess import bench_preprocess as run

    result = _run(run, _params(params_file, overrides), source, text_col, label_col, repeat)
    print(json.dumps(result, ensure_ascii=False))


@bench_app.command("baseline")
def bench_baseline(data_dir: DataDirOpt = None) -> None:
    """Macro-F1 of a character n-gram TF-IDF + logistic regression baseline on the same frozen test split."""
    from training.evaluation.baseline import tfidf_baseline

    splits = _run_step(_files(data_dir).load)
    print(json.dumps(tfidf_baseline(splits["train"], splits["test"]), ensure_ascii=False))


@bench_app.command("train")
def bench_train_cmd(
    model_size: Annotated[str, typer.Option(help="tiny or base (BERT-base shape, KoBERT vocabulary 8002).")] = "tiny",
    seq_len: Annotated[int, typer.Option(help="Maximum sequence length.")] = 64,
    steps: Annotated[int, typer.Option(help="Timed training steps per configuration.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Training throughput of Heara's trainer vs the seed notebooks' configuration, same model and data."""
    from training.bench.train import bench_train

    print(json.dumps(bench_train(model_size=model_size, seq_len=seq_len, steps=steps, batch_size=batch_size,
                                 device=device), ensure_ascii=False))


@bench_app.command("serve")
def bench_serve_cmd(
    concurrency: Annotated[int, typer.Option(help="Concurrent clients (closed loop).")] = 32,
    duration: Annotated[float, typer.Option(help="Seconds of load per server, after a warm-up.")] = 20.0,
    model_dir: Annotated[Optional[Path], typer.Option(help="A Heara model folder (default: the champion).")] = None,
) -> None:
    """Requests/s and latency of `bentoml serve` against a Flask baseline (one model call per request)."""
    from serving.bench import bench_serve

    try:
        result = bench_serve(model_dir, concurrency=concurrency, duration_s=duration)
    except (FileNotFoundError, RuntimeError) as e:
        _fail(e)
    print(json.dumps(result, ensure_ascii=False))


@config_app.command("show")
def config_show(params_file: ParamsOpt = None, overrides: SetOpt = None) -> None:
    """Print the resolved configuration (params.yaml plus overrides) as JSON."""
    try:
        print(json.dumps(_params(params_file, overrides).to_dict(), ensure_ascii=False, indent=2))
    except ConfigError as e:
        _fail(e)


# --- output helpers ----------------------------------------------------------------------------------

def _print_json(report: dict, keys: tuple[str, ...] | None = None) -> None:
    shown = {k: report[k] for k in keys if k in report} if keys else report
    print(json.dumps(shown, ensure_ascii=False, default=str))


def print_summary(report: dict) -> None:
    """A readable summary of a `prepare` report on the console."""
    c = Console(stderr=True)
    v, pre, aug, sp = report["validate"], report["preprocess"], report["augment"], report["split"]
    t = Table(title=f"Heara data report: {report.get('task', '')} <- {report['source']}", show_header=False)
    t.add_row("rows read", str(report["ingest"]["rows_read"]))
    t.add_row("labels", f"{v['label_set']['labels']} ({'inferred' if v['label_set']['inferred'] else 'configured'})")
    t.add_row("labels trimmed", str(v["labels_trimmed"]["rows"]) + "".join(
        f"  {e['from']!r} -> {e['to']!r}" for e in v["labels_trimmed"]["examples"][:3]))
    t.add_row("empty texts / labels", f"{v['empty_texts']} / {v['empty_labels']}")
    t.add_row("unknown labels", json.dumps(v["unknown_labels"], ensure_ascii=False))
    t.add_row("conflicting texts", f"{v['conflicts']['texts']} texts, {v['conflicts']['rows']} rows "
              f"-> {v['conflicts']['quarantined_rows']} quarantined ({v['conflicts']['policy']})")
    t.add_row("length outliers (kept)", f"{v['length']['outliers']} above {v['length']['outlier_threshold']} chars")
    t.add_row("duplicates removed", str(pre["duplicates_removed"]))
    t.add_row("split", f"train {sp['train']['rows']}, val {sp['val']['rows']}, test {sp['test']['rows']}"
              f"{' (frozen)' if sp.get('test_frozen') else ''}")
    t.add_row("per class before aug", json.dumps(aug["per_class_before"], ensure_ascii=False))
    t.add_row("per class after aug", json.dumps(aug["per_class_after"], ensure_ascii=False))
    t.add_row("quarantined", f"{report['quarantine']['rows']} {report['quarantine']['by_stage']}")
    for reason, n in report["quarantine"].get("by_reason", {}).items():
        t.add_row("  reason", f"{n:>6}  {reason}")
    t.add_row("nothing lost", str(report["accounting"]["balanced"]))
    c.print(t)


if __name__ == "__main__":
    sys.exit(app())
