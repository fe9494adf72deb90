"""Trainer units: model building, batching, the training loop's promises, the benchmark, torchrun.

Tiny models only (hidden 64, 2 layers), built offline; toy data that a tiny model separates easily.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from training.config import ModelConfig, TrainConfig
from training.model.build import build_model
from training.model.encoding import Encoded, collate, encode
from training.trainer.batching import (
    batch_iterator,
    class_weights,
    epoch_batches,
    length_grouped_batches,
    padding_share,
    random_batches,
    shard,
)
from training.trainer.ddp_smoke import toy_frame
from training.trainer.loop import evaluate_model, train

REPO = Path(__file__).resolve().parents[3]
LABELS = ["emergency", "normal"]
TOY_MODEL = ModelConfig(max_length=32, tiny_vocab_size=100, dropout=0.1)
TIMING_KEYS = {"train_seconds", "samples_per_s"}


@pytest.fixture(scope="module")
def toy():
    return toy_frame(96, seed=0), toy_frame(32, seed=1)


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")  # shared: the tiny model folder is built once per text set


def _cfg(**kw) -> TrainConfig:
    base = {"seed": 3, "epochs": 2, "batch_size": 16, "lr": 2e-3, "warmup_ratio": 0.1, "device": "cpu"}
    return TrainConfig(**{**base, **kw})


def _toy_run(toy, work_dir, out_dir, cfg, **kw):
    train_df, val_df = toy
    model, tok, _ = build_model(TOY_MODEL, LABELS, train_df["text"].tolist(), work_dir, seed=cfg.seed)
    return model, tok, train(model, tok, train_df, val_df, LABELS, TOY_MODEL, cfg, out_dir, **kw)


def _without_timing(history):
    return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history]


# --- building models --------------------------------------------------------------------------


def test_build_model_kobert_tiny_sets_labels_dropout_and_reuses_folder(tmp_path):
    df = pd.read_csv(REPO / "data/sample/utterances.csv").head(200)
    labels = ["normal", "emergency", "confusion", "distress"]
    cfg = ModelConfig(dropout=0.3)
    model, tok, base = build_model(cfg, labels, df["text"].tolist(), tmp_path, seed=0)
    assert base == "tiny-kobert" and type(model).__name__ == "BertForSequenceClassification"
    assert model.config.id2label == dict(enumerate(labels)) and model.config.label2id["distress"] == 3
    assert model.config.classifier_dropout == 0.3 and model.dropout.p == 0.3
    assert type(tok).__name__ == "KoBertTokenizer" and tok.pad_token_id == 1
    assert model.config.vocab_size == tok.vocab_size
    folders = [p for p in tmp_path.iterdir() if p.name.startswith("tiny-kobert")]
    build_model(cfg, labels, df["text"].tolist(), tmp_path)
    assert [p for p in tmp_path.iterdir() if p.name.startswith("tiny-kobert")] == folders and len(
        folders
    ) == 1


@pytest.fixture(scope="module")
def hf_model_dir(tmp_path_factory, toy) -> Path:
    """A local BERT folder with a character WordPiece vocabulary: what `family: hf` loads from a hub id."""
    from transformers import BertConfig, BertModel, BertTokenizer

    out = tmp_path_factory.mktemp("hf-bert")
    chars = sorted({c for t in toy[0]["text"] for c in t if not c.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *("##" + c for c in chars)]
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=False).save_pretrained(out)
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(out)
    return out


def test_build_model_hf_family_loads_any_local_encoder_and_trains(hf_model_dir, toy, tmp_path):
    cfg = ModelConfig(family="hf", name=str(hf_model_dir), profile="full", max_length=32, dropout=0.25)
    model, tok, base = build_model(cfg, LABELS, [], tmp_path, seed=0)
    assert base == str(hf_model_dir) and type(model).__name__ == "BertForSequenceClassification"
    assert model.config.classifier_dropout == 0.25 and model.config.id2label == {0: "emergency", 1: "normal"}
    assert type(tok).__name__ == "HFTokenizer" and tok.pad_token_id == 0
    result = train(model, tok, toy[0], toy[1], LABELS, cfg, _cfg(epochs=1), tmp_path / "run")
    assert result.epochs_run == 1 and math.isfinite(result.history[0]["train_loss"])


def test_build_model_rejects_tiny_hf_and_overlong_max_length(tmp_path, toy):
    texts = toy[0]["text"].tolist()
    with pytest.raises(ValueError, match="profile"):
        build_model(ModelConfig(family="hf", profile="tiny"), LABELS, texts, tmp_path)
    with pytest.raises(ValueError, match="positions"):  # the tiny body has 128 positions
        build_model(ModelConfig(max_length=256, tiny_vocab_size=100), LABELS, texts, tmp_path)


# --- batching -----------------------------------------------------------------------------------


def test_class_weights_are_inverse_frequency_with_mean_one_per_row():
    y = np.array([0, 0, 0, 1])
    w = class_weights(y, 3)
    assert w.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1), 0.0])
    assert float(w[y].mean()) == pytest.approx(1.0)  # the loss keeps its unweighted scale


def test_length_grouped_batches_cover_every_index_once_with_less_padding():
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(np.log(14), 0.5, 1003).astype(int), 3, 64)
    data = Encoded([[2] * int(n) for n in lengths], np.zeros(len(lengths), np.int64), pad_id=1, type_ids=True)
    grouped = length_grouped_batches(lengths, 16, np.random.default_rng(1), mega_chunk=10)
    plain = random_batches(len(lengths), 16, np.random.default_rng(1))
    for batches in (grouped, plain):
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
        assert max(len(b) for b in batches) == 16
    assert padding_share(data, grouped) < 0.5 * padding_share(data, plain)
    longest = [int(lengths[b].max()) for b in grouped]
    assert longest != sorted(longest, reverse=True)  # batch order is shuffled, not long-to-short

    # Same (seed, epoch), same batches (resuming relies on it); another epoch, another order.
    def flat(epoch):
        return np.concatenate(epoch_batches(data, 16, 5, epoch, True)).tolist()

    assert flat(2) == flat(2) and flat(2) != flat(3)


def test_shard_gives_each_rank_disjoint_equal_shares():
    batches = [np.array([i]) for i in range(7)]
    shares = [shard(batches, r, 2) for r in range(2)]
    assert [len(s) for s in shares] == [3, 3]
    assert not set(np.concatenate(shares[0]).tolist()) & set(np.concatenate(shares[1]).tolist())


def test_dynamic_padding_uses_pad_id_one_and_masks_by_length(toy, work_dir):
    _, tok, _ = build_model(TOY_MODEL, LABELS, toy[0]["text"].tolist(), work_dir)
    texts = ["불이야", "오늘 날씨가 좋네 밥 먹었어", "가나다라 ☃"]  # unseen characters -> [UNK], id 0
    data = encode(tok, texts, ["emergency", "normal", "normal"], LABELS, max_length=32)
    assert 0 in data.ids[2]  # an [UNK]: must stay inside the attention mask
    batch = collate(data, np.arange(3))
    width = max(len(r) for r in data.ids)
    assert batch["input_ids"].shape == (3, width)  # the longest row, not max_length
    assert batch["attention_mask"].sum(1).tolist() == [len(r) for r in data.ids]
    assert (batch["input_ids"][batch["attention_mask"] == 0] == 1).all()
    assert batch["input_ids"][2, data.ids[2].index(0)] == 0 and batch["attention_mask"][2].all()
    assert batch["labels"].tolist() == [0, 1, 1] and (batch["token_type_ids"] == 0).all()
    assert collate(data, np.arange(3), pad_to=32)["input_ids"].shape == (3, 32)
    assert collate(data, np.arange(3), multiple_of=8)["input_ids"].shape[1] % 8 == 0
    with pytest.raises(ValueError, match="not among"):
        encode(tok, ["x"], ["unknown"], LABELS, 32)


# --- the training loop --------------------------------------------------------------------------


def test_training_learns_a_separable_toy_set(toy, work_dir, tmp_path):
    _, _, result = _toy_run(toy, work_dir, tmp_path, _cfg(epochs=4, early_stopping_patience=4))
    losses = [h["train_loss"] for h in result.history]
    assert result.epochs_run == 4 and losses[-1] < losses[0]
    assert result.best_val_macro_f1 >= 0.9
    assert (result.device, result.precision, result.optimizer) == ("cpu", "fp32", "fused")
    assert result.steps == 4 * math.ceil(96 / 16) and result.samples_per_s > 0
    assert (tmp_path / "checkpoints/last.pt").is_file() and (tmp_path / "checkpoints/best.pt").is_file()


def test_one_epoch_on_sample_utterances(tmp_path):
    df = pd.read_csv(REPO / "data/sample/utterances.csv").sample(200, random_state=0)
    labels = ["normal", "emergency", "confusion", "distress"]
    cfg = ModelConfig()
    model, tok, _ = build_model(cfg, labels, df["text"].iloc[:160].tolist(), tmp_path, seed=0)
    seen = []
    result = train(
        model,
        tok,
        df.iloc[:160],
        df.iloc[160:],
        labels,
        cfg,
        _cfg(epochs=1, lr=5e-4),
        tmp_path / "run",
        on_epoch=lambda e, m: seen.append((e, m)),
    )
    assert [e for e, _ in seen] == [1] and seen[0][1] == result.history[0]
    assert set(result.history[0]) >= {"epoch", "train_loss", "val_loss", "val_macro_f1", "val_accuracy", "lr"}
    assert 0 <= result.best_val_macro_f1 <= 1 and math.isfinite(result.history[0]["train_loss"])


def test_early_stopping_restores_the_best_weights(toy, work_dir, tmp_path):
    # Validation labels are the opposite of training labels: the better the fit, the worse the val F1.
    train_df, val_df = toy
    flipped = val_df.assign(label=val_df["label"].map({"emergency": "normal", "normal": "emergency"}))
    cfg = _cfg(epochs=8, early_stopping_patience=2)
    model, tok, _ = build_model(TOY_MODEL, LABELS, train_df["text"].tolist(), work_dir, seed=cfg.seed)
    result = train(model, tok, train_df, flipped, LABELS, TOY_MODEL, cfg, tmp_path)
    f1s = [h["val_macro_f1"] for h in result.history]
    assert result.stopped_early and result.stop_reason == "patience" and result.epochs_run < 8
    assert result.best_val_macro_f1 == max(f1s) == f1s[result.best_epoch - 1]
    assert result.best_epoch <= result.epochs_run - cfg.early_stopping_patience
    best = torch.load(tmp_path / "checkpoints/best.pt", weights_only=True)
    last = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)["model"]
    state = model.state_dict()
    assert all(torch.equal(state[k], best[k]) for k in best)
    assert any(not torch.equal(state[k], last[k]) for k in last)  # the last epoch's weights are not kept
    restored = evaluate_model(model, tok, flipped, LABELS, TOY_MODEL.max_length, device="cpu")
    assert restored["macro_f1"] == pytest.approx(result.best_val_macro_f1, abs=1e-12)


class _Killed(Exception):
    pass


def _kill_after_epoch_1(epoch, _metrics):
    if epoch == 1:
        raise _Killed


def test_interrupted_run_resumes_to_the_same_result(toy, work_dir, tmp_path):
    cfg = _cfg(epochs=3, early_stopping_patience=3)
    ref_model, _, ref = _toy_run(toy, work_dir, tmp_path / "straight", cfg)
    with pytest.raises(_Killed):  # stands for a crash or kill after the epoch-1 checkpoint
        _toy_run(toy, work_dir, tmp_path / "broken", cfg, on_epoch=_kill_after_epoch_1)
    assert torch.load(tmp_path / "broken/checkpoints/last.pt", weights_only=True)["progress"]["epoch"] == 1
    model, _, resumed = _toy_run(toy, work_dir, tmp_path / "broken", cfg)
    assert resumed.resumed_from_epoch == 1 and [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert _without_timing(resumed.history) == _without_timing(ref.history)
    assert resumed.steps == ref.steps and resumed.best_val_macro_f1 == ref.best_val_macro_f1
    ref_state = ref_model.state_dict()
    assert all(torch.equal(v, ref_state[k]) for k, v in model.state_dict().items())


def test_resume_with_more_epochs_and_ignores_a_foreign_checkpoint(toy, work_dir, tmp_path):
    _, _, first = _toy_run(toy, work_dir, tmp_path, _cfg(epochs=1))
    _, _, more = _toy_run(toy, work_dir, tmp_path, _cfg(epochs=2))
    assert more.resumed_from_epoch == 1 and more.epochs_run == 2 and more.history[0] == first.history[0]
    _, _, other = _toy_run(toy, work_dir, tmp_path, _cfg(epochs=1, batch_size=8))  # another run's folder
    assert other.resumed_from_epoch == 0 and other.epochs_run == 1
    _, _, fresh = _toy_run(toy, work_dir, tmp_path, _cfg(epochs=1, batch_size=8), resume=False)
    assert fresh.resumed_from_epoch == 0


def test_max_steps_and_gradient_accumulation_count_optimizer_steps(toy, work_dir, tmp_path):
    _, _, result = _toy_run(toy, work_dir, tmp_path / "a", _cfg(epochs=3, max_steps=2, num_workers=1))
    assert result.steps == 2 and result.epochs_run == 1 and result.stop_reason == "max_steps"
    assert result.history[0]["train_samples"] == 2 * 16
    _, _, accum = _toy_run(toy, work_dir, tmp_path / "b", _cfg(epochs=1, batch_size=8, grad_accum=3))
    assert accum.steps == math.ceil(96 / 8 / 3) and accum.history[0]["train_samples"] == 96


def test_dataloader_workers_feed_the_same_batches(toy, work_dir):
    _, tok, _ = build_model(TOY_MODEL, LABELS, toy[0]["text"].tolist(), work_dir)
    data = encode(tok, toy[0]["text"].tolist(), toy[0]["label"].tolist(), LABELS, 32)
    batches = epoch_batches(data, 16, 0, 1, True)
    inline = list(batch_iterator(data, batches, multiple_of=8))
    workers = list(batch_iterator(data, batches, multiple_of=8, num_workers=2))
    assert len(inline) == len(workers) == len(batches)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(inline, workers) for k in a)


def test_same_seed_same_history(toy, work_dir, tmp_path):
    runs = [_toy_run(toy, work_dir, tmp_path / str(i), _cfg(epochs=2, seed=11)) for i in range(2)]
    assert _without_timing(runs[0][2].history) == _without_timing(runs[1][2].history)
    other = _toy_run(toy, work_dir, tmp_path / "other", _cfg(epochs=2, seed=12))
    assert _without_timing(other[2].history) != _without_timing(runs[0][2].history)


def test_progress_bar_shows_live_loss_and_last_val_f1(toy, work_dir, tmp_path, monkeypatch):
    class _Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _toy_run(toy, work_dir, tmp_path, _cfg(epochs=2, log_every=1))
    shown = terminal.getvalue()
    assert "epoch 2/2" in shown and re.search(r"loss=\d\.\d{4}", shown)
    assert "val_f1=-" in shown and re.search(
        r"val_f1=\d\.\d{4}", shown
    )  # none yet in epoch 1, then epoch 1's


# --- benchmark and multi-process ----------------------------------------------------------------


def test_bench_train_reports_both_setups():
    from training.bench.train import bench_train

    out = bench_train("tiny", seq_len=32, steps=2, batch_size=8, warmup_steps=1, rounds=1, device="cpu")
    assert {
        "samples_per_s",
        "reference_samples_per_s",
        "ratio",
        "device",
        "model_size",
        "seq_len",
        "steps",
        "batch_size",
        "padding_share",
        "reference_padding_share",
    } <= set(out)
    assert (out["model_size"], out["steps"], out["device"]) == ("tiny", 2, "cpu")
    assert out["ratio"] == pytest.approx(out["samples_per_s"] / out["reference_samples_per_s"], rel=0.01)
    assert out["padding_share"] < out["reference_padding_share"]
    assert (out["optimizer"], out["reference_optimizer"]) == ("fused", "for-loop")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_torchrun_two_cpu_processes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "training.trainer.ddp_smoke",
            "--out",
            str(tmp_path),
            "--steps",
            "3",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["steps"] for r in ranks] == [3, 3]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # DDP kept the replicas identical
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["extra"]["world_size"] == 2 and result["stop_reason"] == "max_steps"
