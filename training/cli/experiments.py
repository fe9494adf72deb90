"""Experiments over configurations: `heara sweep` (a hyperparameter search) and `heara sweep-worker`
(one more worker process on a running search). The work is in training/steps/sweep.py."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

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
