"""The in-process batcher of the `single` topology: concurrent requests share model calls, each gets
its own results in order, a failing batch fails only its requests, and an over-long queue is refused."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from serving.batcher import Batcher, Overloaded


class SlowModel:
    """Echoes each text upper-cased after `delay_s`; records the batches it was called with."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, texts: list[str]) -> list[str]:
        self.release.wait(5)
        self.batches.append(list(texts))
        time.sleep(self.delay_s)
        if "boom" in texts:
            raise ValueError("model failed on this batch")
        return [t.upper() for t in texts]


def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    model = SlowModel()
    batcher = Batcher(model, max_batch_size=64, max_latency_ms=10_000)

    async def main():
        requests = [[f"r{i}-a", f"r{i}-b"] for i in range(20)]
        return requests, await asyncio.gather(*(batcher.submit(r) for r in requests))

    requests, results = asyncio.run(main())
    batcher.close()
    assert results == [[t.upper() for t in r] for r in requests]
    assert len(model.batches) < 20  # merged: fewer model calls than requests
    assert sorted(t for b in model.batches for t in b) == sorted(t for r in requests for t in r)


def test_a_batch_never_exceeds_max_batch_size_and_never_splits_a_request() -> None:
    model = SlowModel(delay_s=0.02)
    batcher = Batcher(model, max_batch_size=5, max_latency_ms=10_000)
    sizes = [3, 3, 1, 4, 2, 5, 1, 7]  # 7 > 5: runs alone, unsplit

    async def main():
        return await asyncio.gather(
            *(batcher.submit([f"{i}-{j}" for j in range(n)]) for i, n in enumerate(sizes))
        )

    results = asyncio.run(main())
    batcher.close()
    assert [len(r) for r in results] == sizes
    for batch in model.batches:
        requests = {t.split("-")[0] for t in batch}
        assert len(batch) <= 5 or len(requests) == 1, batch
        for i in requests:  # every text of a request is in the same batch
            assert sum(t.startswith(f"{i}-") for t in batch) == sizes[int(i)]


def test_an_error_fails_only_the_requests_of_its_batch() -> None:
    model = SlowModel(delay_s=0.0)
    batcher = Batcher(model, max_batch_size=64, max_latency_ms=10_000)

    async def main():
        with pytest.raises(ValueError, match="model failed"):
            await batcher.submit(["boom"])
        return await batcher.submit(["fine"])

    assert asyncio.run(main()) == ["FINE"]
    batcher.close()


def test_a_request_that_would_wait_too_long_is_refused() -> None:
    model = SlowModel(delay_s=0.05)  # about 50 ms per text once measured (batches of one)
    batcher = Batcher(model, max_batch_size=1, max_latency_ms=120)

    async def main():
        await batcher.submit(["warm"])  # measures the time per text
        model.release.clear()  # hold the worker: the queue grows
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(batcher.submit([f"q{i}"])) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="texts are waiting"):
            await batcher.submit(["one too many"] * 3)
        model.release.set()
        return await first, await asyncio.gather(*queued)

    first, queued = asyncio.run(main())
    batcher.close()
    assert first == ["A"] and queued == [["Q0"], ["Q1"]]  # what was accepted is answered


def test_closed_batcher_refuses_and_its_thread_ends() -> None:
    batcher = Batcher(SlowModel(0.0), max_batch_size=4, max_latency_ms=1000)
    batcher.close()
    assert not batcher._thread.is_alive()
    with pytest.raises(Overloaded):
        asyncio.run(batcher.submit(["late"]))
