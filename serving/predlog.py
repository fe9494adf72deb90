"""The prediction log: every prediction the service makes, written to a store off the request path.

The service creates one `PredictionLog` at start-up and calls `log(make_records(...))` on every
request. A daemon thread writes the records to the store in batches, one transaction per batch.
How safe a record is when the answer leaves is `durability` (`serve.predlog_durability`):
- `async`: `log()` only puts the records on a bounded in-memory queue (never blocking). A full queue
  drops records and a failing store loses the batch it was writing; both are counted (`stats()`,
  exported as metrics by the service) and neither ever reaches the request. A crash loses what is
  queued: up to `flush_interval_s` (or `batch_size` records) of traffic.
- `durable`: `log()` hands the records to a journal on local disk (serving.journal) and returns a
  future that resolves once they are synced there; the service answers only then (or 503 when the
  journal cannot be written). The writer reads the journal, not memory: nothing is dropped while the
  store is slow, a failing store is retried (the journal keeps the records meanwhile), and at start
  the journals of processes that died are replayed into the store, skipping what it already has.

Stores: SQLite by default (`<HEARA_HOME>/predictions.sqlite`), `sqlite:///path`, or PostgreSQL by
URL (`postgresql://user:pass@host:5432/db`, psycopg 3). The caller reads `HEARA_PREDICTION_DB` and
`HEARA_STORE_RAW_TEXT` (`training.env.store_raw_text()`) and passes them in.

Monitoring features (`monitor.log_features`; serving.inference captures them where the served version has
a monitoring reference): each row also stores `projection` (the pooled embedding projected with the
version's components, base64 of float16) and `descriptors` (the Korean text descriptors as compact JSON,
training/data/descriptors.py). The record carries what the model host measured (the projection, the text
as the model read it with personal data masked, piece counts); the writer thread computes the descriptors
from that, per batch, so the request only pays for the capture. `heara monitor` reads both and recomputes
only the rows without them.

Privacy: rows hold a hash and the PII-masked text; the raw utterance is stored only when both the
records and the log were made with `store_raw=True`. Error messages are masked before they are logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import orjson

from training.paths import state
from training.pii import mask_pii

if TYPE_CHECKING:
    from serving.journal import Journal, Position, _Folder

logger = logging.getLogger(__name__)

COLUMNS = (
    "request_id",
    "ts",
    "model_name",
    "model_version",
    "label",
    "score",
    "latency_ms",
    "text_hash",
    "masked_text",
    "raw_text",
    "danger",
    "scores_json",
    "speaker_id",
    "session_id",
    "device_id",
    "projection",
    "descriptors",
)
ID_COLUMNS = ("speaker_id", "session_id", "device_id")  # added later: ALTER TABLE adds them to older tables
FEATURE_COLUMNS = ("projection", "descriptors")  # added later still, the same way
ADDED_COLUMNS = (*ID_COLUMNS, *FEATURE_COLUMNS)
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_ERROR_LOG_EVERY_S = 60.0  # a dead store fails every batch: log the first failure, then once a minute
DURABILITY = ("async", "durable")  # serve.predlog_durability
_RETRY_MAX_S = 10.0  # durable: a failing store is retried, backing off up to this (the journal keeps rows)


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction, as it is stored (one row of the `predictions` table)."""

    request_id: str
    ts: datetime  # UTC
    model_name: str
    model_version: str
    label: str
    score: float
    latency_ms: float
    text_hash: str  # sha256 of the raw text, first 16 hex digits: joins repeats without the text
    masked_text: str
    raw_text: str | None
    danger: bool
    scores_json: str  # {"label": probability, ...}
    # Who spoke, in which session, on which device: pseudonymised by the caller (serving.timeline) before
    # they get here. None when the request had none; a journal line written before they existed has none.
    speaker_id: str | None = None
    session_id: str | None = None
    device_id: str | None = None
    # Monitoring (the module docstring): the projection as stored; the descriptors as stored (JSON), which
    # the writer computes from `features` when None; `features`: what the descriptors are computed from,
    # {"respaced": masked text as the model read it, "pieces", "unk", "truncated"}. Journaled, never stored.
    projection: str | None = None
    descriptors: str | None = None
    features: Mapping[str, Any] | None = None


JOURNALED = tuple(f.name for f in fields(PredictionRecord))  # a journal line's keys: every field
_FEATURE_INPUTS = ("respaced", "pieces", "unk", "truncated")  # what the writer computes descriptors from
_DESCRIPTOR_DIGITS = 6  # stored rounded: drift statistics compare distributions, not the 15th digit


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _label_scores(prediction: Any) -> tuple[str, float, dict[str, float]]:
    """(label, score, scores) from a `training.model.predictor.Prediction` or a pyfunc output row
    (`label`, `score`, `prob_<label>` columns)."""
    if isinstance(prediction, Mapping):
        scores = prediction.get("scores")
        if scores is None:
            scores = {k.removeprefix("prob_"): v for k, v in prediction.items() if k.startswith("prob_")}
        label, score = prediction["label"], prediction["score"]
    else:
        label, score, scores = prediction.label, prediction.score, prediction.scores
    return str(label), float(score), {str(k): float(v) for k, v in (scores or {}).items()}


def make_records(
    request_id: str,
    texts: Sequence[str],
    predictions: Sequence[Any],
    model_name: str,
    version: str,
    latency_ms: float,
    store_raw: bool = False,
    danger_flags: Sequence[bool] | None = None,
    ids: Mapping[str, str | None] | None = None,
    features: Sequence[Mapping[str, Any] | None] | None = None,
) -> list[PredictionRecord]:
    """One record per text of a request: texts[i] was predicted as predictions[i].

    `predictions` are `Prediction` objects or mappings with `label`, `score` and `scores` (or
    `prob_<label>` keys). `latency_ms` is the request's model latency, shared by its records.
    The raw text is kept only when `store_raw` is true. `ids`: the request's speaker_id, session_id and
    device_id, already pseudonymised (serving.timeline.IdKeys), shared by its records. `features`: per
    text the model host's monitoring features (serving.inference: projection, respaced, pieces, unk,
    truncated) or None. Raises ValueError on mismatched lengths.
    """
    if (
        len(texts) != len(predictions)
        or (danger_flags is not None and len(danger_flags) != len(texts))
        or (features is not None and len(features) != len(texts))
    ):
        raise ValueError(
            f"make_records: {len(texts)} texts, {len(predictions)} predictions, "
            f"{'no' if danger_flags is None else len(danger_flags)} danger flags and "
            f"{'no' if features is None else len(features)} feature sets do not match"
        )
    ts = datetime.now(UTC)
    ids = ids or {}
    speaker, session, device = ids.get("speaker_id"), ids.get("session_id"), ids.get("device_id")
    records = []
    for i, (text, prediction) in enumerate(zip(texts, predictions)):
        label, score, scores = _label_scores(prediction)
        captured = features[i] if features is not None else None
        projection, inputs = None, None
        if captured:
            projection = captured.get("projection")
            if captured.get("respaced") is not None:
                inputs = {k: captured.get(k) for k in _FEATURE_INPUTS}
        records.append(
            PredictionRecord(
                request_id=str(request_id),
                ts=ts,
                model_name=str(model_name),
                model_version=str(version),
                label=label,
                score=score,
                latency_ms=float(latency_ms),
                text_hash=text_hash(text),
                masked_text=mask_pii(text),
                raw_text=text if store_raw else None,
                danger=bool(danger_flags[i]) if danger_flags is not None else False,
                scores_json=json.dumps(scores, ensure_ascii=False),
                speaker_id=speaker,
                session_id=session,
                device_id=device,
                projection=projection if isinstance(projection, str) else None,
                features=inputs,
            )
        )
    return records


def descriptors_json(records: Sequence[PredictionRecord]) -> list[str | None]:
    """Each record's descriptors as stored: its own `descriptors`, else computed from its `features`
    (training/data/descriptors.py on the masked text, re-spaced text and piece counts; one call per
    batch, the rows with piece counts apart from those without), else None. {name: value}, NaN as null."""
    from training.data.descriptors import DESCRIPTORS, describe

    out: list[str | None] = [r.descriptors for r in records]
    todo = [i for i, r in enumerate(records) if r.descriptors is None and r.features]
    counted = [i for i in todo if records[i].features.get("pieces") is not None]
    for group in (counted, [i for i in todo if records[i].features.get("pieces") is None]):
        if not group:
            continue
        feats = [records[i].features for i in group]
        has_counts = group is counted
        table = describe(
            [records[i].masked_text for i in group],
            respaced=[str(f.get("respaced") or "") for f in feats],
            piece_counts=[int(f["pieces"]) for f in feats] if has_counts else None,
            unk_counts=[int(f.get("unk") or 0) for f in feats] if has_counts else None,
            truncated=[bool(f.get("truncated")) for f in feats] if has_counts else None,
        )
        values = table[list(DESCRIPTORS)].to_numpy(dtype=float).round(_DESCRIPTOR_DIGITS)
        for i, row in zip(group, values.tolist()):
            out[i] = orjson.dumps(dict(zip(DESCRIPTORS, row))).decode()  # orjson writes NaN as null
    return out


def _as_utc(ts: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _utc_iso(ts: datetime) -> str:
    """Fixed-width UTC ISO-8601, so that SQLite orders and compares timestamps as text correctly."""
    return _as_utc(ts).isoformat(timespec="microseconds")


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _safe_message(exc: BaseException, url: str, password: str | None = None) -> str:
    """An exception as a log line: PII masked, the store's password hidden, bounded length."""
    text = f"{type(exc).__name__}: {exc}".replace(url, _hide_password(url))
    if password:
        text = text.replace(password, "***")
    return mask_pii(" ".join(text.split()))[:500]


def journal_line(rec: PredictionRecord, store_raw: bool) -> bytes:
    """A record as one line of the journal (JSON): every field of the record (the monitoring features too:
    masked, like the rest); the raw text only when it is stored."""
    line = {name: getattr(rec, name) for name in JOURNALED}
    line["ts"] = _utc_iso(rec.ts)
    if not store_raw:
        line["raw_text"] = None
    return orjson.dumps(line) + b"\n"  # on the request path: orjson takes a third of json's time


def _record_from_line(line: bytes) -> PredictionRecord:
    """Raises ValueError, KeyError or TypeError for a line that is not a journaled record. A line written
    before a field existed (ids, monitoring features) has none of it."""
    fields_ = orjson.loads(line)
    return PredictionRecord(**{**fields_, "ts": datetime.fromisoformat(fields_["ts"])})


def _transient(exc: Exception) -> bool:
    """A store that cannot be reached or is busy (retry the same rows later), as opposed to one that
    answers and refuses the rows themselves."""
    if isinstance(exc, (OSError, sqlite3.OperationalError)):
        return True
    return any(
        c.__module__.startswith("psycopg") and c.__name__ in ("OperationalError", "InterfaceError")
        for c in type(exc).__mro__
    )


class _Store:
    """SQL for one backend. `connect()` gives a fresh DB-API connection; the writer owns its own."""

    def __init__(self, url: str | None, table: str) -> None:
        if not _TABLE_NAME.fullmatch(table):
            raise ValueError(f"prediction log: invalid table name {table!r}")
        self.table = table
        if url is None or url.startswith("sqlite:///"):
            self.kind = "sqlite"
            path = Path(url.removeprefix("sqlite:///")) if url else state().prediction_log
            self.path = path.resolve()
            self.url, self.password = f"sqlite:///{self.path}", None
        elif re.match(r"postgres(ql)?(\+psycopg2?)?://", url):
            from psycopg.conninfo import conninfo_to_dict, make_conninfo

            self.kind = "postgresql"
            self.url = url
            # SQLAlchemy-style `postgresql+psycopg://` (MLflow's spelling) is accepted as well.
            params = conninfo_to_dict(re.sub(r"^postgres(ql)?(\+psycopg2?)?://", "postgresql://", url))
            params.setdefault("connect_timeout", "5")  # a store that does not answer must not hang the writer
            self.password = params.get("password")
            self.conninfo = make_conninfo(**params)
        else:
            raise ValueError(
                f"prediction log: unsupported store URL {_hide_password(url)!r} "
                "(use sqlite:///path or postgresql://user@host/db)"
            )
        ph = "?" if self.kind == "sqlite" else "%s"
        self.insert_sql = (
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({', '.join([ph] * len(COLUMNS))})"
        )
        self.ph = ph

    def connect(self, *, create: bool = True) -> Any:
        if self.kind == "sqlite":
            if not create:  # mode=rw: a reader never creates the file just to find it empty
                return sqlite3.connect(f"{self.path.as_uri()}?mode=rw", uri=True, timeout=5)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            # WAL: the try-it page reads while the writer writes; several service workers share the file.
            con.execute("PRAGMA journal_mode=WAL")
            return con
        import psycopg

        return psycopg.connect(self.conninfo, autocommit=True)

    def create_table(self, con: Any) -> None:
        if self.kind == "sqlite":
            cols = (
                "id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, ts TEXT NOT NULL, model_name TEXT, "
                "model_version TEXT, label TEXT, score REAL, latency_ms REAL, text_hash TEXT, "
                "masked_text TEXT, raw_text TEXT, danger INTEGER NOT NULL, scores_json TEXT, "
                "speaker_id TEXT, session_id TEXT, device_id TEXT, projection TEXT, descriptors TEXT"
            )
        else:
            cols = (
                "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, request_id TEXT NOT NULL, "
                "ts TIMESTAMPTZ NOT NULL, model_name TEXT, model_version TEXT, label TEXT, "
                "score DOUBLE PRECISION, latency_ms DOUBLE PRECISION, text_hash TEXT, masked_text TEXT, "
                "raw_text TEXT, danger BOOLEAN NOT NULL, scores_json TEXT, speaker_id TEXT, session_id TEXT, "
                "device_id TEXT, projection TEXT, descriptors TEXT"
            )
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.table} ({cols})",
            f"CREATE INDEX IF NOT EXISTS {self.table}_ts_idx ON {self.table} (ts)",
            f"CREATE INDEX IF NOT EXISTS {self.table}_version_idx ON {self.table} (model_version)",
        ]
        self.run_in_transaction(con, lambda cur: [cur.execute(s) for s in statements])
        self.add_columns(con)

    def add_columns(self, con: Any) -> None:
        """A table made before the id columns or the monitoring features' columns existed gets them (NULL
        in its old rows), then the timeline's indexes. Several workers may start at once: a column another
        one added meanwhile is not an error (PostgreSQL: IF NOT EXISTS; SQLite has no such clause, so its
        error is taken as that)."""
        if self.kind == "sqlite":
            present = {row[1] for row in con.execute(f"PRAGMA table_info({self.table})")}
            for column in ADDED_COLUMNS:
                if column not in present:
                    try:
                        with con:
                            con.execute(f"ALTER TABLE {self.table} ADD COLUMN {column} TEXT")
                    except sqlite3.OperationalError as exc:
                        if "duplicate column" not in str(exc):
                            raise
        else:  # ALTER TABLE locks the table even when it changes nothing: only when a column is missing
            cur = con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s",
                (self.table.lower(),),
            )
            missing = [c for c in ADDED_COLUMNS if c not in {row[0] for row in cur.fetchall()}]
            if missing:
                alter = ", ".join(f"ADD COLUMN IF NOT EXISTS {c} TEXT" for c in missing)
                self.run_in_transaction(con, lambda cur: cur.execute(f"ALTER TABLE {self.table} {alter}"))
        indexes = [  # a timeline is one speaker's (or session's) rows in time order
            f"CREATE INDEX IF NOT EXISTS {self.table}_speaker_idx ON {self.table} (speaker_id, ts)",
            f"CREATE INDEX IF NOT EXISTS {self.table}_session_idx ON {self.table} (session_id, ts)",
        ]
        self.run_in_transaction(con, lambda cur: [cur.execute(s) for s in indexes])

    def insert(self, con: Any, rows: list[tuple]) -> None:
        self.run_in_transaction(con, lambda cur: cur.executemany(self.insert_sql, rows))

    def run_in_transaction(self, con: Any, work: Any) -> None:
        if self.kind == "sqlite":
            with con:  # commits, or rolls back on an exception
                work(con.cursor())
        else:
            with con.transaction(), con.cursor() as cur:
                work(cur)

    def row(self, rec: PredictionRecord, store_raw: bool, descriptors: str | None = None) -> tuple:
        """The record as a row (COLUMNS' order); `descriptors`: computed by the writer (descriptors_json)."""
        sqlite = self.kind == "sqlite"
        ts = _utc_iso(rec.ts) if sqlite else _as_utc(rec.ts)
        return (
            rec.request_id,
            ts,
            rec.model_name,
            rec.model_version,
            rec.label,
            rec.score,
            rec.latency_ms,
            rec.text_hash,
            rec.masked_text,
            rec.raw_text if store_raw else None,
            int(rec.danger) if sqlite else rec.danger,
            rec.scores_json,
            rec.speaker_id,
            rec.session_id,
            rec.device_id,
            rec.projection,
            descriptors if descriptors is not None else rec.descriptors,
        )

    def rows(self, records: Sequence[PredictionRecord], store_raw: bool) -> list[tuple]:
        """Rows of a batch, the descriptors computed for the whole batch at once. A failure there (a bug, a
        strange text) costs the descriptors of this batch, never its rows: `heara monitor` computes them."""
        try:
            descriptors = descriptors_json(records)
        except Exception as exc:  # noqa: BLE001  the predictions matter more than their descriptors
            why = _safe_message(exc, self.url, self.password)
            logger.warning("prediction log: descriptors not computed for %d records: %s", len(records), why)
            descriptors = [r.descriptors for r in records]
        return [self.row(r, store_raw, d) for r, d in zip(records, descriptors)]

    def key(self) -> str:
        """Names this store's journal folder: its URL (password hidden) and table."""
        return hashlib.sha256(f"{_hide_password(self.url)}|{self.table}".encode()).hexdigest()[:12]

    def not_stored(self, con: Any, rows: list[tuple]) -> list[tuple]:
        """The rows the store has no twin of (same request id, time and text hash), for writes that may
        repeat what a crashed process already wrote. One query over the rows' time range (indexed)."""
        times = [r[1] for r in rows]
        cur = con.cursor()
        cur.execute(
            f"SELECT request_id, ts, text_hash FROM {self.table} WHERE ts >= {self.ph} AND ts <= {self.ph}",
            (min(times), max(times)),
        )
        stored = Counter(tuple(r) for r in cur.fetchall())
        kept = []
        for row in rows:  # a request may hold the same text twice: count twins, do not just look them up
            key = (row[0], row[1], row[7])
            if stored[key] > 0:
                stored[key] -= 1
            else:
                kept.append(row)
        return kept

    def is_missing_table(self, exc: Exception) -> bool:
        return f"{self.table}" in str(exc) and ("no such table" in str(exc) or "does not exist" in str(exc))

    def query(self, sql: str, params: tuple) -> list[tuple]:
        """Rows of a read (`?` placeholders) on a short-lived connection; [] when the file or the table
        does not exist yet. An unreachable store raises its own error."""
        if self.kind == "sqlite" and not self.path.exists():
            return []
        con = self.connect(create=False)
        try:
            cur = con.cursor()
            cur.execute(sql.replace("?", self.ph), params)
            return list(cur.fetchall())
        except Exception as exc:
            if self.is_missing_table(exc):
                return []
            raise
        finally:
            con.close()


class PredictionLog:
    """Writes `PredictionRecord`s to a store in a background thread; `log()` never blocks or raises.

    url: None (SQLite in the state folder), `sqlite:///path` or `postgresql://...`.
    max_queue: records held in memory while the store catches up; beyond it records are dropped.
    batch_size / flush_interval_s: a batch is written when it is full or its oldest record has
    waited this long. store_raw: write `raw_text` (off by default). table: the table name.
    durability: `async` or `durable` (see the module's docstring). journal_dir: where durable journals
    live (default: the state folder's); segment_bytes: the journal's segment size.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        max_queue: int = 10000,
        batch_size: int = 200,
        flush_interval_s: float = 0.5,
        store_raw: bool = False,
        table: str = "predictions",
        durability: str = "async",
        journal_dir: Path | str | None = None,
        segment_bytes: int | None = None,
    ) -> None:
        if durability not in DURABILITY:
            raise ValueError(f"prediction log: durability must be async or durable, got {durability!r}")
        self._store = _Store(url, table)
        self.durability = durability
        self.store_raw = store_raw
        self.batch_size, self.flush_interval_s = max(1, batch_size), flush_interval_s
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Condition()  # guards the counters; notified when records are settled
        self._pending = 0  # accepted, not yet written or failed
        self.written = self.dropped = self.failed_batches = self.failed_records = 0
        self.refused = self.replayed = self.duplicates = 0  # durable only
        self.last_error: str | None = None
        self._failing, self._last_error_logged = False, 0.0  # the writer's own: for rate-limited warnings
        self._checkpoint_warned = 0.0
        self._hurry = threading.Event()  # flush() waiting: write what is there without waiting for more
        self._stop = threading.Event()
        self._journal: Journal | None = None
        self._adopting = False  # durable: the writer is still replaying dead processes' journals
        if durability == "durable":
            from serving.journal import SEGMENT_BYTES, Journal

            root = Path(journal_dir or state().prediction_journal) / self._store.key()
            self._journal = Journal(
                root, segment_bytes=segment_bytes or SEGMENT_BYTES, on_refused=self._refused
            )
            self._adopting = True
            self._con: Any = None  # the writer's connection
            self._consumed, self._read_pos = 0, (1, 0)  # records read from the journal, and where
        run = self._run_durable if self._journal else self._run
        self._thread = threading.Thread(target=run, name="heara-predlog", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"PredictionLog({_hide_password(self._store.url)!r}, table={self._store.table!r})"

    @property
    def url(self) -> str:
        """The store URL with its password hidden (safe to log and to show)."""
        return _hide_password(self._store.url)

    @property
    def queued(self) -> int:
        """Records accepted but not yet written or failed (queued or in the batch being written)."""
        return self._pending

    # The request path -------------------------------------------------------------------------

    def log(self, records: Iterable[PredictionRecord]) -> Future | None:
        """Queue records for writing. Never blocks and never raises: what does not fit (or is not a
        `PredictionRecord`) is counted as dropped.

        async: returns None. durable: returns a future that resolves once the records are synced to
        the journal, or fails with `serving.journal.JournalUnavailable`: then they are not logged and
        the caller must not acknowledge them (None when there was nothing to log)."""
        try:
            items = list(records or ())
        except Exception:  # noqa: BLE001  not even iterable: a caller's bug must still not fail the request
            logger.warning("prediction log: log() expects PredictionRecords, got %s", type(records).__name__)
            return
        records = [r for r in items if isinstance(r, PredictionRecord)]
        if len(records) < len(items):
            with self._lock:
                self.dropped += len(items) - len(records)
        if not records:
            return None
        if self._journal is not None:
            payload = b"".join(journal_line(r, self.store_raw) for r in records)
            with self._lock:
                self._pending += len(records)
            return self._journal.append(payload, len(records))
        with self._lock:
            self._pending += len(records)  # before the put, so the writer never settles more than this
        accepted = 0
        if not self._stop.is_set():
            try:
                for rec in records:
                    self._queue.put_nowait(rec)
                    accepted += 1
            except queue.Full:
                pass
        if accepted < len(records):
            with self._lock:
                self.dropped += len(records) - accepted
                self._pending -= len(records) - accepted
                self._lock.notify_all()
        return None

    def _refused(self, count: int) -> None:
        """The journal could not take `count` records (called from its thread): their requests got 503."""
        with self._lock:
            self.refused += count
            self._pending -= count
            self._lock.notify_all()

    # The writer thread ------------------------------------------------------------------------

    def _next_batch(self) -> list[PredictionRecord]:
        try:
            batch = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.flush_interval_s
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._hurry.is_set() or self._stop.is_set():
                break
            try:  # short waits, so that flush() and close() are noticed promptly
                batch.append(self._queue.get(timeout=min(remaining, 0.05)))
            except queue.Empty:
                pass
        return batch

    def _prepared(self) -> Any:
        """At start, a store that exists already is brought up to date (an older table gets the id
        columns) and the connection kept for the first batch; None when there is none yet (created by
        the first batch) or it failed (the first batch retries, and reports the error)."""
        if self._store.kind == "sqlite" and not self._store.path.exists():
            return None  # a log that never writes creates no file
        con = None
        try:
            con = self._store.connect()
            self._store.create_table(con)
            return con
        except Exception as exc:  # noqa: BLE001  reported by the first batch that fails the same way
            logger.debug("prediction log: not prepared at start: %s", type(exc).__name__)
            self._close_quietly(con)
            return None

    def _run(self) -> None:
        con = self._prepared()
        while True:
            batch: list[PredictionRecord] = []
            try:
                batch = self._next_batch()
                if not batch:
                    if self._stop.is_set():
                        break
                    continue
                if con is None:
                    con = self._store.connect()
                    self._store.create_table(con)
                self._store.insert(con, self._store.rows(batch, self.store_raw))
                with self._lock:
                    self.written += len(batch)
                    self._pending -= len(batch)
                    self._lock.notify_all()
                if self._failing:
                    self._failing = False
                    logger.info("prediction log: %s is writable again", self.url)
            except Exception as exc:  # noqa: BLE001  a failing store never stops the writer
                self._failed(batch, exc)
                self._close_quietly(con)
                con = None  # reconnect (and re-create the table if it went) on the next batch
                if self._stop.is_set():  # closing and the store is failing: give up on the rest
                    self._failed(self._drain(), None)
        self._close_quietly(con)
        leftover = self._drain()  # put by a log() that raced with close()
        if leftover:
            with self._lock:
                self.dropped += len(leftover)
                self._pending -= len(leftover)
                self._lock.notify_all()

    def _failed(self, batch: list[PredictionRecord], exc: Exception | None) -> None:
        if not batch:
            return
        with self._lock:
            if exc is not None:
                self.failed_batches += 1
                self.last_error = _safe_message(exc, self._store.url, self._store.password)
            self.failed_records += len(batch)
            self._pending -= len(batch)
            self._lock.notify_all()
        now = time.monotonic()
        if exc is not None and (not self._failing or now - self._last_error_logged >= _ERROR_LOG_EVERY_S):
            self._failing, self._last_error_logged = True, now
            logger.warning(
                "prediction log: %d records not written to %s (%d failed batches so far): %s",
                len(batch),
                self.url,
                self.failed_batches,
                self.last_error,
            )

    def _drain(self) -> list[PredictionRecord]:
        rest = []
        while True:
            try:
                rest.append(self._queue.get_nowait())
            except queue.Empty:
                return rest

    @staticmethod
    def _close_quietly(con: Any) -> None:
        if con is None:
            return
        try:
            con.close()
        except Exception as exc:  # noqa: BLE001  the connection is dropped either way
            logger.debug("prediction log: closing a broken connection: %s", type(exc).__name__)

    # The writer thread, durable: from the journal ------------------------------------------------

    def _run_durable(self) -> None:
        assert self._journal is not None
        self._con = self._prepared()
        try:
            self._adopt_orphans()
        finally:
            with self._lock:
                self._adopting = False
                self._lock.notify_all()
        while self._batch_due():
            lines, pos = self._journal.read(self._read_pos, self.batch_size)
            self._consumed += len(lines)
            stored = self._store_lines(lines, replay=False)
            if stored is None:  # closing while the store fails: the rest stays in the journal
                break
            self._read_pos = pos
            self._save_checkpoint(self._journal, pos)
        self._close_connection()

    def _batch_due(self) -> bool:
        """Wait until a batch is due: `batch_size` journaled records not yet read, or the oldest of
        them has waited `flush_interval_s`, or flush()/close() asks. False: closing, nothing left."""
        assert self._journal is not None
        deadline = None
        while True:
            available = self._journal.committed_records - self._consumed
            if available >= self.batch_size:
                return True
            if available == 0:
                if self._stop.is_set():
                    return False
                self._journal.wait(self._consumed + 1, 0.05)
                continue
            if self._hurry.is_set() or self._stop.is_set():
                return True
            deadline = deadline or time.monotonic() + self.flush_interval_s
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            self._journal.wait(self._consumed + self.batch_size, min(remaining, 0.05))

    def _adopt_orphans(self) -> None:
        """Replay into the store the journals of processes that died (a crash, kill -9, a worker that
        was restarted), then delete them. Closing stops it: the rest is replayed by the next start."""
        assert self._journal is not None
        for orphan in self._journal.orphans():
            with orphan:
                start = time.monotonic()
                written0, dup0 = self.replayed, self.duplicates
                pos = orphan.start()
                while not self._stop.is_set():
                    lines, new = orphan.read(pos, self.batch_size)
                    if not lines and new == pos:
                        break
                    with self._lock:
                        self._pending += len(lines)
                    if lines and self._store_lines(lines, replay=True) is None:
                        return
                    pos = new
                    self._save_checkpoint(orphan, pos)
                else:
                    return
                orphan.remove()
                logger.info(
                    "prediction log: replayed the journal of a stopped process (%s) in %.1f s: %d records "
                    "written, %d already in the store",
                    orphan.path.name,
                    time.monotonic() - start,
                    self.replayed - written0,
                    self.duplicates - dup0,
                )

    def _store_lines(self, lines: list[bytes], *, replay: bool) -> int | None:
        """Write journal lines to the store, retrying while it fails (the journal keeps them meanwhile):
        the records written, or None when closing stopped the retries (nothing is settled then).

        A replay first leaves out what the store already has (a crash between the store's commit and
        the checkpoint), and so does every retry (a commit whose answer was lost may have happened). A
        store that answers but refuses the batch (a value it cannot hold, e.g. a NUL character in
        PostgreSQL text) then gets the rows one at a time; those it refuses alone are counted as failed.
        """
        records, bad = [], 0
        for line in lines:
            try:
                records.append(_record_from_line(line))
            except (ValueError, KeyError, TypeError):
                bad += 1
        rows = self._store.rows(records, self.store_raw)
        if bad:
            logger.warning("prediction log: %d unreadable journal lines skipped", bad)
        written = duplicates = failures = 0
        refused: list[Exception] = []
        one_by_one = False
        while rows:
            try:
                con = self._connection()
                if replay or failures:
                    kept = self._store.not_stored(con, rows)
                    duplicates, rows = duplicates + len(rows) - len(kept), kept
                while rows and one_by_one:
                    try:
                        self._store.insert(con, rows[:1])
                        written += 1
                    except Exception as exc:  # noqa: BLE001  sorted below: outage or refused row
                        if _transient(exc):
                            raise
                        refused.append(exc)
                    rows = rows[1:]
                if rows:
                    self._store.insert(con, rows)
                    written, rows = written + len(rows), []
            except Exception as exc:  # noqa: BLE001  a failing store never stops the writer
                failures += 1
                self._retrying(exc, len(rows))
                self._close_connection()
                one_by_one = one_by_one or (failures >= 2 and not _transient(exc))
                if self._stop.wait(min(_RETRY_MAX_S, 0.1 * 2**failures)):
                    return None
        if refused:
            logger.warning(
                "prediction log: %s refused %d records (not retried): %s",
                self.url,
                len(refused),
                _safe_message(refused[-1], self._store.url, self._store.password),
            )
        if self._failing:
            self._failing = False
            logger.info("prediction log: %s is writable again", self.url)
        with self._lock:
            self.written += written
            self.replayed += written if replay else 0
            self.duplicates += duplicates
            self.failed_records += bad + len(refused)
            self._pending -= len(lines)
            self._lock.notify_all()
        return written

    def _connection(self) -> Any:
        if self._con is None:
            con = self._store.connect()
            try:
                self._store.create_table(con)
            except Exception:
                self._close_quietly(con)
                raise
            self._con = con
        return self._con

    def _close_connection(self) -> None:
        self._close_quietly(self._con)
        self._con = None

    def _retrying(self, exc: Exception, count: int) -> None:
        with self._lock:
            self.failed_batches += 1
            self.last_error = _safe_message(exc, self._store.url, self._store.password)
        now = time.monotonic()
        if not self._failing or now - self._last_error_logged >= _ERROR_LOG_EVERY_S:
            self._failing, self._last_error_logged = True, now
            logger.warning(
                "prediction log: %d records not written to %s yet, kept in the journal and retried "
                "(%d failed attempts so far): %s",
                count,
                self.url,
                self.failed_batches,
                self.last_error,
            )

    def _save_checkpoint(self, folder: _Folder, pos: Position) -> None:
        """A checkpoint that cannot be written is only stale: a replay would skip what the store has."""
        try:
            folder.checkpoint(pos)
        except OSError as exc:
            now = time.monotonic()
            if now - self._checkpoint_warned >= _ERROR_LOG_EVERY_S:
                self._checkpoint_warned = now
                logger.warning(
                    "prediction log: journal checkpoint not written (a restart would replay more): %s",
                    _safe_message(exc, self._store.url),
                )

    # Control ----------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every record logged so far is written or counted as failed (durable: and the
        journals of stopped processes are replayed). True if it was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._hurry.set()
        try:
            with self._lock:
                while (self._pending > 0 or self._adopting) and self._thread.is_alive():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._lock.wait(0.1 if remaining is None else min(remaining, 0.1))
                return self._pending <= 0 and not self._adopting
        finally:
            self._hurry.clear()

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to `timeout`), then stop the writer. Records logged afterwards are dropped (async)
        or refused (durable). Durable: what the store does not have yet stays in the journal, which
        the next start replays; a journal the store has entirely is deleted."""
        start = time.monotonic()
        self.flush(timeout)
        if self._journal is not None:
            self._journal.stop_appending()
        self._stop.set()
        self._thread.join(max(0.0, timeout - (time.monotonic() - start)) + 0.5)
        if self._journal is not None:  # a writer still stuck on a hanging store: position unknown
            self._journal.close(None if self._thread.is_alive() else self._read_pos)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Counters for metrics: written, dropped, failed_batches, failed_records (monotonic
        counters), queued (a gauge: records logged and not yet in the store) and last_error (masked,
        or None). Durable only (0 in async): refused (the journal could not take them: their requests
        got 503), replayed (written from stopped processes' journals, also in `written`), duplicates
        (replayed records the store had already, skipped). In durable mode failed_batches counts
        failed attempts (retried), failed_records only records the store refused alone."""
        with self._lock:
            return {
                "queued": self._pending,
                "written": self.written,
                "dropped": self.dropped,
                "failed_batches": self.failed_batches,
                "failed_records": self.failed_records,
                "refused": self.refused,
                "replayed": self.replayed,
                "duplicates": self.duplicates,
                "last_error": self.last_error,
            }

    # Reading (the try-it page) ------------------------------------------------------------------

    def _query(self, sql: str, params: tuple) -> list[tuple]:
        """Rows from a short-lived connection of its own; [] when nothing was written yet.
        An unreachable store raises its own error: the caller (the try-it page) shows it."""
        return self._store.query(sql, params)

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest predictions first, masked text only (never the raw text), JSON-ready: ts as
        ISO-8601 UTC, scores as a dict. Raises the store's error when it cannot be read."""
        rows = self._query(
            "SELECT request_id, ts, model_name, model_version, label, score, latency_ms, danger, text_hash, "
            f"masked_text, scores_json FROM {self._store.table} ORDER BY ts DESC, id DESC LIMIT ?",
            (int(limit),),
        )
        out = []
        for (
            request_id,
            ts,
            model_name,
            version,
            label,
            score,
            latency_ms,
            danger,
            hash_,
            masked,
            scores_json,
        ) in rows:
            out.append(
                {
                    "request_id": request_id,
                    "ts": ts if isinstance(ts, str) else _utc_iso(ts),
                    "model_name": model_name,
                    "model_version": version,
                    "label": label,
                    "score": score,
                    "latency_ms": latency_ms,
                    "danger": bool(danger),
                    "text_hash": hash_,
                    "masked_text": masked,
                    "scores": json.loads(scores_json or "{}"),
                }
            )
        return out

    def window(
        self, limit: int, *, since: datetime | None = None, model_version: str | None = None
    ) -> list[dict[str, Any]]:
        """A monitoring window: the newest `limit` predictions (of `model_version`, at or after `since`
        when given), oldest first, with the row id, ts, label, masked text, scores, the danger flag and the
        monitoring features (`projection`: base64 float16, `descriptors`: {name: value}; None where not
        logged), never the raw text."""
        where, params = [], []
        if since is not None:
            where.append("ts >= ?")
            params.append(_utc_iso(since) if self._store.kind == "sqlite" else _as_utc(since))
        if model_version is not None:
            where.append("model_version = ?")
            params.append(str(model_version))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        columns = "id, ts, model_version, label, masked_text, scores_json, danger"
        query = f"SELECT {{}} FROM {self._store.table}{clause} ORDER BY ts DESC, id DESC LIMIT ?"
        try:
            rows = self._query(query.format(f"{columns}, projection, descriptors"), (*params, int(limit)))
        except Exception as exc:
            message = str(exc)
            missing = "no such column" in message or "does not exist" in message
            if "projection" not in message or not missing:
                raise
            # written only by the code before the feature columns, not migrated yet: none logged
            rows = [(*r, None, None) for r in self._query(query.format(columns), (*params, int(limit)))]
        return [
            {
                "id": int(id_),  # the row's id: the review queue names the prediction by it
                "ts": ts if isinstance(ts, str) else _utc_iso(ts),
                "model_version": version,
                "label": label,
                "masked_text": masked,
                "scores": json.loads(scores_json or "{}"),
                "danger": bool(danger),
                "projection": projection,
                "descriptors": orjson.loads(described) if described else None,
            }
            for id_, ts, version, label, masked, scores_json, danger, projection, described in reversed(rows)
        ]

    def raw_texts(self, ids: Sequence[int]) -> dict[int, str]:
        """{row id: raw text} for the rows of `ids` that stored one (raw storage on when they were
        written): the review queue copies them for reviewers when raw storage is on."""
        out: dict[int, str] = {}
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._query(
                f"SELECT id, raw_text FROM {self._store.table} WHERE raw_text IS NOT NULL "
                f"AND id IN ({', '.join('?' * len(chunk))})",
                tuple(chunk),
            )
            out.update({int(i): str(t) for i, t in rows})
        return out

    def prune(self, before: datetime) -> int:
        """Delete the predictions made before `before` (naive means UTC): retention (`heara monitor
        prune`). Returns how many rows went; 0 when nothing was written yet."""
        store = self._store
        if store.kind == "sqlite" and not store.path.exists():
            return 0
        cutoff = _utc_iso(before) if store.kind == "sqlite" else _as_utc(before)
        con = store.connect(create=False)
        deleted = [0]

        def work(cur: Any) -> None:
            cur.execute(f"DELETE FROM {store.table} WHERE ts < {store.ph}", (cutoff,))
            deleted[0] = max(int(cur.rowcount or 0), 0)

        try:
            store.run_in_transaction(con, work)
        except Exception as exc:
            if store.is_missing_table(exc):
                return 0
            raise
        finally:
            con.close()
        return deleted[0]

    def timeline(
        self,
        *,
        speaker_id: str | None = None,
        session_id: str | None = None,
        limit: int = 1000,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """One speaker's (or one session's) predictions, oldest first: the newest `limit`, at or after
        `since` (naive means UTC) when given. Each with ts, label, score, scores, danger, model_version,
        the masked text (never the raw text) and the stored ids. Ids are looked up as stored, so the
        caller pseudonymises them first (serving.timeline.IdKeys). A table older than the id columns
        holds nobody's rows: []. Raises ValueError unless exactly one id is given."""
        if (speaker_id is None) == (session_id is None):
            raise ValueError("timeline: give exactly one of speaker_id and session_id")
        column, value = ("speaker_id", speaker_id) if speaker_id is not None else ("session_id", session_id)
        where, params = [f"{column} = ?"], [str(value)]
        if since is not None:
            where.append("ts >= ?")
            params.append(_utc_iso(since) if self._store.kind == "sqlite" else _as_utc(since))
        try:
            rows = self._query(
                "SELECT ts, model_version, label, score, danger, masked_text, scores_json, speaker_id, "
                f"session_id, device_id FROM {self._store.table} WHERE {' AND '.join(where)} "
                "ORDER BY ts DESC, id DESC LIMIT ?",
                (*params, int(limit)),
            )
        except Exception as exc:
            message = str(exc)
            if column in message and ("no such column" in message or "does not exist" in message):
                return []  # written only by the code before the id columns, not migrated yet
            raise
        names = ("ts", "model_version", "label", "score", "danger", "masked_text", "scores")
        out = []
        for row in reversed(rows):
            entry = dict(zip(names, row[:7]))
            entry["ts"] = entry["ts"] if isinstance(entry["ts"], str) else _utc_iso(entry["ts"])
            entry["danger"] = bool(entry["danger"])
            entry["scores"] = json.loads(entry["scores"] or "{}")
            out.append({**entry, **dict(zip(ID_COLUMNS, row[7:]))})
        return out

    def label_counts(self, since: datetime | None = None) -> dict[str, int]:
        """Predictions per label, optionally only those at or after `since` (naive means UTC)."""
        where, params = "", ()
        if since is not None:
            where = " WHERE ts >= ?"
            params = (_utc_iso(since) if self._store.kind == "sqlite" else _as_utc(since),)
        rows = self._query(
            f"SELECT label, COUNT(*) FROM {self._store.table}{where} GROUP BY label "
            "ORDER BY COUNT(*) DESC, label",
            params,
        )
        return {label: int(n) for label, n in rows}
