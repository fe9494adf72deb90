"""Labeling review items the way a reviewer does: the reviewer page (GET /review) in headless Chromium,
the API key and the reviewer's name typed in, then one key per item. Imported by name (like
live_service) by test_review_page.py and by longer tests that need people's labels in the loop
(serve -> traffic -> monitor -> queue -> label -> export -> retrain).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from chromium import chromium, expect

TIMEOUT_MS = 15_000


def open_review_page(browser: Any, base_url: str) -> tuple[Any, Any, list[str]]:
    """A fresh context (Korean locale, Seoul time) on `base_url`/review: (context, page, the page's
    JavaScript errors, filled in as they happen)."""
    context = browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base_url}/review")
    return context, page, errors


def sign_in(page: Any, api_key: str | None, reviewer: str) -> None:
    """Type the key and the name, press Enter: the page loads the model's labels and the first item."""
    page.fill("#api-key", api_key or "")
    page.fill("#reviewer", reviewer)
    page.press("#reviewer", "Enter")


def shown_item(page: Any) -> dict[str, Any] | None:
    """The item on screen once the page settled after the last answer: id, masked text, suggestion;
    None when the page says the queue is empty."""
    expect(page.locator("#item:not([hidden]), #empty:not([hidden])")).to_have_count(1)
    if page.locator("#empty").is_visible():
        return None
    return {
        "id": int(page.locator("#item").get_attribute("data-item-id")),
        # textContent, not the rendered text: exactly the stored masked text (runs of spaces kept)
        "masked_text": page.locator("#item-text").text_content(),
        "suggestion": page.locator("#suggestion").text_content(),
    }


def answer_with_key(page: Any, item_id: int, key: str) -> None:
    """Press `key` ("1".."9", "s", "u") with the item on screen, then wait until the answer is saved
    and the next item (or the empty queue) is shown."""
    page.locator("#item-text").focus()
    page.keyboard.press(key)
    expect(page.locator("#saved")).to_contain_text(re.compile(rf"#{item_id}(?!\d)"))
    page.wait_for_function(
        "id => document.getElementById('item').hidden"
        " || document.getElementById('item').dataset.itemId !== String(id)",
        arg=item_id,
    )


def label_items_in_browser(
    base_url: str,
    api_key: str | None,
    reviewer: str,
    n: int,
    key_for_item: Callable[[dict[str, Any]], str],
    *,
    browser: Any = None,
) -> list[dict[str, Any]]:
    """Answer `n` items on the reviewer page from the keyboard. `key_for_item(item)` gets the item on
    screen ({"id", "masked_text", "suggestion"}) and returns the key to press: "1".."9" for the
    model's labels in order, "s" to skip, "u" for unsure. Returns the items with the key pressed
    (`"key"`). Uses `browser` (a Playwright Browser) when given, else the Chromium this process has
    open (chromium.py), else launches one. Fails when the queue empties before `n` items or the page
    raised a JavaScript error."""
    done: list[dict[str, Any]] = []
    with nullcontext(browser) if browser is not None else chromium() as b:
        context, page, errors = open_review_page(b, base_url)
        try:
            sign_in(page, api_key, reviewer)
            for _ in range(n):
                item = shown_item(page)
                assert item is not None, f"the review queue emptied after {len(done)} of {n} items"
                key = key_for_item(item)
                answer_with_key(page, item["id"], key)
                done.append({**item, "key": key})
            assert not errors, errors
        finally:
            context.close()
    return done
