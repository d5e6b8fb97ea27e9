"""Waiting with a timeout: the result, a timeout, and a cancellation never lost."""

from __future__ import annotations

import asyncio

import pytest

from airflow_batch_runner.triggers.timeouts import within


def test_the_result_comes_back() -> None:
    async def run() -> int:
        queue: asyncio.Queue[int] = asyncio.Queue()
        asyncio.get_running_loop().call_later(0.05, queue.put_nowait, 7)
        return await within(queue.get(), 2.0)

    assert asyncio.run(run()) == 7


def test_a_timeout_raises_and_leaves_the_queue_whole() -> None:
    async def run() -> int:
        queue: asyncio.Queue[int] = asyncio.Queue()
        with pytest.raises(asyncio.TimeoutError):
            await within(queue.get(), 0.05)
        queue.put_nowait(3)
        return await within(queue.get(), 1.0)  # the timed-out getter took nothing

    assert asyncio.run(run()) == 3


def test_a_cancellation_arriving_with_the_result_is_raised() -> None:
    """The event is set and the waiting task cancelled in one loop iteration: asyncio.wait_for before
    Python 3.12 returns the event's result and the loop below never ends (CPython gh-86296)."""

    async def run() -> bool:
        event = asyncio.Event()

        async def loop_forever() -> None:
            while True:
                await within(event.wait(), 60.0)
                event.clear()

        task = asyncio.create_task(loop_forever())
        await asyncio.sleep(0.01)
        event.set()
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        stopped = task.cancelled()
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        return stopped

    assert asyncio.run(run())


def test_a_zero_or_negative_timeout_still_gives_a_ready_result() -> None:
    async def run() -> int:
        queue: asyncio.Queue[int] = asyncio.Queue()
        queue.put_nowait(5)
        return await within(queue.get(), -1.0)

    assert asyncio.run(run()) == 5
