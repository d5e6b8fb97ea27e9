"""AWS Batch's long-lived resources, as requests see them: compute environments (each with its ECS
cluster), job queues and fair-share scheduling policies, with the state rules AWS documents.

``BatchBackend`` (``backend.py``) adds job definitions and jobs on top of this class.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from airflow_batch_runner.emulator.batch import scheduling, stuck
from airflow_batch_runner.emulator.batch import validation as v
from airflow_batch_runner.emulator.batch.holds import Holds
from airflow_batch_runner.emulator.batch.jobs import ACTIVE_STATUSES, Job
from airflow_batch_runner.emulator.batch.resources import (
    ACCOUNT_ID,
    ECS_TYPES,
    ComputeEnvironment,
    JobQueue,
    SchedulingPolicy,
    name_of,
    tags_dict,
)
from airflow_batch_runner.emulator.batch.validation import ClientException, paginate

MAX_QUEUE_COMPUTE_ENVIRONMENTS = 3


class Infrastructure(Protocol):
    """The ECS clusters and EC2 instance types behind compute environments (the other services')."""

    def create_cluster(self, region: str, name: str) -> str: ...

    def delete_cluster(self, region: str, arn: str) -> None: ...

    def known_instance_type(self, name: str) -> bool: ...

    def secret_value(self, region: str, value_from: str) -> str | None: ...


class Timers(Protocol):
    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> None: ...


class Environments:
    """One region's compute environments, job queues and scheduling policies."""

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
                ce.status, ce.status_reason = "VALID", "ComputeEnvironment Healthy"
            self._capacity_changed()

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
            if ce.status != "VALID":
                raise ClientException(
                    f"Compute environment {ce.name} is {ce.status}; it can be updated only when VALID"
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

    # Job queues

    def create_job_queue(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobQueueName", "priority")
        name = params["jobQueueName"]
        v.check_name(name, "jobQueueName")
        v.check_tags(params.get("tags"))
        actions = stuck.check_time_limit_actions(params.get("jobStateTimeLimitActions"))
        v.check_state(params.get("state", "ENABLED"), "ENABLED", "DISABLED")
        with self.lock:
            order = self._check_ce_order(params.get("computeEnvironmentOrder") or [])
            policy = self._policy_arn(params.get("schedulingPolicyArn"))
            queue_type = self._queue_type(order)
            if params.get("jobQueueType") not in (None, queue_type):
                raise ClientException(
                    f"jobQueueType {params['jobQueueType']} does not match its compute environments ({queue_type})"
                )
            if name in self.queues:
                raise ClientException(f"Object already exists: job queue {name}")
            queue = JobQueue(
                name=name,
                arn=self._arn("job-queue", name),
                state=params.get("state", "ENABLED"),
                priority=int(params["priority"]),
                compute_environment_order=order,
                tags=tags_dict(params.get("tags")),
                job_state_time_limit_actions=actions,
                scheduling_policy_arn=policy,
                queue_type=queue_type,
            )
            self.queues[name] = queue
            self.tags_by_arn[queue.arn] = queue.tags
        self._later_queue(queue, "VALID", "JobQueue Healthy")
        return {"jobQueueName": name, "jobQueueArn": queue.arn}

    def _check_ce_order(self, order: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not order:
            raise ClientException(
                "computeEnvironmentOrder is required: at least 1 compute environment must be provided"
            )
        if len(order) > MAX_QUEUE_COMPUTE_ENVIRONMENTS:
            raise ClientException(
                f"computeEnvironmentOrder: a job queue can have at most {MAX_QUEUE_COMPUTE_ENVIRONMENTS} "
                "compute environments"
            )
        resolved = []
        platforms = set()
        for entry in order:
            if not isinstance(entry.get("order"), int) or not entry.get("computeEnvironment"):
                raise ClientException(
                    "computeEnvironmentOrder is malformed: each entry needs order and computeEnvironment"
                )
            ce = self.find_compute_environment(entry["computeEnvironment"])
            if ce is None or ce.status in ("DELETING", "DELETED"):
                raise ClientException(f"computeEnvironment {entry['computeEnvironment']} does not exist")
            if ce.status != "VALID":
                raise ClientException(
                    f"computeEnvironment {ce.name} is {ce.status}; a job queue can use only VALID compute environments"
                )
            platforms.add((ce.orchestration, ce.platform))
            resolved.append({"order": entry["order"], "computeEnvironment": ce.arn})
        if len(platforms) > 1:
            raise ClientException("All compute environments of a job queue must share one orchestration and platform")
        return resolved

    def _queue_type(self, order: list[dict[str, Any]]) -> str:
        ce = self.find_compute_environment(order[0]["computeEnvironment"])
        assert ce is not None
        if ce.orchestration == "EKS":
            return "EKS"
        return "ECS_FARGATE" if ce.platform == "FARGATE" else "ECS"

    def _later_queue(self, queue: JobQueue, status: str, reason: str) -> None:
        """CREATING, UPDATING or DELETING settles one step later (or when a test's hold is released)."""
        self.scheduler.call_later(
            self.step_delay, self.holds.settle, "jobQueues", self._settle_queue, queue, status, reason
        )

    def _settle_queue(self, queue: JobQueue, status: str, reason: str) -> None:
        with self.lock:
            if status == "DELETED":
                self.queues.pop(queue.name, None)
            queue.status, queue.status_reason = status, reason
            self._capacity_changed()

    def find_queue(self, ref: str) -> JobQueue | None:
        return self.queues.get(name_of(ref))

    def describe_job_queues(self, params: Mapping[str, Any]) -> dict[str, Any]:
        refs = params.get("jobQueues")
        with self.lock:
            if refs:
                found = [self.find_queue(r) for r in refs]
                items = [q.describe() for q in found if q is not None]
            else:
                items = [q.describe() for q in self.queues.values()]
        return paginate(items, params, "jobQueues")

    def update_job_queue(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobQueue")
        with self.lock:
            queue = self.find_queue(params["jobQueue"])
            if queue is None:
                raise ClientException(f"jobQueue {params['jobQueue']} does not exist")
            # Everything is checked before anything changes: a refused update leaves the queue as it was.
            if "state" in params:
                v.check_state(params["state"], "ENABLED", "DISABLED")
            policy = queue.scheduling_policy_arn
            if "schedulingPolicyArn" in params:
                if policy is None:
                    raise ClientException(
                        f"Job queue {queue.name} is a FIFO queue: a fair-share scheduling policy can't be added"
                    )
                policy = self._policy_arn(params["schedulingPolicyArn"])
            order = queue.compute_environment_order
            if "computeEnvironmentOrder" in params:
                order = self._check_ce_order(params["computeEnvironmentOrder"])
                if self._queue_type(order) != queue.queue_type:
                    raise ClientException(
                        f"computeEnvironmentOrder: job queue {queue.name} is of type {queue.queue_type}; "
                        f"its compute environments can't be of type {self._queue_type(order)}"
                    )
            actions = queue.job_state_time_limit_actions
            if "jobStateTimeLimitActions" in params:
                actions = stuck.check_time_limit_actions(params["jobStateTimeLimitActions"])
            queue.scheduling_policy_arn, queue.compute_environment_order = policy, order
            queue.job_state_time_limit_actions = actions
            queue.state = params.get("state", queue.state)
            if "priority" in params:
                queue.priority = int(params["priority"])
            queue.status, queue.status_reason = "UPDATING", "Job queue is being updated"
        self._later_queue(queue, "VALID", "JobQueue Healthy")
        return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}

    def delete_job_queue(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "jobQueue")
        with self.lock:
            queue = self.find_queue(params["jobQueue"])
            if queue is None:
                raise ClientException(f"jobQueue {params['jobQueue']} does not exist")
            if queue.state != "DISABLED":
                raise ClientException(f"Job queue {queue.name} must be DISABLED before it can be deleted")
            queue.status, queue.status_reason = "DELETING", "Job queue is being deleted"
            for job in self.jobs.values():
                if job.queue is queue and job.status in ACTIVE_STATUSES:
                    self._terminate(job, "Job queue deleted")
        self._later_queue(queue, "DELETED", "Job queue deleted")
        return {}

    # Scheduling policies

    def _policy_arn(self, ref: str | None) -> str | None:
        if ref is None:
            return None
        policy = self.scheduling_policies.get(ref)
        if policy is None:
            raise ClientException(f"schedulingPolicyArn {ref} does not exist")
        return policy.arn

    def create_scheduling_policy(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "name")
        v.check_name(params["name"], "name")
        v.check_tags(params.get("tags"))
        policy_spec = scheduling.fairshare_policy(params.get("fairsharePolicy"))
        with self.lock:
            arn = self._arn("scheduling-policy", params["name"])
            if arn in self.scheduling_policies:
                raise ClientException(f"Object already exists: scheduling policy {params['name']}")
            policy = SchedulingPolicy(params["name"], arn, policy_spec, tags_dict(params.get("tags")))
            self.scheduling_policies[arn] = policy
            self.tags_by_arn[arn] = policy.tags
        return {"name": policy.name, "arn": arn}

    def describe_scheduling_policies(self, params: Mapping[str, Any]) -> dict[str, Any]:
        arns = params.get("arns")
        if not isinstance(arns, list) or not arns:
            raise ClientException("arns is required")
        with self.lock:
            found = [self.scheduling_policies.get(arn) for arn in arns]
            return {"schedulingPolicies": [p.describe() for p in found if p is not None]}

    def list_scheduling_policies(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = [{"arn": arn} for arn in self.scheduling_policies]
        return paginate(items, params, "schedulingPolicies")

    def update_scheduling_policy(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "arn")
        policy_spec = scheduling.fairshare_policy(params.get("fairsharePolicy"))
        with self.lock:
            policy = self.scheduling_policies.get(params["arn"])
            if policy is None:
                raise ClientException(f"Scheduling policy {params['arn']} does not exist")
            if "fairsharePolicy" in params:
                policy.fairshare_policy = policy_spec
        return {}

    def delete_scheduling_policy(self, params: Mapping[str, Any]) -> dict[str, Any]:
        v.require(params, "arn")
        with self.lock:
            policy = self.scheduling_policies.get(params["arn"])
            if policy is None:
                raise ClientException(f"Scheduling policy {params['arn']} does not exist")
            users = sorted(q.name for q in self.queues.values() if q.scheduling_policy_arn == policy.arn)
            if users:
                raise ClientException(
                    f"Scheduling policy {policy.name} is used by job queue {', '.join(users)} and can't be deleted"
                )
            del self.scheduling_policies[policy.arn]
            self.tags_by_arn.pop(policy.arn, None)
        return {}


def _unmanaged_vcpus(ce_type: str, value: Any) -> int:
    if ce_type != "UNMANAGED":
        raise ClientException("unmanagedvCpus is only valid for an UNMANAGED compute environment")
    if not isinstance(value, int) or value < 0:
        raise ClientException(f"unmanagedvCpus must be a non-negative integer, got {value!r}")
    return value
