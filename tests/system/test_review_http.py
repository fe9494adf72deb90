"""The review routes over real HTTP (server A of conftest.py: API key set, both topologies): items put
in the server's own prediction database with ReviewQueue (as `heara review select` does), then
GET /review/next and POST /review/label as the reviewer page calls them, checked in the database.
The page in Chromium: test_review_page.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from live_service import AUTH, LABELS, REVIEW_SCORES, queue_for_review, review_queue

from training.bench.serve import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def queue(server: Server):
    """Server A's review queue, emptied of what earlier tests left queued."""
    return review_queue(server, emptied=True)


def next_item(server: Server, **params) -> dict:
    r = httpx.get(f"{server.url}/review/next", params=params, headers=AUTH, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    return r.json()


def answer(server: Server, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/review/label", json=body, headers=headers or AUTH, timeout=10)


def test_the_page_is_open_and_its_calls_need_the_key(server: Server) -> None:
    r = httpx.get(f"{server.url}/review", timeout=10)  # a browser cannot send the key when opening a page
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:200]
    assert "발화 검토" in r.text and "connect-src 'self'" in r.headers["content-security-policy"]
    assert "<script src" not in r.text and "<link" not in r.text  # inline only
    for method, path in (("GET", "/review/next"), ("POST", "/review/label")):
        r = httpx.request(method, f"{server.url}{path}", json={}, timeout=10)
        assert r.status_code == 401 and "missing API key" in r.json()["error"], (path, r.text)


def test_items_come_danger_first_and_each_answer_is_stored(server: Server, queue) -> None:
    first, second, danger = queue_for_review(queue, ["random", "uncertain", "danger"])
    body = next_item(server)
    item = body["item"]
    assert item["id"] == danger and item["stratum"] == "danger"  # danger first, although queued last
    assert item["masked_text"] == "[PHONE]로 연락 주세요 2" and "raw_text" not in item
    assert (item["suggestion"], item["model_version"]) == ("emergency", "1")
    assert item["scores"] == pytest.approx(REVIEW_SCORES)
    assert body["counts"]["queued"] == 3 and "1234-5678" not in str(body)

    r = answer(server, {"id": danger, "status": "labeled", "label": "distress", "reviewer": " 김검토 "})
    assert r.status_code == 200, r.text
    assert {k: v for k, v in r.json().items() if k != "ts_reviewed"} == {
        "id": danger,
        "status": "labeled",
        "label": "distress",
        "reviewer": "김검토",
    }
    assert next_item(server)["item"]["id"] == first  # then the oldest queued
    assert answer(server, {"id": first, "status": "skipped", "reviewer": "김검토"}).status_code == 200
    assert next_item(server)["item"]["id"] == second
    r = answer(server, {"id": second, "status": "unsure", "label": "normal", "reviewer": "김검토"})
    assert r.status_code == 200 and r.json()["label"] == "normal", r.text  # unsure keeps a guess

    rows = {i: queue.get(i) for i in (first, second, danger)}
    assert [(rows[i]["status"], rows[i]["label"], rows[i]["reviewer"]) for i in (danger, first, second)] == [
        ("labeled", "distress", "김검토"),
        ("skipped", None, "김검토"),
        ("unsure", "normal", "김검토"),
    ]
    assert all(rows[i]["ts_reviewed"] for i in rows)
    done = next_item(server)
    assert done["item"] is None and done["counts"]["queued"] == 0
    assert done["counts"]["labeled_since"] >= 1 and done["counts"]["labeled"] >= 1


def test_labeled_since_counts_the_reviewers_day(server: Server, queue) -> None:
    (item_id,) = queue_for_review(queue, ["random"])

    def labeled_since(since: datetime) -> int:
        return next_item(server, since=since.isoformat())["counts"]["labeled_since"]

    start = datetime.now(UTC) - timedelta(seconds=1)
    before = labeled_since(start)
    r = answer(server, {"id": item_id, "status": "labeled", "label": "normal", "reviewer": "lee"})
    assert r.is_success, r.text
    assert labeled_since(start) == before + 1
    assert labeled_since(datetime.now(UTC) + timedelta(hours=1)) == 0
    # the page sends the reviewer's local midnight, as JavaScript's toISOString() writes it
    assert next_item(server, since="2020-01-01T00:00:00.000Z")["counts"]["labeled_since"] >= 1
    default = next_item(server)["counts"]  # without `since`: UTC midnight
    utc_midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert default["since"] == utc_midnight.isoformat() and default["labeled_since"] >= 1


@pytest.mark.parametrize(
    "body, field, words",
    [
        (
            {"status": "labeled", "label": "fire", "reviewer": "kim"},
            "label",
            "not a label of the served model",
        ),
        ({"status": "labeled", "reviewer": "kim"}, "label", "required"),
        ({"status": "labeled", "label": "normal"}, "reviewer", "required"),
        ({"status": "labeled", "label": "normal", "reviewer": ""}, "reviewer", "required"),
        ({"status": "done", "label": "normal", "reviewer": "kim"}, "status", "labeled, skipped, unsure"),
        ({"status": "skipped", "reviewer": "kim", "note": "?"}, "note", "unknown key"),
    ],
)
def test_a_bad_answer_is_400_naming_the_field(
    server: Server, queue, body: dict, field: str, words: str
) -> None:
    (item_id,) = queue_for_review(queue, ["random"])
    r = answer(server, {"id": item_id, **body})
    assert r.status_code == 400, r.text
    error = r.json()
    assert error["error"].startswith(f"{field}: ") and words in error["error"], error
    assert error["detail"][0]["loc"] == [field]
    assert queue.get(item_id)["status"] == "queued"  # nothing was recorded


def test_unknown_id_404_answered_twice_409_and_wrong_bodies(server: Server, queue) -> None:
    (item_id,) = queue_for_review(queue, ["random"])
    r = answer(server, {"id": 10**12, "status": "skipped", "reviewer": "kim"})
    assert r.status_code == 404 and "no review item" in r.json()["error"], r.text
    assert answer(
        server, {"id": item_id, "status": "labeled", "label": LABELS[1], "reviewer": "kim"}
    ).is_success
    r = answer(server, {"id": item_id, "status": "labeled", "label": LABELS[0], "reviewer": "lee"})
    assert r.status_code == 409 and "reviewed already" in r.json()["error"], r.text
    row = queue.get(item_id)
    assert (row["label"], row["reviewer"]) == (LABELS[1], "kim")  # the first answer stands

    url = f"{server.url}/review/label"
    r = httpx.post(url, content=b"id=1", headers={**AUTH, "Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415, r.text
    r = httpx.post(url, content=b'{"id": 1, "id": 2}', headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and "duplicate key" in r.json()["error"], r.text
    r = httpx.post(url, content=b"[1]", headers={**AUTH, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["detail"][0]["loc"] == ["body"], r.text
    r = httpx.get(f"{server.url}/review/next", params={"since": "어제"}, headers=AUTH, timeout=10)
    assert r.status_code == 400 and r.json()["error"].startswith("since: "), r.text
