"""`heara bench serve`: requests/s and latency of Heara's service against two peers, serving the same
registered model version under the same load from a standard load tool.

    heara bench serve --concurrency 32 --duration 20 [--model-size base] [--peers heara,flask,mlflow]
    heara bench serve --service-only --concurrency 64 --duration 60     # the load check
    heara bench serve --peers heara --predlog-durability async,durable   # what the durable log costs

The registry: a throw-away MLflow store (SQLite in a temporary folder, deleted afterwards) in which the
model folder (training/bench/models.py: `--model-dir`, the champion, or a base-size model) is logged,
registered as `heara-<task>` and given the champion alias (training.registry.aliases.register_folder).
The project's own store is only read, for the default champion.

The peers, one after the other (each in its own process group, stopped before the next starts, so
they never share the CPU), all with that one version:
  heara   the real `bentoml serve` (as `heara serve` starts it), loading the champion from the
          throw-away registry (MLFLOW_TRACKING_URI), with its prediction log in SQLite;
          `serve.topology`, `serve.cpu_runtime` and `serve.predlog_durability` (params.yaml, or the
          options) reach it through a params copy (HEARA_PARAMS); the peers do not read them.
          POST /classify {"texts": [text]}. With several durabilities (`async,durable`) it runs once
          per durability, one after the other, everything else equal (same version, same texts).
  flask   a server shaped like the seed projects (training/bench/flask_reference.py: Flask's threaded
          server, one fp32 model call per request, CPU) on the registered folder. POST /classify.
  mlflow  MLflow's own scoring server, `mlflow models serve -m models:/heara-<task>/<version>
          --env-manager local` (uvicorn, one worker). POST /invocations
          {"dataframe_records": [{"text": text}]}: the pyfunc reads the `text` column.

The load (training/bench/wrk.py): wrk, closed loop at `concurrency` connections over `client_threads`
threads; one text per request from a pool of distinct Korean utterances (training/bench/pool.py), no
text sent twice in one server's run (warm-up included) until the pool is used up. Per server: wait
for readiness and for the answer to one first request (some servers finish loading on it), a warm-up
run of `warmup_s` (not in the figures), the measured run of `duration_s` whole seconds. Meanwhile the
server's process-tree RSS is sampled every second, and the CPU seconds of the server's process tree
and of wrk are taken over the measured run (on a small machine the client takes CPU from the server:
compare client_cpu_s with server_cpu_s).

The result, printed as one JSON object on the last line: for each server that ran, keys with its
prefix (`heara_`, `flask_`, `mlflow_`):
  rps                 2xx answers per second of the measured run
  p50_ms, p99_ms      wrk's latency percentiles over every answer of the measured run
  requests            answers received in the measured run
  errors              non-2xx answers plus requests without an answer (socket errors, timeouts)
  errors_5xx          the 5xx answers among them
  warmup_errors       errors of the warm-up run (not in `errors`)
  client_cpu_s        CPU seconds of wrk (user + system) in the measured run
  server_cpu_s        CPU seconds of the server's process tree in the measured run
  memory_mb_ready     RSS of the process tree once ready (first request answered); memory_mb_start,
                      _end, _max: over the measured run; memory_growth_pct: end against start
heara_ also has device, dtype and model_version (GET /model) and the prediction-log check:
heara_requests_ok (2xx answers, first request and warm-up included), heara_requests_sent,
heara_prediction_log_rows (and _requests: distinct request ids) and heara_prediction_log_complete:
ok <= rows <= sent (every answered request is logged; a request in flight when wrk stops may be
answered and logged after wrk stopped counting, so rows can exceed ok). With several durabilities
Heara's keys are `heara_async_...` and `heara_durable_...` instead.
Top level: benchmark, peers, model_size, task, model_version, device (Heara's; null without it),
concurrency, client_threads, duration_s, warmup_s, topology, cpu_runtime, predlog_durability (the list
run), pool_size, cpus, and ratio_vs_flask = heara_rps / flask_rps, ratio_vs_mlflow = heara_rps /
mlflow_rps (null unless both ran; null with several durabilities), durable_vs_async_rps =
heara_durable_rps / heara_async_rps (null unless both ran).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.bench.pool import DEFAULT_SIZE, build_pool, write_bodies
from training.bench.wrk import WrkResult, require_wrk, run_wrk
from training.config import Params
from training.errors import ConfigError
from training.paths import PROJECT_ROOT, StatePaths

PEERS = ("heara", "flask", "mlflow")
# What each peer is sent: its path and the JSON body carrying one text.
REQUESTS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "heara": ("/classify", lambda text: {"texts": [text]}),
    "flask": ("/classify", lambda text: {"texts": [text]}),
    "mlflow": ("/invocations", lambda text: {"dataframe_records": [{"text": text}]}),
}
READY_TIMEOUT_S = 300
PRIME_TEXT = "안녕하세요, 잘 들리세요?"  # the first request's text (not in the pool, not counted)
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
    ready_path: str = "/readyz"  # GET answers 200 once the model is loaded

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""


def _clean_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in (
        "HEARA_MODEL_DIR",
        "HEARA_API_KEY",
        "HEARA_METRICS_TOKEN",
        "HEARA_PREDICTION_DB",
        "MLFLOW_TRACKING_URI",
    ):
        env.pop(key, None)
    env.update({"HEARA_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True", "MLFLOW_DISABLE_TELEMETRY": "true"})
    return env


def _spawn(
    name: str, argv: list[str], env: dict[str, str], home: Path, port: int, ready_path: str = "/readyz"
) -> Server:
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, port, proc, home, log_path, ready_path)


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


def start_mlflow_server(model_uri: str, tracking_uri: str, home: Path) -> Server:
    """MLflow's scoring server (`mlflow models serve --env-manager local`: this environment, no
    virtualenv) for a registered version of the store at `tracking_uri`, on a free port."""
    from training.cli.serve import mlflow_command

    port = free_port()
    argv = [*mlflow_command(), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    env = _clean_env(home)
    # It starts `uvicorn` through a shell: this environment's bin folder first finds the right one.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return _spawn("mlflow", argv, env, home, port, ready_path="/ping")


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
            if _get(f"{server.url}{server.ready_path}", timeout=3)[0] == 200:
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


# --- memory and CPU -------------------------------------------------------------------------------


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
        """Start (first sample at or after `since`, the end of the warm-up), end, maximum and growth."""
        window = [mb for t, mb in self.samples if t >= since] or [mb for _, mb in self.samples]
        start, end = window[0], window[-1]
        return {
            "memory_mb_start": round(start, 1),
            "memory_mb_end": round(end, 1),
            "memory_mb_max": round(max(window), 1),
            "memory_growth_pct": round((end - start) / start * 100, 2) if start else None,
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


@dataclass(frozen=True)
class Load:
    """What every server's run shares: the closed loop and its warm-up."""

    concurrency: int
    client_threads: int
    duration_s: int
    warmup_s: int


def _post(url: str, path: str, body: Any, timeout: float) -> tuple[int, bytes]:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = json.dumps(body, ensure_ascii=False).encode()
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _prime(server: Server, peer: str) -> None:
    """One request, answered, before any load: a server may build part of its model on the first
    prediction rather than at start-up (MLflow's scoring server loads the preprocessing, Kiwi, then:
    about 5 s here), which is start-up, not serving. The text is outside the pool and not counted."""
    path, body = REQUESTS[peer]
    try:
        status, answer = _post(server.url, path, body(PRIME_TEXT), timeout=READY_TIMEOUT_S)
    except (OSError, http.client.HTTPException) as exc:
        raise RuntimeError(f"{server.name}: the first request failed: {exc}\n{server.log_tail()}") from None
    if not 200 <= status < 300:
        raise RuntimeError(
            f"{server.name}: the first request got {status}: {answer[:300]!r}\n{server.log_tail()}"
        )


def _measure(server: Server, peer: str, bodies: Path, load: Load) -> dict[str, Any]:
    """Readiness, a first request, the warm-up, then the measured run: the server's figures
    (unprefixed) and, under "_ok_total"/"_sent_total", 2xx answers and requests sent over both runs."""
    wait_ready(server)
    _prime(server, peer)
    ready_mb = tree_rss_mb(server.proc.pid)
    sampler = MemorySampler(server.proc.pid)
    sampler.start()
    try:
        run = {
            "url": server.url,
            "path": REQUESTS[peer][0],
            "bodies": bodies,
            "concurrency": load.concurrency,
            "threads": load.client_threads,
            "timeout_s": REQUEST_TIMEOUT_S,
        }
        warm: WrkResult | None = None
        if load.warmup_s > 0:
            warm = run_wrk(**run, duration_s=load.warmup_s)
        window_start, cpu_before = time.monotonic(), tree_cpu_s(server.proc.pid)
        measured = run_wrk(**run, duration_s=load.duration_s, start=warm.next_start if warm else 0)
        server_cpu = tree_cpu_s(server.proc.pid) - cpu_before
    finally:
        sampler.stop()
    return {
        "rps": round(measured.rps, 2),
        "p50_ms": measured.p50_ms,
        "p99_ms": measured.p99_ms,
        "requests": measured.requests,
        "errors": measured.errors,
        "errors_5xx": measured.status_5xx,
        "warmup_errors": warm.errors if warm else 0,
        "client_cpu_s": measured.client_cpu_s,
        "server_cpu_s": round(server_cpu, 2),
        "memory_mb_ready": round(ready_mb, 1),
        **sampler.summary(window_start),
        # the first request (_prime) is one more answered request
        "_ok_total": 1 + measured.ok + (warm.ok if warm else 0),
        "_sent_total": 1 + measured.sent + (warm.sent if warm else 0),
    }


def _run_heara(server: Server, bodies: Path, load: Load) -> dict[str, Any]:
    try:
        out = _measure(server, "heara", bodies, load)
        info: dict[str, Any] = {}
        with suppress(OSError, http.client.HTTPException, ValueError):
            status, body = _get(f"{server.url}/model", timeout=10)
            info = json.loads(body) if status == 200 else {}
        ok, sent = out.pop("_ok_total"), out.pop("_sent_total")
        rows, logged_requests = count_prediction_log(StatePaths(server.home).prediction_log, ok)
    finally:
        stop(server)
    return {
        **out,
        "device": info.get("device"),
        "dtype": info.get("dtype"),
        "model_version": info.get("version"),
        "requests_ok": ok,
        "requests_sent": sent,
        "prediction_log_rows": rows,
        "prediction_log_requests": logged_requests,
        "prediction_log_complete": ok <= rows <= sent,
    }


def _run_peer(server: Server, peer: str, bodies: Path, load: Load) -> dict[str, Any]:
    try:
        out = _measure(server, peer, bodies, load)
    finally:
        stop(server)
    return {k: v for k, v in out.items() if not k.startswith("_")}


def parse_peers(peers: str | Sequence[str]) -> tuple[str, ...]:
    """`"heara,flask"` or `["heara", "flask"]` -> ("heara", "flask"); ConfigError for an unknown name."""
    names = [p.strip() for p in (peers.split(",") if isinstance(peers, str) else peers) if p.strip()]
    unknown = [p for p in names if p not in PEERS]
    if unknown or not names:
        raise ConfigError(f"--peers {','.join(names) or '(none)'}: choose among {', '.join(PEERS)}")
    return tuple(dict.fromkeys(names))


def _ratio(out: dict[str, Any], a: str, b: str) -> float | None:
    """out[a] / out[b], rounded; None unless both ran."""
    x, y = out.get(a), out.get(b)
    return round(x / y, 3) if x is not None and y else None


def _write_params(path: Path, task: str, serve: dict[str, str]) -> Path:
    """The params the service reads (HEARA_PARAMS): the current ones with the task and the serving
    choices (`serve` keys) set."""
    from training.config import load_params

    p = load_params(overrides={"task": task, "serve": serve})
    return p.save(path, "Written by `heara bench serve`: the params its Heara service runs with.")


def parse_durabilities(value: str | Sequence[str] | None, default: str) -> tuple[str, ...]:
    """`"async,durable"` or `["async", "durable"]` -> ("async", "durable"); None -> (default,).
    Each is validated as params.yaml's `serve.predlog_durability` is (ConfigError otherwise)."""
    from training.config import load_params

    if value is None:
        return (default,)
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not names:
        raise ConfigError("--predlog-durability: give async, durable or async,durable")
    for name in names:
        load_params(overrides={"serve": {"predlog_durability": name}})
    return tuple(dict.fromkeys(names))


def int8_change(folder: Path, params: Params) -> dict[str, Any]:
    """What int8 does to this model's macro-F1 on the frozen test split, as `heara evaluate` measures it.

    A champion's folder carries its run's figures (registry.json); otherwise (the base-size model, a
    bare folder) the fp32 and int8 models are scored here on the test split of `$HEARA_HOME` (`make
    demo`'s), or on the project's sample data when there is none. The figures are registered with the
    version, so the service may serve int8 (it refuses an unmeasured model, serving.inference)."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import f1_score

    from training.bench.pool import SAMPLE
    from training.evaluation.quantization import INT8_AGREEMENT, int8_labels, int8_metrics
    from training.model.onnx_runtime import INT8_MACRO_F1, INT8_MACRO_F1_DROP
    from training.model.predictor import Predictor
    from training.registry.champion import from_dir
    from training.steps.workspace import DataFiles

    known = from_dir(folder).metrics
    if INT8_MACRO_F1_DROP in known and "test_macro_f1" in known:
        keys = ("test_macro_f1", INT8_MACRO_F1, INT8_MACRO_F1_DROP, INT8_AGREEMENT)
        return {
            "split": "the run's frozen test split (heara evaluate)",
            **{k: known[k] for k in keys if k in known},
        }
    files = DataFiles.default()
    if files.test.exists():
        test, split = pd.read_parquet(files.test), str(files.test)
    else:
        test, split = pd.read_csv(SAMPLE), str(SAMPLE)
    predictor = Predictor.load(folder, device="cpu")
    test = test[test["label"].isin(predictor.labels)]
    texts, labels = test["text"].tolist(), np.asarray(predictor.labels, dtype=str)
    fp32 = labels[predictor.predict_proba(texts).argmax(axis=1)]
    int8 = int8_labels(predictor, folder, texts)
    fp32_f1 = float(f1_score(test["label"], fp32, average="macro", zero_division=0))
    out = {"test_macro_f1": fp32_f1, **int8_metrics(test["label"].tolist(), fp32, int8, fp32_f1)}
    return {"split": split, "test_rows": len(texts), **{k: round(v, 4) for k, v in out.items()}}


def bench_serve(
    model_dir: Path | None = None,
    *,
    model_size: str = "tiny",
    peers: str | Sequence[str] = PEERS,
    concurrency: int = 32,
    duration_s: int = 20,
    warmup_s: int = 3,
    client_threads: int = 2,
    topology: str | None = None,
    cpu_runtime: str | None = None,
    predlog_durability: str | Sequence[str] | None = None,
    pool_size: int = DEFAULT_SIZE,
) -> dict[str, Any]:
    """Run the peers one after the other on one registered version; the result described above.

    topology and cpu_runtime: None takes params.yaml's `serve.topology` / `serve.cpu_runtime`.
    predlog_durability: one or several (Heara runs once per durability); None: params.yaml's.
    Raises NotFoundError when wrk is missing, ConfigError for a bad option, before starting anything.
    """
    from training.bench.models import serving_model
    from training.config import load_params
    from training.model.predictor import META_FILE
    from training.registry.aliases import model_name, register_folder

    require_wrk()
    peers = parse_peers(peers)
    if concurrency < 1 or duration_s < 1 or warmup_s < 0 or client_threads < 1:
        raise ConfigError("concurrency, duration and client threads must be >= 1, warm-up >= 0")
    params = load_params()
    # Validated as params.yaml's values are (ServeConfig), before anything starts.
    serve = load_params(
        overrides={
            "serve": {
                "topology": topology or params.serve.topology,
                "cpu_runtime": cpu_runtime or params.serve.cpu_runtime,
            }
        }
    ).serve
    durabilities = parse_durabilities(predlog_durability, params.serve.predlog_durability)
    folder = serving_model(model_size, model_dir, params)
    task = json.loads((folder / META_FILE).read_text(encoding="utf-8"))["task"]
    load = Load(concurrency, client_threads, duration_s, warmup_s)
    root = Path(tempfile.mkdtemp(prefix="heara-bench-serve-"))
    try:
        tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        quantization = int8_change(folder, params) if serve.cpu_runtime == "onnx" else {}
        metrics = {k: v for k, v in quantization.items() if isinstance(v, float)}
        version, _ = register_folder(folder, tracking_uri, root / "mlflow-artifacts", metrics=metrics)
        texts = build_pool(pool_size)
        out: dict[str, Any] = {}
        for peer in peers:
            bodies = write_bodies(texts, root / f"{peer}.jsonl", REQUESTS[peer][1])
            if peer == "heara":
                for durability in durabilities:
                    choices = {
                        "topology": serve.topology,
                        "cpu_runtime": serve.cpu_runtime,
                        "predlog_durability": durability,
                    }
                    params_file = _write_params(root / f"params.{durability}.yaml", task, choices)
                    env = {"MLFLOW_TRACKING_URI": tracking_uri, "HEARA_PARAMS": str(params_file)}
                    figures = _run_heara(start_service(None, root / f"heara-{durability}", env), bodies, load)
                    prefix = "heara" if len(durabilities) == 1 else f"heara_{durability}"
                    out |= {f"{prefix}_{key}": value for key, value in figures.items()}
                continue
            if peer == "flask":
                figures = _run_peer(start_flask_reference(folder, root / "flask"), peer, bodies, load)
            else:
                uri = f"models:/{model_name(task)}/{version}"
                server = start_mlflow_server(uri, tracking_uri, root / "mlflow-server")
                figures = _run_peer(server, peer, bodies, load)
            out |= {f"{peer}_{key}": value for key, value in figures.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "benchmark": "serve",
        "peers": list(peers),
        "model_size": model_size,
        "task": task,
        "model_version": version,
        "device": out.get("heara_device"),
        "concurrency": concurrency,
        "client_threads": min(client_threads, concurrency),
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "topology": serve.topology,
        "cpu_runtime": serve.cpu_runtime,
        "predlog_durability": list(durabilities),
        "pool_size": pool_size,
        "cpus": os.cpu_count(),
        "quantization": quantization,
        **out,
        "ratio_vs_flask": _ratio(out, "heara_rps", "flask_rps"),
        "ratio_vs_mlflow": _ratio(out, "heara_rps", "mlflow_rps"),
        "durable_vs_async_rps": _ratio(out, "heara_durable_rps", "heara_async_rps"),
    }
