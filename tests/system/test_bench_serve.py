"""`heara bench serve` end to end: wrk against the real `bentoml serve`, the Flask reference server
(seed-style) and MLflow's scoring server, on one registered version of a tiny model; and the wrk script's
walk through the text pool, against a small local server."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from training.bench.pool import write_bodies
from training.bench.serve import PEERS, bench_serve
from training.bench.wrk import run_wrk

PER_SERVER = (
    "rps",
    "p50_ms",
    "p99_ms",
    "requests",
    "errors",
    "errors_5xx",
    "warmup_errors",
    "client_cpu_s",
    "server_cpu_s",
    "memory_mb_ready",
    "memory_mb_start",
    "memory_mb_end",
    "memory_mb_max",
    "memory_growth_pct",
)
TOP = (
    "benchmark",
    "peers",
    "model_size",
    "task",
    "model_version",
    "device",
    "concurrency",
    "client_threads",
    "duration_s",
    "warmup_s",
    "topology",
    "cpu_runtime",
    "predlog_durability",
    "pool_size",
    "ratio_vs_flask",
    "ratio_vs_mlflow",
    "durable_vs_async_rps",
)
HEARA_ONLY = (
    "device",
    "dtype",
    "model_version",
    "requests_ok",
    "requests_sent",
    "prediction_log_rows",
    "prediction_log_complete",
)


@pytest.mark.heavy  # three servers start one after another (about 4 minutes on 2 cores): CI's heavy step
@pytest.mark.timeout(600)
def test_bench_serve_tiny_model_all_peers(tmp_path, tiny_model_factory) -> None:
    model_dir = tiny_model_factory(tmp_path / "model")
    out = bench_serve(model_dir, concurrency=4, duration_s=3, warmup_s=1, topology="single")
    keys = {*TOP, *(f"{p}_{k}" for p in PEERS for k in PER_SERVER), *(f"heara_{k}" for k in HEARA_ONLY)}
    assert keys <= set(out), keys - set(out)
    assert out["peers"] == list(PEERS) and out["model_size"] == "tiny" and out["topology"] == "single"
    for p in PEERS:
        assert out[f"{p}_errors"] == out[f"{p}_errors_5xx"] == out[f"{p}_warmup_errors"] == 0, (p, out)
        assert out[f"{p}_rps"] > 0 and out[f"{p}_requests"] > 0, (p, out)
        assert 0 < out[f"{p}_p50_ms"] <= out[f"{p}_p99_ms"], (p, out)
        assert out[f"{p}_server_cpu_s"] > 0 and out[f"{p}_client_cpu_s"] >= 0, (p, out)
        assert out[f"{p}_memory_mb_max"] >= out[f"{p}_memory_mb_start"] > 0, (p, out)
    assert out["ratio_vs_flask"] == pytest.approx(out["heara_rps"] / out["flask_rps"], rel=0.01)
    assert out["ratio_vs_mlflow"] == pytest.approx(out["heara_rps"] / out["mlflow_rps"], rel=0.01)
    # the service served the version registered for the run, and logged every answered request
    assert out["heara_model_version"] == str(out["model_version"]) and out["device"] in ("cpu", "cuda")
    assert out["heara_prediction_log_complete"], out
    assert out["heara_requests_ok"] <= out["heara_prediction_log_rows"] <= out["heara_requests_sent"]


def _number(text: str) -> int:
    return int(text.rpartition("#")[2])


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the texts numbered by a multiple of 7 (`문장 #14`), 200 to the others; records
    every body it read."""

    protocol_version = "HTTP/1.1"
    bodies: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        self.bodies.append(body)
        status = 503 if _number(json.loads(body)["texts"][0]) % 7 == 0 else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


def test_wrk_sends_each_pool_text_once_and_counts_answers(tmp_path) -> None:
    texts = [f"문장 #{i}" for i in range(50_000)]
    bodies = write_bodies(texts, tmp_path / "pool.jsonl", lambda t: {"texts": [t]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        first = run_wrk(url, "/classify", bodies, concurrency=4, threads=2, duration_s=1)
        second = run_wrk(
            url, "/classify", bodies, concurrency=4, threads=2, duration_s=1, start=first.next_start
        )
    finally:
        server.shutdown()
    received = [json.loads(b)["texts"][0] for b in _Recorder.bodies]
    assert len(received) == len(set(received)) > 0  # no text twice, across the two runs either
    assert len(received) < len(texts)
    for r in (first, second):
        assert r.requests == r.ok + r.non_2xx and r.non_2xx == r.status_5xx > 0 and r.socket_errors == 0
        assert r.requests <= r.sent and r.client_cpu_s >= 0 and r.p50_ms is not None
    # a request in flight when wrk stops is received but not counted: counts are bounds, not equalities
    assert first.requests + second.requests <= len(received) <= first.sent + second.sent
    assert first.status_5xx + second.status_5xx <= sum(_number(t) % 7 == 0 for t in received)
