"""Heara's own Prometheus metrics, served with BentoML's at /metrics.

Created on first use inside a service's `__init__`, never at import: `bentoml serve` runs several
processes that share one multiprocess metrics folder, and prometheus_client picks its storage mode
when it is first imported (BentoML 1.4 deprecates `bentoml.metrics` in favour of this).

- heara_predictions_total{label, danger}: predictions per label (the process that computes: the
  service in `single`, the inference service in `split`; likewise the next three)
- heara_prediction_confidence: the top label's probability
- heara_batch_texts: texts per adaptive batch, i.e. per model call
- heara_model_reloads_total{result="ok|failed"}: hot reloads of the model that swapped in a new
  version, or failed and kept the old one
- heara_prediction_log_dropped_total / _failed_total: prediction-log records dropped (queue full)
  or lost to a failing store (API service)
- heara_prediction_log_refused_total: `serve.predlog_durability: durable`: records the journal could
  not take (a full disk): their requests were answered 503, not acknowledged
- heara_explanation_seconds{method}: time per explanation (POST /explain; the computing process)
- heara_explanations_refused_total: POST /explain answered 503 (every slot and waiting place taken)
- heara_escalations_total: escalation episodes of speakers (serving.timeline: once per episode, not
  per danger prediction within it; the API service)

BentoML's own request metrics (`bentoml_service_request_total`, `..._duration_seconds`,
`..._in_progress`) are labelled by route template (serving.routes), see `label_requests_by_route`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

CONFIDENCE_BUCKETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
EXPLAIN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class Instruments:
    predictions: Any
    confidence: Any
    batch_texts: Any
    predlog_dropped: Any
    predlog_failed: Any
    predlog_refused: Any
    reloads: Any
    explanations: Any
    explain_refused: Any
    escalations: Any


@cache
def instruments() -> Instruments:
    """The metric objects (one set per process)."""
    import prometheus_client as prom

    return Instruments(
        predictions=prom.Counter("heara_predictions", "Predictions per label", ["label", "danger"]),
        confidence=prom.Histogram(
            "heara_prediction_confidence", "Probability of the predicted label", buckets=CONFIDENCE_BUCKETS
        ),
        batch_texts=prom.Histogram(
            "heara_batch_texts", "Texts per adaptive batch (one model call)", buckets=BATCH_BUCKETS
        ),
        predlog_dropped=prom.Counter(
            "heara_prediction_log_dropped", "Prediction-log records dropped because the queue was full"
        ),
        predlog_failed=prom.Counter(
            "heara_prediction_log_failed", "Prediction-log records lost because the store failed"
        ),
        predlog_refused=prom.Counter(
            "heara_prediction_log_refused",
            "Prediction-log records the journal could not take (their requests got 503)",
        ),
        reloads=prom.Counter(
            "heara_model_reloads",
            "Hot reloads of the served model (ok: swapped in, failed: the old model kept serving)",
            ["result"],
        ),
        explanations=prom.Histogram(
            "heara_explanation_seconds",
            "Time to compute one explanation (POST /explain), per method",
            ["method"],
            buckets=EXPLAIN_BUCKETS,
        ),
        explain_refused=prom.Counter(
            "heara_explanations_refused", "POST /explain answered 503: every slot and waiting place was taken"
        ),
        escalations=prom.Counter(
            "heara_escalations",
            "Escalation episodes: a speaker's danger predictions reached timeline.escalation.danger_count "
            "within its window (counted once per episode)",
        ),
    )


def observe_predictions(predictions: list[dict[str, Any]]) -> None:
    """One batch: its size, the predictions per (label, danger) counted once per batch, and each score
    (a histogram takes one value at a time)."""
    from collections import Counter

    m = instruments()
    m.batch_texts.observe(len(predictions))
    for (label, danger), n in Counter((p["label"], p["danger"]) for p in predictions).items():
        m.predictions.labels(label=label, danger=str(danger).lower()).inc(n)
    for p in predictions:
        m.confidence.observe(p["score"])


class PredictionLogCounters:
    """Mirrors the prediction log's own counters (`stats()`) into Prometheus counters.

    The log counts in its writer thread; `sync()` adds what changed since the last call. The
    service calls it after every request, so a store failure shows at the latest one request later.
    """

    def __init__(self) -> None:
        self._seen = {"dropped": 0, "failed_records": 0, "refused": 0}

    def sync(self, stats: dict[str, Any]) -> None:
        m = instruments()
        counters = {
            "dropped": m.predlog_dropped,
            "failed_records": m.predlog_failed,
            "refused": m.predlog_refused,
        }
        for key, counter in counters.items():
            delta = int(stats.get(key, 0)) - self._seen[key]
            if delta > 0:
                counter.inc(delta)
                self._seen[key] += delta


def label_requests_by_route() -> None:
    """Make BentoML label its request metrics with the route template instead of the raw path.

    BentoML 1.4's `RunnerTrafficMetricsMiddleware` (outermost, before any middleware of ours) takes
    `scope["path"]` as the `endpoint` label: every made-up path became a new series, without a key
    (3,000 GETs took /metrics from 133 KB to 21.5 MB, issue #15) and published the path's text. The
    subclass below hands that middleware a copy of the scope whose path is the route template and
    passes the untouched scope on to the app. BentoML builds its middleware list when the app is
    built (after the service module is imported), looking the class up in its module then: replacing
    it there is the one place this can be changed without forking BentoML (pinned <1.4.40;
    tests/system/test_service_http.py's cardinality test fails if a release moves it). Idempotent.
    """
    from bentoml._internal.server.http import instruments

    from serving.routes import route_template

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "heara_by_route", False):
        return

    class RouteTemplateMetrics(base):  # type: ignore[misc, valid-type]
        heara_by_route = True

        def __init__(self, app: Any, **options: Any) -> None:
            async def untouched(scope: dict, receive: Any, send: Any) -> None:
                await app(scope.get("heara.scope", scope), receive, send)

            super().__init__(untouched, **options)

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] not in ("http", "websocket"):
                return await super().__call__(scope, receive, send)
            labelled = {**scope, "path": route_template(scope["path"]), "heara.scope": scope}
            return await super().__call__(labelled, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = RouteTemplateMetrics
