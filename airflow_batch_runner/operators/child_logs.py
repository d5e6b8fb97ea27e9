"""The worker path's lines of an array's running children: a sample of them, each prefixed with its index.

The operator's status loop hands each DescribeJobs answer of the parent to ``observe``, which never waits
on AWS: the samplings (``child_sampling``: ListJobs of the RUNNING children, DescribeJobs of a few) run on
a thread of their own, and each followed child's stream is read by a ``LogFollower`` (GetLogEvents with
forward tokens, each line once and in order), its reads spaced so that the array task makes about one call
a second (``child_sampling.worker_read_interval``). A child that ended is read once more, then dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from airflow_batch_runner import array_run
from airflow_batch_runner.child_sampling import ChildSampler, Ended, Followed, running_children, worker_read_interval
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook
from airflow_batch_runner.operators.log_follower import LogFollower
from airflow_batch_runner.task_log import TaskLogger, child_prefix, show_lines


class ChildLogs:
    def __init__(
        self, hook: BatchRunnerHook, job_id: str, size: int, interval: float, limit: int, allowance: float,
        log: TaskLogger,
    ) -> None:
        self.hook = hook
        self.job_id = job_id
        self.log = log
        self.allowance = allowance
        self.sampler = ChildSampler(limit, interval)
        self.read_interval = worker_read_interval(interval, limit, size)
        self.followers: dict[int, LogFollower] = {}
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def observe(self, description: Mapping[str, Any]) -> None:
        """The parent's latest DescribeJobs answer: wakes the sampling thread, never waits for it."""
        if self.sampler.limit <= 0:
            return
        with self._cond:
            self._running = running_children(description)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batch-runner-children", daemon=True)
                self._thread.start()
            self._cond.notify()

    def finish(self, stopped_at_ms: int | None, timed_out: bool = False) -> list[tuple[int, str]]:
        """The array is over: no more samplings, and every followed child's stream read once more (all at
        once, bounded as one job's final read). The children whose last lines could not be read, and why."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            followers = sorted(self.followers.items())
        for _, follower in followers:
            follower.end(stopped_at_ms, timed_out)
        problems = [(index, follower.wait_for_end()) for index, follower in followers]
        return [(index, problem) for index, problem in problems if problem is not None]

    def _next(self) -> tuple[int, list[Ended]] | None:
        """Wait until a sampling is due (the running count then) or the followed children all ended (they);
        None once the array is over."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                step = self.sampler.next_step(self._running, time.time())
                if step is not None:
                    return self._running, list(step.ended)
                self._cond.wait()

    def _run(self) -> None:
        while (step := self._next()) is not None:
            running, ended = step
            if ended:
                self._end(ended)
                continue
            try:
                asked, descriptions = array_run.sample_children(self.hook, self.job_id, self.sampler)
            except Exception as exc:  # lines are best effort: the next sampling tries again
                if (failure := array_run.sampling_failure(exc, self.job_id)) is not None:
                    self.log.warning(failure)
                continue
            with self._cond:
                if self._closed:
                    return
                sampled = self.sampler.take(asked, descriptions, running)
                for child in sampled.new:
                    self._follow(child)
                if sampled.news:
                    self.log.info(sampled.news)
            self._end(sampled.ended)

    def _follow(self, child: Followed) -> None:
        def emit(lines: list[str], stream: str, index: int = child.index) -> None:
            show_lines(self.log, child_prefix(index), lines)

        follower = LogFollower(self.hook, self.read_interval, self.allowance, emit)
        self.followers[child.index] = follower
        follower.follow(child.stream)

    def _end(self, ended: list[Ended]) -> None:
        """Read each ended child's stream once more (on this thread, never the status loop's), then drop it."""
        with self._cond:
            followers = [(e, self.followers.get(e.child.index)) for e in ended]
        for end, follower in followers:
            if follower is None:
                continue
            follower.end(end.stopped_at)
        for end, follower in followers:
            if follower is None:
                continue
            follower.wait_for_end()
            with self._cond:
                if self.followers.get(end.child.index) is follower and not self._closed:
                    del self.followers[end.child.index]
