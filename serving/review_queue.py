"""The review queue: served predictions picked for a person to label, in the prediction database.

`heara review select` (training/steps/review.py picks the rows) puts predictions of the newest window
here; the review page (GET /review) shows them one at a time and records what the reviewer decided;
`heara review export` writes the labeled rows to the incoming folder, from where they are trained on
(the incoming watcher triggers heara_retrain); the labeled rows of the `random` stratum, a uniform
sample of what the service saw, are the production holdout that the evaluate step scores a model on.

One table, `review_queue`, beside `predictions` in the same store (SQLite by default, PostgreSQL by
URL: serving.predlog's `_Store`). A prediction is queued at most once (`prediction_id` is unique).
Rows hold the PII-masked text; `raw_text` only when the queue was opened with `store_raw=True` (the
caller passes `training.env.store_raw_text()`) and the item carried it.

Status: `queued` until reviewed, then `labeled` (with a label from the model's label map, which the
caller checks), `skipped` (not a fit for the task) or `unsure` (the reviewer could not tell; a label
given then is kept as a guess and never exported). `export_id` stays null until the row was written
to an export; an exported row can no longer be changed, so a training set never disagrees with it.
Labeled rows of the `random` stratum are the production holdout and are never exported: a model trained
on them would be scored on its own training rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from serving.predlog import _as_utc, _Store, _utc_iso

STRATA = ("danger", "uncertain", "novel", "random")  # danger is reviewed first (next_item)
STATUSES = ("queued", "labeled", "skipped", "unsure")
REVIEWED = ("labeled", "skipped", "unsure")  # what record() accepts
HOLDOUT = "random"  # the stratum whose labeled rows are the production holdout, never exported

COLUMNS = (
    "id",
    "prediction_id",
    "ts_queued",
    "ts_predicted",
    "model_version",
    "stratum",
    "masked_text",
    "raw_text",
    "suggested_label",
    "scores_json",
    "status",
    "label",
    "reviewer",
    "ts_reviewed",
    "export_id",
)


class UnknownItem(LookupError):
    """No review item has this id (the page answers 404)."""


class AlreadyReviewed(ValueError):
    """record(only_queued=True) on an item that was reviewed already (the page answers 409)."""


_NOT_QUEUED = object()  # record()'s work: the guarded UPDATE found the item reviewed already


class ReviewQueue:
    """The `review_queue` table of the prediction database.

    url: None (SQLite in the state folder, like the prediction log), `sqlite:///path` or
    `postgresql://...`. store_raw: keep the raw text items carry (off by default). table: its name.
    Every call opens a short-lived connection of its own, so one object may serve several threads.
    """

    def __init__(self, url: str | None = None, *, store_raw: bool = False, table: str = "review_queue"):
        self._store = _Store(url, table)
        self.table = table
        self.store_raw = store_raw
        self._created = False

    def __repr__(self) -> str:
        return f"ReviewQueue({self.url!r}, table={self.table!r})"

    @property
    def url(self) -> str:
        """The store URL with its password hidden."""
        from serving.predlog import _hide_password

        return _hide_password(self._store.url)

    # Storage ----------------------------------------------------------------------------------

    def _ts(self, ts: datetime) -> Any:
        return _utc_iso(ts) if self._store.kind == "sqlite" else _as_utc(ts)

    def _create(self, con: Any) -> None:
        if self._created:
            return
        if self._store.kind == "sqlite":
            key, ts, real = "id INTEGER PRIMARY KEY", "TEXT", "INTEGER"
        else:
            key, ts, real = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "TIMESTAMPTZ", "BIGINT"
        t = self.table
        statements = [
            f"CREATE TABLE IF NOT EXISTS {t} ({key}, prediction_id {real} NOT NULL UNIQUE, "
            f"ts_queued {ts} NOT NULL, ts_predicted {ts}, model_version TEXT, stratum TEXT NOT NULL, "
            "masked_text TEXT, raw_text TEXT, suggested_label TEXT, scores_json TEXT, "
            f"status TEXT NOT NULL, label TEXT, reviewer TEXT, ts_reviewed {ts}, export_id TEXT)",
            f"CREATE INDEX IF NOT EXISTS {t}_status_idx ON {t} (status, stratum)",
        ]
        self._store.run_in_transaction(con, lambda cur: [cur.execute(s) for s in statements])
        self._created = True

    def _write(self, work: Any) -> Any:
        """Run work(cursor) in one transaction on a fresh connection (the table created first)."""
        con = self._store.connect()
        result: list[Any] = [None]
        try:
            self._create(con)
            self._store.run_in_transaction(con, lambda cur: result.__setitem__(0, work(cur)))
        finally:
            con.close()
        return result[0]

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Items of a `SELECT {COLUMNS} ...` as dicts; [] when nothing was queued yet."""
        return [self._item(dict(zip(COLUMNS, row))) for row in self._store.query(sql, tuple(params))]

    @staticmethod
    def _item(row: dict[str, Any]) -> dict[str, Any]:
        """A row as the API gives it: timestamps as ISO-8601 UTC text, scores as a dict."""
        for key in ("ts_queued", "ts_predicted", "ts_reviewed"):
            if isinstance(row.get(key), datetime):
                row[key] = _utc_iso(row[key])
        if "scores_json" in row:
            row["scores"] = json.loads(row.pop("scores_json") or "{}")
        return row

    # Writing ----------------------------------------------------------------------------------

    def enqueue(self, items: Iterable[Mapping[str, Any]], *, now: datetime | None = None) -> int:
        """Queue predictions for review; returns how many were new (a prediction already queued, in
        any status, is skipped).

        Each item: `prediction_id` (or `id`, as `PredictionLog.window()` names it), `stratum` (one of
        STRATA), and from the window row `model_version`, `label` (the model's, stored as
        `suggested_label`), `masked_text`, `scores`, `ts`; `raw_text` is kept only with store_raw.
        Raises ValueError for an item without a prediction id or with an unknown stratum.
        """
        ts_queued = self._ts(now or datetime.now(UTC))
        rows = []
        for item in items:
            pid = item.get("prediction_id", item.get("id"))
            if pid is None:
                raise ValueError("review queue: an item to enqueue has no prediction_id")
            stratum = item.get("stratum")
            if stratum not in STRATA:
                raise ValueError(f"review queue: stratum must be one of {', '.join(STRATA)}, got {stratum!r}")
            predicted = item.get("ts")
            if isinstance(predicted, str):
                predicted = datetime.fromisoformat(predicted)
            rows.append(
                (
                    int(pid),
                    ts_queued,
                    self._ts(predicted) if predicted is not None else None,
                    None if item.get("model_version") is None else str(item["model_version"]),
                    stratum,
                    item.get("masked_text"),
                    item.get("raw_text") if self.store_raw else None,
                    item.get("suggested_label", item.get("label")),
                    json.dumps(dict(item.get("scores") or {}), ensure_ascii=False),
                    "queued",
                )
            )
        if not rows:
            return 0
        ph = self._store.ph
        sql = (
            f"INSERT INTO {self.table} (prediction_id, ts_queued, ts_predicted, model_version, stratum, "
            f"masked_text, raw_text, suggested_label, scores_json, status) "
            f"VALUES ({', '.join([ph] * 10)}) ON CONFLICT (prediction_id) DO NOTHING"
        )

        def work(cur: Any) -> int:
            added = 0
            for row in rows:  # one by one: rowcount says whether each was new, on both backends
                cur.execute(sql, row)
                added += max(int(cur.rowcount or 0), 0)
            return added

        return self._write(work)

    def record(
        self,
        item_id: int,
        status: str,
        label: str | None = None,
        reviewer: str | None = None,
        *,
        now: datetime | None = None,
        only_queued: bool = False,
    ) -> dict[str, Any]:
        """Record a reviewer's decision on an item and return the item as stored.

        status: `labeled` (label required), `skipped` or `unsure` (a label is kept as a guess). The
        caller checks the label against the model's label map. A decision may be changed until the
        item is exported. Raises ValueError for a bad status or a missing label or an exported item,
        UnknownItem for an id that is not in the queue. With `only_queued` (the review page: two
        reviewers shown the same item) the item must still be queued, checked in the same UPDATE, else
        AlreadyReviewed.
        """
        if status not in REVIEWED:
            raise ValueError(f"review: status must be one of {', '.join(REVIEWED)}, got {status!r}")
        label = None if label is None or not str(label).strip() else str(label).strip()
        if status == "labeled" and label is None:
            raise ValueError("review: a label is required to mark an item labeled")
        if status == "skipped":
            label = None
        ph = self._store.ph
        params = (status, label, reviewer, self._ts(now or datetime.now(UTC)), int(item_id))

        def work(cur: Any) -> str | None:
            cur.execute(f"SELECT export_id FROM {self.table} WHERE id = {ph}", (int(item_id),))
            found = cur.fetchone()
            if found is None:
                return "missing"
            if found[0] is not None:
                return found[0]
            cur.execute(
                f"UPDATE {self.table} SET status = {ph}, label = {ph}, reviewer = {ph}, ts_reviewed = {ph} "
                f"WHERE id = {ph} AND export_id IS NULL" + (" AND status = 'queued'" if only_queued else ""),
                params,
            )
            return None if cur.rowcount else _NOT_QUEUED

        outcome = self._write(work)
        if outcome == "missing":
            raise UnknownItem(f"review: no item {item_id} in the queue")
        if outcome is _NOT_QUEUED:
            raise AlreadyReviewed(f"review: item {item_id} was reviewed already")
        if outcome is not None:
            raise ValueError(f"review: item {item_id} was exported already ({outcome}) and cannot change")
        return self.get(item_id)  # type: ignore[return-value]

    def mark_exported(self, ids: Iterable[int], export_id: str) -> int:
        """Set `export_id` on the given items that have none yet; returns how many were marked."""
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        ph = self._store.ph

        def work(cur: Any) -> int:
            marked = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cur.execute(
                    f"UPDATE {self.table} SET export_id = {ph} "
                    f"WHERE export_id IS NULL AND status = 'labeled' AND stratum <> '{HOLDOUT}' "
                    f"AND id IN ({', '.join([ph] * len(chunk))})",
                    (export_id, *chunk),
                )
                marked += max(int(cur.rowcount or 0), 0)
            return marked

        return self._write(work)

    # Reading ----------------------------------------------------------------------------------

    def get(self, item_id: int) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE id = ?", (int(item_id),))
        return rows[0] if rows else None

    def next_item(self, exclude_ids: Iterable[int] = ()) -> dict[str, Any] | None:
        """The next item to review: queued, not in `exclude_ids` (items the caller has shown already),
        the danger stratum first, then the oldest queued."""
        exclude = [int(i) for i in exclude_ids]
        clause = f" AND id NOT IN ({', '.join('?' * len(exclude))})" if exclude else ""
        rows = self._read(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE status = 'queued'{clause} "
            "ORDER BY CASE WHEN stratum = 'danger' THEN 0 ELSE 1 END, ts_queued, id LIMIT 1",
            exclude,
        )
        return rows[0] if rows else None

    def items(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Items, newest queued first, optionally of one status."""
        where, params = ("", []) if status is None else (" WHERE status = ?", [status])
        return self._read(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table}{where} ORDER BY ts_queued DESC, id DESC LIMIT ?",
            [*params, int(limit)],
        )

    def labeled_since(self, since: datetime, *, for_training: bool = False) -> int:
        """How many items were labeled at or after `since` (the review page's "labeled today"); with
        `for_training`, only those an export gives to training (not the holdout's random stratum)."""
        holdout = f" AND stratum <> '{HOLDOUT}'" if for_training else ""
        rows = self._store.query(
            f"SELECT COUNT(*) FROM {self.table} WHERE status = 'labeled' AND ts_reviewed >= ?{holdout}",
            (self._ts(since),),
        )
        return int(rows[0][0]) if rows else 0

    def counts(self) -> dict[str, Any]:
        """{"total": n, "status": {status: n}, "stratum": {stratum: n}, "by_stratum": {stratum: {status:
        n}}, "unexported": labeled rows awaiting export (the random stratum is never exported)}; every status
        and stratum present, 0 included."""
        rows = self._store.query(
            f"SELECT stratum, status, COUNT(*), SUM(CASE WHEN export_id IS NULL AND status = 'labeled' "
            f"AND stratum <> '{HOLDOUT}' THEN 1 ELSE 0 END) FROM {self.table} GROUP BY stratum, status",
            (),
        )
        by = {s: dict.fromkeys(STATUSES, 0) for s in STRATA}
        unexported = 0
        for stratum_, status_, n, not_exported in rows:
            by.setdefault(stratum_, dict.fromkeys(STATUSES, 0))[status_] = int(n)
            unexported += int(not_exported or 0)
        status = {s: sum(v.get(s, 0) for v in by.values()) for s in STATUSES}
        stratum = {s: sum(v.values()) for s, v in by.items()}
        return {
            "total": sum(stratum.values()),
            "status": status,
            "stratum": stratum,
            "by_stratum": by,
            "unexported": unexported,
        }

    def reviewed_unexported(self) -> list[dict[str, Any]]:
        """Labeled items not exported yet, oldest review first: what `heara review export` writes
        (skipped and unsure items are never exported, nor the random stratum: the holdout)."""
        return self._read(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE status = 'labeled' AND export_id IS NULL "
            f"AND stratum <> '{HOLDOUT}' ORDER BY ts_reviewed, id"
        )

    def holdout(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The production holdout: the newest `limit` labeled items of the random stratum (a uniform
        sample of served traffic), newest review first, each with the served model's label
        (`suggested_label`) and the person's (`label`)."""
        return self._read(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE status = 'labeled' AND stratum = 'random' "
            "ORDER BY ts_reviewed DESC, id DESC LIMIT ?",
            (int(limit),),
        )

    def queued_among(self, prediction_ids: Iterable[int]) -> set[int]:
        """Which of these predictions are in the queue already (any status): `heara review select`
        leaves them out, so overlapping windows do not spend the budget twice."""
        ids = [int(i) for i in prediction_ids]
        found: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._store.query(
                f"SELECT prediction_id FROM {self.table} "
                f"WHERE prediction_id IN ({', '.join('?' * len(chunk))})",
                tuple(chunk),
            )
            found.update(int(r[0]) for r in rows)
        return found
