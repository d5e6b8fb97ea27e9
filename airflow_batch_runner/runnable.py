"""Pure: a job waiting in RUNNABLE, watched from the worker or the triggerer.

Batch says in ``statusReason`` why a RUNNABLE job at the head of its queue cannot be placed
(``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ...``, ``CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - ...``). The
watch tells each new reason once, and with ``max_runnable_time`` says when the job has waited too long: the
task then terminates it and fails with RUNNABLE's exit code 3 and that reason, instead of waiting out its
deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_batch_runner.outcome import JobState

RUNNABLE = "RUNNABLE"


def stuck_reason(limit: str, status_reason: str | None) -> str:
    """TerminateJob's reason for a job RUNNABLE too long, the same from the worker and the triggerer."""
    because = status_reason or "no reason given"
    return f"airflow-batch-runner: RUNNABLE for more than {limit} (max_runnable_time): {because}"


@dataclass
class RunnableWatch:
    """``limit`` seconds in RUNNABLE at most (None: no limit), counted from the first poll that saw it there."""

    limit: float | None
    since: float | None = None
    reason: str | None = None

    def observe(self, state: JobState, now: float) -> tuple[str | None, bool]:
        """(a line to log when the reason changed, whether the job has been RUNNABLE past the limit)."""
        if state.status != RUNNABLE:
            self.since, self.reason = None, None
            return None, False
        news = None
        if self.since is None:
            self.since = now
            news = f"AWS Batch job {state.job_name} is RUNNABLE: {state.status_reason or 'waiting to be placed'}"
        elif state.status_reason != self.reason and state.status_reason:
            news = f"AWS Batch job {state.job_name} is still RUNNABLE: {state.status_reason}"
        self.reason = state.status_reason
        return news, self.limit is not None and now - self.since >= self.limit
