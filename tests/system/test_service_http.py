"""The service over real HTTP: `bentoml serve` subprocesses on free ports, tiny models, in both
topologies (`serve.topology` single and split: the `servers` fixture is parametrized).

The servers come from tests/system/conftest.py (started once per session): server A serves a model
folder with an API key; server B has no key and loads the champion from a throw-away MLflow
registry. The tests share server A and run in file order: the prediction-log and no-5xx checks
look at what the earlier tests sent.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from live_service import API_KEY, AUTH, LABELS, METRICS_AUTH

from training.bench.serve import Server
from training.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow
SAMPLE = PROJECT_ROOT / "data" / "sample" / "utterances.csv"
CUSTOM_METRICS = (
    "heara_predictions_total",
    "heara_prediction_confidence_bucket",
    "heara_batch_texts_bucket",
    "heara_prediction_log_dropped_total",
    "heara_prediction_log_failed_total",
    "heara_prediction_log_refused_total",
)


def classify(server: Server, body, **kw) -> httpx.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body, ensure_ascii=False)
    headers = {"Content-Type": "application/json", **AUTH, **kw.pop("headers", {})}
    return httpx.post(f"{server.url}/classify", content=content, headers=headers, timeout=30, **kw)


def metric_values(server: Server, name: str) -> dict[str, float]:
    """{label set: value} of every sample of `name` on /metrics."""
    text = httpx.get(f"{server.url}/metrics", headers=METRICS_AUTH, timeout=10).text
    out = {}
    for m in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.MULTILINE):
        out[m.group(1) or ""] = out.get(m.group(1) or "", 0.0) + float(m.group(2))
    return out


def batches_over_one(server: Server, name: str, label_filter: str = "") -> float:
    """How many observations of histogram `name` were above 1 (count minus the le=1 bucket)."""
    count = sum(v for k, v in metric_values(server, f"{name}_count").items() if label_filter in k)
    le1 = sum(
        v for k, v in metric_values(server, f"{name}_bucket").items() if 'le="1.0"' in k and label_filter in k
    )
    return count - le1


HAPPY_ID = "0af7651916cd43dd8448eb211c80319c"  # callers' ids are kept when they are UUIDs or hex


def burst_id(i: int) -> str:
    return f"b{i:015x}"


# --- happy path -----------------------------------------------------------------------------------


def test_classify_happy_path(server: Server) -> None:
    texts = ["할머니가 쓰러지셨어요 도와주세요", "오늘 점심 맛있었어요", "여기가 어디야 집에 갈래"]
    r = classify(server, {"texts": texts}, headers={"X-Request-ID": HAPPY_ID})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == HAPPY_ID == r.headers["x-request-id"]
    assert len(body["predictions"]) == 3
    for p in body["predictions"]:
        assert p["label"] in LABELS and set(p["scores"]) == set(LABELS)
        assert p["score"] == pytest.approx(max(p["scores"].values()))
        assert isinstance(p["danger"], bool) and p["model_version"] == "local"


def test_classify_top_k(server: Server) -> None:
    """`top_k` comes back as `top` per text, in both topologies (the front computes it from the scores the
    inference service returned), with the other fields unchanged."""
    texts = ["할머니가 쓰러지셨어요 도와주세요", "오늘 점심 맛있었어요"]
    r = classify(server, {"texts": texts, "top_k": 3})
    assert r.status_code == 200, r.text
    for p in r.json()["predictions"]:
        assert [t["label"] for t in p["top"]] == sorted(p["scores"], key=lambda lab: -p["scores"][lab])[:3]
        assert p["top"][0] == {"label": p["label"], "score": p["score"]}
        assert set(p) == {"label", "score", "scores", "danger", "model_version", "top"}
    plain = classify(server, {"texts": texts}).json()["predictions"]
    assert all("top" not in p for p in plain)


def test_model_endpoint(server: Server, topology: str) -> None:
    r = httpx.get(f"{server.url}/model", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["name"] == "heara-danger" and info["labels"] == LABELS and info["version"] is None
    assert info["danger_labels"] == ["emergency", "distress"] and info["device"] in ("cpu", "cuda")
    assert info["topology"] == topology and info["runtime"]


def test_recent_limit_is_checked_like_every_other_input(server: Server) -> None:
    for bad in ("0", "-3", "many"):
        r = httpx.get(f"{server.url}/recent", params={"limit": bad}, headers=AUTH, timeout=10)
        assert r.status_code == 400 and "limit" in r.json()["error"], (bad, r.status_code, r.text[:200])
    r = httpx.get(f"{server.url}/recent", params={"limit": 2}, headers=AUTH, timeout=10)
    assert r.status_code == 200 and len(r.json()["predictions"]) <= 2


def test_docs_and_probes_are_open(server: Server) -> None:
    for path in ("/healthz", "/readyz", "/docs.json", "/"):
        assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 200, path
    spec = httpx.get(f"{server.url}/docs.json", timeout=10).json()
    assert "/classify" in spec["paths"] and "/model" in spec["paths"]


# --- bad input: always a 4xx that names the problem, never a 5xx -------------------------------------


def detail(r: httpx.Response) -> tuple[list, str, str]:
    d = r.json()["detail"][0]
    return d["loc"], d["type"], d["msg"]


@pytest.mark.parametrize(
    "case, body, loc, kind, words",
    [
        ("empty list", {"texts": []}, ["texts"], "too_short", "at least 1 item"),
        (
            "empty string",
            {"texts": ["괜찮아요", ""]},
            ["texts", 1],
            "string_too_short",
            "at least 1 character",
        ),
        ("blank string", {"texts": ["   "]}, ["texts", 0], "value_error", "blank"),
        (
            "invisible text",  # the model would see an empty string
            {"texts": ["괜찮아요", "\u200b\u00ad\u0001"]},
            ["texts", 1],
            "value_error",
            "no visible characters",
        ),
        ("10,000 texts", {"texts": ["짧은 문장"] * 10_000}, ["texts"], "too_long", "at most 64 items"),
        (
            "text over max_chars",
            {"texts": ["가" * 501]},
            ["texts", 0],
            "string_too_long",
            "at most 500 characters",
        ),
        ("number instead of string", {"texts": ["ok", 42]}, ["texts", 1], "string_type", "valid string"),
        ("string instead of list", {"texts": "도와주세요"}, ["texts"], "list_type", "valid array"),
        ("null", {"texts": None}, ["texts"], "list_type", "valid array"),
        ("missing key", {"text": ["도와주세요"]}, ["texts"], "missing", "Field required"),
        (
            "unknown key",
            {"texts": ["도와주세요"], "lang": "ko"},
            ["lang"],
            "extra_forbidden",
            "not permitted",
        ),
        ("not an object", '["도와주세요"]', [], "model_type", "object"),
        (
            "top_k over serve.max_top_k",
            {"texts": ["괜찮아요"], "top_k": 11},
            ["top_k"],
            "less_than_equal",
            "10",
        ),
        ("top_k below 1", {"texts": ["괜찮아요"], "top_k": 0}, ["top_k"], "greater_than_equal", "1"),
        ("top_k a string", {"texts": ["괜찮아요"], "top_k": "3"}, ["top_k"], "int_type", "valid integer"),
    ],
)
def test_bad_input_is_400_naming_the_problem(server: Server, case, body, loc, kind, words) -> None:
    r = classify(server, body)
    assert r.status_code == 400, (case, r.status_code, r.text[:300])
    assert detail(r)[:2] == (loc, kind) and words in detail(r)[2], (case, r.text[:300])
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "body, words",
    [
        ('{"texts": ["도와주세요"', "not valid JSON: Expecting ',' delimiter at line 1 column 19"),
        ("", "not valid JSON: Expecting value at line 1 column 1"),
    ],
)
def test_invalid_json_is_400_saying_where(server: Server, body: str, words: str) -> None:
    r = classify(server, body)
    assert r.status_code == 400 and words in r.json()["error"], r.text[:300]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
)
def test_not_json_is_415(server: Server, content_type: str) -> None:
    r = classify(server, '{"texts": ["도와주세요"]}', headers={"Content-Type": content_type})
    assert r.status_code == 415 and "application/json" in r.json()["error"], r.text[:300]


def test_one_megabyte_text_is_413_unread(server: Server) -> None:
    r = classify(server, {"texts": ["a" * 1_000_000]})
    assert r.status_code == 413 and "over the limit" in r.json()["error"], r.text[:300]
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "headers, words",
    [
        ({"Authorization": "Bearer wrong-key"}, "wrong API key"),
        ({"Authorization": API_KEY}, "wrong API key"),  # no "Bearer"
        ({"Authorization": ""}, "wrong API key"),
    ],
)
def test_wrong_api_key_is_401(server: Server, headers: dict, words: str) -> None:
    r = httpx.post(f"{server.url}/classify", json={"texts": ["도와주세요"]}, headers=headers, timeout=10)
    assert r.status_code == 401 and words in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"


def test_missing_api_key_is_401(server: Server) -> None:
    for method, path in (("POST", "/classify"), ("GET", "/model")):
        r = httpx.request(method, f"{server.url}{path}", json={"texts": ["x"]}, timeout=10)
        assert r.status_code == 401 and "missing API key" in r.json()["error"], (path, r.text)


def test_wrong_method_is_405(server: Server) -> None:
    assert httpx.get(f"{server.url}/classify", headers=AUTH, timeout=10).status_code == 405


# --- batching and metrics ------------------------------------------------------------------------


def test_concurrent_requests_are_batched(server: Server, topology: str) -> None:
    before_texts = batches_over_one(server, "heara_batch_texts")
    before_reqs = batches_over_one(server, "bentoml_service_adaptive_batch_size", 'method_name="predict"')
    texts = pd.read_csv(SAMPLE)["text"].iloc[300:428].tolist()

    def one(i: int) -> tuple[int, str]:
        r = classify(server, {"texts": [texts[i]]}, headers={"X-Request-ID": burst_id(i)})
        return r.status_code, r.text

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(len(texts))))
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:3]
    # single-text requests: a batch holding more than one text merged several requests
    assert batches_over_one(server, "heara_batch_texts") > before_texts
    if topology == "split":  # BentoML's own batching, across the process hop
        after = batches_over_one(server, "bentoml_service_adaptive_batch_size", 'method_name="predict"')
        assert after > before_reqs


def test_metrics_list_custom_metrics(server: Server) -> None:
    text = httpx.get(f"{server.url}/metrics", headers=METRICS_AUTH, timeout=10).text
    missing = [name for name in CUSTOM_METRICS if name not in text]
    assert not missing, missing
    assert "bentoml_service_request_total" in text
    predicted = metric_values(server, "heara_predictions_total")
    assert sum(predicted.values()) >= 3 and all('label="' in k for k in predicted)


def test_prediction_log_holds_every_request(server: Server) -> None:
    sent = {HAPPY_ID} | {burst_id(i) for i in range(128)}
    db = server.home / "predictions.sqlite"
    deadline, found = time.monotonic() + 20, set()
    while time.monotonic() < deadline and not sent <= found:  # the writer flushes every 0.5 s
        if db.exists():
            with sqlite3.connect(db) as con:
                found = {r[0] for r in con.execute("SELECT DISTINCT request_id FROM predictions")}
        time.sleep(0.2)
    assert sent <= found, sorted(sent - found)[:5]
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT model_name, model_version, raw_text, masked_text FROM predictions WHERE request_id = ?",
            (HAPPY_ID,),
        ).fetchall()
    assert len(rows) == 3 and {(r[0], r[1]) for r in rows} == {("heara-danger", "local")}
    assert all(r[2] is None and r[3] for r in rows)  # masked text only; raw text needs HEARA_STORE_RAW_TEXT=1


def test_no_server_errors(server: Server) -> None:
    """Every request this server answered got a 2xx, a 4xx or a designed 503 (busy or overloaded, with
    Retry-After: test_explain_http.py's burst, which shares the server, asks for those): nothing
    reached BentoML's 500 handler."""
    totals = metric_values(server, "bentoml_service_request_total")
    errors = {k: v for k, v in totals.items() if re.search(r'http_response_code="5(?!03)\d\d"', k) and v > 0}
    assert not errors, errors


# --- the champion from MLflow ----------------------------------------------------------------------


def test_champion_loaded_from_mlflow(servers) -> None:
    _, b, registered = servers
    info = httpx.get(f"{b.url}/model", timeout=10).json()  # server B has no API key
    assert info["version"] == str(registered["version"]) and info["run_id"] == registered["run_id"]
    assert info["metrics"] == {"test_macro_f1": 0.42, "test_accuracy": 0.5, "best_val_macro_f1": 0.4}
    assert info["trained_at"] and info["uri"] == f"models:/heara-danger/{registered['version']}"
    cached = b.home / "serving" / "models"
    assert [p.name for p in cached.iterdir()] == [
        f"heara-danger-v{registered['version']}-{registered['run_id'][:8]}"
    ]
    r = httpx.post(f"{b.url}/classify", json={"texts": ["살려주세요"]}, timeout=30)
    assert r.status_code == 200 and r.json()["predictions"][0]["model_version"] == str(registered["version"])


# --- hot reload -----------------------------------------------------------------------------------


def register_new_champion(model_dir: Path, tracking_uri: str) -> int:
    """Log the folder in a new run, register it as the next version and move the champion alias to it."""
    import mlflow
    from mlflow import MlflowClient

    from training.model.pyfunc import log_pyfunc
    from training.registry.aliases import CHAMPION, model_name, register

    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name("heara-danger").experiment_id) as run:
        mlflow.log_metrics({"test_macro_f1": 0.5, "test_accuracy": 0.6, "best_val_macro_f1": 0.45})
        info = log_pyfunc(model_dir, LABELS, ["안녕하세요"])
    client = MlflowClient(tracking_uri)
    version = register(client, model_name("danger"), run.info.run_id, info.model_uri)
    client.set_registered_model_alias(model_name("danger"), CHAMPION, str(version))
    return version


def test_reload_needs_the_api_key(server: Server) -> None:
    r = httpx.post(f"{server.url}/reload", timeout=10)
    assert r.status_code == 401 and "missing API key" in r.json()["error"]
    r = httpx.post(f"{server.url}/reload", headers=AUTH, timeout=30)  # HEARA_MODEL_DIR: nothing to reload
    assert r.status_code == 200 and r.json() == {"reloaded": False, "version": "local"}, r.text


def test_reload_swaps_the_champion_without_downtime(servers, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    _, b, registered = servers
    old = str(registered["version"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["tracking_uri"])
    new = str(register_new_champion(registered["model_dir"], registered["tracking_uri"]))
    assert new != old
    stop, results = threading.Event(), []

    def keep_classifying(i: int) -> None:
        while not stop.is_set():
            r = httpx.post(f"{b.url}/classify", json={"texts": [f"도와주세요 {i}", "괜찮아요"]}, timeout=30)
            results.append(
                (
                    r.status_code,
                    [p["model_version"] for p in r.json().get("predictions", [])]
                    if r.status_code == 200
                    else r.text[:200],
                )
            )

    with ThreadPoolExecutor(max_workers=6) as pool:
        for i in range(6):
            pool.submit(keep_classifying, i)
        time.sleep(0.5)
        r = httpx.post(f"{b.url}/reload", timeout=60)
        time.sleep(0.5)
        stop.set()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == new and "error" not in body, body  # reloaded now, or the poller was first
    assert results and all(status == 200 for status, _ in results), [x for x in results if x[0] != 200][:3]
    assert {v for _, versions in results for v in versions} <= {old, new}
    info = httpx.get(f"{b.url}/model", timeout=10).json()
    assert info["version"] == new and info["uri"] == f"models:/heara-danger/{new}"
    r = httpx.post(f"{b.url}/classify", json={"texts": ["살려주세요"]}, timeout=30)
    assert r.status_code == 200 and r.json()["predictions"][0]["model_version"] == new
    assert metric_values(b, "heara_model_reloads_total").get('{result="ok"}', 0) >= 1
    assert httpx.post(f"{b.url}/reload", timeout=30).json() == {"reloaded": False, "version": new}
    totals = metric_values(b, "bentoml_service_request_total")
    assert not {k: v for k, v in totals.items() if re.search(r'http_response_code="5\d\d"', k) and v > 0}
