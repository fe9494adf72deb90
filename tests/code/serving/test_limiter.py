"""serving.limiter.Slots: at most `running` at once, `waiting` more queued, the rest refused at once."""

from __future__ import annotations

import asyncio

import pytest

from serving.limiter import Full, Slots


def test_admits_running_plus_waiting_and_refuses_the_rest() -> None:
    async def scenario() -> tuple[list[str], int, int]:
        slots = Slots(running=2, waiting=1)
        release = asyncio.Event()
        active, peak, outcomes = [0], [0], []

        async def job(i: int) -> None:
            try:
                async with slots.slot():
                    active[0] += 1
                    peak[0] = max(peak[0], active[0])
                    await release.wait()
                    active[0] -= 1
                outcomes.append("done")
            except Full:
                outcomes.append("full")

        tasks = [asyncio.create_task(job(i)) for i in range(6)]
        await asyncio.sleep(0.05)
        admitted = slots.admitted
        release.set()
        await asyncio.gather(*tasks)
        return outcomes, peak[0], admitted

    outcomes, peak, admitted = asyncio.run(scenario())
    assert admitted == 3 and peak == 2
    assert outcomes.count("full") == 3 and outcomes.count("done") == 3
    # refused at once: the three refusals come before any admitted job finished
    assert outcomes[:3] == ["full"] * 3


def test_slots_are_released_after_errors() -> None:
    async def scenario() -> int:
        slots = Slots(running=1, waiting=0)
        with pytest.raises(RuntimeError):
            async with slots.slot():
                raise RuntimeError("boom")
        async with slots.slot():
            pass
        return slots.admitted

    assert asyncio.run(scenario()) == 0


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        Slots(running=0, waiting=1)
    with pytest.raises(ValueError):
        Slots(running=1, waiting=-1)
