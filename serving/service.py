"""Heara's BentoML service: `bentoml serve serving.service:HearaService` (or `heara serve`).

Routes: POST /classify, POST /reload, GET /model, GET /recent, GET /try (the try-it page), /healthz,
/readyz, /metrics, OpenAPI docs at / (BentoML's).

Two services, because adaptive batching needs a batchable method that returns one item per input
text, while /classify answers one envelope per request (request id, predictions):
- `HearaService`, the HTTP front: validates the body (serving.schemas), checks the API key and the
  body size (serving.guard), gives each request an id and hands the predictions to the prediction
  log after the response is sent;
- `HearaInference` holds the model and the one batchable method; BentoML merges concurrent
  /classify calls into its batches. It polls the registry's champion and swaps in a new version
  without downtime (serving.reload; `POST /reload` checks at once). Under `bentoml serve` it is its
  own process (the one that needs the GPU) behind a local socket; in-process (`to_asgi()`, tests)
  it is a plain object.

Batching, limits and the danger rule come from params.yaml `serve`, read when this module is
imported because BentoML takes them in the decorators. Nothing else happens at import.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import bentoml
from fastapi import FastAPI, Query
from starlette.responses import HTMLResponse, JSONResponse

from serving import schemas
from serving.guard import RequestGuard
from training.config import load_params

log = logging.getLogger("heara.serve")
PARAMS = load_params()
SERVE = PARAMS.serve
ClassifyRequest = schemas.request_model(SERVE.max_texts, SERVE.max_chars)
EXAMPLE_INPUT = {"texts": schemas.EXAMPLE_TEXTS}
TRAFFIC = {"timeout": SERVE.timeout_s, "concurrency": SERVE.concurrency}
TRY_PAGE = Path(__file__).resolve().parent / "static" / "try.html"
# The page is one file with inline CSS and JS that talks only to this service: the policy holds it to that.
TRY_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


# BentoML 1.4.39 closes the front's client session to this service every 100 requests even while
# requests are in flight (they fail with "Server disconnected", upstream issues #5540, #4971):
# never rotate it, and retry a call that lost its connection once (see `_predict`).
NO_ROTATION = {"max_requests": 2**31 - 1, "max_age": 10.0**9}


@bentoml.service(workers=SERVE.workers, traffic=TRAFFIC, runner_connection=NO_ROTATION)
class HearaInference:
    """The model: loaded and warmed up in __init__, so that /readyz turns 200 only after both."""

    def __init__(self) -> None:
        from functools import partial

        from serving import metrics
        from serving.reload import HotModel, load_served
        from training import env
        from training.registry.champion import champion_version, from_registry, resolve_model

        def load(source, previous=None):
            return load_served(source, SERVE.max_tokens_per_batch, SERVE.danger_labels, previous)

        metrics.instruments()
        source = resolve_model(PARAMS.task)
        served = load(source)
        served.classifier.warm_up()
        unknown = set(SERVE.responses) - set(served.classifier.labels)
        if unknown:
            log.warning("serve.responses names labels the model does not have: %s", sorted(unknown))
        from_folder = env.model_dir() is not None  # HEARA_MODEL_DIR: a fixed model, nothing to poll
        latest = (lambda: None) if from_folder else partial(champion_version, PARAMS.task)
        self.model = HotModel(
            served, latest_version=latest, fetch=partial(from_registry, PARAMS.task), load=load
        )
        self.ready = True
        log.info(
            "serving %s version %s from %s on %s",
            source.name,
            source.version_label,
            source.model_dir,
            served.classifier.predictor.device,
        )
        if not from_folder:
            self.model.start_polling(SERVE.reload_poll_s)

    @property
    def source(self):  # the served model's origin (it changes on a hot reload)
        return self.model.current.source

    @property
    def classifier(self):
        return self.model.current.classifier

    @bentoml.on_shutdown
    def stop_polling(self) -> None:
        if hasattr(self, "model"):
            self.model.stop()

    def __is_ready__(self) -> bool:
        return getattr(self, "ready", False)

    @bentoml.api(batchable=True, max_batch_size=SERVE.max_batch_size, max_latency_ms=SERVE.max_latency_ms)
    def predict(self, texts: list[str]) -> list[dict]:
        """One adaptive batch: the texts of every request BentoML merged into it."""
        from serving import metrics

        served = (
            self.model.current
        )  # one reference for the whole batch: a hot reload does not change it midway
        with self.model.compute_lock:  # a new model's warm-up waits for this batch (see serving.reload)
            scored = served.classifier.predict(texts)
        out = schemas.to_predictions(
            scored,
            danger_labels=SERVE.danger_labels,
            threshold=SERVE.danger_threshold,
            model_version=served.source.version_label,
            texts=texts,
            responses=SERVE.responses,
        )
        metrics.observe_predictions(out)
        return out

    @bentoml.api
    def model_info(self) -> dict:
        served = self.model.current
        p = served.classifier.predictor
        return {
            **served.source.to_dict(),
            "labels": list(served.classifier.labels),
            "danger_labels": list(SERVE.danger_labels),
            "danger_threshold": SERVE.danger_threshold,
            "device": p.device,
            "dtype": str(p.dtype).removeprefix("torch."),
        }

    @bentoml.api
    def reload(self) -> dict:
        """Check the registry's champion now and swap it in when it is a new version (see serving.reload)."""
        return self.model.check()


app = FastAPI(
    title="Heara", docs_url=None, redoc_url=None, openapi_url=None
)  # GET routes; BentoML has the docs


@bentoml.service(traffic=TRAFFIC)
@bentoml.asgi_app(app, path="/")
class HearaService:
    """Classify Korean utterances (dementia patients' cries for help, emotions, counselling topics)."""

    inference = bentoml.depends(HearaInference)

    def __init__(self) -> None:
        from serving import metrics
        from serving.predlog import PredictionLog
        from serving.recent import DEFAULT_SIZE, RecentPredictions
        from training import env
        from training.env import store_raw_text

        self.model_name: str | None = None  # asked from the inference service once (no MLflow import here)
        self.store_raw = store_raw_text()
        self.predlog = PredictionLog(env.prediction_db(), store_raw=self.store_raw)
        self.predlog_counters = metrics.PredictionLogCounters()
        self.recent = RecentPredictions(env.recent_size(DEFAULT_SIZE))  # GET /recent: masked text only
        metrics.instruments()  # registered now, so that /metrics lists the counters from the start

    @bentoml.on_shutdown
    def close_prediction_log(self) -> None:
        self.predlog.close()

    @bentoml.api(input_spec=ClassifyRequest)
    async def classify(self, texts: list[str], ctx: bentoml.Context) -> schemas.ClassifyResponse:
        """Classify 1 to `serve.max_texts` utterances.

        Per text: label, score, scores, danger, model_version."""
        from bentoml.exceptions import ServiceUnavailable

        rid = schemas.request_id(ctx.request.headers.get("x-request-id"))
        ctx.response.headers["X-Request-ID"] = rid
        start = time.perf_counter()
        try:
            predictions = await self._predict(texts)
        except ServiceUnavailable:  # the batch queue would exceed serve.max_latency_ms: shed load
            ctx.response.status_code = 503
            ctx.response.headers["Retry-After"] = "1"
            return JSONResponse(
                {
                    "error": "overloaded: the model cannot answer within serve.max_latency_ms; retry later",
                    "request_id": rid,
                },
                status_code=503,
            )
        latency_ms = (time.perf_counter() - start) * 1000
        if self.model_name is None:
            self.model_name = (await self.inference.to_async.model_info())["name"]
        ctx.response.background.add_task(self._log, rid, texts, predictions, latency_ms)
        return schemas.ClassifyResponse(request_id=rid, predictions=predictions)

    async def _predict(self, texts: list[str]) -> list[dict]:
        """The inference call, retried once when the connection to it broke (predicting is idempotent)."""
        import aiohttp

        try:
            return await self.inference.to_async.predict(texts=texts)
        except aiohttp.ClientConnectionError as exc:
            log.warning("inference call lost its connection (%s); retrying once", type(exc).__name__)
            return await self.inference.to_async.predict(texts=texts)

    def _log(self, rid: str, texts: list[str], predictions: list[dict], latency_ms: float) -> None:
        """After the response is sent: PII masking and hashing, then the recent-predictions buffer and a
        non-blocking queue put."""
        from serving.predlog import make_records

        try:
            records = make_records(
                rid,
                texts,
                predictions,
                self.model_name,
                predictions[0]["model_version"],
                latency_ms,
                store_raw=self.store_raw,
                danger_flags=[p["danger"] for p in predictions],
            )
            self.recent.add(records)
            self.predlog.log(records)
            self.predlog_counters.sync(self.predlog.stats())
        except Exception:  # the response is already sent; a logging bug must not surface as an error there
            log.exception("prediction log: request %s not logged", rid)

    @app.post("/reload")
    async def reload(self) -> dict:
        """Check the registry's champion now; a new version is loaded, warmed up and swapped in while
        the old one keeps answering. `{"reloaded": bool, "version": <served version>}`, plus `error`
        when the reload failed (the old model keeps serving). Needs the API key when one is set."""
        result = await self.inference.to_async.reload()
        log.info("POST /reload: %s", result)
        return result

    @app.get("/model")
    async def model(self) -> schemas.ModelInfo:
        """The model being served: registry name, version, run, metrics, training time."""
        return schemas.ModelInfo(**await self.inference.to_async.model_info())

    @app.get("/recent")
    async def recent(self, limit: int | None = Query(None, ge=1, description="at most this many")) -> dict:
        """The last predictions of this process, newest first (`HEARA_RECENT_SIZE`, default 50): time,
        PII-masked text, label, score, danger; and the count per label since the process started.
        Shows users' utterances (masked), so it needs the API key when one is set."""
        return self.recent.snapshot(limit)

    @app.get("/try", response_class=HTMLResponse)
    async def try_page(self) -> HTMLResponse:
        """The try-it page (Korean): classify an utterance; scores, danger flag, recent predictions."""
        return HTMLResponse(TRY_PAGE.read_text(encoding="utf-8"), headers=TRY_PAGE_HEADERS)


HearaService.add_asgi_middleware(
    RequestGuard, max_body_bytes=schemas.max_body_bytes(SERVE.max_texts, SERVE.max_chars)
)
