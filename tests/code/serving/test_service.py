"""The service's pure parts (validation, danger flag, token-capped sub-batches, request guard) and
the whole service in-process through `to_asgi()`, on a tiny model built from a few sample texts.

The in-process app runs the real BentoML routing, validation and error handling; only batching and
the process split are not exercised here (tests/system/test_service_http.py does that over HTTP).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from serving import schemas
from serving.guard import RequestGuard
from serving.inference import token_capped_batches
from training.config import ServeConfig

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "utterances.csv"
LABELS = ["normal", "emergency", "confusion", "distress"]


# --- validation --------------------------------------------------------------------------------

Request = schemas.request_model(max_texts=3, max_chars=10, max_top_k=5)


def errors_of(body: str) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        Request.model_validate_json(body)
    return info.value.errors()


def test_valid_request_passes() -> None:
    assert Request.model_validate_json('{"texts": ["도와주세요", "a"]}').texts == ["도와주세요", "a"]


@pytest.mark.parametrize(
    "body, top_k", [('{"texts": ["a"]}', None), ('{"texts": ["a"], "top_k": null}', None)]
)
def test_top_k_is_optional(body: str, top_k: int | None) -> None:
    assert Request.model_validate_json(body).top_k is top_k


@pytest.mark.parametrize("k", [1, 5])  # 1 .. max_top_k, both ends included
def test_top_k_within_the_cap_passes(k: int) -> None:
    assert Request.model_validate_json(json.dumps({"texts": ["a"], "top_k": k})).top_k == k


@pytest.mark.parametrize(
    "body, loc, kind",
    [
        ('{"texts": []}', ("texts",), "too_short"),
        ('{"texts": ["a", "b", "c", "d"]}', ("texts",), "too_long"),
        ('{"texts": [""]}', ("texts", 0), "string_too_short"),
        ('{"texts": ["ok", "   "]}', ("texts", 1), "value_error"),
        ('{"texts": ["12345678901"]}', ("texts", 0), "string_too_long"),
        ('{"texts": [1]}', ("texts", 0), "string_type"),
        ('{"texts": [null]}', ("texts", 0), "string_type"),
        ('{"texts": "abc"}', ("texts",), "list_type"),
        ('{"text": ["a"]}', ("texts",), "missing"),
        ('{"texts": ["a"], "extra": 1}', ("extra",), "extra_forbidden"),
        ('{"texts": ["a"], "top_k": 0}', ("top_k",), "greater_than_equal"),
        ('{"texts": ["a"], "top_k": 6}', ("top_k",), "less_than_equal"),  # over serve.max_top_k
        ('{"texts": ["a"], "top_k": "3"}', ("top_k",), "int_type"),
        ('{"texts": ["a"], "top_k": 2.5}', ("top_k",), "int_type"),
        ('{"texts": ["a"], "top_k": true}', ("top_k",), "int_type"),
        ('{"texts": ["a"', (), "json_invalid"),
        ('["a"]', (), "model_type"),
    ],
)
def test_invalid_requests_name_the_problem(body: str, loc: tuple, kind: str) -> None:
    errors = errors_of(body)
    assert any(tuple(e["loc"]) == loc and e["type"] == kind for e in errors), errors


@pytest.mark.parametrize(
    "text",
    ["\u200b", "\u00ad", "\u180e", "\u0001\u0002\u001b\u007f", "\u0000", "\ufeff \u2028", "\U000e0001"],
)
def test_invisible_text_is_blank(text: str) -> None:
    """Preprocessing deletes all of these: the model would score an empty string (a false danger)."""
    errors = errors_of(json.dumps({"texts": [text]}))
    assert errors[0]["loc"] == ("texts", 0) and "no visible characters" in errors[0]["msg"], errors


def test_visible_text_with_invisible_characters_passes() -> None:
    assert Request.model_validate_json(json.dumps({"texts": ["a\u200b", "\u0301"]})).texts == [
        "a\u200b",
        "\u0301",
    ]


def test_body_cap_fits_the_largest_valid_request() -> None:
    biggest = json.dumps({"texts": ["\U0001f600" * 10] * 3})  # non-BMP: 12 bytes per character escaped
    assert len(biggest.encode()) <= schemas.max_body_bytes(3, 10)


def test_request_id_keeps_uuid_and_hex_caller_ids_only() -> None:
    for good in ("6f1c2a9e-3b7d-4e8f-9a0b-1c2d3e4f5a6b", "0af7651916cd43dd8448eb211c80319c", "deadbeef" * 8):
        assert schemas.request_id(good) == good
    # Free text, a phone number, a resident registration or card number (16 digits are hex too) sent as
    # an id would be stored and shown by /recent: each is replaced by a new id.
    for bad in (
        None,
        "",
        "a b",
        "happy-1",
        "f" * 65,
        "<script>",
        "010-1234-5678",
        "01012345678",
        "850505-2345678",
        "1234567890123456",
        "1234-5678-9012-3456",
    ):
        rid = schemas.request_id(bad)
        assert rid != bad and len(rid) == 32 and int(rid, 16) >= 0


# --- danger flag ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label, score, expected",
    [
        ("emergency", 0.9, True),
        ("emergency", 0.5, True),
        ("emergency", 0.49, False),
        ("distress", 0.7, True),
        ("normal", 0.99, False),
        ("confusion", 0.99, False),
    ],
)
def test_is_danger(label: str, score: float, expected: bool) -> None:
    assert schemas.is_danger(label, score, ("emergency", "distress"), 0.5) is expected


def test_to_predictions_adds_danger_and_version() -> None:
    scored = [
        {"label": "emergency", "score": 0.8, "scores": {"emergency": 0.8, "normal": 0.2}},
        {"label": "normal", "score": 0.6, "scores": {"emergency": 0.4, "normal": 0.6}},
    ]
    out = schemas.to_predictions(scored, danger_labels=["emergency"], threshold=0.7, model_version="3")
    assert [p["danger"] for p in out] == [True, False]
    assert {p["model_version"] for p in out} == {"3"}
    schemas.ClassifyResponse(request_id="r", predictions=out)  # the response model accepts them


def test_a_multi_label_answer_lists_its_labels_with_scores_and_any_danger_label_flags_it() -> None:
    scores = {"낙상": 0.62, "통증": 0.9, "외로움": 0.3}
    scored = [
        {"label": "통증", "score": 0.9, "scores": scores, "labels": ["통증", "낙상"]},
        {"label": "통증", "score": 0.9, "scores": scores, "labels": ["통증"]},
        {"label": "통증", "score": 0.9, "scores": scores, "labels": []},
    ]
    # 낙상 passed its own (tuned) threshold at 0.62: a danger even below serve.danger_threshold 0.7.
    out = schemas.to_predictions(scored, danger_labels=["낙상"], threshold=0.7, model_version="2")
    assert out[0]["labels"] == [{"label": "통증", "score": 0.9}, {"label": "낙상", "score": 0.62}]
    assert [p["danger"] for p in out] == [True, False, False]
    body = schemas.ClassifyResponse(request_id="r", predictions=out).model_dump()["predictions"]
    assert body[0]["labels"][1] == {"label": "낙상", "score": 0.62} and body[2]["labels"] == []
    single = schemas.to_predictions(
        [{k: v for k, v in scored[0].items() if k != "labels"}],
        danger_labels=["낙상"],
        threshold=0.7,
        model_version="2",
    )
    assert (
        "labels"
        not in schemas.ClassifyResponse(request_id="r", predictions=single).model_dump()["predictions"][0]
    )


def test_top_labels_are_the_most_probable_first_ties_in_label_order() -> None:
    scores = {"a": 0.1, "b": 0.3, "c": 0.3, "d": 0.25, "e": 0.05}
    assert schemas.top_labels(scores, 3) == [
        {"label": "b", "score": 0.3},
        {"label": "c", "score": 0.3},
        {"label": "d", "score": 0.25},
    ]
    assert [t["label"] for t in schemas.top_labels(scores, 10)] == ["b", "c", "d", "a", "e"]  # all there are


def test_with_top_adds_top_and_leaves_the_rest_as_it_was() -> None:
    scored = [{"label": "x", "score": 0.7, "scores": {"x": 0.7, "y": 0.2, "z": 0.1}}]
    predictions = schemas.to_predictions(scored, danger_labels=[], threshold=0.5, model_version="1")
    out = schemas.with_top(predictions, 2)
    assert out[0] == {**predictions[0], "top": [{"label": "x", "score": 0.7}, {"label": "y", "score": 0.2}]}
    assert "top" not in predictions[0]  # new dicts: what the prediction log and /recent got is unchanged
    shown = schemas.ClassifyResponse(request_id="r", predictions=out).model_dump()["predictions"][0]
    assert shown["top"][1] == {"label": "y", "score": 0.2}
    plain = schemas.ClassifyResponse(request_id="r", predictions=predictions).model_dump()["predictions"][0]
    assert "top" not in plain  # not asked for: absent, not null


# --- token-capped sub-batches ------------------------------------------------------------------


@pytest.mark.parametrize(
    "lengths, cap",
    [
        ([5, 64, 12, 64, 3, 30], 128),
        ([10] * 100, 64),
        ([64] * 7, 64),
        ([200, 3, 3], 64),
        ([], 64),
        ([1], 8),
    ],
)
def test_token_capped_batches_cover_every_row_within_the_cap(lengths: list[int], cap: int) -> None:
    batches = token_capped_batches(lengths, cap)
    flat = sorted(int(i) for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        padded = len(b) * max(lengths[i] for i in b)
        assert padded <= cap or len(b) == 1  # a row longer than the cap runs alone


def test_token_cap_splits_many_long_texts() -> None:
    assert len(token_capped_batches([64] * 64, 1024)) == 4  # 16 rows of 64 tokens each


# --- request guard (API key, body cap) ------------------------------------------------------------


def run_guard(
    monkeypatch: pytest.MonkeyPatch,
    key: str | None,
    path: str,
    headers: dict,
    body: bytes = b"{}",
    limit: int = 100,
    method: str = "POST",
    chunks: int = 1,
    metrics_token: str | None = None,
    delay_s: float = 0.0,
    body_timeout_s: float = 10.0,
    openapi=None,
) -> tuple[int, dict]:
    """The guard in front of a stub app that echoes the body; (status, JSON answer + what the app saw).
    delay_s: the client waits this long before each body chunk."""
    if key:
        monkeypatch.setenv("HEARA_API_KEY", key)
    else:
        monkeypatch.delenv("HEARA_API_KEY", raising=False)
    if metrics_token:
        monkeypatch.setenv("HEARA_METRICS_TOKEN", metrics_token)
    else:
        monkeypatch.delenv("HEARA_METRICS_TOKEN", raising=False)
    seen = {}

    async def app(scope, receive, send):
        message = await receive()
        seen["body"] = message["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    size = -(-len(body) // chunks) if body else 1
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [body]
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)
    ]
    sent = []

    async def receive():
        await asyncio.sleep(delay_s)
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "path": path, "method": method, "headers": raw}
    guard = RequestGuard(app, max_body_bytes=limit, body_timeout_s=body_timeout_s, openapi=openapi)
    asyncio.run(guard(scope, receive, send))
    payload = json.loads(sent[1]["body"]) if len(sent) > 1 else {}
    return sent[0]["status"], {**payload, **seen}


def test_guard_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    status, body = run_guard(monkeypatch, "s3cret", "/classify", {})
    assert status == 401 and "missing API key" in body["error"]
    status, body = run_guard(monkeypatch, "s3cret", "/classify", {"Authorization": "Bearer nope"})
    assert status == 401 and "wrong API key" in body["error"]
    assert run_guard(monkeypatch, "s3cret", "/classify", {"Authorization": "Bearer s3cret"})[0] == 200
    for closed_path in ("/model", "/recent", "/try/x", "/recent/"):  # /recent shows (masked) utterances
        assert run_guard(monkeypatch, "s3cret", closed_path, {}, method="GET")[0] == 401, closed_path
    for open_path in ("/healthz", "/readyz", "/metrics", "/", "/try"):  # /try: a static page
        assert run_guard(monkeypatch, "s3cret", open_path, {}, method="GET")[0] == 200
    assert run_guard(monkeypatch, None, "/classify", {})[0] == 200  # no key configured: open


def test_guard_body_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    status, body = run_guard(monkeypatch, None, "/classify", {"Content-Length": "101"}, b"x" * 101)
    assert status == 413 and "101 bytes" in body["error"]
    status, body = run_guard(monkeypatch, None, "/classify", {}, b"x" * 101, chunks=3)  # chunked, no length
    assert status == 413 and "over the limit" in body["error"]
    status, body = run_guard(monkeypatch, None, "/classify", {"Content-Length": "abc"})
    assert status == 400 and "Content-Length" in body["error"]
    hundred = json.dumps({"texts": ["y" * 85]}).encode()
    status, body = run_guard(monkeypatch, None, "/classify", {}, hundred, chunks=4)
    assert status == 200 and body["body"] == hundred  # the app sees the whole body, replayed once


def test_guard_body_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body trickling in (a client sending a byte now and then) gets 408 once serve.body_timeout_s
    has passed, however far it got; a prompt one passes."""
    slow = dict(delay_s=0.1, body_timeout_s=0.25, chunks=5)
    status, body = run_guard(monkeypatch, None, "/classify", {}, b'{"texts": ["a"]}', **slow)
    assert status == 408 and "0.25 s" in body["error"] and "body" not in set(body) - {"error"}
    status, _ = run_guard(
        monkeypatch, None, "/classify", {}, b'{"texts": ["a"]}', chunks=5, body_timeout_s=0.25
    )
    assert status == 200


@pytest.mark.parametrize(
    "body, content_type, status, words",
    [
        (
            rb'{"texts":["\ubd88\uc774\uc57c"],"texts":["x"]}',
            "application/json",
            400,
            "duplicate key 'texts'",
        ),
        (b'{"texts":[{"a":1,"a":2}]}', "application/json", 400, "duplicate key 'a'"),
        ('{"texts":["불이야"]}'.encode("cp949"), "application/json", 400, "not valid UTF-8 (byte 11"),
        ('{"texts":["불이야"]}'.encode(), "application/json; charset=cp949", 415, "charset='cp949'"),
        ('{"texts":["불이야"]}'.encode(), 'application/json; charset="UTF-8"', 200, None),
        (b'{"texts": ["a"', "application/json", 400, "not valid JSON: Expecting"),
        (b"", "application/json", 400, "not valid JSON"),
        (b"[" * 100_000, "application/json", 400, "not valid JSON"),
    ],
)
def test_guard_json_body_rules(
    monkeypatch: pytest.MonkeyPatch, body: bytes, content_type: str, status: int, words: str | None
) -> None:
    """The last duplicate key used to win silently (an alarm replaced by `normal`), and cp949 bodies
    were read as UTF-8; both are refused with the reason."""
    got, answer = run_guard(monkeypatch, None, "/classify", {"Content-Type": content_type}, body, limit=10**6)
    assert got == status, answer
    if words:
        assert words in answer["error"], answer


def test_guard_metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """/metrics is open by default (Prometheus and the probes), behind its own token when one is set;
    the API key does not open it and the token does not open the API."""
    assert run_guard(monkeypatch, "s3cret", "/metrics", {}, method="GET")[0] == 200
    token = dict(metrics_token="m3trics", method="GET")
    status, body = run_guard(monkeypatch, "s3cret", "/metrics", {}, **token)
    assert status == 401 and "missing metrics token" in body["error"]
    assert run_guard(monkeypatch, "s3cret", "/metrics", {"Authorization": "Bearer s3cret"}, **token)[0] == 401
    assert (
        run_guard(monkeypatch, "s3cret", "/metrics", {"Authorization": "Bearer m3trics"}, **token)[0] == 200
    )
    assert run_guard(monkeypatch, "s3cret", "/model", {"Authorization": "Bearer m3trics"}, **token)[0] == 401


def test_guard_answers_the_services_openapi_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def spec(keyed: bool) -> dict:
        calls.append(keyed)
        return {"openapi": "3.0.2", "paths": {}}

    for key in ("k", None):  # open without a key, like the docs page
        status, body = run_guard(monkeypatch, key, "/docs.json", {}, method="GET", openapi=spec)
        assert status == 200 and body["openapi"] == "3.0.2"
    assert calls == [True, False]  # whether routes may answer 401 depends on the key


@pytest.mark.parametrize(
    "content_type, expected",
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("application/problem+json", 200),
        ("text/plain", 415),
        ("multipart/form-data", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/vnd.bentoml+pickle", 415),
    ],
)
def test_guard_accepts_only_json_on_classify(
    monkeypatch: pytest.MonkeyPatch, content_type: str, expected: int
) -> None:
    status, body = run_guard(monkeypatch, None, "/classify", {"Content-Type": content_type}, b"{}")
    assert status == expected
    if expected == 415:
        assert content_type in body["error"]
    assert run_guard(monkeypatch, None, "/other", {"Content-Type": content_type}, b"{}")[0] == 200


# --- the service in-process ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Path:
    """With a monitoring reference: the service logs monitoring features (monitor.log_features), which
    must never show in an answer (test_classify_response_shape lists every key)."""
    return tiny_model_factory(tmp_path_factory.mktemp("svc") / "model", reference=True)


def test_classifier_matches_predictor(tiny_model_dir: Path) -> None:
    from serving.inference import Classifier

    clf = Classifier.load(tiny_model_dir, max_tokens_per_batch=16, device="cpu")  # forces many sub-batches
    texts = pd.read_csv(SAMPLE)["text"].iloc[200:212].tolist() + ["ㅋㅋ", "할머니 도와주세요 " * 20]
    np.testing.assert_allclose(clf.predict_proba(texts), clf.predictor.predict_proba(texts), atol=1e-5)


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from starlette.testclient import TestClient

    mp = pytest.MonkeyPatch()
    db = tmp_path_factory.mktemp("predlog") / "predictions.sqlite"
    mp.setenv("HEARA_MODEL_DIR", str(tiny_model_dir))
    mp.setenv("HEARA_PREDICTION_DB", f"sqlite:///{db}")
    mp.delenv("HEARA_API_KEY", raising=False)
    from serving.service import HearaService

    with TestClient(HearaService.to_asgi()) as c:
        c.db = db
        yield c
    mp.undo()


def test_classify_response_shape(client) -> None:
    from serving.service import EXAMPLE_INPUT

    r = client.post(
        "/classify", json=EXAMPLE_INPUT, headers={"X-Request-ID": "00000000000000000000000000000abc"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == "00000000000000000000000000000abc" == r.headers["x-request-id"]
    assert len(body["predictions"]) == len(EXAMPLE_INPUT["texts"])
    for p in body["predictions"]:
        assert set(p) == {"label", "score", "scores", "danger", "model_version"}
        assert set(p["scores"]) == set(LABELS) and p["label"] in LABELS
        assert p["score"] == pytest.approx(max(p["scores"].values()))
        assert sum(p["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert p["model_version"] == "local"  # a folder without registry.json


def test_classify_top_k(client) -> None:
    from serving.service import SERVE

    r = client.post("/classify", json={"texts": ["할머니 도와주세요", "밥 먹었어요"], "top_k": 2})
    assert r.status_code == 200, r.text
    for p in r.json()["predictions"]:
        assert set(p) == {"label", "score", "scores", "danger", "model_version", "top"}
        ranked = sorted(p["scores"].items(), key=lambda kv: -kv[1])[:2]
        assert p["top"] == [{"label": lab, "score": s} for lab, s in ranked]
        assert p["top"][0] == {"label": p["label"], "score": p["score"]}
    r = client.post("/classify", json={"texts": ["밥 먹었어요"], "top_k": SERVE.max_top_k})
    assert [t["label"] for t in r.json()["predictions"][0]["top"]] and len(
        r.json()["predictions"][0]["top"]
    ) == min(SERVE.max_top_k, len(LABELS))  # more than the model has: all of them
    for k in (0, SERVE.max_top_k + 1, "2"):
        r = client.post("/classify", json={"texts": ["밥 먹었어요"], "top_k": k})
        assert r.status_code == 400, (k, r.text)
        assert [d["loc"] for d in r.json()["detail"]] == [["top_k"]], r.text


def test_classify_rejects_bad_input_with_400(client) -> None:
    for body in ('{"texts": []}', '{"texts": [""]}', '{"texts": [3]}', "{}"):  # pydantic's rules: `detail`
        r = client.post("/classify", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["detail"], (body, r.text)
    r = client.post("/classify", content="{", headers={"Content-Type": "application/json"})  # the guard's
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"], r.text
    assert client.get("/healthz").status_code == 200


def test_model_info(client, tiny_model_dir: Path) -> None:
    r = client.get("/model")
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["name"] == "heara-danger" and info["version"] is None and info["labels"] == LABELS
    assert info["uri"] == str(tiny_model_dir) and info["device"] == "cpu"


def test_predictions_are_logged(client) -> None:
    from serving.service import HearaService  # noqa: F401  (the instance lives in the app)

    r = client.post(
        "/classify",
        json={"texts": ["로그 확인용 문장입니다", "둘째 문장"]},
        headers={"X-Request-ID": "0000000000000000000000000000109a"},
    )
    assert r.status_code == 200
    deadline = 50
    while deadline:  # the writer thread flushes within its interval
        if client.db.exists():
            try:
                with sqlite3.connect(client.db) as con:
                    rows = con.execute(
                        "SELECT request_id, raw_text, masked_text, projection, descriptors FROM predictions "
                        "WHERE request_id = ?",
                        ("0000000000000000000000000000109a",),
                    ).fetchall()
            except sqlite3.OperationalError:  # the writer made the file but not yet its table
                rows = []
            if len(rows) == 2:
                break
        deadline -= 1
        asyncio.run(asyncio.sleep(0.1))
    assert len(rows) == 2 and all(raw is None for _, raw, *_ in rows)  # raw text only when opted in
    for _, _, masked, projection, descriptors in rows:  # the monitoring features, beside the prediction
        assert projection and json.loads(descriptors)["chars"] == len(masked)


def test_overload_is_503_with_a_reason(client, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.batcher import Batcher, Overloaded

    async def overloaded(self, texts):
        raise Overloaded("64 texts are waiting")  # what the batcher raises past max_latency_ms

    monkeypatch.setattr(Batcher, "submit", overloaded)
    r = client.post(
        "/classify", json={"texts": ["도와주세요"]}, headers={"X-Request-ID": "b05e00000000000000a1"}
    )
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "max_latency_ms" in r.json()["error"] and r.json()["request_id"] == "b05e00000000000000a1"


def test_no_answer_without_the_prediction_log_on_disk(client, monkeypatch, caplog) -> None:
    """`serve.predlog_durability: durable` (the default): when the journal cannot be written (a full
    disk here) the prediction is not acknowledged: 503, Retry-After, one masked log line."""
    import errno

    from serving import journal

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal, "_write", disk_full)
    text = "할머니가 010-1234-5678 로 전화해 달래요"
    rid = "d15cf0110000000000000000000000aa"
    r = client.post("/classify", json={"texts": [text]}, headers={"X-Request-ID": rid})
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    body = r.json()
    assert "prediction log unavailable" in body["error"] and body["request_id"] == rid
    assert "predictions" not in body
    assert rid not in client.get("/recent").text  # not answered, so not shown as a prediction
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "serving.journal"]
    assert len(lines) == 1 and "disk full" in lines[0], lines
    everything = " ".join(rec.getMessage() for rec in caplog.records)
    assert "010-1234-5678" not in everything and "할머니" not in everything
    monkeypatch.undo()
    assert client.post("/classify", json={"texts": ["이제 괜찮아요"]}).status_code == 200


def test_recent_limit_must_be_a_positive_whole_number(client) -> None:
    for bad in ("0", "-1", "abc", "1.5"):
        r = client.get(f"/recent?limit={bad}")
        assert r.status_code == 400 and "limit" in r.json()["error"], (bad, r.text)
    r = client.get("/recent?limit=1")
    assert r.status_code == 200 and len(r.json()["predictions"]) <= 1


def test_inference_call_is_retried_once_after_a_lost_connection() -> None:
    from types import SimpleNamespace

    import aiohttp

    from serving.service import _InferenceClient

    calls = []

    async def predict(texts):
        calls.append(texts)
        if len(calls) == 1:
            raise aiohttp.ServerDisconnectedError()
        return [{"label": "normal"}]

    remote = _InferenceClient(SimpleNamespace(to_async=SimpleNamespace(predict=predict)))
    assert asyncio.run(remote.predict(["x"])) == [{"label": "normal"}]
    assert len(calls) == 2


# --- start-up (what `heara serve` calls) --------------------------------------------------------------


def test_serve_command_keeps_bentoml_state_in_the_state_folder(tmp_path: Path, monkeypatch) -> None:
    from serving.run import SERVICE, serve_command

    monkeypatch.setenv("HEARA_HOME", str(tmp_path))
    argv, env = serve_command(3123, "127.0.0.1")
    assert argv[1:5] == ["-m", "serving.supervisor", "serve", SERVICE]
    assert argv[argv.index("--port") + 1] == "3123"
    assert env["BENTOML_HOME"] == str(tmp_path / "bentoml") and env["BENTOML_DO_NOT_TRACK"] == "True"


def test_serve_fails_fast_without_a_champion(tmp_path: Path, monkeypatch) -> None:
    from serving import run
    from training.errors import NoChampionError

    monkeypatch.delenv("HEARA_MODEL_DIR", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setattr(run.os, "execve", lambda *a: pytest.fail("bentoml serve must not start"))
    with pytest.raises(NoChampionError, match="no model to serve.*HEARA_MODEL_DIR"):
        run.serve(3123, "127.0.0.1")


def test_model_dir_that_is_not_a_model_folder(tmp_path: Path, monkeypatch) -> None:
    from training.errors import ConfigError
    from training.registry.champion import resolve_model

    monkeypatch.setenv("HEARA_MODEL_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="heara.json is missing"):
        resolve_model("danger")


# --- replies (serve.responses) -------------------------------------------------------------------------


def test_reply_is_chosen_deterministically_from_the_text() -> None:
    candidates = ["하나", "둘", "셋", "넷"]
    texts = [f"문장 {i}" for i in range(40)]
    first = [schemas.choose_reply(t, candidates) for t in texts]
    assert first == [schemas.choose_reply(t, tuple(candidates)) for t in texts]  # same text, same reply
    assert set(first) <= set(candidates) and len(set(first)) > 1  # the hash spreads texts over the candidates
    assert schemas.choose_reply("아무 말", []) is None


def test_predictions_get_a_reply_only_when_replies_are_configured() -> None:
    scored = [
        {"label": "emergency", "score": 0.8, "scores": {"emergency": 0.8, "normal": 0.2}},
        {"label": "normal", "score": 0.6, "scores": {"emergency": 0.4, "normal": 0.6}},
    ]
    texts = ["도와주세요", "안녕하세요"]
    kw = {"danger_labels": ["emergency"], "threshold": 0.5, "model_version": "1", "texts": texts}
    responses = {"emergency": ["지금 도움을 요청할게요", "괜찮으세요?"]}
    out = schemas.to_predictions(scored, responses=responses, **kw)
    assert out[0]["reply"] == schemas.choose_reply("도와주세요", responses["emergency"])
    assert out[0]["reply"] in responses["emergency"] and out[1]["reply"] is None  # no candidates for "normal"
    assert out == schemas.to_predictions(scored, responses=responses, **kw)  # deterministic
    body = json.loads(schemas.ClassifyResponse(request_id="r", predictions=out).model_dump_json())
    assert body["predictions"][1] == {**out[1], "reply": None}
    plain = schemas.to_predictions(scored, responses={}, **kw)
    assert all("reply" not in p for p in plain)
    body = json.loads(schemas.ClassifyResponse(request_id="r", predictions=plain).model_dump_json())
    assert all("reply" not in p for p in body["predictions"])  # absent, not null, when none are configured


# --- hot reload -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_versions(tiny_model_dir: Path, tiny_model_factory, tmp_path_factory: pytest.TempPathFactory):
    """Version 1 (the module's tiny model) and version 2 (another tiny model), as registry cache folders."""
    import shutil

    from training.registry.champion import REGISTRY_FILE, from_dir

    root = tmp_path_factory.mktemp("versions")
    v1 = root / "v1"
    shutil.copytree(tiny_model_dir, v1)
    v2 = tiny_model_factory(root / "v2")
    for folder, version in ((v1, "1"), (v2, "2")):
        (folder / REGISTRY_FILE).write_text(
            json.dumps(
                {
                    "name": "heara-danger",
                    "version": version,
                    "run_id": f"run{version}",
                    "uri": f"models:/heara-danger/{version}",
                }
            ),
            encoding="utf-8",
        )
    return from_dir(v1), from_dir(v2)


def reload_count(result: str) -> float:
    from serving import metrics

    return metrics.instruments().reloads.labels(result=result)._value.get()


def test_hot_reload_swaps_in_the_new_version(two_versions) -> None:
    from serving.reload import HotModel, load_served

    v1, v2 = two_versions
    serve = ServeConfig(max_tokens_per_batch=256, danger_labels=("emergency", "distress"))
    load = lambda source, previous=None: load_served(source, serve, previous)  # noqa: E731
    champion = {"version": "1"}
    hot = HotModel(load(v1), latest_version=lambda: champion["version"], fetch=lambda: v2, load=load)
    old = hot.current
    assert hot.check() == {"reloaded": False, "version": "1"}  # the champion did not move
    ok_before = reload_count("ok")
    champion["version"] = "2"
    assert hot.check() == {"reloaded": True, "version": "2", "previous_version": "1"}
    assert hot.current is not old and hot.version == "2" and hot.current.source.model_dir == v2.model_dir
    assert reload_count("ok") == ok_before + 1
    texts = ["할머니 도와주세요", "오늘 날씨가 좋네요"]
    # a batch that took its reference before the swap still predicts with the old model
    np.testing.assert_allclose(
        old.classifier.predict_proba(texts), old.classifier.predictor.predict_proba(texts), atol=1e-5
    )
    assert hot.current.classifier is not old.classifier and hot.current.classifier.labels == LABELS
    # same preprocessing: the new model shares the old one's warm preprocessor (no second Kiwi load)
    assert hot.current.classifier.predictor.preprocessor is old.classifier.predictor.preprocessor
    assert hot.check() == {"reloaded": False, "version": "2"}  # nothing new: no second load


def test_failed_hot_reload_keeps_the_old_model(two_versions, tmp_path: Path) -> None:
    from serving.reload import HotModel, load_served
    from training.registry.champion import ModelSource

    v1, _ = two_versions
    serve = ServeConfig(max_tokens_per_batch=256, danger_labels=("emergency", "distress"))
    load = lambda source, previous=None: load_served(source, serve, previous)  # noqa: E731
    broken = ModelSource(
        model_dir=tmp_path / "missing",
        name="heara-danger",
        version="3",
        run_id=None,
        uri="models:/heara-danger/3",
    )
    hot = HotModel(load(v1), latest_version=lambda: "3", fetch=lambda: broken, load=load)
    old, failed_before = hot.current, reload_count("failed")
    result = hot.check()  # the load fails: no model folder
    assert result["reloaded"] is False and result["version"] == "1" and result["error"]
    assert hot.current is old and reload_count("failed") == failed_before + 1

    def bad_download():
        raise OSError("download interrupted")

    hot = HotModel(old, latest_version=lambda: "3", fetch=bad_download, load=load)
    result = hot.check()
    assert result["reloaded"] is False and "download interrupted" in result["error"] and hot.current is old
    assert reload_count("failed") == failed_before + 2


def test_reload_endpoint_with_a_model_folder_changes_nothing(client) -> None:
    r = client.post("/reload")
    assert r.status_code == 200, r.text
    assert r.json() == {"reloaded": False, "version": "local"}
    assert client.get("/model").json()["version"] is None
