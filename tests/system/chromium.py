"""Headless Chromium for the page tests (test_try_page.py, test_review_page.py) and for helpers that
drive a page for a longer test (review_browser.py). Imported by name, like live_service.

Driver: Playwright for Python, launching Debian's /usr/bin/chromium (`make browser` installs it;
Playwright never downloads a browser here). Without Chromium a test fails and says how to get it;
HEARA_SKIP_BROWSER=1 skips the browser tests explicitly. HEARA_CHROMIUM points at another binary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = os.environ.get("HEARA_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google on this closed network.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The Browser a `chromium()` block holds open in this process. Playwright's sync API runs one instance
# per thread ("Sync API inside the asyncio loop" otherwise), so a block opened while another is open
# (two test modules' session fixtures, a helper called from a test that has one) shares it.
_OPEN: list = []


@contextmanager
def chromium() -> Iterator:
    """A launched headless Chromium (playwright.sync_api.Browser), or the one already open in this
    process; skips or fails the test, saying why, when there is none."""
    if _OPEN:
        yield _OPEN[-1]
        return
    if os.environ.get("HEARA_SKIP_BROWSER") == "1":
        pytest.skip("HEARA_SKIP_BROWSER=1: browser tests skipped on request")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make browser` (Debian: apt-get install chromium) or "
            "set HEARA_CHROMIUM=/path/to/chromium; HEARA_SKIP_BROWSER=1 skips the browser tests",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the Python package playwright is missing: run `make install` (it is in the dev extra)",
            pytrace=False,
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _OPEN.append(browser)
        try:
            yield browser
        finally:
            _OPEN.remove(browser)
            browser.close()


def expect(locator):
    """Playwright's `expect`: assertions that wait for the page's asynchronous updates."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)
