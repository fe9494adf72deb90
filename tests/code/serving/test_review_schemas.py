"""The review page's API shapes (serving/schemas.py): a reviewer's answer checked field by field (the
400 names the field), the `since` of GET /review/next, a queue row as the page sees it. Over HTTP:
tests/system/test_review_http.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serving.review_queue import REVIEWED
from serving.schemas import ReviewProblem, review_answer, review_item, review_since

LABELS = ["normal", "emergency", "confusion", "distress"]


def answer(**body) -> dict:
    return review_answer(body, LABELS, REVIEWED)


def test_a_valid_answer_is_returned_with_the_reviewer_tidied() -> None:
    assert answer(id=3, status="labeled", label="emergency", reviewer="  김  검토 ") == {
        "id": 3,
        "status": "labeled",
        "label": "emergency",
        "reviewer": "김 검토",
    }
    assert answer(id=1, status="skipped", reviewer="a")["label"] is None
    assert answer(id=1, status="unsure", label="normal", reviewer="a")["label"] == "normal"  # a guess
    assert answer(id=1, status="unsure", label=None, reviewer="a")["label"] is None


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"id": 1, "status": "labeled", "label": "fire", "reviewer": "a"}, "label", "not a label"),
        ({"id": 1, "status": "labeled", "reviewer": "a"}, "label", "required"),
        ({"id": 1, "status": "labeled", "label": 3, "reviewer": "a"}, "label", "string"),
        ({"id": 1, "status": "skipped", "label": "normal", "reviewer": "a"}, "label", "skipped"),
        ({"id": 1, "status": "labeled", "label": "normal"}, "reviewer", "required"),
        ({"id": 1, "status": "labeled", "label": "normal", "reviewer": "  "}, "reviewer", "required"),
        ({"id": 1, "status": "labeled", "label": "normal", "reviewer": "a" * 65}, "reviewer", "64"),
        ({"id": 1, "status": "labeled", "label": "normal", "reviewer": "a\u200bb"}, "reviewer", "visible"),
        ({"id": 1, "status": "queued", "reviewer": "a"}, "status", "labeled, skipped, unsure"),
        ({"id": 1, "reviewer": "a"}, "status", "one of"),
        ({"id": "1", "status": "skipped", "reviewer": "a"}, "id", "whole number"),
        ({"id": True, "status": "skipped", "reviewer": "a"}, "id", "whole number"),
        ({"id": 0, "status": "skipped", "reviewer": "a"}, "id", "at least 1"),
        ({"status": "skipped", "reviewer": "a"}, "id", "required"),
        ({"id": 1, "status": "skipped", "reviewer": "a", "note": "x"}, "note", "unknown key"),
    ],
)
def test_each_broken_rule_names_its_field(body: dict, field: str, words: str) -> None:
    with pytest.raises(ReviewProblem) as info:
        review_answer(body, LABELS, REVIEWED)
    problem = info.value
    assert problem.field == field and words in str(problem), str(problem)
    out = problem.body()
    assert out["error"].startswith(f"{field}: ") and out["detail"][0]["loc"] == [field]


def test_an_unknown_label_is_masked_and_the_labels_listed() -> None:
    with pytest.raises(ReviewProblem) as info:
        answer(id=1, status="labeled", label="010-1234-5678", reviewer="a")
    assert "1234-5678" not in str(info.value) and "normal, emergency, confusion, distress" in str(info.value)


def test_the_body_must_be_an_object() -> None:
    with pytest.raises(ReviewProblem, match="JSON object"):
        review_answer([1, 2], LABELS, REVIEWED)


def test_since_is_the_reviewers_midnight_or_utc_midnight() -> None:
    now = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert review_since(None, now) == datetime(2026, 11, 28, tzinfo=UTC)
    seoul = review_since("2026-11-28T00:00:00+09:00", now)
    assert seoul == datetime(2026, 11, 27, 15, tzinfo=UTC) and seoul.tzinfo == UTC
    assert review_since("2026-11-27T15:00:00.000Z", now) == seoul  # what the page sends (toISOString)
    assert review_since("2026-11-28T00:00:00", now) == datetime(2026, 11, 28, tzinfo=UTC)  # naive: UTC
    assert review_since("2026-11-28T00:00:00-05:00", now).utcoffset() == timedelta(0)
    for bad in ("yesterday", "", "0001-01-01T00:00:00+14:00"):
        with pytest.raises(ReviewProblem, match="since: an ISO 8601 time"):
            review_since(bad, now)


def test_a_queue_row_shows_the_masked_text_only() -> None:
    row = {
        "id": 7,
        "prediction_id": 70,
        "masked_text": "[PHONE]로 연락 주세요",
        "raw_text": "010-1234-5678로 연락 주세요",
        "suggested_label": "emergency",
        "scores": {"emergency": 0.7, "normal": 0.3},
        "stratum": "danger",
        "model_version": "3",
        "ts_predicted": "2026-11-28T00:00:00.000000+00:00",
        "ts_queued": "2026-11-28T01:00:00.000000+00:00",
        "status": "queued",
    }
    item = review_item(row)
    assert item["suggestion"] == "emergency" and item["id"] == 7 and "raw_text" not in item
    assert "1234" not in str(item)
