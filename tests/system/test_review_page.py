"""The reviewer page (GET /review) in headless Chromium against the real `bentoml serve` (server A of
conftest.py: a tiny model, API key set): items queued in the server's prediction database, labeled
with number keys, skipped with `s`, marked unsure with `u`, and the queue's rows checked afterwards;
the page's parts (label keys, the suggestion's scores and highlighted words, progress, the remembered
reviewer, a conflict with another reviewer, a wrong key). The routes over plain HTTP:
test_review_http.py. The keyboard loop is review_browser.label_items_in_browser, which longer tests
reuse."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from chromium import expect
from live_service import API_KEY, AUTH, LABELS, REVIEW_SCORES, queue_for_review, review_queue
from review_browser import answer_with_key, label_items_in_browser, open_review_page, shown_item, sign_in

from training.bench.serve import Server

pytestmark = pytest.mark.slow
REVIEWER = "김검토"


@pytest.fixture(autouse=True)
def _one_topology(topology: str) -> None:
    if topology != "single":  # the page is served by the same route code in both
        pytest.skip("the reviewer page is tested once, against serve.topology single")


@pytest.fixture
def queue(server: Server):
    return review_queue(server, emptied=True)


def test_items_are_labeled_skipped_and_unsure_from_the_keyboard(browser, server: Server, queue) -> None:
    ids = queue_for_review(queue, ["random", "random", "danger", "uncertain"])
    keys = {ids[2]: "2", ids[0]: "1", ids[1]: "s", ids[3]: "u"}  # the danger item comes first

    done = label_items_in_browser(
        server.url, API_KEY, REVIEWER, 4, lambda item: keys[item["id"]], browser=browser
    )

    assert [d["id"] for d in done] == [ids[2], ids[0], ids[1], ids[3]]  # danger first, then the oldest
    assert all("[PHONE]" in d["masked_text"] and "010-" not in d["masked_text"] for d in done)
    assert {d["suggestion"] for d in done} == {"emergency"}
    rows = {i: queue.get(i) for i in ids}
    assert [(rows[i]["status"], rows[i]["label"], rows[i]["reviewer"]) for i in ids] == [
        ("labeled", LABELS[0], REVIEWER),  # "1": the model's first label
        ("skipped", None, REVIEWER),
        ("labeled", LABELS[1], REVIEWER),  # "2": its second
        ("unsure", None, REVIEWER),
    ]
    assert queue.next_item() is None


def explain_api(server: Server, text: str, label: str) -> dict:
    r = httpx.post(f"{server.url}/explain", json={"text": text, "label": label}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_page_shows_the_suggestion_keys_and_progress(
    browser, server: Server, queue, tmp_path: Path
) -> None:
    text = "아이고 화장실에서 넘어졌는데 못 일어나겠어 [PHONE]"
    first, second = queue_for_review(queue, ["danger", "random"], [text, "오늘 점심은 맛있었어요"])
    context, page, errors = open_review_page(browser, server.url)
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else foreign.append(r.url))
    try:
        expect(page.locator("#error")).to_contain_text("HTTP 401")  # opened without a key: it says so
        sign_in(page, API_KEY, REVIEWER)
        assert shown_item(page)["id"] == first
        expect(page.locator("#model-info")).to_contain_text("heara-danger")

        # one button per label, in the model's order, each with its key
        buttons = page.locator("[data-testid=label-button]")
        expect(buttons).to_have_count(len(LABELS))
        for i, label in enumerate(LABELS):
            button = buttons.nth(i)
            assert button.get_attribute("data-label") == label
            assert button.get_attribute("aria-keyshortcuts") == str(i + 1)
            assert button.locator("kbd").inner_text() == str(i + 1) and label in button.inner_text()
            assert f"단축키 {i + 1}" in button.get_attribute("aria-label")
        expect(page.locator("[data-testid=label-button].suggested")).to_have_attribute(
            "data-label", "emergency"
        )
        expect(page.locator("#skip")).to_have_attribute("aria-keyshortcuts", "S")
        expect(page.locator("#unsure")).to_contain_text("모르겠음")

        # the item: masked text, stratum, the model's suggestion and its scores as bars
        expect(page.locator("#item-text")).to_have_text(text)
        expect(page.locator("#item-stratum")).to_have_text("위험 예측")
        expect(page.locator("#suggestion")).to_have_text("emergency")
        expect(page.locator("#suggestion-score")).to_have_text("50.0%")
        bars = page.locator("[data-testid=score-bar]")
        expect(bars).to_have_count(len(LABELS))
        shown = {
            bars.nth(i).get_attribute("data-label"): float(bars.nth(i).get_attribute("data-score"))
            for i in range(4)
        }
        assert shown == pytest.approx(REVIEW_SCORES)

        # the words that drove the suggestion: POST /explain's attributions toward it, highlighted
        expected = explain_api(server, text, "emergency")
        words = page.locator("[data-testid=explain-word]")
        expect(words).to_have_count(len(expected["attributions"]))
        for i, attribution in enumerate(expected["attributions"]):
            assert words.nth(i).inner_text() == attribution["text"]
            assert float(words.nth(i).get_attribute("data-score")) == pytest.approx(
                attribution["score"], abs=1e-6
            )
        expect(page.locator("#explain-target")).to_contain_text("emergency")

        # progress: labeling one item counts it today and takes it off the queue
        today = int(page.locator("#labeled-today").inner_text())
        expect(page.locator("#queued")).to_have_text("2")
        answer_with_key(page, first, "4")
        expect(page.locator("#labeled-today")).to_have_text(str(today + 1))
        expect(page.locator("#queued")).to_have_text("1")
        expect(page.locator("#saved")).to_contain_text(f"#{first} → {LABELS[3]}")
        assert queue.get(first)["label"] == LABELS[3]
        assert shown_item(page)["id"] == second

        # no reviewer name: nothing is sent, the page asks for it
        page.fill("#reviewer", "")
        page.locator("#item-text").focus()
        page.keyboard.press("1")
        expect(page.locator("#error")).to_have_text("검토자 이름을 입력하세요.")
        expect(page.locator("#reviewer")).to_be_focused()
        assert queue.get(second)["status"] == "queued"
        page.fill("#reviewer", REVIEWER)

        # another reviewer answered meanwhile: 409, and the page goes on to the next item
        queue.record(second, "labeled", label=LABELS[0], reviewer="다른검토자")
        answer_with_key(page, second, "s")
        expect(page.locator("#saved")).to_contain_text("이미 검토되었습니다")
        expect(page.locator("#empty")).to_be_visible()
        assert (queue.get(second)["status"], queue.get(second)["reviewer"]) == ("labeled", "다른검토자")
        page.screenshot(path=str(tmp_path / "review_page.png"), full_page=True)

        # the reviewer's name is remembered by the browser; the key is not
        page.reload()
        expect(page.locator("#reviewer")).to_have_value(REVIEWER)
        expect(page.locator("#api-key")).to_have_value("")
        sign_in(page, "wrong-key", REVIEWER)
        expect(page.locator("#error")).to_contain_text("인증에 실패했습니다")
        expect(page.locator("#error")).to_contain_text("wrong API key")
        assert not errors, errors
        assert not foreign, foreign  # self-contained: no CDN, fonts or analytics
    finally:
        context.close()
