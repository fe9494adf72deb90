"""Benchmarks. Each returns a dict that the CLI prints as the last line (JSON)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from training.config import Params
from training.data.preprocess import Preprocessor
from training.data.readers import read_source


def bench_preprocess(params: Params, source: Path, text_col: str, label_col: str, repeat: int = 3) -> dict:
    """Full preprocessing throughput (best of `repeat` passes) and the share of each step."""
    texts = read_source(source, text_col=text_col, label_col=label_col).rows["text"].fillna("").tolist()
    t0 = time.perf_counter()
    pre = Preprocessor(params.preprocess)
    load_s = time.perf_counter() - t0
    pre(texts[:64])  # warm-up
    best_total, best_steps = float("inf"), {}
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        _, steps = pre.run_timed(texts)
        total = time.perf_counter() - t0
        if total < best_total:
            best_total, best_steps = total, steps
    return {
        "benchmark": "preprocess",
        "source": source.name,
        "sentences": len(texts),
        "steps": pre.step_names,
        "seconds": round(best_total, 4),
        "sentences_per_s": round(len(texts) / best_total, 1),
        "per_step_sentences_per_s": {
            k: round(len(texts) / v, 1) if v > 0 else None for k, v in best_steps.items()
        },
        "per_step_seconds": {k: round(v, 4) for k, v in best_steps.items()},
        "model_load_s": round(load_s, 3),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
