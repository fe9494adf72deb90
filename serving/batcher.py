"""Adaptive batching inside one process: concurrent /classify requests share one model call.

Used by the `single` topology (`serve.topology`), where the HTTP handler and the model live in the
same process. Each request hands its texts to `Batcher.submit` and awaits a future; one worker
thread takes everything that is waiting (whole requests, up to `max_batch_size` texts), runs the
model once on all of it and hands each request its own slice of the results.

The batch forms while the previous one computes, so it is never held back by a timer: one lone
request is computed at once (lowest latency at low load), and under load every model call carries
whatever arrived meanwhile (highest throughput). Triton calls this dynamic batching with zero queue
delay.

Load shedding: a request whose expected wait (texts queued ahead of it x the recent time per text)
exceeds `max_latency_ms` is refused at once with `Overloaded` (HTTP 503 + Retry-After), rather than
answered late. The time per text is a moving average over recent batches.

Why not BentoML's batching: its batchable API returns one item per input text and splits that list
back to the callers, while /classify answers one envelope per request (request id, predictions) and
needs the validation, API key and prediction log in the same handler; the dispatcher that does the
merging (`CorkDispatcher`) is internal to BentoML. The `split` topology still uses BentoML's
batching across processes (serving/service.py, `HearaInference`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class Overloaded(Exception):
    """The request would wait longer than `max_latency_ms`: refuse it now (HTTP 503)."""


@dataclass(slots=True)
class _Waiting:
    texts: Sequence[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _resolve(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the caller went away (cancelled): nothing to hand back
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Batcher:
    """`await submit(texts)` -> `fn(texts)`'s results for these texts, computed in a shared batch.

    `fn(texts) -> list` is called from one worker thread with the texts of several requests in
    arrival order; it must return one result per text. An exception in `fn` fails every request of
    that batch with it (the next batch is unaffected).
    """

    def __init__(
        self,
        fn: Callable[[list[str]], list[Any]],
        *,
        max_batch_size: int,
        max_latency_ms: float,
    ) -> None:
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000
        self._queue: deque[_Waiting] = deque()
        self._queued_texts = 0
        self._cond = threading.Condition()
        self._closed = False
        self._s_per_text: float | None = None  # moving average; None until the first batch
        self._thread = threading.Thread(target=self._run, name="heara-batcher", daemon=True)
        self._thread.start()

    # --- callers (the event loop) ----------------------------------------------------------------

    def expected_wait_s(self, extra_texts: int = 0) -> float:
        """Seconds until `extra_texts` more would be computed, from the texts queued and the recent
        time per text (0 before the first batch: nothing is known yet, so nothing is refused)."""
        if self._s_per_text is None:
            return 0.0
        return (self._queued_texts + extra_texts) * self._s_per_text

    async def submit(self, texts: Sequence[str]) -> list[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._cond:
            if self._closed:
                raise Overloaded("the model is shutting down")
            if self._queue and self.expected_wait_s(len(texts)) > self.max_latency_s:
                raise Overloaded(
                    f"{self._queued_texts} texts are waiting (about {self.expected_wait_s():.1f} s)"
                )
            self._queue.append(_Waiting(texts, future, loop))
            self._queued_texts += len(texts)
            self._cond.notify()
        return await future

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking requests; the worker finishes what is queued, then exits."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout_s)

    # --- the worker thread -------------------------------------------------------------------------

    def _take(self) -> list[_Waiting] | None:
        """Whole requests from the front of the queue, up to max_batch_size texts (at least one
        request, however many texts it has: a request is never split). None: closed and empty."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            batch, n = [], 0
            while self._queue and (not batch or n + len(self._queue[0].texts) <= self.max_batch_size):
                item = self._queue.popleft()
                batch.append(item)
                n += len(item.texts)
            self._queued_texts -= n
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            texts = [t for item in batch for t in item.texts]
            start = time.perf_counter()
            try:
                results = self.fn(texts)
                if len(results) != len(texts):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(texts)} texts"
                    )
            except BaseException as exc:  # noqa: BLE001 (handed to the callers, who answer 500)
                for item in batch:
                    item.loop.call_soon_threadsafe(_resolve, item.future, None, exc)
                continue
            elapsed = time.perf_counter() - start
            per_text = elapsed / len(texts)
            self._s_per_text = (
                per_text if self._s_per_text is None else 0.8 * self._s_per_text + 0.2 * per_text
            )
            offset = 0
            for item in batch:
                part = results[offset : offset + len(item.texts)]
                offset += len(item.texts)
                item.loop.call_soon_threadsafe(_resolve, item.future, part)
