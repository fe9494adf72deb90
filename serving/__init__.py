"""Serving: the BentoML service and what it needs at request time.

Module map (the model, its preprocessing and the champion's resolution come from training.model,
training.data.preprocess and training.registry; tests/code/test_code_maps.py keeps this map complete):
  service.py        the BentoML service and its routes; the inference service of the split topology
  batcher.py        in-process adaptive batching (the single topology)
  model_host.py     the model in the computing process: load, hot-reloadable, predict a batch
  schemas.py        request and response shapes, input limits, the danger flag
  guard.py          ASGI middleware: API key, body cap, JSON only
  inference.py      one adaptive batch: tokenised once, forward passes under a token cap
  reload.py         hot reload: swap in the new champion without downtime
  metrics.py        Heara's Prometheus metrics
  predlog.py        the prediction log (SQLite or PostgreSQL), written off the request path
  journal.py        the prediction log's journal on disk (durable mode): group commit, replay
  recent.py         the last predictions in memory, for GET /recent and the try-it page
  run.py            start the service (`heara serve`), resolving the model first
  static/           the try-it page (GET /try)

Its benchmark (`heara bench serve`) and the Flask reference server it compares with live in
training/bench/ with the other measurement tools.
"""
