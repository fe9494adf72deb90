"""The prediction log's speaker, session and device ids (serving.predlog): the columns, the migration of a
table made by the code before them (ALTER TABLE at start), old journal lines, and `PredictionLog.timeline`
on SQLite and PostgreSQL (the stores of test_predlog.py)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from test_predlog import (
    PHONE,
    Store,
    open_log,
    pg_url,  # noqa: F401  fixtures: the session's PostgreSQL database ...
    records,
)
from test_predlog import store as stores  # noqa: F401  ... and its stores (SQLite, PostgreSQL)

from serving.predlog import COLUMNS, ID_COLUMNS, _record_from_line, journal_line, make_records
from training.model.predictor import Prediction

# The table as the code before the id columns created it (SQLite and PostgreSQL spellings).
OLD_TABLE = {
    "sqlite": "id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, ts TEXT NOT NULL, model_name TEXT, "
    "model_version TEXT, label TEXT, score REAL, latency_ms REAL, text_hash TEXT, masked_text TEXT, "
    "raw_text TEXT, danger INTEGER NOT NULL, scores_json TEXT",
    "postgresql": "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, request_id TEXT NOT NULL, "
    "ts TIMESTAMPTZ NOT NULL, model_name TEXT, model_version TEXT, label TEXT, score DOUBLE PRECISION, "
    "latency_ms DOUBLE PRECISION, text_hash TEXT, masked_text TEXT, raw_text TEXT, danger BOOLEAN NOT NULL, "
    "scores_json TEXT",
}


@pytest.fixture
def db(stores: Store) -> Store:  # noqa: F811  the imported fixture, requested by name
    """test_predlog.py's `store`: a table of the test's own in SQLite, then in PostgreSQL."""
    return stores


def kind(db: Store) -> str:
    return "sqlite" if db.url.startswith("sqlite") else "postgresql"


def spoken(request_id: str, ts: datetime, speaker: str | None, danger: bool, session: str | None = None):
    recs = make_records(
        request_id,
        [f"{PHONE} 도와주세요"],
        [Prediction("emergency" if danger else "normal", 0.8, {"emergency": 0.8 if danger else 0.1})],
        "heara-danger",
        "3",
        5.0,
        danger_flags=[danger],
        ids={"speaker_id": speaker, "session_id": session, "device_id": "dev-1" if speaker else None},
    )
    return [r.__class__(**{**{c: getattr(r, c) for c in COLUMNS}, "ts": ts}) for r in recs]


def test_ids_are_stored_in_their_columns_and_the_journal(db):
    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    with open_log(db) as log:
        log.log(spoken("r1", t0, "spk-a", True, session="ses-1"))
        log.log(records("r2"))  # no ids
        assert log.flush(10)
    rows = db.rows()
    assert [(r["speaker_id"], r["session_id"], r["device_id"]) for r in rows] == [
        ("spk-a", "ses-1", "dev-1"),
        *[(None, None, None)] * 3,
    ]
    line = orjson.loads(journal_line(spoken("r1", t0, "spk-a", True)[0], store_raw=False))
    assert line["speaker_id"] == "spk-a" and line["device_id"] == "dev-1"


def test_a_journal_line_written_before_the_ids_still_replays():
    line = json.loads(journal_line(records("old")[0], store_raw=False))
    for column in ID_COLUMNS:
        del line[column]
    rec = _record_from_line(json.dumps(line, ensure_ascii=False).encode())
    assert rec.request_id == "old" and (rec.speaker_id, rec.session_id, rec.device_id) == (None, None, None)


def test_a_timeline_is_one_speakers_newest_rows_oldest_first(db):
    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    with open_log(db) as log:
        for i in range(6):
            log.log(spoken(f"a{i}", t0 + timedelta(minutes=i), "spk-a", i % 2 == 0, session="ses-1"))
        log.log(spoken("b0", t0, "spk-b", True, session="ses-2"))
        assert log.flush(10)
        rows = log.timeline(speaker_id="spk-a", limit=4)
        assert [r["ts"][11:16] for r in rows] == ["09:02", "09:03", "09:04", "09:05"]
        assert [r["danger"] for r in rows] == [True, False, True, False]
        assert set(rows[0]) == {
            "ts",
            "model_version",
            "label",
            "score",
            "danger",
            "masked_text",
            "scores",
            "speaker_id",
            "session_id",
            "device_id",
        }
        assert rows[0]["scores"] == {"emergency": 0.8} and rows[0]["session_id"] == "ses-1"
        assert not any(PHONE in json.dumps(r, ensure_ascii=False) for r in rows)  # masked text only
        assert len(log.timeline(speaker_id="spk-a", since=t0 + timedelta(minutes=4))) == 2
        assert [r["speaker_id"] for r in log.timeline(session_id="ses-2")] == ["spk-b"]
        assert log.timeline(speaker_id="nobody") == []
        with pytest.raises(ValueError, match="exactly one"):
            log.timeline(speaker_id="spk-a", session_id="ses-1")


def test_an_older_table_gets_the_id_columns_at_start(db):
    t0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    ts = t0.isoformat(timespec="microseconds")
    db.execute(f"CREATE TABLE {db.table} ({OLD_TABLE[kind(db)]})")
    danger = "1" if kind(db) == "sqlite" else "TRUE"
    db.execute(
        f"INSERT INTO {db.table} (request_id, ts, model_name, model_version, label, score, latency_ms, "
        f"text_hash, masked_text, raw_text, danger, scores_json) VALUES ('old', '{ts}', 'm', '1', "
        f"'emergency', 0.9, 1.0, 'h', 'x', NULL, {danger}, '{{}}')"
    )
    with open_log(db) as log:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not set(ID_COLUMNS) <= columns(db):
            time.sleep(0.02)  # the writer adds them when it starts, before anything is logged
        assert set(ID_COLUMNS) <= columns(db)
        log.log(spoken("new", t0 + timedelta(minutes=1), "spk-a", True))
        assert log.flush(10)
        assert [r["ts"][11:16] for r in log.timeline(speaker_id="spk-a")] == ["09:01"]
    rows = db.rows()
    assert [(r["request_id"], r["speaker_id"]) for r in rows] == [("old", None), ("new", "spk-a")]
    assert {f"{db.table}_speaker_idx", f"{db.table}_session_idx"} <= indexes(db)
    with open_log(db) as again:  # a second start finds nothing to add
        again.log(spoken("newer", t0 + timedelta(minutes=2), "spk-a", False))
        assert again.flush(10) and len(again.timeline(speaker_id="spk-a")) == 2


def test_an_older_table_not_migrated_yet_has_no_timelines(db):
    db.execute(f"CREATE TABLE {db.table} ({OLD_TABLE[kind(db)]})")
    log = open_log(db, durability="async")
    try:
        log._thread.join(0)  # the writer may or may not have migrated it yet: [] either way
        assert log.timeline(speaker_id="spk-a") == []
    finally:
        log.close()


def columns(db: Store) -> set[str]:
    if kind(db) == "sqlite":
        return {r[1] for r in db.execute(f"PRAGMA table_info({db.table})")}
    return {
        r[0]
        for r in db.execute(
            f"SELECT column_name FROM information_schema.columns WHERE table_name = '{db.table}'"
        )
    }


def indexes(db: Store) -> set[str]:
    if kind(db) == "sqlite":
        return {r[1] for r in db.execute(f"PRAGMA index_list({db.table})")}
    return {r[0] for r in db.execute(f"SELECT indexname FROM pg_indexes WHERE tablename = '{db.table}'")}
