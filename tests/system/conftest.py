"""Two real `bentoml serve` subprocesses on free ports, tiny models, shared by every test module
here that talks to the service over HTTP (test_service_http.py, test_try_page.py): starting them is
the slow part (importing torch in each process).

Server A serves a model folder (HEARA_MODEL_DIR) with an API key and a metrics token set; server
B has no key and loads the champion from a throw-away MLflow registry (SQLite). Both start together
and are stopped as process groups (training.bench.serve: SIGTERM, then SIGKILL after a grace period).

The pair is parametrized by `serve.topology` (a params file per topology, HEARA_PARAMS): every HTTP
test runs against `single` and against `split`. pytest finishes one topology's tests, stops its
servers, then starts the other's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chromium import chromium
from live_service import API_KEY, METRICS_TOKEN, register_champion

from training.bench.serve import Server, start_service, stop, wait_ready
from training.config import load_params

READY_TIMEOUT_S = 240


TOPOLOGIES = ("single", "split")


@pytest.fixture(scope="session", params=TOPOLOGIES)
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model_factory
) -> Iterator[tuple[Server, Server, dict]]:
    topology = request.param
    root = tmp_path_factory.mktemp(f"http-{topology}")
    # Short slow-client limits, so that the probe tests (test_service_probe.py) wait seconds, not minutes.
    serve = {"topology": topology, "header_timeout_s": 3, "body_timeout_s": 3}
    params_file = load_params(overrides={"serve": serve}).save(root / "params.yaml")
    model_dir = tiny_model_factory(root / "model", reference=True)  # logs monitoring features when served
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:  # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI
        mp.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        version, run_id = register_champion(model_dir, tracking_uri, root / "mlflow-artifacts")
    a = start_service(
        model_dir,
        root / "home-a",
        {"HEARA_API_KEY": API_KEY, "HEARA_METRICS_TOKEN": METRICS_TOKEN, "HEARA_PARAMS": str(params_file)},
    )
    b = start_service(
        None, root / "home-b", {"MLFLOW_TRACKING_URI": tracking_uri, "HEARA_PARAMS": str(params_file)}
    )
    try:
        for s in (a, b):
            try:
                wait_ready(s, READY_TIMEOUT_S)
            except (RuntimeError, TimeoutError) as exc:  # exited, or never ready: the reason and its log
                pytest.fail(str(exc))
        yield (
            a,
            b,
            {
                "version": version,
                "run_id": run_id,
                "model_dir": model_dir,
                "tracking_uri": tracking_uri,
                "topology": topology,
            },
        )
    finally:
        stop(a, b)


@pytest.fixture(scope="session")
def server(servers) -> Server:
    """Server A: a model folder, API key `live_service.API_KEY`."""
    return servers[0]


@pytest.fixture(scope="session")
def topology(servers) -> str:
    """The `serve.topology` of the servers under test."""
    return servers[2]["topology"]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Chromium (chromium.py) for one module's page tests, closed when the module ends: Playwright's
    sync API keeps an asyncio event loop running in this thread while it is open, and asyncio.run, which
    later modules on the same xdist worker call (test_limiter.py, test_batcher.py), refuses to start
    under one."""
    with chromium() as b:
        yield b
