"""The real `bentoml serve` answering from the GPU: a tiny model folder of the `danger` task that
params.yaml serves (its labels hold serve.danger_labels), served through HEARA_MODEL_DIR as `heara serve`
serves it (training.bench.serve.start_service, as tests/system/conftest.py does); GET /model must report
the device `cuda` in bf16 and POST /classify must answer 200.

One server for the module, stopped as a process group whatever happens. The model's preprocessing has
no Kiwi spacing, so that this check needs no package on the GPU machine beyond what serving imports.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from training.bench.serve import Server, start_service, stop, wait_ready

pytestmark = pytest.mark.slow  # a live server (started in ~10-30 s)

READY_TIMEOUT_S = 240
TEXTS = ["할머니 괜찮으세요? 도와주세요", "오늘 날씨가 좋네요", "여기가 어디지? 집에 어떻게 가는지 모르겠어"]


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("gpu-service")
    server = start_service(tiny_model_factory(root / "model", spacing="none"), root / "home")
    try:
        try:
            wait_ready(server, READY_TIMEOUT_S)
        except (RuntimeError, TimeoutError) as exc:  # exited, or never ready: the reason and its log
            pytest.fail(str(exc))
        yield server
    finally:
        stop(server)


def test_model_is_served_from_cuda_in_bf16(gpu_server: Server) -> None:
    r = httpx.get(f"{gpu_server.url}/model", timeout=10)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["device"] == "cuda" and info["dtype"] == "bfloat16", info


def test_classify_answers_from_the_gpu(gpu_server: Server) -> None:
    r = httpx.post(f"{gpu_server.url}/classify", json={"texts": TEXTS}, timeout=60)
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    labels = set(httpx.get(f"{gpu_server.url}/model", timeout=10).json()["labels"])
    assert len(predictions) == len(TEXTS) and {p["label"] for p in predictions} <= labels
    assert all(0 <= p["score"] <= 1 and abs(sum(p["scores"].values()) - 1) < 1e-3 for p in predictions)
