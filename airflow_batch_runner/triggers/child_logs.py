"""The triggerer's lines of an array's running children: a sample of them, each prefixed with its index.

The trigger hands each DescribeJobs answer of the parent to ``observe``, which never waits on AWS: a
sampling (``child_sampling``: ListJobs of the RUNNING children, DescribeJobs of a few) runs as a task of its
own, and the followed children's streams are read by the poller's ``LogReader``, beside every other job's,
within the process's budget of CloudWatch Logs calls (one FilterLogEvents call reads up to 100 streams).
Their lines arrive on the trigger's queue as ``Update``s naming the child.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from airflow_batch_runner import array_run
from airflow_batch_runner.child_sampling import ChildSampler, Ended, Followed, running_children
from airflow_batch_runner.task_log import TaskLogger
from airflow_batch_runner.triggers.poller import SharedPoller, Update, Watch


class ChildLogs:
    def __init__(
        self, poller: SharedPoller, watch: Watch, interval: float, limit: int, log: TaskLogger
    ) -> None:
        self.poller = poller
        self.watch = watch
        self.log = log
        self.sampler = ChildSampler(limit, interval)
        self.reading: set[int] = set()  # children whose stream the reader has (followed, or a final read to come)
        self.task: asyncio.Task[tuple[list[str], dict[str, dict[str, Any]]]] | None = None
        self._running = 0
        self._closed = False

    def key(self, index: int) -> tuple[Watch, int]:
        """A child's key in the poller's log reader (the parent's own is its watch)."""
        return (self.watch, index)

    def observe(self, description: Mapping[str, Any]) -> None:
        """The parent's latest DescribeJobs answer: may start a sampling, never waits for one."""
        if self._closed or self.task is not None:
            return
        self._running = running_children(description)
        step = self.sampler.next_step(self._running, time.time())
        if step is None:
            return
        self._end(list(step.ended))
        if step.sample:
            self.task = asyncio.get_running_loop().create_task(asyncio.to_thread(
                array_run.sample_children, self.poller.hook, self.watch.job_id, self.sampler))
            self.task.add_done_callback(self._sampled)

    def read_done(self, index: int) -> None:
        """A child's final read is over (its ``Update`` with ``log_end`` came)."""
        self.reading.discard(index)

    def final_reads(self, not_before: float, give_up_at: float) -> set[int]:
        """The array is over: no more samplings, and every followed child's stream read once more from
        ``not_before`` on. The children whose final read is to come (each ends with an ``Update`` with
        ``log_end``), those of children that ended earlier included."""
        self._closed = True
        if self.task is not None:
            self.task.cancel()
        for index in self.sampler.followed:
            if not self.poller.logs.final_read(self.key(index), not_before, give_up_at):
                self.reading.discard(index)
        self.sampler.followed.clear()
        return set(self.reading)

    def forget(self) -> None:
        """The trigger is done: the reader drops every child's stream."""
        self._closed = True
        if self.task is not None:
            self.task.cancel()
        for index in self.reading:
            self.poller.logs.forget(self.key(index))
        self.reading.clear()

    def _sampled(self, task: asyncio.Task[tuple[list[str], dict[str, dict[str, Any]]]]) -> None:
        self.task = None
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is not None:  # lines are best effort: the next sampling tries again
            if (failure := array_run.sampling_failure(exc, self.watch.job_id)) is not None:
                self.log.warning(failure)
            return
        sampled = self.sampler.take(*task.result(), self._running)
        for child in sampled.new:
            self._follow(child)
        if sampled.news:
            self.log.info(sampled.news)
        self._end(sampled.ended)

    def _follow(self, child: Followed) -> None:
        queue = self.watch.queue

        def deliver(lines: list[str]) -> None:
            queue.put_nowait(Update(lines=lines, child=child.index))

        def finish(problem: str | None) -> None:
            queue.put_nowait(Update(log_end=True, log_problem=problem, child=child.index))

        self.reading.add(child.index)
        self.poller.logs.follow(self.key(child.index), child.stream, child.started_at, self.watch.interval,
                                deliver, finish)

    def _end(self, ended: list[Ended]) -> None:
        """Each ended child's stream is read once more, once CloudWatch Logs has its last lines (within the
        budget, beside the other jobs); its ``log_end`` then drops it."""
        now = time.time()
        lookback = self.poller.logs.lookback()
        for end in ended:
            not_before = (end.stopped_at / 1000 if end.stopped_at else now) + lookback
            if not self.poller.logs.final_read(self.key(end.child.index), not_before, not_before + lookback):
                self.reading.discard(end.child.index)
