"""`heara predict | serve | mlflow-ui`: use the champion (batch or HTTP) and look at the tracking store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.cli.common import (
    DataDirOpt,
    OverlayOpt,
    ParamsOpt,
    SetOpt,
    console,
    load_params_for,
    print_json,
)
from training.paths import state

app = typer.Typer()


@app.command("predict")
def predict_cmd(
    input_path: Annotated[
        Path, typer.Option("--input", help="CSV, TSV, JSONL or Excel file with a text column.")
    ],
    output_path: Annotated[
        Path,
        typer.Option(
            "--output",
            help="Where to write predictions (.csv or .jsonl): every "
            "input column plus pred_label, pred_score, prob_<label>, danger, "
            "model_version.",
        ),
    ],
    text_col: Annotated[
        str, typer.Option(help="Text column (a position, 0, 1, ..., with --no-header).")
    ] = "text",
    label_col: Annotated[
        Optional[str],
        typer.Option(
            help="Column of true labels: accuracy and macro-F1 against it "
            "are printed (default: 'label' when the file has one)."
        ),
    ] = None,
    header: Annotated[
        bool,
        typer.Option(
            "--header/--no-header",
            help="--no-header: a CSV/TSV file without a header row (columns named 0, 1, ... by position).",
        ),
    ] = True,
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Batch prediction with the served model (the champion of heara-<task>, or HEARA_MODEL_DIR)."""
    from training.steps.predict import predict_file

    p = load_params_for(data_dir, params_file, overrides, overlays=overlays)
    result = predict_file(
        input_path,
        output_path,
        task=p.task,
        serve=p.serve,
        text_col=text_col,
        label_col=label_col,
        header=header,
    )
    if "accuracy" in result:
        console.print(
            f"against '{result['label_col']}' ({result['labeled_rows']} rows): accuracy "
            f"{result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}",
            highlight=False,
        )
    elif "metrics_skipped" in result:
        console.print(
            f"no accuracy against '{result['label_col']}': {result['metrics_skipped']}",
            highlight=False,
            soft_wrap=True,
        )
    print_json(result)


@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Serve the champion with BentoML (POST /classify, GET /model, /readyz, /metrics, /docs).

    Which heara-<task> champion: params.yaml's task, or --data-dir / --set task=... (written to a
    params file).
    """
    from serving.run import serve

    if data_dir or params_file or overlays or overrides:
        import os

        p = load_params_for(data_dir, params_file, overrides, overlays=overlays)
        resolved = p.save(
            state().serving_params(p.task), "Written by `heara serve`: the resolved params it serves with."
        )
        os.environ["HEARA_PARAMS"] = str(
            resolved
        )  # read by serving (training/env.py) in this and child processes
        console.print(f"serving task {p.task} with {resolved}", highlight=False, soft_wrap=True)
    serve(port, host)


def mlflow_command() -> list[str]:
    """The mlflow executable of this interpreter's environment (beside sys.executable), whether or not
    that environment's bin folder is on PATH; `python -m mlflow` where there is no such script."""
    script = Path(sys.executable).with_name("mlflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlflow"]


@app.command("mlflow-ui")
def mlflow_ui(
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface.")] = "127.0.0.1",
) -> None:
    """Start the MLflow UI on the local tracking store (runs, plots, the registry and its aliases)."""
    import os

    from training.registry.tracking import tracking_uri

    st = state()
    cmd = [
        *mlflow_command(),
        "server",
        "--backend-store-uri",
        tracking_uri(),
        "--host",
        host,
        "--port",
        str(port),
    ]
    if tracking_uri().startswith("sqlite:///"):
        cmd += ["--default-artifact-root", (st.mlflow / "artifacts").as_uri()]
    console.print("running: " + " ".join(cmd), soft_wrap=True)
    os.execv(cmd[0], cmd)
