"""An AWS Batch job as DescribeJobs shows it: its attempts, containers, overrides and log streams."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner.emulator.batch.resources import (
    ComputeEnvironment,
    JobDefinition,
    JobQueue,
    now_ms,
)
from airflow_batch_runner.emulator.batch.validation import ClientException

ACTIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
ALL_STATUSES = (*ACTIVE_STATUSES, "SUCCEEDED", "FAILED")
ESSENTIAL_EXITED = "Essential container in task exited"
DEFAULT_LOG_GROUP = "/aws/batch/job"


@dataclass
class ContainerResult:
    name: str
    exit_code: int | None
    reason: str | None
    log_stream_name: str | None


@dataclass
class TaskResult:
    containers: list[ContainerResult]
    status_reason: str


@dataclass
class Attempt:
    task_id: str
    started_at: int
    stopped_at: int | None = None
    status_reason: str | None = None
    containers: list[ContainerResult] = field(default_factory=list)
    # Container name -> the values of its ``secrets``, read when the attempt starts.
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    # Where the task ran: an EC2 container instance, or a Fargate task's network interface.
    container_instance_arn: str | None = None
    network_interfaces: list[dict[str, str]] = field(default_factory=list)
    # Its ECS task (``ecs_side.EcsTask``) on the compute environment's cluster.
    task_arn: str = ""
    ecs_task: Any = None

    def placement(self) -> dict[str, Any]:
        """DescribeJobs' containerInstanceArn (EC2) or networkInterfaces (Fargate) of the attempt."""
        if self.container_instance_arn:
            return {"containerInstanceArn": self.container_instance_arn}
        return {"networkInterfaces": [dict(n) for n in self.network_interfaces]} if self.network_interfaces else {}


@dataclass(eq=False)
class Job:
    job_id: str
    name: str
    arn: str
    region: str
    queue: JobQueue
    definition: JobDefinition
    tags: dict[str, str]
    propagate_tags: bool
    timeout: dict[str, Any] | None
    max_attempts: int
    parameters: dict[str, str]
    # Effective task (ECS jobs) or container (container jobs), after overrides.
    ecs_task: dict[str, Any] | None
    container: dict[str, Any] | None
    status: str = "SUBMITTED"
    status_reason: str | None = None
    created_at: int = field(default_factory=now_ms)
    started_at: int | None = None
    stopped_at: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    is_cancelled: bool = False
    is_terminated: bool = False
    # Reason to report when the running task stops because we stopped it.
    stop_reason: str | None = None
    # Reason of an injected interruption of the running attempt (a Spot reclaim), which may be retried.
    interrupt_reason: str | None = None
    # When the job began to wait in RUNNABLE for its present statusReason (time.monotonic()).
    blocked_since: float | None = None
    # retryStrategy.evaluateOnExit as submitted (or from the definition).
    evaluate_on_exit: list[dict[str, Any]] = field(default_factory=list)
    runtime: Any = None  # owned by the runner
    # dependsOn as the client sent it (a child reports the dependencies it really waits on).
    depends_on: list[dict[str, str]] = field(default_factory=list)
    # The jobs that must succeed before this one may leave PENDING.
    waits_on: list[Job] = field(default_factory=list)
    blocked: bool = False  # PENDING on a dependency that has not ended yet
    array_size: int | None = None  # on an array parent
    array_index: int | None = None  # on an array child
    parent: Job | None = None
    children: list[Job] = field(default_factory=list)
    status_summary_at: int | None = None
    share_identifier: str | None = None
    scheduling_priority: int | None = None
    compute_environment: str | None = None  # the name of the one its last attempt was placed on
    vcpus: float = 0.0  # its containers' VCPU total: what it holds of a compute environment once placed
    gpus: int = 0  # its containers' GPU total, held likewise
    consumables: dict[str, int] = field(default_factory=dict)  # consumable resource name -> quantity, held likewise
    seq: int = 0  # submission order (an array's children share their parent's)
    # The compute environment it is placed on while STARTING or RUNNING, holding ``vcpus`` of it.
    holds: ComputeEnvironment | None = None
    announced: str | None = None  # the status of its last Batch Job State Change event

    @property
    def fifo_key(self) -> tuple[int, int]:
        """Its place in a FIFO queue: by submission, an array's children by index."""
        return self.seq, -1 if self.array_index is None else self.array_index

    @property
    def containers(self) -> list[dict[str, Any]]:
        if self.ecs_task is not None:
            return list(self.ecs_task["containers"])
        assert self.container is not None
        return [{**self.container, "name": "default", "essential": True}]

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobArn": self.arn,
            "jobId": self.job_id,
            "jobName": self.name,
            "createdAt": self.created_at,
            "status": self.status,
            "jobDefinition": self.definition.arn,
        }
        for key, value in (
            ("statusReason", self.status_reason),
            ("startedAt", self.started_at),
            ("stoppedAt", self.stopped_at),
            ("shareIdentifier", self.share_identifier),
        ):
            if value is not None:
                out[key] = value
        if self.array_size is not None:
            out["arrayProperties"] = self.array_details()
        elif self.array_index is not None:
            out["arrayProperties"] = {"index": self.array_index}
        if self.container is not None and self.attempts:
            first = self.attempts[-1].containers[:1]
            if first and first[0].exit_code is not None:
                out["container"] = {"exitCode": first[0].exit_code}
        return out

    def describe(self) -> dict[str, Any]:
        out = self.summary()
        out.update(
            {
                "jobQueue": self.queue.arn,
                "tags": self.tags,
                "propagateTags": self.propagate_tags,
                "parameters": self.parameters,
                "platformCapabilities": self.definition.platform_capabilities,
                "retryStrategy": {"attempts": self.max_attempts,
                                  **({"evaluateOnExit": self.evaluate_on_exit} if self.evaluate_on_exit else {})},
                "dependsOn": [dict(d) for d in self.depends_on],
                "isCancelled": self.is_cancelled,
                "isTerminated": self.is_terminated,
                "attempts": [self._describe_attempt(a) for a in self.attempts],
            }
        )
        if self.timeout:
            out["timeout"] = self.timeout
        if self.scheduling_priority is not None:
            out["schedulingPriority"] = self.scheduling_priority
        if self.consumables:
            out["consumableResourceProperties"] = {"consumableResourceList": [
                {"consumableResource": name, "quantity": quantity} for name, quantity in self.consumables.items()]}
        # AWS gives each container its log stream name once the attempt reaches RUNNING, so that
        # clients can read the logs while the job runs; the runner reports it again when it stops.
        running = self.attempts[-1] if self.status == "RUNNING" and self.attempts else None
        if self.ecs_task is not None:
            task = copy.deepcopy(self.ecs_task)
            latest = {c.name: c for c in self.attempts[-1].containers} if self.attempts else {}
            for container in task["containers"]:
                result = latest.get(container["name"])
                if result is not None:
                    _merge_result(container, result)
                elif running is not None:
                    _add_running_stream(container, awslogs_target(self, container, running.task_id))
            if self.attempts:
                task["taskArn"] = self._task_arn(self.attempts[-1])
            out["ecsProperties"] = {"taskProperties": [task]}
        else:
            container = copy.deepcopy(self.container or {})
            if self.attempts and self.attempts[-1].containers:
                _merge_result(container, self.attempts[-1].containers[0])
                container["taskArn"] = self._task_arn(self.attempts[-1])
            elif running is not None:
                container["taskArn"] = self._task_arn(running)
                _add_running_stream(container, awslogs_target(self, self.containers[0], running.task_id))
            out["container"] = container
        return out

    def array_details(self) -> dict[str, Any]:
        """A parent's arrayProperties: its size and how many children are in each status."""
        counts = dict.fromkeys(ALL_STATUSES, 0)
        for child in self.children:
            counts[child.status] += 1
        out: dict[str, Any] = {"size": self.array_size, "statusSummary": counts}
        if self.status_summary_at is not None:
            out["statusSummaryLastUpdatedAt"] = self.status_summary_at
        return out

    @staticmethod
    def _task_arn(attempt: Attempt) -> str:
        return attempt.task_arn

    def _describe_attempt(self, attempt: Attempt) -> dict[str, Any]:
        out: dict[str, Any] = {"startedAt": attempt.started_at}
        if attempt.stopped_at is not None:
            out["stoppedAt"] = attempt.stopped_at
        if attempt.status_reason:
            out["statusReason"] = attempt.status_reason
        results = [_result_dict(c) for c in attempt.containers]
        if self.ecs_task is not None:
            placed = attempt.placement()
            if "networkInterfaces" in placed:  # per container in an ECS task (TaskContainerDetails)
                results = [{**r, **placed} for r in results]
                placed = {}
            out["taskProperties"] = [{"taskArn": self._task_arn(attempt), **placed, "containers": results}]
        else:
            out["container"] = {**(results[0] if results else {}), "taskArn": self._task_arn(attempt),
                                **attempt.placement()}
        return out


def awslogs_target(job: Job, spec: Mapping[str, Any], task_id: str) -> tuple[str, str] | None:
    """(log group, log stream) the awslogs driver writes a container's lines to; None without awslogs.

    Container-type jobs log with awslogs by default, in ``<job definition name>/default/<task id>``.
    """
    log_config = spec.get("logConfiguration")
    if job.container is not None and not log_config:
        log_config = {"logDriver": "awslogs", "options": {"awslogs-stream-prefix": job.definition.name}}
    if not log_config or log_config.get("logDriver") != "awslogs":
        return None
    options = log_config.get("options") or {}
    group = options.get("awslogs-group", DEFAULT_LOG_GROUP)
    prefix = options.get("awslogs-stream-prefix")
    stream = f"{spec['name']}/{task_id}"
    return group, f"{prefix}/{stream}" if prefix else stream


def _add_running_stream(container: dict[str, Any], target: tuple[str, str] | None) -> None:
    if target is not None:
        container["logStreamName"] = target[1]


def _result_dict(result: ContainerResult) -> dict[str, Any]:
    out: dict[str, Any] = {"name": result.name}
    if result.exit_code is not None:
        out["exitCode"] = result.exit_code
    if result.reason:
        out["reason"] = result.reason
    if result.log_stream_name:
        out["logStreamName"] = result.log_stream_name
    return out


def _merge_result(container: dict[str, Any], result: ContainerResult) -> None:
    details = _result_dict(result)
    details.pop("name")
    container.update(details)


def _merge_environment(base: list[dict[str, str]], extra: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    merged = {e["name"]: e.get("value", "") for e in base}
    for entry in extra:
        merged[entry["name"]] = entry.get("value", "")
    return [{"name": k, "value": val} for k, val in merged.items()]


def _merge_requirements(base: list[dict[str, str]], extra: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    merged = {r["type"]: r["value"] for r in base}
    for entry in extra:
        merged[entry["type"]] = entry["value"]
    return [{"type": k, "value": val} for k, val in merged.items()]


def apply_container_overrides(container: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(container)
    if override.get("command") is not None:
        out["command"] = list(override["command"])
    if override.get("environment"):
        out["environment"] = _merge_environment(out.get("environment") or [], override["environment"])
    if override.get("resourceRequirements"):
        out["resourceRequirements"] = _merge_requirements(
            out.get("resourceRequirements") or [], override["resourceRequirements"]
        )
    for legacy in ("vcpus", "memory", "instanceType"):
        if override.get(legacy) is not None:
            out[legacy] = override[legacy]
    return out


def effective_ecs_task(definition: JobDefinition, override: Mapping[str, Any] | None) -> dict[str, Any]:
    assert definition.ecs_properties is not None
    task = copy.deepcopy(definition.ecs_properties["taskProperties"][0])
    task_overrides = (override or {}).get("taskProperties") or []
    if len(task_overrides) > 1:
        raise ClientException("ecsPropertiesOverride.taskProperties can have at most one entry")
    by_name = {c["name"]: i for i, c in enumerate(task["containers"])}
    for container_override in (task_overrides[0].get("containers") or []) if task_overrides else []:
        name = container_override.get("name")
        if name not in by_name:
            raise ClientException(f"ecsPropertiesOverride names container {name!r}, which the job definition lacks")
        idx = by_name[name]
        task["containers"][idx] = apply_container_overrides(task["containers"][idx], container_override)
    return task


LIST_JOBS_FILTERS = ("JOB_NAME", "JOB_DEFINITION", "AFTER_CREATED_AT", "BEFORE_CREATED_AT", "SHARE_IDENTIFIER")
JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def check_job_status(status: Any) -> str:
    """ListJobs' jobStatus: one of the JobStatus enum of the service model."""
    if status not in JOB_STATUSES:
        raise ClientException(f"jobStatus {status!r} is invalid; use one of {', '.join(JOB_STATUSES)}")
    return str(status)


def check_list_filter(flt: Mapping[str, Any]) -> None:
    name, values = flt.get("name"), flt.get("values") or []
    if name not in LIST_JOBS_FILTERS:
        raise ClientException(f"filter name {name!r} is invalid; use {', '.join(LIST_JOBS_FILTERS)}")
    if not values:
        raise ClientException(f"filter {name} needs a value")


def job_matches(job: Job, flt: Mapping[str, Any]) -> bool:
    name, value = flt.get("name"), flt["values"][0]
    if name == "JOB_NAME":
        if value.endswith("*"):
            return job.name.lower().startswith(value[:-1].lower())
        return job.name.lower() == value.lower()
    if name == "JOB_DEFINITION":
        if value.endswith("*"):
            return job.definition.arn.startswith(value[:-1]) or job.definition.name.startswith(value[:-1])
        return value in (job.definition.arn, job.definition.name, f"{job.definition.name}:{job.definition.revision}")
    if name == "SHARE_IDENTIFIER":
        return job.share_identifier == value
    if name == "AFTER_CREATED_AT":
        return job.created_at > int(value)
    return job.created_at < int(value)  # BEFORE_CREATED_AT


REF_PREFIX = "Ref::"


def substitute_parameters(spec: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """The container with each ``Ref::name`` argument of its command replaced by that parameter.

    As on AWS, a placeholder is a whole argument and one without a value stays as written.
    """
    command = spec.get("command")
    if not command or not parameters:
        return spec
    substituted = [
        parameters.get(arg[len(REF_PREFIX) :], arg) if isinstance(arg, str) and arg.startswith(REF_PREFIX) else arg
        for arg in command
    ]
    return {**spec, "command": substituted}
