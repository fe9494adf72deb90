"""Hot reload: when the registry's champion alias moves, the process that computes swaps in the new
version without downtime.

`HotModel` holds the served model as one immutable `Served` (source + classifier). A check asks
the registry which version is champion now; when it differs from the served one, the new version is
resolved (downloaded once), loaded and warmed up while the old model keeps answering, then the
reference is replaced in one assignment. A batch reads the reference once when it starts, so a batch
in flight finishes on the model it started with. A failed reload (download, load, warm-up, a model
without the danger labels) is logged and counted (`heara_model_reloads_total{result="failed"}`) and
the old model keeps serving.

Checks come from a daemon thread every `serve.reload_poll_s` seconds and from `POST /reload`; one
lock makes them run one at a time. With several inference workers each worker polls on its own, and
`POST /reload` reaches the one worker that answers it (the others follow within one poll interval).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serving.inference import Classifier, RuntimeChoice, choose_runtime
from training.config import ServeConfig
from training.model.predictor import pick_device, read_meta
from training.registry.champion import ModelSource

log = logging.getLogger("heara.serve")


@dataclass(frozen=True)
class Served:
    """What a batch predicts with: one consistent pair, replaced as a whole."""

    source: ModelSource
    classifier: Classifier


def load_served(
    source: ModelSource, serve: ServeConfig, previous: Served | None = None, *, log_features: bool = False
) -> Served:
    """Load the model folder of `source` (not warmed up); refuse a model without the danger labels.

    `log_features` (`monitor.log_features`): its predictions carry monitoring features when the folder
    has a monitoring reference (serving.inference), this version's own components: a hot reload loads
    the new version's.

    On a CPU with `serve.cpu_runtime: onnx` the model runs in int8 when its run's measured drop is
    within `serve.max_quantization_drop`; a refusal is one WARNING naming the reason
    (serving.inference.choose_runtime).

    With the same preprocessing as `previous`, the new model shares its (warm) preprocessor: building
    another one loads the Kiwi spacing model, which holds the GIL for more than a second and would
    stall the batches still running on the old model past `serve.max_latency_ms` (HTTP 503).
    """
    device = pick_device()
    choice = choose_runtime(device, serve.cpu_runtime, source.metrics, serve.max_quantization_drop)
    if read_meta(source.model_dir).get("family") == "linear":  # scikit-learn on the CPU, nothing to quantize
        device, choice = "cpu", RuntimeChoice("sklearn")
    if choice.refusal:
        log.warning(
            "serve.cpu_runtime is onnx, but %s version %s is served in fp32 (torch), not int8: %s",
            source.name,
            source.version_label,
            choice.refusal,
        )
    classifier = Classifier.load(
        source.model_dir,
        serve.max_tokens_per_batch,
        device,
        int8=choice.runtime == "onnx-int8",
        log_features=log_features,
    )
    missing = set(serve.danger_labels) - set(classifier.labels)
    if missing:
        raise ValueError(
            f"serve.danger_labels names labels the model does not have: {sorted(missing)} "
            f"(model labels: {classifier.labels})"
        )
    if previous is not None:
        old, new = previous.classifier.predictor, classifier.predictor
        if old.meta.get("preprocess") == new.meta.get("preprocess"):
            new._preprocessor = old.preprocessor
    return Served(source, classifier)


def _count(result: str) -> None:
    from serving import metrics

    try:
        metrics.instruments().reloads.labels(result=result).inc()
    except Exception:  # metrics must never break a reload
        log.exception("hot reload: could not count the result")


class HotModel:
    """The served model and its reload.

    - `latest_version()`: the version that should be served now (None: unknown, keep serving);
    - `fetch()`: that version's `ModelSource`, its folder on local disk (downloads when needed);
    - `load(source, previous)`: a loaded `Served` (`check` warms it up).

    `compute_lock` is held by every batch and by a new model's warm-up, so the warm-up runs between
    batches and never shares the (possibly shared) preprocessor with a running batch.
    """

    def __init__(
        self,
        served: Served,
        *,
        latest_version: Callable[[], str | None],
        fetch: Callable[[], ModelSource],
        load: Callable[[ModelSource, Served], Served],
    ) -> None:
        self.current = served
        self._latest_version = latest_version
        self._fetch = fetch
        self._load = load
        self._lock = threading.Lock()
        self.compute_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def version(self) -> str:
        return self.current.source.version_label

    def check(self) -> dict[str, Any]:
        """Swap in the champion when it is not the served version. Never raises: a failure keeps the
        old model and is reported as {"reloaded": False, "version": <served>, "error": "..."}."""
        with self._lock:
            old = self.current
            try:
                latest = self._latest_version()
                if latest is None or latest == old.source.version:
                    return {"reloaded": False, "version": old.source.version_label}
                source = self._fetch()
                if source.version == old.source.version:  # the alias moved back meanwhile
                    return {"reloaded": False, "version": old.source.version_label}
                new = self._load(source, old)
                with self.compute_lock:
                    new.classifier.warm_up()
            except Exception as exc:
                log.exception("hot reload failed; still serving version %s", old.source.version_label)
                _count("failed")
                return {
                    "reloaded": False,
                    "version": old.source.version_label,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                }
            self.current = new  # one assignment: batches already running keep their own reference
            _count("ok")
            log.info(
                "hot reload: now serving %s version %s (was %s) from %s",
                new.source.name,
                new.source.version_label,
                old.source.version_label,
                new.source.model_dir,
            )
            return {
                "reloaded": True,
                "version": new.source.version_label,
                "previous_version": old.source.version_label,
            }

    def start_polling(self, interval_s: float) -> None:
        """A daemon thread calling `check()` every `interval_s` seconds (0 or less: none)."""
        if interval_s <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.check()

        self._thread = threading.Thread(target=loop, name="heara-model-reload", daemon=True)
        self._thread.start()
        log.info("hot reload: checking the champion every %s s", interval_s)

    def stop(self) -> None:
        self._stop.set()
