"""One poller per (credentials, region, endpoint) in a triggerer process, shared by every trigger.

Each interval it asks DescribeJobs for up to 100 jobs per call, instead of one call per job per
interval. Throttling and transient errors back off with jitter and never fail a task; an error that
persists past a bound, or a job that vanished, ends that job's wait with an error. The jobs' log
lines are read by the poller's ``LogReader``, a task of its own within the process's budget of
CloudWatch Logs calls: no log read ever delays a status.

With Batch's events (``triggers/events.py``) the poller describes the jobs an event names at once, sweeps
every job only every ``events_sweep_interval``, and in between hands each trigger the job's last known
description every interval, so that deadlines and RUNNABLE limits are judged on time without a call.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner.backoff import POLL_CEILING, Backoff
from airflow_batch_runner.config import events_queue_url, events_sweep_interval, ingestion_allowance
from airflow_batch_runner.hooks.batch_runner import DESCRIBE_BATCH, BatchRunnerHook, is_throttling
from airflow_batch_runner.outcome import job_state
from airflow_batch_runner.triggers.events import EventsSource, events_source
from airflow_batch_runner.triggers.log_reader import LogReader, process_budget

ERROR_BOUND_SECONDS = 300.0  # a non-throttling error that lasts this long fails the waits
VANISHED_POLLS = 3  # a job missing from this many DescribeJobs answers in a row is gone
GATHER = 0.25  # s an event waits for others before the jobs they name are described


@dataclass
class Update:
    """A status (``description``), new log lines, the end of the log (``log_end``), or an error."""

    description: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    log_end: bool = False
    log_problem: str | None = None  # with log_end: why the last lines could not be read
    child: int | None = None  # lines (or log_end) of this array child's stream; None: the job's own
    stream: str | None = None  # the log stream the lines were read from (each attempt of a job has its own)


@dataclass(eq=False)
class Watch:
    """One trigger's interest in one job: updates arrive on ``queue``."""

    job_id: str
    interval: float
    log_stream: str | None = None
    missing: int = 0
    log_read: bool = False  # the final read of the log is over: nothing more to follow
    last: dict[str, Any] | None = None  # the job's last DescribeJobs answer
    announced: bool = False  # an event named the job since it was last described
    queue: asyncio.Queue[Update] = field(default_factory=asyncio.Queue)

    def deliver(self, lines: list[str], stream: str | None = None) -> None:
        self.queue.put_nowait(Update(lines=lines, stream=stream))

    def log_finished(self, problem: str | None) -> None:
        self.log_read = True
        self.queue.put_nowait(Update(log_end=True, log_problem=problem))


class SharedPoller:
    def __init__(self, hook: BatchRunnerHook, events: EventsSource | None = None, sweep: float = 60.0) -> None:
        self.hook = hook
        self.watches: set[Watch] = set()
        self._by_job: dict[str, set[Watch]] = {}  # the watches of each job: an event finds its own in O(1)
        self.task: asyncio.Task[None] | None = None
        self.describe_calls = 0
        self.logs = LogReader(hook, process_budget(), ingestion_allowance())
        self.events = events
        self.sweep = sweep
        self._woken: dict[str, list[str]] = {}  # job id -> receipt handles of the events naming it
        self._wakeup = asyncio.Event()

    def watch(self, watch: Watch) -> None:
        self.add(watch)
        self._woken.setdefault(watch.job_id, [])  # a new watch is described at once, not at the next round
        self._wakeup.set()
        if self.events is not None:
            self.events.subscribe(self)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def add(self, watch: Watch) -> None:
        """Count ``watch`` among the watched, without a turn of its own (``watch`` asks for one)."""
        self.watches.add(watch)
        self._by_job.setdefault(watch.job_id, set()).add(watch)

    def unwatch(self, watch: Watch) -> None:
        self.watches.discard(watch)
        same_job = self._by_job.get(watch.job_id)
        if same_job is not None:
            same_job.discard(watch)
            if not same_job:
                del self._by_job[watch.job_id]
        self.logs.forget(watch)
        if self.events is not None and not self.watches_job(watch.job_id):
            self.events.ended(watch.job_id)

    def watching(self) -> bool:
        return bool(self.watches)

    def watches_job(self, job_id: str) -> bool:
        return job_id in self._by_job

    def wake(self, job_id: str, receipt_handle: str) -> None:
        """An event named the job: it is described at once (with the other jobs woken meanwhile)."""
        for watch in self._by_job.get(job_id, ()):
            watch.announced = True
        self._woken.setdefault(job_id, []).append(receipt_handle)
        self._wakeup.set()

    def read_last_lines(self, watch: Watch, not_before: float, give_up_at: float) -> bool:
        """Ask for the job's final log read from ``not_before`` on; its lines, then an Update with
        ``log_end``, arrive on the watch's queue. False when the job never named a log stream."""
        return self.logs.final_read(watch, not_before, give_up_at)

    def _interval(self) -> float:
        return min((w.interval for w in self.watches), default=0.0)

    def _trusted(self) -> bool:
        return self.events is not None and self.events.trusted()

    def _due(self, started: float, woken: dict[str, list[str]], last: dict[str, float]) -> tuple[list[Watch], bool]:
        """The watches to describe this turn, and whether it is a sweep. Without events (or while they cannot
        be trusted) every job each interval; with them every job each sweep, in between the jobs events named,
        new ones, and those of job queues whose events do not come (polled each interval)."""
        interval = self._interval()
        if not self._trusted():
            if started - last["interval"] >= interval:
                last["interval"] = last["sweep"] = started
                return list(self.watches), False
            return self._watches_of(woken), False
        assert self.events is not None
        if started - last["sweep"] >= max(interval, self.sweep):
            last["interval"] = last["sweep"] = started
            return list(self.watches), True
        due = self._watches_of(woken)
        if started - last["interval"] >= interval:
            last["interval"] = started
            due += [w for w in self.watches if w.job_id not in woken and not self.events.covers(w.last)]
        return due, False

    def _watches_of(self, job_ids: Iterable[str]) -> list[Watch]:
        return [watch for job_id in job_ids for watch in self._by_job.get(job_id, ())]

    def _next_turn(self, last: dict[str, float]) -> float:
        """Seconds until the next scheduled turn (an event or a new watch may come sooner)."""
        now = time.monotonic()
        due = min(last["interval"], last["tick"]) + self._interval()
        if self._trusted():
            due = min(due, last["sweep"] + max(self._interval(), self.sweep))
        return max(due - now, 0.0)

    async def _run(self) -> None:
        backoff = Backoff(POLL_CEILING)
        failing_since: float | None = None
        last = {"interval": float("-inf"), "sweep": float("-inf"), "tick": float("-inf")}
        while self.watches:
            started = time.monotonic()
            wait = 0.0
            woken, self._woken = self._woken, {}
            self._wakeup.clear()
            try:
                due, sweep = self._due(started, woken, last)
                if len(due) == len(self.watches):
                    await self.poll_once(sweep)  # a round over every job
                else:
                    await self._poll_ids(due)
                if started - last["tick"] >= self._interval():
                    last["tick"] = started
                    self._tick(exclude=set(due))
                if self.events is not None:
                    self.events.done(h for handles in woken.values() for h in handles)
                backoff.succeeded()
                failing_since = None
            except Exception as exc:
                for job_id, handles in woken.items():  # described again at the next turn
                    self._woken.setdefault(job_id, []).extend(handles)
                wait = backoff.failed()
                if not is_throttling(exc):
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > ERROR_BOUND_SECONDS:
                        self._fail_all(f"AWS calls kept failing for {ERROR_BOUND_SECONDS:.0f} s: {exc}")
                        failing_since = None
                self.hook.log.warning("Batch runner poller: %s; retrying in about %.0f s", exc, backoff.seconds)
            delay = self._next_turn(last) + wait
            if self.events is None or wait:
                await asyncio.sleep(delay)
            else:
                try:  # an event (or a new watch) wakes the poller early
                    await asyncio.wait_for(self._wakeup.wait(), delay)
                except asyncio.TimeoutError:
                    continue
                if len(self._woken) < DESCRIBE_BATCH:
                    # Events come in waves (a queue's jobs end together): the ones that come meanwhile share
                    # the DescribeJobs call.
                    await asyncio.sleep(GATHER)

    def _fail_all(self, message: str) -> None:
        for watch in list(self.watches):
            watch.queue.put_nowait(Update(error=message))

    def _tick(self, exclude: set[Watch]) -> None:
        """Between sweeps: each trigger judges its job's last known state against the time."""
        for watch in self.watches - exclude:
            if watch.last is not None:
                watch.queue.put_nowait(Update(description=watch.last))

    async def poll_once(self, sweep: bool = False) -> None:
        """One round: per group of 100 jobs, one DescribeJobs, then the updates.

        Each group's watchers hear back as soon as their group is read, not after the whole round, so
        a job's end reaches its trigger at most one interval plus one group's calls after it happened.
        A ``sweep`` (while events flow) also checks that an event announced every change it finds.
        """
        await self._poll_ids(list(self.watches), sweep)

    async def _poll_ids(self, watches: list[Watch], sweep: bool = False) -> None:
        by_job: dict[str, list[Watch]] = {}
        for watch in watches:
            by_job.setdefault(watch.job_id, []).append(watch)
        ids = sorted(by_job)
        for start in range(0, len(ids), DESCRIBE_BATCH):
            group = ids[start : start + DESCRIBE_BATCH]
            await self._poll_group([w for job_id in group for w in by_job[job_id]], group, sweep)

    async def _poll_group(self, watches: list[Watch], ids: list[str], sweep: bool = False) -> None:
        self.describe_calls += 1
        found = await asyncio.to_thread(self.hook.describe_jobs, ids)
        for watch in watches:
            description = found.get(watch.job_id)
            if description is None:
                watch.missing += 1
                if watch.missing >= VANISHED_POLLS:
                    watch.queue.put_nowait(Update(error=f"AWS Batch job {watch.job_id} no longer exists"))
                continue
            watch.missing = 0
            status = description.get("status")
            changed = watch.last is not None and watch.last.get("status") != status and not watch.announced
            if changed and self.events is not None:
                if not self.events.covers(description):
                    self.events.silent(str(description.get("jobQueue")), watch.job_id, str(status))
                elif sweep:
                    self.events.missed(watch.job_id, str(status))
            watch.last, watch.announced = description, False
            state = job_state(description)
            if state.log_stream and not watch.log_read:
                watch.log_stream = state.log_stream
                self.logs.follow(watch, state.log_stream, state.started_at, watch.interval,
                                 functools.partial(watch.deliver, stream=state.log_stream), watch.log_finished)
            watch.queue.put_nowait(Update(description=description))


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)


def shared_poller(key: Hashable, make_hook: Callable[[], BatchRunnerHook]) -> SharedPoller:
    """The poller of this event loop for ``key``, created on first use."""
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    poller = pollers.get(key)
    if poller is None:
        hook = make_hook()
        try:
            url, sweep = events_queue_url(), events_sweep_interval()
        except ValueError as exc:  # a wrong setting must not fail the tasks: they are polled as without events
            hook.log.error("Batch events are off: %s", exc)
            url, sweep = None, 60.0
        events = None if url is None else events_source(url, lambda: hook)
        poller = pollers[key] = SharedPoller(hook, events, sweep)
    return poller
