"""The recent-predictions ring buffer behind GET /recent (serving.recent), on records built by the
prediction log's own `make_records`."""

from __future__ import annotations

import threading

import pytest

from serving.predlog import make_records
from serving.recent import DEFAULT_SIZE, RecentPredictions
from training.env import recent_size

SIZE_ENV = "HEARA_RECENT_SIZE"


def size_from_env() -> int:
    return recent_size(DEFAULT_SIZE)


def records(rid: str, texts: list[str], labels: list[str], *, store_raw: bool = False, danger: bool = False):
    preds = [{"label": lab, "score": 0.9, "scores": {lab: 0.9, "other": 0.1}} for lab in labels]
    return make_records(
        rid, texts, preds, "heara-danger", "3", 12.5, store_raw=store_raw, danger_flags=[danger] * len(texts)
    )


def test_newest_first_and_capped_at_capacity() -> None:
    buf = RecentPredictions(capacity=3)
    for i in range(5):
        buf.add(records(f"r{i}", [f"문장 {i}"], ["normal"]))
    snap = buf.snapshot()
    assert [p["request_id"] for p in snap["predictions"]] == ["r4", "r3", "r2"]
    assert snap["capacity"] == 3 and snap["total"] == 5  # counts cover every prediction since start
    assert [p["request_id"] for p in buf.snapshot(limit=2)["predictions"]] == ["r4", "r3"]


def test_label_counts_since_start_most_common_first() -> None:
    buf = RecentPredictions(capacity=2)
    buf.add(records("a", ["x", "y", "z"], ["normal", "emergency", "emergency"], danger=True))
    buf.add(records("b", ["w"], ["distress"]))
    snap = buf.snapshot()
    assert snap["label_counts"] == {"emergency": 2, "normal": 1, "distress": 1}
    assert list(snap["label_counts"])[0] == "emergency"
    assert snap["total"] == 4 and len(snap["predictions"]) == 2
    assert snap["since"].endswith("+00:00")


def test_entries_hold_masked_text_only_even_with_store_raw() -> None:
    buf = RecentPredictions()
    raw = "010-1234-5678로 연락해 주세요, 메일은 kim@example.com 이에요"
    buf.add(records("pii", [raw], ["emergency"], store_raw=True, danger=True))
    (entry,) = buf.snapshot()["predictions"]
    assert entry["masked_text"] == "[PHONE]로 연락해 주세요, 메일은 [EMAIL] 이에요"
    assert set(entry) == {"ts", "request_id", "masked_text", "label", "score", "danger", "model_version"}
    assert "1234" not in str(entry) and "kim@" not in str(entry)
    assert entry["danger"] is True and entry["model_version"] == "3" and entry["ts"].endswith("+00:00")


def test_concurrent_adds_lose_nothing() -> None:
    buf = RecentPredictions(capacity=10)

    def add_many(t: int) -> None:
        for i in range(200):
            buf.add(records(f"{t}-{i}", ["x", "y"], ["normal", "confusion"]))

    threads = [threading.Thread(target=add_many, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = buf.snapshot()
    assert snap["label_counts"] == {"normal": 1600, "confusion": 1600} and len(snap["predictions"]) == 10


def test_size_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIZE_ENV, raising=False)
    assert size_from_env() == DEFAULT_SIZE == 50
    monkeypatch.setenv(SIZE_ENV, " 7 ")
    assert size_from_env() == 7
    for bad in ("0", "-3", "many"):
        monkeypatch.setenv(SIZE_ENV, bad)
        with pytest.raises(ValueError, match=SIZE_ENV):
            size_from_env()
    with pytest.raises(ValueError, match="at least 1"):
        RecentPredictions(0)
