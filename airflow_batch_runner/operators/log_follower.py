"""The worker path's log reading: a thread that follows the main container's stream with GetLogEvents.

The operator's loop only asks DescribeJobs and decides; this thread reads the stream with forward
tokens (each line once, in order), backs off when CloudWatch Logs throttles or fails, and at the job's
end makes one final read once the ingestion allowance, or the largest ingestion lag seen on the stream
plus a margin when that is more, has passed. A slow or failing Logs never holds
the job's end longer than that final read's short patience: 2 s, or three times the slowest recent
answer (up to 15 s) when Logs answered slowly all along, as the triggerer's reader does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from airflow_batch_runner.backoff import FINAL_READ_PATIENCE, FINAL_READ_RETRY, LOGS_CEILING, AnswerTimes, Backoff
from airflow_batch_runner.hooks.batch_runner import BatchRunnerHook, is_throttling
from airflow_batch_runner.log_positions import lookback


class LogFollower:
    def __init__(
        self, hook: BatchRunnerHook, interval: float, allowance: float, emit: Callable[[list[str], str], None]
    ) -> None:
        self.hook = hook
        self.interval = interval
        self.allowance = allowance
        self.emit = emit
        self.stream: str | None = None
        self.token: str | None = None
        self.problem: str | None = None
        self.lag = 0.0  # s, the largest delay seen between a line's timestamp and its ingestionTime
        self._wake = threading.Condition()
        self._final_after: float | None = None
        self._give_up_at = 0.0
        self._ended_at = 0.0
        self._finished = threading.Event()
        self._abandoned = False
        self._answers = AnswerTimes()
        self._sent_at: float | None = None  # wall time the read under way was sent
        self._thread: threading.Thread | None = None

    def follow(self, stream: str) -> None:
        """Read ``stream`` from its start (a new attempt's stream starts over)."""
        with self._wake:
            if stream == self.stream:
                return
            self.stream, self.token = stream, None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batch-runner-logs", daemon=True)
                self._thread.start()
            self._wake.notify()

    def finish(self, stopped_at_ms: int | None, timed_out: bool = False) -> str | None:
        """The job is over: wait for the final read of its remaining lines (bounded); None when every line
        was read, else why not. Past the deadline the read is made at once: the task has no time left."""
        self.end(stopped_at_ms, timed_out)
        return self.wait_for_end()

    def end(self, stopped_at_ms: int | None, timed_out: bool = False) -> None:
        """``finish`` without the wait: several followers' final reads can then run at once."""
        if self._thread is None:
            return
        now = time.time()
        stopped = stopped_at_ms / 1000 if stopped_at_ms else now
        not_before = now if timed_out else stopped + lookback(self.allowance, self.lag)
        with self._wake:
            failing = self.problem is not None  # CloudWatch Logs is failing now: one try at once
            self._ended_at = now
            self._final_after = now if failing else not_before
            # A Logs that answered slowly all along (a loaded host, a distant region) is given longer.
            patience = max(FINAL_READ_PATIENCE, self._answers.patience())
            self._give_up_at = now if failing else max(now, not_before) + patience
            self._wake.notify()

    def wait_for_end(self) -> str | None:
        """After ``end``: the final read's outcome, as ``finish`` tells it."""
        if self._thread is None:
            return None
        while not self._finished.wait(max(0.0, self._deadline() - time.time())):
            if time.time() >= self._deadline():
                with self._wake:
                    self._abandoned = True  # a late answer is not logged after the task went on
                return f"no answer from CloudWatch Logs within {time.time() - self._ended_at:.1f} s"
        return self.problem

    def _deadline(self) -> float:
        """When the wait for the final read ends: shortly past ``give_up_at``, or later while a read sent
        before then is not yet answered but is still within the patience the recent answers earned it."""
        deadline = self._give_up_at + 0.2
        sent = self._sent_at
        if sent is not None and sent < self._give_up_at:
            deadline = max(deadline, sent + self._answers.patience())
        return deadline

    def _run(self) -> None:
        backoff = Backoff(LOGS_CEILING)
        next_read = 0.0
        while True:
            with self._wake:
                while True:
                    if self._abandoned:
                        return
                    now = time.time()
                    final = self._final_after is not None and now >= self._final_after
                    if final or (self._final_after is None and now >= next_read):
                        break
                    until = next_read if self._final_after is None else self._final_after
                    self._wake.wait(max(0.0, until - now))
                stream, token = self.stream, self.token
            assert stream is not None
            started = self._sent_at = time.time()
            try:
                lines, token, lag = self.hook.read_log_lines(stream, token)
            except Exception as exc:
                self._sent_at = None
                self.problem = f"{type(exc).__name__}: {exc}"
                if self._abandoned:
                    return
                if final and time.time() + FINAL_READ_RETRY > self._give_up_at:
                    break
                wait = backoff.failed()
                if not is_throttling(exc):
                    self.hook.log.warning("Reading the container log failed (%s); retrying in about %.0f s",
                                          self.problem, backoff.seconds)
                next_read = time.time() + wait
                if final:
                    with self._wake:
                        self._final_after = time.time() + FINAL_READ_RETRY
                continue
            self._sent_at = None
            self._answers.answered(time.time() - started)
            backoff.succeeded()
            self.problem = None
            self.lag = max(self.lag, lag)
            with self._wake:
                if self._abandoned:
                    return
                if stream == self.stream:
                    self.token = token
                    if lines:
                        self.emit(lines, stream)
            if final:
                break
            next_read = started + self.interval
        self._finished.set()
