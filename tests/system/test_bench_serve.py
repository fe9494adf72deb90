"""`heara bench serve` end to end: the real `bentoml serve` and the Flask reference server (seed-style),
a tiny model, a short load."""

from __future__ import annotations

import pytest

from training.bench.serve import bench_serve

pytestmark = pytest.mark.slow

KEYS = {
    "rps",
    "p50_ms",
    "p99_ms",
    "errors",
    "errors_5xx",
    "flask_rps",
    "flask_p50_ms",
    "flask_p99_ms",
    "flask_errors",
    "ratio_vs_flask",
    "concurrency",
    "duration_s",
    "memory_mb_start",
    "memory_mb_end",
    "memory_mb_max",
    "requests",
    "prediction_log_rows",
    "device",
}


@pytest.mark.timeout(400)
def test_bench_serve_tiny_model(tmp_path, tiny_model_factory) -> None:
    model_dir = tiny_model_factory(tmp_path / "model")
    out = bench_serve(model_dir, concurrency=4, duration_s=3, warmup_s=1)
    assert KEYS <= set(out), KEYS - set(out)
    assert out["errors"] == 0 and out["errors_5xx"] == 0, out["error_samples"]
    assert out["flask_errors"] == 0, out["flask_error_samples"]
    assert out["rps"] > 0 and out["flask_rps"] > 0 and out["requests"] > 0
    assert out["ratio_vs_flask"] == pytest.approx(out["rps"] / out["flask_rps"], rel=0.02)
    assert out["p50_ms"] <= out["p99_ms"] and out["memory_mb_max"] >= out["memory_mb_start"] > 0
    # one row per text, one text per request: the log holds every successful request (warm-up included)
    assert out["prediction_log_rows"] == out["service_requests_ok"] == out["prediction_log_requests"]
    assert out["prediction_log_complete"] and out["device"] in ("cpu", "cuda")
