"""POST /explain over real HTTP, against the real `bentoml serve` of tests/system/conftest.py (server A: a
tiny model, API key set), in both topologies: the answer, every bad input (4xx naming the problem), and
saturation (503 with Retry-After beyond explain.max_concurrency + explain.max_waiting) while /classify
keeps answering. Latency figures are the benchmark's (`heara bench explain`), not asserted here.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from live_service import AUTH, LABELS

from training.bench.serve import Server
from training.config import load_params

pytestmark = pytest.mark.slow
TEXT = "아이고 화장실에서 넘어졌는데 못 일어나겠어"


def post(server: Server, body, headers=AUTH, **kw) -> httpx.Response:
    return httpx.post(f"{server.url}/explain", json=body, headers=headers, timeout=60, **kw)


def test_explain_answers_with_word_spans(server: Server) -> None:
    r = post(server, {"text": TEXT}, headers={**AUTH, "X-Request-ID": "0123456789abcdef0123456789abcdef"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == "0123456789abcdef0123456789abcdef" == r.headers["x-request-id"]
    assert body["text"] == TEXT and body["granularity"] == "word"
    assert body["method"] == "integrated_gradients" and body["label"] in LABELS
    assert body["explained_label"] == body["label"] and set(body["scores"]) == set(LABELS)
    words = body["attributions"]
    assert [w["text"] for w in words] == TEXT.split()
    for w in words:
        assert body["text"][w["start"] : w["end"]] == w["text"] and isinstance(w["score"], float)
    assert abs(body["convergence_delta"]) < 0.2  # the scores add up to p(text) - p(reference)
    # the same classification as /classify
    c = httpx.post(f"{server.url}/classify", json={"texts": [TEXT]}, headers=AUTH, timeout=30).json()
    assert c["predictions"][0]["label"] == body["label"]
    assert c["predictions"][0]["score"] == pytest.approx(body["score"], abs=0.02)  # int8 vs fp32 (onnx)


def test_explain_a_given_label_by_morpheme(server: Server) -> None:
    r = post(server, {"text": TEXT, "label": "distress", "granularity": "morpheme"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["explained_label"] == "distress" and body["granularity"] == "morpheme"
    spans = [(m["start"], m["end"]) for m in body["attributions"]]
    assert spans == sorted(spans) and all(e <= s2 for (_, e), (s2, _) in zip(spans, spans[1:]))
    assert all(m["tag"] for m in body["attributions"]) and len(spans) > len(TEXT.split())


def test_personal_data_never_comes_back(server: Server) -> None:
    body = post(server, {"text": "010-1234-5678 로 전화해 주세요 넘어졌어요"}).json()
    assert "010-1234-5678" not in str(body) and "[PHONE]" in body["text"]


@pytest.mark.parametrize(
    "body, status, needle",
    [
        ({"text": ""}, 400, "at least 1 character"),
        ({"text": "   \u200b"}, 400, "no visible characters"),
        ({"text": "가" * 501}, 400, "at most 500 characters"),
        ({}, 400, "text"),
        ({"texts": [TEXT]}, 400, "texts"),
        ({"text": TEXT, "granularity": "syllable"}, 400, "'word' or 'morpheme'"),
        ({"text": TEXT, "label": "happy"}, 400, "label 'happy' is not one of the model's labels"),
        ({"text": 5}, 400, "string"),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_problem(server: Server, body, status: int, needle: str) -> None:
    r = post(server, body)
    assert r.status_code == status, r.text
    assert needle in r.text


def test_bad_requests_beyond_the_body(server: Server) -> None:
    assert post(server, {"text": TEXT}, headers={}).status_code == 401  # behind the API key
    r = httpx.post(
        f"{server.url}/explain",
        content=b"text=x",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert r.status_code == 415, r.text
    r = httpx.post(f"{server.url}/explain", content=b'{"text": "a"', headers=AUTH, timeout=30)
    assert r.status_code == 400, r.text
    r = httpx.post(f"{server.url}/explain", content=b'{"text": "a", "text": "b"}', headers=AUTH, timeout=30)
    assert r.status_code == 400 and "duplicate" in r.text, r.text
    huge = b'{"text": "' + b"a" * 2_000_000 + b'"}'
    assert httpx.post(f"{server.url}/explain", content=huge, headers=AUTH, timeout=60).status_code == 413


def test_saturation_is_a_503_with_retry_after_while_classify_answers(server: Server) -> None:
    """Many explanations at once: at most max_concurrency + max_waiting are admitted, the rest answered
    503 with Retry-After at once; /classify requests sent meanwhile all answer 200."""
    cfg = load_params().explain
    long_text = " ".join([TEXT] * 12)[:480]  # the longest input: each explanation takes a while
    n = 8 * (cfg.max_concurrency + cfg.max_waiting) + 16

    async def burst() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(timeout=120, headers=AUTH) as client:
            explains = [client.post(f"{server.url}/explain", json={"text": long_text}) for _ in range(n)]
            classifies = [client.post(f"{server.url}/classify", json={"texts": [TEXT]}) for _ in range(10)]
            answers = await asyncio.gather(*explains, *classifies)
        return list(answers[:n]), list(answers[n:])

    explained, classified = asyncio.run(burst())
    codes = [r.status_code for r in explained]
    assert set(codes) <= {200, 503}, [(r.status_code, r.text[:200]) for r in explained]
    assert codes.count(503) >= 1 and codes.count(200) >= cfg.max_concurrency, codes
    for r in explained:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1" and "busy" in r.json()["error"], r.text
    assert [r.status_code for r in classified] == [200] * 10, [r.text[:200] for r in classified]
    # once the burst is over, the slots are free again
    assert post(server, {"text": TEXT}).status_code == 200
