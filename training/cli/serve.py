"""`heara predict | serve | mlflow-ui`: use the champion (batch or HTTP) and look at the tracking store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.common import (
    OverlayOpt,
    ParamsOpt,
    SetOpt,
    console,
    load_params_cli,
    print_json,
)
from training.paths import state

app = typer.Typer()


@app.command("predict")
def predict_cmd(
    input_path: Annotated[Path, typer.Option("--input", help="CSV, TSV, JSONL or Excel file with a text column.")],
    output_path: Annotated[Path, typer.Option("--output", help="Where to write predictions (.csv or .jsonl).")],
    text_col: Annotated[str, typer.Option(help="Text column.")] = "text",
    params_file: ParamsOpt = None, overlays: OverlayOpt = None, overrides: SetOpt = None,
) -> None:
    """Batch prediction with the served model (the champion, or HEARA_MODEL_DIR)."""
    from training.steps.predict import predict_file

    p = load_params_cli(params_file, overrides, overlays=overlays)
    result = predict_file(input_path, output_path, task=p.task, serve=p.serve, text_col=text_col)
    print_json(result)


@app.command("serve")
def serve_cmd(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Serve the champion with BentoML (POST /classify, GET /model, /readyz, /metrics, /docs)."""
    from serving.run import serve
    serve(port, host)


@app.command("mlflow-ui")
def mlflow_ui(port: Annotated[int, typer.Option(help="Port.")] = 5000,
              host: Annotated[str, typer.Option(help="Interface.")] = "127.0.0.1") -> None:
    """Start the MLflow UI on the local tracking store (runs, plots, the registry and its aliases)."""
    import os

    from training.registry.tracking import tracking_uri

    st = state()
    cmd = ["mlflow", "server", "--backend-store-uri", tracking_uri(), "--host", host, "--port", str(port)]
    if tracking_uri().startswith("sqlite:///"):
        cmd += ["--default-artifact-root", (st.mlflow / "artifacts").as_uri()]
    console.print("running: " + " ".join(cmd), soft_wrap=True)
    os.execvp(cmd[0], cmd)

