"""Pure: one job's wait, one poll at a time, the same in the worker and in the triggerer.

Each poll's DescribeJobs answer goes through ``JobWait.step``: it says what to log (an array's progress, a
RUNNABLE job's reason), whether the wait is over and how (the ``Verdict``), and, when the task ends the job
itself (its deadline, ``max_runnable_time``), the reason to terminate it with. The worker's loop and the
trigger call it; the trigger's event carries the verdict (``verdict_to_event``), so the resumed task never
decides again. The one thing a step cannot know by itself, why an array's waiting children wait, the
caller reads (one ListJobs) when ``wants_child_reason`` says so, and passes it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner import array_outcome, outcome
from airflow_batch_runner.outcome import JobState, Verdict
from airflow_batch_runner.runnable import RunnableWatch, as_waiting, children_waiting, stuck_reason


@dataclass(frozen=True)
class Limits:
    """What ends a wait besides the job: the deadline (epoch seconds, None for none), its text for
    messages (``"1 h"``), and the longest wait in RUNNABLE (seconds, None for none)."""

    deadline: float | None
    limit: str
    max_runnable_time: float | None = None


@dataclass(frozen=True)
class Step:
    """What one poll decided."""

    state: JobState  # the job as DescribeJobs told it
    verdict: Verdict
    log: tuple[str, ...] = ()  # lines for the task log, in order
    terminate: str | None = None  # TerminateJob's reason when the task ends the job itself

    @property
    def done(self) -> bool:
        return self.verdict.done


@dataclass
class JobWait:
    """One job's wait: the state a poll needs from the polls before it (the last progress line told,
    how long the job has waited in RUNNABLE)."""

    limits: Limits
    progress: str | None = None
    runnable: RunnableWatch = field(init=False)

    def __post_init__(self) -> None:
        self.runnable = RunnableWatch(self.limits.max_runnable_time)

    @staticmethod
    def wants_child_reason(description: Mapping[str, Any]) -> bool:
        """An array whose children all wait in RUNNABLE: the step needs a waiting child's reason."""
        return bool((description.get("arrayProperties") or {}).get("size")) and children_waiting(description)

    def step(self, description: Mapping[str, Any], now: float, child_reason: str | None = None) -> Step:
        state = outcome.job_state(description)
        lines: list[str] = []
        if (line := array_outcome.progress_line(description, self.progress)) is not None:
            lines.append(line)
            self.progress = line
        # An array whose children all wait is watched as one RUNNABLE job, with a waiting child's reason.
        watched = as_waiting(state, child_reason) if self.wants_child_reason(description) else state
        news, stuck = self.runnable.observe(watched, now)
        if news:
            lines.append(news)
        limit = self.limits.max_runnable_time
        verdict = outcome.decide(watched, now, self.limits.deadline,
                                 stuck_for=f"{limit:g} s" if stuck and limit is not None else None)
        terminate = None
        if verdict.timed_out:
            terminate = outcome.deadline_reason(self.limits.limit)
        elif verdict.stuck_for:
            terminate = stuck_reason(verdict.stuck_for, watched.status_reason)
        return Step(state, verdict, tuple(lines), terminate)


def verdict_to_event(verdict: Verdict) -> dict[str, Any]:
    """The verdict as a trigger event carries it (JSON)."""
    return {"done": verdict.done, "exit_code": verdict.exit_code, "timed_out": verdict.timed_out,
            "stuck_for": verdict.stuck_for}


def verdict_from_event(event: Mapping[str, Any], state: JobState, now: float) -> Verdict:
    """The verdict a trigger decided; an event of a trigger deferred by an older version (no ``verdict``)
    is decided from what it carried, as that version did."""
    carried = event.get("verdict")
    if carried:
        return Verdict(done=bool(carried["done"]), exit_code=int(carried["exit_code"]),
                       timed_out=bool(carried.get("timed_out")), stuck_for=carried.get("stuck_for"))
    verdict = outcome.decide(state, now, None, stuck_for=event.get("stuck_for"))
    if event.get("timed_out"):
        verdict = Verdict(done=True, exit_code=outcome.exit_code_for(state.status), timed_out=True)
    return verdict
