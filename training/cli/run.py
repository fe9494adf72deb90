"""`heara run`: bring your own data end to end, from a labeled file to a served champion."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from training.cli.common import OverlayOpt, ParamsOpt, SetOpt, console
from training.cli.data import (
    FormatOpt,
    HeaderOpt,
    IdColOpt,
    LabelColOpt,
    LabelSepOpt,
    LabelsOpt,
    MultilabelOpt,
    SourceOpt,
    TaskOpt,
    TextColOpt,
    detect_task_type,
    prepare_params,
    print_summary,
)

app = typer.Typer()


@app.command("run")
def run_cmd(
    source: SourceOpt,
    text_col: TextColOpt = None,
    label_col: LabelColOpt = None,
    task: TaskOpt = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            help="The prepared data folder (default: $HEARA_HOME/datasets/<task>); "
            "its test split stays frozen across runs."
        ),
    ] = None,
    id_col: IdColOpt = "",
    labels: LabelsOpt = None,
    header: HeaderOpt = True,
    fmt: FormatOpt = "auto",
    multilabel: MultilabelOpt = None,
    label_sep: LabelSepOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """The whole loop on any labeled file: prepare -> train -> evaluate -> register -> promote.

    Ends with the test macro-F1 beside a TF-IDF baseline's, the promotion decision and how to serve."""
    from training.cli.progress import step_progress
    from training.paths import state
    from training.steps.run import multilabel_figures, run_loop

    p = prepare_params(
        source,
        task=task,
        labels=labels,
        fmt=fmt,
        text_col=text_col,
        label_col=label_col,
        id_col=id_col,
        multilabel=multilabel,
        label_sep=label_sep,
        params_file=params_file,
        overlays=overlays,
        overrides=overrides,
    )
    out_dir = out or state().dataset(p.task)
    detect = detect_task_type(multilabel, label_sep, overrides)
    with step_progress(f"heara run: {p.task}") as progress:
        result = progress.wrap(run_loop)(p, source, out_dir, header=header, detect_multilabel=detect)
    print_summary(json.loads((out_dir / "report.json").read_text(encoding="utf-8")))
    decision = result["promotion"]
    fallback = result.get("fallback")
    final = fallback["promotion"] if fallback else decision
    serve = ["heara", "serve", "--data-dir", str(out_dir)]
    for path in [params_file, *(overlays or [])]:
        if path:
            serve += ["--params" if path == params_file else "--overlay", str(path)]
    lines = [
        f"[bold]{escape(result['task'])}[/] labels {escape(str(result['labels']))}",
        f"test macro-F1 {result['test_macro_f1']:.4f} ({escape(result['family'])})"
        + (
            f", micro-F1 {result['test_micro_f1']:.4f}, samples-F1 {result['test_samples_f1']:.4f}"
            if "test_micro_f1" in result
            else ""
        )
        + "  "
        f"(TF-IDF baseline {result['baseline']['test_macro_f1']:.4f}, "
        f"same split of {result['data']['test']} rows)",
        ("[green]PROMOTED[/] " if decision["promote"] else "[yellow]NOT PROMOTED[/] ")
        + f"{escape(decision['model'])} version {result['version']}: {escape(decision['reason'])}",
    ]
    if fallback:
        lines += [
            f"below the baseline with no champion: trained the linear family on the same split "
            f"(test macro-F1 {fallback['test_macro_f1']:.4f})",
            ("[green]PROMOTED[/] " if final["promote"] else "[yellow]NOT PROMOTED[/] ")
            + f"{escape(final['model'])} version {fallback['version']} (linear): {escape(final['reason'])}",
        ]
    lines.append(
        f"champion: {escape(final['model'])} version {final['champion_after']}; serve it with:\n  "
        f"{escape(shlex.join(serve))}"
        if final["champion_after"]
        else "no champion to serve yet"
    )
    console.print("\n".join(lines), soft_wrap=True, highlight=False)
    print(
        json.dumps(
            {
                "task": result["task"],
                "data_dir": result["data_dir"],
                "version": result["version"],
                "family": result["family"],
                "test_macro_f1": result["test_macro_f1"],
                "test_accuracy": result["test_accuracy"],
                **multilabel_figures(result),
                "baseline_macro_f1": result["baseline"]["test_macro_f1"],
                "promoted": decision["promote"],
                "fallback": {k: fallback[k] for k in ("family", "version", "test_macro_f1")}
                | multilabel_figures(fallback)
                | {"promoted": fallback["promotion"]["promote"]}
                if fallback
                else None,
                "champion": final["champion_after"],
                "serve": shlex.join(serve),
            },
            ensure_ascii=False,
        )
    )
