"""serving.explainer_pool: explanations in spawned worker processes; a worker that dies is replaced."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from serving.explainer_pool import ExplainerPool
from training.config import ExplainConfig


def test_a_dead_worker_is_replaced_on_the_next_call() -> None:
    pool = ExplainerPool(workers=1, torch_threads=1)
    try:
        first = pool._submit(os.getpid).result(timeout=120)
        assert first != os.getpid()  # a process of its own
        with pytest.raises(BrokenProcessPool):
            pool._submit(os._exit, 3).result(timeout=120)  # the worker dies mid-call
        second = pool._submit(os.getpid).result(timeout=120)
        assert second not in (first, os.getpid())  # a new worker answers
    finally:
        pool.close()


def test_the_worker_explains_the_folder_it_is_given(tiny_model_folder: Path) -> None:
    pool = ExplainerPool(workers=1, torch_threads=1)
    cfg = ExplainConfig().model_dump()
    try:
        out = pool.submit(str(tiny_model_folder), "cpu", cfg, "할머니가 쓰러지셨어요", None, None).result(120)
        assert out["method"] == "integrated_gradients" and out["text"] == "할머니가 쓰러지셨어요"
        assert [u["text"] for u in out["units"]] == ["할머니가", "쓰러지셨어요"]
        bad = pool.submit(str(tiny_model_folder), "cpu", cfg, "안녕", "nope", None).result(120)
        assert "'nope'" in bad["error"]
    finally:
        pool.close()
