"""The model in the process that computes: load the champion, keep it hot-reloadable, predict a batch.

Both topologies use these functions: in `single` the HTTP service itself calls them (through the
in-process batcher, serving/batcher.py); in `split` the inference service `HearaInference` does.
So a prediction is computed, flagged and counted the same way whichever topology serves it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any

from serving import metrics, schemas
from serving.reload import HotModel, load_served
from training.config import Params

log = logging.getLogger("heara.serve")
GC_YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections (Python's default: 700)


def start(params: Params) -> HotModel:
    """The model to serve (HEARA_MODEL_DIR or the registry's champion), loaded and warmed up, and
    the registry polled for a new champion every `serve.reload_poll_s` (not for a fixed folder)."""
    from training import env
    from training.registry.champion import champion_version, from_registry, resolve_model

    serve = params.serve

    def load(source, previous=None):  # at start and on every hot reload
        return load_served(source, serve, previous, log_features=params.monitor.log_features)

    source = resolve_model(params.task)
    served = load(source)
    served.classifier.warm_up()
    unknown = set(serve.responses) - set(served.classifier.labels)
    if unknown:
        log.warning("serve.responses names labels the model does not have: %s", sorted(unknown))
    from_folder = env.model_dir() is not None  # HEARA_MODEL_DIR: a fixed model, nothing to poll
    latest = (lambda: None) if from_folder else partial(champion_version, params.task)
    hot = HotModel(served, latest_version=latest, fetch=partial(from_registry, params.task), load=load)
    log.info(
        "serving %s version %s from %s on %s (%s topology)%s",
        source.name,
        source.version_label,
        source.model_dir,
        served.classifier.runtime,
        serve.topology,
        ", logging monitoring features" if served.classifier.captures else "",
    )
    if not from_folder:
        hot.start_polling(serve.reload_poll_s)
    return hot


def settle() -> None:
    """Call once the process is loaded and warmed up: tune the garbage collector for serving.

    - `gc.freeze()` moves everything built so far (torch, transformers, BentoML, the model: millions
      of objects) out of the collector's sight, so a full collection no longer walks them while
      requests wait;
    - a young generation of 20,000 allocations instead of 700 makes collections rare; a request
      allocates a few hundred short-lived objects, nearly all freed by reference counting anyway.
    Measured on the tiny champion, concurrency 32, 2 cores (docs/benchmarks.md): p99 474 ms -> 99 ms
    and 440 -> 500 requests/s.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)


def predict_batch(hot: HotModel, texts: Sequence[str], params: Params) -> list[dict[str, Any]]:
    """One batch (the texts of every request merged into it) -> one prediction dict per text."""
    serve = params.serve
    served = hot.current  # one reference for the whole batch: a hot reload does not change it midway
    with hot.compute_lock:  # a new model's warm-up waits for this batch (see serving.reload)
        scored = served.classifier.predict(texts)
    out = schemas.to_predictions(
        scored,
        danger_labels=serve.danger_labels,
        threshold=serve.danger_threshold,
        model_version=served.source.version_label,
        texts=texts,
        responses=serve.responses,
    )
    metrics.observe_predictions(out)
    return out


def model_info(hot: HotModel, params: Params) -> dict[str, Any]:
    """What GET /model reports: the registry entry, the labels, the danger rule and where it runs."""
    served = hot.current
    clf = served.classifier
    return {
        **served.source.to_dict(),
        "labels": list(clf.labels),
        "danger_labels": list(params.serve.danger_labels),
        "danger_threshold": params.serve.danger_threshold,
        **clf.runtime_info(),  # device, dtype, runtime
        "topology": params.serve.topology,
    }


# A worker process died mid-explanation (out of memory, killed): the pool is rebuilt on the next call.
WORKER_LOST = {"error": "the explanation worker stopped; it is being restarted: retry", "status": 503}
_POOL = None  # this process's ExplainerPool (serving/explainer_pool.py), made on first use
_POOL_LOCK = threading.Lock()


def explainer_pool(params: Params):
    """The worker processes that compute explanations (one pool per serving process)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from serving.explainer_pool import ExplainerPool

            _POOL = ExplainerPool(params.explain.max_concurrency, params.explain.torch_threads)
        return _POOL


def _job(served, params: Params) -> tuple[str, str, dict]:
    """(the served folder, the device, the explain settings) a worker needs to explain with this version."""
    return str(served.source.model_dir), served.classifier.predictor.device, params.explain.model_dump()


EXPLAIN_WARM_UP_S = 300  # a worker not warm by then is logged and the service starts without it


def start_explainers(params: Params) -> None:
    """Spawn the explanation workers now: they import torch while this process loads its model."""
    explainer_pool(params).start()


def warm_explainers(hot: HotModel, params: Params) -> None:
    """Load the served model in the explanation workers and wait for it (called before readiness)."""
    from serving.inference import WARM_UP_TEXTS

    explainer_pool(params).warm(*_job(hot.current, params), WARM_UP_TEXTS[0], EXPLAIN_WARM_UP_S)


def submit_explanation(
    hot: HotModel, text: str, label: str | None, granularity: str | None, params: Params
) -> tuple[Future, Any]:
    """Hand one explanation to a worker process: (its future, the served version it explains)."""
    served = hot.current
    return explainer_pool(params).submit(*_job(served, params), text, label, granularity), served


def explanation_answer(result: dict, served, params: Params, elapsed_s: float) -> dict:
    """A worker's Explanation.to_dict() -> the /explain answer (or `{"error": ..., "status": 400}` for an
    unknown label)."""
    if "error" in result:
        return {**result, "status": 400}
    body = schemas.explanation_body(
        result, danger_labels=params.serve.danger_labels, threshold=params.serve.danger_threshold
    )
    metrics.instruments().explanations.labels(method=result["method"]).observe(elapsed_s)
    return {**body, "model_version": served.source.version_label, "elapsed_ms": round(elapsed_s * 1000, 3)}


async def explain(
    hot: HotModel, text: str, label: str | None, granularity: str | None, params: Params
) -> dict:
    """One explanation (POST /explain), computed in a worker process (serving/explainer_pool.py): outside
    the classify batches, the compute lock and this process's GIL and threads, so /classify never waits
    for it. `{"error": ..., "status": 400}` for a label the model does not have, 503 for a lost worker."""
    import asyncio

    start = time.perf_counter()
    try:
        future, served = submit_explanation(hot, text, label, granularity, params)
        result = await asyncio.wrap_future(future)
    except BrokenProcessPool:
        return WORKER_LOST
    return explanation_answer(result, served, params, time.perf_counter() - start)


def close_explainers() -> None:
    """Stop the explanation workers (the service's shutdown)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.close()
            _POOL = None
