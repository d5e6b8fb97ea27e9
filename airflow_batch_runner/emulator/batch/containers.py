"""A running task as the stand-in for ECS sees it: its containers' processes and state, what each
container's process gets as its environment, its dependsOn verdict, and container paths mapped to the
host directories that stand in for the task's volumes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_batch_runner.emulator.batch import task_settings
from airflow_batch_runner.emulator.batch.jobs import Job, TaskResult


def map_container_paths(value: str, mounts: Mapping[str, str]) -> str:
    """Rewrite container mount paths in ``value`` to the host directories that stand in for them."""
    for container_path in sorted(mounts, key=len, reverse=True):
        pattern = rf"(?<![\w./-]){re.escape(container_path.rstrip('/'))}(?![\w.-])"
        value = re.sub(pattern, _constant(mounts[container_path]), value)
    return value


def _constant(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement inserting ``text`` as is (no backslash or group escapes)."""
    return lambda _match: text


@dataclass
class ContainerRuntime:
    spec: dict[str, Any]
    essential: bool
    log_target: tuple[str, str] | None  # (group, stream)
    proc: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    pipe: int | None = None
    partial: bytes = b""
    started: bool = False
    stopped: bool = False
    exit_code: int | None = None
    reason: str | None = None
    tmpfs: dict[str, str] = field(default_factory=dict)  # its tmpfs mounts' container paths -> host directories

    @property
    def name(self) -> str:
        return str(self.spec["name"])


@dataclass(eq=False)
class TaskRuntime:
    job: Job
    on_stopped: Callable[[Job, TaskResult], None]
    root: Path
    mounts: dict[str, str]
    containers: dict[str, ContainerRuntime] = field(default_factory=dict)
    stopping: bool = False
    finished: bool = False
    failure_reason: str | None = None


def container_mounts(task: TaskRuntime, container: ContainerRuntime) -> dict[str, str]:
    """The container paths rewritten for this container: the task's volumes and its own tmpfs mounts."""
    return {**task.mounts, **container.tmpfs}


def dependency_verdict(task: TaskRuntime, container: ContainerRuntime) -> str:
    """``ready`` when every ``dependsOn`` condition of the container is met, ``never`` when one can no longer
    be, else ``wait``."""
    verdict = "ready"
    for dep in container.spec.get("dependsOn") or []:
        target = task.containers[dep["containerName"]]
        condition = dep["condition"]
        if condition in ("START", "HEALTHY"):
            met = target.started
            never = target.stopped and not target.started
        elif condition == "COMPLETE":
            met = target.stopped and target.started
            never = target.stopped and not target.started
        else:  # SUCCESS
            met = target.stopped and target.exit_code == 0
            never = target.stopped and target.exit_code != 0
        if never:
            return "never"
        if not met:
            verdict = "wait"
    return verdict


def container_environment(
    task: TaskRuntime, container: ContainerRuntime, home: Path, path: str, endpoint_url: str
) -> dict[str, str]:
    """The process environment of a container: what ECS and Batch set, its secrets, then its own variables."""
    job = task.job
    attempt = job.current_attempt
    env = {
        "PATH": path,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_BATCH_JOB_ID": job.job_id,
        "AWS_BATCH_JOB_ATTEMPT": str(len(job.attempts)),
        "AWS_BATCH_JQ_NAME": job.queue.name,
        "AWS_REGION": job.region,
        "AWS_DEFAULT_REGION": job.region,
        # The task role stands in: the container talks to this endpoint with placeholder keys.
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "emulator-task-role",
        "AWS_SECRET_ACCESS_KEY": "emulator-task-role",
        "ECS_CONTAINER_METADATA_URI_V4": "",
    }
    if attempt is not None:
        env["ECS_TASK_ID"] = attempt.task_id
    if job.compute_environment:
        env["AWS_BATCH_CE_NAME"] = job.compute_environment
    if job.parent is not None and job.array_index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_index)
        env["AWS_BATCH_JOB_ARRAY_SIZE"] = str(job.parent.array_size)
    env.update(task_settings.exported(job.ecs_task or job.container or {}, container.spec,
                                      job.definition.platform_capabilities == ["FARGATE"]))
    if attempt is not None:
        env.update(attempt.secrets.get(container.name, {}))
    for entry in container.spec.get("environment") or []:
        # Docker hands a container ``name=value`` strings: a name with ``=`` in it sets the variable
        # named by what precedes its first ``=``; an empty name sets none that a process can read.
        name, _, head = str(entry["name"]).partition("=")
        value = f"{head}={entry.get('value', '')}" if "=" in str(entry["name"]) else str(entry.get("value", ""))
        if name:
            env[name] = map_container_paths(value, container_mounts(task, container))
    return env
