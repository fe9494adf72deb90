"""Speakers, sessions and escalations over real HTTP: /classify with ids, /metrics' escalation counter,
GET /timeline and the timeline page in headless Chromium (serving.timeline).

A `bentoml serve` of its own (a tiny model, an API key and an id salt), whose params make every
prediction a danger (every label a danger label, threshold 0): whether a text is a danger is then no
matter of the tiny model's weights, so the escalation rule (3 danger predictions within 10 minutes)
is exercised deterministically. The browser: tests/system/chromium.py (Debian's Chromium, Playwright).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import pytest
from chromium import chromium, expect
from live_service import API_KEY, AUTH, LABELS

from training.bench.serve import Server, start_service, stop, wait_ready
from training.config import load_params
from training.paths import StatePaths

pytestmark = pytest.mark.slow
SALT = "heara-test-salt"
PHONE = "010-1234-5678"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, tiny_model_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("timeline")
    overrides = {
        "serve": {"danger_labels": LABELS, "danger_threshold": 0.0},  # every prediction is a danger
        "timeline": {"escalation": {"danger_count": 3, "within_minutes": 10}, "max_id_chars": 64},
    }
    params_file = load_params(overrides=overrides).save(root / "params.yaml")
    model_dir = tiny_model_factory(root / "model")
    server = start_service(
        model_dir,
        root / "home",
        {"HEARA_API_KEY": API_KEY, "HEARA_ID_SALT": SALT, "HEARA_PARAMS": str(params_file)},
    )
    try:
        try:
            wait_ready(server, 240)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(str(exc))
        yield server
    finally:
        stop(server)


def classify(server: Server, texts: list[str], **ids) -> httpx.Response:
    return httpx.post(f"{server.url}/classify", json={"texts": texts, **ids}, headers=AUTH, timeout=30)


def escalations_total(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    values = [
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("heara_escalations_total")
    ]
    return sum(values)


def timeline(server: Server, **query) -> httpx.Response:
    return httpx.get(f"{server.url}/timeline", params=query, headers=AUTH, timeout=30)


def hashed(value: str) -> str:
    return hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


def test_three_dangers_within_the_window_escalate_once(service: Server) -> None:
    speaker, session = f"환자-{uuid.uuid4().hex[:6]}", f"세션-{uuid.uuid4().hex[:6]}"
    before = escalations_total(service)
    answers = []
    for text in ("도와주세요", "넘어졌어요", f"{PHONE} 로 연락해 주세요", "아파요"):
        r = classify(service, [text], speaker_id=speaker, session_id=session, device_id="거실-1")
        assert r.status_code == 200, r.text
        (p,) = r.json()["predictions"]
        assert p["danger"], p  # the params make every prediction a danger
        answers.append(p["escalation"])
    assert answers == [False, False, True, False]  # the fourth extends the episode: not a new one
    assert escalations_total(service) == before + 1
    plain = classify(service, ["안녕하세요"]).json()["predictions"][0]
    assert "escalation" not in plain  # no speaker: no escalation field

    body = timeline(service, speaker_id=speaker).json()
    assert body["count"] == 4 and body["escalation"] and body["escalated_now"]
    assert [e["escalation"] for e in body["entries"]] == [False, False, True, False]
    (episode,) = body["episodes"]
    assert episode["dangers"] == 4 and episode["escalated_at"] == body["entries"][2]["ts"]
    assert body["rule"] == {"danger_count": 3, "within_minutes": 10.0}
    entry = body["entries"][2]
    assert PHONE not in entry["masked_text"] and "[PHONE]" in entry["masked_text"]  # never the raw text
    assert (entry["speaker_id"], entry["session_id"], entry["device_id"]) == (
        hashed(speaker),
        hashed(session),
        hashed("거실-1"),
    )
    assert 0.0 <= entry["danger_score"] <= 1.0 and set(entry["scores"]) == set(LABELS)
    by_session = timeline(service, session_id=session, limit="2").json()
    assert [e["ts"] for e in by_session["entries"]] == [e["ts"] for e in body["entries"][2:]]

    # The store holds pseudonyms only: neither id nor the phone number is anywhere in it.
    with sqlite3.connect(StatePaths(service.home).prediction_log) as con:
        dump = "\n".join(con.iterdump())
    assert hashed(speaker) in dump and speaker not in dump and session not in dump and PHONE not in dump


def test_timeline_needs_the_key_and_exactly_one_good_id(service: Server) -> None:
    r = httpx.get(f"{service.url}/timeline", params={"speaker_id": "a"}, timeout=10)
    assert r.status_code == 401 and "missing API key" in r.json()["error"]
    for query, words in [
        ({}, "exactly one of speaker_id and session_id"),
        ({"speaker_id": "a", "session_id": "b"}, "exactly one"),
        ({"speaker_id": "x" * 65}, "speaker_id: an id may have at most 64"),
        ({"session_id": "a\x07b"}, "session_id: an id may hold printable"),
        ({"speaker_id": "a", "limit": "0"}, "limit must be a whole number"),
        ({"speaker_id": "a", "since": "어제"}, "since must be an ISO-8601 time"),
    ]:
        r = timeline(service, **query)
        assert r.status_code == 400 and words in r.json()["error"], (query, r.text)
    empty = timeline(service, speaker_id="아무도-아님").json()
    assert empty["entries"] == [] and not empty["escalation"]


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        ({"speaker_id": "x" * 65}, "speaker_id"),
        ({"session_id": "a\nb"}, "session_id"),
        ({"device_id": "\u200b"}, "device_id"),
        ({"speaker_id": 17}, "speaker_id"),
        ({"speaker_id": ""}, "speaker_id"),
    ],
)
def test_bad_ids_are_400_naming_the_field(service: Server, ids: dict, field: str) -> None:
    r = classify(service, ["도와주세요"], **ids)
    assert r.status_code == 400, r.text
    assert any(d["loc"][-1] == field for d in r.json()["detail"]), r.text


def test_the_page_is_public_and_self_contained(service: Server) -> None:
    r = httpx.get(f"{service.url}/timeline/page", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in r.headers["content-security-policy"] and "화자 타임라인" in r.text
    assert "<script src" not in r.text and "<link" not in r.text
    docs = httpx.get(f"{service.url}/docs.json", timeout=10).json()  # the route is documented
    op = docs["paths"]["/timeline"]["get"]
    params = {p["name"]: p["schema"] for p in op["parameters"]}
    assert set(params) == {"speaker_id", "session_id", "limit", "since"}
    assert params["limit"]["maximum"] == 1000 and params["speaker_id"]["maxLength"] == 64  # timeline.*
    assert {"200", "400", "401"} <= set(op["responses"]) and "Timeline" in docs["components"]["schemas"]
    body = docs["paths"]["/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    speaker = body["properties"]["speaker_id"]
    assert "64" in json.dumps(speaker)  # its limit is stated


# --- in the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, service: Server) -> Iterator[tuple]:
    """The timeline page in a fresh context, with the requests it sends elsewhere and its JS errors."""
    context = browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul")
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    foreign, errors = [], []
    tab.on("request", lambda r: None if r.url.startswith(service.url) else foreign.append(r.url))
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab, foreign, errors
    context.close()


def test_the_page_draws_a_speakers_timeline_and_its_escalation(page, service: Server) -> None:
    tab, foreign, errors = page
    speaker = f"page-{uuid.uuid4().hex[:6]}"
    for text in ("도와주세요", "일어날 수가 없어요", "여기가 어디예요"):
        assert classify(service, [text], speaker_id=speaker).status_code == 200
    classify(service, ["물 좀 주세요"], speaker_id="someone-else")
    tab.goto(f"{service.url}/timeline/page?speaker_id={speaker}")
    expect(tab.locator("#id")).to_have_value(speaker)  # filled from the address, the key is not
    tab.click("#load")
    expect(tab.locator("[data-testid=error]")).to_contain_text("HTTP 401")  # no key typed yet
    tab.fill("#api-key", API_KEY)
    tab.press("#api-key", "Enter")
    expect(tab.locator("#result")).to_be_visible()
    expect(tab.locator("[data-testid=error]")).to_be_hidden()
    expect(tab.locator("[data-testid=escalation-badge]")).to_have_text("에스컬레이션 1회")
    expect(tab.locator("[data-testid=calm-badge]")).to_be_hidden()
    rows = tab.locator("[data-testid=rows] tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_have_class("in-episode opens")
    expect(rows.nth(0)).to_contain_text("도와주세요")
    expect(tab.locator("[data-testid=danger-line]")).to_have_count(1)
    expect(tab.locator("[data-testid=episode-band]")).to_have_count(1)
    expect(tab.locator("#chart circle.is-danger")).to_have_count(3)
    expect(tab.locator("[data-testid=counts]")).to_have_text("예측 3건 · 위험 3건")

    tab.select_option("#kind", "session_id")
    tab.fill("#id", "없는-세션")
    tab.click("#load")
    expect(tab.locator("[data-testid=empty]")).to_be_visible()
    expect(tab.locator("[data-testid=calm-badge]")).to_be_visible()
    assert not errors, errors
    assert not foreign, foreign
