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

    def load(source, previous=None):
        return load_served(source, serve, previous)

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
        "serving %s version %s from %s on %s (%s topology)",
        source.name,
        source.version_label,
        source.model_dir,
        served.classifier.runtime,
        serve.topology,
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


_EXPLAINERS: dict[int, Any] = {}  # id(served) -> its Explainer: one per model version served
_EXPLAINERS_LOCK = threading.Lock()


def _explainer(served, params: Params):
    """The Explainer of the served version, built on first use (then kept until the version changes).
    It preprocesses with a Preprocessor of its own: Kiwi is not called from two threads at once."""
    with _EXPLAINERS_LOCK:
        explainer = _EXPLAINERS.get(id(served))
        if explainer is None:
            from training.config import PreprocessConfig
            from training.data.preprocess import Preprocessor
            from training.model.explain import Explainer

            predictor = served.classifier.predictor
            own = Preprocessor(PreprocessConfig(**predictor.meta["preprocess"]))
            explainer = Explainer(predictor, params.explain, preprocess=own)
            _EXPLAINERS.clear()  # the previous version's: not served any more
            _EXPLAINERS[id(served)] = explainer
        return explainer


def explain(hot: HotModel, text: str, label: str | None, granularity: str | None, params: Params) -> dict:
    """One explanation (POST /explain): the prediction and each word's or morpheme's contribution to the
    predicted (or given) label. Computed with the full-precision model, outside the classify batches
    and without the compute lock, so /classify batches never wait for it. `{"error": ...}` for a label
    the model does not have."""
    served = hot.current
    start = time.perf_counter()
    if served.classifier.runtime != "sklearn":
        import torch

        torch.set_num_threads(
            params.explain.torch_threads
        )  # this thread's setting only (OpenMP's is per thread)
    try:
        explanation = _explainer(served, params).explain(text, label, granularity)
    except ValueError as exc:  # an unknown label: the caller's mistake (400), in either topology
        return {"error": str(exc)}
    body = schemas.explanation_body(
        explanation.to_dict(),
        danger_labels=params.serve.danger_labels,
        threshold=params.serve.danger_threshold,
    )
    elapsed = time.perf_counter() - start
    metrics.instruments().explanations.labels(method=explanation.method).observe(elapsed)
    return {**body, "model_version": served.source.version_label, "elapsed_ms": round(elapsed * 1000, 3)}
