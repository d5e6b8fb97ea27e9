"""The process's budget of CloudWatch Logs calls: spaced at its rate, a job's final read served first."""

from __future__ import annotations

import asyncio
import itertools
import time

from airflow_batch_runner.triggers.log_reader import LogsBudget


def test_calls_are_spaced_at_the_rate() -> None:
    async def run() -> list[float]:
        budget = LogsBudget(rate=20.0)
        stamps = []
        for _ in range(6):
            await budget.take()
            stamps.append(time.monotonic())
        return stamps

    stamps = asyncio.run(run())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.05 * 0.9, gaps
    assert stamps[-1] - stamps[0] >= 5 * 0.05 * 0.9


def test_an_urgent_taker_goes_before_those_already_waiting() -> None:
    async def run() -> list[str]:
        budget = LogsBudget(rate=20.0)
        await budget.take()  # the next slot is 50 ms away: everyone below waits
        order: list[str] = []

        async def take(name: str, urgent: bool) -> None:
            await budget.take(urgent=urgent)
            order.append(name)

        regular = [asyncio.ensure_future(take(f"regular-{i}", False)) for i in range(3)]
        await asyncio.sleep(0)  # the regular ones queue first
        final = asyncio.ensure_future(take("final", True))
        await asyncio.gather(*regular, final)
        return order

    assert asyncio.run(run()) == ["final", "regular-0", "regular-1", "regular-2"]


def test_a_cancelled_taker_gives_its_slot_up() -> None:
    async def run() -> list[str]:
        budget = LogsBudget(rate=4.0)  # slots 0.25 s apart
        await budget.take()
        order: list[str] = []

        async def take(name: str) -> None:
            await budget.take()
            order.append(name)

        gone = asyncio.ensure_future(take("gone"))
        kept = asyncio.ensure_future(take("kept"))
        await asyncio.sleep(0)
        gone.cancel()
        started = time.monotonic()
        await kept
        assert time.monotonic() - started < 0.45  # served in the first slot (0.25 s), not the second (0.5 s)
        return order

    assert asyncio.run(run()) == ["kept"]
