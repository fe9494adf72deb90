"""Explanations in worker processes of their own, beside the process that classifies.

An explanation is tens of forward and backward passes: run in the classifying process it would hold the
GIL for much of that time (a small model's forward pass is mostly Python), and /classify's event loop and
batcher would wait behind it. So `POST /explain` runs in `explain.max_concurrency` worker processes
(started with `spawn`: forking a process whose torch threads are running is unsafe), each with its own
copy of the served model, one torch thread (`explain.torch_threads`) and its own Kiwi. The workers start
while the serving process loads its model and are warmed up (model and Kiwi loaded) before the service
reports ready; a worker loads the version it is asked for (the served folder) and keeps it until another
is asked for, so a hot reload reaches the explanations with the next call.

Cost: a second copy of the model in memory per worker (BERT-base: about 0.5 GB on a CPU), and the
worker's start-up (importing torch, loading the model: seconds), paid once at start, beside the serving
process's own.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger("heara.serve")

# --- in the worker process --------------------------------------------------------------------------

_LOADED: dict[str, Any] = {}  # model folder -> its Explainer (the latest one only)


def _init_worker(threads: int) -> None:
    from serving import logsafe

    logsafe.install()  # no personal data in any line the worker logs
    import torch

    torch.set_num_threads(threads)


def _explainer(model_dir: str, device: str, explain_cfg: dict):
    key = f"{model_dir}|{device}|{sorted(explain_cfg.items())}"
    explainer = _LOADED.get(key)
    if explainer is None:
        from training.config import ExplainConfig
        from training.model.explain import Explainer
        from training.model.predictor import Predictor

        _LOADED.clear()  # the previous version: not asked for any more
        explainer = Explainer(Predictor.load(model_dir, device=device), ExplainConfig(**explain_cfg))
        _LOADED[key] = explainer
    return explainer


def explain_in_worker(
    model_dir: str, device: str, explain_cfg: dict, text: str, label: str | None, granularity: str | None
) -> dict:
    """One explanation as a dict (Explanation.to_dict()), or {"error": ...} for a label the model lacks."""
    explainer = _explainer(model_dir, device, explain_cfg)
    try:
        return explainer.explain(text, label, granularity).to_dict()
    except ValueError as exc:
        return {"error": str(exc)}


def _started() -> bool:
    return True


def warm_in_worker(model_dir: str, device: str, explain_cfg: dict, text: str) -> bool:
    """Load the model and both Kiwi models (spacing, morphemes), so no request pays for them."""
    explain_in_worker(model_dir, device, explain_cfg, text, None, "morpheme")
    return True


# --- in the serving process -------------------------------------------------------------------------


class ExplainerPool:
    """The worker processes. `submit` returns a Future; a pool whose worker died is rebuilt once and the
    call retried (an explanation is idempotent)."""

    def __init__(self, workers: int, torch_threads: int) -> None:
        self.workers = workers
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.torch_threads,),
        )

    def _submit(self, fn, *args) -> Future:
        with self._lock:
            try:
                return self._pool.submit(fn, *args)
            except BrokenProcessPool:
                log.warning("explanation worker died; starting a new one")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                return self._pool.submit(fn, *args)

    def submit(self, model_dir: str, device: str, explain_cfg: dict, text: str, label, granularity) -> Future:
        return self._submit(explain_in_worker, model_dir, device, explain_cfg, text, label, granularity)

    def start(self) -> None:
        """Start the workers now (their imports run while the serving process loads its own model)."""
        for _ in range(self.workers):
            self._submit(_started)

    def warm(self, model_dir: str, device: str, explain_cfg: dict, text: str, timeout_s: float) -> None:
        """Load the model in every worker and wait for it (the service is ready only then, so no request
        meets a cold worker and no start-up work competes with requests). A worker that cannot start
        does not stop the service: it is logged, and /explain says why when called."""
        try:
            futures = [
                self._submit(warm_in_worker, model_dir, device, explain_cfg, text)
                for _ in range(self.workers)
            ]
            for future in futures:
                future.result(timeout=timeout_s)
        except Exception as exc:
            log.warning("explanation workers could not be warmed up: %s", type(exc).__name__)

    def close(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=False, cancel_futures=True)
