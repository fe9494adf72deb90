"""CPU inference throughput: torch in fp32 against the int8 ONNX model the service runs on a CPU.

Both run one randomly initialised classifier (the "tiny" or "base" shape of training/bench/train.py:
BERT-base with KoBERT's vocabulary of 8002) on the same synthetic batches, right-padded to their longest
row as `training.model.encoding.collate` pads a served batch, with the same intra-op thread count. The
int8 model is made by the service's own code (training/model/onnx_runtime.py: export_fp32, then
quantize_int8) and run by its `Int8Runner`. Batch 1 is one request on an idle service; batch 16 an
adaptive batch under load.

The runtimes alternate in short rounds and each figure is the median of its rounds' throughputs, so a
burst of load from another process on a shared machine slows one round rather than one runtime.
Random weights measure speed only; what int8 costs in accuracy is measured on a trained model by
`heara evaluate` (test_int8_macro_f1_drop).

    python -m training.bench.runtime --model-size base
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from training.bench.train import bert_config, synthetic_data
from training.model.encoding import collate
from training.model.onnx_runtime import Int8Runner, export_fp32, intra_op_threads, quantize_int8


def _rate(run: Callable[[dict], object], batches: list[dict], rows: int, seconds: float) -> float:
    """Texts/s of `run` cycling through `batches` for about `seconds` (at least one pass of one batch)."""
    n, start = 0, time.perf_counter()
    while True:
        run(batches[n % len(batches)])
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n * rows / elapsed


def bench_runtime(
    model_size: str = "tiny",
    batch_sizes: tuple[int, ...] = (1, 16),
    seconds: float = 6.0,
    rounds: int = 3,
    seq_len: int = 64,
    seed: int = 0,
) -> dict:
    """Texts/s of torch fp32 and of int8 ONNX Runtime at each batch size, and their ratio.

    seconds: timed per runtime and batch size, split into `rounds` alternating rounds.
    """
    from transformers import BertForSequenceClassification

    if rounds < 1 or seconds <= 0 or not batch_sizes:
        raise ValueError("rounds must be >= 1, seconds > 0 and batch_sizes not empty")
    config = bert_config(model_size)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    threads = intra_op_threads()
    with tempfile.TemporaryDirectory(prefix="heara-bench-runtime-") as tmp:
        t0 = time.perf_counter()
        fp32_path = export_fp32(model, Path(tmp) / "model.onnx", type_ids=True)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        int8_path = quantize_int8(fp32_path, Path(tmp) / "model.int8.onnx")
        quantize_s = time.perf_counter() - t0
        sizes_mb = {p.name: round(p.stat().st_size / 2**20, 1) for p in (fp32_path, int8_path)}
        runner = Int8Runner(int8_path, threads)

    def torch_fp32(batch: dict) -> np.ndarray:
        with torch.inference_mode():
            return model(**batch).logits.numpy()

    runtimes = {"torch_fp32": torch_fp32, "onnx_int8": runner}
    data = synthetic_data(32 * max(batch_sizes), seq_len, config.vocab_size, seed)
    result: dict[str, object] = {}
    max_prob_diff, same_label = 0.0, []
    for bs in batch_sizes:
        batches = []
        for start in range(0, len(data) - bs + 1, bs):
            batch = collate(data, np.arange(start, start + bs))
            del batch["labels"]
            batches.append(batch)
        for run in runtimes.values():  # warm-up, untimed
            run(batches[0])
        rates: dict[str, list[float]] = {name: [] for name in runtimes}
        for _ in range(rounds):
            for name, run in runtimes.items():
                rates[name].append(_rate(run, batches, bs, seconds / rounds))
        for name in runtimes:
            result[f"{name}_b{bs}_texts_per_s"] = round(float(np.median(rates[name])), 1)
        result[f"speedup_b{bs}"] = round(
            result[f"onnx_int8_b{bs}_texts_per_s"] / result[f"torch_fp32_b{bs}_texts_per_s"], 2
        )
        for batch in batches[:4]:
            p32 = torch.softmax(torch.from_numpy(torch_fp32(batch)), -1).numpy()
            p8 = torch.softmax(torch.from_numpy(runner(batch)), -1).numpy()
            max_prob_diff = max(max_prob_diff, float(np.abs(p32 - p8).max()))
            same_label.extend(p32.argmax(axis=1) == p8.argmax(axis=1))
    return {
        "benchmark": "runtime",
        "model_size": model_size,
        "device_name": platform.processor() or platform.machine(),
        "threads": threads,
        "cpus": os.cpu_count(),
        "median_tokens": float(np.median(data.lengths)),
        "seq_len": seq_len,
        "seconds": seconds,
        "rounds": rounds,
        **result,
        "export_s": round(export_s, 2),
        "quantize_s": round(quantize_s, 2),
        "onnx_mb": sizes_mb,
        "max_prob_diff": round(max_prob_diff, 5),  # random weights: speed only, see the docstring
        "argmax_agreement": round(float(np.mean(same_label)), 4),
        "params": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "onnxruntime": version("onnxruntime"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-size", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=6.0, help="timed per runtime and batch size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=64, help="longest row (lengths are log-normal)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        json.dumps(
            bench_runtime(
                args.model_size, tuple(args.batch_sizes), args.seconds, args.rounds, args.seq_len, args.seed
            )
        )
    )


if __name__ == "__main__":
    main()
