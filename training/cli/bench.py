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


@app.command("explain")
def bench_explain_cmd(
    texts: Annotated[int, typer.Option(help="Texts timed per method (tiny shape, linear).")] = 30,
    base_texts: Annotated[int, typer.Option(help="Texts timed on the BERT-base shape.")] = 8,
    seconds: Annotated[float, typer.Option(help="HTTP: measured seconds per phase.")] = 15,
    explain_clients: Annotated[
        str, typer.Option(help="HTTP: phases of N client processes sending /explain (comma-separated).")
    ] = "1,4",
    http: Annotated[bool, typer.Option(help="--no-http: the in-process figures only.")] = True,
) -> None:
    """/explain's cost (Integrated Gradients, occlusion, linear; tiny and BERT-base shapes) and /classify's
    latency with and without explanation load, over HTTP."""
    from training.bench.explain import run

    run(texts, base_texts, seconds, [int(x) for x in explain_clients.split(",") if x.strip()], http=http)


@app.command("monitor")
def bench_monitor_cmd(
    window: Annotated[int, typer.Option(min=100, help="Logged predictions in the window.")] = 10_000,
) -> None:
    """`heara monitor`'s cost on a window of logged predictions (a SQLite prediction log, the tiny
    model): reading the log, preprocessing, descriptors, embeddings, the statistics."""
    from training.bench.monitor import main

    main(window)


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
    concurrency: Annotated[int, typer.Option(help="Open connections (closed loop: one request each).")] = 32,
    duration: Annotated[int, typer.Option(help="Measured seconds per server, after the warm-up.")] = 20,
    warmup: Annotated[int, typer.Option(help="Warm-up seconds per server (not in the figures).")] = 3,
    model_size: Annotated[
        str, typer.Option(help="tiny: --model-dir or the champion; base: BERT-base shape, random weights.")
    ] = "tiny",
    model_dir: Annotated[
        Optional[Path], typer.Option(help="A Heara model folder (tiny; default: the champion).")
    ] = None,
    peers: Annotated[
        str, typer.Option(help="Servers to run, one after the other: heara, flask, mlflow (comma-separated).")
    ] = "heara,flask,mlflow",
    service_only: Annotated[
        bool, typer.Option(help="Load check: Heara alone (same as --peers heara).")
    ] = False,
    topology: Annotated[
        Optional[str], typer.Option(help="single or split (default: params.yaml's serve.topology).")
    ] = None,
    cpu_runtime: Annotated[
        Optional[str], typer.Option(help="torch or onnx (default: params.yaml's serve.cpu_runtime).")
    ] = None,
    predlog_durability: Annotated[
        Optional[str],
        typer.Option(
            help="async, durable, or async,durable: Heara once per durability, figures side by side "
            "(default: params.yaml's serve.predlog_durability)."
        ),
    ] = None,
    client_threads: Annotated[int, typer.Option(help="wrk threads (at most one per connection).")] = 2,
    pool_size: Annotated[int, typer.Option(help="Distinct texts to draw from (at least 10,000).")] = 20_000,
) -> None:
    """Requests/s, latency, errors, CPU and memory of Heara's service against a seed-style Flask server
    and MLflow's scoring server on the same registered version, loaded by wrk (`make load-tool`)."""
    from training.bench.serve import bench_serve

    result = bench_serve(
        model_dir,
        model_size=model_size,
        peers="heara" if service_only else peers,
        concurrency=concurrency,
        duration_s=duration,
        warmup_s=warmup,
        client_threads=client_threads,
        topology=topology,
        cpu_runtime=cpu_runtime,
        predlog_durability=predlog_durability,
        pool_size=pool_size,
    )
    print(json.dumps(result, ensure_ascii=False))
