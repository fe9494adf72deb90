"""`heara bench serve`: load the real `bentoml serve` and a Flask reference server (seed-style) with the
same model.

For each server (one after the other, never both at once): start it in its own process group on a
free port with a throw-away HEARA_HOME, wait for /readyz, run a closed-loop load (`concurrency`
client threads, each sending POST /classify with Korean utterances from the sample data, a new
request as soon as the previous answer arrived) for a warm-up and then `duration_s` measured
seconds, sample the server's process-tree RSS every second, then stop it (SIGTERM to the group,
SIGKILL after a grace period). The service's prediction log (SQLite in the throw-away home) is
counted after the writer flushed.

    python -m training.bench.serve --concurrency 32 --duration 20 [--model-dir DIR]
    python -m training.bench.serve --service-only --concurrency 64 --duration 60   # the load check

The last line printed is the result as one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.paths import PROJECT_ROOT, StatePaths

SAMPLE = PROJECT_ROOT / "data" / "sample" / "utterances.csv"
READY_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 30
STOP_GRACE_S = 20
FLUSH_WAIT_S = 20


# --- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    home: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""


def _clean_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("HEARA_MODEL_DIR", "HEARA_API_KEY", "HEARA_PREDICTION_DB", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    env.update({"HEARA_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True", "MLFLOW_DISABLE_TELEMETRY": "true"})
    return env


def _spawn(name: str, argv: list[str], env: dict[str, str], home: Path, port: int) -> Server:
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, port, proc, home, log_path)


def start_service(model_dir: Path | None, home: Path, env: Mapping[str, str] | None = None) -> Server:
    """The real `bentoml serve` (as `heara serve` starts it) on a free port, serving `model_dir`
    (None: the registry's champion, MLFLOW_TRACKING_URI in `env`). `env` adds variables (HEARA_API_KEY)."""
    from serving.run import serve_command

    port = free_port()
    argv, _ = serve_command(port, "127.0.0.1")
    full_env = _clean_env(home)
    full_env.update(
        {
            "BENTOML_HOME": str(StatePaths(home).bentoml),
            "HEARA_PREDICTION_DB": f"sqlite:///{StatePaths(home).prediction_log}",
        }
    )
    if model_dir is not None:
        full_env["HEARA_MODEL_DIR"] = str(model_dir)
    full_env.update(env or {})
    return _spawn("bentoml", argv, full_env, home, port)


def start_flask_reference(model_dir: Path, home: Path) -> Server:
    """The seed-style Flask reference server (training.bench.flask_reference) on a free port, same model."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "training.bench.flask_reference",
        "--model-dir",
        str(model_dir),
        "--port",
        str(port),
    ]
    return _spawn("flask", argv, _clean_env(home), home, port)


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    host, _, rest = url.removeprefix("http://").partition("/")
    h, _, p = host.partition(":")
    conn = http.client.HTTPConnection(h, int(p), timeout=timeout)
    try:
        conn.request("GET", "/" + rest)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_ready(server: Server, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        with suppress(OSError, http.client.HTTPException):
            if _get(f"{server.url}/readyz", timeout=3)[0] == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{server.name} not ready after {timeout_s:.0f} s:\n{server.log_tail()}")


def stop(*servers: Server, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to each server's process group (all at once), SIGKILL to those still running after grace_s."""
    for server in servers:
        with suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for server in servers:
        try:
            server.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=10)
        with suppress(ProcessLookupError):  # children that outlived the group leader
            os.killpg(server.proc.pid, signal.SIGKILL)


# --- memory ---------------------------------------------------------------------------------------


def _tree_sum(pid: int, measure) -> float:
    """Sum `measure(process)` over a process and its live descendants (0 when it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        with suppress(psutil.Error):
            total += measure(p)
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live descendants."""
    return _tree_sum(pid, lambda p: p.cpu_times().user + p.cpu_times().system)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB (0 when it is gone)."""
    return _tree_sum(pid, lambda p: p.memory_info().rss) / 2**20


class MemorySampler(threading.Thread):
    """Samples the process-tree RSS every `interval_s` seconds until stopped: [(t, MiB), ...]."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), tree_rss_mb(self.pid)))
            if self._stop_event.wait(self.interval_s):
                break

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self.samples.append((time.monotonic(), tree_rss_mb(self.pid)))

    def summary(self, since: float) -> dict[str, float]:
        """Start (first sample at or after `since`, the end of the warm-up), end and maximum."""
        window = [mb for t, mb in self.samples if t >= since] or [mb for _, mb in self.samples]
        return {
            "memory_mb_start": round(window[0], 1),
            "memory_mb_end": round(window[-1], 1),
            "memory_mb_max": round(max(window), 1),
        }


# --- load -----------------------------------------------------------------------------------------


def load_texts(path: Path = SAMPLE) -> list[str]:
    with open(path, encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f) if row.get("text", "").strip()]


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)  # successful requests of the measured window
    measured: int = 0  # requests started in the measured window (any outcome)
    errors: int = 0  # measured window: non-2xx answers and exceptions
    errors_5xx: int = 0
    ok_total: int = 0  # 2xx answers over warm-up and window: what the prediction log must hold
    total: int = 0
    window_s: float = 0.0
    error_samples: list[str] = field(default_factory=list)


def run_load(
    url: str,
    texts: list[str],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    texts_per_request: int = 1,
    seed: int = 0,
) -> LoadResult:
    """Closed loop: `concurrency` threads, each with its own keep-alive connection, send POST
    /classify back to back for warmup_s + duration_s; only requests started after the warm-up count."""
    host, _, port = url.removeprefix("http://").partition(":")
    result = LoadResult()
    lock = threading.Lock()
    t0 = time.monotonic()
    window_start, window_end = t0 + warmup_s, t0 + warmup_s + duration_s
    last_done = [window_start]

    def worker(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        conn: http.client.HTTPConnection | None = None
        local_lat: list[float] = []
        measured = errors = e5xx = ok_total = total = 0
        samples: list[str] = []
        while True:
            start = time.monotonic()
            if start >= window_end:
                break
            body = json.dumps({"texts": rng.sample(texts, texts_per_request)}, ensure_ascii=False).encode()
            status, note = 0, ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
                conn.request("POST", "/classify", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                if status >= 300:
                    note = f"{status}: {data[:200]!r}"
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                note = f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                conn = None
            end = time.monotonic()
            total += 1
            ok = 200 <= status < 300
            ok_total += ok
            if start >= window_start:
                measured += 1
                if ok:
                    local_lat.append((end - start) * 1000)
                else:
                    errors += 1
                    e5xx += status >= 500
                    if len(samples) < 3:
                        samples.append(note)
                last = end
                if last > last_done[0]:
                    with lock:
                        last_done[0] = max(last_done[0], last)
        if conn is not None:
            conn.close()
        with lock:
            result.latencies_ms.extend(local_lat)
            result.measured += measured
            result.errors += errors
            result.errors_5xx += e5xx
            result.ok_total += ok_total
            result.total += total
            result.error_samples.extend(samples[: max(0, 5 - len(result.error_samples))])

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.window_s = max(duration_s, last_done[0] - window_start)
    return result


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return round(float(np.percentile(values, q)), 1)


def _figures(r: LoadResult) -> dict[str, Any]:
    ok = len(r.latencies_ms)
    return {
        "rps": round(ok / r.window_s, 2) if r.window_s else 0.0,
        "p50_ms": _percentile(r.latencies_ms, 50),
        "p99_ms": _percentile(r.latencies_ms, 99),
        "errors": r.errors,
        "errors_5xx": r.errors_5xx,
        "requests": r.measured,
    }


# --- the prediction log ---------------------------------------------------------------------------


def count_prediction_log(db: Path, expected_rows: int, wait_s: float = FLUSH_WAIT_S) -> tuple[int, int]:
    """(rows, distinct request ids) of the SQLite prediction log, waiting up to wait_s for the writer
    to flush `expected_rows` (it writes every 0.5 s or every 200 records)."""
    deadline = time.monotonic() + wait_s
    rows = requests = 0
    while True:
        if db.exists():
            with suppress(sqlite3.Error):
                con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)
                try:
                    rows, requests = con.execute(
                        "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM predictions"
                    ).fetchone()
                finally:
                    con.close()
        if rows >= expected_rows or time.monotonic() >= deadline:
            return rows, requests
        time.sleep(0.25)


# --- the runs -------------------------------------------------------------------------------------


def _resolve(model_dir: Path | None) -> Path:
    if model_dir is not None:
        return Path(model_dir).resolve()
    from training.config import load_params
    from training.registry.champion import resolve_model

    return resolve_model(load_params().task).model_dir  # the champion (downloaded once into the cache)


def _measure(
    server: Server,
    texts: list[str],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    texts_per_request: int,
) -> tuple[LoadResult, dict[str, float], float]:
    wait_ready(server)
    ready_mb = tree_rss_mb(server.proc.pid)
    sampler = MemorySampler(server.proc.pid)
    sampler.start()
    window_start = time.monotonic() + warmup_s
    server_cpu, client_cpu = tree_cpu_s(server.proc.pid), time.process_time()
    try:
        result = run_load(
            server.url,
            texts,
            concurrency=concurrency,
            duration_s=duration_s,
            warmup_s=warmup_s,
            texts_per_request=texts_per_request,
        )
    finally:
        sampler.stop()
    # where the 2 cores went during warm-up + window: the server's process tree vs this load generator
    cpu = {
        "server_cpu_s": round(tree_cpu_s(server.proc.pid) - server_cpu, 1),
        "client_cpu_s": round(time.process_time() - client_cpu, 1),
    }
    return result, {**sampler.summary(window_start), **cpu}, round(ready_mb, 1)


def _service_run(
    model_dir: Path,
    root: Path,
    texts: list[str],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    texts_per_request: int,
) -> dict[str, Any]:
    server = start_service(model_dir, root / "service")
    try:
        result, memory, ready_mb = _measure(
            server,
            texts,
            concurrency=concurrency,
            duration_s=duration_s,
            warmup_s=warmup_s,
            texts_per_request=texts_per_request,
        )
        device = None
        with suppress(OSError, http.client.HTTPException, ValueError):
            status, body = _get(f"{server.url}/model", timeout=10)
            device = json.loads(body).get("device") if status == 200 else None
        expected = result.ok_total * texts_per_request
        rows, logged_requests = count_prediction_log(StatePaths(server.home).prediction_log, expected)
    finally:
        stop(server)
    return {
        **_figures(result),
        **memory,
        "memory_mb_ready": ready_mb,
        "memory_drift_mb": round(memory["memory_mb_end"] - memory["memory_mb_start"], 1),
        "service_requests_ok": result.ok_total,
        "prediction_log_rows": rows,
        "prediction_log_requests": logged_requests,
        "prediction_log_complete": rows == expected,
        "device": device,
        "error_samples": result.error_samples,
    }


def bench_serve(
    model_dir: Path | None = None,
    concurrency: int = 32,
    duration_s: float = 20,
    texts_per_request: int = 1,
    warmup_s: float = 3,
) -> dict[str, Any]:
    """The BentoML service, then the Flask reference server (seed-style), under the same closed-loop load.

    rps counts successful requests per second of the measured window; ratio = rps / flask_rps.
    """
    model_dir = _resolve(model_dir)
    texts = load_texts()
    root = Path(tempfile.mkdtemp(prefix="heara-bench-"))
    try:
        service = _service_run(
            model_dir,
            root,
            texts,
            concurrency=concurrency,
            duration_s=duration_s,
            warmup_s=warmup_s,
            texts_per_request=texts_per_request,
        )
        flask_server = start_flask_reference(model_dir, root / "flask")
        try:
            base, base_memory, _ = _measure(
                flask_server,
                texts,
                concurrency=concurrency,
                duration_s=duration_s,
                warmup_s=warmup_s,
                texts_per_request=texts_per_request,
            )
        finally:
            stop(flask_server)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    b = _figures(base)
    return {
        **service,
        "flask_rps": b["rps"],
        "flask_p50_ms": b["p50_ms"],
        "flask_p99_ms": b["p99_ms"],
        "flask_errors": b["errors"],
        "flask_errors_5xx": b["errors_5xx"],
        "flask_requests": b["requests"],
        "flask_memory_mb_max": base_memory["memory_mb_max"],
        "flask_server_cpu_s": base_memory["server_cpu_s"],
        "flask_client_cpu_s": base_memory["client_cpu_s"],
        "flask_error_samples": base.error_samples,
        "ratio_vs_flask": round(service["rps"] / b["rps"], 2) if b["rps"] else None,
        "concurrency": concurrency,
        "duration_s": duration_s,
        "texts_per_request": texts_per_request,
    }


def load_check(
    model_dir: Path | None = None,
    concurrency: int = 64,
    duration_s: float = 60,
    texts_per_request: int = 1,
    warmup_s: float = 3,
) -> dict[str, Any]:
    """The BentoML service alone under load: 5xx count, memory drift, and whether the prediction
    log holds every successful request."""
    model_dir = _resolve(model_dir)
    root = Path(tempfile.mkdtemp(prefix="heara-loadcheck-"))
    try:
        out = _service_run(
            model_dir,
            root,
            load_texts(),
            concurrency=concurrency,
            duration_s=duration_s,
            warmup_s=warmup_s,
            texts_per_request=texts_per_request,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        **out,
        "concurrency": concurrency,
        "duration_s": duration_s,
        "texts_per_request": texts_per_request,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark `bentoml serve` against a Flask reference server (seed-style)"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the registry's champion")
    parser.add_argument(
        "--service-only",
        action="store_true",
        help="load check: only the BentoML service (5xx, memory drift, prediction log)",
    )
    args = parser.parse_args(argv)
    run = load_check if args.service_only else bench_serve
    out = run(
        args.model_dir,
        concurrency=args.concurrency,
        duration_s=args.duration,
        texts_per_request=args.texts_per_request,
        warmup_s=args.warmup,
    )
    print(json.dumps(out, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
