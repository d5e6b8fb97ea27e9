"""Pure: a job waiting in RUNNABLE, watched from the worker or the triggerer.

Batch says in ``statusReason`` why a RUNNABLE job at the head of its queue cannot be placed
(``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - ...``, ``CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - ...``). An
array job's parent stays PENDING while its children wait: an array none of whose children is placed is
watched as one RUNNABLE job with a waiting child's reason. The
watch tells each new reason once, and with ``max_runnable_time`` says when the job has waited too long: the
task then terminates it and fails with RUNNABLE's exit code 3 and that reason, instead of waiting out its
deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from airflow_batch_runner.outcome import JobState

RUNNABLE = "RUNNABLE"
# Children in these states are placed: an array with one of them is making progress, not waiting.
PLACED = ("STARTING", "RUNNING")


def children_waiting(description: Mapping[str, Any]) -> bool:
    """An array parent (not ended) whose children wait in RUNNABLE with none placed: the array as a whole
    cannot go on, as a single job RUNNABLE cannot. A child placed means capacity is there: the others wait
    their turn."""
    if description.get("status") in ("SUCCEEDED", "FAILED"):
        return False
    summary = (description.get("arrayProperties") or {}).get("statusSummary") or {}
    return summary.get(RUNNABLE, 0) > 0 and not any(summary.get(status, 0) for status in PLACED)


def as_waiting(state: JobState, child_reason: str | None) -> JobState:
    """An array whose children all wait, watched as one RUNNABLE job with a waiting child's reason (the
    parent itself stays PENDING and has none)."""
    return replace(state, status=RUNNABLE, status_reason=child_reason)


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
