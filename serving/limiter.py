"""Bounded concurrency for work kept outside the /classify batch queue (POST /explain).

At most `running` calls compute at once and `waiting` more may queue for a slot; a call beyond that is
refused at once (the route answers 503 with Retry-After) instead of piling up behind the others, so
that a burst of explanations costs bounded CPU and memory and /classify keeps its latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Full(Exception):
    """Every slot and waiting place is taken."""


class Slots:
    def __init__(self, running: int, waiting: int) -> None:
        if running < 1 or waiting < 0:
            raise ValueError("Slots: running >= 1 and waiting >= 0")
        self.running = running
        self.capacity = running + waiting
        self.admitted = 0  # computing + waiting
        self._semaphore: asyncio.Semaphore | None = None  # made in the event loop that uses it

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the body of the `async with`; Full at once when none is free and no waiting
        place is left."""
        if self.admitted >= self.capacity:
            raise Full
        self.admitted += 1
        try:
            if self._semaphore is None:
                self._semaphore = asyncio.Semaphore(self.running)
            async with self._semaphore:
                yield
        finally:
            self.admitted -= 1
