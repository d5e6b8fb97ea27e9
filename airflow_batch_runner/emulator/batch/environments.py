"""AWS Batch's compute environments, as requests see them (each with its ECS cluster), with the state rules
AWS documents; and the base of one region's Batch: its resources and their tags.

``policies.py`` and ``queues.py`` add scheduling policies and job queues on top of this class,
``BatchBackend`` (``backend.py``) job definitions and jobs.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from airflow_batch_runner.emulator.batch import gpus
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.ecs_side import EcsTask
from airflow_batch_runner.emulator.batch.holds import Holds
from airflow_batch_runner.emulator.batch.jobs import Job
from airflow_batch_runner.emulator.batch.resources import (
    ACCOUNT_ID,
    ECS_TYPES,
    ComputeEnvironment,
    ConsumableResource,
    JobQueue,
    SchedulingPolicy,
    name_of,
    tags_dict,
)
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate

# "arn:aws:iam::<account>:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch": Batch creates it.
SERVICE_LINKED_ROLE = re.compile(r"^(arn:aws[a-z-]*:iam::\d{12}:role/)?aws-service-role/batch\.amazonaws\.com/"
                                 r"AWSServiceRoleForBatch$")


class Infrastructure(Protocol):
    """The ECS clusters (with the jobs' task definitions and tasks) and EC2 instance types behind compute
    environments (the other services')."""

    def create_cluster(self, region: str, name: str) -> str: ...

    def delete_cluster(self, region: str, arn: str) -> None: ...

    def run_task(self, region: str, definition_arn: str, request: dict[str, Any], task: EcsTask) -> None: ...

    def task_changed(self, region: str, task: EcsTask) -> None: ...

    def known_instance_type(self, name: str) -> bool: ...

    def instance_gpus(self, name: str) -> list[tuple[int, int]]: ...

    def secret_value(self, region: str, value_from: str) -> str | None: ...

    def registry_credentials(self, region: str, ref: str) -> str | None: ...

    def file_system_exists(self, region: str, file_system_id: str) -> bool: ...

    def role_exists(self, ref: str) -> bool: ...

    def instance_profile_exists(self, ref: str) -> bool: ...


class Timers(Protocol):
    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> None: ...


class Environments:
    """One region's compute environments; the store of its queues, scheduling policies and tags too."""

    region: str
    scheduler: Timers
    step_delay: float
    lock: threading.RLock
    jobs: dict[str, Job]

    def __init__(self, infrastructure: Infrastructure) -> None:
        self.infrastructure = infrastructure
        self.compute_environments: dict[str, ComputeEnvironment] = {}
        self.queues: dict[str, JobQueue] = {}
        self.scheduling_policies: dict[str, SchedulingPolicy] = {}
        self.consumable_resources: dict[str, ConsumableResource] = {}  # by name
        self.tags_by_arn: dict[str, dict[str, str]] = {}
        # Tests' holds on settling (CREATING/UPDATING/DELETING -> ...); the app shares one between its regions.
        self.holds = Holds()

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:batch:{self.region}:{ACCOUNT_ID}:{kind}/{name}"

    def _terminate(self, job: Job, reason: str) -> None:
        raise NotImplementedError  # the jobs' side: BatchBackend

    def _capacity_changed(self) -> None:
        """An environment or queue settled after a change: the jobs' side (BatchBackend) places what now fits."""

    # Compute environments

    def create_compute_environment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "computeEnvironmentName", "type")
        name = params["computeEnvironmentName"]
        v.check_name(name, "computeEnvironmentName")
        v.check_tags(params.get("tags"))
        if params["type"] not in ("MANAGED", "UNMANAGED"):
            raise ClientException("type must be MANAGED or UNMANAGED")
        v.check_state(params.get("state", "ENABLED"), "ENABLED", "DISABLED")
        resources = params.get("computeResources")
        if params["type"] == "MANAGED" and not resources:
            raise ClientException("computeResources is required for a MANAGED compute environment")
        if params["type"] == "UNMANAGED" and resources:
            raise ClientException("computeResources is only valid for a MANAGED compute environment")
        if resources is not None:
            if resources.get("type") not in (*ECS_TYPES, "ECS_MANAGED_INSTANCES"):
                raise ClientException(f"computeResources.type must be one of {', '.join(ECS_TYPES)}")
            v.check_compute_resources(resources, self.infrastructure.known_instance_type)
        if params.get("eksConfiguration"):
            v.require(params["eksConfiguration"], "eksClusterArn", "kubernetesNamespace")
        with self.lock:
            if name in self.compute_environments:
                raise ClientException(f"Object already exists: compute environment {name}")
            cluster = self.infrastructure.create_cluster(self.region, f"AWSBatch-{name}-{uuid.uuid4()}")
            ce = ComputeEnvironment(
                name=name,
                arn=self._arn("compute-environment", name),
                ce_type=params["type"],
                state=params.get("state", "ENABLED"),
                compute_resources=copy.deepcopy(resources),
                eks_configuration=copy.deepcopy(params.get("eksConfiguration")),
                service_role=params.get("serviceRole"),
                tags=tags_dict(params.get("tags")),
                ecs_cluster_arn=cluster,
            )
            if "unmanagedvCpus" in params:
                ce.unmanaged_vcpus = _unmanaged_vcpus(ce.ce_type, params["unmanagedvCpus"])
            ce.gpus = gpus.capacity(ce.compute_resources, self.infrastructure.instance_gpus)
            self.compute_environments[name] = ce
            self.tags_by_arn[ce.arn] = ce.tags
        self._later_compute_environment(ce, "VALID")
        return {"computeEnvironmentName": name, "computeEnvironmentArn": ce.arn}

    def _later_compute_environment(self, ce: ComputeEnvironment, status: str) -> None:
        """CREATING, UPDATING or DELETING settles one step later (or when a test's hold is released)."""
        self.scheduler.call_later(
            self.step_delay, self.holds.settle, "computeEnvironments", self._settle_compute_environment, ce, status
        )

    def _settle_compute_environment(self, ce: ComputeEnvironment, status: str) -> None:
        with self.lock:
            if status == "DELETED":
                if self.compute_environments.get(ce.name) is ce:
                    del self.compute_environments[ce.name]
                    self.tags_by_arn.pop(ce.arn, None)
                self.infrastructure.delete_cluster(self.region, ce.ecs_cluster_arn)
                ce.status, ce.status_reason = "DELETED", "Compute environment deleted"
            else:
                problem = self._role_problem(ce)
                healthy = ("VALID", "ComputeEnvironment Healthy")
                ce.status, ce.status_reason = ("INVALID", problem) if problem else healthy
            self._capacity_changed()

    def _role_problem(self, ce: ComputeEnvironment) -> str | None:
        """The user guide's commonest cause of an INVALID compute environment: a role or instance profile that does
        not exist. Batch cannot check the string at the request; the environment goes INVALID with the reason."""
        infra = self.infrastructure
        role = ce.service_role
        if role and not SERVICE_LINKED_ROLE.match(role) and not infra.role_exists(role):
            return ("CLIENT_ERROR - Not authorized to perform sts:AssumeRole (Service: AWSSecurityTokenService; "
                    "Status Code: 403; Error Code: AccessDenied)")
        resources = ce.compute_resources or {}
        fleet_role = resources.get("spotIamFleetRole")
        if fleet_role and not infra.role_exists(fleet_role):
            return ("CLIENT_ERROR - Parameter: SpotFleetRequestConfig.IamFleetRole is invalid. (Service: AmazonEC2; "
                    "Status Code: 400; Error Code: InvalidSpotFleetRequestConfig)")
        instance_role = resources.get("instanceRole")
        if instance_role and not infra.instance_profile_exists(instance_role):
            return (f"CLIENT_ERROR - Value ({instance_role}) for parameter iamInstanceProfile is invalid. "
                    "Invalid IAM Instance Profile name or ARN")
        return None

    def _compute_environment(self, ref: str) -> ComputeEnvironment:
        ce = self.find_compute_environment(ref)
        if ce is None or ce.status in ("DELETING", "DELETED"):
            raise ClientException(f"computeEnvironment {ref} does not exist")
        return ce

    def update_compute_environment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "computeEnvironment")
        unsupported = [k for k in ("updatePolicy", "ecsSettings", "eksConfiguration", "context") if k in params]
        if unsupported:
            raise ClientException(f"{unsupported[0]} is not supported by this emulator")
        if "state" in params:
            v.check_state(params["state"], "ENABLED", "DISABLED")
        with self.lock:
            ce = self._compute_environment(params["computeEnvironment"])
            if ce.status not in ("VALID", "INVALID"):  # an INVALID one is repaired by an update
                raise ClientException(
                    f"Compute environment {ce.name} is {ce.status}; it can be updated only when VALID or INVALID"
                )
            update = params.get("computeResources")
            if update is not None:
                if ce.compute_resources is None:
                    raise ClientException("computeResources cannot be updated on an UNMANAGED compute environment")
                if "type" in update and update["type"] != ce.compute_resources.get("type"):
                    raise ClientException("computeResources.type cannot be changed by this emulator")
                merged = {**ce.compute_resources, **update}
                v.check_compute_resources(merged, self.infrastructure.known_instance_type)
                ce.compute_resources = copy.deepcopy(merged)
                ce.gpus = gpus.capacity(ce.compute_resources, self.infrastructure.instance_gpus)
            if "unmanagedvCpus" in params:
                ce.unmanaged_vcpus = _unmanaged_vcpus(ce.ce_type, params["unmanagedvCpus"])
            if "state" in params:
                ce.state = params["state"]
            if "serviceRole" in params:
                ce.service_role = params["serviceRole"]
            ce.status, ce.status_reason = "UPDATING", "Compute environment is being updated"
        self._later_compute_environment(ce, "VALID")
        return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}

    def delete_compute_environment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """AWS: set the state to DISABLED and take it out of every job queue first."""
        v.require(params, "computeEnvironment")
        with self.lock:
            ce = self._compute_environment(params["computeEnvironment"])
            if ce.state != "DISABLED":
                raise ClientException(
                    f"Cannot delete, found existing JobQueue relationship or state is not DISABLED: compute "
                    f"environment {ce.name} is {ce.state}; disable it with UpdateComputeEnvironment first"
                )
            users = [q.name for q in self.queues.values() if any(
                e["computeEnvironment"] == ce.arn for e in q.compute_environment_order
            )]
            if users:
                raise ClientException(
                    f"Cannot delete, found existing JobQueue relationship: compute environment {ce.name} is in "
                    f"job queue {', '.join(sorted(users))}; remove it from the queue (or delete the queue) first"
                )
            if ce.status not in ("VALID", "INVALID"):
                raise ClientException(f"Compute environment {ce.name} is {ce.status}; wait until it is VALID")
            ce.status, ce.status_reason = "DELETING", "Compute environment is being deleted"
        self._later_compute_environment(ce, "DELETED")
        return {}

    def find_compute_environment(self, ref: str) -> ComputeEnvironment | None:
        return self.compute_environments.get(name_of(ref))

    def describe_compute_environments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        refs = params.get("computeEnvironments")
        with self.lock:
            if refs:
                found = [self.find_compute_environment(r) for r in refs]
                items = [ce.describe() for ce in found if ce is not None]
            else:
                items = [ce.describe() for ce in self.compute_environments.values()]
        return paginate(items, params, "computeEnvironments")


def _unmanaged_vcpus(ce_type: str, value: Any) -> int:
    if ce_type != "UNMANAGED":
        raise ClientException("unmanagedvCpus is only valid for an UNMANAGED compute environment")
    if not isinstance(value, int) or value < 0:
        raise ClientException(f"unmanagedvCpus must be a non-negative integer, got {value!r}")
    return value
