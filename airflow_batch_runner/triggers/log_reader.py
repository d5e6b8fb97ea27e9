"""The log side of a shared poller: reads the main containers' lines apart from the status loop.

One reader task per poller, and one budget of CloudWatch Logs calls per triggerer process (all the
pollers of its event loop): a throttled, failing or slow Logs delays only lines, never a job's end,
a vanished job or a deadline. Positions, de-duplication and the choice of streams per call are the
pure ``log_positions`` module's.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow.providers.common.compat.sdk import conf

from airflow_batch_runner import log_positions
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, is_throttling
from airflow_batch_runner.log_positions import Cursor

CONFIG_SECTION = "batch_runner"
# FilterLogEvents allows 5 calls a second per account and Region, for everything in the account: a
# triggerer takes 2 by default (one call covers up to 100 jobs, so 200 jobs' streams a second).
DEFAULT_CALLS_PER_SECOND = 2.0
# How long after its timestamp CloudWatch Logs may make an event readable: the lookback of every read
# and the wait, after a job's end, before its final read; both widen to the largest lag observed.
DEFAULT_INGESTION_ALLOWANCE = 2.0
# After a failed final read, retry this often until the wait for it is over.
FINAL_READ_RETRY = 0.2
# A call unanswered this long is slow: a job's end stops waiting for its final read.
ANSWER_PATIENCE = 2.0
MAX_BACKOFF = 30.0


def calls_per_second() -> float:
    rate = conf.getfloat(CONFIG_SECTION, "logs_calls_per_second", fallback=DEFAULT_CALLS_PER_SECOND)
    if not rate > 0:
        raise ValueError(f"[{CONFIG_SECTION}] logs_calls_per_second must be positive; got {rate}")
    return rate


def ingestion_allowance() -> float:
    allowance = conf.getfloat(CONFIG_SECTION, "logs_ingestion_allowance", fallback=DEFAULT_INGESTION_ALLOWANCE)
    if allowance < 0:
        raise ValueError(f"[{CONFIG_SECTION}] logs_ingestion_allowance must be 0 or more seconds; got {allowance}")
    return allowance


class LogsBudget:
    """At most ``rate`` CloudWatch Logs calls a second, spaced evenly, for every reader of the process.

    Urgent takers (a job's final read) go before the others, so a job's end waits for at most a few
    slots whatever the number of jobs still running.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.calls = 0
        # The largest delay (s) seen between an event's timestamp and its ingestionTime, by any reader
        # of the process: CloudWatch Logs' ingestion lag is the account's, not one job's.
        self.ingestion_lag = 0.0
        self._last = -math.inf
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._count = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    async def take(self, urgent: bool = False) -> None:
        now = time.monotonic()
        if not self._waiting and now - self._last >= 1.0 / self.rate:
            self._last = now
            self.calls += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, next(self._count), future))
        self._schedule()
        await future

    def _schedule(self) -> None:
        if self._timer is None and self._waiting:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._last + 1.0 / self.rate - time.monotonic())
            self._timer = loop.call_later(delay, self._grant)

    def _grant(self) -> None:
        self._timer = None
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():  # a cancelled taker gives its place up
                self._last = time.monotonic()
                self.calls += 1
                future.set_result(None)
                break
        self._schedule()


_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LogsBudget] = weakref.WeakKeyDictionary()


def process_budget() -> LogsBudget:
    """The budget of this event loop (the triggerer's), created on first use from the Airflow config."""
    loop = asyncio.get_running_loop()
    budget = _BUDGETS.get(loop)
    if budget is None:
        budget = _BUDGETS[loop] = LogsBudget(calls_per_second())
    return budget


@dataclass(eq=False)
class Follow:
    """One watcher's stream: new lines go to ``deliver``; ``finish`` hears how its final read went."""

    cursor: Cursor
    deliver: Callable[[list[str]], None]
    finish: Callable[[str | None], None]
    give_up_at: float | None = None  # wall time: past it, a failed final read is reported, not retried


class LogReader:
    def __init__(self, hook: BatchRunnerHook, budget: LogsBudget, allowance: float) -> None:
        self.hook = hook
        self.budget = budget
        self.allowance = allowance
        self.follows: dict[Any, Follow] = {}
        self.task: asyncio.Task[None] | None = None
        self.wakeup = asyncio.Event()
        self.backoff = 0.0
        self.backoff_until = 0.0
        self.calls = 0
        self.events_read = 0
        self.lines_delivered = 0
        self.failures = 0
        self.last_problem: str | None = None
        self.calling_since: float | None = None  # wall time the call being answered was sent

    def lookback(self) -> float:
        """How far back reads look and how long after a job's end its final read waits (s)."""
        return log_positions.lookback(self.allowance, self.budget.ingestion_lag)

    def follow(self, key: Any, stream: str, started_at: int | None, interval: float,
               deliver: Callable[[list[str]], None], finish: Callable[[str | None], None]) -> None:
        """Start reading ``stream`` for ``key`` (again from the start if the stream changed)."""
        known = self.follows.get(key)
        if known is not None and known.cursor.stream == stream:
            return
        now = time.time()
        cursor = Cursor(stream=stream, floor=log_positions.start_floor(started_at, now, self.allowance),
                        interval=interval, due=now)
        self.follows[key] = Follow(cursor, deliver, finish)
        self._poke()

    def final_read(self, key: Any, not_before: float, give_up_at: float) -> bool:
        """Read the stream once more from ``not_before`` (wall time) on, then call ``finish``.
        False when nothing is followed for ``key`` (the job never named a stream)."""
        follow = self.follows.get(key)
        if follow is None:
            return False
        now = time.time()
        if now < self.backoff_until:
            # CloudWatch Logs is failing now: waiting for late lines is pointless, one try at once.
            not_before = give_up_at = now
        follow.cursor.drain_after = not_before
        follow.give_up_at = give_up_at
        self._poke()
        return True

    def progressing(self, now: float) -> bool:
        """Logs is healthy and the reader is waiting for a slot of the budget (which grants them at its
        rate, final reads first) or for an answer sent less than ``ANSWER_PATIENCE`` ago: a final read
        is worth waiting for a little longer."""
        if now < self.backoff_until:
            return False
        return self.calling_since is None or now - self.calling_since < ANSWER_PATIENCE

    def forget(self, key: Any) -> None:
        self.follows.pop(key, None)

    def _poke(self) -> None:
        self.wakeup.set()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.follows:
            cursors = [f.cursor for f in self.follows.values()]
            now = time.time()
            finals = [c for c in cursors if log_positions.final_read_ready(c, now)]
            due = log_positions.next_due(cursors)
            wake_at = now + 60 if due is None else due
            if not finals:
                wake_at = max(wake_at, self.backoff_until)
            if wake_at > now:
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), wake_at - now)
                except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                    pass
                continue
            await self.budget.take(urgent=bool(finals))
            now = time.time()
            in_backoff = now < self.backoff_until
            candidates = [c for c in (f.cursor for f in self.follows.values())
                          if not in_backoff or log_positions.final_read_ready(c, now)]
            picked = log_positions.choose(candidates, now, tolerance_ms=int(self.lookback() * 1000))
            if picked is not None:
                try:
                    await self._read(*picked)
                except Exception as exc:  # never let one bad answer stop every job's lines
                    self._failed(picked[0], exc)

    async def _read(self, batch: list[Cursor], start: int) -> None:
        started = time.time()
        names = sorted({c.stream for c in batch})
        events: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                self.calls += 1
                self.calling_since = time.time()
                try:
                    page, token = await asyncio.to_thread(self.hook.filter_log_events_page, names, start, token)
                finally:
                    self.calling_since = None
                events.extend(page)
                if not token:
                    break
                await self.budget.take(urgent=any(c.drain_after is not None for c in batch))
        except Exception as exc:
            self._failed(batch, exc)
            return
        self.backoff = 0.0
        self.events_read += len(events)
        self.budget.ingestion_lag = max(self.budget.ingestion_lag, log_positions.ingestion_lag(events))
        lookback = self.lookback()
        by_stream: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_stream.setdefault(event.get("logStreamName", ""), []).append(event)
        now = time.time()
        for key, follow in list(self.follows.items()):
            cursor = follow.cursor
            if cursor not in batch:
                continue
            lines = log_positions.accept(cursor, by_stream.get(cursor.stream, []))
            if lines:
                self.lines_delivered += len(lines)
                follow.deliver(lines)
            log_positions.advance(cursor, started, lookback, bool(lines), now)
            if cursor.drain_after is not None and started >= cursor.drain_after:
                self.follows.pop(key, None)
                follow.finish(None)

    def _failed(self, batch: list[Cursor], exc: Exception) -> None:
        self.failures += 1
        self.last_problem = f"{type(exc).__name__}: {exc}"
        self.backoff = min(MAX_BACKOFF, max(1.0, self.backoff * 2))
        now = time.time()
        self.backoff_until = now + self.backoff * random.uniform(0.5, 1.5)
        if not is_throttling(exc):
            self.hook.log.warning("Reading container logs failed (%s); retrying in about %.0f s",
                                  self.last_problem, self.backoff)
        for key, follow in list(self.follows.items()):
            cursor = follow.cursor
            if cursor not in batch or cursor.drain_after is None:
                continue
            if follow.give_up_at is not None and now + FINAL_READ_RETRY > follow.give_up_at:
                self.follows.pop(key, None)
                follow.finish(self.last_problem)
            else:
                cursor.drain_after = now + FINAL_READ_RETRY
