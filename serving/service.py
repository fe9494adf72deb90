"""Heara's BentoML service: `bentoml serve serving.service:HearaService` (or `heara serve`).

Routes: POST /classify, POST /explain, POST /reload, GET /model, GET /recent, GET /try (the try-it
page), GET /review (the reviewer page) with GET /review/next and POST /review/label (the review queue,
serving.review_queue), /healthz, /readyz, /metrics, OpenAPI docs at / (BentoML's).

`HearaService` answers every route: it validates the body (serving.schemas), checks the API key and
the body size (serving.guard), gives each request an id and hands its predictions to the prediction
log before the answer leaves (`serve.predlog_durability: durable`, the default: the answer waits until
they are synced to its journal on disk). When the served version has a monitoring reference
(`monitor.log_features`), each prediction also brings its embedding projection and descriptor inputs
from the model (serving.inference); they go to the prediction log only, never into an answer. Where the
model runs is `serve.topology`:
- `single` (the default): in this same process. Concurrent /classify requests are merged into one
  model call by an in-process batcher (serving/batcher.py); no second process, no socket hop, no
  second (de)serialisation. Measured fastest on a CPU host (docs/benchmarks.md).
- `split`: in `HearaInference`, a service of its own (the process that holds the GPU) behind a
  local socket; BentoML's batchable method merges concurrent calls. BentoML's pattern for keeping
  HTTP work off a GPU process.
Either way the model polls the registry's champion and swaps in a new version without downtime
(serving.reload; `POST /reload` checks at once), and computes through serving.model_host, so a
prediction is the same in both. The model returns every label's score; this front adds a request's
`top_k` labels from them, so the inference service and its batches never see `top_k`. In-process
(`to_asgi()`, tests) `HearaInference` is a plain object.

Batching, limits and the danger rule come from params.yaml `serve`, read when this module is
imported because BentoML takes them in the decorators. Two more things happen at import, because
BentoML's worker builds its app and uvicorn's server after importing this module and offers no option
for either: its request metrics are labelled by route template (serving.metrics), and uvicorn's HTTP
protocol gets the request head's time and size limits (serving.protocol).

Speakers and sessions (serving.timeline): /classify takes optional `speaker_id`, `session_id` and
`device_id`, logged pseudonymised with the predictions; per speaker the escalation rule (params.yaml
`timeline.escalation`) marks the prediction that opens an episode `escalation: true` and counts it in
`heara_escalations_total`. GET /timeline answers one speaker's or session's logged predictions with their
episodes (API key), GET /timeline/page draws them (Korean, open like /try).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import bentoml
import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from serving import metrics, protocol, schemas
from serving.guard import RequestGuard
from training.config import load_params

log = logging.getLogger("heara.serve")
PARAMS = load_params()
SERVE = PARAMS.serve
metrics.label_requests_by_route()
protocol.install(SERVE.header_timeout_s, SERVE.max_header_bytes)
TIMELINE = PARAMS.timeline
ClassifyRequest = schemas.request_model(
    SERVE.max_texts, SERVE.max_chars, SERVE.max_top_k, max_id_chars=TIMELINE.max_id_chars
)
ExplainRequest = schemas.explain_request_model(SERVE.max_chars)
EXPLAIN = PARAMS.explain
TIMELINE_PAGE = Path(__file__).resolve().parent / "static" / "timeline.html"  # GET /timeline/page
EXAMPLE_INPUT = {"texts": schemas.EXAMPLE_TEXTS}
TRAFFIC = {"timeout": SERVE.timeout_s, "concurrency": SERVE.concurrency}
SINGLE = SERVE.topology == "single"
# BentoML writes an access-log line per request; off by default (serve.access_log): the prediction log
# and /metrics already record every request, and on 2 cores the line cost throughput (docs/benchmarks.md).
LOGGING = {
    "access": {"enabled": SERVE.access_log, "skip_paths": ["/metrics", "/healthz", "/livez", "/readyz"]}
}
TRY_PAGE = Path(__file__).resolve().parent / "static" / "try.html"
REVIEW_PAGE = TRY_PAGE.with_name("review.html")
# Each page is one file with inline CSS and JS that talks only to this service: the policy holds it to that.
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


@bentoml.service(workers=SERVE.workers, traffic=TRAFFIC, runner_connection=NO_ROTATION, logging=LOGGING)
class HearaInference:
    """`split` topology: the model, in a process of its own. Loaded and warmed up in __init__, so that
    /readyz turns 200 only after both."""

    def __init__(self) -> None:
        from serving import logsafe, model_host, supervisor

        logsafe.install()  # before anything logs: no personal data or raw path in any line
        supervisor.bind_to_supervisor(SERVE.shutdown_grace_s)
        metrics.instruments()
        model_host.start_explainers(PARAMS)  # explanations: worker processes of their own, started first
        self.model = model_host.start(PARAMS)
        model_host.warm_explainers(self.model, PARAMS)  # before readiness: no request meets a cold worker
        model_host.settle()
        self.ready = True

    @bentoml.on_shutdown
    def stop_polling(self) -> None:
        from serving import model_host

        if hasattr(self, "model"):
            self.model.stop()
        model_host.close_explainers()

    def __is_ready__(self) -> bool:
        return getattr(self, "ready", False)

    @bentoml.api(batchable=True, max_batch_size=SERVE.max_batch_size, max_latency_ms=SERVE.max_latency_ms)
    def predict(self, texts: list[str]) -> list[dict]:
        """One adaptive batch: the texts of every request BentoML merged into it."""
        from serving import model_host

        return model_host.predict_batch(self.model, texts, PARAMS)

    @bentoml.api
    async def explain(self, text: str, label: str | None = None, granularity: str | None = None) -> dict:
        """One explanation, in a worker process (the front bounds how many run at once). Async: waiting
        for the worker must not hold one of the threads the batched `predict` runs in."""
        from serving import model_host

        return await model_host.explain(self.model, text, label, granularity, PARAMS)

    @bentoml.api
    def model_info(self) -> dict:
        from serving import model_host

        return model_host.model_info(self.model, PARAMS)

    @bentoml.api
    def reload(self) -> dict:
        """Check the registry's champion now and swap it in when it is a new version (see serving.reload)."""
        return self.model.check()


app = FastAPI(
    title="Heara", docs_url=None, redoc_url=None, openapi_url=None
)  # GET routes; BentoML has the docs


async def _on_disk(journaled: Future) -> bool:
    """Wait for a durable prediction-log append; False when the journal refused it (the journal logs why)."""
    from serving.journal import JournalUnavailable

    try:
        await asyncio.wrap_future(journaled)
        return True
    except JournalUnavailable:
        return False


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer encoded once with orjson (the bodies here are plain dicts, already valid)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class _InferenceClient:
    """`split`: the model is the inference service, called over BentoML's local socket."""

    def __init__(self, inference) -> None:
        self.inference = inference

    async def predict(self, texts: list[str]) -> list[dict]:
        """The inference call, retried once when the connection to it broke (predicting is idempotent)."""
        import aiohttp

        try:
            return await self.inference.to_async.predict(texts=texts)
        except aiohttp.ClientConnectionError as exc:
            log.warning("inference call lost its connection (%s); retrying once", type(exc).__name__)
            return await self.inference.to_async.predict(texts=texts)

    async def explain(self, text: str, label: str | None, granularity: str | None) -> dict:
        return await self.inference.to_async.explain(text=text, label=label, granularity=granularity)

    async def info(self) -> dict:
        return await self.inference.to_async.model_info()

    async def reload(self) -> dict:
        return await self.inference.to_async.reload()

    def close(self) -> None:
        pass


class _LocalModel:
    """`single`: the model in this process, fed by the in-process batcher (serving/batcher.py)."""

    def __init__(self) -> None:
        from serving import model_host
        from serving.batcher import Batcher

        model_host.start_explainers(PARAMS)  # explanations: worker processes of their own, started first
        self.hot = model_host.start(PARAMS)
        self.batcher = Batcher(
            lambda texts: model_host.predict_batch(self.hot, texts, PARAMS),
            max_batch_size=SERVE.max_batch_size,
            max_latency_ms=SERVE.max_latency_ms,
        )
        model_host.warm_explainers(self.hot, PARAMS)  # before readiness: no request meets a cold worker

    async def predict(self, texts: list[str]) -> list[dict]:
        return await self.batcher.submit(texts)

    async def explain(self, text: str, label: str | None, granularity: str | None) -> dict:
        from serving import model_host

        return await model_host.explain(self.hot, text, label, granularity, PARAMS)

    async def info(self) -> dict:
        from serving import model_host

        return model_host.model_info(self.hot, PARAMS)

    async def reload(self) -> dict:
        import anyio

        return await anyio.to_thread.run_sync(self.hot.check)  # loading a model must not block the loop

    def close(self) -> None:
        from serving import model_host

        self.hot.stop()
        self.batcher.close()
        model_host.close_explainers()


@bentoml.service(workers=SERVE.workers if SINGLE else 1, traffic=TRAFFIC, logging=LOGGING)
@bentoml.asgi_app(app, path="/")
class HearaService:
    """Classify Korean utterances (dementia patients' cries for help, emotions, counselling topics)."""

    if not SINGLE:
        inference = bentoml.depends(HearaInference)

    def __init__(self) -> None:
        from serving import logsafe, model_host, supervisor, timeline
        from serving.drift_gauges import DriftGauges
        from serving.limiter import Slots
        from serving.predlog import PredictionLog
        from serving.recent import DEFAULT_SIZE, RecentPredictions
        from serving.review_queue import ReviewQueue
        from training import env
        from training.env import store_raw_text
        from training.paths import state

        logsafe.install()  # before anything logs: no personal data or raw path in any line
        supervisor.bind_to_supervisor(SERVE.shutdown_grace_s)  # stop when `heara serve` dies
        metrics.instruments()  # registered now, so that /metrics lists the counters from the start
        self.model = _LocalModel() if SINGLE else _InferenceClient(self.inference)
        self.model_name: str | None = None  # asked from the model once (split: no MLflow import here)
        self.store_raw = store_raw_text()
        self.id_keys = timeline.IdKeys(env.id_salt())  # speaker/session/device ids as stored (never logged)
        self.escalations = timeline.Escalations(  # the escalation rule, live: per speaker, in memory
            timeline.Rule.from_params(TIMELINE.escalation), TIMELINE.max_speakers
        )
        self.predlog = PredictionLog(
            env.prediction_db(), store_raw=self.store_raw, durability=SERVE.predlog_durability
        )
        self.predlog_counters = metrics.PredictionLogCounters()
        self.recent = RecentPredictions(env.recent_size(DEFAULT_SIZE))  # GET /recent: masked text only
        self.explain_slots = Slots(EXPLAIN.max_concurrency, EXPLAIN.max_waiting)  # POST /explain
        self.review = ReviewQueue(env.prediction_db())  # /review: the queue beside the prediction log
        # heara monitor's newest verdict, as gauges on /metrics (serving/drift_gauges.py)
        self.drift_gauges = DriftGauges(state().monitoring(PARAMS.task) / "report.json").start()
        model_host.settle()
        self.ready = True

    def __is_ready__(self) -> bool:
        return getattr(self, "ready", False)

    @bentoml.on_shutdown
    def close(self) -> None:
        if hasattr(self, "model"):
            self.model.close()
        if hasattr(self, "predlog"):
            self.predlog.close()
        if hasattr(self, "drift_gauges"):
            self.drift_gauges.stop()

    @bentoml.api(input_spec=ClassifyRequest)
    async def classify(
        self,
        texts: list[str],
        ctx: bentoml.Context,
        top_k: int | None = None,
        speaker_id: str | None = None,
        session_id: str | None = None,
        device_id: str | None = None,
    ) -> schemas.ClassifyResponse:
        """Classify 1 to `serve.max_texts` utterances.

        Per text: label, score, scores, danger, model_version; with `top_k` (1 to `serve.max_top_k`) also
        `top`, its k most probable labels with their scores, most probable first. `speaker_id`,
        `session_id`, `device_id` (optional, for every text) are logged with the predictions
        (pseudonymised, serving.timeline); with a `speaker_id` each prediction also says `escalation`."""
        from bentoml.exceptions import ServiceUnavailable

        from serving.batcher import Overloaded

        rid = schemas.request_id(ctx.request.headers.get("x-request-id"))
        start = time.perf_counter()
        try:
            predictions = await self.model.predict(texts)
        except (ServiceUnavailable, Overloaded):  # the queue would exceed serve.max_latency_ms: shed load
            ctx.response.status_code = 503  # BentoML sets a returned Response's status from the context
            error = "overloaded: the model cannot answer within serve.max_latency_ms; retry later"
            return _json({"error": error, "request_id": rid}, 503, {"Retry-After": "1", "X-Request-ID": rid})
        latency_ms = (time.perf_counter() - start) * 1000
        # The model host's monitoring features go to the prediction log only: out of every dict now, before
        # anything is answered, copied (top_k, escalation) or kept (/recent).
        features = schemas.pop_features(predictions)
        if self.model_name is None:
            self.model_name = (await self.model.info())["name"]
        ids = None  # pseudonymised once per request (an HMAC or a PII mask: microseconds)
        if speaker_id is not None or session_id is not None or device_id is not None:
            given = {"speaker_id": speaker_id, "session_id": session_id, "device_id": device_id}
            ids = self.id_keys.keys(given)
        # queued before the answer leaves
        records, journaled = self._log(rid, texts, predictions, latency_ms, ids, features)
        if journaled is not None and not await _on_disk(journaled):  # durable: synced before it leaves
            ctx.response.status_code = 503
            error = "prediction log unavailable: the prediction could not be recorded; retry later"
            return _json({"error": error, "request_id": rid}, 503, {"Retry-After": "5", "X-Request-ID": rid})
        self.recent.add(records)  # only what is answered (a 503 above was not)
        if top_k is not None:  # from the scores the model returned: no topology carries top_k further
            predictions = schemas.with_top(predictions, top_k)
        if ids is not None and ids["speaker_id"] is not None:
            predictions = self._escalate(ids["speaker_id"], records, predictions)
        # The predictions are built by serving.schemas.to_predictions: they are the response model's
        # fields already, so they are encoded once with orjson instead of validated again by pydantic.
        return _json({"request_id": rid, "predictions": predictions}, headers={"X-Request-ID": rid})

    @bentoml.api(input_spec=ExplainRequest)
    async def explain(
        self, text: str, ctx: bentoml.Context, label: str | None = None, granularity: str | None = None
    ) -> schemas.ExplainResponse:
        """Which words made the model say what it said: the prediction, and per word (or morpheme, with
        `"granularity": "morpheme"`) its span in `text`, its text and a signed score toward the predicted
        label (or `label`). The same input rules as /classify; 400 for a label the model does not have;
        503 with Retry-After when `explain.max_concurrency` explanations run and `explain.max_waiting`
        wait. Not written to the prediction log (it explains, it does not decide)."""
        from serving.limiter import Full

        rid = schemas.request_id(ctx.request.headers.get("x-request-id"))
        headers = {"X-Request-ID": rid}
        try:
            async with self.explain_slots.slot():
                body = await self.model.explain(text, label, granularity)
        except Full:
            metrics.instruments().explain_refused.inc()
            ctx.response.status_code = 503
            error = (
                "busy: explain.max_concurrency explanations are running and explain.max_waiting wait; retry"
            )
            return _json({"error": error, "request_id": rid}, 503, {"Retry-After": "1", **headers})
        if "error" in body:  # 400: a label the model does not have; 503: the worker is being restarted
            status = int(body.get("status", 400))
            ctx.response.status_code = status
            extra = {"Retry-After": "1"} if status == 503 else {}
            return _json({"error": body["error"], "request_id": rid}, status, {**headers, **extra})
        return _json({"request_id": rid, **body}, headers=headers)

    def _escalate(self, speaker: str, records: list, predictions: list[dict]) -> list[dict]:
        """The answered predictions of one speaker through the escalation rule (serving.timeline), at the
        time they were logged: each with `escalation`, the counter up by the episodes they opened."""
        t = records[0].ts.timestamp() if records else time.time()
        flags = self.escalations.observe(speaker, t, [p["danger"] for p in predictions])
        if any(flags):
            metrics.instruments().escalations.inc(sum(flags))
        return [{**p, "escalation": flag} for p, flag in zip(predictions, flags)]

    def _log(
        self,
        rid: str,
        texts: list[str],
        predictions: list[dict],
        latency_ms: float,
        ids: dict[str, str | None] | None = None,
        features: list | None = None,
    ) -> tuple[list, Future | None]:
        """PII masking and hashing, then a non-blocking queue put (async) or journal append (durable):
        (the records, the future of the journal's sync or None). `features`: the model host's monitoring
        features per prediction (schemas.pop_features), logged with them."""
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
                ids=ids,
                features=features,
            )
            journaled = self.predlog.log(records)
            self.predlog_counters.sync(self.predlog.stats())
            return records, journaled
        except Exception:  # logging must never turn a computed answer into an error
            log.exception("prediction log: request %s not logged", rid)
            return [], None

    @app.post("/reload")
    async def reload(self) -> dict:
        """Check the registry's champion now; a new version is loaded, warmed up and swapped in while
        the old one keeps answering. `{"reloaded": bool, "version": <served version>}`, plus `error`
        when the reload failed (the old model keeps serving). Needs the API key when one is set."""
        result = await self.model.reload()
        log.info("POST /reload: %s", result)
        return result

    @app.get("/model")
    async def model_endpoint(self) -> schemas.ModelInfo:
        """The model being served: registry name, version, run, metrics, training time, runtime."""
        return schemas.ModelInfo(**await self.model.info())

    @app.get("/timeline")
    async def timeline_endpoint(
        self,
        speaker_id: str | None = None,
        session_id: str | None = None,
        limit: str | None = None,
        since: str | None = None,
    ) -> Response:
        """One speaker's (`?speaker_id=`) or one session's (`?session_id=`) predictions from the prediction
        log, oldest first (the newest `limit`, default and most `timeline.max_entries`, at or after `since`):
        ts, label, score, scores, danger, danger_score, model_version and the masked text (never the raw
        text), the escalation episodes the rule finds in them and `escalation` (any). Ids are looked up as
        /classify stored them (serving.timeline). 400 for a bad query; needs the API key when one is set."""
        from datetime import UTC, datetime

        import anyio

        from serving import timeline

        try:
            query = timeline.parse_query(
                speaker_id=speaker_id,
                session_id=session_id,
                limit=limit,
                since=since,
                max_id_chars=TIMELINE.max_id_chars,
                max_entries=TIMELINE.max_entries,
            )
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        stored = {query.column: self.id_keys.key(query.value)}

        def read() -> list[dict]:
            self.predlog.flush(1.0)  # what this process answered is in the store (at most a second's wait)
            return self.predlog.timeline(**stored, limit=query.limit, since=query.since)

        try:
            entries = await anyio.to_thread.run_sync(read)  # a database read must not block the loop
        except Exception as exc:  # noqa: BLE001  an unreachable store: say so, masked
            log.warning("GET /timeline: the prediction log cannot be read (%s)", type(exc).__name__)
            error = "the prediction log cannot be read now; retry later"
            return _json({"error": error}, 503, {"Retry-After": "5"})
        return _json(
            timeline.body(
                entries,
                self.escalations.rule,
                danger_labels=SERVE.danger_labels,
                danger_threshold=SERVE.danger_threshold,
                now=datetime.now(UTC),
            )
        )

    @app.get("/timeline/page", response_class=HTMLResponse)
    async def timeline_page(self) -> HTMLResponse:
        """The timeline page (Korean): a speaker's or session's danger scores over time, its predictions and
        escalation episodes; it asks for the id and the API key and calls GET /timeline."""
        return HTMLResponse(TIMELINE_PAGE.read_text(encoding="utf-8"), headers=TRY_PAGE_HEADERS)

    @app.get("/recent")
    async def recent_endpoint(self, limit: str | None = None) -> Response:
        """The last predictions of this process, newest first (`HEARA_RECENT_SIZE`, default 50): time,
        PII-masked text, label, score, danger; and the count per label since the process started.
        `?limit=N` (N >= 1) returns at most N. Shows users' utterances (masked), so it needs the API
        key when one is set."""
        if limit is not None and not (limit.isdigit() and int(limit) >= 1):
            return _json({"error": f"limit must be a whole number of at least 1 (got {limit[:20]!r})"}, 400)
        return _json(self.recent.snapshot(int(limit) if limit else None))

    @app.get("/try", response_class=HTMLResponse)
    async def try_page(self) -> HTMLResponse:
        """The try-it page (Korean): classify an utterance; scores, danger flag, recent predictions."""
        return HTMLResponse(TRY_PAGE.read_text(encoding="utf-8"), headers=TRY_PAGE_HEADERS)

    @app.get("/review", response_class=HTMLResponse)
    async def review_page(self) -> HTMLResponse:
        """The reviewer page (Korean): label the review queue's items one at a time from the keyboard.
        The page itself holds no data; it sends the API key typed into it on its own calls."""
        return HTMLResponse(REVIEW_PAGE.read_text(encoding="utf-8"), headers=TRY_PAGE_HEADERS)

    @app.get("/review/next")
    async def review_next(self, since: str | None = None) -> Response:
        """The next queued item (masked text, the model's suggestion and scores, stratum, version), the
        danger stratum first, or `"item": null` when the queue is empty; and the counts per status,
        with how many were labeled since `since` (ISO 8601; default: UTC midnight). Needs the API key."""
        import anyio

        from serving.schemas import ReviewProblem, review_since

        try:
            start = review_since(since, datetime.now(UTC))
        except ReviewProblem as problem:
            return _json(problem.body(), 400)
        return _json(await anyio.to_thread.run_sync(self._review_next, start))  # the DB off the loop

    @app.post("/review/label")
    async def review_label(self, request: Request) -> Response:
        """Record a reviewer's answer `{"id", "status": "labeled|skipped|unsure", "label", "reviewer"}`:
        400 naming the field for a label the served model does not have, a missing reviewer or a bad
        status; 404 for an unknown id; 409 when the item was reviewed already. Needs the API key."""
        import anyio

        from serving.review_queue import REVIEWED
        from serving.schemas import ReviewProblem, review_answer

        try:
            body = orjson.loads(await request.body())  # the guard checked it is UTF-8 JSON
            answer = review_answer(body, (await self.model.info())["labels"], REVIEWED)
        except orjson.JSONDecodeError:
            return _json({"error": "the body is not valid JSON"}, 400)
        except ReviewProblem as problem:
            return _json(problem.body(), 400)
        status, result = await anyio.to_thread.run_sync(self._review_record, answer)
        if status == 200:
            log.info("review: item %s %s", answer["id"], answer["status"])
        return _json(result, status)

    def _review_next(self, since: datetime) -> dict:
        from serving.review_queue import STATUSES
        from serving.schemas import review_item

        row = self.review.next_item()
        per_status = self.review.counts()["status"]
        counts = {s: per_status[s] for s in STATUSES}
        counts["labeled_since"] = self.review.labeled_since(since)
        counts["since"] = since.isoformat()
        return {"item": review_item(row) if row else None, "counts": counts}

    def _review_record(self, answer: dict) -> tuple[int, dict]:
        """(HTTP status, body) of recording `answer` (checked by schemas.review_answer)."""
        from serving.review_queue import UnknownItem

        item_id = answer["id"]
        try:  # only_queued: of two reviewers shown the same item, the second gets 409
            stored = self.review.record(
                item_id, answer["status"], answer["label"], answer["reviewer"], only_queued=True
            )
        except UnknownItem:
            return 404, {"error": f"no review item {item_id}"}
        except ValueError as exc:  # AlreadyReviewed, or exported (which cannot change any more)
            return 409, {"error": str(exc).removeprefix("review: ")}
        return 200, {k: stored[k] for k in ("id", "status", "label", "reviewer", "ts_reviewed")}


def _openapi(keyed: bool) -> dict:
    """The schema /docs.json answers: BentoML's, made to match the service (serving/openapi.py)."""
    from serving import openapi

    return openapi.build(
        HearaService.openapi_spec.asdict(),
        max_texts=SERVE.max_texts,
        max_chars=SERVE.max_chars,
        keyed=keyed,
        max_id_chars=TIMELINE.max_id_chars,
        max_entries=TIMELINE.max_entries,
    )


HearaService.add_asgi_middleware(
    RequestGuard,
    max_body_bytes=schemas.max_body_bytes(SERVE.max_texts, SERVE.max_chars, TIMELINE.max_id_chars),
    body_timeout_s=SERVE.body_timeout_s,
    json_paths=("/classify", "/explain", "/review/label"),
    openapi=_openapi,
)
