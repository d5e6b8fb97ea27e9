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
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_batch_runner import log_positions
from airflow_batch_runner.backoff import FINAL_READ_RETRY, LOGS_CEILING, AnswerTimes, Backoff
from airflow_batch_runner.config import calls_per_second
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, is_throttling
from airflow_batch_runner.log_positions import Cursor
from airflow_batch_runner.triggers.timeouts import within

# Final reads' calls under way at once: a job whose end is found while one is being answered need not
# wait for it (the budget still spaces the calls).
FINAL_LANE_NAMES = ("final", "final-2")


class LogsBudget:
    """At most ``rate`` CloudWatch Logs calls a second for every reader of the process, on average and
    over any window (at most two calls more than ``rate`` times its length).

    A token bucket that regular takers leave one call in: a job's final read (``urgent``) spends that
    reserve at once instead of waiting for the next slot, and the regular reads after it wait the longer
    for it. Urgent takers also go before regular ones already waiting, so a job's end waits for at most
    a slot or two whatever the number of jobs still running.
    """

    RESERVE = 1.0  # calls kept for final reads

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.calls = 0
        # The largest delay (s) seen between an event's timestamp and its ingestionTime, by any reader
        # of the process: CloudWatch Logs' ingestion lag is the account's, not one job's.
        self.ingestion_lag = 0.0
        self._tokens = 1.0 + self.RESERVE
        self._refilled = time.monotonic()
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._count = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    def _need(self, urgent: bool) -> float:
        return 1.0 if urgent else 1.0 + self.RESERVE

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(1.0 + self.RESERVE, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    async def take(self, urgent: bool = False) -> None:
        if self.free(urgent):
            self._spend()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, next(self._count), future))
        if self._timer is not None:  # the head may have changed: an urgent taker can go now
            self._timer.cancel()
            self._timer = None
        self._grant()
        await future

    def free(self, urgent: bool = False) -> bool:
        """Whether a call could be made at once, with nobody waiting."""
        self._refill()
        return not self._waiting and self._tokens >= self._need(urgent)

    def _spend(self) -> None:
        self._tokens -= 1.0
        self.calls += 1

    def _schedule(self) -> None:
        while self._waiting and self._waiting[0][2].done():  # a cancelled taker gives its place up
            heapq.heappop(self._waiting)
        if self._timer is None and self._waiting:
            missing = self._need(self._waiting[0][0] == 0) - self._tokens
            self._timer = asyncio.get_running_loop().call_later(max(0.0, missing / self.rate), self._grant)

    def _grant(self) -> None:
        self._timer = None
        self._refill()
        while self._waiting:
            priority, _, future = self._waiting[0]
            if future.done():
                heapq.heappop(self._waiting)
                continue
            if self._tokens < self._need(priority == 0) - 1e-9:
                break
            heapq.heappop(self._waiting)
            self._spend()
            future.set_result(None)
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
        self.backoff = Backoff(LOGS_CEILING)
        self.backoff_until = 0.0
        self.calls = 0
        self.events_read = 0
        self.lines_delivered = 0
        self.failures = 0
        self.last_problem: str | None = None
        self._sent: dict[int, float] = {}  # wall time each call being answered was sent
        self._answers = AnswerTimes()
        self._call_ids = itertools.count()
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._picking: set[str] = set()  # lanes waiting for their slot of the budget, nothing chosen yet
        self._in_flight: set[Cursor] = set()  # the cursors of the reads under way

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
        if log_positions.already_read_after(follow.cursor, not_before):
            # A regular read began once the job's last lines were readable: it read them all (a job's
            # end found late by its poll does not wait for one more call).
            self._finish(key, follow, None)
            return True
        if now < self.backoff_until or self.backoff.seconds > 0:
            # CloudWatch Logs is failing now (the last call failed): waiting for late lines is pointless,
            # one try at once if the budget has a call for it now (queueing for the budget behind other
            # jobs' doomed tries would only delay this job's end).
            if not self.budget.free(urgent=True):
                self._finish(key, follow, self.last_problem or "CloudWatch Logs is failing")
                return True
            not_before = give_up_at = now
        follow.cursor.drain_after = not_before
        follow.give_up_at = give_up_at
        self._poke()
        return True

    def progressing(self, now: float) -> bool:
        """Logs is healthy and the reader is waiting for a slot of the budget (which grants them at its
        rate, final reads first) or for an answer sent less than its patience ago: a final read is worth
        waiting for a little longer."""
        if now < self.backoff_until:
            return False
        return not self._sent or now - min(self._sent.values()) < self.answer_patience()

    def answer_patience(self) -> float:
        """How long a call may go unanswered before Logs counts as slow (``backoff.AnswerTimes``)."""
        return self._answers.patience()

    def forget(self, key: Any) -> None:
        self.follows.pop(key, None)

    def _finish(self, key: Any, follow: Follow, problem: str | None) -> None:
        """The stream's reading is over: ``problem`` says why its last lines could not be read, if so."""
        self.follows.pop(key, None)
        follow.finish(problem)

    def _poke(self) -> None:
        self.wakeup.set()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        """Regular reads one call at a time, and final reads beside them (up to ``len(FINAL_LANE_NAMES)`` calls
        under way), so that a job's end never waits for another batch's call to be answered."""
        while self.follows or self._lanes:
            now = time.time()
            free = [f.cursor for f in self.follows.values() if f.cursor not in self._in_flight]
            finals = any(log_positions.final_read_ready(c, now) for c in free)
            in_backoff = now < self.backoff_until
            # A final lane is opened when none is waiting for its slot of the budget (that one will
            # take every final read ready by then).
            final_lane = self._free_final_lane()
            if finals and final_lane is not None:
                self._start_lane(final_lane)
                continue
            # The regular lane reads what is due, final reads first when the final lanes are busy.
            regular_due = now if finals else min((c.due for c in free), default=None)
            if "regular" not in self._lanes and not in_backoff and regular_due is not None and regular_due <= now:
                self._start_lane("regular")
                continue
            # Else wait for a lane to end or pick (either wakes the loop), a poke, a final read's moment
            # (even while a regular read is under way), or the next stream due.
            wakes = [c.drain_after for c in free if c.drain_after is not None] if final_lane is not None else []
            if "regular" not in self._lanes and regular_due is not None:
                wakes.append(max(regular_due, self.backoff_until))
            wake_at = min(wakes, default=now + 60)
            self.wakeup.clear()
            try:
                await within(self.wakeup.wait(), wake_at - now)
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                pass

    def _free_final_lane(self) -> str | None:
        """The name of a final lane that may start now, if any."""
        if any(name in self._picking for name in FINAL_LANE_NAMES):
            return None
        return next((name for name in FINAL_LANE_NAMES if name not in self._lanes), None)

    def _start_lane(self, lane: str) -> None:
        self._picking.add(lane)
        self._lanes[lane] = asyncio.get_running_loop().create_task(self._lane(lane))

    async def _lane(self, lane: str) -> None:
        """One call's worth: a slot of the budget, then the streams it reads chosen among those not being
        read already, then the read."""
        final = lane != "regular"
        try:
            await self.budget.take(urgent=final)
            now = time.time()
            in_backoff = now < self.backoff_until
            candidates = [c for c in (f.cursor for f in self.follows.values()) if c not in self._in_flight
                          and (not in_backoff or log_positions.final_read_ready(c, now))]
            if final:
                candidates = [c for c in candidates if log_positions.final_read_ready(c, now)]
            picked = log_positions.choose(candidates, now, tolerance_ms=int(self.lookback() * 1000))
            self._picking.discard(lane)
            if picked is None:
                return
            self._in_flight.update(picked[0])
            if final:
                self.wakeup.set()  # final reads that become ready during this call may go beside it
            try:
                await self._read(*picked)
            except Exception as exc:  # never let one bad answer stop every job's lines
                self._failed(picked[0], exc)
            finally:
                self._in_flight.difference_update(picked[0])
        finally:
            self._picking.discard(lane)
            self._lanes.pop(lane, None)
            self.wakeup.set()

    async def _read(self, batch: list[Cursor], start: int) -> None:
        started = time.time()
        names = sorted({c.stream for c in batch})
        events: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                self.calls += 1
                call = next(self._call_ids)
                sent = self._sent[call] = time.time()
                try:
                    page, token = await asyncio.to_thread(self.hook.filter_log_events_page, names, start, token)
                finally:
                    del self._sent[call]
                self._answers.answered(time.time() - sent)
                events.extend(page)
                if not token:
                    break
                await self.budget.take(urgent=any(c.drain_after is not None for c in batch))
        except Exception as exc:
            self._failed(batch, exc)
            return
        self.backoff.succeeded()
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
                self._finish(key, follow, None)

    def _failed(self, batch: list[Cursor], exc: Exception) -> None:
        self.failures += 1
        self.last_problem = f"{type(exc).__name__}: {exc}"
        wait = self.backoff.failed()
        now = time.time()
        self.backoff_until = now + wait
        if not is_throttling(exc):
            self.hook.log.warning("Reading container logs failed (%s); retrying in about %.0f s",
                                  self.last_problem, self.backoff.seconds)
        for key, follow in list(self.follows.items()):
            cursor = follow.cursor
            if cursor not in batch or cursor.drain_after is None:
                continue
            if follow.give_up_at is not None and now + FINAL_READ_RETRY > follow.give_up_at:
                self._finish(key, follow, self.last_problem)
            else:
                cursor.drain_after = now + FINAL_READ_RETRY
