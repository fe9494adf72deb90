"""`heara monitor`: is the served model drifting? The newest window of the prediction log against the
reference stored with the served version (training/steps/monitor.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.cli.common import (
    DataDirOpt,
    HoursOpt,
    OverlayOpt,
    ParamsOpt,
    SetOpt,
    WindowOpt,
    console,
    load_params_for,
)

app = typer.Typer()
monitor_app = typer.Typer(
    invoke_without_command=True,
    help="Is the served model drifting? Without a subcommand: judge the newest window.",
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("prune")
def prune_cmd(
    older_than: Annotated[
        float, typer.Option("--older-than", min=0, help="Delete predictions older than this many days.")
    ],
) -> None:
    """Retention: delete the prediction log's rows older than N days (the store HEARA_PREDICTION_DB
    names, SQLite by default). Prints how many went, then a JSON line."""
    from serving.predlog import PredictionLog
    from training import env

    before = datetime.now(UTC) - timedelta(days=older_than)
    predlog = PredictionLog(env.prediction_db())
    try:
        deleted = predlog.prune(before)
    finally:
        predlog.close()
    console.print(f"deleted {deleted} predictions made before {before:%Y-%m-%d %H:%M} UTC")
    print(json.dumps({"deleted": deleted, "before": before.isoformat(timespec="seconds")}))


@monitor_app.callback()
def monitor_cmd(
    ctx: typer.Context,
    window: WindowOpt = None,
    hours: HoursOpt = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Report folder (default: $HEARA_HOME/models/<task>/monitoring).")
    ] = None,
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Judge the newest window of served predictions: drift of the predicted labels, the confidence,
    the Korean text descriptors and the embeddings, and the macro-F1 estimated without labels, each
    against the served version's reference. Prints the verdict and a JSON line; writes report.json,
    report.html and history.jsonl; logs a run to MLflow."""
    if ctx.invoked_subcommand is not None:
        return
    from training.orchestration.review import served_window
    from training.steps.monitor import monitor_step

    p = load_params_for(data_dir, params_file, overrides, overlays=overlays)
    source, frame = served_window(p, window=window, hours=hours)
    record = monitor_step(p, frame, model_dir=source.model_dir, version=source.version_label, out_dir=out)
    verdict = (
        "[red]ALARM[/]: persistent drift"
        if record["persistent_alarm"]
        else "[yellow]window alarmed[/] (not yet persistent)"
        if record["window_alarm"]
        else "ok"
        if record["enough"]
        else "too few predictions to judge"
    )
    console.print(
        f"{p.task} version {record['model_version']}, {record['window']['n']} predictions: {verdict}"
    )
    for reason in record["reasons"]:
        console.print(f"  - {reason}", highlight=False)
    s = record["signals"]
    print(
        json.dumps(
            {
                "task": p.task,
                "model_version": record["model_version"],
                "n": record["window"]["n"],
                "window_alarm": record["window_alarm"],
                "persistent_alarm": record["persistent_alarm"],
                "estimated_macro_f1": s.get("estimated_macro_f1"),
                "reference_val_macro_f1": s.get("reference_val_macro_f1"),
                "domain_auc": s.get("domain_auc"),
                "label_js": s.get("label_js"),
                "features": record["features"],
            },
            ensure_ascii=False,
        )
    )
