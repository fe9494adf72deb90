"""`heara compare`: experiments that train many models and rank them (one command per study kind; each
calls its step in training/steps and prints a table, then a JSON summary line last)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

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
    explicit_keys,
    load_params_for,
    print_json,
)

app = typer.Typer()


def print_table(title: str, headers: list[str], cells: list[list[str]]) -> None:
    """A leaderboard table on stdout, above the JSON line (stderr carries the progress lines)."""
    table = Table(*headers, title=title, title_justify="left")
    for row in cells:
        table.add_row(*(escape(c) for c in row))
    # Into a file or a pipe a row stays on one line (rich would assume 80 columns and squeeze it).
    Console(width=None if sys.stdout.isatty() else 240).print(table)


@app.command("compare")
def compare_cmd(
    families: Annotated[
        str,
        typer.Option(
            "--families",
            help="Comma-separated model families: linear, kobert-tiny, kobert (skt/kobert-base-v1), "
            "kobert:<name or folder>, hf:<name or folder>. Full-profile ones take params.full.yaml.",
        ),
    ],
    seeds: Annotated[
        int, typer.Option(min=1, help="Runs per family; seeds train.seed, train.seed+1, ...")
    ] = 3,
    keep_models: Annotated[
        bool, typer.Option(help="Keep each run's model folder (default: deleted after scoring).")
    ] = False,
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Train several model families on the same frozen split, a few seeds each, and rank them on the
    frozen test split: macro-F1 with a bootstrap CI, per-class F1, Korean robustness slices, CPU latency,
    size and training time. MLflow: a parent run and one child per run; the leaderboard (Markdown, HTML,
    PNG, JSON) is the parent's artifact and lies in the task's folder."""
    from training.evaluation.leaderboard import per_class_table, summary_table
    from training.steps.compare import check_overrides, compare_step, parse_families

    specs = parse_families(families)
    check_overrides(explicit_keys(overrides))
    family_params = {
        spec.name: load_params_for(
            data_dir, params_file, overrides, spec.overrides, overlays=[*spec.overlays, *(overlays or [])]
        )
        for spec in specs
    }
    result = compare_step(family_params, data_files(data_dir), seeds=seeds, keep_models=keep_models)
    rows, meta = result["rows"], result["meta"]
    print_table(f"heara compare {result['study']}", *summary_table(rows, meta["ci_level"]))
    if any(r.ok for r in rows):
        print_table("per-class F1 (mean over seeds)", *per_class_table(rows, meta["labels"]))
    console.print(
        f"leaderboard: {escape(str(Path(result['out_dir']) / 'leaderboard.md'))} (and .html, .png, .json); "
        f"MLflow parent run {result['parent_run_id']}",
        soft_wrap=True,
        highlight=False,
    )
    print_json(
        {
            "study": result["study"],
            "task": result["task"],
            "parent_run_id": result["parent_run_id"],
            "leaderboard": str(Path(result["out_dir"]) / "leaderboard.md"),
            "best": result["best"],
            "families": [
                {
                    "family": r.family,
                    "macro_f1": r.macro_f1,
                    "ci": [r.ci_low, r.ci_high] if r.ok else None,
                    "seeds": r.seeds,
                    "error": r.error,
                }
                for r in rows
            ],
        }
    )
