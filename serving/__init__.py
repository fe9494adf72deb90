"""Serving: the BentoML service and what it needs at request time.

service.py (the two BentoML services and their routes), schemas.py (request and response shapes,
input limits, danger flag), guard.py (API key, body cap, JSON only), inference.py (token-capped
batches through training's Predictor), model_source.py (the registry champion or HEARA_MODEL_DIR,
cached locally), metrics.py (Prometheus), predlog.py (the prediction log), settings.py (environment
variables), run.py (`heara serve`), batch.py (`heara predict`).
"""
