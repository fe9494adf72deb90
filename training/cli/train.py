"""`heara train | evaluate | register | promote | rollback | audit`: from prepared data to the champion
alias."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from training.cli.common import (
    DataDirOpt,
    OverlayOpt,
    ParamsOpt,
    SetOpt,
    console,
    data_files,
    load_params_cli,
    load_params_for,
    print_json,
)

app = typer.Typer()


@app.command("train")
def train_cmd(
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Fine-tune the configured model (tiny profile by default) and log the run to MLflow."""
    from training.steps.train import train_step

    cand = train_step(
        load_params_for(data_dir, params_file, overrides, overlays=overlays), data_files(data_dir)
    )
    print_json({k: v for k, v in cand.items() if k != "history"})


@app.command("evaluate")
def evaluate_cmd(
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Score the latest trained model on the frozen test split; plots and metrics go to its MLflow run."""
    from training.steps.evaluate import evaluate_step

    print_json(
        evaluate_step(
            load_params_for(data_dir, params_file, overrides, overlays=overlays), data_files(data_dir)
        )
    )


@app.command("register")
def register_cmd(
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Register the latest trained model as heara-<task> (alias: challenger)."""
    from training.steps.register import register_step

    p = load_params_for(data_dir, params_file, overrides, overlays=overlays)
    print(json.dumps({"version": register_step(p, data_files(data_dir) if data_dir else None)}))


@app.command("promote")
def promote_cmd(
    version: Annotated[
        Optional[int], typer.Option(help="Version to promote (default: the latest registered).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses (logged as forced).")] = False,
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Champion/challenger gate on the frozen test set; moves the champion alias only if it passes."""
    from training.steps.promote import promote_step

    files = data_files(data_dir)
    record = promote_step(
        load_params_for(data_dir, params_file, overrides, overlays=overlays),
        version,
        force=force,
        test_path=files.test,
        train_path=files.train,  # the baseline floor's (promote.require_beat_baseline)
    )
    console.print(
        ("[green]PROMOTED[/] " if record["promote"] else "[yellow]REFUSED[/] ") + escape(record["reason"]),
        soft_wrap=True,
    )
    print_json(record)


@app.command("rollback")
def rollback_cmd(
    to: Annotated[
        Optional[int], typer.Option("--to", help="Version to restore (default: the previous champion).")
    ] = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Restore the previous champion (or --to VERSION); recorded in the audit ledger."""
    from training.steps.rollback import rollback_step

    print_json(rollback_step(load_params_cli(params_file, overrides, overlays=overlays).task, to))


@app.command("audit")
def audit_cmd(params_file: ParamsOpt = None, overlays: OverlayOpt = None, overrides: SetOpt = None) -> None:
    """The audit ledger of champion changes: who, when, from which version to which, and why."""
    from training.registry.aliases import model_name
    from training.registry.audit import AuditLedger

    table = Table("at", "who", "action", "from", "to", "changed", "reason")
    for e in AuditLedger().entries(
        model_name(load_params_cli(params_file, overrides, overlays=overlays).task)
    ):
        table.add_row(
            e["at"],
            e["who"],
            e["action"],
            str(e["from_version"]),
            str(e["to_version"]),
            str(e["champion_changed"]),
            e["reason"][:80],
        )
    Console().print(table)
