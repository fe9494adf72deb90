"""`heara bench ...`: measurements that print their figures (a JSON line last)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.cli.common import (
    DataDirOpt,
    OverlayOpt,
    ParamsOpt,
    SetOpt,
    data_files,
    load_params_cli,
    load_params_for,
)

app = typer.Typer(help="Benchmarks that print their figures (a JSON line last).", no_args_is_help=True)


@app.command("preprocess")
def bench_preprocess(
    source: Annotated[Path, typer.Option(help="Labeled file to read texts from.")],
    text_col: Annotated[str, typer.Option(help="Text column.")] = "text",
    label_col: Annotated[str, typer.Option(help="Label column.")] = "label",
    repeat: Annotated[int, typer.Option(help="Timed passes (the best is reported).")] = 3,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Sentences per second of the full preprocessing (spacing included) and of each step."""
    from training.bench.preprocess import bench_preprocess as run

    result = run(
        load_params_cli(params_file, overrides, overlays=overlays), source, text_col, label_col, repeat
    )
    print(json.dumps(result, ensure_ascii=False))


@app.command("baseline")
def bench_baseline(
    data_dir: DataDirOpt = None,
    params_file: ParamsOpt = None,
    overlays: OverlayOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Macro-F1 of a character n-gram TF-IDF + logistic regression baseline on the same frozen test split."""
    from training.evaluation.baseline import tfidf_baseline

    p = load_params_for(data_dir, params_file, overrides, overlays=overlays)
    splits = data_files(data_dir).load()
    print(json.dumps({"task": p.task, **tfidf_baseline(splits["train"], splits["test"])}, ensure_ascii=False))


@app.command("train")
def bench_train_cmd(
    model_size: Annotated[
        str, typer.Option(help="tiny or base (BERT-base shape, KoBERT vocabulary 8002).")
    ] = "tiny",
    seq_len: Annotated[int, typer.Option(help="Maximum sequence length.")] = 64,
    steps: Annotated[int, typer.Option(help="Timed training steps per configuration.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Training throughput of Heara's trainer vs the seed notebooks' configuration, same model and data."""
    from training.bench.train import bench_train

    print(
        json.dumps(
            bench_train(
                model_size=model_size, seq_len=seq_len, steps=steps, batch_size=batch_size, device=device
            ),
            ensure_ascii=False,
        )
    )


@app.command("serve")
def bench_serve_cmd(
    concurrency: Annotated[int, typer.Option(help="Concurrent clients (closed loop).")] = 32,
    duration: Annotated[float, typer.Option(help="Seconds of load per server, after a warm-up.")] = 20.0,
    model_dir: Annotated[
        Optional[Path], typer.Option(help="A Heara model folder (default: the champion).")
    ] = None,
) -> None:
    """Requests/s and latency of `bentoml serve` against a Flask reference server (one call per request)."""
    from training.bench.serve import bench_serve

    result = bench_serve(model_dir, concurrency=concurrency, duration_s=duration)
    print(json.dumps(result, ensure_ascii=False))
