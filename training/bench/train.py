"""Training throughput: the project's trainer set-up against the seed notebooks' set-up.

Both run in one process from the same initial weights on the same synthetic data, through the
trainer's own functions (training/trainer/batching.py, training/trainer/runtime.py), so the figure
measures the real
trainer. Differences, and only these:

                      project                                reference (seed notebooks)
  precision           bf16 autocast on a GPU (fp32 on CPU)   fp32, TF32 off
  padding             to the longest row of each batch       every batch to seq_len
  batches             length-grouped                         random
  AdamW               fused                                  for-loop (foreach=False)
  torch.compile       optional (`compile=True`)              no

Token lengths follow a log-normal fitted to short Korean utterances (median ~14 tokens with
[CLS]/[SEP], 99th percentile ~40), capped at seq_len. Warm-up steps are not timed; on a GPU the
clock is read after torch.cuda.synchronize. The two set-ups alternate in short rounds, and each
set-up's figure is the median of its per-round throughputs: on a shared machine a burst of load
from another process then slows one round, not the result (the plain totals are reported too).

    python -m training.bench.train --model-size tiny --steps 40
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np
import torch

from training.config import ModelConfig
from training.model.encoding import Encoded, collate
from training.trainer.batching import class_weights, epoch_batches, padding_share
from training.trainer.runtime import (
    Runtime,
    forward_loss,
    make_optimizer,
    optimizer_step,
    resolve_runtime,
    set_seed,
    to_device,
    warmup_linear_schedule,
)

MEDIAN_TOKENS = 14
LENGTH_SIGMA = 0.45
N_LABELS = 4
KOBERT_VOCAB = 8002
SHAPES = {
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    },
}


def bert_config(model_size: str):
    from transformers import BertConfig

    from training.model.tiny import TINY_BERT

    if model_size not in ("tiny", "base"):
        raise ValueError(f"model_size '{model_size}': use 'tiny' or 'base'")
    shape = TINY_BERT if model_size == "tiny" else SHAPES["base"]
    vocab = ModelConfig().tiny_vocab_size if model_size == "tiny" else KOBERT_VOCAB
    return BertConfig(
        vocab_size=vocab,
        pad_token_id=1,
        type_vocab_size=2,
        num_labels=N_LABELS,
        **{k: v for k, v in shape.items() if k != "type_vocab_size"},
    )


def synthetic_data(n: int, seq_len: int, vocab_size: int, seed: int) -> Encoded:
    """n rows of random piece ids between [CLS] (2) and [SEP] (3), log-normal lengths, pad id 1."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.lognormal(math.log(MEDIAN_TOKENS), LENGTH_SIGMA, n)), 3, seq_len).astype(
        int
    )
    ids = [[2, *rng.integers(5, vocab_size, k - 2).tolist(), 3] for k in lengths]
    return Encoded(ids, rng.integers(0, N_LABELS, n).astype(np.int64), pad_id=1, type_ids=True)


class _Setup:
    """One training configuration: its model copy, optimizer, batches and clock."""

    def __init__(
        self,
        name,
        model,
        data: Encoded,
        runtime: Runtime,
        batch_size: int,
        seed: int,
        grouped: bool,
        pad_to: int | None,
        fused: bool,
        compile_model: bool,
        total_steps: int,
        tf32: bool,
    ) -> None:
        self.name, self.data, self.runtime, self.pad_to, self.tf32 = name, data, runtime, pad_to, tf32
        self.model = model.to(runtime.device).train()
        self.step_model = torch.compile(self.model) if compile_model else self.model
        self.optimizer, self.optimizer_impl = make_optimizer(
            self.model, 5e-5, 0.01, runtime.device, fused=fused
        )
        self.scheduler = warmup_linear_schedule(self.optimizer, 0, total_steps)
        weights = class_weights(data.labels, N_LABELS).to(runtime.device)
        self.loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
        self.batches = epoch_batches(data, batch_size, seed, 1, grouped)[:total_steps]
        self.next, self.seconds, self.samples, self.loss = 0, 0.0, 0, float("nan")
        self.round_rates: list[float] = []  # samples/s of each timed round

    def run(self, n_steps: int, timed: bool) -> None:
        torch.set_float32_matmul_precision("high" if self.tf32 else "highest")
        cuda = self.runtime.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss, samples = None, 0
        for index in self.batches[self.next : self.next + n_steps]:
            batch = collate(self.data, index, pad_to=self.pad_to, multiple_of=self.runtime.pad_multiple)
            loss = forward_loss(
                self.step_model, to_device(batch, self.runtime.device), self.loss_fn, self.runtime
            )
            loss.backward()
            optimizer_step(self.model, self.optimizer, self.scheduler)
            samples += len(index)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if timed:
            self.seconds, self.samples = self.seconds + seconds, self.samples + samples
            self.round_rates.append(samples / seconds)
        self.next += n_steps
        if loss is not None:
            self.loss = float(loss.item())


def bench_train(
    model_size: str = "tiny",
    seq_len: int = 64,
    steps: int = 30,
    batch_size: int = 32,
    device: str = "auto",
    seed: int = 0,
    warmup_steps: int = 5,
    rounds: int = 10,
    compile: bool = False,
) -> dict:
    """Samples/s of the project's training set-up and of the reference, and their ratio.

    model_size: "tiny" (the tiny profile's shape and vocabulary size) or "base" (BERT-base: 12 layers,
    768 hidden, 12 heads, 3072 intermediate, KoBERT's vocabulary of 8002), randomly initialised. steps: timed
    optimizer steps per set-up (after warmup_steps untimed ones), split into `rounds` alternating
    rounds (at most one per step). samples_per_s is the median of the per-round throughputs.
    """
    from transformers import BertForSequenceClassification

    if steps < 1 or warmup_steps < 0 or rounds < 1:
        raise ValueError("steps and rounds must be >= 1, warmup_steps >= 0")
    runtime = resolve_runtime(device, "auto")
    config = bert_config(model_size)
    if seq_len > config.max_position_embeddings:
        raise ValueError(
            f"seq_len {seq_len} exceeds the {config.max_position_embeddings} positions of '{model_size}'"
        )
    total = warmup_steps + steps
    data = synthetic_data(total * batch_size, seq_len, config.vocab_size, seed)
    set_seed(seed)
    init = BertForSequenceClassification(config).state_dict()
    models = []
    for _ in range(2):
        m = BertForSequenceClassification(config)
        m.load_state_dict(init)
        models.append(m)
    del init
    project = _Setup(
        "project",
        models[0],
        data,
        runtime,
        batch_size,
        seed,
        grouped=True,
        pad_to=None,
        fused=True,
        compile_model=compile,
        total_steps=total,
        tf32=True,
    )
    reference = _Setup(
        "reference",
        models[1],
        data,
        Runtime(runtime.device, "fp32"),
        batch_size,
        seed,
        grouped=False,
        pad_to=seq_len,
        fused=False,
        compile_model=False,
        total_steps=total,
        tf32=False,
    )
    for setup in (project, reference):
        setup.run(warmup_steps, timed=False)
    rounds = min(rounds, steps)
    per_round = [steps // rounds + (1 if r < steps % rounds else 0) for r in range(rounds)]
    for n in per_round:
        for setup in (project, reference):
            setup.run(n, timed=True)
    torch.set_float32_matmul_precision("high" if runtime.device.type == "cuda" else "highest")

    fast, ref = float(np.median(project.round_rates)), float(np.median(reference.round_rates))
    return {
        "benchmark": "train",
        "model_size": model_size,
        "device": str(runtime.device),
        "device_name": torch.cuda.get_device_name(runtime.device)
        if runtime.device.type == "cuda"
        else platform.processor() or platform.machine(),
        "seq_len": seq_len,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "batch_size": batch_size,
        "samples_per_s": round(fast, 2),
        "reference_samples_per_s": round(ref, 2),
        "ratio": round(fast / ref, 3),
        "precision": runtime.precision,
        "reference_precision": "fp32",
        "optimizer": project.optimizer_impl,
        "reference_optimizer": reference.optimizer_impl,
        "compile": compile,
        "padding_share": round(
            padding_share(data, project.batches[warmup_steps:], multiple=runtime.pad_multiple), 4
        ),
        "reference_padding_share": round(
            padding_share(data, reference.batches[warmup_steps:], pad_to=seq_len), 4
        ),
        "median_tokens": float(np.median(data.lengths)),
        "rounds": rounds,
        "seconds": round(project.seconds, 3),
        "reference_seconds": round(reference.seconds, 3),
        "total_samples_per_s": round(project.samples / project.seconds, 2),
        "total_reference_samples_per_s": round(reference.samples / reference.seconds, 2),
        "final_loss": round(project.loss, 4),
        "reference_final_loss": round(reference.loss, 4),
        "params": sum(p.numel() for p in project.model.parameters()),
        "seed": seed,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-size", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    print(
        json.dumps(
            bench_train(
                args.model_size,
                args.seq_len,
                args.steps,
                args.batch_size,
                args.device,
                args.seed,
                args.warmup_steps,
                args.rounds,
                args.compile,
            )
        )
    )


if __name__ == "__main__":
    main()
