"""AWS Batch's long-lived resources: compute environments, job queues and job definitions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from airflow_batch_runner.emulator.batch.gpus import GpuCapacity

ACCOUNT_ID = "123456789012"
FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")
ECS_TYPES = ("EC2", "SPOT", *FARGATE_TYPES)


def now_ms() -> int:
    return int(time.time() * 1000)


def name_of(ref: str) -> str:
    """A resource's name from its ARN or its name (Batch takes either wherever it names one)."""
    return ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref


@dataclass
class ComputeEnvironment:
    name: str
    arn: str
    ce_type: str
    state: str
    compute_resources: dict[str, Any] | None
    eks_configuration: dict[str, Any] | None
    service_role: str | None
    tags: dict[str, str]
    ecs_cluster_arn: str
    unmanaged_vcpus: int | None = None
    status: str = "CREATING"
    status_reason: str = "Compute environment is being created"
    # vCPUs of the jobs placed on it (STARTING or RUNNING): never above capacity.
    used_vcpus: float = 0.0
    # The GPUs its instance types give (gpus.py) and those its placed jobs hold.
    gpus: GpuCapacity = field(default_factory=GpuCapacity)
    used_gpus: int = 0

    @property
    def capacity(self) -> float:
        """The vCPUs its jobs may hold at once: maxvCpus of a MANAGED environment; none for an UNMANAGED one,
        whose capacity is the container instances registered in its ECS cluster (there are none here)."""
        return float(self.compute_resources["maxvCpus"]) if self.compute_resources else 0.0

    @property
    def orchestration(self) -> str:
        return "EKS" if self.eks_configuration else "ECS"

    @property
    def platform(self) -> str:
        resource_type = (self.compute_resources or {}).get("type", "EC2")
        return "FARGATE" if resource_type in FARGATE_TYPES else "EC2"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "computeEnvironmentName": self.name,
            "computeEnvironmentArn": self.arn,
            "type": self.ce_type,
            "state": self.state,
            "status": self.status,
            "statusReason": self.status_reason,
            "containerOrchestrationType": self.orchestration,
            "tags": self.tags,
            "ecsClusterArn": self.ecs_cluster_arn,
        }
        if self.compute_resources is not None:
            out["computeResources"] = self.compute_resources
        if self.eks_configuration is not None:
            out["eksConfiguration"] = self.eks_configuration
        if self.service_role:
            out["serviceRole"] = self.service_role
        if self.unmanaged_vcpus is not None:
            out["unmanagedvCpus"] = self.unmanaged_vcpus
        return out


@dataclass
class JobQueue:
    name: str
    arn: str
    state: str
    priority: int
    compute_environment_order: list[dict[str, Any]]
    tags: dict[str, str]
    scheduling_policy_arn: str | None = None
    queue_type: str = "ECS"
    status: str = "CREATING"
    status_reason: str = "Job queue is being created"
    job_state_time_limit_actions: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobQueueName": self.name,
            "jobQueueArn": self.arn,
            "state": self.state,
            "status": self.status,
            "statusReason": self.status_reason,
            "priority": self.priority,
            "computeEnvironmentOrder": self.compute_environment_order,
            "tags": self.tags,
            "jobQueueType": self.queue_type,
        }
        if self.job_state_time_limit_actions:
            out["jobStateTimeLimitActions"] = self.job_state_time_limit_actions
        if self.scheduling_policy_arn:
            out["schedulingPolicyArn"] = self.scheduling_policy_arn
        return out


@dataclass
class JobDefinition:
    name: str
    revision: int
    arn: str
    def_type: str
    platform_capabilities: list[str]
    container_properties: dict[str, Any] | None
    ecs_properties: dict[str, Any] | None
    parameters: dict[str, str]
    timeout: dict[str, Any] | None
    retry_strategy: dict[str, Any] | None
    propagate_tags: bool | None  # reported only when given, as AWS does
    tags: dict[str, str]
    scheduling_priority: int | None = None
    status: str = "ACTIVE"
    consumable_resources: list[dict[str, Any]] = field(default_factory=list)  # consumableResourceList

    @property
    def platform(self) -> str:
        return "FARGATE" if "FARGATE" in self.platform_capabilities else "EC2"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobDefinitionName": self.name,
            "jobDefinitionArn": self.arn,
            "revision": self.revision,
            "status": self.status,
            "type": self.def_type,
            "parameters": self.parameters,
            "platformCapabilities": self.platform_capabilities,
            "tags": self.tags,
            "containerOrchestrationType": "ECS",
        }
        for key, value in (
            ("containerProperties", self.container_properties),
            ("ecsProperties", self.ecs_properties),
            ("timeout", self.timeout),
            ("retryStrategy", self.retry_strategy),
            ("propagateTags", self.propagate_tags),
            ("schedulingPriority", self.scheduling_priority),
            ("consumableResourceProperties",
             {"consumableResourceList": self.consumable_resources} if self.consumable_resources else None),
        ):
            if value is not None:
                out[key] = value
        return out


@dataclass
class ConsumableResource:
    """A consumable resource (consumables.py): its quantity, and what the jobs placed hold of it."""

    name: str
    arn: str
    total: int
    resource_type: str
    tags: dict[str, str]
    in_use: int = 0
    created_at: int = field(default_factory=now_ms)

    @property
    def available(self) -> int:
        return max(0, self.total - self.in_use)

    def summary(self) -> dict[str, Any]:
        return {"consumableResourceArn": self.arn, "consumableResourceName": self.name, "totalQuantity": self.total,
                "inUseQuantity": self.in_use, "resourceType": self.resource_type}

    def describe(self) -> dict[str, Any]:
        return {**self.summary(), "availableQuantity": self.available, "createdAt": self.created_at,
                "tags": self.tags}


def tags_dict(value: Any) -> dict[str, str]:
    return {str(k): str(val) for k, val in (value or {}).items()}


@dataclass
class SchedulingPolicy:
    name: str
    arn: str
    fairshare_policy: dict[str, Any]
    tags: dict[str, str]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "arn": self.arn, "fairsharePolicy": self.fairshare_policy, "tags": self.tags}
