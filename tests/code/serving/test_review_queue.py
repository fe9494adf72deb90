"""The review queue on SQLite and PostgreSQL (skipped when the server is unreachable, like test_predlog):
enqueueing once per prediction, the order items are shown in, recording decisions, counts, the export
bookkeeping and the production holdout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from test_predlog import pg_url  # noqa: F401  the session's PostgreSQL database, as a fixture

from serving.predlog import PredictionLog, make_records
from serving.review_queue import STATUSES, STRATA, AlreadyReviewed, ReviewQueue, UnknownItem
from training.model.predictor import Prediction

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def queue(url):
    table = f"review_{uuid.uuid4().hex[:10]}"
    q = ReviewQueue(url, table=table)
    yield q
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def item(pid: int, stratum: str = "random", label: str = "일상", **extra) -> dict:
    return {
        "id": pid,
        "ts": (T0 + timedelta(seconds=pid)).isoformat(),
        "model_version": "3",
        "label": label,
        "masked_text": f"문장 {pid} <PHONE>",
        "raw_text": f"문장 {pid} 010-1234-5678",
        "scores": {"일상": 0.6, "불만": 0.4},
        "stratum": stratum,
        **extra,
    }


def test_an_empty_queue_reads_as_empty_without_creating_anything(tmp_path):
    q = ReviewQueue(f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert q.next_item() is None and q.get(1) is None and q.holdout(10) == []
    assert q.counts()["total"] == 0 and q.reviewed_unexported() == []
    assert not (tmp_path / "none.sqlite").exists()


def test_enqueue_skips_predictions_already_queued(queue):
    assert queue.enqueue([item(1), item(2, "uncertain")]) == 2
    assert queue.enqueue([item(2, "novel"), item(3, "danger")]) == 1
    assert queue.enqueue([]) == 0
    counts = queue.counts()
    assert counts["total"] == 3 and counts["status"]["queued"] == 3
    assert counts["stratum"] == {"danger": 1, "uncertain": 1, "novel": 0, "random": 1}
    assert set(counts["status"]) == set(STATUSES) and set(counts["by_stratum"]) == set(STRATA)
    stored = queue.get(queue.next_item()["id"])
    assert stored["prediction_id"] == 3 and stored["suggested_label"] == "일상"
    assert stored["scores"] == {"일상": 0.6, "불만": 0.4}
    assert stored["raw_text"] is None and stored["masked_text"] == "문장 3 <PHONE>"  # raw only when on
    assert stored["ts_predicted"].startswith("2026-05-01T09:00:03")


def test_raw_text_is_kept_only_when_the_queue_stores_raw_text(url):
    q = ReviewQueue(url, store_raw=True, table=f"review_{uuid.uuid4().hex[:10]}")
    try:
        q.enqueue([item(1)])
        assert q.next_item()["raw_text"] == "문장 1 010-1234-5678"
    finally:
        if url.startswith("postgresql"):
            import psycopg

            with psycopg.connect(url, autocommit=True) as con:
                con.execute(f"DROP TABLE IF EXISTS {q.table}")


def test_bad_items_are_refused(queue):
    with pytest.raises(ValueError, match="stratum"):
        queue.enqueue([item(1, "weird")])
    with pytest.raises(ValueError, match="prediction_id"):
        queue.enqueue([{"stratum": "random"}])


def test_next_item_shows_danger_first_then_the_oldest_and_honours_exclusions(queue):
    queue.enqueue([item(1, "uncertain")], now=T0)
    queue.enqueue([item(2, "random")], now=T0 + timedelta(minutes=1))
    queue.enqueue([item(3, "danger")], now=T0 + timedelta(minutes=2))
    first = queue.next_item()
    assert first["prediction_id"] == 3
    second = queue.next_item(exclude_ids=[first["id"]])
    assert second["prediction_id"] == 1
    queue.record(first["id"], "skipped", reviewer="kim")
    assert queue.next_item()["prediction_id"] == 1
    third = queue.next_item(exclude_ids=[second["id"]])
    assert third["prediction_id"] == 2 and queue.next_item(exclude_ids=[second["id"], third["id"]]) is None


def test_record_validates_and_stores_the_decision(queue):
    queue.enqueue([item(1, "uncertain"), item(2), item(3)])
    a, b, c = sorted(r["id"] for r in queue.items())
    with pytest.raises(ValueError, match="label is required"):
        queue.record(a, "labeled", label="  ")
    with pytest.raises(ValueError, match="status"):
        queue.record(a, "queued")
    with pytest.raises(UnknownItem):
        queue.record(9999, "skipped")
    done = queue.record(a, "labeled", label="불만", reviewer="kim", now=T0)
    assert (done["status"], done["label"], done["reviewer"]) == ("labeled", "불만", "kim")
    assert done["ts_reviewed"].startswith("2026-05-01T09:00:00")
    assert queue.record(b, "skipped", label="불만")["label"] is None  # a skipped item has no label
    assert queue.record(c, "unsure", label="일상")["label"] == "일상"  # kept as a guess, never exported
    counts = queue.counts()
    assert counts["status"] == {"queued": 0, "labeled": 1, "skipped": 1, "unsure": 1}
    assert counts["unexported"] == 1


def test_only_queued_refuses_a_second_answer_and_labeled_since_counts_the_day(queue):
    """The review page records with only_queued: of two reviewers shown the same item, the second gets
    AlreadyReviewed (checked in the UPDATE itself) and the first answer stays."""
    queue.enqueue([item(1), item(2), item(3)])
    a, b, c = sorted(r["id"] for r in queue.items())
    queue.record(a, "labeled", label="불만", reviewer="kim", now=T0, only_queued=True)
    with pytest.raises(AlreadyReviewed, match="reviewed already"):
        queue.record(a, "labeled", label="일상", reviewer="lee", only_queued=True)
    assert (queue.get(a)["label"], queue.get(a)["reviewer"]) == ("불만", "kim")
    queue.record(b, "labeled", label="일상", reviewer="kim", now=T0 + timedelta(days=1))
    queue.record(c, "skipped", reviewer="kim", now=T0 + timedelta(days=1))
    assert queue.labeled_since(T0) == 2 and queue.labeled_since(T0 + timedelta(hours=1)) == 1
    assert queue.labeled_since(T0 + timedelta(days=2)) == 0


def test_export_bookkeeping_and_exported_items_are_frozen(queue):
    queue.enqueue([item(i, "uncertain") for i in range(1, 5)] + [item(5, "random")])
    a, b, c, d, holdout = sorted(r["id"] for r in queue.items())
    queue.record(a, "labeled", label="불만", now=T0 + timedelta(minutes=2))
    queue.record(b, "labeled", label="일상", now=T0 + timedelta(minutes=1))
    queue.record(c, "unsure", label="일상")
    queue.record(d, "skipped")
    queue.record(holdout, "labeled", label="일상")  # the production holdout: never trained on
    assert [r["id"] for r in queue.reviewed_unexported()] == [b, a]  # oldest review first, labeled only
    assert queue.counts()["unexported"] == 2
    assert queue.mark_exported([a, b, c, d, holdout], "20260501T090000Z") == 2
    assert queue.reviewed_unexported() == [] and queue.counts()["unexported"] == 0
    assert queue.get(holdout)["export_id"] is None
    assert queue.get(a)["export_id"] == "20260501T090000Z"
    with pytest.raises(ValueError, match="exported already"):
        queue.record(a, "labeled", label="일상")
    assert queue.mark_exported([], "x") == 0


def test_holdout_is_the_labeled_random_stratum_newest_first(queue):
    queue.enqueue([item(1, "random"), item(2, "random"), item(3, "uncertain"), item(4, "random")])
    by_pid = {r["prediction_id"]: r["id"] for r in queue.items()}
    queue.record(by_pid[1], "labeled", label="불만", now=T0)
    queue.record(by_pid[2], "labeled", label="일상", now=T0 + timedelta(minutes=1))
    queue.record(by_pid[3], "labeled", label="불만", now=T0)  # not random: biased, not in the holdout
    queue.record(by_pid[4], "unsure", label="불만", now=T0)
    rows = queue.holdout(10)
    assert [r["prediction_id"] for r in rows] == [2, 1]
    assert [(r["suggested_label"], r["label"]) for r in rows] == [("일상", "일상"), ("일상", "불만")]
    assert len(queue.holdout(1)) == 1


def test_window_rows_of_the_prediction_log_enqueue_as_they_are(url):
    """The ids PredictionLog.window() gives are the prediction ids the queue keeps."""
    suffix = uuid.uuid4().hex[:10]
    log = PredictionLog(url, table=f"predictions_{suffix}", flush_interval_s=0.05)
    q = ReviewQueue(url, table=f"review_{suffix}")
    try:
        preds = [Prediction(label="일상", score=0.7, scores={"일상": 0.7, "불만": 0.3})] * 2
        texts = ["안녕", "환불해 주세요"]
        log.log(make_records("r1", texts, preds, "m", "5", 3.0, danger_flags=[False, True]))
        assert log.flush(10)
        rows = log.window(10)
        assert [r["danger"] for r in rows] == [False, True]
        assert q.enqueue([{**r, "stratum": "danger" if r["danger"] else "random"} for r in rows]) == 2
        assert q.next_item()["prediction_id"] == rows[1]["id"]
    finally:
        log.close()
        if url.startswith("postgresql"):
            import psycopg

            with psycopg.connect(url, autocommit=True) as con:
                con.execute(f"DROP TABLE IF EXISTS predictions_{suffix}")
                con.execute(f"DROP TABLE IF EXISTS review_{suffix}")


def test_queued_among_names_the_predictions_already_queued(queue):
    assert queue.queued_among([1, 2]) == set()
    queue.enqueue([item(1), item(3, "danger")])
    assert queue.queued_among(range(1, 1200)) == {1, 3}  # more ids than one IN list takes
