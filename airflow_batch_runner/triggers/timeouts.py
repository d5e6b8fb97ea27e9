"""Waiting with a timeout without losing a cancellation.

Before Python 3.12, ``asyncio.wait_for`` returns the awaited result instead of raising when its task is
cancelled in the same loop iteration as that result arrives (CPython gh-86296). A trigger or log reader
whose cancellation is lost goes on forever: the triggerer's cleanup, or ``asyncio.run``'s, then waits
for it without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """The awaitable's result, ``asyncio.TimeoutError`` after ``timeout`` seconds; a cancellation of
    the caller is always raised (the awaitable is cancelled with it)."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(0.0, timeout))
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise asyncio.TimeoutError
    return task.result()
