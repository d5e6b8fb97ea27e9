"""Pure: how long a job waited and ran, its attempts, and the resources it held, from DescribeJobs.

AWS bills a Batch job on ECS for the time its task ran (each attempt from RUNNING to stopped) times the
vCPUs and memory the task asked for: on Fargate per vCPU-second and GiB-second, on EC2 through the
instances it kept busy. ``vcpu_seconds`` and ``gib_seconds`` are those two products, summed over the
attempts, so a DAG can price or budget a task with its own rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_batch_runner.layout import MAIN
from airflow_batch_runner.outcome import ContainerState, describe_failure, first_failed


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of the job: why it stopped, and the main container's exit code."""

    status_reason: str | None
    exit_code: int | None
    container_reason: str | None
    started_at: int | None
    stopped_at: int | None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.stopped_at is None:
            return None
        return max(0.0, (self.stopped_at - self.started_at) / 1000)


@dataclass(frozen=True)
class Usage:
    created_at: int | None
    started_at: int | None
    stopped_at: int | None
    attempts: tuple[AttemptRecord, ...]
    vcpus: float
    memory_mib: int

    @property
    def queued_seconds(self) -> float | None:
        """From SubmitJob to the first attempt's RUNNING."""
        if self.created_at is None or self.started_at is None:
            return None
        return max(0.0, (self.started_at - self.created_at) / 1000)

    @property
    def running_seconds(self) -> float | None:
        """From the first RUNNING to the job's end: every attempt, and the waits between them."""
        if self.started_at is None or self.stopped_at is None:
            return None
        return max(0.0, (self.stopped_at - self.started_at) / 1000)

    @property
    def billed_seconds(self) -> float:
        """The attempts' own running time, the time AWS bills."""
        return sum(a.seconds or 0.0 for a in self.attempts)

    @property
    def vcpu_seconds(self) -> float:
        return self.billed_seconds * self.vcpus

    @property
    def gib_seconds(self) -> float:
        return self.billed_seconds * self.memory_mib / 1024


def _requirements(container: Mapping[str, Any]) -> tuple[float, int]:
    found = {r.get("type"): r.get("value") for r in container.get("resourceRequirements") or []}
    vcpus = float(found.get("VCPU") or container.get("vcpus") or 0)
    memory = int(float(found.get("MEMORY") or container.get("memory") or 0))
    return vcpus, memory


def _sidecar_failure(attempt: Mapping[str, Any], main: str) -> str | None:
    """``inputs (exit code 1): ...`` when a sidecar, not main, failed the attempt."""
    states = [
        ContainerState(str(c.get("name")), c.get("exitCode"), c.get("reason"), c.get("logStreamName"))
        for task in attempt.get("taskProperties") or [] for c in task.get("containers") or []
    ]
    failed = first_failed(states)
    return describe_failure(failed) if failed is not None and failed.name != main else None


def _main_result(attempt: Mapping[str, Any], main: str) -> Mapping[str, Any]:
    if "container" in attempt:
        return attempt.get("container") or {}
    for task in attempt.get("taskProperties") or []:
        for container in task.get("containers") or []:
            if container.get("name") == main:
                return dict(container)
    return {}


def job_usage(description: Mapping[str, Any], main: str = MAIN) -> Usage:
    """Timings, attempts and the task's total vCPUs and MiB (every container of it) from one DescribeJobs entry."""
    containers: list[Mapping[str, Any]] = []
    for task in (description.get("ecsProperties") or {}).get("taskProperties") or []:
        containers.extend(task.get("containers") or [])
    if not containers and description.get("container"):
        containers.append(description["container"])
    vcpus = sum(_requirements(c)[0] for c in containers)
    memory = sum(_requirements(c)[1] for c in containers)
    attempts = []
    for attempt in description.get("attempts") or []:
        result = _main_result(attempt, main)
        attempts.append(AttemptRecord(
            status_reason=attempt.get("statusReason"),
            exit_code=result.get("exitCode"),
            container_reason=_sidecar_failure(attempt, main) or result.get("reason"),
            started_at=attempt.get("startedAt"),
            stopped_at=attempt.get("stoppedAt"),
        ))
    started = description.get("startedAt") or (attempts[0].started_at if attempts else None)
    return Usage(
        created_at=description.get("createdAt"),
        started_at=started,
        stopped_at=description.get("stoppedAt"),
        attempts=tuple(attempts),
        vcpus=vcpus,
        memory_mib=memory,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def xcom_fields(usage: Usage) -> dict[str, Any]:
    """The XCom's timing, attempt and resource keys."""
    return {
        "queued_seconds": _rounded(usage.queued_seconds),
        "running_seconds": _rounded(usage.running_seconds),
        "attempts": len(usage.attempts),
        "attempt_details": [
            {"status_reason": a.status_reason, "exit_code": a.exit_code, "container_reason": a.container_reason,
             "seconds": _rounded(a.seconds)}
            for a in usage.attempts
        ],
        "vcpus": usage.vcpus,
        "memory_mib": usage.memory_mib,
        "vcpu_seconds": round(usage.vcpu_seconds, 3),
        "gib_seconds": round(usage.gib_seconds, 3),
    }


def attempts_report(usage: Usage) -> str:
    """One line per attempt for the failure message; empty when the job never ran."""
    if not usage.attempts:
        return ""
    lines = [f"Attempts: {len(usage.attempts)}."]
    for number, a in enumerate(usage.attempts, 1):
        code = "none" if a.exit_code is None else a.exit_code
        detail = f"  #{number}: main container exit code {code}; status reason: {a.status_reason or 'none'}"
        if a.container_reason:
            detail += f"; container reason: {a.container_reason}"
        lines.append(detail)
    return "\n".join(lines)
