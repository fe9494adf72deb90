"""Experiments that train many models: `heara compare` (model families ranked on one frozen split),
`heara sweep` (a hyperparameter search) and `heara sweep-worker` (one more worker process on a running
search). Each calls its step in training/steps (compare.py, sweep.py), prints a table, then a JSON
summary line last."""

from __future__ import annotations

import sys
from pathlib import Path
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
    explicit_keys,
    load_params_cli,
    load_params_for,
    print_json,
)

app = typer.Typer()


# --------------------------------------------------------------------------- heara compare


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
        print_table(
            "per-class F1 (mean over seeds)", *per_class_table(rows, meta["labels"], meta.get("support"))
        )
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


# --------------------------------------------------------------------------- heara sweep


@app.command("sweep")
def sweep_cmd(
    family: Annotated[
        str, typer.Option("--family", help="The model family to search: kobert-tiny | linear.")
    ],
    trials: Annotated[
        Optional[int],
        typer.Option("--trials", min=1, help="Trials in all, over every worker (sweep.trials)."),
    ] = None,
    timeout_min: Annotated[
        Optional[float],
        typer.Option(
            "--timeout-min", min=0.1, help="No trial starts after this many minutes (sweep.timeout_min)."
        ),
    ] = None,
    storage: Annotated[
        Optional[str],
        typer.Option(
            "--storage",
            help="Optuna storage URL: postgresql://... for parallel workers (default: HEARA_SWEEP_STORAGE, "
            "sweep.storage, else a SQLite file in the state folder).",
        ),
    ] = None,
    study: Annotated[
        Optional[str],
        typer.Option(
            "--study", help="Study name; an existing study is continued (default: <task>-<family>-<time>)."
        ),
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option(
            "--workers",
            min=1,
            help="Parallel worker processes; more than 1 needs PostgreSQL (sweep.workers).",
        ),
    ] = None,
    compare_default: Annotated[
        bool,
        typer.Option(
            "--compare-default/--no-compare-default",
            help="Also score the family's configuration as set on the test split, beside the best (the "
            "search's first trial is that configuration, so this costs a scoring, not a training).",
        ),
    ] = True,
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Search one family's hyperparameters with Optuna on the validation split; write the best configuration
    as a params overlay and score it once on the test split. The last line printed is a JSON summary."""
    from training.steps.sweep import sweep_step

    summary = sweep_step(
        load_params_for(data_dir, params_file, overrides, overlays=overlays),
        family,
        data_files(data_dir),
        trials=trials,
        timeout_min=timeout_min,
        workers=workers,
        study_name=study,
        storage=storage,
        params_file=params_file,
        compare_default=compare_default,
    )
    n = summary["trials"]
    console.print(
        f"[bold]sweep {summary['study']}[/]: {n['complete']} complete, {n['pruned']} pruned, "
        f"{n['failed']} failed trials",
        highlight=False,
    )
    default = (
        f" (the configuration as set: {summary['default_val_macro_f1']:.4f})"
        if "default_val_macro_f1" in summary
        else ""
    )
    console.print(
        f"best: trial {summary['best_trial']}, val macro-F1 {summary['best_value']:.4f}{default}",
        highlight=False,
    )
    test = f"test macro-F1 of the best: {summary['final_test_macro_f1']:.4f}"
    if "default_test_macro_f1" in summary:
        test += f", of the configuration as set: {summary['default_test_macro_f1']:.4f}"
    console.print(test, highlight=False)
    console.print(
        f"overlay: {summary['overlay']}  (heara train --overlay {summary['overlay']})", highlight=False
    )
    print_json(summary)


@app.command("sweep-worker")
def sweep_worker_cmd(
    study: Annotated[str, typer.Option("--study", help="The study `heara sweep` (or the DAG) started.")],
    storage: Annotated[
        Optional[str],
        typer.Option("--storage", help="Its storage URL (default: HEARA_SWEEP_STORAGE, sweep.storage)."),
    ] = None,
    worker: Annotated[
        int, typer.Option("--worker", min=0, help="This worker's index (seeds its sampler).")
    ] = 0,
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """One more worker on a running sweep: trials until the study's budget or deadline is reached."""
    from training.steps.sweep import run_worker, storage_url

    url = storage_url(load_params_cli(params_file, overrides, overlays=overlays), storage)
    print_json(run_worker(study, url, data_files(data_dir), worker=worker))
