"""The prediction log's monitoring features (serving.predlog): the `projection` and `descriptors` columns,
the descriptors computed by the writer from what the model host captured, the journal carrying the
capture (masked) and never the unmasked text, the migration of a table made by the code before the
columns, old journal lines, and `PredictionLog.window` returning them; on SQLite and PostgreSQL (the
stores of test_predlog.py)."""

from __future__ import annotations

import json
import time

import numpy as np
import orjson
import pandas as pd
import pytest
from test_predlog import (
    PHONE,
    TEXTS,
    Store,
    journal_text,
    open_durable,
    open_log,
    pg_url,  # noqa: F401  fixtures: the session's PostgreSQL database ...
    predictions,
    records,
)
from test_predlog import store as stores  # noqa: F401  ... and its stores (SQLite, PostgreSQL)
from test_predlog_ids import OLD_TABLE, columns, kind

from serving.predlog import (
    FEATURE_COLUMNS,
    PredictionRecord,
    _record_from_line,
    descriptors_json,
    journal_line,
    make_records,
)
from training.data.descriptors import DESCRIPTORS, describe
from training.model.projection import from_text, to_text
from training.pii import mask_pii

PROJECTION = np.arange(3 * 8, dtype=np.float32).reshape(3, 8) / 7
# What serving.inference captures per text: the projection, the text as the model read it (masked where
# it was made), the piece counts. The last one is the linear family's: no tokenizer, no counts.
CAPTURED = [
    {
        "projection": v,
        "respaced": mask_pii(t.replace("할머니가", "할머니 가")),
        "pieces": k,
        "unk": u,
        "truncated": c,
    }
    for v, t, k, u, c in zip(to_text(PROJECTION), TEXTS, [9, 4, 5], [1, 0, 0], [False, False, True])
]
CAPTURED[2] = {**CAPTURED[2], "pieces": None, "unk": None, "truncated": None}


@pytest.fixture
def db(stores: Store) -> Store:  # noqa: F811  the imported fixture, requested by name
    """test_predlog.py's `store`: a table of the test's own in SQLite, then in PostgreSQL."""
    return stores


def captured_records(request_id: str = "f-1") -> list[PredictionRecord]:
    return make_records(request_id, TEXTS, predictions(), "heara-care", "7", 3.0, features=CAPTURED)


def expected_descriptors() -> list[dict]:
    """What the writer must store: describe() on the masked texts, the rows with counts apart."""
    masked = [mask_pii(t) for t in TEXTS]
    respaced = [c["respaced"] for c in CAPTURED]
    counted = describe(
        masked[:2], respaced=respaced[:2], piece_counts=[9, 4], unk_counts=[1, 0], truncated=[False, False]
    )
    plain = describe(masked[2:], respaced=respaced[2:])
    frame = pd.concat([counted, plain], ignore_index=True)
    return [{k: (None if np.isnan(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_features_are_stored_as_projection_and_descriptors(db: Store, tmp_path) -> None:
    with open_durable(db, tmp_path / "journal") as log:
        assert log.log(captured_records()).result(timeout=5) is None
        assert log.flush(10)
        journal = journal_text(tmp_path / "journal")
        window = log.window(10)
    rows = db.rows()
    assert [r["projection"] for r in rows] == to_text(PROJECTION)
    stored = [json.loads(r["descriptors"]) for r in rows]
    assert [list(d) for d in stored] == [list(DESCRIPTORS)] * 3
    for got, want in zip(stored, expected_descriptors()):
        assert got == pytest.approx(want, abs=1e-6, nan_ok=True)
    assert stored[2]["unk_rate"] is None and stored[2]["truncated"] is None  # no tokenizer: null
    assert stored[0]["unk_rate"] == pytest.approx(1 / 9) and stored[1]["spacing_anomaly"] == 0.0
    assert stored[0]["spacing_anomaly"] == 1.0  # "할머니가" was re-spaced
    # The journal carries the capture (masked), the store only the projection and the descriptors.
    lines = [orjson.loads(x) for x in journal.splitlines()]
    assert [x["features"]["respaced"] for x in lines] == [c["respaced"] for c in CAPTURED]
    assert not any(CAPTURED[0]["respaced"] in str(v) for r in rows for v in r.values())
    assert PHONE not in journal and not any(PHONE in str(v) for r in rows for v in r.values())
    # What heara monitor reads back.
    projection, found = from_text([w["projection"] for w in window], 8)
    assert found.all() and np.allclose(projection, PROJECTION, atol=1e-2)
    assert [w["descriptors"] for w in window] == stored


def test_rows_without_features_store_none_and_a_failure_costs_only_descriptors(db: Store, caplog) -> None:
    broken = {**CAPTURED[0], "pieces": "nine"}  # a capture the writer cannot use
    with open_log(db) as log:
        log.log(records("plain"))
        log.log(make_records("odd", TEXTS[:1], predictions(1), "m", "7", 1.0, features=[broken]))
        assert log.flush(10)
        assert log.stats()["written"] == 4
    rows = db.rows()
    assert [(r["projection"], r["descriptors"]) for r in rows[:3]] == [(None, None)] * 3
    assert rows[3]["projection"] == CAPTURED[0]["projection"] and rows[3]["descriptors"] is None
    assert "descriptors not computed" in caplog.text


def test_make_records_checks_the_feature_count() -> None:
    with pytest.raises(ValueError, match="1 feature sets"):
        make_records("r", TEXTS, predictions(), "m", "7", 1.0, features=CAPTURED[:1])
    (rec,) = make_records("r", TEXTS[:1], predictions(1), "m", "7", 1.0, features=[None])
    assert rec.projection is None and rec.features is None


def test_journal_lines_round_trip_and_old_ones_still_load() -> None:
    rec = captured_records()[0]
    assert _record_from_line(journal_line(rec, store_raw=False)) == rec
    line = json.loads(journal_line(rec, store_raw=False))
    for key in (*FEATURE_COLUMNS, "features"):  # a line written before the monitoring features
        del line[key]
    old = _record_from_line(json.dumps(line, ensure_ascii=False).encode())
    assert (old.projection, old.descriptors, old.features) == (None, None, None)
    assert descriptors_json([old, rec])[0] is None


def test_an_older_table_gets_the_feature_columns_at_start(db: Store) -> None:
    # The table as the code before the monitoring features made it: with the id columns, without these.
    ids = "speaker_id TEXT, session_id TEXT, device_id TEXT"
    db.execute(f"CREATE TABLE {db.table} ({OLD_TABLE[kind(db)]}, {ids})")
    danger = "1" if kind(db) == "sqlite" else "TRUE"
    db.execute(
        f"INSERT INTO {db.table} (request_id, ts, model_name, model_version, label, score, latency_ms, "
        "text_hash, masked_text, raw_text, danger, scores_json) VALUES ('old', "
        f"'2020-01-01T00:00:00.000000+00:00', 'm', '7', 'x', 0.9, 1.0, 'h', 'x', NULL, {danger}, '{{}}')"
    )
    with open_log(db) as log:
        # Either way the window answers: migrated already or not yet (read without the columns).
        assert [(w["projection"], w["descriptors"]) for w in log.window(10)] == [(None, None)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not set(FEATURE_COLUMNS) <= columns(db):
            time.sleep(0.02)  # the writer adds them when it starts, before anything is logged
        assert set(FEATURE_COLUMNS) <= columns(db)
        log.log(captured_records("new"))
        assert log.flush(10)
        window = log.window(10)
    assert [w["projection"] is not None for w in window] == [False, True, True, True]
    assert window[0]["descriptors"] is None and set(window[1]["descriptors"]) == set(DESCRIPTORS)
