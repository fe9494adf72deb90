"""Serving: the BentoML service and what it needs at request time.

Module map (the model, its preprocessing and the champion's resolution come from training.model,
training.data.preprocess and training.registry; tests/code/test_code_maps.py keeps this map complete):
  service.py        the BentoML service and its routes; the inference service of the split topology
  batcher.py        in-process adaptive batching (the single topology)
  model_host.py     the model in the computing process: load, hot-reloadable, predict a batch, explain
  explainer_pool.py explanations (POST /explain) in spawned worker processes with their own model copy
  limiter.py        bounded concurrency for /explain: so many running, so many waiting, the rest 503
  schemas.py        request and response shapes, input limits, the danger flag
  guard.py          ASGI middleware: API key, metrics token, body cap and time limit, UTF-8 JSON only
                    (no duplicate keys), the service's OpenAPI schema at /docs.json
  protocol.py       uvicorn's HTTP protocol with a time and size limit on each request head
  openapi.py        the OpenAPI schema, made to match every answer
  routes.py         the routes, and the route template metrics and log lines name a request by
  logsafe.py        every log record scrubbed: personal data masked, no rejected value or raw path
  inference.py      one adaptive batch: tokenised once, forward passes under a token cap
  reload.py         hot reload: swap in the new champion without downtime
  metrics.py        Heara's Prometheus metrics; BentoML's request metrics labelled by route template
  drift_gauges.py   the newest `heara monitor` report as gauges on /metrics (re-read when it changes)
  predlog.py        the prediction log (SQLite or PostgreSQL), written off the request path
  journal.py        the prediction log's journal on disk (durable mode): group commit, replay
  review_queue.py   the review queue beside the prediction log: predictions people label, and the
                    production holdout their labels of the random stratum make
  recent.py         the last predictions in memory, for GET /recent and the try-it page
  timeline.py       speakers and sessions: ids pseudonymised, the escalation rule, GET /timeline's answer
  run.py            start the service (`heara serve`), resolving the model first
  supervisor.py     BentoML's process manager made private; workers that stop when it dies
  static/           the try-it page (GET /try)
                    and the timeline page (GET /timeline/page)

Its benchmark (`heara bench serve`) and the Flask reference server it compares with live in
training/bench/ with the other measurement tools.
"""
