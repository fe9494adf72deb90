"""The prediction log against real stores: SQLite in a temporary folder and a local PostgreSQL.

PostgreSQL tests use `heara_test` on `HEARA_TEST_PG_SERVER` (default postgresql://postgres@127.0.0.1:5432),
create the database when it is missing, use a table of their own and drop it afterwards; they are
skipped, with the reason, when the server cannot be reached. Slow and failing stores are real too:
a closed port (connection refused) and a listening socket that never answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from serving.predlog import COLUMNS, PredictionLog, PredictionRecord, make_records
from training.model.predictor import Prediction

PG_SERVER = os.environ.get("HEARA_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
PHONE = "010-1234-5678"
TEXTS = [f"할머니가 {PHONE} 로 전화해 달래요", "배가 고파요", "무서워요 도와주세요"]
FAST_S = 0.25  # a log() call is microseconds; a blocked one would take the store's 2 s connect timeout


def predictions(n: int = 3) -> list[Prediction]:
    labels = ["도움요청", "일상", "도움요청"]
    return [
        Prediction(labels[i % 3], 0.9 - 0.1 * (i % 3), {labels[i % 3]: 0.9 - 0.1 * (i % 3)}) for i in range(n)
    ]


def records(request_id: str = "req-1", texts: list[str] = TEXTS, store_raw: bool = False) -> list:
    return make_records(
        request_id,
        texts,
        predictions(len(texts)),
        "heara-care",
        "7",
        12.5,
        store_raw,
        [i % 3 == 2 for i in range(len(texts))],
    )


# Stores ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> str:
    """postgresql://.../heara_test, created when missing; skipped when the server is unreachable."""
    import psycopg

    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3, autocommit=True) as con:
            if con.execute("SELECT 1 FROM pg_database WHERE datname = 'heara_test'").fetchone() is None:
                try:
                    con.execute("CREATE DATABASE heara_test")
                except psycopg.errors.DuplicateDatabase:  # created by a concurrent run
                    pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {' '.join(str(exc).split())}")
    return f"{PG_SERVER}/heara_test"


@dataclasses.dataclass
class Store:
    """A store URL and a table of the test's own, read back without going through PredictionLog."""

    url: str
    table: str

    def execute(self, sql: str) -> list[tuple]:
        if self.url.startswith("sqlite:///"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as con:
                return con.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as con:
            cur = con.execute(sql)
            return cur.fetchall() if cur.description else []

    def rows(self) -> list[dict]:
        cols = list(COLUMNS)  # the store's schema, from its one home
        rows = [
            dict(zip(cols, r))
            for r in self.execute(f"SELECT {', '.join(cols)} FROM {self.table} ORDER BY id")
        ]
        for r in rows:  # SQLite keeps ISO text and 0/1, PostgreSQL timestamptz and booleans
            r["ts"] = datetime.fromisoformat(r["ts"]) if isinstance(r["ts"], str) else r["ts"]
            r["danger"] = bool(r["danger"])
        return rows

    def count(self) -> int:
        return self.execute(f"SELECT COUNT(*) FROM {self.table}")[0][0]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    table = f"predictions_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        yield Store(f"sqlite:///{tmp_path / 'predictions.sqlite'}", table)
        return
    s = Store(request.getfixturevalue("pg_url"), table)
    yield s
    s.execute(f"DROP TABLE IF EXISTS {table}")


def open_log(store: Store, **kwargs) -> PredictionLog:
    return PredictionLog(store.url, table=store.table, flush_interval_s=0.05, **kwargs)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A port that accepts TCP connections and never answers: a store that hangs until its timeout.
    Closing the socket resets the pending connections, which ends the hang at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield s
    s.close()


def as_stored(rec: PredictionRecord) -> dict:
    """A record's fields as its row holds them: `features` is journaled, never stored (serving.predlog)."""
    return {k: v for k, v in dataclasses.asdict(rec).items() if k != "features"}


def assert_accounted(log: PredictionLog, logged: int) -> None:
    st = log.stats()
    assert st["queued"] == 0
    assert st["written"] + st["dropped"] + st["failed_records"] == logged, st


# Records ----------------------------------------------------------------------------------------


def test_make_records_hashes_masks_and_keeps_raw_text_only_when_asked():
    recs = records()
    assert [r.text_hash for r in recs] == [hashlib.sha256(t.encode()).hexdigest()[:16] for t in TEXTS]
    assert recs[0].masked_text == "할머니가 [PHONE] 로 전화해 달래요"
    assert all(r.raw_text is None for r in recs)
    assert [r.danger for r in recs] == [False, False, True]
    assert recs[0].ts.tzinfo is not None and recs[0].ts.utcoffset() == timedelta(0)
    assert json.loads(recs[0].scores_json) == {"도움요청": 0.9}
    assert records(store_raw=True)[0].raw_text == TEXTS[0]


def test_make_records_accepts_pyfunc_rows_and_rejects_mismatched_lengths():
    row = {"label": "일상", "score": 0.6, "prob_일상": 0.6, "prob_도움요청": 0.4}
    (rec,) = make_records("r", ["밥 먹었어요"], [row], "heara-care", "2", 3.0)
    assert (rec.label, rec.score, json.loads(rec.scores_json)) == (
        "일상",
        0.6,
        {"일상": 0.6, "도움요청": 0.4},
    )
    assert rec.danger is False
    with pytest.raises(ValueError, match="2 texts, 1 predictions"):
        make_records("r", ["a", "b"], [row], "heara-care", "2", 3.0)


# Writing ----------------------------------------------------------------------------------------


def test_records_written_match_what_was_logged(store):
    logged = records("req-1") + records("req-2")
    with open_log(store) as log:
        log.log(logged)
        assert log.flush(10)
        assert log.stats() == {
            "queued": 0,
            "written": 6,
            "dropped": 0,
            "failed_batches": 0,
            "failed_records": 0,
            "refused": 0,
            "replayed": 0,
            "duplicates": 0,
            "last_error": None,
        }
    rows = store.rows()
    assert len(rows) == len(logged)
    for row, rec in zip(rows, logged):
        assert row == {**as_stored(rec), "raw_text": None}
    assert not any(PHONE in str(v) for row in rows for v in row.values())
    assert "[PHONE]" in rows[0]["masked_text"]


def test_raw_text_is_stored_only_when_both_records_and_log_allow_it(store):
    with open_log(store, store_raw=True) as log:
        log.log(records("with-raw", store_raw=True))
        log.log(records("records-without-raw", store_raw=False))
        assert log.flush(10)
    with open_log(store, store_raw=False) as log:  # the log's setting wins over what records carry
        log.log(records("log-without-raw", store_raw=True))
        assert log.flush(10)
    raw = {(r["request_id"], r["raw_text"]) for r in store.rows()}
    assert {t for rid, t in raw if rid == "with-raw"} == set(TEXTS)
    assert {t for rid, t in raw if rid != "with-raw"} == {None}


def test_recent_and_label_counts(store):
    t0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    recs = [
        dataclasses.replace(r, ts=t0 + timedelta(minutes=i), request_id=f"req-{i}")
        for i, r in enumerate(records(store_raw=True) * 2)
    ]
    with open_log(store, store_raw=True) as log:
        assert log.recent() == [] and log.label_counts() == {}  # nothing written yet: no error
        log.log(recs)
        assert log.flush(10)
        recent = log.recent(limit=4)
        assert [r["request_id"] for r in recent] == ["req-5", "req-4", "req-3", "req-2"]
        assert all("raw_text" not in r for r in recent)
        assert not any(PHONE in json.dumps(r, ensure_ascii=False) for r in log.recent(limit=100))
        assert recent[0]["ts"] == (t0 + timedelta(minutes=5)).isoformat(timespec="microseconds")
        assert recent[0]["danger"] is True and recent[0]["scores"] == {"도움요청": 0.7}
        assert log.label_counts() == {"도움요청": 4, "일상": 2}
        assert log.label_counts(since=t0 + timedelta(minutes=3)) == {"도움요청": 2, "일상": 1}
        # a naive `since` is UTC, an aware one in another zone is converted
        kst = t0.astimezone(ZoneInfo("Asia/Seoul")) + timedelta(minutes=5)
        assert log.label_counts(since=kst) == {"도움요청": 1}
        assert log.label_counts(since=(t0 + timedelta(minutes=4)).replace(tzinfo=None)) == {
            "도움요청": 1,
            "일상": 1,
        }


def test_a_monitoring_window_is_the_newest_rows_of_a_version_oldest_first(store):
    t0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    recs = [
        dataclasses.replace(
            r, ts=t0 + timedelta(minutes=i), request_id=f"req-{i}", model_version=str(1 + i // 4)
        )
        for i, r in enumerate(records(store_raw=True) * 3)
    ]
    with open_log(store, store_raw=True) as log:
        assert log.window(10) == []  # nothing written yet: no error
        log.log(recs)
        assert log.flush(10)
        rows = log.window(3, model_version="2")  # versions: req-0..3 -> 1, req-4..7 -> 2, req-8.. -> 3
        assert [r["ts"] for r in rows] == [
            (t0 + timedelta(minutes=i)).isoformat(timespec="microseconds") for i in (5, 6, 7)
        ]
        assert {r["model_version"] for r in rows} == {"2"}
        assert set(rows[0]) == {
            *("id", "ts", "model_version", "label", "masked_text", "scores", "danger"),
            *("projection", "descriptors"),  # the monitoring features: None, none were logged here
        }
        assert rows[0]["projection"] is None and rows[0]["descriptors"] is None
        assert rows[0]["id"] < rows[1]["id"] < rows[2]["id"]  # never the raw text
        assert not any(PHONE in json.dumps(r, ensure_ascii=False) for r in log.window(100))
        assert len(log.window(100, since=t0 + timedelta(minutes=6))) == 3


def test_raw_texts_are_read_back_by_id_only_where_stored(store):
    with open_log(store, store_raw=True) as log:
        log.log(records(store_raw=True) + records("req-2", store_raw=False))
        assert log.flush(10)
        ids = [r["id"] for r in log.window(100)]
        raw = log.raw_texts(ids)
        assert sorted(raw) == ids[: len(TEXTS)] and set(raw.values()) == set(TEXTS)
        assert log.raw_texts([]) == {}


def test_prune_deletes_only_what_is_older_than_the_cutoff(store):
    t0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    recs = [
        dataclasses.replace(r, ts=t0 + timedelta(days=i), request_id=f"req-{i}")
        for i, r in enumerate(records() * 2)
    ]
    with open_log(store) as log:
        assert log.prune(t0) == 0  # nothing written yet: no error
        log.log(recs)
        assert log.flush(10)
        assert log.prune(t0 + timedelta(days=4)) == 4  # days 0..3
        assert store.count() == 2
        kept = [t0 + timedelta(days=i) for i in (4, 5)]
        assert [r["ts"] for r in log.window(10)] == [t.isoformat(timespec="microseconds") for t in kept]
        assert (
            log.prune((t0 + timedelta(days=4)).replace(tzinfo=None)) == 0
        )  # naive = UTC: nothing older left


def test_the_writer_recovers_after_a_failed_batch(store):
    with open_log(store) as log:
        log.log(records("before"))
        assert log.flush(10) and log.written == 3
        store.execute(f"DROP TABLE {store.table}")  # the store fails the next batch
        log.log(records("lost"))
        assert log.flush(10)
        assert (log.failed_batches, log.failed_records) == (1, 3)
        assert store.table in log.last_error
        log.log(records("after"))  # reconnects, re-creates the table, carries on
        assert log.flush(10)
        assert log.written == 6 and log.failed_batches == 1
    assert [r["request_id"] for r in store.rows()] == ["after"] * 3


def test_10000_records_from_8_threads_are_all_written(store):
    per_thread, batch = 1250, 5
    with open_log(store) as log:

        def worker(k: int) -> None:
            for i in range(0, per_thread, batch):
                texts = [f"발화 {k}-{i + j}" for j in range(batch)]
                log.log(make_records(f"t{k}-{i}", texts, predictions(batch), "heara-care", "7", 1.0))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log.flush(20)
        assert log.stats()["written"] == 10_000 and log.dropped == 0 and log.failed_records == 0
    assert store.count() == 10_000


def test_default_store_is_predictions_sqlite_in_the_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARA_HOME", str(tmp_path))
    with PredictionLog(flush_interval_s=0.05) as log:
        assert (
            log.recent() == [] and not (tmp_path / "predictions.sqlite").exists()
        )  # reading creates nothing
        log.log(records())
        assert log.flush(10)
        assert log.label_counts() == {"도움요청": 2, "일상": 1}
    assert (tmp_path / "predictions.sqlite").exists()


# Failing and slow stores ------------------------------------------------------------------------


def test_a_refusing_store_counts_failures_and_log_stays_fast(closed_port, caplog):
    url = f"postgresql://heara:s3cret-pw@127.0.0.1:{closed_port}/heara_test"
    with PredictionLog(url, flush_interval_s=0.05, batch_size=50) as log:
        slowest = 0.0
        for i in range(40):
            start = time.perf_counter()
            log.log(records(f"req-{i}"))
            slowest = max(slowest, time.perf_counter() - start)
        assert slowest < FAST_S
        assert log.flush(10)
        st = log.stats()
        assert st["written"] == 0 and st["failed_records"] == 120 and st["failed_batches"] >= 1
        assert st["last_error"] and "s3cret-pw" not in st["last_error"]
        assert "s3cret-pw" not in repr(log) and "s3cret-pw" not in log.url
        assert_accounted(log, 120)
    warnings = [r.getMessage() for r in caplog.records if r.name == "serving.predlog"]
    assert warnings and not any("s3cret-pw" in m or PHONE in m for m in warnings)


def test_a_store_that_hangs_fills_the_queue_which_drops_and_counts(silent_server):
    port = silent_server.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/heara_test?connect_timeout=10"
    log = PredictionLog(url, max_queue=20, batch_size=5, flush_interval_s=0.01)
    try:
        slowest = 0.0
        for i in range(100):  # 300 records; the writer is stuck connecting after its first batch
            start = time.perf_counter()
            log.log(records(f"req-{i}"))
            slowest = max(slowest, time.perf_counter() - start)
        assert slowest < FAST_S
        st = log.stats()
        assert st["dropped"] >= 300 - 20 - 5 and st["queued"] <= 25 and st["written"] == 0
        assert not log.flush(0.2)  # still hanging: flush gives up in time, and says so
    finally:
        silent_server.close()  # the hang ends: connection reset, then refused
        assert log.flush(10)
        log.close()
    assert log.failed_batches >= 1
    assert_accounted(log, 300)


# Misuse and shutdown ----------------------------------------------------------------------------


def test_log_never_raises_on_bad_input(tmp_path):
    with PredictionLog(f"sqlite:///{tmp_path / 'p.sqlite'}", flush_interval_s=0.05) as log:
        log.log(None)
        log.log(42)
        log.log([object(), *records()])
        assert log.flush(10)
        assert (log.dropped, log.written) == (1, 3)


def test_records_logged_after_close_are_dropped(tmp_path):
    log = PredictionLog(f"sqlite:///{tmp_path / 'p.sqlite'}", flush_interval_s=0.05)
    log.log(records())
    log.close()
    assert log.written == 3 and not log._thread.is_alive()
    log.log(records())
    assert log.dropped == 3 and log.flush(1)


def test_bad_configuration_is_rejected_at_start_up_without_showing_the_password():
    with pytest.raises(ValueError, match=r"mysql://u:\*\*\*@h/db") as err:
        PredictionLog("mysql://u:hunter2@h/db")
    assert "hunter2" not in str(err.value)
    with pytest.raises(ValueError, match="invalid table name"):
        PredictionLog("sqlite:///x.sqlite", table="predictions; DROP TABLE x")


def test_sqlalchemy_style_postgres_url_is_accepted(pg_url):
    table = f"predictions_{uuid.uuid4().hex[:10]}"
    store = Store(pg_url, table)
    try:
        with PredictionLog(
            pg_url.replace("postgresql://", "postgresql+psycopg://"), table=table, flush_interval_s=0.05
        ) as log:
            log.log(records())
            assert log.flush(10) and log.written == 3
        assert store.count() == 3
    finally:
        store.execute(f"DROP TABLE IF EXISTS {table}")


def test_record_type_is_exported_for_the_service():
    assert {f.name for f in dataclasses.fields(PredictionRecord)} >= {"request_id", "masked_text", "raw_text"}


# Durable: the journal first, the store from it ---------------------------------------------------

# A process that journals requests and dies (os._exit: no close, no flush unless asked) before its
# writer has written them: flush_interval_s and batch_size keep the writer waiting.
CRASHING_PROCESS = """
import os, sys
from serving.predlog import PredictionLog, make_records
from training.model.predictor import Prediction

journal_dir, url, table = sys.argv[1:4]
n, flush = int(sys.argv[4]), sys.argv[5] == "1"
texts = {texts!r}
log = PredictionLog(url, table=table, durability="durable", journal_dir=journal_dir, flush_interval_s=3600,
                    batch_size=10**6)
preds = [Prediction("도움요청", 0.9, {{"도움요청": 0.9}})] * len(texts)
futures = [log.log(make_records(f"crash-{{i}}", texts, preds, "heara-care", "7", 1.0)) for i in range(n)]
for f in futures:
    f.result(timeout=10)  # acknowledged: on disk
if flush:
    assert log.flush(10)
print(log._journal.path, flush=True)
os._exit(0)
"""


def crash_after_logging(journal_dir, store: Store, n: int, flush: bool = False) -> Path:
    """Run CRASHING_PROCESS: n requests of TEXTS journaled (and written to the store if `flush`), then
    the process is gone without closing anything. Its journal folder."""
    import subprocess
    import sys

    from training.paths import PROJECT_ROOT

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", CRASHING_PROCESS.format(texts=TEXTS), str(journal_dir), store.url, store.table]
        + [str(n), "1" if flush else "0"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


def open_durable(store: Store, journal_dir, **kwargs) -> PredictionLog:
    return open_log(store, durability="durable", journal_dir=journal_dir, **kwargs)


def journal_text(journal_dir) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in Path(journal_dir).rglob("*.jsonl"))


def test_durable_log_writes_through_the_journal(store, tmp_path):
    logged = records("d-1") + records("d-2")
    with open_durable(store, tmp_path / "journal") as log:
        futures = [log.log(logged[:3]), log.log(logged[3:])]
        assert all(f.result(timeout=5) is None for f in futures)  # synced to the journal
        assert log.flush(10)
        st = log.stats()
        assert (st["queued"], st["written"], st["refused"], st["dropped"]) == (0, 6, 0, 0)
        lines = [json.loads(x) for x in journal_text(tmp_path / "journal").splitlines()]
        assert [x["request_id"] for x in lines] == ["d-1"] * 3 + ["d-2"] * 3
    rows = store.rows()
    for row, rec in zip(rows, logged, strict=True):
        assert row == {**as_stored(rec), "raw_text": None}
    assert not list((tmp_path / "journal").rglob("*.jsonl"))  # closed with everything in the store: gone


def test_raw_text_reaches_the_journal_only_when_stored(store, tmp_path):
    with open_durable(store, tmp_path / "without", store_raw=False) as log:
        log.log(records("r-1", store_raw=True)).result(timeout=5)
        without = journal_text(tmp_path / "without")
    with open_durable(store, tmp_path / "with", store_raw=True) as log:
        log.log(records("r-2", store_raw=True)).result(timeout=5)
        with_raw = journal_text(tmp_path / "with")
    assert PHONE not in without and "[PHONE]" in without
    assert PHONE in with_raw
    assert {r["request_id"]: r["raw_text"] for r in store.rows()}["r-2"] is not None


def test_a_crashed_processes_journal_is_replayed_at_start(store, tmp_path):
    """Journaled (acknowledged), the store never written, the process gone: the next start writes them."""
    orphan = crash_after_logging(tmp_path / "journal", store, 20)
    assert orphan.is_dir() and (orphan / "00000001.jsonl").exists()
    with open_durable(store, tmp_path / "journal") as log:
        assert log.flush(20)
        st = log.stats()
        assert (st["written"], st["replayed"], st["duplicates"], st["queued"]) == (60, 60, 0, 0), st
        assert not orphan.exists()  # replayed, then deleted
    rows = store.rows()
    assert len(rows) == 60 and {r["request_id"] for r in rows} == {f"crash-{i}" for i in range(20)}


def test_a_replay_skips_what_the_store_already_has(store, tmp_path):
    """A crash between the store's commit and the checkpoint: the replay repeats written records."""
    orphan = crash_after_logging(tmp_path / "journal", store, 10, flush=True)
    assert store.count() == 30
    (orphan / "checkpoint.json").unlink(missing_ok=True)  # stale: the whole journal is replayed
    with open_durable(store, tmp_path / "journal") as log:
        log.log(records("after-restart")).result(timeout=5)
        assert log.flush(20)
        st = log.stats()
        assert (st["duplicates"], st["replayed"], st["written"]) == (30, 0, 3), st
    assert store.count() == 33


def test_a_request_with_the_same_text_twice_keeps_both_rows_on_replay(store, tmp_path):
    """Twins within a request share request id, time and hash: a replay skips only as many as are stored."""
    from serving.predlog import journal_line

    twice = records("twice", texts=["같은 말", "같은 말", "다른 말"])
    with open_durable(store, tmp_path / "journal") as log:
        log.log(twice[:1]).result(timeout=5)  # what a process wrote before it died
        root = log._journal.root
    orphan = root / "1-dead"  # that process's journal, with the whole request in it
    orphan.mkdir()
    (orphan / "lock").touch()
    (orphan / "00000001.jsonl").write_bytes(b"".join(journal_line(r, False) for r in twice))
    with open_durable(store, tmp_path / "journal") as log:
        assert log.flush(20)
        assert (log.stats()["duplicates"], log.stats()["replayed"]) == (1, 2)
    assert sorted(r["masked_text"] for r in store.rows()) == sorted(["같은 말", "같은 말", "다른 말"])


def test_a_live_processes_journal_is_left_alone(store, tmp_path):
    slow = open_durable(store, tmp_path / "journal", batch_size=10**6)
    slow.flush_interval_s = 3600
    try:
        slow.log(records("slow")).result(timeout=5)
        with open_durable(store, tmp_path / "journal") as other:
            assert other.flush(10) and other.stats()["replayed"] == other.stats()["written"] == 0
        assert slow._journal.path.exists()
    finally:
        slow.close()  # flushes: the records written by their own process
    assert store.count() == 3


def test_a_full_disk_refuses_the_request_and_counts_it(store, tmp_path, monkeypatch):
    from serving import journal as journal_module
    from serving.journal import JournalUnavailable

    def disk_full(fd, data):
        raise OSError(28, "No space left on device")

    with open_durable(store, tmp_path / "journal") as log:
        log.log(records("ok-1")).result(timeout=5)
        monkeypatch.setattr(journal_module, "_write", disk_full)
        with pytest.raises(JournalUnavailable, match="No space left"):
            log.log(records("refused")).result(timeout=5)
        monkeypatch.undo()
        log.log(records("ok-2")).result(timeout=5)
        assert log.flush(10)
        st = log.stats()
        assert (st["written"], st["refused"], st["queued"]) == (6, 3, 0), st
    assert {r["request_id"] for r in store.rows()} == {"ok-1", "ok-2"}


def test_durable_records_are_never_dropped_for_memory(store, tmp_path):
    """async drops what does not fit its queue; durable has no queue to fill: the journal holds them."""
    with open_durable(store, tmp_path / "journal", max_queue=1, batch_size=7) as log:
        futures = [log.log(records(f"m-{i}")) for i in range(100)]
        for f in futures:
            f.result(timeout=10)
        assert log.flush(20)
        assert (log.dropped, log.written) == (0, 300)
    assert store.count() == 300


def test_segments_are_deleted_as_the_store_catches_up(store, tmp_path):
    with open_durable(store, tmp_path / "journal", segment_bytes=2000, batch_size=1000) as log:
        log.flush_interval_s = 3600  # the writer waits: the segments pile up
        for i in range(20):
            log.log(records(f"s-{i}")).result(timeout=5)
        folder = log._journal.path
        piled = len(list(folder.glob("*.jsonl")))
        assert piled >= 4
        log.flush_interval_s = 0.05
        assert log.flush(20)
        time.sleep(0.2)  # the checkpoint follows the last batch
        assert len(list(folder.glob("*.jsonl"))) <= 2 < piled
    assert store.count() == 60 and not folder.exists()


def test_a_failing_store_is_retried_and_close_leaves_the_rest_in_the_journal(tmp_path):
    """The store is a folder (SQLite cannot open it): nothing is lost, the next start writes it all."""
    db = tmp_path / "store.sqlite"
    db.mkdir()
    store = Store(f"sqlite:///{db}", "predictions")
    log = open_durable(store, tmp_path / "journal")
    log.log(records("while-down")).result(timeout=5)
    assert not log.flush(1)
    st = log.stats()
    assert st["failed_batches"] >= 1 and st["failed_records"] == 0 and st["queued"] == 3 and st["last_error"]
    log.close(timeout=0.5)
    assert "while-down" in journal_text(tmp_path / "journal")
    db.rmdir()  # the store is back
    with open_durable(store, tmp_path / "journal") as log:
        assert log.flush(20) and log.stats()["replayed"] == 3
    assert {r["request_id"] for r in store.rows()} == {"while-down"}


def test_a_row_the_store_refuses_is_counted_and_the_rest_written(pg_url, tmp_path):
    """PostgreSQL text cannot hold NUL: that record alone fails; its batch is not blocked or lost."""
    store = Store(pg_url, f"predictions_{uuid.uuid4().hex[:10]}")
    try:
        bad = records("nul", texts=["정상 문장", "널\x00문자", "또 정상"])
        with open_durable(store, tmp_path / "journal") as log:
            log.log(bad).result(timeout=5)
            log.log(records("after")).result(timeout=5)
            assert log.flush(30)
            st = log.stats()
            assert (st["written"], st["failed_records"], st["queued"]) == (5, 1, 0), st
        kept = sorted(r["masked_text"] for r in store.rows() if r["request_id"] == "nul")
        assert kept == ["또 정상", "정상 문장"]
    finally:
        store.execute(f"DROP TABLE IF EXISTS {store.table}")


def test_durability_must_be_async_or_durable():
    with pytest.raises(ValueError, match="async or durable"):
        PredictionLog("sqlite:///x.sqlite", durability="sync")
