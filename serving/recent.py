"""The last predictions this service process made, in memory, for `GET /recent` and the try-it page.

A ring buffer of the newest `capacity` predictions (masked text, label, score, danger flag, time)
and a count per label since the process started. The service fills it after each response is sent
(`HearaService._log`), from the prediction log's records, so it holds exactly what the log holds:
the PII-masked text (`[PHONE]`, `[RRN]`, `[CARD]`, `[ACCOUNT]`, `[EMAIL]`, `[URL]`), never the raw utterance.

It is per process and lost on restart: with several front workers each answers with its own
share. The prediction log (`serving.predlog`) is the durable, complete record.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.predlog import PredictionRecord

DEFAULT_SIZE = 50


class RecentPredictions:
    """Thread-safe: `add` runs in the request threads' background tasks, `snapshot` in the handlers."""

    def __init__(self, capacity: int = DEFAULT_SIZE) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.since = datetime.now(UTC)

    def add(self, records: Iterable[PredictionRecord]) -> None:
        """Keep each record's public fields (masked text only), oldest first within a request."""
        items = [_public(r) for r in records]
        with self._lock:
            self._items.extend(items)
            self._counts.update(item["label"] for item in items)

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        """`{"predictions": newest first (at most `limit`), "label_counts": {label: n} since start,
        "total": n since start, "capacity", "since": start time}`, JSON-ready."""
        with self._lock:
            items = list(self._items)
            counts = dict(self._counts.most_common())
        newest_first = items[::-1][:limit] if limit is not None else items[::-1]
        return {
            "predictions": newest_first,
            "label_counts": counts,
            "total": sum(counts.values()),
            "capacity": self.capacity,
            "since": self.since.isoformat(timespec="seconds"),
        }


def _public(rec: PredictionRecord) -> dict[str, Any]:
    """What /recent may show: no raw text, whatever the prediction log stores."""
    return {
        "ts": rec.ts.isoformat(timespec="milliseconds"),
        "request_id": rec.request_id,
        "masked_text": rec.masked_text,
        "label": rec.label,
        "score": rec.score,
        "danger": rec.danger,
        "model_version": rec.model_version,
    }
