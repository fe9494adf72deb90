"""Fine-tune a sequence classifier: one function, `train`, on CPU, one GPU or several (torchrun).

What it does, in order: tokenise train and val once; per epoch, length-grouped batches padded to
their longest row; bf16 autocast on a GPU; AdamW (fused); warm-up then linear decay; gradient
accumulation; class-weighted cross-entropy (binary cross-entropy per label for a multi-label task);
gradient clipping at 1.0; validation macro-F1 after each epoch; early stopping with the best weights
restored; a resumable checkpoint after every epoch.
The pieces of a step live in training/trainer/runtime.py and training/trainer/batching.py (the
benchmark reuses them).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score

from training.config import ModelConfig, TrainConfig
from training.model.encoding import Encoded, collate, encode
from training.trainer.batching import batch_iterator, class_weights, epoch_batches, positive_weights, shard
from training.trainer.checkpoints import Checkpoints, RunState, cpu_state_dict, set_rng_state
from training.trainer.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    broadcast,
    init_distributed,
    shutdown,
)
from training.trainer.runtime import (
    Runtime,
    forward_loss,
    make_optimizer,
    optimizer_step,
    resolve_runtime,
    set_seed,
    to_device,
    warmup_linear_schedule,
    warmup_steps_for,
)

log = logging.getLogger("heara.train")

EpochCallback = Callable[[int, dict[str, Any]], None]


@dataclass
class TrainResult:
    """The outcome of `train`. history has one dict per epoch (see `_epoch_record`)."""

    best_val_macro_f1: float
    history: list[dict[str, Any]]
    epochs_run: int
    steps: int
    stopped_early: bool  # early stopping on validation macro-F1 ended the run
    device: str
    precision: str
    samples_per_s: float  # training samples per second over all epochs (all processes)
    best_epoch: int = 0
    stop_reason: str = ""  # "patience" | "max_steps" | "epochs"
    optimizer: str = ""  # AdamW implementation: "fused" | "foreach"
    resumed_from_epoch: int = 0  # 0: started afresh
    checkpoint_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def predict_logits(model, data: Encoded, batch_size: int, runtime: Runtime) -> np.ndarray:
    """Logits [n, n_labels] in data order; batches of similar length, so padding is minimal."""
    was_training = model.training
    model.eval()
    order = np.argsort(-data.lengths, kind="stable")
    parts = []
    for start in range(0, len(order), batch_size):
        batch = to_device(
            collate(data, order[start : start + batch_size], multiple_of=runtime.pad_multiple), runtime.device
        )
        batch.pop("labels")
        with runtime.autocast():
            parts.append(model(**batch).logits.float().cpu())
    model.train(was_training)
    logits = torch.cat(parts).numpy() if parts else np.zeros((0, model.config.num_labels), np.float32)
    out = np.empty_like(logits)
    out[order] = logits
    return out


def score(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """macro-F1 (classes present in y or predictions), accuracy and mean cross-entropy. For a multi-label
    task (y is [n, labels]): macro-F1 over labels at a 0.5 threshold each, exact-set accuracy and mean
    binary cross-entropy (the thresholds are tuned after training, on the best epoch's model)."""
    if y.ndim == 2:
        pred = logits >= 0.0  # sigmoid(logit) >= 0.5
        bce = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
        return {
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "accuracy": float((pred == (y > 0)).all(axis=1).mean()) if len(y) else 0.0,
            "loss": float(bce.mean()),
        }
    pred = logits.argmax(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return {
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "loss": float(-log_probs[np.arange(len(y)), y].mean()),
    }


def evaluate_model(
    model,
    tokenizer,
    df: pd.DataFrame,
    labels: Sequence[str],
    max_length: int,
    batch_size: int = 64,
    device: str = "auto",
    multilabel: bool = False,
) -> dict[str, float]:
    """Validation metrics of `model` on df (columns text, label), as the trainer computes them."""
    runtime = resolve_runtime(device)
    data = encode(
        tokenizer, df["text"].tolist(), df["label"].tolist(), labels, max_length, multilabel=multilabel
    )
    return score(predict_logits(model, data, batch_size, runtime), data.labels)


def _fingerprint(
    train_data: Encoded, val_data: Encoded, labels: list[str], cfg: TrainConfig, model, world: int
) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed (epochs and max_steps may grow)."""
    return {
        "labels": labels,
        "n_train": len(train_data),
        "n_val": len(val_data),
        "train_ids": int(sum(sum(r) for r in train_data.ids) % 2**61),
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "world_size": world,
        "length_grouping": cfg.length_grouping,
        "model": type(model).__name__,
        "n_params": sum(p.numel() for p in model.parameters()),
    }


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, leave=False, dynamic_ncols=True, disable=not (enabled and sys.stderr.isatty())
    )


def train(
    model,
    tokenizer,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    labels: Sequence[str],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out_dir: Path,
    *,
    on_epoch: EpochCallback | None = None,
    resume: bool = True,
    multilabel: bool = False,
) -> TrainResult:
    """Fine-tune `model` on train_df, select on val_df; returns a TrainResult, `model` holds the best weights.

    train_df/val_df: columns text (preprocessed) and label (one of `labels`; with `multilabel`, label
    sets: binary cross-entropy per label, training/data/labels.py). out_dir/checkpoints gets
    last.pt (after every epoch) and best.pt. resume: continue from last.pt when it belongs to the same
    run (same data and settings; epochs may be raised). on_epoch(epoch, record) runs on rank 0 after
    each epoch's checkpoint, e.g. to log to MLflow. Under torchrun (WORLD_SIZE > 1) every rank calls
    this; only rank 0 evaluates, writes and calls on_epoch.
    """
    labels = list(labels)
    wanted_cuda = train_cfg.device == "cuda" or (train_cfg.device == "auto" and torch.cuda.is_available())
    dist_info = init_distributed("cuda" if wanted_cuda else "cpu")
    try:
        return _train(
            model,
            tokenizer,
            train_df,
            val_df,
            labels,
            model_cfg,
            train_cfg,
            Path(out_dir),
            on_epoch,
            resume,
            dist_info,
            multilabel,
        )
    finally:
        shutdown(dist_info)


def _train(
    model,
    tokenizer,
    train_df,
    val_df,
    labels,
    model_cfg,
    cfg: TrainConfig,
    out_dir: Path,
    on_epoch,
    resume: bool,
    dist_info: DistInfo,
    multilabel: bool = False,
) -> TrainResult:
    runtime = resolve_runtime(cfg.device, cfg.precision, dist_info.local_rank)
    set_seed(cfg.seed)
    train_data, val_data = (
        encode(
            tokenizer,
            df["text"].tolist(),
            df["label"].tolist(),
            labels,
            model_cfg.max_length,
            multilabel=multilabel,
        )
        for df in (train_df, val_df)
    )
    if len(train_data) == 0 or len(val_data) == 0:
        raise ValueError(f"empty split: {len(train_data)} training and {len(val_data)} validation rows")
    model.to(runtime.device)

    n_batches = len(
        shard(
            epoch_batches(train_data, cfg.batch_size, cfg.seed, 1, cfg.length_grouping),
            dist_info.rank,
            dist_info.world_size,
        )
    )
    if n_batches == 0:
        raise ValueError(
            f"{len(train_data)} training rows make no batch for each of {dist_info.world_size} ranks"
        )
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total_steps = min(cfg.epochs * steps_per_epoch, cfg.max_steps or math.inf)
    optimizer, optimizer_impl = make_optimizer(model, cfg.lr, cfg.weight_decay, runtime.device)
    scheduler = warmup_linear_schedule(
        optimizer, warmup_steps_for(total_steps, cfg.warmup_ratio), total_steps
    )
    if multilabel:
        weights = positive_weights(train_data.labels).to(runtime.device) if cfg.class_weights else None
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=weights)
    else:
        weights = (
            class_weights(train_data.labels, len(labels)).to(runtime.device) if cfg.class_weights else None
        )
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights)

    ckpts = Checkpoints(out_dir / "checkpoints")
    fingerprint = _fingerprint(train_data, val_data, labels, cfg, model, dist_info.world_size)
    run_state, best_state, resumed_from = RunState(), None, 0
    ckpt = ckpts.load_last(fingerprint) if resume else None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        run_state = Checkpoints.run_state_of(ckpt)
        best_state, resumed_from = ckpts.load_best(), run_state.epoch
        budget_left = run_state.epoch < cfg.epochs and not (cfg.max_steps and run_state.step >= cfg.max_steps)
        if run_state.stop_reason in ("epochs", "max_steps") and budget_left:
            run_state.finished = False  # stopped by a budget that is now larger (early stopping stays final)
        log.info("resuming from %s after epoch %d (step %d)", ckpts.last, run_state.epoch, run_state.step)
        del ckpt

    step_model = model
    if dist_info.enabled:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None
        )
    if cfg.compile:
        step_model = torch.compile(step_model)
    log.info(
        "training on %s (%s, AdamW %s), %d rows, %d steps/epoch, class weights %s",
        runtime.device,
        runtime.precision,
        optimizer_impl,
        len(train_data),
        steps_per_epoch,
        None if weights is None else [round(w, 3) for w in weights.tolist()],
    )

    epoch = run_state.epoch
    while not run_state.finished and epoch < cfg.epochs:
        epoch += 1
        record = _run_epoch(
            step_model,
            model,
            train_data,
            val_data,
            cfg,
            runtime,
            dist_info,
            optimizer,
            scheduler,
            loss_fn,
            run_state,
            epoch,
        )
        improved = record["val_macro_f1"] > run_state.best_f1
        if improved:
            run_state.best_f1, run_state.best_epoch, run_state.bad_epochs = record["val_macro_f1"], epoch, 0
            best_state = cpu_state_dict(model)
        else:
            run_state.bad_epochs += 1
        run_state.stop_reason = ""
        if run_state.bad_epochs >= cfg.early_stopping_patience:
            run_state.stop_reason = "patience"
        elif cfg.max_steps and run_state.step >= cfg.max_steps:
            run_state.stop_reason = "max_steps"  # mid-epoch: validation above still saw the last step
        elif epoch == cfg.epochs:
            run_state.stop_reason = "epochs"
        run_state.finished = bool(run_state.stop_reason)
        run_state.epoch = epoch
        run_state.history.append(record)
        if dist_info.is_main:
            if improved:
                ckpts.save_best(best_state)
            ckpts.save_last(model, optimizer, scheduler, run_state, fingerprint)
            log.info(
                "epoch %d/%d: train loss %.4f, val loss %.4f, val macro-F1 %.4f%s",
                epoch,
                cfg.epochs,
                record["train_loss"],
                record["val_loss"],
                record["val_macro_f1"],
                " (best)" if improved else "",
            )
        barrier(dist_info)
        if dist_info.is_main and on_epoch is not None:
            on_epoch(epoch, record)

    if best_state is not None:
        model.load_state_dict(best_state)  # early stopping: the best epoch's weights, not the last
    history = run_state.history
    seconds = sum(h["train_seconds"] for h in history)
    samples = sum(h["train_samples"] for h in history)
    return TrainResult(
        best_val_macro_f1=run_state.best_f1,
        history=history,
        epochs_run=run_state.epoch,
        steps=run_state.step,
        stopped_early=run_state.stop_reason == "patience",
        device=str(runtime.device),
        precision=runtime.precision,
        samples_per_s=samples / seconds if seconds > 0 else 0.0,
        best_epoch=run_state.best_epoch,
        stop_reason=run_state.stop_reason or "epochs",
        optimizer=optimizer_impl,
        resumed_from_epoch=resumed_from,
        checkpoint_dir=str(ckpts.folder),
        extra={"world_size": dist_info.world_size, "compile": cfg.compile},
    )


def _run_epoch(
    step_model,
    model,
    train_data: Encoded,
    val_data: Encoded,
    cfg: TrainConfig,
    runtime: Runtime,
    dist_info: DistInfo,
    optimizer,
    scheduler,
    loss_fn,
    run_state: RunState,
    epoch: int,
) -> dict[str, Any]:
    """One pass over this rank's batches, then validation on rank 0; returns the epoch's record."""
    batches = shard(
        epoch_batches(train_data, cfg.batch_size, cfg.seed, epoch, cfg.length_grouping),
        dist_info.rank,
        dist_info.world_size,
    )
    step_model.train()
    loss_sum = torch.zeros((), device=runtime.device)
    micro, samples = 0, 0
    last_f1 = f"{run_state.history[-1]['val_macro_f1']:.4f}" if run_state.history else "-"
    bar = _progress_bar(len(batches), f"epoch {epoch}/{cfg.epochs}", dist_info.is_main)
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)
    start = time.perf_counter()
    loader = batch_iterator(
        train_data, batches, runtime.pad_multiple, cfg.num_workers, pin_memory=runtime.device.type == "cuda"
    )
    for group_start in range(0, len(batches), cfg.grad_accum):
        group = batches[group_start : group_start + cfg.grad_accum]
        for j, index in enumerate(group):
            batch = to_device(next(loader), runtime.device)
            # Under DDP, gradients are all-reduced only on the last micro-batch of an accumulation group.
            sync = (
                contextlib.nullcontext()
                if j == len(group) - 1 or not dist_info.enabled
                else step_model.no_sync()
            )
            with sync:
                loss = forward_loss(step_model, batch, loss_fn, runtime)
                (loss / len(group)).backward()
            loss_sum += loss.detach()
            micro, samples = micro + 1, samples + len(index)
        optimizer_step(model, optimizer, scheduler)
        run_state.step += 1
        bar.update(len(group))
        if (
            not bar.disable and run_state.step % cfg.log_every == 0
        ):  # .item() waits for the GPU: not every step
            bar.set_postfix(loss=f"{loss_sum.item() / micro:.4f}", val_f1=last_f1)
        if cfg.max_steps and run_state.step >= cfg.max_steps:
            break
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)
    seconds = time.perf_counter() - start
    bar.close()
    del loader  # stops DataLoader workers when max_steps ended the epoch early
    total_loss = all_reduce_sum(loss_sum.item(), dist_info)
    total_micro = all_reduce_sum(float(micro), dist_info)
    total_samples = all_reduce_sum(float(samples), dist_info)
    metrics = None
    if dist_info.is_main:
        metrics = score(predict_logits(model, val_data, cfg.batch_size * 2, runtime), val_data.labels)
    metrics = broadcast(metrics, dist_info)  # every rank takes the same early-stopping decision
    return {
        "epoch": epoch,
        "step": run_state.step,
        "lr": scheduler.get_last_lr()[0],
        "train_loss": total_loss / max(total_micro, 1),
        "val_loss": metrics["loss"],
        "val_macro_f1": metrics["macro_f1"],
        "val_accuracy": metrics["accuracy"],
        "train_samples": int(total_samples),
        "train_seconds": seconds,
        "samples_per_s": total_samples / seconds if seconds > 0 else 0.0,
    }
