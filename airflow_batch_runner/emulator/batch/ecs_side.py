"""The ECS side of a Batch job, as the caller's ECS shows it: the task definition Batch registers for the job's
definition, and each attempt's task in the compute environment's cluster (PENDING while STARTING, RUNNING, then
STOPPED with its containers' exit codes). ``infrastructure.py`` puts both into moto's ECS; this module only
says what they hold (no moto here).

AWS documents that a job's attempt runs as an ECS task (``taskArn``) on the compute environment's cluster
(``ecsClusterArn``), and Airflow's own system test deregisters ``<job definition name>:1`` after a job: the family
is the job definition's name. The rest (one revision per job definition revision, registered when its first job
starts; the fields copied) is this emulator's choice, listed in the differences of docs/reference/emulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# Batch container fields an ECS container definition takes under the same name.
SAME_NAME_FIELDS = (
    "name", "image", "command", "environment", "essential", "dependsOn", "mountPoints", "logConfiguration",
    "secrets", "user", "privileged", "readonlyRootFilesystem", "ulimits", "linuxParameters", "repositoryCredentials",
    "firelensConfiguration",
)
TASK_FIELDS = (
    "executionRoleArn", "taskRoleArn", "volumes", "ephemeralStorage", "runtimePlatform", "ipcMode", "pidMode",
)


def _container_definition(container: dict[str, Any], default_name: str) -> dict[str, Any]:
    out = {k: container[k] for k in SAME_NAME_FIELDS if container.get(k) is not None}
    out.setdefault("name", default_name)
    out.setdefault("essential", True)
    requirements = {r["type"]: r["value"] for r in container.get("resourceRequirements") or []}
    vcpus = requirements.get("VCPU", container.get("vcpus"))
    memory = requirements.get("MEMORY", container.get("memory"))
    if vcpus is not None:
        out["cpu"] = int(float(vcpus) * 1024)
    if memory is not None:
        out["memory"] = int(memory)
    if "GPU" in requirements:
        out["resourceRequirements"] = [{"type": "GPU", "value": str(requirements["GPU"])}]
    return out


def task_definition_request(definition: Any, fargate: bool, job_containers: list[dict[str, Any]]) -> dict[str, Any]:
    """The RegisterTaskDefinition request (ECS field names) behind a Batch job definition: its containers, with
    the job definition's own values (a job's overrides travel with its task, as ECS RunTask overrides do). A
    definition whose size comes only from SubmitJob's overrides takes the task-level size of ``job_containers``
    (the first job's effective containers)."""
    if definition.ecs_properties is not None:
        task = dict(definition.ecs_properties["taskProperties"][0])
        containers = [_container_definition(c, c["name"]) for c in task["containers"]]
    else:
        task = dict(definition.container_properties or {})
        if task.get("jobRoleArn"):
            task["taskRoleArn"] = task["jobRoleArn"]
        containers = [_container_definition(task, "default")]
    out: dict[str, Any] = {"family": definition.name, "containerDefinitions": containers}
    out.update({k: task[k] for k in TASK_FIELDS if task.get(k) is not None})
    out["requiresCompatibilities"] = ["FARGATE" if fargate else "EC2"]
    if fargate:  # ECS on Fargate takes no ipcMode, and pidMode task only
        out["networkMode"] = "awsvpc"
        out.pop("ipcMode", None)
        if out.get("pidMode") != "task":
            out.pop("pidMode", None)
    # The job's total, as task-level size: an ECS-properties job may give it on one container only.
    cpu, memory = sum(c.get("cpu", 0) for c in containers), sum(c.get("memory", 0) for c in containers)
    if not cpu or not memory:
        sized = [_container_definition(c, "default") for c in job_containers]
        cpu, memory = cpu or sum(c.get("cpu", 0) for c in sized), memory or sum(c.get("memory", 0) for c in sized)
    if cpu:
        out["cpu"] = str(cpu)
    if memory:
        out["memory"] = str(memory)
    return out


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(eq=False)
class EcsTask:
    """One attempt's ECS task, with the attribute names moto's ECS reads (ListTasks filters on them and its
    serializer turns them into DescribeTasks' ``Task``)."""

    task_arn: str
    cluster_arn: str
    launch_type: str
    containers: list[dict[str, Any]]
    container_instance_arn: str | None = None
    capacity_provider_name: str | None = None
    task_definition_arn: str = ""
    group: str = ""
    cpu: str | None = None
    memory: str | None = None
    last_status: str = "PENDING"
    desired_status: str = "RUNNING"
    started_by: str | None = None
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    stopping_at: datetime | None = None
    stopped_at: datetime | None = None
    stopped_reason: str | None = None
    stop_code: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=lambda: {"containerOverrides": []})
    resource_requirements: dict[str, Any] = field(default_factory=dict)  # moto's StopTask reads it

    def advance(self) -> None:
        """moto's DescribeTasks ticks its own tasks; this one moves only with its job."""

    def running(self) -> None:
        self.last_status = "RUNNING"
        self.started_at = _now()
        for container in self.containers:
            container["lastStatus"] = "RUNNING"

    def stopped(self, reason: str | None, stop_code: str, results: dict[str, Any]) -> None:
        """The task STOPPED: ``results`` maps container name to (exit code, reason) of those that ran."""
        now = _now()
        self.last_status, self.desired_status = "STOPPED", "STOPPED"
        self.stopping_at, self.stopped_at = self.stopping_at or now, now
        self.stopped_reason, self.stop_code = reason, stop_code
        for container in self.containers:
            container["lastStatus"] = "STOPPED"
            exit_code, why = results.get(container["name"], (None, None))
            if exit_code is not None:
                container["exitCode"] = exit_code
            if why:
                container["reason"] = why


def new_task(task_arn: str, cluster_arn: str, platform: str, container_names: list[str], images: list[str],
             container_instance_arn: str | None, interfaces: list[dict[str, str]], spot: bool) -> EcsTask:
    """The task of an attempt just placed (Batch STARTING: ECS PENDING)."""
    containers = [{"containerArn": f"{cluster_arn.replace(':cluster/', ':container/')}/{task_arn.rsplit('/', 1)[-1]}/"
                                   f"{i:08x}-0000-4000-8000-{i:012x}",
                   "taskArn": task_arn, "name": name, "image": image, "lastStatus": "PENDING"}
                  for i, (name, image) in enumerate(zip(container_names, images, strict=True))]
    task = EcsTask(task_arn=task_arn, cluster_arn=cluster_arn, containers=containers,
                   launch_type="FARGATE" if platform == "FARGATE" else "EC2",
                   container_instance_arn=container_instance_arn)
    if spot and platform == "FARGATE":
        task.capacity_provider_name = "FARGATE_SPOT"
    for interface in interfaces:
        task.attachments.append({
            "id": interface["attachmentId"], "type": "ElasticNetworkInterface", "status": "ATTACHED",
            "details": [{"name": "privateIPv4Address", "value": interface["privateIpv4Address"]}],
        })
    return task
