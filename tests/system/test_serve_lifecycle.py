"""`heara serve` as an operator runs it, in both topologies: ready, then stopped by SIGTERM (what
Docker, Kubernetes and systemd send) within seconds, leaving no process and no instance folder behind;
and two instances on one HEARA_HOME (issue #15, findings 4 and 7): the process manager reachable only
through a private Unix socket, no process's environment or options holding the API key, each
instance's /metrics counting only its own predictions, and a SIGKILL of one instance's process group
taking its workers with it.

Requests in flight get `serve.shutdown_grace_s` (3 s) to finish. Before that setting the split
topology's front worker took 21-29 s to exit: a /readyz that hung while the model loaded held
uvicorn's graceful shutdown until the request timeout. The bound asserted here (15 s) is far below
that and loose enough for a loaded CI machine; the measured times are in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from live_service import API_KEY, AUTH

from training.bench.serve import Server, free_port, stop, wait_ready
from training.config import load_params
from training.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow
STOP_BOUND_S = 15


def _start_heara_serve(home: Path, params: Path, model_dir: Path, log_name: str, extra: dict) -> Server:
    """`heara serve` as an operator starts it, in a session of its own, on a free port: this
    environment without its keys, plus `extra`."""
    port = free_port()
    env = {
        **os.environ,
        "HEARA_HOME": str(home),
        "HEARA_MODEL_DIR": str(model_dir),
        "HEARA_PARAMS": str(params),
    }
    for name in ("HEARA_API_KEY", "HEARA_API_KEY_FILE", "HEARA_METRICS_TOKEN", "HEARA_METRICS_TOKEN_FILE"):
        env.pop(name, None)
    env.update(extra)
    log_path = home.parent / f"{log_name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "training.cli", "serve", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(log_name, port, proc, home, log_path)


def _classify(server: Server, n: int, headers: dict | None = None) -> None:
    for i in range(n):
        r = httpx.post(f"{server.url}/classify", json={"texts": [f"문장 {i}"]}, headers=headers, timeout=30)
        assert r.status_code == 200, r.text


def _predictions_counted(server: Server) -> float:
    """The sum of heara_predictions_total over its labels, from the server's /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("heara_predictions_total{")
    )


def _instance_folder(server: Server) -> Path:
    (folder,) = (server.home / "serving" / "instances").glob(f"{server.proc.pid}-*")
    return folder


@pytest.mark.timeout(400)
@pytest.mark.parametrize("topology", ["single", pytest.param("split", marks=pytest.mark.heavy)])
def test_sigterm_stops_heara_serve_quickly(topology: str, tmp_path: Path, tiny_model_factory) -> None:
    model_dir = tiny_model_factory(tmp_path / "model")
    params = load_params(overrides={"serve": {"topology": topology}}).save(tmp_path / "params.yaml")
    server = _start_heara_serve(tmp_path / "home", params, model_dir, "serve", {})
    proc = server.proc
    try:
        wait_ready(server, 240)
        sockets = Path((_instance_folder(server) / "control").read_text().strip())
        family = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
        assert len(family) >= (3 if topology == "split" else 2), family  # arbiter + worker(s)
        start = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)  # to `heara serve` only, as a container runtime does
        proc.wait(timeout=60)
        took = time.monotonic() - start
        time.sleep(0.5)
        left = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    finally:
        stop(server)
    assert took < STOP_BOUND_S, f"{topology}: {took:.1f} s after SIGTERM\n{server.log_tail()}"
    assert proc.returncode == 0 and not left, (proc.returncode, left, server.log_tail())
    # Its instance folder (metrics files) and the folder of its control sockets went with it.
    assert list((tmp_path / "home" / "serving" / "instances").iterdir()) == [] and not sockets.exists()


# --- two instances on one HEARA_HOME: the private process manager, the key, metrics, SIGKILL ------------

A_TEXTS = 3  # texts A classifies before B starts; B then classifies B_TEXTS
B_TEXTS = 5


# Two servers start per topology (about 90 s each pair on 2 cores): CI's heavy step (make test-heavy).
@pytest.fixture(
    scope="module",
    params=[pytest.param("single", marks=pytest.mark.heavy), pytest.param("split", marks=pytest.mark.heavy)],
)
def pair(request, tmp_path_factory, tiny_model_factory) -> Iterator[tuple[Server, Server]]:
    """Two `heara serve` on one HEARA_HOME: A with an API key, which classifies A_TEXTS texts before B
    (no key) starts."""
    root = tmp_path_factory.mktemp(f"pair-{request.param}")
    params = load_params(overrides={"serve": {"topology": request.param}}).save(root / "params.yaml")
    model_dir = tiny_model_factory(root / "model")
    home = root / "home"
    a = _start_heara_serve(home, params, model_dir, "a", {"HEARA_API_KEY": API_KEY})
    b = None
    try:
        wait_ready(a, 240)
        _classify(a, A_TEXTS, AUTH)
        b = _start_heara_serve(home, params, model_dir, "b", {})
        wait_ready(b, 240)
        yield a, b
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(str(exc))
    finally:
        stop(*(s for s in (a, b) if s is not None))


@pytest.mark.timeout(900)
def test_the_process_manager_listens_on_no_tcp_port_and_no_process_holds_the_key(pair) -> None:
    from circus.client import CircusClient

    a, _ = pair
    supervisor = psutil.Process(a.proc.pid)  # `heara serve` became the supervisor (same pid)
    workers = supervisor.children()
    listening = {c.laddr.port for c in supervisor.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert listening == {a.port}, f"the supervisor listens on TCP {listening}, expected only {a.port}"

    folder = _instance_folder(a)
    sockets = Path((folder / "control").read_text().strip())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(sockets.stat().st_mode) == 0o700
    client = CircusClient(endpoint=f"ipc://{sockets / 'control.sock'}", timeout=10)
    try:
        watchers = client.call({"command": "list", "properties": {}})["watchers"]
        options = {
            w: client.call({"command": "options", "properties": {"name": w}})["options"] for w in watchers
        }
    finally:
        client.stop()
    assert len(options) == len(workers) >= 1, (options.keys(), workers)
    for name, opts in options.items():
        assert API_KEY not in json.dumps(opts), f"watcher {name}'s options hold the key"
        assert "HEARA_API_KEY" not in opts["env"] and opts["env"]["HEARA_SUPERVISOR_PID"] == str(
            supervisor.pid
        )
        key_file = Path(opts["env"]["HEARA_API_KEY_FILE"])
        assert key_file.parent == folder and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for process in (supervisor, *workers):  # the environments the processes were started with
        assert API_KEY not in Path(f"/proc/{process.pid}/environ").read_bytes().decode(errors="replace")

    # The key still guards the service.
    body = {"texts": ["안녕하세요"]}
    assert httpx.post(f"{a.url}/classify", json=body, timeout=30).status_code == 401
    assert httpx.post(f"{a.url}/classify", json=body, headers=AUTH, timeout=30).status_code == 200


@pytest.mark.timeout(900)
def test_each_instance_counts_only_its_own_predictions(pair) -> None:
    a, b = pair
    before = _predictions_counted(a)
    _classify(b, B_TEXTS)
    assert _predictions_counted(b) == B_TEXTS
    assert _predictions_counted(a) == before >= A_TEXTS  # B's start did not wipe A's files
    assert _instance_folder(a) != _instance_folder(b)
    assert (
        list((_instance_folder(a) / "metrics").glob("*.db"))
        and not (a.home / "bentoml" / "prometheus_multiproc_dir").exists()
    )


@pytest.mark.timeout(900)
def test_sigkill_of_heara_serve_leaves_no_worker_behind(pair) -> None:
    a, b = pair
    family = psutil.Process(a.proc.pid).children(recursive=True)
    assert family
    left_folder = _instance_folder(a)
    os.killpg(a.proc.pid, signal.SIGKILL)  # the supervisor's group; each worker has a session of its own
    a.proc.wait(timeout=10)
    gone, alive = psutil.wait_procs(family, timeout=STOP_BOUND_S)
    assert not alive, f"workers outlived their supervisor: {alive}\n{a.log_tail()}"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{a.url}/readyz", timeout=3)
    assert httpx.get(f"{b.url}/readyz", timeout=10).status_code == 200  # the other instance is untouched

    # The next start removes the folder the killed one left (with its key file); this one is refused
    # for a key file others may read, after that clean-up.
    assert (left_folder / "api-key").exists()
    bad_key = a.home.parent / "world-readable-key"
    bad_key.write_text("k\n")
    bad_key.chmod(0o644)
    refused = subprocess.run(
        [sys.executable, "-m", "serving.supervisor", "serve", "serving.service:HearaService"],
        env={**os.environ, "HEARA_HOME": str(a.home), "HEARA_API_KEY_FILE": str(bad_key)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "may be read or written by group or others" in refused.stderr
    assert not left_folder.exists() and _instance_folder(b).exists()
