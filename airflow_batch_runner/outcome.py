"""Pure: what a DescribeJobs answer means for the task. Shared by the worker and the triggerer.

Exit codes follow Kestra's runner: SUCCEEDED 0, FAILED 1, RUNNING 2, RUNNABLE 3, PENDING 4,
STARTING 5, SUBMITTED 6, anything else -1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_batch_runner.layout import MAIN

EXIT_CODES: dict[str, int] = {
    "SUCCEEDED": 0,
    "FAILED": 1,
    "RUNNING": 2,
    "RUNNABLE": 3,
    "PENDING": 4,
    "STARTING": 5,
    "SUBMITTED": 6,
}
TERMINAL = frozenset({"SUCCEEDED", "FAILED"})
LAST_LOG_LINES = 20
KILL_REASON = "airflow-batch-runner: the Airflow task was killed"


def deadline_reason(limit: str) -> str:
    """TerminateJob's reason at the deadline, the same from the worker and the triggerer."""
    return f"airflow-batch-runner: the task's limit of {limit} passed"


def exit_code_for(status: str | None) -> int:
    return EXIT_CODES.get(status or "", -1)


# What ECS reports for a container that never ran because one it depends on did not meet its condition.
DEPENDENCY_NOT_SATISFIED = "DependencyNotSatisfied"


@dataclass(frozen=True)
class ContainerState:
    """One container of the job's latest attempt."""

    name: str
    exit_code: int | None
    reason: str | None
    log_stream: str | None


@dataclass(frozen=True)
class JobState:
    """The parts of a DescribeJobs entry the task acts on."""

    job_id: str
    job_name: str
    status: str
    status_reason: str | None
    created_at: int | None
    container_exit_code: int | None
    container_reason: str | None
    log_stream: str | None
    bucket_path: str | None
    containers: tuple[ContainerState, ...] = ()
    started_at: int | None = None  # ms, when the job's containers started
    stopped_at: int | None = None  # ms, when the job ended
    array_size: int | None = None  # an array parent's

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def failed_container(self) -> ContainerState | None:
        return first_failed(self.containers)


def first_failed(containers: Iterable[ContainerState]) -> ContainerState | None:
    """The container whose failure ended the job: the first, in the job's order, that exited non-zero
    or could not run for a reason of its own. One that never ran because a container it depends on
    failed is never the cause."""
    for container in containers:
        if (container.reason or "").startswith(DEPENDENCY_NOT_SATISFIED):
            continue
        if container.exit_code not in (None, 0) or (container.exit_code is None and container.reason):
            return container
    return None


def describe_failure(container: ContainerState) -> str:
    """``inputs (exit code 1)``, ``inputs (it did not run): CannotPullContainerError: ...``."""
    code = f"exit code {container.exit_code}" if container.exit_code is not None else "it did not run"
    return f"{container.name} ({code})" + (f": {container.reason}" if container.reason else "")


def job_state(description: Mapping[str, Any], main: str = MAIN) -> JobState:
    """Read the main container's result from the latest attempt (or the effective properties)."""
    containers: list[Mapping[str, Any]] = []
    attempts = description.get("attempts") or []
    if attempts:
        for task in attempts[-1].get("taskProperties") or []:
            containers.extend(task.get("containers") or [])
    effective: list[Mapping[str, Any]] = []
    for task in (description.get("ecsProperties") or {}).get("taskProperties") or []:
        effective.extend(task.get("containers") or [])
    by_name = {c.get("name"): c for c in effective}
    by_name.update({c.get("name"): {**by_name.get(c.get("name"), {}), **c} for c in containers})
    mine = by_name.get(main, {})
    env = {e.get("name"): e.get("value") for e in (by_name.get(main, {}).get("environment") or [])}
    # A container that never ran because one it depends on failed is never the reason.
    reasons = [c.get("reason") for c in by_name.values()
               if c.get("reason") and not str(c.get("reason")).startswith(DEPENDENCY_NOT_SATISFIED)]
    states = tuple(
        ContainerState(str(name), c.get("exitCode"), c.get("reason"), c.get("logStreamName"))
        for name, c in by_name.items()
    )
    return JobState(
        job_id=description["jobId"],
        job_name=description.get("jobName", ""),
        status=description.get("status", "UNKNOWN"),
        status_reason=description.get("statusReason"),
        created_at=description.get("createdAt"),
        container_exit_code=mine.get("exitCode"),
        container_reason=(mine.get("reason") if mine.get("reason") in reasons else None) or
        (reasons[0] if reasons else None),
        log_stream=mine.get("logStreamName"),
        bucket_path=env.get("BUCKET_PATH"),
        containers=states,
        started_at=description.get("startedAt"),
        stopped_at=description.get("stoppedAt"),
        array_size=(description.get("arrayProperties") or {}).get("size"),
    )


@dataclass(frozen=True)
class Verdict:
    """``done`` False means keep waiting; otherwise ``exit_code`` 0 is success."""

    done: bool
    exit_code: int
    timed_out: bool = False
    # Set when the job stayed RUNNABLE past max_runnable_time (this limit, as text) and was terminated.
    stuck_for: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.done and self.exit_code == 0 and not self.timed_out


def decide(state: JobState, now: float, deadline: float | None, stuck_for: str | None = None) -> Verdict:
    """One decision for both waiting paths: finished, past its deadline, stuck in RUNNABLE past
    ``max_runnable_time`` (``stuck_for``: that limit, as text, when the RUNNABLE watch says so), or going."""
    if state.terminal:
        return Verdict(done=True, exit_code=exit_code_for(state.status))
    if deadline is not None and now >= deadline:
        return Verdict(done=True, exit_code=exit_code_for(state.status), timed_out=True)
    if stuck_for is not None:  # RUNNABLE's code, also for an array whose parent is PENDING while its children wait
        return Verdict(done=True, exit_code=EXIT_CODES["RUNNABLE"], stuck_for=stuck_for)
    return Verdict(done=False, exit_code=exit_code_for(state.status))


def sentence(text: str) -> str:
    """``text`` ending with one full stop: AWS's reasons often end with their own ("... terminated.")."""
    return text if text.endswith((".", "!", "?")) else f"{text}."


def failure_message(
    state: JobState, verdict: Verdict, last_lines: Iterable[str], limit: str | None = None
) -> str:
    """Status, mapped exit code, the main container's own exit code, Batch's reason, which container
    failed and why, and the last log lines (the failed container's, when it is a sidecar)."""
    head = (
        f"AWS Batch job {state.job_name} ({state.job_id}) "
        + (f"did not finish within {limit}; it was terminated while {state.status}. " if verdict.timed_out else
           f"stayed RUNNABLE longer than {verdict.stuck_for} (max_runnable_time); it was terminated. "
           if verdict.stuck_for else f"ended {state.status}. ")
    )
    parts = [
        head + f"Exit code {verdict.exit_code} (status {state.status}).",
        f"Main container exit code: {state.container_exit_code if state.container_exit_code is not None else 'none'}.",
    ]
    if state.status_reason:
        parts.append(sentence(f"Status reason: {state.status_reason}"))
    failed = state.failed_container
    if failed is not None and failed.name != MAIN:
        parts.append(sentence(f"Failed container: {describe_failure(failed)}"))
    elif failed is not None and failed.reason:
        parts.append(sentence(f"Container reason: {failed.reason}"))
    elif failed is None and state.container_reason:
        parts.append(sentence(f"Container reason: {state.container_reason}"))
    tail = list(last_lines)[-LAST_LOG_LINES:]
    if tail:
        of = f" of the {failed.name} container" if failed is not None and failed.name != MAIN else ""
        parts.append(f"Last log lines{of}:\n" + "\n".join(f"  {line}" for line in tail))
    return "\n".join(parts)


def xcom_result(
    state: JobState,
    exit_code: int,
    bucket_path: str | None,
    output_files: Mapping[str, str],
    working_dir: str,
    output_dir: str,
) -> dict[str, Any]:
    """The task's XCom return_value."""
    return {
        "job_id": state.job_id,
        "job_name": state.job_name,
        "status": state.status,
        "exit_code": exit_code,
        "container_exit_code": state.container_exit_code,
        "bucket_path": bucket_path,
        "working_dir": working_dir,
        "output_dir": output_dir,
        "output_files": dict(sorted(output_files.items())),
    }
