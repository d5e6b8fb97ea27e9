"""AWS Batch's events, read from the SQS queue an EventBridge rule fills (``[batch_runner] events_queue_url``).

An event says only that a job changed: the poller then describes the jobs named by a batch of events in one
DescribeJobs call and hands the answers to their triggers, so a job's end reaches its task about as soon as
Batch announces it, and an event that repeats, comes late or out of order changes nothing (the status is
always DescribeJobs'). Polling stays the safety net: while events flow the poller still sweeps every
watched job every ``events_sweep_interval``, and it polls at each task's interval again, saying so once in
the triggerer's log, when the queue cannot be read or a sweep finds a change no event announced.

One queue serves every triggerer. A message is deleted only after the DescribeJobs it caused was handed to
the triggers; a message for a job this process does not watch is left for its owner (visible to the other
triggerers again after ``LEAVE_FOR_OTHERS`` seconds); one that no triggerer claims goes to the queue's
dead-letter queue after its ``maxReceiveCount`` receives (the setup command creates it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_batch_runner.backoff import POLL_CEILING, Backoff
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook

# s of SQS long polling per ReceiveMessage: a message is answered at once; the wait bounds how long a
# triggerer's shutdown waits for the call under way.
RECEIVE_WAIT = 5
VISIBILITY = 60  # s a received message stays hidden while the DescribeJobs it causes is made
# s before a message for a job watched elsewhere is visible to the other triggerers: short, since with several
# triggerers a message may reach others before its owner (each receive counts towards the DLQ's limit).
LEAVE_FOR_OTHERS = 1
DISTRUST = 600.0  # s of polling at each task's interval after a sweep found a change no event announced
# s an event may still be on its way after a sweep saw the change it announces: only past this is it lost
MISSED_GRACE = 2 * RECEIVE_WAIT + 5.0
log = logging.getLogger(__name__)


class Subscriber(Protocol):
    """A poller, as the events source sees it."""

    def watches_job(self, job_id: str) -> bool: ...

    def watching(self) -> bool: ...

    def wake(self, job_id: str, receipt_handle: str) -> None: ...


@dataclass(frozen=True)
class Named:
    """What a Batch event names: the job (an array child's parent), its job queue, the event's type."""

    job_id: str
    job_queue: str
    detail_type: str


def job_of(message: dict[str, Any]) -> Named | None:
    """The job a queue message's Batch event names; None for anything else."""
    try:
        event = json.loads(message.get("Body") or "")
        detail = event["detail"]
        job_id = str(detail["jobId"])
        return Named(job_id.split(":", 1)[0], str(detail.get("jobQueue", "")), str(event.get("detail-type", "")))
    except (ValueError, KeyError, TypeError):
        return None


class EventsSource:
    """One reader of the events queue per triggerer process (event loop), shared by its pollers."""

    def __init__(self, hook: BatchRunnerHook, queue_url: str, receive_wait: int = RECEIVE_WAIT) -> None:
        self.hook = hook
        self.queue_url = queue_url
        self.receive_wait = receive_wait
        self.subscribers: weakref.WeakSet[Any] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None
        self.down: str | None = "not read yet"  # why the events cannot be trusted now (None: they flow)
        self._said_down = False
        self.distrust_until = 0.0
        # The job queues whose events arrive: their jobs' changes are announced (the rule may cover only some).
        self.covered: set[str] = set()
        self._silent_told: set[str] = set()
        self._suspects: dict[str, tuple[str, float]] = {}  # job id -> (status a sweep saw unannounced, when)
        # Jobs whose wait ended here lately: their late events are ours to delete, not to leave to others.
        self._ended: dict[str, float] = {}
        self.received = 0
        self.deleted = 0
        self.left = 0

    def covers(self, description: dict[str, Any] | None) -> bool:
        """Events come for this job's queue (a job of a queue the rule leaves out is polled each interval)."""
        return description is not None and description.get("jobQueue") in self.covered

    def trusted(self, now: float | None = None) -> bool:
        """Events flow: polling may slow to the sweep."""
        now = now or time.monotonic()
        for job_id, (status, seen) in list(self._suspects.items()):
            if now - seen >= MISSED_GRACE:  # no event came for it: lost
                del self._suspects[job_id]
                self._distrust(job_id, status, now)
        return self.down is None and now >= self.distrust_until

    def subscribe(self, poller: Subscriber) -> None:
        self.subscribers.add(poller)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def ended(self, job_id: str) -> None:
        now = time.monotonic()
        self._ended[job_id] = now
        if len(self._ended) > 10_000:
            self._ended = {j: at for j, at in self._ended.items() if now - at < DISTRUST}

    def silent(self, job_queue: str, job_id: str, status: str) -> None:
        """A job of a queue no event has come for changed: that queue's jobs stay polled every interval."""
        if job_queue not in self._silent_told and self.down is None:
            self._silent_told.add(job_queue)
            log.warning("Batch events: job %s went %s but no event of its job queue %s has come to %s (is the queue "
                        "in the EventBridge rule?); its jobs are polled every task's poll interval", job_id, status,
                        job_queue, self.queue_url)

    def missed(self, job_id: str, status: str) -> None:
        """A sweep found ``job_id`` in ``status`` with no event announcing it (yet): unless its event comes within
        ``MISSED_GRACE``, events are not to be relied on."""
        self._suspects.setdefault(job_id, (status, time.monotonic()))

    def _distrust(self, job_id: str, status: str, now: float) -> None:
        if self.down is None and now >= self.distrust_until:
            log.warning("Batch events: a DescribeJobs sweep found job %s %s, a change no event from %s announced; "
                        "polling every task's poll interval for the next %.0f s", job_id, status, self.queue_url,
                        DISTRUST)
        self.distrust_until = now + DISTRUST

    def done(self, receipt_handles: Iterable[str]) -> None:
        """What these messages caused is done: they go (in the background; a failure only lets them repeat)."""
        handles = list(receipt_handles)
        if handles:
            asyncio.get_running_loop().create_task(self._call(self.hook.delete_events, self.queue_url, handles))
            self.deleted += len(handles)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            await asyncio.to_thread(fn, *args)
        except Exception as exc:  # the message comes back after its visibility timeout: handled once more
            log.debug("Batch events: %s failed: %s", getattr(fn, "__name__", fn), exc)

    def _went_down(self, reason: str) -> None:
        if not self._said_down:
            log.warning("Batch events: reading %s failed (%s); polling every task's poll interval until it can "
                        "be read again", self.queue_url, reason)
            self._said_down = True
        self.down = reason

    def _came_up(self) -> None:
        if self._said_down:
            log.warning("Batch events: %s can be read again; DescribeJobs sweeps only as a safety net",
                        self.queue_url)
            self._said_down = False
        self.down = None

    async def _run(self) -> None:
        backoff = Backoff(POLL_CEILING)
        while any(p.watching() for p in list(self.subscribers)):
            try:
                messages = await asyncio.to_thread(
                    self.hook.receive_events, self.queue_url, self.receive_wait, VISIBILITY)
            except Exception as exc:
                self._went_down(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(backoff.failed())
                continue
            backoff.succeeded()
            self._came_up()
            self.received += len(messages)
            others: list[str] = []
            for message in messages:
                handle = str(message.get("ReceiptHandle", ""))
                named = job_of(message)
                if named is None:
                    self.done([handle])  # not a Batch event of a job: nobody's
                    continue
                self.covered.add(named.job_queue)
                self._suspects.pop(named.job_id, None)  # its event came: late, not lost
                owners = [p for p in list(self.subscribers) if p.watches_job(named.job_id)]
                if not owners and time.monotonic() - self._ended.get(named.job_id, float("-inf")) < DISTRUST:
                    self.done([handle])  # a late event of a job whose wait ended here
                    continue
                for owner in owners:
                    owner.wake(named.job_id, handle)
                if not owners:
                    others.append(handle)
            if others:
                self.left += len(others)
                await self._call(self.hook.release_events, self.queue_url, others, LEAVE_FOR_OTHERS)
                # The other triggerers' receives get the first look at what was left for them: asking again at
                # once would most often take the same messages back (and bring them nearer the DLQ).
                await asyncio.sleep(LEAVE_FOR_OTHERS + 0.25)


_SOURCES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, EventsSource]] = (
    weakref.WeakKeyDictionary()
)


def events_source(queue_url: str, make_hook: Callable[[], BatchRunnerHook]) -> EventsSource:
    """The events source of this event loop for ``queue_url``, created on first use (with the credentials
    of the first poller that subscribes)."""
    sources = _SOURCES.setdefault(asyncio.get_running_loop(), {})
    source = sources.get(queue_url)
    if source is None:
        source = sources[queue_url] = EventsSource(make_hook(), queue_url)
    return source
