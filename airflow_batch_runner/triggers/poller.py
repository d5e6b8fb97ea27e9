"""One poller per (credentials, region, endpoint) in a triggerer process, shared by every trigger.

Each interval it asks DescribeJobs for up to 100 jobs per call and reads the new log lines of all
the jobs' main containers with FilterLogEvents (up to 100 streams per call), instead of one call
per job per interval. Throttling and transient errors back off with jitter and never fail a task;
an error that persists past a bound, or a job that vanished, ends that job's wait with an error.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner.hooks.batch_runner import DESCRIBE_BATCH, BatchRunnerHook, is_throttling
from airflow_batch_runner.outcome import job_state

MAX_BACKOFF_SECONDS = 60.0
ERROR_BOUND_SECONDS = 300.0  # a non-throttling error that lasts this long fails the waits
VANISHED_POLLS = 3  # a job missing from this many DescribeJobs answers in a row is gone


@dataclass
class Update:
    description: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(eq=False)
class Watch:
    """One trigger's interest in one job: updates arrive on ``queue``."""

    job_id: str
    interval: float
    log_stream: str | None = None
    log_after: int = 0  # ms timestamp of the last line delivered
    log_seen: set[str] = field(default_factory=set)  # event ids at log_after
    missing: int = 0
    queue: asyncio.Queue[Update] = field(default_factory=asyncio.Queue)


class SharedPoller:
    def __init__(self, hook: BatchRunnerHook) -> None:
        self.hook = hook
        self.watches: set[Watch] = set()
        self.task: asyncio.Task[None] | None = None
        self.describe_calls = 0
        self.log_calls = 0

    def watch(self, watch: Watch) -> None:
        self.watches.add(watch)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def unwatch(self, watch: Watch) -> None:
        self.watches.discard(watch)

    async def _run(self) -> None:
        backoff = 0.0
        failing_since: float | None = None
        while self.watches:
            started = time.monotonic()
            try:
                await self.poll_once()
                backoff, failing_since = 0.0, None
            except Exception as exc:
                backoff = min(MAX_BACKOFF_SECONDS, max(1.0, backoff * 2))
                if not is_throttling(exc):
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > ERROR_BOUND_SECONDS:
                        self._fail_all(f"AWS calls kept failing for {ERROR_BOUND_SECONDS:.0f} s: {exc}")
                        failing_since = None
                self.hook.log.warning("Batch runner poller: %s; retrying in about %.0f s", exc, backoff)
            interval = min((w.interval for w in self.watches), default=0.0)
            delay = max(interval - (time.monotonic() - started), 0.0) + backoff * random.uniform(0.5, 1.5)
            await asyncio.sleep(delay)

    def _fail_all(self, message: str) -> None:
        for watch in list(self.watches):
            watch.queue.put_nowait(Update(error=message))

    async def poll_once(self) -> None:
        """One round: per group of 100 jobs, one DescribeJobs, one FilterLogEvents, then the updates.

        Each group's watchers hear back as soon as their group is read, not after the whole round, so
        a job's end reaches its trigger at most one interval plus one group's calls after it happened.
        """
        by_job: dict[str, list[Watch]] = {}
        for watch in self.watches:
            by_job.setdefault(watch.job_id, []).append(watch)
        ids = sorted(by_job)
        for start in range(0, len(ids), DESCRIBE_BATCH):
            group = ids[start : start + DESCRIBE_BATCH]
            await self._poll_group([w for job_id in group for w in by_job[job_id]], group)

    async def _poll_group(self, watches: list[Watch], ids: list[str]) -> None:
        self.describe_calls += 1
        found = await asyncio.to_thread(self.hook.describe_jobs, ids)
        for watch in watches:
            description = found.get(watch.job_id)
            if description is not None:
                watch.missing = 0
                watch.log_stream = job_state(description).log_stream or watch.log_stream
        lines = await self._read_logs([w for w in watches if w.log_stream])
        for watch in watches:
            description = found.get(watch.job_id)
            if description is None:
                watch.missing += 1
                if watch.missing >= VANISHED_POLLS:
                    watch.queue.put_nowait(Update(error=f"AWS Batch job {watch.job_id} no longer exists"))
                continue
            watch.queue.put_nowait(Update(description=description, lines=lines.get(watch, [])))

    async def _read_logs(self, watches: list[Watch]) -> dict[Watch, list[str]]:
        if not watches:
            return {}
        start = min(w.log_after for w in watches)
        self.log_calls += 1  # a group has at most 100 jobs, so at most 100 streams
        events = await asyncio.to_thread(self.hook.filter_log_events, [w.log_stream or "" for w in watches], start)
        events.sort(key=lambda e: e["timestamp"])  # stable: each stream keeps its own order
        by_stream: dict[str, list[Watch]] = {}
        for watch in watches:
            by_stream.setdefault(watch.log_stream or "", []).append(watch)
        out: dict[Watch, list[str]] = {w: [] for w in watches}
        for event in events:
            for watch in by_stream.get(event["logStreamName"], []):
                stamp, event_id = event["timestamp"], event.get("eventId", "")
                if stamp < watch.log_after or (stamp == watch.log_after and event_id in watch.log_seen):
                    continue
                if stamp > watch.log_after:
                    watch.log_after, watch.log_seen = stamp, set()
                watch.log_seen.add(event_id)
                out[watch].append(event["message"])
        return out


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)


def shared_poller(key: Hashable, make_hook: Callable[[], BatchRunnerHook]) -> SharedPoller:
    """The poller of this event loop for ``key``, created on first use."""
    pollers = _POLLERS.setdefault(asyncio.get_running_loop(), {})
    poller = pollers.get(key)
    if poller is None:
        poller = pollers[key] = SharedPoller(make_hook())
    return poller
