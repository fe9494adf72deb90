"""The try-it page (GET /try) in headless Chromium against the real `bentoml serve` (server A of
conftest.py: a tiny model, API key set), checked against what POST /classify and GET /recent answer.

Driver: Playwright for Python (tests/system/chromium.py), chosen over Selenium because it needs only
the browser, not a chromedriver matched to its version, and its `expect` assertions wait for the page's
asynchronous updates instead of sleeping. HEARA_SKIP_BROWSER=1 skips these tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from chromium import expect
from live_service import API_KEY, AUTH, LABELS

from training.bench.serve import Server

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_topology(topology: str) -> None:
    if topology != "single":  # the page is served by the same route code in both
        pytest.skip("the try-it page is tested once, against serve.topology single")


PHONE_TEXT = "010-1234-5678로 연락해 주세요 넘어졌어요"
TIMEOUT_MS = 15_000


@dataclass
class TryPage:
    page: object  # playwright.sync_api.Page
    foreign_requests: list[str] = field(default_factory=list)  # anything not sent to the service itself
    js_errors: list[str] = field(default_factory=list)


@pytest.fixture
def try_page(browser, server: Server) -> Iterator[TryPage]:
    """A fresh browser context on http://127.0.0.1:PORT/try (no API key typed in yet)."""
    context = browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    out = TryPage(page)
    page.on("request", lambda r: None if r.url.startswith(server.url) else out.foreign_requests.append(r.url))
    page.on("pageerror", lambda exc: out.js_errors.append(str(exc)))
    page.goto(f"{server.url}/try")
    yield out
    context.close()


def classify_api(server: Server, texts: list[str]) -> tuple[str, list[dict]]:
    r = httpx.post(f"{server.url}/classify", json={"texts": texts}, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["request_id"], r.json()["predictions"]


def recent_api(server: Server, wait_for: str | None = None) -> dict:
    """GET /recent; with `wait_for`, until that request id is in it (it is recorded after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        body = httpx.get(f"{server.url}/recent", headers=AUTH, timeout=10).json()
        if wait_for is None or any(p["request_id"] == wait_for for p in body["predictions"]):
            return body
        assert time.monotonic() < deadline, f"{wait_for} never appeared in /recent"
        time.sleep(0.1)


def submit(tp: TryPage, text: str, key: str | None = API_KEY, how: str = "click") -> None:
    page = tp.page
    if key is not None:
        page.fill("#api-key", key)
    page.fill("#text", text)
    if how == "click":
        page.click("#submit")
    else:
        page.press("#text", how)  # "Enter" or "Control+Enter"
    expect(page.locator("#submit")).to_have_text("분류하기")  # the request is over


def check_clean(tp: TryPage) -> None:
    assert not tp.js_errors, tp.js_errors
    assert not tp.foreign_requests, tp.foreign_requests  # self-contained: no CDN, fonts or analytics


# --- over plain HTTP ------------------------------------------------------------------------------


def test_page_is_public_and_recent_needs_the_key(server: Server) -> None:
    r = httpx.get(f"{server.url}/try", timeout=10)  # no key: a browser cannot send one when opening a page
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:200]
    assert "분류하기" in r.text and "connect-src 'self'" in r.headers["content-security-policy"]
    assert "<script src" not in r.text and "<link" not in r.text  # inline only
    r = httpx.get(f"{server.url}/recent", timeout=10)
    assert r.status_code == 401 and "missing API key" in r.json()["error"]
    body = httpx.get(f"{server.url}/recent?limit=1", headers=AUTH, timeout=10).json()
    assert (
        set(body) == {"predictions", "label_counts", "total", "capacity", "since"} and body["capacity"] == 50
    )
    assert len(body["predictions"]) <= 1
    assert httpx.get(f"{server.url}/recent?limit=0", headers=AUTH, timeout=10).status_code in (400, 422)


# --- in the browser ---------------------------------------------------------------------------------


def test_wrong_api_key_shows_the_401_error(try_page: TryPage) -> None:
    page = try_page.page
    # opened without a key: GET /model was refused, and the page says so instead of staying blank
    expect(page.locator("#model-info")).to_contain_text("HTTP 401")
    submit(try_page, "도와주세요", key="wrong-key")
    error = page.locator("[data-testid=error]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("인증에 실패했습니다")
    expect(error).to_contain_text("HTTP 401")
    expect(error).to_contain_text("wrong API key")  # the server's own message
    expect(page.locator("#result")).to_be_hidden()
    submit(try_page, "   ", key=None)
    expect(error).to_have_text("발화를 입력하세요.")
    check_clean(try_page)


def test_prediction_matches_the_api(try_page: TryPage, server: Server, tmp_path: Path) -> None:
    page = try_page.page
    rid, (expected,) = classify_api(server, [PHONE_TEXT])
    before = recent_api(server, wait_for=rid)  # counts that include the API call just made
    submit(try_page, PHONE_TEXT, how="Enter")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#result-label")).to_have_text(expected["label"])
    expect(page.locator("#model-info")).to_contain_text("heara-danger")

    bars = page.locator("[data-testid=score-bar]")
    expect(bars).to_have_count(len(LABELS))
    shown = {}
    for i in range(len(LABELS)):
        bar = bars.nth(i)
        label = bar.get_attribute("data-label")
        track = bar.locator(".track").bounding_box()
        fill = bar.locator(".fill").bounding_box()
        shown[label] = float(bar.get_attribute("data-score"))
        assert fill["width"] / track["width"] == pytest.approx(expected["scores"][label], abs=0.01), label
        assert bar.locator(".pct").inner_text() == f"{expected['scores'][label] * 100:.1f}%", label
    assert shown == pytest.approx(expected["scores"], abs=1e-4) and set(shown) == set(LABELS)
    assert page.locator("#result-score").inner_text() == f"{expected['score'] * 100:.1f}%"
    badge = page.locator("[data-testid=danger-badge]")
    expect(badge).to_have_text("위험")
    (expect(badge).to_be_visible if expected["danger"] else expect(badge).to_be_hidden)()

    # recent predictions: the masked text, newest first; the raw phone number nowhere on the page
    first = page.locator("[data-testid=recent-row]").first
    expect(first).to_contain_text("[PHONE]로 연락해 주세요 넘어졌어요")
    expect(first).to_contain_text(expected["label"])
    assert page.locator("[data-testid=recent-row]").count() <= 20  # the page asks for the newest 20
    assert "1234-5678" not in page.content() and "1234-5678" not in page.locator("body").inner_text()

    # the label distribution counted this prediction
    label = expected["label"]
    expect(page.locator("[data-testid=dist-total]")).to_have_text(str(before["total"] + 1))
    dist = page.locator(f"[data-testid=dist-bar][data-label={label}]")
    expect(dist).to_have_attribute("data-count", str(before["label_counts"].get(label, 0) + 1))
    expect(page.locator("[data-testid=dist-bar]")).to_have_count(len(LABELS))
    page.screenshot(path=str(tmp_path / "try_page.png"), full_page=True)
    check_clean(try_page)


def test_danger_badge_follows_the_flag(try_page: TryPage, server: Server, tmp_path: Path) -> None:
    """The badge shows iff `danger`: the server's real answer first, then the same answer with the flag
    flipped on its way to the page (the untrained tiny model never reaches the danger threshold, so the
    server alone cannot produce both values)."""
    page = try_page.page
    _, (real,) = classify_api(server, [PHONE_TEXT])
    badge, safe = page.locator("[data-testid=danger-badge]"), page.locator("[data-testid=safe-badge]")

    def shows(danger: bool) -> None:
        expect(page.locator("#result-label")).to_have_text(real["label"])
        shown, gone = (badge, safe) if danger else (safe, badge)
        expect(shown).to_be_visible()
        expect(gone).to_be_hidden()

    submit(try_page, PHONE_TEXT, how="Control+Enter")
    shows(real["danger"])
    first = page.locator("[data-testid=recent-row]").first  # from GET /recent: the server's own flag
    expect(first.locator(".badge.danger")).to_have_count(int(real["danger"]))

    def flip_danger(route) -> None:
        response = route.fetch()
        body = response.json()
        for p in body["predictions"]:
            p["danger"] = not p["danger"]
        route.fulfill(response=response, json=body)

    page.route("**/classify", flip_danger)
    submit(try_page, PHONE_TEXT)
    shows(not real["danger"])
    page.screenshot(path=str(tmp_path / "try_page_flipped.png"), full_page=True)
    check_clean(try_page)


def explain_api(server: Server, text: str) -> dict:
    r = httpx.post(f"{server.url}/explain", json={"text": text}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_each_word_is_highlighted_by_its_contribution(try_page: TryPage, server: Server) -> None:
    """The page shows the text the model read, one highlighted span per word: the colour by the sign
    of its score (toward the predicted label or against it), the opacity by its share of the largest
    |score|, the same scores POST /explain answers; the legend names both colours."""
    page = try_page.page
    text = "아이고 화장실에서 넘어졌는데 못 일어나겠어 010-1234-5678"
    expected = explain_api(server, text)
    assert "[PHONE]" in expected["text"] and "010-1234-5678" not in expected["text"]
    submit(try_page, text)
    words = page.locator("[data-testid=explain-word]")
    # the explanation arrives after the classification (the form is free again before it)
    expect(words).to_have_count(len(expected["attributions"]), timeout=TIMEOUT_MS)
    expect(page.locator("[data-testid=explain-words]")).to_have_text(expected["text"])
    assert "010-1234-5678" not in page.content()  # only the masked text is shown anywhere
    peak = max(abs(a["score"]) for a in expected["attributions"])
    seen = []
    for i, attribution in enumerate(expected["attributions"]):
        word = words.nth(i)
        assert word.inner_text() == attribution["text"]
        score = float(word.get_attribute("data-score"))
        assert score == pytest.approx(attribution["score"], rel=1e-4, abs=1e-6)
        css = word.evaluate("e => getComputedStyle(e).backgroundColor")  # "rgba(r, g, b, a)"
        r, g, b, *alpha = [float(x) for x in css[css.index("(") + 1 : -1].split(",")]
        alpha = alpha[0] if alpha else 1.0
        assert (r, g, b) == ((207, 34, 46) if score > 0 else (9, 105, 218)), (attribution, css)
        assert alpha == pytest.approx(0.85 * abs(score) / peak, abs=0.01), (attribution, css)
        seen.append((abs(score), alpha))
    # the opacity follows the size of the contribution: sorted by |score|, the alphas never decrease
    alphas = [a for _, a in sorted(seen)]
    assert alphas == sorted(alphas) and alphas[-1] == pytest.approx(0.85, abs=0.01)
    legend = page.locator("[data-testid=explain-legend]")
    expect(legend).to_contain_text("예측한 레이블 쪽으로")
    expect(legend).to_contain_text("반대 쪽으로")
    expect(page.locator("#explain-meta")).to_contain_text(
        {"integrated_gradients": "Integrated Gradients", "linear": "TF-IDF", "occlusion": "occlusion"}[
            expected["method"]
        ]
    )
    check_clean(try_page)
