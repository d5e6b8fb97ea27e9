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
        budget = LogsBudget(rate=1.0)  # slots 1 s apart: wide enough for a loaded host's stalls
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
        assert time.monotonic() - started < 1.7  # served in the first slot (1 s), not the second (2 s)
        return order

    assert asyncio.run(run()) == ["kept"]


def test_a_final_read_spends_the_reserve_at_once_and_the_regular_reads_after_it_wait_for_it() -> None:
    async def run() -> dict[str, float]:
        budget = LogsBudget(rate=1.0)  # slots 1 s apart: wide enough for a loaded host's stalls
        await budget.take()
        started = time.monotonic()
        times: dict[str, float] = {}

        async def take(name: str, urgent: bool) -> None:
            await budget.take(urgent=urgent)
            times[name] = time.monotonic() - started

        regular = asyncio.ensure_future(take("regular", False))
        await asyncio.sleep(0)  # the regular taker queues first
        await take("final", True)
        await regular
        return times

    times = asyncio.run(run())
    assert times["final"] < 0.8, times  # not at the next slot (1 s): at once
    assert times["regular"] >= 1.9, times  # its slot went to the final read: the one after (2 s)


def test_no_window_holds_more_than_two_calls_beyond_the_rate() -> None:
    """A regular call and the reserve's final read may go together; past that the rate holds."""
    async def run() -> list[float]:
        budget = LogsBudget(rate=10.0)
        stamps: list[float] = []

        async def taker(urgent: bool, count: int) -> None:
            for _ in range(count):
                await budget.take(urgent=urgent)
                stamps.append(time.monotonic())

        await asyncio.gather(taker(False, 12), taker(False, 12), taker(True, 6))
        return sorted(stamps)

    stamps = asyncio.run(run())
    for i, first in enumerate(stamps):
        in_window = sum(1 for t in stamps[i:] if t - first < 1.0)
        assert in_window <= 10 + 2, (i, in_window)
    assert stamps[-1] - stamps[0] >= (30 - 2) / 10.0 * 0.95  # the mean rate holds too


def test_free_says_whether_a_call_could_go_at_once() -> None:
    async def run() -> list[tuple[bool, bool]]:
        budget = LogsBudget(rate=1.0)
        seen = [(budget.free(), budget.free(urgent=True))]
        await budget.take()  # the reserve stays: only a final read could go now
        seen.append((budget.free(), budget.free(urgent=True)))
        await budget.take(urgent=True)
        seen.append((budget.free(), budget.free(urgent=True)))
        return seen

    assert asyncio.run(run()) == [(True, True), (False, True), (False, False)]
