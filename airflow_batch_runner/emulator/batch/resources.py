"""AWS Batch's long-lived resources: compute environments, job queues and job definitions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_ID = "123456789012"
FARGATE_TYPES = ("FARGATE", "FARGATE_SPOT")
ECS_TYPES = ("EC2", "SPOT", *FARGATE_TYPES)


def now_ms() -> int:
    return int(time.time() * 1000)


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
    status: str = "CREATING"
    status_reason: str = "Compute environment is being created"

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
            "ecsClusterArn": self.arn.replace(":batch:", ":ecs:").replace("compute-environment/", "cluster/"),
        }
        if self.compute_resources is not None:
            out["computeResources"] = self.compute_resources
        if self.eks_configuration is not None:
            out["eksConfiguration"] = self.eks_configuration
        if self.service_role:
            out["serviceRole"] = self.service_role
        return out


@dataclass
class JobQueue:
    name: str
    arn: str
    state: str
    priority: int
    compute_environment_order: list[dict[str, Any]]
    tags: dict[str, str]
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
            "jobQueueType": "ECS",
        }
        if self.job_state_time_limit_actions:
            out["jobStateTimeLimitActions"] = self.job_state_time_limit_actions
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
    propagate_tags: bool
    tags: dict[str, str]
    status: str = "ACTIVE"

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
            "propagateTags": self.propagate_tags,
            "tags": self.tags,
            "containerOrchestrationType": "ECS",
        }
        for key, value in (
            ("containerProperties", self.container_properties),
            ("ecsProperties", self.ecs_properties),
            ("timeout", self.timeout),
            ("retryStrategy", self.retry_strategy),
        ):
            if value is not None:
                out[key] = value
        return out


def tags_dict(value: Any) -> dict[str, str]:
    return {str(k): str(val) for k, val in (value or {}).items()}
